/**
 * An embedded node's last resort: when the process that embeds it ends without `close()` (an
 * uncaught exception in the host's own code, `process.exit()` from anywhere), the host's
 * sysctls and bond slaves are put back synchronously on process 'exit', as `close()` would
 * have, so that the host is not left with `arp_ignore`/`arp_announce` changed until the next
 * lnlb starts there.
 *
 * Why 'exit', and nothing else. The process is the host application's, and so is its error
 * handling: a library that installed an 'uncaughtException' handler would stop the process from
 * crashing (or change its exit code, or print differently), and signal handlers would stop
 * SIGTERM from ending it. An 'exit' listener changes none of that: it runs after the host's
 * own handlers have decided the process ends, whatever the reason (Node emits it after an
 * uncaught exception or an unhandled rejection has been printed, on `process.exit()`, and when
 * the event loop empties), it cannot keep the process alive, and it leaves the exit code alone
 * as long as it does not throw, so everything in it is caught. Only synchronous work runs
 * there (Daemon.restoreHostNow), in this order: the VIP taken off each TAP (with the VIP still
 * a local address, the restored arp_ignore would let the host answer ARP for it with its own
 * MAC), the threads told to stop and woken (Node ends worker threads at exit but waits for one
 * asleep in a system call: the dispatcher's poll would hold the exit for 10 s), the bond slaves'
 * MACs, the sysctls. Nothing is waited for: a LEAVE gets out only if the control thread sends
 * it before Node ends it, else the other nodes declare this one dead after `deadAfterMs`; the
 * kernel removes the TAPs and closes the sockets once the process is gone.
 *
 * What 'exit' cannot cover: a signal the host does not handle (SIGTERM, SIGINT: the process is
 * killed without 'exit'), SIGKILL, or a crash of Node itself. Then the originals saved in the
 * host state directory are restored by the next lnlbd or embedded node that starts in that
 * network namespace (src/main/sysctl.ts, SysctlGuard.recover), as after `kill -9` of lnlbd.
 *
 * One listener for every open node of this copy of the library, added with the first and
 * removed with the last: no MaxListenersExceededWarning for a host that opens many nodes, and
 * nothing left on `process` once every node is closed.
 */

/** What is restored at exit: an open node's daemon. */
export interface HostRestorable {
  /** Restores synchronously what it changed on the host; returns what could not be restored, one sentence each. */
  restoreHostNow(): string[];
}

/** Told what was restored at exit (the node's logger). Must not throw; if it does, the exit goes on regardless. */
export type ExitReport = (exitCode: number, failures: readonly string[]) => void;

/** The part of `process` used here; the unit tests pass an EventEmitter. */
export interface ExitSource {
  on(event: 'exit', listener: (code: number) => void): unknown;
  off(event: 'exit', listener: (code: number) => void): unknown;
}

export class ExitRestorer {
  readonly #source: ExitSource;
  readonly #open = new Map<HostRestorable, ExitReport>();
  readonly #onExit = (code: number): void => this.#restoreAll(code);

  constructor(source: ExitSource) {
    this.#source = source;
  }

  /** `target` changed the host: restore it if the process exits before {@link forget}. */
  watch(target: HostRestorable, report: ExitReport): void {
    if (this.#open.size === 0) this.#source.on('exit', this.#onExit);
    this.#open.set(target, report);
  }

  /** `target` was closed (and restored) the ordinary way. */
  forget(target: HostRestorable): void {
    if (this.#open.delete(target) && this.#open.size === 0) this.#source.off('exit', this.#onExit);
  }

  /** How many are watched (for the tests). */
  get size(): number {
    return this.#open.size;
  }

  #restoreAll(code: number): void {
    const open = [...this.#open];
    this.#open.clear();
    this.#source.off('exit', this.#onExit);
    for (const [target, report] of open) {
      let failures: string[];
      try {
        failures = target.restoreHostNow();
      } catch (err) {
        failures = [err instanceof Error ? err.message : String(err)];
      }
      try {
        report(code, failures);
      } catch {
        // Nothing may throw in an 'exit' listener: it would replace the host's exit code.
      }
    }
  }
}

/** The one every embedded node of this process uses. */
export const processExitRestorer = new ExitRestorer(process);
