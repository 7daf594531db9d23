/**
 * Multicast membership reports sent for the host, as the kernel's NETDEV_RESEND_IGMP makes it
 * send them after a bond's failover (resend_igmp): IGMPv3 for the device's IPv4 groups, MLDv2
 * for its IPv6 groups, each group a CHANGE_TO_EXCLUDE record with no source (a join), so that
 * snooping switches learn the new port at once rather than at their next query.
 *
 *   IGMPv3 (RFC 3376 4.2): to 224.0.0.22 (01:00:5e:00:00:16), TTL 1, IP option Router Alert,
 *     type 0x22 | 0 | checksum | 0 | number of records | records: type 4, 0, 0 sources, group
 *   MLDv2 (RFC 3810 5.2): to ff02::16 (33:33:00:00:00:16) from a link-local address, hop limit
 *     1, a Hop-by-Hop header with Router Alert (MLD), ICMPv6 type 143 | 0 | checksum | 0 |
 *     number of records | records: type 4, 0, 0 sources, group
 *
 * The groups come from /proc/net/igmp and /proc/net/igmp6, whose formats the parsers read; the
 * all-hosts groups (224.0.0.1, ff02::1) are never reported, as the kernel never reports them.
 */

import { writeU32 } from './bytes.js';
import { ETH_P_IP, ETH_P_IPV6, writeEthernetHeader } from './ethernet.js';
import { ipv4Checksum } from './ipv4.js';
import { IPV6_HEADER, writeIPv6Header } from './ipv6.js';
import { icmpv6Checksum } from './ndp.js';

const IGMP_ALL_REPORTS = 0xe0000016; // 224.0.0.22
const IGMP_ALL_HOSTS = 0xe0000001;
const IGMPV3_MAC = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0x16);
const MLDV2_MAC = Uint8Array.of(0x33, 0x33, 0x00, 0x00, 0x00, 0x16);
const MLDV2_ALL_ROUTERS = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16);
const IPPROTO_IGMP = 2;
const IGMPV3_REPORT = 0x22;
const MLDV2_REPORT = 143;
const CHANGE_TO_EXCLUDE = 4;
/** Records a report carries at most here (an Ethernet frame holds ~180 IPv4 or ~70 IPv6 ones): the rest are left out. */
export const MAX_REPORT_GROUPS = 64;

