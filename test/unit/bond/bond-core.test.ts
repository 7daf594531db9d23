import test from 'ava';
import { RX_DELIVER, RX_DROP } from '../../../src/bond/bond-core.js';
import { createDecodedLacpdu, encodeLacpdu, ETH_P_SLOW, LACP_STATE_COLLECTING, LACP_STATE_DISTRIBUTING, LACPDU_FRAME_LENGTH } from '../../../src/bond/lacp/lacpdu.js';
import { LinkState } from '../../../src/bond/link-monitor.js';
import { formatBondStatus } from '../../../src/bond/status-file.js';
import { ARPR_OP, ARPR_SENDER_IP, ARPR_TARGET_IP, ARP_OP_REQUEST, ArpParse, buildArpReply, createArpResult, parseArp } from '../../../src/net/arp.js';
import { BROADCAST_MAC, ETH_P_ARP, ETH_P_IP, formatMac, macEquals, parseMac, readEtherType } from '../../../src/net/ethernet.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { formatIPv6, parseIPv6 } from '../../../src/net/ipv6.js';
import { BondWire, PACKET_HOST, PACKET_OTHERHOST, type SentFrame, type WireSide } from './fixtures/bond-wire.js';

const MIIMON = 100;

const etherType = (f: SentFrame): number => readEtherType(f.l2, 0);

function srcMac(f: SentFrame): string {
  return formatMac(f.l2, 6);
}

/** How many of `frames` went out on each of two slots. */
function perSlot(frames: readonly SentFrame[]): [number, number] {
  const n: [number, number] = [0, 0];
  for (const f of frames) n[f.slot === 0 ? 0 : 1]++;
  return n;
}

/** Sends one frame per source port; returns the slots each flow left on (one entry per frame). */
function sendFlows(from: WireSide, to: WireSide, ports: readonly number[]): Map<number, number[]> {
  const slots = new Map<number, number[]>();
  for (const port of ports) slots.set(port, from.transmit(from.udpTo(to, port)));
  return slots;
}

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

/** The first miimon tick at or after `t` (ticks at 0, 100, 200, ...). */
const nextMiiTick = (t: number): number => Math.ceil(t / MIIMON) * MIIMON;

// ---------------------------------------------------------------------------------------------
// balance-rr

for (const vnetHdrLen of [10, 0]) {
  test(`balance-rr (vnet header ${vnetHdrLen}): host frames alternate slots 0,1,0,1 and reach b as sent`, (t) => {
    const w = new BondWire({ options: () => ['mode=balance-rr'], vnetHdrLen });
    w.runUntil(200);
    const frames = range(1, 4).map((i) => {
      const f = w.a.udpTo(w.b, 5000 + i);
      // A header asking for checksum offload must reach the slave socket untouched.
      if (vnetHdrLen > 0) f.set([1, 0, 0, 0, 0, 0, 34, 0, 6, 0], 0);
      return f;
    });
    t.deepEqual(
      frames.map((f) => w.a.transmit(f)),
      [[0], [1], [0], [1]],
    );
    const sent = w.a.sent.filter((f) => f.at === 200);
    t.deepEqual(
      sent.map((f) => [...f.vnet, ...f.l2]),
      frames.map((f) => [...f]),
    );
    const got = w.b.arrivals.filter((x) => x.at === 200);
    t.deepEqual(
      got.map((x) => [x.slot, x.packetType, x.verdict]),
      [
        [0, PACKET_HOST, RX_DELIVER],
        [1, PACKET_HOST, RX_DELIVER],
        [0, PACKET_HOST, RX_DELIVER],
        [1, PACKET_HOST, RX_DELIVER],
      ],
    );
  });
}

test('balance-rr packets_per_slave=3: three frames on slot 0, then three on slot 1', (t) => {
  const w = new BondWire({ options: () => ['mode=balance-rr', 'packets_per_slave=3'] });
  w.runUntil(200);
  t.deepEqual(
    range(0, 9).map((i) => w.a.transmit(w.a.udpTo(w.b, 6000 + i))[0]),
    [0, 0, 0, 1, 1, 1, 0, 0, 0],
  );
});

