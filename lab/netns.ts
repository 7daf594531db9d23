/**
 * A throw-away network lab built from Linux network namespaces, for the integration tests, the
 * demo and the benchmarks.
 *
 * ```
 *   <p>-sw:  br0 (bridge, no STP) ── <p>-node1 ── veth ── eth0 in <p>-node1
 *                                 ── <p>-node2 ── veth ── eth0 in <p>-node2
 *                                 ── <p>-client ─ veth ── eth0 in <p>-client (many addresses)
 * ```
 * A bridge floods frames for a MAC it never learned, and a cluster MAC is never learned (no node
 * sends from it), so every node sees every frame for the VIP.
 *
 * Everything is created from inside the lab's own namespaces (`ip -n`), so the root namespace is
 * never touched. Every namespace and link name starts with a per-run prefix (`lt` + 4 hex), so
 * runs never collide, and a marker file in MARKER_DIR records the creating process, so that
 * `sweepStale` can remove what a run killed by SIGKILL left behind without touching a live run.
 * Commands are run with execFile and argument vectors: no shell ever parses a name.
 */
import { execFile, execFileSync, spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lnlbError, type LnlbError } from '../src/errors.js';
import { generateKeyFile } from '../src/main/key-file.js';

/** Prefixes this module hands out; `sweepStale` only ever looks at names of this shape. */
export const LAB_PREFIX_PATTERN = /^lt[0-9a-f]{4}$/;
/** Markers live on the same tmpfs as /run/netns, so both vanish together at reboot. */
const MARKER_DIR = '/run/lnlb-lab';
const SWITCH = 'sw';
const BRIDGE = 'br0';
/** Linux interface names hold at most IFNAMSIZ - 1 = 15 bytes. */
const MAX_IFNAME_BYTES = 15;
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path)) ?? 'ip';

/**
 * A system tool by its absolute path. Under `npm test` / `npx`, node_modules/.bin comes first
 * in PATH, and it holds an `nft` of its own (@vercel/nft, an ava dependency) that exits 0 to
 * everything: a bare `nft` in a test would silently do nothing.
 */
export function systemTool(name: string): string {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].map((dir) => `${dir}/${name}`).find((path) => existsSync(path)) ?? name;
}

export interface ExecOptions {
  /** The command is killed (SIGKILL) after this long; default 10 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when the command was killed by a signal (also on timeout). */
  code: number | null;
  timedOut: boolean;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Names the log file `<host>-<logName>-<n>.log`; default: the program's base name. */
  logName?: string;
}

/** A process running in a lab host; stdout and stderr both go to `logFile`. */
export type LabProcess = ChildProcess & { readonly host: string; readonly logFile: string };

export interface HostOptions {
  /** CIDR addresses for eth0; the first is the primary one. */
  addresses: string[];
  /** Plugs the switch end (named) into a switch other than the lab's bridge (ovs-switch.ts); it is up already. */
  plug?: (switchPort: string) => Promise<void>;
  /** The host's end of the link; default eth0. */
  ifname?: string;
}

export interface LabHost {
  name: string;
  namespace: string;
  addresses: string[];
  /** MAC address of the host's eth0. */
  mac: string;
  /** The veth end on the bridge, in the switch namespace. */
  switchPort: string;
}

export interface SweepReport {
  /** Namespaces removed because the run that made them is dead. */
  removed: string[];
  /** Namespaces of live runs, or without a marker (not provably ours), left alone. */
  kept: string[];
}

interface OwnerMarker {
  pid: number;
  /** Start time of `pid` from /proc, so that a recycled pid is not taken for the owner. */
  startTime: string;
  dir: string;
}

export class Lab {
  readonly prefix: string;
  /** Per-run directory for logs and run directories; removed by cleanup (kept if LNLB_LAB_KEEP=1). */
  readonly dir: string;
  private readonly namespaces: string[] = [];
  private readonly hosts = new Map<string, LabHost>();
  private readonly processes = new Set<LabProcess>();
  private logCount = 0;
  private cleaning: Promise<void> | undefined;

