import test from 'ava';
import {
  BUCKET_COUNT,
  bucketCounts,
  bucketDigest,
  bucketOf,
  bucketTargets,
  canonicalBuckets,
  createBucketTable,
  NO_OWNER,
  rebalanceBuckets,
  type BucketMembers,
} from '../../../src/cluster/buckets.js';
import { deriveElectionKey, keyedElectionHash, mix32 } from '../../../src/cluster/hash.js';
import { idealMoves } from './fixtures/ideal-moves.js';

/** A deterministic pseudo-random sequence (tests must not differ run to run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    return mix32(s) / 4294967296;
  };
}

interface Member {
  mac: number[];
  weight: number;
}

/** Members in table order (sorted by MAC), as a view lists them. */
function view(members: Member[]): BucketMembers {
  const sorted = [...members].sort((a, b) => compareMac(a.mac, b.mac));
  return { count: sorted.length, weights: sorted.map((m) => m.weight), macs: sorted.flatMap((m) => m.mac) };
}

function compareMac(a: number[], b: number[]): number {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function member(id: number, weight = 1): Member {
  return { mac: [0x02, 0, (id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff, 0x10], weight };
}

/** Owner MAC per bucket, as text: what the cluster agrees on, whatever the local numbering. */
function ownerMacs(table: { owners: Uint8Array; macs: Uint8Array }): string[] {
  return [...table.owners].map((o) => (o === NO_OWNER ? '-' : [...table.macs.subarray(o * 6, o * 6 + 6)].join(':')));
}

test('bucketOf takes the top bits of the election hash: every bucket is reached, in order of the hash', (t) => {
  t.is(bucketOf(0), 0);
  t.is(bucketOf(0xffffffff), BUCKET_COUNT - 1);
  t.is(bucketOf(0x80000000), BUCKET_COUNT / 2);
  const seen = new Set<number>();
  for (let i = 0; i < 200_000; i++) seen.add(bucketOf(mix32(i)));
  t.is(seen.size, BUCKET_COUNT);
});

test('targets: shares of 1024 in proportion to the weights, off by less than one bucket, adding up to 1024', (t) => {
  for (const weights of [[1], [1, 1], [1, 1, 1], [1, 2], [100, 200, 300, 50], Array.from({ length: 64 }, (_, i) => 1 + (i % 7))]) {
    const out = new Int32Array(weights.length);
    bucketTargets({ count: weights.length, weights, macs: [] }, out);
    const sum = weights.reduce((a, b) => a + b, 0);
    t.is(out.reduce((a, b) => a + b, 0), BUCKET_COUNT, `${weights.length} members`);
    weights.forEach((w, i) => t.true(Math.abs(out[i]! - (BUCKET_COUNT * w) / sum) < 1, `member ${i} of ${weights.join(',')}: ${out[i]}`));
  }
});

test('a weight of 0 or a 65th member is refused: a table holds 1..64 capacities', (t) => {
  const table = createBucketTable();
  t.throws(() => canonicalBuckets({ count: 2, weights: [1, 0], macs: [...member(1).mac, ...member(2).mac] }, table), { message: /capacities above 0/ });
  t.throws(() => canonicalBuckets({ count: 65, weights: new Array(65).fill(1), macs: [] }, table), { message: /0\.\.64 members/ });
});

test('canonical: every member holds exactly its target, for 1 to 64 members, equal and mixed weights', (t) => {
  for (let n = 1; n <= 64; n++) {
    for (const mixed of [false, true]) {
      const members = view(Array.from({ length: n }, (_, i) => member(i + 1, mixed ? 1 + ((i * 7) % 5) : 1)));
      const table = createBucketTable();
      canonicalBuckets(members, table);
      const targets = new Int32Array(n);
      bucketTargets(members, targets);
      const counts = new Int32Array(n);
      bucketCounts(table, counts);
      t.deepEqual([...counts], [...targets], `${n} members, ${mixed ? 'mixed' : 'equal'} weights`);
    }
  }
});

test('no members: no bucket has an owner; one member: it has them all', (t) => {
  const table = createBucketTable();
  canonicalBuckets({ count: 0, weights: [], macs: [] }, table);
  t.true(table.owners.every((o) => o === NO_OWNER));
  canonicalBuckets(view([member(9)]), table);
  t.true(table.owners.every((o) => o === 0));
});

test('canonical depends on the members, not on the order they were listed in: alike on every node', (t) => {
  const members = Array.from({ length: 12 }, (_, i) => member(i * 37 + 5, 1 + (i % 3)));
  const a = createBucketTable();
  canonicalBuckets(view(members), a);
  const shuffled = [...members].reverse();
  const b = createBucketTable();
  // view() sorts, as every view is in MAC order; the owners by MAC must match whatever order came in.
  canonicalBuckets(view(shuffled), b);
  t.deepEqual(ownerMacs(a), ownerMacs(b));
  t.is(bucketDigest(a), bucketDigest(b));
});

test('load over a million keyed sources: the busiest member within 1.05 of the mean, for 2 to 64 members', (t) => {
  const [k0, k1] = deriveElectionKey(new Uint8Array(32).fill(3));
  const perBucket = new Int32Array(BUCKET_COUNT);
  for (let s = 0; s < 1_000_000; s++) perBucket[bucketOf(keyedElectionHash(k0!, k1!, (0x0a000000 + s) >>> 0, 0))]!++;
  const worst: string[] = [];
  for (const n of [2, 3, 4, 5, 8, 16, 32, 48, 64]) {
    const table = createBucketTable();
    canonicalBuckets(view(Array.from({ length: n }, (_, i) => member(i + 1))), table);
    const load = new Float64Array(n);
    for (let b = 0; b < BUCKET_COUNT; b++) load[table.owners[b]!]! += perBucket[b]!;
    const ratio = Math.max(...load) / (1_000_000 / n);
    worst.push(`${n}: ${ratio.toFixed(3)}`);
    t.true(ratio <= 1.05, `${n} members: busiest ${ratio.toFixed(3)} × the mean`);
  }
  t.log(`busiest / mean: ${worst.join(', ')}`);
});

test('rebalance: through 300 joins, leaves and weight changes, shares stay exact and each change moves only the ideal number of buckets', (t) => {
  const random = rng(42);
  let members: Member[] = Array.from({ length: 3 }, (_, i) => member(i + 1));
  let nextId = 100;
  let table = createBucketTable();
  canonicalBuckets(view(members), table);
  let moved = 0;
  let ideal = 0;
  const counts = new Int32Array(64);
  const targets = new Int32Array(64);
  for (let step = 0; step < 300; step++) {
    const r = random();
    if ((r < 0.4 && members.length < 64) || members.length === 1) members = [...members, member(nextId++, 1 + Math.floor(random() * 4))];
    else if (r < 0.75) members = members.filter((_, i) => i !== Math.floor(random() * members.length));
    else {
      const k = Math.floor(random() * members.length);
      members = members.map((m, i) => (i === k ? { ...m, weight: 1 + Math.floor(random() * 8) } : m));
    }
    const next = view(members);
    const out = createBucketTable();
    const moves = rebalanceBuckets(table, next, out);
    const want = idealMoves(table, next);
    t.is(moves, want, `step ${step}: ${next.count} members`);
    bucketCounts(out, counts);
    bucketTargets(next, targets);
    t.deepEqual([...counts.subarray(0, next.count)], [...targets.subarray(0, next.count)], `step ${step}`);
    moved += moves;
    ideal += want;
    table = out;
  }
  t.log(`300 changes: ${moved} buckets moved, ideal ${ideal}`);
});

test('rebalance after a join: the newcomer takes its share, and every other bucket stays where it was', (t) => {
  const before = createBucketTable();
  const three = [member(1), member(2), member(3)];
  canonicalBuckets(view(three), before);
  const after = createBucketTable();
  const moves = rebalanceBuckets(before, view([...three, member(4)]), after);
  t.is(moves, BUCKET_COUNT / 4);
  const was = ownerMacs(before);
  const now = ownerMacs(after);
  const newcomer = member(4).mac.join(':');
  for (let b = 0; b < BUCKET_COUNT; b++) if (was[b] !== now[b]) t.is(now[b], newcomer, `bucket ${b} moved to someone else than the newcomer`);
});

test('rebalance with the same members and weights moves nothing; a changed table has another digest', (t) => {
  const members = view([member(1), member(2, 3), member(7)]);
  const a = createBucketTable();
  canonicalBuckets(members, a);
  const b = createBucketTable();
  t.is(rebalanceBuckets(a, members, b), 0);
  t.deepEqual([...b.owners], [...a.owners]);
  t.is(bucketDigest(a), bucketDigest(b));
  b.owners[17] = (b.owners[17]! + 1) % 3;
  t.not(bucketDigest(a), bucketDigest(b));
});
