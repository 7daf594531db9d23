import test from 'ava';
import { formatMac, parseMac } from '../../../src/net/ethernet.js';
import { createIPv6Result, formatIPv6, IPv6Parse, parseIPv6, readIPv6 } from '../../../src/net/ipv6.js';
import {
  ALL_NODES,
  buildSolicitedAdvertisement,
  buildUnsolicitedAdvertisement,
  createNdpResult,
  icmpv6Checksum,
  multicastMac,
  NA_FLAG_OVERRIDE,
  NA_FLAG_SOLICITED,
  NA_FRAME_LENGTH,
  NdpParse,
  parseNeighborSolicitation,
  solicitedNodeAddress,
  type NdpParseCode,
} from '../../../src/net/ndp.js';
import { CLIENT_IP6, CLIENT_MAC, NODE_MAC, neighborSolicitationFrame, VIP6, type SolicitationSpec } from '../../fixtures/frames.js';

const CLUSTER_MAC = parseMac('02:00:0a:00:00:64');
const UNSPECIFIED = new Uint8Array(16);

function parse(frame: Uint8Array): { code: NdpParseCode; ns: ReturnType<typeof createNdpResult> } {
  const ip6 = createIPv6Result();
  const ns = createNdpResult();
  if (readIPv6(frame, 0, frame.length, ip6) !== IPv6Parse.OK) throw new Error('not an IPv6 frame');
  return { code: parseNeighborSolicitation(frame, ip6, ns), ns };
}

test('icmpv6Checksum matches a checksum computed independently (Python, RFC 8200 §8.1 pseudo-header)', (t) => {
  // NS from 2001:db8:1::7 to ff02::1:ff00:100 for 2001:db8::100, SLLA 52:54:00:00:00:99: 0xc937.
  const frame = neighborSolicitationFrame();
  t.is((frame[14 + 40 + 2]! << 8) | frame[14 + 40 + 3]!, 0xc937);
  t.is(icmpv6Checksum(frame, 14, 54, frame.length - 54), 0, 'a received message with its checksum sums to 0');
});

test('solicited-node multicast: ff02::1:ff and the low 24 bits; its MAC 33:33 and the low 32', (t) => {
  t.is(formatIPv6(solicitedNodeAddress(parseIPv6('2001:db8::abcd:1234'))), 'ff02::1:ffcd:1234');
  t.is(formatMac(multicastMac(solicitedNodeAddress(VIP6))), '33:33:ff:00:01:00');
  t.is(formatMac(multicastMac(ALL_NODES)), '33:33:00:00:00:01');
});

const cases: { description: string; spec: SolicitationSpec; code: NdpParseCode }[] = [
  { description: 'a solicitation for the VIP with a source link-layer address', spec: {}, code: NdpParse.OK },
  { description: 'a unicast solicitation (neighbour unreachability detection), no option', spec: { ipDst: VIP6, sourceMac: null }, code: NdpParse.OK },
  { description: 'duplicate address detection (from ::, no option)', spec: { ipSrc: UNSPECIFIED, sourceMac: null }, code: NdpParse.OK },
  { description: 'from :: with a source link-layer address: invalid (RFC 4861 §7.1.1)', spec: { ipSrc: UNSPECIFIED }, code: NdpParse.BAD_OPTIONS },
  { description: 'hop limit 254 (it crossed a router)', spec: { hopLimit: 254 }, code: NdpParse.INVALID },
  { description: 'a wrong checksum', spec: { badChecksum: true }, code: NdpParse.BAD_CHECKSUM },
  { description: 'an option of length 0', spec: { extraOptions: Uint8Array.from([14, 0, 0, 0, 0, 0, 0, 0]) }, code: NdpParse.BAD_OPTIONS },
  { description: 'an option running past the message', spec: { extraOptions: Uint8Array.from([14, 2, 0, 0, 0, 0, 0, 0]) }, code: NdpParse.BAD_OPTIONS },
  { description: 'an unknown option of good length is skipped', spec: { extraOptions: Uint8Array.from([14, 1, 0, 0, 0, 0, 0, 0]) }, code: NdpParse.OK },
  { description: 'a multicast target', spec: { target: ALL_NODES }, code: NdpParse.BAD_OPTIONS },
];

