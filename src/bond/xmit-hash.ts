/**
 * The bonding driver's transmit hash (`xmit_hash_policy`, drivers/net/bonding/bond_main.c:
 * bond_xmit_hash and its helpers): which slave a frame leaves by in balance-xor, 802.3ad, and
 * balance-tlb/alb with tlb_dynamic_lb=0. Every frame of one flow gets the same hash, so one
 * flow never reorders across links.
 *
 *   off          +6           +12    +14 (+18 after one 802.1Q/802.1ad tag)
 *   | dst MAC    | src MAC    | type | [TCI type] | IPv4 or IPv6 header | L4 (ports, ICMP) ...
 *
 * The formulas (kernel Documentation/networking/bonding.rst, and bond_main.c since 5.x):
 *
 *   layer2    h = dst[5] ^ src[5] ^ EtherType
 *   layer2+3  h = (dst[5] ^ src[5] ^ EtherType) ^ saddr ^ daddr;  h ^= h >> 16;  h ^= h >> 8
 *   layer3+4  h = ports ^ saddr ^ daddr;  h ^= h >> 16;  h ^= h >> 8;  h >>= 1
 *   slave = h mod (number of usable slaves)
 *
 * with the fields loaded as the driver loads them on a little-endian CPU (x86, arm64), where it
 * copies raw header bytes into a u32:
 *   saddr, daddr  the four address bytes a.b.c.d as a little-endian u32 (a | b<<8 | c<<16 | d<<24);
 *                 an IPv6 address is the XOR of its four little-endian 32-bit words (ipv6_addr_hash)
 *   ports         the first 4 bytes of the L4 header (source port then destination port, each in
 *                 network order) as a little-endian u32; for ESP the SPI (offset 0), for AH the SPI
 *                 (offset 4); 0 for other protocols, for IPv4 fragments (first one included: a
 *                 datagram's fragments stay together) and when those bytes are not in the frame
 *   ICMP          layer3+4 uses `type | code<<8 | id<<16` instead of the ports for messages with
 *                 an identifier (echo and timestamp, request and reply; id 0 counts as 1), so
 *                 pings spread; an ICMP error (unreachable, time exceeded, ...) is hashed by the
 *                 header it quotes (addresses and ports of the packet that caused it), so it takes
 *                 the slave of that packet's flow
 * The lowest bit is dropped in layer3+4 only (the driver's fix for even source ports); a frame
 * that is not IPv4/IPv6, or whose IP header is cut short, falls back to the layer2 hash.
 *
 * One 802.1Q or 802.1ad tag right after the MAC addresses is skipped and its EtherType is not
 * hashed: the driver sees VLAN frames with the tag already taken out into metadata (the bond
 * device offloads VLAN insertion), so a tagged frame hashes as its untagged self.
 *
 * Not here: encap2+3 and encap3+4 (they hash the inner headers of tunnels through the kernel's
 * flow dissector, and encap3+4 returns the socket's own random flow hash when there is one)
 * and vlan+srcmac; the option parser refuses them.
 *
 * Hot path: no allocation. The flow fields live in module-level scratch variables, which is
 * safe because a thread runs one hash at a time and nothing in here awaits.
 */
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6, ETH_TYPE_OFFSET } from '../net/ethernet.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../net/ipv4.js';

/** The driver's numbers for the policies (BOND_XMIT_POLICY_*), as the status file prints them. */
export const XMIT_POLICY_LAYER2 = 0;
export const XMIT_POLICY_LAYER34 = 1;
export const XMIT_POLICY_LAYER23 = 2;
export type XmitPolicyNumber = typeof XMIT_POLICY_LAYER2 | typeof XMIT_POLICY_LAYER34 | typeof XMIT_POLICY_LAYER23;

const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const IPPROTO_DCCP = 33;
const IPPROTO_ESP = 50;
const IPPROTO_AH = 51;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;
/** struct icmphdr / icmp6hdr: type, code, checksum, then 4 bytes (echo: identifier, sequence). */
const ICMP_HEADER = 8;
const IPV4_HEADER = 20;
const IPV6_HEADER = 40;

// Scratch flow keys of the frame being hashed (see the note on the hot path above).
/** saddr ^ daddr as the driver loads them. */
let flowAddrs = 0;
/** The L4 protocol; -1 for an IPv4 fragment (no L4 header to trust). */
let flowProto = -1;
/** Offset of the L4 header. */
let flowL4 = 0;
let flowPorts = 0;
/** type | code << 8 | id << 16; its id part is 0 unless the message carries an identifier. */
let flowIcmp = 0;

function readLe32(buf: Uint8Array, i: number): number {
  return buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
}

/** __skb_flow_get_ports: the 4 bytes at the protocol's port (or SPI) offset, 0 when none. */
function portsOf(buf: Uint8Array, l4: number, proto: number, end: number): number {
  let at: number;
  switch (proto) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_DCCP:
    case IPPROTO_ESP:
    case IPPROTO_SCTP:
    case IPPROTO_UDPLITE:
      at = l4;
      break;
    case IPPROTO_AH:
      at = l4 + 4;
      break;
    default:
      return 0;
  }
  return at + 4 <= end ? readLe32(buf, at) : 0;
}

