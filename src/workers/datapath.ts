/**
 * The main thread's handle on the datapath threads: it allocates the shared memory (actor
 * rings, tracker shards, the published view, counters), starts the dispatcher and the actors,
 * publishes views, broadcasts node deaths, reads counters, and stops everything. It also runs
 * the watchdog (watchdog.ts): a thread stuck in handler code is terminated and reported.
 */

import { randomBytes } from 'node:crypto';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ElectionName } from '../cluster/election.js';
import { lnlbError, reviveError, serializeError, type LnlbError } from '../errors.js';
import type { ProtocolHandler } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { selfTestInWorker } from './handler-self-test.js';
import { describeHandlerCall, Watchdog, watchdogIntervalMs, type StuckThread, type ThreadProgress } from './watchdog.js';
import { ByteRing } from '../shm/byte-ring.js';
import { ViewWriter } from '../shm/view.js';
import { SourceBook } from '../shm/source-book.js';
import { ActorCounter, CounterBlock, DispatcherCounter } from './counters.js';
import { MAX_CAUSES } from './handler-errors.js';
import type { ActorApi, ActorData, DispatcherData, EgressData, HandlerSetup, MainToActor, ShardListing, StateAnswer, StateRequest, WorkerToMain } from './messages.js';
import { connectWaking, withDeadline, type Remote } from './thread-rpc.js';
import { THREAD_START_LIMIT_MS, workerExecArgv } from './exec-argv.js';
import { DRAINING_MASK_WORDS, DrainingBuckets } from '../shm/draining-buckets.js';
import * as port from '../port/native.js';
import { FILTER_WHY_TEXT, FilterWhy, type FilterWhyCode } from './dispatcher-filter.js';

export interface DatapathOptions {
  dataFd: number;
  tapFd: number;
  vnetHdr: boolean;
  actors: number;
  /** The IPv4 VIP (u32), 0: none. */
  vip: number;
  /** The IPv6 VIP (16 bytes), undefined: none. */
  vip6?: Uint8Array | undefined;
  /** --vlan: the trunk VLAN (0: untagged), and the socket the host's frames leave by, tagged (egress.ts). */
  vlan?: number;
  egressFd?: number;
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
  /** `handlers` already through checkHandlers (the interface checks them before it creates a device); else start checks them. */
  checkedHandlers?: ProtocolHandler[];
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
  /** The kernel refused a filter program for the data socket (once; the plain filter went on instead). */
  onKernelFilterFailed?(message: string): void;
  /** A handler threw in a datapath thread (once per cause). */
  onHandlerError?(report: { handler: string; method: string; message: string }): void;
  /**
   * The watchdog's limit (watchdogLimitMs()): a thread that makes no progress this long while
   * it has work or is inside handler code is terminated and reported to onStuck. Undefined: no
   * watchdog.
   */
  watchdogLimitMs?: number;
  /** A datapath thread was found stuck and terminated (once: the datapath then stays as it is). */
  onStuck?(report: StuckReport): void;
}

/** What the watchdog found. */
export interface StuckReport {
  /** `actor <k>` or `dispatcher`. */
  thread: string;
  /** The handler it was inside, with its protocol and the method; undefined: not in handler code (its ring did not move). */
  handler: { name: string; protocol: number; method: string } | undefined;
  stalledMs: number;
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
  /** IPv6 frames for the VIP (of framesSeen). */
  framesIPv6: number;
  /** --vlan: neighbour answers handed to the host, and the host's frames put on the trunk (egress.ts) or refused. */
  vlan: { neighbourToHost: number; egressFrames: number; egressDrops: number };
  framesAccepted: number;
  arpRequests: number;
  arpReplies: number;
  /** IPv6 Neighbour Solicitations read, and advertisements of the VIP sent (the IPv6 counterpart of the two above). */
  ndpSolicitations: number;
  ndpAdvertisements: number;
  trackedEntries: number;
  /** Tracked flows evicted to make room (table full), all actors together. */
  evictions: number;
  kernelDrops: number;
  /** The data socket's kernel filter (dispatcher-filter.ts). */
  kernelFilter: KernelFilterCounters;
  /** HEARTBEATs announcing a weight seen in the data stream, and the new flows held after one until the control plane had read it (--workers 1). */
  weightAnnouncements: { seen: number; heldFlows: number };
  dropped: Record<string, number>;
}

