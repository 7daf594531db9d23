import test from 'ava';
import { BucketHandovers, maskCount, NO_TARGET, ownerKeyOf, type HandoverAction } from '../../../src/cluster/bucket-handover.js';
import { tableDigest } from '../../../src/cluster/bucket-ledger.js';
import { BUCKET_COUNT, canonicalBuckets, createBucketTable, macKey, rebalanceBuckets, type BucketMembers, type BucketTable } from '../../../src/cluster/buckets.js';
import { decodeHandover, encodeHandover } from '../../../src/net/handover-message.js';

const RESEND_MS = 300;
const TIMEOUT_MS = 3000;

function macOf(id: number): Uint8Array {
  return Uint8Array.of(0x02, 0, 0, 0, 0, id);
}

function viewOf(ids: number[], weights = ids.map(() => 1)): BucketMembers {
  const sorted = [...ids].sort((a, b) => a - b);
  return { count: sorted.length, weights: sorted.map((id) => weights[ids.indexOf(id)]!), macs: sorted.flatMap((id) => [...macOf(id)]) };
}

function canonical(ids: number[]): BucketTable {
  const t = createBucketTable();
  canonicalBuckets(viewOf(ids), t);
  return t;
}

function rebalanced(from: BucketTable, ids: number[], weights?: number[]): BucketTable {
  const t = createBucketTable();
  rebalanceBuckets(from, viewOf(ids, weights), t);
  return t;
}

function handovers(id: number): BucketHandovers {
  return new BucketHandovers({ selfMac: macOf(id), resendMs: RESEND_MS, maxResends: 2, pendingTimeoutMs: TIMEOUT_MS });
}

function owned(table: BucketTable, id: number): number {
  let n = 0;
  for (let b = 0; b < BUCKET_COUNT; b++) if (ownerKeyOf(table, b) === macKey(macOf(id), 0)) n++;
  return n;
}

const kinds = (actions: HandoverAction[]): string[] => actions.map((a) => a.kind);

/** Node `h` adopts `table` with every other member of `ids` having handed it over: nothing pending, nothing waiting. */
function settled(h: BucketHandovers, ids: number[], table: BucketTable, now: number): void {
  h.membersChanged(ids.map(macOf), now);
  h.adopt(table, tableDigest(table), now);
  for (const id of ids) h.heardHanded(macOf(id), tableDigest(table));
  h.tick(now);
}

test('a founding member has nothing to hand over: it announces the table at once, and holds what it owns until every member has', (t) => {
  const a = handovers(1);
  const table = canonical([1, 2, 3]);
  const digest = tableDigest(table);
  a.membersChanged([macOf(1), macOf(2), macOf(3)], 0);
  t.is(a.adopt(table, digest, 0), undefined);
  t.is(a.handedDigest, digest);
  t.is(a.pendingCount, owned(table, 1), 'everything it owns is gained');
  t.deepEqual(kinds(a.tick(100)), ['handed']);
  a.heardHanded(macOf(2), digest);
  t.deepEqual(kinds(a.tick(150)), [], 'node 3 has not said it yet');
  a.heardHanded(macOf(3), digest);
  const released = a.tick(200);
  t.deepEqual(kinds(released), ['released']);
  t.is(a.pendingCount, 0);
});

test('a join: each member plans only the buckets that move to the newcomer, sends what it scanned, and announces the table once acknowledged', (t) => {
  const before = canonical([1, 2, 3]);
  const after = rebalanced(before, [1, 2, 3, 4]);
  const a = handovers(1);
  settled(a, [1, 2, 3], before, 0);
  a.membersChanged([1, 2, 3, 4].map(macOf), 1000);
  const plan = a.adopt(after, tableDigest(after), 1000);
  t.truthy(plan);
  // Every bucket that changed owner went to node 4, and only those are to be scanned.
  let moved = 0;
  for (let b = 0; b < BUCKET_COUNT; b++) if (ownerKeyOf(before, b) !== ownerKeyOf(after, b)) moved++;
  t.is(plan!.moved, moved);
  t.deepEqual(plan!.targets.map((m) => [...m]), [[...macOf(4)]]);
  for (let b = 0; b < BUCKET_COUNT; b++) t.is(plan!.targetOf[b] === NO_TARGET, ownerKeyOf(before, b) === ownerKeyOf(after, b) || ownerKeyOf(after, b) === macKey(macOf(1), 0));
  t.is(a.pendingCount, 0, 'node 1 gains nothing on a join');
  t.not(a.handedDigest, tableDigest(after), 'not handed before the scan');
  t.true(a.scanned(plan!.id, [macOf(4)], 1010));
  a.sent(plan!.id, macOf(4), 77, 1010);
  t.false(a.acknowledged(macOf(4), 78, 1020), 'another message id is not this handover');
  t.true(a.acknowledged(macOf(4), 77, 1030));
  t.is(a.handedDigest, tableDigest(after));
  t.like(a.counters, { plans: 1, messagesSent: 1, messagesAcknowledged: 1 });
});

