/**
 * 802.3ad in the bond (the driver's bond_3ad glue): runs the LACP machines of
 * lacp/machines.ts for the bond's slaves, sends the LACPDUs they ask for, decodes the ones
 * the slaves receive, and keeps the list of distributing ports the transmit hash picks from.
 * Port numbers are slot + 1 (LACP port numbers start at 1).
 */

import { formatMac, macFromNumber, parseMac } from '../net/ethernet.js';
import { createDecodedLacpdu, decodeLacpdu, encodeLacpdu, LacpduResult, LACPDU_FRAME_LENGTH } from './lacp/lacpdu.js';
import { ChurnState, LacpBond } from './lacp/machines.js';
import type { BondEventFields } from './bond-events.js';
import { buildMarkerResponse, MARKER_INFORMATION, MARKER_RESPONSE, markerKind } from './lacp/marker.js';
import { linkUsable, type SlaveLink } from './link-monitor.js';
import type { BondOptions } from './options.js';
import type { AggregatorView, BondStatusView, LacpPortView } from './status-file.js';
import { slaveIndex } from './xmit-hash.js';

/** What of a slave LACP needs. */
export interface LacpSlave {
  readonly permanentMac: Uint8Array;
  readonly link: SlaveLink;
  readonly speed: number;
  readonly fullDuplex: boolean | undefined;
}

export interface LacpIo {
  send(slot: number, buf: Uint8Array, off: number, len: number): boolean;
  event(kind: 'lacp', fields: BondEventFields['lacp']): void;
}

const SLOTS = 32;

/** The driver's words for a churn machine's state (bond_3ad.c). */
function churnWords(state: ChurnState): string {
  return state === ChurnState.CHURN ? 'churned' : state === ChurnState.NO_CHURN ? 'none' : 'monitoring';
}

/** What Lacp8023ad.receive found in a slow-protocols frame. */
export const SlowFrame = { BAD: 0, LACPDU: 1, MARKER: 2 } as const;
export type SlowFrameKind = (typeof SlowFrame)[keyof typeof SlowFrame];

export class Lacp8023ad {
  readonly #lacp: LacpBond;
  readonly #io: LacpIo;
  readonly #hdr: number;
  readonly #tx: Uint8Array;
  readonly #pdu = createDecodedLacpdu();
  readonly #systemMac: Uint8Array;
  /** Slots collecting and distributing, in port order: what the transmit hash picks from. */
  readonly #distributing = new Int32Array(SLOTS);
  #distributingCount = 0;
  readonly #collecting = new Uint8Array(SLOTS);
  /** The last link state told to LACP per slot, so unchanged links cost nothing. */
  readonly #linkUp = new Int8Array(SLOTS).fill(-1);
  lacpdusSent = 0;
  lacpdusSendFailed = 0;
  /** Marker Information PDUs answered, and Marker Responses received (marker.ts). */
  markersAnswered = 0;
  markerResponsesReceived = 0;

