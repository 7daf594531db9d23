/**
 * The per-port machines of Link Aggregation Control (IEEE 802.1AX-2014 clause 6.4), for the
 * 802.3ad mode of the bond, as pure state machines: LACPDUs, link changes and the time
 * (milliseconds, monotonic) come in; decisions go out through `drainActions()` (send a LACPDU
 * now, port state changed, selected / unselected, attach / detach, collecting+distributing
 * on / off, active aggregator changed, churn). The daemon drives it from its AF_PACKET ports
 * and one timer that sleeps until `nextDeadline()`; the tests from a fake wire and clock.
 *
 * Machines, one function each, run in this fixed order by `#run` (Linux's
 * bond_3ad_state_machine_handler order) and repeated until nothing changes, so that a
 * received LACPDU is answered at once rather than at the next tick:
 *
 *   Receive (6.4.12, Figure 6-18)       INITIALIZE → PORT_DISABLED → EXPIRED ⇄ CURRENT,
 *                                       DEFAULTED, LACP_DISABLED (half duplex); current_while
 *                                       = 3 s (short timeout) or 90 s (long), from our own
 *                                       LACP_Timeout; EXPIRED always waits the short 3 s.
 *   Periodic Transmission (6.4.13)      NO_PERIODIC, FAST_PERIODIC (1 s), SLOW_PERIODIC (30 s),
 *                                       PERIODIC_TX; the rate is the one the PARTNER asks for.
 *   Selection Logic (6.4.14)            selection.ts: aggregator per port, active aggregator
 *                                       (ad_select), min_links.
 *   Mux, coupled control (6.4.15)       DETACHED → WAITING (aggregate wait 2 s, then Ready:
 *                                       every port selected for the aggregator and not yet
 *                                       attached has waited its 2 s) →
 *                                       ATTACHED (in sync) → COLLECTING_DISTRIBUTING once the
 *                                       partner is in sync. Coupled: collecting and
 *                                       distributing switch together, as Linux does.
 *   Churn Detection (6.4.17)            actor and partner: NO_CHURN, CHURN_MONITOR, CHURN after
 *                                       60 s out of sync; counted and reported as data.
 *   Transmit (6.4.16)                   NTT → one LACPDU, at most 3 per fast periodic interval
 *                                       (1 s, sliding window); a held NTT goes out when the
 *                                       window allows.
 *
 * Figures (tests on the fake clock): two ports starting together are collecting and
 * distributing after 2 s (their first LACPDUs cross at once, then the aggregate wait), at
 * either rate; when the first LACPDUs are lost or a link comes up, the exchange starts at the
 * first periodic tick (a port with no partner is EXPIRED, which asks for the fast rate), so
 * 3 s. A partner that goes silent stops the port distributing 3 s (fast) or 90 s (slow) after
 * its last LACPDU, and the port is detached 3 s later (DEFAULTED).
 *
 * Timers are absolute deadlines (Infinity = not running), not tick counters: the driver
 * sleeps exactly until the next one, and a timeout happens at its exact time, not on the next
 * 100 ms tick.
 *
 * Differences from 802.1AX and from the Linux driver, on purpose:
 * - One active aggregator per bond (as Linux); the ports of the others are STANDBY, so they
 *   stay out of sync and the partner does not distribute to them (see selection.ts).
 * - A port whose link is down leaves its aggregator (Selection Logic), rather than staying
 *   attached out of sync as the standard's PORT_DISABLED would have it.
 * - The churn machines sit in CHURN_MONITOR with their timer stopped while the link is down,
 *   and the 60 s start when it comes up: the standard's global transition (!port_enabled →
 *   CHURN_MONITOR) read literally restarts the timer for ever, with the same effect.
 * - No Version 2 TLVs. (The Marker responder is the bond's: mode-8023ad.ts.)
 * - Linux's fallback for a partner that speaks no LACP (a plain switch, or one whose port is not
 *   configured for it): when the active aggregator has no partner, its port collects and
 *   distributes anyway, once attached (after the aggregate wait). A port defaulted is
 *   individual, alone in its aggregator, so one port of the bond carries traffic, as the
 *   driver's does. A LACPDU arriving later records a partner: the port leaves that
 *   aggregator and negotiates as usual.
 * - The administrative partner (used when defaulted) is: system priority 65535, system 0,
 *   key 1, port priority 255, port 1, state LACP_Activity as our own (a passive port assumes a
 *   passive partner, so a passive bond stays silent until spoken to), Aggregation FALSE.
 * - The operational key is Linux's layout: bit 0 full duplex, bits 1–5 a speed code, bits
 *   6–15 `ad_user_port_key`; a port may set its admin key instead.
 */
import { macToNumber } from '../../net/ethernet.js';
import {
  LACP_STATE_ACTIVITY,
  LACP_STATE_AGGREGATION,
  LACP_STATE_COLLECTING,
  LACP_STATE_DEFAULTED,
  LACP_STATE_DISTRIBUTING,
  LACP_STATE_EXPIRED,
  LACP_STATE_SYNCHRONIZATION,
  LACP_STATE_TIMEOUT,
  LACP_VERSION,
  copyPortInfo,
  createPortInfo,
  type LacpPortInfo,
  type Lacpdu,
} from './lacpdu.js';
import { Selected, createAggregator, isEligible, isIndividual, runSelection, type AdSelect, type Aggregator, type SelectionPort } from './selection.js';

