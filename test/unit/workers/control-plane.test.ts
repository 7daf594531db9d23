import test from 'ava';
import { randomBytes } from 'node:crypto';
import { STATE_H_MAGIC, STATE_H_OWNERS, STATE_H_VERSION, STATE_HEADER_BYTES, STATE_MAGIC, STATE_OWNER_BYTES, STATE_VERSION } from '../../../src/handlers/tracker-state.js';
import { MessageType } from '../../../src/net/cluster-message.js';
import { parseMac } from '../../../src/net/ethernet.js';
import { createPublishedView, VIEW_FLAG_WEIGHTS_PENDING } from '../../../src/shm/view.js';
import { CLUSTER_IP, ControlCluster, forgeFrame } from './fixtures/control-cluster.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const KEY = randomBytes(32);

test('three keyed control planes on a memory wire converge to one view, sorted by MAC', async (t) => {
  const c = new ControlCluster();
  c.add(C, { key: KEY });
  c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  t.false(c.view(A).accepting, 'nothing accepted before the first round');
  await c.run(1000);
  for (const mac of [A, B, C]) {
    const v = c.view(mac);
    t.true(v.accepting, `${mac} accepts`);
    t.deepEqual(v.members, [A, B, C]);
  }
  const status = c.nodes.get(A)!.plane.status();
  t.true(status.authenticated);
  t.true(status.rounds >= 5);
  t.deepEqual(status.control.rejected, {});
});

test('a newcomer gets the first member’s state over the wire (fragmented, authenticated) and joins the view', async (t) => {
  const c = new ControlCluster();
  c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  await c.run(1000);
  const late = c.add(C, { key: KEY });
  await c.run(1000);
  const state = late.events.find((e) => e.type === 'state');
  t.truthy(state, 'the newcomer received a tracking state');
  t.is(state?.type === 'state' ? state.from : undefined, A, 'from the first member');
  t.is(state?.type === 'state' ? state.state.length : 0, 10_000, 'reassembled whole from 7 fragments');
  for (const mac of [A, B, C]) t.deepEqual(c.view(mac).members, [A, B, C]);
});

test('a node that stops (LEAVE) is removed from every view at once', async (t) => {
  const c = new ControlCluster();
  for (const mac of [A, B, C]) c.add(mac, { key: KEY });
  await c.run(1000);
  c.stop(B);
  await c.run(20); // far less than the death timeout (400 ms)
  t.deepEqual(c.view(A).members, [A, C]);
  t.deepEqual(c.view(C).members, [A, C]);
});

test('a settled node reads heartbeats on its own timer (one wake-up a heartbeat), and anything else at once: a LEAVE rings its doorbell and the view drops the sender within the same millisecond', async (t) => {
  const c = new ControlCluster();
  const a = c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  c.add(C, { key: KEY });
  await c.run(1000);
  t.false(a.socket.watching, 'settled: the socket is not watched');
  const received = (): number => a.plane.status().control.received['HEARTBEAT'] ?? 0;
  const sent = (): number => a.plane.status().control.sent['HEARTBEAT'] ?? 0;
  const [heard, said, calls] = [received(), sent(), a.socket.readableCalls];
  await c.run(2000);
  t.is(a.socket.readableCalls, calls, 'no frame woke it: its timer read them');
  t.true(received() - heard >= 36, `${received() - heard} heartbeats read in 2 s from two members at 100 ms`);
  t.true(sent() - said >= 18 && sent() - said <= 22, `${sent() - said} heartbeats sent in 2 s at 100 ms`);
  t.false(a.socket.watching, 'still settled');
  c.stop(B);
  await c.run(1);
  t.deepEqual(c.view(A).members, [A, C], 'the LEAVE was read at once');
  t.is(a.socket.readableCalls, calls + 1, 'its doorbell rang');
  t.true(a.socket.watching, 'and the socket is watched again while the view changes');
  await c.run(1000);
  t.false(a.socket.watching, 'settled again');
});

