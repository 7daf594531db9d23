import test from 'ava';
import {
  LACP_STATE_ACTIVITY,
  LACP_STATE_AGGREGATION,
  LACP_STATE_COLLECTING,
  LACP_STATE_DISTRIBUTING,
  LACP_STATE_SYNCHRONIZATION,
  LACP_STATE_TIMEOUT,
  type Lacpdu,
} from '../../../../src/bond/lacp/lacpdu.js';
import {
  AGGREGATE_WAIT_MS,
  ChurnState,
  FAST_PERIODIC_MS,
  LONG_TIMEOUT_MS,
  LacpBond,
  MuxState,
  PeriodicState,
  RxState,
  SHORT_TIMEOUT_MS,
  SLOW_PERIODIC_MS,
  operationalKey,
  type LacpRate,
} from '../../../../src/bond/lacp/machines.js';
import { parseMac } from '../../../../src/net/ethernet.js';
import { between, prng } from '../../shm/fixtures/prng.js';
import { LacpLab, type Cable } from './fixtures/lab.js';

const IN_USE = LACP_STATE_ACTIVITY | LACP_STATE_AGGREGATION | LACP_STATE_SYNCHRONIZATION | LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING;

/** Two systems, A and B, one port each, cabled together. */
function pair(rate: LacpRate): { lab: LacpLab; a: LacpBond; b: LacpBond; cable: Cable } {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpRate: rate });
  const b = lab.bond('B', { lacpRate: rate });
  const cable = lab.cable(lab.addPort(a, { portNumber: 1 }), lab.addPort(b, { portNumber: 1 }));
  return { lab, a, b, cable };
}

for (const rate of ['fast', 'slow'] as const) {
  test(`${rate} rate: both ends reach collecting+distributing after the aggregate wait (2 s)`, (t) => {
    const { lab, a, b } = pair(rate);
    lab.runUntil(10_000);
    const timeout = rate === 'fast' ? LACP_STATE_TIMEOUT : 0;
    for (const [name, bond] of [['A', a], ['B', b]] as const) {
      const port = bond.port(1)!;
      t.is(port.mux, MuxState.COLLECTING_DISTRIBUTING, name);
      t.is(port.rx, RxState.CURRENT, name);
      t.true(port.collectingDistributing);
      t.is(port.actorState, IN_USE | timeout, name);
      t.is(port.partner.state, IN_USE | timeout, name);
      t.deepEqual(bond.whyNotDistributing(1), []);
      // The ports exchanged their first LACPDUs at 0 and attached when the 2 s wait ended.
      t.is(lab.lastCollectingDistributing(name, 1, true), AGGREGATE_WAIT_MS, name);
      t.is(bond.activeAggregator?.id, 1);
      t.is(bond.activeAggregator?.partnerSystem, (bond === a ? b : a).system);
    }
  });
}

test('fast rate: one LACPDU a second once settled; slow rate: one every 30 s', (t) => {
  const fast = pair('fast');
  fast.lab.runUntil(20_000);
  t.is(fast.a.port(1)!.periodic, PeriodicState.FAST_PERIODIC);
  t.deepEqual(fast.lab.sends('A', 1, 10_000, 15_000).length, 5);
  const slow = pair('slow');
  slow.lab.runUntil(200_000);
  t.is(slow.a.port(1)!.periodic, PeriodicState.SLOW_PERIODIC);
  const sends = slow.lab.sends('A', 1, 10_000);
  t.true(sends.length >= 6 && sends.length <= 7, String(sends));
  for (let i = 1; i < sends.length; i++) t.is(sends[i]! - sends[i - 1]!, SLOW_PERIODIC_MS);
});

test('never more than 3 LACPDUs in any fast periodic interval', (t) => {
  const { lab } = pair('fast');
  lab.runUntil(30_000);
  for (const name of ['A', 'B']) {
    const sends = lab.sends(name, 1);
    for (let i = 3; i < sends.length; i++) t.true(sends[i]! - sends[i - 3]! >= FAST_PERIODIC_MS, `${name}: ${sends.slice(i - 3, i + 1).join(',')}`);
  }
});

