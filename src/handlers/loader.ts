/**
 * Finding, loading and checking protocol handlers (`--handler <proto>=<module>`).
 *
 * A handler is named by a HandlerSpec: the IP protocol it is registered for, the module that
 * holds it (a `builtin:<name>` or an absolute `file://` URL) and what the operator wrote. A spec
 * is plain data, so the main thread parses the flags once and hands the specs to the
 * dispatcher and actor threads, and each thread loads its own copy with `loadHandler` (a
 * handler's code and tracker live in the thread that runs them; only specs cross threads).
 *
 * `loadHandler` checks the contract when the handler is loaded, not when the first frame
 * arrives (fastify's plugin-utils habit, STYLE.md 9): first who may change the module (the
 * file, after symlinks, and every directory above it: owned by the daemon's user or root, not
 * writable by group or others, or LNLB_ERR_HANDLER_UNSAFE: whoever can write it runs code as
 * the daemon), then the export's shape, its `apiVersion` and `protocol`, then a smoke test that
 * creates a small tracker and runs every method once on a synthetic frame. A module that
 * cannot be imported is LNLB_ERR_HANDLER_LOAD; one that breaks the contract is
 * LNLB_ERR_HANDLER_INVALID; every message names the module and the problem.
 *
 * The daemon runs the smoke test of a module in a worker thread with a time limit
 * (src/workers/handler-self-test.ts), so a method that never returns is refused instead of
 * hanging the start; `onStep` tells that thread which method is running.
 *
 * Built-ins are imported by URL relative to this file (default.js, tcp.js, udp.js next to it),
 * with a dynamic import, so this module neither depends on nor loads a built-in it is not
 * asked for.
 */

import { execFileSync } from 'node:child_process';
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { lnlbError } from '../errors.js';
import { ETH_P_IP, writeEthernetHeader } from '../net/ethernet.js';
import { IPPROTO_TCP, IPPROTO_UDP, writeIPv4Header } from '../net/ipv4.js';
import {
  AFFINITY_KEY_WORDS,
  DROP_FRAME,
  FRAME_FLAGS_MASK,
  HANDLER_API_VERSION,
  UNTRACKED,
  type ParsedFrame,
  type ProtocolHandler,
  type Tracker,
} from './handler.js';

export interface HandlerSpec {
  /** IP protocol 0..255; 0 = the default handler (every protocol without its own). */
  protocol: number;
  /** `builtin:<name>` or an absolute `file://` URL. */
  module: string;
  /** What the operator wrote (`icmp=./icmp-echo.js`), for messages. */
  label: string;
}

/** Protocol names `--handler` accepts besides numbers. */
export const PROTOCOL_NAMES: Readonly<Record<string, number>> = {
  default: 0,
  icmp: 1,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  sctp: 132,
};

/** Built-in handler name → the module next to this file and the export that holds it. */
const BUILTINS: Readonly<Record<string, { file: string; exportName: string }>> = {
  default: { file: './default.js', exportName: 'sourceIpHandler' },
  tcp: { file: './tcp.js', exportName: 'tcpHandler' },
  udp: { file: './udp.js', exportName: 'udpHandler' },
};

const BUILTIN_PREFIX = 'builtin:';

/**
 * What the daemon registers when the operator gives no --handler: LNLB's default handler for
 * every protocol, so a client (per port rule) sticks to its node across joins and deaths, new
 * connections included. The tcp and udp handlers (one entry per connection or flow, new
 * connections by the view in force) are one flag away: --handler tcp=tcp --handler udp=udp.
 */
export const BUILTIN_HANDLERS: readonly HandlerSpec[] = Object.freeze([Object.freeze({ protocol: 0, module: 'builtin:default', label: 'default=default (built-in)' })]);

