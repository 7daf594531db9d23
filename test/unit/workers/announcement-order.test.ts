/**
 * --workers 1: a weight announced switches every node at the same frame. The data socket passes
 * the HEARTBEATs announcing a weight (FLAG_WAKE) to the dispatcher, in order with the clients'
 * frames; the new flows after one wait until the control plane has read it (the view's
 * readThrough), and the frames that came before the weights in flight were announced (the
 * view's pendingFrom) are decided under the applied weights, as every other node decided them.
 * Without this, a node whose control thread read an announcement a moment after the others
 * decided a new client under the old weights while they held it for the new ones: two owners
 * or none (the scale bench: 1-14 of 10,000 new sources while weights changed).
 */
import test from 'ava';
import { encodeMessage, FLAG_WAKE, MessageType } from '../../../src/net/cluster-message.js';
import { ETH_P_LNLB, parseMac } from '../../../src/net/ethernet.js';
import { ActorCounter, DispatcherCounter } from '../../../src/workers/counters.js';
import { CLUSTER_MAC, rawFrame, VIP } from '../../fixtures/frames.js';
import { ipFrame, makeNode, publish, runAll, sourceOf, VNET, type SimNode } from './fixtures/sim.js';

const T0 = 1_796_000_000_000;
const OTHER_MEMBER = parseMac('02:00:00:00:00:02');

/** A HEARTBEAT from another member to the cluster MAC, as the port reads it. */
function heartbeat(flags: number, dst = CLUSTER_MAC): Uint8Array {
  const frame = rawFrame(dst, ETH_P_LNLB, 128, OTHER_MEMBER, VNET);
  encodeMessage(frame, VNET + 14, { clusterIp: VIP, type: MessageType.HEARTBEAT, flags, messageId: 7, data: 100 });
  return frame;
}

/** Two --workers 1 nodes reading `frames`, frame i received at T0 + i/100 ms. */
function twoNodes(frames: Uint8Array[]): SimNode[] {
  return [1, 2].map((id) => {
    const node = makeNode(id, frames, { direct: true });
    frames.forEach((_, i) => (node.source.times[i] = T0 + i / 100));
    return node;
  });
}

/** Each source's owner under `weights`, from two settled nodes. */
function ownerUnder(frames: Uint8Array[], weights: { weights: number[] }): Map<string, number> {
  const settled = [1, 2].map((id) => makeNode(id, frames, { direct: true }));
  for (const n of settled) publish(n, [1, 2], true, false, {}, weights);
  for (const n of settled) runAll(n);
  return new Map(settled.flatMap((n) => n.sink.frames.map((f) => [sourceOf(f), n.id] as const)));
}

function writtenSources(nodes: SimNode[]): string[] {
  return nodes.flatMap((n) => n.sink.frames.map(sourceOf));
}

test('a weight announced in the data stream holds every new flow after it until the view reads through it; the flows before it are decided at once', (t) => {
  const before = Array.from({ length: 60 }, (_, i) => ipFrame(`10.0.1.${i + 1}`));
  const after = Array.from({ length: 60 }, (_, i) => ipFrame(`10.0.2.${i + 1}`));
  const frames = [...before, heartbeat(FLAG_WAKE), ...after];
  const announcedAt = T0 + before.length / 100;
  const nodes = twoNodes(frames);
  // The control plane has read up to just before the announcement.
  for (const n of nodes) publish(n, [1, 2], true, false, {}, undefined, { readThrough: announcedAt - 0.5 });
  for (const n of nodes) runAll(n);
  for (const n of nodes) {
    t.is(n.counters.row(0)[DispatcherCounter.announcementsSeen], 1, `node ${n.id} saw the announcement`);
    t.is(n.actors[0]!.held, after.length, `node ${n.id} holds every new flow after it`);
    t.is(n.counters.row(1)[ActorCounter.heldForAnnouncement], after.length);
  }
  t.deepEqual(writtenSources(nodes).sort(), before.map(sourceOf).sort(), 'the flows before it were decided at once, each by one node');
  // A view that reads through it (nothing changed: a repeat, or a forgery) lets them go.
  for (const n of nodes) publish(n, [1, 2], true, false, {}, undefined, { readThrough: announcedAt });
  for (const n of nodes) n.actors[0]!.processAvailable(1000); // the dispatcher's poll, woken by the view
  for (const n of nodes) t.is(n.actors[0]!.held, 0);
  const written = writtenSources(nodes);
  t.is(written.length, frames.length - 1, 'every client frame written once');
  t.is(new Set(written).size, written.length, 'by one node each');
});