/** The IPv4 groups (host order u32) of `dev` in /proc/net/igmp's text, 224.0.0.1 left out. */
export function parseProcIgmp(text: string, dev: string): number[] {
  const groups: number[] = [];
  let mine = false;
  for (const line of text.split('\n')) {
    const device = /^\d+\t(\S+)\s*:/.exec(line);
    if (device !== null) {
      mine = device[1] === dev;
      continue;
    }
    const group = /^\t+([0-9A-Fa-f]{8})\s/.exec(line);
    if (!mine || group === null) continue;
    // The kernel prints the group as the host-order value of its network-order bytes.
    const n = parseInt(group[1]!, 16);
    const ip = (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
    if (ip !== IGMP_ALL_HOSTS) groups.push(ip);
  }
  return groups;
}

/** The IPv6 groups (16 bytes each) of `dev` in /proc/net/igmp6's text, ff02::1 left out. */
export function parseProcIgmp6(text: string, dev: string): Uint8Array[] {
  const groups: Uint8Array[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\d+\s+(\S+)\s+([0-9a-f]{32})\s/.exec(line);
    if (m === null || m[1] !== dev || m[2] === 'ff020000000000000000000000000001') continue;
    groups.push(Uint8Array.from(m[2]!.match(/../g)!.map((h) => parseInt(h, 16))));
  }
  return groups;
}

/** An IGMPv3 report joining `groups` (at most MAX_REPORT_GROUPS), from `ipSrc`; written at `off`, its length. */
export function buildIgmpv3Report(buf: Uint8Array, off: number, f: { ethSrc: Uint8Array; ipSrc: number; groups: readonly number[] }): number {
  const count = Math.min(f.groups.length, MAX_REPORT_GROUPS);
  const igmpLength = 8 + 8 * count;
  const ipLength = 24 + igmpLength;
  if (off + 14 + ipLength > buf.length) throw new RangeError(`no room for an IGMPv3 report of ${count} groups at ${off}`);
  const ip = writeEthernetHeader(buf, off, IGMPV3_MAC, f.ethSrc, ETH_P_IP);
  buf.fill(0, ip, ip + ipLength);
  buf[ip] = 0x46; // version 4, a 24-byte header: the Router Alert option
  buf[ip + 1] = 0xc0; // precedence internetwork control, as the kernel sends IGMP
  buf[ip + 2] = ipLength >>> 8;
  buf[ip + 3] = ipLength & 0xff;
  buf[ip + 6] = 0x40; // don't fragment
  buf[ip + 8] = 1; // TTL 1: the link only
  buf[ip + 9] = IPPROTO_IGMP;
  writeU32(buf, ip + 12, f.ipSrc);
  writeU32(buf, ip + 16, IGMP_ALL_REPORTS);
  buf.set([0x94, 0x04, 0x00, 0x00], ip + 20); // Router Alert
  const ipSum = ipv4Checksum(buf, ip, 24);
  buf[ip + 10] = ipSum >>> 8;
  buf[ip + 11] = ipSum & 0xff;
  const igmp = ip + 24;
  buf[igmp] = IGMPV3_REPORT;
  buf[igmp + 6] = count >>> 8;
  buf[igmp + 7] = count & 0xff;
  for (let i = 0; i < count; i++) {
    const record = igmp + 8 + 8 * i;
    buf[record] = CHANGE_TO_EXCLUDE;
    writeU32(buf, record + 4, f.groups[i]!);
  }
  const sum = ipv4Checksum(buf, igmp, igmpLength);
  buf[igmp + 2] = sum >>> 8;
  buf[igmp + 3] = sum & 0xff;
  return 14 + ipLength;
}

/** An MLDv2 report joining `groups` (at most MAX_REPORT_GROUPS), from the link-local `ipSrc`; written at `off`, its length. */
export function buildMldv2Report(buf: Uint8Array, off: number, f: { ethSrc: Uint8Array; ipSrc: Uint8Array; groups: readonly Uint8Array[] }): number {
  const count = Math.min(f.groups.length, MAX_REPORT_GROUPS);
  const mldLength = 8 + 20 * count;
  const payload = 8 + mldLength; // the Hop-by-Hop header, then MLD
  if (off + 14 + IPV6_HEADER + payload > buf.length) throw new RangeError(`no room for an MLDv2 report of ${count} groups at ${off}`);
  const ip = writeEthernetHeader(buf, off, MLDV2_MAC, f.ethSrc, ETH_P_IPV6);
  const hbh = writeIPv6Header(buf, ip, { src: f.ipSrc, dst: MLDV2_ALL_ROUTERS, next: 0, payloadLength: payload, hopLimit: 1 });
  buf.fill(0, hbh, hbh + payload);
  buf.set([58, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00], hbh); // next ICMPv6, Router Alert (MLD), PadN
  const mld = hbh + 8;
  buf[mld] = MLDV2_REPORT;
  buf[mld + 6] = count >>> 8;
  buf[mld + 7] = count & 0xff;
  for (let i = 0; i < count; i++) {
    const record = mld + 8 + 20 * i;
    buf[record] = CHANGE_TO_EXCLUDE;
    buf.set(f.groups[i]!.subarray(0, 16), record + 4);
  }
  const sum = icmpv6Checksum(buf, ip, mld, mldLength);
  buf[mld + 2] = sum >>> 8;
  buf[mld + 3] = sum & 0xff;
  return 14 + IPV6_HEADER + payload;
}
