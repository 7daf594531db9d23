/**
 * IPv6: the address's text form (RFC 4291 to read, RFC 5952 to write), a header writer, and
 * `readIPv6`, the per-frame reader that walks the extension headers (RFC 8200) to reach the
 * transport ports, as `readIPv4` does for IPv4.
 *
 *   l2Off    +14 (Ethernet)                                         +40
 *   | dst src type | ver/tc/flow plen next hlim src(16) dst(16) | ext hdrs... | L4: sport dport
 *
 * Extension headers walked: Hop-by-Hop Options (only first, as RFC 8200 requires), Routing,
 * Destination Options, Fragment and AH. A later fragment stops the walk (what follows is the
 * datagram's middle, not a header); ESP, No Next Header and every other value are the upper
 * layer. A chain longer than MAX_EXTENSION_HEADERS, or one that runs past the payload, is
 * malformed: a frame built to make every node walk a long chain costs each node a bounded walk.
 *
 * `readIPv6` writes its findings into a caller-provided Uint32Array (`createIPv6Result()`),
 * indexed by the IP6R_* constants, and returns a result code: a malformed frame is a verdict,
 * never an exception, and nothing is allocated. The fragment and ports flags are IPv4's
 * (ipv4.ts IPF_*), so the code after the parse treats both families alike.
 */
import { readU32 } from './bytes.js';
import { ETH_HLEN, ETH_P_IPV6, ETH_TYPE_OFFSET } from './ethernet.js';
import { IPF_FRAGMENT, IPF_HAS_PORTS, IPF_MF, IPPROTO_TCP, IPPROTO_UDP } from './ipv4.js';

export const IPV6_HEADER = 40;
export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;
/**
 * Extension headers walked at most. A legitimate packet has a few (Hop-by-Hop, Destination
 * Options twice, Routing, Fragment, AH: six); more is a frame built to be expensive.
 */
export const MAX_EXTENSION_HEADERS = 8;

/**
 * Where IPv6 sources' 32-bit identities live (cluster/hash.ts ipv6Identity): 224.0.0.0/3,
 * multicast and class E, addresses no IPv4 client sends from.
 */
export const IPV6_IDENTITY_BASE = 0xe0000000;
export const IPV6_IDENTITY_MASK = 0x1fffffff;
/** The seed of the unkeyed identity fold (a cluster without a key). */
export const UNKEYED_FOLD_SEED = 0x7f4a7c15;

/** Whether a u32 source is an IPv6 identity (224.0.0.0/3) rather than an IPv4 address. */
export function isIPv6Identity(source: number): boolean {
  return source >>> 29 === 7;
}

/** Result codes of readIPv6. */
export const IPv6Parse = {
  OK: 0,
  /** Frame too short for an Ethernet header. */
  TOO_SHORT_L2: 1,
  /** EtherType is not IPv6 (0x86dd). */
  NOT_IPV6: 2,
  /** Fewer than 40 bytes after the Ethernet header. */
  TOO_SHORT: 3,
  /** IP version field is not 6. */
  BAD_VERSION: 4,
  /** Payload length beyond the frame's end, or 0 (a jumbogram, which no Ethernet carries). */
  BAD_PAYLOAD_LENGTH: 5,
  /** An extension header runs past the payload, Hop-by-Hop is not first, or the chain is too long. */
  BAD_EXTENSION: 6,
  /** A TCP/UDP first fragment too short to hold the ports. */
  TRUNCATED_L4: 7,
} as const;
export type IPv6ParseCode = (typeof IPv6Parse)[keyof typeof IPv6Parse];

// Indices into the result array.
/** The code readIPv6 returned. */
export const IP6R_CODE = 0;
/** Offset of the IPv6 header in the buffer. */
export const IP6R_IP_OFFSET = 1;
/** The upper-layer protocol: the Next Header value that ended the walk. */
export const IP6R_PROTOCOL = 2;
/** The source address, four big-endian words (IP6R_SRC .. IP6R_SRC + 3). */
export const IP6R_SRC = 3;
/** The destination address, four big-endian words. */
export const IP6R_DST = 7;
/** The Payload Length field: bytes after the fixed header, extension headers included. */
export const IP6R_PAYLOAD_LENGTH = 11;
/** IPF_MF, IPF_FRAGMENT, IPF_HAS_PORTS (ipv4.ts). */
export const IP6R_FLAGS = 12;
/** Fragment offset in bytes (0 unless a Fragment header says otherwise). */
export const IP6R_FRAG_OFFSET = 13;
/** Offset of the upper-layer header (or of a later fragment's data) in the buffer. */
export const IP6R_L4_OFFSET = 14;
/** TCP/UDP ports; 0 unless IPF_HAS_PORTS. */
export const IP6R_SRC_PORT = 15;
export const IP6R_DST_PORT = 16;
/** The Fragment header's identification (0 without one). */
export const IP6R_FRAG_ID = 17;
/** Extension headers walked. */
export const IP6R_EXTENSIONS = 18;
export const IPV6_RESULT_LENGTH = 19;

