/**
 * Ownership by bucket: a new key's owner is the owner of its bucket, the top BUCKET_BITS of
 * its election hash, and the cluster agrees on a table of BUCKET_COUNT owners. A table is what
 * a kernel filter can hold (bucket-filter.ts turns a node's buckets into a few hundred cBPF
 * comparisons), where a per-key rendezvous needs every member scored for every frame.
 *
 * Two properties are asked of the table, and no table that is a function of the view alone
 * has both (measured: with exact shares, the best such fill, a stable matching on rendezvous
 * scores, moves 1.2 to 2.4 times the buckets a join or leave has to move; with free shares, as
 * plain rendezvous per bucket, a 64-node cluster's largest share is 1.3 times the mean):
 * - even: each member holds its share of BUCKET_COUNT, weight_i / sum, to one bucket
 *   (largest remainder), so with 1024 buckets the largest load is within 1.05 of the mean up
 *   to 64 members;
 * - minimal moves: a change moves only the buckets it has to (those of a member that left, and
 *   the excess of each member whose share fell), so a join, leave or weight change moves
 *   exactly the ideal number.
 * So the table has a history, as Windows NLB's bins do: `rebalanceBuckets` derives the next
 * table from the previous one, and the members must agree on it (bucketDigest, carried where
 * the view is agreed). `canonicalBuckets` is the table of a view with no history: the first
 * view, or the fall-back when members find that their tables differ.
 *
 * Members are numbered in table order (sorted by MAC, as in every view) and known by MAC
 * across views. Pure: members in, owners out; allocation only per table, never per key.
 */

import { macSeed, MAX_MEMBERS } from './election.js';
import { mix32 } from './hash.js';

export const BUCKET_BITS = 10;
export const BUCKET_COUNT = 1 << BUCKET_BITS;
/** A bucket no member holds (a table of no members). */
export const NO_OWNER = 0xff;

/** The bucket of a key, from its election hash (hash.ts): the top bits, the hash's best mixed. */
export function bucketOf(hash: number): number {
  return hash >>> (32 - BUCKET_BITS);
}

/** The members a table is made for: table order, a weight (a capacity, > 0) and 6 MAC bytes each. */
export interface BucketMembers {
  readonly count: number;
  readonly weights: ArrayLike<number>;
  readonly macs: ArrayLike<number>;
}

/** A table: the owner of each bucket (an index into `macs`, table order), and whose MACs those are. */
export interface BucketTable {
  readonly owners: Uint8Array;
  readonly count: number;
  readonly macs: Uint8Array;
}

export function createBucketTable(): { owners: Uint8Array; count: number; macs: Uint8Array } {
  return { owners: new Uint8Array(BUCKET_COUNT).fill(NO_OWNER), count: 0, macs: new Uint8Array(6 * MAX_MEMBERS) };
}

function checkMembers(members: BucketMembers): void {
  if (members.count < 0 || members.count > MAX_MEMBERS) throw new RangeError(`a bucket table has 0..${MAX_MEMBERS} members, got ${members.count}`);
  for (let i = 0; i < members.count; i++) {
    const w = members.weights[i] ?? 0;
    if (!(w > 0) || !Number.isFinite(w)) throw new RangeError(`member ${i}: a bucket table's weights are capacities above 0, got ${w}`);
  }
}

/**
 * Each member's number of buckets: BUCKET_COUNT × weight / sum, the remainders given out
 * largest first (ties in table order), so the counts differ from the exact shares by less than
 * one bucket and add up to BUCKET_COUNT.
 */
export function bucketTargets(members: BucketMembers, out: Int32Array): void {
  checkMembers(members);
  const n = members.count;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += members.weights[i]!;
  const remainders: number[] = [];
  let given = 0;
  for (let i = 0; i < n; i++) {
    const exact = (BUCKET_COUNT * members.weights[i]!) / sum;
    out[i] = Math.floor(exact);
    given += out[i]!;
    remainders.push(i);
  }
  const frac = (i: number): number => (BUCKET_COUNT * members.weights[i]!) / sum - out[i]!;
  remainders.sort((a, b) => frac(b) - frac(a) || a - b);
  for (let k = 0; given < BUCKET_COUNT && n > 0; k++, given++) out[remainders[k % n]!]!++;
}

