/**
 * ByteRing: a single-producer single-consumer ring of variable-length records in a
 * SharedArrayBuffer, for the dispatcher → actor hand-over (no postMessage per frame).
 *
 *   SAB:  | control block, 256 bytes (layout.ts: RING_*)  | data area, capacity bytes (2^n) |
 *           line 0 producer: HEAD, OVERFLOWS, counters      ^ ring.bytes / ring.words start here
 *           line 1 consumer: TAIL, SLEEPING, WAKEUPS, ...
 *           line 2 MAGIC, CAPACITY
 *
 *   data area, records 8-byte aligned, never split at the end:
 *   | len | flags | payload ... pad to 8 | len | flags | payload | ... | len | PAD | (unused) |
 *     u32   u32                                                         padding record filling
 *                                                                       the tail end on a wrap
 *
 * HEAD and TAIL are free-running byte positions (int32, wrapping at 2^32; index = pos & mask),
 * so head - tail is the number of bytes in use and full/empty need no extra bit. Only the
 * producer writes HEAD, only the consumer writes TAIL and SLEEPING.
 *
 * Batching: the producer reserves and fills any number of records, then `commit()` publishes
 * them with one Atomics.store of HEAD. The consumer takes a snapshot of HEAD (`beginRead`),
 * walks the records with `next()` (each payload stays valid until `endRead`), and `endRead()`
 * hands the space back with one Atomics.store of TAIL. Plain reads and writes of the data area
 * are ordered by these seq-cst accesses: the producer's writes happen before its store of
 * HEAD, which the consumer's load of HEAD observes before it reads the records (and the same
 * for TAIL in the other direction).
 *
 * Written here rather than taken from `ringbuf.js`: that package moves fixed-size elements
 * (or copies bytes in and out), while the dispatcher needs variable-length records it can
 * write into and the actor can read in place, plus the sleeping flag protocol below.
 */
import {
  RING_CAPACITY_WORD,
  RING_CONTROL_BYTES,
  RING_CONTROL_WORDS,
  RING_DOORBELL,
  RING_HEAD,
  RING_MAGIC,
  RING_MAGIC_WORD,
  RING_OVERFLOWS,
  RING_SLEEPING,
  RING_TAIL,
  RING_WAKEUPS,
} from './layout.js';

/** Bytes of the per-record header: [u32 length][u32 flags]. */
export const RING_RECORD_HEADER = 8;
/** Flag bit of a padding record (ring-internal; user flags are bits 0..30). */
export const RING_FLAG_PAD = 0x8000_0000;
export const RING_MIN_CAPACITY = 64;
export const RING_MAX_CAPACITY = 1 << 30;

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
// lib ES2022 does not declare Atomics.waitAsync (ES2024); Node 20 has it.
const AtomicsAsync = Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
};

export type RingWaitResult = 'ok' | 'timed-out' | 'not-equal';

function noop(): void {}

export class ByteRing {
  readonly sab: SharedArrayBuffer;
  /** The control words (layout.ts RING_*), for counters of the ring's user. */
  readonly control: Int32Array;
  /** The data area; payload offsets returned by reserve() and next() index into it. */
  readonly bytes: Uint8Array;
  /** The same data area as u32 words: payload offsets are 8-aligned, so word = offset >> 2. */
  readonly words: Uint32Array;
  readonly capacity: number;
  /** Consumer: payload length of the record next() returned last. */
  recordLength = 0;
  /** Consumer: user flags of the record next() returned last. */
  recordFlags = 0;

  private readonly mask: number;
  // Producer-local state.
  private reservePos: number;
  private committedPos: number;
  private cachedTail: number;
  // Consumer-local state.
  private readPos: number;
  private readLimit: number;
  private releasedPos: number;