export function createIPv6Result(): Uint32Array {
  return new Uint32Array(IPV6_RESULT_LENGTH);
}

/**
 * Reads the Ethernet + IPv6 headers (and the extension headers, and the TCP/UDP ports) of the
 * frame of `len` bytes starting at `l2Off` in `buf`, into `out` (IP6R_* indices). Returns an
 * IPv6Parse code, also stored in out[IP6R_CODE]. Fields past the failing check are left as
 * they were. Ethernet padding after the payload is allowed.
 */
export function readIPv6(buf: Uint8Array, l2Off: number, len: number, out: Uint32Array): IPv6ParseCode {
  let frameEnd = l2Off + len;
  if (frameEnd > buf.length) frameEnd = buf.length;
  // Written as !(x >= y) so that NaN offsets or lengths also land on the error path.
  if (!(l2Off >= 0) || !(frameEnd - l2Off >= ETH_HLEN)) return (out[IP6R_CODE] = IPv6Parse.TOO_SHORT_L2);
  if (((buf[l2Off + ETH_TYPE_OFFSET]! << 8) | buf[l2Off + ETH_TYPE_OFFSET + 1]!) !== ETH_P_IPV6) {
    return (out[IP6R_CODE] = IPv6Parse.NOT_IPV6);
  }
  const ip = l2Off + ETH_HLEN;
  if (frameEnd - ip < IPV6_HEADER) return (out[IP6R_CODE] = IPv6Parse.TOO_SHORT);
  if (buf[ip]! >>> 4 !== 6) return (out[IP6R_CODE] = IPv6Parse.BAD_VERSION);
  const payload = (buf[ip + 4]! << 8) | buf[ip + 5]!;
  const end = ip + IPV6_HEADER + payload;
  if (payload === 0 || end > frameEnd) return (out[IP6R_CODE] = IPv6Parse.BAD_PAYLOAD_LENGTH);
  out[IP6R_IP_OFFSET] = ip;
  out[IP6R_PAYLOAD_LENGTH] = payload;
  for (let w = 0; w < 4; w++) {
    out[IP6R_SRC + w] = readU32(buf, ip + 8 + 4 * w);
    out[IP6R_DST + w] = readU32(buf, ip + 24 + 4 * w);
  }
  let next = buf[ip + 6]!;
  let at = ip + IPV6_HEADER;
  let flags = 0;
  let fragOffset = 0;
  let fragId = 0;
  let walked = 0;
  let laterFragment = false;
  for (;;) {
    let headerLength: number;
    if (next === IPPROTO_HOPOPTS || next === IPPROTO_ROUTING || next === IPPROTO_DSTOPTS) {
      if (next === IPPROTO_HOPOPTS && walked !== 0) return (out[IP6R_CODE] = IPv6Parse.BAD_EXTENSION);
      if (at + 2 > end) return (out[IP6R_CODE] = IPv6Parse.BAD_EXTENSION);
      headerLength = (buf[at + 1]! + 1) << 3;
    } else if (next === IPPROTO_FRAGMENT) {
      headerLength = 8;
      if (at + headerLength > end) return (out[IP6R_CODE] = IPv6Parse.BAD_EXTENSION);
      const word = (buf[at + 2]! << 8) | buf[at + 3]!;
      fragOffset = word & 0xfff8;
      fragId = readU32(buf, at + 4);
      if ((word & 1) !== 0) flags |= IPF_MF;
      if (fragOffset !== 0 || (word & 1) !== 0) flags |= IPF_FRAGMENT;
      laterFragment = fragOffset !== 0;
    } else if (next === IPPROTO_AH) {
      if (at + 2 > end) return (out[IP6R_CODE] = IPv6Parse.BAD_EXTENSION);
      headerLength = (buf[at + 1]! + 2) << 2;
    } else {
      break; // the upper layer (ESP and No Next Header included)
    }
    if (at + headerLength > end || ++walked > MAX_EXTENSION_HEADERS) return (out[IP6R_CODE] = IPv6Parse.BAD_EXTENSION);
    next = buf[at]!;
    at += headerLength;
    if (laterFragment) break; // the rest is the datagram's middle: no header to read there
  }
  out[IP6R_PROTOCOL] = next;
  out[IP6R_L4_OFFSET] = at;
  out[IP6R_FRAG_OFFSET] = fragOffset;
  out[IP6R_FRAG_ID] = fragId;
  out[IP6R_EXTENSIONS] = walked;
  let sport = 0;
  let dport = 0;
  if (!laterFragment && (next === IPPROTO_TCP || next === IPPROTO_UDP)) {
    if (at + 4 > end) {
      out[IP6R_FLAGS] = flags;
      return (out[IP6R_CODE] = IPv6Parse.TRUNCATED_L4);
    }
    sport = (buf[at]! << 8) | buf[at + 1]!;
    dport = (buf[at + 2]! << 8) | buf[at + 3]!;
    flags |= IPF_HAS_PORTS;
  }
  out[IP6R_FLAGS] = flags;
  out[IP6R_SRC_PORT] = sport;
  out[IP6R_DST_PORT] = dport;
  return (out[IP6R_CODE] = IPv6Parse.OK);
}

