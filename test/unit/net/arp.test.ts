import test from 'ava';
import {
  ARPR_OP,
  ARPR_SENDER_IP,
  ARPR_TARGET_IP,
  ARP_FRAME_LENGTH,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  ArpParse,
  buildArpReply,
  buildArpRequest,
  buildGratuitousArp,
  createArpResult,
  parseArp,
  parseArpRequest,
} from '../../../src/net/arp.js';
import { BROADCAST_MAC, ETH_P_ARP, ETH_P_IP, clusterMacUnicast, formatMac, readEtherType } from '../../../src/net/ethernet.js';
import { formatIPv4 } from '../../../src/net/ipv4.js';
import { prng } from '../shm/fixtures/prng.js';
import { CLIENT_IP, CLIENT_MAC, NODE_MAC, VIP, rawFrame } from '../../fixtures/frames.js';

const CLUSTER_MAC = clusterMacUnicast(VIP);

function request(): Uint8Array {
  const f = new Uint8Array(ARP_FRAME_LENGTH);
  buildArpRequest(f, 0, { ethSrc: CLIENT_MAC, senderIp: CLIENT_IP, targetIp: VIP });
  return f;
}

test('a request round-trips through buildArpRequest and parseArpRequest', (t) => {
  const f = request();
  t.is(formatMac(f, 0), 'ff:ff:ff:ff:ff:ff');
  t.is(readEtherType(f, 0), ETH_P_ARP);
  const out = createArpResult();
  t.is(parseArpRequest(f, 0, f.length, out), ArpParse.OK);
  t.is(out.fields[ARPR_OP], ARP_OP_REQUEST);
  t.is(formatIPv4(out.fields[ARPR_SENDER_IP]!), '10.0.1.7');
  t.is(out.fields[ARPR_TARGET_IP], VIP);
  t.is(formatMac(out.senderMac), formatMac(CLIENT_MAC));
  t.is(formatMac(out.targetMac), '00:00:00:00:00:00');
});

test('the reply for a VIP carries the cluster MAC in the payload and the node MAC as Ethernet source', (t) => {
  const req = createArpResult();
  t.is(parseArpRequest(request(), 0, ARP_FRAME_LENGTH, req), ArpParse.OK);
  const buf = new Uint8Array(100).fill(0xee);
  const len = buildArpReply(buf, 10, {
    ethSrc: NODE_MAC,
    ethDst: req.senderMac,
    senderMac: CLUSTER_MAC,
    senderIp: req.fields[ARPR_TARGET_IP]!,
    targetMac: req.senderMac,
    targetIp: req.fields[ARPR_SENDER_IP]!,
  });
  t.is(len, 60, 'padded to the Ethernet minimum');
  t.is(formatMac(buf, 10), formatMac(CLIENT_MAC), 'Ethernet destination: the requester');
  t.is(formatMac(buf, 16), formatMac(NODE_MAC), 'Ethernet source: our own MAC (switches never learn the cluster MAC)');
  t.deepEqual([...buf.subarray(10 + 42, 10 + 60)], new Array(18).fill(0), 'padding is zeroed');
  t.is(buf[9], 0xee, 'nothing written before the offset');
  t.is(buf[70], 0xee, 'nothing written after the frame');
  const rep = createArpResult();
  t.is(parseArpRequest(buf, 10, len, rep), ArpParse.NOT_REQUEST);
  t.is(parseArp(buf, 10, len, rep), ArpParse.OK);
  t.is(rep.fields[ARPR_OP], ARP_OP_REPLY);
  t.is(formatMac(rep.senderMac), '02:00:0a:00:00:64', 'ARP sender hardware address: the cluster MAC');
  t.is(rep.fields[ARPR_SENDER_IP], VIP);
  t.is(formatMac(rep.targetMac), formatMac(CLIENT_MAC));
  t.is(rep.fields[ARPR_TARGET_IP], CLIENT_IP);
  t.throws(() => buildArpReply(buf, 50, { ethSrc: NODE_MAC, ethDst: CLIENT_MAC, senderMac: CLUSTER_MAC, senderIp: VIP, targetMac: CLIENT_MAC, targetIp: CLIENT_IP }), {
    instanceOf: RangeError,
  });
});

test('a gratuitous ARP announces the address to itself, broadcast', (t) => {
  const f = new Uint8Array(60);
  buildGratuitousArp(f, 0, { ethSrc: NODE_MAC, senderMac: CLUSTER_MAC, ip: VIP });
  const out = createArpResult();
  t.is(parseArpRequest(f, 0, 60, out), ArpParse.OK);
  t.is(out.fields[ARPR_SENDER_IP], VIP);
  t.is(out.fields[ARPR_TARGET_IP], VIP);
  t.is(formatMac(f, 0), formatMac(BROADCAST_MAC));
  t.is(formatMac(out.senderMac), formatMac(CLUSTER_MAC));
  buildGratuitousArp(f, 0, { ethSrc: NODE_MAC, senderMac: CLUSTER_MAC, ip: VIP, reply: true });
  t.is(parseArp(f, 0, 60, out), ArpParse.OK);
  t.is(out.fields[ARPR_OP], ARP_OP_REPLY);
});

function mutate(at: number, value: number): () => Uint8Array {
  return () => {
    const f = request();
    f[at] = value;
    return f;
  };
}

const rejects: Array<{ description: string; frame: () => Uint8Array; len?: number; code: number }> = [
  { description: 'IPv4 EtherType', frame: () => rawFrame(BROADCAST_MAC, ETH_P_IP), code: ArpParse.NOT_ARP },
  { description: 'shorter than an Ethernet header', frame: () => new Uint8Array(10), code: ArpParse.TOO_SHORT },
  { description: 'ARP payload cut at 27 bytes', frame: request, len: 14 + 27, code: ArpParse.TOO_SHORT },
  { description: 'hardware type 6 (IEEE 802)', frame: mutate(15, 6), code: ArpParse.UNSUPPORTED },
  { description: 'protocol type IPv6', frame: mutate(16, 0x86), code: ArpParse.UNSUPPORTED },
  { description: 'hardware length 8', frame: mutate(18, 8), code: ArpParse.UNSUPPORTED },
  { description: 'protocol length 16', frame: mutate(19, 16), code: ArpParse.UNSUPPORTED },
  { description: 'op 3 (RARP request)', frame: mutate(21, 3), code: ArpParse.BAD_OP },
  { description: 'op 2 where a request is wanted', frame: mutate(21, 2), code: ArpParse.NOT_REQUEST },
];

for (const c of rejects) {
  test(`parseArpRequest rejects: ${c.description}`, (t) => {
    const f = c.frame();
    const code: number = parseArpRequest(f, 0, c.len ?? f.length, createArpResult());
    t.is(code, c.code);
  });
}

test('parseArp never throws on random and mutated frames', (t) => {
  const rnd = prng(7);
  const out = createArpResult();
  const known = new Set<number>(Object.values(ArpParse));
  for (let i = 0; i < 10_000; i++) {
    const f = i % 2 === 0 ? new Uint8Array(Math.floor(rnd() * 64)) : request().slice(0, 30 + Math.floor(rnd() * 31));
    const n = i % 2 === 0 ? f.length : 1 + Math.floor(rnd() * 3);
    for (let j = 0; j < n && f.length > 0; j++) f[Math.floor(rnd() * f.length)] = rnd() * 256;
    const code: number = parseArp(f, Math.floor(rnd() * 3) - 1, Math.floor(rnd() * (f.length + 4)) - 2, out);
    if (!known.has(code)) t.fail(`unknown code ${code}`);
  }
  t.pass();
});