// ---------------------------------------------------------------------------------------------
// active-backup

test('active-backup, miimon=100 downdelay=200: the backup takes over 200 ms after the tick that saw the carrier go, and sends one gratuitous ARP', (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100', 'downdelay=200'] });
  const { a } = w;
  w.runUntil(1000);
  t.is(a.core.activeSlave, 'a0');
  t.deepEqual(a.transmit(a.udpTo(w.b, 1)), [0]);

  const unplugAt = 1050;
  w.runUntil(unplugAt);
  w.unplug(0);
  const garpsBefore = a.core.counters.gratuitousArpsSent;

  // The driver keeps using a slave in FAIL (carrier gone, downdelay running).
  w.runUntil(1200);
  t.is(a.core.slaveLinkState('a0'), LinkState.FAIL);
  t.is(a.core.activeSlave, 'a0');
  t.deepEqual(a.transmit(a.udpTo(w.b, 2)), [0]);

  const switchedAt = w.runUntilTrue(() => a.core.activeSlave === 'a1', 5000);
  const sawAt = a.lastEvent('link', (f) => f.slave === 'a0' && f.change === 'going-down');
  t.log(`unplugged at ${unplugAt} ms, carrier loss seen at ${String(sawAt)} ms, a1 active at ${String(switchedAt)} ms`);
  t.is(sawAt, nextMiiTick(unplugAt + 1));
  t.is(switchedAt, sawAt! + 200);
  t.true(switchedAt! > unplugAt + 200 && switchedAt! <= unplugAt + 200 + MIIMON, 'within (unplug + downdelay, unplug + downdelay + miimon]');
  t.is(a.core.slaveLinkState('a0'), LinkState.DOWN);
  t.is(a.core.statusView().slaves[0]!.linkFailures, 1);
  t.deepEqual(a.transmit(a.udpTo(w.b, 3)), [1]);

  w.run(3000);
  const arps = a.sentBetween(unplugAt, w.now, ETH_P_ARP);
  t.is(arps.length, 1, 'num_grat_arp=1: exactly one ARP after the failover');
  t.is(a.core.counters.gratuitousArpsSent - garpsBefore, 1);
  const garp = arps[0]!;
  t.is(garp.slot, 1, 'on the new active slave');
  t.is(garp.at, switchedAt!);
  t.true(macEquals(garp.l2, 0, BROADCAST_MAC, 0));
  t.is(srcMac(garp), formatMac(a.mac));
  const arp = createArpResult();
  t.is(parseArp(garp.l2, 0, garp.l2.length, arp), ArpParse.OK);
  t.is(arp.fields[ARPR_OP], ARP_OP_REQUEST);
  t.is(arp.fields[ARPR_SENDER_IP], a.ip);
  t.is(arp.fields[ARPR_TARGET_IP], a.ip);
  t.is(formatMac(arp.senderMac), formatMac(a.mac));
});

test('active-backup num_unsol_na=2 peer_notif_delay=200: after a failover each IPv6 address is advertised twice on the new active slave, 200 ms apart, beside the gratuitous ARPs', (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100', 'num_unsol_na=2', 'peer_notif_delay=200'] });
  const { a } = w;
  w.runUntil(1000);
  const before = a.core.counters.unsolicitedNasSent;
  w.unplug(0);
  const switchedAt = w.runUntilTrue(() => a.core.activeSlave === 'a1', 5000)!;
  w.run(2000);
  const nas = a.sentBetween(switchedAt, w.now, 0x86dd);
  t.deepEqual(nas.map((f) => [f.slot, f.at - switchedAt]), [
    [1, 0],
    [1, 200],
  ]);
  t.is(a.core.counters.unsolicitedNasSent - before, 2);
  t.is(a.sentBetween(switchedAt, w.now, ETH_P_ARP).length, 2, 'num_unsol_na is num_grat_arp: two gratuitous ARPs too');
  const na = nas[0]!.l2;
  t.deepEqual([...na.subarray(0, 6)], [0x33, 0x33, 0, 0, 0, 1], 'to all nodes');
  t.is(srcMac(nas[0]!), formatMac(a.mac));
  t.is(na[14 + 40], 136, 'a neighbour advertisement');
  t.is(na[14 + 40 + 4]! & 0x20, 0x20, 'override');
  t.deepEqual([...na.subarray(14 + 40 + 8, 14 + 40 + 24)], [...a.ip6], 'for the bond\'s IPv6 address');
  t.deepEqual([...na.subarray(14 + 40 + 26, 14 + 40 + 32)], [...a.mac], 'at the bond\'s MAC');
});

