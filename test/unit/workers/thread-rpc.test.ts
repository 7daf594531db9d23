// Requests between threads (src/workers/thread-rpc.ts), with real worker threads: an API
// served by events and one polled between "batches" as the datapath threads do, errors that
// keep their LNLB codes, buffers moved rather than copied, and a deadline for a thread that
// never answers.
import test from 'ava';
import { MessageChannel, Worker } from 'node:worker_threads';
import { isLnlbError } from '../../../src/errors.js';
import { connect, connectWaking, withDeadline, lateError, type Remote } from '../../../src/workers/thread-rpc.js';

const RPC = new URL('../../../src/workers/thread-rpc.js', import.meta.url).href;
const ERRORS = new URL('../../../src/errors.js', import.meta.url).href;

interface Api {
  add(a: number, b: number): number;
  refuse(): never;
  crash(): never;
  /** A buffer of `bytes`, moved to the caller. */
  buffer(bytes: number): Uint8Array;
  /** The length of what it was given, and whether the caller's copy was detached (moved) or not. */
  measure(data: Uint8Array): number;
  hang(): Promise<never>;
}

const API_BODY = `
  const api = {
    add: (a, b) => a + b,
    refuse: () => { throw lnlbError('LNLB_ERR_BOND_SLAVE', 'eth9: no such slave'); },
    crash: () => { throw new TypeError('plain failure'); },
    buffer: (bytes) => { const b = new Uint8Array(bytes).fill(7); return transfer(b, [b.buffer]); },
    measure: (data) => data.length,
    hang: () => new Promise(() => undefined),
  };
`;

/** A thread serving Api by events on its port (as the control and bond threads do). */
const EVENT_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
Promise.all([import(workerData.rpc), import(workerData.errors)]).then(([{ serve, transfer }, { lnlbError }]) => {
  ${API_BODY}
  serve(api, workerData.port);
  parentPort.postMessage('ready');
});
`;

/**
 * A thread that never returns to its event loop by itself: it sleeps in Atomics.wait and
 * polls its port between "batches", as the actors do.
 */
const POLLED_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
Promise.all([import(workerData.rpc), import(workerData.errors)]).then(async ([{ expose, PolledEndpoint, transfer }, { lnlbError }]) => {
  ${API_BODY}
  const endpoint = new PolledEndpoint(workerData.port);
  expose(api, endpoint);
  const bell = new Int32Array(workerData.bell);
  parentPort.postMessage('ready');
  for (;;) {
    // Read before looking, as the actors read their doorbell: a request posted after this wakes the wait.
    const seen = Atomics.load(bell, 0);
    if (endpoint.poll()) await endpoint.settle();
    Atomics.wait(bell, 0, seen, 1000);
  }
});
`;

async function start(polled: boolean): Promise<{ remote: Remote<Api>; stop(): Promise<void>; wakes(): number }> {
  const { port1, port2 } = new MessageChannel();
  const bell = new SharedArrayBuffer(4);
  const worker = new Worker(polled ? POLLED_THREAD : EVENT_THREAD, { eval: true, workerData: { rpc: RPC, errors: ERRORS, port: port2, bell }, transferList: [port2] });
  await new Promise((resolve) => worker.once('message', resolve));
  let wakes = 0;
  const view = new Int32Array(bell);
  const remote = polled
    ? connectWaking<Api>(port1, () => {
        wakes++;
        Atomics.add(view, 0, 1);
        Atomics.notify(view, 0);
      })
    : connect<Api>(port1);
  return {
    remote,
    wakes: () => wakes,
    async stop() {
      port1.close();
      await worker.terminate();
    },
  };
}

for (const polled of [false, true]) {
  const kind = polled ? 'a polled thread (the actors)' : 'an event-driven thread (control, bonds)';

  test(`${kind}: typed calls answer; an LnlbError keeps its code, any other error its message`, async (t) => {
    const thread = await start(polled);
    try {
      t.is(await thread.remote.add(2, 40), 42);
      const refused = await t.throwsAsync(thread.remote.refuse());
      t.true(isLnlbError(refused), 'revived as LnlbError');
      t.is((refused as { code?: string }).code, 'LNLB_ERR_BOND_SLAVE');
      t.regex(refused!.message, /eth9: no such slave/);
      const crashed = await t.throwsAsync(thread.remote.crash());
      t.false(isLnlbError(crashed), 'no code to keep: comlink passes it as it does');
      t.regex(crashed!.message, /plain failure/);
      if (polled) t.true(thread.wakes() >= 3, 'every request rang the bell');
    } finally {
      await thread.stop();
    }
  });

  test(`${kind}: a buffer the thread moves arrives whole; one sent to it is copied unless moved`, async (t) => {
    const thread = await start(polled);
    try {
      const got = await thread.remote.buffer(1 << 20);
      t.is(got.length, 1 << 20);
      t.is(got[12345], 7);
      const data = new Uint8Array(4096);
      t.is(await thread.remote.measure(data), 4096);
      t.is(data.length, 4096, 'sent without transfer: still ours');
    } finally {
      await thread.stop();
    }
  });

  test(`${kind}: a call that never returns fails at its deadline with the code given`, async (t) => {
    const thread = await start(polled);
    try {
      const late = await t.throwsAsync(withDeadline(thread.remote.hang(), 100, lateError('LNLB_ERR_WORKER_FAILED', 'the test thread', 100)));
      t.is((late as { code?: string }).code, 'LNLB_ERR_WORKER_FAILED');
      t.regex(late!.message, /the test thread did not answer within 100 ms/);
      t.is(await thread.remote.add(1, 1), 2, 'and the thread still answers the next call');
    } finally {
      await thread.stop();
    }
  });
}
