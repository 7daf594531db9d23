/**
 * One bond's logic, the bond_main of lnlb: its slaves, the carrier monitor, the mode's choice
 * of slave for each frame the host sends, the filter on what each slave receives, LACP
 * (mode-8023ad.ts) and the peer notifications after a failover. Pure in the project's sense:
 * time comes in as `now` (ms), the devices are behind {@link BondIo}, so the same code runs
 * on a fake wire in the unit tests and on AF_PACKET sockets in src/workers/bond-thread.ts.
 *
 * Frames are passed as (buf, off, len) with the virtio-net header first when the bond has
 * one (`vnetHdrLen` 10): the header travels unchanged from the TAP to the slave socket and
 * back, so checksum offload and GSO survive the bond. The hot paths (transmit, receive)
 * allocate nothing.
 */

import { ARP_OFF_OP, ARP_OFF_SPA, ARP_OFF_TPA, buildArpRequest, buildGratuitousArp } from '../net/arp.js';
import { readU32 } from '../net/bytes.js';
import { parseIPv4 } from '../net/ipv4.js';
import { ETH_HLEN, ETH_P_ARP, formatMac, macEquals } from '../net/ethernet.js';
import { buildUnsolicitedAdvertisement } from '../net/ndp.js';
import { buildIgmpv3Report, buildMldv2Report } from '../net/igmp.js';
import type { BondEventFields, BondEventKind } from './bond-events.js';
import { chooseActive, type CandidateSlave } from './active-backup.js';
import { TlbBalancer, RlbTable, buildLearningPacket } from './alb.js';
import { ArpMonitor, type ArpLinkChange, type ArpProbe } from './arp-monitor.js';
import { initialLink, inspectLink, LinkEvent, linkDelays, LinkState, linkUsable, miiStatus, type LinkDelays, type SlaveLink } from './link-monitor.js';
import { ETH_P_SLOW } from './lacp/lacpdu.js';
import { Lacp8023ad, SlowFrame } from './mode-8023ad.js';
import { BOND_MODES, formatBondOptions, xmitPolicyNumber, type BondOptions } from './options.js';
import { RoundRobin } from './round-robin.js';
import type { BondStatusView, SlaveStatusView } from './status-file.js';
import { slaveIndex, xmitHash, type XmitPolicyNumber } from './xmit-hash.js';

export const MODE_RR = 0;
export const MODE_ACTIVE_BACKUP = 1;
export const MODE_XOR = 2;
export const MODE_BROADCAST = 3;
export const MODE_8023AD = 4;
export const MODE_TLB = 5;
export const MODE_ALB = 6;

/** Slaves per bond (the driver has no fixed limit; every table here is sized by it). */
export const MAX_SLAVES = 32;

/** What {@link BondCore.receive} decided for a frame. */
export const RX_DROP = 0;
export const RX_DELIVER = 1;
/** The bond used it (a LACPDU): not for the host. */
export const RX_CONSUMED = 2;

/** PACKET_OTHERHOST: the frame was not addressed to the device. */
const PACKET_OTHERHOST = 3;

/** How often LACP, tlb/alb and the peer notifications are looked at (the driver's 100 ms ad timer). */
export const BOND_TICK_MS = 100;

export interface BondIo {
  /** Sends buf[off, off+len) (virtio-net header first when the bond has one) on the slave; false if dropped. */
  send(slot: number, buf: Uint8Array, off: number, len: number): boolean;
  /** The slave's carrier, read at each miimon tick. */
  carrier(slot: number): boolean;
  /** Speed in Mb/s (0: unknown) and duplex (undefined: unknown), read when a link comes up. */
  linkSpeed(slot: number): { speed: number; fullDuplex: boolean | undefined };
  /** Sets the slave device's MAC (tlb/alb keep the bond's MAC on the active slave; fail_over_mac). */
  setSlaveMac(slot: number, mac: Uint8Array): void;
  /** Sets the bond device's own MAC (fail_over_mac=active). */
  setBondMac(mac: Uint8Array): void;
  /** The bond's IPv4 addresses (host order): gratuitous ARPs and ARP probes are sent from the first. */
  bondAddresses(): readonly number[];
  /** The bond's IPv6 addresses (16 bytes each): each is advertised (unsolicited NA) after a failover. */
  bondAddresses6?(): readonly Uint8Array[];
  /** The multicast groups the host joined on the bond (/proc/net/igmp, igmp6): reported again after a failover (resend_igmp). */
  bondGroups?(): { v4: readonly number[]; v6: readonly Uint8Array[] };
  /** Something an operator wants in the log: a link went down, the active slave changed (bond-events.ts). */
  event<K extends BondEventKind>(kind: K, fields: BondEventFields[K]): void;
}

export interface SlaveConfig {
  name: string;
  /** The MAC the device had when enslaved: given back on release (the status file's "Permanent HW addr"). */
  permanentMac: Uint8Array;
  /** The MAC the device has now that it is a slave (the bond's, or its own in tlb/alb). */
  mac: Uint8Array;
  carrier: boolean;
  speed: number;
  fullDuplex: boolean | undefined;
}

