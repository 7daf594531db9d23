/**
 * balance-tlb and balance-alb (the driver's drivers/net/bonding/bond_alb.c), pure: frames and
 * slave events in, the slave to send on, rewritten ARP frames and client updates out. Time is
 * passed in as `now` in ms; nothing here does I/O or keeps a timer.
 *
 * Transmit load balancing (TlbBalancer, both modes):
 *
 *   frame ──hashIndex──► bucket 0..255 ──select──► slave (the least loaded when the bucket is new)
 *         └────────────► TLB_UNBALANCED ──select──► the active slave (broadcast, ARP, non-IP)
 *
 *   per bucket (256)  bucketSlave Int8   bucketBytes f64 (this interval)  bucketHistory f64 (B/s)
 *   per slave  (32)   speed f64  usable u8  assignedLoad f64 (B/s, the driver's tlb load)
 *                     intervalBytes f64  measured f64 (B/s, the last interval: load())
 *
 * Every rebalance interval (10 s, BOND_TLB_REBALANCE_INTERVAL) each bucket's bytes become its
 * load history (bytes/s), every bucket is unassigned, and the next frame of a bucket puts it on
 * the slave with the largest gap `speed·2^20 − load·8` (bits/s, compute_gap), adding the bucket's
 * history to that slave's load, so buckets are re-placed in the order their frames arrive, each
 * where there is the most room for what it carried last time. A slave that stops being usable loses its buckets at once
 * (tlb_clear_slave without saving the load); a slave that becomes usable orders a rebalance on
 * the next tick (the driver sets tx_rebalance_counter to BOND_TLB_REBALANCE_TICKS).
 *
 * Receive load balancing (RlbTable, balance-alb only): every ARP the host sends from the bond's
 * address to a client goes out on the slave chosen for that client with that slave's MAC as the
 * Ethernet source and ARP sender hardware address, so the client sends its frames to that slave.
 * When slaves come and go the clients are moved and told with ARP replies (RLB_UPDATE_RETRY
 * times each).
 *
 *   per client slot (capacity)  clientIp u32  clientMac 6·u8  macKnown u8  clientSlave i8
 *                               updatesLeft u8 (0 = nothing to tell)
 *   ip → slot                   Map<number, number>; slots are dense 0..size-1
 *   per slave (32)              mac 6·u8  speed f64  usable u8  clientsOn i32
 *
 * Per-frame paths (hashIndex, select, onHostArp, onWireArp, drainUpdates) allocate nothing but
 * the Map entry of a new client: typed arrays made in the constructors, one ArpResult and one
 * ArpFrameFields per table.
 */
import { parseArp, createArpResult, buildArpReply, ArpParse, ARPR_OP, ARPR_SENDER_IP, ARPR_TARGET_IP, ARP_OFF_SHA, ARP_OP_REQUEST, ARP_FRAME_LENGTH, type ArpFrameFields } from '../net/arp.js';
import { copyMac, ETH_ALEN, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, ETH_TYPE_OFFSET, ETH_ZLEN, formatMac, isMulticastMac, macEquals, writeEthernetHeader } from '../net/ethernet.js';
import { formatIPv4 } from '../net/ipv4.js';

/** Slave indices are 0..MAX_ALB_SLAVES-1, chosen by the caller. */
export const MAX_ALB_SLAVES = 32;
/** TLB_HASH_TABLE_SIZE: buckets of the transmit table. */
export const TLB_HASH_TABLE_SIZE = 256;
/** BOND_TLB_REBALANCE_INTERVAL (10 s). */
export const TLB_REBALANCE_INTERVAL_MS = 10_000;
/** What hashIndex returns for a frame the driver does not balance: it leaves by the active slave. */
export const TLB_UNBALANCED = -1;
/** Speed assumed for a slave that does not report one (the driver's enslave default, 100 Mb/s). */
export const ALB_DEFAULT_SPEED_MBPS = 100;
/** RLB_UPDATE_RETRY: ARP replies sent to each client that was moved. */
export const RLB_UPDATE_RETRY = 3;
/**
 * RLB_UPDATE_DELAY (2 ticks of ALB_TIMER_TICKS_PER_SEC = 10): after the host broadcasts an ARP
 * from the bond's address, client updates wait this long so they arrive after it and undo it.
 */
export const RLB_UPDATE_DELAY_MS = 200;
/**
 * Clients an RlbTable holds unless told otherwise: the driver's RLB_HASH_TABLE_SIZE. The driver
 * can never hold more (one client per hash bucket of the IP, fewer when addresses collide); we
 * key by the exact address, so 256 clients always fit.
 */
export const RLB_DEFAULT_CAPACITY = 256;
/** ETH_P_LOOPBACK, the EtherType of the driver's learning packets. */
export const ETH_P_LOOPBACK = 0x9000;

