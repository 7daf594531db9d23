/**
 * IPv4: address text form, the header checksum, a header writer, and `readIPv4`, the
 * per-frame header reader of the dispatcher.
 *
 *   l2Off           +14 (Ethernet)            ipOff + ihl*4
 *   | dst src type  | ver/ihl tos totlen id frag ttl proto csum src dst [opts] | L4 ...
 *                                                                           | sport dport ...
 *
 * `readIPv4` writes its findings into a caller-provided Uint32Array (create it once with
 * `createIPv4Result()`) indexed by the IPR_* constants, and returns a result code: a malformed
 * frame is a verdict, never an exception, and nothing is allocated.
 */
import { ETH_HLEN, ETH_P_IP, ETH_TYPE_OFFSET } from './ethernet.js';
import { readU32, writeU32 } from './bytes.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPV4_MIN_HEADER = 20;

/** Result codes of readIPv4. */
export const IPv4Parse = {
  OK: 0,
  /** Frame too short for an Ethernet header. */
  TOO_SHORT_L2: 1,
  /** EtherType is not IPv4 (0x0800). */
  NOT_IPV4: 2,
  /** Fewer than 20 bytes after the Ethernet header. */
  TOO_SHORT: 3,
  /** IP version field is not 4. */
  BAD_VERSION: 4,
  /** IHL below 5, or the options run past the frame. */
  BAD_IHL: 5,
  /** Total length below the header length or beyond the frame's end. */
  BAD_TOTAL_LENGTH: 6,
  /** A TCP/UDP first fragment too short to hold the ports. */
  TRUNCATED_L4: 7,
} as const;
export type IPv4ParseCode = (typeof IPv4Parse)[keyof typeof IPv4Parse];

// Indices into the result array.
/** The code readIPv4 returned. */
export const IPR_CODE = 0;
/** Offset of the IP header in the buffer. */
export const IPR_IP_OFFSET = 1;
export const IPR_PROTOCOL = 2;
export const IPR_SRC = 3;
export const IPR_DST = 4;
/** Total length field (header + payload) in bytes. */
export const IPR_TOTAL_LENGTH = 5;
/** Header length in bytes (IHL * 4). */
export const IPR_HEADER_LENGTH = 6;
/** IPF_* bits below. */
export const IPR_FLAGS = 7;
/** Fragment offset in bytes (the header field times 8). */
export const IPR_FRAG_OFFSET = 8;
/** Offset of the L4 header in the buffer. */
export const IPR_L4_OFFSET = 9;
/** TCP/UDP source port; 0 unless IPF_HAS_PORTS. */
export const IPR_SRC_PORT = 10;
/** TCP/UDP destination port; 0 unless IPF_HAS_PORTS. */
export const IPR_DST_PORT = 11;
/** Identification field. */
export const IPR_ID = 12;
export const IPV4_RESULT_LENGTH = 13;

/** More Fragments bit of the header. */
export const IPF_MF = 1;
/** Don't Fragment bit of the header. */
export const IPF_DF = 2;
/** Part of a fragmented datagram (MF set or offset != 0). */
export const IPF_FRAGMENT = 4;
/** IPR_SRC_PORT / IPR_DST_PORT are valid: TCP or UDP, first (or only) fragment. */
export const IPF_HAS_PORTS = 8;

export function createIPv4Result(): Uint32Array {
  return new Uint32Array(IPV4_RESULT_LENGTH);
}

/**
 * Parses a dotted quad (`10.0.0.100`) into a u32. Strict: four decimal octets 0..255, no
 * leading zeros (inet_aton would read `010` as octal), no spaces. Throws a RangeError saying
 * what is wrong.
 */
export function parseIPv4(s: string): number {
  const bad = (why: string): RangeError =>
    new RangeError(`invalid IPv4 address '${s}': ${why} (expected a dotted quad such as 10.0.0.100)`);
  if (typeof s !== 'string') throw bad('not a string');
  const parts = s.split('.');
  if (parts.length !== 4) throw bad(`${parts.length} parts instead of 4`);
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (p.length === 0 || p.length > 3) throw bad(`octet ${i + 1} '${p}' is not a number 0..255`);
    let v = 0;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j) - 0x30;
      if (c < 0 || c > 9) throw bad(`octet ${i + 1} '${p}' is not a decimal number`);
      v = v * 10 + c;
    }
    if (p.length > 1 && p.charCodeAt(0) === 0x30) throw bad(`octet ${i + 1} '${p}' has a leading zero`);
    if (v > 255) throw bad(`octet ${i + 1} is ${v}, must be 0..255`);
    n = n * 256 + v;
  }
  return n >>> 0;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 0xff}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/**
 * Internet checksum (RFC 1071) over buf[off, off+len): the value to store in a checksum field
 * that is zero while summing. Over a header whose checksum field is filled in, it returns 0
 * when the header is intact.
 */
