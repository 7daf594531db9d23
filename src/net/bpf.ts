/**
 * Classic BPF (the `SO_ATTACH_FILTER` dialect of AF_PACKET sockets): opcode constants, the two
 * filters the node attaches, and `runBpf`, a small interpreter so the programs are tested
 * against frames without a kernel.
 *
 * A program is a Uint32Array of 4 words per instruction: code, jt, jf, k (the native port packs
 * them into `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`). Jump offsets count
 * instructions after the next one, as in the kernel. The filters run on the frame from its
 * Ethernet header (the virtio-net header of PACKET_VNET_HDR is not part of what they see).
 */
import { FLAG_WAKE, MessageType, MSG_OFF_FLAGS, MSG_OFF_TYPE } from './cluster-message.js';
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_P_LNLB } from './ethernet.js';

// Instruction classes.
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
// ld/ldx sizes.
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
// ld/ldx modes.
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
// alu/jmp operations.
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
// Operand source.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
// ret operand.
export const BPF_A = 0x10;
// misc.
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;
/** Scratch memory slots M[0..15]. */
export const BPF_MEMWORDS = 16;
/** Longest program the kernel accepts. */
export const BPF_MAXINSNS = 4096;

/** Accept verdict of our filters: snap length 256 KiB (GSO frames can be 64 KiB and more). */
export const BPF_ACCEPT = 0x40000;
export const BPF_REJECT = 0;

/** One instruction before label resolution: jumps name labels. */
export interface Insn {
  code: number;
  k: number;
  jt?: string;
  jf?: string;
  label?: string;
}

/**
 * Assembles instructions whose conditional jumps name labels (`undefined` = fall through to
 * the next instruction) into the 4-words-per-instruction form. Forward jumps only, as the
 * kernel requires. A conditional jump reaches 255 instructions; `ja` (BPF_JMP | BPF_JA with its
 * label in `jt`) any distance.
 */
export function assemble(insns: Insn[]): Uint32Array {
  const at = new Map<string, number>();
  insns.forEach((insn, i) => {
    if (insn.label !== undefined) at.set(insn.label, i);
  });
  const out = new Uint32Array(insns.length * 4);
  insns.forEach((insn, i) => {
    const rel = (label: string | undefined): number => {
      if (label === undefined) return 0;
      const target = at.get(label);
      if (target === undefined || target <= i || target - i - 1 > 255) throw new Error(`bpf: bad jump to ${label} at ${i}`);
      return target - i - 1;
    };
    out[i * 4] = insn.code;
    if (insn.code === (BPF_JMP | BPF_JA)) {
      const target = insn.jt === undefined ? undefined : at.get(insn.jt);
      if (target === undefined || target <= i) throw new Error(`bpf: bad ja to ${insn.jt} at ${i}`);
      out[i * 4 + 3] = target - i - 1;
      return;
    }
    out[i * 4 + 1] = rel(insn.jt);
    out[i * 4 + 2] = rel(insn.jf);
    out[i * 4 + 3] = insn.k >>> 0;
  });
  return out;
}

const LD_W_ABS = BPF_LD | BPF_W | BPF_ABS;
const LD_H_ABS = BPF_LD | BPF_H | BPF_ABS;
const JEQ_K = BPF_JMP | BPF_JEQ | BPF_K;
const JSET_K = BPF_JMP | BPF_JSET | BPF_K;
const RET_K = BPF_RET | BPF_K;

function macHi(mac: Uint8Array): number {
  return ((mac[0]! << 24) | (mac[1]! << 16) | (mac[2]! << 8) | mac[3]!) >>> 0;
}
function macLo(mac: Uint8Array): number {
  return (mac[4]! << 8) | mac[5]!;
}

/** An unconditional jump to `label`, any distance forward. */
export function ja(label: string): Insn {
  return { code: BPF_JMP | BPF_JA, k: 0, jt: label };
}

export function checkMac(name: string, mac: Uint8Array): void {
  if (!(mac instanceof Uint8Array) || mac.length < 6) throw new RangeError(`${name} must be a 6-byte Uint8Array`);
}

/**
 * "Destination MAC is `mac`": jumps to `yes` on a match, to `no` otherwise. Loads A.
 */
