import test from 'ava';
import {
  ETH_P_LOOPBACK,
  RLB_UPDATE_DELAY_MS,
  RLB_UPDATE_RETRY,
  RlbTable,
  TLB_UNBALANCED,
  TlbBalancer,
  buildLearningPacket,
} from '../../../src/bond/alb.js';
import {
  ARPR_OP,
  ARPR_SENDER_IP,
  ARPR_TARGET_IP,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  ArpParse,
  buildArpReply,
  buildArpRequest,
  buildGratuitousArp,
  createArpResult,
  parseArp,
} from '../../../src/net/arp.js';
import { BROADCAST_MAC, formatMac, parseMac, writeEthernetHeader } from '../../../src/net/ethernet.js';
import { IPPROTO_UDP, formatIPv4, parseIPv4 } from '../../../src/net/ipv4.js';
import { ipv4Frame, type FrameSpec } from '../../fixtures/frames.js';

// ---------------------------------------------------------------------------------------------
// Frame builders

const HOST_MAC = parseMac('02:b0:00:00:00:01');
const PEER_MAC = parseMac('02:c0:00:00:00:01');

/** A UDP frame from the host to `dst` through the peer's MAC (the hash reads the destination address). */
function frameTo(dst: number, spec: FrameSpec = {}): Uint8Array {
  return ipv4Frame({ dst: PEER_MAC, src: HOST_MAC, ipSrc: parseIPv4('10.0.0.1'), ipDst: dst, protocol: IPPROTO_UDP, l4Length: 26, ...spec });
}

function ipv6Frame(src: number[], dst: number[]): Uint8Array {
  const frame = new Uint8Array(14 + 40 + 8);
  writeEthernetHeader(frame, 0, PEER_MAC, HOST_MAC, 0x86dd);
  frame.set([0x60, 0, 0, 0, 0, 8, 17, 64], 14);
  frame.set(src, 22);
  frame.set(dst, 38);
  return frame;
}

