/**
 * The dispatcher and actor logic of three nodes, on a fake wire: every node's dispatcher sees
 * every frame (as on the flooding switch) and the nodes' actors must between them accept each
 * frame exactly once. The packet fixtures' verdicts come from the table the replay benchmark
 * times (test/fixtures/datapath-packets.ts).
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { deriveElectionKey } from '../../../src/cluster/hash.js';
import { sourceIpHandler, TableTracker } from '../../../src/handlers/default.js';
import type { ProtocolHandler } from '../../../src/handlers/handler.js';
import { ARPR_SENDER_IP, ARPR_TARGET_IP, ArpParse, createArpResult, parseArp } from '../../../src/net/arp.js';
import { formatMac } from '../../../src/net/ethernet.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { ActorCounter, DispatcherCounter } from '../../../src/workers/counters.js';
import { DATAPATH_PACKETS, source6 } from '../../fixtures/datapath-packets.js';
import { createIPv6Result, formatIPv6, IP6R_L4_OFFSET, IPv6Parse, readIPv6 } from '../../../src/net/ipv6.js';
import { IPPROTO_UDP } from '../../../src/net/ipv4.js';
import { CLIENT_IP, CLIENT_IP6, CLIENT_MAC, CLUSTER_MAC, ipv6Frame, neighborSolicitationFrame, VIP, VIP6 } from '../../fixtures/frames.js';

function withLead(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(VNET + frame.length);
  out.set(frame, VNET);
  return out;
}
import { arpRequest, cluster, ipFrame, makeNode, NODE_MACS, publish, purgeDead, runAll, VNET } from './fixtures/sim.js';

test('each source is accepted by exactly one node, and all nodes get some', (t) => {
  const frames: Uint8Array[] = [];
  for (let i = 1; i <= 60; i++) frames.push(ipFrame(`10.0.1.${i}`));
  const nodes = cluster(frames);
  for (const n of nodes) runAll(n);
  const acceptedBy = new Map<string, number>();
  for (const n of nodes) {
    for (const f of n.sink.frames) {
      const src = [...f.subarray(VNET + 26, VNET + 30)].join('.');
      t.false(acceptedBy.has(src), `${src} accepted twice`);
      acceptedBy.set(src, n.id);
    }
  }
  t.is(acceptedBy.size, 60);
  t.deepEqual(new Set(acceptedBy.values()), new Set([1, 2, 3]));
  // Frames reach the TAP whole, virtio-net header first.
  t.deepEqual(nodes.flatMap((n) => n.sink.frames).find((f) => f.length === frames[0]!.length)?.length, frames[0]!.length);
});

/** Which node accepted each source (fails the test on a source accepted twice). */
function acceptedBy(t: import('ava').ExecutionContext, nodes: ReturnType<typeof cluster>): Map<string, number> {
  const by = new Map<string, number>();
  for (const n of nodes) {
    for (const f of n.sink.frames) {
      const src = [...f.subarray(VNET + 26, VNET + 30)].join('.');
      t.false(by.has(src), `${src} accepted twice`);
      by.set(src, n.id);
    }
  }
  return by;
}

test('a keyed cluster (each node with its own actor seed) still accepts each source exactly once, elsewhere than unkeyed', (t) => {
  const frames: Uint8Array[] = [];
  for (let i = 1; i <= 200; i++) frames.push(ipFrame(`10.0.${10 + (i >> 8)}.${i & 0xff}`));
  const clusterKey = randomBytes(32);
  const nodes = [1, 2, 3].map((id) => makeNode(id, frames, { electionKey: deriveElectionKey(clusterKey), actorSeed: randomBytes(4).readUInt32LE(0) }));
  for (const n of nodes) publish(n, [1, 2, 3]);
  for (const n of nodes) runAll(n);
  const keyed = acceptedBy(t, nodes);
  t.is(keyed.size, 200);
  t.deepEqual(new Set(keyed.values()), new Set([1, 2, 3]));
  const plain = cluster(frames);
  for (const n of plain) runAll(n);
  const unkeyed = acceptedBy(t, plain);
  const moved = [...keyed].filter(([src, id]) => unkeyed.get(src) !== id).length;
  t.true(moved > 80, `${moved} of 200 sources elected elsewhere than by the unkeyed hash`);
});

