/**
 * The published view: the node table the main thread writes and the actors read without
 * locks, under a seqlock.
 *
 *   Int32 words (layout.ts VIEW_*), VIEW_BYTES at byteOffset:
 *   | GENERATION | FLAGS | SELF_ID | NODE_COUNT | node 0: 4 words | node 1 | ... | node 63 |
 *     odd while    bit0 =                          [id | weight << 16]
 *     writing      accepting                       [status | mac0 << 8 | mac1 << 16 | mac2 << 24]
 *                                                  [mac3 | mac4 << 8 | mac5 << 16]
 *                                                  [next weight]
 *
 *   then the port rules' per-node parameters (share | priority << 8, two to a word), then the
 *   bucket tables of --election bucket (layout.ts VIEW_BUCKETS).
 *
 * Nodes are in table order (sorted by MAC: every node numbers the members the same way).
 *
 * Seqlock, one writer (the main thread): GENERATION := odd, write the contents, GENERATION :=
 * next even. A reader loads GENERATION (g1, retry while odd), copies the contents, loads
 * GENERATION again (g2) and keeps the copy only if g1 === g2.
 *
 * Every access, data words included, is an Atomics load/store, i.e. seq-cst. That is what makes
 * the check sound in the JS memory model: all these accesses sit in one total order consistent
 * with each thread's program order. If g1 === g2 (even), no store of GENERATION lies between
 * the reader's two loads of it (generations never repeat within 2^31 publications), so every
 * data store of publication g1 precedes the reader's first load and every data store of the
 * next publication follows the store of g1+1, which follows the reader's second load: the
 * copy is exactly publication g1. With plain (unordered) data accesses the reader's copies
 * could be reordered past its second GENERATION load, and a torn copy could pass the check.
 * The view is ~200 words and read once per generation change, so the cost is nothing.
 *
 * No Atomics.wait here: readers poll `generation()` once per batch.
 */
import {
  VIEW_BUCKET_MASK_WORDS,
  VIEW_BUCKET_TABLE_WORDS,
  VIEW_BUCKETS,
  VIEW_PASS_BUCKETS,
  VIEW_PENDING_BUCKETS,
  VIEW_PENDING_FROM,
  VIEW_READ_THROUGH,
  VIEW_WEIGHT_HISTORY,
  VIEW_WEIGHT_HISTORY_WORDS,
  VIEW_BYTES,
  VIEW_FLAGS,
  VIEW_GENERATION,
  VIEW_MAX_NODES,
  VIEW_NODE_COUNT,
  VIEW_NODE_WORDS,
  VIEW_NODES,
  VIEW_MAX_RULE_SLOTS,
  VIEW_RULE_WORDS,
  VIEW_RULES,
  VIEW_SELF_ID,
  VIEW_WORDS,
} from './layout.js';

export { VIEW_BYTES, VIEW_MAX_NODES, VIEW_MAX_RULE_SLOTS };

/** FLAGS bit 0: the first convergence round is complete; actors may accept frames. */
export const VIEW_FLAG_ACCEPTING = 1;
/** FLAGS bit 1: the members are changing (or a weight twice); every new flow waits for the new view. */
export const VIEW_FLAG_CHANGE_PENDING = 2;
/**
 * FLAGS bit 2: weights alone are changing, from `weights` to `nextWeights`: a new flow whose
 * owner is the same under both is decided at once; the others wait for the new view.
 */
export const VIEW_FLAG_WEIGHTS_PENDING = 4;

