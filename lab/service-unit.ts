/**
 * A systemd service unit read without systemd (there is none on the test machines), and the
 * command that runs its ExecStart the way systemd would: the same argv, the same capability
 * sets and no_new_privs (through util-linux `setpriv`), and optionally the same read-only file
 * system (ProtectSystem=strict, ProtectKernelTunables=, ReadWritePaths=, through `unshare`).
 *
 * Only what packaging/lnlbd.service uses is understood; anything systemd would do that this
 * cannot (specifiers, a `$VAR` without a value, User=) is refused, not silently skipped.
 *
 *   unit text ──parseUnitFile──▶ UnitFile ──readServiceUnit──▶ ServiceSettings
 *                                                     │
 *            setprivArgv(settings, argv) ◀────────────┤  (capabilities, no_new_privs)
 *            mountSandboxArgv(settings, argv, map) ◀──┘  (read-only file system)
 *
 * Type=notify: NotifySocket is systemd's end of sd_notify, its path the service's
 * $NOTIFY_SOCKET; it keeps what the service says (READY=1, STATUS=, RELOADING=1, STOPPING=1),
 * when, and from which pid.
 */

import { rmSync } from 'node:fs';
import { lnlbError } from '../src/errors.js';
import * as port from '../src/port/native.js';
import { notifyListen, notifyRecv } from './native.js';

/** One `Key=value` line of a section, in file order (continuation lines joined). */
export interface UnitEntry {
  key: string;
  value: string;
  line: number;
}

export interface UnitFile {
  path: string;
  /** Section name (without brackets) → its entries in file order. */
  sections: Map<string, UnitEntry[]>;
}

function bad(path: string, line: number | undefined, message: string): never {
  throw lnlbError('LNLB_ERR_LAB_SETUP', `${path}${line === undefined ? '' : `:${line}`}: ${message}`);
}

/**
 * Reads a unit file (systemd.syntax(7)): `[Section]` headers, `Key=value` lines, `#` and `;`
 * comment lines, a trailing `\` continuing the line (joined with a space, comment lines inside
 * skipped).
 */
export function parseUnitFile(text: string, path = 'unit'): UnitFile {
  const sections = new Map<string, UnitEntry[]>();
  let current: UnitEntry[] | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let content = lines[i]!.trim();
    if (content === '' || content.startsWith('#') || content.startsWith(';')) continue;
    while (content.endsWith('\\') && i + 1 < lines.length) {
      content = content.slice(0, -1);
      let next = lines[++i]!.trim();
      while ((next.startsWith('#') || next.startsWith(';')) && i + 1 < lines.length) next = lines[++i]!.trim();
      content = `${content} ${next}`;
    }
    const header = /^\[([^\]]+)\]$/.exec(content);
    if (header !== null) {
      current = sections.get(header[1]!) ?? [];
      sections.set(header[1]!, current);
      continue;
    }
    const m = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(content);
    if (m === null) bad(path, start, `expected Key=value or [Section], got ${JSON.stringify(content)}`);
    if (current === undefined) bad(path, start, `${m[1]}= before any [Section]`);
    current.push({ key: m[1]!, value: m[2]!.trim(), line: start });
  }
  return { path, sections };
}

/** Every assignment of `key` in `section`, in order (an empty one included). */
export function unitAssignments(unit: UnitFile, section: string, key: string): UnitEntry[] {
  return (unit.sections.get(section) ?? []).filter((e) => e.key === key);
}

/** The value of a single-valued setting: the last assignment wins, as in systemd. */
export function unitValue(unit: UnitFile, section: string, key: string): string | undefined {
  return unitAssignments(unit, section, key).at(-1)?.value;
}

/** A list setting: assignments add up; an empty assignment clears what came before. */
export function unitList(unit: UnitFile, section: string, key: string): string[] {
  let out: string[] = [];
  for (const entry of unitAssignments(unit, section, key)) {
    if (entry.value === '') out = [];
    else out.push(...splitWords(entry.value, unit.path, entry.line).map((w) => w.text));
  }
  return out;
}

interface Word {
  text: string;
  /** Had quotes or escapes: `$VAR` in it is not a whole-word variable. */
  quoted: boolean;
}

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', s: ' ', '\\': '\\', '"': '"', "'": "'" };

