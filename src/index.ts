/**
 * lnlb as a library: `import { createNode } from 'lnlb'` runs a cluster node inside a Node
 * service, with lnlbd's options, typed events and status. The daemon (`lnlbd`) and its control
 * tool (`lnlbctl`) are the other two ways to use it; protocol handlers have their own entry,
 * `lnlb/handler`.
 *
 * @packageDocumentation
 */

export { createNode, type LnlbNode, type LnlbNodeEvents, type LnlbNodeOptions } from './main/embedded-node.js';
export type { ClusterEvents } from './main/cluster-events.js';
export type { HealthEvent, HealthStatusJson } from './main/health-monitor.js';
export type { HealthCheckFunction } from './health/check-spec.js';
export type { HealthCheckStatusJson, HealthState } from './health/health-state.js';
export type { HealthServing } from './health/presence.js';
export type {
  ActorCountersJson,
  DrainResult,
  HandlerStatusJson,
  InterfaceCounters,
  InterfaceState,
  InterfaceStatusJson,
  NodeStatusJson,
} from './main/admin-protocol.js';
/** What `InterfaceCounters.actors` lists: one actor thread's load, shard and input ring (ActorCountersJson is this). */
export type { ActorCounters } from './workers/datapath.js';
export { DEFAULT_DRAIN_IDLE_SECONDS, type DrainOptions } from './main/drain.js';
export { LOG_LEVELS, MAC_MODES, RX_RINGS, type LogLevel, type MacMode, type RxRing } from './main/options.js';
export { WEIGHT_MODES, type WeightMode } from './main/weight-source.js';
export { DRAINING_WEIGHT, ELECTIONS, type ElectionName } from './cluster/election.js';
export { ErrorCodes, isLnlbError, LnlbError, type ErrorCode } from './errors.js';
export type { Logger } from './main/logger.js';