/**
 * How much member `seed` wants `bucket`: weighted rendezvous (weight / -ln u), the same form as
 * the per-key election, so the fill below is rendezvous held to the shares.
 */
function bucketScore(bucket: number, seed: number, weight: number): number {
  const u = (mix32(mix32(bucket ^ 0x2545f491) ^ seed) + 0.5) / 4294967296;
  return weight / -Math.log(u);
}

function copyMembers(members: BucketMembers, table: { count: number; macs: Uint8Array }): void {
  table.count = members.count;
  for (let b = 0; b < 6 * members.count; b++) table.macs[b] = members.macs[b] ?? 0;
}

/**
 * Gives the free buckets (owner NO_OWNER) to the members below their target: of every pair
 * (free bucket, member with room) the highest score first, ties to the lower (bucket, member)
 * position. A stable matching: no bucket and member would both rather have each other than what
 * they got.
 *
 * Not by sorting every pair (18 ms for 64 members): a heap holds each free bucket under its
 * best member with room. A member's filling up leaves some keys too high, so a popped bucket
 * whose member is full is scored again and pushed back; one that still has room is the best
 * pair left, since every other key is at least its bucket's true best.
 */
function fill(owners: Uint8Array, members: BucketMembers, room: Int32Array): void {
  const n = members.count;
  const takers: number[] = [];
  for (let i = 0; i < n; i++) if (room[i]! > 0) takers.push(i);
  const free: number[] = [];
  for (let b = 0; b < BUCKET_COUNT; b++) if (owners[b] === NO_OWNER) free.push(b);
  const t = takers.length;
  if (t === 0 || free.length === 0) return;
  const scores = new Float64Array(free.length * t);
  for (let k = 0; k < t; k++) {
    const i = takers[k]!;
    const seed = macSeed(members.macs, i);
    const weight = members.weights[i]!;
    for (let f = 0; f < free.length; f++) scores[f * t + k] = bucketScore(free[f]!, seed, weight);
  }
  // Each free bucket's best taker with room: its position k in takers, or -1.
  const best = (f: number): number => {
    let at = -1;
    let top = -1;
    for (let k = 0; k < t; k++) {
      if (room[takers[k]!]! === 0) continue;
      const v = scores[f * t + k]!;
      if (v > top) {
        top = v;
        at = k;
      }
    }
    return at;
  };
  // A binary max-heap of free buckets by (score of their best, then lower pair position).
  const heap = new Int32Array(free.length);
  const pick = new Int32Array(free.length);
  let size = 0;
  const above = (a: number, b: number): boolean => {
    const pa = a * t + pick[a]!;
    const pb = b * t + pick[b]!;
    const sa = scores[pa]!;
    const sb = scores[pb]!;
    return sa > sb || (sa === sb && pa < pb);
  };
  const push = (f: number): void => {
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!above(f, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = f;
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap[--size]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const c = l + 1 < size && above(heap[l + 1]!, heap[l]!) ? l + 1 : l;
      if (!above(heap[c]!, last)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
    return top;
  };
  for (let f = 0; f < free.length; f++) {
    pick[f] = best(f);
    if (pick[f]! >= 0) push(f);
  }
  while (size > 0) {
    const f = pop();
    const i = takers[pick[f]!]!;
    if (room[i]! > 0) {
      owners[free[f]!] = i;
      room[i]!--;
      continue;
    }
    pick[f] = best(f);
    if (pick[f]! >= 0) push(f);
  }
}

/** The table of a view with no history: every bucket filled from scratch (see fill). */
export function canonicalBuckets(members: BucketMembers, out: { owners: Uint8Array; count: number; macs: Uint8Array }): void {
  const room = new Int32Array(Math.max(1, members.count));
  bucketTargets(members, room);
  out.owners.fill(NO_OWNER);
  copyMembers(members, out);
  if (members.count === 0) return;
  fill(out.owners, members, room);
}

/** Member i's MAC (6 bytes at i × 6) as one number: how tables know members across views. */
export function macKey(macs: ArrayLike<number>, i: number): number {
  let key = 0;
  for (let b = 0; b < 6; b++) key = key * 256 + (macs[i * 6 + b] ?? 0);
  return key;
}

/**
 * The next table from the previous one: a bucket stays with its owner while the owner is a
 * member and within its target; the buckets of members that left, and each member's excess
 * (the buckets it wants least), are filled as in canonicalBuckets. Returns how many buckets
 * changed owner, which is the fewest any table with these shares can change: the ideal.
 */
export function rebalanceBuckets(previous: BucketTable, members: BucketMembers, out: { owners: Uint8Array; count: number; macs: Uint8Array }): number {
  const n = members.count;
  const room = new Int32Array(Math.max(1, n));
  bucketTargets(members, room);
  const indexOf = new Map<number, number>();
  for (let i = 0; i < n; i++) indexOf.set(macKey(members.macs, i), i);
  const renumber = new Int32Array(MAX_MEMBERS).fill(-1);
  for (let j = 0; j < previous.count; j++) renumber[j] = indexOf.get(macKey(previous.macs, j)) ?? -1;
  const owners = out.owners;
  const held: number[][] = Array.from({ length: n }, () => []);
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const j = previous.owners[b]!;
    const i = j === NO_OWNER ? -1 : renumber[j]!;
    owners[b] = i < 0 ? NO_OWNER : i;
    if (i >= 0) held[i]!.push(b);
  }
  copyMembers(members, out);
  for (let i = 0; i < n; i++) {
    const excess = held[i]!.length - room[i]!;
    if (excess > 0) {
      // The member keeps the buckets it wants most; ties can't happen between distinct buckets
      // but are broken by bucket number all the same.
      const seed = macSeed(members.macs, i);
      const mine = held[i]!;
      mine.sort((a, b) => bucketScore(a, seed, 1) - bucketScore(b, seed, 1) || a - b);
      for (let k = 0; k < excess; k++) owners[mine[k]!] = NO_OWNER;
      room[i] = 0;
    } else {
      room[i] = -excess;
    }
  }
  if (n > 0) fill(owners, members, room);
  let moved = 0;
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const j = previous.owners[b]!;
    const before = j === NO_OWNER ? -1 : renumber[j]!;
    if (before !== (owners[b] === NO_OWNER ? -1 : owners[b]!)) moved++;
  }
  return moved;
}

