/**
 * The host side of one cluster interface: the sysctls of the bound device, the TAP that
 * carries the VIP, the data socket and its receive ring, and (multicast mode) the IGMP
 * membership; set up in order on start, undone on stop (the TAP vanishes with its fd, the
 * sysctls are restored).
 */

import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { lnlbError } from '../errors.js';
import { dataFilter, withVlanGuard } from '../net/bpf.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { formatIPv6 } from '../net/ipv6.js';
import { multicastMac, solicitedNodeAddress } from '../net/ndp.js';
import { mldGroupFor, type ClusterVip } from '../net/vip.js';
import * as port from '../port/native.js';
import type { Logger } from './logger.js';
import type { InterfaceOptions } from './options.js';
import type { SysctlChange, SysctlGuard } from './sysctl.js';
import { ipv4Sysctl, ipv6Sysctl } from './sysctl-keys.js';

/** Frames on the TAP and the data socket carry a virtio-net header (GSO frames pass whole). */
export const VNET_HDR = true;

/**
 * The data socket's receive ring (--rx-ring, --rx-ring-frames, --rx-ring-blocks). Its pages are
 * the kernel's and resident from the start: of all the daemon's memory, the one part that is
 * paid whether a frame ever comes or not, so it is sized by what it must absorb, not by what
 * the machine could spare.
 *
 * v2, the default: each frame is readable the moment the kernel has written it (a request
 * through the VIP: p50 ~120 µs instead of ~1000 µs). Slots hold a whole frame of the device's
 * MTU (v2FrameSize: 1600 bytes at an MTU of 1500); GSO frames come whole through the socket's queue. A slot
 * takes a frame of any size, so N slots hold N frames: what a reader that stops can miss, at
 * the rate the wire delivers. On a busy wire the reader sleeps 500 µs between batches rather
 * than be woken for each frame (a 64-byte flood then reaches ~75–80% of v3's rate, 1514-byte
 * frames ~96%), so the ring must hold at least 500 µs of the fastest wire with room for a
 * descheduling: see DEFAULT_RX_RING_FRAMES for the measurement behind the default.
 *
 * v3: the kernel hands frames over in blocks, when a block is full or 1 ms after it was
 * opened, so a lone frame waits up to 1 ms; cheapest at the highest rates. The ring holds
 * about blockCount × 1 ms of a stalled reader at low load, and a 256 KiB block still holds
 * several 64 KiB GSO frames.
 */
export function rxRingOptions(o: Pick<InterfaceOptions, 'rxRing' | 'rxRingFrames' | 'rxRingBlocks'>, mtu: number): port.RingOpenOptions {
  if (o.rxRing === 'v3') return { version: 3, blockSize: 256 << 10, blockCount: o.rxRingBlocks, retireTimeoutMs: 1 };
  const frameSize = port.v2FrameSize(mtu, VNET_HDR);
  return { version: 2, frameSize, frameCount: o.rxRingFrames, copyQueueBytes: 8 << 20, holdOffUs: 500 };
}

/** What the bound device is, as read when the interface opens. */
export interface BoundDevice {
  ownMac: Uint8Array;
  mtu: number;
}

export class ClusterDevice {
  readonly #opts: InterfaceOptions;
  readonly #vip: ClusterVip;
  readonly #sysctl: SysctlGuard;
  readonly #log: Logger;
  /** The TAP's MAC: always the unicast form (an interface cannot have a multicast address). */
  readonly #tapMac: Uint8Array;
  /** The MAC clients send to: the TAP's, or its multicast form (--mac-mode multicast). */
  readonly #clusterMac: Uint8Array;
  #tapFd = -1;
  #dataFd = -1;
  #egressFd = -1;
  #group: Socket | undefined;

  /** `sysctl` is the daemon's, shared by its interfaces (each change is kept under the interface's name). */
  constructor(options: InterfaceOptions, vip: ClusterVip, sysctl: SysctlGuard, log: Logger, macs: { tap: Uint8Array; cluster: Uint8Array }) {
    this.#opts = options;
    this.#vip = vip;
    this.#sysctl = sysctl;
    this.#log = log;
    this.#tapMac = macs.tap;
    this.#clusterMac = macs.cluster;
  }

