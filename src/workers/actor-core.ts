/**
 * An actor's per-frame work, free of threads and sockets (tests and the replay benchmark run
 * it as the actor thread does). The actor owns one shard of every handler's tracking table;
 * for each frame it decides: already tracked → its recorded owner; untracked → elect an owner
 * in the current view and record it (every node records every assignment, so the nodes'
 * tables agree); then keeps the frame only if the owner is this node.
 *
 * The view is re-read only when its generation changes (one atomic load per batch). Owners are
 * node ids; an entry whose owner has left the view counts as untracked and is re-elected, so a
 * death takes effect the moment the view is published, before the purge message arrives.
 *
 * While the members change (VIEW_FLAG_CHANGE_PENDING), the frames of untracked flows are held
 * in a bounded queue (the oldest dropped and counted when it is full) and decided with the new
 * view once it is published: electing them with the old view would disagree with the nodes
 * that already have the new one. While weights alone change (VIEW_FLAG_WEIGHTS_PENDING) only
 * the flows whose owner differs between the current and the coming weights are held: for the
 * others every node reaches the same owner whichever of the two it holds. Tracked flows go on.
 * With --workers 1 the switch is at a frame, the same on every node, not at the moment each
 * read the view: a weight announced in the data stream (announcementSeen) holds the new flows
 * after it until a view reads through it (readThrough); a frame received before the weights
 * in flight were announced (pendingFrom) is decided under the applied ones; and a held frame
 * is decided under the weights of its time (#electionsAsOf).
 * Under --election bucket a member leaving the view while frames are held discards them: the
 * frames of its flows were its to take meanwhile, and this node cannot tell which those were.
 *
 *   hold queue: a ByteRing in this thread only; each record is a copy of the ring record
 *   (16-byte descriptor + vnet header + frame).
 *
 * For the watchdog (watchdog.ts) the counter row carries a beat, one per batch, and which
 * handler method runs while one does (two stores per call: no allocation, no atomics).
 */

import { RendezvousElection, type Election } from '../cluster/election.js';
import { electionHash, keyedElectionHash } from '../cluster/hash.js';
import { AffinityCode, compileRules, type RuleSet } from '../cluster/port-rules.js';
import { RuleElections } from '../cluster/rule-elections.js';
import { BUCKET_BITS, BUCKET_COUNT } from '../cluster/buckets.js';
import { NO_TARGET } from '../cluster/bucket-handover.js';
import { DROP_FRAME, type KeyOrigin, type Tracker } from '../handlers/handler.js';
import { SNAPSHOT_WORDS } from '../handlers/tracker-state.js';
import { countBuckets, DrainingBuckets, DRAINING_MASK_WORDS } from '../shm/draining-buckets.js';
import { ByteRing } from '../shm/byte-ring.js';
import { createPublishedView, VIEW_MAX_NODES, VIEW_BUCKETS_CURRENT, VIEW_BUCKETS_NEXT, VIEW_BUCKETS_PENDING, VIEW_FLAG_CHANGE_PENDING, VIEW_FLAG_WEIGHTS_PENDING, type PublishedView, type ViewReader } from '../shm/view.js';
import { ActorCounter as C } from './counters.js';
import { DESCRIPTOR_BYTES, FRAME_SHIFT_MASK } from './dispatcher-core.js';
import type { FrameSink } from './ports.js';
import type { HandlerErrorLog } from './handler-errors.js';
import { handlerCall, HandlerMethod as M } from './watchdog.js';

/**
 * How far apart the kernel may stamp one frame for two packet sockets (the data socket's copy
 * of a HEARTBEAT and the control socket's): each copy is stamped as it is delivered, within
 * the same receive, microseconds apart.
 */
export const ANNOUNCEMENT_STAMP_SKEW_MS = 0.05;

/** A held frame keeps its receive time (float64) after its descriptor. */
const HELD_TIME_BYTES = 8;

const WRITE_BATCH = 256;
const DEFAULT_HOLD_BYTES = 1 << 20;

