import test from 'ava';
import { XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23, XMIT_POLICY_LAYER34, slaveIndex, xmitHash, type XmitPolicyNumber } from '../../../src/bond/xmit-hash.js';

// ---------------------------------------------------------------------------------------------
// The documented formulas, written here from the field values (never from the frame's bytes,
// never by calling the code under test). Multi-byte fields are loaded as the driver loads them
// on a little-endian CPU: it copies the header bytes b0 b1 b2 b3 into a u32.
//
//   layer2    h = dst[5] ^ src[5] ^ EtherType
//   layer2+3  h = layer2 ^ saddr ^ daddr;  h ^= h >> 16;  h ^= h >> 8
//   layer3+4  h = ports ^ saddr ^ daddr;   h ^= h >> 16;  h ^= h >> 8;  h >>= 1
//             (ports: source port then destination port as they sit in the header; for an
//             ICMP message with an identifier: type | code << 8 | id << 16, id 0 counting as 1)
//   slave = h mod count

const le = (b0: number, b1: number, b2: number, b3: number): number => (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0;
const addr4 = (dotted: string): number => {
  const [a, b, c, d] = dotted.split('.').map(Number) as [number, number, number, number];
  return le(a, b, c, d);
};
/** ipv6_addr_hash: the XOR of the address's four 32-bit words. */
const addr6 = (groups: number[]): number => {
  let h = 0;
  for (let i = 0; i < 8; i += 2) h ^= le(groups[i]! >> 8, groups[i]! & 255, groups[i + 1]! >> 8, groups[i + 1]! & 255);
  return h >>> 0;
};
const portsWord = (sport: number, dport: number): number => le(sport >> 8, sport & 255, dport >> 8, dport & 255);
const icmpWord = (type: number, code: number, id: number): number => (type | (code << 8) | ((id === 0 ? 1 : id) << 16)) >>> 0;
const fold = (h: number): number => {
  h = (h ^ (h >>> 16)) >>> 0;
  return (h ^ (h >>> 8)) >>> 0;
};
const layer2 = (dstLast: number, srcLast: number, type: number): number => dstLast ^ srcLast ^ type;
const layer23 = (l2: number, saddr: number, daddr: number): number => fold(l2 ^ saddr ^ daddr);
const layer34 = (l4: number, saddr: number, daddr: number): number => fold(l4 ^ saddr ^ daddr) >>> 1;

// ---------------------------------------------------------------------------------------------
// Frame builders

const DST = [0x02, 0, 0, 0, 0, 0x02];
const SRC = [0x02, 0, 0, 0, 0, 0x01];

function ethernet(type: number, payload: number[], opts: { dst?: number[]; src?: number[]; vlan?: number; tpid?: number } = {}): Uint8Array {
  const tag = opts.vlan === undefined ? [] : [(opts.tpid ?? 0x8100) >> 8, (opts.tpid ?? 0x8100) & 255, opts.vlan >> 8, opts.vlan & 255];
  return new Uint8Array([...(opts.dst ?? DST), ...(opts.src ?? SRC), ...tag, type >> 8, type & 255, ...payload]);
}

function ipv4(src: string, dst: string, proto: number, payload: number[], frag: { mf?: boolean; offset?: number; df?: boolean } = {}): number[] {
  const total = 20 + payload.length;
  const fragWord = (frag.mf ? 0x2000 : 0) | (frag.df ? 0x4000 : 0) | ((frag.offset ?? 0) >> 3);
  return [0x45, 0, total >> 8, total & 255, 0x12, 0x34, fragWord >> 8, fragWord & 255, 64, proto, 0, 0, ...src.split('.').map(Number), ...dst.split('.').map(Number), ...payload];
}

function ipv6(src: number[], dst: number[], next: number, payload: number[]): number[] {
  const bytes = (g: number[]): number[] => g.flatMap((x) => [x >> 8, x & 255]);
  return [0x60, 0, 0, 0, payload.length >> 8, payload.length & 255, next, 64, ...bytes(src), ...bytes(dst), ...payload];
}

const l4 = (sport: number, dport: number, rest = 16): number[] => [sport >> 8, sport & 255, dport >> 8, dport & 255, ...new Array<number>(rest).fill(0)];
const icmp = (type: number, code: number, id: number, seq: number, body: number[] = []): number[] => [type, code, 0, 0, id >> 8, id & 255, seq >> 8, seq & 255, ...body];

const TCP = 6;
const UDP = 17;
const ICMP = 1;
const A = '10.0.0.1';
const B = '10.0.0.2';
const V6A = [0xfd00, 0, 0, 0, 0, 0, 0, 1];
const V6B = [0xfd00, 0, 0, 0, 0, 0, 0xbeef, 2];

const hash = (policy: XmitPolicyNumber, frame: Uint8Array): number => xmitHash(policy, frame, 0, frame.length);

// ---------------------------------------------------------------------------------------------
// Fixture table: description, frame, policy, expected (from the formulas above)

const tcpAB = ethernet(0x0800, ipv4(A, B, TCP, l4(1234, 80)));
const udpAB = ethernet(0x0800, ipv4(A, B, UDP, l4(5000, 53)));
const arp = ethernet(0x0806, new Array<number>(28).fill(0));
const udp6 = ethernet(0x86dd, ipv6(V6A, V6B, UDP, l4(40000, 443)));
const echo = ethernet(0x0800, ipv4(A, B, ICMP, icmp(8, 0, 0x1234, 1)));
const echoId0 = ethernet(0x0800, ipv4(A, B, ICMP, icmp(0, 0, 0, 7)));
const echo6 = ethernet(0x86dd, ipv6(V6A, V6B, 58, icmp(128, 0, 0x0abc, 1)));
// A router 192.168.0.254 tells A that B's port 53 is unreachable, quoting A's datagram.
const unreachable = ethernet(0x0800, ipv4('192.168.0.254', A, ICMP, icmp(3, 3, 0, 0, ipv4(A, B, UDP, l4(5000, 53, 4)))));
const firstFragment = ethernet(0x0800, ipv4(A, B, UDP, l4(5000, 53, 1472), { mf: true }));
const lastFragment = ethernet(0x0800, ipv4(A, B, UDP, new Array<number>(100).fill(0xaa), { offset: 1480 }));
const dontFragment = ethernet(0x0800, ipv4(A, B, TCP, l4(1234, 80), { df: true }));
const esp = ethernet(0x0800, ipv4(A, B, 50, [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]));
const ah = ethernet(0x0800, ipv4(A, B, 51, [50, 4, 0, 0, 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 1]));
const gre = ethernet(0x0800, ipv4(A, B, 47, [0, 0, 0x08, 0x00]));
const v6fragment = ethernet(0x86dd, ipv6(V6A, V6B, 44, [UDP, 0, 0, 1, 0, 0, 0, 9, ...l4(40000, 443)]));

const l2AB = layer2(0x02, 0x01, 0x0800);

const fixtures: [string, Uint8Array, XmitPolicyNumber, number][] = [
  // Literal values worked out by hand, so the formula helpers are checked too:
  // layer2: 0x02 ^ 0x01 ^ 0x0800 = 0x0803.
  ['layer2, IPv4/TCP (by hand)', tcpAB, XMIT_POLICY_LAYER2, 0x0803],
  // layer2+3: addresses 10.0.0.1 / 10.0.0.2 load as 0x0100000a / 0x0200000a, XOR 0x03000000;
  // 0x0803 ^ 0x03000000 = 0x03000803; ^ >>16 (0x0300) = 0x03000b03; ^ >>8 (0x0003000b) = 0x03030b08.
  ['layer2+3, IPv4/TCP (by hand)', tcpAB, XMIT_POLICY_LAYER23, 0x03030b08],
  // layer3+4: ports 1234 (04 d2), 80 (00 50) load as 0x5000d204; ^ 0x03000000 = 0x5300d204;
  // ^ >>16 (0x5300) = 0x53008104; ^ >>8 (0x00530081) = 0x53538185; >>1 = 0x29a9c0c2.
  ['layer3+4, IPv4/TCP (by hand)', tcpAB, XMIT_POLICY_LAYER34, 0x29a9c0c2],

  ['layer2, ARP', arp, XMIT_POLICY_LAYER2, layer2(0x02, 0x01, 0x0806)],
  ['layer2+3, ARP falls back to layer2', arp, XMIT_POLICY_LAYER23, layer2(0x02, 0x01, 0x0806)],
  ['layer3+4, ARP falls back to layer2', arp, XMIT_POLICY_LAYER34, layer2(0x02, 0x01, 0x0806)],
  ['layer2, IPv6', udp6, XMIT_POLICY_LAYER2, layer2(0x02, 0x01, 0x86dd)],
  ['layer2, other MAC bytes', ethernet(0x0800, ipv4(A, B, TCP, l4(1, 2)), { dst: [0xff, 1, 2, 3, 4, 0xa5], src: [0, 0, 0, 0, 0, 0x5a] }), XMIT_POLICY_LAYER2, layer2(0xa5, 0x5a, 0x0800)],

  ['layer2+3, IPv4/UDP', udpAB, XMIT_POLICY_LAYER23, layer23(l2AB, addr4(A), addr4(B))],
  ['layer3+4, IPv4/UDP', udpAB, XMIT_POLICY_LAYER34, layer34(portsWord(5000, 53), addr4(A), addr4(B))],
  ['layer2+3, IPv6/UDP', udp6, XMIT_POLICY_LAYER23, layer23(layer2(0x02, 0x01, 0x86dd), addr6(V6A), addr6(V6B))],
  ['layer3+4, IPv6/UDP', udp6, XMIT_POLICY_LAYER34, layer34(portsWord(40000, 443), addr6(V6A), addr6(V6B))],
  ['layer3+4, IPv6 fragment header: no ports', v6fragment, XMIT_POLICY_LAYER34, layer34(0, addr6(V6A), addr6(V6B))],

  ['layer3+4, IPv4 first fragment: no ports', firstFragment, XMIT_POLICY_LAYER34, layer34(0, addr4(A), addr4(B))],
  ['layer3+4, IPv4 last fragment: no ports', lastFragment, XMIT_POLICY_LAYER34, layer34(0, addr4(A), addr4(B))],
  ['layer3+4, DF is not a fragment', dontFragment, XMIT_POLICY_LAYER34, layer34(portsWord(1234, 80), addr4(A), addr4(B))],
  ['layer3+4, ESP hashes its SPI', esp, XMIT_POLICY_LAYER34, layer34(le(0xde, 0xad, 0xbe, 0xef), addr4(A), addr4(B))],
  ['layer3+4, AH hashes its SPI (offset 4)', ah, XMIT_POLICY_LAYER34, layer34(le(0xca, 0xfe, 0xba, 0xbe), addr4(A), addr4(B))],
  ['layer3+4, GRE has no ports', gre, XMIT_POLICY_LAYER34, layer34(0, addr4(A), addr4(B))],

  ['layer3+4, ICMP echo hashes type, code and identifier', echo, XMIT_POLICY_LAYER34, layer34(icmpWord(8, 0, 0x1234), addr4(A), addr4(B))],
  ['layer3+4, ICMP echo reply with identifier 0 counts it as 1', echoId0, XMIT_POLICY_LAYER34, layer34(icmpWord(0, 0, 0), addr4(A), addr4(B))],
  ['layer3+4, ICMPv6 echo request', echo6, XMIT_POLICY_LAYER34, layer34(icmpWord(128, 0, 0x0abc), addr6(V6A), addr6(V6B))],
  ['layer2+3, ICMP echo: addresses only', echo, XMIT_POLICY_LAYER23, layer23(l2AB, addr4(A), addr4(B))],
  ['layer3+4, ICMP error: the quoted datagram\'s addresses and ports', unreachable, XMIT_POLICY_LAYER34, layer34(portsWord(5000, 53), addr4(A), addr4(B))],
  ['layer2+3, ICMP error: the quoted datagram\'s addresses', unreachable, XMIT_POLICY_LAYER23, layer23(l2AB, addr4(A), addr4(B))],
];

for (const [title, frame, policy, expected] of fixtures) {
  test(`xmitHash: ${title}`, (t) => {
    t.is(hash(policy, frame), expected, `0x${hash(policy, frame).toString(16)} != 0x${expected.toString(16)}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Properties

test('slaveIndex is the hash modulo the slave count, the hash taken as unsigned', (t) => {
  t.is(slaveIndex(0x0803, 2), 1);
  t.is(slaveIndex(0x0803, 3), 2); // 2051 = 3 * 683 + 2
  t.is(slaveIndex(0x29a9c0c2, 2), 0);
  t.is(slaveIndex(0x29a9c0c2, 3), 698990786 % 3);
  t.is(slaveIndex(0xffffffff, 10), 5); // 4294967295, not -1
  t.is(slaveIndex(-1, 10), 5); // a u32 that went through a signed operation
  t.is(slaveIndex(123456, 1), 0);
  t.is(slaveIndex(123456, 0), -1); // no slave to pick
});

test('every frame of a flow, fragments included, takes the slave of the flow', (t) => {
  t.is(hash(XMIT_POLICY_LAYER34, firstFragment), hash(XMIT_POLICY_LAYER34, lastFragment));
  // An ICMP error about a datagram goes where that datagram's flow goes.
  t.is(hash(XMIT_POLICY_LAYER34, unreachable), hash(XMIT_POLICY_LAYER34, udpAB));
  // Other payload bytes and the IP identification do not matter.
  const other = ethernet(0x0800, ipv4(A, B, TCP, [...l4(1234, 80, 0), ...new Array<number>(100).fill(7)]));
  other[18] = 0x99;
  for (const p of [XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23, XMIT_POLICY_LAYER34] as const) t.is(hash(p, other), hash(p, tcpAB));
});

test('a VLAN tag is metadata, as in the driver: a tagged frame hashes as the untagged one', (t) => {
  const untagged = tcpAB;
  for (const tpid of [0x8100, 0x88a8]) {
    const tagged = ethernet(0x0800, ipv4(A, B, TCP, l4(1234, 80)), { vlan: 100, tpid });
    for (const p of [XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23, XMIT_POLICY_LAYER34] as const) t.is(hash(p, tagged), hash(p, untagged), `tpid ${tpid} policy ${p}`);
  }
  // Another VLAN, the same flow: the same slave (the tag is not hashed).
  t.is(hash(XMIT_POLICY_LAYER34, ethernet(0x0800, ipv4(A, B, TCP, l4(1234, 80)), { vlan: 200 })), hash(XMIT_POLICY_LAYER34, untagged));
});

test('short and cut frames: no header, 0; a cut IP header, layer2; cut ports, no ports', (t) => {
  for (const p of [XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23, XMIT_POLICY_LAYER34] as const) {
    t.is(xmitHash(p, tcpAB, 0, 13), 0);
    t.is(xmitHash(p, tcpAB, 0, 0), 0);
    t.is(xmitHash(p, tcpAB, -1, 60), 0);
    t.is(xmitHash(p, tcpAB, Number.NaN, 60), 0);
    t.is(xmitHash(p, tcpAB, 0, Number.NaN), 0);
  }
  t.is(xmitHash(XMIT_POLICY_LAYER34, tcpAB, 0, 14 + 19), l2AB);
  t.is(xmitHash(XMIT_POLICY_LAYER23, tcpAB, 0, 14 + 19), l2AB);
  t.is(xmitHash(XMIT_POLICY_LAYER23, tcpAB, 0, 14 + 20), layer23(l2AB, addr4(A), addr4(B)));
  t.is(xmitHash(XMIT_POLICY_LAYER34, tcpAB, 0, 14 + 20 + 3), layer34(0, addr4(A), addr4(B)));
  t.is(xmitHash(XMIT_POLICY_LAYER34, tcpAB, 0, 14 + 20 + 4), layer34(portsWord(1234, 80), addr4(A), addr4(B)));
  // An ICMP error quoting less than a whole IP header: the driver gives up on layer 3.
  t.is(xmitHash(XMIT_POLICY_LAYER34, unreachable, 0, 14 + 20 + 8 + 19), l2AB);
  // An ICMP message cut inside its header: no identifier to hash.
  t.is(xmitHash(XMIT_POLICY_LAYER34, echo, 0, 14 + 20 + 7), layer34(0, addr4(A), addr4(B)));
  // A length beyond the buffer is the buffer.
  t.is(xmitHash(XMIT_POLICY_LAYER34, tcpAB, 0, 10_000), hash(XMIT_POLICY_LAYER34, tcpAB));
});

test('the frame may sit at any offset of a larger buffer', (t) => {
  const buf = new Uint8Array(7 + udp6.length + 9).fill(0xee);
  buf.set(udp6, 7);
  for (const p of [XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23, XMIT_POLICY_LAYER34] as const) t.is(xmitHash(p, buf, 7, udp6.length), hash(p, udp6));
});

/** A small deterministic generator (LCG), so the distribution tests see the same flows each run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

function share(frames: Uint8Array[], policy: XmitPolicyNumber, count: number): number[] {
  const n = new Array<number>(count).fill(0);
  for (const f of frames) n[slaveIndex(hash(policy, f), count)]! += 1;
  return n.map((x) => x / frames.length);
}

test('layer3+4 spreads 1000 flows over 2 slaves within 40-60%', (t) => {
  const rnd = lcg(42);
  const flows: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) {
    const r = rnd();
    const client = `10.${(r >>> 8) & 255}.${(r >>> 16) & 255}.${1 + ((r >>> 24) % 254)}`;
    flows.push(ethernet(0x0800, ipv4(client, '192.0.2.10', TCP, l4(32768 + (rnd() % 28232), 443))));
  }
  const [s0, s1] = share(flows, XMIT_POLICY_LAYER34, 2) as [number, number];
  t.true(s0 >= 0.4 && s0 <= 0.6, `slave 0 got ${s0}`);
  t.true(s1 >= 0.4 && s1 <= 0.6, `slave 1 got ${s1}`);
  for (const s of share(flows, XMIT_POLICY_LAYER34, 3)) t.true(s >= 0.25 && s <= 0.42, `3 slaves: ${s}`);
});

test('layer3+4 spreads the flows of one client to one server, also when every source port is even', (t) => {
  for (const step of [1, 2]) {
    const flows = Array.from({ length: 1000 }, (_, i) => ethernet(0x0800, ipv4(A, B, TCP, l4(40000 + i * step, 5201))));
    const [s0] = share(flows, XMIT_POLICY_LAYER34, 2) as [number, number];
    t.true(s0 >= 0.4 && s0 <= 0.6, `step ${step}: slave 0 got ${s0}`);
  }
  // layer2 and layer2+3 keep them all on one slave: one pair of MACs, one pair of addresses.
  const flows = Array.from({ length: 100 }, (_, i) => ethernet(0x0800, ipv4(A, B, TCP, l4(40000 + i, 5201))));
  for (const p of [XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23] as const) t.is(new Set(flows.map((f) => hash(p, f))).size, 1);
});
