import test from 'ava';
import { BucketElection, createElection, ELECTIONS, LnlbElection, type Election } from '../../../src/cluster/election.js';
import { deriveElectionKey, electionHash, keyedElectionHash, mix32 } from '../../../src/cluster/hash.js';

function owners(election: LnlbElection, sources: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let s = 0; s < sources; s++) {
    const owner = election.electOwner(electionHash(0x0a000000 + s, 0));
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}

test('equal weights spread sources evenly over the members', (t) => {
  const election = new LnlbElection();
  election.rebuild({ count: 3, ids: [7, 3, 9], weights: [1, 1, 1] });
  const counts = owners(election, 30_000);
  t.deepEqual([...counts.keys()].sort((a, b) => a - b), [3, 7, 9]);
  for (const n of counts.values()) t.true(Math.abs(n - 10_000) < 600, `share ${n} of 30000`);
});

/** Member i has MAC 02:00:00:00:00:i (the rendezvous election scores by MAC). */
const macsOf = (ids: number[]): number[] => ids.flatMap((id) => [2, 0, 0, 0, 0, id]);

/** New clients per member over `sources` sources (keyed election hash, as a cluster with a key elects). */
function shares(election: Election, sources: number): Map<number, number> {
  const [k0, k1] = deriveElectionKey(new Uint8Array(32).fill(7));
  const counts = new Map<number, number>();
  for (let s = 0; s < sources; s++) {
    const owner = election.electOwner(keyedElectionHash(k0!, k1!, (0x0a000000 + s) >>> 0, 0));
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}

for (const name of ELECTIONS) {
  test(`${name}: a weight is a capacity: a node of weight 2 gets about twice the new clients of weight 1`, (t) => {
    const election = createElection(name);
    election.rebuild({ count: 2, ids: [1, 2], weights: [1, 2], macs: macsOf([1, 2]) });
    const counts = shares(election, 100_000);
    const ratio = counts.get(2)! / counts.get(1)!;
    t.log(`${name}: weight 2 / weight 1 = ${ratio.toFixed(3)} over 100000 sources`);
    t.true(ratio > 1.9 && ratio < 2.1, `ratio ${ratio}`);
  });

  test(`${name}: shares follow the weights over several nodes (100, 200, 300, 50), and scaling every weight changes no share`, (t) => {
    const ids = [1, 2, 3, 4];
    const weights = [100, 200, 300, 50];
    const total = weights.reduce((a, b) => a + b, 0);
    const election = createElection(name);
    election.rebuild({ count: 4, ids, weights, macs: macsOf(ids) });
    const counts = shares(election, 200_000);
    ids.forEach((id, i) => {
      const expected = (200_000 * weights[i]!) / total;
      t.true(Math.abs(counts.get(id)! - expected) < expected * 0.05, `node ${id} weight ${weights[i]}: ${counts.get(id)} of ~${expected}`);
    });
    const scaled = createElection(name);
    scaled.rebuild({ count: 4, ids, weights: weights.map((w) => w * 2), macs: macsOf(ids) });
    for (let s = 0; s < 5000; s++) t.is(scaled.electOwner(mix32(s)), election.electOwner(mix32(s)));
  });

  test(`${name}: equal weights elect as the load rule of earlier versions did (a rolling upgrade is safe while weights are equal)`, (t) => {
    // The tables the load rule built, for equal weights: LNLB's shares were sum × 64 / weight
    // = 64 n each; rendezvous's capacity 1 / weight, equal for all.
    const ids = [4, 9, 2];
    const now = createElection(name);
    now.rebuild({ count: 3, ids, weights: [100, 100, 100], macs: macsOf(ids) });
    const before = createElection(name);
    before.rebuild({ count: 3, ids, weights: [1, 1, 1], macs: macsOf(ids) });
    for (let s = 0; s < 5000; s++) t.is(now.electOwner(mix32(s)), before.electOwner(mix32(s)));
  });
}

test('lnlb: extreme weights (1 and 1000) keep their proportion', (t) => {
  const election = new LnlbElection();
  election.rebuild({ count: 2, ids: [1, 2], weights: [1, 1000] });
  const counts = shares(election, 400_000);
  const ratio = counts.get(2)! / (counts.get(1) ?? 1);
  t.true(ratio > 800 && ratio < 1250, `ratio ${ratio}`);
});

test('the same inputs elect the same owner on every node', (t) => {
  const a = new LnlbElection();
  const b = new LnlbElection();
  a.rebuild({ count: 4, ids: [1, 2, 3, 4], weights: [1, 1, 1, 1] });
  b.rebuild({ count: 4, ids: new Uint16Array([1, 2, 3, 4]), weights: new Uint16Array([1, 1, 1, 1]) });
  for (let s = 0; s < 1000; s++) t.is(a.electOwner(mix32(s)), b.electOwner(mix32(s)));
});

test('a zero weight keeps the previous table; no member elects nobody', (t) => {
  const election = new LnlbElection();
  t.is(election.electOwner(123), -1);
  election.rebuild({ count: 2, ids: [1, 2], weights: [1, 1] });
  election.rebuild({ count: 3, ids: [1, 2, 3], weights: [1, 0, 1] });
  t.is(election.memberCount, 2);
  t.true([1, 2].includes(election.electOwner(123)));
});

test('bucket: a key\'s owner is its bucket\'s in the view\'s table, so each member gets its exact share of the 1024 buckets', (t) => {
  const election = new BucketElection();
  const ids = [4, 9, 2];
  election.rebuild({ count: 3, ids, weights: [1, 1, 2], macs: macsOf(ids) });
  const perBucket = new Map<number, Set<number>>();
  const buckets = new Map<number, number>();
  for (let s = 0; s < 300_000; s++) {
    const hash = mix32(s * 2654435761);
    const owner = election.electOwner(hash);
    const bucket = hash >>> 22;
    perBucket.set(bucket, (perBucket.get(bucket) ?? new Set()).add(owner));
    buckets.set(bucket, owner);
  }
  t.true([...perBucket.values()].every((owners) => owners.size === 1), 'every key of a bucket has the bucket\'s owner');
  const counts = new Map<number, number>();
  for (const owner of buckets.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  t.deepEqual(Object.fromEntries(counts), { 4: 256, 9: 256, 2: 512 });
  // The same view on another node: the same owners, key by key.
  const other = new BucketElection();
  other.rebuild({ count: 3, ids, weights: [1, 1, 2], macs: macsOf(ids) });
  for (let s = 0; s < 5000; s++) t.is(other.electOwner(mix32(s)), election.electOwner(mix32(s)));
  const empty = new BucketElection();
  t.is(empty.electOwner(1), -1);
});