function badFlag(flag: string, why: string): Error {
  return lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${flag}: ${why}`);
}

/**
 * Parses one `--handler <proto>=<module>`. proto: 0..255 or a name of PROTOCOL_NAMES; module: a
 * built-in name (default, tcp, udp) or a path to an ESM module (relative to the working
 * directory; a `file:` URL is taken as it is). A file named like a built-in is given as
 * `./tcp`.
 */
export function parseHandlerSpec(raw: string, flag: string): HandlerSpec {
  const eq = raw.indexOf('=');
  if (eq < 0) throw badFlag(flag, `expected <proto>=<module>, got "${raw}"`);
  const proto = raw.slice(0, eq).trim().toLowerCase();
  const module = raw.slice(eq + 1).trim();
  if (proto === '' || module === '') throw badFlag(flag, `expected <proto>=<module>, got "${raw}"`);

  let protocol: number;
  if (/^\d+$/.test(proto)) {
    protocol = Number(proto);
    if (protocol > 255) throw badFlag(flag, `protocol ${proto} in "${raw}" is not an IP protocol number (0..255)`);
  } else {
    const named = PROTOCOL_NAMES[proto];
    if (named === undefined) {
      throw badFlag(flag, `unknown protocol "${proto}" in "${raw}": give a number 0..255 or one of ${Object.keys(PROTOCOL_NAMES).join(', ')}`);
    }
    protocol = named;
  }

  let url: string;
  if (Object.hasOwn(BUILTINS, module)) {
    url = BUILTIN_PREFIX + module;
  } else if (module.startsWith('file:')) {
    try {
      url = pathToFileURL(fileURLToPath(module)).href;
    } catch {
      throw badFlag(flag, `"${module}" in "${raw}" is not a valid file: URL`);
    }
  } else if (module.startsWith(BUILTIN_PREFIX)) {
    throw badFlag(flag, `no built-in handler "${module.slice(BUILTIN_PREFIX.length)}" in "${raw}": the built-ins are ${Object.keys(BUILTINS).join(', ')}`);
  } else {
    url = pathToFileURL(isAbsolute(module) ? module : resolve(process.cwd(), module)).href;
  }
  return { protocol, module: url, label: raw };
}

/**
 * The handlers to register: the built-ins with the operator's specs over them (the operator's
 * wins for the same protocol), sorted by protocol. The position in the result is the handler's
 * index (the CONNTRACK flags of its tracking state), so every node must get the same list; the
 * protocol-0 handler is always there, at index 0.
 */
export function resolveHandlerSpecs(specs: readonly HandlerSpec[]): HandlerSpec[] {
  const byProtocol = new Map<number, HandlerSpec>();
  for (const spec of specs) {
    const earlier = byProtocol.get(spec.protocol);
    if (earlier !== undefined) {
      throw badFlag('--handler', `protocol ${spec.protocol} is given twice ("${earlier.label}" and "${spec.label}"); give one handler per protocol`);
    }
    byProtocol.set(spec.protocol, spec);
  }
  for (const builtin of BUILTIN_HANDLERS) {
    if (!byProtocol.has(builtin.protocol)) byProtocol.set(builtin.protocol, { ...builtin });
  }
  return [...byProtocol.values()].sort((a, b) => a.protocol - b.protocol);
}

/** The module a spec names, as people read it: `handler module <path>` or `built-in handler tcp (<path>)`. */
export function describeModule(spec: HandlerSpec): string {
  if (spec.module.startsWith(BUILTIN_PREFIX)) {
    const name = spec.module.slice(BUILTIN_PREFIX.length);
    const builtin = BUILTINS[name];
    return builtin === undefined ? `built-in handler ${name}` : `built-in handler ${name} (${fileURLToPath(new URL(builtin.file, import.meta.url))})`;
  }
  return `handler module ${spec.module.startsWith('file:') ? fileURLToPath(spec.module) : spec.module}`;
}

function firstLine(err: unknown): string {
  if (err instanceof Error) {
    const line = err.message.split('\n', 1)[0] ?? '';
    return `${err.name}: ${line}`;
  }
  return String(err).split('\n', 1)[0] ?? '';
}

/**
 * Where a syntax error is: import() in Node 20 says what but not where, `node --check` says
 * both ("<path>:<line>" first). Only on the error path, at startup.
 */
function syntaxErrorLocation(path: string): string | undefined {
  try {
    execFileSync(process.execPath, ['--check', path], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
    return undefined; // the file parses: the error is in a module it imports
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8') ?? '';
    const lines = stderr.split('\n');
    const where = lines[0] ?? '';
    if (!/:\d+$/.test(where)) return undefined;
    const source = (lines[1] ?? '').trim();
    return source === '' ? where : `${where} \`${source}\``;
  }
}