export function dstIs(mac: Uint8Array, yes: string, no: string, label?: string): Insn[] {
  const first: Insn = { code: LD_W_ABS, k: 0 };
  if (label !== undefined) first.label = label;
  return [
    first,
    { code: JEQ_K, k: macHi(mac), jf: no },
    { code: LD_H_ABS, k: 4 },
    { code: JEQ_K, k: macLo(mac), jt: yes, jf: no },
  ];
}

/**
 * Data socket filter: accepts IPv4 frames whose destination MAC is the cluster MAC, and every
 * ARP frame (requests for a VIP are broadcast). With an IPv6 VIP (`solicitedMac`, the MAC of
 * its solicited-node group: ndp.ts), IPv6 frames to the cluster MAC and to that group (where
 * neighbour solicitations for the VIP go) too. Of the control frames (ETH_P_LNLB) to the
 * cluster MAC, which the control socket reads, only the HEARTBEATs announcing a weight
 * (FLAG_WAKE): the actors see them in order with the clients' frames and hold the new flows
 * after them until the control plane has read them too (dispatcher-core.ts). Everything else
 * is rejected in the kernel.
 *
 *   ldh [12]; jeq #ARP -> accept; jeq #IP ? mac : (jeq #LNLB ? lnlb : (jeq #IPV6 ? mac6 : reject))
 *   mac:  ld [0]; jeq #mac[0..3] ? next : reject; ldh [4]; jeq #mac[4..5] ? accept : reject
 *   lnlb: the cluster MAC ? next : reject; ld [14 + 4]; jeq #HEARTBEAT ? next : reject;
 *         ld [14 + 12]; jset #FLAG_WAKE ? accept : reject
 *   mac6: the cluster MAC ? accept : (the solicited-node MAC ? accept : reject)
 */
export function dataFilter(clusterMac: Uint8Array, solicitedMac?: Uint8Array): Uint32Array {
  checkMac('clusterMac', clusterMac);
  if (solicitedMac !== undefined) checkMac('solicitedMac', solicitedMac);
  return assemble([
    { code: LD_H_ABS, k: 12 },
    { code: JEQ_K, k: ETH_P_ARP, jt: 'accept' },
    { code: JEQ_K, k: ETH_P_IP, jt: 'mac' },
    { code: JEQ_K, k: ETH_P_LNLB, jt: 'lnlb' },
    ...(solicitedMac === undefined
      ? [{ code: RET_K, k: BPF_REJECT }]
      : [{ code: JEQ_K, k: ETH_P_IPV6, jf: 'reject' }, ...dstIs(clusterMac, 'accept', 'ns'), ...dstIs(solicitedMac, 'accept', 'reject', 'ns')]),
    ...dstIs(clusterMac, 'heartbeat', 'reject', 'lnlb'),
    { code: LD_W_ABS, k: ETH_HLEN + MSG_OFF_TYPE, label: 'heartbeat' },
    { code: JEQ_K, k: MessageType.HEARTBEAT, jf: 'reject' },
    { code: LD_W_ABS, k: ETH_HLEN + MSG_OFF_FLAGS },
    { code: JSET_K, k: FLAG_WAKE, jt: 'accept', jf: 'reject' },
    ...dstIs(clusterMac, 'accept', 'reject', 'mac'),
    { code: RET_K, k: BPF_ACCEPT, label: 'accept' },
    { code: RET_K, k: BPF_REJECT, label: 'reject' },
  ]);
}

/**
 * Control socket filter: accepts ETH_P_LNLB frames addressed to the cluster MAC, to this
 * node's MAC, or to the broadcast address.
 */
export function controlFilter(localMac: Uint8Array, clusterMac: Uint8Array): Uint32Array {
  return controlProgram(localMac, clusterMac, [{ code: RET_K, k: BPF_ACCEPT, label: 'accept' }]);
}

/** What the doorbell keeps of a frame: its arrival is what counts (the control socket reads the frame). */
export const DOORBELL_SNAP = 64;