/** Splits on blanks, with "double" and 'single' quotes and C escapes (`\n`, `\s`, `\x41`), as systemd does. */
export function splitWords(value: string, path = 'unit', line?: number): Word[] {
  const words: Word[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /\s/.test(value[i]!)) i++;
    if (i >= value.length) break;
    let text = '';
    let quoted = false;
    let quote: string | undefined;
    for (; i < value.length; i++) {
      const c = value[i]!;
      if (quote === undefined && /\s/.test(c)) break;
      if (c === quote) {
        quote = undefined;
      } else if (quote === undefined && (c === '"' || c === "'")) {
        quote = c;
        quoted = true;
      } else if (c === '\\') {
        const e = value[++i];
        quoted = true;
        if (e === undefined) bad(path, line, `a lone backslash at the end of ${JSON.stringify(value)}`);
        if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
          text += String.fromCharCode(parseInt(value.slice(i + 1, i + 3), 16));
          i += 2;
        } else if (/[0-7]/.test(e) && /^[0-7]{3}$/.test(value.slice(i, i + 3))) {
          text += String.fromCharCode(parseInt(value.slice(i, i + 3), 8));
          i += 2;
        } else if (ESCAPES[e] !== undefined) {
          text += ESCAPES[e];
        } else {
          bad(path, line, `unknown escape \\${e} in ${JSON.stringify(value)}`);
        }
      } else {
        text += c;
      }
    }
    if (quote !== undefined) bad(path, line, `unterminated ${quote} quote in ${JSON.stringify(value)}`);
    words.push({ text, quoted });
  }
  return words;
}

/** An Exec*= command line after systemd's word splitting and variable expansion. */
export interface ExecCommand {
  /** The program systemd executes (absolute). */
  path: string;
  /** argv, argv[0] included (the path, unless the `@` prefix gave another). */
  argv: string[];
  /** The prefixes before the path: `-` (failure ignored), `@`, `:`, `+`, `!`, `!!`. */
  prefixes: string;
}

/**
 * Splits an Exec*= value (systemd.service(5) "Command lines"): prefixes, then words; `%%` is a
 * `%`, other specifiers are refused; `${VAR}` becomes its value within a word, `$VAR` as a
 * whole word becomes its value split on blanks, `$$` is a `$`. A variable missing from `env`
 * is refused (systemd would use its environment, which a test does not have).
 */
export function parseExecCommand(value: string, env: Readonly<Record<string, string>> = {}, path = 'unit', line?: number): ExecCommand {
  const words = splitWords(value, path, line);
  if (words.some((w) => w.text === ';' && !w.quoted)) bad(path, line, `several commands in one line (";") are not supported: ${JSON.stringify(value)}`);
  const first = words[0];
  if (first === undefined) bad(path, line, 'an empty command line');
  const prefix = /^[-@:+!]*/.exec(first.text)![0];
  first.text = first.text.slice(prefix.length);
  const argv: string[] = [];
  for (const word of words) {
    const wholeVar = word.quoted ? null : /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word.text);
    if (wholeVar !== null) {
      argv.push(...lookup(wholeVar[1]!).split(/\s+/).filter((w) => w !== ''));
      continue;
    }
    let text = word.text.replace(/%(.)/g, (_, c: string) => (c === '%' ? '%' : bad(path, line, `specifier %${c} is not supported (in ${JSON.stringify(value)})`)));
    text = text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (all: string, name: string | undefined) => (all === '$$' ? '$' : lookup(name!)));
    argv.push(text);
  }
  function lookup(name: string): string {
    const v = env[name];
    if (v === undefined) bad(path, line, `$${name} has no value here (pass it in env): ${JSON.stringify(value)}`);
    return v;
  }
  const program = argv[0] ?? '';
  if (!program.startsWith('/')) bad(path, line, `the program must be an absolute path, got ${JSON.stringify(program)}`);
  if (prefix.includes('@')) argv.splice(0, 2, argv[1] ?? program);
  return { path: program, argv, prefixes: prefix };
}

