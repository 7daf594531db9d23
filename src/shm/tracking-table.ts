/**
 * TrackingTable: an open-addressing hash table (linear probing, backward-shift deletion, no
 * tombstones) over a SharedArrayBuffer, from a 64-bit key (keyLo, keyHi: a source IP, or a
 * source IP + port) to (owner node id, last seen). Fixed capacity (any size); at the load
 * limit (7/8) an insert evicts the stalest entry it can find cheaply.
 *
 *   byteOffset (8-aligned)
 *   | header, 64 bytes (layout.ts TT_*)           | entry 0 | entry 1 | ... | entry cap-1 |
 *     SIZE CAPACITY EVICTIONS CURSOR EXPIRED         16 bytes each:
 *     MAGIC SEED                                     | keyLo | keyHi | owner:16 flags:16 | lastSeen |
 *                                                      flags: bit 0 = occupied, bits 1..15 = the
 *                                                      entry flags (flagsAt/setFlags)
 *
 * One writer: the actor that owns the shard. Other threads may read (status listings, find):
 * every word is read and written whole, so they never see a torn word, but an entry can be
 * seen mid-move during a backward shift, so their answers are best-effort. The header counters
 * are written with Atomics.store so readers' Atomics.load see them promptly.
 *
 * Entry flags are 15 bits a handler keeps per entry (tcp marks a closing connection). They
 * share the owner's word so an entry stays 16 bytes and moves in one piece: a backward shift
 * or an eviction never separates an entry from its flags. The table never interprets them.
 *
 * Times are u32 seconds of the caller's clock; ages are computed as signed 32-bit differences,
 * so the clock may wrap and an entry stamped slightly in the future (a state loaded from a
 * node whose clock runs ahead) counts as fresh, not as 136 years old.
 */
import {
  TT_CAPACITY,
  TT_CURSOR,
  TT_ENTRY_BYTES,
  TT_E_KEY_HI,
  TT_E_KEY_LO,
  TT_E_LAST_SEEN,
  TT_E_OWNER_FLAGS,
  TT_ENTRY_FLAGS_MASK,
  TT_ENTRY_FLAGS_SHIFT,
  TT_EVICTIONS,
  TT_EXPIRED,
  TT_HEADER_BYTES,
  TT_HEADER_WORDS,
  TT_MAGIC,
  TT_MAGIC_WORD,
  TT_OCCUPIED,
  TT_OWNER_MASK,
  TT_SEED,
  TT_SIZE,
} from './layout.js';

