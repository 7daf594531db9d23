/**
 * The main thread's handle on the datapath threads: it allocates the shared memory (actor
 * rings, tracker shards, the published view, counters), starts the dispatcher and the actors,
 * publishes views, broadcasts node deaths, reads counters, and stops everything.
 */

import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { ElectionName } from '../cluster/election.js';
import { lnlbError, reviveError, serializeError, type LnlbError } from '../errors.js';
import type { ProtocolHandler } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { ByteRing } from '../shm/byte-ring.js';
import { ViewWriter } from '../shm/view.js';
import { ActorCounter, CounterBlock, DispatcherCounter } from './counters.js';
import { MAX_CAUSES } from './handler-errors.js';
import type { ActorData, DispatcherData, HandlerSetup, MainToActor, ShardListing, WorkerToMain } from './messages.js';
import { workerExecArgv } from './exec-argv.js';

export interface DatapathOptions {
  dataFd: number;
  tapFd: number;
  vnetHdr: boolean;
  actors: number;
  vip: number;
  clusterMac: Uint8Array;
  ownMac: Uint8Array;
  /** Multicast mode: the TAP's MAC, written over kept frames' destination. */
  tapMac?: Uint8Array | undefined;
  /** Bytes per actor ring (power of two). 8 MiB holds ~100 full GSO frames or ~80k small ones. */
  ringBytes?: number;
  /** Flows this node must be able to track per handler (all shards together); the default 1M. */
  tableEntries?: number;
  /** The handlers, default (protocol 0) included, in the order the dispatcher indexes them. */
  handlers: HandlerSetup[];
  /** `--rule` texts (already checked by compileRules on the main thread). */
  rules: readonly string[];
  interfaceName: string;
  election: ElectionName;
  /** deriveElectionKey of the cluster key; undefined: no key (the insecure opt-out), the unkeyed election hash. */
  electionKey?: Uint32Array | undefined;
  /** A thread failed: the error it raised, with its code (LNLB_ERR_WORKER_FAILED when it had none). */
  onError(err: LnlbError): void;
  /** The bound device went down (the datapath resumes by itself when it is back). */
  onLinkDown?(): void;
  /** A handler threw in a datapath thread (once per cause). */
  onHandlerError?(report: { handler: string; method: string; message: string }): void;
}

/** What loading a state into every actor came to. */
export interface StateLoadResult {
  loaded: number;
  skipped: number;
  clockShift: number;
  /** Set when some actor refused it: every actor's shard was rolled back. */
  refused?: string;
}

export interface DatapathCounters {
  framesSeen: number;
  framesAccepted: number;
  arpRequests: number;
  arpReplies: number;
  trackedEntries: number;
  /** Tracked flows evicted to make room (table full), all actors together. */
  evictions: number;
  kernelDrops: number;
  dropped: Record<string, number>;
}

/** One actor's figures (its counter row and its input ring), for per-actor metrics. */
export interface ActorCounters {
  framesIn: number;
  accepted: number;
  /** Frames put on hold while a view change was pending. */
  held: number;
  /** Held frames dropped because the hold queue was full. */
  holdOverflows: number;
  trackedEntries: number;
  evictions: number;
  /** The dispatcher → actor ring: bytes in use now (a snapshot), its size, and records refused because it was full. */
  ringBytesUsed: number;
  ringBytesCapacity: number;
  ringOverflows: number;
}

const STOP_TIMEOUT_MS = 3000;

/**
 * Which actor of this node takes a key: seeded per process, so a sender cannot aim its
 * sources at one actor thread. Only this process's threads must agree on it.
 */
const ACTOR_SEED = randomBytes(4).readUInt32LE(0);

export const DEFAULT_TABLE_ENTRIES = 1 << 20;

/**
 * Slots per actor shard so that `entries` flows fit below the tables' 7/8 load limit (tables
 * take any size, so nothing is rounded up to a power of two: 16 B / (7/8) ≈ 18.3 B per flow).
 */
export function shardSlots(entries: number, actors: number): number {
  return Math.max(1024, Math.ceil((entries * 8) / 7 / actors) + 1);
}