const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const IPPROTO_IGMP = 2;
const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
/** compute_gap turns Mb/s into bits/s with `speed << 20`. */
const MBPS_TO_BITS = 1 << 20;

function checkSlave(slave: number): void {
  if (!Number.isInteger(slave) || slave < 0 || slave >= MAX_ALB_SLAVES) {
    throw new RangeError(`alb slave index ${slave} is not an integer 0..${MAX_ALB_SLAVES - 1}`);
  }
}

function effectiveSpeed(speedMbps: number): number {
  return speedMbps > 0 ? speedMbps : ALB_DEFAULT_SPEED_MBPS;
}

/** is_valid_ether_addr: neither zero nor a group address. */
function isValidUnicastMac(b: Uint8Array, off: number): boolean {
  return (b[off]! & 1) === 0 && (b[off]! | b[off + 1]! | b[off + 2]! | b[off + 3]! | b[off + 4]! | b[off + 5]!) !== 0;
}

/**
 * The insertion order of the slaves: the driver walks its slave list in enslave order and
 * breaks ties by taking the first.
 */
class SlaveOrder {
  readonly list = new Int8Array(MAX_ALB_SLAVES);
  count = 0;

  add(slave: number): void {
    for (let i = 0; i < this.count; i++) if (this.list[i] === slave) return;
    this.list[this.count++] = slave;
  }

  remove(slave: number): void {
    let j = 0;
    for (let i = 0; i < this.count; i++) {
      const s = this.list[i]!;
      if (s !== slave) this.list[j++] = s;
    }
    this.count = j;
  }
}

// ---------------------------------------------------------------------------------------------
// Transmit load balancing

export interface TlbOptions {
  /** tlb_dynamic_lb: place buckets by load (true) or leave balanced frames to xmit_hash_policy. */
  dynamic: boolean;
  /** Time between rebalances; BOND_TLB_REBALANCE_INTERVAL (10 s) by default. */
  rebalanceMs?: number;
}

export class TlbBalancer {
  readonly dynamic: boolean;
  readonly rebalanceMs: number;

  private readonly bucketSlave = new Int8Array(TLB_HASH_TABLE_SIZE).fill(-1);
  private readonly bucketBytes = new Float64Array(TLB_HASH_TABLE_SIZE);
  /**
   * Bytes/s of the bucket when last measured, plus 1: the driver's load_history. It starts at 1
   * here (the driver starts at 0) so that new flows spread from the first interval on instead of
   * all landing on the first slave until the first rebalance.
   */
  private readonly bucketHistory = new Float64Array(TLB_HASH_TABLE_SIZE).fill(1);

  private readonly present = new Uint8Array(MAX_ALB_SLAVES);
  private readonly usable = new Uint8Array(MAX_ALB_SLAVES);
  private readonly speedMbps = new Float64Array(MAX_ALB_SLAVES);
  /** The driver's SLAVE_TLB_INFO(slave).load: the histories of the buckets placed on it. */
  private readonly assignedLoad = new Float64Array(MAX_ALB_SLAVES);
  private readonly intervalBytes = new Float64Array(MAX_ALB_SLAVES);
  private readonly measured = new Float64Array(MAX_ALB_SLAVES);
  private readonly order = new SlaveOrder();

  private active = -1;
  /** unbalanced_load: bytes sent on the active slave outside the buckets this interval. */
  private unbalancedBytes = 0;
  private intervalStart = Number.NaN;
  private rebalanceSoon = false;

  constructor(options: TlbOptions) {
    this.dynamic = options.dynamic;
    const ms = options.rebalanceMs ?? TLB_REBALANCE_INTERVAL_MS;
    if (!(ms > 0)) throw new RangeError(`tlb rebalance interval ${ms} ms must be positive`);
    this.rebalanceMs = ms;
  }

  /**
   * Adds a slave, usable at once (call setUsable(slave, false) for one whose link is down).
   * Adding a slave that is already there only updates its speed.
   */
  addSlave(slave: number, speedMbps: number): void {
    checkSlave(slave);
    this.speedMbps[slave] = effectiveSpeed(speedMbps);
    if (this.present[slave] === 1) return;
    this.present[slave] = 1;
    this.usable[slave] = 1;
    this.assignedLoad[slave] = 0;
    this.intervalBytes[slave] = 0;
    this.measured[slave] = 0;
    this.order.add(slave);
    this.rebalanceSoon = true; // bond_alb_init_slave: "order a rebalance ASAP"
  }

  removeSlave(slave: number): void {
    checkSlave(slave);
    if (this.present[slave] === 0) return;
    this.clearSlave(slave);
    this.present[slave] = 0;
    this.usable[slave] = 0;
    this.measured[slave] = 0;
    this.intervalBytes[slave] = 0;
    this.order.remove(slave);
    if (this.active === slave) this.active = -1;
  }

