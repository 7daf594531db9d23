/**
 * What a request to another thread costs on comlink (src/workers/thread-rpc.ts) against the
 * hand-written protocol it replaced (a request id, a pending map, a reply matched by id), both
 * to a thread that answers at once with the same small object, one call at a time, in the same
 * run; the floor is a bare postMessage echo. No namespaces: it runs anywhere.
 */

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { connect, type Remote } from '../src/workers/thread-rpc.js';
import { fmt, ratio, spread, type BenchOptions, type BenchResult } from './report.js';

/** The thread: a comlink API on one port, the hand-written protocol and the echo on another. */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const answer = { nodes: [{ mac: '02:00:00:00:00:01', state: 'joined' }], generation: 7 };
import(workerData.rpc).then(({ serve }) => {
  serve({ status: () => answer }, workerData.api);
  workerData.manual.on('message', (m) => {
    if (m.type === 'status') workerData.manual.postMessage({ type: 'status', requestId: m.requestId, status: answer });
    else workerData.manual.postMessage(m);
  });
  parentPort.postMessage('ready');
});
`;

interface Api {
  status(): { nodes: { mac: string; state: string }[]; generation: number };
}

/** The hand-written protocol, as ClusterThreads#ask was. */
class ManualClient {
  readonly #port: MessagePort;
  readonly #waiters = new Map<number, (m: unknown) => void>();
  #next = 0;

  constructor(port: MessagePort) {
    this.#port = port;
    port.on('message', (m: { requestId?: number }) => {
      if (m.requestId === undefined) return;
      const waiter = this.#waiters.get(m.requestId);
      this.#waiters.delete(m.requestId);
      waiter?.(m);
    });
  }

  status(): Promise<unknown> {
    const requestId = ++this.#next;
    return new Promise((resolve) => {
      this.#waiters.set(requestId, resolve);
      this.#port.postMessage({ type: 'status', requestId });
    });
  }

  echo(): Promise<unknown> {
    return new Promise((resolve) => {
      this.#port.once('message', resolve);
      this.#port.postMessage({ type: 'echo' });
    });
  }
}

/** Median µs per call over `rounds` rounds of `calls` sequential calls. */
async function perCall(calls: number, rounds: number, call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 200; i++) await call();
  const us: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await call();
    us.push(((performance.now() - t0) * 1000) / calls);
  }
  return us;
}

export async function benchThreadCalls(o: BenchOptions): Promise<BenchResult> {
  const calls = o.quick ? 2000 : 10_000;
  const rounds = 5;
  o.progress(`thread-calls: ${rounds} × ${fmt(calls)} status requests to a thread, comlink against the hand-written protocol`);
  const api = new MessageChannel();
  const manual = new MessageChannel();
  const worker = new Worker(THREAD, {
    eval: true,
    workerData: { rpc: new URL('../src/workers/thread-rpc.js', import.meta.url).href, api: api.port2, manual: manual.port2 },
    transferList: [api.port2, manual.port2],
  });
  try {
    await new Promise((resolve) => worker.once('message', resolve));
    const remote: Remote<Api> = connect<Api>(api.port1);
    const client = new ManualClient(manual.port1);
    // Interleaved rounds: the machine's noise falls on all three alike.
    const comlink: number[] = [];
    const handWritten: number[] = [];
    const echo: number[] = [];
    for (let r = 0; r < rounds; r++) {
      comlink.push(...(await perCall(calls, 1, () => remote.status())));
      handWritten.push(...(await perCall(calls, 1, () => client.status())));
      echo.push(...(await perCall(calls, 1, () => client.echo())));
    }
    const c = spread(comlink);
    const h = spread(handWritten);
    const e = spread(echo);
    return {
      rows: [
        {
          figure: 'request to a thread, comlink, µs',
          note: `a status request answered at once by another thread, one call at a time, median of ${rounds} rounds of ${fmt(calls)}, interleaved; reference: the hand-written request id and pending map it replaced (in brackets: a bare postMessage echo)`,
          lnlb: fmt(c.median, 1),
          reference: `hand-written ${fmt(h.median, 1)} (echo ${fmt(e.median, 1)})`,
          ratio: ratio(c.median, h.median),
          goal: '',
        },
      ],
      json: { calls, rounds, comlinkUs: c, handWrittenUs: h, echoUs: e },
    };
  } finally {
    api.port1.close();
    manual.port1.close();
    await worker.terminate();
  }
}