test('the transmit limit holds a fourth NTT until the window allows it', (t) => {
  const bond = new LacpBond({ systemMac: parseMac('02:00:00:00:01:00'), lacpRate: 'fast' });
  bond.addPort({ portNumber: 1, mac: parseMac('02:00:00:00:01:01') }, 0);
  const sent: number[] = [];
  const drain = (now: number): void => {
    for (const a of bond.drainActions()) if (a.kind === 'send') sent.push(now);
  };
  drain(0);
  t.deepEqual(sent, [0]); // DETACHED sets NTT
  // A partner whose idea of us is wrong every time: every LACPDU sets NTT (update_NTT).
  for (let i = 1; i <= 9; i++) {
    const now = i * 100;
    const pdu: Lacpdu = {
      version: 1,
      actor: { systemPriority: 1, system: 0x0200_0000_0200, key: 9, portPriority: 1, port: 1, state: LACP_STATE_ACTIVITY | LACP_STATE_TIMEOUT | LACP_STATE_AGGREGATION },
      partner: { systemPriority: 1, system: 0x0200_0000_0100, key: 9, portPriority: 1, port: 1000 + i, state: 0 },
      collectorMaxDelay: 0,
    };
    bond.receive(1, pdu, now);
    drain(now);
  }
  t.deepEqual(sent, [0, 100, 200]);
  t.true(bond.port(1)!.ntt);
  t.is(bond.nextDeadline(), 1000);
  bond.tick(1000);
  drain(1000);
  t.deepEqual(sent, [0, 100, 200, 1000]);
});

for (const [rate, timeout] of [['fast', SHORT_TIMEOUT_MS], ['slow', LONG_TIMEOUT_MS]] as const) {
  test(`${rate} rate: a dead partner's port stops distributing ${timeout} ms after its last LACPDU, is detached ${SHORT_TIMEOUT_MS} ms later`, (t) => {
    const { lab, a, cable } = pair(rate);
    lab.runUntil(100_500);
    const port = a.port(1)!;
    t.true(port.collectingDistributing);
    cable.bToA = false; // B goes silent: its LACPDUs no longer reach A
    const lastRx = port.lastRxAt;
    t.true(lastRx <= 100_500 && lastRx > 100_500 - (rate === 'fast' ? FAST_PERIODIC_MS : SLOW_PERIODIC_MS) - 1, String(lastRx));
    lab.runUntil(lastRx + timeout - 1);
    t.true(port.collectingDistributing, 'still distributing 1 ms before the timeout');
    lab.runUntil(lastRx + timeout);
    t.false(port.collectingDistributing);
    t.is(lab.lastCollectingDistributing('A', 1, false), lastRx + timeout);
    t.is(port.rx, RxState.EXPIRED);
    t.is(port.mux, MuxState.ATTACHED); // still in the aggregator, out of sync
    t.deepEqual(a.whyNotDistributing(1).map((r) => r.code), ['expired']);
    lab.runUntil(lastRx + timeout + SHORT_TIMEOUT_MS);
    t.is(port.rx, RxState.DEFAULTED);
    t.is(port.mux, MuxState.WAITING); // detached, re-selected into an aggregator of its own
    t.is(lab.actions('A', (x) => x.kind === 'detach').at(-1)?.at, lastRx + timeout + SHORT_TIMEOUT_MS);
    t.deepEqual(a.whyNotDistributing(1).map((r) => r.code), ['defaulted']);
    t.true(a.activeAggregator === undefined || a.activeAggregator.partnerSystem === 0);
  });
}

test('the partner coming back: the port negotiates with it again and both ends distribute after the aggregate wait', (t) => {
  const { lab, a, b, cable } = pair('fast');
  lab.runUntil(10_000);
  cable.bToA = false;
  lab.runUntil(20_000);
  t.is(a.port(1)!.rx, RxState.DEFAULTED);
  t.true(a.port(1)!.collectingDistributing, "A hears no partner any more: Linux's fallback, its individual port carries traffic");
  t.false(b.port(1)!.collectingDistributing, 'B saw A fall out of sync');
  cable.bToA = true;
  lab.runUntil(21_000); // B's next LACPDU, within a second at the fast rate
  t.is(a.port(1)!.rx, RxState.CURRENT);
  lab.runUntil(21_000 + 2 * AGGREGATE_WAIT_MS + 1);
  t.true(a.port(1)!.collectingDistributing);
  t.true(b.port(1)!.collectingDistributing);
  t.not(a.activeAggregator?.partnerSystem, 0, 'aggregated with B again');
});