export interface KernelFilterCounters {
  /** 'buckets': the kernel passes only the buckets below; 'plain': every frame to the cluster MAC. */
  program: 'buckets' | 'plain';
  /** Why, in words (FILTER_WHY_TEXT). */
  why: string;
  /** Buckets it passes, of 1024. */
  passBuckets: number;
  /** Programs attached, and refused by the kernel, since the start. */
  swaps: number;
  failures: number;
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
  /** Wall-clock ms (epoch) when this actor last took a view with fewer members (a death, a leave), and of the first new flow it took after it (0: none yet). */
  shrinkAppliedAt: number;
  firstTakenAfterShrinkAt: number;
}

const STOP_TIMEOUT_MS = 3000;

/**
 * Which actor of this node takes a key: seeded per process, so a sender cannot aim its
 * sources at one actor thread. Only this process's threads must agree on it.
 */
const ACTOR_SEED = randomBytes(4).readUInt32LE(0);

export const DEFAULT_TABLE_ENTRIES = 1 << 20;

/**
 * The handler modules checked before any datapath thread exists (the interface does it before
 * it creates its TAP): every module's self-test in a thread of its own with a time limit (a
 * method that never returns is refused, not a hung start), then loaded here for its name, sizes
 * and describeKey; --election bucket needs each to find a flow's bucket from its key.
 */
