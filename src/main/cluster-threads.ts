/**
 * The threads of one cluster interface: the datapath (dispatcher and actors) and the control
 * plane (membership, rounds, state transfer), started in that order; requests to the control
 * thread and their answers; any thread's death reported as fatal; and the order they stop in
 * (LEAVE first, so the others re-home this node's clients while it still tears down).
 */

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { lnlbError, reviveError, serializeError, type LnlbError } from '../errors.js';
import { Datapath, type DatapathOptions } from '../workers/datapath.js';
import { workerExecArgv } from '../workers/exec-argv.js';
import type { ControlApi, ControlData, ControlEvent, ControlStatus, ControlThreadData, MainToControl, SavedState } from '../workers/messages.js';
import { connect, lateError, transfer, withDeadline, type Remote } from '../workers/thread-rpc.js';

/** How long stop() waits for the control thread's LEAVE before terminating it anyway. */
const CONTROL_STOP_MS = 2000;
/** How long a status request waits for the control thread (then: no answer, status says so). */
const STATUS_TIMEOUT_MS = 2000;
/** How long an owner-table request waits. */
const OWNERS_TIMEOUT_MS = 5000;

export class ClusterThreads {
  readonly #fatal: (err: LnlbError) => void;
  #datapath: Datapath | undefined;
  #control: Worker | undefined;
  /** Our end of the control thread's request port, and its API there (thread-rpc.ts). */
  #requests: MessagePort | undefined;
  #api: Remote<ControlApi> | undefined;
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
    const { port1, port2 } = new MessageChannel();
    const threadData: ControlThreadData = { ...data, requests: port2 };
    const control = new Worker(new URL('../workers/control-thread.js', import.meta.url), { execArgv: workerExecArgv(), workerData: threadData, transferList: [port2], name: 'lnlb-control' });
    this.#control = control;
    this.#requests = port1;
    this.#api = connect<ControlApi>(port1);
    control.on('message', (event: ControlEvent) => {
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

  /**
   * One request to the control thread (ControlApi) and its answer; undefined when it does not
   * come within `timeoutMs`, or the threads are stopping or not started.
   */
  async ask<T>(call: (control: Remote<ControlApi>) => Promise<T>, timeoutMs: number): Promise<T | undefined> {
    const api = this.#api;
    if (api === undefined || this.#stopped) return undefined;
    return withDeadline(call(api), timeoutMs, lateError('LNLB_ERR_WORKER_FAILED', 'the control plane', timeoutMs)).catch(() => undefined);
  }

  /** The control plane's view of the cluster; undefined when it does not answer in time. */
  controlStatus(): Promise<ControlStatus | undefined> {
    return this.ask((control) => control.status(), STATUS_TIMEOUT_MS);
  }

  /** Which node (MAC) each owner id of the tracking tables stands for; undefined when the control plane does not answer. */
  owners(): Promise<Record<number, string> | undefined> {
    return this.ask((control) => control.owners(), OWNERS_TIMEOUT_MS);
  }

  /**
   * Hands saved states to the control plane to send (to a newcomer, or 'cluster'): their
   * buffers are moved, not copied, so the caller must not use them afterwards.
   */
  sendState(to: string, states: SavedState[], timeoutMs: number): Promise<{ fragments: number; error?: string } | undefined> {
    const buffers = [...new Set(states.map((s) => s.state.buffer))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
    return this.ask((control) => control.sendState(to, transfer(states, buffers)), timeoutMs);
  }

  /** `lnlbctl resync` under --election bucket; undefined when the control plane does not answer. */
  resyncBuckets(timeoutMs: number): Promise<{ buckets: number; targets: number } | undefined> {
    return this.ask((control) => control.resyncBuckets(), timeoutMs);
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
      this.#requests?.close();
      await control.terminate();
    }
    await this.#datapath?.stop();
  }
}