  constructor() {
    if (process.getuid?.() !== 0) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', 'ip netns add needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run as root');
    }
    const claimed = claimPrefix();
    this.prefix = claimed.prefix;
    this.dir = claimed.dir;
    registerLiveLab(this);
  }

  #keyFile: string | undefined;

  /**
   * This run's cluster key (`lnlbctl genkey` into the run directory, so cleanup removes it):
   * every daemon of the lab gets it, as every node of a real cluster gets the same file.
   */
  get keyFile(): string {
    if (this.#keyFile === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.#keyFile = generateKeyFile(join(this.dir, 'cluster.key')).path;
    }
    return this.#keyFile;
  }

  /** `--key-file <this run's key>` for an lnlbd, unless its arguments choose their own key or none (`--insecure-no-auth`). */
  keyArgs(daemonArgs: readonly string[]): string[] {
    return daemonArgs.includes('--key-file') || daemonArgs.includes('--insecure-no-auth') ? [] : ['--key-file', this.keyFile];
  }

  /** The namespace `<p>-sw` with bridge br0: the switch every host is plugged into (`bridge: false`: the namespace alone, for another switch: ovs-switch.ts). */
  async addSwitch(options: { bridge?: boolean } = {}): Promise<void> {
    const ns = await this.addNamespace(SWITCH);
    // A switch sends nothing of its own: without this its ports' IPv6 (router solicitations,
    // MLD reports) would reach hosts past any filter on the bridge's forwarding path.
    for (const key of ['net.ipv6.conf.all.disable_ipv6', 'net.ipv6.conf.default.disable_ipv6']) {
      await execFileResult(IP, ['netns', 'exec', ns, systemTool('sysctl'), '-q', '-w', `${key}=1`], {});
    }
    if (options.bridge === false) return;
    // STP off: a port forwards at once instead of listening/learning for 2 x forward_delay.
    await this.ip(['-n', ns, 'link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0']);
    await this.ip(['-n', ns, 'link', 'set', BRIDGE, 'up']);
  }

  /** The namespace `<p>-<name>` with eth0 plugged into the switch. */
  async addHost(name: string, options: HostOptions): Promise<LabHost> {
    if (!this.namespaces.includes(this.namespaceName(SWITCH))) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', `addHost(${name}) needs addSwitch() first`);
    }
    if (options.addresses.length === 0) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', `addHost(${name}) needs at least one address`);
    }
    const sw = this.namespaceName(SWITCH);
    const switchPort = `${this.prefix}-${name}`;
    const ns = await this.addNamespace(name);
    // The pair is born in the switch namespace with its eth0 end placed straight into the host.
    const ifname = options.ifname ?? 'eth0';
    await this.ip(['-n', sw, 'link', 'add', switchPort, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    if (options.plug === undefined) await this.ip(['-n', sw, 'link', 'set', switchPort, 'master', BRIDGE, 'up']);
    else {
      await this.ip(['-n', sw, 'link', 'set', switchPort, 'up']);
      await options.plug(switchPort);
    }
    for (const address of options.addresses) {
      // An IPv6 address without duplicate address detection: usable at once, not a second later.
      await this.ip(['-n', ns, 'address', 'add', address, 'dev', ifname, ...(address.includes(':') ? ['nodad'] : [])]);
    }
    await this.ip(['-n', ns, 'link', 'set', ifname, 'up']);
    const links = JSON.parse(await this.ip(['-n', ns, '-j', 'link', 'show', ifname])) as Array<{ address: string }>;
    const host: LabHost = { name, namespace: ns, addresses: [...options.addresses], mac: links[0]?.address ?? '', switchPort };
    this.hosts.set(name, host);
    return host;
  }

  /** The namespace `<p>-<name>` with only its loopback: its links are added with addLink / addSwitchLink. */
  async addBareHost(name: string): Promise<string> {
    return this.addNamespace(name);
  }

  /** A veth pair from `devA` in host a to `devB` in host b (back to back, no switch). */
  async addLink(a: string, devA: string, b: string, devB: string): Promise<void> {
    const nsA = this.namespaceOf(a);
    const nsB = this.namespaceOf(b);
    await this.ip(['-n', nsA, 'link', 'add', devA, 'type', 'veth', 'peer', 'name', devB, 'netns', nsB]);
    await this.ip(['-n', nsA, 'link', 'set', devA, 'up']);
    await this.ip(['-n', nsB, 'link', 'set', devB, 'up']);
  }

  /** Plugs `dev` of the host into the switch (the lab's bridge, or `plug`'s: ovs-switch.ts); returns the switch-side port's name (for setSwitchPort). */
  async addSwitchLink(host: string, dev: string, plug?: (switchPort: string) => Promise<void>): Promise<string> {
    const sw = this.namespaceName(SWITCH);
    const ns = this.namespaceOf(host);
    this.logCount += 1;
    // Upper case: host names are lower case, so this never meets a host's own switch port.
    const switchPort = `${this.prefix}-L${this.logCount}`;
    await this.ip(['-n', sw, 'link', 'add', switchPort, 'type', 'veth', 'peer', 'name', dev, 'netns', ns]);
    if (plug === undefined) await this.ip(['-n', sw, 'link', 'set', switchPort, 'master', BRIDGE, 'up']);
    else {
      await this.ip(['-n', sw, 'link', 'set', switchPort, 'up']);
      await plug(switchPort);
    }
    await this.ip(['-n', ns, 'link', 'set', dev, 'up']);
    return switchPort;
  }

  /** Unplugs or replugs a switch port by its name (the host's side loses or regains carrier). */
  async setSwitchPort(switchPort: string, up: boolean): Promise<void> {
    await this.ip(['-n', this.namespaceName(SWITCH), 'link', 'set', switchPort, up ? 'up' : 'down']);
  }

  /** `ip ARGS` in the host's namespace (the switch is host "sw"); throws with the output on failure. */
  async ipIn(host: string, args: string[]): Promise<string> {
    return this.ip(['-n', host === SWITCH ? this.namespaceName(SWITCH) : this.namespaceOf(host), ...args]);
  }

  host(name: string): LabHost {
    const host = this.hosts.get(name);
    if (host === undefined) throw lnlbError('LNLB_ERR_LAB_SETUP', `no host ${name} in lab ${this.prefix}`);
    return host;
  }

  /** Runs argv inside the host's namespace; resolves with its output whatever the exit code. */
  exec(host: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    return execFileResult(IP, ['netns', 'exec', this.namespaceOf(host), ...argv], options);
  }

  /** Starts argv inside the host's namespace; cleanup() ends it. */
  spawn(host: string, argv: string[], options: SpawnOptions = {}): LabProcess {
    const ns = this.namespaceOf(host);
    this.logCount += 1;
    const logFile = join(this.dir, `${host}-${options.logName ?? basename(argv[0] ?? 'cmd')}-${this.logCount}.log`);
    // The child writes its output straight into the file: nothing to pump, and the log survives
    // this process being busy or blocked.
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      // `ip netns exec` execs the command in place, so child.pid is the command itself.
      child = spawnChild(IP, ['netns', 'exec', ns, ...argv], {
        stdio: ['ignore', fd, fd],
        env: options.env ?? process.env,
        cwd: options.cwd,
      });
    } finally {
      closeSync(fd);
    }
    const labProcess = Object.assign(child, { host, logFile }) as LabProcess;
    child.on('error', (error) => appendFileSync(logFile, `[lab] spawn failed: ${error.message}\n`));
    this.processes.add(labProcess);
    child.once('exit', () => this.processes.delete(labProcess));
    return labProcess;
  }

  /** Resolves once the process's log has a line matching `pattern`; rejects if it exits first. */
  async waitForLog(child: LabProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = readText(child.logFile).split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (hasExited(child)) {
        throw lnlbError('LNLB_ERR_LAB_SETUP', `${child.host}: process exited before logging ${pattern}:\n${tail(child.logFile)}`);
      }
      if (Date.now() > deadline) {
        throw lnlbError('LNLB_ERR_LAB_SETUP', `${child.host}: no log line ${pattern} within ${timeoutMs} ms:\n${tail(child.logFile)}`);
      }
      await sleep(50);
    }
  }

  /** Pulls the cable: the host's eth0 loses carrier, as when a switch port goes dark. */
  async linkDown(host: string): Promise<void> {
    await this.ip(['-n', this.namespaceName(SWITCH), 'link', 'set', this.host(host).switchPort, 'down']);
  }

  async linkUp(host: string): Promise<void> {
    await this.ip(['-n', this.namespaceName(SWITCH), 'link', 'set', this.host(host).switchPort, 'up']);
  }

  /** Ends every process, deletes every namespace and the run directory. Safe to call twice. */
  cleanup(graceMs = 1000): Promise<void> {
    this.cleaning ??= this.removeEverything(graceMs);
    return this.cleaning;
  }

  /** The synchronous last resort for process 'exit', where no promise will ever settle. */
  cleanupSync(): void {
    if (this.cleaning !== undefined && !liveLabs.has(this)) return;
    this.cleaning ??= Promise.resolve();
    for (const child of this.processes) child.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) {
      try {
        const pids = execFileSync(IP, ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        killAll(parsePids(pids));
        execFileSync(IP, ['netns', 'delete', ns], { stdio: 'ignore' });
      } catch {
        // Already gone, or not ours to fix at exit: sweepStale catches what is left.
      }
    }
    this.forgetRun();
  }

  private async removeEverything(graceMs: number): Promise<void> {
    await stopProcesses([...this.processes], graceMs);
    // Hosts first, the switch last: deleting a host namespace takes its veth pair with it.
    const namespaces = [...this.namespaces].reverse();
    for (const ns of namespaces) await killNamespacePids(ns);
    for (const ns of namespaces) await execFileResult(IP, ['netns', 'delete', ns], {});
    this.forgetRun();
  }

  private forgetRun(): void {
    if (process.env.LNLB_LAB_KEEP !== '1') rmSync(this.dir, { recursive: true, force: true });
    rmSync(markerPath(this.prefix), { force: true });
    unregisterLiveLab(this);
  }

  private async addNamespace(name: string): Promise<string> {
    if (!/^[a-z][a-z0-9]*$/.test(name) || Buffer.byteLength(`${this.prefix}-${name}`) > MAX_IFNAME_BYTES) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', `bad lab host name ${JSON.stringify(name)}: use [a-z][a-z0-9]*, at most ${MAX_IFNAME_BYTES - this.prefix.length - 1} characters`);
    }
    const ns = this.namespaceName(name);
    if (this.namespaces.includes(ns)) throw lnlbError('LNLB_ERR_LAB_SETUP', `lab host ${name} exists already`);
    await this.ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  private namespaceName(name: string): string {
    return `${this.prefix}-${name}`;
  }

  private namespaceOf(host: string): string {
    const ns = this.namespaceName(host);
    if (!this.namespaces.includes(ns)) throw lnlbError('LNLB_ERR_LAB_SETUP', `no host ${host} in lab ${this.prefix}`);
    return ns;
  }

  private async ip(args: string[]): Promise<string> {
    const result = await execFileResult(IP, args, {});
    if (result.code !== 0) throw commandError(['ip', ...args], result);
    return result.stdout;
  }
}

