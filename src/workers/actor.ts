/**
 * An actor thread. Its event loop must stay free for control messages (node died, snapshot,
 * load, stop), so it sleeps with Atomics.waitAsync on its ring rather than Atomics.wait: the
 * dispatcher's commit() stores the ring head and then notifies if the actor said it was
 * sleeping (see ByteRing for the ordering argument).
 *
 * Control messages run between batches, on this thread, the only writer of the shard: a
 * snapshot is consistent per shard, and a load never races a frame.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { createElection } from '../cluster/election.js';
import { actorForKey } from '../cluster/hash.js';
import { compileRules } from '../cluster/port-rules.js';
import { serializeError } from '../errors.js';
import type { InterfaceInfo, ProtocolHandler, Tracker } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { loadTrackerStateInto, mergeTrackerStateInto, restoreTracker, SNAPSHOT_WORDS, snapshotTracker } from '../handlers/tracker-state.js';
import { DrainingBuckets } from '../shm/draining-buckets.js';
import { formatMac } from '../net/ethernet.js';
import { ByteRing } from '../shm/byte-ring.js';
import { ViewReader } from '../shm/view.js';
import { ActorCore } from './actor-core.js';
import { HandlerErrorLog, runInterfaceHook } from './handler-errors.js';
import type { ActorData, MainToActor, ShardListing, WorkerToMain } from './messages.js';
import { TapSink } from './ports.js';
import { ActorCounter, CounterBlock } from './counters.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';
import { handlerCall, HandlerMethod } from './watchdog.js';

/** Longest sleep while the shards track flows: housekeeping (expiry) runs at least this often. */
const IDLE_WAKE_MS = 1000;
/**
 * Longest sleep with nothing tracked, nothing held and nothing to purge: there is nothing to
 * expire, and a frame, a view or a request wakes the actor at once. An idle daemon's actors
 * then wake every 10 s instead of every second.
 */
const EMPTY_WAKE_MS = 10_000;
/** Batches processed back to back before yielding to the event loop for control messages. */
const BATCHES_BEFORE_YIELD = 64;
/**
 * A dead node's purge: a slice of this many slots (about 50 µs) at most every PURGE_PACE_MS,
 * whatever the traffic. Its entries already count as untracked, so nothing waits for the
 * purge, while the CPU is wanted at that moment: the dead node's clients are arriving. Done
 * back to back, the purges of a 3-node cluster's four actors on two cores held frames up by
 * 10 ms and more; paced, a 600,000-slot shard takes 0.2 s at 1% of a core.
 */
const PURGE_SLICE_SLOTS = 16_384;
const PURGE_PACE_MS = 5;
/** How often the handlers' own counters are sent to the main thread. */
const HANDLER_COUNTERS_EVERY_S = 2;

