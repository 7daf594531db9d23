/**
 * --election bucket in the dispatcher and actors of three nodes on a fake wire: each node
 * tracks only the flows it owns; when buckets move, the flows tracked in them are handed to
 * the new owner (the actors' scanBuckets, the main thread's handoverMessages, the receiver's
 * loadStatus), which holds its gained buckets' new flows until then. Every frame is still
 * taken exactly once, and a flow stays with its node while the bucket drains there.
 */
import test from 'ava';
import { NO_TARGET } from '../../../src/cluster/bucket-handover.js';
import { BUCKET_COUNT, canonicalBuckets, createBucketTable, rebalanceBuckets, type BucketTable } from '../../../src/cluster/buckets.js';
import { actorForKey } from '../../../src/cluster/hash.js';
import { sourceIpHandler } from '../../../src/handlers/default.js';
import { mergeTrackerStateInto } from '../../../src/handlers/tracker-state.js';
import { handoverMessages } from '../../../src/main/bucket-handovers.js';
import { formatMac, parseMac } from '../../../src/net/ethernet.js';
import { decodeHandover } from '../../../src/net/handover-message.js';
import { DrainingBuckets } from '../../../src/shm/draining-buckets.js';
import { createPublishedView, VIEW_BUCKETS_CURRENT, VIEW_BUCKETS_PENDING, VIEW_MAX_RULE_SLOTS } from '../../../src/shm/view.js';
import { ActorCounter } from '../../../src/workers/counters.js';
import { ipFrame, makeNode, NODE_MACS, runAll, VNET, type SimNode } from './fixtures/sim.js';

const SOURCES = 240;

function viewMembers(ids: number[]): { count: number; weights: number[]; macs: number[] } {
  return { count: ids.length, weights: ids.map(() => 1), macs: ids.flatMap((id) => [...parseMac(NODE_MACS[id - 1]!)]) };
}

/** Publishes members `ids` with bucket table `table` (owners index `ids`), and the buckets still pending on this node. */
function publishTable(node: SimNode, ids: number[], table: BucketTable, pending?: Uint32Array): void {
  const v = createPublishedView();
  v.accepting = true;
  v.selfId = node.id;
  v.nodeCount = ids.length;
  v.ruleSlots = node.rules.modes.length;
  ids.forEach((id, i) => {
    v.ids[i] = id;
    v.weights[i] = 1;
    v.nextWeights[i] = 1;
    v.macs.set(parseMac(NODE_MACS[id - 1]!), i * 6);
    for (let k = 0; k < v.ruleSlots; k++) v.ruleParams[i * VIEW_MAX_RULE_SLOTS + k] = 0xff;
  });
  v.bucketOwners.set(table.owners);
  v.bucketTables = VIEW_BUCKETS_CURRENT;
  if (pending !== undefined) {
    v.pendingBuckets.set(pending);
    v.bucketTables |= VIEW_BUCKETS_PENDING;
  }
  node.view.publish(v);
}

function frames(): Uint8Array[] {
  return Array.from({ length: SOURCES }, (_, i) => ipFrame(`10.1.${i >> 8}.${(i & 0xff) + 1}`));
}

function bucketNode(id: number, f: Uint8Array[]): SimNode & { draining: DrainingBuckets } {
  const draining = new DrainingBuckets(DrainingBuckets.allocate(2));
  return { ...makeNode(id, f, { buckets: { draining } }), draining };
}

/** Offers every frame to `node` again and returns the sources it took. */
function offer(node: SimNode, f: Uint8Array[], now = 1000): Set<string> {
  node.sink.frames.length = 0;
  node.source.remaining = f.length;
  runAll(node, now);
  return new Set(node.sink.frames.map((x) => [...x.subarray(VNET + 26, VNET + 30)].join('.')));
}

const tracked = (node: SimNode): number => node.actors.reduce((n, a) => n + a.trackedNow(), 0);

/** The scan the main thread asks of a node's actors, turned into one handover message per new owner. */
function handOver(node: SimNode, from: BucketTable, to: BucketTable, ids: number[]): { to: string; data: Uint8Array; entries: number }[] {
  const targetOf = new Uint8Array(BUCKET_COUNT).fill(NO_TARGET);
  const targets: string[] = [];
  for (let b = 0; b < BUCKET_COUNT; b++) {
    const owner = ids[to.owners[b]!]!;
    if (owner === node.id || ids[from.owners[b]!] === owner) continue;
    const mac = NODE_MACS[owner - 1]!;
    if (!targets.includes(mac)) targets.push(mac);
    targetOf[b] = targets.indexOf(mac);
  }
  const scanned = node.actors.map((a) => a.scanBuckets(targetOf));
  const byHandler = [0].map((h) => scanned.map((s) => s[h]!));
  const owners = Object.fromEntries(ids.map((id) => [id, NODE_MACS[id - 1]!]));
  return handoverMessages(byHandler, [sourceIpHandler], targets, 1, owners, 1000);
}

