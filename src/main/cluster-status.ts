/**
 * `lnlbctl status` for one interface, assembled from what each part knows: the options, the
 * control plane's view (undefined when it did not answer), the datapath's counters (undefined
 * before it runs), the health checks and the interface's state. Pure: inputs in, the JSON out.
 */

import { describeRule, type RuleSet } from '../cluster/port-rules.js';
import type { ActorCounters, DatapathCounters } from '../workers/datapath.js';
import type { ControlStatus, HandlerSetup } from '../workers/messages.js';
import { formatMac } from '../net/ethernet.js';
import type { InterfaceState, InterfaceStatusJson } from './admin-protocol.js';
import type { HealthStatusJson } from './health-monitor.js';
import { memberState } from './node-state.js';

const hex = (n: number): string => n.toString(16).padStart(8, '0');

export interface StatusInputs {
  name: string;
  /** The VIP text (IPv4, IPv6, or both comma-separated: net/vip.ts). */
  vip: string;
  /** --vlan: the trunk VLAN; 0 or absent: untagged. */
  vlan?: number;
  bind: string;
  clusterMac: Uint8Array;
  workers: number;
  /** --insecure-no-auth. */
  insecure: boolean;
  weightMode: string;
  /** The interface's state (participation.ts shownState): the header's word and this node's row's. */
  state: InterfaceState;
  failed: string | undefined;
  suspended: boolean;
  /** The health checks; undefined without any. */
  health: HealthStatusJson | undefined;
  rules: RuleSet;
  /** The handlers as configured, and the names their modules gave (absent before the datapath runs). */
  handlerSetups: readonly HandlerSetup[];
  handlerNames: readonly (string | undefined)[];
  /** Undefined: the control plane did not answer. */
  plane: ControlStatus | undefined;
  /** Undefined: the datapath does not run. */
  counters: DatapathCounters | undefined;
  handlerCounters: readonly Record<string, number>[];
  actorCounters: ActorCounters[];
  /** --election bucket: buckets the actors still drain (shm/draining-buckets.ts). */
  drainingBuckets?: number;
}

export function assembleStatus(input: StatusInputs): InterfaceStatusJson {
  const { plane, counters, state } = input;
  return {
    name: input.name,
    vip: input.vip,
    bind: input.bind,
    clusterMac: formatMac(input.clusterMac),
    converged: plane?.accepting ?? false,
    state,
    ...(input.failed === undefined ? {} : { failed: input.failed }),
    suspended: input.suspended,
    ...(input.health === undefined ? {} : { health: input.health }),
    weightMode: input.weightMode,
    workers: input.workers,
    authenticated: plane?.authenticated ?? false,
    insecure: input.insecure,
    unauthenticatedPeers: plane?.unauthenticatedPeers ?? [],
    ...(plane?.heldBy === undefined ? {} : { heldBy: plane.heldBy }),
    ...(plane?.buckets === undefined ? {} : { buckets: { ...plane.buckets, draining: input.drainingBuckets ?? 0 } }),
    nodes: (plane?.nodes ?? []).map((n) => ({
      mac: n.mac,
      ...(n.name === '' ? {} : { name: n.name }),
      ...(n.address === '' ? {} : { address: n.address }),
      // This node's row says what the header says (one state); the others', what we see of them.
      state: n.self ? state : memberState(n.status, n.weight, n.joined),
      status: n.status,
      weight: n.weight,
      self: n.self,
      ...(n.rulesDigest === undefined ? {} : { rulesDigest: hex(n.rulesDigest), rulesMatch: n.rulesMatch ?? false }),
    })),
    rules: input.rules.rules.map((rule, i) => describeRule(rule, i)),
    rulesDigest: hex(input.rules.digest),
    rulesMismatch: (plane?.nodes ?? []).filter((n) => n.rulesMatch === false).map((n) => n.mac),
    handlers: input.handlerSetups.map((setup, h) => ({
      protocol: setup.spec.protocol,
      name: input.handlerNames[h] ?? setup.spec.label,
      module: setup.spec.label,
      idleTimeoutSeconds: setup.idleTimeoutSeconds,
      counters: input.handlerCounters[h] ?? {},
    })),
    counters: {
      framesSeen: counters?.framesSeen ?? 0,
      framesIPv6: counters?.framesIPv6 ?? 0,
      ...(input.vlan === undefined || input.vlan === 0 ? {} : { vlan: { id: input.vlan, ...(counters?.vlan ?? { neighbourToHost: 0, egressFrames: 0, egressDrops: 0 }) } }),
      framesAccepted: counters?.framesAccepted ?? 0,
      framesDropped: counters?.dropped ?? {},
      arpReplies: counters?.arpReplies ?? 0,
      ndpAdvertisements: counters?.ndpAdvertisements ?? 0,
      trackedEntries: counters?.trackedEntries ?? 0,
      kernelDrops: counters?.kernelDrops ?? 0,
      ...(counters === undefined ? {} : { kernelFilter: counters.kernelFilter, weightAnnouncements: counters.weightAnnouncements }),
      control: plane?.control ?? { received: {}, sent: {}, rejected: {} },
      nodeTableFull: plane?.nodeTableFull ?? 0,
      rounds: plane?.rounds ?? 0,
      resets: plane?.resets ?? 0,
      ...(plane?.lastFailover === undefined ? {} : { lastFailover: plane.lastFailover }),
      stallMaxMs: plane?.stallMaxMs ?? 0,
      stallTotalMs: plane?.stallTotalMs ?? 0,
      evictions: counters?.evictions ?? 0,
      deaths: plane?.deaths ?? {},
      actors: input.actorCounters,
    },
  };
}
