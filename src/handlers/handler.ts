/**
 * The protocol handler contract: the TypeScript form of LNLB's `lnlb_protocol_module`
 * (reference/lnlb.md, "Protocol handler interface"). A handler is registered per IP protocol
 * (0 = the default handler) and has two halves, because frames are split across threads:
 *
 * - `affinityKey` runs in the dispatcher: it reads the parsed frame and writes the key the
 *   handler tracks (two u32 words). The dispatcher shards by that key, so all state of one key
 *   lives in one actor.
 * - a `Tracker` per actor shard holds the tracking state: `isRelated`, `assigned`,
 *   `nodeDied`, `expire` (LNLB's dgram_is_related, dgram_assigned, node_died and the sweep).
 *
 * Owners are node ids (u16, stable while a node is a member, never 0), not table positions,
 * because positions move when a node joins.
 */

export const HANDLER_API_VERSION = 1;

/** Offsets of the fields the dispatcher parsed once, so handlers never parse again. */
export interface ParsedFrame {
  /** The frame (Ethernet header first). */
  bytes: Uint8Array;
  /** Offset of the Ethernet header in `bytes`. */
  l2: number;
  /** Offset of the IPv4 header. */
  l3: number;
  /** Offset of the transport header (valid for the first fragment only). */
  l4: number;
  protocol: number;
  /** Source and destination IPv4, as u32 in network order value (10.0.0.1 = 0x0a000001). */
  src: number;
  dst: number;
  /** True when this is the first (or only) fragment, so l4 holds ports. */
  firstFragment: boolean;
}

export interface Tracker {
  /** The owner recorded for a key, refreshing its last-seen time; -1 when untracked or expired. */
  isRelated(keyLo: number, keyHi: number, nowSeconds: number): number;
  /** Every node records every assignment (so all nodes' tables agree). */
  assigned(keyLo: number, keyHi: number, owner: number, nowSeconds: number): void;
  /** Drops every entry of a dead node; returns how many. */
  nodeDied(owner: number): number;
  /** Forgets everything (this node rejoins after being declared dead). */
  clear(): void;
  /** Incremental expiry sweep over at most `budget` slots; returns entries removed. */
  expire(nowSeconds: number, budget: number): number;
  readonly size: number;
  /** Entries evicted because the shard was full. */
  readonly evictions: number;
}

export interface TrackerOptions {
  /** The shard's memory, made by the main thread so other threads can read it. */
  memory: SharedArrayBuffer;
  capacity: number;
  idleTimeoutSeconds: number;
}

export interface ProtocolHandler {
  readonly name: string;
  readonly apiVersion: typeof HANDLER_API_VERSION;
  /** IP protocol number; 0 = default handler. */
  readonly protocol: number;
  /** Writes the affinity key into out[0] (lo) and out[1] (hi). Must not allocate. */
  affinityKey(frame: ParsedFrame, out: Uint32Array): void;
  /** Bytes of shared memory one shard of `capacity` entries needs. */
  trackerBytes(capacity: number): number;
  createTracker(options: TrackerOptions): Tracker;
}
