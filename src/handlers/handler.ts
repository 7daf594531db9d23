/**
 * The protocol handler contract: the TypeScript form of LNLB's `lnlb_protocol_module`
 * (reference/lnlb.md, "Protocol handler interface"). A handler is registered per IP protocol
 * (0 = the default handler) and has two halves, because frames are split across threads:
 *
 * - `affinityKey` runs in the dispatcher: it reads the parsed frame and writes the key the
 *   handler tracks (two u32 words) and the frame's flags for the tracker (a third word, 16
 *   bits, handler-defined: TCP's SYN/FIN/RST, say). The dispatcher shards by that key, so all
 *   state of one key lives in one actor.
 * - a `Tracker` per actor shard holds the tracking state: `isRelated`, `assigned`,
 *   `nodeDied`, `expire`, `saveStatus`, `loadStatus` (LNLB's dgram_is_related, dgram_assigned,
 *   node_died, the expiry sweep, save_status and load_status).
 * - `interfaceCreated` / `interfaceDeleted` (optional) run in every thread that uses the
 *   handler, when a cluster interface's datapath starts and stops there.
 *
 * Which node a new key goes to is not the handler's business: the port rule in force picks the
 * election and its affinity (source IP, source IP + port, or source /24). The handler decides
 * what is one tracked thing and how long it lives.
 *
 * Owners are node ids (u16, stable while a node is a member, never 0), not table positions,
 * because positions move when a node joins. Times are u32 seconds.
 *
 * Every method of a tracker runs on the actor thread that owns the shard, one at a time: no
 * locking inside a handler. Hot-path methods (`affinityKey`, `isRelated`, `assigned`) must not
 * allocate.
 */

export const HANDLER_API_VERSION = 2;

/** Words `affinityKey` writes: key lo, key hi, frame flags. */
export const AFFINITY_KEY_WORDS = 3;
/** Frame flags are 16 bits (they share a descriptor word with the handler and rule indexes). */
export const FRAME_FLAGS_MASK = 0xffff;

/** `isRelated`'s answer when the frame must be dropped (neither tracked nor to be elected). */
export const DROP_FRAME = -2;
/** `isRelated`'s answer when the key is not tracked: the rule's election decides. */
export const UNTRACKED = -1;

/** Offsets of the fields the dispatcher parsed once, so handlers never parse again. */
export interface ParsedFrame {
  /** The memory the frame is in (the kernel's receive ring: not a copy, valid during the call only; the frame may start at any byte offset). */
  bytes: Uint8Array;
  /** Offset of the Ethernet header in `bytes`. */
  l2: number;
  /** Offset of the IP header (IPv4, or IPv6: see `family`). */
  l3: number;
  /** Offset of the transport header, past any IPv6 extension headers (valid only when firstFragment is true). */
  l4: number;
  /**
   * Offset just past the IP packet (its total length, or the IPv6 header and its payload
   * length): Ethernet pads short frames, and padding is not a header. Never past the frame.
   */
  ipEnd: number;
  /** Bytes from l2 to the end of the frame. */
  length: number;
  /** 4 or 6. */
  family: 4 | 6;
  /** The upper-layer protocol (for IPv6, the last Next Header after the extension headers). */
  protocol: number;
  /**
   * IPv4: the source as a u32 in network order value (10.0.0.1 = 0x0a000001). IPv6: the
   * source's 32-bit identity (cluster/hash.ts ipv6Identity), in 224.0.0.0/3 where no IPv4
   * source is: what every table, election and state transfer carries for it.
   */
  src: number;
  /** IPv4: the destination (the VIP). IPv6: 0 (the address is at l3 + 24). */
  dst: number;
  /**
   * The port rule the frame falls under (0: the default rule). A handler whose key has no
   * destination port should put it in its key, so that a client is tracked per rule: a
   * client stuck to node A by one rule must not drag its traffic under another rule to A.
   */
  rule: number;
  /**
   * True when the datagram is not fragmented, so l4 holds the transport header. Every
   * fragment of a fragmented datagram, the first included, has it false: they must all go to
   * the same node, and only the first carries ports, so none of them is keyed by ports (the
   * default port rule and the source decide them).
   */
  firstFragment: boolean;
}

/** Receives one tracked entry (saveStatus, listings). */
export type StatusVisitor = (keyLo: number, keyHi: number, owner: number, lastSeen: number) => void;

