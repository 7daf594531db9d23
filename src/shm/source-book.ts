/**
 * SourceBook: which IPv6 address an identity stands for (cluster/hash.ts ipv6Identity), so that
 * `lnlbctl conntrack` shows an IPv6 flow by its address although the tables keep 32 bits of it.
 * Display only: nothing decides by it.
 *
 * Direct-mapped over a SharedArrayBuffer: slot = identity mod slots, 5 words a slot
 * (identity, then the address as four big-endian words). The dispatcher, its one writer,
 * records the source of every IPv6 frame for the VIP (a slot that already holds the identity
 * costs one compare); a newer source whose identity maps to the same slot replaces the older
 * one, so the book holds the sources seen lately, at most `slots` of them. Readers (the main
 * thread, for a listing) read the identity, the address, then the identity again: a slot
 * rewritten meanwhile is reported as unknown, never as another source's address.
 *
 *   65536 slots: 1.25 MiB, allocated only for an interface with an IPv6 VIP.
 */

export const SOURCE_BOOK_SLOTS = 1 << 16;
const SLOT_WORDS = 5;

export class SourceBook {
  readonly #words: Int32Array;
  readonly #mask: number;

  static allocate(slots = SOURCE_BOOK_SLOTS): SharedArrayBuffer {
    if (!Number.isInteger(slots) || slots < 1 || (slots & (slots - 1)) !== 0) throw new RangeError(`a source book's slots must be a power of two, got ${slots}`);
    return new SharedArrayBuffer(slots * SLOT_WORDS * 4);
  }

  /** The shared memory, for another thread's SourceBook over it. */
  readonly memory: SharedArrayBuffer;

  constructor(memory: SharedArrayBuffer) {
    this.memory = memory;
    this.#words = new Int32Array(memory);
    this.#mask = memory.byteLength / (SLOT_WORDS * 4) - 1;
  }

  /** The writer (one thread): `identity` is the address w0..w3 (big-endian words). */
  record(identity: number, w0: number, w1: number, w2: number, w3: number): void {
    const words = this.#words;
    const at = (identity & this.#mask) * SLOT_WORDS;
    if (words[at] === (identity | 0)) return;
    // The identity goes last (and 0 first: never an identity, which lies in 224.0.0.0/3), so a
    // reader that sees it before and after the address read a whole one.
    Atomics.store(words, at, 0);
    words[at + 1] = w0;
    words[at + 2] = w1;
    words[at + 3] = w2;
    words[at + 4] = w3;
    Atomics.store(words, at, identity | 0);
  }

  /** The address of `identity` into `out` (16 bytes); false when the book does not hold it (any more). */
  lookup(identity: number, out: Uint8Array): boolean {
    const words = this.#words;
    const at = (identity & this.#mask) * SLOT_WORDS;
    if (Atomics.load(words, at) !== (identity | 0)) return false;
    for (let w = 0; w < 4; w++) {
      const word = words[at + 1 + w]!;
      out[4 * w] = word >>> 24;
      out[4 * w + 1] = (word >>> 16) & 0xff;
      out[4 * w + 2] = (word >>> 8) & 0xff;
      out[4 * w + 3] = word & 0xff;
    }
    return Atomics.load(words, at) === (identity | 0);
  }
}
