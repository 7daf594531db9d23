/**
 * The data socket's filter when ownership can be told from the election hash alone: the
 * kernel drops every frame for the VIP whose key this node neither owns nor still drains,
 * before it is copied to userspace, as xt_cluster does in netfilter and Windows NLB in its
 * driver. A node of N then pays for about 1/N of the frames.
 *
 * The program computes what the actor would: the rule's election input (the source, the
 * source /24, or with affinity none the handler's key), its election hash (hash.ts: keyed
 * HalfSipHash-1-3 in a cluster with a key, the unkeyed murmur mix without), then either the
 * bucket (--election bucket: the top bits, looked up in 32 masks of 32 bits through a
 * five-level tree, so the length does not depend on which buckets pass: about 850 instructions
 * keyed, 350 unkeyed) or LNLB's walk (--election lnlb: hash mod the sum of the shares, within
 * the node's ranges: about 570 keyed). The default rendezvous election cannot be filtered
 * (OwnedKeys). Far under the kernel's 4096 either way.
 *
 * What it cannot compute it passes, and userspace decides as without a filter: frames that
 * are not well-formed IPv4 (userspace counts them), and under affinity none the protocols
 * whose handler is not built in (their key is the handler's own). ARP requests for the VIP
 * pass (the dispatcher answers them), no other ARP frame: on a LAN where each node's stack
 * asks for the clients it answers, those broadcasts were a tenth of what a node of three read
 * (measured in test/integration/kernel-filter.test.ts). Control frames do not pass (the control
 * socket reads them); frames to another address than the VIP do not.
 *
 * It knows one rule: the default, elected over every member. Port rules (a rule per
 * destination port, each with its own affinity and election) are not in the program: a
 * cluster with them keeps the plain dataFilter.
 */

import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6 } from './ethernet.js';
import { IPV6_IDENTITY_BASE, IPV6_IDENTITY_MASK, UNKEYED_FOLD_SEED } from './ipv6.js';
import { mix32 as mix32Number } from './bytes.js';
import { multicastMac, solicitedNodeAddress } from './ndp.js';
import {
  assemble,
  BPF_ABS,
  BPF_ACCEPT,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_B,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JEQ,
  BPF_JGE,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_LSH,
  BPF_MEM,
  BPF_MISC,
  BPF_MOD,
  BPF_MSH,
  BPF_MUL,
  BPF_OR,
  BPF_REJECT,
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_TAX,
  BPF_TXA,
  BPF_W,
  BPF_X,
  BPF_XOR,
  checkMac,
  dstIs,
  ja,
  type Insn,
} from './bpf.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** The bytes a handler needs past the IP header to key by ports (tcp.ts, udp.ts). */
const TCP_KEY_HEADER_BYTES = 14;
const UDP_KEY_HEADER_BYTES = 8;
const NETWORK_MASK = 0xffffff00;
const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const IPPROTO_ICMPV6 = 58;
const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;

export type FilterAffinity = 'single' | 'network' | 'none';

/**
 * The keys a node takes, by election hash:
 * - buckets (--election bucket): bit b % 32 of word b >> 5 of `pass` set: bucket b passes
 *   (owned or drained). Its length sets the number of buckets (a power of two, 32 to 1024:
 *   cluster/buckets.ts has 1024); a key's bucket is the top bits of its hash.
 * - shares (--election lnlb, LNLB's walk): hash mod `total` falls in one of `ranges`,
 *   [from, to) each, sorted (a node's own share, and those it drains).
 * Rendezvous per key (the default election) cannot be filtered: it scores every member with a
 * logarithm, and cBPF has no floating point.
 */
export type OwnedKeys = { kind: 'buckets'; pass: Uint32Array } | { kind: 'shares'; total: number; ranges: readonly (readonly [number, number])[] };

/** More ranges than this and a node's shares are better told as buckets. */
export const MAX_SHARE_RANGES = 64;

export interface BucketFilterSpec {
  /** Frames to another MAC are not ours. */
  clusterMac: Uint8Array;
  /** The IPv4 VIP (host order u32; 0: none). */
  vip: number;
  /** The IPv6 VIP, or undefined: IPv6 frames do not pass. */
  vip6?: Uint8Array | undefined;
  /** The election key (hash.ts deriveElectionKey), or undefined in a cluster without a key. */
  electionKey: Uint32Array | undefined;
  affinity: FilterAffinity;
  /** Which keys pass, by their election hash: see OwnedKeys. */
  owned: OwnedKeys;
  /** Affinity none: IP protocols whose handler is not built in (their key is passed to userspace to compute). */
  opaqueProtocols?: readonly number[];
  /**
   * --vlan: the host resolves its neighbours through the cluster interface, so ARP replies and
   * IPv6 neighbour advertisements to the cluster MAC pass too (the dispatcher hands them to it).
   */
  hostNeighbours?: boolean;
}