  /** Link up/down (bond_alb_handle_link_change). No effect on a slave that is not there. */
  setUsable(slave: number, usable: boolean): void {
    checkSlave(slave);
    if (this.present[slave] === 0 || (this.usable[slave] === 1) === usable) return;
    this.usable[slave] = usable ? 1 : 0;
    if (usable) this.rebalanceSoon = true;
    else this.clearSlave(slave);
  }

  /**
   * The bond's current active slave (curr_active_slave, chosen by the caller as for
   * active-backup): it carries the unbalanced frames and is the one that receives in tlb. -1 or
   * an unusable slave: the first usable slave in the order they were added stands in.
   */
  setActiveSlave(slave: number): void {
    if (slave !== -1) checkSlave(slave);
    this.active = slave;
  }

  /** The slave unbalanced frames leave by now; -1 when no slave is usable. */
  activeSlave(): number {
    const a = this.active;
    if (a >= 0 && this.usable[a] === 1) return a;
    for (let i = 0; i < this.order.count; i++) {
      const s = this.order.list[i]!;
      if (this.usable[s] === 1) return s;
    }
    return -1;
  }

  /**
   * The tlb bucket of the frame of `len` bytes at `l2Off`, or TLB_UNBALANCED for a frame that
   * leaves by the active slave. We follow the driver's balance-alb transmit path
   * (bond_xmit_alb_slave_get) in both modes:
   *   - a group destination MAC (broadcast or multicast): not balanced (bond_xmit_tlb_slave_get's
   *     rule; alb's own only excludes broadcast, and the IPv6 all-nodes group is multicast);
   *   - IPv4: _simple_hash (the XOR of the bytes) of the destination address, except the limited
   *     broadcast 255.255.255.255 and IGMP, which are not balanced;
   *   - IPv6: _simple_hash of the 16 destination address bytes, except from :: (DAD probes);
   *   - ARP and every other EtherType: not balanced (in balance-alb the RlbTable places the ARPs
   *     the host sends from the bond's address).
   * The current driver's tlb path hashes IP frames with xmit_hash_policy & 0xff instead, which
   * with the default layer2 puts all traffic through one router on one bucket; the destination
   * address spreads by peer. One 802.1Q/802.1ad tag is skipped (the driver sees the tag as
   * metadata). A frame cut short before the header it needs is not balanced.
   */
  hashIndex(buf: Uint8Array, l2Off: number, len: number): number {
    let end = l2Off + len;
    if (end > buf.length) end = buf.length;
    if (!(l2Off >= 0) || !(end - l2Off >= ETH_HLEN)) return TLB_UNBALANCED;
    if (isMulticastMac(buf, l2Off)) return TLB_UNBALANCED;
    let type = (buf[l2Off + ETH_TYPE_OFFSET]! << 8) | buf[l2Off + ETH_TYPE_OFFSET + 1]!;
    let nh = l2Off + ETH_HLEN;
    if ((type === ETH_P_8021Q || type === ETH_P_8021AD) && nh + 4 <= end) {
      type = (buf[nh + 2]! << 8) | buf[nh + 3]!;
      nh += 4;
    }
    if (type === ETH_P_IP) {
      if (nh + IPV4_HEADER > end) return TLB_UNBALANCED;
      const d = nh + 16;
      const a = buf[d]!;
      const b = buf[d + 1]!;
      const c = buf[d + 2]!;
      const e = buf[d + 3]!;
      if ((a & b & c & e) === 0xff || buf[nh + 9] === IPPROTO_IGMP) return TLB_UNBALANCED;
      return a ^ b ^ c ^ e;
    }
    if (type === ETH_P_IPV6) {
      if (nh + IPV6_HEADER > end) return TLB_UNBALANCED;
      let src = 0;
      for (let i = nh + 8; i < nh + 24; i++) src |= buf[i]!;
      if (src === 0) return TLB_UNBALANCED;
      let h = 0;
      for (let i = nh + 24; i < nh + 40; i++) h ^= buf[i]!;
      return h;
    }
    return TLB_UNBALANCED;
  }