test('a weight announced rings the settled members\' doorbell: each publishes the pending weights within the millisecond its heartbeat came, not at its next quiet read', async (t) => {
  const c = new ControlCluster();
  const a = c.add(A, { key: KEY });
  const b = c.add(B, { key: KEY });
  const cc = c.add(C, { key: KEY });
  await c.run(1000);
  t.false(a.socket.watching, 'settled');
  const calls = [a.socket.readableCalls, cc.socket.readableCalls];
  const pending = (node: typeof a): boolean => {
    const v = createPublishedView();
    t.true(node.reader.read(v));
    return (v.flags & VIEW_FLAG_WEIGHTS_PENDING) !== 0;
  };
  const sentBefore = b.plane.status().control.sent['HEARTBEAT'] ?? 0;
  b.plane.setWeight(5);
  // Step a millisecond at a time: the moment B's next heartbeat leaves, A and C hold the moved flows.
  let steps = 0;
  while ((b.plane.status().control.sent['HEARTBEAT'] ?? 0) === sentBefore && steps++ < 200) await c.run(1);
  await c.run(1);
  t.true(steps < 200, 'B heartbeats within a round');
  t.true(pending(a) && pending(cc), 'both hold the flows the new weight moves at once');
  // (Once, or twice when C's heartbeat, sent at once on reading B's, came in the same millisecond.)
  t.true(a.socket.readableCalls > calls[0]!, "A's doorbell rang");
  t.true(cc.socket.readableCalls > calls[1]!, "C's doorbell rang");
  await c.run(1000);
  for (const mac of [A, B, C]) t.deepEqual(c.view(mac).weights, [1, 5, 1]);
  t.false(pending(a) || pending(cc), 'applied everywhere, nothing held');
});

test('the view says where the control plane stands among the frames: it reads through a weight announced, and says when the weights in flight were announced', async (t) => {
  const c = new ControlCluster();
  const a = c.add(A, { key: KEY });
  const b = c.add(B, { key: KEY });
  c.add(C, { key: KEY });
  await c.run(1000);
  const read = (node: typeof a): ReturnType<typeof createPublishedView> => {
    const v = createPublishedView();
    t.true(node.reader.read(v));
    return v;
  };
  t.is(read(a).pendingFrom, Number.NEGATIVE_INFINITY, 'no weight in flight');
  const sentBefore = b.plane.status().control.sent['HEARTBEAT'] ?? 0;
  b.plane.setWeight(5);
  let steps = 0;
  while ((b.plane.status().control.sent['HEARTBEAT'] ?? 0) === sentBefore && steps++ < 200) await c.run(1);
  await c.run(1);
  const [atA, atB] = [read(a), read(b)];
  t.true(Number.isFinite(atB.pendingFrom), "B's own weight counts from its heartbeat");
  // The wire takes 0.1 ms: A received the announcement then, and its view says so.
  t.true(atA.pendingFrom > atB.pendingFrom && atA.pendingFrom - atB.pendingFrom <= 0.1 + 1e-3, `announced at ${atB.pendingFrom}, received by A at ${atA.pendingFrom}`);
  t.true(atA.readThrough >= atA.pendingFrom, "A's view reads through the announcement");
  await c.run(1000);
  for (const node of [a, b]) t.is(read(node).pendingFrom, Number.NEGATIVE_INFINITY, 'applied: nothing in flight');
  t.true(read(a).readThrough > atA.readThrough, 'and the views read on');
  // The history of B's weight: 1 before, 5 since the announcement (a frame held across it is decided by its time).
  const after = read(a);
  const at = c.view(A).members.indexOf(B);
  t.is(after.weights[at], 5);
  t.is(after.previousWeights[at], 1);
  t.is(after.weightSince[at], atA.pendingFrom);
  t.is(read(b).weightSince[c.view(B).members.indexOf(B)], atB.pendingFrom, 'B counts its own from when it went out');
});