test("active-backup resend_igmp=3: after a failover the host's groups are reported on the new active slave, IGMPv3 and MLDv2, 3 times 200 ms apart", (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100', 'resend_igmp=3', 'num_grat_arp=0'] });
  const { a } = w;
  a.groups = { v4: [parseIPv4('239.1.1.10')], v6: [parseIPv6('ff15::1234')] };
  a.addresses6 = [parseIPv6('fe80::1'), a.ip6];
  w.runUntil(1000);
  const before = { v4: a.core.counters.igmpReportsSent, v6: a.core.counters.mldReportsSent };
  w.unplug(0);
  const switchedAt = w.runUntilTrue(() => a.core.activeSlave === 'a1', 5000)!;
  w.run(2000);
  const igmp = a.sentBetween(switchedAt, w.now, 0x0800).filter((f) => f.l2[23] === 2);
  t.deepEqual(igmp.map((f) => [f.slot, f.at - switchedAt]), [[1, 0], [1, 200], [1, 400]]);
  const mld = a.sentBetween(switchedAt, w.now, 0x86dd).filter((f) => f.l2[62] === 143);
  t.deepEqual(mld.map((f) => [f.slot, f.at - switchedAt]), [[1, 0], [1, 200], [1, 400]]);
  t.is(formatIPv6(mld[0]!.l2.subarray(22, 38)), 'fe80::1', 'MLD from the link-local address');
  t.is(a.core.counters.igmpReportsSent - before.v4, 3);
  t.is(a.core.counters.mldReportsSent - before.v6, 3);
});

test('active-backup, miimon=100 downdelay=200: a carrier blip shorter than downdelay changes nothing', (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100', 'downdelay=200'] });
  const { a } = w;
  w.runUntil(1050);
  const changes = a.core.counters.activeChanges;
  const garps = a.core.counters.gratuitousArpsSent;
  w.unplug(0);
  w.runUntil(1150);
  t.is(a.core.slaveLinkState('a0'), LinkState.FAIL);
  w.plug(0);
  w.runUntil(2000);
  t.is(a.lastEvent('link', (f) => f.slave === 'a0' && f.change === 'up-again'), 1200);
  t.is(a.core.activeSlave, 'a0');
  t.is(a.core.counters.activeChanges, changes, 'no failover and back');
  t.is(a.core.counters.gratuitousArpsSent, garps);
  t.is(a.core.statusView().slaves[0]!.linkFailures, 0);
});

test('active-backup: frames arriving on the backup slave are dropped and counted, those on the active one delivered', (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100'] });
  w.runUntil(500);
  t.is(w.a.core.activeSlave, 'a0');
  const frame = w.b.udpTo(w.a, 7);
  const onBackup = w.a.arrive(1, frame);
  t.is(onBackup.packetType, PACKET_HOST);
  t.is(onBackup.verdict, RX_DROP);
  t.is(w.a.core.counters.rxDroppedInactive, 1);
  t.is(w.a.arrive(0, frame).verdict, RX_DELIVER);
  t.is(w.a.core.counters.rxDroppedInactive, 1);

  // The rule follows the active slave.
  w.unplug(0);
  w.runUntilTrue(() => w.a.core.activeSlave === 'a1', 1000);
  t.is(w.a.arrive(1, frame).verdict, RX_DELIVER);
  t.is(w.a.arrive(0, frame).verdict, RX_DROP);
  t.is(w.a.core.counters.rxDroppedInactive, 2);
});

