/**
 * The threads of one cluster interface: the datapath (dispatcher and actors) and the control
 * plane (membership, rounds, state transfer), started in that order; requests to the control
 * thread and their answers; any thread's death reported as fatal; and the order they stop in
 * (LEAVE first, so the others re-home this node's clients while it still tears down).
 */

import { Worker } from 'node:worker_threads';
import { lnlbError, reviveError, serializeError, type LnlbError } from '../errors.js';
import { Datapath, type DatapathOptions } from '../workers/datapath.js';
import { workerExecArgv } from '../workers/exec-argv.js';
import type { ControlData, ControlEvent, ControlStatus, MainToControl } from '../workers/messages.js';

/** How long stop() waits for the control thread's LEAVE before terminating it anyway. */
const CONTROL_STOP_MS = 2000;
/** How long a status request waits for the control thread (then: no answer, status says so). */
const STATUS_TIMEOUT_MS = 2000;
/** How long an owner-table request waits. */
const OWNERS_TIMEOUT_MS = 5000;

/** The answers to a request: each carries the requestId it answers. */
type ControlAnswer = Extract<ControlEvent, { requestId: number }>;

export class ClusterThreads {
  readonly #fatal: (err: LnlbError) => void;
  #datapath: Datapath | undefined;
  #control: Worker | undefined;
  #requests = 0;
  readonly #waiters = new Map<number, (event: ControlAnswer) => void>();
  #stopped = false;

  /** `fatal`: a thread died or failed to start after the interface was up. */
  constructor(fatal: (err: LnlbError) => void) {
    this.#fatal = fatal;
  }

  /** The datapath, once started. */
  get datapath(): Datapath | undefined {
    return this.#datapath;
  }

  /** The dispatcher and actors; a thread's error is fatal. */
  async startDatapath(options: Omit<DatapathOptions, 'onError'>): Promise<Datapath> {
    this.#datapath = await Datapath.start({ ...options, onError: (err) => this.#fatal(err) });
    return this.#datapath;
  }

  /**
   * The control-plane thread, resolved once it is ready (rejected with the error it sent
   * instead); its events go to `onEvent`, the answers to requests to the asker. An error it
   * reports or raises, or an exit before stop(), is fatal.
   */
  async startControl(data: ControlData, onEvent: (event: ControlEvent) => void): Promise<void> {
    const control = new Worker(new URL('../workers/control-thread.js', import.meta.url), { execArgv: workerExecArgv(), workerData: data, name: 'lnlb-control' });
    this.#control = control;
    control.on('message', (event: ControlEvent) => {
      if (this.#answer(event)) return;
      // An error after the start is fatal; during it, it also rejects the start (below).
      if (event.type === 'error') this.#fatal(reviveError(event.error, 'LNLB_ERR_WORKER_FAILED'));
      else onEvent(event);
    });
    control.on('error', (err) => this.#fatal(reviveError(serializeError(err, 'control plane'), 'LNLB_ERR_WORKER_FAILED')));
    control.on('exit', (code) => {
      if (!this.#stopped) this.#fatal(lnlbError('LNLB_ERR_WORKER_FAILED', `the control-plane thread exited unexpectedly (code ${code})`));
    });
    await new Promise<void>((resolve, reject) => {
      const onReady = (event: ControlEvent): void => {
        if (event.type === 'ready') resolve();
        else if (event.type === 'error') reject(reviveError(event.error, 'LNLB_ERR_WORKER_FAILED'));
        else return;
        control.off('message', onReady);
      };
      control.on('message', onReady);
    });
  }

  /** A message to the control thread (dropped before it exists). */
  post(message: MainToControl): void {
    this.#control?.postMessage(message);
  }

  /** One request to the control thread and its answer (undefined if it does not come in time, or the threads are stopping). */
  ask(message: (requestId: number) => MainToControl, timeoutMs: number): Promise<ControlAnswer | undefined> {
    if (!this.#control || this.#stopped) return Promise.resolve(undefined);
    const requestId = ++this.#requests;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(requestId);
        resolve(undefined);
      }, timeoutMs);
      this.#waiters.set(requestId, (event) => {
        clearTimeout(timer);
        resolve(event);
      });
      this.post(message(requestId));
    });
  }

  /** An answer goes to the request that waits for it (true), or to nobody if that one gave up. */
  #answer(event: ControlEvent): boolean {
    if (event.type !== 'status' && event.type !== 'resynced' && event.type !== 'owners' && event.type !== 'buckets-resynced') return false;
    const waiter = this.#waiters.get(event.requestId);
    this.#waiters.delete(event.requestId);
    waiter?.(event);
    return true;
  }

  /** The control plane's view of the cluster; undefined when it does not answer in time. */
  async controlStatus(): Promise<ControlStatus | undefined> {
    const answer = await this.ask((requestId) => ({ type: 'status', requestId }), STATUS_TIMEOUT_MS);
    return answer?.type === 'status' ? answer.status : undefined;
  }

  /** Which node (MAC) each owner id of the tracking tables stands for; undefined when the control plane does not answer. */
  async owners(): Promise<Record<number, string> | undefined> {
    const answer = await this.ask((requestId) => ({ type: 'owners', requestId }), OWNERS_TIMEOUT_MS);
    return answer?.type === 'owners' ? answer.owners : undefined;
  }

  /**
   * For a process that is exiting without stop() (src/main/restore-at-exit.ts): both told to
   * stop, nothing waited for. The control thread may still send its LEAVE before Node ends it
   * (the event loop of the main thread never turns again: nothing here can wait for that).
   */
  haltNow(): void {
    this.#stopped = true;
    this.post({ type: 'stop' });
    this.#datapath?.haltNow();
  }

  /**
   * Stops both: the control plane first (it sends LEAVE: the others re-home our clients at
   * once, while we still tear down; waited for up to CONTROL_STOP_MS), then the datapath.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    const control = this.#control;
    if (control) {
      const stopped = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CONTROL_STOP_MS);
        control.on('message', (event: ControlEvent) => {
          if (event.type === 'stopped') {
            clearTimeout(timer);
            resolve();
          }
        });
        control.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.post({ type: 'stop' });
      await stopped;
      await control.terminate();
    }
    await this.#datapath?.stop();
  }
}
