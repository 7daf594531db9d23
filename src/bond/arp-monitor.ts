/**
 * The ARP monitor (bond_main.c: bond_arp_monitor and what it calls), pure: frames seen and
 * sent come in with the time `now` (ms), link changes and the ARP requests to send go out.
 * A slave is up while ARP requests for the arp_ip_target addresses go out through it and
 * something (what, arp_validate says) comes back.
 *
 * Two variants, as in the driver:
 * - active-backup: bond_activebackup_arp_mon, i.e. bond_ab_arp_inspect (tick), bond_ab_arp_commit
 *   (tick) and bond_ab_arp_probe (probe). Only the active slave is probed; without one, one
 *   slave per interval is tried as the candidate (the driver's current_arp_slave, here
 *   `probingSlave()`), round the slaves that have carrier, until a reply brings one up.
 * - every other mode: bond_loadbalance_arp_mon. Every slave with carrier is probed each
 *   interval and is up only while it has both sent (last_tx) and received (last_rx) recently.
 *   lnlb also runs it in 802.3ad, balance-tlb and balance-alb, which the driver refuses.
 *
 * Time windows are the driver's bond_time_in_interval: with I = arp_interval,
 *   within(last, k)  ⇔  last − I ≤ now ≤ last + k·I + ⌊I/2⌋
 * the half interval absorbing the jitter between a probe and its answer. With a tick every I
 * and answers arriving just after each probe, that makes:
 * - a slave whose answers stop after the probe of tick j goes down on tick j + arp_missed_max
 *   + 1, having sent arp_missed_max probes in vain (active-backup: the active slave; a backup,
 *   which has no probe of its own to miss, one tick later, on j + arp_missed_max + 2);
 * - a slave that is down comes up on the first tick after a counted receive (the window is
 *   1.5 I; load-balance: a frame sent within it too);
 * - active-backup leaves an up slave alone for 2 I + I/2 after it was enslaved or made active
 *   (or made the candidate), because its receive times need a full cycle to move.
 * With arp_missed_max 1 the start values leave no slack: a load-balance slave whose first tick
 * comes a whole interval after enslaving is written off on it and back on the next, as in the
 * driver.
 * Slaves start as the driver enslaves them under arp_interval: up when they have carrier,
 * with last_rx and last_tx one interval and a millisecond in the past.
 *
 * What counts as a receive (bond_rcv_validate, bond_arp_rcv, bond_validate_arp): a slave is
 * validated when arp_validate names its role (active, backup; `all` both; in the load-balance
 * variant every slave is active, as the driver keeps them). An unvalidated slave counts any
 * frame, or with the filter* values any ARP frame. A validated slave counts only ARP between
 * an arp_ip_target and the bond's address, and then only when the ARP can be trusted:
 * (a) it is the active slave (or the candidate): an ARP whose sender is a target and whose
 *     target is the bond's address;
 * (b) else, when the active slave has received something counted since it became active: an
 *     ARP from the bond's address for a target, i.e. the active's own broadcast request,
 *     proving the backup and the active share the segment;
 * (c) else, when the candidate sent a probe within the last interval: a reply as in (a) (the
 *     switch may deliver it to another slave while it relearns the bond's MAC).
 * Each counted ARP also stamps its target (target_last_arp_rx); with arp_all_targets=all a
 * validated slave's receive time is that of its least recent target, so every target must
 * answer.
 *
 * Where lnlb differs from the driver, on purpose:
 * - arp_all_targets=all judges validated slaves only, as bonding.rst documents; the driver's
 *   code would judge unvalidated slaves by per-target times that never move for them, so they
 *   could never stay up. It also applies in the load-balance variant, which in the driver
 *   reads last_rx and ignores the option: lnlb accepts the option in every mode;
 * - the bond's address is one IPv4 address, passed with each ARP frame; 0 (none known) makes
 *   only ARP addressed to 0.0.0.0 count, as the driver behaves for a bond without an address;
 * - last_tx is stamped by every frame the caller reports sent (the driver's older trans_start);
 *   the driver's current code stamps it for its ARP probes only. Every slave judged by last_tx
 *   is probed each interval, so the extra stamps change nothing while its probes go out;
 * - the driver's commit retries when it cannot take the RTNL lock; here it always commits.
 *
 * The caller, once per interval: `tick(now)`, apply the changes it returns, choose the active
 * slave again (active-backup: tell the monitor with `setActive`), then `probe(now, probes)`,
 * apply the changes it returns, and send one ARP request per probe from the slave. This is the
 * driver's order (inspect, commit, failover, probe): the probe goes on the slave chosen after
 * the commit.
 *
 * The receive path (frameReceived, arpReceived) and frameSent allocate nothing.
 */