export interface IPv6HeaderFields {
  src: Uint8Array;
  dst: Uint8Array;
  /** The Next Header field: the first extension header or the upper layer. */
  next: number;
  /** Bytes after the fixed header. */
  payloadLength: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
}

/** Writes the 40-byte fixed header at `off`; returns off + 40. */
export function writeIPv6Header(buf: Uint8Array, off: number, h: IPv6HeaderFields): number {
  if (off < 0 || off + IPV6_HEADER > buf.length) throw new RangeError(`no room for an IPv6 header at offset ${off}`);
  const tc = h.trafficClass ?? 0;
  const flow = h.flowLabel ?? 0;
  buf[off] = 0x60 | (tc >>> 4);
  buf[off + 1] = ((tc & 0x0f) << 4) | ((flow >>> 16) & 0x0f);
  buf[off + 2] = flow >>> 8;
  buf[off + 3] = flow;
  buf[off + 4] = h.payloadLength >>> 8;
  buf[off + 5] = h.payloadLength;
  buf[off + 6] = h.next;
  buf[off + 7] = h.hopLimit ?? 64;
  buf.set(h.src.subarray(0, 16), off + 8);
  buf.set(h.dst.subarray(0, 16), off + 24);
  return off + IPV6_HEADER;
}

/**
 * Parses an IPv6 address in the text forms of RFC 4291 (`2001:db8::1`, `::`, `::ffff:10.0.0.1`)
 * into 16 bytes. Strict: hex groups of 1-4 digits, one `::` at most, a dotted quad only as the
 * last 32 bits, no zone (`%eth0`: a VIP is not link-local to one interface), no brackets or
 * prefix length. Throws a RangeError saying what is wrong.
 */
export function parseIPv6(s: string): Uint8Array {
  const bad = (why: string): RangeError => new RangeError(`invalid IPv6 address '${s}': ${why} (expected a form such as 2001:db8::100)`);
  if (typeof s !== 'string') throw bad('not a string');
  if (s.includes('%')) throw bad('a zone (%) does not belong in a cluster address');
  if (s.includes('/')) throw bad('no prefix length here');
  const halves = s.split('::');
  if (halves.length > 2) throw bad("'::' appears more than once");
  const groups = (text: string): string[] => (text === '' ? [] : text.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  const parts = [...head, ...(halves.length === 2 ? ['::'] : []), ...tail];
  const last = parts[parts.length - 1];
  let v4: number[] | undefined;
  if (last !== undefined && last.includes('.')) {
    const octets = last.split('.');
    if (octets.length !== 4 || octets.some((o) => !/^(0|[1-9]\d{0,2})$/.test(o) || Number(o) > 255)) throw bad(`'${last}' is not a dotted quad`);
    v4 = octets.map(Number);
    parts.pop();
  }
  const explicit = parts.filter((p) => p !== '::').length + (v4 === undefined ? 0 : 2);
  for (const p of parts) {
    if (p === '::') {
      const zeros = 8 - explicit;
      if (zeros < 1) throw bad("'::' stands for no group: the address already has 8");
      for (let z = 0; z < zeros; z++) words.push(0);
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(p)) throw bad(`group '${p}' is not 1 to 4 hex digits`);
    words.push(parseInt(p, 16));
  }
  if (v4 !== undefined) words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
  if (words.length !== 8) throw bad(`${words.length} groups instead of 8`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >>> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/**
 * The RFC 5952 text of 16 bytes: lower-case hex without leading zeros, the longest run of two
 * or more zero groups (the first of equal ones) as `::`.
 */
export function formatIPv6(bytes: Uint8Array): string {
  if (bytes.length < 16) throw new RangeError(`an IPv6 address is 16 bytes, got ${bytes.length}`);
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestAt = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => words.slice(from, to).map((w) => w.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLength, 8)}`;
}
