import test from 'ava';
import { EventEmitter } from 'node:events';
import { ExitRestorer, type HostRestorable } from '../../../src/main/restore-at-exit.js';

/** A stand-in for `process`: emits 'exit' as Node does, and counts its listeners. */
function fakeProcess(): EventEmitter & { exits(code: number): void; listening(): number } {
  const emitter = new EventEmitter();
  return Object.assign(emitter, { exits: (code: number) => void emitter.emit('exit', code), listening: () => emitter.listenerCount('exit') });
}

function node(restore: () => string[] = () => []): HostRestorable & { restored: number } {
  const target = {
    restored: 0,
    restoreHostNow: () => {
      target.restored++;
      return restore();
    },
  };
  return target;
}

test('one exit listener for every open node, added with the first and removed with the last', (t) => {
  const proc = fakeProcess();
  const restorer = new ExitRestorer(proc);
  const a = node();
  const b = node();
  t.is(proc.listening(), 0);
  restorer.watch(a, () => undefined);
  restorer.watch(b, () => undefined);
  t.is(proc.listening(), 1);
  restorer.forget(a);
  t.is(proc.listening(), 1);
  restorer.forget(b);
  restorer.forget(b); // closed twice: nothing more
  t.is(proc.listening(), 0, 'nothing left on process once every node is closed');
  t.is(a.restored + b.restored, 0, 'a node closed the ordinary way is not restored again');
});

test('on exit, every node still open is restored, once, and told the exit code and what failed', (t) => {
  const proc = fakeProcess();
  const restorer = new ExitRestorer(proc);
  const open = node();
  const failing = node(() => ['cannot set sysctl net.ipv4.conf.eth0.arp_ignore=0: EACCES']);
  const closed = node();
  const reports: [string, number, readonly string[]][] = [];
  restorer.watch(open, (code, failures) => reports.push(['open', code, failures]));
  restorer.watch(failing, (code, failures) => reports.push(['failing', code, failures]));
  restorer.watch(closed, () => reports.push(['closed', 0, []]));
  restorer.forget(closed);
  proc.exits(1);
  proc.exits(1);
  t.deepEqual([open.restored, failing.restored, closed.restored], [1, 1, 0]);
  t.deepEqual(reports, [
    ['open', 1, []],
    ['failing', 1, ['cannot set sysctl net.ipv4.conf.eth0.arp_ignore=0: EACCES']],
  ]);
  t.is(proc.listening(), 0);
  t.is(restorer.size, 0);
});

test('nothing thrown at exit: a restore or a report that throws does not stop the others nor replace the exit', (t) => {
  const proc = fakeProcess();
  const restorer = new ExitRestorer(proc);
  const broken = node(() => {
    throw new Error('host state directory gone');
  });
  const after = node();
  const reports: (readonly string[])[] = [];
  restorer.watch(broken, (_code, failures) => {
    reports.push(failures);
    throw new Error('a logger closed already');
  });
  restorer.watch(after, (_code, failures) => reports.push(failures));
  t.notThrows(() => proc.exits(0));
  t.deepEqual(reports, [['host state directory gone'], []]);
  t.is(after.restored, 1);
});