/**
 * The control socket's doorbell (workers/control-socket.ts): every frame controlFilter accepts
 * but a routine HEARTBEAT (one without FLAG_WAKE), cut to DOORBELL_SNAP bytes. A settled
 * control plane stops watching its socket and reads the heartbeats when its own timer wakes
 * it; anything else (a JOIN, a LEAVE, a state transfer, a weight announced) rings here and is
 * read at once, in order, from the control socket.
 *
 *   (controlFilter's checks) -> ld [14 + 4] (the message type); jeq #HEARTBEAT ? 1 : accept
 *   1: ld [14 + 12] (the flags); jset #FLAG_WAKE ? accept : reject
 */
export function controlDoorbellFilter(localMac: Uint8Array, clusterMac: Uint8Array): Uint32Array {
  return controlProgram(localMac, clusterMac, [
    { code: LD_W_ABS, k: ETH_HLEN + MSG_OFF_TYPE, label: 'accept' },
    { code: JEQ_K, k: MessageType.HEARTBEAT, jf: 'ring' },
    { code: LD_W_ABS, k: ETH_HLEN + MSG_OFF_FLAGS },
    { code: JSET_K, k: FLAG_WAKE, jf: 'reject' },
    { code: RET_K, k: DOORBELL_SNAP, label: 'ring' },
  ]);
}

/** LNLB's EtherType to the cluster MAC, to us or broadcast; then `accepted` (which starts at the label 'accept'). */
function controlProgram(localMac: Uint8Array, clusterMac: Uint8Array, accepted: Insn[]): Uint32Array {
  checkMac('localMac', localMac);
  checkMac('clusterMac', clusterMac);
  const broadcast = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  return assemble([
    { code: LD_H_ABS, k: 12 },
    { code: JEQ_K, k: ETH_P_LNLB, jf: 'reject' },
    ...dstIs(clusterMac, 'accept', 'local'),
    ...dstIs(localMac, 'accept', 'bcast', 'local'),
    ...dstIs(broadcast, 'accept', 'reject', 'bcast'),
    ...accepted,
    { code: RET_K, k: BPF_REJECT, label: 'reject' },
  ]);
}

/** The kernel's ancillary loads (linux/filter.h SKF_AD_*): an absolute load at SKF_AD_OFF + n reads skb metadata, not the frame. */
export const SKF_AD_OFF = 0xfffff000;
export const SKF_AD_VLAN_TAG = 44;
export const SKF_AD_VLAN_TAG_PRESENT = 48;
/** The largest VLAN id (4095 is reserved). */
export const MAX_VLAN_ID = 4094;

/**
 * `program` behind a guard on the frame's 802.1Q tag, which the kernel has already taken off
 * the frame into the socket buffer (so the program reads it with the ancillary loads): `vlan`
 * 0 passes untagged and priority-tagged frames only, any other id frames tagged with that id
 * only. A cluster on a trunk thus reads its own VLAN, and one on an untagged port (or a VLAN
 * device) none of the tagged frames a trunk would bring.
 *
 *   0: ld vlan_avail; 1: jeq #0 ? (vlan 0: body; else reject) : 2
 *   2: ld vlan_tci;   3: and #0xfff; 4: jeq #vlan ? body : reject
 *   5: ret #0 (reject); 6: body...
 */
export function withVlanGuard(program: Uint32Array, vlan: number): Uint32Array {
  if (!Number.isInteger(vlan) || vlan < 0 || vlan > MAX_VLAN_ID) throw new RangeError(`a VLAN id is 0 (untagged) to ${MAX_VLAN_ID}, got ${vlan}`);
  const guard = Uint32Array.of(
    LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT,
    JEQ_K, vlan === 0 ? 4 : 3, 0, 0,
    LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG,
    BPF_ALU | BPF_AND | BPF_K, 0, 0, 0xfff,
    JEQ_K, 1, 0, vlan,
    RET_K, 0, 0, BPF_REJECT,
  );
  const out = new Uint32Array(guard.length + program.length);
  out.set(guard);
  out.set(program, guard.length);
  return out;
}

/** What runBpf takes from the socket buffer rather than the frame: the 802.1Q TCI, when the frame came tagged. */
export interface BpfAuxData {
  vlanTci?: number;
}

/** Scratch memory of runBpf (reused: the interpreter is synchronous and not re-entered). */
const scratch = new Uint32Array(BPF_MEMWORDS);

