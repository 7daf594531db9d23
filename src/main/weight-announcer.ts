/**
 * The weight this node announces in its heartbeats: read from its source (weight-source.ts)
 * every second (or heartbeat, if longer), handed to the control plane only when it moved enough, and not too often;
 * set by hand (set_weight, weight_mode) it applies at once.
 */

import type { Logger } from './logger.js';
import { IDLE_WEIGHT, WeightSource, type WeightMode } from './weight-source.js';

/**
 * A measured weight (loadavg, freemem) is announced only when it moved by this fraction: every
 * new weight makes a round change the view, and such a round holds new flows for its length.
 */
export const WEIGHT_HYSTERESIS = 0.05;
/**
 * ...and at most once in this many heartbeats: while a new weight is applied, the new flows
 * it moves to another node wait (see Membership's weightsInFlight), so a load average
 * drifting across the hysteresis must not do it every few rounds. Set by hand (set_weight,
 * weight_mode) it applies at once.
 */
export const WEIGHT_MIN_INTERVAL_HEARTBEATS = 10;

/**
 * The weight to announce after reading `measured`, `last` being the one announced (0: none
 * yet). Pure. A fixed weight, the first one, or a forced read (start, rejoin, a mode set by
 * hand) is taken as read; a measured one only past the hysteresis.
 */
export function weightToAnnounce(last: number, measured: number, mode: WeightMode, force: boolean): number {
  return force || last === 0 || mode === 'fixed' || Math.abs(measured - last) >= last * WEIGHT_HYSTERESIS ? measured : last;
}

/**
 * How often a measured weight is read. The kernel recomputes the load average every 5 s
 * (LOAD_FREQ), so reading it every 100 ms heartbeat woke the main thread ten times a second
 * (about a third of an idle daemon's CPU) to read the same figure, and once a second still
 * read it five times: the loadavg modes read it every 5 s, which adds at most 5 s to a
 * reaction that the load average itself delays by a minute. Free memory moves at any time:
 * once a second.
 */
export const WEIGHT_SAMPLE_MS = 1000;
export const LOADAVG_SAMPLE_MS = 5000;

/** The interval between two reads of the weight in `mode`. */
export function weightSampleMs(mode: WeightMode): number {
  return mode === 'loadavg' || mode === 'loadavg5' || mode === 'loadavg15' ? LOADAVG_SAMPLE_MS : WEIGHT_SAMPLE_MS;
}

export class WeightAnnouncer {
  /** Where the weight comes from (--weight-mode). */
  readonly source: WeightSource;
  readonly #log: Logger;
  #announced = 0;
  /** When the measured weight last changed (performance.now()). */
  #changedAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(ifName: string, mode: WeightMode, log: Logger) {
    this.source = new WeightSource(ifName, mode);
    this.#log = log;
  }

  /** The weight to announce: re-read each sample, changed only past the hysteresis (or when set by hand). */
  current(force: boolean): number {
    let weight: number;
    try {
      weight = this.source.read();
    } catch (err) {
      this.#log.warn({ event: 'weight-read-failed' }, (err as Error).message);
      // Unreadable from the start: an idle node's weight, neither more nor less than its share.
      return this.#announced || IDLE_WEIGHT;
    }
    const last = this.#announced;
    const next = weightToAnnounce(last, weight, this.source.mode, force);
    if (next !== last) {
      if (last !== 0) this.#log.info({ event: 'weight', from: last, to: next, mode: this.source.mode }, `weight ${last} → ${next}`);
      this.#announced = next;
    }
    return this.#announced;
  }

  /** `lnlbctl weight_mode`: the new mode, and the weight it gives now. */
  setMode(text: string): { mode: WeightMode; weight: number } {
    this.source.setMode(text);
    return { mode: this.source.mode, weight: this.current(true) };
  }

  /** `lnlbctl set_weight`: a capacity, fixed mode only (LNLB's rule for its manual mode). */
  setManual(text: string): number {
    this.#announced = this.source.setManual(text);
    return this.#announced;
  }

  /**
   * Reads the weight every weightSampleMs(mode) or heartbeat, whichever is longer (reading
   * /proc may block a little, so here, not on the control thread; the mode may change between
   * two reads), and hands it over through `announce` when it moves, while `mayAnnounce` (a
   * draining node announces DRAINING_WEIGHT, a node out of the cluster nothing).
   */
  start(heartbeatMs: number, mayAnnounce: () => boolean, announce: (weight: number) => void): void {
    const sample = (): void => {
      this.#timer = setTimeout(sample, Math.max(heartbeatMs, weightSampleMs(this.source.mode)));
      this.#timer.unref();
      if (!mayAnnounce()) return;
      if (performance.now() - this.#changedAt < WEIGHT_MIN_INTERVAL_HEARTBEATS * heartbeatMs) return;
      const before = this.#announced;
      const weight = this.current(false);
      if (weight !== before) {
        this.#changedAt = performance.now();
        announce(weight);
      }
    };
    this.#timer = setTimeout(sample, Math.max(heartbeatMs, weightSampleMs(this.source.mode)));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}
