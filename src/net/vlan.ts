/**
 * 802.1Q on a trunk (--vlan): the kernel takes a received frame's tag off before a packet
 * socket sees it (the tag is in the packet's auxdata: port/native.ts META_VLAN), but a frame
 * sent through a packet socket leaves as written, so whatever lnlb sends on its VLAN carries the
 * tag in its bytes:
 *
 *   | dst 6 | src 6 | 0x8100 | TCI 2 (VLAN id, priority 0) | EtherType | payload
 *
 * Allocation-free; lengths in, lengths out.
 */

import { ETH_ALEN, ETH_HLEN } from './ethernet.js';

export const ETH_P_8021Q = 0x8100;
export const VLAN_HLEN = 4;

/** virtio-net header fields (little-endian u16s) that count bytes from the frame's start. */
const VNET_FLAGS = 0;
const VNET_GSO_TYPE = 1;
const VNET_HDR_LEN = 2;
const VNET_CSUM_START = 6;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;

/**
 * Inserts a tag for `vlan` after the MAC addresses of the frame at buf[l2, l2 + length): the
 * rest moves 4 bytes on (buf must have the room). Returns the new length.
 */
export function insertVlanTag(buf: Uint8Array, l2: number, length: number, vlan: number): number {
  if (length < ETH_HLEN || l2 + length + VLAN_HLEN > buf.length) throw new RangeError(`no room to tag a ${length}-byte frame at ${l2} in ${buf.length} bytes`);
  buf.copyWithin(l2 + 2 * ETH_ALEN + VLAN_HLEN, l2 + 2 * ETH_ALEN, l2 + length);
  buf[l2 + 12] = ETH_P_8021Q >>> 8;
  buf[l2 + 13] = ETH_P_8021Q & 0xff;
  buf[l2 + 14] = (vlan >>> 8) & 0x0f;
  buf[l2 + 15] = vlan & 0xff;
  return length + VLAN_HLEN;
}

/**
 * A copy of the frame at frame[off, off + length) (a virtio-net header of `vnet` bytes, 0 or
 * 10, first) with an 802.1Q tag carrying `tci` (VLAN id, priority, DEI) after its MACs, written
 * into `out` from 0: the header's offsets move past the tag, so checksum-offloaded and GSO frames
 * stay valid. Returns the length, or -1 for a runt or a frame `out` cannot hold.
 */
export function copyWithTag(frame: Uint8Array, off: number, length: number, out: Uint8Array, tci: number, vnet: number): number {
  if (length < vnet + ETH_HLEN || length + VLAN_HLEN > out.length || off + length > frame.length) return -1;
  for (let i = 0; i < vnet; i++) out[i] = frame[off + i]!;
  if (vnet > 0) {
    if ((frame[off + VNET_FLAGS]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) addU16le(out, VNET_CSUM_START, VLAN_HLEN);
    if (frame[off + VNET_GSO_TYPE] !== 0) addU16le(out, VNET_HDR_LEN, VLAN_HLEN);
  }
  for (let i = 0; i < 2 * ETH_ALEN; i++) out[vnet + i] = frame[off + vnet + i]!;
  out[vnet + 12] = ETH_P_8021Q >>> 8;
  out[vnet + 13] = ETH_P_8021Q & 0xff;
  out[vnet + 14] = (tci >>> 8) & 0xff;
  out[vnet + 15] = tci & 0xff;
  out.set(frame.subarray(off + vnet + 12, off + length), vnet + 16);
  return length + VLAN_HLEN;
}

/**
 * A frame the host sent through the cluster interface (TAP), as the trunk must carry it
 * (copyWithTag, priority 0) with the node's own MAC as source: the switch must never learn the
 * cluster MAC, the TAP's, on one port (it would stop flooding the cluster's frames).
 */
export function tagForEgress(frame: Uint8Array, length: number, out: Uint8Array, ownMac: Uint8Array, vlan: number, vnet: number): number {
  const tagged = copyWithTag(frame, 0, length, out, vlan & 0xfff, vnet);
  if (tagged > 0) for (let i = 0; i < ETH_ALEN; i++) out[vnet + ETH_ALEN + i] = ownMac[i]!;
  return tagged;
}

function addU16le(buf: Uint8Array, at: number, add: number): void {
  const v = (buf[at]! | (buf[at + 1]! << 8)) + add;
  buf[at] = v & 0xff;
  buf[at + 1] = (v >>> 8) & 0xff;
}