  /**
   * The slave a frame of `bytes` bytes in `bucket` leaves by; -1 when none is usable.
   *   - TLB_UNBALANCED (any bucket outside 0..255): the active slave (activeSlave()), in both
   *     modes; with `dynamic` its bytes count toward that slave's load at the next rebalance.
   *   - `dynamic` false: -1 for a bucket, meaning "not placed here": the caller places balanced
   *     frames with xmitHash over the usable slaves (tlb_dynamic_lb=0).
   *   - `dynamic` true: the bucket's slave while it stays usable, else the slave with the
   *     largest gap (tlb_get_least_loaded_slave), which then keeps it until the next rebalance.
   * `now` starts the first measuring interval when tick has not yet.
   */
  select(bucket: number, bytes: number, now: number): number {
    if (Number.isNaN(this.intervalStart)) this.intervalStart = now;
    if (!(bucket >= 0 && bucket < TLB_HASH_TABLE_SIZE)) {
      const s = this.activeSlave();
      if (s >= 0 && this.dynamic) {
        this.unbalancedBytes += bytes;
        this.intervalBytes[s] = this.intervalBytes[s]! + bytes;
      }
      return s;
    }
    if (!this.dynamic) return -1;
    const b = bucket | 0;
    let s = this.bucketSlave[b]!;
    if (s < 0 || this.usable[s] === 0) {
      s = this.leastLoaded();
      if (s < 0) {
        this.bucketSlave[b] = -1;
        return -1;
      }
      this.bucketSlave[b] = s;
      this.assignedLoad[s] = this.assignedLoad[s]! + this.bucketHistory[b]!;
    }
    this.bucketBytes[b] = this.bucketBytes[b]! + bytes;
    this.intervalBytes[s] = this.intervalBytes[s]! + bytes;
    return s;
  }

  /**
   * The periodic handler (the driver's alb monitor ticks every 100 ms): rebalances once
   * rebalanceMs have passed since the last one, or at once after a slave was added or came up.
   */
  tick(now: number): void {
    if (Number.isNaN(this.intervalStart)) {
      this.intervalStart = now;
      return;
    }
    if (this.order.count === 0) {
      // bond_alb_monitor without slaves: the counters start again.
      this.intervalStart = now;
      this.rebalanceSoon = false;
      this.unbalancedBytes = 0;
      return;
    }
    if (!this.rebalanceSoon && now - this.intervalStart < this.rebalanceMs) return;
    this.rebalance(now);
  }

  /** Bytes/s the slave sent in the last measured interval (0 before the first rebalance). */
  load(slave: number): number {
    checkSlave(slave);
    return this.measured[slave]!;
  }

  /** The slave the bucket is placed on, -1 when unassigned (status and tests). */
  assignedSlave(bucket: number): number {
    return bucket >= 0 && bucket < TLB_HASH_TABLE_SIZE ? this.bucketSlave[bucket | 0]! : -1;
  }

  /** How many buckets are placed on the slave. */
  bucketCount(slave: number): number {
    checkSlave(slave);
    let n = 0;
    for (let b = 0; b < TLB_HASH_TABLE_SIZE; b++) if (this.bucketSlave[b] === slave) n++;
    return n;
  }

  /**
   * The monitor's rebalance: tlb_clear_slave(save_load) on every slave, then the active slave
   * starts with the unbalanced share. The driver divides by the fixed 10 s even when a new
   * slave made the rebalance come early; we divide by the time that really passed.
   */
  private rebalance(now: number): void {
    let elapsedMs = now - this.intervalStart;
    if (!(elapsedMs > 0)) elapsedMs = this.rebalanceMs;
    const perSecond = 1000 / elapsedMs;
    for (let b = 0; b < TLB_HASH_TABLE_SIZE; b++) {
      if (this.bucketSlave[b]! >= 0 || this.bucketBytes[b]! > 0) {
        this.bucketHistory[b] = 1 + this.bucketBytes[b]! * perSecond;
        this.bucketBytes[b] = 0;
      }
      this.bucketSlave[b] = -1;
    }
    for (let s = 0; s < MAX_ALB_SLAVES; s++) {
      this.measured[s] = this.intervalBytes[s]! * perSecond;
      this.intervalBytes[s] = 0;
      this.assignedLoad[s] = 0;
    }
    const a = this.activeSlave();
    if (a >= 0) this.assignedLoad[a] = this.unbalancedBytes * perSecond;
    this.unbalancedBytes = 0;
    this.intervalStart = now;
    this.rebalanceSoon = false;
  }

  /** tlb_clear_slave without saving the load: the buckets find a new slave on their next frame. */
  private clearSlave(slave: number): void {
    for (let b = 0; b < TLB_HASH_TABLE_SIZE; b++) if (this.bucketSlave[b] === slave) this.bucketSlave[b] = -1;
    this.assignedLoad[slave] = 0;
  }

  private leastLoaded(): number {
    let best = -1;
    let maxGap = -Infinity;
    for (let i = 0; i < this.order.count; i++) {
      const s = this.order.list[i]!;
      if (this.usable[s] === 0) continue;
      const gap = this.speedMbps[s]! * MBPS_TO_BITS - this.assignedLoad[s]! * 8;
      if (gap > maxGap) {
        maxGap = gap;
        best = s;
      }
    }
    return best;
  }
}

// ---------------------------------------------------------------------------------------------
// Receive load balancing

export interface RlbOptions {
  /** Most clients held; RLB_DEFAULT_CAPACITY by default. */
  capacity?: number;
}

export interface RlbClient {
  ip: string;
  /** 00:00:00:00:00:00 until learnt. */
  mac: string;
  /** -1 while no slave is usable. */
  slave: number;
}