/** A deterministic generator, so the spread tests always see the same addresses. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x;
  };
}

// ---------------------------------------------------------------------------------------------
// tlb: the bucket of a frame

test('hashIndex: IPv4 is the XOR of the destination address bytes; a VLAN tag changes nothing', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  for (const ip of ['10.1.2.3', '192.168.7.200', '172.16.0.1', '8.8.8.8']) {
    const n = parseIPv4(ip);
    const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
    t.is(tlb.hashIndex(frameTo(n), 0, 60), a ^ b ^ c ^ d, ip);
    t.is(tlb.hashIndex(frameTo(n, { vlan: 42 }), 0, 64), a ^ b ^ c ^ d, `${ip} tagged`);
  }
  const atOffset = new Uint8Array(100);
  atOffset.set(frameTo(parseIPv4('10.1.2.3')), 20);
  t.is(tlb.hashIndex(atOffset, 20, 60), 10 ^ 1 ^ 2 ^ 3, 'at an offset');
});

test('hashIndex: IPv6 is the XOR of the 16 destination bytes, except from :: (DAD)', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  const src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
  t.is(tlb.hashIndex(ipv6Frame(src, dst), 0, 62), dst.reduce((h, b) => h ^ b, 0));
  t.is(tlb.hashIndex(ipv6Frame(new Array<number>(16).fill(0), dst), 0, 62), TLB_UNBALANCED);
});

test('hashIndex: broadcast and multicast MACs, the limited broadcast, IGMP, ARP, other types and cut frames are not balanced', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  const unicastIp = parseIPv4('10.0.0.9');
  t.is(tlb.hashIndex(frameTo(unicastIp, { dst: BROADCAST_MAC }), 0, 60), TLB_UNBALANCED, 'broadcast MAC');
  t.is(tlb.hashIndex(frameTo(parseIPv4('239.1.1.1'), { dst: parseMac('01:00:5e:01:01:01') }), 0, 60), TLB_UNBALANCED, 'multicast MAC');
  t.is(tlb.hashIndex(frameTo(0xffffffff), 0, 60), TLB_UNBALANCED, '255.255.255.255 to a unicast MAC');
  t.is(tlb.hashIndex(frameTo(unicastIp, { protocol: 2 }), 0, 60), TLB_UNBALANCED, 'IGMP');
  const arp = new Uint8Array(60);
  buildArpReply(arp, 0, { ethSrc: HOST_MAC, ethDst: PEER_MAC, senderMac: HOST_MAC, senderIp: 1, targetMac: PEER_MAC, targetIp: 2 });
  t.is(tlb.hashIndex(arp, 0, 60), TLB_UNBALANCED, 'ARP');
  const other = new Uint8Array(60);
  writeEthernetHeader(other, 0, PEER_MAC, HOST_MAC, 0x88b5);
  t.is(tlb.hashIndex(other, 0, 60), TLB_UNBALANCED, 'another EtherType');
  t.is(tlb.hashIndex(frameTo(unicastIp), 0, 33), TLB_UNBALANCED, 'IPv4 header cut short');
  t.is(tlb.hashIndex(frameTo(unicastIp), 0, 10), TLB_UNBALANCED, 'shorter than an Ethernet header');
  t.is(tlb.hashIndex(frameTo(unicastIp), -1, 60), TLB_UNBALANCED, 'bad offset');
});

// ---------------------------------------------------------------------------------------------
// tlb: placing buckets

function spread(slaveCount: number, seed: number): { frames: number[]; buckets: number[] } {
  const tlb = new TlbBalancer({ dynamic: true });
  for (let s = 0; s < slaveCount; s++) tlb.addSlave(s, 1000);
  const next = lcg(seed);
  const frames = new Array<number>(slaveCount).fill(0);
  const firstSlave = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const bucket = tlb.hashIndex(frameTo(next()), 0, 60);
    const slave = tlb.select(bucket, 60, i);
    frames[slave] = frames[slave]! + 1;
    const seen = firstSlave.get(bucket);
    if (seen === undefined) firstSlave.set(bucket, slave);
    else if (seen !== slave) throw new Error(`bucket ${bucket} moved from ${seen} to ${slave} without a rebalance`);
  }
  const buckets = new Array<number>(slaveCount).fill(0);
  for (let s = 0; s < slaveCount; s++) buckets[s] = tlb.bucketCount(s);
  return { frames, buckets };
}

test('dynamic tlb spreads 1000 random destinations over 2 equal slaves (40-60% each), a bucket keeping its slave', (t) => {
  for (const seed of [1, 2, 3]) {
    const { frames, buckets } = spread(2, seed);
    for (const n of frames) t.true(n >= 400 && n <= 600, `seed ${seed}: ${frames.join('/')} frames`);
    t.true(Math.abs(buckets[0]! - buckets[1]!) <= 1, `seed ${seed}: new buckets alternate (${buckets.join('/')})`);
  }
});

test('dynamic tlb spreads 1000 random destinations over 3 equal slaves (23-43% each)', (t) => {
  for (const seed of [1, 2, 3]) {
    const { frames } = spread(3, seed);
    t.is(frames.reduce((a, b) => a + b, 0), 1000);
    for (const n of frames) t.true(n >= 230 && n <= 430, `seed ${seed}: ${frames.join('/')} frames`);
  }
});

test('a slave made unusable loses all its buckets at once and is not chosen until it is back', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  tlb.addSlave(0, 1000);
  tlb.addSlave(1, 1000);
  tlb.addSlave(2, 1000);
  for (let b = 0; b < 256; b++) tlb.select(b, 100, 0);
  const onZero = [...Array(256).keys()].filter((b) => tlb.assignedSlave(b) === 0);
  t.true(tlb.bucketCount(1) > 80);
  tlb.setUsable(1, false);
  t.is(tlb.bucketCount(1), 0);
  t.deepEqual(
    [...Array(256).keys()].filter((b) => tlb.assignedSlave(b) === 0),
    onZero,
    'the other slaves keep theirs',
  );
  for (let b = 0; b < 256; b++) t.not(tlb.select(b, 100, 1), 1);
  t.is(tlb.bucketCount(1), 0);
  t.is(tlb.bucketCount(0) + tlb.bucketCount(2), 256);

  tlb.setUsable(1, true);
  tlb.tick(2); // a slave that came up orders a rebalance on the next tick
  t.is(tlb.bucketCount(0) + tlb.bucketCount(1) + tlb.bucketCount(2), 0, 'the rebalance unassigned every bucket');
  for (let b = 0; b < 256; b++) tlb.select(b, 100, 4);
  t.true(tlb.bucketCount(1) > 80, 'and slave 1 takes its share again');

  tlb.removeSlave(2);
  t.is(tlb.bucketCount(2), 0);
  for (let b = 0; b < 256; b++) t.not(tlb.select(b, 100, 5), 2);
});

test('no usable slave: select returns -1', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  t.is(tlb.select(7, 60, 0), -1);
  tlb.addSlave(4, 1000);
  tlb.setUsable(4, false);
  t.is(tlb.select(7, 60, 0), -1);
  t.is(tlb.select(TLB_UNBALANCED, 60, 0), -1);
  t.is(tlb.assignedSlave(7), -1);
});

test('tick: the rebalance moves load off an overloaded slave, heaviest buckets placed first', (t) => {
  const tlb = new TlbBalancer({ dynamic: true, rebalanceMs: 10_000 });
  tlb.addSlave(0, 1000);
  tlb.addSlave(1, 1000);
  tlb.tick(0);
  tlb.tick(100); // the rebalance ordered by adding the slaves: nothing to move yet
  const HEAVY_A = 11;
  const LIGHT_B = 22;
  const HEAVY_C = 33;
  const LIGHT_D = 44;
  // New buckets alternate, so both heavy ones land on slave 0.
  const first = [HEAVY_A, LIGHT_B, HEAVY_C, LIGHT_D].map((b) => tlb.select(b, 100, 200));
  t.deepEqual(first, [0, 1, 0, 1]);
  for (let i = 0; i < 1000; i++) {
    tlb.select(HEAVY_A, 1500, 200);
    tlb.select(HEAVY_C, 1500, 200);
    tlb.select(LIGHT_B, 60, 200);
    tlb.select(LIGHT_D, 60, 200);
  }
  tlb.tick(5000);
  t.is(tlb.assignedSlave(HEAVY_A), 0, 'nothing moves before the interval is over');
  tlb.tick(10_100);
  const load0 = tlb.load(0);
  const load1 = tlb.load(1);
  t.true(load0 > 10 * load1, `slave 0 carried ${load0} B/s, slave 1 ${load1} B/s`);
  t.is(tlb.assignedSlave(HEAVY_A), -1, 'every bucket is unassigned');

  // Same arrival order: A takes slave 0, B the empty slave 1, C the lighter slave 1.
  const second = [HEAVY_A, LIGHT_B, HEAVY_C, LIGHT_D].map((b) => tlb.select(b, 100, 10_200));
  t.not(second[0], second[2], 'the heavy buckets are apart');
  for (let i = 0; i < 1000; i++) {
    tlb.select(HEAVY_A, 1500, 10_200);
    tlb.select(HEAVY_C, 1500, 10_200);
    tlb.select(LIGHT_B, 60, 10_200);
    tlb.select(LIGHT_D, 60, 10_200);
  }
  tlb.tick(20_100);
  const ratio = tlb.load(0) / tlb.load(1);
  t.true(ratio > 0.8 && ratio < 1.25, `after the rebalance: ${tlb.load(0)} / ${tlb.load(1)} B/s`);
});

test('a faster slave takes new buckets while it has the larger gap', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  tlb.addSlave(0, 100);
  tlb.addSlave(1, 10_000);
  for (let b = 0; b < 50; b++) t.is(tlb.select(b, 60, 0), 1);
});

test('unbalanced frames leave by the active slave, or the first usable one', (t) => {
  const tlb = new TlbBalancer({ dynamic: true });
  tlb.addSlave(3, 1000);
  tlb.addSlave(1, 1000);
  t.is(tlb.select(TLB_UNBALANCED, 60, 0), 3, 'no active slave set: the first added');
  tlb.setActiveSlave(1);
  t.is(tlb.select(TLB_UNBALANCED, 60, 0), 1);
  t.is(tlb.activeSlave(), 1);
  tlb.setUsable(1, false);
  t.is(tlb.select(TLB_UNBALANCED, 60, 0), 3, 'the active slave is down: the first usable');
  t.throws(() => tlb.setActiveSlave(32), { instanceOf: RangeError });
  t.throws(() => tlb.addSlave(-1, 1000), { instanceOf: RangeError });
});

test('tlb_dynamic_lb=0: buckets are the xmit hash\'s job (select -1), unbalanced frames still go to the active slave', (t) => {
  const tlb = new TlbBalancer({ dynamic: false });
  tlb.addSlave(0, 1000);
  tlb.addSlave(1, 1000);
  tlb.setActiveSlave(1);
  t.is(tlb.select(tlb.hashIndex(frameTo(parseIPv4('10.0.0.2')), 0, 60), 60, 0), -1);
  t.is(tlb.select(TLB_UNBALANCED, 60, 0), 1);
  t.is(tlb.bucketCount(0) + tlb.bucketCount(1), 0);
});

// ---------------------------------------------------------------------------------------------
// rlb

const BOND_IP = parseIPv4('10.0.0.1');
const BOND_MAC = parseMac('02:b0:00:00:00:00');
const SLAVE_MACS = [parseMac('02:5a:00:00:00:00'), parseMac('02:5a:00:00:00:01'), parseMac('02:5a:00:00:00:02')] as const;
const clientIp = (i: number): number => parseIPv4(`10.0.0.${100 + i}`);
const clientMac = (i: number): Uint8Array => parseMac(`02:c1:00:00:00:${(i + 16).toString(16)}`);

/** The client's "who has the bond's IP" broadcast. */
function clientRequest(i: number): Uint8Array {
  const f = new Uint8Array(60);
  buildArpRequest(f, 0, { ethSrc: clientMac(i), senderIp: clientIp(i), targetIp: BOND_IP });
  return f;
}

