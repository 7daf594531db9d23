/**
 * Whether this node takes part in its cluster, and the one word that says so: the operator's
 * stop, start, suspend, resume and drain (Windows NLB's operations), the health checks taking
 * the node out and letting it back, the watchdog's failure, and the interface stopping. Each
 * of these keeps the node out on its own: a recovery does not undo a stop, a start does not
 * undo an unhealthy check, nothing undoes a failure.
 *
 * The state word (`interfaceState`) is pure: the flags in, the word out; the status header,
 * this node's row and the `state` events all take it from here.
 */

import { lnlbError } from '../errors.js';
import { DRAINING_WEIGHT } from '../cluster/election.js';
import type { StuckReport } from '../workers/datapath.js';
import type { HeldReason, MainToControl } from '../workers/messages.js';
import type { DrainResult, InterfaceState } from './admin-protocol.js';
import { DEFAULT_DRAIN_IDLE_SECONDS, type DrainOptions } from './drain.js';
import type { Logger } from './logger.js';

/** The operator's wish: taking part, draining (no new flows), or stopped (LEAVE sent). */
export type OperatorMode = 'running' | 'draining' | 'stopped';

/** Everything that decides whether the node takes part. */
export interface ParticipationFlags {
  /** The interface is being torn down (stop()). */
  readonly stopped: boolean;
  /** Set by the watchdog (`handler X stuck in actor k`): out of the cluster until lnlbd restarts. */
  readonly failed: string | undefined;
  readonly mode: OperatorMode;
  /** `lnlbctl suspend`: stopped, and `start` refused until `resume`. */
  readonly suspended: boolean;
  /** --health-check: the checks took the node out (LEAVE sent for them). */
  readonly healthOut: boolean;
}

/** The interface's state; `settled`: the membership converged and no view change is pending. Pure. */
export function interfaceState(f: ParticipationFlags, settled: boolean): InterfaceState {
  if (f.stopped) return 'stopping';
  if (f.failed !== undefined) return 'failed';
  if (f.mode === 'stopped') return f.suspended ? 'suspended' : 'stopped';
  if (f.healthOut) return 'unhealthy';
  if (f.mode === 'draining') return 'draining';
  return settled ? 'converged' : 'converging';
}

/** The state `status` shows, from what the control plane says (undefined: it did not answer): `held` while it holds a running node. Pure. */
export function shownState(f: ParticipationFlags, plane: { accepting: boolean; changePending: boolean; heldBy: HeldReason | undefined } | undefined): InterfaceState {
  if (plane?.heldBy !== undefined && f.mode === 'running' && !f.stopped) return 'held';
  return interfaceState(f, plane?.accepting === true && plane.changePending !== true);
}

/** The state a mode change announces (the `state` event). Pure. */
export function modeChangeState(f: ParticipationFlags): InterfaceState {
  if (f.mode === 'stopped' && f.suspended) return 'suspended';
  if (f.healthOut && f.mode !== 'stopped') return 'unhealthy';
  return f.mode === 'running' ? 'converging' : f.mode;
}

/** How often a drain counts this node's active flows. */
const DRAIN_POLL_MS = 500;

/** What participation acts on. */
export interface ParticipationPorts {
  /** A message to the control plane (leave, rejoin, weight). */
  post(message: MainToControl): void;
  /** The weight to announce; `force`: read now, as it is. */
  weight(force: boolean): number;
  /** The interface's state changed. */
  emitState(state: InterfaceState): void;
  /** Flows this node owns seen within the last `idleSeconds` (+Infinity: not known). */
  activeOwnedFlows(idleSeconds: number): Promise<number>;
}

export class Participation implements ParticipationFlags {
  readonly #name: string;
  readonly #ports: ParticipationPorts;
  readonly #log: Logger;
  #mode: OperatorMode = 'running';
  #suspended = false;
  #failed: string | undefined;
  #healthOut = false;
  #stopped = false;
  /** The drain in progress: bumped to cancel it (start, stop, suspend). */
  #drainGeneration = 0;
  #drainStartedAt = 0;

  /** `name`: the interface's, for the messages that tell the operator what to do. */
  constructor(name: string, ports: ParticipationPorts, log: Logger) {
    this.#name = name;
    this.#ports = ports;
    this.#log = log;
  }

