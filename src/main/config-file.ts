/**
 * lnlbd's config file: the daemon options of DAEMON_OPTIONS, one `key = value` a line, the key
 * being the long flag without `--` (`heartbeat-ms = 500`). Values are checked by the option's
 * own parser as the file is read, so a bad value is reported with its file and line; the file's
 * raw strings are then merged under the command line and resolved like flags (one table, one
 * path: STYLE.md habit 1). The format is described in docs/config.md.
 *
 *   # a comment                      whole line, or after whitespace
 *   vip = 10.0.0.100
 *   rule = 22/tcp=single,priority=1   repeatable keys accumulate, in order
 *   rule = 443/tcp=multiple,affinity=none
 *   bond = bond0 mode=802.3ad miimon=100 slaves=eth1,eth2   a value may hold spaces (up to a comment)
 *   name = "nlb#%d"                   double quotes keep a '#' (\" and \\ inside them)
 */

import { existsSync, readFileSync } from 'node:fs';
import { isLnlbError, lnlbError } from '../errors.js';
import { DAEMON_OPTIONS, REPEAT_SEPARATOR, resolveDaemonOptions, type DaemonOptions } from './options.js';
import { editDistance } from '../edit-distance.js';

/** Read when `--config` is not given, if it exists. */
export const DEFAULT_CONFIG_PATH = '/etc/lnlb/lnlb.conf';

/** Options as raw strings (a repeatable option's values NUL-joined): what resolveDaemonOptions takes. */
export type RawOptions = Partial<Record<keyof DaemonOptions, string>>;

/** A config file read and checked: its raw options and the line each key is on. */
export interface ConfigFile {
  path: string;
  values: RawOptions;
  /** The line of each key given (a repeatable key's first line). */
  lines: Partial<Record<keyof DaemonOptions, number>>;
}

type Spec = (typeof DAEMON_OPTIONS)[number];

/** `--heartbeat-ms <ms>` → `--heartbeat-ms`. */
const flagOf = (spec: Spec): string => spec.flag.split(' ')[0]!;

/** The file's keys: every option but `config` itself (a file does not name another file). */
const SPECS_BY_KEY: ReadonlyMap<string, Spec> = new Map(DAEMON_OPTIONS.filter((s) => s.key !== 'config').map((s) => [flagOf(s).slice(2), s]));

/** The option a `--flag` named in a message belongs to. */
const KEY_BY_FLAG: ReadonlyMap<string, keyof DaemonOptions> = new Map(DAEMON_OPTIONS.map((s) => [flagOf(s), s.key]));

/** Every key a config file accepts, in table order. */
export const CONFIG_KEYS: readonly string[] = [...SPECS_BY_KEY.keys()];

function invalid(path: string, line: number | undefined, message: string, cause?: unknown): never {
  throw lnlbError('LNLB_ERR_CONFIG_INVALID', `${path}${line === undefined ? '' : `:${line}`}: ${message}`, cause === undefined ? undefined : { cause });
}