/**
 * A 32-bit digest of who owns each bucket (by MAC, so it does not depend on local numbering):
 * members compare it to find out whether their tables agree.
 */
export function bucketDigest(table: BucketTable): number {
  const seeds = new Int32Array(Math.max(1, table.count));
  for (let i = 0; i < table.count; i++) seeds[i] = macSeed(table.macs, i);
  let h = 0x811c9dc5;
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const o = table.owners[b]!;
    h = mix32((h ^ (o === NO_OWNER ? 0x5bd1e995 : seeds[o]!)) + b);
  }
  return h >>> 0;
}

/** Each member's number of buckets in `table` (index: table order). */
export function bucketCounts(table: BucketTable, out: Int32Array): void {
  out.fill(0, 0, table.count);
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const o = table.owners[b]!;
    if (o !== NO_OWNER) out[o]!++;
  }
}

/**
 * A table as a newcomer is handed it (with the tracking state): | count u8 | count × MAC |
 * BUCKET_COUNT × owner u8 |. decodeBucketTable returns undefined for anything else (a wrong
 * length, too many members, an owner that is not one of them).
 */
export function encodeBucketTable(table: BucketTable): Uint8Array {
  const out = new Uint8Array(1 + 6 * table.count + BUCKET_COUNT);
  out[0] = table.count;
  out.set(table.macs.subarray(0, 6 * table.count), 1);
  out.set(table.owners, 1 + 6 * table.count);
  return out;
}

export function decodeBucketTable(bytes: Uint8Array): BucketTable | undefined {
  const count = bytes[0];
  if (count === undefined || count > MAX_MEMBERS || bytes.length !== 1 + 6 * count + BUCKET_COUNT) return undefined;
  const table = createBucketTable();
  table.count = count;
  table.macs.set(bytes.subarray(1, 1 + 6 * count));
  table.owners.set(bytes.subarray(1 + 6 * count));
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const o = table.owners[b]!;
    if (o !== NO_OWNER && o >= count) return undefined;
  }
  return table;
}
