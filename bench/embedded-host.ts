/**
 * A host service that embeds an lnlb node (createNode, as examples/http-service does) and
 * watches its own event loop, for the `host-loop` and `status-rtt` benchmarks. Run inside a
 * lab namespace:
 *
 *   node dist/bench/embedded-host.js --bind eth0 --vip IP --run-dir DIR --key-file FILE --node-name NAME
 *        [--heartbeat-ms MS] [--dead-after-ms MS] [--status-calls N]
 *   node dist/bench/embedded-host.js --bystander
 *
 * Prints one JSON line per event on stdout (lnlb's own log lines, at info, share the stream):
 * - `{"event":"up"}` once the node is created; the loop histogram starts then;
 * - SIGUSR1 starts a new window of the loop histogram (`{"event":"window"}`); SIGUSR2 prints
 *   `{"event":"loop","p50Ms","p99Ms","maxMs","samples"}` for the window so far;
 * - with `--status-calls N`, once the cluster has converged: N `status()` calls one after the
 *   other, then N admin-socket `status` requests, then N round trips to an echo thread (the
 *   floor of any request to another thread), each as `{"event":"rtt","what",...}` in µs.
 * SIGTERM closes the node and exits 0. `--bystander` embeds nothing: the same loop watch in a
 * process that only waits, the reference for what the machine itself (other processes, the
 * scheduler) does to any event loop over the same windows.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { createNode } from '../src/index.js';
import { adminRequest } from '../src/main/admin-client.js';

const { values } = parseArgs({
  options: {
    bind: { type: 'string', default: 'eth0' },
    vip: { type: 'string' },
    'run-dir': { type: 'string' },
    'key-file': { type: 'string' },
    'node-name': { type: 'string' },
    'heartbeat-ms': { type: 'string', default: '200' },
    'dead-after-ms': { type: 'string', default: '1000' },
    'status-calls': { type: 'string', default: '0' },
    bystander: { type: 'boolean', default: false },
  },
});
if (!values.bystander && (values.vip === undefined || values['run-dir'] === undefined || values['key-file'] === undefined)) {
  console.error('usage: embedded-host --vip IP --run-dir DIR --key-file FILE [--node-name NAME] [--status-calls N]');
  process.exit(2);
}

function print(event: string, fields: object = {}): void {
  console.log(JSON.stringify({ event, ...fields }));
}

/** Nanoseconds to milliseconds, 2 decimals. */
const ms = (ns: number): number => Math.round(ns / 1e4) / 100;

const node = values.bystander
  ? undefined
  : await createNode({
      bind: values.bind,
      vip: values.vip!,
      runDir: values['run-dir'],
      keyFile: values['key-file'],
      nodeName: values['node-name'],
      heartbeatMs: Number(values['heartbeat-ms']),
      deadAfterMs: Number(values['dead-after-ms']),
      adminSocket: true,
      logLevel: 'info',
    });
// 1 ms resolution: the timer that samples the loop fires every millisecond, so a pause of
// 10 ms shows as one sample of about 10 ms.
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
print('up');

process.on('SIGUSR1', () => {
  loop.reset();
  print('window');
});
process.on('SIGUSR2', () => {
  print('loop', { p50Ms: ms(loop.percentile(50)), p99Ms: ms(loop.percentile(99)), maxMs: ms(loop.max), samples: loop.count });
});
process.on('SIGTERM', () => {
  loop.disable();
  if (node === undefined) process.exit(0);
  node.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
// Something to wait for: a bystander has nothing else.
if (node === undefined) setInterval(() => undefined, 1 << 30);
node?.on('error', (err) => {
  console.error(`node failed: ${err.code}: ${err.message}`);
  process.exit(1);
});

/** `calls` sequential calls of `call`, their durations in µs (after 20 warm-up calls). */
async function timeCalls(calls: number, call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await call();
  const us: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await call();
    us.push((performance.now() - t0) * 1000);
  }
  return us;
}

function summary(us: number[]): { p50Us: number; p99Us: number; maxUs: number; calls: number } {
  const s = [...us].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
  return { p50Us: at(0.5), p99Us: at(0.99), maxUs: Math.round(s[s.length - 1]!), calls: s.length };
}

const statusCalls = Number(values['status-calls']);
if (node !== undefined && statusCalls > 0) {
  node.once('converged', () => {
    void (async (): Promise<void> => {
      print('rtt', { what: 'status()', ...summary(await timeCalls(statusCalls, () => node.status())) });
      print('rtt', { what: 'admin status', ...summary(await timeCalls(statusCalls, () => adminRequest(values['run-dir']!, 'status'))) });
      // The floor: a message to a thread that answers it at once, and its answer.
      const echo = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
      print('rtt', {
        what: 'echo thread',
        ...summary(await timeCalls(statusCalls, () => new Promise((resolve) => {
          echo.once('message', resolve);
          echo.postMessage({ type: 'status', requestId: 1 });
        }))),
      });
      await echo.terminate();
      print('rtt-done');
    })();
  });
}
