import test from 'ava';
import { LnlbElection } from '../../../src/cluster/election.js';
import { electionHash, mix32 } from '../../../src/cluster/hash.js';

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

test('weight is a load: a node with twice the weight gets half the share', (t) => {
  const election = new LnlbElection();
  election.rebuild({ count: 2, ids: [1, 2], weights: [2, 1] });
  const counts = owners(election, 30_000);
  const ratio = counts.get(2)! / counts.get(1)!;
  t.true(ratio > 1.8 && ratio < 2.2, `ratio ${ratio}`);
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