/** Removes namespaces (and run dirs) of earlier runs whose creating process is dead. */
export async function sweepStale(prefixPattern: RegExp = LAB_PREFIX_PATTERN): Promise<SweepReport> {
  const report: SweepReport = { removed: [], kept: [] };
  const byPrefix = new Map<string, string[]>();
  for (const ns of await listNamespaces()) {
    const prefix = ns.split('-')[0] ?? '';
    if (!prefixPattern.test(prefix)) continue;
    byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), ns]);
  }
  // Markers whose namespaces are already gone still leave a run directory to remove.
  for (const file of existsSync(MARKER_DIR) ? readdirSync(MARKER_DIR) : []) {
    const prefix = file.replace(/\.json$/, '');
    if (prefixPattern.test(prefix) && !byPrefix.has(prefix)) byPrefix.set(prefix, []);
  }
  for (const [prefix, namespaces] of byPrefix) {
    const marker = readMarker(prefix);
    if (marker === undefined || isAlive(marker)) {
      report.kept.push(...namespaces);
      continue;
    }
    for (const ns of namespaces) await killNamespacePids(ns);
    for (const ns of namespaces) {
      await execFileResult(IP, ['netns', 'delete', ns], {});
      report.removed.push(ns);
    }
    // The marker names the run directory; remove it only if it has the shape this module gives.
    if (basename(marker.dir) === `lnlb-lab-${prefix}`) rmSync(marker.dir, { recursive: true, force: true });
    rmSync(markerPath(prefix), { force: true });
  }
  return report;
}