function post(message: WorkerToMain): void {
  parentPort?.postMessage(message);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function run(data: ActorData): Promise<void> {
  nameOwnThread(`lnlb-actor-${data.index}`);
  lowerDatapathThread();
  const ring = new ByteRing(data.ring);
  const handlers: ProtocolHandler[] = [];
  // The main thread ran each module's self-test (in a thread of its own, with a time limit).
  for (const setup of data.handlers) handlers.push(await loadHandler(setup.spec, { smokeTest: false }));
  const trackers: Tracker[] = handlers.map((handler, i) =>
    handler.createTracker({ memory: data.trackers[i]!, capacity: data.trackerCapacity, idleTimeoutSeconds: data.handlers[i]!.idleTimeoutSeconds }),
  );
  const info: InterfaceInfo = { name: data.interfaceName, vip: data.vip, thread: 'actor', actorIndex: data.index, actorCount: data.actorCount };
  const errors = new HandlerErrorLog((report) => post({ type: 'handler-error', ...report }));
  runInterfaceHook(handlers, 'interfaceCreated', info, errors);
  const row = new CounterBlock(data.counters).row(1 + data.index);
  /** Runs handler code outside the frame path, marked for the watchdog (watchdog.ts). */
  const inHandler = <T>(handlerIndex: number, method: number, fn: () => T): T => {
    row[ActorCounter.inHandler] = handlerCall(handlerIndex, method);
    try {
      return fn();
    } finally {
      row[ActorCounter.inHandler] = 0;
    }
  };
  const actor = new ActorCore({
    ring,
    sink: new TapSink(data.tapFd),
    trackers,
    view: new ViewReader(data.view),
    counters: row,
    createElection: () => createElection(data.election),
    agreedBuckets: data.election === 'bucket',
    keyOrigins: handlers.map((h) => (h.keyOrigin === undefined ? undefined : h.keyOrigin.bind(h))),
    protocols: handlers.map((h) => h.protocol),
    draining: { memory: new DrainingBuckets(data.draining), index: data.index },
    rules: compileRules(data.rules),
    handlerNames: handlers.map((h) => h.name),
    handlerErrors: errors,
    electionKey: data.electionKey,
  });
  /** Shards as they were before a state load, until every actor has loaded it (requestId → per handler). */
  const previous = new Map<number, Map<number, Uint32Array>>();
  const mine = (keyLo: number, keyHi: number): boolean => actorForKey(keyLo, keyHi, data.actorCount, data.actorSeed) === data.index;

  type StateMessage = Extract<MainToActor, { type: 'load-state' | 'merge-state' }>;
  /** The tracker a state message is for, or undefined (refused, said so). */
  const stateTarget = (message: StateMessage): Tracker | undefined => {
    const tracker = trackers[message.handlerIndex];
    if (tracker === undefined) post({ type: 'state-refused', requestId: message.requestId, from: message.from, handlerIndex: message.handlerIndex, message: `no handler ${message.handlerIndex} here` });
    return tracker;
  };
  const refuseState = (message: StateMessage, err: unknown): void =>
    post({ type: 'state-refused', requestId: message.requestId, from: message.from, handlerIndex: message.handlerIndex, message: `${handlers[message.handlerIndex]!.name}: ${(err as Error).message}` });
  /** A state's entries on this node's clock and ids, this actor's keys only. */
  const loadOptions = (ownerIds: Record<string, number>): { nowSeconds: number; ownerId(mac: Uint8Array): number | undefined; mine(keyLo: number, keyHi: number): boolean } => ({
    nowSeconds: Math.floor(Date.now() / 1000),
    ownerId: (mac) => ownerIds[formatMac(mac)],
    mine,
  });

  const onMessage = (message: MainToActor): void => {
    switch (message.type) {
      case 'stop':
        running = false;
        return;
      case 'node-died':
        actor.nodeDied(message.id); // purged between batches (the loop below)
        return;
      case 'reset':
        actor.reset();
        return;
      case 'load-state': {
        // LNLB's load_status: this shard is cleared and refilled, all or nothing.
        const { requestId, handlerIndex, from } = message;
        const tracker = stateTarget(message);
        if (tracker === undefined) return;
        try {
          const result = inHandler(handlerIndex, HandlerMethod.loadStatus, () => loadTrackerStateInto(message.state, tracker, loadOptions(message.ownerIds)));
          let byHandler = previous.get(requestId);
          if (byHandler === undefined) previous.set(requestId, (byHandler = new Map()));
          byHandler.set(handlerIndex, result.previous);
          post({ type: 'state-loaded', requestId, from, handlerIndex, entries: result.loaded, skipped: result.skippedUnknownOwner, clockShift: result.clockShiftSeconds });
        } catch (err) {
          refuseState(message, err);
        }
        return;
      }
      case 'commit-state':
        previous.delete(message.requestId);
        return;
      case 'rollback-state': {
        for (const [handlerIndex, snapshot] of previous.get(message.requestId) ?? []) inHandler(handlerIndex, HandlerMethod.loadStatus, () => restoreTracker(trackers[handlerIndex]!, snapshot));
        previous.delete(message.requestId);
        return;
      }
      case 'snapshot': {
        const shards = trackers.map((tracker, i) => inHandler(i, HandlerMethod.saveStatus, () => snapshotTracker(tracker)));
        parentPort?.postMessage({ type: 'snapshot', requestId: message.requestId, shards } satisfies WorkerToMain, shards.map((s) => s.buffer as ArrayBuffer));
        return;
      }
      case 'scan-buckets': {
        const scanned = actor.scanBuckets(message.targetOf);
        parentPort?.postMessage({ type: 'buckets-scanned', requestId: message.requestId, handlers: scanned } satisfies WorkerToMain);
        return;
      }
      case 'merge-state': {
        // A handover: the entries join the live shard (no clear, nothing to roll back).
        const { requestId, handlerIndex, from } = message;
        const tracker = stateTarget(message);
        if (tracker === undefined) return;
        try {
          const result = inHandler(handlerIndex, HandlerMethod.loadStatus, () => mergeTrackerStateInto(message.state, tracker, loadOptions(message.ownerIds)));
          post({ type: 'state-merged', requestId, from, handlerIndex, entries: result.merged, skipped: result.skippedUnknownOwner });
        } catch (err) {
          refuseState(message, err);
        }
        return;
      }
      case 'list': {
        const listings: ShardListing[] = trackers.map((tracker, i) => inHandler(i, HandlerMethod.saveStatus, () => listShard(tracker, data.handlers[i]!.idleTimeoutSeconds, message.nowSeconds, message.limit)));
        post({ type: 'list', requestId: message.requestId, handlers: listings });
        return;
      }
    }
  };
  let running = true;
  let lastHousekeeping = 0;
  parentPort?.on('message', (message: MainToActor) => {
    try {
      onMessage(message);
    } catch (err) {
      // A user handler's nodeDied/saveStatus/clear threw: reported, the actor goes on.
      errors.record('actor', message.type, err);
    }
    // A message may have filled the shard (a state loaded) or started a purge: the loop looks
    // again now (gauges, purge pace, how long to sleep), not after a sleep of up to 10 s.
    lastHousekeeping = 0;
    ring.wakeConsumer();
  });
  post({ type: 'ready', tid: ownThreadId() });
  let lastCounters = 0;
  // Once a second: a whole sweep of the shard every 30 s, however large it is.
  const sweepBudget = Math.max(8192, Math.ceil(data.trackerCapacity / 30));
  let nextPurgeAt = 0;
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
      if (nowSeconds - lastCounters >= HANDLER_COUNTERS_EVERY_S) {
        lastCounters = nowSeconds;
        post({ type: 'handler-counters', counters: trackers.map((t, i) => inHandler(i, HandlerMethod.counters, () => ({ ...t.counters?.() }))) });
      }
    }
    let sleepMs = IDLE_WAKE_MS;
    if (actor.purging) {
      const now = performance.now();
      if (now >= nextPurgeAt) {
        actor.purgeStep(PURGE_SLICE_SLOTS);
        nextPurgeAt = now + PURGE_PACE_MS;
      }
      sleepMs = PURGE_PACE_MS;
    }
    if (batches === BATCHES_BEFORE_YIELD) {
      await yieldToEventLoop();
      continue;
    }
    // Asked only before sleeping, when the frames just decided are in the shards' sizes.
    if (sleepMs === IDLE_WAKE_MS && actor.held === 0 && actor.trackedNow() === 0) sleepMs = EMPTY_WAKE_MS;
    const wait = ring.waitAsync(sleepMs);
    if (wait) await wait;
  }
  runInterfaceHook(handlers, 'interfaceDeleted', info, errors);
  post({ type: 'stopped' });
  parentPort?.close();
}

/** Live entries of one shard (idle past the timeout ones are already forgotten), up to `limit`. */
function listShard(tracker: Tracker, idleSeconds: number, nowSeconds: number, limit: number): ShardListing {
  const entries = new Uint32Array(Math.min(limit, tracker.size) * SNAPSHOT_WORDS);
  let total = 0;
  let at = 0;
  tracker.saveStatus((keyLo, keyHi, owner, lastSeen) => {
    if (((nowSeconds - lastSeen) | 0) > idleSeconds) return;
    total++;
    if (at + SNAPSHOT_WORDS > entries.length) return;
    entries[at] = keyLo;
    entries[at + 1] = keyHi;
    entries[at + 2] = owner;
    entries[at + 3] = lastSeen;
    at += SNAPSHOT_WORDS;
  });
  return { total, entries: entries.subarray(0, at) };
}

run(workerData as ActorData).catch((err: unknown) => {
  post({ type: 'error', error: serializeError(err, `actor ${(workerData as ActorData).index}`) });
});
