/**
 * Codec of the cluster control messages (the payload of an ETH_P_LNLB frame, after the
 * Ethernet header). LNLB's field order, network byte order, with a 32-bit message id where
 * LNLB had 8 bits (its ids wrapped every 256 messages, which let reassembly mix fragments of
 * two CONNTRACK transfers):
 *
 *   +0  clusterIp       u32
 *   +4  type            u32   MessageType
 *   +8  dataLength      u32   data bytes in THIS frame (the fragment's share)
 *   +12 flags           u32   CONNTRACK: handler index
 *   +16 messageId       u32
 *   +20 fragmentNumber  u16   0 .. fragmentTotal-1
 *   +22 fragmentTotal   u16   >= 1
 *   +24 crc32           u32   CRC-32 (zlib/IEEE) of the WHOLE message's data (reassembled)
 *   +28 data            dataLength bytes, then Ethernet padding the decoder ignores
 *
 * CRC-32 comes from `node:zlib` (`crc32`, present since Node 20.15; the engines field asks
 * for >= 20 and the project runs on 20.20), so there is no table of our own.
 *
 * `decodeMessage` never throws, whatever the bytes: every defect is a DecodeResult. The
 * control plane is not a per-frame hot path, but the decoder still only allocates the
 * subarray the CRC is computed over.
 */
import { crc32 } from 'node:zlib';
import { readU32, writeU32 } from './bytes.js';

export enum MessageType {
  JOIN = 1,
  WELCOME = 2,
  HEARTBEAT = 3,
  ASKRETRASM = 4,
  RETRASM = 5,
  LEAVE = 6,
  CONNTRACK = 7,
  /** The newcomer has every message of a tracking-state transfer (net/state-transfer-message.ts). */
  STATE_ACK = 8,
  /** The newcomer lacks these fragments of a transfer, or has none: send them (net/state-transfer-message.ts). */
  STATE_NACK = 9,
}

export enum DecodeResult {
  OK = 0,
  /** Fewer bytes than the 28-byte header. */
  TOO_SHORT = 1,
  /** dataLength runs past the bytes received (or the buffer / offsets are inconsistent). */
  BAD_LENGTH = 2,
  /** type is not a MessageType. */
  UNKNOWN_TYPE = 3,
  /** Single-fragment message whose data does not match its CRC-32. */
  BAD_CRC = 4,
  /** fragmentTotal is 0 or fragmentNumber >= fragmentTotal. */
  BAD_FRAGMENT = 5,
  /** Well-formed frame, wrong contents for its type (a HEARTBEAT shorter than a weight, ...). */
  MALFORMED = 6,
}

export const MESSAGE_HEADER_LENGTH = 28;
export const MSG_OFF_CLUSTER_IP = 0;
export const MSG_OFF_TYPE = 4;
export const MSG_OFF_DATA_LENGTH = 8;
export const MSG_OFF_FLAGS = 12;
export const MSG_OFF_MESSAGE_ID = 16;
export const MSG_OFF_FRAGMENT_NUMBER = 20;
export const MSG_OFF_FRAGMENT_TOTAL = 22;
export const MSG_OFF_CRC32 = 24;
export const MSG_OFF_DATA = 28;
/**
 * Header flags bit of a HEARTBEAT that rings the doorbell: it announces a weight its sender has
 * not applied yet. Every member holds the new flows that weight moves from the moment it reads
 * the announcement until it applies it; a member that read it a heartbeat later (quietly)
 * decided those flows meanwhile with the old weights while the others held them for the new:
 * two owners or none, for good (the scale bench saw 1-6 of 10,000 new sources so).
 */
export const FLAG_WAKE = 0x2;

/**
 * The message at bytes[at, at + length) is a HEARTBEAT announcing a weight (FLAG_WAKE), by its
 * header alone (no CRC, no key: what a kernel filter can tell, bpf.ts dataFilter).
 */
export function isWeightAnnouncement(bytes: Uint8Array, at: number, length: number): boolean {
  return length >= MSG_OFF_FLAGS + 4 && readU32(bytes, at + MSG_OFF_TYPE) === MessageType.HEARTBEAT && (readU32(bytes, at + MSG_OFF_FLAGS) & FLAG_WAKE) !== 0;
}