test('a flood that rings no doorbell (heartbeats of another cluster) makes a settled node read frames as they come while it lasts, and quiet again after', async (t) => {
  const c = new ControlCluster();
  const a = c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  c.add(C, { key: KEY });
  await c.run(1000);
  t.false(a.socket.watching);
  const frame = forgeFrame({ type: MessageType.HEARTBEAT, src: '02:00:00:00:00:99', clusterIp: CLUSTER_IP + 1 });
  let quietSamples = 0;
  for (let ms = 0; ms < 1000; ms += 5) {
    for (let i = 0; i < 20; i++) c.wire.inject(frame); // 4,000 frames a second
    await c.run(5);
    if (ms >= 200 && !a.socket.watching) quietSamples++;
  }
  t.is(quietSamples, 0, 'watched from the first heartbeat of the flood to its end');
  t.true((a.plane.status().control.rejected['other-cluster'] ?? 0) >= 3900, 'and every frame read (and refused)');
  await c.run(1000);
  t.false(a.socket.watching, 'quiet again once it is over');
  t.deepEqual(c.view(A).members, [A, B, C]);
});

test('a settled node takes a member\u2019s heartbeat as heard when it came, not when it read it: a death counts the real silence', async (t) => {
  const c = new ControlCluster();
  const a = c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  const victim = c.add(C, { key: KEY });
  await c.run(1000);
  t.false(a.socket.watching, 'A reads heartbeats on its own timer');
  let lastFromVictim = Number.NaN;
  c.wire.taps.push((_frame, from) => {
    if (from === victim.socket) lastFromVictim = c.clock.wallNow();
  });
  await c.run(137); // mid-interval: A reads C's next heartbeat up to 100 ms after it came
  victim.socket.close(); // C falls silent (no LEAVE)
  await c.run(1000);
  const failover = a.plane.status().lastFailover;
  t.is(failover?.node, C);
  const heardLate = failover!.lastHeardAt - lastFromVictim;
  const declaredAfter = failover!.declaredAt - lastFromVictim;
  t.log(`A heard C's last heartbeat ${heardLate.toFixed(1)} ms after it was sent; declared it dead ${declaredAfter.toFixed(1)} ms after`);
  t.true(heardLate >= 0 && heardLate <= 1, 'heard when it came (the wire takes 0.1 ms), not when read');
  // Counted from the round's start at the earliest (membership.ts), which a settled node's timer sets: up to a heartbeat more.
  t.true(declaredAfter >= 400 && declaredAfter <= 400 + 100 + 15, 'dead after its 400 ms of silence, not sooner');
});

test('settled nodes whose wall clock steps (NTP) an hour forward or back in the middle of an interval declare no death (a heartbeat\u2019s kernel receive time is wall-clock time)', async (t) => {
  const c = new ControlCluster({ heartbeatMs: 10, deadAfterMs: 30 });
  const nodes = [A, B, C].map((mac) => c.add(mac, { key: KEY, data: { clockToleranceMs: 7_200_000 } }));
  await c.run(1000);
  t.true(nodes.every((n) => !n.socket.watching), 'all settled');
  for (const step of [3_600_000, -3_600_000]) {
    await c.run(4);
    c.clock.stepWall(step);
    await c.run(500);
    for (const mac of [A, B, C]) t.deepEqual(c.view(mac).members, [A, B, C], `after a step of ${step} ms`);
  }
  t.is(nodes.reduce((sum, n) => sum + (n.plane.status().deaths['missed-heartbeats'] ?? 0), 0), 0, 'no death for silence');
});

test('a node that left (lnlbctl stop) sleeps: its control thread wakes every half dead-after, not every millisecond; after a rejoin its status counts no stall for the time it was out', async (t) => {
  const c = new ControlCluster();
  c.add(A, { key: KEY });
  const b = c.add(B, { key: KEY });
  await c.run(1000);
  b.plane.leave();
  await c.run(10);
  // Every timer of the memory wire and both planes: A alone sets about 30 a second (its rounds).
  const setTimer = c.clock.setTimer.bind(c.clock);
  let timers = 0;
  c.clock.setTimer = (cb, ms) => {
    timers++;
    return setTimer(cb, ms);
  };
  await c.run(5000);
  c.clock.setTimer = setTimer;
  t.true(timers < 300, `${timers} timers in 5 s with one node out (one a millisecond would be 5000)`);
  b.plane.rejoin();
  await c.run(1000);
  t.deepEqual(c.view(B).members, [A, B]);
  t.is(b.plane.status().stallMaxMs, 0, 'the 5 s out were no stall of the control thread');
});