test('a source stays with its node: repeated frames go to the same one', (t) => {
  const frames = [ipFrame('10.0.2.1'), ipFrame('10.0.2.2'), ipFrame('10.0.2.1'), ipFrame('10.0.2.2'), ipFrame('10.0.2.1')];
  const nodes = cluster(frames);
  for (const n of nodes) runAll(n);
  const counts = nodes.map((n) => n.sink.frames.length).sort();
  t.is(counts.reduce((a, b) => a + b, 0), 5);
  t.true(counts.every((c) => c === 0 || c === 2 || c === 3 || c === 5));
});

test('nothing is accepted before the first round completes', (t) => {
  const node = makeNode(1, [ipFrame('10.0.3.1'), ipFrame('10.0.3.2')]);
  publish(node, [1], false);
  runAll(node);
  t.is(node.sink.written, 0);
  t.is(node.counters.sum(ActorCounter.dropNotConverged, 1, 1 + node.actors.length), 2);
});

test('a node death re-homes only its own sources', (t) => {
  const frames: Uint8Array[] = [];
  for (let i = 1; i <= 90; i++) frames.push(ipFrame(`10.0.4.${i}`));
  const nodes = cluster(frames);
  for (const n of nodes) runAll(n);
  const before = new Map<string, number>();
  for (const n of nodes) for (const f of n.sink.frames) before.set([...f.subarray(VNET + 26, VNET + 30)].join('.'), n.id);
  // Node 2 dies: the survivors publish a view without it and see the same frames again.
  const survivors = [nodes[0]!, nodes[2]!];
  const ownedByDead = [...before.values()].filter((o) => o === 2).length;
  t.true(ownedByDead > 0);
  for (const n of survivors) {
    publish(n, [1, 3]);
    // Every node recorded every assignment, so each survivor purges all of node 2's sources.
    t.is(purgeDead(n, 2, 100), ownedByDead);
    t.is(n.counters.sum(ActorCounter.purgedByDeath, 1, 1 + n.actors.length), ownedByDead);
    n.sink.frames.length = 0;
    n.source.remaining = frames.length;
    runAll(n, 1001);
  }
  const after = new Map<string, number>();
  for (const n of survivors) for (const f of n.sink.frames) after.set([...f.subarray(VNET + 26, VNET + 30)].join('.'), n.id);
  t.is(after.size, 90, 'every source is served after the death');
  for (const [src, owner] of before) {
    if (owner !== 2) t.is(after.get(src), owner, `${src} moved although its node lived`);
  }
  // The failover's timeline (bench failover): each survivor's actors note when they took the
  // smaller view and the first new flow they took after it; the node that died noted nothing.
  for (const n of nodes) {
    const rows = n.actors.map((_, i) => ({ shrink: n.counters.sum(ActorCounter.shrinkAppliedAt, 1 + i, 2 + i), taken: n.counters.sum(ActorCounter.firstTakenAfterShrinkAt, 1 + i, 2 + i) }));
    if (n.id === 2) {
      t.true(rows.every((r) => r.shrink === 0 && r.taken === 0));
      continue;
    }
    t.true(rows.every((r) => r.shrink > 0), `node ${n.id}: ${JSON.stringify(rows)}`);
    t.true(rows.some((r) => r.taken >= r.shrink), `node ${n.id} took a dead node's source after the view: ${JSON.stringify(rows)}`);
    t.true(rows.every((r) => r.taken === 0 || r.taken >= r.shrink));
  }
});