/**
 * The clients of balance-alb's receive balancing, keyed by their IPv4 address.
 *
 * Where we differ from the driver, and why:
 *   - The table holds `capacity` clients by exact address; when it is full a new client takes
 *     the place of the one heard from longest ago (counted in `evictions`), which goes back to
 *     the ordinary path (the active slave) until it is heard again. The driver's 256-entry table
 *     is indexed by a byte hash of the address, and a colliding client overwrites the old one:
 *     either way a flood of made-up clients cannot stop receive balancing for good (with a
 *     table that never forgot, 256 spoofed senders did). setBondIp with a new address clears it.
 *   - A client gets a slave among the usable slaves of the highest speed (the driver's
 *     rlb_next_rx_slave never picks a slower one), the one with the fewest clients, ties in turn
 *     after the last one chosen: with equal slaves and no churn that is the driver's round robin.
 *     When slaves come or go the counts are evened out by moving as few clients as possible
 *     (the driver's rlb_rebalance moves every client round robin).
 *   - The host's ARP to a client is the update for that client, so taking a client on does not
 *     also schedule updates for it (the driver does, and the updates repeat the reply).
 *   - A host ARP request gets the slave's MAC as sender hardware address too (the driver only
 *     changes the Ethernet source): the client learns its slave from the request itself, and a
 *     unicast probe no longer pulls the client back to the bond's MAC.
 *   - Only ARPs whose sender IP is the bond's address (setBondIp) are balanced; the driver
 *     balances every ARP whose sender MAC is one of the bond's.
 *   - Not here: rlb_purge_src_ip (another host taking over the bond's address), VLAN clients,
 *     and rlb_teach_disabled_mac_on_primary, which needs the active slave: when a slave other
 *     than the active one goes, the caller sends buildLearningPacket(its MAC) on the active slave
 *     and keeps that port promiscuous for a while (RLB_PROMISC_TIMEOUT, 10 s), so frames of
 *     clients not yet told still arrive.
 */
export class RlbTable {
  readonly capacity: number;
  /** Clients forgotten to make room for a new one (the one heard from longest ago). */
  evictions = 0;

  private readonly clientIp: Uint32Array;
  private readonly clientMac: Uint8Array;
  private readonly macKnown: Uint8Array;
  private readonly clientSlave: Int8Array;
  private readonly updatesLeft: Uint8Array;
  /** When each client was last heard from or spoken to (the caller's clock). */
  private readonly lastSeen: Float64Array;
  private readonly slotOf = new Map<number, number>();
  private used = 0;

  private readonly slaveMac = new Uint8Array(MAX_ALB_SLAVES * ETH_ALEN);
  private readonly present = new Uint8Array(MAX_ALB_SLAVES);
  private readonly usable = new Uint8Array(MAX_ALB_SLAVES);
  private readonly speedMbps = new Float64Array(MAX_ALB_SLAVES);
  private readonly clientsOn = new Int32Array(MAX_ALB_SLAVES);
  private readonly order = new SlaveOrder();
  /** The slave chosen last (bond_info->rx_slave): ties go to the next one. */
  private lastChosen = -1;

  private bondIp = 0;
  /** No updates before this time (RLB_UPDATE_DELAY after a broadcast from the bond's address). */
  private holdUntil = -Infinity;
  /** Where drainUpdates starts when the last call ran out of room in `out`. */
  private drainCursor = 0;

  private readonly arp = createArpResult();
  private readonly updateSlaveMac = new Uint8Array(ETH_ALEN);
  private readonly updateClientMac = new Uint8Array(ETH_ALEN);
  private readonly updateFields: ArpFrameFields;

