/**
 * Sysctls the daemon changes on the host, and their restoration.
 *
 * The originals are saved once per host (per network namespace), in the host state directory
 * (src/main/host-state.ts), before the first change, with the daemons that hold each key:
 *
 *   /run/lnlb-host/sysctl-<netns>.json
 *   { "version": 1, "entries": { "net/ipv4/conf/eth0/arp_ignore":
 *       { "original": "0", "value": "1", "holders": [{ "pid", "start", "instance", "runDir" }] } } }
 *
 * The first daemon to set a key reads and records the original; the last holder to let go
 * writes it back, whatever the order of stops. A holder whose process is gone (kill -9) is
 * pruned; a key nobody alive holds is restored by the next daemon that starts in that
 * namespace, and only if it still has the value lnlb set (if someone changed it since, it is
 * theirs now). Every change of the file happens under the host-wide flock.
 *
 * Within one daemon, several cluster interfaces (and bond slaves) may need the same key: each
 * key is held by the owners that set it, and released to the host when the last one lets go.
 *
 * Everything read back from a file is checked against what lnlb itself writes: keys of the
 * shapes in src/main/sysctl-keys.ts on valid device names, values that are small integers.
 * Anything else is reported as ignored and never written.
 */

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lnlbError } from '../errors.js';
import { isHolder, sameHolder, type Holder, type HostState } from './host-state.js';
import { parseStateObject, readStateFile, writeStateFile } from './state-file.js';
import { isSysctlValue, parseDottedSysctlKey, parseSysctlKey, sysctlKeyText, sysctlPath, type DeviceSysctl } from './sysctl-keys.js';

/** The per-run-directory file of lnlb before the host-wide one: read once on start (upgrade after a crash), then removed. */
export const LEGACY_SAVE_FILE = 'sysctl-originals.json';
const FORMAT_VERSION = 1;
/** More keys than any host needs (4 per device); beyond it a file is not lnlb's. */
const MAX_ENTRIES = 16384;

/** Reads and writes /proc/sys; the unit tests pass a map instead. */
export interface SysctlIo {
  read(key: DeviceSysctl): string;
  write(key: DeviceSysctl, value: string): void;
  exists(key: DeviceSysctl): boolean;
}

export function readSysctl(key: DeviceSysctl): string {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch (cause) {
    throw lnlbError('LNLB_ERR_SYS_SYSCTL', `cannot read sysctl ${sysctlKeyText(key)}: ${(cause as Error).message}`, { cause });
  }
}

export function writeSysctl(key: DeviceSysctl, value: string): void {
  try {
    writeFileSync(sysctlPath(key), value);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EROFS' || code === 'EPERM' ? ' (needs root / CAP_NET_ADMIN and a writable /proc/sys)' : '';
    throw lnlbError('LNLB_ERR_SYS_SYSCTL', `cannot set sysctl ${sysctlKeyText(key)}=${value}: ${(cause as Error).message}${hint}`, { cause });
  }
}

export const procSysctls: SysctlIo = { read: readSysctl, write: writeSysctl, exists: (key) => existsSync(sysctlPath(key)) };

/** Keys that name a device vanish with it (our TAP); those need no restoring. */
export interface SysctlChange {
  key: DeviceSysctl;
  value: string;
  restore: boolean;
}

export interface SavedSysctl {
  key: DeviceSysctl;
  original: string;
  /** What lnlb set: a key left by a dead daemon is restored only while it still has this. */
  value: string;
  holders: Holder[];
}

