/**
 * lnlbd's way out, with a fake process and a fake stop: an unexpected error runs the same
 * stop as SIGTERM and exits 1; a second one during the stop exits at once; a stop that hangs
 * is cut by the timeout; a stop that fails exits non-zero.
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Shutdown } from '../../../src/main/shutdown.js';

function harness(stop: () => Promise<void>, timeoutMs = 5000) {
  const exits: number[] = [];
  const lines: string[] = [];
  const record = (_fields: unknown, msg?: string): void => void lines.push(msg ?? '');
  const log = { info: record, error: record, fatal: record } as unknown as ConstructorParameters<typeof Shutdown>[0]['log'];
  const shutdown = new Shutdown({ stop, exit: (code) => exits.push(code), log, timeoutMs });
  const proc = new EventEmitter();
  const uninstall = shutdown.install(proc);
  return { shutdown, proc, exits, lines, uninstall };
}

test('an unhandled rejection runs the whole stop, then exits 1', async (t) => {
  const steps: string[] = [];
  const h = harness(async () => {
    steps.push('leave, remove the TAP, restore sysctls, release bonds');
    await sleep(20);
    steps.push('stopped');
  });
  h.proc.emit('unhandledRejection', new Error('a forgotten promise'));
  t.deepEqual(h.exits, [], 'not before the stop has run');
  await sleep(60);
  t.deepEqual(steps, ['leave, remove the TAP, restore sysctls, release bonds', 'stopped']);
  t.deepEqual(h.exits, [1]);
  t.true(h.lines.some((l) => /unhandled rejection: a forgotten promise; leaving the cluster/.test(l)));
});

test('an uncaught exception does the same; SIGTERM exits 0 through the same stop', async (t) => {
  let stops = 0;
  const crashed = harness(async () => void stops++);
  crashed.proc.emit('uncaughtException', new TypeError('x is undefined'));
  await sleep(10);
  t.deepEqual(crashed.exits, [1]);
  const signalled = harness(async () => void stops++);
  await signalled.shutdown.begin('SIGTERM', 0);
  t.deepEqual(signalled.exits, [0]);
  t.is(stops, 2);
});

test('a second error while stopping exits at once, without waiting for the stop', async (t) => {
  let release!: () => void;
  const h = harness(() => new Promise<void>((resolve) => (release = resolve)));
  h.proc.emit('unhandledRejection', new Error('first'));
  await sleep(10);
  t.deepEqual(h.exits, []);
  h.proc.emit('uncaughtException', new Error('second'));
  t.deepEqual(h.exits, [1]);
  t.true(h.lines.some((l) => /uncaught exception while stopping: second; exiting now/.test(l)));
  release();
  await sleep(10);
  t.deepEqual(h.exits, [1], 'exits once');
});

test('a stop that hangs is cut by the timeout; a stop that fails exits non-zero', async (t) => {
  const hung = harness(() => new Promise<void>(() => undefined), 100);
  const started = performance.now();
  await hung.shutdown.begin('SIGTERM', 0);
  t.true(performance.now() - started >= 95);
  t.deepEqual(hung.exits, [1]);
  t.true(hung.lines.some((l) => /longer than 100 ms/.test(l)));
  const failing = harness(() => Promise.reject(new Error('sysctl restore failed')));
  await failing.shutdown.begin('SIGTERM', 0);
  t.deepEqual(failing.exits, [1]);
});

test('uninstalled, the handlers are gone (the embedding API never installs them)', (t) => {
  const h = harness(async () => undefined);
  t.is(h.proc.listenerCount('unhandledRejection'), 1);
  h.uninstall();
  t.is(h.proc.listenerCount('unhandledRejection'), 0);
  t.is(h.proc.listenerCount('uncaughtException'), 0);
});