/**
 * Header flags bit of an ASKRETRASM that probes a member already heard in the sender's round
 * (held open by another member's silence), and of the RETRASM that answers it: the answer says
 * "alive" and stands for no round's heartbeat (late over a jittery wire, it would otherwise be
 * taken as a later round's, with the weight of another round).
 */
export const FLAG_PROBE = 0x4;

/** Data length of HEARTBEAT and RETRASM: one u16 weight. */
export const WEIGHT_DATA_LENGTH = 2;

export interface MessageFields {
  clusterIp: number;
  type: MessageType;
  /** u32; CONNTRACK: the handler index. Default 0. */
  flags?: number;
  messageId: number;
  /** Raw data, or a weight (u16) for HEARTBEAT / RETRASM. */
  data?: Uint8Array | number;
}

/** Caller-owned decode target; make one with createDecodedMessage() and reuse it. */
export interface DecodedMessage {
  clusterIp: number;
  type: number;
  dataLength: number;
  flags: number;
  messageId: number;
  fragmentNumber: number;
  fragmentTotal: number;
  crc32: number;
  /** Absolute offset of the data in the decoded buffer. */
  dataOffset: number;
  /** HEARTBEAT / RETRASM: the sender's weight; -1 for other types. */
  weight: number;
}

export function createDecodedMessage(): DecodedMessage {
  return {
    clusterIp: 0,
    type: 0,
    dataLength: 0,
    flags: 0,
    messageId: 0,
    fragmentNumber: 0,
    fragmentTotal: 0,
    crc32: 0,
    dataOffset: 0,
    weight: -1,
  };
}

export function messageTypeName(type: number): string {
  return MessageType[type] ?? `UNKNOWN(${type})`;
}

export function isMessageType(type: number): type is MessageType {
  return type >= MessageType.JOIN && type <= MessageType.STATE_NACK;
}

function carriesWeight(type: number): boolean {
  return type === MessageType.HEARTBEAT || type === MessageType.RETRASM;
}



