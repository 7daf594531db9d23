/**
 * The admin socket's protocol: one JSON object per line over a Unix stream socket in the run
 * directory. Versioned so that lnlbctl and lnlbd of different versions fail clearly.
 *
 *   request  {"v":1,"id":7,"cmd":"status"}
 *   response {"v":1,"id":7,"ok":true,"result":{...}}
 *          | {"v":1,"id":7,"ok":false,"error":{"code":"LNLB_ERR_...","message":"..."}}
 */

import type { BondJson } from './bond-manager.js';
import type { ActorCounters } from '../workers/datapath.js';
import type { BucketsStatus, FailoverTimeline } from '../workers/messages.js';
import type { HealthStatusJson } from './health-monitor.js';

export const ADMIN_PROTOCOL_VERSION = 1;
export const ADMIN_SOCKET_NAME = 'lnlbd.sock';
/** A request line longer than this is garbage: the connection gets an error and is closed. */
export const ADMIN_MAX_LINE = 64 * 1024;

export interface AdminRequest {
  v: number;
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

/** serializeError's form (src/errors.ts): lnlbctl revives it with its code. */
export interface AdminError {
  code: string;
  message: string;
  errno?: string;
  cause?: string;
}

export type AdminResponse =
  | { v: number; id: number; ok: true; result: unknown }
  | { v: number; id: number; ok: false; error: AdminError };

export interface NodeStatusJson {
  mac: string;
  /** The name the node announces (--node-name, or its host name); absent if it announced none (LNLB, an earlier lnlb). */
  name?: string;
  /** The IPv4 of the node's bound device, as it announces it; absent if none. */
  address?: string;
  /**
   * In words (node-state.ts, docs/operating.md): this node's row has the interface's state
   * (the header's word); another member's: serving, draining, not serving, asked to
   * retransmit, joining. Absent from older daemons.
   */
  state?: string;
  /** The membership's code: OK, ASKED_RETRASM (late heartbeat, asked to retransmit), JOINING (not yet in the view). */
  status: string;
  /** A capacity (higher gets more new clients); 65535: the draining marker. */
  weight: number;
  self: boolean;
  /** The port rules digest this node announces (hex); undefined before its first message. */
  rulesDigest?: string;
  /** Its port rules are this node's (false: reported, each node applies its own). */
  rulesMatch?: boolean;
}

export interface HandlerStatusJson {
  protocol: number;
  name: string;
  /** What the operator gave (`tcp=tcp`, `icmp=./icmp-echo.js`). */
  module: string;
  idleTimeoutSeconds: number;
  /** The tracker's own counters, summed over the actors. */
  counters: Record<string, number>;
}

export interface InterfaceCounters {
  framesSeen: number;
  /** Of framesSeen: IPv6 frames for the IPv6 VIP. */
  framesIPv6: number;
  /** --vlan (a trunk): its id, the neighbour answers handed to the host, and the host's frames put on the trunk tagged (or refused). */
  vlan?: { id: number; neighbourToHost: number; egressFrames: number; egressDrops: number };
  framesAccepted: number;
  framesDropped: Record<string, number>;
  arpReplies: number;
  /** Neighbour advertisements of the IPv6 VIP sent (answers to solicitations): IPv6's arpReplies. */
  ndpAdvertisements: number;
  trackedEntries: number;
  kernelDrops: number;
  /**
   * The data socket's kernel filter: `buckets` (the kernel passes only the buckets this node
   * owns or drains, --election bucket) or `plain` (every frame to the cluster MAC), why,
   * how many of the 1024 buckets pass, and programs attached and refused since the start.
   * Absent from older daemons.
   */
  kernelFilter?: { program: 'buckets' | 'plain'; why: string; passBuckets: number; swaps: number; failures: number };
  /**
   * HEARTBEATs announcing a weight that the data socket passed to the datapath, and the new
   * flows held after one until the control plane had read it too (--workers 1: every node
   * switches to a new weight at the same frame). Absent from older daemons.
   */
  weightAnnouncements?: { seen: number; heldFlows: number };
  /** Control messages by type, and rejected ones by reason (bad CRC, other cluster, ...). */
  control: {
    received: Record<string, number>;
    sent: Record<string, number>;
    rejected: Record<string, number>;
    /**
     * Bounded control-plane state that overflowed, by what: unauthenticatedPeersEvicted (the
     * table of 64 was full), unauthenticatedPeersNotTracked (new ones past 50 a second),
     * logLinesSuppressed (repeated lines held back), stateSendsSkipped (newcomers past 2 a
     * second got no tracking state: a flood of spoofed JOINs), socketDrops (frames the kernel
     * dropped, not read in time). Absent from older daemons.
     */
    overflow?: Record<string, number>;
    /**
     * The tracking-state transfers to and from newcomers (cluster/state-transfer.ts), by what:
     * transfersStarted, transfersAcknowledged, transfersAbandoned, transfersRefusedFull,
     * nacksReceived, fragmentsResent (as the sender); transfersReceived, requestsSent,
     * fragmentsAsked, messagesAskedWhole, sendersDied, sendersUnresponsive, noStateNeeded (as
     * the newcomer). Absent from older daemons.
     */
    stateTransfer?: Record<string, number>;
  };
  /** Nodes refused because the node table was full. */
  nodeTableFull: number;
  /** Convergence rounds completed, and self-resets after a stall. */
  rounds: number;
  resets: number;
  /**
   * The control thread's timers that fired late (its thread was not scheduled or was blocked),
   * in ms: the longest, and all of them; that time does not count as the members' silence.
   * Optional: absent from older daemons.
   */
  stallMaxMs?: number;
  stallTotalMs?: number;
  /** The last member this node declared dead for silence: last heard, declared dead, view published (wall-clock ms). */
  lastFailover?: FailoverTimeline;
  /** Tracked flows evicted to make room (table full). Optional: absent from daemons before metrics. */
  evictions?: number;
  /** Nodes this node declared dead, by reason (missed-heartbeats, left, restarted, self-reset). */
  deaths?: Record<string, number>;
  /** Per actor thread, in actor order. */
  actors?: ActorCountersJson[];
}

/** One actor thread's figures: its load, its shard of the tracking tables, its input ring. */
export type ActorCountersJson = ActorCounters;

/**
 * converging: a round is changing the view (or the first is not complete: accepting nothing);
 * held: this node may not start serving: it hears peers it cannot authenticate (`heldBy`,
 * `unauthenticatedPeers`: another key, or none); converged: the view is settled; draining: no new flows, tracked ones finish (drainstop);
 * stopped: out of the cluster (stop, or the end of a drain); suspended: stopped, and start is
 * refused until resume; stopping: the interface is being removed (delif, daemon exit); failed:
 * out of the cluster because a handler stopped returning (see `failed`), until lnlbd restarts;
 * unhealthy: out of the cluster because a health check fails (`health`), back once it passes.
 */
export type InterfaceState = 'converging' | 'converged' | 'held' | 'draining' | 'stopped' | 'suspended' | 'stopping' | 'failed' | 'unhealthy';

/** The result of `drainstop` (when it waits for the end of the drain). */
export interface DrainResult {
  state: InterfaceState;
  /** Every flow of this node finished (false: the timeout stopped it with `remainingFlows` left). */
  drained: boolean;
  remainingFlows: number;
  ms: number;
  /** A start or stop ended the drain before it finished. */
  cancelled?: boolean;
}

export interface InterfaceStatusJson {
  name: string;
  vip: string;
  bind: string;
  clusterMac: string;
  converged: boolean;
  state: InterfaceState;
  /** State `failed`: why (`handler X stuck in actor k`); the log line has the method and how long. */
  failed?: string;
  /** `lnlbctl suspend`: `start` is refused until `resume`. */
  suspended: boolean;
  /** The health checks (`--health-check`) and what they decided; absent without any check. */
  health?: HealthStatusJson;
  /** Where this node's weight comes from, and what it announces. */
  weightMode: string;
  /** Control messages carry an HMAC (--key-file). */
  authenticated: boolean;
  /** Running without a key on the operator's word (--insecure-no-auth), so that any LAN host can take the cluster over. */
  insecure: boolean;
  /**
   * Hosts on this LAN whose control frames for this cluster fail authentication, by MAC, heard
   * within --dead-after-ms: verdict BAD_MAC (a different key), UNSIGNED (no key),
   * UNEXPECTED_SIGNATURE (it has a key, this node none); claimsJoined: its frames say it serves.
   */
  unauthenticatedPeers: { mac: string; verdict: string; claimsJoined: boolean; lastSeenMs: number }[];
  /** Why this node does not serve (state `held`); absent when nothing holds it. */
  heldBy?: 'unauthenticated-peers';
  /**
   * --election bucket: the bucket table this node uses and its handovers (messages.ts
   * BucketsStatus), and draining: buckets moved away in which this node still has flows of its own.
   */
  buckets?: BucketsStatus & { draining: number };
  workers: number;
  nodes: NodeStatusJson[];
  /** The port rules, default rule first, as `--rule` takes them; and their digest (hex). */
  rules: string[];
  rulesDigest: string;
  /** Members whose port rules differ from this node's (reported, not merged). */
  rulesMismatch: string[];
  handlers: HandlerStatusJson[];
  counters: InterfaceCounters;
}

export type { ConntrackJson } from '../workers/conntrack-listing.js';

/**
 * A command's result already serialised as JSON text (UTF-8): the admin socket sends it as it
 * is. A listing of a million flows is built and serialised off the main thread (the bulk
 * pool); parsing it back here only to serialise it again would stall the main thread.
 */
export class RawJson {
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
}

export interface StatusJson {
  interfaces: InterfaceStatusJson[];
}

/**
 * The bond commands (`lnlbctl bond ...`), arguments → result. Names are device names (1..15
 * bytes, no '/', ':', '%' or white space); a bad one is LNLB_ERR_CTL_BAD_ARGUMENT naming the
 * argument, a bad option word LNLB_ERR_BOND_OPTION naming the option.
 *
 *   bond.create  {name, options: string[]}   → BondCreateResult {name, options, warnings}
 *   bond.enslave {bond, devices: string[]}   → {bond, enslaved: string[]}
 *   bond.release {bond, devices: string[]}   → {bond, released: string[]}
 *   bond.show    {bond}                      → BondShowJson
 *   bond.list    {}                          → BondListJson
 *   bond.destroy {bond}                      → {destroyed: string}
 */
export type { BondCreateResult, BondJson } from './bond-manager.js';

export interface BondShowJson {
  /** In the layout of /proc/net/bonding/<bond>. */
  text: string;
  json: BondJson;
}

export interface BondListJson {
  /** In creation order. */
  bonds: string[];
}