export interface ActorConfig {
  /** Frames from the dispatcher's thread (processAvailable); absent: handed over directly (decideFrame). */
  ring?: ByteRing | undefined;
  sink: FrameSink;
  /** One tracker per handler, in the dispatcher's handler order. */
  trackers: readonly Tracker[];
  view: ViewReader;
  counters: Float64Array;
  /** Makes an election of the configured kind (one per port rule that needs its own). */
  createElection?: () => Election;
  /**
   * The elections take the bucket table the control plane publishes (--election bucket: the
   * members' agreed table, cluster/bucket-ledger.ts), not one of their own.
   */
  agreedBuckets?: boolean;
  /** Port rules (default: the default rule alone). */
  rules?: RuleSet;
  /** Handler names, in tracker order, for error reports. */
  handlerNames?: readonly string[];
  /** Where a throwing tracker is reported (once per cause). */
  handlerErrors?: HandlerErrorLog;
  /** Bytes of frames held during a view-changing round. */
  holdBytes?: number;
  /** The election key (deriveElectionKey of the cluster key, two words), the same on every node; absent: the unkeyed hash (no key). */
  electionKey?: Uint32Array | undefined;
  /** Wall-clock ms, comparable across threads (a failover's timeline); read when a member leaves the view and on the first flow taken after it. */
  wallClockMs?: () => number;
  /**
   * --election bucket, per tracker: where its keys came from (ProtocolHandler.keyOrigin) and
   * its IP protocol, to find a tracked flow's bucket again (handovers, draining).
   */
  keyOrigins?: readonly (((keyLo: number, keyHi: number) => KeyOrigin) | undefined)[];
  protocols?: readonly number[];
  /** Where this actor publishes the buckets it drains (the kernel filter passes them). */
  draining?: { memory: DrainingBuckets; index: number };
}

/** One handler's entries in moved buckets (scanBuckets): packed SNAPSHOT_WORDS each, and the target of each. */
export interface ScannedEntries {
  entries: Uint32Array;
  targets: Uint8Array;
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const NETWORK_MASK = 0xffffff00;
/** How often a draining actor counts its flows again (a full scan of its shard). */
const DRAIN_CENSUS_SECONDS = 5;

export class ActorCore {
  readonly #wallClockMs: () => number;
  /** No new flow taken since a member left the view: the next one's time goes in the counters. */
  #awaitingFirstTaken = false;
  /** Members in the view last taken: a view with fewer is a death or a leave. */
  #nodeCount = 0;
  /** The ids of the view last taken (a member missing from the next one has left or died). */
  readonly #memberIds = new Uint16Array(VIEW_MAX_NODES);
  /** The dispatcher's ring to this actor; undefined when the dispatcher thread is the actor (decideFrame). */
  readonly #ring: ByteRing | undefined;
  readonly #sink: FrameSink;
  readonly #trackers: readonly Tracker[];
  readonly #viewReader: ViewReader;
  readonly #view: PublishedView = createPublishedView();
  readonly #elections: RuleElections;
  /** The elections under the weights the view goes to (VIEW_FLAG_WEIGHTS_PENDING). */
  readonly #nextElections: RuleElections;
  /**
   * The elections a held frame is decided with: `#elections`, or, for a frame that came
   * before a weight it was held across was announced, `#asOfElections` under the weights of
   * its time (#electionsAsOf).
   */
  #decideWith: RuleElections;
  readonly #asOfElections: RuleElections;
  readonly #asOfWeights = new Uint16Array(VIEW_MAX_NODES);
  #asOfBuilt = false;
  /** The latest announcement of an applied weight that changed (the view's weightSince): a held frame received after it is decided under the applied weights. */
  #latestWeightSince = Number.NEGATIVE_INFINITY;
  /** The hold queue's memory, for the receive time each held frame keeps (HELD_TIME_BYTES). */
  readonly #holdData: DataView;
  readonly #agreedBuckets: boolean;
  readonly #keyOrigins: readonly (((keyLo: number, keyHi: number) => KeyOrigin) | undefined)[];
  readonly #protocols: readonly number[];
  readonly #rules: RuleSet;
  readonly #draining: { memory: DrainingBuckets; index: number } | undefined;
  /** Buckets gained whose handovers are not all in (the view's), and whether any is. */
  #pendingBuckets: Uint32Array | undefined;
  /** Per bucket: the base table's owner (node id, -1 none), rebuilt with the view. */
  readonly #bucketOwner = new Int32Array(BUCKET_COUNT);
  /** The buckets this actor drains (its last census) and when it next counts them. */
  readonly #drainingMask = new Uint32Array(DRAINING_MASK_WORDS);
  #drainingCount = 0;
  #nextCensus = 0;
  #censusDue = true;
  readonly #handlerNames: readonly string[];
  readonly #handlerErrors: HandlerErrorLog | undefined;
  readonly #c: Float64Array;
  readonly #hold: ByteRing;
  /** Per port rule: its affinity (AffinityCode), which says whether the election hashes keyHi too. */
  readonly #affinities: Uint8Array;
  /** The election key as two numbers (no typed-array read per election), and whether there is one. */
  readonly #keyed: boolean;
  readonly #k0: number;
  readonly #k1: number;
  /** live[id] = 1 while node `id` is in the view. */
  readonly #live = new Uint8Array(65536);
  readonly #offsets = new Uint32Array(WRITE_BATCH);
  readonly #lengths = new Uint32Array(WRITE_BATCH);
  #pending = 0;
  /** Where the frames of the write batch under way are. */
  #pendingBytes: Uint8Array = new Uint8Array(0);
  #held = 0;
  #generation = -1;
  #accepting = false;
  #changePending = false;
  #weightsPending = false;
  /**
   * The latest weight announced in the data stream (announcementSeen: the HEARTBEAT's receive
   * time), and how far the view's control plane has read (PublishedView.readThrough): while
   * the first is later, the control plane has not read an announcement this actor has passed,
   * and new flows wait.
   */
  #announcedAt = Number.NEGATIVE_INFINITY;
  #readThrough = Number.POSITIVE_INFINITY;
  /** PublishedView.pendingFrom: a frame received before it is decided under the applied weights. */
  #pendingFrom = Number.NEGATIVE_INFINITY;
  /** When the frame being decided reached the host (NaN: not known, as from an actor ring). */
  #frameAt = Number.NaN;
  #selfId = 0;
  #now = 0;
  /** Dead nodes' ids whose entries purgeStep has still to drop, the first one under way. */
  readonly #purgeQueue: number[] = [];
  #purgeHandler = 0;
  #purgeFrom = 0;