/** `url`: the URL that was imported. */
function loadFailed(spec: HandlerSpec, url: string, err: unknown): Error {
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  let why: string;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' && err instanceof Error && err.message.includes(`'${path}'`)) {
    why = 'no such file';
  } else {
    why = firstLine(err);
    if (err instanceof SyntaxError && path !== url) {
      const where = syntaxErrorLocation(path);
      if (where !== undefined) why += ` at ${where}`;
    }
  }
  return lnlbError('LNLB_ERR_HANDLER_LOAD', `handler ${spec.label}: cannot load ${describeModule(spec)}: ${why}; fix the module or the path (docs/handlers.md)`, {
    cause: err,
  });
}

function invalid(spec: HandlerSpec, why: string, cause?: unknown): Error {
  return lnlbError(
    'LNLB_ERR_HANDLER_INVALID',
    `handler ${spec.label}: ${describeModule(spec)} is not a valid lnlb protocol handler: ${why}; fix the module (docs/handlers.md)`,
    cause === undefined ? undefined : { cause },
  );
}

/** What the ownership rule reads of a file or directory (an fs.Stats has both). */
export interface PathOwnership {
  uid: number;
  mode: number;
}

const S_IWGRP = 0o020;
const S_IWOTH = 0o002;
const S_ISVTX = 0o1000;

/**
 * Why someone other than the daemon's user (`euid`) or root can change what this file or
 * directory holds, or undefined when nobody can. Pure. `strict` for the module file and its
 * own directory: no group or other write at all. An ancestor directory may be world-writable
 * if it is sticky (/tmp): there nobody but an entry's owner can rename or remove it.
 */
export function ownershipProblem(entry: PathOwnership, euid: number, strict: boolean): { why: string; fix: (path: string) => string } | undefined {
  if (entry.uid !== euid && entry.uid !== 0) {
    return {
      why: `owned by uid ${entry.uid}, not by this daemon's user (uid ${euid}) or root`,
      fix: (path) => `chown ${euid === 0 ? 'root' : euid} ${path}`,
    };
  }
  const writable = entry.mode & (S_IWGRP | S_IWOTH);
  if (writable !== 0 && (strict || (entry.mode & S_ISVTX) === 0)) {
    const who = writable === (S_IWGRP | S_IWOTH) ? 'group and others' : writable === S_IWGRP ? 'its group' : 'others';
    return { why: `writable by ${who} (mode ${(entry.mode & 0o7777).toString(8).padStart(4, '0')})`, fix: (path) => `chmod go-w ${path}` };
  }
  return undefined;
}

function unsafe(spec: HandlerSpec, what: string, path: string, problem: { why: string; fix: (path: string) => string }): Error {
  return lnlbError(
    'LNLB_ERR_HANDLER_UNSAFE',
    `handler ${spec.label}: refusing ${describeModule(spec)}: ${what} ${path} is ${problem.why}, so someone else could change the code this daemon runs; fix: ${problem.fix(path)} (docs/handlers.md)`,
  );
}

/**
 * Checks who may change the module at `url` (see ownershipProblem): the file it resolves to,
 * its directory, every directory above. Returns the resolved file's URL, which is what gets
 * imported (a symlink swapped after the check is not followed). A file that does not exist is
 * left to the import, which says so.
 */
function checkModuleOwnership(spec: HandlerSpec, url: string, euid: number): string {
  const path = fileURLToPath(url);
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return url;
    throw loadFailed(spec, url, err);
  }
  const linked = real === path ? '' : ` (where ${path} leads)`;
  const file = lstatSync(real);
  if (!file.isFile()) throw lnlbError('LNLB_ERR_HANDLER_LOAD', `handler ${spec.label}: cannot load ${describeModule(spec)}: ${real}${linked} is not a regular file; give the path of an ES module file (docs/handlers.md)`);
  const fileProblem = ownershipProblem(file, euid, true);
  if (fileProblem !== undefined) throw unsafe(spec, `the file${linked}`, real, fileProblem);
  let dir = dirname(real);
  for (let depth = 0; ; depth++) {
    const problem = ownershipProblem(lstatSync(dir), euid, depth === 0);
    if (problem !== undefined) throw unsafe(spec, depth === 0 ? 'its directory' : 'the directory above it', dir, problem);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return pathToFileURL(real).href;
}