export interface PublishedView {
  /** Set by ViewReader.read (and returned by publish); ignored by publish. */
  generation: number;
  /** VIEW_FLAG_* bits. Bit 0 is written from `accepting` by publish and mirrored by read. */
  flags: number;
  /** VIEW_FLAG_ACCEPTING as a boolean: the first convergence round is complete. */
  accepting: boolean;
  /** This node's stable id. */
  selfId: number;
  /** Entries in use, 0..VIEW_MAX_NODES. */
  nodeCount: number;
  /** Stable node ids, table order. */
  readonly ids: Uint16Array;
  readonly weights: Uint16Array;
  /** The weights the view is going to (VIEW_FLAG_WEIGHTS_PENDING); equal to `weights` otherwise. */
  readonly nextWeights: Uint16Array;
  /** Node status codes (the cluster state machine's enum). */
  readonly statuses: Uint8Array;
  /** 6 bytes per node, table order. */
  readonly macs: Uint8Array;
  /** Port-rule slots whose parameters are published (0..VIEW_MAX_RULE_SLOTS). */
  ruleSlots: number;
  /** Per node (table order) and rule: the node's parameter word, at i * VIEW_MAX_RULE_SLOTS + rule. */
  readonly ruleParams: Uint16Array;
  /** VIEW_BUCKETS_* bits: which of the two bucket tables below are there. */
  bucketTables: number;
  /** --election bucket: each bucket's owner, an index into the members less the draining ones. */
  readonly bucketOwners: Uint8Array;
  /** The same under the weights the view goes to (VIEW_FLAG_WEIGHTS_PENDING). */
  readonly nextBucketOwners: Uint8Array;
  /** VIEW_BUCKETS_PENDING: buckets gained whose handovers are not all in; the actors hold their untracked flows. */
  readonly pendingBuckets: Uint32Array;
  /** VIEW_BUCKETS_PASS: buckets the data socket's filter passes besides the actors' draining ones. */
  readonly passBuckets: Uint32Array;
  /**
   * Every control frame that reached this host before this time (epoch ms, the kernel's
   * receive clock) has been read and is in this view: an actor that saw a weight announced in
   * the data stream later than this holds new flows until a view reads through it.
   */
  readThrough: number;
  /**
   * The weights in flight (VIEW_FLAG_WEIGHTS_PENDING, or every new flow held for two) were
   * announced at this time: a frame that reached the host before it was decided by every node
   * under the applied weights, and is decided so here too. -Infinity: no weight in flight, or
   * the members are changing (every new flow waits, whenever it came).
   */
  pendingFrom: number;
  /** Per node (table order): the weight it had before its applied one... */
  readonly previousWeights: Uint16Array;
  /**
   * ...and when the applied one was announced (the receive time of the HEARTBEAT that carried
   * it first, epoch ms; -Infinity: it has had it since it joined). A frame that came before
   * that and was held until it was applied is decided under the previous one, as the nodes
   * that decided it before the announcement did.
   */
  readonly weightSince: Float64Array;
}

/** PublishedView.bucketTables bit 0: `bucketOwners` holds the table the cluster agreed on (or is moving to). */
export const VIEW_BUCKETS_CURRENT = 1;
/** Bit 1: `nextBucketOwners` holds the table under the pending weights. */
export const VIEW_BUCKETS_NEXT = 2;
/** Bit 2: `pendingBuckets` is there. */
export const VIEW_BUCKETS_PENDING = 4;
/** Bit 3: `passBuckets` is there (without it the filter passes every bucket). */
export const VIEW_BUCKETS_PASS = 8;
const VIEW_BUCKETS_ALL = VIEW_BUCKETS_CURRENT | VIEW_BUCKETS_NEXT | VIEW_BUCKETS_PENDING | VIEW_BUCKETS_PASS;

/** A view with arrays sized for VIEW_MAX_NODES; reading into it allocates nothing. */
export function createPublishedView(): PublishedView {
  return {
    generation: 0,
    flags: 0,
    accepting: false,
    selfId: 0,
    nodeCount: 0,
    ids: new Uint16Array(VIEW_MAX_NODES),
    weights: new Uint16Array(VIEW_MAX_NODES),
    nextWeights: new Uint16Array(VIEW_MAX_NODES),
    statuses: new Uint8Array(VIEW_MAX_NODES),
    macs: new Uint8Array(6 * VIEW_MAX_NODES),
    ruleSlots: 0,
    ruleParams: new Uint16Array(VIEW_MAX_NODES * VIEW_MAX_RULE_SLOTS),
    bucketTables: 0,
    bucketOwners: new Uint8Array(4 * VIEW_BUCKET_TABLE_WORDS),
    nextBucketOwners: new Uint8Array(4 * VIEW_BUCKET_TABLE_WORDS),
    pendingBuckets: new Uint32Array(VIEW_BUCKET_MASK_WORDS),
    passBuckets: new Uint32Array(VIEW_BUCKET_MASK_WORDS),
    readThrough: Number.POSITIVE_INFINITY,
    pendingFrom: Number.NEGATIVE_INFINITY,
    previousWeights: new Uint16Array(VIEW_MAX_NODES),
    weightSince: new Float64Array(VIEW_MAX_NODES).fill(Number.NEGATIVE_INFINITY),
  };
}