// Timer values (802.1AX-2014 6.4.4).
export const FAST_PERIODIC_MS = 1_000;
export const SLOW_PERIODIC_MS = 30_000;
export const SHORT_TIMEOUT_MS = 3 * FAST_PERIODIC_MS;
export const LONG_TIMEOUT_MS = 3 * SLOW_PERIODIC_MS;
export const CHURN_DETECTION_MS = 60_000;
export const AGGREGATE_WAIT_MS = 2_000;
/** At most this many LACPDUs in any FAST_PERIODIC_MS (6.4.16). */
export const MAX_TX_PER_FAST_PERIODIC = 3;

export const RxState = {
  INITIALIZE: 'INITIALIZE',
  PORT_DISABLED: 'PORT_DISABLED',
  EXPIRED: 'EXPIRED',
  LACP_DISABLED: 'LACP_DISABLED',
  DEFAULTED: 'DEFAULTED',
  CURRENT: 'CURRENT',
} as const;
export type RxState = (typeof RxState)[keyof typeof RxState];

export const PeriodicState = {
  NO_PERIODIC: 'NO_PERIODIC',
  FAST_PERIODIC: 'FAST_PERIODIC',
  SLOW_PERIODIC: 'SLOW_PERIODIC',
  PERIODIC_TX: 'PERIODIC_TX',
} as const;
export type PeriodicState = (typeof PeriodicState)[keyof typeof PeriodicState];

export const MuxState = {
  DETACHED: 'DETACHED',
  WAITING: 'WAITING',
  ATTACHED: 'ATTACHED',
  COLLECTING_DISTRIBUTING: 'COLLECTING_DISTRIBUTING',
} as const;
export type MuxState = (typeof MuxState)[keyof typeof MuxState];

/** Both churn machines: NO_CHURN / CHURN_MONITOR / CHURN (Linux shows none / monitoring / churned). */
export const ChurnState = { NO_CHURN: 'NO_CHURN', CHURN_MONITOR: 'CHURN_MONITOR', CHURN: 'CHURN' } as const;
export type ChurnState = (typeof ChurnState)[keyof typeof ChurnState];

export type LacpRate = 'slow' | 'fast';

export type LacpAction =
  | { kind: 'send'; port: number; pdu: Lacpdu }
  | { kind: 'port-state'; port: number; actorState: number; partnerState: number }
  | { kind: 'selected'; port: number; aggregator: number; standby: boolean }
  | { kind: 'unselected'; port: number; aggregator: number }
  | { kind: 'attach'; port: number; aggregator: number }
  | { kind: 'detach'; port: number; aggregator: number }
  | { kind: 'collecting-distributing'; port: number; enabled: boolean }
  | { kind: 'active-aggregator'; aggregator: number; previous: number }
  | { kind: 'churn'; port: number; who: 'actor' | 'partner'; churned: boolean };

export interface LacpBondOptions {
  /** The bond's MAC: the actor system ID. */
  systemMac: Uint8Array;
  /** ad_actor_sys_prio. Default 65535. */
  systemPriority?: number;
  /** lacp_rate: the rate we ask the partner to send at (our LACP_Timeout). Default slow. */
  lacpRate?: LacpRate;
  /** lacp_active. Default true. */
  lacpActive?: boolean;
  /** ad_select. Default stable. */
  adSelect?: AdSelect;
  /** min_links. Default 0. */
  minLinks?: number;
  /** ad_user_port_key, 0–1023: bits 6–15 of the operational key. Default 0. */
  userPortKey?: number;
}

export interface LacpPortConfig {
  /** Actor_Port: 1–65535, unique in the bond. */
  portNumber: number;
  /** The port's own MAC, the source of its LACPDUs. */
  mac: Uint8Array;
  /** Actor_Port_Priority. Default 255 (Linux ad_actor_port_prio). */
  portPriority?: number;
  /** Actor_Admin_Port_Key; when absent the key is derived from speed, duplex and userPortKey. */
  key?: number;
  linkUp?: boolean;
  speedMbps?: number;
  fullDuplex?: boolean;
}

export interface LinkState {
  up: boolean;
  speedMbps?: number;
  fullDuplex?: boolean;
}

/** Linux's speed codes for bits 1–5 of the key (1 Mb/s = 1, 10 Mb/s = 2, ...); unknown = 0. */
const SPEED_CODES: readonly number[] = [1, 10, 100, 1000, 2500, 5000, 10000, 14000, 20000, 25000, 40000, 50000, 56000, 100000, 200000, 400000, 800000];

export function operationalKey(speedMbps: number, fullDuplex: boolean, userPortKey: number): number {
  const speedCode = SPEED_CODES.indexOf(speedMbps) + 1;
  return (((userPortKey & 0x3ff) << 6) | ((speedCode & 0x1f) << 1) | (fullDuplex ? 1 : 0)) & 0xffff;
}

