/**
 * Neighbour Discovery for an IPv6 VIP (RFC 4861), the counterpart of arp.ts: the Neighbour
 * Solicitation parser of the dispatcher and the Neighbour Advertisement builders, with the
 * ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1) and the solicited-node multicast
 * address and MAC a node must listen on (RFC 4291 §2.7.1, RFC 2464 §7).
 *
 *   NS: | IPv6 (hop limit 255) | type 135 code 0 csum | reserved(4) | target(16) | options (SLLA: 1, len 1, MAC) |
 *   NA: | IPv6 (hop limit 255) | type 136 code 0 csum | R S O flags, reserved(4) | target(16) | TLLA: 2, len 1, MAC |
 *
 * LNLB's rule carries over from ARP: the advertisement's Target Link-Layer Address is the
 * CLUSTER MAC while the Ethernet source stays the node's own, so switches never learn the
 * cluster MAC and keep flooding its frames to every node.
 */
import { copyMac, ETH_HLEN, ETH_P_IPV6, writeEthernetHeader } from './ethernet.js';
import { IP6R_IP_OFFSET, IP6R_L4_OFFSET, IP6R_PAYLOAD_LENGTH, IP6R_PROTOCOL, IP6R_SRC, IPPROTO_ICMPV6, IPV6_HEADER, writeIPv6Header } from './ipv6.js';

export const ICMPV6_NEIGHBOR_SOLICITATION = 135;
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
/** Type, code, checksum, reserved/flags, target. */
const ND_HEADER = 24;
const OPT_SOURCE_LLA = 1;
const OPT_TARGET_LLA = 2;
const LLA_OPTION = 8;
/** An advertisement as the builders write it: Ethernet, IPv6, the NA and its TLLA option. */
export const NA_FRAME_LENGTH = ETH_HLEN + IPV6_HEADER + ND_HEADER + LLA_OPTION;
export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;

/** ff02::1, every node on the link: where an unsolicited advertisement goes. */
export const ALL_NODES = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** Result codes of parseNeighborSolicitation. */
export const NdpParse = {
  OK: 0,
  /** Not ICMPv6, or an ICMPv6 message other than a solicitation. */
  NOT_SOLICITATION: 1,
  /** Hop limit not 255 (it crossed a router), code not 0, or shorter than 24 bytes. */
  INVALID: 2,
  /** The ICMPv6 checksum does not match. */
  BAD_CHECKSUM: 3,
  /** An option of length 0 or past the end, a multicast target, or a source address option from the unspecified address. */
  BAD_OPTIONS: 4,
} as const;
export type NdpParseCode = (typeof NdpParse)[keyof typeof NdpParse];

/** Caller-owned storage for the parser; make it once with createNdpResult(). */
export interface NdpResult {
  /** The target address asked for. */
  readonly target: Uint8Array;
  /** The requester's address (all zero: unspecified, a duplicate address detection). */
  readonly source: Uint8Array;
  /** The requester's MAC from its Source Link-Layer Address option, when it sent one. */
  readonly sourceMac: Uint8Array;
  hasSourceMac: boolean;
  /** The solicitation came from the unspecified address (::): duplicate address detection. */
  unspecifiedSource: boolean;
}

export function createNdpResult(): NdpResult {
  return { target: new Uint8Array(16), source: new Uint8Array(16), sourceMac: new Uint8Array(6), hasSourceMac: false, unspecifiedSource: false };
}

/**
 * The ICMPv6 checksum of the `length` bytes at `l4` (checksum field included as it is: 0 while
 * building, the received one while checking, which then sums to 0) under the pseudo-header of
 * the IPv6 header at `ip`.
 */
