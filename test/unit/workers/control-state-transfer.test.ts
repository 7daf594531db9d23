/**
 * The newcomer's state transfer through the real stack (ControlPlane → ControlChannel →
 * ControlAuthenticator → Reassembler, keyed) on a memory wire that loses tracking-state
 * fragments: every byte arrives, in order, before the newcomer serves.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { DRAINING_WEIGHT } from '../../../src/cluster/election.js';
import { MessageType } from '../../../src/net/cluster-message.js';
import { ETH_HLEN, formatMac } from '../../../src/net/ethernet.js';
import type { ControlEvent } from '../../../src/workers/messages.js';
import { prng } from '../shm/fixtures/prng.js';
import { ControlCluster, type PlaneNode } from './fixtures/control-cluster.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const KEY = randomBytes(32);

function typeOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset).getUint32(ETH_HLEN + 4);
}

function srcOf(frame: Uint8Array): string {
  return formatMac(frame.subarray(6, 12));
}

/** Two handlers' states of different sizes and contents, as a member's main thread saves them. */
function states(): { protocol: number; state: Uint8Array; entries: number }[] {
  const tcp = new Uint8Array(150_000);
  for (let i = 0; i < tcp.length; i++) tcp[i] = (i * 31 + 7) & 0xff;
  const udp = new Uint8Array(40_000);
  for (let i = 0; i < udp.length; i++) udp[i] = (i * 17 + 3) & 0xff;
  return [
    { protocol: 6, state: tcp, entries: 10_000 },
    { protocol: 17, state: udp, entries: 3000 },
  ];
}

function stateEvents(node: PlaneNode): Extract<ControlEvent, { type: 'state' }>[] {
  return node.events.filter((e): e is Extract<ControlEvent, { type: 'state' }> => e.type === 'state');
}

function logFields(node: PlaneNode, event: string): Record<string, unknown>[] {
  return node.events.flatMap((e) => (e.type === 'log' && e.fields['event'] === event ? [e.fields] : []));
}

async function twoMembers(): Promise<ControlCluster> {
  const c = new ControlCluster();
  c.savedStates = states;
  c.add(B, { key: KEY });
  c.add(C, { key: KEY });
  await c.run(1000);
  return c;
}

test('30% of the state fragments lost: the newcomer asks again for what it lacks, gets every byte in order, acknowledges, and serves only then', async (t) => {
  const c = await twoMembers();
  const rnd = prng(0x57a7e);
  let fragments = 0;
  let lost = 0;
  c.wire.filter = (frame) => {
    if (typeOf(frame) !== MessageType.CONNTRACK) return true;
    fragments++;
    if (rnd() >= 0.3) return true;
    lost++;
    return false;
  };
  const joinedAt = c.clock.now();
  const a = c.add(A, { key: KEY });
  let servedAt = -1;
  let sawDraining = false;
  for (let ms = 0; ms < 5000 && servedAt < 0; ms += 5) {
    await c.run(5);
    const inB = c.view(B);
    const at = inB.members.indexOf(A);
    if (at >= 0 && !c.view(A).accepting && inB.weights[at] === DRAINING_WEIGHT) sawDraining = true;
    if (c.view(A).accepting) servedAt = c.clock.now();
  }
  t.true(servedAt > 0, 'the newcomer serves');
  const received = stateEvents(a);
  const want = states();
  t.deepEqual(
    received.map((e) => [e.from, e.protocol, e.last, e.state.length]),
    [
      [B, 6, false, want[0]!.state.length],
      [B, 17, true, want[1]!.state.length],
    ],
    'both handlers’ states from the first member, in order, the last marked',
  );
  t.true(Buffer.from(received[0]!.state).equals(Buffer.from(want[0]!.state)) && Buffer.from(received[1]!.state).equals(Buffer.from(want[1]!.state)), 'every byte');
  t.true(sawDraining, 'while it waited, the members had it at the draining weight: no new client went to it');
  const got = logFields(a, 'state-received')[0]!;
  const acked = logFields(c.nodes.get(B)!, 'state-acknowledged')[0];
  t.truthy(acked, 'the sender logged the acknowledgement');
  t.false(acked!['implicit'], 'by the STATE_ACK, not only by its serving');
  const status = a.plane.status().control;
  t.true(status.stateTransfer['requestsSent']! > 0 && (status.sent['STATE_NACK'] ?? 0) > 0, 'it asked');
  t.true(c.nodes.get(B)!.plane.status().control.stateTransfer['fragmentsResent']! > 0, 'B resent');
  t.deepEqual(a.plane.status().control.rejected, {}, 'nothing refused at the newcomer');
  t.log(
    `${fragments} fragments on the wire (${lost} lost); the newcomer asked ${String(got['fragmentsAsked'])} fragments again in ${String(got['requests'])} requests; state complete ${String(got['ms'])} ms after joining, serving ${Math.round(servedAt - joinedAt)} ms after`,
  );
  await c.run(1000);
  for (const mac of [A, B, C]) t.deepEqual(c.view(mac).members, [A, B, C]);
});

