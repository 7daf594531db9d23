/**
 * What several lnlbd on one host share: the host-wide state directory (/run/lnlb-host, or
 * $LNLB_HOST_DIR), a lock around changes to the shared files there, and one lock file per
 * device in use. Every daemon has its own run directory, but devices and sysctls belong to
 * the host: two daemons must not bind one device, and the sysctl originals must be saved once,
 * not by each daemon over the other's values.
 *
 * Network-namespace tests run many daemons on one host, each in its own namespace, where
 * device names repeat (each has its eth0): everything here is keyed by the namespace, the
 * inode of /proc/self/ns/net, with the device name.
 *
 *   /run/lnlb-host/                          (0700, checked like a run directory)
 *     host.lock                              flock'd around every change of a sysctl-*.json
 *     sysctl-<netns>.json                    sysctl originals and their holders (src/main/sysctl.ts)
 *     dev-<netns>-<device>.lock              flock'd by the daemon using the device, for its life;
 *                                            holds {pid, runDir} to name it to another daemon
 *
 * flock(2) locks die with the process, so a daemon killed with -9 holds nothing: no stale
 * lock refuses the next start. Holders of sysctls are recorded by pid and process start time
 * (reused pids are told apart) and pruned when that process is gone.
 */

import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { lnlbError } from '../errors.js';
import * as port from '../port/native.js';
import { deviceNameProblem } from './device-name.js';
import { ensurePrivateDir } from './run-dir.js';

export const DEFAULT_HOST_DIR = '/run/lnlb-host';
/** Overrides {@link DEFAULT_HOST_DIR} (tests; a daemon without write access to /run). */
export const HOST_DIR_ENV = 'LNLB_HOST_DIR';

/** A daemon that holds host state: found alive by pid and start time, named by pid and run directory. */
export interface Holder {
  pid: number;
  /** Start time of the process (field 22 of /proc/PID/stat, clock ticks since boot). */
  start: string;
  /** Tells apart two daemons in one process (embedded nodes). */
  instance: string;
  runDir: string;
}

export function isHolder(value: unknown): value is Holder {
  if (typeof value !== 'object' || value === null) return false;
  const h = value as Record<string, unknown>;
  return (
    typeof h['pid'] === 'number' && Number.isInteger(h['pid']) && h['pid'] > 0 &&
    typeof h['start'] === 'string' && /^[0-9]{1,20}$/.test(h['start']) &&
    typeof h['instance'] === 'string' && /^[0-9a-f]{1,32}$/.test(h['instance']) &&
    typeof h['runDir'] === 'string' && h['runDir'].length <= 4096
  );
}

export function sameHolder(a: Holder, b: Holder): boolean {
  return a.pid === b.pid && a.start === b.start && a.instance === b.instance;
}

/** Start time of a process, or undefined when there is none by that pid. */
export function processStart(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19]; // field 22 overall
}

/** True while the process that recorded `h` runs (a reused pid has another start time). */
export function holderAlive(h: Holder): boolean {
  return processStart(h.pid) === h.start;
}

export interface HostStateOptions {
  runDir: string;
  /** Default: $LNLB_HOST_DIR or /run/lnlb-host. */
  dir?: string;
  /** Default: the inode of /proc/self/ns/net. */
  netns?: number;
  /** Default: {@link holderAlive}; tests pass their own. */
  isAlive?: (h: Holder) => boolean;
}

interface DeviceLock {
  fd: number;
  path: string;
  owners: Set<string>;
}

export class HostState {
  readonly dir: string;
  readonly netns: number;
  readonly self: Holder;
  readonly isAlive: (h: Holder) => boolean;
  readonly #devices = new Map<string, DeviceLock>();

  constructor(options: HostStateOptions) {
    this.dir = options.dir ?? process.env[HOST_DIR_ENV] ?? DEFAULT_HOST_DIR;
    ensurePrivateDir(this.dir, 'host state directory');
    this.netns = options.netns ?? statSync('/proc/self/ns/net').ino;
    this.isAlive = options.isAlive ?? holderAlive;
    this.self = { pid: process.pid, start: processStart('self') ?? '0', instance: randomBytes(8).toString('hex'), runDir: options.runDir };
    this.#sweepStaleLocks();
  }