const ld = (size: number, k: number): Insn => ({ code: BPF_LD | size | BPF_ABS, k });
const ldImm = (k: number): Insn => ({ code: BPF_LD | BPF_IMM, k });
const ldMem = (k: number): Insn => ({ code: BPF_LD | BPF_MEM, k });
const st = (k: number): Insn => ({ code: BPF_ST, k });
const alu = (op: number, k: number): Insn => ({ code: BPF_ALU | op | BPF_K, k });
const aluX = (op: number): Insn => ({ code: BPF_ALU | op | BPF_X, k: 0 });
const tax: Insn = { code: BPF_MISC | BPF_TAX, k: 0 };
const txa: Insn = { code: BPF_MISC | BPF_TXA, k: 0 };
const ret = (k: number, label?: string): Insn => (label === undefined ? { code: BPF_RET | BPF_K, k } : { code: BPF_RET | BPF_K, k, label });
const jeq = (k: number, jt?: string, jf?: string): Insn => ({ code: BPF_JMP | BPF_JEQ | BPF_K, k, ...(jt ? { jt } : {}), ...(jf ? { jf } : {}) });

/** A = mix32(A) (hash.ts): murmur3's finalizer, with X as the scratch register. */
function mix32(): Insn[] {
  return [tax, alu(BPF_RSH, 16), aluX(BPF_XOR), alu(BPF_MUL, 0x85ebca6b), tax, alu(BPF_RSH, 13), aluX(BPF_XOR), alu(BPF_MUL, 0xc2b2ae35), tax, alu(BPF_RSH, 16), aluX(BPF_XOR)];
}

// HalfSipHash state in scratch memory.
const V0 = 0;
const V1 = 1;
const V2 = 2;
const V3 = 3;
const LO = 4;
const HI = 5;

/** M[to] += M[from] */
function addInto(to: number, from: number): Insn[] {
  return [ldMem(from), tax, ldMem(to), aluX(BPF_ADD), st(to)];
}
/** M[to] ^= M[from] */
function xorInto(to: number, from: number): Insn[] {
  return [ldMem(from), tax, ldMem(to), aluX(BPF_XOR), st(to)];
}
/** M[v] = rotl(M[v], r) */
function rotl(v: number, r: number): Insn[] {
  return [ldMem(v), alu(BPF_LSH, r), tax, ldMem(v), alu(BPF_RSH, 32 - r), aluX(BPF_OR), st(v)];
}
/** One SipRound of HalfSipHash (hash.ts halfSipHash8). */
function sipRound(): Insn[] {
  return [
    ...addInto(V0, V1), ...rotl(V1, 5), ...xorInto(V1, V0), ...rotl(V0, 16),
    ...addInto(V2, V3), ...rotl(V3, 8), ...xorInto(V3, V2),
    ...addInto(V0, V3), ...rotl(V3, 7), ...xorInto(V3, V0),
    ...addInto(V2, V1), ...rotl(V1, 13), ...xorInto(V1, V2), ...rotl(V2, 16),
  ];
}
/** M[v] ^= k */
function xorK(v: number, k: number): Insn[] {
  return [ldMem(v), alu(BPF_XOR, k), st(v)];
}

/** A = keyedElectionHash(k0, k1, M[LO], M[HI]): HalfSipHash-1-3 of the two words. */
function keyedHash(k0: number, k1: number): Insn[] {
  const out: Insn[] = [ldImm(k0), st(V0), ldImm(k1), st(V1), ldImm((0x6c796765 ^ k0) >>> 0), st(V2), ldImm((0x74656462 ^ k1) >>> 0), st(V3)];
  for (const m of [LO, HI]) out.push(...xorInto(V3, m), ...sipRound(), ...xorInto(V0, m));
  out.push(...xorK(V3, (8 << 24) >>> 0), ...sipRound(), ...xorK(V0, (8 << 24) >>> 0));
  out.push(...xorK(V2, 0xff), ...sipRound(), ...sipRound(), ...sipRound());
  out.push(ldMem(V3), tax, ldMem(V1), aluX(BPF_XOR));
  return out;
}

