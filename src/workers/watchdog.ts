/**
 * The actor watchdog's decision, pure (time passed in): is a datapath thread stuck in handler
 * code? Heartbeats go on in the control-plane thread whatever the datapath does, so a handler
 * that never returns would black-hole its thread's share of the clients for good while the
 * node still counts as alive. Each datapath thread publishes, in its counter row:
 *
 * - `beat`: incremented each batch (an actor at least once a second even when idle, the
 *   dispatcher every poll);
 * - `call`: which handler and method it is in while it runs handler code (handlerCall()),
 *   0 outside.
 *
 * The main thread looks every interval. A thread whose beat has not moved for `limitMs` while
 * it had work (frames in its ring) or was inside handler code is stuck. A look that comes more
 * than half the limit after the previous one (this thread stalled, the host was paused)
 * judges nothing: the stall could be the observer's.
 */

/** Handler methods, as `call` records them (never 0: 0 is "not in handler code"). */
export const HandlerMethod = {
  isRelated: 1,
  assigned: 2,
  expire: 3,
  nodeDied: 4,
  clear: 5,
  saveStatus: 6,
  loadStatus: 7,
  counters: 8,
  affinityKey: 9,
  /** The tracker's size and evictions getters. */
  size: 10,
} as const;
export type HandlerMethodName = keyof typeof HandlerMethod;

const METHOD_SLOTS = 16;

/** The value a thread stores while it calls `method` of handler `handlerIndex`. */
export function handlerCall(handlerIndex: number, method: number): number {
  return handlerIndex * METHOD_SLOTS + method;
}

export function describeHandlerCall(call: number): { handlerIndex: number; method: string } | undefined {
  if (!Number.isInteger(call) || call <= 0) return undefined;
  const code = call % METHOD_SLOTS;
  const method = (Object.keys(HandlerMethod) as HandlerMethodName[]).find((name) => HandlerMethod[name] === code) ?? `method ${code}`;
  return { handlerIndex: Math.floor(call / METHOD_SLOTS), method };
}

/**
 * The limit: as long as the cluster already lets a silent node black-hole its clients before
 * declaring it dead (--dead-after-ms), so a stuck handler costs clients no more than a dead
 * node; never under 2 s, far above a GC pause of an actor (they allocate nothing per frame)
 * and above an idle actor's 1 s wake-up.
 */
export function watchdogLimitMs(deadAfterMs: number): number {
  return Math.max(2000, deadAfterMs);
}

/**
 * The limit inside a handler's bulk state methods (loadStatus, saveStatus, clear): a whole
 * tracking state, loaded by a newcomer (which serves nobody until it is in), saved for one, or
 * cleared by a node that reset itself, legitimately takes far longer than one frame's call on a
 * loaded host. Measured: 8 newcomers joining 56 daemons on 2 cores at once, two of them spent
 * over 2 s in loadStatus for 10,000 flows (39 ms on an idle host) and, found stuck, left the
 * cluster for good; 64 daemons starting at once, nodes that reset themselves (starved past
 * --dead-after-ms) spent over 2 s in clear and left the same way, and the 64 never agreed (2
 * full scale runs of 5). Ten limits, never under 30 s: a handler truly hung there is still found.
 */
export function bulkLimitMs(limitMs: number): number {
  return Math.max(30_000, 10 * limitMs);
}

const BULK_METHODS: ReadonlySet<number> = new Set([HandlerMethod.loadStatus, HandlerMethod.saveStatus, HandlerMethod.clear]);

/**
 * How often to look: detection takes at most a quarter more than the limit (half a second at
 * the 2 s floor), and a look stays well inside the half limit after which it judges nothing.
 * Each look wakes the main thread of an idle daemon: at an eighth (250 ms) the looks were four
 * of its five wake-ups a second.
 */
export function watchdogIntervalMs(limitMs: number): number {
  return Math.max(50, Math.min(500, Math.floor(limitMs / 4)));
}

/** One datapath thread as the main thread reads it. */
export interface ThreadProgress {
  beat: number;
  /** handlerCall() while in handler code, else 0. */
  call: number;
  /** Bytes waiting in its input ring (0 when it has none or it is not known). */
  queuedBytes: number;
}

export interface StuckThread {
  /** Index in the progress array. */
  thread: number;
  /** What it was in when found stuck (0: not in handler code, its ring just did not move). */
  call: number;
  /** How long it has made no progress, as seen by the watchdog. */
  stalledMs: number;
}

export class Watchdog {
  readonly limitMs: number;
  /** In a bulk state method (bulkLimitMs). */
  readonly bulkLimitMs: number;
  #lastLookAt = Number.NaN;
  readonly #beats: number[] = [];
  /** When the thread was first seen stalled with work (NaN: not stalled). */
  readonly #stalledSince: number[] = [];
  readonly #reported: boolean[] = [];

  constructor(limitMs: number) {
    this.limitMs = limitMs;
    this.bulkLimitMs = bulkLimitMs(limitMs);
  }

  /** One look at every thread at `nowMs` (monotonic); returns the threads found stuck now, each once. */
  look(nowMs: number, threads: readonly ThreadProgress[]): StuckThread[] {
    const previous = this.#lastLookAt;
    const gap = nowMs - previous;
    this.#lastLookAt = nowMs;
    const judge = gap <= this.limitMs / 2;
    const stuck: StuckThread[] = [];
    threads.forEach((p, i) => {
      if (!judge || p.beat !== this.#beats[i]) {
        this.#beats[i] = p.beat;
        this.#stalledSince[i] = Number.NaN;
        return;
      }
      if (p.call === 0 && p.queuedBytes <= 0) {
        this.#stalledSince[i] = Number.NaN; // idle: waiting for work is no stall
        return;
      }
      if (Number.isNaN(this.#stalledSince[i] ?? Number.NaN)) {
        // The beat was already this at the previous look: no progress since then at least.
        this.#stalledSince[i] = previous;
      }
      const stalledSince = this.#stalledSince[i]!;
      const limit = BULK_METHODS.has(p.call % METHOD_SLOTS) ? this.bulkLimitMs : this.limitMs;
      if (nowMs - stalledSince >= limit && this.#reported[i] !== true) {
        this.#reported[i] = true;
        stuck.push({ thread: i, call: p.call, stalledMs: nowMs - stalledSince });
      }
    });
    return stuck;
  }
}