/**
 * bond_flow_ip: reads the addresses (and with `l34` the ports) of the IP header at `nh` into
 * the scratch keys; false when the header is not all there. Like the driver it trusts the
 * header length field and leaves `flowProto` as it was for an IPv4 fragment.
 */
function flowIp(buf: Uint8Array, nh: number, end: number, ipv6: boolean, l34: boolean): boolean {
  if (!ipv6) {
    if (nh + IPV4_HEADER > end) return false;
    flowAddrs = readLe32(buf, nh + 12) ^ readLe32(buf, nh + 16);
    flowL4 = nh + ((buf[nh]! & 0x0f) << 2);
    // ip_is_fragment: More Fragments set or a fragment offset (the low 14 bits but DF).
    if ((((buf[nh + 6]! << 8) | buf[nh + 7]!) & 0x3fff) === 0) flowProto = buf[nh + 9]!;
  } else {
    if (nh + IPV6_HEADER > end) return false;
    flowAddrs = 0;
    for (let i = nh + 8; i < nh + 40; i += 4) flowAddrs ^= readLe32(buf, i);
    flowL4 = nh + IPV6_HEADER;
    flowProto = buf[nh + 6]!; // the next header as it is: extension headers are not walked
  }
  if (l34 && flowProto >= 0) flowPorts = portsOf(buf, flowL4, flowProto, end);
  return true;
}

/** icmp_has_id: types with an identifier (the same list serves ICMP and ICMPv6). */
function icmpHasId(type: number): boolean {
  return type === 8 || type === 0 || type === 13 || type === 14 || type === 128 || type === 129;
}

/** icmp_is_err: destination unreachable, source quench, redirect, time exceeded, parameter problem. */
function icmpIsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/** icmpv6_is_err: destination unreachable, packet too big, time exceeded, parameter problem. */
function icmpv6IsError(type: number): boolean {
  return type >= 1 && type <= 4;
}

/**
 * bond_flow_dissect for layer2+3 and layer3+4: fills the scratch keys; false when the frame
 * has no usable IP header (the caller then falls back to layer2).
 */
function flowDissect(buf: Uint8Array, nh: number, end: number, ipv6: boolean, l34: boolean): boolean {
  flowPorts = 0;
  flowIcmp = 0;
  flowProto = -1;
  if (!flowIp(buf, nh, end, ipv6, l34)) return false;
  if (flowProto !== IPPROTO_ICMP && flowProto !== IPPROTO_ICMPV6) return true;
  const icmp = flowL4;
  let type = 0;
  if (icmp + ICMP_HEADER <= end) {
    type = buf[icmp]!;
    let id = 0;
    if (icmpHasId(type)) id = ((buf[icmp + 4]! << 8) | buf[icmp + 5]!) || 1;
    flowIcmp = type | (buf[icmp + 1]! << 8) | (id << 16);
  }
  if (flowProto === IPPROTO_ICMP ? !icmpIsError(type) : !icmpv6IsError(type)) return true;
  // An error quotes the offending packet's IP header (of the same family) and its first 8
  // bytes after the ICMP header: hash by those, as that packet's own flow would be.
  return flowIp(buf, icmp + ICMP_HEADER, end, ipv6, l34);
}

/**
 * The transmit hash (u32) of the frame of `len` bytes at `off` in `buf` under `policy`
 * (XMIT_POLICY_*). A frame shorter than an Ethernet header hashes to 0, as in the driver.
 */
export function xmitHash(policy: XmitPolicyNumber, buf: Uint8Array, off: number, len: number): number {
  let end = off + len;
  if (end > buf.length) end = buf.length;
  // Written as !(x >= y) so that NaN offsets or lengths also land here.
  if (!(off >= 0) || !(end - off >= ETH_HLEN)) return 0;
  let type = (buf[off + ETH_TYPE_OFFSET]! << 8) | buf[off + ETH_TYPE_OFFSET + 1]!;
  let nh = off + ETH_HLEN;
  if ((type === ETH_P_8021Q || type === ETH_P_8021AD) && nh + 4 <= end) {
    type = (buf[nh + 2]! << 8) | buf[nh + 3]!;
    nh += 4;
  }
  const l2 = buf[off + 5]! ^ buf[off + 11]! ^ type;
  if (policy === XMIT_POLICY_LAYER2) return l2;
  if (type !== ETH_P_IP && type !== ETH_P_IPV6) return l2;
  const l34 = policy === XMIT_POLICY_LAYER34;
  if (!flowDissect(buf, nh, end, type === ETH_P_IPV6, l34)) return l2;
  let h = l34 ? (flowIcmp >>> 16 !== 0 ? flowIcmp : flowPorts) : l2;
  h ^= flowAddrs;
  h ^= h >>> 16;
  h ^= h >>> 8;
  return l34 ? h >>> 1 : h >>> 0;
}

/**
 * The slave a hash picks among `count` usable slaves, as the driver maps it: `hash % count`
 * (the hash taken as unsigned). -1 when there is no slave to pick.
 */
export function slaveIndex(hash: number, count: number): number {
  return count >= 1 ? (hash >>> 0) % count : -1;
}
