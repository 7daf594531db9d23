/**
 * Saving and loading a tracking state: LNLB's `save_status` / `load_status` (reference/lnlb.md,
 * "Default tracking handler"). A node serialises its shards of a handler's tracking table to
 * hand them to a newcomer (CONNTRACK) or to every node (`lnlbctl resync`); the receiver clears
 * its shards and loads the state, shifted to its own clock.
 *
 * Wire format, version 1, network byte order:
 *
 *   0        4        6        8            12           16           20       24
 *   | magic  | version| flags  | sender clock| owner count| entry count| crc32  |
 *   | "LNTS" | u16 = 1| u16 = 0| u32 seconds | u32        | u32        | u32    |
 *   24: owner table, owner count × 6 bytes: | owner MAC |
 *   then entries, entry count × 14 bytes:   | keyLo u32 | keyHi u32 | owner index u16 | lastSeen u32 |
 *
 * - Owners travel as MACs, not node ids: ids are local to each node (numbered as nodes joined
 *   it), MACs are what every node agrees on. Each distinct owner's MAC is written once in the
 *   owner table and entries carry its index: 14 bytes an entry instead of 18, and the loader
 *   resolves a MAC to a local id once per owner, not once per entry (a million map look-ups and
 *   a million small arrays less). A cluster has a few dozen owners, so the table costs nothing.
 * - lastSeen is in the sender's clock, and the header carries the sender's clock at saving; the
 *   receiver shifts every lastSeen by (its clock − the sender's), so an entry keeps its age.
 * - crc32 (node:zlib) covers every byte but itself. CONNTRACK messages have their own CRC, but a
 *   state can come from elsewhere (a file, a test) and all-or-nothing loading must not accept
 *   a flipped bit as a different client or owner.
 * - The length must be exactly 24 + 6 × owners + 14 × entries; nothing is allocated from a
 *   count before that is checked.
 *
 * Loading is all-or-nothing, as LNLB rolled back to the previous table on a corrupt buffer:
 * the whole buffer is checked first (magic, version, length, CRC, every owner index, the clock
 * difference), owners are resolved and every entry's shard computed; only then are the tables
 * cleared and filled, and nothing in that last step can fail.
 *
 * Threads: the tables are written by the actors that own them; load (and, for an exact
 * snapshot, save) runs where the shard's single writer runs. A save from another thread is a
 * best-effort snapshot (tracking-table.ts explains why), and is still a well-formed state.
 */

import { crc32 } from 'node:zlib';
import { lnlbError } from '../errors.js';
import { formatMac, parseMac } from '../net/ethernet.js';
import type { TrackingTable } from '../shm/tracking-table.js';
import type { StatusVisitor, Tracker } from './handler.js';

/** Words per entry of a packed snapshot: keyLo, keyHi, owner, lastSeen. */
export const SNAPSHOT_WORDS = 4;

/** Packs every entry a tracker's saveStatus gives into one Uint32Array (a per-shard snapshot). */
export function snapshotTracker(tracker: Pick<Tracker, 'saveStatus' | 'size'>): Uint32Array {
  let out = new Uint32Array(Math.max(1, tracker.size) * SNAPSHOT_WORDS);
  let at = 0;
  tracker.saveStatus((keyLo, keyHi, owner, lastSeen) => {
    if (at + SNAPSHOT_WORDS > out.length) {
      const bigger = new Uint32Array(out.length * 2);
      bigger.set(out);
      out = bigger;
    }
    out[at] = keyLo;
    out[at + 1] = keyHi;
    out[at + 2] = owner;
    out[at + 3] = lastSeen;
    at += SNAPSHOT_WORDS;
  });
  return out.subarray(0, at);
}

/** Hands every entry of packed snapshots to `visit`. */
export function visitEntries(snapshots: readonly Uint32Array[], visit: StatusVisitor): void {
  for (const s of snapshots) {
    for (let i = 0; i + SNAPSHOT_WORDS <= s.length; i += SNAPSHOT_WORDS) visit(s[i]!, s[i + 1]!, s[i + 2]!, s[i + 3]!);
  }
}