/** Names of all network namespaces on the machine (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const result = await execFileResult(IP, ['netns', 'list'], {});
  return result.stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name !== '');
}

/** The last `lines` lines of a log file ('' if it does not exist). */
export function tail(logFile: string, lines = 30): string {
  return readText(logFile).trimEnd().split('\n').slice(-lines).join('\n');
}

/** Polls `probe` every `stepMs` until it returns a value; throws naming `what` after `timeoutMs`. */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, stepMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Busy-waits (up to `timeoutMs`) until the process runs no more: a zombie or gone. A process
 * killed with SIGKILL stops within a millisecond but, with a large address space, is reaped
 * (its 'exit' event) tens of milliseconds later. True if it stopped in time.
 */
export function waitStopped(pid: number, timeoutMs: number): boolean {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let state: string;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.charAt(stat.lastIndexOf(')') + 2);
    } catch {
      return true; // reaped already
    }
    if (state === 'Z' || state === 'X') return true;
    if (performance.now() > deadline) return false;
  }
}

/** Resolves when the child has exited, or after timeoutMs (false then). */
export async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return true;
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
  const timer = sleep(timeoutMs, false, { ref: false });
  return Promise.race([exited, timer]);
}

function execFileResult(file: string, args: string[], options: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const settings = {
      encoding: 'utf8' as const,
      timeout: options.timeoutMs ?? 10_000,
      killSignal: 'SIGKILL' as const,
      maxBuffer: 64 * 1024 * 1024,
      env: options.env ?? process.env,
      cwd: options.cwd,
    };
    execFile(file, args, settings, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ stdout, stderr, code: 0, timedOut: false });
      } else if (typeof error.code === 'string') {
        // ENOENT and friends: the program itself could not be started.
        const hint = file === IP ? ': install iproute2' : '';
        reject(lnlbError('LNLB_ERR_LAB_SETUP', `${file} could not be started (${error.code})${hint}`, { cause: error, errno: error.code }));
      } else {
        const code = typeof error.code === 'number' ? error.code : null;
        resolve({ stdout, stderr, code, timedOut: error.killed === true && error.signal === 'SIGKILL' });
      }
    });
  });
}