test('the newcomer holds every bucket it gains until every member announced the table as handed over, and at most the timeout', (t) => {
  const table = rebalanced(canonical([1, 2, 3]), [1, 2, 3, 4]);
  const digest = tableDigest(table);
  const d = handovers(4);
  d.membersChanged([1, 2, 3, 4].map(macOf), 0);
  t.is(d.adopt(table, digest, 0), undefined, 'a newcomer has nothing to hand over');
  t.is(d.pendingCount, owned(table, 4));
  d.heardHanded(macOf(1), digest);
  d.heardHanded(macOf(2), digest);
  d.tick(100);
  t.deepEqual(d.silentMembers(), [macKey(macOf(3), 0)]);
  t.true(d.pendingCount > 0);
  const timedOut = d.tick(TIMEOUT_MS);
  t.deepEqual(kinds(timedOut), ['release-timeout']);
  t.is(d.pendingCount, 0);
  t.is(d.counters.releaseTimeouts, 1);
});

test('a member that dies or leaves is not waited for (its flows are re-elected, nothing to hand over)', (t) => {
  const table = rebalanced(canonical([1, 2, 3]), [1, 2, 3, 4]);
  const digest = tableDigest(table);
  const d = handovers(4);
  d.membersChanged([1, 2, 3, 4].map(macOf), 0);
  d.adopt(table, digest, 0);
  d.heardHanded(macOf(1), digest);
  d.heardHanded(macOf(2), digest);
  d.membersChanged([1, 2, 4].map(macOf), 200);
  t.deepEqual(kinds(d.tick(200)), ['handed', 'released']);
});

test('an unacknowledged handover is sent again every resend interval, then given up; a receiver that left is dropped from the plan', (t) => {
  const before = canonical([1, 2]);
  const after = rebalanced(before, [1, 2, 3, 4]);
  const a = handovers(1);
  settled(a, [1, 2], before, 0);
  a.membersChanged([1, 2, 3, 4].map(macOf), 0);
  const plan = a.adopt(after, tableDigest(after), 1000)!;
  t.is(plan.targets.length, 2);
  a.scanned(plan.id, [macOf(3), macOf(4)], 1000);
  a.sent(plan.id, macOf(3), 10, 1000);
  a.sent(plan.id, macOf(4), 11, 1000);
  t.deepEqual(kinds(a.tick(1000 + RESEND_MS - 1)), []);
  t.deepEqual(kinds(a.tick(1000 + RESEND_MS)), ['resend', 'resend']);
  t.deepEqual(kinds(a.tick(1000 + 2 * RESEND_MS)), ['resend', 'resend']);
  a.acknowledged(macOf(3), 10, 1000 + 2 * RESEND_MS);
  t.deepEqual(kinds(a.tick(1000 + 3 * RESEND_MS)), ['abandoned', 'handed'], 'two resends allowed, then given up: the table counts as handed over');
  t.is(a.counters.messagesAbandoned, 1);
  // A receiver leaving the view ends its part of a plan.
  const third = rebalanced(after, [1, 2, 3]);
  const again = a.adopt(third, tableDigest(third), 3000);
  t.truthy(again);
  a.scanned(again!.id, again!.targets, 3000);
  a.membersChanged([macOf(1)], 3100); // every receiver gone
  t.is(a.handedDigest, tableDigest(third));
});

