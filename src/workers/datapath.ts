/**
 * The main thread's handle on the datapath threads: it allocates the shared memory (actor
 * rings, tracker shards, the published view, counters), starts the dispatcher and the actors,
 * publishes views, broadcasts node deaths, reads counters, and stops everything.
 */

import { Worker } from 'node:worker_threads';
import type { ElectionName } from '../cluster/election.js';
import { lnlbError } from '../errors.js';
import { sourceIpHandler, DEFAULT_IDLE_TIMEOUT_SECONDS } from '../handlers/default.js';
import { ByteRing } from '../shm/byte-ring.js';
import { ViewWriter } from '../shm/view.js';
import { ActorCounter, CounterBlock, DispatcherCounter } from './counters.js';
import type { ActorData, DispatcherData, MainToActor, WorkerToMain } from './messages.js';

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
  /** Flows this node must be able to track (all shards together); the default 1M. */
  tableEntries?: number;
  idleTimeoutSeconds?: number;
  election: ElectionName;
  onError(message: string): void;
  /** The bound device went down (the datapath resumes by itself when it is back). */
  onLinkDown?(): void;
  /** An actor loaded (or refused) its shard of a broadcast state. */
  onStateLoaded?(result: Extract<WorkerToMain, { type: 'state-loaded' | 'state-refused' }>): void;
}

export interface DatapathCounters {
  framesSeen: number;
  framesAccepted: number;
  arpRequests: number;
  arpReplies: number;
  trackedEntries: number;
  kernelDrops: number;
  dropped: Record<string, number>;
}

const STOP_TIMEOUT_MS = 3000;

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
        reject(lnlbError('LNLB_ERR_WORKER_FAILED', m.message));
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
  /** The actors' tracking shards (default handler), in actor order, for state transfer. */
  readonly trackerMemories: SharedArrayBuffer[] = [];
  /** The actors' input rings, for whoever must wake them (the control plane, on a new view). */
  readonly ringMemories: SharedArrayBuffer[] = [];
  /** The published view the actors read; written by the control plane. */
  readonly viewMemory: SharedArrayBuffer;
  readonly #control: Int32Array;
  readonly #dispatcher: Worker;
  readonly #actors: Worker[];
  /** Our handles on the actors' input rings, only to wake them when the view changes. */
  readonly #rings: ByteRing[];
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
    const counterMemory = CounterBlock.allocate(1 + options.actors);
    const viewMemory = ViewWriter.allocate();
    const controlMemory = new SharedArrayBuffer(4);
    const rings = Array.from({ length: options.actors }, () => ByteRing.allocate(ringBytes));
    const actors: Worker[] = [];
    const trackerMemories: SharedArrayBuffer[] = [];
    const ready: Promise<WorkerToMain>[] = [];
    const onError = (err: Error): void => options.onError(err.message);
    for (let index = 0; index < options.actors; index++) {
      const trackerMemory = new SharedArrayBuffer(sourceIpHandler.trackerBytes(capacity));
      trackerMemories.push(trackerMemory);
      const data: ActorData = {
        role: 'actor',
        index,
        tapFd: options.tapFd,
        ring: rings[index]!,
        tracker: trackerMemory,
        trackerCapacity: capacity,
        idleTimeoutSeconds: options.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS,
        election: options.election,
        view: viewMemory,
        counters: counterMemory,
      };
      const worker = new Worker(new URL('./actor.js', import.meta.url), { workerData: data, name: `lnlb-actor-${index}` });
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
    };
    const dispatcher = new Worker(new URL('./dispatcher.js', import.meta.url), { workerData: dispatcherData, name: 'lnlb-dispatcher' });
    dispatcher.on('error', onError);
    ready.push(waitFor(dispatcher, 'ready', 10_000));
    const datapath = new Datapath(new CounterBlock(counterMemory), viewMemory, new Int32Array(controlMemory), dispatcher, actors, rings.map((r) => new ByteRing(r)));
    datapath.trackerMemories.push(...trackerMemories);
    datapath.ringMemories.push(...rings);
    try {
      await Promise.all(ready);
    } catch (err) {
      await datapath.stop();
      throw err;
    }
    for (const worker of [dispatcher, ...actors]) {
      worker.on('message', (m: WorkerToMain) => {
        if (m.type === 'error') options.onError(m.message);
        else if (m.type === 'link-down') options.onLinkDown?.();
        else if (m.type === 'state-loaded' || m.type === 'state-refused') options.onStateLoaded?.(m);
      });
      worker.on('exit', (code) => {
        if (!datapath.#stopping) options.onError(`a datapath thread exited unexpectedly (code ${code})`);
      });
    }
    return datapath;
  }

  /** A broadcast tracking state (resync): every actor loads its own shard of it. */
  loadState(from: string, state: Uint8Array, ownerIds: Record<string, number>): void {
    const message: MainToActor = { type: 'load-state', from, state, ownerIds, actorCount: this.actorCount };
    for (const actor of this.#actors) actor.postMessage(message);
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
      },
    };
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
