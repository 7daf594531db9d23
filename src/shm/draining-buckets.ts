/**
 * The buckets each actor still drains (--election bucket): buckets this node no longer owns
 * but in which the actor's shard still tracks flows this node owns. The old owner keeps taking
 * those flows' frames until they end, so the data socket's kernel filter must keep passing
 * those buckets (the dispatcher reads the union of every actor's mask).
 *
 *   Int32 words, one block per actor:
 *   | version | mask word 0 | ... | mask word 31 |      (bit b % 32 of word b >> 5 = bucket b)
 *
 * One writer per block (its actor); a reader polls `version()` (the sum of the blocks'
 * versions, one load per actor) and reads the masks again when it changed. A mask is written
 * before its version moves on, every access atomic, so a reader that sees the new version sees
 * the new mask; one that reads a mask mid-write sees a mix of the old and the new, which the
 * next version change corrects.
 */

export const DRAINING_MASK_WORDS = 1024 / 32;
const BLOCK_WORDS = 1 + DRAINING_MASK_WORDS;

export class DrainingBuckets {
  readonly #w: Int32Array;
  readonly actors: number;

  static allocate(actors: number): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * BLOCK_WORDS * Math.max(1, actors));
  }

  constructor(sab: SharedArrayBuffer) {
    this.#w = new Int32Array(sab);
    this.actors = Math.floor(this.#w.length / BLOCK_WORDS);
  }

  /** Actor `actor`'s mask is now `mask` (32 words). */
  write(actor: number, mask: Uint32Array): void {
    const w = this.#w;
    const at = actor * BLOCK_WORDS;
    let changed = false;
    for (let k = 0; k < DRAINING_MASK_WORDS; k++) {
      if (Atomics.load(w, at + 1 + k) !== (mask[k]! | 0)) {
        Atomics.store(w, at + 1 + k, mask[k]! | 0);
        changed = true;
      }
    }
    if (changed) Atomics.add(w, at, 1);
  }

  /** Moves on whenever any actor's mask changed. */
  version(): number {
    let v = 0;
    for (let a = 0; a < this.actors; a++) v = (v + Atomics.load(this.#w, a * BLOCK_WORDS)) | 0;
    return v;
  }

  /** ORs every actor's mask into `into` (32 words); returns how many buckets it holds then. */
  unionInto(into: Uint32Array): number {
    const w = this.#w;
    for (let a = 0; a < this.actors; a++) {
      const at = a * BLOCK_WORDS + 1;
      for (let k = 0; k < DRAINING_MASK_WORDS; k++) into[k] = (into[k]! | Atomics.load(w, at + k)) >>> 0;
    }
    return countBuckets(into);
  }
}

/** Buckets set in a mask of DRAINING_MASK_WORDS words. */
export function countBuckets(mask: Uint32Array): number {
  let n = 0;
  for (let k = 0; k < DRAINING_MASK_WORDS; k++) n += popcount(mask[k]!);
  return n;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