  /** A SharedArrayBuffer for a ring of `capacityBytes` (a power of two, 64 B .. 1 GiB). */
  static allocate(capacityBytes: number): SharedArrayBuffer {
    if (
      !Number.isInteger(capacityBytes) ||
      capacityBytes < RING_MIN_CAPACITY ||
      capacityBytes > RING_MAX_CAPACITY ||
      (capacityBytes & (capacityBytes - 1)) !== 0
    ) {
      throw new RangeError(`ring capacity must be a power of two between ${RING_MIN_CAPACITY} and 2^30 bytes, got ${capacityBytes}`);
    }
    const sab = new SharedArrayBuffer(RING_CONTROL_BYTES + capacityBytes);
    const control = new Int32Array(sab, 0, RING_CONTROL_WORDS);
    control[RING_CAPACITY_WORD] = capacityBytes;
    control[RING_MAGIC_WORD] = RING_MAGIC;
    return sab;
  }

  /** Either end of the ring; the same constructor for producer and consumer. */
  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < RING_CONTROL_BYTES + RING_MIN_CAPACITY) {
      throw new TypeError('ByteRing needs a SharedArrayBuffer from ByteRing.allocate()');
    }
    const control = new Int32Array(sab, 0, RING_CONTROL_WORDS);
    const capacity = control[RING_CAPACITY_WORD]!;
    if (control[RING_MAGIC_WORD] !== RING_MAGIC || capacity !== sab.byteLength - RING_CONTROL_BYTES) {
      throw new TypeError('ByteRing needs a SharedArrayBuffer from ByteRing.allocate()');
    }
    this.sab = sab;
    this.control = control;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.bytes = new Uint8Array(sab, RING_CONTROL_BYTES, capacity);
    this.words = new Uint32Array(sab, RING_CONTROL_BYTES, capacity >> 2);
    const head = Atomics.load(control, RING_HEAD);
    const tail = Atomics.load(control, RING_TAIL);
    this.reservePos = head;
    this.committedPos = head;
    this.cachedTail = tail;
    this.readPos = tail;
    this.readLimit = tail;
    this.releasedPos = tail;
  }

  // ------------------------------------------------------------------ producer

  /**
   * Reserves a record of `payloadLength` bytes and returns the payload's byte offset in
   * `bytes` (8-aligned), or -1 when the ring has no room (the OVERFLOWS counter is bumped).
   * The record becomes visible to the consumer at the next commit(). `flags` (bits 0..30)
   * travel with the record. A refused reserve may already have placed a padding record at the
   * end of the data area (so the record fits at the start once the consumer catches up);
   * commit() publishes it like any record.
   */
  reserve(payloadLength: number, flags = 0): number {
    const capacity = this.capacity;
    const size = RING_RECORD_HEADER + ((payloadLength + 7) & ~7);
    if (!(payloadLength >= 0) || size > capacity) {
      Atomics.add(this.control, RING_OVERFLOWS, 1);
      return -1;
    }
    const words = this.words;
    let pos = this.reservePos;
    let idx = pos & this.mask;
    const toEnd = capacity - idx;
    if (size > toEnd) {
      // The record would straddle the end: fill the tail end with a padding record first.
      if (((pos - this.cachedTail) | 0) + toEnd > capacity) {
        this.cachedTail = Atomics.load(this.control, RING_TAIL);
        if (((pos - this.cachedTail) | 0) + toEnd > capacity) {
          Atomics.add(this.control, RING_OVERFLOWS, 1);
          return -1;
        }
      }
      words[idx >> 2] = toEnd - RING_RECORD_HEADER;
      words[(idx >> 2) + 1] = RING_FLAG_PAD;
      pos = (pos + toEnd) | 0;
      this.reservePos = pos;
      idx = 0;
    }
    if (((pos - this.cachedTail) | 0) + size > capacity) {
      this.cachedTail = Atomics.load(this.control, RING_TAIL);
      if (((pos - this.cachedTail) | 0) + size > capacity) {
        Atomics.add(this.control, RING_OVERFLOWS, 1);
        return -1;
      }
    }
    words[idx >> 2] = payloadLength;
    words[(idx >> 2) + 1] = flags & 0x7fff_ffff;
    this.reservePos = (pos + size) | 0;
    return idx + RING_RECORD_HEADER;
  }

  /**
   * Publishes every record reserved since the last commit: one Atomics.store of HEAD, then an
   * Atomics.notify only if the consumer said it is going to sleep.
   *
   * Pairs with the Atomics.waitAsync / Atomics.wait in waitAsync() / waitSync() below, which
   * wait on the doorbell (read before SLEEPING is set) rather than on HEAD, so that other
   * reasons to wake (wakeConsumer) ring the same bell.
   * Ordering (Dekker): producer = store HEAD; load SLEEPING; if set, ring (add to the bell,
   * notify). Consumer = read the bell; store SLEEPING=1; load HEAD; wait while the bell is
   * unchanged. All are seq-cst, so in their single total order either (a) our load of SLEEPING
   * comes after the consumer's store of 1: we ring, and the notify finds the waiter, or, if it
   * runs before the consumer's wait, the wait's own check (done atomically with enqueueing the
   * waiter) sees a bell other than the one read before and returns 'not-equal'; or (b) our
   * load comes before that store: then our store of HEAD comes before the consumer's load of
   * HEAD, which sees the new value and does not sleep. No commit can be missed by a sleeping
   * consumer.
   */
  commit(): void {
    const pos = this.reservePos;
    if (pos === this.committedPos) return;
    this.committedPos = pos;
    Atomics.store(this.control, RING_HEAD, pos);
    if (Atomics.load(this.control, RING_SLEEPING) !== 0) this.#ring();
  }

  #ring(): void {
    Atomics.add(this.control, RING_DOORBELL, 1);
    Atomics.notify(this.control, RING_DOORBELL, 1);
  }

  /**
   * Wakes the consumer without publishing anything (from any thread): a sleeping one returns
   * from its wait as if records had arrived, finds none, and looks at whatever else changed (a
   * new view, a message) before sleeping again; one about to sleep does not (the doorbell rang
   * since it read it: see waitSync).
   */
  wakeConsumer(): void {
    this.#ring();
  }

  /**
   * The doorbell's count now. A consumer that reads it before it looks for work (records,
   * messages) and passes it to waitSync sleeps only if nothing rang since: a wakeConsumer()
   * after a message was posted is never lost, whatever the order of the two threads.
   */
  doorbell(): number {
    return Atomics.load(this.control, RING_DOORBELL);
  }

  /** Records refused because the ring was full (or too large for it). */
  get overflows(): number {
    return Atomics.load(this.control, RING_OVERFLOWS);
  }

  /** Times the consumer slept and was woken by a commit. */
  get wakeups(): number {
    return Atomics.load(this.control, RING_WAKEUPS);
  }

  /** Bytes published and not yet released by the consumer (either side; a snapshot). */
  usedBytes(): number {
    return (Atomics.load(this.control, RING_HEAD) - Atomics.load(this.control, RING_TAIL)) | 0;
  }

  // ------------------------------------------------------------------ consumer

  /** Snapshots HEAD; returns the number of bytes published and not yet read (0 if empty). */
  beginRead(): number {
    const head = Atomics.load(this.control, RING_HEAD);
    this.readLimit = head;
    return (head - this.readPos) | 0;
  }

  /**
   * The payload offset (in `bytes`) of the next record of the snapshot, with its length in
   * `recordLength` and flags in `recordFlags`; -1 once the snapshot is exhausted. The payload
   * stays valid until endRead().
   */
  next(): number {
    const words = this.words;
    let pos = this.readPos;
    const limit = this.readLimit;
    while (pos !== limit) {
      const idx = pos & this.mask;
      const len = words[idx >> 2]!;
      const flags = words[(idx >> 2) + 1]!;
      if ((flags & RING_FLAG_PAD) !== 0) {
        pos = (pos + RING_RECORD_HEADER + len) | 0;
        continue;
      }
      this.recordLength = len;
      this.recordFlags = flags;
      this.readPos = (pos + RING_RECORD_HEADER + ((len + 7) & ~7)) | 0;
      return idx + RING_RECORD_HEADER;
    }
    this.readPos = pos;
    return -1;
  }

  /** Hands every record read so far back to the producer (one Atomics.store of TAIL). */
  endRead(): void {
    const pos = this.readPos;
    if (pos === this.releasedPos) return;
    this.releasedPos = pos;
    Atomics.store(this.control, RING_TAIL, pos);
  }

  /**
   * The consumer's half of the sleep handshake: release what was read, say "sleeping", then
   * re-read head. Returns the head to wait on, or null (and clears the flag) when records
   * arrived meanwhile — the commit that raced with us will not notify, so we must not wait.
   */
  private announceSleep(): boolean {
    const control = this.control;
    this.endRead();
    Atomics.store(control, RING_SLEEPING, 1);
    const head = Atomics.load(control, RING_HEAD);
    if (head !== this.readPos) {
      Atomics.store(control, RING_SLEEPING, 0);
      return false;
    }
    return true;
  }

  /**
   * Sleeps until the producer commits, without losing a racing commit. Releases what was
   * read (endRead), sets SLEEPING, re-reads HEAD and returns null if records are already there.
   * Otherwise returns the promise of an Atomics.waitAsync on HEAD: 'ok' (woken by commit()),
   * 'timed-out', or 'not-equal' (a commit landed between our load and the wait). SLEEPING is
   * cleared once the wait ends.
   *
   * A pending Atomics.waitAsync does not keep Node's event loop alive (a script or worker whose
   * only work is the wait would just exit), so with `keepAlive` (the default) a ref'd timer is
   * held until the wait ends. V8 may end a timed wait a few milliseconds early; the timeout is
   * for idle housekeeping, not for timekeeping.
   *
   * Ended by the Atomics.notify in commit() above; see there for the ordering argument
   * (store SLEEPING=1 then load HEAD here, store HEAD then load SLEEPING there, all seq-cst).
   */
  waitAsync(timeoutMs = Infinity, keepAlive = true): Promise<RingWaitResult> | null {
    const control = this.control;
    const bell = this.doorbell();
    if (!this.announceSleep()) return null;
    const r = AtomicsAsync.waitAsync(control, RING_DOORBELL, bell, timeoutMs);
    if (!r.async) {
      Atomics.store(control, RING_SLEEPING, 0);
      return Promise.resolve(r.value);
    }
    const keep = keepAlive ? setInterval(noop, 0x3fff_ffff) : undefined;
    return r.value.then((v) => {
      if (keep !== undefined) clearInterval(keep);
      Atomics.store(control, RING_SLEEPING, 0);
      if (v === 'ok') Atomics.add(control, RING_WAKEUPS, 1);
      return v;
    });
  }

  /**
   * Blocking variant of waitAsync() for a consumer thread that does not use its event loop
   * (never on the main thread). Returns null if records are already there. `bell`: the
   * doorbell() read before the consumer last looked for work (default: now); it sleeps only
   * if the doorbell has not rung since.
   *
   * Ended by commit() or wakeConsumer(); same ordering argument as commit()'s, on the doorbell.
   */
  waitSync(timeoutMs = Infinity, bell = this.doorbell()): RingWaitResult | null {
    const control = this.control;
    if (!this.announceSleep()) return null;
    const v = Atomics.wait(control, RING_DOORBELL, bell, timeoutMs);
    Atomics.store(control, RING_SLEEPING, 0);
    if (v === 'ok') Atomics.add(control, RING_WAKEUPS, 1);
    return v;
  }
}