export function ipv4Checksum(buf: Uint8Array, off: number, len: number): number {
  let sum = 0;
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (len & 1) sum += buf[off + len - 1]! << 8;
  // JS numbers hold the unfolded sum exactly (below 2^53 for any buffer), so fold once here.
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export interface IPv4HeaderFields {
  src: number;
  dst: number;
  protocol: number;
  /** Header + payload bytes. */
  totalLength: number;
  ttl?: number;
  id?: number;
  /** IPF_MF / IPF_DF bits. */
  flags?: number;
  /** In bytes, a multiple of 8. */
  fragOffset?: number;
  tos?: number;
}

/** Writes a 20-byte header (no options) with its checksum at `off`; returns off + 20. */
export function writeIPv4Header(buf: Uint8Array, off: number, h: IPv4HeaderFields): number {
  if (off < 0 || off + IPV4_MIN_HEADER > buf.length) throw new RangeError(`no room for an IPv4 header at offset ${off}`);
  const flags = h.flags ?? 0;
  const frag = ((flags & IPF_MF ? 0x2000 : 0) | (flags & IPF_DF ? 0x4000 : 0) | ((h.fragOffset ?? 0) >>> 3)) & 0xffff;
  buf[off] = 0x45;
  buf[off + 1] = h.tos ?? 0;
  buf[off + 2] = h.totalLength >>> 8;
  buf[off + 3] = h.totalLength;
  const id = h.id ?? 0;
  buf[off + 4] = id >>> 8;
  buf[off + 5] = id;
  buf[off + 6] = frag >>> 8;
  buf[off + 7] = frag;
  buf[off + 8] = h.ttl ?? 64;
  buf[off + 9] = h.protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeU32(buf, off + 12, h.src);
  writeU32(buf, off + 16, h.dst);
  const c = ipv4Checksum(buf, off, IPV4_MIN_HEADER);
  buf[off + 10] = c >>> 8;
  buf[off + 11] = c;
  return off + IPV4_MIN_HEADER;
}



/**
 * Reads the Ethernet + IPv4 (+ TCP/UDP ports) headers of the frame of `len` bytes starting at
 * `l2Off` in `buf`, into `out` (IPR_* indices). Returns an IPv4Parse code, also stored in
 * out[IPR_CODE]. Fields past the failing check are left as they were. The checksum is not
 * verified (the host stack does that; frames from a veth may carry partial checksums).
 * Ethernet padding after the IP total length is allowed.
 */
export function readIPv4(buf: Uint8Array, l2Off: number, len: number, out: Uint32Array): IPv4ParseCode {
  let end = l2Off + len;
  if (end > buf.length) end = buf.length;
  // Written as !(x >= y) so that NaN offsets or lengths also land on the error path.
  if (!(l2Off >= 0) || !(end - l2Off >= ETH_HLEN)) return (out[IPR_CODE] = IPv4Parse.TOO_SHORT_L2);
  if (((buf[l2Off + ETH_TYPE_OFFSET]! << 8) | buf[l2Off + ETH_TYPE_OFFSET + 1]!) !== ETH_P_IP) {
    return (out[IPR_CODE] = IPv4Parse.NOT_IPV4);
  }
  const ip = l2Off + ETH_HLEN;
  if (end - ip < IPV4_MIN_HEADER) return (out[IPR_CODE] = IPv4Parse.TOO_SHORT);
  const vihl = buf[ip]!;
  if (vihl >>> 4 !== 4) return (out[IPR_CODE] = IPv4Parse.BAD_VERSION);
  const hlen = (vihl & 0x0f) << 2;
  if (hlen < IPV4_MIN_HEADER || ip + hlen > end) return (out[IPR_CODE] = IPv4Parse.BAD_IHL);
  const total = (buf[ip + 2]! << 8) | buf[ip + 3]!;
  if (total < hlen || ip + total > end) return (out[IPR_CODE] = IPv4Parse.BAD_TOTAL_LENGTH);
  const fragWord = (buf[ip + 6]! << 8) | buf[ip + 7]!;
  const fragOffset = (fragWord & 0x1fff) << 3;
  let flags = (fragWord & 0x2000 ? IPF_MF : 0) | (fragWord & 0x4000 ? IPF_DF : 0);
  if (fragOffset !== 0 || (fragWord & 0x2000) !== 0) flags |= IPF_FRAGMENT;
  const protocol = buf[ip + 9]!;
  const l4 = ip + hlen;
  let sport = 0;
  let dport = 0;
  if (fragOffset === 0 && (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP)) {
    if (total - hlen < 4) return (out[IPR_CODE] = IPv4Parse.TRUNCATED_L4);
    sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    flags |= IPF_HAS_PORTS;
  }
  out[IPR_IP_OFFSET] = ip;
  out[IPR_PROTOCOL] = protocol;
  out[IPR_SRC] = readU32(buf, ip + 12);
  out[IPR_DST] = readU32(buf, ip + 16);
  out[IPR_TOTAL_LENGTH] = total;
  out[IPR_HEADER_LENGTH] = hlen;
  out[IPR_FLAGS] = flags;
  out[IPR_FRAG_OFFSET] = fragOffset;
  out[IPR_L4_OFFSET] = l4;
  out[IPR_SRC_PORT] = sport;
  out[IPR_DST_PORT] = dport;
  out[IPR_ID] = (buf[ip + 4]! << 8) | buf[ip + 5]!;
  return (out[IPR_CODE] = IPv4Parse.OK);
}