function primaryWire(reselect: string): BondWire {
  return new BondWire({ options: (side) => ['mode=active-backup', 'miimon=100', 'updelay=200', `primary=${side}0`, `primary_reselect=${reselect}`] });
}

test('active-backup, primary and primary_reselect=always: the primary takes over again when replugged, after updelay', (t) => {
  const w = primaryWire('always');
  const { a } = w;
  w.runUntil(1000);
  t.is(a.core.activeSlave, 'a0');
  w.unplug(0);
  t.is(
    w.runUntilTrue(() => a.core.activeSlave === 'a1', 2000),
    1100,
  );
  w.runUntil(2000);
  w.plug(0);
  const backAt = w.runUntilTrue(() => a.core.activeSlave === 'a0', 5000);
  const seenAt = a.lastEvent('link', (f) => f.slave === 'a0' && f.change === 'coming-up');
  t.log(`replugged at 2000 ms, carrier seen at ${String(seenAt)} ms, primary active again at ${String(backAt)} ms`);
  t.is(seenAt, 2100);
  t.is(backAt, seenAt! + 200);
  t.deepEqual(a.transmit(a.udpTo(w.b, 1)), [0]);
});

test('active-backup, primary and primary_reselect=failure: the replugged primary waits until the active slave fails', (t) => {
  const w = primaryWire('failure');
  const { a } = w;
  w.runUntil(1000);
  w.unplug(0);
  w.runUntil(2000);
  t.is(a.core.activeSlave, 'a1');
  w.plug(0);
  w.runUntil(5000);
  t.is(a.core.slaveLinkState('a0'), LinkState.UP);
  t.is(a.core.activeSlave, 'a1');
  t.deepEqual(a.transmit(a.udpTo(w.b, 1)), [1]);
  w.unplug(1);
  t.is(
    w.runUntilTrue(() => a.core.activeSlave === 'a0', 6000),
    5100,
  );
});

// bond_change_active_slave: a slave still in BACK (updelay running) that is made active is
// made UP at once ("making interface the new active one N ms earlier"), so traffic resumes on
// the failover instead of waiting for the rest of updelay with no slave at all.
test('active-backup, updelay=500: when the active slave fails while the other is coming back, the other is made UP and carries traffic at once', (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100', 'updelay=500'] });
  const { a } = w;
  w.runUntil(1000);
  t.is(a.core.activeSlave, 'a0');
  w.unplug(1);
  w.runUntil(2000);
  t.is(a.core.slaveLinkState('a1'), LinkState.DOWN);
  w.plug(1);
  w.runUntil(2150);
  t.is(a.core.slaveLinkState('a1'), LinkState.BACK);
  w.unplug(0);
  w.runUntil(2200);
  t.is(a.core.slaveLinkState('a0'), LinkState.DOWN);
  t.is(a.core.activeSlave, 'a1');
  t.is(a.core.slaveLinkState('a1'), LinkState.UP, 'the new active slave is UP, not left in BACK until 2600 ms');
  t.deepEqual(a.transmit(a.udpTo(w.b, 1)), [1], 'transmit uses it at once');
});

// bond_miimon_inspect: with no active slave in active-backup, updelay is ignored.
test('active-backup, updelay=500: with every slave down, the first one back is UP and active on the tick that sees its carrier', (t) => {
  const w = new BondWire({ options: () => ['mode=active-backup', 'miimon=100', 'updelay=500'] });
  const { a } = w;
  w.runUntil(1000);
  w.unplug(0);
  w.unplug(1);
  w.runUntil(2000);
  t.is(a.core.activeSlave, undefined);
  t.deepEqual(a.transmit(a.udpTo(w.b, 1)), []);
  w.plug(1);
  w.runUntil(2100);
  t.is(a.core.activeSlave, 'a1');
  t.is(a.core.slaveLinkState('a1'), LinkState.UP);
  t.deepEqual(a.transmit(a.udpTo(w.b, 2)), [1]);
});

// ---------------------------------------------------------------------------------------------
// balance-xor, broadcast

