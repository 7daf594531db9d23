import test from 'ava';
import {
  BPF_ABS,
  BPF_ACCEPT,
  BPF_ADD,
  BPF_ALU,
  BPF_B,
  BPF_H,
  BPF_IND,
  BPF_JEQ,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_MEM,
  BPF_MISC,
  BPF_MSH,
  BPF_A,
  BPF_RET,
  BPF_ST,
  BPF_TXA,
  BPF_W,
  BPF_X,
  controlDoorbellFilter,
  controlFilter,
  dataFilter,
  DOORBELL_SNAP,
  runBpf,
  validateBpf,
} from '../../../src/net/bpf.js';
import { BROADCAST_MAC, ETH_P_ARP, ETH_P_IP, ETH_P_LNLB, clusterMacMulticast, clusterMacUnicast, parseMac } from '../../../src/net/ethernet.js';
import { IPPROTO_UDP } from '../../../src/net/ipv4.js';
import { encodeMessage, FLAG_WAKE, MessageType } from '../../../src/net/cluster-message.js';
import { FLAG_AUTHENTICATED } from '../../../src/net/auth.js';
import { CLIENT_IP6, NODE_MAC, VIP, VIP6, ipv4Frame, ipv6Frame, neighborSolicitationFrame, rawFrame } from '../../fixtures/frames.js';
import { multicastMac, solicitedNodeAddress } from '../../../src/net/ndp.js';

const CLUSTER_MAC = clusterMacUnicast(VIP);
const OTHER_NODE = parseMac('52:54:00:00:00:02');
/** Same first four bytes as the cluster MAC, different last two. */
const NEAR_CLUSTER = parseMac('02:00:0a:00:01:64');
/** Same last two bytes as our MAC, different first four. */
const NEAR_NODE = parseMac('52:54:00:01:00:01');

interface Case {
  description: string;
  frame: () => Uint8Array;
  len?: number;
  verdict: number;
}

const dataCases: Case[] = [
  { description: 'IPv4 to the cluster MAC', frame: () => ipv4Frame({ dst: CLUSTER_MAC }), verdict: BPF_ACCEPT },
  { description: 'IPv4 to another MAC', frame: () => ipv4Frame({ dst: OTHER_NODE }), verdict: 0 },
  { description: 'IPv4 to our own MAC (never reaches the VIP)', frame: () => ipv4Frame({ dst: NODE_MAC }), verdict: 0 },
  { description: 'IPv4 to a MAC sharing the first four bytes', frame: () => ipv4Frame({ dst: NEAR_CLUSTER }), verdict: 0 },
  { description: 'IPv4 broadcast', frame: () => ipv4Frame({ dst: BROADCAST_MAC }), verdict: 0 },
  { description: 'ARP broadcast request', frame: () => rawFrame(BROADCAST_MAC, ETH_P_ARP), verdict: BPF_ACCEPT },
  { description: 'ARP unicast to someone else', frame: () => rawFrame(OTHER_NODE, ETH_P_ARP), verdict: BPF_ACCEPT },
  { description: 'control frame to the cluster MAC (the control socket reads it)', frame: () => rawFrame(CLUSTER_MAC, ETH_P_LNLB), verdict: 0 },
  { description: "a HEARTBEAT announcing a weight (FLAG_WAKE) to the cluster MAC: the actors see it in order with the clients' frames", frame: () => controlMessage(CLUSTER_MAC, MessageType.HEARTBEAT, (FLAG_WAKE | FLAG_AUTHENTICATED) >>> 0), verdict: BPF_ACCEPT },
  { description: 'a routine HEARTBEAT to the cluster MAC', frame: () => controlMessage(CLUSTER_MAC, MessageType.HEARTBEAT, (0x1 | FLAG_AUTHENTICATED) >>> 0), verdict: 0 },
  { description: 'a HEARTBEAT announcing a weight to another MAC', frame: () => controlMessage(OTHER_NODE, MessageType.HEARTBEAT, FLAG_WAKE), verdict: 0 },
  { description: 'a JOIN to the cluster MAC, whatever its flags', frame: () => controlMessage(CLUSTER_MAC, MessageType.JOIN, FLAG_WAKE), verdict: 0 },
  { description: 'IPv6 to the cluster MAC (no IPv6 VIP)', frame: () => rawFrame(CLUSTER_MAC, 0x86dd), verdict: 0 },
  { description: 'frame cut before the EtherType', frame: () => ipv4Frame({ dst: CLUSTER_MAC }), len: 12, verdict: 0 },
];