  constructor(config: ActorConfig) {
    this.#ring = config.ring;
    this.#sink = config.sink;
    this.#trackers = config.trackers;
    this.#viewReader = config.view;
    this.#c = config.counters;
    const rules = config.rules ?? compileRules([]);
    const modes = rules.modes;
    this.#affinities = rules.affinities;
    const key = config.electionKey;
    if (key !== undefined && key.length !== 2) throw new RangeError(`the election key is two u32 words, got ${key.length}`);
    this.#keyed = key !== undefined;
    this.#k0 = key?.[0] ?? 0;
    this.#k1 = key?.[1] ?? 0;
    this.#elections = new RuleElections(modes, config.createElection ?? (() => new RendezvousElection()));
    this.#nextElections = new RuleElections(modes, config.createElection ?? (() => new RendezvousElection()));
    this.#asOfElections = new RuleElections(modes, config.createElection ?? (() => new RendezvousElection()));
    this.#decideWith = this.#elections;
    this.#agreedBuckets = config.agreedBuckets === true;
    this.#keyOrigins = config.keyOrigins ?? [];
    this.#protocols = config.protocols ?? [];
    this.#rules = rules;
    this.#draining = config.draining;
    this.#handlerNames = config.handlerNames ?? config.trackers.map((_, i) => `handler ${i}`);
    this.#handlerErrors = config.handlerErrors;
    this.#hold = new ByteRing(ByteRing.allocate(config.holdBytes ?? DEFAULT_HOLD_BYTES));
    this.#holdData = new DataView(this.#hold.bytes.buffer, this.#hold.bytes.byteOffset, this.#hold.bytes.byteLength);
    this.#wallClockMs = config.wallClockMs ?? (() => performance.timeOrigin + performance.now());
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  /** Flows tracked by this actor's shards now (the status gauges are refreshed on the way). */
  trackedNow(): number {
    this.#updateGauges();
    return this.#c[C.trackedEntries]!;
  }

  /** Frames waiting for a view-changing round to complete. */
  get held(): number {
    return this.#held;
  }

  /** Decides every record available now (and held ones, once their round is over); returns how many. */
  processAvailable(nowSeconds: number): number {
    this.beginBatch(nowSeconds);
    const ring = this.#ring;
    if (ring === undefined || ring.beginRead() === 0) return 0;
    const words = ring.words;
    const bytes = ring.bytes;
    let count = 0;
    let at: number;
    while ((at = ring.next()) >= 0) {
      count++;
      const w = at >>> 2;
      // The frame keeps its offset modulo 4 from the kernel's ring (the dispatcher's word copy).
      const shift = ring.recordFlags & FRAME_SHIFT_MASK;
      this.#decide(words[w]!, words[w + 1]!, words[w + 2]!, words[w + 3]!, bytes, at + DESCRIPTOR_BYTES + shift, ring.recordLength - DESCRIPTOR_BYTES - shift, true);
    }
    this.#c[C.framesIn]! += count;
    this.#flush(); // before endRead: the frames are written straight from ring memory
    ring.endRead();
    return count;
  }

  /**
   * Before a batch of frames handed over directly (decideFrame, the dispatcher thread being
   * this actor): the view is re-read if it changed, and held frames are decided once their
   * round is over.
   */
  beginBatch(nowSeconds: number): void {
    this.#c[C.beat]!++;
    this.#now = nowSeconds;
    // The read-through time before the generation: a view published before it was stored is seen too.
    if (this.#announcementUnread()) this.#readThrough = this.#viewReader.readThrough();
    if (this.#viewReader.generation() !== this.#generation) this.#refreshView();
    if (this.#held > 0 && !this.#changePending && !this.#weightsPending && this.#pendingBuckets === undefined && !this.#announcementUnread()) this.#releaseHeld();
  }

  /**
   * A HEARTBEAT announcing a weight passed here in the data stream (--workers 1: the
   * dispatcher is this actor), received at `receivedAt`. Until a view reads through it, every
   * new flow after it waits: this node's control plane may not have read the announcement yet
   * while the others' have, and they hold the flows it moves.
   */
  announcementSeen(receivedAt: number): void {
    if (receivedAt > this.#announcedAt) this.#announcedAt = receivedAt;
    if (!this.#announcementUnread()) return;
    // The control plane may have read it already (the data socket's ring hands frames over up
    // to a millisecond late): then the view this actor holds must be the latest, or it waits
    // for the next batch, which reads the latest.
    const through = this.#viewReader.readThrough();
    if (this.#viewReader.generation() === this.#generation) this.#readThrough = through;
  }

  /**
   * An announcement seen in the stream and not yet in the view. The two receive times come from
   * two sockets, which the kernel may stamp a few microseconds apart: ANNOUNCEMENT_STAMP_SKEW_MS.
   */
  #announcementUnread(): boolean {
    return this.#announcedAt > this.#readThrough + ANNOUNCEMENT_STAMP_SKEW_MS;
  }

  /**
   * One frame handed over directly, its descriptor's four words as the dispatcher computed
   * them and the frame (virtio-net header first, when the port has one) at `bytes[at, at + length)`.
   * Kept frames are written from there at endBatch(), which must come before `bytes` is reused.
   */
  decideFrame(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, at: number, length: number, receivedAt = Number.NaN): void {
    this.#c[C.framesIn]!++;
    this.#frameAt = receivedAt;
    this.#decide(keyLo, keyHi, electionInput, meta, bytes, at, length, true);
  }

  /** Writes the frames kept since beginBatch(). */
  endBatch(): void {
    this.#flush();
  }

  /**
   * A node died: its entries are dropped from every tracker of this shard by `purgeStep`, a
   * slice at a time between batches of frames (one full scan of a large shard held the first
   * frames after a failover up for several milliseconds). Meanwhile they count as untracked
   * (the view no longer has their owner), so the purge changes no decision.
   */
  nodeDied(id: number): void {
    this.#purgeQueue.push(id);
  }

  /** A dead node's entries are still being dropped. */
  get purging(): boolean {
    return this.#purgeQueue.length > 0;
  }

  /**
   * Drops dead nodes' entries from up to `budget` slots (a tracker without `nodeDiedSlice`
   * takes its whole `nodeDied` as one step); returns how many entries went.
   */
  purgeStep(budget: number): number {
    const id = this.#purgeQueue[0];
    if (id === undefined) return 0;
    const i = this.#purgeHandler;
    const tracker = this.#trackers[i]!;
    let removed = 0;
    let done = true;
    this.#c[C.inHandler] = handlerCall(i, M.nodeDied);
    try {
      if (tracker.nodeDiedSlice === undefined) {
        removed = tracker.nodeDied(id);
      } else {
        const size = tracker.size;
        const from = this.#purgeFrom;
        this.#purgeFrom = tracker.nodeDiedSlice(id, from, budget);
        removed = size - tracker.size;
        done = this.#purgeFrom < 0;
        // The loader checked that slices move on; one that stops doing so ends its purge.
        if (!done && !(this.#purgeFrom > from)) throw new RangeError(`nodeDiedSlice(${id}, ${from}, ${budget}) returned ${this.#purgeFrom}: not a later slot`);
      }
    } catch (err) {
      this.#handlerErrors?.record(this.#handlerNames[i]!, tracker.nodeDiedSlice === undefined ? 'nodeDied' : 'nodeDiedSlice', err);
      done = true; // this handler's purge ends here; its dead entries go by expiry
    }
    this.#c[C.inHandler] = 0;
    if (done) {
      this.#purgeFrom = 0;
      if (++this.#purgeHandler === this.#trackers.length) {
        this.#purgeHandler = 0;
        this.#purgeQueue.shift();
      }
    }
    this.#c[C.purgedByDeath]! += removed;
    if (!this.purging) this.#updateGauges();
    return removed;
  }

  /** Forgets every tracked flow and every held frame. */
  reset(): void {
    this.#trackers.forEach((tracker, i) => {
      this.#c[C.inHandler] = handlerCall(i, M.clear);
      try {
        tracker.clear();
      } catch (err) {
        this.#handlerErrors?.record(this.#handlerNames[i]!, 'clear', err);
      }
    });
    this.#c[C.inHandler] = 0;
    this.#purgeQueue.length = 0; // nothing left to purge
    this.#purgeHandler = 0;
    this.#purgeFrom = 0;
    if (this.#hold.beginRead() > 0) while (this.#hold.next() >= 0);
    this.#hold.endRead();
    this.#held = 0;
    this.#updateGauges();
  }

  /** Incremental expiry; cheap enough to call once a second. */
  housekeeping(nowSeconds: number, budget = 8192): void {
    // Before the first round completes the main thread may be loading a newcomer's tables
    // from the tracking state: nothing here may write to them meanwhile.
    if (!this.#accepting) return;
    let expired = 0;
    this.#c[C.beat]!++;
    this.#trackers.forEach((tracker, i) => {
      this.#c[C.inHandler] = handlerCall(i, M.expire);
      try {
        expired += tracker.expire(nowSeconds, budget);
      } catch (err) {
        this.#handlerErrors?.record(this.#handlerNames[i]!, 'expire', err);
      }
    });
    this.#c[C.inHandler] = 0;
    this.#c[C.expired]! += expired;
    this.#updateGauges();
    if (this.#agreedBuckets && this.#draining !== undefined && (this.#censusDue || nowSeconds >= this.#nextCensus) && (this.#censusDue || this.#drainingCount > 0)) this.scanBuckets(undefined);
  }

  /** Buckets this actor drains (its last census). */
  get drainingBuckets(): number {
    return this.#drainingCount;
  }

  /**
   * --election bucket: one pass over the shard (between batches). Every tracked flow's bucket
   * is computed again from its key; the flows in the buckets `targetOf` sends elsewhere are
   * returned per handler (a handover), and the buckets this node no longer owns but still has
   * flows of its own in are its draining ones (published for the kernel filter). A handler
   * without keyOrigin hands nothing over.
   */
  scanBuckets(targetOf: Uint8Array | undefined): ScannedEntries[] {
    if (this.#viewReader.generation() !== this.#generation) this.#refreshView();
    const self = this.#selfId;
    const owner = this.#bucketOwner;
    const draining = this.#drainingMask;
    draining.fill(0);
    const out: ScannedEntries[] = [];
    this.#trackers.forEach((tracker, i) => {
      const origin = this.#keyOrigins[i];
      const protocol = this.#protocols[i] ?? 0;
      let entries = new Uint32Array(0);
      let targets = new Uint8Array(0);
      let n = 0;
      if (origin !== undefined) {
        this.#c[C.inHandler] = handlerCall(i, M.saveStatus);
        try {
          tracker.saveStatus((keyLo, keyHi, entryOwner, lastSeen) => {
            const b = this.#bucketOfKey(origin, protocol, keyLo, keyHi);
            if (b < 0) return;
            if (entryOwner === self && owner[b] !== self) draining[b >>> 5] = (draining[b >>> 5]! | (1 << (b & 31))) >>> 0;
            const t = targetOf === undefined ? NO_TARGET : targetOf[b]!;
            if (t === NO_TARGET) return;
            if (n === targets.length) {
              const bigger = new Uint32Array(Math.max(64, 2 * targets.length) * SNAPSHOT_WORDS);
              bigger.set(entries);
              entries = bigger;
              const biggerTargets = new Uint8Array(Math.max(64, 2 * targets.length));
              biggerTargets.set(targets);
              targets = biggerTargets;
            }
            const k = n * SNAPSHOT_WORDS;
            entries[k] = keyLo;
            entries[k + 1] = keyHi;
            entries[k + 2] = entryOwner;
            entries[k + 3] = lastSeen;
            targets[n++] = t;
          });
        } catch (err) {
          this.#handlerErrors?.record(this.#handlerNames[i]!, 'saveStatus', err);
        }
        this.#c[C.inHandler] = 0;
      }
      out.push({ entries: entries.subarray(0, n * SNAPSHOT_WORDS), targets: targets.subarray(0, n) });
    });
    this.#drainingCount = countBuckets(draining);
    this.#draining?.memory.write(this.#draining.index, draining);
    this.#nextCensus = this.#now + DRAIN_CENSUS_SECONDS;
    this.#censusDue = false;
    return out;
  }

  /** A tracked key's bucket, as its election computed it; -1 when its rule does not elect from the table. */
  #bucketOfKey(origin: (keyLo: number, keyHi: number) => KeyOrigin, protocol: number, keyLo: number, keyHi: number): number {
    const o = origin(keyLo, keyHi);
    const port = o.destinationPort ?? 0;
    const rules = this.#rules;
    const rule = o.rule ?? (port === 0 ? 0 : protocol === IPPROTO_TCP ? rules.tcpRuleByPort[port]! : protocol === IPPROTO_UDP ? rules.udpRuleByPort[port]! : 0);
    if (rule >= rules.affinities.length || !this.#elections.usesBase(rule)) return -1;
    const affinity = this.#affinities[rule];
    const source = o.source >>> 0;
    const input = affinity === AffinityCode.single ? source : affinity === AffinityCode.none ? keyLo : (source & NETWORK_MASK) >>> 0;
    return this.#electionHash(rule, input, keyHi) >>> (32 - BUCKET_BITS);
  }

  /**
   * One frame: its descriptor's words and where it is (the input ring, the dispatcher's batch,
   * or the hold queue). `mayHold`: false when deciding held frames (they are decided with the
   * new view whatever it is).
   */
  #decide(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, at: number, length: number, mayHold: boolean): void {
    const c = this.#c;
    if (!this.#accepting) {
      c[C.dropNotConverged]!++;
      return;
    }
    const handlerIndex = meta & 0xff;
    const frameFlags = meta >>> 16;
    const tracker = this.#trackers[handlerIndex]!;
    let owner: number;
    let elected = false;
    c[C.inHandler] = handlerCall(handlerIndex, M.isRelated);
    try {
      owner = tracker.isRelated(keyLo, keyHi, frameFlags, this.#now);
    } catch (err) {
      c[C.inHandler] = 0;
      this.#handlerFailed(handlerIndex, 'isRelated', err);
      return;
    }
    c[C.inHandler] = 0;
    if (owner === DROP_FRAME) {
      c[C.dropByHandler]!++;
      return;
    }
    if (owner < 0 || this.#live[owner] === 0) {
      if (mayHold && this.#announcementUnread()) {
        c[C.heldForAnnouncement]!++;
        this.#holdFrame(keyLo, keyHi, electionInput, meta, bytes, at, length);
        return;
      }
      // Received before the weights in flight were announced: every node decided it, or will,
      // under the applied weights (the others read it before the announcement too).
      const beforeAnnouncement = this.#frameAt < this.#pendingFrom;
      if (mayHold && this.#changePending && !beforeAnnouncement) {
        this.#holdFrame(keyLo, keyHi, electionInput, meta, bytes, at, length);
        return;
      }
      const rule = (meta >>> 8) & 0xff;
      const hash = this.#electionHash(rule, electionInput, keyHi);
      const pending = this.#pendingBuckets;
      if (mayHold && pending !== undefined && (pending[hash >>> (32 - BUCKET_BITS + 5)]! & (1 << ((hash >>> (32 - BUCKET_BITS)) & 31))) !== 0 && this.#elections.usesBase(rule)) {
        // A bucket just gained: its old owners' flows are still on their way here.
        this.#holdFrame(keyLo, keyHi, electionInput, meta, bytes, at, length);
        return;
      }
      owner = this.#decideWith.electOwner(rule, hash);
      if (mayHold && this.#weightsPending && !beforeAnnouncement && this.#nextElections.electOwner(rule, hash) !== owner) {
        this.#holdFrame(keyLo, keyHi, electionInput, meta, bytes, at, length);
        return;
      }
      if (owner < 0) {
        c[C.dropNoOwner]!++;
        return;
      }
      if (owner !== this.#selfId && this.#agreedBuckets && this.#elections.usesBase(rule)) {
        // Partitioned tracking: another node's new flow is its to track (its bucket is not ours).
        c[C.dropOtherNode]!++;
        return;
      }
      c[C.inHandler] = handlerCall(handlerIndex, M.assigned);
      try {
        tracker.assigned(keyLo, keyHi, owner, frameFlags, this.#now);
      } catch (err) {
        c[C.inHandler] = 0;
        this.#handlerFailed(handlerIndex, 'assigned', err);
        return;
      }
      c[C.inHandler] = 0;
      c[C.elected]!++;
      elected = true;
    }
    if (owner !== this.#selfId) {
      c[C.dropOtherNode]!++;
      return;
    }
    if (elected && this.#awaitingFirstTaken) {
      this.#awaitingFirstTaken = false;
      c[C.firstTakenAfterShrinkAt] = this.#wallClockMs();
    }
    // One write batch comes from one memory (the ring, the dispatcher's batch or the hold queue).
    if (this.#pending > 0 && bytes !== this.#pendingBytes) this.#flush();
    this.#pendingBytes = bytes;
    const p = this.#pending;
    this.#offsets[p] = at;
    this.#lengths[p] = length;
    if (++this.#pending === WRITE_BATCH) this.#flush();
  }

  /**
   * The election hash of a key not tracked yet (only those are elected: a tracked flow never
   * pays for it): keyed when the cluster has a key, the same on every node. `input` is what the
   * dispatcher put in the descriptor for the rule's affinity; affinity none hashes keyHi too.
   */
  #electionHash(rule: number, input: number, keyHi: number): number {
    const hi = this.#affinities[rule] === AffinityCode.none ? keyHi : 0;
    return this.#keyed ? keyedElectionHash(this.#k0, this.#k1, input, hi) : electionHash(input, hi);
  }

  /** Off the hot path: a tracker threw. The frame is dropped and counted, the cause reported once. */
  #handlerFailed(handlerIndex: number, method: string, err: unknown): void {
    this.#c[C.dropHandlerError]!++;
    this.#handlerErrors?.record(this.#handlerNames[handlerIndex] ?? `handler ${handlerIndex}`, method, err);
  }

  /** A copy of the frame and its descriptor goes to the hold queue (the frame's own memory is reused after the batch). */
  #holdFrame(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, at: number, length: number): void {
    const hold = this.#hold;
    const recordLength = DESCRIPTOR_BYTES + HELD_TIME_BYTES + length;
    let to = hold.reserve(recordLength);
    if (to < 0 && this.#held > 0) {
      // Full: the oldest held frame goes (LNLB's rule), counted.
      hold.commit();
      this.#discardOldestHeld();
      to = hold.reserve(recordLength);
    }
    if (to < 0) {
      this.#c[C.dropHoldFull]!++;
      return;
    }
    const w = to >>> 2;
    const words = hold.words;
    words[w] = keyLo;
    words[w + 1] = keyHi;
    words[w + 2] = electionInput;
    words[w + 3] = meta;
    this.#holdData.setFloat64(to + DESCRIPTOR_BYTES, this.#frameAt, true);
    hold.bytes.set(bytes.subarray(at, at + length), to + DESCRIPTOR_BYTES + HELD_TIME_BYTES);
    hold.commit();
    this.#held++;
    this.#c[C.held]!++;
  }

  #dropHeld(): void {
    const hold = this.#hold;
    if (hold.beginRead() > 0) while (hold.next() >= 0);
    hold.endRead();
    this.#c[C.dropOtherNode]! += this.#held;
    this.#held = 0;
  }

  #discardOldestHeld(): void {
    const hold = this.#hold;
    if (hold.beginRead() > 0 && hold.next() >= 0) {
      hold.endRead();
      this.#held--;
      this.#c[C.dropHoldFull]!++;
    }
  }

  #releaseHeld(): void {
    const hold = this.#hold;
    if (hold.beginRead() > 0) {
      const words = hold.words;
      let at: number;
      while ((at = hold.next()) >= 0) {
        const w = at >>> 2;
        const frameAt = this.#holdData.getFloat64(at + DESCRIPTOR_BYTES, true);
        this.#decideWith = this.#electionsAsOf(frameAt);
        const from = at + DESCRIPTOR_BYTES + HELD_TIME_BYTES;
        this.#decide(words[w]!, words[w + 1]!, words[w + 2]!, words[w + 3]!, hold.bytes, from, hold.recordLength - DESCRIPTOR_BYTES - HELD_TIME_BYTES, false);
      }
      this.#decideWith = this.#elections;
      this.#flush();
      hold.endRead();
    }
    this.#held = 0;
  }

  /**
   * The elections for a held frame received at `frameAt`: under the applied weights, except
   * that a member whose applied weight was announced after the frame came counts with the
   * weight before it. Held across two announcements (a second came while the first was in
   * flight), a frame is otherwise decided under both, while a node that applied the first
   * before hearing of the second decided it under the first alone. Not under --election
   * bucket (its owners come from the agreed table) nor for a frame of unknown time.
   */
  #electionsAsOf(frameAt: number): RuleElections {
    if (!(frameAt < this.#latestWeightSince) || this.#agreedBuckets) return this.#elections;
    const view = this.#view;
    const weights = this.#asOfWeights;
    let same = this.#asOfBuilt;
    for (let i = 0; i < view.nodeCount; i++) {
      const w = frameAt < view.weightSince[i]! ? view.previousWeights[i]! : view.weights[i]!;
      if (weights[i] !== w) same = false;
      weights[i] = w;
    }
    if (!same) {
      this.#asOfElections.rebuild({ count: view.nodeCount, ids: view.ids, weights, macs: view.macs, ruleParams: view.ruleParams });
      this.#asOfBuilt = true;
    }
    return this.#asOfElections;
  }

  #updateGauges(): void {
    let size = 0;
    let evictions = 0;
    this.#trackers.forEach((tracker, i) => {
      this.#c[C.inHandler] = handlerCall(i, M.size);
      const n = Number(tracker.size);
      const e = Number(tracker.evictions);
      if (Number.isFinite(n)) size += n;
      if (Number.isFinite(e)) evictions += e;
    });
    this.#c[C.inHandler] = 0;
    this.#c[C.trackedEntries] = size;
    this.#c[C.evictions] = evictions;
  }

  #flush(): void {
    const n = this.#pending;
    if (n === 0) return;
    this.#pending = 0;
    const written = this.#sink.writeBatch(this.#pendingBytes, this.#offsets, this.#lengths, n);
    this.#c[C.accepted]! += written;
    if (written < n) this.#c[C.dropTapWrite]! += n - written;
  }

