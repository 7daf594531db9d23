/**
 * balance-rr's slave choice (the driver's bond_rr_gen_slave_id): packets_per_slave 1 sends
 * each frame on the next slave, N sends N frames on a slave before moving on, and 0 picks a
 * slave at random for each frame (the driver uses prandom; any uniform source will do).
 */

export class RoundRobin {
  readonly #packetsPerSlave: number;
  readonly #random: () => number;
  #counter = 0;

  constructor(packetsPerSlave: number, random: () => number = Math.random) {
    this.#packetsPerSlave = packetsPerSlave;
    this.#random = random;
  }

  /** An index in 0..count-1, or -1 when count is 0. */
  next(count: number): number {
    if (count <= 0) return -1;
    const pps = this.#packetsPerSlave;
    if (pps === 0) return Math.floor(this.#random() * count) % count;
    const id = pps === 1 ? this.#counter : Math.floor(this.#counter / pps);
    // Wraps like the driver's u32 counter, so a long-running bond never loses precision.
    this.#counter = (this.#counter + 1) >>> 0;
    return id % count;
  }
}
