/**
 * Selection Logic (IEEE 802.1AX-2014 6.4.14): which aggregator each port joins, and which
 * aggregator the bond uses (`ad_select`). Pure; machines.ts runs it once per step, between
 * the Receive and the Mux machines, and turns its changes into actions.
 *
 * Aggregators are numbered from 1, one per port, as the Linux driver does ("Aggregator ID" in
 * the status file). An aggregator's identity is that of its first port: actor key, partner
 * system priority, partner system and partner key. A port that is not Individual joins the
 * aggregator with the same identity, else the lowest free one; an Individual port (either end
 * says Aggregation = FALSE, or no partner has spoken: the defaulted partner is Individual)
 * always gets an aggregator of its own. A port moves only once its Mux machine is DETACHED
 * (the standard's Selection Logic does not re-select an attached port).
 *
 * Selected (6.4.8): SELECTED when the port's aggregator is the active one, STANDBY when it is
 * another (eligible but not chosen, or below min_links), UNSELECTED when it has none or it
 * must leave. The driver keeps a single active aggregator per bond; giving the ports of the
 * others STANDBY keeps them out of synchronization, so the partner does not send on links we
 * do not collect from (the trouble a Linux bonding patch describes: ports attached to an
 * inactive aggregator advertised Synchronization, and the partner distributed onto them).
 *
 * Active aggregator, as the Linux driver ranks them (`ad_agg_selection_test`): an eligible
 * aggregator (at least one port with link up, and at least `min_links` of them) beats an
 * ineligible one; then one that is not Individual beats an Individual one; then one with a
 * partner beats one without; then the policy:
 *   stable     the most bandwidth, but once the active aggregator has a port attached it
 *              stays while it is eligible and no worse in the first three tests (re-selection
 *              only when it fails). Before that, during the first aggregate wait, it is
 *              re-evaluated like `bandwidth`, so the ports' LACPDUs arriving in some order do
 *              not decide it;
 *   bandwidth  the most bandwidth (sum of the link-up ports' speeds), re-evaluated at every
 *              change;
 *   count      the most link-up ports, then the most bandwidth;
 * and last the lowest aggregator ID, so the choice is deterministic.
 */
import type { LacpPortInfo } from './lacpdu.js';
import { LACP_STATE_AGGREGATION } from './lacpdu.js';

export const Selected = { UNSELECTED: 'UNSELECTED', SELECTED: 'SELECTED', STANDBY: 'STANDBY' } as const;
export type Selected = (typeof Selected)[keyof typeof Selected];

export const AD_SELECT_POLICIES = ['stable', 'bandwidth', 'count'] as const;
export type AdSelect = (typeof AD_SELECT_POLICIES)[number];

/** What the Selection Logic reads of a port, and the two variables it writes. */
export interface SelectionPort {
  readonly portNumber: number;
  /** Actor_Oper_Port_Key. */
  readonly actorKey: number;
  /** Actor_Oper_Port_State (for its Aggregation bit). */
  readonly actorState: number;
  /** Partner_Oper_* of the port. */
  readonly partner: Readonly<LacpPortInfo>;
  /** port_enabled: link up. */
  readonly enabled: boolean;
  readonly speedMbps: number;
  /** Mux machine in DETACHED: the port may be moved to another aggregator. */
  readonly detached: boolean;
  /** Attached to its aggregator (Mux ATTACHED or COLLECTING_DISTRIBUTING). */
  readonly attached: boolean;
  selected: Selected;
  /** Aggregator ID it is selected for; 0 when none. */
  aggregator: number;
}

export interface Aggregator {
  readonly id: number;
  /** Ports selected for it (SELECTED or STANDBY); 0 = free. */
  ports: number;
  /** Of those, ports with link up: what `count` and `min_links` count. */
  enabledPorts: number;
  /** Sum of the link-up ports' speeds, Mb/s. */
  bandwidthMbps: number;
  /** Ports attached to it (what `stable` protects). */
  attachedPorts: number;
  actorKey: number;
  partnerSystemPriority: number;
  partnerSystem: number;
  partnerKey: number;
  individual: boolean;
  active: boolean;
}

export interface SelectionOptions {
  adSelect: AdSelect;
  minLinks: number;
}

export function createAggregator(id: number): Aggregator {
  return {
    id,
    ports: 0,
    enabledPorts: 0,
    bandwidthMbps: 0,
    attachedPorts: 0,
    actorKey: 0,
    partnerSystemPriority: 0,
    partnerSystem: 0,
    partnerKey: 0,
    individual: false,
    active: false,
  };
}

/**
 * Individual (6.3.5, 6.4.14): either end says it cannot aggregate, or there is no partner (the
 * defaulted partner has system 0).
 */
export function isIndividual(port: SelectionPort): boolean {
  return (port.actorState & LACP_STATE_AGGREGATION) === 0 || (port.partner.state & LACP_STATE_AGGREGATION) === 0 || port.partner.system === 0;
}

/** Whether the port may stay in (or join) the aggregator. */
export function matchesAggregator(port: SelectionPort, agg: Aggregator): boolean {
  if (agg.individual || isIndividual(port)) return false;
  return (
    agg.actorKey === port.actorKey &&
    agg.partnerSystem === port.partner.system &&
    agg.partnerSystemPriority === port.partner.systemPriority &&
    agg.partnerKey === port.partner.key
  );
}

export function isEligible(agg: Aggregator, minLinks: number): boolean {
  return agg.enabledPorts > 0 && agg.enabledPorts >= minLinks;
}