test('a dead node\u2019s entries purged a slice at a time: frames decided between two slices go to the survivors, and the purge leaves no entry of it', (t) => {
  const frames: Uint8Array[] = [];
  for (let i = 1; i <= 90; i++) frames.push(ipFrame(`10.0.5.${i}`));
  const nodes = cluster(frames);
  for (const n of nodes) runAll(n);
  const deadSources = nodes[1]!.sink.frames.length;
  t.true(deadSources > 0);
  for (const n of [nodes[0]!, nodes[2]!]) {
    publish(n, [1, 3]);
    for (const a of n.actors) {
      a.nodeDied(2);
      a.purgeStep(8); // a few slots: the purge is under way, most of node 2's entries still there
    }
    t.true(n.actors.every((a) => a.purging));
    n.sink.frames.length = 0;
    n.source.remaining = frames.length;
    runAll(n, 1001);
  }
  // Mid-purge, every source is served once, by a survivor.
  const after = acceptedBy(t, [nodes[0]!, nodes[2]!]);
  t.is(after.size, 90);
  for (const n of [nodes[0]!, nodes[2]!]) {
    const sum = (counter: number): number => n.counters.sum(counter, 1, 1 + n.actors.length);
    for (const a of n.actors) while (a.purging) a.purgeStep(64);
    // Node 2's sources were elected again (and only they), the purge took at most those it reached first.
    t.is(sum(ActorCounter.elected), 90 + deadSources);
    t.true(sum(ActorCounter.purgedByDeath) <= deadSources);
    // Each survivor tracks the 90 sources, none of them as node 2's any more.
    t.is(sum(ActorCounter.trackedEntries), 90);
    t.is(purgeDead(n, 2), 0);
  }
});

test('a nodeDiedSlice that stops moving on ends its purge and is reported once, rather than purging for ever', (t) => {
  class StuckTracker extends TableTracker {
    override nodeDiedSlice(_owner: number, fromSlot: number): number {
      return fromSlot; // the loader refuses this; a handler may still start doing it
    }
  }
  const stuck: ProtocolHandler = { ...sourceIpHandler, createTracker: (o) => new StuckTracker(o) };
  const node = makeNode(1, [], { actorCount: 1, handlers: [stuck] });
  const actor = node.actors[0]!;
  actor.nodeDied(2);
  actor.purgeStep(64);
  t.false(actor.purging);
  t.deepEqual(
    node.errors.map((e) => `${e.handler}.${e.method}`),
    [`${sourceIpHandler.name}.nodeDiedSlice`],
  );
});

for (const p of DATAPATH_PACKETS) {
  test(`${p.verdict === 'dropped' ? 'counted and dropped, never thrown' : p.verdict}: ${p.description}`, (t) => {
    const node = makeNode(1, [p.frame(CLIENT_IP)]);
    publish(node, [1]);
    t.notThrows(() => runAll(node));
    t.is(node.sink.written, p.verdict === 'delivered' ? 1 : 0);
    t.is(node.source.sent.length, p.verdict === 'answered' ? 1 : 0, 'only an ARP request for the VIP is answered');
    t.is(p.verdict === 'delivered' ? node.counters.sum(p.counter, 1, 1 + node.actors.length) : node.counters.sum(p.counter, 0, 1), 1);
  });
}

test('IPv6: each source is accepted by exactly one node, all nodes get some, and a source stays with its node', (t) => {
  const frames: Uint8Array[] = [];
  for (let i = 1; i <= 90; i++) frames.push(ipv6Frame({ lead: VNET, ipSrc: source6(0x0a010000 + i), protocol: IPPROTO_UDP, l4Length: 16 }));
  frames.push(...frames.slice(0, 30));
  const nodes = cluster(frames, { electionKey: deriveElectionKey(randomBytes(32)) });
  for (const n of nodes) runAll(n);
  const by = new Map<string, Set<number>>();
  let delivered = 0;
  for (const n of nodes) {
    for (const f of n.sink.frames) {
      const src = formatIPv6(f.subarray(VNET + 22, VNET + 38));
      by.set(src, (by.get(src) ?? new Set()).add(n.id));
      delivered++;
    }
  }
  t.is(delivered, 120, 'every frame delivered once');
  t.is(by.size, 90);
  t.true([...by.values()].every((ids) => ids.size === 1), 'a source stays with one node');
  t.deepEqual(new Set([...by.values()].map((ids) => [...ids][0])), new Set([1, 2, 3]));
  t.is(nodes.reduce((sum, n) => sum + n.counters.sum(DispatcherCounter.framesIPv6, 0, 1), 0), 3 * 120, 'every node read every frame as IPv6 for the VIP');
});