test("a partner that speaks no LACP (a plain switch): Linux's fallback, one port of two carries traffic after the aggregate wait; LACP coming up later takes over, both ports aggregate", (t) => {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpRate: 'fast' });
  const b = lab.bond('B', { lacpRate: 'fast' });
  const cables = [1, 2].map((n) => lab.cable(lab.addPort(a, { portNumber: n }), lab.addPort(b, { portNumber: n })));
  for (const c of cables) c.bToA = false; // nothing B sends reaches A: a switch with LACP off
  lab.runUntil(10_000);
  t.deepEqual(a.distributingPorts().map((p) => p.rx), [RxState.DEFAULTED], 'one port, defaulted, distributes');
  t.is(a.activeAggregator?.partnerSystem, 0);
  t.true(a.activeAggregator?.individual);
  const standby = a.ports.find((p) => !p.collectingDistributing)!;
  t.deepEqual(a.whyNotDistributing(standby.portNumber).map((r) => r.code), ['defaulted']);
  for (const c of cables) c.bToA = true; // the switch port is configured for LACP
  lab.runUntil(20_000);
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [1, 2], 'both ports aggregate with the partner');
  t.deepEqual(b.distributingPorts().map((p) => p.portNumber), [1, 2]);
});

test('link down: the port stops distributing at once and says why', (t) => {
  const { lab, a, b, cable } = pair('fast');
  lab.runUntil(5_000);
  lab.setCarrier(cable, false);
  t.is(lab.lastCollectingDistributing('A', 1, false), 5_000);
  t.is(lab.lastCollectingDistributing('B', 1, false), 5_000);
  t.deepEqual(a.whyNotDistributing(1), [{ code: 'link-down', message: 'link down' }]);
  const sent = lab.sends('A', 1).length;
  lab.runUntil(10_000);
  t.is(lab.sends('A', 1).length, sent, 'no LACPDUs on a down link');
  lab.setCarrier(cable, true);
  lab.runUntil(10_000 + AGGREGATE_WAIT_MS);
  t.true(a.port(1)!.collectingDistributing);
  t.true(b.port(1)!.collectingDistributing);
});

/** A with ports 1 and 2 to B's ports 1 and 2; B's port 2 has another admin key. */
function otherKey(): { lab: LacpLab; a: LacpBond; b: LacpBond } {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpRate: 'fast' });
  const b = lab.bond('B', { lacpRate: 'fast' });
  lab.cable(lab.addPort(a, { portNumber: 1 }), lab.addPort(b, { portNumber: 1 }));
  lab.cable(lab.addPort(a, { portNumber: 2 }), lab.addPort(b, { portNumber: 2, key: 99 }));
  return { lab, a, b };
}

test('a partner port with another key does not aggregate, and whyNotDistributing says so', (t) => {
  const { lab, a, b } = otherKey();
  lab.runUntil(10_000);
  const key = operationalKey(1000, true, 0);
  t.is(key, 9);
  t.true(a.port(1)!.collectingDistributing);
  t.false(a.port(2)!.collectingDistributing);
  t.true(b.port(1)!.collectingDistributing);
  t.false(b.port(2)!.collectingDistributing);
  t.not(a.port(1)!.aggregator, a.port(2)!.aggregator);
  t.is(a.activeAggregator?.id, a.port(1)!.aggregator);
  t.is(a.port(2)!.selected, 'STANDBY');
  t.is(a.port(2)!.mux, MuxState.WAITING);
  t.is(a.port(2)!.actorState & LACP_STATE_SYNCHRONIZATION, 0, 'a standby port does not claim sync');
  const whyA = a.whyNotDistributing(2);
  t.is(whyA[0]?.code, 'other-aggregator');
  t.regex(whyA[0]!.message, /partner key 99 differs from its 9/);
  const whyB = b.whyNotDistributing(2);
  t.is(whyB[0]?.code, 'other-aggregator');
  t.regex(whyB[0]!.message, /actor key 99 differs from its 9/);
});

