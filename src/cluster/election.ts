/**
 * Election: which node owns a new, untracked affinity key. Pure: the member list in, owner out.
 *
 * A weight is a *capacity*, as every load balancer means it (keepalived, LVS, Windows NLB): a
 * node of weight 2 gets twice the new clients of a node of weight 1. (LNLB, and lnlb before
 * it, read it as a load, share ∝ 1 / weight; main/weight-source.ts turns measured load into
 * capacity.) Both elections give member i the share weight_i / sum(weights).
 *
 * LnlbElection is LNLB's walk: `hash mod sum(shares)` over the shares in table order (members
 * sorted by MAC, so every node numbers them alike), each share ∝ weight. The table is rebuilt
 * only when the view changes; electing is a short scan with no allocation.
 */

import { BUCKET_COUNT, bucketOf, canonicalBuckets, createBucketTable, NO_OWNER } from './buckets.js';
import { mix32 } from './hash.js';

export const MAX_MEMBERS = 64;
/**
 * The weight a draining node announces (`lnlbctl drainstop`): it stays a member, so the flows
 * it tracks stay with it, but no election gives it a new one (RuleElections leaves it out).
 * A marker, not a capacity: above every real weight (1..1000) and still a u16, as the
 * heartbeat carries it (0 cannot be used: a zero weight anywhere keeps the previous table).
 */
export const DRAINING_WEIGHT = 0xffff;

/** What an election needs of the view: ids in table order, their weights and MACs. */
export interface ElectionInput {
  readonly count: number;
  readonly ids: ArrayLike<number>;
  readonly weights: ArrayLike<number>;
  /** 6 bytes per member, table order: the identity every node agrees on (ids are local). */
  readonly macs?: ArrayLike<number>;
  /**
   * The bucket election's table, as the members agreed on it (cluster/bucket-ledger.ts): each
   * bucket's owner, an index into these members. null: the ledger has no table yet (a newcomer
   * waiting for its base), and no new key has an owner. Absent: the view's canonical table.
   */
  readonly bucketOwners?: Uint8Array | null;
}

export interface Election {
  /** Rebuild from the members of a new view. A weight of 0 anywhere keeps the previous table. */
  rebuild(input: ElectionInput): void;
  /**
   * The owning member's id, or -1 when there is no member. `hash` is the key's election hash
   * (hash.ts: keyed with the cluster key when there is one), computed alike on every node.
   */
  electOwner(hash: number): number;
  readonly memberCount: number;
}

/**
 * Shares are whole units: share_i = round(SHARE_SCALE × n² × R × weight_i / sum(weights)), at
 * least 1. With equal weights that is SHARE_SCALE × n each, the table LNLB's load rule built
 * (sum × SHARE_SCALE / weight), so a cluster of equal weights elects exactly as an lnlb from
 * before capacities did (a rolling upgrade is safe while weights are equal). R (resolution) is
 * the ratio of the largest weight to the smallest, rounded up, so the smallest weight still
 * gets about SHARE_SCALE × n units; it is capped so the total stays under MAX_TOTAL, where
 * `hash mod total` is unbiased to within total / 2³² (0.4 %).
 */
const SHARE_SCALE = 64;
const MAX_TOTAL = 1 << 24;

export class LnlbElection implements Election {
  #ids = new Int32Array(MAX_MEMBERS);
  /** cumulative[i] = shares of members 0..i; the owner of h is the first i with h % total < cumulative[i]. */
  #cumulative = new Float64Array(MAX_MEMBERS);
  #count = 0;
  #total = 0;

  get memberCount(): number {
    return this.#count;
  }

  rebuild(input: ElectionInput): void {
    const count = Math.min(input.count, MAX_MEMBERS);
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = 0;
    for (let i = 0; i < count; i++) {
      const w = input.weights[i] ?? 0;
      if (w <= 0) return; // LNLB: a zero weight anywhere keeps the previous table
      sum += w;
      if (w < min) min = w;
      if (w > max) max = w;
    }
    const base = SHARE_SCALE * count * count;
    const resolution = Math.max(1, Math.min(Math.ceil(max / min), Math.floor(MAX_TOTAL / base)));
    const unit = (base * resolution) / sum;
    let running = 0;
    for (let i = 0; i < count; i++) {
      const share = Math.max(1, Math.round(unit * (input.weights[i] ?? 1)));
      running += share;
      this.#ids[i] = input.ids[i] ?? 0;
      this.#cumulative[i] = running;
    }
    this.#count = count;
    this.#total = running;
  }

  /** The walk's modulus: the sum of the shares (a kernel filter takes hash mod this). */
  get totalShares(): number {
    return this.#total;
  }

  /** The end of member i's range (table order): it owns [cumulativeShares(i - 1), cumulativeShares(i)). */
  cumulativeShares(i: number): number {
    return this.#cumulative[i] ?? 0;
  }

  electOwner(hash: number): number {
    const count = this.#count;
    if (count === 0) return -1;
    const point = (hash >>> 0) % this.#total;
    const cumulative = this.#cumulative;
    for (let i = 0; i < count; i++) {
      if (point < cumulative[i]!) return this.#ids[i]!;
    }
    return this.#ids[count - 1]!;
  }
}