export interface SlaveCounters {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
}

class Slave implements CandidateSlave {
  readonly name: string;
  readonly slot: number;
  readonly permanentMac: Uint8Array;
  readonly mac: Uint8Array;
  link: SlaveLink;
  /** The carrier as last read (the ARP monitor probes only slaves with carrier). */
  carrier: boolean;
  speed: number;
  duplex: number;
  fullDuplex: boolean | undefined;
  txFrames = 0;
  txBytes = 0;
  rxFrames = 0;
  rxBytes = 0;

  constructor(slot: number, config: SlaveConfig, link: SlaveLink) {
    this.name = config.name;
    this.slot = slot;
    this.permanentMac = Uint8Array.from(config.permanentMac);
    this.mac = Uint8Array.from(config.mac);
    this.link = link;
    this.carrier = config.carrier;
    this.speed = config.speed;
    this.fullDuplex = config.fullDuplex;
    this.duplex = config.fullDuplex === true ? 1 : 0;
  }
}

/** Counters of the whole bond; `lnlbctl bond show --json` prints them. */
/** The driver's mcast_work period between resend_igmp reports (HZ / 5). */
const RESEND_IGMP_INTERVAL_MS = 200;

export interface BondCounters {
  txFrames: number;
  txDroppedNoSlave: number;
  txDroppedSlaveBusy: number;
  rxFrames: number;
  rxDelivered: number;
  rxDroppedInactive: number;
  rxDroppedNotForUs: number;
  rxDroppedLooped: number;
  lacpdusReceived: number;
  lacpdusBad: number;
  /** 802.3ad: Marker Information PDUs answered, Marker Responses received (lacp/marker.ts). */
  markersAnswered: number;
  markerResponsesReceived: number;
  slowProtocolsDropped: number;
  /** balance-alb: receive-balancing clients forgotten to make room for new ones (alb.ts RlbTable). */
  rlbEvictions: number;
  gratuitousArpsSent: number;
  /** Unsolicited neighbour advertisements sent after a failover (num_unsol_na, the same count as num_grat_arp). */
  unsolicitedNasSent: number;
  /** resend_igmp: IGMPv3 and MLDv2 reports of the host's groups sent after a failover. */
  igmpReportsSent: number;
  mldReportsSent: number;
  arpProbesSent: number;
  activeChanges: number;
}

function newCounters(): BondCounters {
  return {
    txFrames: 0,
    txDroppedNoSlave: 0,
    txDroppedSlaveBusy: 0,
    rxFrames: 0,
    rxDelivered: 0,
    rxDroppedInactive: 0,
    rxDroppedNotForUs: 0,
    rxDroppedLooped: 0,
    lacpdusReceived: 0,
    lacpdusBad: 0,
    markersAnswered: 0,
    markerResponsesReceived: 0,
    slowProtocolsDropped: 0,
    rlbEvictions: 0,
    gratuitousArpsSent: 0,
    unsolicitedNasSent: 0,
    igmpReportsSent: 0,
    mldReportsSent: 0,
    arpProbesSent: 0,
    activeChanges: 0,
  };
}

export interface BondCoreConfig {
  name: string;
  options: BondOptions;
  /** The bond device's MAC. */
  mac: Uint8Array;
  vnetHdrLen: number;
  /** Version string of the status file's first line. */
  version: string;
}