/** The known key an unknown one was probably meant to be: `--vip`, `heartbeatMs`, `heartbeat`, `wokers`. */
export function suggestKey(key: string): string | undefined {
  const norm = key
    .replace(/^-+/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
  if (SPECS_BY_KEY.has(norm)) return norm;
  if (norm.length >= 3) {
    const prefixed = CONFIG_KEYS.find((k) => k.startsWith(norm) || (k.length >= 3 && norm.startsWith(k)));
    if (prefixed !== undefined) return prefixed;
  }
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(norm.length / 3)) + 1;
  for (const k of CONFIG_KEYS) {
    const d = editDistance(norm, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** A line's value after `key =`: unquoted up to a comment, or double-quoted (`\"`, `\\`). */
function valueOf(rest: string, path: string, line: number, key: string): string {
  if (!rest.startsWith('"')) {
    const comment = /(^|\s)#/.exec(rest);
    return (comment === null ? rest : rest.slice(0, comment.index)).trim();
  }
  let value = '';
  for (let i = 1; i < rest.length; i++) {
    const c = rest[i]!;
    if (c === '\\' && (rest[i + 1] === '"' || rest[i + 1] === '\\')) {
      value += rest[++i];
    } else if (c === '"') {
      const after = rest.slice(i + 1);
      if (!/^\s*(#.*)?$/.test(after)) invalid(path, line, `"${key}": unexpected text after the closing quote: ${JSON.stringify(after.trim())}`);
      return value;
    } else {
      value += c;
    }
  }
  invalid(path, line, `"${key}": the value's opening quote is never closed`);
}

/**
 * Runs an option's own parser on a value; its LNLB_ERR_CLI_BAD_FLAG comes back with the file and
 * line, and so does a retired value (with its own code: what changed is the news).
 */
function check(spec: Spec, raw: string, path: string, line: number): void {
  try {
    spec.parse(raw, flagOf(spec));
  } catch (err) {
    if (isLnlbError(err) && err.code === 'LNLB_ERR_CLI_BAD_FLAG') invalid(path, line, err.message, err);
    // A bad health check keeps its own code, with the file and line in front.
    if (isLnlbError(err) && err.code === 'LNLB_ERR_HEALTH_BAD_CHECK') throw lnlbError(err.code, `${path}:${line}: ${err.message}`, { cause: err });
    if (isLnlbError(err) && (err.code === 'LNLB_ERR_WEIGHT_MANUAL_RETIRED' || err.code === 'LNLB_ERR_WEIGHT_MODE')) throw lnlbError(err.code, `${path}:${line}: ${err.message.replace(/^--/, '')}`, { cause: err });
    throw err;
  }
}

/** Reads a config file's text; every line and every value is checked here (path: for messages). */
export function readConfig(text: string, path: string): ConfigFile {
  const values: RawOptions = {};
  const lines: ConfigFile['lines'] = {};
  const repeated = new Map<keyof DaemonOptions, string[]>();
  const all = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < all.length; i++) {
    const n = i + 1;
    const content = all[i]!.trim();
    if (content === '' || content.startsWith('#')) continue;
    const m = /^([^\s=#"]+)\s*=\s*(.*)$/.exec(content);
    if (m === null) invalid(path, n, `expected key = value, got ${JSON.stringify(content)}`);
    const key = m[1]!;
    const spec = SPECS_BY_KEY.get(key);
    if (spec === undefined) {
      if (key === 'config') invalid(path, n, '"config" cannot be given in a config file (give --config on the command line)');
      const near = suggestKey(key);
      invalid(path, n, `unknown key ${JSON.stringify(key)}${near === undefined ? '' : ` (did you mean ${JSON.stringify(near)}?)`}`);
    }
    const value = valueOf(m[2]!, path, n, key);
    if (value === '') invalid(path, n, `"${key}" has no value (write ${key} = <value>; a "#" after a space starts a comment)`);
    if (value.includes(REPEAT_SEPARATOR)) invalid(path, n, `"${key}": the value holds a NUL character`);
    const first = lines[spec.key];
    if ('repeatable' in spec && spec.repeatable) {
      // Checked with the values before it, so that a conflict (overlapping rules, a protocol's
      // second handler) is reported on the line that brings it.
      const list = repeated.get(spec.key) ?? [];
      list.push(value);
      repeated.set(spec.key, list);
      check(spec, list.join(REPEAT_SEPARATOR), path, n);
      values[spec.key] = list.join(REPEAT_SEPARATOR);
    } else {
      if (first !== undefined) invalid(path, n, `"${key}" is given twice (first on line ${first})`);
      check(spec, value, path, n);
      values[spec.key] = value;
    }
    lines[spec.key] ??= n;
  }
  return { path, values, lines };
}

/** A config file's text as raw options (what resolveDaemonOptions takes); throws LNLB_ERR_CONFIG_INVALID. */
export function parseConfigFile(text: string, path: string): RawOptions {
  return readConfig(text, path).values;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

/** Reads and checks the config file at `path`; an unreadable file is LNLB_ERR_CONFIG_INVALID with its errno. */
export function loadConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw lnlbError('LNLB_ERR_CONFIG_INVALID', `${path}: cannot read the config file: ${errno}${READ_ERRORS[errno] === undefined ? '' : ` (${READ_ERRORS[errno]})`}`, { cause: err, errno });
  }
  return readConfig(text, path);
}

/**
 * The command line over the file: a key given on the command line wins, whole; for a repeatable
 * option (`--rule`, `--handler`, `--bond`) the command line's values replace the file's, they do not add
 * to them. `config` becomes the file read.
 */
export function mergeOptions(commandLine: RawOptions, file: ConfigFile | undefined): RawOptions {
  const merged: RawOptions = { ...file?.values };
  for (const [key, value] of Object.entries(commandLine) as [keyof DaemonOptions, string | undefined][]) {
    if (value !== undefined) merged[key] = value;
  }
  if (file !== undefined) merged.config = file.path;
  return merged;
}

/**
 * Resolves the merged options. A cross-option refusal (`--dead-after-ms: must be longer than
 * --heartbeat-ms`) is reported on the file's line when the first flag it names that the file
 * set (and the command line did not) is there.
 */
export function resolveWithConfig(commandLine: RawOptions, file: ConfigFile | undefined): DaemonOptions {
  try {
    return resolveDaemonOptions(mergeOptions(commandLine, file));
  } catch (err) {
    if (file === undefined || !isLnlbError(err) || err.code !== 'LNLB_ERR_CLI_BAD_FLAG') throw err;
    for (const [flag] of err.message.matchAll(/--[a-z][a-z0-9-]*/g)) {
      const key = KEY_BY_FLAG.get(flag);
      if (key === undefined || commandLine[key] !== undefined) continue;
      const line = file.lines[key];
      if (line !== undefined) invalid(file.path, line, err.message, err);
    }
    throw err;
  }
}

/**
 * lnlbd's options: the file `--config` names (it must be readable), else `defaultPath` if it
 * exists, else none; merged under the command line and resolved.
 */
export function daemonOptions(commandLine: RawOptions, defaultPath: string = DEFAULT_CONFIG_PATH): DaemonOptions {
  let file: ConfigFile | undefined;
  if (commandLine.config !== undefined) {
    DAEMON_OPTIONS.find((s) => s.key === 'config')!.parse(commandLine.config, '--config');
    file = loadConfigFile(commandLine.config);
  } else if (existsSync(defaultPath)) {
    file = loadConfigFile(defaultPath);
  }
  return resolveWithConfig(commandLine, file);
}