  /**
   * A daemon killed with -9 left its lock files (the locks died with it, the files did not):
   * removes every device lock file nobody holds, of any namespace, so they do not pile up.
   */
  #sweepStaleLocks(): void {
    for (const name of readdirSync(this.dir)) {
      if (!name.startsWith('dev-') || !name.endsWith('.lock')) continue;
      const path = join(this.dir, name);
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
      } catch {
        continue; // gone already, or not a file we may open: leave it
      }
      try {
        if (!port.flock(fd, true, true)) continue; // held: a live daemon's
        const st = fstatSync(fd);
        const current = lstatSync(path, { throwIfNoEntry: false });
        // Unlinked while locked, as releaseDevice does; a claimer that opened it meanwhile sees the inode change and retries.
        if (current !== undefined && current.ino === st.ino && current.dev === st.dev) rmSync(path, { force: true });
      } finally {
        closeSync(fd);
      }
    }
  }

  /** A file of this namespace in the host directory. */
  path(prefix: string, suffix: string): string {
    return join(this.dir, `${prefix}-${this.netns}${suffix}`);
  }

  /** Runs `fn` holding the host-wide lock (other daemons wait; the lock is held for a file read and write). */
  withLock<T>(fn: () => T): T {
    const fd = openSync(join(this.dir, 'host.lock'), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      port.flock(fd, true, false);
      return fn();
    } finally {
      closeSync(fd); // releases the lock
    }
  }

  /** Whether this daemon holds `device`. */
  holds(device: string): boolean {
    return this.#devices.has(device);
  }

  /**
   * Takes `device` for `owner` (what in this daemon uses it, for messages) until released:
   * LNLB_ERR_DEV_IN_USE naming the other daemon when one holds it.
   */
  claimDevice(device: string, owner: string): void {
    const held = this.#devices.get(device);
    if (held !== undefined) {
      held.owners.add(owner);
      return;
    }
    const problem = deviceNameProblem(device);
    if (problem !== undefined) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `device name: ${problem}`);
    const path = this.path('dev', `-${device}.lock`);
    for (let attempt = 0; attempt < 5; attempt++) {
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      let keep = false;
      try {
        if (!port.flock(fd, true, true)) {
          throw lnlbError('LNLB_ERR_DEV_IN_USE', `${device} is in use by another lnlbd on this host (${describeHolder(readHolder(fd))}): stop that one, add this cluster to it (lnlbctl --run-dir DIR addif), or use another device`);
        }
        // Locked; but a releasing daemon may have unlinked the file between our open and our
        // lock, and a third may hold a new file at the path: the lock counts only on the file the path names.
        const st = fstatSync(fd);
        let current;
        try {
          current = lstatSync(path);
        } catch {
          current = undefined;
        }
        if (current === undefined || current.ino !== st.ino || current.dev !== st.dev) continue;
        ftruncateSync(fd, 0);
        writeSync(fd, JSON.stringify({ pid: this.self.pid, runDir: this.self.runDir }), 0);
        this.#devices.set(device, { fd, path, owners: new Set([owner]) });
        keep = true;
        return;
      } finally {
        if (!keep) closeSync(fd);
      }
    }
    throw lnlbError('LNLB_ERR_DEV_IN_USE', `${device}: could not take its lock file ${path} (other daemons kept replacing it): retry`);
  }

  /** `owner` no longer uses `device`; the last owner gives it back to the host. */
  releaseDevice(device: string, owner: string): void {
    const held = this.#devices.get(device);
    if (held === undefined || !held.owners.delete(owner) || held.owners.size > 0) return;
    this.#devices.delete(device);
    rmSync(held.path, { force: true }); // unlinked while locked: see claimDevice
    closeSync(held.fd);
  }

  /** Who in this daemon holds `device`, for messages. */
  ownersOf(device: string): string[] {
    return [...(this.#devices.get(device)?.owners ?? [])];
  }

  /** Gives back every device (daemon stop). */
  close(): void {
    for (const [device, held] of this.#devices) {
      for (const owner of [...held.owners]) this.releaseDevice(device, owner);
    }
  }
}

function readHolder(fd: number): { pid?: number; runDir?: string } {
  const buf = Buffer.alloc(4096);
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    const parsed = JSON.parse(buf.subarray(0, n).toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return {};
    const p = parsed as Record<string, unknown>;
    return { ...(typeof p['pid'] === 'number' ? { pid: p['pid'] } : {}), ...(typeof p['runDir'] === 'string' ? { runDir: p['runDir'] } : {}) };
  } catch {
    return {}; // being written at this instant, or garbage: the lock alone says it is taken
  }
}

function describeHolder(h: { pid?: number; runDir?: string }): string {
  if (h.pid === undefined) return 'pid unknown';
  return `pid ${h.pid}${h.runDir === undefined ? '' : `, run dir ${h.runDir}`}`;
}