function commandError(argv: string[], result: ExecResult): LnlbError {
  const command = argv.join(' ');
  const detail = result.timedOut ? 'timed out' : result.stderr.trim() || `exit code ${result.code}`;
  if (/Operation not permitted|Permission denied/.test(result.stderr)) {
    return lnlbError('LNLB_ERR_LAB_SETUP', `${command} needs root: ${detail}`);
  }
  return lnlbError('LNLB_ERR_LAB_SETUP', `${command} failed: ${detail}`);
}

async function stopProcesses(children: ChildProcess[], graceMs: number): Promise<void> {
  const running = children.filter((child) => !hasExited(child));
  for (const child of running) child.kill('SIGTERM');
  await Promise.all(running.map((child) => waitExit(child, graceMs)));
  for (const child of running) if (!hasExited(child)) child.kill('SIGKILL');
  await Promise.all(running.map((child) => waitExit(child, 2000)));
}

/** Kills whatever still runs in the namespace: deleting a namespace with live processes in it only unmounts its name. */
async function killNamespacePids(ns: string): Promise<void> {
  for (let round = 0; round < 40; round++) {
    const pids = parsePids((await execFileResult(IP, ['netns', 'pids', ns], {})).stdout);
    if (pids.length === 0) return;
    killAll(pids);
    await sleep(50);
  }
}

function parsePids(text: string): number[] {
  return text.split('\n').map((line) => Number(line.trim())).filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid);
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited between listing and killing.
    }
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function markerPath(prefix: string): string {
  return join(MARKER_DIR, `${prefix}.json`);
}

/** Picks an unused prefix and writes its marker (exclusive create, so two runs never share one). */
function claimPrefix(): { prefix: string; dir: string } {
  mkdirSync(MARKER_DIR, { recursive: true });
  const taken = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  for (let attempt = 0; attempt < 100; attempt++) {
    const prefix = `lt${randomBytes(2).toString('hex')}`;
    if (taken.some((ns) => ns.startsWith(`${prefix}-`))) continue;
    const dir = join(tmpdir(), `lnlb-lab-${prefix}`);
    const marker: OwnerMarker = { pid: process.pid, startTime: processStartTime(process.pid) ?? '', dir };
    try {
      writeFileSync(markerPath(prefix), JSON.stringify(marker), { flag: 'wx' });
    } catch {
      continue;
    }
    mkdirSync(dir, { recursive: true });
    return { prefix, dir };
  }
  throw lnlbError('LNLB_ERR_LAB_SETUP', `no free lab prefix: too many labs in ${MARKER_DIR}; run sweepStale()`);
}

function readMarker(prefix: string): OwnerMarker | undefined {
  try {
    return JSON.parse(readFileSync(markerPath(prefix), 'utf8')) as OwnerMarker;
  } catch {
    return undefined;
  }
}

function isAlive(marker: OwnerMarker): boolean {
  const startTime = processStartTime(marker.pid);
  return startTime !== undefined && startTime === marker.startTime;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined if no such process. */
function processStartTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === '') return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

// Labs still to clean, and the process hooks that clean them when the process ends early.
const liveLabs = new Set<Lab>();
let signalsSeen = 0;

function onExit(): void {
  for (const lab of [...liveLabs]) lab.cleanupSync();
}

function onSignal(signal: NodeJS.Signals): void {
  signalsSeen += 1;
  const exitCode = 128 + (osConstants.signals[signal] ?? 15);
  // A second Ctrl-C does not wait for the async cleanup: 'exit' runs the synchronous one.
  if (signalsSeen > 1) process.exit(exitCode);
  void Promise.allSettled([...liveLabs].map((lab) => lab.cleanup())).then(() => process.exit(exitCode));
}

function registerLiveLab(lab: Lab): void {
  if (liveLabs.size === 0) {
    process.on('exit', onExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  liveLabs.add(lab);
}

function unregisterLiveLab(lab: Lab): void {
  if (!liveLabs.delete(lab) || liveLabs.size > 0) return;
  process.off('exit', onExit);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}
