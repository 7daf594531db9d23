import type { ElectionName } from '../cluster/election.js';
import type { SerializedError } from '../errors.js';
import type { HandlerSpec } from '../handlers/loader.js';
import type { MessagePort } from 'node:worker_threads';

/** A handler as a datapath thread loads it: which module, and its tracker's settings. */
export interface HandlerSetup {
  spec: HandlerSpec;
  idleTimeoutSeconds: number;
}

/** What every datapath thread needs to apply the port rules: the `--rule` texts (compiled again in the thread). */
export type RuleTexts = readonly string[];

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
  /** Int32Array[0] != 0: stop; [1] != 0: messages wait on the port (the direct actor's, receiveMessageOnPort). */
  control: SharedArrayBuffer;
  /** The IPv4 VIP (u32; 0: none) and the IPv6 VIP (undefined: none). */
  vip: number;
  vip6: Uint8Array | undefined;
  clusterMac: Uint8Array;
  ownMac: Uint8Array;
  /** Multicast mode: the TAP's (unicast) MAC written over the destination of every kept frame. */
  tapMac: Uint8Array | undefined;
  /** The cluster interface's name (for the handlers' interfaceCreated/Deleted). */
  interfaceName: string;
  handlers: HandlerSetup[];
  rules: RuleTexts;
  /** This process's actor hash seed: which actor takes a key (the actors check it with the same seed). */
  actorSeed: number;
  /** The published view (the bucket masks its data socket's filter passes, --election bucket). */
  view: SharedArrayBuffer;
  /** The election and its key: whether the data socket gets the bucket filter, and the hash it computes (dispatcher-filter.ts). */
  election: ElectionName;
  electionKey: Uint32Array | undefined;
  /** Each actor's draining buckets (shm/draining-buckets.ts): the filter passes them too. */
  draining: SharedArrayBuffer;
  /** With an IPv6 VIP: where this thread records the address behind each IPv6 identity (shm/source-book.ts). */
  sourceBook: SharedArrayBuffer | undefined;
  /** --vlan: the trunk VLAN (0: untagged), and the TAP, where the host's neighbour answers go. */
  vlan: number;
  tapFd: number;
  /**
   * --workers 1: the actor this thread is itself (no actor thread, no ring; actorRings is
   * empty). Its control messages arrive on this thread's port, announced by control[1].
   */
  actor?: ActorData;
}

/** What the egress thread (--vlan) is started with. */
export interface EgressData {
  role: 'egress';
  tapFd: number;
  /** The send-only packet socket on the trunk. */
  egressFd: number;
  vnetHdr: boolean;
  ownMac: Uint8Array;
  vlan: number;
  counters: SharedArrayBuffer;
}

/** What an actor thread is started with. */
export interface ActorData {
  role: 'actor';
  index: number;
  tapFd: number;
  actorCount: number;
  /** The dispatcher's ring to this actor thread; absent when the dispatcher thread is the actor (--workers 1). */
  ring?: SharedArrayBuffer;
  /** This actor's end of its request port (ActorApi, thread-rpc.ts), moved to its thread. */
  requests: MessagePort;
  /** One shard per handler, in handler order. */
  trackers: SharedArrayBuffer[];
  trackerCapacity: number;
  handlers: HandlerSetup[];
  rules: RuleTexts;
  interfaceName: string;
  vip: number;
  vip6: Uint8Array | undefined;
  election: ElectionName;
  view: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** The dispatcher's actor hash seed (DispatcherData.actorSeed): which keys of a loaded state are this actor's. */
  actorSeed: number;
  /** deriveElectionKey of the cluster key (two u32 words), the same on every node; undefined: no key, the unkeyed hash. */
  electionKey: Uint32Array | undefined;
  /** Each actor's draining buckets (shm/draining-buckets.ts): this actor writes block `index`. */
  draining: SharedArrayBuffer;
}