function recount(ports: readonly SelectionPort[], aggregators: readonly Aggregator[]): void {
  for (const agg of aggregators) {
    agg.ports = 0;
    agg.enabledPorts = 0;
    agg.bandwidthMbps = 0;
    agg.attachedPorts = 0;
  }
  for (const port of ports) {
    if (port.aggregator === 0 || port.selected === Selected.UNSELECTED) continue;
    const agg = aggregators[port.aggregator - 1];
    if (!agg) continue;
    agg.ports++;
    if (port.attached) agg.attachedPorts++;
    if (port.enabled) {
      agg.enabledPorts++;
      agg.bandwidthMbps += port.speedMbps;
    }
  }
}

function claim(agg: Aggregator, port: SelectionPort): void {
  agg.actorKey = port.actorKey;
  agg.partnerSystemPriority = port.partner.systemPriority;
  agg.partnerSystem = port.partner.system;
  agg.partnerKey = port.partner.key;
  agg.individual = isIndividual(port);
}

/** The first three tests of the ranking, as a number: higher is better. */
function rankClass(agg: Aggregator, minLinks: number): number {
  return (isEligible(agg, minLinks) ? 4 : 0) + (agg.individual ? 0 : 2) + (agg.partnerSystem !== 0 ? 1 : 0);
}

/** Negative when `a` is the better aggregator. */
function compare(a: Aggregator, b: Aggregator, options: SelectionOptions): number {
  const byClass = rankClass(b, options.minLinks) - rankClass(a, options.minLinks);
  if (byClass !== 0) return byClass;
  if (options.adSelect === 'count' && a.enabledPorts !== b.enabledPorts) return b.enabledPorts - a.enabledPorts;
  if (a.bandwidthMbps !== b.bandwidthMbps) return b.bandwidthMbps - a.bandwidthMbps;
  return a.id - b.id;
}

/**
 * The active aggregator under the policy, or undefined when none is eligible. `current` is
 * the active one before this run (for `stable`).
 */
export function chooseActive(aggregators: readonly Aggregator[], current: Aggregator | undefined, options: SelectionOptions): Aggregator | undefined {
  let best: Aggregator | undefined;
  for (const agg of aggregators) {
    if (agg.ports === 0 || !isEligible(agg, options.minLinks)) continue;
    if (!best || compare(agg, best, options) < 0) best = agg;
  }
  if (
    options.adSelect === 'stable' &&
    current &&
    current.attachedPorts > 0 &&
    isEligible(current, options.minLinks) &&
    (!best || rankClass(current, options.minLinks) >= rankClass(best, options.minLinks))
  ) {
    return current;
  }
  return best;
}

/**
 * One run of the Selection Logic over all the ports of a bond. Mutates the ports' `selected`
 * and `aggregator` and the aggregators' counts, identity and `active`; returns the active
 * aggregator (undefined: none).
 */
export function runSelection(
  ports: readonly SelectionPort[],
  aggregators: readonly Aggregator[],
  options: SelectionOptions,
): Aggregator | undefined {
  const current = aggregators.find((a) => a.active);
  // 1. A port whose link went down or whose key, partner or aggregability no longer matches
  //    its aggregator leaves it (the Receive machine's update_Selected covers a new partner;
  //    this covers the rest, e.g. a speed change that changed the key).
  for (const port of ports) {
    if (port.selected === Selected.UNSELECTED || port.aggregator === 0) continue;
    const agg = aggregators[port.aggregator - 1];
    const stays =
      agg !== undefined &&
      port.enabled &&
      (agg.individual ? isIndividual(port) && agg.actorKey === port.actorKey : matchesAggregator(port, agg));
    if (!stays) port.selected = Selected.UNSELECTED;
  }
  recount(ports, aggregators);
  // 2. Detached, unselected, link-up ports pick an aggregator. An unselected port the Mux has
  //    not detached yet still holds its aggregator: nobody else may claim it meanwhile.
  for (const port of ports) {
    if (port.selected === Selected.UNSELECTED && port.detached) port.aggregator = 0;
  }
  const isFree = (a: Aggregator): boolean => a.ports === 0 && !ports.some((p) => p.aggregator === a.id);
  for (const port of ports) {
    if (port.selected !== Selected.UNSELECTED || !port.detached || !port.enabled) continue;
    let target: Aggregator | undefined;
    if (!isIndividual(port)) target = aggregators.find((a) => a.ports > 0 && matchesAggregator(port, a));
    if (!target) {
      target = aggregators.find(isFree);
      if (!target) continue; // cannot happen: one aggregator per port
      claim(target, port);
    }
    port.aggregator = target.id;
    port.selected = Selected.STANDBY; // SELECTED below if its aggregator is the active one
    target.ports++;
    if (port.enabled) {
      target.enabledPorts++;
      target.bandwidthMbps += port.speedMbps;
    }
  }
  for (const agg of aggregators) if (isFree(agg)) claim(agg, EMPTY_PORT);
  // 3. The active aggregator, and SELECTED / STANDBY accordingly.
  const active = chooseActive(aggregators, current, options);
  for (const agg of aggregators) agg.active = agg === active;
  for (const port of ports) {
    if (port.selected === Selected.UNSELECTED || port.aggregator === 0) continue;
    port.selected = active !== undefined && port.aggregator === active.id ? Selected.SELECTED : Selected.STANDBY;
  }
  return active;
}

/** A free aggregator's identity: matches no port. */
const EMPTY_PORT: SelectionPort = {
  portNumber: 0,
  actorKey: 0,
  actorState: 0,
  partner: { systemPriority: 0, system: 0, key: 0, portPriority: 0, port: 0, state: 0 },
  enabled: false,
  speedMbps: 0,
  detached: true,
  attached: false,
  selected: Selected.UNSELECTED,
  aggregator: 0,
};
