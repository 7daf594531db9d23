/**
 * LNLB's default tracking handler (reference/lnlb.md, "Default tracking handler"): one entry
 * per source IPv4 → owning node, refreshed on every frame, dropped after an idle timeout
 * (1800 s by default) or when its node dies.
 */

import { TrackingTable } from '../shm/tracking-table.js';
import { formatIPv4 } from '../net/ipv4.js';
import { HANDLER_API_VERSION, UNTRACKED, type KeyOrigin, type ParsedFrame, type ProtocolHandler, type StatusVisitor, type Tracker, type TrackerOptions } from './handler.js';

export const DEFAULT_IDLE_TIMEOUT_SECONDS = 1800;

/** A tracker over one TrackingTable shard with one idle timeout: the default and udp handlers' whole tracker, tcp's base. */
export class TableTracker implements Tracker {
  protected readonly table: TrackingTable;
  protected readonly idle: number;

  constructor(options: TrackerOptions) {
    this.table = new TrackingTable(options.memory, 0, options.capacity);
    this.idle = options.idleTimeoutSeconds;
  }

  isRelated(keyLo: number, keyHi: number, _frameFlags: number, nowSeconds: number): number {
    const slot = this.liveSlot(keyLo, keyHi, nowSeconds);
    if (slot < 0) return UNTRACKED;
    this.table.touch(slot, nowSeconds);
    return this.table.ownerAt(slot);
  }

  /**
   * The key's slot, or -1 when it is not tracked or idle past the timeout (expired but not yet
   * swept: answering for it would make an entry outlive its timeout by the sweep's lag).
   */
  protected liveSlot(keyLo: number, keyHi: number, nowSeconds: number): number {
    const table = this.table;
    const slot = table.find(keyLo, keyHi);
    if (slot < 0 || ((nowSeconds - table.lastSeenAt(slot)) | 0) > this.idle) return -1;
    return slot;
  }

  assigned(keyLo: number, keyHi: number, owner: number, _frameFlags: number, nowSeconds: number): void {
    this.table.upsert(keyLo, keyHi, owner, nowSeconds);
  }

  nodeDied(owner: number): number {
    return this.table.removeOwner(owner);
  }

  nodeDiedSlice(owner: number, fromSlot: number, budget: number): number {
    return this.table.removeOwnerSlice(owner, fromSlot, budget);
  }

  clear(): void {
    this.table.clear();
  }

  expire(nowSeconds: number, budget: number): number {
    return this.table.expire(nowSeconds, this.idle, budget);
  }

  saveStatus(visit: StatusVisitor): void {
    this.table.forEach(visit);
  }

  loadStatus(keyLo: number, keyHi: number, owner: number, lastSeen: number): void {
    this.table.upsert(keyLo, keyHi, owner, lastSeen);
  }

  get size(): number {
    return this.table.size;
  }

  get evictions(): number {
    return this.table.evictions;
  }
}

export const sourceIpHandler: ProtocolHandler = {
  name: 'default',
  apiVersion: HANDLER_API_VERSION,
  protocol: 0,
  affinityKey(frame: ParsedFrame, out: Uint32Array): void {
    out[0] = frame.src;
    out[1] = frame.rule; // one entry per client and port rule
    out[2] = 0;
  },
  trackerBytes(capacity: number): number {
    return TrackingTable.byteLength(capacity);
  },
  createTracker(options: TrackerOptions): Tracker {
    return new TableTracker(options);
  },
  describeKey(keyLo: number, keyHi: number): string {
    return keyHi === 0 ? formatIPv4(keyLo) : `${formatIPv4(keyLo)} (port rule ${keyHi})`;
  },
  keyOrigin(keyLo: number, keyHi: number): KeyOrigin {
    return { source: keyLo, rule: keyHi };
  },
};