/** Broadcasts to every actor, without an answer (the requests are ActorApi's). */
export type MainToActor =
  | { type: 'node-died'; id: number }
  | { type: 'reset' }
  | { type: 'stop' };

/** A tracking state from another node, for every actor: each takes its own keys (a newcomer's state, a resync, a handover). */
export interface StateRequest {
  requestId: number;
  handlerIndex: number;
  state: Uint8Array;
  ownerIds: Record<string, number>;
  from: string;
}

/** An actor's answer to a state: what it took, or why it refused the whole state. */
export type StateAnswer = { entries: number; skipped: number; clockShift: number } | { refused: string };

/**
 * What each actor answers (thread-rpc.ts), between two batches, on the one thread that writes
 * its shards: a snapshot is consistent per shard, and a load never races a frame.
 */
export interface ActorApi {
  /** LNLB's load_status: this actor's shard of the handler is cleared and refilled, kept until commit or rollback. */
  loadState(request: StateRequest): StateAnswer;
  /** Every actor loaded state `requestId`: forget the previous contents. */
  commitState(requestId: number): void;
  /** Some actor refused state `requestId`: put the previous contents back (all or nothing). */
  rollbackState(requestId: number): void;
  /** Per handler: the packed entries of this actor's shard (SNAPSHOT_WORDS each), moved, not copied. */
  snapshot(): Uint32Array[];
  /** --election bucket, per handler: this actor's flows in the buckets `targetOf` sends elsewhere, and the target of each. */
  scanBuckets(targetOf: Uint8Array): { entries: Uint32Array; targets: Uint8Array }[];
  /** A bucket handover from another node: this actor's shard of it joins the live table. */
  mergeState(request: StateRequest): StateAnswer;
  /** Up to `limit` entries per handler, for `lnlbctl conntrack`. */
  list(limit: number, nowSeconds: number): ShardListing[];
  /** A drain's count: this shard's flows (every handler's) owned by one of `ownerIds` and seen within `idleSeconds`. */
  activeOwned(ownerIds: number[], nowSeconds: number, idleSeconds: number): number;
}

/** One handler's listing from one actor. */
export interface ShardListing {
  /** Live entries (not idle past the timeout). */
  total: number;
  /** keyLo, keyHi, owner, lastSeen, up to the limit. */
  entries: Uint32Array;
}

export type WorkerToMain =
  /** `tid`: the thread's kernel id, for lnlbd's priorities (thread-priority.ts). */
  | { type: 'ready'; tid: number }
  | { type: 'stopped' }
  | { type: 'link-down' }
  /** The kernel refused a filter program for the data socket (reported once; every refusal is counted). */
  | { type: 'kernel-filter-failed'; message: string }
  /** Per handler: its tracker's own counters in this shard. */
  | { type: 'handler-counters'; counters: Record<string, number>[] }
  /** A handler threw (reported once per cause; every frame is counted). */
  | { type: 'handler-error'; handler: string; method: string; message: string }
  /** serializeError's form: revived on the main thread with its code (LNLB_ERR_PORT_IO, ...). */
  | { type: 'error'; error: SerializedError };

