/**
 * Sysctls the daemon changes on the host, and their restoration. The originals are written to
 * a file in the run directory before the first change, so that after a crash (kill -9 leaves
 * no chance to restore) the next start restores the true originals rather than saving our own
 * values as if they were the host's.
 *
 * Several cluster interfaces may bind the same device and need the same settings: each key is
 * held by the interfaces that set it and restored when the last one releases it.
 */

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lnlbError } from '../errors.js';

const SAVE_FILE = 'sysctl-originals.json';

function sysctlPath(key: string): string {
  return join('/proc/sys', ...key.split('.'));
}

export function readSysctl(key: string): string {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch (cause) {
    throw lnlbError('LNLB_ERR_SYS_SYSCTL', `cannot read sysctl ${key}: ${(cause as Error).message}`, { cause });
  }
}

export function writeSysctl(key: string, value: string): void {
  try {
    writeFileSync(sysctlPath(key), value);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EROFS' || code === 'EPERM' ? ' (needs root / CAP_NET_ADMIN and a writable /proc/sys)' : '';
    throw lnlbError('LNLB_ERR_SYS_SYSCTL', `cannot set sysctl ${key}=${value}: ${(cause as Error).message}${hint}`, { cause });
  }
}

/** Keys that name a device vanish with it (our TAP); those need no restoring. */
export interface SysctlChange {
  key: string;
  value: string;
  restore: boolean;
}

export class SysctlGuard {
  readonly #file: string;
  #originals = new Map<string, string>();
  readonly #holders = new Map<string, Set<string>>();

  constructor(runDir: string) {
    this.#file = join(runDir, SAVE_FILE);
    if (existsSync(this.#file)) {
      // A previous run died before restoring: its saved values are the host's real originals.
      try {
        const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as Record<string, string>;
        for (const [key, value] of Object.entries(saved)) this.#originals.set(key, value);
      } catch {
        // An unreadable file is not worth failing the start over; we lose only old originals.
      }
    }
  }

  /** Keys restored from a crashed run's file, for a log line. */
  get inherited(): string[] {
    return [...this.#originals.keys()];
  }

  /** Sets `changes` on behalf of `owner` (a cluster interface's name). */
  apply(owner: string, changes: readonly SysctlChange[]): void {
    for (const change of changes) {
      if (change.restore && !this.#originals.has(change.key)) {
        this.#originals.set(change.key, readSysctl(change.key));
        this.#save();
      }
      try {
        writeSysctl(change.key, change.value);
      } catch (err) {
        // Saved first (a crash between the two must not lose the original), but the value never
        // changed: forget it, or stopping would "restore" what nobody changed and log a failure.
        if (change.restore && !this.#holders.has(change.key) && this.#originals.delete(change.key)) this.#save();
        throw err;
      }
      if (change.restore) {
        const holders = this.#holders.get(change.key) ?? new Set<string>();
        holders.add(owner);
        this.#holders.set(change.key, holders);
      }
    }
  }

  /** `owner` is gone: restores the keys nobody else holds; returns what failed. */
  release(owner: string): string[] {
    const failures: string[] = [];
    for (const [key, holders] of this.#holders) {
      if (!holders.delete(owner) || holders.size > 0) continue;
      this.#holders.delete(key);
      const original = this.#originals.get(key);
      if (original === undefined) continue;
      try {
        if (existsSync(sysctlPath(key))) writeSysctl(key, original);
        this.#originals.delete(key);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (this.#originals.size === 0) rmSync(this.#file, { force: true });
    else this.#save();
    return failures;
  }

  /** Puts every saved original back; returns what failed (the caller logs it) rather than throwing. */
  restoreAll(): string[] {
    const failures: string[] = [];
    for (const [key, value] of this.#originals) {
      try {
        if (existsSync(sysctlPath(key))) writeSysctl(key, value);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    this.#originals.clear();
    this.#holders.clear();
    rmSync(this.#file, { force: true });
    return failures;
  }

  #save(): void {
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.#originals)));
    renameSync(tmp, this.#file);
  }
}