test('a neighbour solicitation for the IPv6 VIP is answered from our MAC, to the requester, with the cluster MAC as its target address', (t) => {
  const node = makeNode(1, [withLead(neighborSolicitationFrame()), withLead(neighborSolicitationFrame({ target: CLIENT_IP6 })), withLead(neighborSolicitationFrame({ badChecksum: true }))]);
  publish(node, [1]);
  runAll(node);
  t.is(node.source.sent.length, 1, 'only the VIP, with a good checksum, is answered');
  const reply = node.source.sent[0]!;
  t.is(formatMac(reply, VNET), formatMac(CLIENT_MAC), 'to the requester');
  t.is(formatMac(reply, VNET + 6), NODE_MACS[0]!, 'Ethernet source: the node itself, so the switch never learns the cluster MAC');
  const ip = createIPv6Result();
  t.is(readIPv6(reply, VNET, reply.length - VNET, ip), IPv6Parse.OK);
  const l4 = ip[IP6R_L4_OFFSET]!;
  t.is(reply[l4], 136, 'a neighbour advertisement');
  t.is(formatIPv6(reply.subarray(l4 + 8, l4 + 24)), formatIPv6(VIP6), 'for the VIP');
  t.is(formatMac(reply, l4 + 26), formatMac(CLUSTER_MAC), 'at the cluster MAC');
  t.is(formatIPv6(reply.subarray(VNET + 38, VNET + 54)), formatIPv6(CLIENT_IP6), 'to the requester\'s address');
  t.is(node.counters.sum(DispatcherCounter.ndpSolicitations, 0, 1), 2, 'the bad checksum is not a solicitation');
  t.is(node.sink.written, 0, 'neighbour discovery never reaches the TAP');
});

test('an interface without an IPv6 VIP answers no solicitation and counts IPv6 frames as not IP', (t) => {
  const node = makeNode(1, [withLead(neighborSolicitationFrame()), ipv6Frame({ lead: VNET })], { vip6: null });
  publish(node, [1]);
  runAll(node);
  t.is(node.source.sent.length, 0);
  t.is(node.sink.written, 0);
  t.is(node.counters.sum(DispatcherCounter.dropNotIP, 0, 1), 1);
});

test('an IPv4 frame from 224.0.0.0/3 (where IPv6 identities live) is dropped as malformed, never taken for an IPv6 source', (t) => {
  const node = makeNode(1, [ipFrame('224.0.0.9'), ipFrame('240.1.2.3')]);
  publish(node, [1]);
  runAll(node);
  t.is(node.sink.written, 0);
  t.is(node.counters.sum(DispatcherCounter.dropMalformed, 0, 1), 2);
});

test('--vlan 100 on a trunk: its frames are taken, untagged and VLAN 200 frames dropped (counted); an ARP request is answered tagged 100', (t) => {
  const frames = [ipFrame('10.0.5.1'), ipFrame('10.0.5.2'), ipFrame('10.0.5.3'), arpRequest('10.0.0.100')];
  const node = makeNode(1, frames, { vlan: 100 });
  node.source.tags.push(100, undefined, 200, 0x2000 | 100);
  publish(node, [1]);
  runAll(node);
  t.is(node.sink.written, 1, 'only the VLAN 100 frame');
  t.is(node.counters.sum(DispatcherCounter.dropOtherVlan, 0, 1), 2);
  t.is(node.source.sent.length, 1);
  const reply = node.source.sent[0]!;
  t.deepEqual([...reply.subarray(VNET + 12, VNET + 16)], [0x81, 0x00, 0x00, 100], 'the reply carries the tag');
  t.deepEqual([...reply.subarray(VNET + 16, VNET + 18)], [0x08, 0x06], 'then the ARP EtherType');
});