/** What the control-plane thread is started with. */
export interface ControlData {
  role: 'control';
  dev: string;
  /** The actors' draining buckets (shm/draining-buckets.ts): this node's heartbeats announce them. */
  draining?: SharedArrayBuffer;
  /** The data socket: after a view that changes what its kernel filter passes, its reader is woken (port.ringWake) to swap the filter now. */
  dataFd?: number;
  ownMac: Uint8Array;
  clusterMac: Uint8Array;
  clusterIp: number;
  /** The cluster MAC is a multicast one: a membership instead of promiscuous mode. */
  multicast: boolean;
  /** --vlan: the trunk VLAN (0 or absent: untagged). */
  vlan?: number;
  /** The link MTU (largest Ethernet payload). */
  mtu: number;
  /** Bytes of the control socket's receive ring (--control-ring-kib); default control-socket.ts's. */
  ringBytes?: number;
  /** Shared key: authenticated control plane. Undefined: plain LNLB-style messages. */
  key: Uint8Array | undefined;
  /** How old (by the sender's wall clock) a sealed message may be; default the authenticator's. */
  clockToleranceMs?: number;
  heartbeatMs: number;
  deadAfterMs: number;
  incarnation: number;
  weight: number;
  /** This node's name (--node-name, or the host name), announced in every membership message. */
  nodeName: string;
  /** The IPv4 of the bound device (u32; 0: it has none), announced beside the name. */
  address: number;
  /** The published view the actors read. */
  view: SharedArrayBuffer;
  /** The actors' input rings: woken when the view changes. */
  actorRings: SharedArrayBuffer[];
  /** The port rules this node announces: digest (what must match) and per-slot parameters. */
  rules: { digest: number; params: number[] };
  /** The actors' election: 'bucket' makes the control plane keep and publish the agreed bucket table. Default rendezvous. */
  election?: ElectionName;
}

/** What the control-plane thread is started with: its data, and its end of the request port (ControlApi), moved to it. */
export interface ControlThreadData extends ControlData {
  requests: MessagePort;
}

/** A handler's serialised tracking state, for the control plane to send. */
export interface SavedState {
  protocol: number;
  state: Uint8Array;
  entries: number;
}

/** What the control-plane thread answers (thread-rpc.ts); the rest are MainToControl messages and ControlEvents. */
export interface ControlApi {
  status(): ControlStatus;
  /** The owners (id → MAC) the main thread needs to save the tables. */
  owners(): Record<number, string>;
  /** Sends a state the main thread saved, to a newcomer or to every node ('cluster', a resync); its buffers are moved here. */
  sendState(to: string, states: SavedState[]): Promise<{ fragments: number; error?: string }>;
  /** `lnlbctl resync` under --election bucket: hand every flow tracked in a bucket not this node's to its owner again. */
  resyncBuckets(): { buckets: number; targets: number };
}

/** Messages without an answer to the control-plane thread. */
export type MainToControl =
  | { type: 'weight'; weight: number }
  /** A newcomer's state is loaded (or was refused): its first round may complete. */
  | { type: 'state-loaded' }
  /** Handover plan `id` scanned: one message per new owner that has flows to take (none: nothing to send). */
  | { type: 'handover-scanned'; id: number; messages: { to: string; data: Uint8Array; entries: number }[]; error?: string }
  /** A handover from `from` is in the tables (or was refused: `error`): acknowledge it. */
  | { type: 'handover-merged'; from: string; messageId: number; entries: number; error?: string }
  /** `lnlbctl stop`: LEAVE and stop taking part (the thread stays, for `start`). */
  | { type: 'leave' }
  /** `lnlbctl start` after a stop: join again as a new incarnation. */
  | { type: 'rejoin' }
  | { type: 'stop' };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The control plane's view of the cluster, for `lnlbctl status`. */
/** One failover as this node saw it, in wall-clock ms (epoch). */
export interface FailoverTimeline {
  node: string;
  lastHeardAt: number;
  declaredAt: number;
  /** 0 until the view without it is published. */
  publishedAt: number;
}

