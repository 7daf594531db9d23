/**
 * An actor thread (--workers N ≥ 2): the actor (actor-host.ts) fed from the dispatcher's ring.
 * Its event loop must stay free for control messages (node died, snapshot, load, stop), so it
 * sleeps with Atomics.waitAsync on its ring rather than Atomics.wait: the dispatcher's commit()
 * stores the ring head and then notifies if the actor said it was sleeping (see ByteRing for
 * the ordering argument).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import type { ProtocolHandler } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { ByteRing } from '../shm/byte-ring.js';
import { createActorHost } from './actor-host.js';
import type { ActorData, MainToActor, WorkerToMain } from './messages.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';

/** Batches processed back to back before yielding to the event loop for control messages. */
const BATCHES_BEFORE_YIELD = 64;

function post(message: WorkerToMain): void {
  parentPort?.postMessage(message);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function run(data: ActorData): Promise<void> {
  nameOwnThread(`lnlb-actor-${data.index}`);
  lowerDatapathThread();
  const ring = new ByteRing(data.ring!);
  const handlers: ProtocolHandler[] = [];
  // The main thread ran each module's self-test (in a thread of its own, with a time limit).
  for (const setup of data.handlers) handlers.push(await loadHandler(setup.spec, { smokeTest: false }));
  const host = createActorHost(data, handlers, ring);
  const actor = host.core;
  parentPort?.on('message', (message: MainToActor) => {
    host.handle(message);
    ring.wakeConsumer();
  });
  post({ type: 'ready', tid: ownThreadId() });
  while (host.running) {
    let batches = 0;
    let nowSeconds = Math.floor(Date.now() / 1000);
    while (batches < BATCHES_BEFORE_YIELD && actor.processAvailable(nowSeconds) > 0) {
      batches++;
      if ((batches & 7) === 0) nowSeconds = Math.floor(Date.now() / 1000);
    }
    const sleepMs = host.tick(nowSeconds);
    if (batches === BATCHES_BEFORE_YIELD) {
      await yieldToEventLoop();
      continue;
    }
    const wait = ring.waitAsync(sleepMs);
    if (wait) await wait;
  }
  host.close();
  post({ type: 'stopped' });
  parentPort?.close();
}

run(workerData as ActorData).catch((err: unknown) => {
  post({ type: 'error', error: serializeError(err, `actor ${(workerData as ActorData).index}`) });
});