export interface LoadOptions {
  /**
   * Run the smoke test here (default true). The daemon runs it in a worker thread with a time
   * limit first (src/workers/handler-self-test.ts) and loads with false.
   */
  smokeTest?: boolean;
  /** Called before each step of the checks, with its name (SELF_TEST_STEPS). */
  onStep?: (step: SelfTestStep) => void;
  /** The daemon's effective uid, for the ownership check (default: process.geteuid()). */
  euid?: number;
}

/**
 * The steps of loading a handler, in order, as the self-test thread reports them: which method
 * a handler did not return from. Index 0: not started.
 */
export const SELF_TEST_STEPS = [
  'nothing yet',
  'import',
  'its exports',
  'trackerBytes',
  'createTracker',
  'affinityKey',
  'isRelated',
  'assigned',
  'saveStatus',
  'clear',
  'size',
  'loadStatus',
  'evictions',
  'expire',
  'nodeDied',
  'nodeDiedSlice',
  'counters',
  'describeKey',
] as const;
export type SelfTestStep = (typeof SELF_TEST_STEPS)[number];

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value;
}

/**
 * Imports the handler a spec names and checks it (see the file comment). Works in any thread:
 * it needs nothing but the spec. The result is the module's own object (a derived one when the
 * built-in default handler is registered for another protocol).
 */
export async function loadHandler(spec: HandlerSpec, options: LoadOptions = {}): Promise<ProtocolHandler> {
  const step = options.onStep ?? ((): void => undefined);
  let url: string;
  let exportName: string | undefined;
  if (spec.module.startsWith(BUILTIN_PREFIX)) {
    const builtin = BUILTINS[spec.module.slice(BUILTIN_PREFIX.length)];
    if (builtin === undefined) throw invalid(spec, `there is no such built-in handler (the built-ins are ${Object.keys(BUILTINS).join(', ')})`);
    url = new URL(builtin.file, import.meta.url).href;
    exportName = builtin.exportName;
  } else {
    url = spec.module;
  }
  // The shipped ones too: the same rule, which a package installed as it should passes.
  if (url.startsWith('file:')) url = checkModuleOwnership(spec, url, options.euid ?? process.geteuid?.() ?? 0);

  let namespace: Record<string, unknown>;
  step('import');
  try {
    namespace = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw loadFailed(spec, url, err);
  }

  step('its exports');
  let candidate: unknown;
  if (exportName !== undefined) {
    candidate = namespace[exportName];
    if (candidate === undefined) throw invalid(spec, `it has no export \`${exportName}\``);
  } else {
    candidate = namespace['default'] ?? namespace['handler'];
    if (candidate === undefined) throw invalid(spec, 'it has neither a default export nor an export named `handler`');
  }
  if (typeof candidate !== 'object' || candidate === null) {
    throw invalid(spec, `its ${exportName ?? (namespace['default'] !== undefined ? 'default export' : '`handler` export')} is ${describeValue(candidate)}, not a handler object`);
  }
  let handler = candidate as ProtocolHandler;

  // The built-in default handler tracks by source IP whatever the protocol: `tcp=default`
  // registers it for TCP instead of the tcp handler.
  if (spec.module === `${BUILTIN_PREFIX}default` && handler.protocol === 0 && spec.protocol !== 0) {
    handler = Object.create(handler, { protocol: { value: spec.protocol, enumerable: true } }) as ProtocolHandler;
  }

  checkShape(spec, handler);
  if (options.smokeTest !== false) smokeTest(spec, handler, step);
  return handler;
}

const HANDLER_METHODS = ['affinityKey', 'trackerBytes', 'createTracker'] as const;
const OPTIONAL_HANDLER_METHODS = ['interfaceCreated', 'interfaceDeleted', 'describeKey'] as const;
const TRACKER_METHODS = ['isRelated', 'assigned', 'nodeDied', 'clear', 'expire', 'saveStatus', 'loadStatus'] as const;