/** A = electionHash(M[LO], M[HI]) = mix32(lo ^ mix32(hi ^ 0x9e3779b9)). */
function unkeyedHash(): Insn[] {
  return [ldMem(HI), alu(BPF_XOR, 0x9e3779b9), ...mix32(), tax, ldMem(LO), aluX(BPF_XOR), ...mix32()];
}

/**
 * A holds the bucket: pass if its bit is set. A tree on the top five bits picks one of 32
 * masks (every jump short), the low five bits shift it. No scratch memory here: the kernel
 * checks loads from it in one linear pass that does not know a ret never falls through.
 */
function bucketLookup(pass: Uint32Array): Insn[] {
  const groups = pass.length;
  let n = 0;
  const leaf = (group: number): Insn[] => {
    const mask = pass[group]! >>> 0;
    if (mask === 0) return [ret(BPF_REJECT)];
    if (mask === 0xffffffff) return [ret(BPF_ACCEPT)];
    return [txa, alu(BPF_AND, 31), tax, ldImm(mask), aluX(BPF_RSH), { code: BPF_JMP | BPF_JSET | BPF_K, k: 1, jf: `r${group}` }, ret(BPF_ACCEPT), ret(BPF_REJECT, `r${group}`)];
  };
  const tree = (from: number, to: number): Insn[] => {
    if (to - from === 1) return leaf(from);
    const mid = (from + to) >> 1;
    const right = `g${n++}`;
    const rightTree = tree(mid, to);
    rightTree[0] = { ...rightTree[0]!, label: right };
    return [{ code: BPF_JMP | BPF_JGE | BPF_K, k: mid, jt: right }, ...tree(from, mid), ...rightTree];
  };
  // X = the bucket, A = its top five bits.
  return [tax, alu(BPF_RSH, 5), ...tree(0, groups)];
}

/** Jumps to `label` whatever A holds (cBPF's ja takes an offset, not a label). */
const goTo = (label: string): Insn => ({ code: BPF_JMP | BPF_JEQ | BPF_K, k: 0, jt: label, jf: label });

/**
 * M[HI] = the ports word of a TCP or UDP datagram that is not a fragment and is long enough to
 * key (ports.ts writePortKey), else 0: exactly the handler's keyHi. Then on to `done`.
 */
function portsWord(entry: string, headerBytes: number, done: string): Insn[] {
  return [
    // X = the IP header's length; a fragment (MF or an offset) has no ports for the handler.
    { code: BPF_LDX | BPF_B | BPF_MSH, k: 14, label: entry },
    ld(BPF_H, 20),
    { code: BPF_JMP | BPF_JSET | BPF_K, k: 0x3fff, jt: done },
    // ihl*4 + headerBytes within the IP datagram's total length...
    txa,
    alu(BPF_ADD, headerBytes),
    tax,
    ld(BPF_H, 16),
    { code: BPF_JMP | BPF_JGE | BPF_X, k: 0, jf: done },
    // ...and within the frame (the Ethernet header's 14 bytes before it).
    txa,
    alu(BPF_ADD, 14),
    tax,
    { code: BPF_LD | BPF_W | BPF_LEN, k: 0 },
    { code: BPF_JMP | BPF_JGE | BPF_X, k: 0, jf: done },
    { code: BPF_LDX | BPF_B | BPF_MSH, k: 14 },
    { code: BPF_LD | BPF_W | BPF_IND, k: 14 },
    st(HI),
    goTo(done),
  ];
}

/** The lookup's tree jumps over half its leaves (8 instructions each): 32 masks keep every jump under 256. */
export const MAX_PASS_WORDS = 32;

/** More than this many opaque protocols and the filter would be mostly jumps: the caller keeps the plain filter. */
export const MAX_OPAQUE_PROTOCOLS = 32;

/** A holds the election hash: pass if hash mod total falls in a range (LNLB's walk). */
function shareLookup(total: number, ranges: readonly (readonly [number, number])[]): Insn[] {
  const out: Insn[] = [alu(BPF_MOD, total)];
  ranges.forEach(([from, to]) => {
    // Below `from`: not this range (nor a later one: they are sorted); below `to`: in it.
    out.push({ code: BPF_JMP | BPF_JGE | BPF_K, k: from, jf: 'out' }, { code: BPF_JMP | BPF_JGE | BPF_K, k: to, jf: 'in' });
  });
  out.push(ret(BPF_REJECT, 'out'), ret(BPF_ACCEPT, 'in'));
  return out;
}