export const STATE_MAGIC = 0x4c4e5453; // "LNTS"
export const STATE_VERSION = 1;
export const STATE_HEADER_BYTES = 24;
export const STATE_OWNER_BYTES = 6;
export const STATE_ENTRY_BYTES = 14;
/** Header field offsets. */
export const STATE_H_MAGIC = 0;
export const STATE_H_VERSION = 4;
export const STATE_H_FLAGS = 6;
export const STATE_H_CLOCK = 8;
export const STATE_H_OWNERS = 12;
export const STATE_H_ENTRIES = 16;
export const STATE_H_CRC = 20;
/** Owner indexes are u16. */
export const STATE_MAX_OWNERS = 0x10000;
/** A sender whose clock is further off than this is refused (LNLB's rule). */
export const MAX_CLOCK_SKEW_SECONDS = 7 * 24 * 3600;
/** shardOf's answer for a key another loader owns: the entry is left to that loader. */
export const NOT_MY_SHARD = -1;

export interface SaveStats {
  /** Entries written. */
  saved: number;
  /** Entries left out because `ownerMac` did not know their owner. */
  skippedUnknownOwner: number;
}

export interface LoadOptions {
  /** This node's clock, u32 seconds (the tables' clock). */
  nowSeconds: number;
  /** The local node id (1..65535) of a member's MAC; undefined when it is not a member. */
  ownerId(mac: Uint8Array): number | undefined;
  /**
   * The index in `tables` of the shard that holds a key, or NOT_MY_SHARD when the key lives in
   * a shard this loader does not own (each actor loads only its own shard of a broadcast state).
   */
  shardOf(keyLo: number, keyHi: number): number;
}

export interface LoadResult {
  /** Entries written into the tables. */
  loaded: number;
  /** Entries left out because their owner's MAC is not a member here. */
  skippedUnknownOwner: number;
  /** Entries evicted because a shard reached its load limit while filling. */
  evicted: number;
  /** The sender's clock at saving. */
  senderClock: number;
  /** Seconds added to every lastSeen: this node's clock − the sender's. */
  clockShiftSeconds: number;
}

/**
 * Serialises every entry of `tables` (the shards of one handler of one cluster) at `nowSeconds`.
 * `ownerMac(id)` gives a node id's MAC (6 bytes); entries of an id it does not know are left
 * out and counted in `stats`.
 */
export function saveTrackerState(
  tables: readonly TrackingTable[],
  nowSeconds: number,
  ownerMac: (id: number) => Uint8Array | undefined,
  stats?: SaveStats,
): Uint8Array {
  let room = 0;
  for (const table of tables) room += table.size;
  return encodeTrackerState((visit) => tables.forEach((table) => table.forEach(visit)), room, nowSeconds, ownerMac, stats);
}

/**
 * Serialises the entries `forEachEntry` hands out (any tracker's saveStatus, or packed
 * snapshots: see `visitEntries`); `room` is a size hint in entries.
 */
export function encodeTrackerState(
  forEachEntry: (visit: StatusVisitor) => void,
  room: number,
  nowSeconds: number,
  ownerMac: (id: number) => Uint8Array | undefined,
  stats?: SaveStats,
): Uint8Array {
  checkClock(nowSeconds);
  // Another thread may insert while we walk: the scratch grows if it must.
  let scratch = new Uint8Array(Math.max(1, room) * STATE_ENTRY_BYTES);
  let view = new DataView(scratch.buffer);
  /** Node id → owner index; -1 not seen yet, -2 unknown owner. */
  const index = new Int32Array(0x10000).fill(-1);
  const macs: Uint8Array[] = [];
  let at = 0;
  let saved = 0;
  let skipped = 0;
  const visit = (keyLo: number, keyHi: number, owner: number, lastSeen: number): void => {
    let i = index[owner]!;
    if (i === -1) {
      const mac = ownerMac(owner);
      if (mac === undefined) {
        i = -2;
      } else {
        if (mac.length !== STATE_OWNER_BYTES) throw new RangeError(`ownerMac(${owner}) must give 6 bytes, got ${mac.length}`);
        i = macs.length;
        macs.push(mac.slice());
      }
      index[owner] = i;
    }
    if (i < 0) {
      skipped++;
      return;
    }
    if (at + STATE_ENTRY_BYTES > scratch.length) {
      const bigger = new Uint8Array(scratch.length * 2);
      bigger.set(scratch);
      scratch = bigger;
      view = new DataView(scratch.buffer);
    }
    view.setUint32(at, keyLo);
    view.setUint32(at + 4, keyHi);
    view.setUint16(at + 8, i);
    view.setUint32(at + 10, lastSeen);
    at += STATE_ENTRY_BYTES;
    saved++;
  };
  forEachEntry(visit);

  const ownersBytes = macs.length * STATE_OWNER_BYTES;
  const out = new Uint8Array(STATE_HEADER_BYTES + ownersBytes + at);
  const h = new DataView(out.buffer);
  h.setUint32(STATE_H_MAGIC, STATE_MAGIC);
  h.setUint16(STATE_H_VERSION, STATE_VERSION);
  h.setUint16(STATE_H_FLAGS, 0);
  h.setUint32(STATE_H_CLOCK, nowSeconds >>> 0);
  h.setUint32(STATE_H_OWNERS, macs.length);
  h.setUint32(STATE_H_ENTRIES, saved);
  macs.forEach((mac, i) => out.set(mac, STATE_HEADER_BYTES + i * STATE_OWNER_BYTES));
  out.set(scratch.subarray(0, at), STATE_HEADER_BYTES + ownersBytes);
  h.setUint32(STATE_H_CRC, stateCrc(out));
  if (stats) {
    stats.saved = saved;
    stats.skippedUnknownOwner = skipped;
  }
  return out;
}

