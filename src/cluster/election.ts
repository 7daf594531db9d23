/**
 * Election: which node owns a new, untracked affinity key. Pure: the member list in, owner out.
 *
 * LnlbElection is LNLB's rule: each node gets a share proportional to sum(weights)/weight (the
 * weight is a *load*: a busier node gets fewer new clients); `hash mod sum(shares)` is walked
 * over the shares in table order (members sorted by MAC, so every node numbers them alike).
 * The table is rebuilt only when the view changes; electing is a short scan with no allocation.
 */

export const MAX_MEMBERS = 64;

/** What an election needs of the view: ids in table order and their weights. */
export interface ElectionInput {
  readonly count: number;
  readonly ids: ArrayLike<number>;
  readonly weights: ArrayLike<number>;
}

export interface Election {
  /** Rebuild from the members of a new view. A weight of 0 anywhere keeps the previous table. */
  rebuild(input: ElectionInput): void;
  /** The owning member's id, or -1 when there is no member. */
  electOwner(hash: number): number;
  readonly memberCount: number;
}

/** Resolution of a share: sum/weight is a ratio, scaled so unequal weights stay distinct. */
const SHARE_SCALE = 64;

export class LnlbElection implements Election {
  #ids = new Int32Array(MAX_MEMBERS);
  /** cumulative[i] = shares of members 0..i; the owner of h is the first i with h % total < cumulative[i]. */
  #cumulative = new Float64Array(MAX_MEMBERS);
  #count = 0;
  #total = 0;

  get memberCount(): number {
    return this.#count;
  }

  rebuild(input: ElectionInput): void {
    const count = Math.min(input.count, MAX_MEMBERS);
    let sum = 0;
    for (let i = 0; i < count; i++) {
      const w = input.weights[i] ?? 0;
      if (w <= 0) return; // LNLB: a zero weight anywhere keeps the previous table
      sum += w;
    }
    let running = 0;
    for (let i = 0; i < count; i++) {
      const share = Math.max(1, Math.round((sum * SHARE_SCALE) / (input.weights[i] ?? 1)));
      running += share;
      this.#ids[i] = input.ids[i] ?? 0;
      this.#cumulative[i] = running;
    }
    this.#count = count;
    this.#total = running;
  }

  electOwner(hash: number): number {
    const count = this.#count;
    if (count === 0) return -1;
    const point = (hash >>> 0) % this.#total;
    const cumulative = this.#cumulative;
    for (let i = 0; i < count; i++) {
      if (point < cumulative[i]!) return this.#ids[i]!;
    }
    return this.#ids[count - 1]!;
  }
}
