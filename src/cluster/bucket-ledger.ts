/**
 * The bucket table a node uses, and how the members come to use the same one. Pure: views,
 * digests heard and tables received in, the table out; time passed in.
 *
 * A table with a history moves only the buckets a change must move (buckets.ts
 * rebalanceBuckets), but only if every member starts from the same table. So each node keeps
 * the last table it knows every member used (`agreed`: every member's heartbeat carried its
 * digest) and, on every view change, derives the next table from that one, not from whatever
 * it used last: nodes that saw different intermediate views (a death and a join noticed in
 * different orders) still land on the same table. A newcomer has no history: it is handed the
 * agreed table with the tracking state (`baseForNewcomer`, `receiveBase`) and serves nothing
 * new before. When members still disagree once a view has been stable for `settleMs` (one
 * missed the agreement, a partition healed), each falls back to the view's canonical table,
 * which needs no history: more buckets move that once, and the tables agree again.
 */

import { bucketDigest, canonicalBuckets, createBucketTable, macKey, rebalanceBuckets, type BucketMembers, type BucketTable } from './buckets.js';
import { mix32 } from './hash.js';

/** A member's digest before it has a table (a newcomer waiting for its base): never a disagreement. */
export const NO_TABLE_DIGEST = 0;

export interface BucketLedgerOptions {
  /** This node's MAC, 6 bytes. */
  selfMac: ArrayLike<number>;
  /** How long a view must be stable before a disagreement makes everyone fall back (a few heartbeats). */
  settleMs: number;
}

type MutableTable = ReturnType<typeof createBucketTable>;

/** A table's digest as heartbeats carry it: never NO_TABLE_DIGEST. */
export function tableDigest(table: BucketTable): number {
  return bucketDigest(table) || 1;
}

function copyTable(from: BucketTable): MutableTable {
  const to = createBucketTable();
  to.owners.set(from.owners);
  to.macs.set(from.macs.subarray(0, from.count * 6));
  to.count = from.count;
  return to;
}

/** How the current table came about (for status and logs). */
export type LedgerSource = 'none' | 'canonical' | 'rebalanced' | 'fallback';

export class BucketLedger {
  readonly #self: number;
  readonly #settleMs: number;
  #view: BucketMembers | undefined;
  #viewAt = Number.NEGATIVE_INFINITY;
  #current: MutableTable | undefined;
  #digest = NO_TABLE_DIGEST;
  #agreed: MutableTable | undefined;
  /** tableDigest(#agreed), kept with it: read on every heartbeat, a whole-table digest each time cost 80 µs. */
  #agreedDigest = NO_TABLE_DIGEST;
  /** A newcomer's base (receiveBase), until it agrees: every view it sees until then starts from it. */
  #base: MutableTable | undefined;
  #source: LedgerSource = 'none';
  /** Digests heard since the view changed, by member MAC. */
  readonly #heard = new Map<number, number>();
  /**
   * A newcomer's table has a history the serving members share only once it came from their
   * base: what it agreed on before (alone, or with other newcomers) is not theirs.
   */
  #fromBase = false;
  /** Buckets moved by the last change (the ideal when rebalanced). */
  lastMoves = 0;
  /** Times the members disagreed in a stable view and fell back to the canonical table. */
  fallbacks = 0;
  /** At the last fall-back: this node's digest and each member's it heard (MAC key → digest), for the log. */
  lastDisagreement: { own: number; heard: [number, number][] } | undefined;

  constructor(options: BucketLedgerOptions) {
    this.#self = macKey(options.selfMac, 0);
    this.#settleMs = options.settleMs;
  }

  /** The table to elect from; undefined while a newcomer waits for its base. */
  get table(): BucketTable | undefined {
    return this.#current;
  }

  /** What this node's heartbeats carry: its table's digest, NO_TABLE_DIGEST without one. */
  get digest(): number {
    return this.#digest;
  }