const controlCases: Case[] = [
  { description: 'control frame to the cluster MAC', frame: () => rawFrame(CLUSTER_MAC, ETH_P_LNLB), verdict: BPF_ACCEPT },
  { description: 'control frame to our MAC', frame: () => rawFrame(NODE_MAC, ETH_P_LNLB), verdict: BPF_ACCEPT },
  { description: 'control frame to broadcast', frame: () => rawFrame(BROADCAST_MAC, ETH_P_LNLB), verdict: BPF_ACCEPT },
  { description: 'control frame to another node', frame: () => rawFrame(OTHER_NODE, ETH_P_LNLB), verdict: 0 },
  { description: 'control frame to a MAC sharing our last two bytes', frame: () => rawFrame(NEAR_NODE, ETH_P_LNLB), verdict: 0 },
  { description: 'control frame to a MAC sharing the cluster MAC first four bytes', frame: () => rawFrame(NEAR_CLUSTER, ETH_P_LNLB), verdict: 0 },
  { description: 'control frame to another cluster', frame: () => rawFrame(clusterMacUnicast(VIP + 1), ETH_P_LNLB), verdict: 0 },
  { description: 'IPv4 to the cluster MAC', frame: () => ipv4Frame({ dst: CLUSTER_MAC }), verdict: 0 },
  { description: 'ARP broadcast', frame: () => rawFrame(BROADCAST_MAC, ETH_P_ARP), verdict: 0 },
  { description: '13-byte runt', frame: () => rawFrame(CLUSTER_MAC, ETH_P_LNLB), len: 13, verdict: 0 },
];

const data = dataFilter(CLUSTER_MAC);
/** With an IPv6 VIP: its solicited-node group's MAC passes too. */
const data6 = dataFilter(CLUSTER_MAC, multicastMac(solicitedNodeAddress(VIP6)));
const data6Cases: Case[] = [
  { description: 'IPv6 to the cluster MAC', frame: () => ipv6Frame(), verdict: BPF_ACCEPT },
  { description: 'a solicitation for the VIP (its solicited-node group)', frame: () => neighborSolicitationFrame(), verdict: BPF_ACCEPT },
  { description: 'a solicitation for another address (another group)', frame: () => neighborSolicitationFrame({ target: CLIENT_IP6 }), verdict: 0 },
  { description: 'IPv6 to another MAC', frame: () => ipv6Frame({ dst: OTHER_NODE }), verdict: 0 },
  { description: 'IPv4 to the cluster MAC, as without an IPv6 VIP', frame: () => ipv4Frame({ dst: CLUSTER_MAC }), verdict: BPF_ACCEPT },
  { description: 'a control frame to the cluster MAC, as without', frame: () => rawFrame(CLUSTER_MAC, ETH_P_LNLB), verdict: 0 },
  { description: 'a HEARTBEAT announcing a weight to the cluster MAC, as without', frame: () => controlMessage(CLUSTER_MAC, MessageType.HEARTBEAT, FLAG_WAKE), verdict: BPF_ACCEPT },
];

for (const c of data6Cases) {
  test(`dataFilter with an IPv6 VIP: ${c.description}`, (t) => {
    const f = c.frame();
    t.is(runBpf(data6, f, c.len ?? f.length), c.verdict);
  });
}
const control = controlFilter(NODE_MAC, CLUSTER_MAC);

for (const c of dataCases) {
  test(`dataFilter: ${c.description}`, (t) => {
    const f = c.frame();
    t.is(runBpf(data, f, c.len ?? f.length), c.verdict);
  });
}

for (const c of controlCases) {
  test(`controlFilter: ${c.description}`, (t) => {
    const f = c.frame();
    t.is(runBpf(control, f, c.len ?? f.length), c.verdict);
  });
}

/** A cluster message of `type` (a heartbeat carries its weight) in a frame to `dst`. */
function controlMessage(dst: Uint8Array, type: MessageType, flags = 0): Uint8Array {
  const frame = rawFrame(dst, ETH_P_LNLB, 128, OTHER_NODE);
  encodeMessage(frame, 14, { clusterIp: VIP, type, flags, messageId: 7, data: 100 });
  return frame;
}