export interface Tracker {
  /**
   * The owner recorded for a key (refreshing its last-seen time), UNTRACKED when the key is not
   * tracked or expired (the rule's election decides and `assigned` records the result), or
   * DROP_FRAME.
   */
  isRelated(keyLo: number, keyHi: number, frameFlags: number, nowSeconds: number): number;
  /** Every node records every assignment (so all nodes' tables agree). */
  assigned(keyLo: number, keyHi: number, owner: number, frameFlags: number, nowSeconds: number): void;
  /** Drops every entry of a dead node; returns how many. */
  nodeDied(owner: number): number;
  /**
   * Optional, for a table large enough that one `nodeDied` would hold frames up (a full scan
   * of a million slots takes milliseconds): the same, a slice at a time. Looks at up to
   * `budget` slots from `fromSlot`, drops the dead node's entries among them and returns the
   * slot to go on from, or -1 once the table has been seen to its end (`size` tells how many
   * went). The actor calls it between batches of frames until it returns -1; meanwhile the
   * dead node's entries count as untracked, so a frame of one of them is elected anew.
   */
  nodeDiedSlice?(owner: number, fromSlot: number, budget: number): number;
  /** Forgets everything (this node rejoins after being declared dead, or a state is loaded). */
  clear(): void;
  /** Incremental expiry sweep over at most `budget` slots; returns entries removed. */
  expire(nowSeconds: number, budget: number): number;
  /** LNLB's save_status: hands every live entry to `visit` (the framework serialises them). */
  saveStatus(visit: StatusVisitor): void;
  /**
   * LNLB's load_status, one entry at a time, after `clear()` (or, for a bucket handover from
   * another node, into the live table: an entry already there is replaced): `lastSeen` is already shifted to
   * this node's clock. The framework checks the whole state before the first call and rolls
   * the shard back if a call throws.
   */
  loadStatus(keyLo: number, keyHi: number, owner: number, lastSeen: number): void;
  readonly size: number;
  /** Entries evicted because the shard was full. */
  readonly evictions: number;
  /**
   * The handler's own counters for this shard (e.g. tcp's mid-stream adoptions), summed over
   * the actors into `lnlbctl status`. Names are camelCase; values only grow.
   */
  counters?(): Readonly<Record<string, number>>;
}

export interface TrackerOptions {
  /** The shard's memory, made by the main thread so other threads can read it. */
  memory: SharedArrayBuffer;
  capacity: number;
  /** The handler's idle timeout in seconds (its own flag, or --idle-timeout). */
  idleTimeoutSeconds: number;
}

export interface InterfaceInfo {
  /** The cluster interface (TAP) name, e.g. nlb0. */
  name: string;
  /** The IPv4 VIP, u32; 0 when the interface has an IPv6 VIP alone. */
  vip: number;
  /** The IPv6 VIP's text (RFC 5952), when the interface has one. */
  vip6?: string;
  /** 'dispatcher' or 'actor', and the actor's index. */
  thread: 'dispatcher' | 'actor';
  actorIndex: number;
  actorCount: number;
}

/**
 * Where a tracked key came from (ProtocolHandler.keyOrigin): its source IPv4 and either the
 * port rule it was tracked under (a handler that keys by rule) or the destination port it
 * came to (the framework finds the rule, as the dispatcher did; absent or 0: the default rule).
 */
export interface KeyOrigin {
  source: number;
  rule?: number;
  destinationPort?: number;
}

export interface ProtocolHandler {
  readonly name: string;
  readonly apiVersion: typeof HANDLER_API_VERSION;
  /** IP protocol number; 0 = default handler. */
  readonly protocol: number;
  /**
   * Writes the tracked key into out[0] (lo) and out[1] (hi), and the frame's flags for the
   * tracker into out[2] (16 bits). Must not allocate.
   */
  affinityKey(frame: ParsedFrame, out: Uint32Array): void;
  /** Bytes of shared memory one shard of `capacity` entries needs. */
  trackerBytes(capacity: number): number;
  createTracker(options: TrackerOptions): Tracker;
  interfaceCreated?(info: InterfaceInfo): void;
  interfaceDeleted?(info: InterfaceInfo): void;
  /** A key as a person reads it in `lnlbctl conntrack` (the source IP alone when absent). */
  describeKey?(keyLo: number, keyHi: number): string;
  /**
   * Where a tracked key came from, so that its election hash, and so its bucket, can be
   * computed again (--election bucket hands a bucket's tracked flows to its new owner, and
   * drains it until they end). Called off the hot path, once per entry when buckets move.
   * A handler without it cannot run under --election bucket.
   */
  keyOrigin?(keyLo: number, keyHi: number): KeyOrigin;
}
