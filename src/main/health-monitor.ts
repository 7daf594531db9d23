/**
 * The daemon side of the health checks (`--health-check`): runs the checks every
 * `--health-interval-ms`, feeds the fall/rise machine (src/health/health-state.ts), asks the
 * presence rule (src/health/presence.ts) whether the node stays, and tells its cluster
 * interface to leave or rejoin through a small host interface, so that this module does not
 * depend on how the interface is built. One log line and one `health` event per transition.
 *
 *   timer ─▶ runCheck × N (each ≤ timeout) ─▶ HealthTracker.record ─▶ HealthPresence.update(view)
 *                                                                          │ leave / rejoin
 *                                                                          ▼
 *                                                               HealthHost.setHealthOut
 */

import { runCheck } from '../health/checkers.js';
import type { HealthCheckSpec } from '../health/check-spec.js';
import { HealthSchedule, HealthTracker, type HealthCheckStatusJson, type HealthState, type HealthTransition } from '../health/health-state.js';
import { DEFAULT_LEAVE_STAGGER_MS, HealthPresence, type HealthServing, type PresenceAction, type PresenceView } from '../health/presence.js';
import type { Logger } from './logger.js';
import type { ControlStatus } from '../workers/messages.js';
import type { DaemonOptions } from './options.js';

export interface HealthTiming {
  intervalMs: number;
  timeoutMs: number;
  fall: number;
  rise: number;
}

/** What the monitor needs of its cluster interface. */
export interface HealthHost {
  /** This node's view; undefined when the control plane does not answer. */
  view(): Promise<PresenceView | undefined>;
  /**
   * true: leave (LEAVE) unless already out for another reason; false: rejoin as a newcomer
   * unless the operator keeps the node out (stop, suspend, a failed handler).
   */
  setHealthOut(out: boolean): void;
  /** The operator (stop, drain, suspend) or the watchdog has taken the node out. */
  operatorOut(): boolean;
}

/** `lnlbctl status` (`health` of an interface). */
export interface HealthStatusJson {
  state: HealthState;
  /** Since the node's health last changed. */
  sinceMs: number;
  /** in: taking part; out: left because unhealthy; last-resort: unhealthy, the only member left, still serving. */
  serving: HealthServing;
  intervalMs: number;
  timeoutMs: number;
  fall: number;
  rise: number;
  /** Node-level transitions (unknown → healthy counts). */
  transitions: number;
  checks: HealthCheckStatusJson[];
}

/** The `health` event of an interface (and of an embedded node): a transition, or a change of what the node does about it. */
export interface HealthEvent {
  state: HealthState;
  /** The state before (equal to `state` when only `serving` changed). */
  from: HealthState;
  serving: HealthServing;
  /** What happened: a transition, or leaving/staying because of the view. */
  action: 'left' | 'rejoined' | 'last-resort' | 'none';
  checks: HealthCheckStatusJson[];
}

export class HealthMonitor {
  readonly #specs: readonly HealthCheckSpec[];
  readonly #timing: HealthTiming;
  readonly #host: HealthHost;
  readonly #log: Logger;
  readonly #emit: (event: HealthEvent) => void;
  readonly #tracker: HealthTracker;
  readonly #presence: HealthPresence;
  readonly #schedule: HealthSchedule;
  #timer: NodeJS.Timeout | undefined;
  #waitTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Evaluations run one after another (a round's and a staggered leave's). */
  #evaluating: Promise<void> = Promise.resolve();
  /** A transition not yet said: said with the decision it leads to (after a stagger). */
  #pending: HealthTransition | undefined;

  constructor(specs: readonly HealthCheckSpec[], timing: HealthTiming, host: HealthHost, log: Logger, emit: (event: HealthEvent) => void) {
    this.#specs = specs;
    this.#timing = timing;
    this.#host = host;
    this.#log = log;
    this.#emit = emit;
    const now = performance.now();
    this.#tracker = new HealthTracker(specs.map((s) => s.label), timing, now);
    this.#presence = new HealthPresence({ staggerMs: DEFAULT_LEAVE_STAGGER_MS, confirmMs: 2 * timing.intervalMs + timing.timeoutMs });
    this.#schedule = new HealthSchedule(timing.intervalMs, now);
  }

  get state(): HealthState {
    return this.#tracker.state;
  }

  /** The first round now, then one every interval. */
  start(): void {
    this.#log.info(
      { event: 'health-checks', checks: this.#specs.map((s) => s.label), ...this.#timing },
      `health checks: ${this.#specs.map((s) => s.label).join(', ')} every ${this.#timing.intervalMs} ms (timeout ${this.#timing.timeoutMs} ms, unhealthy after ${this.#timing.fall} failures in a row, healthy after ${this.#timing.rise} successes)`,
    );
    this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#waitTimer);
  }

