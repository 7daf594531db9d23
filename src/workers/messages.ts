import type { ElectionName } from '../cluster/election.js';

/**
 * Every message the main thread and the datapath threads send each other (piscina's
 * src/types.ts habit): control only, never per frame. Frames move through shared rings.
 */

/** What a dispatcher thread is started with (structured-clone-able). */
export interface DispatcherData {
  role: 'dispatcher';
  /** AF_PACKET socket with a TPACKET_V3 ring, opened by the main thread. */
  dataFd: number;
  vnetHdr: boolean;
  actorRings: SharedArrayBuffer[];
  counters: SharedArrayBuffer;
  /** Int32Array[0] != 0: stop. */
  control: SharedArrayBuffer;
  vip: number;
  clusterMac: Uint8Array;
  ownMac: Uint8Array;
  /** Multicast mode: the TAP's (unicast) MAC written over the destination of every kept frame. */
  tapMac: Uint8Array | undefined;
}

/** What an actor thread is started with. */
export interface ActorData {
  role: 'actor';
  index: number;
  tapFd: number;
  ring: SharedArrayBuffer;
  tracker: SharedArrayBuffer;
  trackerCapacity: number;
  idleTimeoutSeconds: number;
  election: ElectionName;
  view: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

export type MainToActor =
  | { type: 'node-died'; id: number }
  | { type: 'reset' }
  /** A tracking state broadcast by another node (resync): load this actor's shard of it. */
  | { type: 'load-state'; state: Uint8Array; ownerIds: Record<string, number>; actorCount: number; from: string }
  | { type: 'stop' };

export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'stopped' }
  | { type: 'link-down' }
  | { type: 'purged'; id: number; entries: number }
  | { type: 'state-loaded'; from: string; entries: number; skipped: number }
  | { type: 'state-refused'; from: string; message: string }
  | { type: 'error'; message: string; code?: string };

/** What the control-plane thread is started with. */
export interface ControlData {
  role: 'control';
  dev: string;
  ownMac: Uint8Array;
  clusterMac: Uint8Array;
  clusterIp: number;
  /** The cluster MAC is a multicast one: a membership instead of promiscuous mode. */
  multicast: boolean;
  /** The link MTU (largest Ethernet payload). */
  mtu: number;
  /** Shared key: authenticated control plane. Undefined: plain LNLB-style messages. */
  key: Uint8Array | undefined;
  heartbeatMs: number;
  deadAfterMs: number;
  incarnation: number;
  weight: number;
  /** The published view the actors read. */
  view: SharedArrayBuffer;
  /** The actors' input rings: woken when the view changes. */
  actorRings: SharedArrayBuffer[];
}

export type MainToControl =
  | { type: 'weight'; weight: number }
  | { type: 'status'; requestId: number }
  /** The owners (id → MAC) the main thread needs to save the tables for a resync. */
  | { type: 'owners'; requestId: number }
  /** Send a state the main thread saved: to a newcomer, or to every node (resync, requestId set). */
  | { type: 'send-state'; to: string; state: Uint8Array; entries: number; requestId?: number }
  /** A newcomer's state is loaded (or was refused): its first round may complete. */
  | { type: 'state-loaded' }
  | { type: 'stop' };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The control plane's view of the cluster, for `lnlbctl status`. */
export interface ControlStatus {
  accepting: boolean;
  changePending: boolean;
  nodes: { mac: string; status: string; weight: number; self: boolean }[];
  control: { received: Record<string, number>; sent: Record<string, number>; rejected: Record<string, number> };
  nodeTableFull: number;
  rounds: number;
  resets: number;
  authenticated: boolean;
}

export type ControlEvent =
  | { type: 'ready' }
  | { type: 'stopped' }
  | { type: 'error'; message: string; code?: string }
  | { type: 'log'; level: LogLevel; fields: Record<string, unknown>; msg: string }
  /** Relay to the actors: purge a dead node's entries (the view already re-homed them). */
  | { type: 'node-died'; id: number }
  /** Relay to the actors: this node was declared dead and rejoins; forget all state. */
  | { type: 'reset' }
  | { type: 'status'; requestId: number; status: ControlStatus }
  | { type: 'owners'; requestId: number; owners: Record<number, string> }
  | { type: 'resynced'; requestId: number; fragments: number; error?: string }
  /** The first member must hand its state to a newcomer: the main thread saves the tables. */
  | { type: 'save-state'; to: string; owners: Record<number, string> }
  /** A state arrived: a newcomer's main thread loads it; a joined node's actors load their shards. */
  | { type: 'state'; from: string; state: Uint8Array; ownerIds: Record<string, number>; newcomer: boolean };