/** What a saved file held that lnlb would write, and one line per thing it refused. Pure. */
export function parseHostSysctls(text: string): { entries: Map<string, SavedSysctl>; ignored: string[] } {
  const entries = new Map<string, SavedSysctl>();
  const ignored: string[] = [];
  const parsed = parseStateObject(text);
  if ('why' in parsed) return { entries, ignored: [parsed.why] };
  const root = parsed.object as { version?: unknown; entries?: unknown };
  if (root.version !== FORMAT_VERSION || typeof root.entries !== 'object' || root.entries === null) {
    return { entries, ignored: [`the file is not lnlb's format version ${FORMAT_VERSION}`] };
  }
  for (const [text, raw] of Object.entries(root.entries as Record<string, unknown>)) {
    if (entries.size >= MAX_ENTRIES) {
      ignored.push(`more than ${MAX_ENTRIES} keys: the rest`);
      break;
    }
    const key = parseSysctlKey(text);
    if (key === undefined) {
      ignored.push(`${JSON.stringify(text).slice(0, 120)}: not a sysctl lnlb sets`);
      continue;
    }
    const e = raw as { original?: unknown; value?: unknown; holders?: unknown } | null;
    if (typeof e !== 'object' || e === null || !isSysctlValue(e.original) || !isSysctlValue(e.value) || !Array.isArray(e.holders)) {
      ignored.push(`${text}: a value lnlb would not have saved`);
      continue;
    }
    entries.set(text, { key, original: e.original, value: e.value, holders: e.holders.filter(isHolder) });
  }
  return { entries, ignored };
}

export function formatHostSysctls(entries: ReadonlyMap<string, SavedSysctl>): string {
  const out: Record<string, { original: string; value: string; holders: Holder[] }> = {};
  for (const [text, e] of entries) out[text] = { original: e.original, value: e.value, holders: e.holders };
  return JSON.stringify({ version: FORMAT_VERSION, entries: out });
}

/** The legacy per-run-directory file ({ "net.ipv4.conf.eth0.arp_ignore": "0" }), checked the same way. Pure. */
export function parseLegacySysctls(text: string): { entries: { key: DeviceSysctl; original: string }[]; ignored: string[] } {
  const entries: { key: DeviceSysctl; original: string }[] = [];
  const ignored: string[] = [];
  const parsed = parseStateObject(text);
  if ('why' in parsed) return { entries, ignored: [parsed.why] };
  for (const [text, value] of Object.entries(parsed.object).slice(0, MAX_ENTRIES)) {
    const key = parseDottedSysctlKey(text);
    if (key === undefined) ignored.push(`${JSON.stringify(text).slice(0, 120)}: not a sysctl lnlb sets`);
    else if (!isSysctlValue(value)) ignored.push(`${text}: ${JSON.stringify(value).slice(0, 40)} is not a value lnlb would have saved`);
    else entries.push({ key, original: value });
  }
  return { entries, ignored };
}

/** What the start found left by daemons that died, for the log. */
export interface SysctlRecovery {
  /** Keys put back to their saved originals. */
  restored: string[];
  /** Keys whose value changed since lnlb set it: left as they are. */
  leftAlone: string[];
  /** Entries refused (not a key lnlb sets, a bad value, an unsafe file): never written. */
  ignored: string[];
}

export class SysctlGuard {
  readonly #host: HostState;
  readonly #io: SysctlIo;
  readonly #file: string;
  /** Keys this daemon holds on the host → the owners in it (cluster interfaces, bond slaves). */
  readonly #holders = new Map<string, { key: DeviceSysctl; owners: Set<string> }>();

  constructor(host: HostState, io: SysctlIo = procSysctls) {
    this.#host = host;
    this.#io = io;
    this.#file = host.path('sysctl', '.json');
  }

