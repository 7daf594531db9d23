/**
 * An actor, whichever thread it runs in: its handlers and their shards (ActorCore), the
 * requests it answers between batches (ActorApi: snapshot, load, scan, list) and the
 * broadcasts it takes (node died, reset, stop), and its
 * housekeeping (expiry, a dead node's paced purge, the handlers' counters). An actor thread
 * (actor.ts, --workers N ≥ 2) feeds it from its ring; the dispatcher thread is the actor
 * itself under --workers 1 (dispatcher.ts) and feeds it frame by frame.
 *
 * Control messages run between batches, on the one thread that writes the shard: a snapshot
 * is consistent per shard, and a load never races a frame.
 */

import { formatIPv6 } from '../net/ipv6.js';
import { parentPort } from 'node:worker_threads';
import { createElection } from '../cluster/election.js';
import { actorForKey } from '../cluster/hash.js';
import { compileRules } from '../cluster/port-rules.js';
import type { InterfaceInfo, ProtocolHandler, Tracker } from '../handlers/handler.js';
import { loadTrackerStateInto, mergeTrackerStateInto, restoreTracker, SNAPSHOT_WORDS, snapshotTracker } from '../handlers/tracker-state.js';
import { DrainingBuckets } from '../shm/draining-buckets.js';
import { formatMac } from '../net/ethernet.js';
import type { ByteRing } from '../shm/byte-ring.js';
import { ViewReader } from '../shm/view.js';
import { ActorCore } from './actor-core.js';
import { HandlerErrorLog, runInterfaceHook } from './handler-errors.js';
import type { ActorApi, ActorData, MainToActor, ShardListing, StateAnswer, StateRequest, WorkerToMain } from './messages.js';
import { expose, PolledEndpoint, transfer } from './thread-rpc.js';
import { activeOwnedFlows } from './conntrack-listing.js';
import { TapSink } from './ports.js';
import { ActorCounter, CounterBlock } from './counters.js';
import { handlerCall, HandlerMethod } from './watchdog.js';

/** Longest sleep while the shards track flows: housekeeping (expiry) runs at least this often. */
const IDLE_WAKE_MS = 1000;
/**
 * Longest sleep with nothing tracked, nothing held and nothing to purge: there is nothing to
 * expire, and a frame, a view or a request wakes the actor at once. An idle daemon's actors
 * then wake every 10 s instead of every second.
 */
const EMPTY_WAKE_MS = 10_000;
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

export interface ActorHost {
  readonly core: ActorCore;
  /** The requests' port (ActorApi): poll() between batches, then await settle() if it took one. */
  readonly requests: PolledEndpoint;
  /** False once a 'stop' message came. */
  running: boolean;
  /** A control message from the main thread (a throwing user handler is reported, not fatal). */
  handle(message: MainToActor): void;
  /**
   * Housekeeping due at `nowSeconds` (expiry once a second, the handlers' counters, a purge
   * slice); returns the longest the thread may sleep before calling again.
   */
  tick(nowSeconds: number): number;
  /** The handlers' interfaceDeleted, when the thread stops. */
  close(): void;
}

