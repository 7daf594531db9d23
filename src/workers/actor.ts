/**
 * An actor thread (--workers N ≥ 2): the actor (actor-host.ts) fed from the dispatcher's ring.
 * It never yields to its event loop: it sleeps in Atomics.wait on its ring's doorbell, which
 * the dispatcher's commit() rings when it said it was sleeping, and takes its control messages
 * (node died, stop) and requests (snapshot, load: ActorApi, thread-rpc.ts) with
 * receiveMessageOnPort between batches; the main thread rings the doorbell after posting one
 * (ByteRing.wakeConsumer). A futex wake-up, not a task
 * posted to a libuv loop and a promise resolved: Atomics.waitAsync cost a frame ~10x the
 * kernel path's p99 in the latency bench.
 */

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import type { ProtocolHandler } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { ByteRing } from '../shm/byte-ring.js';
import { createActorHost } from './actor-host.js';
import type { ActorData, MainToActor, WorkerToMain } from './messages.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';

/** Batches processed back to back before looking at control messages and housekeeping. */
const BATCHES_BEFORE_LOOKING = 64;

function post(message: WorkerToMain): void {
  parentPort?.postMessage(message);
}

async function run(data: ActorData): Promise<void> {
  nameOwnThread(`lnlb-actor-${data.index}`);
  lowerDatapathThread();
  const ring = new ByteRing(data.ring!);
  const handlers: ProtocolHandler[] = [];
  // The main thread ran each module's self-test (in a thread of its own, with a time limit).
  for (const setup of data.handlers) handlers.push(await loadHandler(setup.spec, { smokeTest: false }));
  const host = createActorHost(data, handlers, ring);
  const actor = host.core;
  const port = parentPort!;
  post({ type: 'ready', tid: ownThreadId() });
  for (;;) {
    // Read before looking for work: a message posted after this rings the bell, and the wait
    // below returns at once (ByteRing.waitSync).
    const bell = ring.doorbell();
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) host.handle(m.message as MainToActor);
    if (!host.running) break;
    // Requests (ActorApi) run now, between batches; their answers leave in one event-loop turn.
    if (host.requests.poll()) await host.requests.settle();
    let batches = 0;
    let nowSeconds = Math.floor(Date.now() / 1000);
    while (batches < BATCHES_BEFORE_LOOKING && actor.processAvailable(nowSeconds) > 0) {
      batches++;
      if ((batches & 7) === 0) nowSeconds = Math.floor(Date.now() / 1000);
    }
    const sleepMs = host.tick(nowSeconds);
    if (batches === BATCHES_BEFORE_LOOKING) continue;
    ring.waitSync(sleepMs, bell);
  }
  host.close();
  post({ type: 'stopped' });
  parentPort?.close();
}

run(workerData as ActorData).catch((err: unknown) => {
  post({ type: 'error', error: serializeError(err, `actor ${(workerData as ActorData).index}`) });
});