  /**
   * On start: restores what daemons that died left changed in this namespace (and what an
   * older lnlb left in `runDir`'s own file), checked against what lnlb writes.
   */
  recover(runDir: string): SysctlRecovery {
    const out: SysctlRecovery = { restored: [], leftAlone: [], ignored: [] };
    const legacy = join(runDir, LEGACY_SAVE_FILE);
    try {
      const text = readStateFile(legacy);
      if (text !== undefined) {
        const { entries, ignored } = parseLegacySysctls(text);
        out.ignored.push(...ignored.map((i) => `${legacy}: ${i}`));
        for (const { key, original } of entries) {
          if (!this.#io.exists(key)) continue;
          this.#io.write(key, original);
          out.restored.push(sysctlKeyText(key));
        }
      }
    } catch (err) {
      out.ignored.push((err as Error).message);
    }
    rmSync(legacy, { force: true });
    this.#host.withLock(() => {
      const entries = this.#load(out.ignored);
      for (const [text, e] of entries) {
        e.holders = e.holders.filter((h) => this.#host.isAlive(h));
        if (e.holders.length > 0) continue;
        entries.delete(text);
        if (!this.#io.exists(e.key)) continue;
        if (this.#io.read(e.key) === e.value) {
          this.#io.write(e.key, e.original);
          out.restored.push(text);
        } else {
          out.leftAlone.push(text);
        }
      }
      this.#save(entries);
    });
    return out;
  }

  /** Sets `changes` on behalf of `owner` (a cluster interface's name, a bond slave). */
  apply(owner: string, changes: readonly SysctlChange[]): void {
    for (const change of changes) {
      const text = sysctlKeyText(change.key);
      const held = this.#holders.get(text);
      if (!change.restore || held !== undefined) {
        this.#io.write(change.key, change.value);
        held?.owners.add(owner);
        continue;
      }
      this.#host.withLock(() => {
        const entries = this.#load();
        let entry = entries.get(text);
        if (entry !== undefined) {
          entry.holders = entry.holders.filter((h) => this.#host.isAlive(h));
          // Left by dead daemons, and changed since: the value now is the host's own.
          if (entry.holders.length === 0 && this.#io.read(change.key) !== entry.value) entry = undefined;
        }
        // Saved before the change: a crash between the two must not lose the original.
        entry ??= { key: change.key, original: this.#io.read(change.key), value: change.value, holders: [] };
        entry.value = change.value;
        entry.holders.push(this.#host.self);
        entries.set(text, entry);
        this.#save(entries);
        try {
          this.#io.write(change.key, change.value);
        } catch (err) {
          // Never changed: forget our hold, or stopping would "restore" what nobody changed.
          entry.holders = entry.holders.filter((h) => !sameHolder(h, this.#host.self));
          if (entry.holders.length === 0) entries.delete(text);
          this.#save(entries);
          throw err;
        }
      });
      this.#holders.set(text, { key: change.key, owners: new Set([owner]) });
    }
  }

  /** `owner` is gone: gives back the keys nobody else in this daemon holds; returns what failed. */
  release(owner: string): string[] {
    const keys: string[] = [];
    for (const [text, held] of this.#holders) {
      if (held.owners.delete(owner) && held.owners.size === 0) keys.push(text);
    }
    return this.#releaseKeys(keys);
  }

  /** Gives back every key this daemon holds; returns what failed (the caller logs it) rather than throwing. */
  restoreAll(): string[] {
    return this.#releaseKeys([...this.#holders.keys()]);
  }

  /** Keys this daemon holds (slash form). */
  get held(): string[] {
    return [...this.#holders.keys()];
  }

  /** Drops our hold on each key; the last holder on the host writes the original back. */
  #releaseKeys(keys: readonly string[]): string[] {
    if (keys.length === 0) return [];
    const failures: string[] = [];
    this.#host.withLock(() => {
      const entries = this.#load();
      for (const text of keys) {
        this.#holders.delete(text);
        const entry = entries.get(text);
        if (entry === undefined) continue;
        entry.holders = entry.holders.filter((h) => !sameHolder(h, this.#host.self) && this.#host.isAlive(h));
        if (entry.holders.length > 0) continue; // another daemon still needs it
        try {
          if (this.#io.exists(entry.key)) this.#io.write(entry.key, entry.original);
          entries.delete(text);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      this.#save(entries);
    });
    return failures;
  }

  #load(ignored?: string[]): Map<string, SavedSysctl> {
    let text: string | undefined;
    try {
      text = readStateFile(this.#file);
    } catch (err) {
      ignored?.push((err as Error).message);
      return new Map();
    }
    if (text === undefined) return new Map();
    const parsed = parseHostSysctls(text);
    ignored?.push(...parsed.ignored.map((i) => `${this.#file}: ${i}`));
    return parsed.entries;
  }

  #save(entries: ReadonlyMap<string, SavedSysctl>): void {
    if (entries.size === 0) rmSync(this.#file, { force: true });
    else writeStateFile(this.#file, formatHostSysctls(entries));
  }
}