import { ARP_OP_REPLY } from '../net/arp.js';
import { LinkState } from './link-monitor.js';
import { ARP_VALIDATE, MAX_ARP_TARGETS, type ArpAllTargets, type ArpValidate } from './options.js';

export interface ArpMonitorConfig {
  /** arp_interval, ms: how often tick and probe are called. */
  intervalMs: number;
  /** arp_ip_target, host-order u32, 1 to 16 of them. */
  targets: readonly number[];
  validate: ArpValidate;
  allTargets: ArpAllTargets;
  /** arp_missed_max: probes without an answer before the slave is down. */
  missedMax: number;
  /** Mode active-backup: the active-backup variant; any other mode: the load-balance variant. */
  activeBackup: boolean;
}

/** Send an ARP request for `target` on `slave`, from the bond's address (0.0.0.0 when it has none). */
export interface ArpProbe {
  slave: number;
  target: number;
}

/** `slave` became usable (`up`) or stopped being usable. */
export interface ArpLinkChange {
  slave: number;
  up: boolean;
}

export interface ArpSlaveInfo {
  /** The driver's link state: UP, DOWN, FAIL (a candidate that got no answer), BACK (the candidate). */
  link: LinkState;
  /** Usable: link UP. */
  up: boolean;
  /** Times the link went down since enslaving: the status file's "Link Failure Count". */
  failures: number;
  /** The receive time the monitor judges by (with arp_all_targets=all: the least recent target's). */
  lastRx: number;
  lastTx: number;
  /** Intervals without a counted receive, as of the last tick. */
  missed: number;
}

/** Slave numbers are 0..MAX_ARP_SLAVES-1, chosen by the caller. */
export const MAX_ARP_SLAVES = 32;

/** arp_validate as the driver's bits: 1 validate the active slave, 2 the backups, 4 only ARP counts. */
const VALIDATE_ACTIVE = 1;
const VALIDATE_BACKUP = 2;
const VALIDATE_FILTER = 4;

class SlaveState {
  link: LinkState;
  /** The link state bond_ab_arp_inspect proposes for commit; undefined: no change. */
  proposed: LinkState | undefined = undefined;
  /** The driver's slave->backup: it validates as a backup and is judged as one. */
  backup: boolean;
  carrier: boolean;
  lastRx: number;
  lastTx: number;
  /** When it was enslaved up, made active or made the candidate: the start of its grace. */
  lastLinkUp: number;
  /** target_last_arp_rx, by index in the config's targets. */
  readonly targetRx: Float64Array;
  failures = 0;
  missed = 0;

  constructor(carrier: boolean, backup: boolean, longAgo: number, now: number, targets: number) {
    this.link = carrier ? LinkState.UP : LinkState.DOWN;
    this.backup = backup;
    this.carrier = carrier;
    this.lastRx = longAgo;
    this.lastTx = longAgo;
    this.lastLinkUp = carrier ? now : -Infinity;
    this.targetRx = new Float64Array(targets).fill(longAgo);
  }
}

export class ArpMonitor {
  readonly #interval: number;
  readonly #targets: Uint32Array;
  readonly #validate: number;
  readonly #allTargets: boolean;
  readonly #missedMax: number;
  readonly #activeBackup: boolean;
  readonly #slaves: (SlaveState | undefined)[] = new Array<SlaveState | undefined>(MAX_ARP_SLAVES).fill(undefined);
  /** Enslave order: the order the driver walks its slave list in, which the candidate rotates by. */
  readonly #order: number[] = [];
  #active = -1;
  /** current_arp_slave: the candidate tried while there is no active slave (active-backup). */
  #candidate = -1;