  #refreshView(): void {
    const view = this.#view;
    // The read-through time first: it was stored after the view it vouches for, so the view
    // read next is that one or a later one.
    this.#readThrough = this.#viewReader.readThrough();
    // Retries inside read() until it gets a consistent copy (the writer is never blocked).
    this.#viewReader.read(view);
    for (let i = 0; i < this.#live.length; i++) this.#live[i] = 0;
    for (let i = 0; i < view.nodeCount; i++) this.#live[view.ids[i]!] = 1;
    let departed = false;
    for (let i = 0; i < this.#nodeCount; i++) if (this.#live[this.#memberIds[i]!] === 0) departed = true;
    this.#memberIds.set(view.ids.subarray(0, view.nodeCount));
    // --election bucket: a member left or died while frames waited here. Under partitioned
    // tracking this node cannot tell which of them were that member's flows, which it took
    // itself meanwhile; decided now, they would go to their flows' new owner and be delivered
    // twice. They go (counted): a new flow's first frames held across a departure are lost
    // instead, within the change's window, as a dead node's are.
    if (departed && this.#agreedBuckets && this.#held > 0) this.#dropHeld();
    const agreed = this.#agreedBuckets;
    this.#elections.rebuild({
      count: view.nodeCount,
      ids: view.ids,
      weights: view.weights,
      macs: view.macs,
      ruleParams: view.ruleParams,
      ...(agreed ? { bucketOwners: (view.bucketTables & VIEW_BUCKETS_CURRENT) !== 0 ? view.bucketOwners : null } : {}),
    });
    this.#selfId = view.selfId;
    this.#accepting = view.accepting;
    if (agreed) {
      let moved = false;
      for (let b = 0; b < BUCKET_COUNT; b++) {
        const o = this.#elections.baseOwner(b << (32 - BUCKET_BITS));
        if (o !== this.#bucketOwner[b]) moved = true;
        this.#bucketOwner[b] = o;
      }
      let any = 0;
      if ((view.bucketTables & VIEW_BUCKETS_PENDING) !== 0) for (let k = 0; k < view.pendingBuckets.length; k++) any |= view.pendingBuckets[k]!;
      this.#pendingBuckets = any !== 0 ? view.pendingBuckets : undefined;
      // A table change may end or start draining: counted again at the next housekeeping.
      if (moved) this.#censusDue = true;
    }
    this.#changePending = (view.flags & VIEW_FLAG_CHANGE_PENDING) !== 0;
    this.#weightsPending = (view.flags & VIEW_FLAG_WEIGHTS_PENDING) !== 0;
    this.#pendingFrom = view.pendingFrom;
    this.#latestWeightSince = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < view.nodeCount; i++) {
      if (view.previousWeights[i] !== view.weights[i] && view.weightSince[i]! > this.#latestWeightSince) this.#latestWeightSince = view.weightSince[i]!;
    }
    this.#asOfBuilt = false;
    if (this.#weightsPending) {
      this.#nextElections.rebuild({
        count: view.nodeCount,
        ids: view.ids,
        weights: view.nextWeights,
        macs: view.macs,
        ruleParams: view.ruleParams,
        ...(agreed ? { bucketOwners: (view.bucketTables & VIEW_BUCKETS_NEXT) !== 0 ? view.nextBucketOwners : null } : {}),
      });
    }
    this.#generation = view.generation;
    if (view.nodeCount < this.#nodeCount) {
      this.#c[C.shrinkAppliedAt] = this.#wallClockMs();
      this.#c[C.firstTakenAfterShrinkAt] = 0;
      this.#awaitingFirstTaken = true;
    }
    this.#nodeCount = view.nodeCount;
  }
}
