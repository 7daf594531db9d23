import test from 'ava';
import { datapathNice, ownThreadId } from '../../../src/workers/thread-priority.js';

test('datapath threads run 10 steps below a raised process, never below the default 0; an unraised one keeps its own', (t) => {
  t.is(datapathNice(-20), -10);
  t.is(datapathNice(-15), -5);
  t.is(datapathNice(-7), 0);
  t.is(datapathNice(0), 0);
  t.is(datapathNice(5), 5, '--nice 5 lowers every thread alike');
});

test('ownThreadId is this thread\u2019s kernel id (the main thread\u2019s is the pid)', (t) => {
  t.is(ownThreadId(), process.pid);
});