  get mode(): OperatorMode {
    return this.#mode;
  }
  get suspended(): boolean {
    return this.#suspended;
  }
  get failed(): string | undefined {
    return this.#failed;
  }
  get healthOut(): boolean {
    return this.#healthOut;
  }
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The node announces its measured weight: running and not out for its health (a drain announces DRAINING_WEIGHT, a node out nothing). */
  get announcesWeight(): boolean {
    return this.#mode === 'running' && !this.#healthOut;
  }

  /** Kept out by the operator, a failure or the interface stopping (the health checks do not bring it back). */
  get operatorOut(): boolean {
    return this.#mode === 'stopped' || this.#failed !== undefined || this.#stopped;
  }

  state(settled: boolean): InterfaceState {
    return interfaceState(this, settled);
  }

  #setMode(mode: OperatorMode): void {
    this.#mode = mode;
    this.#ports.emitState(modeChangeState(this));
  }

  /** The interface stops: a drain in progress ends, every later transition is moot. */
  beginStop(): void {
    this.#stopped = true;
    this.#drainGeneration++;
    this.#ports.emitState('stopping');
  }

  /**
   * The watchdog found a datapath thread stuck (a handler that does not return) and terminated
   * it. Its share of the clients would be black-holed while heartbeats go on, so the node
   * leaves as `lnlbctl stop` does (the others take every client at once) and stays out: the
   * thread cannot be resumed, only a restart brings the interface back.
   */
  fail(report: StuckReport): void {
    if (this.#stopped || this.#failed !== undefined) return;
    const h = report.handler;
    this.#failed = h === undefined ? `${report.thread} stopped taking frames` : `handler ${h.name} stuck in ${report.thread}`;
    this.#drainGeneration++;
    if (this.#mode !== 'stopped' && !this.#healthOut) this.#ports.post({ type: 'leave' });
    this.#mode = 'stopped';
    this.#log.error(
      { event: 'handler-stuck', handler: h?.name ?? null, protocol: h?.protocol ?? null, method: h?.method ?? null, thread: report.thread, stalledMs: report.stalledMs },
      `${h === undefined ? `${report.thread} made no progress with frames waiting` : `handler ${h.name} (protocol ${h.protocol}) stuck in ${report.thread}: ${h.method} has not returned`} for ${report.stalledMs} ms; this node left the cluster (LEAVE sent: the other nodes take its clients) and stays out, the thread was stopped; fix the handler, then restart lnlbd`,
    );
    this.#ports.emitState('failed');
  }

  /** The health checks take the node out (LEAVE) or let it back (rejoin), unless the operator keeps it out. */
  setHealthOut(out: boolean): void {
    if (out === this.#healthOut || this.#stopped) return;
    this.#healthOut = out;
    const operatorOut = this.#mode === 'stopped' || this.#failed !== undefined;
    if (!operatorOut) {
      if (out) {
        this.#ports.post({ type: 'leave' });
      } else {
        // A draining node keeps announcing DRAINING_WEIGHT (the control plane holds it).
        if (this.#mode === 'running') this.#ports.post({ type: 'weight', weight: this.#ports.weight(true) });
        this.#ports.post({ type: 'rejoin' });
      }
    }
    this.#ports.emitState(this.state(false));
  }

  /** `lnlbctl stop`: LEAVE now; the others take every client, connections to this node break. */
  stop(): { state: InterfaceState } {
    this.#drainGeneration++;
    if (this.#failed !== undefined) return { state: 'failed' }; // out already, LEAVE sent
    if (this.#mode !== 'stopped') {
      if (!this.#healthOut) this.#ports.post({ type: 'leave' }); // else out already, LEAVE sent
      this.#setMode('stopped');
    }
    return { state: this.#suspended ? 'suspended' : 'stopped' };
  }

  /** `lnlbctl start`: join again after a stop; ends a drain (new flows come back). */
  start(): { state: InterfaceState } {
    if (this.#failed !== undefined) {
      throw lnlbError('LNLB_ERR_HANDLER_STUCK', `${this.#name} failed: ${this.#failed}; it cannot serve again as it is: fix the handler, then restart lnlbd (or lnlbctl delif and addif ${this.#name})`);
    }
    if (this.#suspended) throw lnlbError('LNLB_ERR_CTL_SUSPENDED', `${this.#name} is suspended: lnlbctl resume ${this.#name} first, then start`);
    this.#drainGeneration++;
    if (this.#mode === 'stopped') {
      this.#ports.post({ type: 'weight', weight: this.#ports.weight(true) });
      // Unhealthy: it stays out, and joins once its checks pass.
      if (!this.#healthOut) this.#ports.post({ type: 'rejoin' });
    } else if (this.#mode === 'draining') {
      this.#ports.post({ type: 'weight', weight: this.#ports.weight(true) });
    }
    this.#setMode('running');
    return { state: this.#healthOut ? 'unhealthy' : 'converging' };
  }

  /** `lnlbctl suspend`: stop, and refuse `start` until `resume` (Windows NLB's suspend). */
  suspend(): { state: InterfaceState } {
    this.#suspended = true;
    if (this.#mode === 'stopped') this.#setMode('stopped');
    return this.stop();
  }

  /** `lnlbctl resume`: `start` is allowed again; as in Windows NLB, the node stays stopped until it. */
  resume(): { state: InterfaceState } {
    this.#suspended = false;
    this.#setMode(this.#mode);
    if (this.#failed !== undefined) return { state: 'failed' };
    return { state: this.#mode === 'stopped' ? 'stopped' : this.#healthOut ? 'unhealthy' : this.#mode === 'draining' ? 'draining' : 'converged' };
  }

  /**
   * `lnlbctl drainstop`: no new flows (the node announces DRAINING_WEIGHT, so every node's
   * election leaves it out, while the flows it tracks stay with it), then, once none of them
   * has been seen for `idleSeconds` (a closed TCP connection counts at once) or the timeout
   * passes, a stop. Resolves when stopped, or when a start or stop ends the drain first.
   */
  async drainstop(options: DrainOptions = {}): Promise<DrainResult> {
    if (this.#mode === 'stopped') return { state: this.#suspended ? 'suspended' : 'stopped', drained: true, remainingFlows: 0, ms: 0 };
    const idle = options.idleSeconds ?? DEFAULT_DRAIN_IDLE_SECONDS;
    const generation = ++this.#drainGeneration;
    if (this.#mode !== 'draining') {
      this.#drainStartedAt = performance.now();
      this.#ports.post({ type: 'weight', weight: DRAINING_WEIGHT });
      this.#setMode('draining');
      this.#log.info({ event: 'drain', idleSeconds: idle, timeoutSeconds: options.timeoutSeconds ?? null }, `draining: no new clients; stopping when this node's last flow has been quiet ${idle} s${options.timeoutSeconds === undefined ? '' : ` or after ${options.timeoutSeconds} s`}`);
    }
    const started = this.#drainStartedAt;
    const deadline = options.timeoutSeconds === undefined ? Number.POSITIVE_INFINITY : performance.now() + options.timeoutSeconds * 1000;
    let remaining = await this.#ports.activeOwnedFlows(idle);
    while (remaining > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      if (generation !== this.#drainGeneration || this.#stopped) {
        return { state: this.#mode === 'running' ? 'converged' : this.#mode, drained: false, remainingFlows: remaining, ms: Math.round(performance.now() - started), cancelled: true };
      }
      remaining = await this.#ports.activeOwnedFlows(idle);
    }
    const ms = Math.round(performance.now() - started);
    this.#log.info({ event: 'drained', remainingFlows: remaining, ms }, remaining === 0 ? `drained in ${ms} ms: stopping` : `drain timeout after ${ms} ms with ${remaining} flow(s) still active: stopping`);
    this.stop();
    return { state: 'stopped', drained: remaining === 0, remainingFlows: remaining, ms };
  }

  /** drainstop without waiting (`lnlbctl drainstop --no-wait`): a failure goes to the log, nobody awaits it. */
  drainInBackground(options: DrainOptions = {}): void {
    this.drainstop(options).catch((err: unknown) => this.#log.error({ event: 'drain-failed', err }, `drainstop: ${err instanceof Error ? err.message : String(err)}`));
  }
}