/** A float64 as two words for Atomics (the seqlock's accesses are all Atomics). */
const timeScratch = new Float64Array(1);
const timeWords = new Int32Array(timeScratch.buffer);

function storeTime(w: Int32Array, at: number, ms: number): void {
  timeScratch[0] = ms;
  Atomics.store(w, at, timeWords[0]!);
  Atomics.store(w, at + 1, timeWords[1]!);
}

function loadTime(w: Int32Array, at: number): number {
  timeWords[0] = Atomics.load(w, at);
  timeWords[1] = Atomics.load(w, at + 1);
  return timeScratch[0]!;
}

/** Four owners to a word, little end first. */
function storeTable(w: Int32Array, at: number, owners: Uint8Array): void {
  for (let k = 0; k < VIEW_BUCKET_TABLE_WORDS; k++) {
    const b = 4 * k;
    Atomics.store(w, at + k, owners[b]! | (owners[b + 1]! << 8) | (owners[b + 2]! << 16) | (owners[b + 3]! << 24));
  }
}

function storeMask(w: Int32Array, at: number, mask: Uint32Array): void {
  for (let k = 0; k < VIEW_BUCKET_MASK_WORDS; k++) Atomics.store(w, at + k, mask[k]! | 0);
}

function loadMask(w: Int32Array, at: number, mask: Uint32Array): void {
  for (let k = 0; k < VIEW_BUCKET_MASK_WORDS; k++) mask[k] = Atomics.load(w, at + k);
}

function loadTable(w: Int32Array, at: number, owners: Uint8Array): void {
  for (let k = 0; k < VIEW_BUCKET_TABLE_WORDS; k++) {
    const word = Atomics.load(w, at + k);
    const b = 4 * k;
    owners[b] = word;
    owners[b + 1] = word >>> 8;
    owners[b + 2] = word >>> 16;
    owners[b + 3] = word >>> 24;
  }
}

function viewWords(sab: SharedArrayBuffer, byteOffset: number): Int32Array {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0 || byteOffset + VIEW_BYTES > sab.byteLength) {
    throw new RangeError(`no room for a published view (${VIEW_BYTES} bytes) at offset ${byteOffset}`);
  }
  return new Int32Array(sab, byteOffset, VIEW_WORDS);
}

export class ViewWriter {
  private readonly w: Int32Array;
  private gen: number;

