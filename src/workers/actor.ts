/**
 * An actor thread. Its event loop must stay free for control messages (node died, stop), so
 * it sleeps with Atomics.waitAsync on its ring rather than Atomics.wait: the dispatcher's
 * commit() stores the ring head and then notifies if the actor said it was sleeping (see
 * ByteRing for the ordering argument).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { createElection } from '../cluster/election.js';
import { actorForKey } from '../cluster/hash.js';
import { loadTrackerState, NOT_MY_SHARD } from '../handlers/tracker-state.js';
import { formatMac } from '../net/ethernet.js';
import { TrackingTable } from '../shm/tracking-table.js';
import { sourceIpHandler } from '../handlers/default.js';
import { ByteRing } from '../shm/byte-ring.js';
import { ViewReader } from '../shm/view.js';
import { ActorCore } from './actor-core.js';
import { CounterBlock } from './counters.js';
import type { ActorData, MainToActor, WorkerToMain } from './messages.js';
import { TapSink } from './ports.js';

/** Longest sleep: housekeeping (expiry) runs at least this often. */
const IDLE_WAKE_MS = 1000;
/** Batches processed back to back before yielding to the event loop for control messages. */
const BATCHES_BEFORE_YIELD = 64;

function post(message: WorkerToMain): void {
  parentPort?.postMessage(message);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function run(data: ActorData): Promise<void> {
  const ring = new ByteRing(data.ring);
  const tracker = sourceIpHandler.createTracker({
    memory: data.tracker,
    capacity: data.trackerCapacity,
    idleTimeoutSeconds: data.idleTimeoutSeconds,
  });
  const actor = new ActorCore({
    ring,
    sink: new TapSink(data.tapFd),
    trackers: [tracker],
    view: new ViewReader(data.view),
    counters: new CounterBlock(data.counters).row(1 + data.index),
    election: createElection(data.election),
  });
  let running = true;
  parentPort?.on('message', (message: MainToActor) => {
    if (message.type === 'stop') running = false;
    else if (message.type === 'node-died') post({ type: 'purged', id: message.id, entries: actor.nodeDied(message.id) });
    else if (message.type === 'reset') actor.reset();
    else if (message.type === 'load-state') {
      // LNLB's load_status: this shard is cleared and refilled, all or nothing.
      const index = data.index;
      try {
        const result = loadTrackerState(message.state, [new TrackingTable(data.tracker)], {
          nowSeconds: Math.floor(Date.now() / 1000),
          ownerId: (mac) => message.ownerIds[formatMac(mac)],
          shardOf: (keyLo, keyHi) => (actorForKey(keyLo, keyHi, message.actorCount) === index ? 0 : NOT_MY_SHARD),
        });
        post({ type: 'state-loaded', from: message.from, entries: result.loaded, skipped: result.skippedUnknownOwner });
      } catch (err) {
        post({ type: 'state-refused', from: message.from, message: (err as Error).message });
      }
    }
  });
  post({ type: 'ready' });
  let lastHousekeeping = 0;
  // Once a second: a whole sweep of the shard every 30 s, however large it is.
  const sweepBudget = Math.max(8192, Math.ceil(data.trackerCapacity / 30));
  while (running) {
    let batches = 0;
    let nowSeconds = Math.floor(Date.now() / 1000);
    while (batches < BATCHES_BEFORE_YIELD && actor.processAvailable(nowSeconds) > 0) {
      batches++;
      if ((batches & 7) === 0) nowSeconds = Math.floor(Date.now() / 1000);
    }
    if (nowSeconds !== lastHousekeeping) {
      actor.housekeeping(nowSeconds, sweepBudget);
      lastHousekeeping = nowSeconds;
    }
    if (batches === BATCHES_BEFORE_YIELD) {
      await yieldToEventLoop();
      continue;
    }
    const wait = ring.waitAsync(IDLE_WAKE_MS);
    if (wait) await wait;
  }
  post({ type: 'stopped' });
  parentPort?.close();
}

run(workerData as ActorData).catch((err: Error & { code?: string }) => {
  post({ type: 'error', message: `actor ${(workerData as ActorData).index}: ${err.message}`, ...(err.code ? { code: err.code } : {}) });
});