/** One port's LACP variables and machine states. Read it for status; only LacpBond writes it. */
export class LacpPort implements SelectionPort {
  readonly portNumber: number;
  readonly portPriority: number;
  readonly mac: Uint8Array;
  readonly adminKey: number | undefined;
  /** port_enabled: the link is up. */
  enabled: boolean;
  fullDuplex: boolean;
  speedMbps: number;
  actorKey = 0;
  /** Actor_Oper_Port_State. */
  actorState = 0;
  /** Partner_Oper_*. */
  readonly partner: LacpPortInfo = createPortInfo();
  /** Partner_Admin_*: what the port assumes of a partner it has not heard. */
  readonly partnerAdmin: LacpPortInfo = createPortInfo();
  selected: Selected = Selected.UNSELECTED;
  aggregator = 0;
  rx: RxState = RxState.INITIALIZE;
  periodic: PeriodicState = PeriodicState.NO_PERIODIC;
  mux: MuxState = MuxState.DETACHED;
  actorChurn: ChurnState = ChurnState.CHURN_MONITOR;
  partnerChurn: ChurnState = ChurnState.CHURN_MONITOR;
  ntt = false;
  portMoved = false;
  begin = true;
  /** Attached to this aggregator (Attach_Mux_To_Aggregator); 0 = not attached. */
  attachedTo = 0;
  /** Enable_Collecting_Distributing done: the data path may use the port. */
  collectingDistributing = false;
  currentWhileAt = Number.POSITIVE_INFINITY;
  periodicAt = Number.POSITIVE_INFINITY;
  waitWhileAt = Number.POSITIVE_INFINITY;
  actorChurnAt = Number.POSITIVE_INFINITY;
  partnerChurnAt = Number.POSITIVE_INFINITY;
  /** Times of the last MAX_TX_PER_FAST_PERIODIC transmissions, a ring. */
  readonly txTimes: number[] = new Array<number>(MAX_TX_PER_FAST_PERIODIC).fill(Number.NEGATIVE_INFINITY);
  txIndex = 0;
  lastRxAt = Number.NaN;
  lacpduRx = 0;
  lacpduTx = 0;
  actorChurnCount = 0;
  partnerChurnCount = 0;
  // what the last actions reported
  reportedActorState = -1;
  reportedPartnerState = -1;
  reportedSelected: Selected = Selected.UNSELECTED;
  reportedAggregator = 0;

  constructor(config: LacpPortConfig) {
    this.portNumber = config.portNumber;
    this.portPriority = config.portPriority ?? 255;
    this.mac = config.mac;
    this.adminKey = config.key;
    this.enabled = config.linkUp ?? true;
    this.fullDuplex = config.fullDuplex ?? true;
    this.speedMbps = config.speedMbps ?? 1000;
  }

  get detached(): boolean {
    return this.mux === MuxState.DETACHED;
  }

  get attached(): boolean {
    return this.attachedTo !== 0;
  }

  /** LACP_Enabled (6.4.8): LACP runs on full-duplex links only. */
  get lacpEnabled(): boolean {
    return this.fullDuplex;
  }

  get partnerInSync(): boolean {
    return (this.partner.state & LACP_STATE_SYNCHRONIZATION) !== 0;
  }
}

export type NotDistributingCode =
  | 'link-down'
  | 'lacp-disabled'
  | 'defaulted'
  | 'expired'
  | 'individual'
  | 'unselected'
  | 'below-min-links'
  | 'other-aggregator'
  | 'no-active-aggregator'
  | 'waiting'
  | 'partner-not-in-sync'
  | 'actor-churned'
  | 'partner-churned';

export interface NotDistributingReason {
  code: NotDistributingCode;
  message: string;
}

const MAX_PASSES = 16;
const SYNC_COLLECTING_DISTRIBUTING = LACP_STATE_SYNCHRONIZATION | LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING;
/** The state bits update_NTT compares (6.4.9). */
const NTT_STATE_BITS = LACP_STATE_ACTIVITY | LACP_STATE_TIMEOUT | LACP_STATE_SYNCHRONIZATION | LACP_STATE_AGGREGATION;