/**
 * Checks what the kernel's sk_chk_filter checks: a non-empty program of at most 4096
 * instructions, known opcodes, jumps inside the program, scratch indices < 16, constant
 * division by zero refused, and a final ret. Returns null when valid, else the reason.
 */
export function validateBpf(program: Uint32Array): string | null {
  if (program.length === 0 || program.length % 4 !== 0) return 'program length is not a positive multiple of 4 words';
  const n = program.length >> 2;
  if (n > BPF_MAXINSNS) return `more than ${BPF_MAXINSNS} instructions`;
  for (let pc = 0; pc < n; pc++) {
    const code = program[pc * 4]!;
    const jt = program[pc * 4 + 1]!;
    const jf = program[pc * 4 + 2]!;
    const k = program[pc * 4 + 3]!;
    if (code > 0xffff || jt > 255 || jf > 255) return `instruction ${pc}: field out of range`;
    const cls = code & 7;
    if (cls === BPF_JMP) {
      const op = code & 0xf0;
      if (op === BPF_JA) {
        if (pc + 1 + k >= n) return `instruction ${pc}: jump out of the program`;
      } else if (op === BPF_JEQ || op === BPF_JGT || op === BPF_JGE || op === BPF_JSET) {
        if (pc + 1 + jt >= n || pc + 1 + jf >= n) return `instruction ${pc}: jump out of the program`;
      } else {
        return `instruction ${pc}: unknown jump 0x${code.toString(16)}`;
      }
    } else if (cls === BPF_ST || cls === BPF_STX || ((cls === BPF_LD || cls === BPF_LDX) && (code & 0xe0) === BPF_MEM)) {
      if (k >= BPF_MEMWORDS) return `instruction ${pc}: scratch index ${k}`;
    } else if (cls === BPF_ALU) {
      const op = code & 0xf0;
      if ((op === BPF_DIV || op === BPF_MOD) && (code & BPF_X) === 0 && k === 0) return `instruction ${pc}: division by zero`;
      if (op > BPF_XOR) return `instruction ${pc}: unknown alu op`;
    }
  }
  if ((program[(n - 1) * 4]! & 7) !== BPF_RET) return 'the last instruction is not a ret';
  return unstoredLoad(program, n);
}

/**
 * The kernel's check_load_and_stores (net/core/filter.c): a load from scratch memory needs a
 * store to that slot on every path to it. It reads the program once, in order: a jump hands
 * what is stored so far to its targets, and the instruction after a jump starts from
 * everything; a ret is not a jump, so the instruction after a ret starts from what the ret's
 * own paths stored. (A program that jumps over a ret to a load is refused with EINVAL.)
 */
function unstoredLoad(program: Uint32Array, n: number): string | null {
  const masks = new Uint16Array(n).fill(0xffff);
  let valid = 0;
  for (let pc = 0; pc < n; pc++) {
    valid &= masks[pc]!;
    const code = program[pc * 4]!;
    const k = program[pc * 4 + 3]!;
    const cls = code & 7;
    if (cls === BPF_ST || cls === BPF_STX) {
      valid |= 1 << k;
    } else if ((cls === BPF_LD || cls === BPF_LDX) && (code & 0xe0) === BPF_MEM) {
      if ((valid & (1 << k)) === 0) return `instruction ${pc}: loads scratch slot ${k}, which is not stored on every path to it`;
    } else if (cls === BPF_JMP) {
      if ((code & 0xf0) === BPF_JA) {
        masks[pc + 1 + k]! &= valid;
      } else {
        masks[pc + 1 + program[pc * 4 + 1]!]! &= valid;
        masks[pc + 1 + program[pc * 4 + 2]!]! &= valid;
      }
      valid = 0xffff;
    }
  }
  return null;
}

/**
 * Runs `program` over the first `len` bytes of `frame` like the kernel does and returns the
 * verdict (bytes to keep; 0 = drop). A load past the end of the frame ends the program with
 * 0, as in the kernel. Throws on an invalid program (see validateBpf); frame contents never
 * make it throw. Not for the hot path: the kernel runs the real filter.
 */
