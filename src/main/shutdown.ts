/**
 * lnlbd's one way out. SIGTERM, SIGINT, a failed interface, an uncaught exception and an
 * unhandled rejection all run the same stop (LEAVE on every interface, TAPs removed, sysctls
 * restored, bonds released) and then exit: 0 for a signal, non-zero for anything unexpected.
 * The stop is bounded by a timeout (a hung thread or socket cannot keep a half-stopped daemon
 * around), and a second unexpected error while stopping exits at once (the state is beyond
 * saving, and the first one already started the clean-up).
 *
 * Only the daemon installs these process-wide handlers; the embedding API (createNode) leaves
 * the process to its owner.
 */

import type { Logger } from './logger.js';

/** How long the stop may take before the process exits anyway (LEAVE, threads' 3 s stop, sysctls, bonds). */
export const SHUTDOWN_TIMEOUT_MS = 15_000;

/** The part of `process` the handlers attach to (an EventEmitter in tests). */
export interface ProcessEvents {
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  off(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  off(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
}

export interface ShutdownOptions {
  /** Everything SIGTERM undoes; a rejection is logged and makes the exit code non-zero. */
  stop(): Promise<void>;
  /** process.exit in the daemon. */
  exit(code: number): void;
  log: Pick<Logger, 'info' | 'error' | 'fatal'>;
  timeoutMs?: number;
}

export class Shutdown {
  readonly #o: ShutdownOptions;
  #running: Promise<void> | undefined;
  #exited = false;

  constructor(options: ShutdownOptions) {
    this.#o = options;
  }

  get inProgress(): boolean {
    return this.#running !== undefined;
  }

  /** Stops and exits with `code` (1 if the stop failed or timed out); later calls join the first. */
  begin(reason: string, code: number): Promise<void> {
    this.#running ??= this.#run(reason, code);
    return this.#running;
  }

  /** An unexpected error: the same stop as SIGTERM, exit 1; during a stop already running, exit 1 now. */
  crash(kind: 'uncaught exception' | 'unhandled rejection', error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (this.#running !== undefined) {
      this.#o.log.fatal({ event: 'crash', kind, err }, `${kind} while stopping: ${err.message}; exiting now`);
      this.#exit(1);
      return;
    }
    this.#o.log.fatal({ event: 'crash', kind, err }, `${kind}: ${err.message}; leaving the cluster and restoring the host before exiting`);
    // #run never rejects: every failure in it is logged and turned into the exit code.
    this.begin(`${kind}: ${err.message}`, 1).catch(() => undefined);
  }

  /** Routes `uncaughtException` and `unhandledRejection` to crash(); returns the uninstaller. */
  install(target: ProcessEvents): () => void {
    const onException = (err: Error): void => this.crash('uncaught exception', err);
    const onRejection = (reason: unknown): void => this.crash('unhandled rejection', reason);
    target.on('uncaughtException', onException);
    target.on('unhandledRejection', onRejection);
    return () => {
      target.off('uncaughtException', onException);
      target.off('unhandledRejection', onRejection);
    };
  }

  async #run(reason: string, code: number): Promise<void> {
    const timeoutMs = this.#o.timeoutMs ?? SHUTDOWN_TIMEOUT_MS;
    this.#o.log.info({ event: 'shutdown', reason }, `stopping: ${reason}`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const outcome = await Promise.race([this.#o.stop().then(() => 'stopped' as const), timedOut]);
      if (outcome === 'timeout') {
        this.#o.log.error({ event: 'shutdown-timeout', ms: timeoutMs }, `stopping took longer than ${timeoutMs} ms: exiting with what is left undone`);
        code = code || 1;
      }
    } catch (err) {
      this.#o.log.error({ event: 'shutdown-failed', err }, `stop failed: ${(err as Error).message}`);
      code = code || 1;
    } finally {
      clearTimeout(timer);
    }
    this.#exit(code);
  }

  #exit(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#o.exit(code);
  }
}