test('churn: a port out of sync for 60 s is reported churned, actor and partner', (t) => {
  const { lab, a } = otherKey();
  lab.runUntil(59_999);
  const port = a.port(2)!;
  t.is(port.actorChurn, ChurnState.CHURN_MONITOR);
  t.is(port.partnerChurn, ChurnState.CHURN_MONITOR);
  lab.runUntil(60_000);
  t.is(port.actorChurn, ChurnState.CHURN);
  t.is(port.partnerChurn, ChurnState.CHURN);
  t.is(port.actorChurnCount, 1);
  t.is(port.partnerChurnCount, 1);
  t.deepEqual(
    lab.actions('A', (x) => x.kind === 'churn').map((l) => [l.at, l.action]),
    [
      [60_000, { kind: 'churn', port: 2, who: 'actor', churned: true }],
      [60_000, { kind: 'churn', port: 2, who: 'partner', churned: true }],
    ],
  );
  const codes = a.whyNotDistributing(2).map((r) => r.code);
  t.deepEqual(codes, ['other-aggregator', 'actor-churned', 'partner-churned']);
  t.regex(a.whyNotDistributing(2)[2]!.message, /^partner churned/);
  // The port in use never churned.
  t.is(a.port(1)!.actorChurn, ChurnState.NO_CHURN);
  t.is(a.port(1)!.partnerChurn, ChurnState.NO_CHURN);
  t.is(a.port(1)!.actorChurnCount, 0);
});

test('min_links=2 with one port up keeps the aggregator down; the second port brings both up', (t) => {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpRate: 'fast', minLinks: 2 });
  const b = lab.bond('B', { lacpRate: 'fast' });
  lab.cable(lab.addPort(a, { portNumber: 1 }), lab.addPort(b, { portNumber: 1 }));
  const second = lab.cable(lab.addPort(a, { portNumber: 2, linkUp: false }), lab.addPort(b, { portNumber: 2, linkUp: false }));
  lab.runUntil(10_000);
  t.is(a.activeAggregator, undefined);
  t.false(a.port(1)!.collectingDistributing);
  t.false(b.port(1)!.collectingDistributing, 'B does not distribute to a link A keeps out of sync');
  const why = a.whyNotDistributing(1);
  t.is(why[0]?.code, 'below-min-links');
  t.regex(why[0]!.message, /1 port\(s\) with link up, below min_links 2/);
  t.is(a.whyNotDistributing(2)[0]?.code, 'link-down');
  lab.setCarrier(second, true);
  // The new link's first LACPDUs go out at the first fast periodic tick (1 s), then both
  // ports of the aggregator wait 2 s and attach together.
  const up = 10_000 + FAST_PERIODIC_MS + AGGREGATE_WAIT_MS;
  lab.runUntil(up);
  t.is(a.activeAggregator?.ports, 2);
  t.true(a.port(1)!.collectingDistributing);
  t.true(a.port(2)!.collectingDistributing);
  t.is(lab.lastCollectingDistributing('A', 1, true), up);
  t.is(lab.lastCollectingDistributing('A', 2, true), up);
  t.is(a.port(1)!.aggregator, a.port(2)!.aggregator);
  // One link fails again: below min_links, the whole aggregator stops.
  lab.setCarrier(second, false);
  t.is(a.activeAggregator, undefined);
  t.false(a.port(1)!.collectingDistributing);
});

