import test from 'ava';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
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

test('nameOwnThread names the calling thread only, cut to the kernel\u2019s 15 characters (what top -H shows)', async (t) => {
  const module = new URL('../../../src/workers/thread-priority.js', import.meta.url).href;
  const worker = new Worker(
    `import { parentPort } from 'node:worker_threads';
     const { nameOwnThread, ownThreadId } = await import(${JSON.stringify(module)});
     nameOwnThread('lnlb-a-rather-long-name');
     // Stay alive (a listener holds the loop) until terminated: a thread that has exited has no /proc entry to read.
     parentPort.on('message', () => {});
     parentPort.postMessage(ownThreadId());`,
    { eval: true },
  );
  const tid = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  t.is(readFileSync(`/proc/self/task/${tid}/comm`, 'utf8'), 'lnlb-a-rather-l\n');
  t.not(readFileSync('/proc/self/task/' + process.pid + '/comm', 'utf8'), 'lnlb-a-rather-l\n', 'the main thread keeps its name');
  await worker.terminate();
});

test('a main thread that imports the bond thread\u2019s module keeps its name and priority (the thread\u2019s body does not run there)', async (t) => {
  const nameBefore = readFileSync('/proc/thread-self/comm', 'utf8');
  const niceBefore = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ')[16];
  await import('../../../src/workers/bond-thread.js');
  t.is(readFileSync('/proc/thread-self/comm', 'utf8'), nameBefore, 'not renamed lnlb-bond');
  t.is(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ')[16], niceBefore, 'not lowered to the datapath\u2019s priority');
});