test("without --vlan a tagged frame is another VLAN's (dropped, counted); a priority-tagged one (VLAN 0) is taken", (t) => {
  const node = makeNode(1, [ipFrame('10.0.5.1'), ipFrame('10.0.5.2')]);
  node.source.tags.push(100, 0x4000);
  publish(node, [1]);
  runAll(node);
  t.is(node.sink.written, 1);
  t.is(node.counters.sum(DispatcherCounter.dropOtherVlan, 0, 1), 1);
});

test("--vlan: the answers to the host's own resolutions (an ARP reply, a neighbour advertisement, to the cluster MAC) go to the host; others do not", (t) => {
  const arpReply = arpRequest('10.0.0.7');
  arpReply.set(CLUSTER_MAC, VNET); // to the cluster MAC (the TAP's, which asked)
  arpReply[VNET + 21] = 2; // a reply
  const advert = withLead(neighborSolicitationFrame());
  advert.set(CLUSTER_MAC, VNET);
  const l4 = VNET + 14 + 40;
  advert[l4] = 136; // an advertisement to the cluster MAC
  const elsewhere = arpRequest('10.0.0.7');
  elsewhere[VNET + 21] = 2; // a reply to someone else (broadcast destination)
  const node = makeNode(1, [arpReply, advert, elsewhere], { vlan: 100 });
  node.source.tags.push(100, 100, 100);
  publish(node, [1]);
  runAll(node);
  t.is(node.toHost.length, 2);
  t.is(node.counters.sum(DispatcherCounter.neighbourToHost, 0, 1), 2);
  t.deepEqual([...node.toHost[0]!.subarray(0, VNET)], new Array<number>(VNET).fill(0), 'a blank virtio-net header first');
  t.is(node.sink.written, 0);
  const untagged = makeNode(1, [arpReply], {});
  publish(untagged, [1]);
  runAll(untagged);
  t.is(untagged.toHost.length, 0, 'without --vlan the host resolves through its own device');
});

test('an ARP request for the VIP is answered with the cluster MAC in the payload and our MAC as source', (t) => {
  const node = makeNode(1, [arpRequest('10.0.0.100'), arpRequest('10.0.0.55')]);
  publish(node, [1]);
  runAll(node);
  t.is(node.source.sent.length, 1, 'only the VIP is answered');
  const reply = node.source.sent[0]!;
  t.is(reply.length, VNET + 60);
  t.is(formatMac(reply, VNET), formatMac(CLIENT_MAC), 'to the requester');
  t.is(formatMac(reply, VNET + 6), NODE_MACS[0]!, 'Ethernet source: the node itself, so the switch never learns the cluster MAC');
  const arp = createArpResult();
  t.is(parseArp(reply, VNET, 60, arp), ArpParse.OK);
  t.is(formatMac(arp.senderMac), formatMac(CLUSTER_MAC));
  t.is(arp.fields[ARPR_SENDER_IP], VIP);
  t.is(arp.fields[ARPR_TARGET_IP], parseIPv4('10.0.0.7'));
  t.is(node.counters.sum(DispatcherCounter.arpRequests, 0, 1), 2);
  t.is(node.sink.written, 0, 'ARP never reaches the TAP');
});