/** The static checks, every problem at once. */
function checkShape(spec: HandlerSpec, handler: ProtocolHandler): void {
  const h = handler as unknown as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof h['name'] !== 'string' || h['name'] === '') problems.push(`\`name\` must be a non-empty string, it is ${describeValue(h['name'])}`);
  if (h['apiVersion'] !== HANDLER_API_VERSION) {
    problems.push(
      h['apiVersion'] === undefined
        ? `it has no \`apiVersion\`; this lnlb speaks handler API version ${HANDLER_API_VERSION}`
        : `it implements handler API version ${describeValue(h['apiVersion']).replace(/^number /, '')}, this lnlb speaks version ${HANDLER_API_VERSION}`,
    );
  }
  const protocol = h['protocol'];
  if (typeof protocol !== 'number' || !Number.isInteger(protocol) || protocol < 0 || protocol > 255) {
    problems.push(`\`protocol\` must be an IP protocol number 0..255, it is ${describeValue(protocol)}`);
  } else if (protocol !== spec.protocol) {
    problems.push(`it declares protocol ${protocol} but is registered for protocol ${spec.protocol}`);
  }
  for (const method of HANDLER_METHODS) {
    if (typeof h[method] !== 'function') problems.push(`\`${method}\` must be a function, it is ${h[method] === undefined ? 'missing' : describeValue(h[method])}`);
  }
  for (const method of OPTIONAL_HANDLER_METHODS) {
    if (h[method] !== undefined && typeof h[method] !== 'function') problems.push(`\`${method}\` is optional but must be a function when present, it is ${describeValue(h[method])}`);
  }
  if (problems.length > 0) throw invalid(spec, problems.join('; '));
}

/** The smoke test's clock (u32 seconds; the value does not matter). */
const SMOKE_NOW = 1_000_000;
const SMOKE_CAPACITY = 1024;
const SMOKE_OWNER = 1;

/** Ethernet + IPv4 + 8 bytes of L4 of `protocol` (ports 40000 → 80 for TCP and UDP), 10.0.1.7 → 10.0.0.100. */
function smokeFrame(protocol: number): ParsedFrame {
  const l4Bytes = 8;
  const length = 14 + 20 + l4Bytes;
  // Room after the frame, as in the kernel's ring the dispatcher reads in place: a handler that reads a
  // whole transport header reads zeros, not past the end of the buffer.
  const bytes = new Uint8Array(128);
  const l3 = writeEthernetHeader(bytes, 0, Uint8Array.of(2, 0, 10, 0, 0, 100), Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x99), ETH_P_IP);
  const src = 0x0a000107;
  const dst = 0x0a000064;
  const l4 = writeIPv4Header(bytes, l3, { src, dst, protocol, totalLength: 20 + l4Bytes });
  if (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP) {
    bytes[l4] = 40000 >> 8;
    bytes[l4 + 1] = 40000 & 0xff;
    bytes[l4 + 2] = 0;
    bytes[l4 + 3] = 80;
  }
  return { bytes, l2: 0, l3, l4, ipEnd: l4 + l4Bytes, length, family: 4, protocol, src, dst, firstFragment: true, rule: 0 };
}