/** An actor over `handlers` (loaded in this thread); `ring` is its input, or undefined when frames come by decideFrame. */
export function createActorHost(data: ActorData, handlers: ProtocolHandler[], ring: ByteRing | undefined): ActorHost {
  const trackers: Tracker[] = handlers.map((handler, i) =>
    handler.createTracker({ memory: data.trackers[i]!, capacity: data.trackerCapacity, idleTimeoutSeconds: data.handlers[i]!.idleTimeoutSeconds }),
  );
  const info: InterfaceInfo = { name: data.interfaceName, vip: data.vip, ...(data.vip6 === undefined ? {} : { vip6: formatIPv6(data.vip6) }), thread: 'actor', actorIndex: data.index, actorCount: data.actorCount };
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
  const core = new ActorCore({
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

  /** The tracker a state is for; a state for a handler this node lacks is refused. */
  const stateTarget = (request: StateRequest): Tracker => {
    const tracker = trackers[request.handlerIndex];
    if (tracker === undefined) throw new Error(`no handler ${request.handlerIndex} here`);
    return tracker;
  };
  const refusal = (request: StateRequest, err: unknown): StateAnswer => ({ refused: `${handlers[request.handlerIndex]?.name ?? `handler ${request.handlerIndex}`}: ${(err as Error).message}` });
  /** A state's entries on this node's clock and ids, this actor's keys only. */
  const loadOptions = (ownerIds: Record<string, number>): { nowSeconds: number; ownerId(mac: Uint8Array): number | undefined; mine(keyLo: number, keyHi: number): boolean } => ({
    nowSeconds: Math.floor(Date.now() / 1000),
    ownerId: (mac) => ownerIds[formatMac(mac)],
    mine,
  });

  /** The broadcasts: no answer. */
  const onMessage = (message: MainToActor): void => {
    switch (message.type) {
      case 'stop':
        host.running = false;
        return;
      case 'node-died':
        core.nodeDied(message.id); // purged between batches (tick)
        return;
      case 'reset':
        core.reset();
        return;
    }
  };

  /** The requests (thread-rpc.ts): a state refused is an answer; a user handler that throws is reported and fails the call. */
  const api: ActorApi = {
    loadState(request) {
      // LNLB's load_status: this shard is cleared and refilled, all or nothing.
      try {
        const tracker = stateTarget(request);
        const result = inHandler(request.handlerIndex, HandlerMethod.loadStatus, () => loadTrackerStateInto(request.state, tracker, loadOptions(request.ownerIds)));
        let byHandler = previous.get(request.requestId);
        if (byHandler === undefined) previous.set(request.requestId, (byHandler = new Map()));
        byHandler.set(request.handlerIndex, result.previous);
        return { entries: result.loaded, skipped: result.skippedUnknownOwner, clockShift: result.clockShiftSeconds };
      } catch (err) {
        return refusal(request, err);
      }
    },
    commitState(requestId) {
      previous.delete(requestId);
    },
    rollbackState(requestId) {
      for (const [handlerIndex, snapshot] of previous.get(requestId) ?? []) inHandler(handlerIndex, HandlerMethod.loadStatus, () => restoreTracker(trackers[handlerIndex]!, snapshot));
      previous.delete(requestId);
    },
    snapshot() {
      const shards = trackers.map((tracker, i) => inHandler(i, HandlerMethod.saveStatus, () => snapshotTracker(tracker)));
      return transfer(shards, shards.map((s) => s.buffer as ArrayBuffer));
    },
    scanBuckets(targetOf) {
      return core.scanBuckets(targetOf);
    },
    mergeState(request) {
      // A handover: the entries join the live shard (no clear, nothing to roll back).
      try {
        const tracker = stateTarget(request);
        const result = inHandler(request.handlerIndex, HandlerMethod.loadStatus, () => mergeTrackerStateInto(request.state, tracker, loadOptions(request.ownerIds)));
        return { entries: result.merged, skipped: result.skippedUnknownOwner, clockShift: 0 };
      } catch (err) {
        return refusal(request, err);
      }
    },
    activeOwned(ownerIds, nowSeconds, idleSeconds) {
      return trackers.reduce((n, tracker, i) => n + inHandler(i, HandlerMethod.saveStatus, () => activeOwnedFlows((visit) => tracker.saveStatus(visit), ownerIds, nowSeconds, idleSeconds)), 0);
    },
    list(limit, nowSeconds) {
      return trackers.map((tracker, i) => inHandler(i, HandlerMethod.saveStatus, () => listShard(tracker, data.handlers[i]!.idleTimeoutSeconds, nowSeconds, limit)));
    },
  };
  /** Each request: a user handler's throw is reported (once per cause) and fails the call; the next tick looks at the shards again. */
  const guarded = Object.fromEntries(
    Object.entries(api).map(([name, method]) => [
      name,
      (...args: unknown[]): unknown => {
        lastHousekeeping = 0;
        try {
          return (method as (...a: unknown[]) => unknown)(...args);
        } catch (err) {
          errors.record('actor', name, err);
          throw err;
        }
      },
    ]),
  ) as unknown as ActorApi;
  const requests = new PolledEndpoint(data.requests);
  expose(guarded, requests);
  let lastHousekeeping = 0;
  let lastCounters = 0;
  // Once a second: a whole sweep of the shard every 30 s, however large it is.
  const sweepBudget = Math.max(8192, Math.ceil(data.trackerCapacity / 30));
  let nextPurgeAt = 0;
  const host: ActorHost = {
    core,
    requests,
    running: true,
    handle(message) {
      try {
        onMessage(message);
      } catch (err) {
        // A user handler's nodeDied/saveStatus/clear threw: reported, the actor goes on.
        errors.record('actor', message.type, err);
      }
      // A message may have filled the shard (a state loaded) or started a purge: the next
      // tick looks again now (gauges, purge pace, how long to sleep), not after up to 10 s.
      lastHousekeeping = 0;
    },
    tick(nowSeconds) {
      if (nowSeconds !== lastHousekeeping) {
        core.housekeeping(nowSeconds, sweepBudget);
        lastHousekeeping = nowSeconds;
        if (nowSeconds - lastCounters >= HANDLER_COUNTERS_EVERY_S) {
          lastCounters = nowSeconds;
          post({ type: 'handler-counters', counters: trackers.map((t, i) => inHandler(i, HandlerMethod.counters, () => ({ ...t.counters?.() }))) });
        }
      }
      if (core.purging) {
        const now = performance.now();
        if (now >= nextPurgeAt) {
          core.purgeStep(PURGE_SLICE_SLOTS);
          nextPurgeAt = now + PURGE_PACE_MS;
        }
        return PURGE_PACE_MS;
      }
      // Asked only before sleeping, when the frames just decided are in the shards' sizes.
      return core.held === 0 && core.trackedNow() === 0 ? EMPTY_WAKE_MS : IDLE_WAKE_MS;
    },
    close() {
      requests.close();
      runInterfaceHook(handlers, 'interfaceDeleted', info, errors);
    },
  };
  return host;
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

