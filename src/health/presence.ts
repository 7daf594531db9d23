/**
 * Whether a node takes part in the cluster given its health (pure: the health state, the view
 * and the time in, an action out). An unhealthy node leaves as `lnlbctl stop` does, so the
 * others take every client it served at once; a healthy one comes back as a newcomer.
 *
 * Every node unhealthy: users would rather be served by a node whose check fails than by none
 * (a shared database down fails every web node's check at once). So a node does not leave
 * when it is the only member left in its view: it stays, serving, and says so (last resort).
 * Two such nodes must not both leave at the same moment, each seeing the other still there:
 *
 * - a node that turns unhealthy leaves at once, unless it has the highest MAC of its view:
 *   that one waits `staggerMs` and looks at the view again then. If every other member was
 *   unhealthy too, they have left (a LEAVE is applied on receipt) and it finds itself alone:
 *   it stays. Only one node in the cluster pays the wait, and only once;
 * - a last-resort node leaves only once another member has stayed in its view for `confirmMs`
 *   (longer than a newcomer takes to run its first check and leave if it fails it too).
 *
 * A node that left cannot see the cluster any more (membership ignores frames until it
 * rejoins): if the last resort then goes away too, the node that left stays out until its own
 * checks pass. docs/health.md says so.
 */

import type { HealthState } from './health-state.js';

/** Between two nodes turning unhealthy at the same moment: ample for a LEAVE to cross a LAN and be applied. */
export const DEFAULT_LEAVE_STAGGER_MS = 50;

/** The view as this node sees it: its own MAC and the members' (itself included, joining ones not). */
export interface PresenceView {
  self: string;
  members: readonly string[];
  /** The view is settled and this node takes its share (not listening, converging or held). */
  settled: boolean;
}

/** in: taking part; out: left for its health; last-resort: unhealthy but the only member, still serving. */
export type HealthServing = 'in' | 'out' | 'last-resort';

export type PresenceAction =
  /** Leave the cluster (LEAVE): `why` unhealthy, or a member appeared beside a last resort. */
  | { kind: 'leave'; why: 'unhealthy' | 'member-appeared'; others: number }
  /** Join again as a newcomer: the checks pass. */
  | { kind: 'rejoin' }
  /** Unhealthy, but no other member: stay, serving. */
  | { kind: 'last-resort' }
  /** Nothing yet; decide again at `at` (or at the next round, whichever is first). */
  | { kind: 'wait'; at: number };

export class HealthPresence {
  readonly #staggerMs: number;
  readonly #confirmMs: number;
  #serving: HealthServing = 'in';
  #unhealthySince = Number.NaN;
  /** Last resort: since when another member has been in the view without a break. */
  #othersSince = Number.NaN;

  constructor(options: { staggerMs: number; confirmMs: number }) {
    this.#staggerMs = options.staggerMs;
    this.#confirmMs = options.confirmMs;
  }

  get serving(): HealthServing {
    return this.#serving;
  }

  /**
   * `view` undefined: the control plane did not answer. `operatorOut`: the operator stopped
   * (or drained, or the watchdog failed) this node: it is out anyway, and an unhealthy one is
   * marked out so that a later `start` does not bring it back before its checks pass.
   */
  update(health: HealthState, view: PresenceView | undefined, operatorOut: boolean, now: number): PresenceAction | undefined {
    if (health !== 'unhealthy') {
      this.#unhealthySince = Number.NaN;
      this.#othersSince = Number.NaN;
      const wasOut = this.#serving === 'out';
      this.#serving = 'in';
      return wasOut ? { kind: 'rejoin' } : undefined;
    }
    if (Number.isNaN(this.#unhealthySince)) this.#unhealthySince = now;
    if (this.#serving === 'out') return undefined;
    if (operatorOut) return this.#leave('unhealthy', 0);
    if (view === undefined) return undefined;
    const others = view.members.filter((m) => m !== view.self);
    if (others.length === 0) {
      this.#othersSince = Number.NaN;
      // Alone in a view not yet settled (just started or rejoined, others not heard yet): wait.
      if (!view.settled || this.#serving === 'last-resort') return undefined;
      this.#serving = 'last-resort';
      return { kind: 'last-resort' };
    }
    if (this.#serving === 'last-resort') {
      if (Number.isNaN(this.#othersSince)) this.#othersSince = now;
      const at = this.#othersSince + this.#confirmMs;
      return now >= at ? this.#leave('member-appeared', others.length) : { kind: 'wait', at };
    }
    const highest = others.every((m) => m < view.self);
    const at = highest ? this.#unhealthySince + this.#staggerMs : this.#unhealthySince;
    return now >= at ? this.#leave('unhealthy', others.length) : { kind: 'wait', at };
  }

  #leave(why: 'unhealthy' | 'member-appeared', others: number): PresenceAction {
    this.#serving = 'out';
    this.#othersSince = Number.NaN;
    return { kind: 'leave', why, others };
  }
}