  constructor(config: ArpMonitorConfig) {
    if (!(Number.isInteger(config.intervalMs) && config.intervalMs > 0)) throw new RangeError(`arp interval must be a positive integer of ms, got ${config.intervalMs}`);
    if (config.targets.length < 1 || config.targets.length > MAX_ARP_TARGETS) {
      throw new RangeError(`the ARP monitor needs 1 to ${MAX_ARP_TARGETS} targets, got ${config.targets.length}`);
    }
    if (!(Number.isInteger(config.missedMax) && config.missedMax >= 1)) throw new RangeError(`arp_missed_max must be an integer ≥ 1, got ${config.missedMax}`);
    const validate = ARP_VALIDATE.find((v) => v.name === config.validate);
    if (validate === undefined) throw new RangeError(`unknown arp_validate ${JSON.stringify(config.validate)}`);
    this.#interval = config.intervalMs;
    this.#targets = Uint32Array.from(config.targets, (t) => t >>> 0);
    this.#validate = validate.value;
    this.#allTargets = config.allTargets === 'all';
    this.#missedMax = config.missedMax;
    this.#activeBackup = config.activeBackup;
  }

  addSlave(slave: number, carrier: boolean, now: number): void {
    if (!(Number.isInteger(slave) && slave >= 0 && slave < MAX_ARP_SLAVES)) throw new RangeError(`slave must be 0..${MAX_ARP_SLAVES - 1}, got ${slave}`);
    if (this.#slaves[slave] !== undefined) throw new RangeError(`slave ${slave} is already monitored`);
    // Active-backup enslaves every slave as a backup and makes one active afterwards.
    this.#slaves[slave] = new SlaveState(carrier, this.#activeBackup, now - this.#interval - 1, now, this.#targets.length);
    this.#order.push(slave);
  }

  removeSlave(slave: number): void {
    if (this.#slaves[slave] === undefined) return;
    this.#slaves[slave] = undefined;
    this.#order.splice(this.#order.indexOf(slave), 1);
    if (this.#active === slave) this.#active = -1;
    if (this.#candidate === slave) this.#candidate = -1;
  }

  /** The slave's carrier: only slaves with carrier are probed (the driver's bond_slave_is_up). */
  carrierChanged(slave: number, carrier: boolean): void {
    const s = this.#slaves[slave];
    if (s !== undefined) s.carrier = carrier;
  }

  /**
   * Active-backup: the caller made `slave` the active one (-1: none), as bond_change_active_slave:
   * the new one is active from now on and gets its grace, the old one is a backup again. A
   * candidate (BACK) made active is UP. Other modes: no effect.
   */
  setActive(slave: number, now: number): void {
    if (!this.#activeBackup || slave === this.#active) return;
    const old = this.#slave(this.#active);
    if (old !== undefined) old.backup = true;
    const next = this.#slave(slave);
    this.#active = next === undefined ? -1 : slave;
    if (next === undefined) return;
    next.lastLinkUp = now;
    next.backup = false;
    if (next.link === LinkState.BACK) next.link = LinkState.UP;
  }

  isUp(slave: number): boolean {
    return this.#slaves[slave]?.link === LinkState.UP;
  }

  /** Active-backup without an active slave: the slave being tried (it receives as the active one would); -1: none. */
  probingSlave(): number {
    return this.#candidate;
  }

  /**
   * Every frame received on the slave, ARP ones as well (before arpReceived): the driver's
   * bond_rcv_validate sees all of them, frames for other hosts included. Not the bond's own
   * frames coming back.
   */
  frameReceived(slave: number, now: number): void {
    const s = this.#slaves[slave];
    if (s === undefined || this.#validates(s) || (this.#validate & VALIDATE_FILTER) !== 0) return;
    s.lastRx = now;
  }

  /**
   * An Ethernet/IPv4 ARP request or reply (parseArp OK) received on the slave for this host:
   * broadcast or to its MAC, not one of the bond's own frames coming back (the driver's
   * bond_arp_rcv drops PACKET_OTHERHOST and PACKET_LOOPBACK). `op`, `senderIp`, `targetIp` from
   * the ARP payload (host order); `bondIp` the bond's IPv4 address, 0 when it has none.
   */
  arpReceived(slave: number, op: number, senderIp: number, targetIp: number, bondIp: number, now: number): void {
    const s = this.#slaves[slave];
    if (s === undefined) return;
    if (!this.#validates(s)) {
      s.lastRx = now;
      return;
    }
    const active = this.#slave(this.#active);
    const candidate = this.#slave(this.#candidate);
    if (!s.backup) {
      this.#countArp(s, senderIp, targetIp, bondIp, now);
    } else if (active !== undefined && this.#lastRx(active) > active.lastLinkUp) {
      // The active slave's own broadcast request: sender and target swap roles.
      this.#countArp(s, targetIp, senderIp, bondIp, now);
    } else if (candidate !== undefined && op === ARP_OP_REPLY && this.#within(now, candidate.lastTx, 1)) {
      this.#countArp(s, senderIp, targetIp, bondIp, now);
    }
  }

  /** A frame went out on the slave (each ARP probe at least). */
  frameSent(slave: number, now: number): void {
    const s = this.#slaves[slave];
    if (s !== undefined) s.lastTx = now;
  }

  /** Once per interval: the link changes decided now (inspect and commit). */
  tick(now: number): ArpLinkChange[] {
    const changes: ArpLinkChange[] = [];
    if (this.#activeBackup) {
      this.#abInspect(now);
      this.#abCommit(changes);
    } else {
      this.#loadBalanceInspect(now, changes);
    }
    for (const slave of this.#order) {
      const s = this.#slaves[slave]!;
      s.missed = Math.max(0, Math.ceil((now - this.#lastRx(s)) / this.#interval) - 1);
    }
    return changes;
  }

  /**
   * After tick and the caller's choice of the active slave: fills `probes` (emptied first)
   * with the ARP requests to send now, and returns the link changes the active-backup
   * candidate rotation made (slaves without carrier taken down, a slave made the candidate).
   */
  probe(now: number, probes: ArpProbe[]): ArpLinkChange[] {
    probes.length = 0;
    const changes: ArpLinkChange[] = [];
    if (!this.#activeBackup) {
      for (const slave of this.#order) if (this.#slaves[slave]!.carrier) this.#probeAll(slave, probes);
    } else if (this.#active >= 0) {
      this.#probeAll(this.#active, probes);
    } else {
      this.#rotateCandidate(now, probes, changes);
    }
    return changes;
  }

  slaveInfo(slave: number): ArpSlaveInfo | undefined {
    const s = this.#slaves[slave];
    if (s === undefined) return undefined;
    return { link: s.link, up: s.link === LinkState.UP, failures: s.failures, lastRx: this.#lastRx(s), lastTx: s.lastTx, missed: s.missed };
  }

  // -------------------------------------------------------------------------------------------

  /** -1 (none) stays out of the array: a negative index would take V8's slow dictionary path on every frame. */
  #slave(slave: number): SlaveState | undefined {
    return slave >= 0 ? this.#slaves[slave] : undefined;
  }

  /** bond_time_in_interval. */
  #within(now: number, last: number, intervals: number): boolean {
    return now >= last - this.#interval && now <= last + intervals * this.#interval + Math.floor(this.#interval / 2);
  }

  /** slave_do_arp_validate: arp_validate names the slave's role. */
  #validates(s: SlaveState): boolean {
    return (this.#validate & (s.backup ? VALIDATE_BACKUP : VALIDATE_ACTIVE)) !== 0;
  }

  /** slave_last_rx, with arp_all_targets=all for validated slaves only (see the module comment). */
  #lastRx(s: SlaveState): number {
    if (!this.#allTargets || !this.#validates(s)) return s.lastRx;
    let oldest = Infinity;
    for (let i = 0; i < s.targetRx.length; i++) if (s.targetRx[i]! < oldest) oldest = s.targetRx[i]!;
    return oldest;
  }

  /** bond_validate_arp: an ARP from a target to the bond's address. */
  #countArp(s: SlaveState, senderIp: number, targetIp: number, bondIp: number, now: number): void {
    if (senderIp === 0 || targetIp >>> 0 !== bondIp >>> 0) return;
    const i = this.#targets.indexOf(senderIp >>> 0);
    if (i < 0) return;
    s.lastRx = now;
    s.targetRx[i] = now;
  }

  #probeAll(slave: number, probes: ArpProbe[]): void {
    for (const target of this.#targets) probes.push({ slave, target });
  }

  /** bond_loadbalance_arp_mon, minus its sends (probe). */
  #loadBalanceInspect(now: number, changes: ArpLinkChange[]): void {
    for (const slave of this.#order) {
      const s = this.#slaves[slave]!;
      const lastRx = this.#lastRx(s);
      if (s.link !== LinkState.UP) {
        if (this.#within(now, s.lastTx, 1) && this.#within(now, lastRx, 1)) {
          s.link = LinkState.UP;
          changes.push({ slave, up: true });
        }
      } else if (!this.#within(now, s.lastTx, this.#missedMax) || !this.#within(now, lastRx, this.#missedMax)) {
        s.link = LinkState.DOWN;
        s.failures++;
        changes.push({ slave, up: false });
      }
    }
  }

  /** bond_ab_arp_inspect: proposals only, so that every slave is judged on the same state. */
  #abInspect(now: number): void {
    for (const slave of this.#order) {
      const s = this.#slaves[slave]!;
      s.proposed = undefined;
      const lastRx = this.#lastRx(s);
      if (s.link !== LinkState.UP) {
        if (this.#within(now, lastRx, 1)) s.proposed = LinkState.UP;
        else if (s.link === LinkState.BACK) s.proposed = LinkState.FAIL;
        continue;
      }
      if (this.#within(now, s.lastLinkUp, 2)) continue;
      // While a candidate is being tried only the active slave is taken down, so that each
      // slave gets its turn to send and receive before it is written off.
      if (s.backup && this.#candidate < 0 && !this.#within(now, lastRx, this.#missedMax + 1)) s.proposed = LinkState.DOWN;
      if (!s.backup && (!this.#within(now, s.lastTx, this.#missedMax) || !this.#within(now, lastRx, this.#missedMax))) s.proposed = LinkState.DOWN;
    }
  }

  /** bond_ab_arp_commit; the failover it asks for is the caller's (it sees the changes). */
  #abCommit(changes: ArpLinkChange[]): void {
    for (const slave of this.#order) {
      const s = this.#slaves[slave]!;
      switch (s.proposed) {
        case undefined:
          continue;
        case LinkState.UP: {
          // The driver leaves an active slave that is not UP to the failover.
          if (slave === this.#active) break;
          s.link = LinkState.UP;
          const candidate = this.#slave(this.#candidate);
          if (candidate !== undefined) candidate.backup = true;
          this.#candidate = -1;
          changes.push({ slave, up: true });
          break;
        }
        case LinkState.DOWN:
          s.failures++;
          s.link = LinkState.DOWN;
          s.backup = true;
          if (slave === this.#active) this.#candidate = -1;
          changes.push({ slave, up: false });
          break;
        case LinkState.FAIL:
          s.link = LinkState.FAIL;
          s.backup = true;
          if (this.#active >= 0) this.#candidate = -1;
          break;
        case LinkState.BACK:
          break;
      }
      s.proposed = undefined;
    }
  }

  /** bond_ab_arp_probe without an active slave: the next slave with carrier after the candidate. */
  #rotateCandidate(now: number, probes: ArpProbe[], changes: ArpLinkChange[]): void {
    if (this.#candidate < 0) {
      if (this.#order.length === 0) return;
      this.#candidate = this.#order[0]!;
    }
    let before = -1;
    let next = -1;
    let found = false;
    for (const slave of this.#order) {
      const s = this.#slaves[slave]!;
      if (!found && before < 0 && s.carrier) before = slave;
      if (found && next < 0 && s.carrier) next = slave;
      // Simultaneous failures can leave a slave marked UP that has lost its carrier.
      if (!s.carrier && s.link === LinkState.UP) {
        s.link = LinkState.DOWN;
        s.failures++;
        s.backup = true;
        changes.push({ slave, up: false });
      }
      if (slave === this.#candidate) found = true;
    }
    if (next < 0) next = before;
    if (next < 0) return;
    const s = this.#slaves[next]!;
    if (s.link === LinkState.UP) changes.push({ slave: next, up: false });
    s.link = LinkState.BACK;
    s.backup = false;
    s.lastLinkUp = now;
    this.#candidate = next;
    this.#probeAll(next, probes);
  }
}