function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${name} must be a u32, got ${v}`);
}

/**
 * Encodes a single-fragment message at `off`; returns its length (header + data, no padding:
 * the caller pads the Ethernet frame to 60 bytes). Throws a RangeError on a programming error
 * (field out of range, buffer too small).
 */
export function encodeMessage(buf: Uint8Array, off: number, m: MessageFields): number {
  checkU32('clusterIp', m.clusterIp);
  checkU32('messageId', m.messageId);
  checkU32('flags', m.flags ?? 0);
  if (!isMessageType(m.type)) throw new RangeError(`unknown message type ${String(m.type)}`);
  const data = m.data;
  let dataLength = 0;
  if (typeof data === 'number') {
    if (!Number.isInteger(data) || data < 0 || data > 0xffff) throw new RangeError(`weight must be a u16, got ${data}`);
    dataLength = WEIGHT_DATA_LENGTH;
  } else if (data !== undefined) {
    dataLength = data.length;
  }
  if (carriesWeight(m.type) && dataLength < WEIGHT_DATA_LENGTH) {
    throw new RangeError(`${messageTypeName(m.type)} needs a weight`);
  }
  const total = MESSAGE_HEADER_LENGTH + dataLength;
  if (!(off >= 0) || off + total > buf.length) {
    throw new RangeError(`no room for a ${total}-byte cluster message at offset ${off} (buffer ${buf.length})`);
  }
  const d = off + MSG_OFF_DATA;
  if (typeof data === 'number') {
    buf[d] = data >>> 8;
    buf[d + 1] = data;
  } else if (data !== undefined) {
    buf.set(data, d);
  }
  writeU32(buf, off + MSG_OFF_CLUSTER_IP, m.clusterIp);
  writeU32(buf, off + MSG_OFF_TYPE, m.type);
  writeU32(buf, off + MSG_OFF_DATA_LENGTH, dataLength);
  writeU32(buf, off + MSG_OFF_FLAGS, m.flags ?? 0);
  writeU32(buf, off + MSG_OFF_MESSAGE_ID, m.messageId);
  buf[off + MSG_OFF_FRAGMENT_NUMBER] = 0;
  buf[off + MSG_OFF_FRAGMENT_NUMBER + 1] = 0;
  buf[off + MSG_OFF_FRAGMENT_TOTAL] = 0;
  buf[off + MSG_OFF_FRAGMENT_TOTAL + 1] = 1;
  writeU32(buf, off + MSG_OFF_CRC32, crc32(buf.subarray(d, d + dataLength)));
  return total;
}

/**
 * Decodes the message in buf[off, off+len) into `out`. Header fields are filled in as soon as
 * the header is there (so a caller can log the type of a rejected message); `weight` and the
 * verdict come last. Checks, in order: TOO_SHORT, BAD_LENGTH, UNKNOWN_TYPE, BAD_FRAGMENT,
 * BAD_CRC (single-fragment messages only: a fragment's CRC covers the reassembled message,
 * so the reassembler checks it), MALFORMED (HEARTBEAT / RETRASM without a weight, or
 * fragmented). Never throws.
 */
export function decodeMessage(buf: Uint8Array, off: number, len: number, out: DecodedMessage): DecodeResult {
  out.weight = -1;
  if (!(off >= 0) || !(len >= 0) || !Number.isInteger(off) || !Number.isInteger(len)) return DecodeResult.BAD_LENGTH;
  if (len < MESSAGE_HEADER_LENGTH) return DecodeResult.TOO_SHORT;
  if (off + len > buf.length) return DecodeResult.BAD_LENGTH;
  out.clusterIp = readU32(buf, off + MSG_OFF_CLUSTER_IP);
  out.type = readU32(buf, off + MSG_OFF_TYPE);
  out.dataLength = readU32(buf, off + MSG_OFF_DATA_LENGTH);
  out.flags = readU32(buf, off + MSG_OFF_FLAGS);
  out.messageId = readU32(buf, off + MSG_OFF_MESSAGE_ID);
  out.fragmentNumber = (buf[off + MSG_OFF_FRAGMENT_NUMBER]! << 8) | buf[off + MSG_OFF_FRAGMENT_NUMBER + 1]!;
  out.fragmentTotal = (buf[off + MSG_OFF_FRAGMENT_TOTAL]! << 8) | buf[off + MSG_OFF_FRAGMENT_TOTAL + 1]!;
  out.crc32 = readU32(buf, off + MSG_OFF_CRC32);
  out.dataOffset = off + MSG_OFF_DATA;
  if (out.dataLength > len - MESSAGE_HEADER_LENGTH) return DecodeResult.BAD_LENGTH;
  if (!isMessageType(out.type)) return DecodeResult.UNKNOWN_TYPE;
  if (out.fragmentTotal === 0 || out.fragmentNumber >= out.fragmentTotal) return DecodeResult.BAD_FRAGMENT;
  if (out.fragmentTotal === 1) {
    const d = out.dataOffset;
    if (crc32(buf.subarray(d, d + out.dataLength)) !== out.crc32) return DecodeResult.BAD_CRC;
  }
  if (carriesWeight(out.type)) {
    if (out.dataLength < WEIGHT_DATA_LENGTH || out.fragmentTotal !== 1) return DecodeResult.MALFORMED;
    out.weight = (buf[out.dataOffset]! << 8) | buf[out.dataOffset + 1]!;
  }
  return DecodeResult.OK;
}

/**
 * The node identity block: the sender's name and IPv4 address, which lnlb appends to every
 * membership message after the port rules block (control-channel.ts). Tagged and sized, as
 * the rules block is, so LNLB nodes and earlier lnlb versions stop reading before it, and a
 * later version may add fields after the name (`blockLength` covers them; a reader skips what
 * it does not know):
 *
 *   +0 'N'            u8
 *   +1 blockLength    u8   bytes after these two (≥ 5 + nameLength)
 *   +2 address        u32  IPv4 of the sender's bound device, network order; 0: none
 *   +6 nameLength     u8   1..NODE_NAME_MAX
 *   +7 name           nameLength bytes of [A-Za-z0-9._-]
 *
 * A block that breaks any of these rules is MALFORMED: the receiver counts it and drops the
 * identity (the rest of the message stands). Decoding allocates the name (a string per
 * authenticated message: the control plane, not the data path).
 */
export const IDENTITY_MARK = 0x4e; // 'N'
/** Bytes of a node name at most: a host name's first label fits (HOST_NAME_MAX is 64 with the NUL). */
export const NODE_NAME_MAX = 63;
const IDENTITY_FIXED_BYTES = 7;
/** The largest identity block this version writes. */
export const IDENTITY_MAX_BYTES = IDENTITY_FIXED_BYTES + NODE_NAME_MAX;
const NAME_BYTE = /^[A-Za-z0-9._-]+$/;

/** A valid node name: 1..NODE_NAME_MAX characters of letters, digits, '.', '_' and '-'. */
export function isNodeName(name: string): boolean {
  return name.length >= 1 && name.length <= NODE_NAME_MAX && NAME_BYTE.test(name);
}

export enum IdentityResult {
  /** No identity block at `at` (an LNLB node, an earlier lnlb, or nothing after the rules). */
  ABSENT = 0,
  OK = 1,
  MALFORMED = 2,
}

/** Caller-owned decode target of an identity block. */
export interface DecodedIdentity {
  name: string;
  /** u32, 0 when the sender has none. */
  address: number;
}

/** Writes the identity block at `at`; returns the bytes written. Throws a RangeError on a bad name or address (a programming error: names are checked where they are given). */
export function encodeIdentity(buf: Uint8Array, at: number, name: string, address: number): number {
  if (!isNodeName(name)) throw new RangeError(`node name must be 1..${NODE_NAME_MAX} characters of [A-Za-z0-9._-], got ${JSON.stringify(name)}`);
  checkU32('address', address);
  const length = IDENTITY_FIXED_BYTES + name.length;
  if (!(at >= 0) || at + length > buf.length) throw new RangeError(`no room for a ${length}-byte identity block at offset ${at} (buffer ${buf.length})`);
  buf[at] = IDENTITY_MARK;
  buf[at + 1] = length - 2;
  writeU32(buf, at + 2, address);
  buf[at + 6] = name.length;
  for (let i = 0; i < name.length; i++) buf[at + IDENTITY_FIXED_BYTES + i] = name.charCodeAt(i);
  return length;
}

/** Reads the identity block at buf[at, end) into `out` (untouched unless OK). Never throws. */
export function decodeIdentity(buf: Uint8Array, at: number, end: number, out: DecodedIdentity, known?: string): IdentityResult {
  if (!(at >= 0) || !(end <= buf.length) || at + 2 > end || buf[at] !== IDENTITY_MARK) return IdentityResult.ABSENT;
  const blockEnd = at + 2 + buf[at + 1]!;
  if (blockEnd > end || blockEnd < at + IDENTITY_FIXED_BYTES) return IdentityResult.MALFORMED;
  const nameLength = buf[at + 6]!;
  if (nameLength < 1 || nameLength > NODE_NAME_MAX || at + IDENTITY_FIXED_BYTES + nameLength > blockEnd) return IdentityResult.MALFORMED;
  const first = at + IDENTITY_FIXED_BYTES;
  for (let i = first; i < first + nameLength; i++) {
    const c = buf[i]!;
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return IdentityResult.MALFORMED;
  }
  out.address = readU32(buf, at + 2);
  // The same sender announces the same name in every heartbeat: `known` (its last one) is kept, not built again.
  out.name = known !== undefined && isName(buf, first, nameLength, known) ? known : String.fromCharCode(...buf.subarray(first, first + nameLength));
  return IdentityResult.OK;
}

function isName(buf: Uint8Array, first: number, length: number, name: string): boolean {
  if (name.length !== length) return false;
  for (let i = 0; i < length; i++) if (name.charCodeAt(i) !== buf[first + i]) return false;
  return true;
}

/**
 * This host's node name by default: its host name when that is a valid name, else the host
 * name's first label (`web1` of a long `web1.example.com`) with any character a name may not
 * hold replaced by '-', cut to NODE_NAME_MAX; `node` when nothing is left.
 */
export function defaultNodeName(hostname: string): string {
  if (isNodeName(hostname)) return hostname;
  const label = hostname.split('.')[0] ?? '';
  const name = label.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, NODE_NAME_MAX);
  return name.length > 0 ? name : 'node';
}