function hex(mac: number): string {
  return mac.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/** Link Aggregation Control of one bond: its ports, their aggregators and their machines. */
export class LacpBond {
  readonly system: number;
  readonly systemPriority: number;
  readonly lacpRate: LacpRate;
  readonly lacpActive: boolean;
  readonly adSelect: AdSelect;
  readonly minLinks: number;
  readonly userPortKey: number;
  readonly #ports: LacpPort[] = [];
  readonly #aggregators: Aggregator[] = [];
  #active: Aggregator | undefined;
  #actions: LacpAction[] = [];
  #changed = false;
  #now = Number.NEGATIVE_INFINITY;

  constructor(options: LacpBondOptions) {
    this.system = macToNumber(options.systemMac);
    this.systemPriority = options.systemPriority ?? 65535;
    this.lacpRate = options.lacpRate ?? 'slow';
    this.lacpActive = options.lacpActive ?? true;
    this.adSelect = options.adSelect ?? 'stable';
    this.minLinks = options.minLinks ?? 0;
    this.userPortKey = options.userPortKey ?? 0;
  }

  get ports(): readonly LacpPort[] {
    return this.#ports;
  }

  get aggregators(): readonly Aggregator[] {
    return this.#aggregators;
  }

  get activeAggregator(): Aggregator | undefined {
    return this.#active;
  }

  port(portNumber: number): LacpPort | undefined {
    return this.#ports.find((p) => p.portNumber === portNumber);
  }

  /** The ports the data path may send on and receive from (collecting and distributing). */
  distributingPorts(): LacpPort[] {
    return this.#ports.filter((p) => p.collectingDistributing);
  }

  drainActions(): LacpAction[] {
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  addPort(config: LacpPortConfig, now: number): LacpPort {
    if (this.port(config.portNumber)) throw new RangeError(`port number ${config.portNumber} is already in the bond`);
    if (!Number.isInteger(config.portNumber) || config.portNumber < 1 || config.portNumber > 0xffff) {
      throw new RangeError(`port number must be 1-65535, got ${config.portNumber}`);
    }
    const port = new LacpPort(config);
    this.#updateKey(port);
    port.partnerAdmin.systemPriority = 0xffff;
    port.partnerAdmin.system = 0;
    port.partnerAdmin.key = 1;
    port.partnerAdmin.portPriority = 0xff;
    port.partnerAdmin.port = 1;
    port.partnerAdmin.state = this.lacpActive ? LACP_STATE_ACTIVITY : 0;
    port.actorState = this.#adminState(port);
    this.#ports.push(port);
    if (this.#aggregators.length < this.#ports.length) this.#aggregators.push(createAggregator(this.#aggregators.length + 1));
    this.#run(now, undefined, undefined);
    return port;
  }

  /** The port leaves the bond: detached, its collecting and distributing turned off first. */
  removePort(portNumber: number, now: number): void {
    const port = this.port(portNumber);
    if (!port) return;
    port.enabled = false;
    port.selected = Selected.UNSELECTED;
    this.#run(now, undefined, undefined);
    this.#ports.splice(this.#ports.indexOf(port), 1);
    this.#run(now, undefined, undefined);
  }

  /** Carrier, speed or duplex changed (from the link monitor). */
  setLink(portNumber: number, link: LinkState, now: number): void {
    const port = this.port(portNumber);
    if (!port) return;
    port.enabled = link.up;
    if (link.speedMbps !== undefined) port.speedMbps = link.speedMbps;
    if (link.fullDuplex !== undefined) port.fullDuplex = link.fullDuplex;
    const aggregation = port.fullDuplex ? LACP_STATE_AGGREGATION : 0;
    if ((port.actorState & LACP_STATE_AGGREGATION) !== aggregation) {
      port.actorState = (port.actorState & ~LACP_STATE_AGGREGATION) | aggregation;
      port.ntt = true;
    }
    if (this.#updateKey(port)) port.ntt = true;
    this.#run(now, undefined, undefined);
  }

  /** A LACPDU the port received (decodeLacpdu said OK). The PDU is copied, not kept. */
  receive(portNumber: number, pdu: Readonly<Lacpdu>, now: number): void {
    const port = this.port(portNumber);
    if (!port) return;
    port.lacpduRx++;
    // port_moved (6.4.8): the partner port this PDU comes from was last seen on another of
    // our ports, now disabled: that port must forget it.
    for (const other of this.#ports) {
      if (
        other !== port &&
        other.rx === RxState.PORT_DISABLED &&
        other.partner.system === pdu.actor.system &&
        other.partner.systemPriority === pdu.actor.systemPriority &&
        other.partner.port === pdu.actor.port &&
        other.partner.portPriority === pdu.actor.portPriority
      ) {
        other.portMoved = true;
      }
    }
    this.#run(now, port, pdu);
  }

  /** Runs the timers due at `now`. */
  tick(now: number): void {
    this.#run(now, undefined, undefined);
  }

  /** The next time `tick` has something to do (Infinity: nothing pending). */
  nextDeadline(): number {
    let t = Number.POSITIVE_INFINITY;
    const consider = (at: number): void => {
      if (at > this.#now && at < t) t = at;
    };
    for (const p of this.#ports) {
      if (p.rx === RxState.CURRENT || p.rx === RxState.EXPIRED) consider(p.currentWhileAt);
      if (p.periodic === PeriodicState.FAST_PERIODIC || p.periodic === PeriodicState.SLOW_PERIODIC) consider(p.periodicAt);
      if (p.mux === MuxState.WAITING) consider(p.waitWhileAt);
      if (p.actorChurn === ChurnState.CHURN_MONITOR) consider(p.actorChurnAt);
      if (p.partnerChurn === ChurnState.CHURN_MONITOR) consider(p.partnerChurnAt);
      if (p.ntt && p.periodic !== PeriodicState.NO_PERIODIC) consider(p.txTimes[p.txIndex]! + FAST_PERIODIC_MS);
    }
    return t;
  }

  /**
   * Why the port is not collecting and distributing, root causes first; empty when it is.
   * Beyond the driver, whose status file only shows the state bits.
   */
  whyNotDistributing(portNumber: number): NotDistributingReason[] {
    const port = this.port(portNumber);
    if (!port) return [{ code: 'unselected', message: `port ${portNumber} is not in the bond` }];
    if (port.collectingDistributing) return [];
    if (!port.enabled) return [{ code: 'link-down', message: 'link down' }];
    if (!port.lacpEnabled) return [{ code: 'lacp-disabled', message: 'half duplex: LACP does not run on this link (LACP_Enabled is FALSE)' }];
    const out: NotDistributingReason[] = [];
    if (port.rx === RxState.DEFAULTED) {
      out.push({ code: 'defaulted', message: 'defaulted: no LACPDU from a partner, so no partner to aggregate with' });
    } else if (port.rx === RxState.EXPIRED) {
      out.push({
        code: 'expired',
        message: `the partner's LACPDUs stopped: its information expired (last LACPDU ${Math.round(this.#now - port.lastRxAt)} ms ago)`,
      });
    } else {
      const agg = port.aggregator === 0 ? undefined : this.#aggregators[port.aggregator - 1];
      const active = this.#active;
      if (isIndividual(port)) {
        out.push({ code: 'individual', message: 'individual: the partner (or this port) says it cannot aggregate' });
      } else if (!agg || port.selected === Selected.UNSELECTED) {
        out.push({ code: 'unselected', message: 'not selected for an aggregator yet' });
      } else if (agg !== active) {
        if (!isEligible(agg, this.minLinks)) {
          out.push({
            code: 'below-min-links',
            message: `aggregator ${agg.id} has ${agg.enabledPorts} port(s) with link up, below min_links ${this.minLinks}`,
          });
        } else if (active) {
          out.push({ code: 'other-aggregator', message: this.#differences(agg, active) });
        } else {
          out.push({ code: 'no-active-aggregator', message: 'the bond has no active aggregator' });
        }
      } else if (port.mux === MuxState.WAITING) {
        out.push({ code: 'waiting', message: `waiting ${AGGREGATE_WAIT_MS} ms for the aggregator's other ports (aggregate wait)` });
      } else if (!port.partnerInSync) {
        out.push({ code: 'partner-not-in-sync', message: 'partner not in sync: it has not attached this link to its aggregator' });
      }
    }
    if (port.actorChurn === ChurnState.CHURN) {
      out.push({ code: 'actor-churned', message: `actor churned: this port has not been in sync for ${CHURN_DETECTION_MS / 1000} s` });
    }
    if (port.partnerChurn === ChurnState.CHURN) {
      out.push({ code: 'partner-churned', message: `partner churned: the partner has not been in sync for ${CHURN_DETECTION_MS / 1000} s` });
    }
    return out;
  }

  #differences(agg: Aggregator, active: Aggregator): string {
    const parts: string[] = [];
    if (agg.actorKey !== active.actorKey) parts.push(`actor key ${agg.actorKey} differs from its ${active.actorKey}`);
    if (agg.partnerSystem !== active.partnerSystem || agg.partnerSystemPriority !== active.partnerSystemPriority) {
      parts.push(`partner ${agg.partnerSystemPriority},${hex(agg.partnerSystem)} differs from its ${active.partnerSystemPriority},${hex(active.partnerSystem)}`);
    }
    if (agg.partnerKey !== active.partnerKey) parts.push(`partner key ${agg.partnerKey} differs from its ${active.partnerKey}`);
    if (parts.length === 0) parts.push('ranked below it by ad_select');
    return `in aggregator ${agg.id}, not the active aggregator ${active.id}: ${parts.join('; ')}`;
  }

  // ---------------------------------------------------------------------------------------
  // The run: every machine of every port, in a fixed order, until nothing changes.

  #run(now: number, rxPort: LacpPort | undefined, pdu: Readonly<Lacpdu> | undefined): void {
    if (now > this.#now) this.#now = now;
    let pending = pdu;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      this.#changed = false;
      for (const port of this.#ports) this.#rxMachine(port, now, port === rxPort ? pending : undefined);
      pending = undefined;
      for (const port of this.#ports) this.#periodicMachine(port, now);
      this.#selectionLogic();
      for (const port of this.#ports) this.#muxMachine(port, now);
      for (const port of this.#ports) this.#churnMachines(port, now);
      for (const port of this.#ports) port.begin = false;
      if (!this.#changed) break;
    }
    for (const port of this.#ports) this.#txMachine(port, now);
    for (const port of this.#ports) {
      if (port.actorState !== port.reportedActorState || port.partner.state !== port.reportedPartnerState) {
        port.reportedActorState = port.actorState;
        port.reportedPartnerState = port.partner.state;
        this.#actions.push({ kind: 'port-state', port: port.portNumber, actorState: port.actorState, partnerState: port.partner.state });
      }
    }
  }

  #adminState(port: LacpPort): number {
    return (this.lacpActive ? LACP_STATE_ACTIVITY : 0) | (this.lacpRate === 'fast' ? LACP_STATE_TIMEOUT : 0) | (port.fullDuplex ? LACP_STATE_AGGREGATION : 0);
  }

  /** Returns true when the operational key changed. */
  #updateKey(port: LacpPort): boolean {
    const key = port.adminKey ?? operationalKey(port.speedMbps, port.fullDuplex, this.userPortKey);
    if (key === port.actorKey) return false;
    port.actorKey = key;
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Receive machine (6.4.12).

  #rxMachine(port: LacpPort, now: number, pdu: Readonly<Lacpdu> | undefined): void {
    let pending = pdu;
    for (let i = 0; i < 8; i++) {
      let next: RxState = port.rx;
      if (port.begin && i === 0) {
        next = RxState.INITIALIZE;
      } else if (!port.enabled && !port.portMoved && port.rx !== RxState.PORT_DISABLED && port.rx !== RxState.INITIALIZE) {
        next = RxState.PORT_DISABLED;
      } else {
        switch (port.rx) {
          case RxState.INITIALIZE:
            next = RxState.PORT_DISABLED;
            break;
          case RxState.PORT_DISABLED:
            if (port.portMoved) next = RxState.INITIALIZE;
            else if (port.enabled && port.lacpEnabled) next = RxState.EXPIRED;
            else if (port.enabled && !port.lacpEnabled) next = RxState.LACP_DISABLED;
            break;
          case RxState.LACP_DISABLED:
            if (port.lacpEnabled) next = RxState.PORT_DISABLED;
            break;
          case RxState.EXPIRED:
            if (pending) next = RxState.CURRENT;
            else if (now >= port.currentWhileAt) next = RxState.DEFAULTED;
            break;
          case RxState.DEFAULTED:
            if (pending) next = RxState.CURRENT;
            break;
          case RxState.CURRENT:
            if (pending) next = RxState.CURRENT; // re-entered for every LACPDU
            else if (now >= port.currentWhileAt) next = RxState.EXPIRED;
            break;
        }
      }
      if (next === port.rx && !(next === RxState.CURRENT && pending) && !(port.begin && i === 0)) return;
      this.#enterRx(port, next, now, next === RxState.CURRENT ? pending : undefined);
      if (next === RxState.CURRENT) pending = undefined;
    }
  }

  #enterRx(port: LacpPort, state: RxState, now: number, pdu: Readonly<Lacpdu> | undefined): void {
    port.rx = state;
    this.#changed = true;
    switch (state) {
      case RxState.INITIALIZE:
        this.#setSelected(port, Selected.UNSELECTED);
        this.#recordDefault(port);
        port.actorState &= ~LACP_STATE_EXPIRED;
        port.portMoved = false;
        break;
      case RxState.PORT_DISABLED:
        port.partner.state &= ~LACP_STATE_SYNCHRONIZATION;
        break;
      case RxState.EXPIRED:
        port.partner.state &= ~LACP_STATE_SYNCHRONIZATION;
        port.partner.state |= LACP_STATE_TIMEOUT; // ask for fast LACPDUs while we wait
        port.currentWhileAt = now + SHORT_TIMEOUT_MS;
        port.actorState |= LACP_STATE_EXPIRED;
        break;
      case RxState.LACP_DISABLED:
        this.#setSelected(port, Selected.UNSELECTED);
        this.#recordDefault(port);
        port.partner.state &= ~LACP_STATE_AGGREGATION;
        port.actorState &= ~LACP_STATE_EXPIRED;
        break;
      case RxState.DEFAULTED:
        this.#updateDefaultSelected(port);
        this.#recordDefault(port);
        port.actorState &= ~LACP_STATE_EXPIRED;
        break;
      case RxState.CURRENT:
        if (pdu) {
          this.#updateSelected(port, pdu);
          this.#updateNtt(port, pdu);
          this.#recordPdu(port, pdu);
          port.lastRxAt = now;
        }
        port.currentWhileAt = now + ((port.actorState & LACP_STATE_TIMEOUT) !== 0 ? SHORT_TIMEOUT_MS : LONG_TIMEOUT_MS);
        port.actorState &= ~LACP_STATE_EXPIRED;
        break;
    }
  }

  /** recordPDU (6.4.9): the partner is what its LACPDU says it is; is it in sync with us? */
  #recordPdu(port: LacpPort, pdu: Readonly<Lacpdu>): void {
    copyPortInfo(port.partner, pdu.actor);
    port.actorState &= ~LACP_STATE_DEFAULTED;
    const us = pdu.partner;
    const matchesUs =
      us.port === port.portNumber &&
      us.portPriority === port.portPriority &&
      us.system === this.system &&
      us.systemPriority === this.systemPriority &&
      us.key === port.actorKey &&
      (us.state & LACP_STATE_AGGREGATION) === (port.actorState & LACP_STATE_AGGREGATION);
    const activeRun =
      (pdu.actor.state & LACP_STATE_ACTIVITY) !== 0 || ((port.actorState & LACP_STATE_ACTIVITY) !== 0 && (us.state & LACP_STATE_ACTIVITY) !== 0);
    const partnerSync =
      (pdu.actor.state & LACP_STATE_SYNCHRONIZATION) !== 0 && activeRun && (matchesUs || (pdu.actor.state & LACP_STATE_AGGREGATION) === 0);
    if (partnerSync) port.partner.state |= LACP_STATE_SYNCHRONIZATION;
    else port.partner.state &= ~LACP_STATE_SYNCHRONIZATION;
  }

  /** recordDefault (6.4.9). */
  #recordDefault(port: LacpPort): void {
    copyPortInfo(port.partner, port.partnerAdmin);
    port.actorState |= LACP_STATE_DEFAULTED;
  }

  /** update_Selected (6.4.9): another partner (or the same one changed) means another aggregator. */
  #updateSelected(port: LacpPort, pdu: Readonly<Lacpdu>): void {
    if (!samePort(pdu.actor, port.partner)) this.#setSelected(port, Selected.UNSELECTED);
  }

  /** update_Default_Selected (6.4.9). */
  #updateDefaultSelected(port: LacpPort): void {
    if (!samePort(port.partnerAdmin, port.partner)) this.#setSelected(port, Selected.UNSELECTED);
  }

  /** update_NTT (6.4.9): the partner's view of us is out of date: tell it. */
  #updateNtt(port: LacpPort, pdu: Readonly<Lacpdu>): void {
    const us = pdu.partner;
    if (
      us.port !== port.portNumber ||
      us.portPriority !== port.portPriority ||
      us.system !== this.system ||
      us.systemPriority !== this.systemPriority ||
      us.key !== port.actorKey ||
      (us.state & NTT_STATE_BITS) !== (port.actorState & NTT_STATE_BITS)
    ) {
      port.ntt = true;
    }
  }

  #setSelected(port: LacpPort, selected: Selected): void {
    if (port.selected === selected) return;
    port.selected = selected;
    this.#changed = true;
  }

  // ---------------------------------------------------------------------------------------
  // Periodic Transmission machine (6.4.13).

  #periodicMachine(port: LacpPort, now: number): void {
    for (let i = 0; i < 4; i++) {
      const partnerShort = (port.partner.state & LACP_STATE_TIMEOUT) !== 0;
      const bothPassive = (port.actorState & LACP_STATE_ACTIVITY) === 0 && (port.partner.state & LACP_STATE_ACTIVITY) === 0;
      let next: PeriodicState = port.periodic;
      if (port.begin || !port.lacpEnabled || !port.enabled || bothPassive) {
        next = PeriodicState.NO_PERIODIC;
        if (port.periodic === next && !(port.begin && i === 0)) return;
      } else {
        switch (port.periodic) {
          case PeriodicState.NO_PERIODIC:
            next = PeriodicState.FAST_PERIODIC;
            break;
          case PeriodicState.FAST_PERIODIC:
            if (now >= port.periodicAt) next = PeriodicState.PERIODIC_TX;
            else if (!partnerShort) next = PeriodicState.SLOW_PERIODIC;
            break;
          case PeriodicState.SLOW_PERIODIC:
            if (now >= port.periodicAt || partnerShort) next = PeriodicState.PERIODIC_TX;
            break;
          case PeriodicState.PERIODIC_TX:
            next = partnerShort ? PeriodicState.FAST_PERIODIC : PeriodicState.SLOW_PERIODIC;
            break;
        }
        if (next === port.periodic) return;
      }
      this.#enterPeriodic(port, next, now);
      if (port.begin) return;
    }
  }

  #enterPeriodic(port: LacpPort, state: PeriodicState, now: number): void {
    port.periodic = state;
    this.#changed = true;
    switch (state) {
      case PeriodicState.NO_PERIODIC:
        port.periodicAt = Number.POSITIVE_INFINITY;
        break;
      case PeriodicState.FAST_PERIODIC:
        port.periodicAt = now + FAST_PERIODIC_MS;
        break;
      case PeriodicState.SLOW_PERIODIC:
        port.periodicAt = now + SLOW_PERIODIC_MS;
        break;
      case PeriodicState.PERIODIC_TX:
        port.ntt = true;
        break;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Selection Logic (6.4.14, selection.ts), and the actions it implies.

  #selectionLogic(): void {
    const previous = this.#active;
    this.#active = runSelection(this.#ports, this.#aggregators, { adSelect: this.adSelect, minLinks: this.minLinks });
    for (const port of this.#ports) {
      if (port.selected === port.reportedSelected && port.aggregator === port.reportedAggregator) continue;
      this.#changed = true;
      if (port.selected === Selected.UNSELECTED) {
        if (port.reportedSelected !== Selected.UNSELECTED) {
          this.#actions.push({ kind: 'unselected', port: port.portNumber, aggregator: port.reportedAggregator });
        }
      } else {
        this.#actions.push({ kind: 'selected', port: port.portNumber, aggregator: port.aggregator, standby: port.selected === Selected.STANDBY });
      }
      port.reportedSelected = port.selected;
      port.reportedAggregator = port.aggregator;
    }
    if (previous !== this.#active) {
      this.#changed = true;
      this.#actions.push({ kind: 'active-aggregator', aggregator: this.#active?.id ?? 0, previous: previous?.id ?? 0 });
    }
  }

  /**
   * Ready (6.4.8): every port SELECTED for the aggregator and not yet attached has its
   * ready_N, i.e. has waited its 2 s in WAITING. A port selected a moment ago and still
   * DETACHED holds the others back too: that is what the aggregate wait is for, letting the
   * ports of a link aggregation group that come up together attach together.
   */
  #ready(aggregator: number, now: number): boolean {
    for (const p of this.#ports) {
      if (p.aggregator !== aggregator || p.selected !== Selected.SELECTED) continue;
      if (p.mux === MuxState.DETACHED || (p.mux === MuxState.WAITING && now < p.waitWhileAt)) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Mux machine, coupled control (6.4.15).

  #muxMachine(port: LacpPort, now: number): void {
    let next: MuxState = port.mux;
    if (port.begin) {
      next = MuxState.DETACHED;
    } else {
      switch (port.mux) {
        case MuxState.DETACHED:
          if (port.selected === Selected.SELECTED || port.selected === Selected.STANDBY) next = MuxState.WAITING;
          break;
        case MuxState.WAITING:
          if (port.selected === Selected.UNSELECTED) next = MuxState.DETACHED;
          else if (port.selected === Selected.SELECTED && this.#ready(port.aggregator, now)) next = MuxState.ATTACHED;
          break;
        case MuxState.ATTACHED:
          if (port.selected !== Selected.SELECTED) next = MuxState.DETACHED;
          else if (port.partnerInSync || this.#partnerless(port)) next = MuxState.COLLECTING_DISTRIBUTING;
          break;
        case MuxState.COLLECTING_DISTRIBUTING:
          if (port.selected !== Selected.SELECTED || !(port.partnerInSync || this.#partnerless(port))) next = MuxState.ATTACHED;
          break;
      }
      if (next === port.mux) return;
    }
    this.#enterMux(port, next, now);
  }

  /**
   * Linux's fallback (bond_3ad.c ad_agg_selection_logic: "if the selected aggregator is of
   * join individuals, enable their ports"): the port heard no LACPDU (defaulted) and sits in
   * the active aggregator, which has no partner.
   */
  #partnerless(port: LacpPort): boolean {
    const active = this.#active;
    return port.rx === RxState.DEFAULTED && active !== undefined && active.id === port.aggregator && active.partnerSystem === 0;
  }

  #enterMux(port: LacpPort, state: MuxState, now: number): void {
    port.mux = state;
    this.#changed = true;
    switch (state) {
      case MuxState.DETACHED:
        this.#detach(port);
        port.actorState &= ~SYNC_COLLECTING_DISTRIBUTING;
        this.#setCollectingDistributing(port, false);
        port.ntt = true;
        break;
      case MuxState.WAITING:
        port.waitWhileAt = now + AGGREGATE_WAIT_MS;
        break;
      case MuxState.ATTACHED:
        this.#attach(port);
        port.actorState = (port.actorState | LACP_STATE_SYNCHRONIZATION) & ~(LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING);
        this.#setCollectingDistributing(port, false);
        port.ntt = true;
        break;
      case MuxState.COLLECTING_DISTRIBUTING:
        port.actorState |= LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING;
        this.#setCollectingDistributing(port, true);
        port.ntt = true;
        break;
    }
  }

  #attach(port: LacpPort): void {
    if (port.attachedTo === port.aggregator) return;
    this.#detach(port);
    port.attachedTo = port.aggregator;
    this.#actions.push({ kind: 'attach', port: port.portNumber, aggregator: port.aggregator });
  }

  #detach(port: LacpPort): void {
    if (port.attachedTo === 0) return;
    this.#actions.push({ kind: 'detach', port: port.portNumber, aggregator: port.attachedTo });
    port.attachedTo = 0;
  }

  #setCollectingDistributing(port: LacpPort, enabled: boolean): void {
    if (port.collectingDistributing === enabled) return;
    port.collectingDistributing = enabled;
    this.#actions.push({ kind: 'collecting-distributing', port: port.portNumber, enabled });
  }

  // ---------------------------------------------------------------------------------------
  // Churn Detection machines (6.4.17).

  #churnMachines(port: LacpPort, now: number): void {
    const actor = this.#churn(port, now, 'actor', port.actorChurn, port.actorChurnAt, (port.actorState & LACP_STATE_SYNCHRONIZATION) !== 0);
    port.actorChurn = actor.state;
    port.actorChurnAt = actor.at;
    const partner = this.#churn(port, now, 'partner', port.partnerChurn, port.partnerChurnAt, port.partnerInSync);
    port.partnerChurn = partner.state;
    port.partnerChurnAt = partner.at;
  }

  #churn(port: LacpPort, now: number, who: 'actor' | 'partner', state: ChurnState, at: number, inSync: boolean): { state: ChurnState; at: number } {
    if (!port.enabled) {
      // held in CHURN_MONITOR, timer stopped, until the link comes up
      if (state !== ChurnState.CHURN_MONITOR || at !== Number.POSITIVE_INFINITY) this.#changed = true;
      if (state === ChurnState.CHURN) this.#actions.push({ kind: 'churn', port: port.portNumber, who, churned: false });
      return { state: ChurnState.CHURN_MONITOR, at: Number.POSITIVE_INFINITY };
    }
    if (port.begin) return { state: ChurnState.CHURN_MONITOR, at: now + CHURN_DETECTION_MS };
    switch (state) {
      case ChurnState.NO_CHURN:
        if (!inSync) {
          this.#changed = true;
          return { state: ChurnState.CHURN_MONITOR, at: now + CHURN_DETECTION_MS };
        }
        break;
      case ChurnState.CHURN_MONITOR:
        if (at === Number.POSITIVE_INFINITY) return { state, at: now + CHURN_DETECTION_MS }; // link just came up
        if (inSync) {
          this.#changed = true;
          return { state: ChurnState.NO_CHURN, at: Number.POSITIVE_INFINITY };
        }
        if (now >= at) {
          this.#changed = true;
          if (who === 'actor') port.actorChurnCount++;
          else port.partnerChurnCount++;
          this.#actions.push({ kind: 'churn', port: port.portNumber, who, churned: true });
          return { state: ChurnState.CHURN, at: Number.POSITIVE_INFINITY };
        }
        break;
      case ChurnState.CHURN:
        if (inSync) {
          this.#changed = true;
          this.#actions.push({ kind: 'churn', port: port.portNumber, who, churned: false });
          return { state: ChurnState.NO_CHURN, at: Number.POSITIVE_INFINITY };
        }
        break;
    }
    return { state, at };
  }

  // ---------------------------------------------------------------------------------------
  // Transmit machine (6.4.16).

  #txMachine(port: LacpPort, now: number): void {
    if (!port.ntt) return;
    if (port.periodic === PeriodicState.NO_PERIODIC) {
      port.ntt = false; // no LACPDUs while the Periodic machine is off (LACP off, link down, both passive)
      return;
    }
    if (now - port.txTimes[port.txIndex]! < FAST_PERIODIC_MS) return; // held: 3 in the last second
    port.txTimes[port.txIndex] = now;
    port.txIndex = (port.txIndex + 1) % MAX_TX_PER_FAST_PERIODIC;
    port.ntt = false;
    port.lacpduTx++;
    const actor: LacpPortInfo = {
      systemPriority: this.systemPriority,
      system: this.system,
      key: port.actorKey,
      portPriority: port.portPriority,
      port: port.portNumber,
      state: port.actorState,
    };
    const partner = createPortInfo();
    copyPortInfo(partner, port.partner);
    this.#actions.push({ kind: 'send', port: port.portNumber, pdu: { version: LACP_VERSION, actor, partner, collectorMaxDelay: 0 } });
  }
}

/** The fields update_Selected compares: port, priorities, system, key, Aggregation. */
function samePort(a: Readonly<LacpPortInfo>, b: Readonly<LacpPortInfo>): boolean {
  return (
    a.port === b.port &&
    a.portPriority === b.portPriority &&
    a.system === b.system &&
    a.systemPriority === b.systemPriority &&
    a.key === b.key &&
    (a.state & LACP_STATE_AGGREGATION) === (b.state & LACP_STATE_AGGREGATION)
  );
}