/** A handler's serialised state, as the control plane sends it. */
export interface EncodedState {
  protocol: number;
  state: Uint8Array;
  /** Entries in it (those of unknown owners left out). */
  entries: number;
}

/**
 * Every handler's state from the actors' packed snapshots (per handler, per actor: what
 * Datapath#snapshot gives), at `nowSeconds`; `owners` names each owner id by its MAC. Each
 * state has a buffer of its own (it can be moved to another thread). Pure.
 */
export function encodeSnapshots(snapshots: readonly (readonly Uint32Array[])[], protocols: readonly number[], owners: Readonly<Record<number, string>>, nowSeconds: number): EncodedState[] {
  const macs = new Map(Object.entries(owners).map(([id, mac]) => [Number(id), parseMac(mac)]));
  return snapshots.map((shards, h) => {
    const stats = { saved: 0, skippedUnknownOwner: 0 };
    const room = shards.reduce((n, s) => n + s.length / SNAPSHOT_WORDS, 0);
    const state = encodeTrackerState((visit) => visitEntries(shards, visit), room, nowSeconds, (id) => macs.get(id), stats);
    return { protocol: protocols[h]!, state, entries: stats.saved };
  });
}

/**
 * The owners a state names, as MACs (`aa:bb:…`), read from its header alone; `undefined` when
 * it is too short or not a state (the loader says what is wrong with it). A newcomer holds a
 * state naming a member it has not heard from yet: loaded now, that member's flows would be
 * skipped as of an unknown owner.
 */
export function stateOwnerMacs(bytes: Uint8Array): string[] | undefined {
  if (bytes.length < STATE_HEADER_BYTES) return undefined;
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (h.getUint32(STATE_H_MAGIC) !== STATE_MAGIC) return undefined;
  const count = h.getUint32(STATE_H_OWNERS);
  if (count > STATE_MAX_OWNERS || bytes.length < STATE_HEADER_BYTES + count * STATE_OWNER_BYTES) return undefined;
  const macs: string[] = [];
  for (let i = 0; i < count; i++) macs.push(formatMac(bytes, STATE_HEADER_BYTES + i * STATE_OWNER_BYTES));
  return macs;
}

/** The CRC32 of a state: every byte but the CRC field. */
export function stateCrc(bytes: Uint8Array): number {
  return crc32(bytes.subarray(STATE_HEADER_BYTES), crc32(bytes.subarray(0, STATE_H_CRC))) >>> 0;
}

function corrupt(bytes: Uint8Array, why: string): never {
  throw lnlbError(
    'LNLB_ERR_STATE_CORRUPT',
    `tracking state refused (${bytes.length} bytes): ${why}; the tracking tables were left as they were: have the sender send it again (\`lnlbctl resync <if>\` on it)`,
  );
}

/**
 * Clears `tables` and loads a state saved by `saveTrackerState`, shifting every lastSeen to
 * this node's clock; all or nothing: a corrupt buffer, an unsupported version or a sender more
 * than a week off throws an LnlbError and leaves the tables untouched.
 */
export function loadTrackerState(bytes: Uint8Array, tables: readonly TrackingTable[], options: LoadOptions): LoadResult {
  if (tables.length === 0 || tables.length > 0xffff) throw new RangeError(`loadTrackerState needs 1 to 65535 tables, got ${tables.length}`);
  const decoded = readTrackerState(bytes, options, tables.length);
  // 3. Clear, then fill (LNLB's load_status); nothing here can fail.
  let evictionsBefore = 0;
  for (const table of tables) {
    evictionsBefore += table.evictions;
    table.clear();
  }
  const e = decoded.entries;
  for (let i = 0, k = 0; k < e.length; i++, k += SNAPSHOT_WORDS) tables[decoded.shards[i]!]!.upsert(e[k]!, e[k + 1]!, e[k + 2]!, e[k + 3]!);
  let evictionsAfter = 0;
  for (const table of tables) evictionsAfter += table.evictions;
  return { loaded: decoded.shards.length, skippedUnknownOwner: decoded.skippedUnknownOwner, evicted: evictionsAfter - evictionsBefore, senderClock: decoded.senderClock, clockShiftSeconds: decoded.clockShiftSeconds };
}