export function icmpv6Checksum(buf: Uint8Array, ip: number, l4: number, length: number): number {
  let sum = 0;
  for (let i = ip + 8; i < ip + 40; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  sum += (length >>> 16) + (length & 0xffff) + IPPROTO_ICMPV6;
  const end = l4 + (length & ~1);
  for (let i = l4; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (length & 1) sum += buf[l4 + length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/**
 * Parses the Neighbour Solicitation of a frame readIPv6 read (its result in `ip6`) into `out`,
 * with RFC 4861 §7.1.1's checks. Allocation-free; never throws on frame contents.
 */
export function parseNeighborSolicitation(buf: Uint8Array, ip6: Uint32Array, out: NdpResult): NdpParseCode {
  if (ip6[IP6R_PROTOCOL] !== IPPROTO_ICMPV6) return NdpParse.NOT_SOLICITATION;
  const ip = ip6[IP6R_IP_OFFSET]!;
  const l4 = ip6[IP6R_L4_OFFSET]!;
  const end = ip + IPV6_HEADER + ip6[IP6R_PAYLOAD_LENGTH]!;
  if (l4 + 4 > end || buf[l4] !== ICMPV6_NEIGHBOR_SOLICITATION) return NdpParse.NOT_SOLICITATION;
  const length = end - l4;
  if (buf[ip + 7] !== 255 || buf[l4 + 1] !== 0 || length < ND_HEADER) return NdpParse.INVALID;
  if (icmpv6Checksum(buf, ip, l4, length) !== 0) return NdpParse.BAD_CHECKSUM;
  if (buf[l4 + 8] === 0xff) return NdpParse.BAD_OPTIONS; // a multicast target
  for (let i = 0; i < 16; i++) {
    out.target[i] = buf[l4 + 8 + i]!;
    out.source[i] = buf[ip + 8 + i]!;
  }
  out.unspecifiedSource = (ip6[IP6R_SRC]! | ip6[IP6R_SRC + 1]! | ip6[IP6R_SRC + 2]! | ip6[IP6R_SRC + 3]!) === 0;
  out.hasSourceMac = false;
  for (let at = l4 + ND_HEADER; at < end; ) {
    if (at + 2 > end) return NdpParse.BAD_OPTIONS;
    const optionLength = buf[at + 1]! * 8;
    if (optionLength === 0 || at + optionLength > end) return NdpParse.BAD_OPTIONS;
    if (buf[at] === OPT_SOURCE_LLA && optionLength >= LLA_OPTION) {
      copyMac(out.sourceMac, 0, buf, at + 2);
      out.hasSourceMac = true;
    }
    at += optionLength;
  }
  // Duplicate address detection comes from no address, and so has no link-layer address to give.
  if (out.unspecifiedSource && out.hasSourceMac) return NdpParse.BAD_OPTIONS;
  return NdpParse.OK;
}

export interface AdvertisementFields {
  /** Ethernet source: the node's own MAC. */
  ethSrc: Uint8Array;
  /** Ethernet destination: the requester's MAC, or 33:33:00:00:00:01 for all nodes. */
  ethDst: Uint8Array;
  /** IPv6 source and target: the VIP. */
  vip: Uint8Array;
  /** IPv6 destination: the requester, or ALL_NODES. */
  ipDst: Uint8Array;
  /** The Target Link-Layer Address: the cluster MAC. */
  targetMac: Uint8Array;
  /** NA_FLAG_* bits. */
  flags: number;
}

/** Builds a Neighbour Advertisement at `off`; returns its length (NA_FRAME_LENGTH). */
export function buildNeighborAdvertisement(buf: Uint8Array, off: number, f: AdvertisementFields): number {
  if (off < 0 || off + NA_FRAME_LENGTH > buf.length) throw new RangeError(`no room for a ${NA_FRAME_LENGTH}-byte neighbour advertisement at offset ${off}`);
  const ip = writeEthernetHeader(buf, off, f.ethDst, f.ethSrc, ETH_P_IPV6);
  const l4 = writeIPv6Header(buf, ip, { src: f.vip, dst: f.ipDst, next: IPPROTO_ICMPV6, payloadLength: ND_HEADER + LLA_OPTION, hopLimit: 255 });
  buf.fill(0, l4, l4 + ND_HEADER + LLA_OPTION);
  buf[l4] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  buf[l4 + 4] = f.flags & (NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
  buf.set(f.vip.subarray(0, 16), l4 + 8);
  buf[l4 + ND_HEADER] = OPT_TARGET_LLA;
  buf[l4 + ND_HEADER + 1] = 1;
  copyMac(buf, l4 + ND_HEADER + 2, f.targetMac);
  const sum = icmpv6Checksum(buf, ip, l4, ND_HEADER + LLA_OPTION);
  buf[l4 + 2] = sum >>> 8;
  buf[l4 + 3] = sum;
  return NA_FRAME_LENGTH;
}

/**
 * The answer to a solicitation for the VIP: to the requester (solicited, override: the cluster
 * MAC replaces whatever it had), or, for duplicate address detection, to all nodes (not
 * solicited: RFC 4861 §7.2.4). `requesterMac` is the frame's Ethernet source, used when the
 * solicitation carried no link-layer address option.
 */
export function buildSolicitedAdvertisement(buf: Uint8Array, off: number, ns: NdpResult, requesterMac: Uint8Array, f: { ethSrc: Uint8Array; vip: Uint8Array; clusterMac: Uint8Array }): number {
  if (ns.unspecifiedSource) return buildUnsolicitedAdvertisement(buf, off, f);
  return buildNeighborAdvertisement(buf, off, {
    ethSrc: f.ethSrc,
    ethDst: ns.hasSourceMac ? ns.sourceMac : requesterMac,
    vip: f.vip,
    ipDst: ns.source,
    targetMac: f.clusterMac,
    flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
  });
}

/** An unsolicited advertisement of the VIP at the cluster MAC to every node (after a failover, as a gratuitous ARP). */
export function buildUnsolicitedAdvertisement(buf: Uint8Array, off: number, f: { ethSrc: Uint8Array; vip: Uint8Array; clusterMac: Uint8Array }): number {
  return buildNeighborAdvertisement(buf, off, { ethSrc: f.ethSrc, ethDst: multicastMac(ALL_NODES), vip: f.vip, ipDst: ALL_NODES, targetMac: f.clusterMac, flags: NA_FLAG_OVERRIDE });
}

/** The solicited-node multicast address of `address` (ff02::1:ffXX:XXXX, its low 24 bits): where solicitations for it go. */
export function solicitedNodeAddress(address: Uint8Array): Uint8Array {
  const out = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0]);
  out[13] = address[13]!;
  out[14] = address[14]!;
  out[15] = address[15]!;
  return out;
}

/** The Ethernet MAC of an IPv6 multicast address: 33:33 and its low 32 bits (RFC 2464 §7). */
export function multicastMac(address: Uint8Array): Uint8Array {
  return Uint8Array.from([0x33, 0x33, address[12]!, address[13]!, address[14]!, address[15]!]);
}