/** Member i's rendezvous seed, from its MAC (6 bytes at i × 6): alike on every node. */
export function macSeed(macs: ArrayLike<number>, i: number): number {
  const m = i * 6;
  const hi = ((macs[m] ?? 0) << 8) | (macs[m + 1] ?? 0);
  const lo = (((macs[m + 2] ?? 0) << 24) | ((macs[m + 3] ?? 0) << 16) | ((macs[m + 4] ?? 0) << 8) | (macs[m + 5] ?? 0)) >>> 0;
  return mix32(lo ^ mix32(hi + 0x632be5ab));
}

/**
 * The members an election by MAC works from; undefined when a weight is 0 anywhere (as LNLB:
 * the previous table stays).
 */
function membersByMac(input: ElectionInput, election: string): { count: number; macs: ArrayLike<number> } | undefined {
  const count = Math.min(input.count, MAX_MEMBERS);
  for (let i = 0; i < count; i++) if ((input.weights[i] ?? 0) <= 0) return undefined;
  if (!input.macs) throw new RangeError(`${election} election needs the members' MACs`);
  return { count, macs: input.macs };
}

/**
 * Weighted rendezvous hashing (highest random weight): every member scores every key, the
 * highest score wins. A member's score for a key depends only on the key and that member's
 * MAC, so removing a member re-homes exactly its own keys and adding one takes exactly the keys
 * it now wins: the minimal disruption that `mod sum` lacks (LNLB reshuffles most untracked
 * sources on any change). Weighted by capacity: score = weight / -ln(u) with u uniform in
 * (0, 1) from hash(key, member) (Schindelhauer & Schomaker's weighted form: member i wins with
 * probability weight_i / sum of weights). Scaling every weight alike changes no owner, so
 * equal weights elect as the load rule of earlier lnlb did (1 / weight) and a rolling upgrade
 * is safe while weights are equal.
 *
 * Cost: one mix and one log per member per *new* key (tracked keys never reach the election);
 * about 20 ns per member here. Chosen over a Maglev table because Maglev's greedy fill moves a
 * few keys that did not have to move, and the goal here is within 10% of the ideal.
 */
export class RendezvousElection implements Election {
  #ids = new Int32Array(MAX_MEMBERS);
  #seeds = new Int32Array(MAX_MEMBERS);
  #capacity = new Float64Array(MAX_MEMBERS);
  #count = 0;

  get memberCount(): number {
    return this.#count;
  }

  rebuild(input: ElectionInput): void {
    const members = membersByMac(input, 'rendezvous');
    if (members === undefined) return;
    const { count, macs } = members;
    for (let i = 0; i < count; i++) {
      this.#ids[i] = input.ids[i] ?? 0;
      this.#seeds[i] = macSeed(macs, i);
      this.#capacity[i] = input.weights[i]!;
    }
    this.#count = count;
  }

  electOwner(hash: number): number {
    const count = this.#count;
    if (count === 0) return -1;
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < count; i++) {
      // +0.5 keeps u strictly inside (0, 1): ln(0) and ln(1) would give ±Infinity scores.
      const u = (mix32(hash ^ this.#seeds[i]!) + 0.5) / 4294967296;
      const score = this.#capacity[i]! / -Math.log(u);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    return this.#ids[best]!;
  }
}

/**
 * Ownership by bucket (buckets.ts): a key's owner is its bucket's, from a table of 1024 where
 * each member holds its share exactly (to one bucket), so the busiest member gets within 1.05
 * of the mean up to 64 members, and a kernel filter can hold a node's buckets
 * (net/bucket-filter.ts). Electing is one table read, whatever the number of members.
 *
 * In the daemon the table is the one the members agree on (cluster/bucket-ledger.ts, kept by
 * the control plane and published in the view: `bucketOwners`), whose changes move only the
 * buckets they must. Without one (`bucketOwners` absent: tests, per-rule share elections) it
 * is the view's canonical table, the same on every node with no exchange, whose changes move
 * 1.2 to 2.4 times that. Tracked flows stay with their owner either way.
 */
export class BucketElection implements Election {
  readonly #ids = new Int32Array(MAX_MEMBERS);
  readonly #table = createBucketTable();
  readonly #weights = new Float64Array(MAX_MEMBERS);
  #count = 0;

  get memberCount(): number {
    return this.#count;
  }

  rebuild(input: ElectionInput): void {
    const members = membersByMac(input, 'bucket');
    if (members === undefined) return;
    const { count, macs } = members;
    for (let i = 0; i < count; i++) {
      this.#ids[i] = input.ids[i] ?? 0;
      this.#weights[i] = input.weights[i]!;
    }
    const agreed = input.bucketOwners;
    if (agreed === undefined) canonicalBuckets({ count, weights: this.#weights, macs }, this.#table);
    else if (agreed === null) this.#table.owners.fill(NO_OWNER);
    else for (let b = 0; b < BUCKET_COUNT; b++) this.#table.owners[b] = agreed[b]! < count ? agreed[b]! : NO_OWNER;
    this.#count = count;
  }

  electOwner(hash: number): number {
    if (this.#count === 0) return -1;
    const owner = this.#table.owners[bucketOf(hash)]!;
    return owner === NO_OWNER ? -1 : this.#ids[owner]!;
  }
}

export const ELECTIONS = ['rendezvous', 'lnlb', 'bucket'] as const;
export type ElectionName = (typeof ELECTIONS)[number];

export function createElection(name: ElectionName): Election {
  return name === 'lnlb' ? new LnlbElection() : name === 'bucket' ? new BucketElection() : new RendezvousElection();
}
