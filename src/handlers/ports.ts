/**
 * What the tcp and udp handlers share: the key of one connection (or one UDP flow) and how a
 * person reads it.
 *
 *   keyLo = source IPv4                          (10.0.0.5      = 0x0a000005)
 *   keyHi = source port << 16 | destination port (40312 → 80    = 0x9d780050)
 *
 * keyHi is the transport header's first four bytes read big-endian, so it costs one read of
 * bytes already in the cache. Frames whose ports cannot be read (an IP fragment, the first one
 * included, or a transport header cut short) get the key (source IP, 0) and the PORTS_UNREADABLE frame flag:
 * the trackers leave them untracked and the port rule's election decides them. Reading ports
 * out of a header we know is short would make up a connection that does not exist.
 */

import { formatIPv4 } from '../net/ipv4.js';
import type { KeyOrigin, ParsedFrame } from './handler.js';

/**
 * Frame flag (out[2]) of a frame whose ports could not be read; the same bit in tcp and udp
 * (TCP_FRAGMENT, UDP_FRAGMENT) so this module can write it for both.
 */
export const PORTS_UNREADABLE = 8;

/**
 * Writes the port key of `frame` into out[0] and out[1]; returns false (having written the key
 * (source IP, 0)) when the frame has no readable ports: a fragment (firstFragment false), or fewer than
 * `headerBytes` bytes of transport header inside the IP packet (frame.ipEnd: the IP length,
 * not the frame's; Ethernet pads short frames to 60 bytes, and padding is not a header).
 */
export function writePortKey(frame: ParsedFrame, headerBytes: number, out: Uint32Array): boolean {
  out[0] = frame.src;
  const b = frame.bytes;
  const l4 = frame.l4;
  if (!frame.firstFragment || l4 + headerBytes > frame.ipEnd) {
    out[1] = 0;
    return false;
  }
  out[1] = ((b[l4]! << 24) | (b[l4 + 1]! << 16) | (b[l4 + 2]! << 8) | b[l4 + 3]!) >>> 0;
  return true;
}

/** A port key's origin: the source, and the destination port in its low half (none for a portless key). */
export function portKeyOrigin(keyLo: number, keyHi: number): KeyOrigin {
  return { source: keyLo, destinationPort: keyHi & 0xffff };
}

/** "10.0.0.5:40312→80"; the source IP alone for a portless key (never recorded, but listable). */
export function describePortKey(keyLo: number, keyHi: number): string {
  if (keyHi === 0) return formatIPv4(keyLo);
  return `${formatIPv4(keyLo)}:${keyHi >>> 16}→${keyHi & 0xffff}`;
}