/** Probe-window entries an eviction looks at, at most. */
const EVICT_WINDOW = 32;
/** Extra random samples an eviction looks at. */
const EVICT_SAMPLES = 8;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** MurmurHash3 x86_32 of the 8 bytes (keyLo, keyHi) with a seed. */
function hashKey(lo: number, hi: number, seed: number): number {
  let h = seed;
  let k = Math.imul(rotl(Math.imul(lo, 0xcc9e2d51), 15), 0x1b873593);
  h = (Math.imul(rotl(h ^ k, 13), 5) + 0xe6546b64) | 0;
  k = Math.imul(rotl(Math.imul(hi, 0xcc9e2d51), 15), 0x1b873593);
  h = (Math.imul(rotl(h ^ k, 13), 5) + 0xe6546b64) | 0;
  h ^= 8;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

export type TrackingVisitor = (keyLo: number, keyHi: number, owner: number, lastSeen: number, slot: number) => void;

export class TrackingTable {
  readonly capacity: number;
  /** Entries the table holds before inserts start evicting (7/8 of capacity). */
  readonly loadLimit: number;
  /** The capacity again, as a plain field for the probe loops (any size: no power of two). */
  private readonly cap: number;
  private readonly header: Int32Array;
  private readonly e: Uint32Array;
  private readonly seed: number;
  /** xorshift32 state for eviction samples (local: only the writer evicts). */
  private rng: number;

  static byteLength(capacity: number): number {
    checkCapacity(capacity);
    return TT_HEADER_BYTES + capacity * TT_ENTRY_BYTES;
  }

  /** A SharedArrayBuffer holding one table of `capacity` entries, initialised. */
  static allocate(capacity: number, seed?: number): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(TrackingTable.byteLength(capacity));
    new TrackingTable(sab, 0, capacity, seed);
    return sab;
  }

  /**
   * Attaches to the table at `byteOffset` (a multiple of 8) of `sab`. With `capacity` on a
   * zeroed region it initialises the table (do it once, before sharing the SAB); on an
   * initialised table `capacity` may be omitted and must otherwise match. `seed` (for
   * reproducible tests) replaces the random hash seed of a new table.
   */
  constructor(sab: SharedArrayBuffer, byteOffset = 0, capacity?: number, seed?: number) {
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0) {
      throw new RangeError(`tracking table offset must be a multiple of 8, got ${byteOffset}`);
    }
    if (byteOffset + TT_HEADER_BYTES > sab.byteLength) throw new RangeError('tracking table header past the end of the buffer');
    const header = new Int32Array(sab, byteOffset, TT_HEADER_WORDS);
    if (Atomics.load(header, TT_MAGIC_WORD) !== TT_MAGIC) {
      if (capacity === undefined) throw new TypeError('tracking table not initialised: pass its capacity');
      checkCapacity(capacity);
      if (byteOffset + TrackingTable.byteLength(capacity) > sab.byteLength) {
        throw new RangeError(`a tracking table of ${capacity} entries does not fit at offset ${byteOffset}`);
      }
      header[TT_CAPACITY] = capacity;
      header[TT_SEED] = seed ?? ((Math.random() * 0x1_0000_0000) | 0);
      Atomics.store(header, TT_MAGIC_WORD, TT_MAGIC);
    } else if (capacity !== undefined && header[TT_CAPACITY] !== capacity) {
      throw new RangeError(`tracking table at offset ${byteOffset} has capacity ${header[TT_CAPACITY]}, not ${capacity}`);
    }
    const cap = header[TT_CAPACITY]!;
    this.capacity = cap;
    this.cap = cap;
    this.loadLimit = cap - (cap >>> 3);
    this.header = header;
    this.e = new Uint32Array(sab, byteOffset + TT_HEADER_BYTES, cap * 4);
    this.seed = header[TT_SEED]!;
    this.rng = (this.seed ^ 0x2545f491) | 1;
  }

  get size(): number {
    return Atomics.load(this.header, TT_SIZE);
  }

  /** Entries evicted because the table was at its load limit. */
  get evictions(): number {
    return Atomics.load(this.header, TT_EVICTIONS);
  }

  /** Entries removed by expire(), total. */
  get expired(): number {
    return Atomics.load(this.header, TT_EXPIRED);
  }

  /**
   * The key's home slot: the hash's top 26 bits scaled to the capacity (Lemire's range
   * reduction, exact in doubles since 2^26 × 2^26 < 2^53), so the capacity need not be a power
   * of two and a table is sized to what it must hold, not to the next power of two.
   */
  private home(lo: number, hi: number): number {
    return Math.floor(((hashKey(lo, hi, this.seed) >>> 6) * this.cap) / 67108864);
  }

  /** Slot of the key, or -1. */
  find(keyLo: number, keyHi: number): number {
    const lo = keyLo >>> 0;
    const hi = keyHi >>> 0;
    const e = this.e;
    const cap = this.cap;
    let i = this.home(lo, hi);
    // Bounded by capacity: a reader racing the writer must not loop forever.
    for (let n = 0; n < cap; n++) {
      const b = i << 2;
      if ((e[b + TT_E_OWNER_FLAGS]! & TT_OCCUPIED) === 0) return -1;
      if (e[b + TT_E_KEY_LO] === lo && e[b + TT_E_KEY_HI] === hi) return i;
      if (++i === cap) i = 0;
    }
    return -1;
  }

  ownerAt(slot: number): number {
    return this.e[(slot << 2) + TT_E_OWNER_FLAGS]! & TT_OWNER_MASK;
  }

  /** The entry's 15 flag bits (0 after an upsert). */
  flagsAt(slot: number): number {
    return this.e[(slot << 2) + TT_E_OWNER_FLAGS]! >>> TT_ENTRY_FLAGS_SHIFT;
  }

  /**
   * Replaces the entry's flags (bits above the 15 are dropped); the owner and the occupied bit
   * are kept. One plain store, like touch: a reader sees the old or the new word, never half.
   */
  setFlags(slot: number, flags: number): void {
    const w = (slot << 2) + TT_E_OWNER_FLAGS;
    const e = this.e;
    e[w] = (e[w]! & (TT_OWNER_MASK | TT_OCCUPIED)) | ((flags & TT_ENTRY_FLAGS_MASK) << TT_ENTRY_FLAGS_SHIFT);
  }

  lastSeenAt(slot: number): number {
    return this.e[(slot << 2) + TT_E_LAST_SEEN]!;
  }

  keyLoAt(slot: number): number {
    return this.e[(slot << 2) + TT_E_KEY_LO]!;
  }

  keyHiAt(slot: number): number {
    return this.e[(slot << 2) + TT_E_KEY_HI]!;
  }

  /** Refreshes the entry's last-seen time (the per-frame path: one plain store). */
  touch(slot: number, now: number): void {
    this.e[(slot << 2) + TT_E_LAST_SEEN] = now;
  }

  /**
   * Inserts the key or updates its owner and last-seen time; returns its slot. Either way the
   * entry's flags are reset to 0: an upsert is a new assignment, and flags describe the
   * assignment they were set on (tcp's closing mark must not outlive the connection it
   * marked). At the load limit a new key first evicts the entry idle longest among its probe
   * window and a few random samples (the `evictions` counter counts it).
   */
  upsert(keyLo: number, keyHi: number, owner: number, now: number): number {
    const lo = keyLo >>> 0;
    const hi = keyHi >>> 0;
    const e = this.e;
    const cap = this.cap;
    const home = this.home(lo, hi);
    let i = home;
    for (;;) {
      const b = i << 2;
      if ((e[b + TT_E_OWNER_FLAGS]! & TT_OCCUPIED) === 0) break;
      if (e[b + TT_E_KEY_LO] === lo && e[b + TT_E_KEY_HI] === hi) {
        e[b + TT_E_OWNER_FLAGS] = TT_OCCUPIED | (owner & TT_OWNER_MASK);
        e[b + TT_E_LAST_SEEN] = now;
        return i;
      }
      if (++i === cap) i = 0;
    }
    let size = this.header[TT_SIZE]!;
    if (size >= this.loadLimit) {
      this.removeAt(this.pickVictim(home, i, now));
      size--;
      Atomics.store(this.header, TT_EVICTIONS, this.header[TT_EVICTIONS]! + 1);
      // The shift may have moved entries of our probe chain: look for the hole again.
      i = home;
      while ((e[(i << 2) + TT_E_OWNER_FLAGS]! & TT_OCCUPIED) !== 0) if (++i === cap) i = 0;
    }
    const b = i << 2;
    e[b + TT_E_KEY_LO] = lo;
    e[b + TT_E_KEY_HI] = hi;
    e[b + TT_E_LAST_SEEN] = now;
    e[b + TT_E_OWNER_FLAGS] = TT_OCCUPIED | (owner & TT_OWNER_MASK);
    Atomics.store(this.header, TT_SIZE, size + 1);
    return i;
  }

  /** The occupied slot idle longest among [home, hole) (capped) and a few random samples. */
  private pickVictim(home: number, hole: number, now: number): number {
    const e = this.e;
    const cap = this.cap;
    let victim = -1;
    let oldest = -0x8000_0000 - 1;
    for (let i = home, n = 0; i !== hole && n < EVICT_WINDOW; i = i + 1 === cap ? 0 : i + 1, n++) {
      const age = (now - e[(i << 2) + TT_E_LAST_SEEN]!) | 0;
      if (age > oldest) {
        oldest = age;
        victim = i;
      }
    }
    for (let s = 0; s < EVICT_SAMPLES; s++) {
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x;
      // The first occupied slot at or after a random position (the table is 7/8 full).
      let i = (x >>> 0) % cap;
      while ((e[(i << 2) + TT_E_OWNER_FLAGS]! & TT_OCCUPIED) === 0) if (++i === cap) i = 0;
      const age = (now - e[(i << 2) + TT_E_LAST_SEEN]!) | 0;
      if (age > oldest) {
        oldest = age;
        victim = i;
      }
    }
    return victim;
  }

  /**
   * Empties slot i and shifts the following entries of its cluster back so that every entry
   * stays reachable from its home slot without tombstones (Knuth 6.4, algorithm R).
   */
  private removeAt(slot: number): void {
    const e = this.e;
    const cap = this.cap;
    let hole = slot;
    let j = slot;
    for (;;) {
      if (++j === cap) j = 0;
      const bj = j << 2;
      if ((e[bj + TT_E_OWNER_FLAGS]! & TT_OCCUPIED) === 0) break;
      const k = this.home(e[bj + TT_E_KEY_LO]!, e[bj + TT_E_KEY_HI]!);
      // The entry at j may move to the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? hole < k && k <= j : hole < k || k <= j;
      if (stays) continue;
      const bh = hole << 2;
      e[bh + TT_E_KEY_LO] = e[bj + TT_E_KEY_LO]!;
      e[bh + TT_E_KEY_HI] = e[bj + TT_E_KEY_HI]!;
      e[bh + TT_E_LAST_SEEN] = e[bj + TT_E_LAST_SEEN]!;
      e[bh + TT_E_OWNER_FLAGS] = e[bj + TT_E_OWNER_FLAGS]!; // owner, occupied and entry flags move together
      hole = j;
    }
    const bh = hole << 2;
    e[bh + TT_E_OWNER_FLAGS] = 0;
    e[bh + TT_E_KEY_LO] = 0;
    e[bh + TT_E_KEY_HI] = 0;
    e[bh + TT_E_LAST_SEEN] = 0;
    Atomics.store(this.header, TT_SIZE, this.header[TT_SIZE]! - 1);
  }

  /** Removes the key; true if it was there. */
  remove(keyLo: number, keyHi: number): boolean {
    const slot = this.find(keyLo, keyHi);
    if (slot < 0) return false;
    this.removeAt(slot);
    return true;
  }

  /**
   * Removes every entry of `owner` (a node died); returns how many. A full scan: on a large
   * table it takes milliseconds, so the datapath purges with `removeOwnerSlice` instead.
   */
  removeOwner(owner: number): number {
    const size = this.size;
    this.removeOwnerSlice(owner, 0, this.capacity);
    return size - this.size;
  }

  /**
   * Removes the entries of `owner` among up to `budget` slots from `from`; returns the slot to
   * go on from, or -1 once the last slot has been seen. A removal re-examines its slot, since
   * the shift may have moved a not-yet-seen entry into it (within one call entries only move
   * backwards, never past the scan position; between calls an expiry or an eviction may move
   * one behind it, where it stays, inert, until the expiry sweep takes it: an entry of a dead
   * owner is elected anew on its next frame, as if untracked).
   */
  removeOwnerSlice(owner: number, from: number, budget: number): number {
    const e = this.e;
    const want = owner & TT_OWNER_MASK;
    const end = Math.min(this.capacity, from + budget);
    let i = Math.max(0, from);
    while (i < end) {
      const w = e[(i << 2) + TT_E_OWNER_FLAGS]!;
      if ((w & TT_OCCUPIED) !== 0 && (w & TT_OWNER_MASK) === want) this.removeAt(i);
      else i++;
    }
    return end >= this.capacity ? -1 : end;
  }

  /**
   * Incremental expiry: looks at up to `maxSlotsToScan` slots from the remembered cursor and
   * removes entries idle more than `idleSeconds`; returns how many it removed. Call it often
   * with a small budget; capacity slots make a full sweep.
   */
  expire(now: number, idleSeconds: number, maxSlotsToScan: number): number {
    const e = this.e;
    const cap = this.cap;
    const header = this.header;
    let cursor = header[TT_CURSOR]! % cap;
    let removed = 0;
    for (let n = 0; n < maxSlotsToScan; n++) {
      const b = cursor << 2;
      if ((e[b + TT_E_OWNER_FLAGS]! & TT_OCCUPIED) !== 0 && ((now - e[b + TT_E_LAST_SEEN]!) | 0) > idleSeconds) {
        // Stay on this slot: the shift may have moved an unseen entry into it.
        this.removeAt(cursor);
        removed++;
        continue;
      }
      if (++cursor === cap) cursor = 0;
    }
    header[TT_CURSOR] = cursor;
    if (removed > 0) Atomics.store(header, TT_EXPIRED, header[TT_EXPIRED]! + removed);
    return removed;
  }

  /**
   * Empties the table (counters other than size are kept). Only the pages that hold something
   * are written: a table nobody has filled (a newcomer's, cleared before the state it is sent
   * is loaded) stays untouched memory, not resident (9 MiB per actor at the default size).
   */
  clear(): void {
    const e = this.e;
    for (let from = 0; from < e.length; from += CLEAR_CHUNK_WORDS) {
      const to = Math.min(e.length, from + CLEAR_CHUNK_WORDS);
      for (let i = from; i < to; i++) {
        if (e[i] !== 0) {
          e.fill(0, from, to);
          break;
        }
      }
    }
    this.header[TT_CURSOR] = 0;
    Atomics.store(this.header, TT_SIZE, 0);
  }

  /** Visits every entry in slot order. For status listings, not for the hot path. */
  forEach(cb: TrackingVisitor): void {
    const e = this.e;
    for (let i = 0; i < this.capacity; i++) {
      const b = i << 2;
      const w = e[b + TT_E_OWNER_FLAGS]!;
      if ((w & TT_OCCUPIED) !== 0) cb(e[b + TT_E_KEY_LO]!, e[b + TT_E_KEY_HI]!, w & TT_OWNER_MASK, e[b + TT_E_LAST_SEEN]!, i);
    }
  }
}

/** clear() looks at the table a page (4 KiB) at a time. */
const CLEAR_CHUNK_WORDS = 1024;

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 8 || capacity > 1 << 26) {
    throw new RangeError(`tracking table capacity must be a whole number from 8 to 2^26, got ${capacity}`);
  }
}
