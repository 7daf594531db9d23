/**
 * systemd's readiness protocol (sd_notify(3)) for lnlbd under a `Type=notify` unit
 * (packaging/lnlbd.service): one datagram per message to the unix socket systemd names in
 * $NOTIFY_SOCKET, `KEY=value` lines.
 *
 *   READY=1, STATUS=...       once every cluster interface of the start has settled: converged,
 *                             or in a state that says why it does not serve (held, unhealthy,
 *                             stopped, failed). Units ordered after lnlbd start once the VIP is
 *                             served, and a node that will not serve does not hold systemd's
 *                             start until its timeout (a health check of a service ordered after
 *                             lnlbd would otherwise wait for itself).
 *   STATUS=...                each time an interface's view or state changes (`systemctl
 *                             status lnlbd` shows it)
 *   RELOADING=1, MONOTONIC_USEC=..., then READY=1   around a SIGHUP (the protocol of
 *                             Type=notify-reload, harmless to Type=notify)
 *   STOPPING=1                when the stop begins
 *
 * Without $NOTIFY_SOCKET (not under systemd, or a unit of another type) nothing is sent and
 * nothing is polled. The datagram is sent by the native addon (native/notify.cc: Node has no
 * unix datagram sockets); a failure to send is logged once and never stops the daemon.
 * The variable is removed from the environment once read, as sd_notify's unset_environment
 * does: lnlbd's children (an exec health check) must not speak for it.
 */

import * as port from '../port/native.js';
import type { InterfaceStatusJson } from './admin-protocol.js';
import type { Logger } from './logger.js';

/** What readiness reads of each interface. */
export type InterfaceReadiness = Pick<InterfaceStatusJson, 'name' | 'state' | 'vip' | 'bind' | 'nodes'>;

/** `settled`: no interface is still converging; `status`: the STATUS= line. Pure. */
export function readiness(interfaces: readonly InterfaceReadiness[]): { settled: boolean; status: string } {
  if (interfaces.length === 0) return { settled: true, status: 'no cluster interface: add one with lnlbctl addif <vip> <dev>' };
  const parts = interfaces.map((i) => {
    const members = i.state === 'converged' ? `: ${i.nodes.length} node${i.nodes.length === 1 ? '' : 's'},` : ':';
    return `${i.name} ${i.state}${members} vip ${i.vip} on ${i.bind}`;
  });
  return { settled: interfaces.every((i) => i.state !== 'converging'), status: parts.join('; ') };
}

/** One sd_notify message: `KEY=value` lines (a value holds no newline). Pure. */
export function notifyMessage(fields: Readonly<Record<string, string>>): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${value.replace(/\n/g, ' ')}`)
    .join('\n');
}

/** CLOCK_MONOTONIC in µs, as RELOADING=1 wants it beside (process.hrtime is that clock on Linux). */
export function monotonicMicros(): string {
  return String(process.hrtime.bigint() / 1000n);
}

const SETTLE_POLL_MS = 100;
/** Changes of view or state within this are told in one STATUS=. */
const STATUS_DEBOUNCE_MS = 100;

export class ServiceNotifier {
  readonly socket: string;
  readonly #log: Pick<Logger, 'warn'>;
  readonly #send: (socket: string, message: string) => boolean;
  #ready = false;
  #stopping = false;
  #lastStatus: string | undefined;
  #warned = false;
  #refresh: NodeJS.Timeout | undefined;

  /** undefined without $NOTIFY_SOCKET; removes it from `env`. */
  static fromEnvironment(env: NodeJS.ProcessEnv, log: Pick<Logger, 'warn'>, send: (socket: string, message: string) => boolean = port.notify): ServiceNotifier | undefined {
    const socket = env['NOTIFY_SOCKET'];
    delete env['NOTIFY_SOCKET'];
    return socket === undefined || socket === '' ? undefined : new ServiceNotifier(socket, log, send);
  }

  constructor(socket: string, log: Pick<Logger, 'warn'>, send: (socket: string, message: string) => boolean) {
    this.socket = socket;
    this.#log = log;
    this.#send = send;
  }

  /** READY=1 has been sent. */
  get ready(): boolean {
    return this.#ready;
  }

  #notify(fields: Record<string, string>): void {
    if ('STATUS' in fields) this.#lastStatus = fields['STATUS'];
    try {
      if (this.#send(this.socket, notifyMessage(fields))) return;
      this.#warnOnce(`the service manager's socket ${this.socket} is full: ${Object.keys(fields).join(', ')} dropped`);
    } catch (err) {
      this.#warnOnce(`cannot notify the service manager at ${this.socket} (NOTIFY_SOCKET): ${(err as Error).message}`);
    }
  }

  #warnOnce(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#log.warn({ event: 'sd-notify-failed', socket: this.socket }, `${message} (said once)`);
  }

  /**
   * Polls `interfaces` until every one has settled, telling STATUS= meanwhile, then READY=1.
   * Stops polling if the daemon starts stopping first.
   */
  async announceWhenSettled(interfaces: () => Promise<readonly InterfaceReadiness[]>): Promise<void> {
    while (!this.#stopping) {
      const now = readiness(await interfaces());
      if (this.#stopping) return;
      if (now.settled) {
        this.#ready = true;
        this.#notify({ READY: '1', STATUS: now.status });
        return;
      }
      if (now.status !== this.#lastStatus) this.#notify({ STATUS: now.status });
      await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
    }
  }

  /** A view or state changed: STATUS= again shortly (after READY=1; before it, the poll says it). */
  statusChanged(interfaces: () => Promise<readonly InterfaceReadiness[]>): void {
    if (!this.#ready || this.#stopping || this.#refresh !== undefined) return;
    this.#refresh = setTimeout(() => {
      this.#refresh = undefined;
      interfaces().then(
        (list) => {
          const { status } = readiness(list);
          if (!this.#stopping && status !== this.#lastStatus) this.#notify({ STATUS: status });
        },
        () => undefined, // stopping: the status is STOPPING's
      );
    }, STATUS_DEBOUNCE_MS);
    this.#refresh.unref();
  }

  /** SIGHUP received: RELOADING=1 (only once READY=1 was sent: a reload does not make a start ready). */
  reloading(): void {
    if (this.#ready && !this.#stopping) this.#notify({ RELOADING: '1', MONOTONIC_USEC: monotonicMicros() });
  }

  /** The reload is done (applied or refused: the daemon runs on either way, the log says which): READY=1 again. */
  reloaded(): void {
    if (this.#ready && !this.#stopping) this.#notify({ READY: '1' });
  }

  /** The stop began: STOPPING=1; nothing after it. */
  stopping(reason: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#refresh);
    this.#notify({ STOPPING: '1', STATUS: `stopping: ${reason}` });
  }
}