  constructor(options: BondOptions, bondMac: Uint8Array, vnetHdrLen: number, io: LacpIo) {
    this.#systemMac = options.ad_actor_system === undefined ? Uint8Array.from(bondMac) : parseMac(options.ad_actor_system);
    this.#lacp = new LacpBond({
      systemMac: this.#systemMac,
      systemPriority: options.ad_actor_sys_prio,
      lacpRate: options.lacp_rate,
      lacpActive: options.lacp_active,
      adSelect: options.ad_select,
      minLinks: options.min_links,
      userPortKey: options.ad_user_port_key,
    });
    this.#io = io;
    this.#hdr = vnetHdrLen;
    this.#tx = new Uint8Array(vnetHdrLen + LACPDU_FRAME_LENGTH);
  }

  addPort(slot: number, slave: LacpSlave, now: number): void {
    const up = linkUsable(slave.link);
    this.#linkUp[slot] = up ? 1 : 0;
    this.#lacp.addPort(
      { portNumber: slot + 1, mac: slave.permanentMac, linkUp: up, ...(slave.speed > 0 ? { speedMbps: slave.speed } : {}), ...(slave.fullDuplex === undefined ? {} : { fullDuplex: slave.fullDuplex }) },
      now,
    );
    this.#drain();
  }

  removePort(slot: number, now: number): void {
    this.#lacp.removePort(slot + 1, now);
    this.#linkUp[slot] = -1;
    this.#collecting[slot] = 0;
    this.#drain();
  }

  setLink(slot: number, slave: LacpSlave, now: number): void {
    const up = linkUsable(slave.link) ? 1 : 0;
    if (this.#linkUp[slot] === up) return;
    this.#linkUp[slot] = up;
    this.#lacp.setLink(slot + 1, { up: up === 1, ...(slave.speed > 0 ? { speedMbps: slave.speed } : {}), ...(slave.fullDuplex === undefined ? {} : { fullDuplex: slave.fullDuplex }) }, now);
    this.#drain();
  }

  /** A slow-protocols frame received on the slot: what it was (a Marker PDU is answered or counted here). */
  receive(slot: number, buf: Uint8Array, l2: number, len: number, now: number): SlowFrameKind {
    if (decodeLacpdu(buf, l2, len, this.#pdu) !== LacpduResult.OK) return this.#marker(slot, buf, l2, len) ? SlowFrame.MARKER : SlowFrame.BAD;
    this.#lacp.receive(slot + 1, this.#pdu, now);
    this.#drain();
    return SlowFrame.LACPDU;
  }

  /** A Marker PDU: an Information PDU answered on the port it came on, a Response counted (marker.ts). */
  #marker(slot: number, buf: Uint8Array, l2: number, len: number): boolean {
    const kind = markerKind(buf, l2, len);
    if (kind === MARKER_RESPONSE) {
      this.markerResponsesReceived++;
      return true;
    }
    if (kind !== MARKER_INFORMATION) return false;
    const port = this.#lacp.port(slot + 1);
    if (port === undefined) return false;
    this.#tx.fill(0, 0, this.#hdr);
    const length = buildMarkerResponse(buf, l2, len, this.#tx, this.#hdr, port.mac);
    if (this.#io.send(slot, this.#tx, 0, this.#hdr + length)) this.markersAnswered++;
    else this.lacpdusSendFailed++;
    return true;
  }

  /** Runs the machines' timers when one is due; true when the distributing set changed. */
  tick(now: number): boolean {
    if (now < this.#lacp.nextDeadline()) return false;
    const before = this.#distributingCount;
    this.#lacp.tick(now);
    return this.#drain() || before !== this.#distributingCount;
  }

  /** The distributing slot the hash picks, or -1 when no port distributes. */
  pick(hash: number): number {
    const i = slaveIndex(hash, this.#distributingCount);
    return i < 0 ? -1 : this.#distributing[i]!;
  }

  collecting(slot: number): boolean {
    return this.#collecting[slot] === 1;
  }

  hasActiveAggregator(): boolean {
    return this.#lacp.activeAggregator !== undefined && this.#distributingCount > 0;
  }

  portStates(slot: number): { actorState: number; partnerState: number } | undefined {
    const port = this.#lacp.port(slot + 1);
    return port === undefined ? undefined : { actorState: port.actorState, partnerState: port.partner.state };
  }

  /** The port's churn machines and LACP information, for the status file (status-file.ts LacpPortView). */
  portView(slot: number): LacpPortView | undefined {
    const port = this.#lacp.port(slot + 1);
    if (port === undefined) return undefined;
    const p = port.partner;
    return {
      actorChurnState: churnWords(port.actorChurn),
      partnerChurnState: churnWords(port.partnerChurn),
      actorChurnedCount: port.actorChurnCount,
      partnerChurnedCount: port.partnerChurnCount,
      actor: { systemPriority: this.#lacp.systemPriority, systemMac: formatMac(this.#systemMac), key: port.actorKey, portPriority: port.portPriority, portNumber: port.portNumber, portState: port.actorState },
      partner: { systemPriority: p.systemPriority, systemMac: formatMac(macFromNumber(p.system)), key: p.key, portPriority: p.portPriority, portNumber: p.port, portState: p.state },
    };
  }

  aggregatorOf(slot: number): number {
    return this.#lacp.port(slot + 1)?.aggregator ?? 0;
  }

  /** Why the port does not distribute, in one line; undefined when it does. */
  whyNotDistributing(slot: number): string | undefined {
    const reasons = this.#lacp.whyNotDistributing(slot + 1);
    return reasons.length === 0 ? undefined : reasons.map((r) => r.message).join('; ');
  }

  statusView(): NonNullable<BondStatusView['ad']> {
    const active = this.#lacp.activeAggregator;
    let activeView: AggregatorView | undefined;
    if (active !== undefined) {
      activeView = { id: active.id, ports: active.ports, actorKey: active.actorKey, partnerKey: active.partnerKey, partnerMac: formatMac(macFromNumber(active.partnerSystem)) };
    }
    return {
      lacpActive: this.#lacp.lacpActive,
      lacpRate: this.#lacp.lacpRate,
      minLinks: this.#lacp.minLinks,
      adSelect: this.#lacp.adSelect,
      systemPriority: this.#lacp.systemPriority,
      systemMac: formatMac(this.#systemMac),
      active: activeView,
    };
  }

  /** Carries out what the machines decided; true when the distributing set changed. */
  #drain(): boolean {
    let changed = false;
    for (const action of this.#lacp.drainActions()) {
      switch (action.kind) {
        case 'send': {
          const slot = action.port - 1;
          const port = this.#lacp.port(action.port);
          if (port === undefined) break;
          this.#tx.fill(0, 0, this.#hdr);
          const len = encodeLacpdu(this.#tx, this.#hdr, action.pdu, port.mac);
          if (this.#io.send(slot, this.#tx, 0, this.#hdr + len)) this.lacpdusSent++;
          else this.lacpdusSendFailed++;
          break;
        }
        case 'collecting-distributing':
          this.#collecting[action.port - 1] = action.enabled ? 1 : 0;
          changed = true;
          this.#io.event('lacp', { port: action.port, change: action.enabled ? 'collecting-distributing' : 'stopped-distributing' });
          break;
        case 'active-aggregator':
          this.#io.event('lacp', { change: 'active-aggregator', aggregator: action.aggregator, previous: action.previous });
          break;
        case 'churn':
          if (action.churned) this.#io.event('lacp', { port: action.port, change: `${action.who}-churned` });
          break;
        default:
          break;
      }
    }
    if (changed) {
      let n = 0;
      for (const port of this.#lacp.ports) if (port.collectingDistributing) this.#distributing[n++] = port.portNumber - 1;
      this.#distributingCount = n;
    }
    return changed;
  }
}