test('balance-xor layer3+4: 200 UDP flows spread 30–70% over both slaves, each flow always on one slave', (t) => {
  const w = new BondWire({ options: () => ['mode=balance-xor', 'xmit_hash_policy=layer3+4'] });
  w.runUntil(200);
  const ports = range(20000, 200);
  const first = sendFlows(w.a, w.b, ports);
  const onSlot0 = ports.filter((p) => first.get(p)![0] === 0).length;
  t.log(`slot 0: ${onSlot0} flows, slot 1: ${200 - onSlot0}`);
  t.true(onSlot0 >= 60 && onSlot0 <= 140, `${onSlot0} of 200 flows on slot 0`);
  for (let round = 0; round < 3; round++) {
    w.run(100);
    t.deepEqual(sendFlows(w.a, w.b, ports), first, `round ${round}: every flow on the slave it had`);
  }
  for (const slots of first.values()) t.is(slots.length, 1);
});

test('broadcast: each host frame goes out on every usable slave', (t) => {
  const w = new BondWire({ options: () => ['mode=broadcast', 'miimon=100'] });
  w.runUntil(200);
  t.deepEqual(w.a.transmit(w.a.udpTo(w.b, 1)), [0, 1]);
  t.deepEqual(
    w.b.arrivals.filter((x) => x.at === 200).map((x) => [x.slot, x.verdict]),
    [
      [0, RX_DELIVER],
      [1, RX_DELIVER],
    ],
  );
  w.unplug(1);
  w.runUntil(300);
  t.is(w.a.core.slaveLinkState('a1'), LinkState.DOWN);
  t.deepEqual(w.a.transmit(w.a.udpTo(w.b, 2)), [0]);
  w.plug(1);
  w.runUntil(400);
  t.deepEqual(w.a.transmit(w.a.udpTo(w.b, 3)), [0, 1]);
});

// ---------------------------------------------------------------------------------------------
// 802.3ad

const CD = LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING;

function distributing(side: WireSide, slot: number): boolean {
  return ((side.core.portStates(side.slaveName(slot))?.actorState ?? 0) & CD) === CD;
}