export class BondCore {
  readonly name: string;
  readonly options: BondOptions;
  readonly mode: number;
  readonly counters: BondCounters = newCounters();
  readonly #io: BondIo;
  readonly #hdr: number;
  readonly #version: string;
  readonly #mac: Uint8Array;
  readonly #delays: LinkDelays;
  readonly #policy: XmitPolicyNumber;
  readonly #slots: (Slave | undefined)[] = new Array<Slave | undefined>(MAX_SLAVES).fill(undefined);
  /** Slaves in enslave order: the driver's list order, which "the first slave that is up" means. */
  readonly #order: Slave[] = [];
  /** Slots that may carry traffic now, in enslave order (rr, xor, broadcast, tlb). */
  readonly #usable = new Int32Array(MAX_SLAVES);
  #usableCount = 0;
  #active: Slave | undefined;
  readonly #rr: RoundRobin;
  #lacp: Lacp8023ad | undefined;
  readonly #tlb: TlbBalancer | undefined;
  readonly #rlb: RlbTable | undefined;
  readonly #arp: ArpMonitor | undefined;
  readonly #arpProbes: ArpProbe[] = [];
  readonly #scratch: Uint8Array;
  /** Where the rlb table packs its ARP updates (60 bytes each, one per client at most). */
  readonly #rlbOut = new Uint8Array(60 * 256);
  #rlbNow = 0;
  readonly #sendRlbUpdate = (slot: number, offset: number, length: number): void => {
    this.#scratch.set(this.#rlbOut.subarray(offset, offset + length), this.#hdr);
    this.#sendControl(slot, this.#hdr, length, this.#rlbNow);
  };
  /** The TAP is promiscuous (a cluster interface or a sniffer on it): deliver frames for other MACs too. */
  promiscuous = false;
  #nextMii = 0;
  #nextArp = 0;
  #nextTick = 0;
  #nextLearning = 0;
  /** Gratuitous ARPs still to send after a failover, and when the next one is due. */
  #notifyLeft = 0;
  #notifyAt = 0;
  /** resend_igmp: membership reports still to send after a failover, and when the next is due. */
  #igmpLeft = 0;
  #igmpAt = 0;

  constructor(config: BondCoreConfig, io: BondIo) {
    this.name = config.name;
    this.options = config.options;
    this.mode = BOND_MODES.find((m) => m.name === config.options.mode)!.value;
    this.#io = io;
    this.#hdr = config.vnetHdrLen;
    this.#version = config.version;
    this.#mac = Uint8Array.from(config.mac);
    const o = config.options;
    this.#delays = linkDelays(o.miimon, o.updelay, o.downdelay);
    this.#policy = xmitPolicyNumber(o.xmit_hash_policy);
    this.#rr = new RoundRobin(o.packets_per_slave);
    // A whole frame: an MLDv2 report of MAX_REPORT_GROUPS groups is 1,350 bytes.
    this.#scratch = new Uint8Array(this.#hdr + 1600);
    this.#lacp = this.mode === MODE_8023AD ? new Lacp8023ad(o, this.#mac, this.#hdr, io) : undefined;
    this.#tlb = this.mode === MODE_TLB || this.mode === MODE_ALB ? new TlbBalancer({ dynamic: o.tlb_dynamic_lb }) : undefined;
    this.#rlb = this.mode === MODE_ALB ? new RlbTable() : undefined;
    this.#arp =
      o.arp_interval > 0
        ? new ArpMonitor({
            intervalMs: o.arp_interval,
            targets: o.arp_ip_target.map(parseIPv4),
            validate: o.arp_validate,
            allTargets: o.arp_all_targets,
            missedMax: o.arp_missed_max,
            activeBackup: this.mode === MODE_ACTIVE_BACKUP,
          })
        : undefined;
  }

  get mac(): Uint8Array {
    return this.#mac;
  }

  /**
   * The bond takes the first slave's MAC (the driver does so when the bond's own address was
   * never set); only while it has no slaves, so the LACP system ID can be made anew.
   */
  adoptMac(mac: Uint8Array): void {
    if (this.#order.length > 0) throw new Error(`bond ${this.name} has slaves: its MAC follows the first one only`);
    this.#mac.set(mac);
    if (this.#lacp !== undefined) this.#lacp = new Lacp8023ad(this.options, this.#mac, this.#hdr, this.#io);
  }

  get slaveCount(): number {
    return this.#order.length;
  }

  /** The active slave's name (active-backup, tlb, alb), undefined when none. */
  get activeSlave(): string | undefined {
    return this.#active?.name;
  }

  slaveNames(): string[] {
    return this.#order.map((s) => s.name);
  }

  slotOf(name: string): number {
    return this.#order.find((s) => s.name === name)?.slot ?? -1;
  }

  /** Whether the mode gives every slave the bond's MAC (all but tlb/alb, and fail_over_mac active/follow). */
  slavesTakeBondMac(): boolean {
    if (this.mode === MODE_TLB || this.mode === MODE_ALB) return false;
    if (this.mode === MODE_ACTIVE_BACKUP && this.options.fail_over_mac !== 'none') return false;
    return true;
  }

  /** Adds a slave in a free slot; returns the slot. The caller has set its MAC already. */
  addSlave(config: SlaveConfig, now: number): number {
    const slot = this.#slots.indexOf(undefined);
    if (slot < 0) throw new RangeError(`bond ${this.name} has ${MAX_SLAVES} slaves already`);
    const carrier = config.carrier;
    const link = this.#arp ? { state: carrier ? LinkState.UP : LinkState.DOWN, delay: 0, failures: 0 } : initialLink(carrier, this.#delays);
    const slave = new Slave(slot, config, link);
    this.#slots[slot] = slave;
    this.#order.push(slave);
    this.#arp?.addSlave(slot, carrier, now);
    this.#tlb?.addSlave(slot, slave.speed);
    this.#rlb?.addSlave(slot, slave.mac);
    this.#lacp?.addPort(slot, slave, now);
    this.#io.event('enslaved', { slave: slave.name, link: miiStatus(link) });
    this.#linksChanged(now);
    return slot;
  }

  removeSlave(name: string, now: number): void {
    const slave = this.#order.find((s) => s.name === name);
    if (!slave) return;
    this.#slots[slave.slot] = undefined;
    this.#order.splice(this.#order.indexOf(slave), 1);
    this.#arp?.removeSlave(slave.slot);
    this.#tlb?.removeSlave(slave.slot);
    this.#rlb?.removeSlave(slave.slot);
    this.#lacp?.removePort(slave.slot, now);
    if (this.#active === slave) this.#active = undefined;
    this.#io.event('released', { slave: slave.name });
    this.#linksChanged(now);
  }

  // -------------------------------------------------------------------------------------
  // Transmit: a frame the host sent on the bond.

  /** Sends the frame on the slave(s) the mode picks; returns how many slaves took it. */
  transmit(buf: Uint8Array, off: number, len: number, now: number): number {
    this.counters.txFrames++;
    const l2 = off + this.#hdr;
    const l2len = len - this.#hdr;
    let slot = -1;
    switch (this.mode) {
      case MODE_RR:
        slot = this.#pickUsable(this.#rr.next(this.#usableCount));
        break;
      case MODE_ACTIVE_BACKUP:
        slot = this.#active !== undefined && linkUsable(this.#active.link) ? this.#active.slot : -1;
        break;
      case MODE_XOR:
        slot = this.#pickUsable(slaveIndex(xmitHash(this.#policy, buf, l2, l2len), this.#usableCount));
        break;
      case MODE_BROADCAST:
        return this.#broadcast(buf, off, len);
      case MODE_8023AD:
        slot = this.#lacp!.pick(xmitHash(this.#policy, buf, l2, l2len));
        break;
      case MODE_TLB:
      case MODE_ALB:
        slot = this.#albSlave(buf, l2, l2len, now);
        break;
    }
    if (slot < 0) {
      this.counters.txDroppedNoSlave++;
      return 0;
    }
    return this.#sendOn(slot, buf, off, len, now) ? 1 : 0;
  }

  #pickUsable(index: number): number {
    return index < 0 ? -1 : this.#usable[index]!;
  }

  #sendOn(slot: number, buf: Uint8Array, off: number, len: number, now: number): boolean {
    const slave = this.#slots[slot]!;
    if (!this.#io.send(slot, buf, off, len)) {
      this.counters.txDroppedSlaveBusy++;
      return false;
    }
    slave.txFrames++;
    slave.txBytes += len - this.#hdr;
    this.#arp?.frameSent(slot, now);
    return true;
  }

  #broadcast(buf: Uint8Array, off: number, len: number): number {
    let sent = 0;
    for (let i = 0; i < this.#usableCount; i++) {
      const slot = this.#usable[i]!;
      const slave = this.#slots[slot]!;
      if (this.#io.send(slot, buf, off, len)) {
        slave.txFrames++;
        slave.txBytes += len - this.#hdr;
        sent++;
      } else {
        this.counters.txDroppedSlaveBusy++;
      }
    }
    if (this.#usableCount === 0) this.counters.txDroppedNoSlave++;
    return sent;
  }

  /** tlb/alb: ARP through the rlb table (alb), multicast on the active slave, the rest by load. */
  #albSlave(buf: Uint8Array, l2: number, l2len: number, now: number): number {
    const active = this.#active !== undefined && linkUsable(this.#active.link) ? this.#active.slot : -1;
    if (l2len < ETH_HLEN) return active;
    const type = (buf[l2 + 12]! << 8) | buf[l2 + 13]!;
    if (type === ETH_P_ARP && this.#rlb !== undefined) {
      // Rewritten in place with the client's slave MAC when it is ours to balance.
      const slot = this.#rlb.onHostArp(buf, l2, l2len, now);
      if (slot >= 0) return slot;
    }
    let slot: number;
    if (this.options.tlb_dynamic_lb) slot = this.#tlb!.select(this.#tlb!.hashIndex(buf, l2, l2len), l2len, now);
    else if ((buf[l2]! & 1) !== 0) slot = active;
    else slot = this.#pickUsable(slaveIndex(xmitHash(this.#policy, buf, l2, l2len), this.#usableCount));
    if (slot < 0) return -1;
    // A slave other than the active one sends with its own MAC: the bond's MAC stays learned
    // on the active slave's switch port, which is where replies must arrive (tlb).
    if (slot !== active) buf.set(this.#slots[slot]!.mac, l2 + 6);
    return slot;
  }

  // -------------------------------------------------------------------------------------
  // Receive: a frame a slave's socket read.

  /** Decides what happens to a frame received on a slave: RX_DELIVER (to the host), RX_DROP or RX_CONSUMED. */
  receive(slot: number, buf: Uint8Array, off: number, len: number, packetType: number, now: number): number {
    const slave = this.#slots[slot];
    this.counters.rxFrames++;
    if (slave === undefined) return RX_DROP;
    slave.rxFrames++;
    slave.rxBytes += len - this.#hdr;
    const l2 = off + this.#hdr;
    const l2len = len - this.#hdr;
    if (l2len < ETH_HLEN) return RX_DROP;
    const type = (buf[l2 + 12]! << 8) | buf[l2 + 13]!;
    if (type === ETH_P_SLOW) {
      if (this.#lacp === undefined) {
        this.counters.slowProtocolsDropped++;
        return RX_DROP;
      }
      const kind = this.#lacp.receive(slot, buf, l2, l2len, now);
      if (kind === SlowFrame.LACPDU) this.counters.lacpdusReceived++;
      else if (kind === SlowFrame.BAD) this.counters.lacpdusBad++;
      this.counters.markersAnswered = this.#lacp.markersAnswered;
      this.counters.markerResponsesReceived = this.#lacp.markerResponsesReceived;
      return RX_CONSUMED;
    }
    // The ARP monitor sees every frame, ours coming back included, as the driver's
    // bond_rcv_validate does: a backup learns its path works from the active slave's probes
    // flooded back to it (arp_validate backup/all depend on exactly that).
    if (this.#arp !== undefined) {
      this.#arp.frameReceived(slot, now);
      // Only ARP meant for this host validates a slave: broadcast, or to one of our MACs.
      if (type === ETH_P_ARP && l2len >= ETH_HLEN + 28 && ((buf[l2]! & 1) !== 0 || packetType !== PACKET_OTHERHOST)) {
        const a = l2 + ETH_HLEN;
        this.#arp.arpReceived(slot, buf[a + ARP_OFF_OP + 1]!, readU32(buf, a + ARP_OFF_SPA), readU32(buf, a + ARP_OFF_TPA), this.#bondIp(), now);
      }
    }
    // Our own frames coming back (a bridge flooding what another slave sent) would teach the
    // host stack its own address is elsewhere.
    if (this.#fromUs(buf, l2 + 6)) {
      this.counters.rxDroppedLooped++;
      return RX_DROP;
    }
    if (type === ETH_P_ARP && this.#rlb !== undefined) this.#rlb.onWireArp(buf, l2, l2len, now);
    if (!this.#acceptsFrom(slave, buf, l2)) {
      this.counters.rxDroppedInactive++;
      return RX_DROP;
    }
    if (packetType === PACKET_OTHERHOST && !this.promiscuous) {
      this.counters.rxDroppedNotForUs++;
      return RX_DROP;
    }
    // alb: a peer taught a slave's own MAC sends to it; the TAP only takes the bond's MAC.
    if (this.mode === MODE_ALB && (buf[l2]! & 1) === 0 && !macEquals(buf, l2, this.#mac, 0) && macEquals(buf, l2, slave.mac, 0)) buf.set(this.#mac, l2);
    this.counters.rxDelivered++;
    return RX_DELIVER;
  }

  /** The source MAC is the bond's, or (tlb/alb, where slaves keep their own) one of its slaves'. */
  #fromUs(buf: Uint8Array, srcOff: number): boolean {
    if (macEquals(buf, srcOff, this.#mac, 0)) return true;
    if (this.mode !== MODE_TLB && this.mode !== MODE_ALB) return false;
    for (const slave of this.#order) if (macEquals(buf, srcOff, slave.mac, 0)) return true;
    return false;
  }

  /** The driver's inactive-slave rule (bond_should_deliver_exact_match and friends). */
  #acceptsFrom(slave: Slave, buf: Uint8Array, l2: number): boolean {
    switch (this.mode) {
      case MODE_ACTIVE_BACKUP:
      case MODE_TLB:
        return slave === this.#active || this.options.all_slaves_active;
      case MODE_8023AD:
        return this.#lacp!.collecting(slave.slot) || this.options.all_slaves_active;
      case MODE_ALB:
        // Every slave receives its own unicast; broadcasts and multicasts count once, on the active one.
        return (buf[l2]! & 1) === 0 || slave === this.#active || this.options.all_slaves_active;
      default:
        return linkUsable(slave.link);
    }
  }

  // -------------------------------------------------------------------------------------
  // Time: monitors, LACP, notifications. Call often (every 10 ms); each part runs when due.

  tick(now: number): void {
    const o = this.options;
    if (this.#rlb !== undefined) this.counters.rlbEvictions = this.#rlb.evictions;
    if (o.miimon > 0 && now >= this.#nextMii) {
      this.#nextMii = now + o.miimon;
      this.#miimonTick(now);
    }
    if (this.#arp !== undefined && now >= this.#nextArp) {
      this.#nextArp = now + o.arp_interval;
      this.#arpTick(now);
    }
    // LACP's timers run on every call, not on the driver's 100 ms tick: a partner's timeout
    // is seen within the caller's period (10 ms) of its 3 s.
    if (this.#lacp !== undefined && this.#lacp.tick(now)) this.#linksChanged(now);
    if (now >= this.#nextTick) {
      this.#nextTick = now + BOND_TICK_MS;
      this.#tlb?.tick(now);
      if (this.#rlb !== undefined) {
        this.#rlb.setBondIp(this.#bondIp());
        this.#rlbNow = now;
        this.#rlb.drainUpdates(now, this.#rlbOut, this.#sendRlbUpdate);
      }
      this.#peerNotifyTick(now);
      this.#resendIgmpTick(now);
      if ((this.mode === MODE_TLB || this.mode === MODE_ALB) && now >= this.#nextLearning) {
        this.#nextLearning = now + o.lp_interval * 1000;
        this.#sendLearningPackets(now);
      }
    }
  }

  #miimonTick(now: number): void {
    let changed = false;
    for (const slave of this.#order) {
      const carrier = this.#io.carrier(slave.slot);
      const event = inspectLink(slave.link, carrier, this.#delays);
      if (event === LinkEvent.NONE) continue;
      this.#io.event('link', { slave: slave.name, change: event, state: miiStatus(slave.link), failures: slave.link.failures });
      if (event === LinkEvent.UP) {
        const { speed, fullDuplex } = this.#io.linkSpeed(slave.slot);
        slave.speed = speed;
        slave.fullDuplex = fullDuplex;
        slave.duplex = fullDuplex === true ? 1 : 0;
      }
      // Only committed changes choose again (the driver's bond_miimon_commit): a carrier blip
      // shorter than downdelay must not move traffic. A slave coming back is the exception
      // when nothing is active: it is the likeliest link, and is made active at once.
      if (event === LinkEvent.UP || event === LinkEvent.DOWN || (event === LinkEvent.COMING_UP && this.#active === undefined)) changed = true;
    }
    if (changed) this.#linksChanged(now);
  }

  /** The driver's order: commit link changes, choose the active slave again, then probe. */
  #arpTick(now: number): void {
    const arp = this.#arp!;
    for (const slave of this.#order) {
      const carrier = this.#io.carrier(slave.slot);
      if (carrier !== slave.carrier) {
        slave.carrier = carrier;
        arp.carrierChanged(slave.slot, carrier);
      }
    }
    const changed = this.#applyArpChanges(arp.tick(now));
    if (changed) this.#linksChanged(now);
    if (this.#applyArpChanges(arp.probe(now, this.#arpProbes))) this.#linksChanged(now);
    const from = this.#bondIp();
    for (const probe of this.#arpProbes) {
      const slave = this.#slots[probe.slave];
      if (slave === undefined) continue;
      const mac = this.slavesTakeBondMac() ? this.#mac : slave.mac;
      const length = buildArpRequest(this.#scratch, this.#hdr, { ethSrc: mac, senderIp: from, targetIp: probe.target });
      if (this.#sendControl(probe.slave, this.#hdr, length, now)) this.counters.arpProbesSent++;
    }
  }

  #applyArpChanges(changes: readonly ArpLinkChange[]): boolean {
    for (const change of changes) {
      const slave = this.#slots[change.slave];
      if (slave === undefined) continue;
      slave.link.state = change.up ? LinkState.UP : LinkState.DOWN;
      slave.link.failures = this.#arp!.slaveInfo(change.slave)?.failures ?? slave.link.failures + (change.up ? 0 : 1);
      this.#io.event('link', { slave: slave.name, change: change.up ? 'up' : 'down', state: miiStatus(slave.link), failures: slave.link.failures, monitor: 'arp' });
    }
    return changes.length > 0;
  }

  /**
   * Sends a frame the bond built in its scratch buffer at `l2Off` (≥ the header length): a
   * zeroed virtio-net header goes right before it (no offloads asked for).
   */
  #sendControl(slot: number, l2Off: number, length: number, now: number): boolean {
    const slave = this.#slots[slot];
    if (slave === undefined) return false;
    this.#scratch.fill(0, l2Off - this.#hdr, l2Off);
    if (!this.#io.send(slot, this.#scratch, l2Off - this.#hdr, this.#hdr + length)) return false;
    slave.txFrames++;
    slave.txBytes += length;
    this.#arp?.frameSent(slot, now);
    return true;
  }

  /** After any link change: the usable list, the active slave, LACP's view of the links. */
  #linksChanged(now: number): void {
    this.#rebuildUsable();
    for (const slave of this.#order) {
      this.#tlb?.setUsable(slave.slot, linkUsable(slave.link));
      this.#rlb?.setUsable(slave.slot, linkUsable(slave.link));
      this.#lacp?.setLink(slave.slot, slave, now);
    }
    if (this.mode === MODE_ACTIVE_BACKUP || this.mode === MODE_TLB || this.mode === MODE_ALB) this.#reselectActive(now);
  }

  #rebuildUsable(): void {
    let n = 0;
    for (const slave of this.#order) if (linkUsable(slave.link)) this.#usable[n++] = slave.slot;
    this.#usableCount = n;
  }

  #reselectActive(now: number): void {
    const primary = this.options.primary === undefined ? -1 : this.#order.findIndex((s) => s.name === this.options.primary);
    const current = this.#active === undefined ? -1 : this.#order.indexOf(this.#active);
    const chosen = chooseActive(this.#order, current, primary, this.options.primary_reselect);
    const next = chosen < 0 ? undefined : this.#order[chosen];
    if (next === this.#active) return;
    if (next !== undefined && next.link.state === LinkState.BACK) {
      // The driver's "making interface X the new active one N ms earlier": a slave in updelay
      // chosen because nothing better is up carries traffic at once.
      this.#io.event('link', { slave: next.name, change: 'up-early', state: 'up', delayLeftMs: next.link.delay * this.options.miimon, failures: next.link.failures });
      next.link.state = LinkState.UP;
      next.link.delay = 0;
      this.#rebuildUsable();
      this.#tlb?.setUsable(next.slot, true);
      this.#rlb?.setUsable(next.slot, true);
    }
    const previous = this.#active;
    this.#active = next;
    this.counters.activeChanges++;
    this.#io.event('active', { slave: next?.name, previous: previous?.name });
    this.#tlb?.setActiveSlave(next?.slot ?? -1);
    this.#arp?.setActive(next?.slot ?? -1, now);
    if (next === undefined) return;
    this.#moveBondMac(previous, next);
    if (this.mode === MODE_ACTIVE_BACKUP) {
      this.#notifyLeft = this.options.num_grat_arp;
      this.#notifyAt = now;
      this.#peerNotifyTick(now);
    }
    // The driver's bond_change_active_slave: the modes with an active slave send the host's
    // membership reports through the new one, resend_igmp times, 200 ms apart.
    if (this.options.resend_igmp > 0) {
      this.#igmpLeft = this.options.resend_igmp;
      this.#igmpAt = now;
      this.#resendIgmpTick(now);
    }
  }

  /**
   * resend_igmp: an IGMPv3 report of the host's IPv4 groups on the bond (from its first IPv4
   * address, or 0.0.0.0) and an MLDv2 report of its IPv6 groups (from its link-local address),
   * on the active slave; what the kernel's NETDEV_RESEND_IGMP makes it send.
   */
  #resendIgmpTick(now: number): void {
    if (this.#igmpLeft <= 0 || now < this.#igmpAt || this.#active === undefined) return;
    const groups = this.#io.bondGroups?.() ?? { v4: [], v6: [] };
    if (groups.v4.length > 0) {
      this.#scratch.fill(0, 0, this.#hdr);
      const length = buildIgmpv3Report(this.#scratch, this.#hdr, { ethSrc: this.#mac, ipSrc: this.#io.bondAddresses()[0] ?? 0, groups: groups.v4 });
      if (this.#sendControl(this.#active.slot, this.#hdr, length, now)) this.counters.igmpReportsSent++;
    }
    const linkLocal = (this.#io.bondAddresses6?.() ?? []).find((a) => a[0] === 0xfe && (a[1]! & 0xc0) === 0x80);
    if (groups.v6.length > 0 && linkLocal !== undefined) {
      this.#scratch.fill(0, 0, this.#hdr);
      const length = buildMldv2Report(this.#scratch, this.#hdr, { ethSrc: this.#mac, ipSrc: linkLocal, groups: groups.v6 });
      if (this.#sendControl(this.#active.slot, this.#hdr, length, now)) this.counters.mldReportsSent++;
    }
    this.#igmpLeft--;
    this.#igmpAt = now + RESEND_IGMP_INTERVAL_MS;
  }

  /** The bond's MAC follows the active slave where the mode or fail_over_mac says so. */
  #moveBondMac(previous: Slave | undefined, next: Slave): void {
    if (this.mode === MODE_TLB || this.mode === MODE_ALB || (this.mode === MODE_ACTIVE_BACKUP && this.options.fail_over_mac === 'follow')) {
      // The driver's alb_swap_mac_addr / follow: the new active takes the bond's MAC, the old
      // one takes the new one's, so both stay unique and peers keep reaching the bond's MAC.
      if (macEquals(next.mac, 0, this.#mac, 0)) return;
      const nextOwn = Uint8Array.from(next.mac);
      next.mac.set(this.#mac);
      this.#io.setSlaveMac(next.slot, next.mac);
      // Adding a known slave again only changes its MAC: the rlb table re-tells its clients.
      this.#rlb?.addSlave(next.slot, next.mac);
      if (previous !== undefined && this.#slots[previous.slot] === previous) {
        previous.mac.set(nextOwn);
        this.#io.setSlaveMac(previous.slot, previous.mac);
        this.#rlb?.addSlave(previous.slot, previous.mac);
      }
    } else if (this.mode === MODE_ACTIVE_BACKUP && this.options.fail_over_mac === 'active') {
      this.#mac.set(next.mac);
      this.#io.setBondMac(this.#mac);
    }
  }

  /**
   * active-backup: num_grat_arp (alias num_unsol_na) peer notifications on the new active slave,
   * peer_notif_delay apart, as the driver's: a gratuitous ARP for each IPv4 address and an
   * unsolicited neighbour advertisement (to all nodes, override) for each IPv6 address.
   */
  #peerNotifyTick(now: number): void {
    if (this.#notifyLeft <= 0 || now < this.#notifyAt || this.#active === undefined) return;
    const addresses = this.#io.bondAddresses();
    const addresses6 = this.#io.bondAddresses6?.() ?? [];
    if (addresses.length === 0 && addresses6.length === 0) {
      this.#notifyLeft = 0;
      return;
    }
    for (const ip of addresses) {
      const length = buildGratuitousArp(this.#scratch, this.#hdr, { ethSrc: this.#mac, senderMac: this.#mac, ip });
      if (this.#sendControl(this.#active.slot, this.#hdr, length, now)) this.counters.gratuitousArpsSent++;
    }
    for (const address of addresses6) {
      this.#scratch.fill(0, 0, this.#hdr);
      const length = buildUnsolicitedAdvertisement(this.#scratch, this.#hdr, { ethSrc: this.#mac, vip: address, clusterMac: this.#mac });
      if (this.#sendControl(this.#active.slot, this.#hdr, length, now)) this.counters.unsolicitedNasSent++;
    }
    this.#notifyLeft--;
    this.#notifyAt = now + Math.max(this.options.peer_notif_delay, BOND_TICK_MS);
  }

  #sendLearningPackets(now: number): void {
    for (const slave of this.#order) {
      if (slave === this.#active || !linkUsable(slave.link)) continue;
      const length = buildLearningPacket(this.#scratch, this.#hdr, slave.mac);
      this.#sendControl(slave.slot, this.#hdr, length, now);
    }
  }

  #bondIp(): number {
    const addresses = this.#io.bondAddresses();
    return addresses.length > 0 ? addresses[0]! : 0;
  }

  // -------------------------------------------------------------------------------------
  // Status

  slaveCounters(name: string): SlaveCounters | undefined {
    const s = this.#order.find((x) => x.name === name);
    return s === undefined ? undefined : { txFrames: s.txFrames, txBytes: s.txBytes, rxFrames: s.rxFrames, rxBytes: s.rxBytes };
  }

  slaveMac(name: string): Uint8Array | undefined {
    return this.#order.find((x) => x.name === name)?.mac;
  }

  slaveLinkState(name: string): LinkState | undefined {
    return this.#order.find((x) => x.name === name)?.link.state;
  }

  /** 802.3ad port states by slave name (actor, partner). */
  portStates(name: string): { actorState: number; partnerState: number } | undefined {
    const slot = this.slotOf(name);
    return slot < 0 || this.#lacp === undefined ? undefined : this.#lacp.portStates(slot);
  }

  /** Slaves that carry traffic now (rr/xor/broadcast: usable; 802.3ad: distributing; others: active). */
  carriesTraffic(name: string): boolean {
    const slave = this.#order.find((x) => x.name === name);
    if (slave === undefined) return false;
    if (this.mode === MODE_8023AD) return this.#lacp!.collecting(slave.slot);
    if (this.mode === MODE_ACTIVE_BACKUP) return slave === this.#active;
    return linkUsable(slave.link);
  }

  statusView(): BondStatusView {
    const o = this.options;
    const slaves: SlaveStatusView[] = this.#order.map((s) => {
      const view: SlaveStatusView = {
        name: s.name,
        miiStatus: miiStatus(s.link),
        speed: s.speed > 0 ? s.speed : undefined,
        duplex: s.fullDuplex === undefined ? undefined : s.fullDuplex ? 'full' : 'half',
        linkFailures: s.link.failures,
        permanentMac: formatMac(s.permanentMac),
        queueId: 0,
      };
      if (this.#lacp !== undefined) {
        view.aggregatorId = this.#lacp.aggregatorOf(s.slot);
        const lacp = this.#lacp.portView(s.slot);
        if (lacp !== undefined) view.lacp = lacp;
        const why = this.#lacp.whyNotDistributing(s.slot);
        if (why !== undefined) view.notDistributingBecause = why;
      }
      return view;
    });
    const anyUp = this.mode === MODE_8023AD ? this.#lacp!.hasActiveAggregator() : this.#usableCount > 0;
    const view: BondStatusView = {
      version: this.#version,
      mode: this.mode,
      primary: o.primary,
      primaryReselect: o.primary_reselect,
      active: this.#active?.name,
      miiStatus: anyUp ? 'up' : 'down',
      miimonMs: o.miimon,
      updelayMs: o.updelay,
      downdelayMs: o.downdelay,
      peerNotifyDelayMs: o.peer_notif_delay,
      xmitHashPolicy: { name: o.xmit_hash_policy, value: this.#policy },
      slaves,
    };
    if (o.arp_interval > 0) view.arp = { intervalMs: o.arp_interval, missedMax: o.arp_missed_max, targets: [...o.arp_ip_target] };
    if (this.#lacp !== undefined) view.ad = this.#lacp.statusView();
    return view;
  }

  optionWords(): string[] {
    return formatBondOptions(this.options);
  }
}