  /** A SharedArrayBuffer holding one view (generation 0: empty, not accepting). */
  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(VIEW_BYTES);
  }

  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    this.w = viewWords(sab, byteOffset);
    this.gen = Atomics.load(this.w, VIEW_GENERATION);
    // A writer that died mid-publication left an odd generation: start from the next even.
    if ((this.gen & 1) !== 0) this.gen = (this.gen + 1) | 0;
  }

  /**
   * Publishes `view` (its `generation` is ignored; FLAGS bit 0 comes from `accepting`);
   * returns the new generation.
   */
  publish(view: PublishedView): number {
    const n = view.nodeCount;
    if (!Number.isInteger(n) || n < 0 || n > VIEW_MAX_NODES) {
      throw new RangeError(`a view holds 0..${VIEW_MAX_NODES} nodes, got ${n}`);
    }
    const w = this.w;
    const ids = view.ids;
    const weights = view.weights;
    const nextWeights = view.nextWeights;
    const statuses = view.statuses;
    const macs = view.macs;
    Atomics.store(w, VIEW_GENERATION, (this.gen + 1) | 0);
    Atomics.store(w, VIEW_FLAGS, (view.flags & ~VIEW_FLAG_ACCEPTING) | (view.accepting ? VIEW_FLAG_ACCEPTING : 0));
    Atomics.store(w, VIEW_SELF_ID, view.selfId & 0xffff);
    Atomics.store(w, VIEW_NODE_COUNT, n);
    for (let i = 0; i < n; i++) {
      const b = VIEW_NODES + i * VIEW_NODE_WORDS;
      const m = i * 6;
      Atomics.store(w, b, (ids[i]! & 0xffff) | (weights[i]! << 16));
      Atomics.store(w, b + 1, (statuses[i]! & 0xff) | (macs[m]! << 8) | (macs[m + 1]! << 16) | (macs[m + 2]! << 24));
      Atomics.store(w, b + 2, macs[m + 3]! | (macs[m + 4]! << 8) | (macs[m + 5]! << 16));
      Atomics.store(w, b + 3, nextWeights[i]!);
    }
    const slots = view.ruleSlots;
    if (!Number.isInteger(slots) || slots < 0 || slots > VIEW_MAX_RULE_SLOTS) throw new RangeError(`a view holds 0..${VIEW_MAX_RULE_SLOTS} rule slots, got ${slots}`);
    Atomics.store(w, VIEW_RULES, slots);
    const params = view.ruleParams;
    const words = (slots + 1) >> 1;
    for (let i = 0; i < n; i++) {
      const b = VIEW_RULES + 1 + i * VIEW_RULE_WORDS;
      const p = i * VIEW_MAX_RULE_SLOTS;
      for (let k = 0; k < words; k++) Atomics.store(w, b + k, params[p + 2 * k]! | ((2 * k + 1 < VIEW_MAX_RULE_SLOTS ? params[p + 2 * k + 1]! : 0) << 16));
    }
    const tables = view.bucketTables & VIEW_BUCKETS_ALL;
    Atomics.store(w, VIEW_BUCKETS, tables);
    if ((tables & VIEW_BUCKETS_CURRENT) !== 0) storeTable(w, VIEW_BUCKETS + 1, view.bucketOwners);
    if ((tables & VIEW_BUCKETS_NEXT) !== 0) storeTable(w, VIEW_BUCKETS + 1 + VIEW_BUCKET_TABLE_WORDS, view.nextBucketOwners);
    if ((tables & VIEW_BUCKETS_PENDING) !== 0) storeMask(w, VIEW_PENDING_BUCKETS, view.pendingBuckets);
    if ((tables & VIEW_BUCKETS_PASS) !== 0) storeMask(w, VIEW_PASS_BUCKETS, view.passBuckets);
    storeTime(w, VIEW_PENDING_FROM, view.pendingFrom);
    for (let i = 0; i < n; i++) {
      const b = VIEW_WEIGHT_HISTORY + i * VIEW_WEIGHT_HISTORY_WORDS;
      Atomics.store(w, b, view.previousWeights[i]!);
      storeTime(w, b + 1, view.weightSince[i]!);
    }
    this.gen = (this.gen + 2) | 0;
    Atomics.store(w, VIEW_GENERATION, this.gen);
    view.generation = this.gen;
    this.storeReadThrough(view.readThrough);
    return this.gen;
  }

  /**
   * The control plane has read every control frame received before `ms`, and the view
   * published last reflects them: stored after that view, without a new one (a repeated or
   * forged announcement changes nothing else).
   */
  storeReadThrough(ms: number): void {
    const w = this.w;
    const seq = Atomics.load(w, VIEW_READ_THROUGH);
    Atomics.store(w, VIEW_READ_THROUGH, (seq + 1) | 0);
    storeTime(w, VIEW_READ_THROUGH + 1, ms);
    Atomics.store(w, VIEW_READ_THROUGH, (seq + 2) | 0);
  }
}

