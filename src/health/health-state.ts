/**
 * The fall/rise state machine of the health checks (keepalived's checkers, HAProxy's
 * `fall`/`rise`): results and the time in, transitions out. Pure: no timer, no I/O; the
 * monitor (src/main/health-monitor.ts) runs the checks and feeds their outcomes here.
 *
 * Each check has its own machine:
 *
 *   UNKNOWN ──ok──▶ HEALTHY ──fall failures in a row──▶ UNHEALTHY ──rise successes in a row──▶ HEALTHY
 *      └──────fail──────────────────────────────────────▲
 *
 * The first result decides (a node started with its service down leaves at once rather than
 * after `fall` intervals; one started with it up serves at once). The node is UNHEALTHY while
 * any check is, HEALTHY when every check is, UNKNOWN before every check has answered once.
 */

export type HealthState = 'unknown' | 'healthy' | 'unhealthy';

/** What one run of one check found. */
export interface CheckOutcome {
  ok: boolean;
  /** For the operator: `200 in 3 ms`, `connect ECONNREFUSED`, `exit 1: no database`, `timeout after 1000 ms`. */
  detail: string;
  /** How long the check took. */
  ms: number;
}

export interface FallRise {
  /** Failures in a row that make a healthy check unhealthy. */
  fall: number;
  /** Successes in a row that make an unhealthy check healthy. */
  rise: number;
}

/** One check's figures, as `lnlbctl status --json` shows them. */
export interface HealthCheckStatusJson {
  /** The check as given, normalised: `http://10.0.0.100:80/healthz`, `tcp://127.0.0.1:5432`, `exec:...`, `function:name`. */
  check: string;
  state: HealthState;
  successesInARow: number;
  failuresInARow: number;
  /** Runs since the start, failed ones among them, and state changes. */
  run: number;
  failed: number;
  transitions: number;
  /** The last run (absent before the first has finished); agoMs since it finished. */
  last?: { ok: boolean; detail: string; ms: number; agoMs: number };
}

/** A change of the node's overall state. */
export interface HealthTransition {
  from: HealthState;
  to: HealthState;
  at: number;
  /** The checks that are unhealthy now (empty when the node turned healthy). */
  failing: { check: string; detail: string }[];
}

interface Track {
  readonly label: string;
  state: HealthState;
  successes: number;
  failures: number;
  run: number;
  failed: number;
  transitions: number;
  last: (CheckOutcome & { at: number }) | undefined;
}

export class HealthTracker {
  readonly #tracks: Track[];
  readonly #fallRise: FallRise;
  #state: HealthState = 'unknown';
  #since: number;
  #transitions = 0;

  constructor(labels: readonly string[], fallRise: FallRise, now: number) {
    if (!(fallRise.fall >= 1 && fallRise.rise >= 1)) throw new RangeError(`fall and rise must be at least 1, got ${fallRise.fall}/${fallRise.rise}`);
    this.#fallRise = fallRise;
    this.#tracks = labels.map((label) => ({ label, state: 'unknown', successes: 0, failures: 0, run: 0, failed: 0, transitions: 0, last: undefined }));
    this.#since = now;
  }

  /** The node's state: unhealthy if any check is, healthy if all are, else unknown. */
  get state(): HealthState {
    return this.#state;
  }

  /** When the node's state last changed (or the tracker was made). */
  get since(): number {
    return this.#since;
  }

  /** Node-level transitions so far. */
  get transitions(): number {
    return this.#transitions;
  }

  /** One outcome of check `index` at `now`; the node's transition when this changed it. */
  record(index: number, outcome: CheckOutcome, now: number): HealthTransition | undefined {
    const t = this.#tracks[index];
    if (t === undefined) throw new RangeError(`no check ${index}`);
    t.run++;
    t.last = { ...outcome, at: now };
    if (outcome.ok) {
      t.successes++;
      t.failures = 0;
    } else {
      t.failed++;
      t.failures++;
      t.successes = 0;
    }
    const next = nextCheckState(t.state, t.successes, t.failures, this.#fallRise);
    if (next !== t.state) {
      t.state = next;
      t.transitions++;
    }
    const overall = this.#tracks.some((x) => x.state === 'unhealthy') ? 'unhealthy' : this.#tracks.every((x) => x.state === 'healthy') ? 'healthy' : 'unknown';
    if (overall === this.#state) return undefined;
    const from = this.#state;
    this.#state = overall;
    this.#since = now;
    this.#transitions++;
    return { from, to: overall, at: now, failing: this.#tracks.filter((x) => x.state === 'unhealthy').map((x) => ({ check: x.label, detail: x.last?.detail ?? '' })) };
  }

  /** Every check's figures at `now`. */
  checks(now: number): HealthCheckStatusJson[] {
    return this.#tracks.map((t) => ({
      check: t.label,
      state: t.state,
      successesInARow: t.successes,
      failuresInARow: t.failures,
      run: t.run,
      failed: t.failed,
      transitions: t.transitions,
      ...(t.last === undefined ? {} : { last: { ok: t.last.ok, detail: t.last.detail, ms: Math.round(t.last.ms), agoMs: Math.max(0, Math.round(now - t.last.at)) } }),
    }));
  }
}

/** One check's next state after a result, given its current run of successes or failures. */
export function nextCheckState(state: HealthState, successes: number, failures: number, { fall, rise }: FallRise): HealthState {
  switch (state) {
    case 'unknown':
      // The first result decides: nothing is known to be served yet, so nothing to protect.
      return successes > 0 ? 'healthy' : 'unhealthy';
    case 'healthy':
      return failures >= fall ? 'unhealthy' : 'healthy';
    case 'unhealthy':
      return successes >= rise ? 'healthy' : 'unhealthy';
  }
}

/**
 * When rounds of checks run: every `intervalMs` from the start of the previous round, never
 * two at once (a round lasts at most the timeout, which is at most the interval).
 */
export class HealthSchedule {
  readonly #intervalMs: number;
  #nextAt: number;
  #running = false;

  constructor(intervalMs: number, firstAt: number) {
    this.#intervalMs = intervalMs;
    this.#nextAt = firstAt;
  }

  get nextAt(): number {
    return this.#nextAt;
  }

  /** True when a round should start now (and marks it started). */
  begin(now: number): boolean {
    if (this.#running || now < this.#nextAt) return false;
    this.#running = true;
    // From the planned time, not from now: late timers do not make the checks drift; a round
    // that starts more than an interval late starts the count again from now.
    this.#nextAt = now - this.#nextAt >= this.#intervalMs ? now + this.#intervalMs : this.#nextAt + this.#intervalMs;
    return true;
  }

  /** The round has finished; the next one is due at `nextAt`. */
  end(): void {
    this.#running = false;
  }
}