test('a deadline reads the frames already waiting before it decides: a heartbeat that arrived in time but was not read yet (I/O callbacks run after timers) kills nobody', async (t) => {
  const c = new ControlCluster({ heartbeatMs: 10, deadAfterMs: 30 });
  const a = c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  await c.run(1000);
  t.deepEqual(c.view(A).members, [A, B]);
  // From now on A is never told that frames wait: only its own timers find them.
  a.socket.onReadable(() => undefined);
  await c.run(1000);
  t.deepEqual(
    a.events.filter((e) => e.type === 'node-died' || (e.type === 'log' && /died|reset/.test(e.msg))),
    [],
  );
  t.deepEqual(c.view(A).members, [A, B]);
  t.deepEqual(c.view(B).members, [A, B]);
});

/** A tracking state's header naming `owners` (no entries): all the control plane reads of it. */
function stateNaming(owners: readonly string[]): Uint8Array {
  const bytes = new Uint8Array(STATE_HEADER_BYTES + owners.length * STATE_OWNER_BYTES);
  const h = new DataView(bytes.buffer);
  h.setUint32(STATE_H_MAGIC, STATE_MAGIC);
  h.setUint16(STATE_H_VERSION, STATE_VERSION);
  h.setUint32(STATE_H_OWNERS, owners.length);
  owners.forEach((mac, i) => bytes.set(parseMac(mac), STATE_HEADER_BYTES + i * STATE_OWNER_BYTES));
  return bytes;
}

test('a newcomer holds a state naming a member it has not heard from yet, and loads it with that member’s id once it has (its flows are not skipped as of an unknown owner)', async (t) => {
  const c = new ControlCluster();
  c.savedStates = () => [{ protocol: 6, state: stateNaming([A, B]), entries: 2 }];
  c.add(A, { key: KEY });
  const b = c.add(B, { key: KEY });
  await c.run(1000);
  const late = c.add(C, { key: KEY });
  const heardFromBAt = c.clock.now() + 250;
  c.wire.filter = (_frame, from, to) => !(from === b.socket && to === late.socket && c.clock.now() < heardFromBAt);
  await c.run(1000);
  const states = late.events.filter((e) => e.type === 'state');
  t.is(states.length, 1, 'the state is handed on once');
  const state = states[0]!;
  t.true(state.type === 'state' && state.ownerIds[B] !== undefined, `B has an id when the state is loaded: ${JSON.stringify(state.type === 'state' ? state.ownerIds : {})}`);
  t.true(late.events.some((e) => e.type === 'log' && /held until every owner/.test(e.msg)), 'the hold is logged');
  for (const mac of [A, B, C]) t.deepEqual(c.view(mac).members, [A, B, C]);
});

test('a state naming an owner no member has heard of is loaded after a death timeout (that owner is dead; its flows are skipped), and the newcomer joins', async (t) => {
  const c = new ControlCluster();
  const gone = '02:00:00:00:00:0d';
  c.savedStates = () => [{ protocol: 6, state: stateNaming([A, gone]), entries: 2 }];
  c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  await c.run(1000);
  const late = c.add(C, { key: KEY });
  await c.run(200);
  t.is(late.events.filter((e) => e.type === 'state').length, 0, 'held while the owner may still be heard from');
  await c.run(1000);
  const state = late.events.find((e) => e.type === 'state');
  t.true(state?.type === 'state' && state.ownerIds[gone] === undefined && state.ownerIds[A] !== undefined, 'loaded without the unknown owner');
  for (const mac of [A, B, C]) t.deepEqual(c.view(mac).members, [A, B, C]);
});