export interface ControlStatus {
  accepting: boolean;
  changePending: boolean;
  /** name and address: what the node announced ('' before its first message that says, or from a node that does not). */
  nodes: { mac: string; name: string; address: string; status: string; joined: boolean; weight: number; self: boolean; rulesDigest: number | undefined; rulesMatch: boolean | undefined }[];
  control: {
    received: Record<string, number>;
    sent: Record<string, number>;
    rejected: Record<string, number>;
    overflow: Record<string, number>;
    /** The tracking-state transfers, both sides (cluster/state-transfer.ts): started, acknowledged, fragments resent, requests sent, ... */
    stateTransfer: Record<string, number>;
  };
  nodeTableFull: number;
  rounds: number;
  resets: number;
  /** The last member declared dead for silence: when it was last heard, declared dead, and the view without it published (wall-clock ms). */
  lastFailover?: FailoverTimeline;
  /** The control thread's ticks that came late (it was not scheduled): the longest, and all, in ms. */
  stallMaxMs: number;
  stallTotalMs: number;
  /** Nodes this node declared dead (removed from the view), by reason: missed-heartbeats, left, restarted, self-reset. */
  deaths: Record<string, number>;
  authenticated: boolean;
  /**
   * Peers on the LAN whose frames for this cluster fail authentication (another key, or none
   * among keyed nodes, or the reverse), by MAC, heard within the death timeout.
   */
  unauthenticatedPeers: UnauthenticatedPeerStatus[];
  /** Why this node does not serve although its membership converged; undefined when nothing holds it. */
  heldBy: HeldReason | undefined;
  /** --election bucket: the table this node uses (cluster/bucket-ledger.ts); absent with another election. */
  buckets?: BucketsStatus;
}

export interface BucketsStatus {
  /** The table's digest (hex), as the heartbeats carry it; '' while a newcomer waits for its base. */
  digest: string;
  /** Every member's heartbeats carry the same digest. */
  agreed: boolean;
  /** How the table came about: canonical (a forming cluster), rebalanced (from the agreed one), fallback (the members differed). */
  source: string;
  /** Buckets this node owns, of 1024. */
  owned: number;
  /** Buckets the last change moved (the fewest it could when rebalanced). */
  lastMoves: number;
  /** Times the members disagreed in a settled view and every node took the canonical table. */
  fallbacks: number;
  /** Buckets gained whose flows the other members have not all handed over yet (their new flows wait). */
  pending: number;
  /** The last table this node handed every moved flow over for (hex digest). */
  handed: string;
  /** The handovers' counters (cluster/bucket-handover.ts HandoverCounters). */
  handovers: Record<string, number>;
}

/** `unauthenticated-peers`: it may not start serving while it hears peers it cannot authenticate (admission.ts). */
export type HeldReason = 'unauthenticated-peers';

export interface UnauthenticatedPeerStatus {
  mac: string;
  /** BAD_MAC (a different key), UNSIGNED (no key), UNEXPECTED_SIGNATURE (it has a key, this node none). */
  verdict: string;
  /** Its frames say it is serving. */
  claimsJoined: boolean;
  /** Since its last frame. */
  lastSeenMs: number;
}

export type ControlEvent =
  | { type: 'ready' }
  | { type: 'stopped' }
  /** serializeError's form: revived on the main thread with its code. */
  | { type: 'error'; error: SerializedError }
  | { type: 'log'; level: LogLevel; fields: Record<string, unknown>; msg: string }
  /** Relay to the actors: purge a dead node's entries (the view already re-homed them). */
  | { type: 'node-died'; id: number }
  /** Relay to the actors: this node was declared dead and rejoins; forget all state. */
  | { type: 'reset' }
  /** The first member must hand its state to a newcomer: the main thread saves the tables. */
  | { type: 'save-state'; to: string; owners: Record<number, string> }
  /** --election bucket: scan the shards for the flows in the buckets that moved elsewhere (cluster/bucket-handover.ts), per new owner. */
  | { type: 'hand-over'; id: number; digest: number; targetOf: Uint8Array; targets: string[]; owners: Record<number, string> }
  /** A bucket handover arrived: the actors add its flows to their tables. */
  | { type: 'handover'; from: string; messageId: number; data: Uint8Array; ownerIds: Record<string, number> }
  /** A state arrived: a newcomer's main thread loads it; a joined node's actors load their shards. */
  | { type: 'state'; from: string; protocol: number; last: boolean; state: Uint8Array; ownerIds: Record<string, number>; newcomer: boolean };