/** The step a smoke-test call is: the method its description starts with (`isRelated() before ...` → isRelated). */
function stepOf(what: string): SelfTestStep {
  const method = /^(?:the )?(\w+)/.exec(what)?.[1];
  return SELF_TEST_STEPS.find((s) => s === method) ?? 'its exports';
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** isRelated's answers: a node id, UNTRACKED or DROP_FRAME. */
function isOwnerAnswer(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && (v === UNTRACKED || v === DROP_FRAME || (v >= 1 && v <= 0xffff));
}

/**
 * Creates a tracker of SMOKE_CAPACITY entries and runs every method once, in the order the
 * framework uses them, checking what comes back. Allocates freely: it runs once, at loading.
 */
function smokeTest(spec: HandlerSpec, handler: ProtocolHandler, step: (step: SelfTestStep) => void): void {
  const call = <T>(what: string, fn: () => T): T => {
    step(stepOf(what));
    try {
      return fn();
    } catch (err) {
      throw invalid(spec, `${what} threw ${firstLine(err)}`, err);
    }
  };

  const bytes = call(`trackerBytes(${SMOKE_CAPACITY})`, () => handler.trackerBytes(SMOKE_CAPACITY));
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes <= 0) {
    throw invalid(spec, `trackerBytes(${SMOKE_CAPACITY}) must give a positive whole number of bytes, it gave ${describeValue(bytes)}`);
  }
  let memory: SharedArrayBuffer;
  try {
    memory = new SharedArrayBuffer(bytes);
  } catch (err) {
    throw invalid(spec, `trackerBytes(${SMOKE_CAPACITY}) asked for ${bytes} bytes, which cannot be allocated (${firstLine(err)})`, err);
  }
  const tracker = call('createTracker()', () => handler.createTracker({ memory, capacity: SMOKE_CAPACITY, idleTimeoutSeconds: 60 }));
  if (typeof tracker !== 'object' || tracker === null) throw invalid(spec, `createTracker() returned ${describeValue(tracker)}, not a tracker object`);
  checkTrackerShape(spec, tracker);

  // The dispatcher's half.
  const frameProtocol = spec.protocol === 0 ? 47 : spec.protocol; // the default handler gets any protocol: try GRE
  const frame = smokeFrame(frameProtocol);
  const out = new Uint32Array(AFFINITY_KEY_WORDS);
  call(`affinityKey() on a protocol ${frameProtocol} frame`, () => handler.affinityKey(frame, out));
  const keyLo = out[0]!;
  const keyHi = out[1]!;
  const flags = out[2]!;
  if ((flags & ~FRAME_FLAGS_MASK) !== 0) {
    throw invalid(spec, `affinityKey() wrote frame flags 0x${flags.toString(16)} into out[2]; frame flags are 16 bits`);
  }

  // The actor's half, in the framework's order.
  const related = (when: string): void => {
    const answer = call(`isRelated() ${when}`, () => tracker.isRelated(keyLo, keyHi, flags, SMOKE_NOW));
    if (!isOwnerAnswer(answer)) {
      throw invalid(spec, `isRelated() ${when} returned ${describeValue(answer)}; it must return a node id 1..65535, UNTRACKED (-1) or DROP_FRAME (-2)`);
    }
  };
  related('before assigned()');
  call('assigned()', () => tracker.assigned(keyLo, keyHi, SMOKE_OWNER, flags, SMOKE_NOW));
  related('after assigned()');
  checkCounts(spec, tracker, 'after assigned()', step);

  const saved: Array<[number, number, number, number]> = [];
  let badVisit: string | undefined;
  call('saveStatus()', () =>
    tracker.saveStatus((lo, hi, owner, lastSeen) => {
      if (badVisit === undefined && (!isU32(lo) || !isU32(hi) || !isU32(lastSeen) || typeof owner !== 'number' || !Number.isInteger(owner) || owner < 1 || owner > 0xffff)) {
        badVisit = `saveStatus() visited (${[lo, hi, owner, lastSeen].map(describeValue).join(', ')}); keys and lastSeen must be u32, owner a node id 1..65535`;
      }
      saved.push([lo, hi, owner, lastSeen]);
    }),
  );
  if (badVisit !== undefined) throw invalid(spec, badVisit);
  call('clear()', () => tracker.clear());
  const sizeAfterClear = call('the size getter', () => tracker.size);
  if (sizeAfterClear !== 0) throw invalid(spec, `size is ${describeValue(sizeAfterClear)} after clear(); it must be 0`);
  for (const [lo, hi, owner, lastSeen] of saved) call('loadStatus()', () => tracker.loadStatus(lo, hi, owner, lastSeen));
  checkCounts(spec, tracker, 'after loadStatus()', step);

  const expired = call('expire()', () => tracker.expire(SMOKE_NOW + 3600, SMOKE_CAPACITY));
  if (!isCount(expired)) throw invalid(spec, `expire() returned ${describeValue(expired)}; it must return how many entries it removed`);
  const died = call('nodeDied()', () => tracker.nodeDied(SMOKE_OWNER));
  if (!isCount(died)) throw invalid(spec, `nodeDied() returned ${describeValue(died)}; it must return how many entries it dropped`);
  checkCounts(spec, tracker, 'after expire() and nodeDied()', step);
  if (typeof tracker.nodeDiedSlice === 'function') smokeNodeDiedSlice(spec, tracker, call, { keyLo, keyHi, flags });

  if (typeof tracker.counters === 'function') {
    const counters = call('counters()', () => tracker.counters!());
    if (typeof counters !== 'object' || counters === null) throw invalid(spec, `counters() returned ${describeValue(counters)}, not an object of numbers`);
    for (const [name, value] of Object.entries(counters)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(spec, `counters() gave ${name} = ${describeValue(value)}, not a number`);
    }
  }
  if (typeof handler.describeKey === 'function') {
    const text = call('describeKey()', () => handler.describeKey!(keyLo, keyHi));
    if (typeof text !== 'string') throw invalid(spec, `describeKey() returned ${describeValue(text)}, not a string`);
  }
}

