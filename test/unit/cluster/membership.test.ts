import test from 'ava';
import { Membership, type MembershipAction } from '../../../src/cluster/membership.js';
import { MessageType } from '../../../src/net/cluster-message.js';

/**
 * A fake wire and a fake clock: every broadcast reaches every other live node after `delayMs`.
 * Deterministic, so a failure replays exactly.
 */
class SimulatedCluster {
  now = 0;
  readonly nodes = new Map<string, Membership>();
  readonly alive = new Set<string>();
  readonly deaths: { at: string; dead: string; when: number }[] = [];
  #inFlight: { deliverAt: number; from: string; type: MessageType; weight: number; incarnation: number }[] = [];
  #incarnations = 0;

  constructor(readonly delayMs = 1, readonly heartbeatMs = 200, readonly deadAfterMs = 1000) {}

  add(mac: string): Membership {
    const m = new Membership({ selfMac: mac, heartbeatMs: this.heartbeatMs, deadAfterMs: this.deadAfterMs, incarnation: ++this.#incarnations });
    this.nodes.set(mac, m);
    this.alive.add(mac);
    m.start(this.now);
    this.#collect(mac, m.drainActions());
    return m;
  }

  kill(mac: string): void {
    this.alive.delete(mac);
  }

  run(untilMs: number, stepMs = 5): void {
    for (; this.now <= untilMs; this.now += stepMs) {
      const due = this.#inFlight.filter((f) => f.deliverAt <= this.now);
      this.#inFlight = this.#inFlight.filter((f) => f.deliverAt > this.now);
      for (const frame of due) {
        for (const [mac, m] of this.nodes) {
          if (mac === frame.from || !this.alive.has(mac)) continue;
          m.receive(frame.type, frame.from, frame.weight, this.now, frame.incarnation);
          this.#collect(mac, m.drainActions());
        }
      }
      for (const [mac, m] of this.nodes) {
        if (!this.alive.has(mac)) continue;
        m.tick(this.now);
        this.#collect(mac, m.drainActions());
      }
    }
  }

  view(mac: string): string[] {
    return this.nodes.get(mac)!.nodes.map((n) => n.mac);
  }

  #collect(mac: string, actions: MembershipAction[]): void {
    if (!this.alive.has(mac)) return;
    for (const a of actions) {
      if (a.kind === 'send') this.#inFlight.push({ deliverAt: this.now + this.delayMs, from: mac, type: a.type, weight: a.weight ?? 0, incarnation: a.incarnation ?? 0 });
      if (a.kind === 'node-died') this.deaths.push({ at: mac, dead: a.node.mac, when: this.now });
    }
  }
}

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';

test('three nodes started together converge to one table sorted by MAC', (t) => {
  const sim = new SimulatedCluster();
  sim.add(C);
  sim.add(A);
  sim.add(B);
  sim.run(1000);
  for (const mac of [A, B, C]) {
    t.deepEqual(sim.view(mac), [A, B, C]);
    t.true(sim.nodes.get(mac)!.accepting);
  }
});

test('a node accepts nothing until its join phase is over', (t) => {
  const sim = new SimulatedCluster();
  const a = sim.add(A);
  t.false(a.accepting);
  sim.run(100);
  t.false(a.accepting);
  sim.run(400);
  t.true(a.accepting);
});

test('a late joiner is learned by everyone, and learns everyone', (t) => {
  const sim = new SimulatedCluster();
  sim.add(A);
  sim.add(B);
  sim.run(1000);
  sim.add(C);
  sim.run(1600);
  for (const mac of [A, B, C]) t.deepEqual(sim.view(mac), [A, B, C]);
});

test('a silent node is declared dead after dead-after-ms, and only it', (t) => {
  const sim = new SimulatedCluster();
  sim.add(A);
  sim.add(B);
  sim.add(C);
  sim.run(1000);
  const killedAt = sim.now;
  sim.kill(B);
  sim.run(killedAt + 3000);
  t.deepEqual(sim.view(A), [A, C]);
  t.deepEqual(sim.view(C), [A, C]);
  const deaths = sim.deaths.filter((d) => d.dead === B);
  t.is(deaths.length, 2);
  for (const d of deaths) {
    // Heard last at most one heartbeat before the kill; dead once silent for > deadAfterMs.
    t.true(d.when - killedAt <= 1000 + 10, `declared after ${d.when - killedAt} ms`);
    t.true(d.when - killedAt >= 1000 - 200, `declared after ${d.when - killedAt} ms`);
  }
  t.false(sim.deaths.some((d) => d.dead !== B));
});

test('LEAVE removes the sender at once', (t) => {
  const sim = new SimulatedCluster();
  sim.add(A);
  const b = sim.add(B);
  sim.run(1000);
  b.stop();
  const actions = b.drainActions();
  t.true(actions.some((a) => a.kind === 'send' && a.type === MessageType.LEAVE));
  const a = sim.nodes.get(A)!;
  a.receive(MessageType.LEAVE, B, 0, sim.now);
  t.deepEqual(a.nodes.map((n) => n.mac), [A]);
  t.true(a.drainActions().some((x) => x.kind === 'node-died' && x.reason === 'left'));
});

test('a restarted node (JOIN of another incarnation) gets a new id; repeated JOINs do not', (t) => {
  const sim = new SimulatedCluster();
  const a = sim.add(A);
  sim.add(B);
  sim.run(1000);
  t.deepEqual(sim.deaths, [], 'the JOINs repeated at start-up are not restarts');
  const before = a.nodes.find((n) => n.mac === B)!;
  a.receive(MessageType.JOIN, B, 0, sim.now, before.incarnation);
  t.is(a.nodes.find((n) => n.mac === B)!.id, before.id);
  a.receive(MessageType.JOIN, B, 0, sim.now, before.incarnation + 1000);
  t.not(a.nodes.find((n) => n.mac === B)!.id, before.id);
  t.true(a.drainActions().some((x) => x.kind === 'node-died' && x.reason === 'restarted'));
});

test('node ids are stable while membership changes around them', (t) => {
  const sim = new SimulatedCluster();
  sim.add(B);
  sim.run(1000);
  const b = sim.nodes.get(B)!;
  const selfId = b.self!.id;
  sim.add(A); // sorts before B: B's position moves, its id must not
  sim.run(2000);
  t.is(b.self!.id, selfId);
  t.is(b.nodes[1]!.mac, B);
});

test('a node restarted within dead-after-ms is seen as new by heartbeats alone', (t) => {
  const sim = new SimulatedCluster();
  const a = sim.add(A);
  sim.add(B);
  sim.run(1000);
  const oldId = a.nodes.find((n) => n.mac === B)!.id;
  sim.add(B); // same MAC, new incarnation, well before anyone declares it dead
  sim.run(1500);
  const newId = a.nodes.find((n) => n.mac === B)!.id;
  t.not(newId, oldId);
  t.deepEqual(sim.view(A), [A, B]);
  t.true(sim.deaths.some((d) => d.at === A && d.dead === B));
});