  /** Every member of the view uses this node's table. */
  get agreed(): boolean {
    return this.#current !== undefined && this.#agreed !== undefined && this.#agreedDigest === this.#digest;
  }

  get source(): LedgerSource {
    return this.#source;
  }

  /**
   * The members or their weights changed. While the cluster forms (`founding`: no member
   * serves yet, this one included) every node takes the view's canonical table: the nodes'
   * first views differ (each starts alone, then hears the others), so none has a history the
   * others share. Otherwise the next table is the agreed one rebalanced; a `newcomer` (it has
   * never served, the others do) rebalances its base, and without one waits for it.
   */
  viewChanged(view: BucketMembers, now: number, founding: boolean, newcomer = false): void {
    this.#view = { count: view.count, weights: Array.from(view.weights).slice(0, view.count), macs: Array.from(view.macs).slice(0, view.count * 6) };
    this.#viewAt = now;
    this.#heard.clear();
    const previous = this.#current;
    if (newcomer && !founding && this.#base === undefined && !this.#fromBase) {
      // Joining a cluster that serves: whatever this node agreed on before (alone, for its
      // first heartbeats) is no history the members share. It waits for its base.
      this.#agreed = undefined;
      this.#current = undefined;
      this.#digest = NO_TABLE_DIGEST;
      this.#source = 'none';
      this.lastMoves = 0;
    } else if (founding && this.#base === undefined) {
      this.#agreed = undefined;
      this.#setCurrent(this.#canonical(this.#view), 'canonical', previous);
    } else if (this.#agreed !== undefined) {
      this.#setCurrent(this.#rebalanced(this.#agreed, this.#view), 'rebalanced', previous);
    } else if (this.#base !== undefined) {
      // A newcomer whose view grew after its base came (it learns of the members one by one):
      // from the base again, as the members did, not from its own table of a partial view.
      this.#setCurrent(this.#rebalanced(this.#base, this.#view), 'rebalanced', previous);
    } else if (this.#current !== undefined) {
      // Never agreed since it got a table: its own table is the best base it has; a
      // disagreement falls back below.
      this.#setCurrent(this.#rebalanced(this.#current, this.#view), 'rebalanced', previous);
    }
  }

  /**
   * The agreed table to hand a newcomer with the tracking state: what the members derive the
   * table of the view with the newcomer from. Undefined when there is none yet.
   */
  baseForNewcomer(): BucketTable | undefined {
    return this.#agreed ?? this.#current;
  }

  /**
   * The table a view would get from this node's base, without taking it (the actors' table
   * under weights that are about to apply); undefined without a base.
   */
  preview(view: BucketMembers): BucketTable | undefined {
    const base = this.#agreed ?? this.#base ?? this.#current;
    return base === undefined ? undefined : this.#rebalanced(base, view);
  }