function checkOwned(owned: OwnedKeys): void {
  if (owned.kind === 'buckets') {
    const words = owned.pass instanceof Uint32Array ? owned.pass.length : 0;
    if (words < 1 || words > MAX_PASS_WORDS || (words & (words - 1)) !== 0) throw new RangeError(`owned buckets must be a Uint32Array of 1 to ${MAX_PASS_WORDS} words, a power of two (32 buckets a word)`);
    return;
  }
  const { total, ranges } = owned;
  if (!Number.isInteger(total) || total < 1 || total > 0xffffffff) throw new RangeError(`owned shares: total must be a u32 above 0, got ${total}`);
  if (ranges.length > MAX_SHARE_RANGES) throw new RangeError(`owned shares: at most ${MAX_SHARE_RANGES} ranges, got ${ranges.length}`);
  let last = 0;
  for (const [from, to] of ranges) {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < last || to <= from || to > total) throw new RangeError(`owned shares: ranges must be sorted, disjoint, non-empty and within [0, ${total}): got [${from}, ${to})`);
    last = to;
  }
}

/** M[v] ^= the packet's word at `offset`. */
function xorPacket(v: number, offset: number): Insn[] {
  return [ld(BPF_W, offset), tax, ldMem(v), aluX(BPF_XOR), st(v)];
}

/** Offsets of the IPv6 source and destination in the frame (Ethernet header, then 8 bytes of the IPv6 header). */
const IPV6_SRC = 22;
const IPV6_DST = 38;
/** The transport header of an IPv6 packet without extension headers. */
const IPV6_L4 = 54;
const IPPROTO_HOPOPTS = 0;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_AH = 51;
const IPPROTO_DSTOPTS = 60;

/**
 * M[LO] = the identity of the IPv6 source (hash.ts ipv6Identity), or of its /64 (`network`):
 * HalfSipHash-1-3 of its 16 bytes under the election key, or the unkeyed chain of murmur
 * mixes, placed in 224.0.0.0/3.
 */
function ipv6IdentityInsns(key: Uint32Array | undefined, network: boolean): Insn[] {
  const out: Insn[] = [];
  if (key === undefined) {
    // mix32(m0 ^ mix32(m1 ^ mix32(m2 ^ mix32(m3 ^ C)))): for a /64, m2 = m3 = 0 and the inner two are a constant.
    if (network) out.push(ldImm(mix32Number(mix32Number(UNKEYED_FOLD_SEED))));
    else out.push(ld(BPF_W, IPV6_SRC + 12), alu(BPF_XOR, UNKEYED_FOLD_SEED), ...mix32(), tax, ld(BPF_W, IPV6_SRC + 8), aluX(BPF_XOR), ...mix32());
    out.push(tax, ld(BPF_W, IPV6_SRC + 4), aluX(BPF_XOR), ...mix32(), tax, ld(BPF_W, IPV6_SRC), aluX(BPF_XOR), ...mix32());
  } else {
    const k0 = key[0]! >>> 0;
    const k1 = key[1]! >>> 0;
    out.push(ldImm(k0), st(V0), ldImm(k1), st(V1), ldImm((0x6c796765 ^ k0) >>> 0), st(V2), ldImm((0x74656462 ^ k1) >>> 0), st(V3));
    for (let w = 0; w < 4; w++) {
      // A /64's interface identifier is zero: xor with it changes nothing.
      if (network && w >= 2) out.push(...sipRound());
      else out.push(...xorPacket(V3, IPV6_SRC + 4 * w), ...sipRound(), ...xorPacket(V0, IPV6_SRC + 4 * w));
    }
    out.push(...xorK(V3, (16 << 24) >>> 0), ...sipRound(), ...xorK(V0, (16 << 24) >>> 0));
    out.push(...xorK(V2, 0xff), ...sipRound(), ...sipRound(), ...sipRound());
    out.push(ldMem(V3), tax, ldMem(V1), aluX(BPF_XOR));
  }
  out.push(alu(BPF_AND, IPV6_IDENTITY_MASK), alu(BPF_OR, IPV6_IDENTITY_BASE), st(LO));
  return out;
}