/** Both bonds in 802.3ad with fast LACP, run until all four ports distribute; the time that took. */
function lacpInSync(): { w: BondWire; syncAt: number | undefined } {
  const w = new BondWire({ options: () => ['mode=802.3ad', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4'] });
  const all = (): boolean => [0, 1].every((slot) => distributing(w.a, slot) && distributing(w.b, slot));
  return { w, syncAt: w.runUntilTrue(all, 10_000) };
}

test('802.3ad lacp_rate=fast: both bonds reach collecting+distributing on both ports through the wire within 5 s, and hash traffic over both', (t) => {
  const { w, syncAt } = lacpInSync();
  t.log(`all four ports collecting+distributing at ${String(syncAt)} ms`);
  t.not(syncAt, undefined);
  t.true(syncAt! <= 5000);
  // The LACPDUs really crossed the wire, encoded and decoded.
  t.true(w.a.core.counters.lacpdusReceived > 0 && w.b.core.counters.lacpdusReceived > 0);
  t.is(w.a.core.counters.lacpdusBad + w.b.core.counters.lacpdusBad, 0);
  t.true(w.a.sent.some((f) => f.slot === 1 && etherType(f) === ETH_P_SLOW));

  const flows = sendFlows(w.a, w.b, range(30000, 200));
  const [n0, n1] = perSlot(w.a.sentBetween(w.now, w.now + 1, ETH_P_IP));
  t.log(`200 flows: ${n0} on port 1, ${n1} on port 2`);
  t.true(n0 >= 60 && n1 >= 60, `${n0} / ${n1}`);
  t.deepEqual(sendFlows(w.a, w.b, range(30000, 200)), flows);
  const delivered = w.b.arrivals.filter((x) => x.at === w.now && etherType(x) === ETH_P_IP);
  t.is(delivered.length, 400);
  t.true(delivered.every((x) => x.verdict === RX_DELIVER), 'b collects on both ports');
});

test('802.3ad lacp_rate=fast: a partner silent on port 2 stops it distributing 3 s after its last LACPDU; the status says why and transmit never picks it again', (t) => {
  const { w, syncAt } = lacpInSync();
  t.not(syncAt, undefined);
  const { a } = w;
  w.run(2000);
  w.cut(1, 'b');
  const lastPdu = a.arrivals.filter((x) => x.slot === 1 && etherType(x) === ETH_P_SLOW).at(-1)!.at;
  const stoppedAt = w.runUntilTrue(() => !distributing(a, 1), w.now + 10_000);
  t.log(`last LACPDU from b on port 2 received at ${lastPdu} ms; a's port 2 stopped distributing at ${String(stoppedAt)} ms (+${String(stoppedAt! - lastPdu)} ms)`);
  t.not(stoppedAt, undefined);
  t.true(stoppedAt! - lastPdu >= 3000 && stoppedAt! - lastPdu <= 3100, `${stoppedAt! - lastPdu} ms after the last LACPDU`);
  t.true(distributing(a, 0), 'port 1 goes on');
  t.false(a.core.carriesTraffic('a1'));

  const view = a.core.statusView();
  t.is(view.slaves[0]!.notDistributingBecause, undefined);
  t.regex(view.slaves[1]!.notDistributingBecause ?? '', /expired/);
  t.regex(formatBondStatus(view), /\nNot distributing: .*expired/);

  const from = w.now;
  for (let i = 0; i < 20; i++) {
    sendFlows(a, w.b, range(30000, 200));
    w.run(500);
  }
  const host = a.sentBetween(from, w.now, ETH_P_IP);
  t.is(host.length, 20 * 200);
  t.deepEqual(perSlot(host), [4000, 0]);
  t.regex(a.core.statusView().slaves[1]!.notDistributingBecause ?? '', /defaulted/, 'later: defaulted');
});

/** A Marker PDU (802.1AX 6.5) from the partner's port 2, system 02:00:00:00:00:bb, transaction 0x01020304. */
function markerPdu(tlv: number, vnetHdrLen: number): Uint8Array {
  const frame = new Uint8Array(vnetHdrLen + 14 + 110);
  const l2 = vnetHdrLen;
  frame.set([0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, 0x02, 0, 0, 0, 0, 0xbb, 0x88, 0x09], l2);
  frame.set([2, 1, tlv, 16, 0, 2, 0x02, 0, 0, 0, 0, 0xbb, 1, 2, 3, 4, 0, 0], l2 + 14);
  return frame;
}

test('802.3ad Marker: an Information PDU is answered on its port with the same PDU as a Response, from the port\'s MAC; a Response received is counted; neither counts as a bad LACPDU', (t) => {
  const { w } = lacpInSync();
  const hdr = w.vnetHdrLen;
  const before = w.a.sent.length;
  w.deliver(w.a, 1, markerPdu(1, hdr));
  const replies = w.a.sent.slice(before).filter((f) => etherType(f) === ETH_P_SLOW && f.l2[14] === 2);
  t.is(replies.length, 1);
  const reply = replies[0]!;
  t.is(reply.slot, 1, 'on the port the Marker came in on');
  t.deepEqual([...reply.l2.subarray(0, 6)], [0x01, 0x80, 0xc2, 0x00, 0x00, 0x02]);
  const lacpdu = w.a.sent.find((f) => f.slot === 1 && etherType(f) === ETH_P_SLOW && f.l2[14] === 1)!;
  t.deepEqual([...reply.l2.subarray(6, 12)], [...lacpdu.l2.subarray(6, 12)], "from the port's own (permanent) MAC, as its LACPDUs");
  t.deepEqual([...reply.l2.subarray(14, 32)], [2, 1, 2, 16, 0, 2, 0x02, 0, 0, 0, 0, 0xbb, 1, 2, 3, 4, 0, 0], 'the same PDU, TLV 2 (response)');
  t.is(reply.l2.length, 124);
  t.is(w.a.core.counters.markersAnswered, 1);
  w.deliver(w.a, 0, markerPdu(2, hdr));
  t.is(w.a.core.counters.markerResponsesReceived, 1);
  t.is(w.a.core.counters.lacpdusBad, 0);
  const bad = markerPdu(7, hdr);
  w.deliver(w.a, 0, bad);
  t.is(w.a.core.counters.lacpdusBad, 1, 'an unknown Marker TLV is a bad slow-protocols frame');
});

test('802.3ad in sync: the status file shows 2 ports in the active aggregator, partner b, and no "Not distributing" line', (t) => {
  const { w, syncAt } = lacpInSync();
  t.not(syncAt, undefined);
  const text = formatBondStatus(w.a.core.statusView());
  t.regex(text, /\n\tNumber of ports: 2\n/);
  t.regex(text, new RegExp(`\\n\\tPartner Mac Address: ${formatMac(w.b.mac)}\\n`));
  t.regex(text, /\nMII Status: up\n/);
  t.notRegex(text, /Not distributing/);
});

// ---------------------------------------------------------------------------------------------
// Receive filter

test('rx filter: frames for another MAC only when promiscuous; our own frames coming back; LACPDUs outside 802.3ad', (t) => {
  const w = new BondWire({ options: () => ['mode=balance-rr'] });
  const { a, b } = w;
  w.runUntil(200);
  const hdr = w.vnetHdrLen;

  const stranger = b.udpTo({ mac: parseMac('02:77:00:00:00:77'), ip: parseIPv4('10.0.0.77') }, 1, 2);
  const other = a.arrive(0, stranger);
  t.is(other.packetType, PACKET_OTHERHOST);
  t.is(other.verdict, RX_DROP);
  t.is(a.core.counters.rxDroppedNotForUs, 1);
  a.core.promiscuous = true;
  t.is(a.arrive(0, stranger).verdict, RX_DELIVER);
  a.core.promiscuous = false;
  t.is(a.arrive(1, stranger).verdict, RX_DROP);
  t.is(a.core.counters.rxDroppedNotForUs, 2);
  t.is(a.arrive(1, b.udpTo(a, 3)).verdict, RX_DELIVER);

  const looped = a.udpTo({ mac: BROADCAST_MAC, ip: parseIPv4('10.0.0.255') }, 1, 2);
  t.is(a.arrive(1, looped).verdict, RX_DROP);
  t.is(a.core.counters.rxDroppedLooped, 1);

  const pdu = createDecodedLacpdu();
  pdu.actor.system = 0x020200000000;
  pdu.actor.key = 9;
  pdu.actor.port = 1;
  pdu.actor.state = 0x3d;
  const lacpdu = new Uint8Array(hdr + LACPDU_FRAME_LENGTH);
  encodeLacpdu(lacpdu, hdr, pdu, b.permanentMacs[0]!);
  t.is(a.arrive(0, lacpdu).verdict, RX_DROP);
  t.is(a.core.counters.slowProtocolsDropped, 1);
  t.is(a.core.counters.lacpdusReceived, 0);
  t.is(a.core.counters.rxDelivered, 2);
});

// ---------------------------------------------------------------------------------------------
// balance-alb

test('balance-alb: the host\'s ARP replies to 4 clients leave with at least 2 different slave MACs, each on the slave whose MAC it carries', (t) => {
  const w = new BondWire({ options: () => ['mode=balance-alb'] });
  const { a } = w;
  w.runUntil(500);
  const hdr = w.vnetHdrLen;
  const macs = new Set<string>();
  for (let i = 1; i <= 4; i++) {
    const client = parseMac(`02:cc:00:00:00:0${i}`);
    const reply = new Uint8Array(hdr + 60);
    buildArpReply(reply, hdr, { ethSrc: a.mac, ethDst: client, senderMac: a.mac, senderIp: a.ip, targetMac: client, targetIp: parseIPv4(`10.0.0.${20 + i}`) });
    const slots = a.transmit(reply);
    t.is(slots.length, 1);
    const sent = a.sent.at(-1)!;
    const arp = createArpResult();
    t.is(parseArp(sent.l2, 0, sent.l2.length, arp), ArpParse.OK);
    t.is(srcMac(sent), formatMac(a.slaveMacs[sent.slot]!), `client ${i}: Ethernet source is its slave's MAC`);
    t.is(formatMac(arp.senderMac), srcMac(sent), `client ${i}: the ARP tells the client that MAC`);
    macs.add(srcMac(sent));
  }
  t.log(`source MACs: ${[...macs].join(', ')}`);
  t.true(macs.size >= 2);
  t.notDeepEqual(a.slaveMacs[0], a.slaveMacs[1]);
});

test('balance-alb: a unicast frame received on the second slave for that slave\'s own MAC is delivered to the bond\'s MAC', (t) => {
  const w = new BondWire({ options: () => ['mode=balance-alb'] });
  const { a, b } = w;
  w.runUntil(500);
  const slaveMac = a.slaveMacs[1]!;
  t.false(macEquals(slaveMac, 0, a.mac, 0), 'the second slave keeps a MAC of its own');
  const frame = b.udpTo({ mac: slaveMac, ip: a.ip }, 9, 9);
  const got = a.arrive(1, frame);
  t.is(got.packetType, PACKET_HOST);
  t.is(got.verdict, RX_DELIVER);
  t.is(formatMac(got.l2, 0), formatMac(a.mac));
  t.deepEqual([...got.l2.subarray(6)], [...frame.subarray(w.vnetHdrLen + 6)], 'nothing else changed');
});

// ---------------------------------------------------------------------------------------------
// ARP monitor

test('ARP monitor in balance-xor: probes on both slaves every interval; a slave whose replies stop goes down after arp_missed_max intervals and carries nothing', (t) => {
  const target = '10.0.0.9';
  const w = new BondWire({
    options: () => ['mode=balance-xor', 'xmit_hash_policy=layer3+4', 'arp_interval=100', `arp_ip_target=${target}`],
    arpTarget: { ip: target, mac: '02:99:00:00:00:09' },
  });
  const { a } = w;
  w.runUntil(2000);
  const arp = createArpResult();
  const probes = a.sentBetween(1000, 2000, ETH_P_ARP).filter((f) => {
    t.is(parseArp(f.l2, 0, f.l2.length, arp), ArpParse.OK);
    return arp.fields[ARPR_OP] === ARP_OP_REQUEST && arp.fields[ARPR_TARGET_IP] === parseIPv4(target) && arp.fields[ARPR_SENDER_IP] === a.ip;
  });
  t.deepEqual(perSlot(probes), [10, 10], 'one probe per slave per 100 ms');
  t.is(a.core.slaveLinkState('a0'), LinkState.UP);
  t.is(a.core.slaveLinkState('a1'), LinkState.UP);
  const flows = range(40000, 200);
  sendFlows(a, w.b, flows);
  const [u0, u1] = perSlot(a.sentBetween(w.now, w.now + 1, ETH_P_IP));
  t.true(u0 > 0 && u1 > 0, `both slaves carry flows (${u0} / ${u1})`);

  w.cut(1, 'b');
  const lastRx = a.arrivals.filter((x) => x.slot === 1).at(-1)!.at;
  const downAt = w.runUntilTrue(() => a.core.slaveLinkState('a1') === LinkState.DOWN, w.now + 5000);
  t.log(`last frame received on a1 at ${lastRx} ms, a1 down at ${String(downAt)} ms`);
  // Down on the first interval tick past the last receive + arp_missed_max intervals + half an interval.
  t.true(downAt! > lastRx + 2 * 100 + 50 && downAt! <= lastRx + 3 * 100, `down ${downAt! - lastRx} ms after the last reply`);
  t.is(a.core.slaveLinkState('a0'), LinkState.UP);
  w.run(100);
  t.true(a.sentBetween(w.now - 100, w.now, ETH_P_ARP).some((f) => f.slot === 1), 'a slave with carrier is still probed');

  const from = w.now;
  sendFlows(a, w.b, flows);
  t.deepEqual(perSlot(a.sentBetween(from, w.now + 1, ETH_P_IP)), [200, 0]);
  const view = a.core.statusView();
  t.is(view.slaves[1]!.linkFailures, 1);
  t.is(view.slaves[1]!.miiStatus, 'down');
  t.is(view.slaves[0]!.linkFailures, 0);
});