/** A's ports 1 and 2 (1 Gb/s) go to B, its port 3 (10 Gb/s) to C. */
function threeWay(adSelect: 'count' | 'bandwidth' | 'stable'): { lab: LacpLab; a: LacpBond } {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpRate: 'fast', adSelect });
  const b = lab.bond('B', { lacpRate: 'fast' });
  const c = lab.bond('C', { lacpRate: 'fast' });
  lab.cable(lab.addPort(a, { portNumber: 1 }), lab.addPort(b, { portNumber: 1 }));
  lab.cable(lab.addPort(a, { portNumber: 2 }), lab.addPort(b, { portNumber: 2 }));
  lab.cable(lab.addPort(a, { portNumber: 3, speedMbps: 10_000 }), lab.addPort(c, { portNumber: 1, speedMbps: 10_000 }));
  lab.runUntil(10_000);
  return { lab, a };
}

test('ad_select=count picks the aggregator with more ports', (t) => {
  const { a } = threeWay('count');
  const active = a.activeAggregator!;
  t.is(active.ports, 2);
  t.is(active.bandwidthMbps, 2000);
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [1, 2]);
  t.is(a.whyNotDistributing(3)[0]?.code, 'other-aggregator');
  t.regex(a.whyNotDistributing(3)[0]!.message, /actor key 15 differs from its 9; partner 65535,02:00:00:00:03:00 differs from its 65535,02:00:00:00:02:00/);
});

test('ad_select=bandwidth picks the aggregator with more bandwidth', (t) => {
  const { a } = threeWay('bandwidth');
  t.is(a.activeAggregator?.bandwidthMbps, 10_000);
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [3]);
});

test('ad_select=stable: chosen by bandwidth, then kept while it works', (t) => {
  const { lab, a } = threeWay('stable');
  const toC = { a: { bond: a, port: 3 }, b: { bond: lab.bondByName('C'), port: 1 }, aToB: true, bToA: true };
  t.is(a.activeAggregator?.bandwidthMbps, 10_000); // bandwidth decides the first choice
  lab.setCarrier(toC, false);
  t.is(a.activeAggregator?.bandwidthMbps, 2_000, 'the active aggregator failed: re-selection');
  lab.advance(AGGREGATE_WAIT_MS);
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [1, 2]);
  lab.setCarrier(toC, true);
  lab.advance(10_000);
  t.is(a.activeAggregator?.bandwidthMbps, 2_000, 'stable: no change back while the active one works');
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [1, 2]);
});

test('ad_select=bandwidth: moves back to the faster aggregator when it returns', (t) => {
  const { lab, a } = threeWay('bandwidth');
  const toC = { a: { bond: a, port: 3 }, b: { bond: lab.bondByName('C'), port: 1 }, aToB: true, bToA: true };
  lab.setCarrier(toC, false);
  lab.advance(10_000);
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [1, 2]);
  lab.setCarrier(toC, true);
  lab.advance(10_000);
  t.deepEqual(a.distributingPorts().map((p) => p.portNumber), [3]);
});

test('passive on both ends: no LACPDUs and no aggregation (each end falls back to its individual port); one active end is enough', (t) => {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpActive: false });
  const b = lab.bond('B', { lacpActive: false });
  lab.cable(lab.addPort(a, { portNumber: 1 }), lab.addPort(b, { portNumber: 1 }));
  lab.runUntil(100_000);
  t.deepEqual(lab.actions('A', (x) => x.kind === 'send'), []);
  t.is(a.port(1)!.rx, RxState.DEFAULTED);
  t.true(a.port(1)!.collectingDistributing, "no partner heard: Linux's fallback, the individual port carries traffic");

  const lab2 = new LacpLab();
  const p = lab2.bond('P', { lacpActive: false });
  const q = lab2.bond('Q', { lacpActive: true });
  lab2.cable(lab2.addPort(p, { portNumber: 1 }), lab2.addPort(q, { portNumber: 1 }));
  lab2.runUntil(10_000);
  t.true(p.port(1)!.collectingDistributing);
  t.true(q.port(1)!.collectingDistributing);
});

test('removing a port detaches it first', (t) => {
  const { lab, a } = pair('fast');
  lab.runUntil(5_000);
  a.removePort(1, lab.now);
  lab.flush();
  const kinds = lab.actions('A', (x) => x.kind !== 'send' && x.kind !== 'port-state').filter((l) => l.at === 5_000).map((l) => l.action.kind);
  t.deepEqual(kinds.sort(), ['active-aggregator', 'collecting-distributing', 'detach', 'unselected']);
  t.is(a.ports.length, 0);
  t.is(a.activeAggregator, undefined);
});