test('during a view-changing round new flows are held, tracked flows go on, and held ones are decided with the new view', (t) => {
  const tracked = ipFrame('10.0.6.1');
  const node = makeNode(1, [tracked, ipFrame('10.0.6.2'), ipFrame('10.0.6.3'), tracked], { actorCount: 1 });
  publish(node, [1]);
  node.source.remaining = 1;
  runAll(node);
  t.is(node.sink.written, 1, 'a tracked flow of node 1');
  publish(node, [1], true, true); // a round that changes the view is running
  node.source.remaining = 3;
  runAll(node);
  t.is(node.sink.written, 2, 'the tracked flow went on; the two new ones wait');
  t.is(node.actors[0]!.held, 2);
  publish(node, [1]); // the round completed
  node.actors[0]!.processAvailable(1000);
  t.is(node.sink.written, 4, 'held frames decided and delivered once the round is over');
  t.is(node.actors[0]!.held, 0);
});

test('the hold queue is bounded: when full the oldest held frame is dropped and counted', (t) => {
  const frames = Array.from({ length: 50 }, (_, i) => ipFrame(`10.0.7.${i + 1}`, { l4Length: 200 }));
  const node = makeNode(1, frames, { actorCount: 1, holdBytes: 4096 });
  publish(node, [1], true, true);
  runAll(node);
  const held = node.actors[0]!.held;
  const dropped = node.counters.sum(ActorCounter.dropHoldFull, 1, 2);
  t.true(held > 0 && held < 50, `held ${held}`);
  t.is(held + dropped, 50, 'every frame is held or counted');
  publish(node, [1]);
  node.actors[0]!.processAvailable(1000);
  // The newest frames survived: the last source is among the delivered ones.
  const last = node.sink.frames.at(-1)!;
  t.deepEqual([...last.subarray(VNET + 26, VNET + 30)], [10, 0, 7, 50]);
  t.is(node.sink.written, held);
});

test('while weights alone change, only the sources the new weights move are held; the rest are decided at once and alike on every node', (t) => {
  const frames = Array.from({ length: 300 }, (_, i) => ipFrame(`10.0.${7 + (i >> 8)}.${i & 0xff}`));
  const nodes = [1, 2].map((id) => makeNode(id, frames, { actorCount: 1 }));
  const before = { weights: [100, 100] };
  const changing = { weights: [100, 100], nextWeights: [300, 100] }; // node 1 gets more capacity (node 2 fewer new clients)
  for (const n of nodes) publish(n, [1, 2], true, false, {}, changing);
  for (const n of nodes) runAll(n);
  // What each source's owner is under each set of weights, from a settled node of each kind.
  const settledOld = [1, 2].map((id) => makeNode(id, frames, { actorCount: 1 }));
  const settledNew = [1, 2].map((id) => makeNode(id, frames, { actorCount: 1 }));
  for (const n of settledOld) publish(n, [1, 2], true, false, {}, before);
  for (const n of settledNew) publish(n, [1, 2], true, false, {}, { weights: changing.nextWeights });
  for (const n of [...settledOld, ...settledNew]) runAll(n);
  const moved = settledNew[0]!.sink.written - settledOld[0]!.sink.written; // node 1 only gains
  t.true(moved > 0 && moved < 150, `the new weights move some sources, not most: ${moved}`);
  for (const n of nodes) t.is(n.actors[0]!.held, moved, `node ${n.id}: held exactly the moved sources`);
  t.is(nodes[0]!.sink.written, settledOld[0]!.sink.written, 'node 1 took at once the sources it owns under both (all its old ones)');
  t.is(nodes[1]!.sink.written, settledNew[1]!.sink.written, 'node 2 took at once the sources it owns under both');
  for (const n of nodes) publish(n, [1, 2], true, false, {}, { weights: changing.nextWeights });
  for (const n of nodes) n.actors[0]!.processAvailable(1000);
  t.is(nodes[0]!.sink.written, settledNew[0]!.sink.written, 'node 1 ends with what the new weights give it');
  t.is(nodes[1]!.sink.written, settledNew[1]!.sink.written);
  t.is(nodes[0]!.sink.written + nodes[1]!.sink.written, frames.length, 'every source accepted once');
});