/** The host's reply to client i, as the kernel sends it through the bond (the bond's MAC). */
function hostReply(i: number): Uint8Array {
  const f = new Uint8Array(60);
  buildArpReply(f, 0, { ethSrc: BOND_MAC, ethDst: clientMac(i), senderMac: BOND_MAC, senderIp: BOND_IP, targetMac: clientMac(i), targetIp: clientIp(i) });
  return f;
}

function table(slaves: number, capacity?: number): RlbTable {
  const rlb = new RlbTable(capacity === undefined ? {} : { capacity });
  for (let s = 0; s < slaves; s++) rlb.addSlave(s, SLAVE_MACS[s]!);
  rlb.setBondIp(BOND_IP);
  return rlb;
}

/** Clients 0..n-1 ask for the bond's IP and the host answers each; returns the slave per client. */
function converse(rlb: RlbTable, n: number, now = 0): number[] {
  const slaves: number[] = [];
  for (let i = 0; i < n; i++) {
    rlb.onWireArp(clientRequest(i), 0, 60, now);
    slaves.push(rlb.onHostArp(hostReply(i), 0, 60, now));
  }
  return slaves;
}

interface Update {
  slave: number;
  ethDst: string;
  ethSrc: string;
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

function drain(rlb: RlbTable, now: number, out = new Uint8Array(60 * 64)): Update[] {
  const updates: Update[] = [];
  const arp = createArpResult();
  const count = rlb.drainUpdates(now, out, (slave, offset, length) => {
    if (parseArp(out, offset, length, arp) !== ArpParse.OK) throw new Error('update is not an ARP');
    updates.push({
      slave,
      ethDst: formatMac(out, offset),
      ethSrc: formatMac(out, offset + 6),
      op: arp.fields[ARPR_OP]!,
      senderMac: formatMac(arp.senderMac),
      senderIp: formatIPv4(arp.fields[ARPR_SENDER_IP]!),
      targetMac: formatMac(arp.targetMac),
      targetIp: formatIPv4(arp.fields[ARPR_TARGET_IP]!),
    });
  });
  if (count !== updates.length) throw new Error(`drainUpdates said ${count}, emitted ${updates.length}`);
  return updates;
}

test('rlb: host replies to 8 clients go out rewritten to both slaves\' MACs, each client always on the same slave', (t) => {
  const rlb = table(2);
  const slaves = converse(rlb, 8);
  t.deepEqual([...new Set(slaves)].sort(), [0, 1]);
  t.is(slaves.filter((s) => s === 0).length, 4);
  const arp = createArpResult();
  for (let i = 0; i < 8; i++) {
    const original = hostReply(i);
    const frame = hostReply(i);
    const slave = rlb.onHostArp(frame, 0, 60, 10);
    t.is(slave, slaves[i]!, `client ${i} stays on its slave`);
    const mac = formatMac(SLAVE_MACS[slave]!);
    t.is(formatMac(frame, 6), mac, 'Ethernet source');
    t.is(parseArp(frame, 0, 60, arp), ArpParse.OK);
    t.is(arp.fields[ARPR_OP], ARP_OP_REPLY);
    t.is(formatMac(arp.senderMac), mac, 'ARP sender hardware address');
    t.is(arp.fields[ARPR_SENDER_IP], BOND_IP);
    t.is(formatMac(arp.targetMac), formatMac(clientMac(i)));
    t.is(arp.fields[ARPR_TARGET_IP], clientIp(i));
    // Only those 12 bytes changed.
    original.set(SLAVE_MACS[slave]!, 6);
    original.set(SLAVE_MACS[slave]!, 22);
    t.deepEqual(frame, original);
  }
  t.is(rlb.size, 8);
  t.deepEqual(
    rlb.clients().map((c) => c.ip),
    [...Array(8).keys()].map((i) => formatIPv4(clientIp(i))),
  );
  t.is(drain(rlb, 100).length, 0, 'the replies told the clients: no updates due');
});

test('rlb: removing a slave moves its clients and drainUpdates tells exactly them, 3 times over 3 calls, then nothing', (t) => {
  const rlb = table(2);
  const before = converse(rlb, 8);
  const moved = [...Array(8).keys()].filter((i) => before[i] === 1);
  t.is(moved.length, 4);
  rlb.removeSlave(1);
  for (const c of rlb.clients()) t.is(c.slave, 0);
  t.is(rlb.pendingUpdates(), 4);
  for (let round = 1; round <= RLB_UPDATE_RETRY; round++) {
    const updates = drain(rlb, 100 * round);
    t.deepEqual(
      updates.map((u) => u.targetIp).sort(),
      moved.map((i) => formatIPv4(clientIp(i))).sort(),
      `round ${round}: the moved clients`,
    );
    for (const u of updates) {
      const i = moved.find((c) => formatIPv4(clientIp(c)) === u.targetIp)!;
      t.like(u, {
        slave: 0,
        ethDst: formatMac(clientMac(i)),
        ethSrc: formatMac(SLAVE_MACS[0]),
        op: ARP_OP_REPLY,
        senderMac: formatMac(SLAVE_MACS[0]),
        senderIp: formatIPv4(BOND_IP),
        targetMac: formatMac(clientMac(i)),
      });
    }
  }
  t.is(drain(rlb, 400).length, 0);
  t.is(rlb.pendingUpdates(), 0);
});

test('rlb: a slave going down and up moves clients away and back, telling each moved client', (t) => {
  const rlb = table(3);
  const before = converse(rlb, 9);
  t.deepEqual([0, 1, 2].map((s) => before.filter((x) => x === s).length), [3, 3, 3]);
  rlb.setUsable(2, false);
  const down = rlb.clients();
  t.false(down.some((c) => c.slave === 2));
  t.deepEqual([0, 1].map((s) => down.filter((c) => c.slave === s).length).sort(), [4, 5]);
  const toldDown = drain(rlb, 100);
  t.is(toldDown.length, 3, 'the three clients of slave 2');
  drain(rlb, 200);
  drain(rlb, 300);

  rlb.setUsable(2, true);
  const up = rlb.clients();
  t.deepEqual([0, 1, 2].map((s) => up.filter((c) => c.slave === s).length), [3, 3, 3], 'evened out again');
  const moved = up.filter((c, i) => c.slave !== down[i]!.slave).map((c) => c.ip);
  t.is(moved.length, 3, 'only as many clients as needed move');
  const told = drain(rlb, 400);
  t.deepEqual(told.map((u) => u.targetIp).sort(), moved.sort());
  for (const u of told) t.is(u.senderMac, formatMac(SLAVE_MACS[2]));
});

test('rlb: a new slave takes half of the clients of the only one', (t) => {
  const rlb = table(1);
  t.deepEqual(converse(rlb, 8), new Array<number>(8).fill(0));
  rlb.addSlave(1, SLAVE_MACS[1]);
  const clients = rlb.clients();
  t.is(clients.filter((c) => c.slave === 1).length, 4);
  const told = drain(rlb, 0);
  t.deepEqual(told.map((u) => u.targetIp).sort(), clients.filter((c) => c.slave === 1).map((c) => c.ip).sort());
  for (const u of told) t.like(u, { slave: 1, ethSrc: formatMac(SLAVE_MACS[1]), senderMac: formatMac(SLAVE_MACS[1]) });
});

test('rlb: frames that are not the bond\'s own ARPs return -1 and are left untouched', (t) => {
  const rlb = table(2);
  converse(rlb, 2);
  const frames: Array<[string, Uint8Array]> = [];
  const other = new Uint8Array(60);
  buildArpReply(other, 0, { ethSrc: BOND_MAC, ethDst: clientMac(0), senderMac: BOND_MAC, senderIp: parseIPv4('10.0.0.2'), targetMac: clientMac(0), targetIp: clientIp(0) });
  frames.push(['a reply from another address', other]);
  const request = new Uint8Array(60);
  buildArpRequest(request, 0, { ethSrc: BOND_MAC, senderIp: parseIPv4('10.0.0.3'), targetIp: clientIp(1) });
  frames.push(['a request from another address', request]);
  frames.push(['an IPv4 frame', frameTo(clientIp(0))]);
  const tagged = new Uint8Array(64);
  writeEthernetHeader(tagged, 0, clientMac(0), BOND_MAC, 0x8100);
  tagged.set([0, 5, 0x08, 0x06], 14);
  tagged.set(hostReply(0).subarray(14, 56), 18);
  frames.push(['a VLAN-tagged ARP', tagged]);
  frames.push(['a cut reply', hostReply(0).subarray(0, 40)]);
  for (const [what, frame] of frames) {
    const copy = frame.slice();
    t.is(rlb.onHostArp(frame, 0, frame.length, 0), -1, what);
    t.deepEqual(frame, copy, `${what}: untouched`);
  }

  const noIp = new RlbTable();
  noIp.addSlave(0, SLAVE_MACS[0]);
  const reply = hostReply(0);
  const copy = reply.slice();
  t.is(noIp.onHostArp(reply, 0, 60, 0), -1, 'the bond\'s address unknown');
  t.deepEqual(reply, copy);

  const noSlave = new RlbTable();
  noSlave.setBondIp(BOND_IP);
  t.is(noSlave.onHostArp(reply, 0, 60, 0), -1, 'no usable slave');
  t.deepEqual(reply, copy);
  t.deepEqual(noSlave.clients(), [{ ip: formatIPv4(clientIp(0)), mac: formatMac(clientMac(0)), slave: -1 }]);
});

test('rlb: the client table is bounded; a new client takes the place of the one heard from longest ago (counted), so made-up clients cannot stop receive balancing for good', (t) => {
  const rlb = table(2, 4);
  for (let i = 0; i < 4; i++) rlb.onWireArp(clientRequest(i), 0, 60, i);
  rlb.onWireArp(clientRequest(0), 0, 60, 10); // client 0 heard again: now the freshest
  for (let i = 4; i < 6; i++) rlb.onWireArp(clientRequest(i), 0, 60, 10 + i);
  t.is(rlb.size, 4);
  t.is(rlb.evictions, 2);
  t.deepEqual(rlb.clients().map((c) => c.ip).sort(), [0, 3, 4, 5].map((i) => formatIPv4(clientIp(i))).sort(), 'clients 1 and 2, heard from longest ago, gave their places');
  t.true(rlb.onHostArp(hostReply(4), 0, 60, 20) >= 0, 'a new client is balanced');
  // A flood of made-up senders churns the table, and a real client heard after it is balanced again.
  for (let i = 10; i < 150; i++) rlb.onWireArp(clientRequest(i), 0, 60, 30 + i);
  t.is(rlb.size, 4);
  t.true(rlb.onHostArp(hostReply(1), 0, 60, 1000) >= 0, 'a client heard again after the flood is balanced');
  t.throws(() => new RlbTable({ capacity: 0 }), { instanceOf: RangeError });
});

test('rlb: a client is learnt from the host\'s reply alone; a new MAC from the wire is learnt and told', (t) => {
  const rlb = table(2);
  const slave = rlb.onHostArp(hostReply(3), 0, 60, 0);
  t.true(slave >= 0);
  t.deepEqual(rlb.clients(), [{ ip: formatIPv4(clientIp(3)), mac: formatMac(clientMac(3)), slave }]);

  const moved = parseMac('02:c1:00:00:00:99');
  const reply = new Uint8Array(60);
  buildArpReply(reply, 0, { ethSrc: moved, ethDst: SLAVE_MACS[slave]!, senderMac: moved, senderIp: clientIp(3), targetMac: SLAVE_MACS[slave]!, targetIp: BOND_IP });
  rlb.onWireArp(reply, 0, 60, 5);
  t.is(rlb.clients()[0]!.mac, formatMac(moved));
  const told = drain(rlb, 10);
  t.is(told.length, 1);
  t.like(told[0], { slave, ethDst: formatMac(moved), targetMac: formatMac(moved), senderMac: formatMac(SLAVE_MACS[slave]!) });

  rlb.onWireArp(reply, 0, 60, 20);
  t.is(drain(rlb, 30).length, 1, 'the same MAC again: only the retries already due');
  const stranger = new Uint8Array(60);
  buildArpRequest(stranger, 0, { ethSrc: clientMac(7), senderIp: clientIp(7), targetIp: parseIPv4('10.0.0.50') });
  rlb.onWireArp(stranger, 0, 60, 40);
  t.is(rlb.size, 1, 'a request for another address does not make a client');
});

test('rlb: a host request broadcast pulls every client to one MAC, so the others are told again after the delay', (t) => {
  const rlb = table(2);
  const slaves = converse(rlb, 4);
  const request = new Uint8Array(60);
  buildArpRequest(request, 0, { ethSrc: BOND_MAC, senderIp: BOND_IP, targetIp: clientIp(0) });
  const slave = rlb.onHostArp(request, 0, 60, 1000);
  t.is(slave, slaves[0]!);
  const arp = createArpResult();
  t.is(parseArp(request, 0, 60, arp), ArpParse.OK);
  t.is(arp.fields[ARPR_OP], ARP_OP_REQUEST);
  t.is(formatMac(arp.senderMac), formatMac(SLAVE_MACS[slave]!), 'the request announces the client\'s slave');
  t.is(formatMac(request, 0), 'ff:ff:ff:ff:ff:ff', 'and stays a broadcast');
  t.is(drain(rlb, 1000 + RLB_UPDATE_DELAY_MS - 1).length, 0, 'held back');
  const told = drain(rlb, 1000 + RLB_UPDATE_DELAY_MS);
  t.deepEqual(
    told.map((u) => u.targetIp).sort(),
    [0, 1, 2, 3].filter((i) => slaves[i] !== slave).map((i) => formatIPv4(clientIp(i))).sort(),
  );

  const gratuitous = new Uint8Array(60);
  buildGratuitousArp(gratuitous, 0, { ethSrc: BOND_MAC, senderMac: BOND_MAC, ip: BOND_IP });
  const copy = gratuitous.slice();
  t.is(rlb.onHostArp(gratuitous, 0, 60, 5000), -1, 'a gratuitous ARP goes the ordinary way');
  t.deepEqual(gratuitous, copy);
  t.is(rlb.pendingUpdates(), 4, 'and every client is told again');
});

test('rlb: drainUpdates with room for few frames continues where it stopped', (t) => {
  const rlb = table(2);
  converse(rlb, 6);
  rlb.removeSlave(0);
  t.is(rlb.pendingUpdates(), 3);
  const small = new Uint8Array(60 * 2);
  const first = drain(rlb, 0, small);
  const second = drain(rlb, 100, small);
  t.is(first.length, 2);
  t.is(second.length, 2);
  t.not(second[0]!.targetIp, first[0]!.targetIp, 'the third client comes first next time');
  t.throws(() => rlb.drainUpdates(0, new Uint8Array(59), () => {}), { instanceOf: RangeError });
});

test('rlb: a slave that gets a new MAC has its clients told the new one; a new bond address forgets the clients', (t) => {
  const rlb = table(2);
  const slaves = converse(rlb, 4);
  const fresh = parseMac('02:5a:00:00:00:77');
  rlb.addSlave(1, fresh);
  const told = drain(rlb, 0);
  t.deepEqual(told.map((u) => u.targetIp).sort(), [0, 1, 2, 3].filter((i) => slaves[i] === 1).map((i) => formatIPv4(clientIp(i))).sort());
  for (const u of told) t.is(u.senderMac, formatMac(fresh));
  rlb.setBondIp(parseIPv4('10.0.0.2'));
  t.is(rlb.size, 0);
});

// ---------------------------------------------------------------------------------------------
// learning packets

test('buildLearningPacket: destination = source = the slave MAC, ETH_P_LOOPBACK, zeros to 60 bytes', (t) => {
  const out = new Uint8Array(80).fill(0xee);
  const mac = SLAVE_MACS[1];
  t.is(buildLearningPacket(out, 10, mac), 60);
  t.is(formatMac(out, 10), formatMac(mac));
  t.is(formatMac(out, 16), formatMac(mac));
  t.is((out[22]! << 8) | out[23]!, ETH_P_LOOPBACK);
  t.is(ETH_P_LOOPBACK, 0x9000);
  t.true(out.subarray(24, 70).every((b) => b === 0));
  t.is(out[9], 0xee);
  t.is(out[70], 0xee);
  t.throws(() => buildLearningPacket(out, 30, mac), { instanceOf: RangeError });
});