/**
 * M[HI] = the ports word of an IPv6 TCP or UDP packet whose transport header follows the fixed
 * header (no extension header: the verdicts sent those to userspace, a fragment header keeps
 * HI 0) and holds `headerBytes` within the payload and the frame. Then on to `done`.
 */
function ipv6PortsWord(entry: string, headerBytes: number, done: string): Insn[] {
  return [
    { ...ld(BPF_H, 18), label: entry },
    { code: BPF_JMP | BPF_JGE | BPF_K, k: headerBytes, jf: done },
    { code: BPF_LD | BPF_W | BPF_LEN, k: 0 },
    { code: BPF_JMP | BPF_JGE | BPF_K, k: IPV6_L4 + headerBytes, jf: done },
    ld(BPF_W, IPV6_L4),
    st(HI),
    goTo(done),
  ];
}

/**
 * The IPv6 half of the program, entered at `v6` with nothing in scratch memory and left at
 * `hash` with M[LO] and M[HI] set: the frame to the cluster MAC (else: to the VIP's
 * solicited-node group, a neighbour solicitation the dispatcher answers, passed), version 6
 * (else passed: userspace counts it), to the VIP (else dropped); under affinity none, a
 * packet with extension headers before its transport header is passed (the program does not
 * walk them), as are the protocols whose handler is not built in.
 */
function ipv6Half(spec: BucketFilterSpec, vip6: Uint8Array, opaque: readonly number[]): Insn[] {
  const word = (i: number): number => ((vip6[i]! << 24) | (vip6[i + 1]! << 16) | (vip6[i + 2]! << 8) | vip6[i + 3]!) >>> 0;
  const out: Insn[] = [
    ...dstIs(spec.clusterMac, 'v6ip', 'v6ns', 'v6'),
    ...dstIs(multicastMac(solicitedNodeAddress(vip6)), 'accept6', 'reject6', 'v6ns'),
    { ...ld(BPF_B, 14), label: 'v6ip' },
    alu(BPF_AND, 0xf0),
    jeq(0x60, undefined, 'accept6'),
    // --vlan: an advertisement straight after the header, to the host's own solicitation.
    ...(spec.hostNeighbours === true ? [ld(BPF_B, 20), jeq(IPPROTO_ICMPV6, undefined, 'v6dst'), ld(BPF_B, IPV6_L4), jeq(ICMPV6_NEIGHBOR_ADVERTISEMENT, 'accept6', 'v6dst'), { ...ld(BPF_W, IPV6_DST), label: 'v6dst' }] : [ld(BPF_W, IPV6_DST)]),
    jeq(word(0), undefined, 'reject6'),
    ld(BPF_W, IPV6_DST + 4),
    jeq(word(4), undefined, 'reject6'),
    ld(BPF_W, IPV6_DST + 8),
    jeq(word(8), undefined, 'reject6'),
    ld(BPF_W, IPV6_DST + 12),
    jeq(word(12), undefined, 'reject6'),
  ];
  if (spec.affinity === 'none') {
    out.push(ld(BPF_B, 20));
    // A fragment's protocol is in its fragment header: with handlers of their own about, userspace reads it.
    const walked = [IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_AH, ...(opaque.length > 0 ? [IPPROTO_FRAGMENT] : [])];
    for (const p of [...walked, ...opaque]) out.push(jeq(p, 'accept6'));
  }
  out.push(goTo('key6'), ret(BPF_ACCEPT, 'accept6'), ret(BPF_REJECT, 'reject6'));
  const identity = ipv6IdentityInsns(spec.electionKey, spec.affinity === 'network');
  identity[0] = { ...identity[0]!, label: 'key6' };
  out.push(...identity, ldImm(0), st(HI));
  if (spec.affinity === 'none') {
    out.push(ld(BPF_B, 20), jeq(IPPROTO_TCP, 'tcp6'), jeq(IPPROTO_UDP, 'udp6'), goTo('hash'));
    out.push(...ipv6PortsWord('tcp6', TCP_KEY_HEADER_BYTES, 'hash'), ...ipv6PortsWord('udp6', UDP_KEY_HEADER_BYTES, 'hash'));
  }
  return out;
}