test('a change before the last handover is done replaces it: the new plan starts from the last table handed over, so a flow goes where its bucket is now', (t) => {
  const t0 = canonical([1, 2]);
  const t1 = rebalanced(t0, [1, 2, 3]);
  const t2 = rebalanced(t1, [1, 2, 3, 4]);
  const a = handovers(1);
  a.membersChanged([1, 2, 3, 4].map(macOf), 0);
  a.adopt(t0, tableDigest(t0), 0);
  const p1 = a.adopt(t1, tableDigest(t1), 100)!;
  const p2 = a.adopt(t2, tableDigest(t2), 200)!;
  t.false(a.scanned(p1.id, [macOf(3)], 210), 'the first plan\'s scan comes too late: nothing sent for it');
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const was = ownerKeyOf(t0, b);
    const now = ownerKeyOf(t2, b);
    const expected = was !== now && now !== macKey(macOf(1), 0);
    t.is(p2.targetOf[b] !== NO_TARGET, expected, `bucket ${b}`);
    if (expected) t.is(macKey(p2.targets[p2.targetOf[b]!]!, 0), now);
  }
});

test('a weight change moves buckets to the heavier node only; the lighter ones plan them, the heavier one holds them', (t) => {
  const t0 = canonical([1, 2, 3]);
  const t1 = rebalanced(t0, [1, 2, 3], [1, 3, 1]);
  const b = handovers(2);
  settled(b, [1, 2, 3], t0, 0);
  t.is(b.adopt(t1, tableDigest(t1), 100), undefined, 'nothing leaves node 2');
  t.is(b.pendingCount, owned(t1, 2) - owned(t0, 2));
  const a = handovers(1);
  a.membersChanged([1, 2, 3].map(macOf), 0);
  a.adopt(t0, tableDigest(t0), 0);
  const plan = a.adopt(t1, tableDigest(t1), 100)!;
  t.deepEqual(plan.targets.map((m) => [...m]), [[...macOf(2)]]);
  t.is(maskCount(b.pending), owned(t1, 2) - owned(t0, 2));
});

test('reset: a node that forgot its flows starts again as a newcomer (nothing to hand over)', (t) => {
  const t0 = canonical([1, 2]);
  const a = handovers(1);
  a.membersChanged([1, 2].map(macOf), 0);
  a.adopt(t0, tableDigest(t0), 0);
  a.reset();
  const t1 = rebalanced(t0, [1, 2, 3]);
  t.is(a.adopt(t1, tableDigest(t1), 100), undefined);
  t.is(a.handedDigest, tableDigest(t1));
});

test('the handover message: every handler\'s state round-trips; cut, padded or foreign bytes are refused with a reason', (t) => {
  const states = [
    { protocol: 0, state: Uint8Array.of(1, 2, 3) },
    { protocol: 6, state: new Uint8Array(1000).fill(9) },
  ];
  const bytes = encodeHandover({ digest: 0xdeadbeef, states });
  const back = decodeHandover(bytes);
  if ('error' in back) return t.fail(back.error);
  t.is(back.digest, 0xdeadbeef);
  t.deepEqual(
    back.states.map((s) => [s.protocol, [...s.state]]),
    states.map((s) => [s.protocol, [...s.state]]),
  );
  t.regex((decodeHandover(bytes.subarray(0, bytes.length - 1)) as { error: string }).error, /past the end/);
  const padded = new Uint8Array(bytes.length + 2);
  padded.set(bytes);
  t.regex((decodeHandover(padded) as { error: string }).error, /after the last state/);
  t.regex((decodeHandover(Uint8Array.of(1, 2, 3)) as { error: string }).error, /shorter/);
  const foreign = bytes.slice();
  foreign[0] = 0;
  t.regex((decodeHandover(foreign) as { error: string }).error, /magic/);
});

test('the buckets gained from a member that died are not held: its flows are re-elected at once', (t) => {
  const t0 = canonical([1, 2, 3]);
  const t1 = rebalanced(t0, [1, 2]);
  const a = handovers(1);
  settled(a, [1, 2, 3], t0, 0);
  a.membersChanged([1, 2].map(macOf), 1000);
  a.adopt(t1, tableDigest(t1), 1000);
  t.true(owned(t1, 1) > owned(t0, 1), 'node 1 gained some of node 3\'s buckets');
  t.is(a.pendingCount, 0);
});