/**
 * LNLB's load_status into one tracker (an actor's shard of one handler): the whole state is
 * checked and decoded first (`readTrackerState`); then the shard is cleared and filled
 * through the tracker's loadStatus. If that throws (a user handler), the shard is rolled back
 * to what it held before and the error is rethrown: all or nothing.
 */
export function loadTrackerStateInto(
  bytes: Uint8Array,
  tracker: Tracker,
  options: Omit<LoadOptions, 'shardOf'> & { mine(keyLo: number, keyHi: number): boolean },
): LoadResult & { previous: Uint32Array } {
  const decoded = readTrackerState(bytes, { ...options, shardOf: (lo, hi) => (options.mine(lo, hi) ? 0 : NOT_MY_SHARD) }, 1);
  const before = snapshotTracker(tracker);
  const evictionsBefore = tracker.evictions;
  tracker.clear();
  const e = decoded.entries;
  try {
    for (let k = 0; k < e.length; k += SNAPSHOT_WORDS) tracker.loadStatus(e[k]!, e[k + 1]!, e[k + 2]!, e[k + 3]!);
  } catch (err) {
    restoreTracker(tracker, before);
    throw err;
  }
  return {
    loaded: decoded.shards.length,
    skippedUnknownOwner: decoded.skippedUnknownOwner,
    evicted: tracker.evictions - evictionsBefore,
    senderClock: decoded.senderClock,
    clockShiftSeconds: decoded.clockShiftSeconds,
    previous: before,
  };
}

/**
 * A bucket handover into a live tracker (an actor's shard of one handler): the whole state is
 * checked and decoded first, then the entries this loader keeps are added through loadStatus
 * (an entry with the same key is replaced). Nothing is cleared, so nothing is rolled back.
 */
export function mergeTrackerStateInto(
  bytes: Uint8Array,
  tracker: Pick<Tracker, 'loadStatus'>,
  options: Omit<LoadOptions, 'shardOf'> & { mine(keyLo: number, keyHi: number): boolean },
): { merged: number; skippedUnknownOwner: number } {
  const decoded = readTrackerState(bytes, { ...options, shardOf: (lo, hi) => (options.mine(lo, hi) ? 0 : NOT_MY_SHARD) }, 1);
  const e = decoded.entries;
  for (let k = 0; k < e.length; k += SNAPSHOT_WORDS) tracker.loadStatus(e[k]!, e[k + 1]!, e[k + 2]!, e[k + 3]!);
  return { merged: decoded.shards.length, skippedUnknownOwner: decoded.skippedUnknownOwner };
}

/** Puts a shard back as a snapshot had it (a rollback: another shard refused the same state). */
export function restoreTracker(tracker: Tracker, snapshot: Uint32Array): void {
  tracker.clear();
  visitEntries([snapshot], (lo, hi, owner, lastSeen) => tracker.loadStatus(lo, hi, owner, lastSeen));
}

export interface DecodedState {
  /** Packed entries to load (SNAPSHOT_WORDS each): local owner ids, lastSeen on this clock. */
  entries: Uint32Array;
  /** The table index of each entry. */
  shards: Int32Array;
  skippedUnknownOwner: number;
  senderClock: number;
  clockShiftSeconds: number;
}

/**
 * Checks a whole state (magic, version, length, CRC, owner indexes, the clock difference) and
 * decodes the entries this loader keeps, without touching any table; throws an LnlbError for a
 * state to refuse.
 */