test("the partner's first LACPDU lost: the exchange starts at the first fast periodic tick, 3 s in all", (t) => {
  const lab = new LacpLab();
  const a = lab.bond('A', { lacpRate: 'slow' });
  const b = lab.bond('B', { lacpRate: 'slow' });
  const pa = lab.addPort(a, { portNumber: 1 });
  const pb = lab.addPort(b, { portNumber: 1 });
  lab.runUntil(500); // the first LACPDUs went nowhere: no cable yet
  lab.cable(pa, pb);
  lab.runUntil(10_000);
  // A port with no partner yet is EXPIRED, which asks for (and sends at) the fast rate.
  t.is(lab.lastCollectingDistributing('A', 1, true), FAST_PERIODIC_MS + AGGREGATE_WAIT_MS);
  t.is(lab.lastCollectingDistributing('B', 1, true), FAST_PERIODIC_MS + AGGREGATE_WAIT_MS);
});

test('property: random LACPDUs, link flaps and clock steps never throw and keep the invariants', (t) => {
  const rnd = prng(0x5eed);
  const bond = new LacpBond({ systemMac: parseMac('02:00:00:00:01:00'), lacpRate: 'fast', minLinks: 2, adSelect: 'count' });
  for (let n = 1; n <= 4; n++) bond.addPort({ portNumber: n, mac: parseMac(`02:00:00:00:01:0${n}`) }, 0);
  const systems = [0x0200_0000_0200, 0x0200_0000_0300];
  const sends = new Map<number, number[]>();
  let now = 0;
  for (let i = 0; i < 20_000; i++) {
    now += between(rnd, 0, 700);
    const port = between(rnd, 1, 4);
    const what = rnd();
    try {
      if (what < 0.6) {
        const state = between(rnd, 0, 255);
        bond.receive(port, {
          version: 1,
          actor: { systemPriority: 1, system: systems[between(rnd, 0, 1)]!, key: between(rnd, 1, 2), portPriority: 1, port: port, state },
          partner: {
            systemPriority: 65535,
            system: rnd() < 0.8 ? bond.system : 0,
            key: bond.port(port)!.actorKey,
            portPriority: 255,
            port,
            state: bond.port(port)!.actorState ^ (rnd() < 0.2 ? LACP_STATE_SYNCHRONIZATION : 0),
          },
          collectorMaxDelay: 0,
        }, now);
      } else if (what < 0.65) {
        bond.setLink(port, { up: rnd() < 0.7, speedMbps: rnd() < 0.9 ? 1000 : 10_000 }, now);
      } else {
        bond.tick(now);
      }
    } catch (err) {
      t.fail(`step ${i} threw ${String(err)}`);
      return;
    }
    for (const a of bond.drainActions()) if (a.kind === 'send') sends.set(a.port, [...(sends.get(a.port) ?? []), now]);
    // Invariants after every input.
    const active = bond.activeAggregator;
    for (const p of bond.ports) {
      if (p.collectingDistributing) {
        t.is(p.mux, MuxState.COLLECTING_DISTRIBUTING);
        t.true(p.partnerInSync && p.enabled && active !== undefined && p.aggregator === active.id, `step ${i} port ${p.portNumber}`);
      }
      if (p.mux === MuxState.ATTACHED || p.mux === MuxState.COLLECTING_DISTRIBUTING) t.true(p.attached);
      t.is((p.actorState & LACP_STATE_SYNCHRONIZATION) !== 0, p.attached, `step ${i}: sync is claimed exactly while attached`);
    }
    if (active) t.true(active.enabledPorts >= 2);
    t.true(bond.nextDeadline() > now);
    // Settled: running again at the same time changes nothing.
    bond.tick(now);
    t.deepEqual(bond.drainActions(), [], `step ${i}`);
  }
  for (const [port, times] of sends) {
    for (let i = 3; i < times.length; i++) t.true(times[i]! - times[i - 3]! >= FAST_PERIODIC_MS, `port ${port}`);
  }
});