test('a routine HEARTBEAT, or an announcement to another MAC, holds nothing', (t) => {
  const clients = Array.from({ length: 40 }, (_, i) => ipFrame(`10.0.3.${i + 1}`));
  const frames = [...clients.slice(0, 20), heartbeat(0x1), heartbeat(FLAG_WAKE, parseMac('02:00:00:00:00:63')), ...clients.slice(20)];
  const nodes = twoNodes(frames);
  for (const n of nodes) publish(n, [1, 2], true, false, {}, undefined, { readThrough: T0 - 1 });
  for (const n of nodes) runAll(n);
  for (const n of nodes) {
    t.is(n.counters.row(0)[DispatcherCounter.announcementsSeen], 0);
    t.is(n.actors[0]!.held, 0);
  }
  t.is(writtenSources(nodes).length, clients.length);
});

test('while weights change, a frame received before they were announced is decided under the applied weights even when the new ones move it; one received after waits if they move it', (t) => {
  const frames = Array.from({ length: 400 }, (_, i) => ipFrame(`10.0.${7 + (i >> 8)}.${i & 0xff}`));
  const half = frames.length / 2;
  const pendingFrom = T0 + half / 100;
  const applied = { weights: [100, 100] };
  const changing = { weights: [100, 100], nextWeights: [300, 100] };
  const nodes = twoNodes(frames);
  for (const n of nodes) publish(n, [1, 2], true, false, {}, changing, { pendingFrom });
  for (const n of nodes) runAll(n);
  const oldOwner = ownerUnder(frames, applied);
  const newOwner = ownerUnder(frames, { weights: changing.nextWeights });
  const sources = frames.map(sourceOf);
  const movedBefore = sources.slice(0, half).filter((s) => oldOwner.get(s) !== newOwner.get(s)).length;
  const movedAfter = sources.slice(half).filter((s) => oldOwner.get(s) !== newOwner.get(s)).length;
  t.true(movedBefore > 0 && movedAfter > 0, `the new weights move sources of both halves (${movedBefore}, ${movedAfter})`);
  for (const n of nodes) {
    t.is(n.actors[0]!.held, movedAfter, `node ${n.id} holds only the moved sources received after the announcement`);
    for (const f of n.sink.frames) {
      const s = sourceOf(f);
      if (sources.indexOf(s) < half) t.is(oldOwner.get(s), n.id, `${s}, received before, is decided under the applied weights`);
    }
  }
  // Applied: the held ones go to their owner under the new weights.
  for (const n of nodes) publish(n, [1, 2], true, false, {}, { weights: changing.nextWeights });
  for (const n of nodes) n.actors[0]!.processAvailable(1000);
  const written = writtenSources(nodes);
  t.is(written.length, frames.length, 'every source written');
  t.is(new Set(written).size, frames.length, 'once');
});

test('a frame held across the application of a weight announced after it came is decided under the weight before, as a node that applied the earlier one alone decided it', (t) => {
  const frames = Array.from({ length: 400 }, (_, i) => ipFrame(`10.0.${9 + (i >> 8)}.${i & 0xff}`));
  const half = frames.length / 2;
  const announcedAt = T0 + half / 100; // node 1's new weight was announced between the two halves
  const nodes = twoNodes(frames);
  // Every new flow held (two weights in flight, say), from before the first frame.
  for (const n of nodes) publish(n, [1, 2], true, true, {}, { weights: [100, 100] }, { pendingFrom: T0 - 1 });
  for (const n of nodes) runAll(n);
  for (const n of nodes) t.is(n.actors[0]!.held, frames.length);
  // Applied: node 1 at 300 since `announcedAt`, 100 before.
  for (const n of nodes) publish(n, [1, 2], true, false, {}, { weights: [300, 100] }, { previousWeights: [100, 100], weightSince: [announcedAt, Number.NEGATIVE_INFINITY] });
  for (const n of nodes) n.actors[0]!.processAvailable(1000);
  const oldOwner = ownerUnder(frames, { weights: [100, 100] });
  const newOwner = ownerUnder(frames, { weights: [300, 100] });
  const sources = frames.map(sourceOf);
  t.true(sources.slice(0, half).some((s) => oldOwner.get(s) !== newOwner.get(s)), 'the new weight moves sources of the first half');
  for (const n of nodes) {
    for (const f of n.sink.frames) {
      const s = sourceOf(f);
      const owner = sources.indexOf(s) < half ? oldOwner.get(s) : newOwner.get(s);
      t.is(owner, n.id, `${s} decided under the weights of its time`);
    }
  }
  const written = writtenSources(nodes);
  t.is(written.length, frames.length);
  t.is(new Set(written).size, frames.length, 'each once');
});