export function runBpf(program: Uint32Array, frame: Uint8Array, len: number, aux: BpfAuxData = {}): number {
  const why = validateBpf(program);
  if (why !== null) throw new RangeError(`invalid BPF program: ${why}`);
  const n = program.length >> 2;
  if (len > frame.length) len = frame.length;
  if (!(len >= 0)) len = 0;
  let a = 0;
  let x = 0;
  scratch.fill(0);
  const load = (off: number, size: number): number => {
    if (off >= SKF_AD_OFF) {
      if (off === SKF_AD_OFF + SKF_AD_VLAN_TAG) return (aux.vlanTci ?? 0) & 0xffff;
      if (off === SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT) return aux.vlanTci === undefined ? 0 : 1;
      throw new RangeError(`bpf: ancillary load ${off - SKF_AD_OFF} not modelled`);
    }
    if (off < 0 || off + size > len) return -1;
    if (size === 4) return ((frame[off]! << 24) | (frame[off + 1]! << 16) | (frame[off + 2]! << 8) | frame[off + 3]!) >>> 0;
    if (size === 2) return (frame[off]! << 8) | frame[off + 1]!;
    return frame[off]!;
  };
  for (let pc = 0; pc < n; pc++) {
    const code = program[pc * 4]!;
    const jt = program[pc * 4 + 1]!;
    const jf = program[pc * 4 + 2]!;
    const k = program[pc * 4 + 3]!;
    switch (code & 7) {
      case BPF_LD:
      case BPF_LDX: {
        const isX = (code & 7) === BPF_LDX;
        const mode = code & 0xe0;
        const size = (code & 0x18) === BPF_W ? 4 : (code & 0x18) === BPF_H ? 2 : 1;
        let v: number;
        if (mode === BPF_IMM) v = k;
        else if (mode === BPF_LEN) v = len;
        else if (mode === BPF_MEM) v = scratch[k]!;
        else if (mode === BPF_ABS) v = load(k, size);
        else if (mode === BPF_IND && !isX) v = load((x + k) >>> 0, size);
        else if (mode === BPF_MSH && isX) {
          v = load(k, 1);
          if (v >= 0) v = (v & 0xf) << 2;
        } else throw new RangeError(`bpf: unsupported load 0x${code.toString(16)} at ${pc}`);
        if (v < 0) return 0;
        if (isX) x = v >>> 0;
        else a = v >>> 0;
        break;
      }
      case BPF_ST:
        scratch[k] = a;
        break;
      case BPF_STX:
        scratch[k] = x;
        break;
      case BPF_ALU: {
        const src = (code & BPF_X) !== 0 ? x : k;
        switch (code & 0xf0) {
          case BPF_ADD: a = (a + src) >>> 0; break;
          case BPF_SUB: a = (a - src) >>> 0; break;
          case BPF_MUL: a = Math.imul(a, src) >>> 0; break;
          case BPF_DIV: if (src === 0) return 0; a = Math.floor(a / src) >>> 0; break;
          case BPF_MOD: if (src === 0) return 0; a = (a % src) >>> 0; break;
          case BPF_OR: a = (a | src) >>> 0; break;
          case BPF_AND: a = (a & src) >>> 0; break;
          case BPF_XOR: a = (a ^ src) >>> 0; break;
          case BPF_LSH: a = src >= 32 ? 0 : (a << src) >>> 0; break;
          case BPF_RSH: a = src >= 32 ? 0 : a >>> src; break;
          case BPF_NEG: a = -a >>> 0; break;
          default: throw new RangeError(`bpf: unsupported alu 0x${code.toString(16)} at ${pc}`);
        }
        break;
      }
      case BPF_JMP: {
        const op = code & 0xf0;
        if (op === BPF_JA) {
          pc += k;
          break;
        }
        const src = (code & BPF_X) !== 0 ? x : k;
        let cond: boolean;
        if (op === BPF_JEQ) cond = a === src;
        else if (op === BPF_JGT) cond = a > src;
        else if (op === BPF_JGE) cond = a >= src;
        else cond = (a & src) !== 0;
        pc += cond ? jt : jf;
        break;
      }
      case BPF_RET:
        return ((code & 0x18) === BPF_A ? a : k) >>> 0;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TXA) a = x;
        else x = a;
        break;
    }
  }
  return 0;
}