  status(): HealthStatusJson {
    const now = performance.now();
    return {
      state: this.#tracker.state,
      sinceMs: Math.round(now - this.#tracker.since),
      serving: this.#presence.serving,
      intervalMs: this.#timing.intervalMs,
      timeoutMs: this.#timing.timeoutMs,
      fall: this.#timing.fall,
      rise: this.#timing.rise,
      transitions: this.#tracker.transitions,
      checks: this.#tracker.checks(now),
    };
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = performance.now();
    if (this.#schedule.begin(now)) {
      this.#round()
        .catch((err: unknown) => this.#log.error({ event: 'health-error', err }, `health checks: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => {
          this.#schedule.end();
          this.#tick();
        });
      return;
    }
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, this.#schedule.nextAt - now));
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    const outcomes = await Promise.all(this.#specs.map((spec) => runCheck(spec, this.#timing.timeoutMs)));
    if (this.#stopped) return;
    const now = performance.now();
    outcomes.forEach((outcome, i) => {
      const transition = this.#tracker.record(i, outcome, now);
      if (transition !== undefined) this.#pending = transition;
    });
    await this.#evaluate();
  }

  /** Asks the presence rule, applies its answer, says what changed. Serialised. */
  #evaluate(): Promise<void> {
    this.#evaluating = this.#evaluating.then(async () => {
      if (this.#stopped) return;
      const operatorOut = this.#host.operatorOut();
      const needsView = this.#tracker.state === 'unhealthy' && this.#presence.serving !== 'out' && !operatorOut;
      const view = needsView ? await this.#host.view() : undefined;
      if (this.#stopped) return;
      const action = this.#presence.update(this.#tracker.state, view, operatorOut, performance.now());
      this.#apply(action, operatorOut);
    });
    // One failed evaluation must not stop the later ones (a rejected link would skip them all).
    this.#evaluating = this.#evaluating.catch((err: unknown) => this.#log.error({ event: 'health-error', err }, `health decision: ${err instanceof Error ? err.message : String(err)}`));
    return this.#evaluating;
  }

  #apply(action: PresenceAction | undefined, operatorOut: boolean): void {
    if (action?.kind === 'wait') {
      clearTimeout(this.#waitTimer);
      this.#waitTimer = setTimeout(() => void this.#evaluate(), Math.max(0, action.at - performance.now()));
      this.#waitTimer.unref();
      return; // a pending transition is said with the decision
    }
    if (action?.kind === 'leave') this.#host.setHealthOut(true);
    else if (action?.kind === 'rejoin') this.#host.setHealthOut(false);
    const transition = this.#pending;
    this.#pending = undefined;
    if (transition === undefined && action === undefined) return;
    this.#say(transition, action, operatorOut);
  }

  #say(transition: HealthTransition | undefined, action: PresenceAction | undefined, operatorOut: boolean): void {
    const state = this.#tracker.state;
    const checks = this.#tracker.checks(performance.now());
    const failing = checks.filter((c) => c.state === 'unhealthy');
    const why = failing.map((c) => `${c.check}: ${c.last?.detail ?? '?'}${c.failuresInARow > 1 ? ` (${c.failuresInARow} failures in a row)` : ''}`).join('; ');
    let what: string;
    switch (action?.kind) {
      case 'leave':
        what = operatorOut
          ? 'the node is out already (stopped by the operator): it stays out until its checks pass, whatever `start` says'
          : action.why === 'unhealthy'
            ? `left the cluster (LEAVE sent: the ${action.others} other member(s) take every client this node served); checking on`
            : `another member has been in the view for a while: left the cluster (LEAVE sent) after serving as the last resort; checking on`;
        break;
      case 'rejoin':
        what = operatorOut ? 'it stays out: the operator stopped it (lnlbctl start brings it back)' : 'joining the cluster again as a newcomer (its state first, then new clients)';
        break;
      case 'last-resort':
        what = 'but the only member left in the view: it stays and serves (last resort: a failing node rather than none), and leaves once another member is there';
        break;
      default:
        what = state === 'unhealthy' && operatorOut ? 'out of the cluster already (stopped by the operator)' : state === 'healthy' ? 'serving' : '';
    }
    const head = transition === undefined ? `health ${state}` : `health ${transition.from} → ${state}`;
    const text = `${head}${why === '' ? '' : ` (${why})`}${what === '' ? '' : `: ${what}`}`;
    const fields = { event: 'health', from: transition?.from ?? state, to: state, serving: this.#presence.serving, action: action?.kind ?? null, failing: failing.map((c) => c.check) };
    if (state === 'unhealthy') this.#log.warn(fields, text);
    else this.#log.info(fields, text);
    const kind = action?.kind === 'leave' ? 'left' : action?.kind === 'rejoin' ? 'rejoined' : action?.kind === 'last-resort' ? 'last-resort' : 'none';
    this.#emit({ state, from: transition?.from ?? state, serving: this.#presence.serving, action: kind, checks });
  }
}

/** The monitor an interface with these options needs; undefined without `--health-check`. */
export function createHealthMonitor(
  o: Pick<DaemonOptions, 'healthCheck' | 'healthIntervalMs' | 'healthTimeoutMs' | 'healthFall' | 'healthRise'>,
  host: HealthHost,
  log: Logger,
  emit: (event: HealthEvent) => void,
): HealthMonitor | undefined {
  if (o.healthCheck.length === 0) return undefined;
  return new HealthMonitor(o.healthCheck, { intervalMs: o.healthIntervalMs, timeoutMs: o.healthTimeoutMs ?? o.healthIntervalMs, fall: o.healthFall, rise: o.healthRise }, host, log, emit);
}

/**
 * The view as the presence rule wants it, from the control plane's status: the members (joining
 * nodes are not), and whether the node takes its share (settled, not held).
 */
export function presenceView(plane: Pick<ControlStatus, 'nodes' | 'accepting' | 'changePending' | 'heldBy'>, ownMac: string): PresenceView {
  return {
    self: plane.nodes.find((n) => n.self)?.mac ?? ownMac,
    members: plane.nodes.filter((n) => n.status !== 'JOINING' && n.status !== 'DEAD').map((n) => n.mac),
    settled: plane.accepting && !plane.changePending && plane.heldBy === undefined,
  };
}