/** The filter program; throws RangeError on a malformed spec. */
export function bucketFilter(spec: BucketFilterSpec): Uint32Array {
  checkMac('clusterMac', spec.clusterMac);
  checkOwned(spec.owned);
  if (spec.electionKey !== undefined && spec.electionKey.length !== 2) throw new RangeError('electionKey must be two u32 words');
  const vip6 = spec.vip6;
  if (vip6 !== undefined && !(vip6 instanceof Uint8Array && vip6.length === 16)) throw new RangeError('vip6 must be 16 bytes');
  const insns: Insn[] = [
    ld(BPF_H, 12),
    // IPv6 first, by a jump over the whole IPv4 half (ipv6Half).
    ...(vip6 === undefined ? [] : [jeq(ETH_P_IPV6, undefined, 'notv6'), ja('v6')]),
    { ...jeq(ETH_P_ARP, 'arp'), label: 'notv6' },
    jeq(ETH_P_IP, undefined, 'reject'),
    ...dstIs(spec.clusterMac, 'ip', 'reject'),
    // Version 4 and a header of 20 bytes or more, else userspace counts it as malformed.
    { ...ld(BPF_B, 14), label: 'ip' },
    tax,
    alu(BPF_AND, 0xf0),
    jeq(0x40, undefined, 'accept'),
    txa,
    alu(BPF_AND, 0x0f),
    { code: BPF_JMP | BPF_JGE | BPF_K, k: 5, jf: 'accept' },
    ld(BPF_W, 30),
    jeq(spec.vip >>> 0, undefined, 'reject'),
    goTo('l4'),
    // ARP: a request (opcode 1) whose target protocol address is the VIP (--vlan: and a reply to the cluster MAC).
    { ...ld(BPF_H, 20), label: 'arp' },
    ...(spec.hostNeighbours === true ? [jeq(ARP_REPLY, undefined, 'arpreq'), ...dstIs(spec.clusterMac, 'accept', 'reject'), { ...ld(BPF_H, 20), label: 'arpreq' }] : []),
    jeq(ARP_REQUEST, undefined, 'reject'),
    ld(BPF_W, 38),
    jeq(spec.vip >>> 0, 'accept', 'reject'),
    { ...ld(BPF_B, 23), label: 'l4' },
  ];
  const opaque = [...new Set(spec.opaqueProtocols ?? [])].filter((p) => p !== IPPROTO_TCP && p !== IPPROTO_UDP);
  if (spec.affinity === 'none' && opaque.length > 0) {
    if (opaque.length > MAX_OPAQUE_PROTOCOLS) throw new RangeError(`at most ${MAX_OPAQUE_PROTOCOLS} protocols with handlers of their own, got ${opaque.length}`);
    for (const p of opaque) insns.push(jeq(p, 'accept'));
  }
  // The verdicts of the checks above sit here: cBPF jumps go forward, 255 at most. Scratch
  // memory is written only after them (the kernel's check of loads from it reads the program
  // in one linear pass, and takes a ret's "fall-through" as a path where nothing was stored).
  insns.push(goTo('key'), ret(BPF_ACCEPT, 'accept'), ret(BPF_REJECT, 'reject'));
  insns.push({ ...ld(BPF_W, 26), label: 'key' }, ...(spec.affinity === 'network' ? [alu(BPF_AND, NETWORK_MASK)] : []), st(LO), ldImm(0), st(HI));
  if (spec.affinity === 'none') {
    insns.push(ld(BPF_B, 23), jeq(IPPROTO_TCP, 'tcp'), jeq(IPPROTO_UDP, 'udp'), goTo('v4key'));
    insns.push(...portsWord('tcp', TCP_KEY_HEADER_BYTES, 'v4key'), ...portsWord('udp', UDP_KEY_HEADER_BYTES, 'v4key'));
  }
  if (vip6 !== undefined) insns.push({ ...ja('hash'), label: 'v4key' }, ...ipv6Half(spec, vip6, spec.affinity === 'none' ? opaque : []));
  else if (spec.affinity === 'none') insns.push({ ...ja('hash'), label: 'v4key' });
  const hash = spec.electionKey === undefined ? unkeyedHash() : keyedHash(spec.electionKey[0]! >>> 0, spec.electionKey[1]! >>> 0);
  hash[0] = { ...hash[0]!, label: 'hash' };
  const owned = spec.owned;
  if (owned.kind === 'buckets') insns.push(...hash, alu(BPF_RSH, 32 - Math.log2(owned.pass.length * 32)), ...bucketLookup(owned.pass));
  else insns.push(...hash, ...shareLookup(owned.total, owned.ranges));
  return assemble(insns);
}