  /**
   * A newcomer's base arrived (from the member that sent the tracking state). It replaces
   * whatever this node agreed on before: a newcomer alone for its first heartbeats "agrees"
   * with itself on a table of its own, which no member shares.
   */
  receiveBase(base: BucketTable): void {
    this.#fromBase = true;
    this.#agreed = undefined;
    this.#base = copyTable(base);
    if (this.#view !== undefined) this.#setCurrent(this.#rebalanced(base, this.#view), 'rebalanced', this.#current);
  }

  /**
   * This node serves without a table: it joined and no member was left to hand it the base (the
   * sender died). It takes the view's canonical table; if the others' differ, the settled view
   * makes everyone fall back to it (without this, each side waits for the other for ever).
   */
  serveWithoutBase(now: number): void {
    const view = this.#view;
    if (this.#current !== undefined || view === undefined) return;
    this.#base = undefined;
    this.#setCurrent(this.#canonical(view), 'canonical', undefined);
    this.#viewAt = now;
  }

  /**
   * A member's heartbeat carried `digest` (its current table's), derived for the view whose
   * digest is `viewDigest` (viewDigestOf). A member in another view (it has not seen a join,
   * a leave or a weight the same way yet) does not disagree: it has not caught up.
   */
  heard(mac: ArrayLike<number>, digest: number, now: number, viewDigest?: number): void {
    const key = macKey(mac, 0);
    if (key === this.#self || !this.#isMember(key)) return;
    if (viewDigest !== undefined && viewDigest >>> 0 !== this.viewDigest) {
      this.#heard.delete(key);
      return;
    }
    this.#heard.set(key, digest >>> 0);
    this.#check(now);
  }

  /** The digest of the view this node's table is for (heartbeats carry it beside the table's). */
  get viewDigest(): number {
    const view = this.#view;
    return view === undefined ? 0 : viewDigestOf(view);
  }

  /** Time passes: a disagreement in a view stable for settleMs makes this node fall back. */
  tick(now: number): void {
    this.#check(now);
  }

  #isMember(key: number): boolean {
    const view = this.#view;
    if (view === undefined) return false;
    for (let i = 0; i < view.count; i++) if (macKey(view.macs, i) === key) return true;
    return false;
  }

  #check(now: number): void {
    const view = this.#view;
    if (view === undefined || this.#current === undefined) return;
    let all = true;
    let differs = false;
    for (let i = 0; i < view.count; i++) {
      const key = macKey(view.macs, i);
      if (key === this.#self) continue;
      const d = this.#heard.get(key);
      if (d === undefined || d === NO_TABLE_DIGEST) all = false;
      else if (d !== this.#digest) differs = true;
    }
    // A newcomer with its base does not agree with itself alone: the base is the members'
    // history, kept until it agrees with them.
    if (all && !differs && (this.#base === undefined || view.count > 1)) {
      if (this.#agreed === undefined || this.#agreedDigest !== this.#digest) {
        this.#agreed = copyTable(this.#current);
        this.#agreedDigest = this.#digest;
      }
      this.#base = undefined;
      return;
    }
    if (differs && now - this.#viewAt >= this.#settleMs && this.#source !== 'fallback') {
      this.fallbacks++;
      this.lastDisagreement = { own: this.#digest, heard: [...this.#heard] };
      this.#agreed = undefined;
      this.#base = undefined;
      this.#setCurrent(this.#canonical(view), 'fallback', this.#current);
      this.#heard.clear();
      this.#viewAt = now;
    }
  }

  #rebalanced(base: BucketTable, view: BucketMembers): MutableTable {
    const out = createBucketTable();
    rebalanceBuckets(base, view, out);
    return out;
  }

  #canonical(view: BucketMembers): MutableTable {
    const out = createBucketTable();
    canonicalBuckets(view, out);
    return out;
  }

  #setCurrent(table: MutableTable, source: LedgerSource, previous: BucketTable | undefined): void {
    this.lastMoves = previous === undefined ? 0 : movedBuckets(previous, table);
    this.#current = table;
    this.#digest = tableDigest(table);
    this.#source = source;
  }
}

/** Buckets whose owner (by MAC) differs between two tables. */
export function movedBuckets(a: BucketTable, b: BucketTable): number {
  let moved = 0;
  for (let i = 0; i < a.owners.length; i++) {
    const x = a.owners[i]!;
    const y = b.owners[i]!;
    const ka = x < a.count ? macKey(a.macs, x) : -1;
    const kb = y < b.count ? macKey(b.macs, y) : -1;
    if (ka !== kb) moved++;
  }
  return moved;
}

/** A digest of a view as the ledger sees it: its members (by MAC, in order) and their weights. */
export function viewDigestOf(view: BucketMembers): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < view.count; i++) {
    h = mix32((h ^ macKey(view.macs, i)) >>> 0);
    h = mix32((h ^ Math.floor(macKey(view.macs, i) / 0x100000000)) >>> 0);
    h = mix32((h ^ (Number(view.weights[i]) >>> 0)) >>> 0);
  }
  return (h ^ view.count) >>> 0 || 1;
}