/** What actor.ts does with a handover: each actor adds its shard of it to its live tracker. */
function merge(node: SimNode, data: Uint8Array, ids: number[]): number {
  const decoded = decodeHandover(data);
  if ('error' in decoded) throw new Error(decoded.error);
  const ownerIds = Object.fromEntries(ids.map((id) => [NODE_MACS[id - 1]!, id]));
  let n = 0;
  for (const { state } of decoded.states) {
    node.trackers.forEach((trackers, i) => {
      n += mergeTrackerStateInto(state, trackers[0]!, { nowSeconds: 1000, ownerId: (mac) => ownerIds[formatMac(mac)], mine: (lo, hi) => actorForKey(lo, hi, node.actors.length, 0) === i }).merged;
    });
  }
  return n;
}

test('under --election bucket each node tracks only the flows it owns, and every source is taken once', (t) => {
  const f = frames();
  const ids = [1, 2, 3];
  const table = createBucketTable();
  canonicalBuckets(viewMembers(ids), table);
  const nodes = ids.map((id) => bucketNode(id, f));
  for (const n of nodes) publishTable(n, ids, table);
  const taken = nodes.map((n) => offer(n, f));
  const all = taken.flatMap((s) => [...s]);
  t.is(all.length, SOURCES);
  t.is(new Set(all).size, SOURCES, 'no source taken twice');
  nodes.forEach((n, i) => t.is(tracked(n), taken[i]!.size, `node ${n.id} tracks its own ${taken[i]!.size} flows only`));
  t.true(nodes.every((n) => n.counters.sum(ActorCounter.dropOtherNode, 1, 3) > 0));
});

test('a join: the members hand the flows of the buckets that move over, the newcomer holds those buckets until they arrive, and no flow changes node', (t) => {
  const f = frames();
  const before = createBucketTable();
  canonicalBuckets(viewMembers([1, 2]), before);
  const [n1, n2] = [1, 2].map((id) => bucketNode(id, f));
  for (const n of [n1!, n2!]) publishTable(n, [1, 2], before);
  const owner = new Map<string, number>();
  for (const n of [n1!, n2!]) for (const src of offer(n, f)) owner.set(src, n.id);
  t.is(owner.size, SOURCES);

  // Node 3 joins: a third of the buckets move to it, rebalanced from the agreed table.
  const after = createBucketTable();
  rebalanceBuckets(before, viewMembers([1, 2, 3]), after);
  const ids = [1, 2, 3];
  const n3 = bucketNode(3, f);
  const gained = new Uint32Array(BUCKET_COUNT / 32);
  for (let b = 0; b < BUCKET_COUNT; b++) if (after.owners[b] === 2) gained[b >>> 5]! |= 1 << (b & 31);
  for (const n of [n1!, n2!]) publishTable(n, ids, after);
  publishTable(n3, ids, after, gained);

  // Before the handovers arrive, node 3 takes nothing of the old flows: it holds its gained buckets.
  t.is(offer(n3, f).size, 0);
  t.true(n3.actors.reduce((n, a) => n + a.held, 0) > 0, 'frames held for the handovers');

  // The members scan and send; node 3 merges and releases.
  const messages = [n1!, n2!].flatMap((n) => handOver(n, before, after, ids));
  t.true(messages.length > 0 && messages.every((m) => m.to === NODE_MACS[2]));
  let merged = 0;
  for (const m of messages) merged += merge(n3, m.data, ids);
  t.true(merged > SOURCES / 6 && merged < SOURCES / 2, `${merged} of ${SOURCES} flows handed over (about a third move)`);
  // The old owners drain the buckets they lost that still hold their flows.
  t.true(n1!.draining.unionInto(new Uint32Array(32)) + n2!.draining.unionInto(new Uint32Array(32)) > 0, 'some bucket drains');
  publishTable(n3, ids, after); // every member handed over: nothing pending
  n3.sink.frames.length = 0;
  runAll(n3); // the held frames are decided now
  const takenAfterRelease = new Set(n3.sink.frames.map((x) => [...x.subarray(VNET + 26, VNET + 30)].join('.')));
  t.is(takenAfterRelease.size, 0, 'every held frame belonged to a flow handed over: dropped, its owner keeps it');

  // Every old flow keeps its node; each source is taken once.
  const now = new Map<string, number>();
  for (const n of [n1!, n2!, n3]) {
    for (const src of offer(n, f, 1001)) {
      t.false(now.has(src), `${src} taken twice`);
      now.set(src, n.id);
    }
  }
  t.is(now.size, SOURCES);
  for (const [src, id] of owner) t.is(now.get(src), id, `${src} stays with node ${id}`);

  // New sources in node 3's buckets go to node 3.
  const fresh = Array.from({ length: 120 }, (_, i) => ipFrame(`10.9.${i >> 8}.${(i & 0xff) + 1}`));
  f.splice(0, f.length, ...fresh); // the nodes' frame sources replay this array
  const freshTaken = [n1!, n2!, n3].map((n) => offer(n, f, 1002).size);
  t.is(freshTaken.reduce((a, b) => a + b, 0), fresh.length);
  t.true(freshTaken[2]! > 20, `node 3 took ${freshTaken[2]} of ${fresh.length} new sources`);
});