  constructor(options: RlbOptions = {}) {
    const capacity = options.capacity ?? RLB_DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`rlb capacity ${capacity} must be a positive integer`);
    this.capacity = capacity;
    this.clientIp = new Uint32Array(capacity);
    this.clientMac = new Uint8Array(capacity * ETH_ALEN);
    this.macKnown = new Uint8Array(capacity);
    this.clientSlave = new Int8Array(capacity);
    this.updatesLeft = new Uint8Array(capacity);
    this.lastSeen = new Float64Array(capacity);
    this.updateFields = {
      ethSrc: this.updateSlaveMac,
      ethDst: this.updateClientMac,
      senderMac: this.updateSlaveMac,
      senderIp: 0,
      targetMac: this.updateClientMac,
      targetIp: 0,
    };
  }

  /** Clients held. */
  get size(): number {
    return this.used;
  }

  /**
   * Adds a slave, usable at once, and evens the clients out over the slaves. Adding a slave
   * that is already there updates its MAC (its clients are told the new one,
   * rlb_req_update_slave_clients) and its speed.
   */
  addSlave(slave: number, mac: Uint8Array, speedMbps = 0): void {
    checkSlave(slave);
    if (mac.length < ETH_ALEN) throw new RangeError(`slave MAC of ${mac.length} bytes`);
    const at = slave * ETH_ALEN;
    this.speedMbps[slave] = effectiveSpeed(speedMbps);
    if (this.present[slave] === 1) {
      if (!macEquals(this.slaveMac, at, mac, 0)) {
        copyMac(this.slaveMac, at, mac, 0);
        for (let i = 0; i < this.used; i++) if (this.clientSlave[i] === slave) this.markForUpdate(i);
      }
      this.rebalance();
      return;
    }
    copyMac(this.slaveMac, at, mac, 0);
    this.present[slave] = 1;
    this.usable[slave] = 1;
    this.clientsOn[slave] = 0;
    this.order.add(slave);
    this.rebalance();
  }

  /** bond_alb_deinit_slave: its clients move to the other slaves and are told. */
  removeSlave(slave: number): void {
    checkSlave(slave);
    if (this.present[slave] === 0) return;
    this.present[slave] = 0;
    this.usable[slave] = 0;
    this.order.remove(slave);
    if (this.lastChosen === slave) this.lastChosen = -1;
    this.rebalance();
  }

  /** Link down: rlb_clear_slave; link up: rlb_rebalance. No effect on a slave that is not there. */
  setUsable(slave: number, usable: boolean): void {
    checkSlave(slave);
    if (this.present[slave] === 0 || (this.usable[slave] === 1) === usable) return;
    this.usable[slave] = usable ? 1 : 0;
    this.rebalance();
  }

  /** The bond's IPv4 address (host order), 0 when unknown; a different address forgets the clients. */
  setBondIp(ip: number): void {
    const next = ip >>> 0;
    if (next === this.bondIp) return;
    if (this.bondIp !== 0) this.forgetClients();
    this.bondIp = next;
  }

  /**
   * An ARP the host is sending (untagged, Ethernet header at l2Off). When its sender IP is the
   * bond's and its target is a client: chooses the client's slave (kept while usable), writes
   * that slave's MAC over the Ethernet source and the ARP sender hardware address in place,
   * learns the client's MAC from a reply's target hardware address, and returns the slave to
   * send on. Otherwise -1 and the frame is untouched: the caller sends it the ordinary way.
   * A broadcast from the bond's address (a request, a gratuitous ARP) makes every client that
   * caches the bond's address point at the MAC it announces, so the other clients are marked to
   * be told again, after RLB_UPDATE_DELAY_MS.
   */
  onHostArp(buf: Uint8Array, l2Off: number, len: number, now: number): number {
    if (this.bondIp === 0) return -1;
    if (parseArp(buf, l2Off, len, this.arp) !== ArpParse.OK) return -1;
    const f = this.arp.fields;
    if (f[ARPR_SENDER_IP] !== this.bondIp) return -1;
    const targetIp = f[ARPR_TARGET_IP]!;
    const broadcast = isMulticastMac(buf, l2Off);
    if (targetIp === 0 || targetIp === this.bondIp) {
      if (broadcast) this.markClientsAwayFrom(-1, now);
      return -1;
    }
    let slot = this.slotOf.get(targetIp) ?? -1;
    if (slot < 0) slot = this.addClient(targetIp, now);
    else this.lastSeen[slot] = now;
    if (slot < 0) {
      if (broadcast) this.markClientsAwayFrom(-1, now);
      return -1;
    }
    const macAt = slot * ETH_ALEN;
    if (isValidUnicastMac(this.arp.targetMac, 0)) {
      copyMac(this.clientMac, macAt, this.arp.targetMac, 0);
      this.macKnown[slot] = 1;
    } else if (!broadcast && f[ARPR_OP] === ARP_OP_REQUEST && isValidUnicastMac(buf, l2Off)) {
      // A unicast probe of the neighbour cache goes to the MAC the host knows for the client.
      copyMac(this.clientMac, macAt, buf, l2Off);
      this.macKnown[slot] = 1;
    }
    let slave = this.clientSlave[slot]!;
    if (slave < 0 || this.usable[slave] === 0) {
      slave = this.chooseSlave();
      this.assign(slot, slave);
    }
    if (slave < 0) {
      if (broadcast) this.markClientsAwayFrom(-1, now);
      return -1;
    }
    const at = slave * ETH_ALEN;
    copyMac(buf, l2Off + ETH_ALEN, this.slaveMac, at);
    copyMac(buf, l2Off + ETH_HLEN + ARP_OFF_SHA, this.slaveMac, at);
    if (broadcast) this.markClientsAwayFrom(slave, now);
    return slave;
  }

  /**
   * An ARP received from the wire. From a known client: its MAC is kept up to date, and a
   * client whose MAC changed is told its slave again (rlb_update_entry_from_arp). A request for
   * the bond's address from a new client: the client is taken on with its MAC and a slave, which
   * the host's reply (through onHostArp) then announces. Takes no notice of the time.
   */
  onWireArp(buf: Uint8Array, l2Off: number, len: number, now: number): void {
    if (parseArp(buf, l2Off, len, this.arp) !== ArpParse.OK) return;
    const f = this.arp.fields;
    const senderIp = f[ARPR_SENDER_IP]!;
    if (senderIp === 0 || senderIp === this.bondIp || !isValidUnicastMac(this.arp.senderMac, 0)) return;
    const known = this.slotOf.get(senderIp);
    if (known !== undefined) {
      this.lastSeen[known] = now;
      const macAt = known * ETH_ALEN;
      if (this.macKnown[known] === 0 || !macEquals(this.clientMac, macAt, this.arp.senderMac, 0)) {
        copyMac(this.clientMac, macAt, this.arp.senderMac, 0);
        this.macKnown[known] = 1;
        this.markForUpdate(known);
      }
      return;
    }
    if (this.bondIp === 0 || f[ARPR_OP] !== ARP_OP_REQUEST || f[ARPR_TARGET_IP] !== this.bondIp) return;
    const slot = this.addClient(senderIp, now);
    copyMac(this.clientMac, slot * ETH_ALEN, this.arp.senderMac, 0);
    this.macKnown[slot] = 1;
    this.assign(slot, this.chooseSlave());
  }

  /**
   * Builds an ARP reply for each client marked to be told (Ethernet dst and target = the
   * client's MAC and IP, Ethernet src and sender = its slave's MAC and the bond's IP), one after
   * another in `out` from offset 0, and calls `emit(slave, offset, length)` for each; the frames
   * stay valid until the next call. A client is told once per call and RLB_UPDATE_RETRY times in
   * all. When `out` has no room for the next frame the rest wait for the next call, which
   * continues from there: 60 · capacity bytes always suffice. Nothing goes out while the bond's
   * address is unknown or within RLB_UPDATE_DELAY_MS of a broadcast from it. Returns how many
   * frames were emitted.
   */
  drainUpdates(now: number, out: Uint8Array, emit: (slave: number, offset: number, length: number) => void): number {
    if (out.length < ARP_FRAME_LENGTH) throw new RangeError(`rlb update buffer of ${out.length} bytes, need at least ${ARP_FRAME_LENGTH}`);
    if (this.bondIp === 0 || now < this.holdUntil || this.used === 0) return 0;
    const fields = this.updateFields;
    fields.senderIp = this.bondIp;
    const n = this.used;
    const start = this.drainCursor < n ? this.drainCursor : 0;
    this.drainCursor = 0;
    let off = 0;
    let emitted = 0;
    for (let j = 0; j < n; j++) {
      const slot = (start + j) % n;
      if (this.updatesLeft[slot] === 0) continue;
      const slave = this.clientSlave[slot]!;
      if (slave < 0 || this.usable[slave] === 0 || this.macKnown[slot] === 0) {
        this.updatesLeft[slot] = 0;
        continue;
      }
      if (off + ARP_FRAME_LENGTH > out.length) {
        this.drainCursor = slot;
        break;
      }
      copyMac(this.updateSlaveMac, 0, this.slaveMac, slave * ETH_ALEN);
      copyMac(this.updateClientMac, 0, this.clientMac, slot * ETH_ALEN);
      fields.targetIp = this.clientIp[slot]!;
      const length = buildArpReply(out, off, fields);
      this.updatesLeft[slot] = this.updatesLeft[slot]! - 1;
      emit(slave, off, length);
      off += length;
      emitted++;
    }
    return emitted;
  }

  /** The clients in the order they were taken on (status and tests); allocates. */
  clients(): RlbClient[] {
    const list: RlbClient[] = [];
    for (let i = 0; i < this.used; i++) {
      list.push({ ip: formatIPv4(this.clientIp[i]!), mac: formatMac(this.clientMac, i * ETH_ALEN), slave: this.clientSlave[i]! });
    }
    return list;
  }

  /** How many clients are marked to be told (status and tests). */
  pendingUpdates(): number {
    let n = 0;
    for (let i = 0; i < this.used; i++) if (this.updatesLeft[i] !== 0) n++;
    return n;
  }

  /** A slot for a new client: the next free one, or the one of the client heard from longest ago. */
  private addClient(ip: number, now: number): number {
    let slot: number;
    if (this.used < this.capacity) slot = this.used++;
    else {
      slot = 0;
      for (let i = 1; i < this.used; i++) if (this.lastSeen[i]! < this.lastSeen[slot]!) slot = i;
      this.slotOf.delete(this.clientIp[slot]!);
      this.assign(slot, -1);
      this.evictions++;
    }
    this.lastSeen[slot] = now;
    this.slotOf.set(ip, slot);
    this.clientIp[slot] = ip;
    this.clientMac.fill(0, slot * ETH_ALEN, slot * ETH_ALEN + ETH_ALEN);
    this.macKnown[slot] = 0;
    this.clientSlave[slot] = -1;
    this.updatesLeft[slot] = 0;
    return slot;
  }

  private forgetClients(): void {
    this.slotOf.clear();
    this.used = 0;
    this.drainCursor = 0;
    this.clientsOn.fill(0);
  }

  private assign(slot: number, slave: number): void {
    const old = this.clientSlave[slot]!;
    if (old === slave) return;
    if (old >= 0) this.clientsOn[old] = this.clientsOn[old]! - 1;
    if (slave >= 0) this.clientsOn[slave] = this.clientsOn[slave]! + 1;
    this.clientSlave[slot] = slave;
  }

  /** A client with a known MAC gets RLB_UPDATE_RETRY replies (again, if some were still due). */
  private markForUpdate(slot: number): void {
    if (this.macKnown[slot] === 1 && this.clientSlave[slot]! >= 0) this.updatesLeft[slot] = RLB_UPDATE_RETRY;
  }

  /** rlb_req_update_subnet_clients: every client not on `announced` (-1: every client). */
  private markClientsAwayFrom(announced: number, now: number): void {
    for (let i = 0; i < this.used; i++) if (this.clientSlave[i] !== announced) this.markForUpdate(i);
    this.holdUntil = now + RLB_UPDATE_DELAY_MS;
  }

  private fastestUsableSpeed(): number {
    let fastest = 0;
    for (let i = 0; i < this.order.count; i++) {
      const s = this.order.list[i]!;
      if (this.usable[s] === 1 && this.speedMbps[s]! > fastest) fastest = this.speedMbps[s]!;
    }
    return fastest;
  }

  /** A slave may take clients: usable and as fast as the fastest usable one. */
  private eligible(slave: number, fastest: number): boolean {
    return slave >= 0 && this.usable[slave] === 1 && this.speedMbps[slave] === fastest;
  }

  /** The eligible slave with the fewest clients, ties to the first after the last chosen; -1 if none. */
  private chooseSlave(): number {
    const fastest = this.fastestUsableSpeed();
    if (fastest === 0) return -1;
    const n = this.order.count;
    let start = 0;
    for (let i = 0; i < n; i++) {
      if (this.order.list[i] === this.lastChosen) {
        start = i + 1;
        break;
      }
    }
    let best = -1;
    for (let j = 0; j < n; j++) {
      const s = this.order.list[(start + j) % n]!;
      if (this.eligible(s, fastest) && (best < 0 || this.clientsOn[s]! < this.clientsOn[best]!)) best = s;
    }
    if (best >= 0) this.lastChosen = best;
    return best;
  }

  /**
   * After slaves came or went: clients on a slave that may not take clients move to the one
   * with the fewest, then clients move from the fullest slave to the emptiest until the counts
   * differ by at most one. Every client moved is marked to be told.
   */
  private rebalance(): void {
    const fastest = this.fastestUsableSpeed();
    for (let i = 0; i < this.used; i++) {
      if (this.eligible(this.clientSlave[i]!, fastest)) continue;
      const to = this.chooseSlave();
      this.assign(i, to);
      this.markForUpdate(i);
    }
    if (fastest === 0) return;
    for (;;) {
      let fullest = -1;
      let emptiest = -1;
      for (let k = 0; k < this.order.count; k++) {
        const s = this.order.list[k]!;
        if (!this.eligible(s, fastest)) continue;
        if (fullest < 0 || this.clientsOn[s]! > this.clientsOn[fullest]!) fullest = s;
        if (emptiest < 0 || this.clientsOn[s]! < this.clientsOn[emptiest]!) emptiest = s;
      }
      if (fullest < 0 || this.clientsOn[fullest]! - this.clientsOn[emptiest]! <= 1) return;
      for (let i = this.used - 1; i >= 0; i--) {
        if (this.clientSlave[i] !== fullest) continue;
        this.assign(i, emptiest);
        this.markForUpdate(i);
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Learning packets

/**
 * alb_send_learning_packets' frame: destination and source both `slaveMac`, EtherType
 * ETH_P_LOOPBACK, zeros to 60 bytes. Sent untagged on each slave every lp_interval seconds so
 * the switch keeps the slave's MAC on the slave's port. Returns the length (60); throws a
 * RangeError when `out` has no room at `off`.
 */
export function buildLearningPacket(out: Uint8Array, off: number, slaveMac: Uint8Array): number {
  if (off < 0 || off + ETH_ZLEN > out.length) throw new RangeError(`no room for a ${ETH_ZLEN}-byte learning packet at offset ${off}`);
  const payload = writeEthernetHeader(out, off, slaveMac, slaveMac, ETH_P_LOOPBACK);
  out.fill(0, payload, off + ETH_ZLEN);
  return ETH_ZLEN;
}