/** The entry assigned again, then purged a slice of 64 slots at a time: the slices must move on, end with -1 and leave the size nodeDied() left. */
function smokeNodeDiedSlice(spec: HandlerSpec, tracker: Tracker, call: <T>(what: string, fn: () => T) => T, key: { keyLo: number; keyHi: number; flags: number }): void {
  const sizeWithout = call('the size getter', () => tracker.size);
  call('assigned()', () => tracker.assigned(key.keyLo, key.keyHi, SMOKE_OWNER, key.flags, SMOKE_NOW));
  let from = 0;
  for (let slices = 0; from !== -1; slices++) {
    const next = call(`nodeDiedSlice(${SMOKE_OWNER}, ${from}, 64)`, () => tracker.nodeDiedSlice!(SMOKE_OWNER, from, 64));
    if (next !== -1 && (typeof next !== 'number' || !Number.isInteger(next) || next <= from)) {
      throw invalid(spec, `nodeDiedSlice(${SMOKE_OWNER}, ${from}, 64) returned ${describeValue(next)}; it must return a slot after ${from} to go on from, or -1 when done`);
    }
    if (slices > SMOKE_CAPACITY) throw invalid(spec, `nodeDiedSlice() did not return -1 within ${SMOKE_CAPACITY} slices of a ${SMOKE_CAPACITY}-entry tracker`);
    from = next;
  }
  const size = call('the size getter', () => tracker.size);
  if (size !== sizeWithout) throw invalid(spec, `size is ${describeValue(size)} after nodeDiedSlice() went through the tracker; nodeDied() left ${sizeWithout}`);
}

function checkTrackerShape(spec: HandlerSpec, tracker: Tracker): void {
  const t = tracker as unknown as Record<string, unknown>;
  const problems: string[] = [];
  for (const method of TRACKER_METHODS) {
    if (typeof t[method] !== 'function') problems.push(`\`${method}\` must be a function, it is ${t[method] === undefined ? 'missing' : describeValue(t[method])}`);
  }
  for (const optional of ['counters', 'nodeDiedSlice'] as const) {
    if (t[optional] !== undefined && typeof t[optional] !== 'function') problems.push(`\`${optional}\` is optional but must be a function when present, it is ${describeValue(t[optional])}`);
  }
  for (const getter of ['size', 'evictions'] as const) {
    if (!(getter in t)) problems.push(`the \`${getter}\` getter is missing`);
  }
  if (problems.length > 0) throw invalid(spec, `the tracker createTracker() returned is incomplete: ${problems.join('; ')}`);
}

function checkCounts(spec: HandlerSpec, tracker: Tracker, when: string, step: (step: SelfTestStep) => void): void {
  for (const getter of ['size', 'evictions'] as const) {
    step(getter);
    let value: unknown;
    try {
      value = tracker[getter];
    } catch (err) {
      throw invalid(spec, `the tracker's \`${getter}\` getter threw ${firstLine(err)}`, err);
    }
    if (!isCount(value)) throw invalid(spec, `the tracker's \`${getter}\` is ${describeValue(value)} ${when}; it must be a whole number ≥ 0`);
  }
}