export async function checkHandlers(setups: readonly HandlerSetup[], election: ElectionName): Promise<ProtocolHandler[]> {
  await Promise.all(setups.map((setup) => selfTestInWorker(setup.spec)));
  const handlers: ProtocolHandler[] = [];
  for (const setup of setups) handlers.push(await loadHandler(setup.spec, { smokeTest: false }));
  const originless = handlers.find((h) => typeof h.keyOrigin !== 'function');
  if (election === 'bucket' && originless !== undefined) {
    throw lnlbError('LNLB_ERR_HANDLER_INVALID', `handler ${originless.name} has no keyOrigin(keyLo, keyHi): --election bucket hands each bucket's tracked flows to its new owner and must find a flow's bucket from its key; add keyOrigin to the handler (docs/handlers.md) or use another --election`);
  }
  return handlers;
}

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
  /** Names a state load in its commit or rollback. */
  #nextRequest = 1;
  /** The actors' input rings, for whoever must wake them (the control plane, on a new view). */
  readonly ringMemories: SharedArrayBuffer[] = [];
  /** The actors' draining buckets (--election bucket). */
  #draining: DrainingBuckets | undefined;
  /** Its memory, for the control thread (a node's heartbeats announce what it drains). */
  drainingMemory: SharedArrayBuffer | undefined;
  /** The dispatcher's and the actors' kernel thread ids (lnlbd sets their priority: thread-priority.ts). */
  readonly threadIds: number[] = [];
  /** The published view the actors read; written by the control plane. */
  readonly viewMemory: SharedArrayBuffer;
  /** With an IPv6 VIP: the addresses behind the IPv6 identities lately seen (conntrack shows them). */
  sourceBook: SourceBook | undefined;
  readonly #control: Int32Array;
  readonly #dispatcher: Worker;
  readonly #actors: Worker[];
  /** Our handles on the actors' input rings, only to wake them when the view changes. */
  readonly #rings: ByteRing[];
  readonly #actorHandlerCounters: Record<string, number>[][] = [];
  readonly #reportedCauses = new Set<string>();
  #stopping = false;
  /** Threads that have exited (the watchdog terminated them, or they died). */
  readonly #exited = new Set<Worker>();
  /** Threads the watchdog terminated, and why (for the requests that can no longer be answered). */
  readonly #stuck = new Map<Worker, string>();
  #watchdogTimer: NodeJS.Timeout | undefined;
  /** The data socket, whose reader (the dispatcher) ringWake interrupts. */
  #dataFd = -1;
  /** --vlan: the thread that puts the host's frames from the TAP on the trunk, tagged. */
  #egress: Worker | undefined;
  /** --workers 1: the dispatcher thread is the actor; #actors is [the dispatcher], #rings is empty. */
  readonly #direct: boolean;
  /** Our ends of the actors' request ports, and the API behind each (thread-rpc.ts). */
  readonly #requestPorts: MessagePort[];
  readonly #remotes: Remote<ActorApi>[];

  private constructor(counters: CounterBlock, viewMemory: SharedArrayBuffer, control: Int32Array, dispatcher: Worker, actors: Worker[], rings: ByteRing[], requestPorts: MessagePort[]) {
    this.counters = counters;
    this.actorCount = actors.length;
    this.#direct = rings.length === 0;
    this.viewMemory = viewMemory;
    this.#control = control;
    this.#dispatcher = dispatcher;
    this.#actors = actors;
    this.#rings = rings;
    this.#requestPorts = requestPorts;
    // Each request wakes its actor, asleep on its ring (or the dispatcher in its poll under --workers 1).
    this.#remotes = requestPorts.map((port, index) => connectWaking<ActorApi>(port, () => this.#wakeActor(index)));
  }

  static async start(options: DatapathOptions): Promise<Datapath> {
    const ringBytes = options.ringBytes ?? 8 << 20;
    const capacity = shardSlots(options.tableEntries ?? DEFAULT_TABLE_ENTRIES, options.actors);
    const handlers = options.checkedHandlers ?? (await checkHandlers(options.handlers, options.election));
    const counterMemory = CounterBlock.allocate(1 + options.actors);
    const viewMemory = ViewWriter.allocate();
    const controlMemory = new SharedArrayBuffer(8);
    const drainingMemory = DrainingBuckets.allocate(options.actors);
    const sourceBookMemory = options.vip6 === undefined ? undefined : SourceBook.allocate();
    // --workers 1: the dispatcher thread is the actor (no ring, no hand-off: dispatcher.ts).
    const direct = options.actors === 1;
    const rings = direct ? [] : Array.from({ length: options.actors }, () => ByteRing.allocate(ringBytes));
    let directActor: ActorData | undefined;
    const actors: Worker[] = [];
    const ready: Promise<WorkerToMain>[] = [];
    const onError = (err: Error): void => options.onError(reviveError(serializeError(err, 'datapath thread'), 'LNLB_ERR_WORKER_FAILED'));
    /** Each actor's request port (ActorApi): the actor's end moves to its thread, ours stays. */
    const requestPorts: MessagePort[] = [];
    for (let index = 0; index < options.actors; index++) {
      const channel = new MessageChannel();
      requestPorts.push(channel.port1);
      const data: ActorData = {
        role: 'actor',
        index,
        actorCount: options.actors,
        tapFd: options.tapFd,
        ...(direct ? {} : { ring: rings[index]! }),
        requests: channel.port2,
        trackers: handlers.map((h) => new SharedArrayBuffer(h.trackerBytes(capacity))),
        trackerCapacity: capacity,
        handlers: options.handlers,
        rules: options.rules,
        interfaceName: options.interfaceName,
        vip: options.vip,
        vip6: options.vip6,
        election: options.election,
        view: viewMemory,
        counters: counterMemory,
        actorSeed: ACTOR_SEED,
        electionKey: options.electionKey,
        draining: drainingMemory,
      };
      if (direct) {
        directActor = data;
        continue;
      }
      const worker = new Worker(new URL('./actor.js', import.meta.url), { execArgv: workerExecArgv(), workerData: data, transferList: [channel.port2], name: `lnlb-actor-${index}` });
      worker.on('error', onError);
      ready.push(waitFor(worker, 'ready', THREAD_START_LIMIT_MS));
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
      vip6: options.vip6,
      clusterMac: options.clusterMac,
      ownMac: options.ownMac,
      tapMac: options.tapMac,
      interfaceName: options.interfaceName,
      handlers: options.handlers,
      rules: options.rules,
      actorSeed: ACTOR_SEED,
      view: viewMemory,
      election: options.election,
      electionKey: options.electionKey,
      draining: drainingMemory,
      sourceBook: sourceBookMemory,
      vlan: options.vlan ?? 0,
      tapFd: options.tapFd,
      ...(directActor === undefined ? {} : { actor: directActor }),
    };
    const dispatcher = new Worker(new URL('./dispatcher.js', import.meta.url), {
      execArgv: workerExecArgv(),
      workerData: dispatcherData,
      transferList: directActor === undefined ? [] : [directActor.requests],
      name: 'lnlb-dispatcher',
    });
    dispatcher.on('error', onError);
    ready.push(waitFor(dispatcher, 'ready', THREAD_START_LIMIT_MS));
    let egress: Worker | undefined;
    if ((options.vlan ?? 0) !== 0 && options.egressFd !== undefined && options.egressFd >= 0) {
      const egressData: EgressData = { role: 'egress', tapFd: options.tapFd, egressFd: options.egressFd, vnetHdr: options.vnetHdr, ownMac: options.ownMac, vlan: options.vlan!, counters: counterMemory };
      egress = new Worker(new URL('./egress.js', import.meta.url), { execArgv: workerExecArgv(), workerData: egressData, name: 'lnlb-egress' });
      egress.on('error', onError);
      ready.push(waitFor(egress, 'ready', THREAD_START_LIMIT_MS));
    }
    // The threads that answer actor requests: the dispatcher itself under --workers 1.
    const datapath = new Datapath(new CounterBlock(counterMemory), viewMemory, new Int32Array(controlMemory), dispatcher, direct ? [dispatcher] : actors, rings.map((r) => new ByteRing(r)), requestPorts);
    datapath.#dataFd = options.dataFd;
    datapath.#egress = egress;
    datapath.handlers.push(...handlers);
    datapath.ringMemories.push(...rings);
    datapath.#draining = new DrainingBuckets(drainingMemory);
    datapath.drainingMemory = drainingMemory;
    datapath.sourceBook = sourceBookMemory === undefined ? undefined : new SourceBook(sourceBookMemory);
    try {
      for (const m of await Promise.all(ready)) if (m.type === 'ready') datapath.threadIds.push(m.tid);
    } catch (err) {
      await datapath.stop();
      throw err;
    }
    datapath.#actors.forEach((actor, index) => {
      actor.on('message', (m: WorkerToMain) => {
        if (m.type === 'handler-counters') datapath.#actorHandlerCounters[index] = m.counters;
      });
    });
    for (const worker of [dispatcher, ...actors, ...(egress === undefined ? [] : [egress])]) {
      worker.on('message', (m: WorkerToMain) => {
        if (m.type === 'error') options.onError(reviveError(m.error, 'LNLB_ERR_WORKER_FAILED'));
        else if (m.type === 'link-down') options.onLinkDown?.();
        else if (m.type === 'kernel-filter-failed') options.onKernelFilterFailed?.(m.message);
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
        datapath.#exited.add(worker);
        if (!datapath.#stopping && !datapath.#stuck.has(worker)) options.onError(lnlbError('LNLB_ERR_WORKER_FAILED', `a datapath thread exited unexpectedly (code ${code})`));
      });
    }
    if (options.watchdogLimitMs !== undefined) datapath.#startWatchdog(options.watchdogLimitMs, options.onStuck ?? ((): void => undefined));
    return datapath;
  }

  /** Threads in counter-row order: the dispatcher (row 0), then the actors. */
  #threads(): Worker[] {
    return [this.#dispatcher, ...this.#actors];
  }

  #startWatchdog(limitMs: number, onStuck: (report: StuckReport) => void): void {
    const watchdog = new Watchdog(limitMs);
    const c = this.counters;
    const timer = setInterval(() => {
      const progress: ThreadProgress[] = this.#threads().map((_, row) =>
        row === 0
          ? { beat: c.sum(DispatcherCounter.beat, 0, 1), call: c.sum(DispatcherCounter.inHandler, 0, 1), queuedBytes: 0 }
          : { beat: c.sum(ActorCounter.beat, row, row + 1), call: c.sum(ActorCounter.inHandler, row, row + 1), queuedBytes: this.#rings[row - 1]?.usedBytes() ?? 0 },
      );
      const stuck = watchdog.look(performance.now(), progress)[0];
      if (stuck === undefined) return;
      // One is enough: the interface fails as a whole and stays as it is until restarted.
      clearInterval(timer);
      onStuck(this.#terminateStuck(stuck));
    }, watchdogIntervalMs(limitMs));
    timer.unref();
    this.#watchdogTimer = timer;
  }

  #terminateStuck(stuck: StuckThread): StuckReport {
    const worker = this.#threads()[stuck.thread]!;
    const thread = stuck.thread === 0 ? 'dispatcher' : `actor ${stuck.thread - 1}`;
    const call = describeHandlerCall(stuck.call);
    const handler = call === undefined ? undefined : this.handlers[call.handlerIndex];
    const report: StuckReport = {
      thread,
      handler: call === undefined || handler === undefined ? undefined : { name: handler.name, protocol: handler.protocol, method: call.method },
      stalledMs: Math.round(stuck.stalledMs),
    };
    this.#stuck.set(worker, report.handler === undefined ? `${thread} stopped taking frames` : `handler ${report.handler.name} stuck in ${thread}`);
    // V8 interrupts a busy loop; the thread's shard and ring stay as they are, unused.
    void worker.terminate();
    return report;
  }

  /** Why some actor cannot answer any more (the watchdog stopped it), or undefined. */
  #unanswerable(): string | undefined {
    for (const actor of this.#actors) {
      if (this.#exited.has(actor) || this.#stuck.has(actor)) return this.#stuck.get(actor) ?? 'an actor thread has exited';
    }
    return undefined;
  }

  /**
   * Loads a tracking state of one handler into every actor's shard (each keeps its own keys),
   * all or nothing: if any actor refuses it, the others roll their shards back.
   */
  async loadState(from: string, handlerIndex: number, state: Uint8Array, ownerIds: Record<string, number>): Promise<StateLoadResult> {
    const request: StateRequest = { requestId: this.#nextRequest++, handlerIndex, state, ownerIds, from };
    const answers = await this.#askAll<StateAnswer>('load-state', 60_000, (actor) => actor.loadState(request));
    const refused = answers.find((a) => 'refused' in a);
    if (refused !== undefined && 'refused' in refused) {
      await this.#askAll('rollback-state', 60_000, (actor) => actor.rollbackState(request.requestId));
      return { loaded: 0, skipped: 0, clockShift: 0, refused: refused.refused };
    }
    await this.#askAll('commit-state', 10_000, (actor) => actor.commitState(request.requestId));
    let loaded = 0;
    let skipped = 0;
    let clockShift = 0;
    for (const a of answers) {
      if ('refused' in a) continue;
      loaded += a.entries;
      skipped += a.skipped;
      clockShift = a.clockShift;
    }
    return { loaded, skipped, clockShift };
  }

  /** Per handler, every actor's shard as packed entries, each taken between two batches. */
  async snapshot(): Promise<Uint32Array[][]> {
    const shards = await this.#askAll('snapshot', 30_000, (actor) => actor.snapshot());
    return this.handlers.map((_, h) => shards.map((s) => s[h] ?? new Uint32Array(0)));
  }

  /** Buckets some actor still drains (--election bucket; 0 otherwise). */
  drainingBuckets(): number {
    return this.#draining?.unionInto(new Uint32Array(DRAINING_MASK_WORDS)) ?? 0;
  }

  /** --election bucket: per handler, every actor's flows in the buckets `targetOf` sends elsewhere (a handover). */
  async scanBuckets(targetOf: Uint8Array): Promise<{ entries: Uint32Array; targets: Uint8Array }[][]> {
    const scans = await this.#askAll('scan-buckets', 30_000, (actor) => actor.scanBuckets(targetOf));
    return this.handlers.map((_, h) => scans.map((s) => s[h] ?? { entries: new Uint32Array(0), targets: new Uint8Array(0) }));
  }

  /** A bucket handover of one handler: every actor adds its shard of it to its live table. */
  async mergeState(from: string, handlerIndex: number, state: Uint8Array, ownerIds: Record<string, number>): Promise<{ merged: number; skipped: number; refused?: string }> {
    const request: StateRequest = { requestId: this.#nextRequest++, handlerIndex, state, ownerIds, from };
    const answers = await this.#askAll<StateAnswer>('merge-state', 60_000, (actor) => actor.mergeState(request));
    let merged = 0;
    let skipped = 0;
    let refused: string | undefined;
    for (const a of answers) {
      if ('refused' in a) refused = a.refused;
      else {
        merged += a.entries;
        skipped += a.skipped;
      }
    }
    return refused === undefined ? { merged, skipped } : { merged, skipped, refused };
  }

  /** Per handler, every actor's listing (for `lnlbctl conntrack`). */
  async list(limit: number, nowSeconds: number): Promise<ShardListing[][]> {
    const listings = await this.#askAll('list', 10_000, (actor) => actor.list(limit, nowSeconds));
    return this.handlers.map((_, h) => listings.map((l) => l[h] ?? { total: 0, entries: new Uint32Array(0) }));
  }

  /** A drain's count: the flows owned by one of `ownerIds` seen within `idleSeconds`, each actor counting its own shards. */
  async activeOwned(ownerIds: number[], nowSeconds: number, idleSeconds: number): Promise<number> {
    const counts = await this.#askAll('active-owned', 10_000, (actor) => actor.activeOwned(ownerIds, nowSeconds, idleSeconds));
    return counts.reduce((a, b) => a + b, 0);
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
    for (const actor of this.#actors) if (!this.#exited.has(actor)) actor.postMessage(message);
    this.#wakeActors();
  }

  /**
   * Idle actors sleep (on their rings, or in the dispatcher's poll under --workers 1) for up
   * to 10 s: a message is seen at once only if they are woken.
   */
  #wakeActors(): void {
    for (let index = 0; index < this.actorCount; index++) this.#wakeActor(index);
  }

  #wakeActor(index: number): void {
    if (this.#direct) {
      // Raised after the post: the dispatcher clears it before it takes the port's messages.
      Atomics.store(this.#control, 1, 1);
      this.wakeDispatcher();
    } else {
      this.#rings[index]?.wakeConsumer();
    }
  }

  /** The same request to every actor, in parallel; each answer, in actor order, or the first failure. */
  #askAll<R>(what: string, timeoutMs: number, call: (actor: Remote<ActorApi>) => Promise<R>): Promise<R[]> {
    const gone = this.#unanswerable();
    if (gone !== undefined) return Promise.reject(lnlbError('LNLB_ERR_HANDLER_STUCK', `this interface's datapath cannot answer '${what}': ${gone} and was stopped; fix the handler and restart lnlbd`));
    let answered = 0;
    const calls = this.#remotes.map((actor) => call(actor).then((r) => (answered++, r)));
    return withDeadline(Promise.all(calls), timeoutMs, () => lnlbError('LNLB_ERR_WORKER_FAILED', `${answered} of ${this.#remotes.length} actors answered '${what}' within ${timeoutMs} ms`));
  }

  /** Every actor forgets its whole tracking state (this node was declared dead and rejoins). */
  resetTracking(): void {
    this.#broadcast({ type: 'reset' });
  }

  /** Tells every actor to purge a dead node's entries. The view change already re-homed them. */
  nodeDied(id: number): void {
    this.#broadcast({ type: 'node-died', id });
    this.wakeDispatcher();
  }

  /**
   * The view changed: the dispatcher re-reads it now rather than after its next frame or poll
   * timeout (its kernel filter may have to pass the buckets a dead node owned).
   */
  wakeDispatcher(): void {
    try {
      port.ringWake(this.#dataFd);
    } catch {
      // The socket is closed (stopping): nobody to wake.
    }
  }

  readCounters(): DatapathCounters {
    const c = this.counters;
    const actors = (counter: number): number => c.sum(counter, 1, 1 + this.actorCount);
    const dispatcher = (counter: number): number => c.sum(counter, 0, 1);
    return {
      framesSeen: dispatcher(DispatcherCounter.framesSeen),
      framesIPv6: dispatcher(DispatcherCounter.framesIPv6),
      vlan: {
        neighbourToHost: dispatcher(DispatcherCounter.neighbourToHost),
        egressFrames: dispatcher(DispatcherCounter.egressFrames),
        egressDrops: dispatcher(DispatcherCounter.egressDrops),
      },
      framesAccepted: actors(ActorCounter.accepted),
      arpRequests: dispatcher(DispatcherCounter.arpRequests),
      arpReplies: dispatcher(DispatcherCounter.arpReplies),
      ndpSolicitations: dispatcher(DispatcherCounter.ndpSolicitations),
      ndpAdvertisements: dispatcher(DispatcherCounter.ndpAdvertisements),
      trackedEntries: actors(ActorCounter.trackedEntries),
      evictions: actors(ActorCounter.evictions),
      kernelDrops: dispatcher(DispatcherCounter.kernelDrops),
      kernelFilter: {
        program: dispatcher(DispatcherCounter.kernelFilterWhy) === FilterWhy.buckets ? 'buckets' : 'plain',
        why: FILTER_WHY_TEXT[dispatcher(DispatcherCounter.kernelFilterWhy) as FilterWhyCode] ?? 'unknown',
        passBuckets: dispatcher(DispatcherCounter.kernelFilterBuckets),
        swaps: dispatcher(DispatcherCounter.kernelFilterSwaps),
        failures: dispatcher(DispatcherCounter.kernelFilterFailures),
      },
      weightAnnouncements: { seen: dispatcher(DispatcherCounter.announcementsSeen), heldFlows: actors(ActorCounter.heldForAnnouncement) },
      dropped: {
        notConverged: actors(ActorCounter.dropNotConverged),
        otherNode: actors(ActorCounter.dropOtherNode),
        tapWrite: actors(ActorCounter.dropTapWrite),
        ringFull: dispatcher(DispatcherCounter.dropRingFull),
        holdFull: actors(ActorCounter.dropHoldFull),
        malformed: dispatcher(DispatcherCounter.dropMalformed),
        notIP: dispatcher(DispatcherCounter.dropNotIP),
        otherVlan: dispatcher(DispatcherCounter.dropOtherVlan),
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
    return Array.from({ length: this.actorCount }, (_, index) => {
      const ring = this.#rings[index];
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
        ringBytesUsed: ring === undefined ? 0 : Math.max(0, ring.usedBytes()),
        ringBytesCapacity: ring?.capacity ?? 0,
        ringOverflows: ring?.overflows ?? 0,
        shrinkAppliedAt: at(ActorCounter.shrinkAppliedAt),
        firstTakenAfterShrinkAt: at(ActorCounter.firstTakenAfterShrinkAt),
      };
    });
  }

  /**
   * For a process that is exiting without stop() (src/main/restore-at-exit.ts): the stop word
   * raised and every thread woken, nothing waited for. Node ends worker threads as the process
   * exits, but waits for one inside a system call: a dispatcher asleep in poll() would hold the
   * exit for up to POLL_MS (10 s), with the TAP and the VIP still there.
   */
  haltNow(): void {
    this.#stopping = true;
    clearInterval(this.#watchdogTimer);
    Atomics.store(this.#control, 0, 1);
    this.wakeDispatcher();
    for (const ring of this.#rings) ring.wakeConsumer();
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearInterval(this.#watchdogTimer);
    Atomics.store(this.#control, 0, 1);
    this.wakeDispatcher(); // from its poll now, not within POLL_MS
    // A thread that has exited (the watchdog's) has nothing to say.
    const stopped = this.#exited.has(this.#dispatcher) ? [] : [waitFor(this.#dispatcher, 'stopped', STOP_TIMEOUT_MS)];
    for (const actor of this.#direct ? [] : this.#actors) {
      if (this.#exited.has(actor)) continue;
      stopped.push(waitFor(actor, 'stopped', STOP_TIMEOUT_MS));
      actor.postMessage({ type: 'stop' } satisfies MainToActor);
    }
    // An idle actor sleeps on its ring for up to a second: wake it to see the stop at once.
    setTimeout(() => {
      for (const ring of this.#rings) ring.wakeConsumer();
    }, 5);
    const egress = this.#egress;
    if (egress !== undefined && !this.#exited.has(egress)) {
      stopped.push(waitFor(egress, 'stopped', STOP_TIMEOUT_MS));
      egress.postMessage({ type: 'stop' });
    }
    await Promise.allSettled(stopped);
    for (const port of this.#requestPorts) port.close();
    await Promise.allSettled([...new Set([this.#dispatcher, ...this.#actors, ...(egress === undefined ? [] : [egress])])].map((w) => w.terminate()));
  }
}