const doorbell = controlDoorbellFilter(NODE_MAC, CLUSTER_MAC);
const doorbellCases: Case[] = [
  { description: 'a HEARTBEAT to the cluster MAC does not ring (a settled node reads it on its own timer)', frame: () => controlMessage(CLUSTER_MAC, MessageType.HEARTBEAT), verdict: 0 },
  ...[MessageType.JOIN, MessageType.WELCOME, MessageType.ASKRETRASM, MessageType.RETRASM, MessageType.LEAVE, MessageType.CONNTRACK, MessageType.STATE_ACK, MessageType.STATE_NACK].map((type) => ({
    description: `${MessageType[type]} to the cluster MAC rings, cut to ${DOORBELL_SNAP} bytes`,
    frame: () => controlMessage(CLUSTER_MAC, type),
    verdict: DOORBELL_SNAP,
  })),
  { description: 'a LEAVE to our MAC rings', frame: () => controlMessage(NODE_MAC, MessageType.LEAVE), verdict: DOORBELL_SNAP },
  { description: 'a LEAVE to another node does not', frame: () => controlMessage(OTHER_NODE, MessageType.LEAVE), verdict: 0 },
  { description: 'a HEARTBEAT to our MAC does not', frame: () => controlMessage(NODE_MAC, MessageType.HEARTBEAT), verdict: 0 },
  { description: 'a HEARTBEAT announcing a weight (FLAG_WAKE) rings: every member holds the flows it moves from the same moment', frame: () => controlMessage(CLUSTER_MAC, MessageType.HEARTBEAT, (FLAG_WAKE | FLAG_AUTHENTICATED) >>> 0), verdict: DOORBELL_SNAP },
  { description: 'a HEARTBEAT with other flags (joined, signed) but not FLAG_WAKE does not', frame: () => controlMessage(CLUSTER_MAC, MessageType.HEARTBEAT, (0x1 | FLAG_AUTHENTICATED) >>> 0), verdict: 0 },
  { description: 'IPv4 to the cluster MAC does not', frame: () => ipv4Frame({ dst: CLUSTER_MAC }), verdict: 0 },
  { description: 'a control frame cut before its type does not (the control socket reads and counts it)', frame: () => controlMessage(CLUSTER_MAC, MessageType.LEAVE), len: 20, verdict: 0 },
];

for (const c of doorbellCases) {
  test(`controlDoorbellFilter: ${c.description}`, (t) => {
    const f = c.frame();
    t.is(runBpf(doorbell, f, c.len ?? f.length), c.verdict);
  });
}

test('the filters are valid kernel programs: 4 words per instruction, forward jumps, ending in ret', (t) => {
  for (const p of [data, data6, control, doorbell, dataFilter(clusterMacMulticast(VIP))]) {
    t.is(validateBpf(p), null);
    t.is(p.length % 4, 0);
    t.is(p[p.length - 4]! & 7, BPF_RET);
  }
  t.is(runBpf(dataFilter(clusterMacMulticast(VIP)), ipv4Frame({ dst: clusterMacMulticast(VIP) }), 54), BPF_ACCEPT);
  t.is(BPF_ACCEPT, 0x40000);
});

function prog(...insns: Array<[number, number, number, number]>): Uint32Array {
  return Uint32Array.from(insns.flat());
}

