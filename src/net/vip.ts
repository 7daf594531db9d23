/**
 * A cluster interface's addresses: an IPv4 VIP, an IPv6 VIP, or one of each (dual stack) with
 * one membership, one cluster MAC and one tracking state. Written `10.0.0.100`,
 * `fd00:10::100` or `10.0.0.100,fd00:10::100` wherever a VIP is given (`--vip`, `addif`, the
 * config file, `createNode`).
 *
 * The cluster's 32-bit identity (`id`) is the IPv4 VIP when there is one, else the IPv6 VIP's
 * last 32 bits. It names the cluster in every control message (LNLB's cluster IP field) and
 * gives the cluster MAC:
 *
 *   unicast mode     02:00:a:b:c:d        (id a.b.c.d, locally administered; switches flood it)
 *   multicast mode   with an IPv4 VIP:    01:00:5e:7f:a:b, the MAC of 239.255.a.b, joined by IGMP
 *                    IPv6 VIP alone:      33:33:7f:fe:c:d, the MAC of ff15::7ffe:cd (c.d the
 *                                         id's last two bytes), joined by MLD
 *
 * A dual-stack interface in multicast mode keeps the IPv4 form: one MAC carries both families,
 * and switches that snoop IGMP forward it. Two clusters whose identities collide (an IPv6 VIP
 * ending in the other's IPv4 VIP) cannot share a LAN, as two clusters with one VIP cannot.
 */

import { formatIPv4, parseIPv4 } from './ipv4.js';
import { formatIPv6, parseIPv6 } from './ipv6.js';
import { multicastMac } from './ndp.js';

export interface ClusterVip {
  /** The canonical text: the IPv4 VIP, then the IPv6 VIP (RFC 5952), comma-separated. */
  readonly text: string;
  /** The IPv4 VIP as a u32; 0 when the interface has none (0.0.0.0 is never a VIP). */
  readonly v4: number;
  /** The IPv6 VIP's 16 bytes, or undefined. */
  readonly v6: Uint8Array | undefined;
  /** The cluster's 32-bit identity: v4, else the IPv6 VIP's last 32 bits. */
  readonly id: number;
}

/** Reads `10.0.0.100`, `fd00::100` or both comma-separated; throws a RangeError saying what is wrong. */
export function parseClusterVip(text: string): ClusterVip {
  if (typeof text !== 'string' || text.trim() === '') throw new RangeError('expected a cluster IP such as 10.0.0.100, fd00:10::100, or both comma-separated');
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > 2) throw new RangeError(`at most two cluster IPs (one IPv4, one IPv6), got ${parts.length}`);
  let v4: number | undefined;
  let v6: Uint8Array | undefined;
  for (const part of parts) {
    if (part.includes(':')) {
      if (v6 !== undefined) throw new RangeError('two IPv6 cluster IPs: an interface has one of each family at most');
      v6 = parseIPv6(part);
      checkIPv6Vip(v6, part);
    } else {
      if (v4 !== undefined) throw new RangeError('two IPv4 cluster IPs: an interface has one of each family at most');
      v4 = parseIPv4(part);
      checkIPv4Vip(v4, part);
    }
  }
  return makeClusterVip(v4 ?? 0, v6);
}

function makeClusterVip(v4: number, v6: Uint8Array | undefined): ClusterVip {
  const text = [...(v4 !== 0 ? [formatIPv4(v4)] : []), ...(v6 !== undefined ? [formatIPv6(v6)] : [])].join(',');
  const id = v4 !== 0 ? v4 : ((v6![12]! << 24) | (v6![13]! << 16) | (v6![14]! << 8) | v6![15]!) >>> 0;
  return { text, v4, v6, id };
}

function checkIPv4Vip(v4: number, text: string): void {
  const first = v4 >>> 24;
  if (v4 === 0 || first === 0 || first === 127 || first >= 224) throw new RangeError(`${text} cannot be a cluster IP: it must be a unicast address a client can send to (not 0/8, 127/8, multicast or class E)`);
}

function checkIPv6Vip(v6: Uint8Array, text: string): void {
  const unspecifiedOrLoopback = v6.subarray(0, 15).every((b) => b === 0) && v6[15]! <= 1;
  const linkLocal = v6[0] === 0xfe && (v6[1]! & 0xc0) === 0x80;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  if (unspecifiedOrLoopback || v6[0] === 0xff || linkLocal || mapped) {
    throw new RangeError(`${text} cannot be a cluster IP: it must be a global or unique-local unicast address (not ::, ::1, multicast, link-local fe80::/10 or IPv4-mapped)`);
  }
  if ((v6[12]! | v6[13]! | v6[14]! | v6[15]!) === 0) throw new RangeError(`${text} cannot be a cluster IP: its last 32 bits name the cluster and make its MAC, and must not be all zero`);
}

/**
 * The cluster MAC of each mode as `lnlbd --help` and the docs write it: a.b.c.d are the bytes
 * of the cluster's identity (its IPv4 VIP a.b.c.d), c.d the last two bytes of an IPv6 VIP
 * alone. Derived by clusterMacFor below; test/unit/net/vip.test.ts fills these in and compares.
 */
export const CLUSTER_MAC_FORMS = {
  unicast: '02:00:a:b:c:d',
  multicast: '01:00:5e:7f:a:b',
  multicastIPv6: '33:33:7f:fe:c:d',
} as const;

/** The MAC the TAP carries (always unicast: an interface cannot have a multicast address): 02:00 + the id. */
export function tapMacFor(vip: ClusterVip): Uint8Array {
  const id = vip.id;
  return Uint8Array.of(0x02, 0x00, (id >>> 24) & 0xff, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
}

/** The IPv6 group an IPv6-only cluster joins in multicast mode (MLD): ff15::7ffe:cd, c.d the id's last two bytes. */
export function mldGroupFor(vip: ClusterVip): Uint8Array {
  const group = new Uint8Array(16);
  group[0] = 0xff;
  group[1] = 0x15;
  group[12] = 0x7f;
  group[13] = 0xfe;
  group[14] = (vip.id >>> 8) & 0xff;
  group[15] = vip.id & 0xff;
  return group;
}

/** The MAC clients send to: the TAP's, or the multicast form (see the top of this file). */
export function clusterMacFor(vip: ClusterVip, macMode: 'unicast' | 'multicast'): Uint8Array {
  if (macMode === 'unicast') return tapMacFor(vip);
  if (vip.v4 !== 0) return Uint8Array.of(0x01, 0x00, 0x5e, 0x7f, (vip.v4 >>> 24) & 0xff, (vip.v4 >>> 16) & 0xff);
  return multicastMac(mldGroupFor(vip));
}

/** Whether two VIP specs share an address (one interface per cluster IP). */
export function sharedAddress(a: ClusterVip, b: ClusterVip): string | undefined {
  if (a.v4 !== 0 && a.v4 === b.v4) return formatIPv4(a.v4);
  if (a.v6 !== undefined && b.v6 !== undefined && a.v6.every((byte, i) => byte === b.v6![i])) return formatIPv6(a.v6);
  if (a.id === b.id) return `the cluster identity ${formatIPv4(a.id)}`;
  return undefined;
}