export class ViewReader {
  private readonly w: Int32Array;

  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    this.w = viewWords(sab, byteOffset);
  }

  /** The current generation (one Atomics.load); poll it per batch, read() when it changed. */
  generation(): number {
    return Atomics.load(this.w, VIEW_GENERATION);
  }

  /**
   * ViewWriter.storeReadThrough's time (-Infinity before any). Read it before `generation()`:
   * a view published before the time was stored then has its generation seen too.
   */
  readThrough(): number {
    const w = this.w;
    for (let attempt = 0; attempt < 10_000; attempt++) {
      const seq = Atomics.load(w, VIEW_READ_THROUGH);
      if ((seq & 1) !== 0) continue;
      const ms = loadTime(w, VIEW_READ_THROUGH + 1);
      if (Atomics.load(w, VIEW_READ_THROUGH) === seq) return seq === 0 ? Number.NEGATIVE_INFINITY : ms;
    }
    return Number.NEGATIVE_INFINITY;
  }

  /**
   * Copies a consistent view into `into` and sets `into.generation`; retries while the writer
   * is busy, up to `maxAttempts` times. Returns false if no consistent copy was made (the
   * writer kept publishing, or died mid-write); `into` then holds garbage.
   */
  read(into: PublishedView, maxAttempts = 10_000): boolean {
    const w = this.w;
    const ids = into.ids;
    const weights = into.weights;
    const nextWeights = into.nextWeights;
    const statuses = into.statuses;
    const macs = into.macs;
    const params = into.ruleParams;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const g1 = Atomics.load(w, VIEW_GENERATION);
      if ((g1 & 1) !== 0) continue;
      const flags = Atomics.load(w, VIEW_FLAGS);
      const selfId = Atomics.load(w, VIEW_SELF_ID);
      let n = Atomics.load(w, VIEW_NODE_COUNT);
      if (n < 0 || n > VIEW_MAX_NODES) n = 0; // only possible in a torn read, rejected below
      for (let i = 0; i < n; i++) {
        const b = VIEW_NODES + i * VIEW_NODE_WORDS;
        const m = i * 6;
        const w0 = Atomics.load(w, b);
        const w1 = Atomics.load(w, b + 1);
        const w2 = Atomics.load(w, b + 2);
        nextWeights[i] = Atomics.load(w, b + 3);
        ids[i] = w0;
        weights[i] = w0 >>> 16;
        statuses[i] = w1;
        macs[m] = w1 >>> 8;
        macs[m + 1] = w1 >>> 16;
        macs[m + 2] = w1 >>> 24;
        macs[m + 3] = w2;
        macs[m + 4] = w2 >>> 8;
        macs[m + 5] = w2 >>> 16;
      }
      let slots = Atomics.load(w, VIEW_RULES);
      if (slots < 0 || slots > VIEW_MAX_RULE_SLOTS) slots = 0; // torn read only
      const words = (slots + 1) >> 1;
      for (let i = 0; i < n; i++) {
        const b = VIEW_RULES + 1 + i * VIEW_RULE_WORDS;
        const p = i * VIEW_MAX_RULE_SLOTS;
        for (let k = 0; k < words; k++) {
          const word = Atomics.load(w, b + k);
          params[p + 2 * k] = word;
          if (2 * k + 1 < VIEW_MAX_RULE_SLOTS) params[p + 2 * k + 1] = word >>> 16;
        }
      }
      const tables = Atomics.load(w, VIEW_BUCKETS);
      if ((tables & VIEW_BUCKETS_CURRENT) !== 0) loadTable(w, VIEW_BUCKETS + 1, into.bucketOwners);
      if ((tables & VIEW_BUCKETS_NEXT) !== 0) loadTable(w, VIEW_BUCKETS + 1 + VIEW_BUCKET_TABLE_WORDS, into.nextBucketOwners);
      if ((tables & VIEW_BUCKETS_PENDING) !== 0) loadMask(w, VIEW_PENDING_BUCKETS, into.pendingBuckets);
      if ((tables & VIEW_BUCKETS_PASS) !== 0) loadMask(w, VIEW_PASS_BUCKETS, into.passBuckets);
      const readThrough = this.readThrough();
      const pendingFrom = loadTime(w, VIEW_PENDING_FROM);
      for (let i = 0; i < n; i++) {
        const b = VIEW_WEIGHT_HISTORY + i * VIEW_WEIGHT_HISTORY_WORDS;
        into.previousWeights[i] = Atomics.load(w, b);
        into.weightSince[i] = loadTime(w, b + 1);
      }
      if (Atomics.load(w, VIEW_GENERATION) === g1) {
        into.readThrough = readThrough;
        into.pendingFrom = pendingFrom;
        into.generation = g1;
        into.bucketTables = tables;
        into.flags = flags;
        into.accepting = (flags & VIEW_FLAG_ACCEPTING) !== 0;
        into.selfId = selfId;
        into.nodeCount = n;
        into.ruleSlots = slots;
        return true;
      }
    }
    return false;
  }
}