test('runBpf interprets the classic instruction set', (t) => {
  // UDP destination port via ldx msh (IP header length) and an indirect load, like tcpdump.
  const udpDport = prog(
    [BPF_LD | BPF_H | BPF_ABS, 0, 0, 12],
    [BPF_JMP | BPF_JEQ | BPF_K, 0, 6, ETH_P_IP],
    [BPF_LD | BPF_B | BPF_ABS, 0, 0, 23],
    [BPF_JMP | BPF_JEQ | BPF_K, 0, 4, IPPROTO_UDP],
    [BPF_LDX | BPF_B | BPF_MSH, 0, 0, 14],
    [BPF_LD | BPF_H | BPF_IND, 0, 0, 16],
    [BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 5353],
    [BPF_RET | BPF_K, 0, 0, 0xffff],
    [BPF_RET | BPF_K, 0, 0, 0],
  );
  t.is(validateBpf(udpDport), null);
  t.is(runBpf(udpDport, ipv4Frame({ protocol: IPPROTO_UDP, dport: 5353, options: 4 }), 62), 0xffff);
  t.is(runBpf(udpDport, ipv4Frame({ protocol: IPPROTO_UDP, dport: 5354, options: 4 }), 62), 0);
  t.is(runBpf(udpDport, ipv4Frame({ dport: 5353 }), 54), 0, 'TCP');

  // ret A = frame length + 1, through scratch memory, alu and txa.
  const lenPlusOne = prog(
    [BPF_LD | BPF_W | BPF_LEN, 0, 0, 0],
    [BPF_ST, 0, 0, 3],
    [BPF_LDX | BPF_W | BPF_MEM, 0, 0, 3],
    [BPF_MISC | BPF_TXA, 0, 0, 0],
    [BPF_ALU | BPF_ADD | BPF_K, 0, 0, 1],
    [BPF_RET | BPF_A, 0, 0, 0],
  );
  t.is(runBpf(lenPlusOne, new Uint8Array(100), 77), 78);

  // jgt / jset on the first byte.
  const bits = prog(
    [BPF_LD | BPF_B | BPF_ABS, 0, 0, 0],
    [BPF_JMP | BPF_JSET | BPF_K, 2, 0, 0x01],
    [BPF_JMP | BPF_JGT | BPF_K, 0, 2, 0x80],
    [BPF_RET | BPF_K, 0, 0, 2],
    [BPF_RET | BPF_K, 0, 0, 1],
    [BPF_RET | BPF_K, 0, 0, 3],
  );
  t.is(runBpf(bits, Uint8Array.from([0x81]), 1), 1, 'multicast bit set');
  t.is(runBpf(bits, Uint8Array.from([0x82]), 1), 2, '> 0x80, even');
  t.is(runBpf(bits, Uint8Array.from([0x02]), 1), 3, 'small, even');

  // A load past the end of the frame ends the program with 0, as in the kernel.
  t.is(runBpf(prog([BPF_LD | BPF_W | BPF_ABS, 0, 0, 8], [BPF_RET | BPF_K, 0, 0, 9]), new Uint8Array(20), 11), 0);
  t.is(runBpf(prog([BPF_LD | BPF_W | BPF_ABS, 0, 0, 8], [BPF_RET | BPF_K, 0, 0, 9]), new Uint8Array(20), 12), 9);
  // A division by X = 0 also ends with 0.
  t.is(runBpf(prog([BPF_ALU | 0x30 | BPF_X, 0, 0, 0], [BPF_RET | BPF_K, 0, 0, 9]), new Uint8Array(1), 1), 0);
});

test('validateBpf and runBpf refuse programs the kernel would refuse', (t) => {
  t.not(validateBpf(new Uint32Array(0)), null);
  t.not(validateBpf(prog([BPF_LD | BPF_W | BPF_ABS, 0, 0, 0])), null, 'no final ret');
  t.not(validateBpf(prog([BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 0], [BPF_RET | BPF_K, 0, 0, 0])), null, 'jump out of range');
  t.not(validateBpf(prog([BPF_ST, 0, 0, 16], [BPF_RET | BPF_K, 0, 0, 0])), null, 'scratch index 16');
  t.not(validateBpf(prog([BPF_ALU | 0x30 | BPF_K, 0, 0, 0], [BPF_RET | BPF_K, 0, 0, 0])), null, 'constant division by zero');
  t.throws(() => runBpf(prog([BPF_LD | BPF_W | BPF_ABS, 0, 0, 0]), new Uint8Array(4), 4), { instanceOf: RangeError });
});

test('validateBpf refuses what the kernel refuses: a load from scratch memory reached through a ret\'s fall-through', (t) => {
  // ld #5; jeq #9 → (ret #0); st M[1]; jeq → (ld M[1]); ret #1; ret #0; ld M[1]; ret a. Every real
  // path to the load stores M[1] first, but the kernel reads the program in one pass, carries
  // what reached the ret #0 (nothing stored) into the next instruction, and refuses it with
  // EINVAL (seen: the bucket filter's first layout).
  const J = BPF_JMP | BPF_JEQ | BPF_K;
  const overRets = Uint32Array.from([0x00, 0, 0, 5, J, 3, 0, 9, BPF_ST, 0, 0, 1, J, 2, 2, 0, BPF_RET | BPF_K, 0, 0, 1, BPF_RET | BPF_K, 0, 0, 0, BPF_LD | BPF_MEM, 0, 0, 1, BPF_RET | BPF_A, 0, 0, 0]);
  t.regex(validateBpf(overRets) ?? '', /instruction 6: loads scratch slot 1/);
  const neverStored = Uint32Array.from([BPF_LD | BPF_MEM, 0, 0, 2, BPF_RET | BPF_A, 0, 0, 0]);
  t.regex(validateBpf(neverStored) ?? '', /scratch slot 2/);
  const stored = Uint32Array.from([0x00, 0, 0, 5, BPF_ST, 0, 0, 2, BPF_LD | BPF_MEM, 0, 0, 2, BPF_RET | BPF_A, 0, 0, 0]);
  t.is(validateBpf(stored), null);
  t.is(runBpf(stored, new Uint8Array(14), 14), 5);
});
