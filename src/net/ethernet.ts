/**
 * Ethernet II: constants, MAC address helpers, the cluster MACs derived from a VIP, and the
 * 14-byte header writer.
 *
 *   offset 0      6      12     14
 *          | dst  | src  | type | payload ...
 *
 * Readers take (buf, off) and never allocate; `parseMac`, `formatMac` and the cluster-MAC
 * functions allocate and are for configuration, logs and tests, not for the per-frame path.
 */

export const ETH_ALEN = 6;
export const ETH_HLEN = 14;
/** Shortest Ethernet frame without the FCS; shorter frames are padded with zeros. */
export const ETH_ZLEN = 60;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
/** Our control EtherType: IEEE 802 local experimental EtherType 1. */
export const ETH_P_LNLB = 0x88b5;
/** Offset of the EtherType inside the Ethernet header. */
export const ETH_TYPE_OFFSET = 12;

/** ff:ff:ff:ff:ff:ff. Do not write into it. */
export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

const HEX = '0123456789abcdef';

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  return -1;
}

/**
 * Parses `aa:bb:cc:dd:ee:ff` (also `-` as separator, upper case, and one-digit octets such as
 * LNLB's own `02:00:a:b:c:d`). Throws a RangeError naming the bad input otherwise.
 */
export function parseMac(s: string): Uint8Array {
  const out = new Uint8Array(ETH_ALEN);
  const bad = (why: string): RangeError =>
    new RangeError(`invalid MAC address '${s}': ${why} (expected six hex octets such as 02:00:0a:00:00:64)`);
  if (typeof s !== 'string') throw bad('not a string');
  const sep = s.includes('-') ? '-' : ':';
  const parts = s.split(sep);
  if (parts.length !== ETH_ALEN) throw bad(`${parts.length} octets`);
  for (let i = 0; i < ETH_ALEN; i++) {
    const p = parts[i]!;
    if (p.length < 1 || p.length > 2) throw bad(`octet ${i + 1} '${p}'`);
    let v = 0;
    for (let j = 0; j < p.length; j++) {
      const d = hexValue(p.charCodeAt(j));
      if (d < 0) throw bad(`octet ${i + 1} '${p}' is not hex`);
      v = (v << 4) | d;
    }
    out[i] = v;
  }
  return out;
}

/** Lower-case colon form with two digits per octet: `02:00:0a:00:00:64`. */
export function formatMac(b: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < ETH_ALEN; i++) {
    const v = b[off + i]!;
    if (i > 0) s += ':';
    s += HEX[v >> 4]! + HEX[v & 15]!;
  }
  return s;
}

export function macEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return (
    a[aOff] === b[bOff] &&
    a[aOff + 1] === b[bOff + 1] &&
    a[aOff + 2] === b[bOff + 2] &&
    a[aOff + 3] === b[bOff + 3] &&
    a[aOff + 4] === b[bOff + 4] &&
    a[aOff + 5] === b[bOff + 5]
  );
}

/** The 48-bit address as a JS number (exact: below 2^53), for sorting and map keys. */
export function macToNumber(b: Uint8Array, off = 0): number {
  const hi = (b[off]! << 8) | b[off + 1]!;
  const lo = ((b[off + 2]! << 24) | (b[off + 3]! << 16) | (b[off + 4]! << 8) | b[off + 5]!) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

/** Inverse of macToNumber. */
export function macFromNumber(n: number, out: Uint8Array = new Uint8Array(ETH_ALEN), off = 0): Uint8Array {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  out[off] = hi >>> 8;
  out[off + 1] = hi;
  out[off + 2] = lo >>> 24;
  out[off + 3] = lo >>> 16;
  out[off + 4] = lo >>> 8;
  out[off + 5] = lo;
  return out;
}

export function isBroadcastMac(b: Uint8Array, off = 0): boolean {
  return (b[off]! & b[off + 1]! & b[off + 2]! & b[off + 3]! & b[off + 4]! & b[off + 5]!) === 0xff;
}

/** Group bit (I/G) of the first octet: multicast and broadcast addresses. */
export function isMulticastMac(b: Uint8Array, off = 0): boolean {
  return (b[off]! & 1) === 1;
}

/** Unicast-mode cluster MAC for a VIP a.b.c.d: 02:00:a:b:c:d (locally administered). */
export function clusterMacUnicast(vip: number): Uint8Array {
  return new Uint8Array([0x02, 0x00, (vip >>> 24) & 0xff, (vip >>> 16) & 0xff, (vip >>> 8) & 0xff, vip & 0xff]);
}

/** Multicast-mode cluster MAC for a VIP a.b.c.d: 01:00:5e:7f:a:b. */
export function clusterMacMulticast(vip: number): Uint8Array {
  return new Uint8Array([0x01, 0x00, 0x5e, 0x7f, (vip >>> 24) & 0xff, (vip >>> 16) & 0xff]);
}

export function copyMac(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff = 0): void {
  dst[dstOff] = src[srcOff]!;
  dst[dstOff + 1] = src[srcOff + 1]!;
  dst[dstOff + 2] = src[srcOff + 2]!;
  dst[dstOff + 3] = src[srcOff + 3]!;
  dst[dstOff + 4] = src[srcOff + 4]!;
  dst[dstOff + 5] = src[srcOff + 5]!;
}

/** EtherType of the frame at `off` (the caller checks that 14 bytes are there). */
export function readEtherType(buf: Uint8Array, off: number): number {
  return (buf[off + ETH_TYPE_OFFSET]! << 8) | buf[off + ETH_TYPE_OFFSET + 1]!;
}

/**
 * Writes dst, src and the EtherType at `off`; returns the offset of the payload (off + 14).
 * Throws a RangeError if the buffer has no room for the header.
 */
export function writeEthernetHeader(buf: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array, type: number): number {
  if (off < 0 || off + ETH_HLEN > buf.length) throw new RangeError(`no room for an Ethernet header at offset ${off}`);
  copyMac(buf, off, dst, 0);
  copyMac(buf, off + ETH_ALEN, src, 0);
  buf[off + ETH_TYPE_OFFSET] = type >>> 8;
  buf[off + ETH_TYPE_OFFSET + 1] = type;
  return off + ETH_HLEN;
}