/** Capability numbers (linux/capability.h), by the names systemd and setpriv use. */
export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** The CapEff-style mask of a list of capability names (`CAP_NET_ADMIN` → 1 << 12). */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const name of names) {
    const bit = CAPABILITIES.indexOf(name.toUpperCase());
    if (bit < 0) throw lnlbError('LNLB_ERR_LAB_SETUP', `unknown capability ${JSON.stringify(name)}`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

/** The names in a mask, in number order. */
export function capabilityNames(mask: bigint): string[] {
  return CAPABILITIES.filter((_, bit) => (mask & (1n << BigInt(bit))) !== 0n);
}

const ALL_CAPABILITIES = (1n << BigInt(CAPABILITIES.length)) - 1n;

/**
 * A capability set setting (CapabilityBoundingSet=, AmbientCapabilities=): each assignment is
 * a list, `~` before it meaning every capability but those; assignments are OR'd; an empty one
 * clears. `unset`: the value when the setting never appears.
 */
function capabilitySet(unit: UnitFile, key: string, unset: bigint): bigint {
  const entries = unitAssignments(unit, 'Service', key);
  if (entries.length === 0) return unset;
  let mask = 0n;
  for (const entry of entries) {
    if (entry.value === '') {
      mask = 0n;
      continue;
    }
    const invert = entry.value.startsWith('~');
    const names = splitWords(invert ? entry.value.slice(1) : entry.value, unit.path, entry.line).map((w) => w.text);
    let set: bigint;
    try {
      set = capabilityMask(names);
    } catch (err) {
      bad(unit.path, entry.line, (err as Error).message);
    }
    mask |= invert ? ALL_CAPABILITIES & ~set : set;
  }
  return mask;
}

/** yes/no, true/false, on/off, 1/0 (systemd's booleans). */
function unitBoolean(unit: UnitFile, key: string, fallback: boolean): boolean {
  const entry = unitAssignments(unit, 'Service', key).at(-1);
  if (entry === undefined || entry.value === '') return fallback;
  const v = entry.value.toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(v)) return true;
  if (['no', 'false', 'off', '0'].includes(v)) return false;
  bad(unit.path, entry.line, `${key}=: expected a boolean, got ${JSON.stringify(entry.value)}`);
}

const TIME_UNITS: Record<string, number> = {
  us: 1e-6, usec: 1e-6, ms: 1e-3, msec: 1e-3, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400,
};

/** A systemd time span in seconds: `15`, `15s`, `1min 30s`, `500ms`; `infinity` is Infinity. */
export function parseTimeSpan(text: string, what = 'time span'): number {
  const t = text.trim();
  if (t === 'infinity') return Infinity;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  let total = 0;
  let rest = t;
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)\s*/.exec(rest);
    const unit = m === null ? undefined : TIME_UNITS[m[2]!];
    if (m === null || unit === undefined) throw lnlbError('LNLB_ERR_LAB_SETUP', `${what}: expected a time span such as 15s or 1min 30s, got ${JSON.stringify(text)}`);
    total += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** The settings of a service unit this module can apply or that the tests check. */
export interface ServiceSettings {
  unit: UnitFile;
  /** simple or notify (the others are refused). */
  type: string;
  /** Whose sd_notify messages systemd takes: none, main, exec or all (default: main for Type=notify, else none). */
  notifyAccess: string;
  /** ExecStart= (exactly one: Type=simple runs one command). */
  execStart: ExecCommand;
  /** ExecReload= unexpanded (it names $MAINPID): parse it with parseExecCommand and a MAINPID. */
  execReload: string | undefined;
  restart: string;
  restartSec: number;
  /** Signal name, e.g. SIGTERM (systemd's default). */
  killSignal: string;
  /** Seconds systemd waits after KillSignal before SIGKILL (default 90). */
  timeoutStopSec: number;
  /** Names, in number order; every capability when unset. */
  capabilityBoundingSet: string[];
  ambientCapabilities: string[];
  noNewPrivileges: boolean;
  user: string | undefined;
  /** Absolute paths under /run. */
  runtimeDirectories: string[];
  runtimeDirectoryMode: number;
  /** no, yes, full or strict. */
  protectSystem: string;
  protectKernelTunables: boolean;
  /** Without their `-` / `+` prefixes. */
  readWritePaths: string[];
  privateTmp: boolean;
  protectHome: string;
  devicePolicy: string;
  deviceAllow: string[];
  wantedBy: string[];
  after: string[];
  wants: string[];
}

/** Reads a service unit's text; refuses what it cannot run as systemd would. */
export function readServiceUnit(text: string, path = 'unit'): ServiceSettings {
  const unit = parseUnitFile(text, path);
  if (!unit.sections.has('Service')) bad(path, undefined, 'no [Service] section');
  const value = (key: string): string | undefined => unitValue(unit, 'Service', key);
  let starts: UnitEntry[] = [];
  for (const entry of unitAssignments(unit, 'Service', 'ExecStart')) starts = entry.value === '' ? [] : [...starts, entry];
  const type = value('Type') ?? 'simple';
  if (type !== 'simple' && type !== 'notify') bad(path, undefined, `Type=${type} is not emulated (only simple and notify)`);
  const notifyAccess = value('NotifyAccess') ?? (type === 'notify' ? 'main' : 'none');
  if (starts.length !== 1) bad(path, undefined, `expected one ExecStart= for Type=${type}, found ${starts.length}`);
  const start = starts[0]!;
  const timeoutEntry = unitAssignments(unit, 'Service', 'TimeoutStopSec').at(-1);
  const killSignal = value('KillSignal') ?? 'SIGTERM';
  const mode = value('RuntimeDirectoryMode') ?? '0755';
  if (!/^[0-7]{3,4}$/.test(mode)) bad(path, undefined, `RuntimeDirectoryMode=: expected an octal mode, got ${JSON.stringify(mode)}`);
  return {
    unit,
    type,
    notifyAccess,
    execStart: parseExecCommand(start.value, {}, path, start.line),
    execReload: value('ExecReload'),
    restart: value('Restart') ?? 'no',
    restartSec: parseTimeSpan(value('RestartSec') ?? '100ms', 'RestartSec='),
    killSignal: killSignal.startsWith('SIG') ? killSignal : `SIG${killSignal}`,
    timeoutStopSec: timeoutEntry === undefined ? 90 : parseTimeSpan(timeoutEntry.value, `${path}:${timeoutEntry.line}: TimeoutStopSec=`),
    capabilityBoundingSet: capabilityNames(capabilitySet(unit, 'CapabilityBoundingSet', ALL_CAPABILITIES)),
    ambientCapabilities: capabilityNames(capabilitySet(unit, 'AmbientCapabilities', 0n)),
    noNewPrivileges: unitBoolean(unit, 'NoNewPrivileges', false),
    user: value('User') || undefined,
    runtimeDirectories: unitList(unit, 'Service', 'RuntimeDirectory').map((d) => `/run/${d}`),
    runtimeDirectoryMode: parseInt(mode, 8),
    protectSystem: (value('ProtectSystem') ?? 'no').replace(/^(true|on|1)$/, 'yes').replace(/^(false|off|0)$/, 'no'),
    protectKernelTunables: unitBoolean(unit, 'ProtectKernelTunables', false),
    readWritePaths: unitList(unit, 'Service', 'ReadWritePaths').map((p) => p.replace(/^[-+]+/, '')),
    privateTmp: unitBoolean(unit, 'PrivateTmp', false),
    protectHome: value('ProtectHome') ?? 'no',
    devicePolicy: value('DevicePolicy') ?? 'auto',
    deviceAllow: unitAssignments(unit, 'Service', 'DeviceAllow').map((e) => e.value),
    wantedBy: unitList(unit, 'Install', 'WantedBy'),
    after: unitList(unit, 'Unit', 'After'),
    wants: unitList(unit, 'Unit', 'Wants'),
  };
}

/** `CAP_NET_ADMIN` → `net_admin`, setpriv's spelling. */
function setprivCap(name: string): string {
  return name.replace(/^CAP_/, '').toLowerCase();
}

function capList(names: readonly string[]): string {
  return ['-all', ...names.map((n) => `+${setprivCap(n)}`)].join(',');
}

/**
 * `setpriv ... -- argv`: the capabilities and no_new_privs systemd gives the service. As
 * systemd does, the ambient set is also made inheritable (the kernel keeps an ambient
 * capability only while it is permitted and inheritable). For uid 0 the bounding set is what
 * limits the effective set after exec; the ambient set matters once a User= is given.
 */
export function setprivArgv(settings: ServiceSettings, argv: readonly string[], setpriv = 'setpriv'): string[] {
  if (settings.user !== undefined && settings.user !== 'root' && settings.user !== '0') {
    throw lnlbError('LNLB_ERR_LAB_SETUP', `User=${settings.user} is not emulated: only services run as root`);
  }
  const out = [setpriv];
  if (settings.capabilityBoundingSet.length < CAPABILITIES.length) out.push(`--bounding-set=${capList(settings.capabilityBoundingSet)}`);
  out.push(`--inh-caps=${capList(settings.ambientCapabilities)}`);
  if (settings.ambientCapabilities.length > 0) out.push(`--ambient-caps=${capList(settings.ambientCapabilities)}`);
  if (settings.noNewPrivileges) out.push('--no-new-privs');
  return [...out, '--', ...argv];
}

/** Paths of a sandbox: `/run/lnlb` of the unit may be a test's own run directory. */
export type PathMap = Readonly<Record<string, string>>;

/**
 * Binds every path given before the first `--` onto itself (the writable ones, on top of the
 * read-only ones), remounts every path between the two `--` read-only, then execs the rest.
 */
const SANDBOX_SCRIPT = 'while [ "$1" != -- ]; do mount --bind "$1" "$1"; shift; done; shift; while [ "$1" != -- ]; do mount -o remount,bind,ro "$1"; shift; done; shift; exec "$@"';

/**
 * `unshare --mount ... -- argv` in a private mount namespace with the unit's read-only file
 * system: ProtectSystem=strict (`/` read-only), ProtectKernelTunables= (/proc/sys and /sys read-only), and ReadWritePaths= and the
 * RuntimeDirectory= writable again (their own mounts, as systemd makes them). An approximation:
 * other mounts than `/` (a /tmp or /run of their own) stay as they are; PrivateTmp=,
 * ProtectHome= and the device policy are not applied. Paths are mapped through `map` first.
 */
export function mountSandboxArgv(settings: ServiceSettings, argv: readonly string[], map: PathMap = {}, tools: { unshare?: string; sh?: string } = {}): string[] {
  const mapped = (p: string): string => map[p] ?? p;
  const readOnly: string[] = [];
  if (settings.protectSystem === 'strict') readOnly.push('/');
  else if (settings.protectSystem !== 'no') throw lnlbError('LNLB_ERR_LAB_SETUP', `ProtectSystem=${settings.protectSystem} is not emulated (only strict and no)`);
  if (settings.protectKernelTunables) readOnly.push('/proc/sys', '/sys');
  const writable = [...settings.readWritePaths, ...settings.runtimeDirectories].map(mapped);
  // /proc/sys and /sys get a bind of their own first, so that remounting them read-only
  // touches nothing else ('/' is a mount point already).
  const binds = [...readOnly.filter((p) => p !== '/'), ...new Set(writable)];
  return [tools.unshare ?? 'unshare', '--mount', '--propagation', 'private', '--', tools.sh ?? 'sh', '-euc', SANDBOX_SCRIPT, 'sh', ...binds, '--', ...readOnly, '--', ...argv];
}

/** One sd_notify message as the service manager received it. */
export interface NotifyMessage {
  /** Date.now() when it arrived. */
  at: number;
  /** The process that sent it (the kernel's credentials, SO_PASSCRED). */
  pid: number;
  /** Its `KEY=value` lines. */
  fields: Record<string, string>;
}

/** `READY=1\nSTATUS=...`: the fields of one sd_notify message (the first `=` splits a line). Pure. */
export function parseNotifyMessage(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

/**
 * The service manager's end of sd_notify, as systemd makes it for a Type=notify unit: a unix
 * datagram socket whose path the service gets as $NOTIFY_SOCKET (`env`). Every message is kept
 * with the time it arrived and the pid that sent it, so a test can check what systemd would:
 * READY=1 and when, from the main process (NotifyAccess=main). close() removes the socket.
 */
export class NotifySocket {
  readonly path: string;
  readonly messages: NotifyMessage[] = [];
  readonly #fd: number;
  readonly #watcher: port.Watcher;

  constructor(path: string) {
    this.path = path;
    this.#fd = notifyListen(path);
    this.#watcher = port.watch(this.#fd, () => {
      for (let d = notifyRecv(this.#fd); d !== null; d = notifyRecv(this.#fd)) this.messages.push({ at: Date.now(), pid: d.pid, fields: parseNotifyMessage(d.message) });
    });
    this.#watcher.unref();
  }

  /** What the service's environment gets. */
  get env(): { NOTIFY_SOCKET: string } {
    return { NOTIFY_SOCKET: this.path };
  }

  /** The first message (from `from` on) with this field, e.g. ('READY', '1'); waits up to timeoutMs. */
  async waitFor(key: string, value: string | RegExp, timeoutMs: number, from = 0): Promise<NotifyMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find((m) => m.fields[key] !== undefined && (typeof value === 'string' ? m.fields[key] === value : value.test(m.fields[key]!)));
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw lnlbError('LNLB_ERR_LAB_SETUP', `no ${key}=${String(value)} on ${this.path} within ${timeoutMs} ms; received: ${JSON.stringify(this.messages.map((m) => m.fields))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.#watcher.stop();
    port.close(this.#fd);
    rmSync(this.path, { force: true });
  }
}