export function readTrackerState(bytes: Uint8Array, options: LoadOptions, tableCount: number): DecodedState {
  const now = options.nowSeconds;
  checkClock(now);

  // 1. The whole buffer is checked before anything is touched.
  if (bytes.length < STATE_HEADER_BYTES) corrupt(bytes, `shorter than the ${STATE_HEADER_BYTES}-byte header`);
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (h.getUint32(STATE_H_MAGIC) !== STATE_MAGIC) corrupt(bytes, 'it does not start with the magic "LNTS"');
  const version = h.getUint16(STATE_H_VERSION);
  if (version !== STATE_VERSION) {
    throw lnlbError(
      'LNLB_ERR_STATE_VERSION',
      `tracking state refused: it is format version ${version} and this node reads version ${STATE_VERSION}; run the same lnlb version on every node`,
    );
  }
  const ownerCount = h.getUint32(STATE_H_OWNERS);
  const entryCount = h.getUint32(STATE_H_ENTRIES);
  const entriesAt = STATE_HEADER_BYTES + ownerCount * STATE_OWNER_BYTES;
  const expected = entriesAt + entryCount * STATE_ENTRY_BYTES;
  if (bytes.length !== expected) corrupt(bytes, `${ownerCount} owners and ${entryCount} entries make ${expected} bytes`);
  if (stateCrc(bytes) !== h.getUint32(STATE_H_CRC)) corrupt(bytes, 'its CRC32 does not match its contents');
  if (h.getUint16(STATE_H_FLAGS) !== 0) corrupt(bytes, `unknown flags 0x${h.getUint16(STATE_H_FLAGS).toString(16)}`);
  if (ownerCount > STATE_MAX_OWNERS) corrupt(bytes, `${ownerCount} owners, more than ${STATE_MAX_OWNERS}`);
  for (let i = 0, at = entriesAt + 8; i < entryCount; i++, at += STATE_ENTRY_BYTES) {
    const owner = h.getUint16(at);
    if (owner >= ownerCount) corrupt(bytes, `entry ${i} names owner ${owner} of ${ownerCount}`);
  }
  const senderClock = h.getUint32(STATE_H_CLOCK);
  const shift = (now - senderClock) | 0;
  if (shift > MAX_CLOCK_SKEW_SECONDS || shift < -MAX_CLOCK_SKEW_SECONDS) {
    throw lnlbError(
      'LNLB_ERR_STATE_CLOCK_SKEW',
      `tracking state refused: the sender's clock is ${describeSkew(shift)} this node's, more than one week; fix the clocks (NTP) and resync`,
    );
  }

  // 2. Owners resolved once each, every entry's shard, and the entries decoded.
  const localId = new Int32Array(ownerCount);
  for (let i = 0; i < ownerCount; i++) {
    const at = STATE_HEADER_BYTES + i * STATE_OWNER_BYTES;
    const id = options.ownerId(bytes.slice(at, at + STATE_OWNER_BYTES));
    if (id !== undefined && (!Number.isInteger(id) || id < 1 || id > 0xffff)) throw new RangeError(`ownerId must give a node id in 1..65535 or undefined, got ${id}`);
    localId[i] = id ?? -1;
  }
  let entries = new Uint32Array(entryCount * SNAPSHOT_WORDS);
  let shards = new Int32Array(entryCount);
  let kept = 0;
  let skipped = 0;
  for (let i = 0, at = entriesAt; i < entryCount; i++, at += STATE_ENTRY_BYTES) {
    const owner = localId[h.getUint16(at + 8)]!;
    if (owner < 0) {
      skipped++;
      continue;
    }
    const keyLo = h.getUint32(at);
    const keyHi = h.getUint32(at + 4);
    const shard = options.shardOf(keyLo, keyHi);
    if (shard === NOT_MY_SHARD) continue;
    if (!Number.isInteger(shard) || shard < 0 || shard >= tableCount) throw new RangeError(`shardOf must give a table index in 0..${tableCount - 1} or NOT_MY_SHARD, got ${shard}`);
    let lastSeen = (h.getUint32(at + 10) + shift) >>> 0;
    // Stamped after the sender's clock (an actor's clock ran ahead of the saver's): fresh, now.
    if (((lastSeen - now) | 0) > 0) lastSeen = now >>> 0;
    const k = kept * SNAPSHOT_WORDS;
    entries[k] = keyLo;
    entries[k + 1] = keyHi;
    entries[k + 2] = owner;
    entries[k + 3] = lastSeen;
    shards[kept++] = shard;
  }
  entries = entries.subarray(0, kept * SNAPSHOT_WORDS);
  shards = shards.subarray(0, kept);
  return { entries, shards, skippedUnknownOwner: skipped, senderClock, clockShiftSeconds: shift };
}

function checkClock(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffff_ffff) throw new RangeError(`a clock must be u32 seconds, got ${seconds}`);
}

function describeSkew(shift: number): string {
  const abs = Math.abs(shift);
  const amount = abs >= 86400 ? `${(abs / 86400).toFixed(1)} days` : `${abs} s`;
  return `${amount} ${shift > 0 ? 'behind' : 'ahead of'}`;
}