for (const c of cases) {
  test(`parseNeighborSolicitation: ${c.description}`, (t) => {
    t.is(parse(neighborSolicitationFrame(c.spec)).code, c.code);
  });
}

test('parseNeighborSolicitation: what it reads (target, source, its MAC); an ICMPv6 echo is no solicitation', (t) => {
  const { code, ns } = parse(neighborSolicitationFrame());
  t.is(code, NdpParse.OK);
  t.deepEqual(ns.target, VIP6);
  t.deepEqual(ns.source, CLIENT_IP6);
  t.true(ns.hasSourceMac);
  t.deepEqual(ns.sourceMac, CLIENT_MAC);
  t.false(ns.unspecifiedSource);
  const echo = neighborSolicitationFrame({ sourceMac: null });
  echo[54] = 128;
  t.is(parse(echo).code, NdpParse.NOT_SOLICITATION);
});

test('the answer: to the requester at its MAC, solicited and override, the cluster MAC as target link-layer address, the node\'s own MAC as Ethernet source, a valid checksum', (t) => {
  const { ns } = parse(neighborSolicitationFrame());
  const buf = new Uint8Array(200);
  const n = buildSolicitedAdvertisement(buf, 10, ns, CLIENT_MAC, { ethSrc: NODE_MAC, vip: VIP6, clusterMac: CLUSTER_MAC });
  t.is(n, NA_FRAME_LENGTH);
  const na = buf.subarray(10, 10 + n);
  t.deepEqual(na.subarray(0, 6), CLIENT_MAC);
  t.deepEqual(na.subarray(6, 12), NODE_MAC);
  const ip6 = createIPv6Result();
  t.is(readIPv6(na, 0, na.length, ip6), IPv6Parse.OK);
  t.is(na[14 + 7], 255, 'hop limit 255');
  t.deepEqual(na.subarray(14 + 8, 14 + 24), VIP6, 'from the VIP');
  t.deepEqual(na.subarray(14 + 24, 14 + 40), CLIENT_IP6, 'to the requester');
  const l4 = 54;
  t.is(na[l4], 136);
  t.is(na[l4 + 4], NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
  t.deepEqual(na.subarray(l4 + 8, l4 + 24), VIP6, 'target: the VIP');
  t.deepEqual([na[l4 + 24], na[l4 + 25]], [2, 1], 'a target link-layer address option');
  t.deepEqual(na.subarray(l4 + 26, l4 + 32), CLUSTER_MAC);
  t.is(icmpv6Checksum(na, 14, l4, 32), 0);
});

test('duplicate address detection is answered to all nodes, not solicited (RFC 4861 §7.2.4); the unsolicited form announces the VIP after a failover', (t) => {
  const { ns } = parse(neighborSolicitationFrame({ ipSrc: UNSPECIFIED, sourceMac: null }));
  const buf = new Uint8Array(NA_FRAME_LENGTH);
  buildSolicitedAdvertisement(buf, 0, ns, CLIENT_MAC, { ethSrc: NODE_MAC, vip: VIP6, clusterMac: CLUSTER_MAC });
  t.is(formatMac(buf.subarray(0, 6)), '33:33:00:00:00:01');
  t.deepEqual(buf.subarray(14 + 24, 14 + 40), ALL_NODES);
  t.is(buf[54 + 4], NA_FLAG_OVERRIDE);
  const unsolicited = new Uint8Array(NA_FRAME_LENGTH);
  buildUnsolicitedAdvertisement(unsolicited, 0, { ethSrc: NODE_MAC, vip: VIP6, clusterMac: CLUSTER_MAC });
  t.deepEqual(unsolicited, buf);
  t.throws(() => buildUnsolicitedAdvertisement(new Uint8Array(40), 0, { ethSrc: NODE_MAC, vip: VIP6, clusterMac: CLUSTER_MAC }), { instanceOf: RangeError });
});