test('the sender dies mid-transfer: the newcomer says so, takes the state from the next member that has joined, and serves with it', async (t) => {
  const c = await twoMembers();
  let bSilent = false;
  let fromB = 0;
  c.wire.filter = (frame) => {
    if (srcOf(frame) !== B) return true;
    if (typeOf(frame) === MessageType.CONNTRACK && ++fromB === 40) bSilent = true; // B dies after 40 fragments
    return !bSilent;
  };
  const a = c.add(A, { key: KEY });
  await c.run(200);
  t.true(bSilent, 'B went silent mid-transfer');
  c.stop(B); // its LEAVE is lost too: it died
  t.false(c.view(A).accepting, 'waiting for the state');
  for (let ms = 0; ms < 3000 && !c.view(A).accepting; ms += 10) await c.run(10);
  t.true(c.view(A).accepting);
  const changed = logFields(a, 'state-sender-changed');
  t.like(changed[0], { from: B, to: C, reason: 'died' });
  t.true(c.logs(A).some((l) => l.startsWith(`tracking-state sender ${B} died (silent for`) && l.endsWith(`taking the state from ${C}`)), c.logs(A).join('\n'));
  t.deepEqual(
    stateEvents(a).map((e) => [e.from, e.protocol, e.last]),
    [
      [C, 6, false],
      [C, 17, true],
    ],
    'the state came whole from C: nothing of B’s half transfer was handed on',
  );
  await c.run(1000);
  for (const mac of [A, C]) t.deepEqual(c.view(mac).members, [A, C]);
});

test('a sender whose fragments never arrive is passed over once it has been asked enough; the next member delivers, and the newcomer never served without the state', async (t) => {
  const c = await twoMembers();
  c.wire.filter = (frame) => !(srcOf(frame) === B && typeOf(frame) === MessageType.CONNTRACK);
  const a = c.add(A, { key: KEY });
  for (let ms = 0; ms < 5000 && !c.view(A).accepting; ms += 5) await c.run(5);
  t.true(c.view(A).accepting);
  t.is(stateEvents(a).length, 2, 'the state was in when it started serving');
  t.like(logFields(a, 'state-sender-changed')[0], { from: B, to: C, reason: 'unresponsive' });
  t.deepEqual(
    stateEvents(a).map((e) => e.from),
    [C, C],
  );
});

test('a newcomer with every fragment lost keeps waiting (status shows its requests) and serves without the state only when no member that has joined is left', async (t) => {
  const c = new ControlCluster();
  c.add(B, { key: KEY });
  await c.run(1000);
  c.wire.filter = (frame) => typeOf(frame) !== MessageType.CONNTRACK;
  const a = c.add(A, { key: KEY });
  await c.run(3000);
  t.false(c.view(A).accepting);
  t.true(a.plane.status().control.stateTransfer['requestsSent']! >= 8);
  t.true(c.logs(A).some((l) => l.includes('no member has delivered the tracking state')), 'it says why it does not serve');
  c.wire.filter = (frame) => srcOf(frame) !== B;
  c.stop(B);
  await c.run(1000);
  t.true(c.view(A).accepting);
  t.true(c.logs(A).some((l) => l.startsWith('no member that has joined is left to send the tracking state')));
  t.is(stateEvents(a).length, 0);
});