function waitFor(worker: Worker, type: WorkerToMain['type'], timeoutMs: number): Promise<WorkerToMain> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(lnlbError('LNLB_ERR_WORKER_FAILED', `a datapath thread did not report '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: WorkerToMain): void => {
      if (m.type === type) {
        cleanup();
        resolve(m);
      } else if (m.type === 'error') {
        cleanup();
        reject(reviveError(m.error, 'LNLB_ERR_WORKER_FAILED'));
      }
    };
    const onExit = (code: number): void => {
      cleanup();
      if (type === 'stopped') resolve({ type: 'stopped' });
      else reject(lnlbError('LNLB_ERR_WORKER_FAILED', `a datapath thread exited with code ${code} before '${type}'`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('exit', onExit);
  });
}

export class Datapath {
  readonly counters: CounterBlock;
  readonly actorCount: number;
  /** The handlers as loaded on the main thread, in handler order. */
  readonly handlers: ProtocolHandler[] = [];
  #nextRequest = 1;
  /** The actors' input rings, for whoever must wake them (the control plane, on a new view). */
  readonly ringMemories: SharedArrayBuffer[] = [];
  /** The published view the actors read; written by the control plane. */
  readonly viewMemory: SharedArrayBuffer;
  readonly #control: Int32Array;
  readonly #dispatcher: Worker;
  readonly #actors: Worker[];
  /** Our handles on the actors' input rings, only to wake them when the view changes. */
  readonly #rings: ByteRing[];
  readonly #actorHandlerCounters: Record<string, number>[][] = [];
  readonly #reportedCauses = new Set<string>();
  #stopping = false;

  private constructor(counters: CounterBlock, viewMemory: SharedArrayBuffer, control: Int32Array, dispatcher: Worker, actors: Worker[], rings: ByteRing[]) {
    this.counters = counters;
    this.actorCount = actors.length;
    this.viewMemory = viewMemory;
    this.#control = control;
    this.#dispatcher = dispatcher;
    this.#actors = actors;
    this.#rings = rings;
  }

  static async start(options: DatapathOptions): Promise<Datapath> {
    const ringBytes = options.ringBytes ?? 8 << 20;
    const capacity = shardSlots(options.tableEntries ?? DEFAULT_TABLE_ENTRIES, options.actors);
    // Loaded here first: a broken handler is refused before any thread or device exists.
    const handlers: ProtocolHandler[] = [];
    for (const setup of options.handlers) handlers.push(await loadHandler(setup.spec));
    const counterMemory = CounterBlock.allocate(1 + options.actors);
    const viewMemory = ViewWriter.allocate();
    const controlMemory = new SharedArrayBuffer(4);
    const rings = Array.from({ length: options.actors }, () => ByteRing.allocate(ringBytes));
    const actors: Worker[] = [];
    const ready: Promise<WorkerToMain>[] = [];
    const onError = (err: Error): void => options.onError(reviveError(serializeError(err, 'datapath thread'), 'LNLB_ERR_WORKER_FAILED'));
    for (let index = 0; index < options.actors; index++) {
      const data: ActorData = {
        role: 'actor',
        index,
        actorCount: options.actors,
        tapFd: options.tapFd,
        ring: rings[index]!,
        trackers: handlers.map((h) => new SharedArrayBuffer(h.trackerBytes(capacity))),
        trackerCapacity: capacity,
        handlers: options.handlers,
        rules: options.rules,
        interfaceName: options.interfaceName,
        vip: options.vip,
        election: options.election,
        view: viewMemory,
        counters: counterMemory,
        actorSeed: ACTOR_SEED,
        electionKey: options.electionKey,
      };
      const worker = new Worker(new URL('./actor.js', import.meta.url), { execArgv: workerExecArgv(), workerData: data, name: `lnlb-actor-${index}` });
      worker.on('error', onError);
      ready.push(waitFor(worker, 'ready', 10_000));
      actors.push(worker);
    }
    const dispatcherData: DispatcherData = {
      role: 'dispatcher',
      dataFd: options.dataFd,
      vnetHdr: options.vnetHdr,
      actorRings: rings,
      counters: counterMemory,
      control: controlMemory,
      vip: options.vip,
      clusterMac: options.clusterMac,
      ownMac: options.ownMac,
      tapMac: options.tapMac,
      interfaceName: options.interfaceName,
      handlers: options.handlers,
      rules: options.rules,
      actorSeed: ACTOR_SEED,
    };
    const dispatcher = new Worker(new URL('./dispatcher.js', import.meta.url), { execArgv: workerExecArgv(), workerData: dispatcherData, name: 'lnlb-dispatcher' });
    dispatcher.on('error', onError);
    ready.push(waitFor(dispatcher, 'ready', 10_000));
    const datapath = new Datapath(new CounterBlock(counterMemory), viewMemory, new Int32Array(controlMemory), dispatcher, actors, rings.map((r) => new ByteRing(r)));
    datapath.handlers.push(...handlers);
    datapath.ringMemories.push(...rings);
    try {
      await Promise.all(ready);
    } catch (err) {
      await datapath.stop();
      throw err;
    }
    actors.forEach((actor, index) => {
      actor.on('message', (m: WorkerToMain) => {
        if (m.type === 'handler-counters') datapath.#actorHandlerCounters[index] = m.counters;
      });
    });
    for (const worker of [dispatcher, ...actors]) {
      worker.on('message', (m: WorkerToMain) => {
        if (m.type === 'error') options.onError(reviveError(m.error, 'LNLB_ERR_WORKER_FAILED'));
        else if (m.type === 'link-down') options.onLinkDown?.();
        else if (m.type === 'handler-error') {
          // Each thread reports a cause once; the same cause from several actors is one.
          const cause = `${m.handler}\u0000${m.method}\u0000${m.message}`;
          if (!datapath.#reportedCauses.has(cause) && datapath.#reportedCauses.size < MAX_CAUSES) {
            datapath.#reportedCauses.add(cause);
            options.onHandlerError?.(m);
          }
        }
      });
      worker.on('exit', (code) => {
        if (!datapath.#stopping) options.onError(lnlbError('LNLB_ERR_WORKER_FAILED', `a datapath thread exited unexpectedly (code ${code})`));
      });
    }
    return datapath;
  }

  /**
   * Loads a tracking state of one handler into every actor's shard (each keeps its own keys),
   * all or nothing: if any actor refuses it, the others roll their shards back.
   */
  async loadState(from: string, handlerIndex: number, state: Uint8Array, ownerIds: Record<string, number>): Promise<StateLoadResult> {
    const requestId = this.#nextRequest++;
    const replies = await this.#ask(
      { type: 'load-state', requestId, handlerIndex, state, ownerIds, from },
      (m): m is Extract<WorkerToMain, { type: 'state-loaded' | 'state-refused' }> => (m.type === 'state-loaded' || m.type === 'state-refused') && m.requestId === requestId,
      60_000,
    );
    const refused = replies.find((r) => r.type === 'state-refused');
    if (refused !== undefined && refused.type === 'state-refused') {
      this.#broadcast({ type: 'rollback-state', requestId });
      return { loaded: 0, skipped: 0, clockShift: 0, refused: refused.message };
    }
    this.#broadcast({ type: 'commit-state', requestId });
    let loaded = 0;
    let skipped = 0;
    let clockShift = 0;
    for (const r of replies) {
      if (r.type !== 'state-loaded') continue;
      loaded += r.entries;
      skipped += r.skipped;
      clockShift = r.clockShift;
    }
    return { loaded, skipped, clockShift };
  }

  /** Per handler, every actor's shard as packed entries, each taken between two batches. */
  async snapshot(): Promise<Uint32Array[][]> {
    const requestId = this.#nextRequest++;
    const replies = await this.#ask({ type: 'snapshot', requestId }, (m): m is Extract<WorkerToMain, { type: 'snapshot' }> => m.type === 'snapshot' && m.requestId === requestId, 30_000);
    return this.handlers.map((_, h) => replies.map((r) => r.shards[h] ?? new Uint32Array(0)));
  }

  /** Per handler, every actor's listing (for `lnlbctl conntrack`). */
  async list(limit: number, nowSeconds: number): Promise<ShardListing[][]> {
    const requestId = this.#nextRequest++;
    const replies = await this.#ask({ type: 'list', requestId, limit, nowSeconds }, (m): m is Extract<WorkerToMain, { type: 'list' }> => m.type === 'list' && m.requestId === requestId, 10_000);
    return this.handlers.map((_, h) => replies.map((r) => r.handlers[h] ?? { total: 0, entries: new Uint32Array(0) }));
  }

  /** The trackers' own counters per handler, summed over the actors. */
  readHandlerCounters(): Record<string, number>[] {
    return this.handlers.map((_, h) => {
      const sum: Record<string, number> = {};
      for (const perActor of this.#actorHandlerCounters) {
        for (const [name, value] of Object.entries(perActor?.[h] ?? {})) if (typeof value === 'number') sum[name] = (sum[name] ?? 0) + value;
      }
      return sum;
    });
  }

  #broadcast(message: MainToActor): void {
    for (const actor of this.#actors) actor.postMessage(message);
  }

  /** Sends `message` to every actor and collects one matching reply from each. */
  #ask<R extends WorkerToMain>(message: MainToActor, matches: (m: WorkerToMain) => m is R, timeoutMs: number): Promise<R[]> {
    return new Promise((resolve, reject) => {
      const replies: R[] = [];
      const listeners = this.#actors.map((actor) => {
        const listener = (m: WorkerToMain): void => {
          if (!matches(m)) return;
          actor.off('message', listener);
          replies.push(m);
          if (replies.length === this.#actors.length) {
            clearTimeout(timer);
            resolve(replies);
          }
        };
        actor.on('message', listener);
        return listener;
      });
      const timer = setTimeout(() => {
        this.#actors.forEach((actor, i) => actor.off('message', listeners[i]!));
        reject(lnlbError('LNLB_ERR_WORKER_FAILED', `${replies.length} of ${this.#actors.length} actors answered '${message.type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#broadcast(message);
      // An idle actor sleeps on its ring for up to a second: wake it to answer at once.
      for (const ring of this.#rings) ring.wakeConsumer();
    });
  }

  /** Every actor forgets its whole tracking state (this node was declared dead and rejoins). */
  resetTracking(): void {
    const message: MainToActor = { type: 'reset' };
    for (const actor of this.#actors) actor.postMessage(message);
  }

  /** Tells every actor to purge a dead node's entries. The view change already re-homed them. */
  nodeDied(id: number): void {
    const message: MainToActor = { type: 'node-died', id };
    for (const actor of this.#actors) actor.postMessage(message);
  }

  readCounters(): DatapathCounters {
    const c = this.counters;
    const actors = (counter: number): number => c.sum(counter, 1, 1 + this.actorCount);
    const dispatcher = (counter: number): number => c.sum(counter, 0, 1);
    return {
      framesSeen: dispatcher(DispatcherCounter.framesSeen),
      framesAccepted: actors(ActorCounter.accepted),
      arpRequests: dispatcher(DispatcherCounter.arpRequests),
      arpReplies: dispatcher(DispatcherCounter.arpReplies),
      trackedEntries: actors(ActorCounter.trackedEntries),
      evictions: actors(ActorCounter.evictions),
      kernelDrops: dispatcher(DispatcherCounter.kernelDrops),
      dropped: {
        notConverged: actors(ActorCounter.dropNotConverged),
        otherNode: actors(ActorCounter.dropOtherNode),
        tapWrite: actors(ActorCounter.dropTapWrite),
        ringFull: dispatcher(DispatcherCounter.dropRingFull),
        holdFull: actors(ActorCounter.dropHoldFull),
        malformed: dispatcher(DispatcherCounter.dropMalformed),
        notIPv4: dispatcher(DispatcherCounter.dropNotIPv4),
        notVip: dispatcher(DispatcherCounter.dropNotVip),
        notClusterMac: dispatcher(DispatcherCounter.dropNotClusterMac),
        truncated: dispatcher(DispatcherCounter.dropTruncated),
        disabledRule: dispatcher(DispatcherCounter.dropDisabledRule),
        handlerError: dispatcher(DispatcherCounter.dropHandlerError) + actors(ActorCounter.dropHandlerError),
        byHandler: actors(ActorCounter.dropByHandler),
        noOwner: actors(ActorCounter.dropNoOwner),
      },
    };
  }

  /** Per actor, in actor order: its counter row and its ring (a few loads from shared memory). */
  readActorCounters(): ActorCounters[] {
    return this.#rings.map((ring, index) => {
      const row = 1 + index;
      const at = (counter: number): number => this.counters.sum(counter, row, row + 1);
      return {
        framesIn: at(ActorCounter.framesIn),
        accepted: at(ActorCounter.accepted),
        held: at(ActorCounter.held),
        holdOverflows: at(ActorCounter.dropHoldFull),
        trackedEntries: at(ActorCounter.trackedEntries),
        evictions: at(ActorCounter.evictions),
        // HEAD then TAIL are loaded one after the other: a consumer racing between them can make it
        // briefly negative, never more than the capacity.
        ringBytesUsed: Math.max(0, ring.usedBytes()),
        ringBytesCapacity: ring.capacity,
        ringOverflows: ring.overflows,
      };
    });
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    Atomics.store(this.#control, 0, 1);
    const stopped = [waitFor(this.#dispatcher, 'stopped', STOP_TIMEOUT_MS)];
    for (const actor of this.#actors) {
      stopped.push(waitFor(actor, 'stopped', STOP_TIMEOUT_MS));
      actor.postMessage({ type: 'stop' } satisfies MainToActor);
    }
    // An idle actor sleeps on its ring for up to a second: wake it to see the stop at once.
    setTimeout(() => {
      for (const ring of this.#rings) ring.wakeConsumer();
    }, 5);
    await Promise.allSettled(stopped);
    await Promise.allSettled([this.#dispatcher, ...this.#actors].map((w) => w.terminate()));
  }
}