  get tapFd(): number {
    return this.#tapFd;
  }

  get dataFd(): number {
    return this.#dataFd;
  }

  /** --vlan: the socket the host's frames from the cluster interface leave by, tagged; -1 otherwise. */
  get egressFd(): number {
    return this.#egressFd;
  }

  /** The sysctls, the TAP with the VIP, and the data socket with its ring (LNLB_ERR_DEV_NOT_FOUND naming a missing device). */
  open(): BoundDevice {
    const o = this.#opts;
    const info = port.ifInfo(o.bind); // throws LNLB_ERR_DEV_NOT_FOUND naming the device
    if (!info.up) this.#log.warn({ bind: o.bind }, `${o.bind} is down: nothing will arrive until it is up`);
    const multicast = o.macMode === 'multicast';
    // arp_ignore=1: the host does not answer ARP for the VIP on the real device (we do, with the
    // cluster MAC). arp_announce=2: the host's own ARP requests use the device's address, never
    // the VIP, or clients would learn "VIP is at my real MAC" and balancing silently breaks.
    // IPv6 needs neither: the kernel answers a solicitation only for an address of the device
    // it came in on (the VIP is on the TAP), and solicits from the outgoing device's own address
    // (ndisc_solicit takes the packet's source only when that device holds it). The lab's
    // client neighbour tables check both (test/integration/ipv6.test.ts).
    this.#sysctl.apply(o.name, [
      { key: ipv4Sysctl(o.bind, 'arp_ignore'), value: '1', restore: true },
      { key: ipv4Sysctl(o.bind, 'arp_announce'), value: '2', restore: true },
      // Multicast mode: the real device joins the cluster MAC, so its host stack would take
      // every client frame (PACKET_MULTICAST, and the VIP is local) and answer ICMP and UDP
      // itself, on every node. Frames reach the VIP only through our TAP.
      ...(multicast ? [{ key: ipv4Sysctl(o.bind, 'drop_unicast_in_l2_multicast'), value: '1', restore: true }] : []),
      ...(multicast && this.#vip.v6 !== undefined ? [{ key: ipv6Sysctl(o.bind, 'drop_unicast_in_l2_multicast'), value: '1', restore: true }] : []),
    ]);
    const tap = port.tapOpen(o.name, { vnetHdr: VNET_HDR });
    this.#tapFd = tap.fd;
    port.ifSetMac(o.name, this.#tapMac);
    const tapSysctls: SysctlChange[] = [
      // Frames from clients arrive on the TAP but replies leave by the real device: the strict
      // reverse-path filter would drop them. The TAP vanishes with us, so nothing to restore.
      { key: ipv4Sysctl(o.name, 'rp_filter'), value: '2', restore: false },
    ];
    // A host whose new devices start with IPv6 off (disable_ipv6 in conf/default) would refuse the VIP.
    if (this.#vip.v6 !== undefined) tapSysctls.push({ key: ipv6Sysctl(o.name, 'disable_ipv6'), value: '0', restore: false });
    this.#sysctl.apply(o.name, tapSysctls);
    if (this.#vip.v4 !== 0) port.ifSetIPv4(o.name, formatIPv4(this.#vip.v4), 32);
    // Up first: the kernel drops the IPv6 addresses of a device that is down.
    port.ifSetUp(o.name, true);
    if (this.#vip.v6 !== undefined) port.ifAddIPv6(o.name, formatIPv6(this.#vip.v6), 128);

    this.#dataFd = port.packetOpen(o.bind, {
      protocol: port.ETH_P_ALL,
      // Unicast mode: the cluster MAC is nobody's, only promiscuous mode passes it up.
      // Multicast mode: a membership of the cluster MAC is enough.
      promisc: !multicast,
      ...(multicast ? { multicast: this.#clusterMac } : {}),
      filter: withVlanGuard(dataFilter(this.#clusterMac, this.#vip.v6 === undefined ? undefined : multicastMac(solicitedNodeAddress(this.#vip.v6))), o.vlan),
      vnetHdr: VNET_HDR,
      ignoreOutgoing: true,
    });
    port.ringOpen(this.#dataFd, rxRingOptions(o, info.mtu));
    // --vlan: what the host sends through the cluster interface leaves tagged by this socket
    // (workers/egress.ts); protocol 0, so it receives nothing.
    if (o.vlan !== 0) this.#egressFd = port.packetOpen(o.bind, { protocol: 0, promisc: false, vnetHdr: VNET_HDR, ignoreOutgoing: true });
    return { ownMac: info.mac, mtu: info.mtu };
  }

  /** The bound device's IPv4 address (its first), undefined when it has none. */
  #bindAddress(): string | undefined {
    return networkInterfaces()[this.#opts.bind]?.find((a) => a.family === 'IPv4')?.address;
  }

  /** The IPv4 of the bound device as a u32, 0 when it has none: announced beside the node's name. */
  bindAddressU32(): number {
    const address = this.#bindAddress();
    return address === undefined ? 0 : parseIPv4(address);
  }

  /**
   * Multicast mode: join the group whose MAC is the cluster MAC, so the kernel sends reports and
   * snooping switches forward the cluster's frames to this port (the original LNLB's multicast
   * mode had neither). With an IPv4 VIP: IGMP for 239.255.a.b, which maps to LNLB's
   * 01:00:5e:7f:a:b. An IPv6 VIP alone: MLD for ff15::7ffe:cd, which maps to 33:33:7f:fe:c:d
   * (net/vip.ts).
   */
  async joinMulticastGroup(): Promise<void> {
    const o = this.#opts;
    const ipv4 = this.#vip.v4 !== 0;
    const group = ipv4 ? `239.255.${this.#clusterMac[4]}.${this.#clusterMac[5]}` : formatIPv6(mldGroupFor(this.#vip));
    const protocol = ipv4 ? 'IGMP' : 'MLD';
    // IPv4 names the interface by its address; IPv6 by its name (the scope of the unspecified address).
    const address = ipv4 ? this.#bindAddress() : `::%${o.bind}`;
    if (address === undefined) {
      this.#log.warn({ event: 'igmp', group }, `${o.bind} has no IPv4 address: no IGMP join for ${group}; switches with IGMP snooping may not forward the cluster's frames`);
      return;
    }
    const socket = createSocket({ type: ipv4 ? 'udp4' : 'udp6', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => resolve());
    });
    try {
      socket.addMembership(group, address);
    } catch (err) {
      socket.close();
      this.#log.warn({ event: protocol.toLowerCase(), group }, `no ${protocol} join for ${group} on ${o.bind} (${(err as Error).message}); switches with ${protocol} snooping may not forward the cluster's frames`);
      return;
    }
    socket.unref();
    this.#group = socket;
    this.#log.info({ event: protocol.toLowerCase(), group, address }, `joined ${group} on ${o.bind} (${protocol})`);
  }

  /** Drops the group membership (first thing on stop). */
  leaveMulticastGroup(): void {
    this.#group?.close();
    this.#group = undefined;
  }

  /**
   * For a process that is exiting without close() (src/main/restore-at-exit.ts): the IPv4 VIP
   * taken off the TAP at once. The TAP itself goes only when the process is gone (its fd is
   * closed then), after the bound device's arp_ignore is restored: with the VIP still a local
   * address, the host would answer ARP for it on that device with its own MAC.
   */
  removeVipNow(): void {
    if (this.#vip.v4 !== 0 && this.#tapFd >= 0) port.ifClearIPv4(this.#opts.name);
  }

  /** Closes the sockets (the TAP disappears with its fd) and restores the sysctls: LNLB_ERR_SYS_SYSCTL if some could not be. */
  close(): void {
    if (this.#dataFd >= 0) port.close(this.#dataFd);
    if (this.#egressFd >= 0) port.close(this.#egressFd);
    this.#egressFd = -1;
    if (this.#tapFd >= 0) port.close(this.#tapFd); // a non-persistent TAP disappears with its fd
    this.#dataFd = this.#tapFd = -1;
    const failures = this.#sysctl.release(this.#opts.name);
    for (const failure of failures) this.#log.error({ event: 'sysctl-restore-failed' }, failure);
    if (failures.length > 0) throw lnlbError('LNLB_ERR_SYS_SYSCTL', `could not restore ${failures.length} sysctl(s)`);
  }
}
