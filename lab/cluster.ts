/**
 * The standard cluster lab shared by the integration tests, the demo and the benchmarks:
 *
 * ```
 *   switch ── node1 (10.0.0.1/24)   lnlbd --bind eth0 --vip 10.0.0.100, HTTP server on the VIP
 *          ── node2 (10.0.0.2/24)   ...
 *          ── nodeN (10.0.0.N/24)
 *          ── client (10.0.0.101 .. 10.0.0.(100+k)/24 on one eth0): real curl and ping
 * ```
 * The daemons decide by source IP, so one client namespace with many addresses stands for many
 * clients: `curl --interface` and `ping -I` pick the source address per request.
 *
 * With `ipv6: true` the LAN is dual stack: every node and client gets fd00:10::<n>/64 beside its
 * IPv4 address (clients fd00:10::101 up), and the daemons serve 10.0.0.100,fd00:10::100.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { lnlbError } from '../src/errors.js';
import { MessageType } from '../src/net/cluster-message.js';
import { ETH_P_LNLB } from '../src/net/ethernet.js';
import { Lab, hasExited, systemTool, tail, waitExit, type LabProcess } from './netns.js';
import { checkToolRan } from './system-tools.js';
import { OvsSwitch } from './ovs-switch.js';
import { adminRequest } from '../src/main/admin-client.js';
import type { StatusJson } from '../src/main/admin-protocol.js';

export const VIP = '10.0.0.100';
export const VIP6 = 'fd00:10::100';
const IPV6_PREFIX = 'fd00:10::';
/** Fast failure detection, so the tests and the demo see a failover within seconds. */
export const LAB_DAEMON_TIMING = ['--heartbeat-ms', '200', '--dead-after-ms', '1000'] as const;

// This file runs as dist/lab/cluster.js; the repository root is two levels up.
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LNLBD = join(REPO_ROOT, 'bin', 'lnlbd');
const LNLBCTL = join(REPO_ROOT, 'bin', 'lnlbctl');
const ECHO_SERVER = fileURLToPath(new URL('./http-echo-server.js', import.meta.url));
const MAX_NODES = 99; // 10.0.0.1 .. 10.0.0.99, below the VIP
const MAX_CLIENT_ADDRESSES = 154; // 10.0.0.101 .. 10.0.0.254

export interface ClusterLabOptions {
  /** Number of nodes, node1..nodeN; default 3. */
  nodes?: number;
  /** Number of client source addresses, from 10.0.0.101 up; default 40. */
  clientAddresses?: number;
  /** A dual-stack LAN (see the top of this file); default false. */
  ipv6?: boolean;
  /**
   * 'ovs-trunk': the switch is Open vSwitch (ovs-switch.ts) and every node's port a trunk of
   * VLANs 100 and 200 (nodes run `--vlan`); `client` is an access port of VLAN 100 (10.0.0.101
   * up, as always), `client2` one of VLAN 200 (10.0.2.101 up). The nodes' own addresses
   * (192.168.255.<n>) are untagged, so none of the VLANs' traffic leaves by them: route it
   * through the cluster interface (routeVia). 'ovs-vlan-device': Open vSwitch too, every node's
   * link an access port of VLAN 100 named `eth0.100` (VLAN 100 untagged, as a VLAN device has
   * it: this kernel cannot make one), the client on VLAN 100; run the daemons with `--bind
   * eth0.100`. Default: the Linux bridge.
   */
  switch?: 'bridge' | 'ovs-trunk' | 'ovs-vlan-device';
}

/** The VLANs of the 'ovs-trunk' lab: `client` is on the first, `client2` on the second. */
export const TRUNK_VLANS = [100, 200] as const;
export const CLIENT2_PREFIX = '10.0.2.';

/** `lnlbctl status --json`: the daemon's own type. */
export type DaemonStatus = StatusJson;

export type CurlResult = { ok: true; body: string } | { ok: false; error: string };
/** Which node answered a request from one source address, or why nobody did. */
export type Served = { node: string } | { error: string };

export interface PingResult {
  transmitted: number;
  /** Distinct echo replies (ping does not count duplicates here). */
  received: number;
  duplicates: number;
  output: string;
}

export interface TakeoverReport {
  /** Per source: the node that answered and when, in ms after `since`. */
  answered: Map<string, { node: string; afterMs: number }>;
  /** Sources no allowed node answered before the deadline. */
  unanswered: string[];
  /** The time the last source was answered, in ms after `since` (the failover figure). */
  worstMs: number;
}

export interface PingTakeover {
  /** Per source: the first echo reply, in ms after `sinceEpochMs`. */
  firstReplyMs: Map<string, number>;
  unanswered: string[];
  /** The last source's first reply (the failover figure). */
  worstMs: number;
}

export class ClusterLab {
  private readonly daemons = new Map<string, LabProcess>();
  /** What the daemons get as --vip: the VIP, or with `ipv6` both VIPs. */
  vipArg = VIP;
  private readonly servers = new Map<string, LabProcess>();

  private constructor(
    readonly lab: Lab,
    readonly nodes: readonly string[],
    readonly clientIps: readonly string[],
    /** The clients' IPv6 sources (fd00:10::101 up), as many as clientIps; empty without `ipv6`. */
    readonly clientIps6: readonly string[],
  ) {}

  static async create(options: ClusterLabOptions = {}): Promise<ClusterLab> {
    const nodeCount = options.nodes ?? 3;
    const clientCount = options.clientAddresses ?? 40;
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_NODES) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', `nodes must be 1..${MAX_NODES}, got ${nodeCount}`);
    }
    if (!Number.isInteger(clientCount) || clientCount < 1 || clientCount > MAX_CLIENT_ADDRESSES) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', `clientAddresses must be 1..${MAX_CLIENT_ADDRESSES}, got ${clientCount}`);
    }
    const nodes = Array.from({ length: nodeCount }, (_, i) => `node${i + 1}`);
    const clientIps = Array.from({ length: clientCount }, (_, i) => `10.0.0.${101 + i}`);
    const clientIps6 = options.ipv6 === true ? Array.from({ length: clientCount }, (_, i) => `${IPV6_PREFIX}${101 + i}`) : [];
    const lab = new Lab();
    let ovs: OvsSwitch | undefined;
    try {
      if (options.switch === 'ovs-trunk') {
        await lab.addSwitch({ bridge: false });
        ovs = await OvsSwitch.start(lab);
        const trunk = ovs.trunk(TRUNK_VLANS);
        for (const [i, node] of nodes.entries()) await lab.addHost(node, { addresses: [`192.168.255.${i + 1}/24`], plug: trunk });
        await lab.addHost('client', { addresses: clientIps.map((ip) => `${ip}/24`), plug: ovs.access(TRUNK_VLANS[0]) });
        await lab.addHost('client2', { addresses: Array.from({ length: 10 }, (_, i) => `${CLIENT2_PREFIX}${101 + i}/24`), plug: ovs.access(TRUNK_VLANS[1]) });
      } else if (options.switch === 'ovs-vlan-device') {
        await lab.addSwitch({ bridge: false });
        ovs = await OvsSwitch.start(lab);
        const access = ovs.access(TRUNK_VLANS[0]);
        for (const [i, node] of nodes.entries()) await lab.addHost(node, { addresses: [`10.0.0.${i + 1}/24`], plug: access, ifname: `eth0.${TRUNK_VLANS[0]}` });
        await lab.addHost('client', { addresses: clientIps.map((ip) => `${ip}/24`), plug: access });
      } else {
        await lab.addSwitch();
        for (const [i, node] of nodes.entries()) await lab.addHost(node, { addresses: [`10.0.0.${i + 1}/24`, ...(options.ipv6 === true ? [`${IPV6_PREFIX}${i + 1}/64`] : [])] });
        await lab.addHost('client', { addresses: [...clientIps.map((ip) => `${ip}/24`), ...clientIps6.map((ip) => `${ip}/64`)] });
      }
    } catch (error) {
      await lab.cleanup();
      throw error;
    }
    const cluster = new ClusterLab(lab, nodes, clientIps, clientIps6);
    cluster.vipArg = options.ipv6 === true ? `${VIP},${VIP6}` : VIP;
    return cluster;
  }

  /**
   * A trunk node's host reaches a VLAN's clients through the cluster interface (--vlan): what it
   * sends there leaves tagged. `ip route add <prefix> dev <iface>` once the daemon made it.
   */
  async routeVia(node: string, prefix: string, iface: string): Promise<void> {
    const result = await this.lab.exec(node, ['ip', 'route', 'replace', prefix, 'dev', iface]);
    if (result.code !== 0) throw lnlbError('LNLB_ERR_LAB_SETUP', `ip route replace ${prefix} dev ${iface} on ${node}: ${result.stderr.trim()}`);
  }

  /** The node's own address (eth0), e.g. 10.0.0.2 for node2. */
  nodeIp(node: string): string {
    return this.lab.host(node).addresses[0]?.split('/')[0] ?? '';
  }

  runDir(node: string): string {
    return join(this.lab.dir, node);
  }

  daemon(node: string): LabProcess | undefined {
    return this.daemons.get(node);
  }

  /** This run's cluster key, given to every daemon (removed with the lab). */
  get keyFile(): string {
    return this.lab.keyFile;
  }

  /**
   * lnlbd on `node` for the lab's cluster, with the lab's key unless `extraArgs` give their own
   * `--key-file` or opt out (`--insecure-no-auth`) explicitly.
   */
  startDaemon(node: string, extraArgs: string[] = []): LabProcess {
    if (!existsSync(LNLBD)) throw lnlbError('LNLB_ERR_LAB_SETUP', `${LNLBD} not found: the daemon is not built`);
    mkdirSync(this.runDir(node), { recursive: true, mode: 0o700 });
    // The namespaces share the host's name: each node announces its lab name instead.
    const name = extraArgs.includes('--node-name') ? [] : ['--node-name', node];
    const argv = [process.execPath, LNLBD, '--bind', 'eth0', '--vip', this.vipArg, '--run-dir', this.runDir(node), ...LAB_DAEMON_TIMING, ...name, ...this.lab.keyArgs(extraArgs), ...extraArgs];
    const child = this.lab.spawn(node, argv, { logName: 'lnlbd', cwd: REPO_ROOT });
    this.daemons.set(node, child);
    return child;
  }

  async killDaemon(node: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.daemons.get(node);
    if (child === undefined) throw lnlbError('LNLB_ERR_LAB_SETUP', `no daemon started on ${node}`);
    child.kill(signal);
    if (!(await waitExit(child, 5000))) throw lnlbError('LNLB_ERR_LAB_SETUP', `lnlbd on ${node} did not exit on ${signal}`);
  }

  async status(node: string): Promise<DaemonStatus> {
    return JSON.parse(await this.lnlbctl(node, ['status', '--json'])) as DaemonStatus;
  }

  /**
   * The same status read straight from the daemon's admin socket (what lnlbctl sends), without
   * starting an lnlbctl: polling 64 daemons through 64 Node processes would cost the machine
   * more CPU than the daemons themselves.
   */
  async socketStatus(node: string): Promise<DaemonStatus> {
    return (await adminRequest(this.runDir(node), 'status')) as DaemonStatus;
  }

  /** The human form of `lnlbctl status`. */
  statusText(node: string): Promise<string> {
    return this.lnlbctl(node, ['status']);
  }

  /**
   * Polls until every listed daemon reports exactly the listed nodes, all OK, itself once among
   * them. Nodes are known to the daemons by MAC, so "exactly the listed nodes" means: the set of
   * MACs each daemon lists equals the set of MACs the listed daemons call `self`.
   * Resolves with the time it took. Polls every `pollMs` (socketStatus: no lnlbctl per poll).
   */
  async waitConverged(nodes: readonly string[], timeoutMs: number, pollMs = 100): Promise<number> {
    const startedAt = performance.now();
    let last: unknown[] = [];
    while (performance.now() - startedAt < timeoutMs) {
      const dead = nodes.map((node) => this.daemons.get(node)).find((child) => child !== undefined && hasExited(child));
      if (dead !== undefined) {
        throw lnlbError('LNLB_ERR_LAB_SETUP', `lnlbd on ${dead.host} exited (${dead.exitCode ?? dead.signalCode}) while waiting for convergence:\n${tail(dead.logFile)}`);
      }
      const statuses = await Promise.all(nodes.map((node) => this.socketStatus(node).catch((error: Error) => error)));
      last = statuses.map((s, i) => ({ node: nodes[i], status: s instanceof Error ? s.message : s }));
      if (statuses.every((s): s is DaemonStatus => !(s instanceof Error)) && agreeOn(statuses, nodes.length)) {
        return performance.now() - startedAt;
      }
      await sleep(pollMs);
    }
    throw lnlbError('LNLB_ERR_LAB_SETUP', `no convergence on ${nodes.join(', ')} within ${timeoutMs} ms; last status:\n${JSON.stringify(last, null, 1)}`);
  }

  /** Starts the echo server on `node`, bound to `address` (the VIP by default; both VIPs, by `::`, on a dual-stack LAN); resolves once it listens. */
  async startHttpServer(node: string, port = 80, address = this.vipArg === VIP ? VIP : '::', timeoutMs = 30_000): Promise<LabProcess> {
    const argv = [process.execPath, ECHO_SERVER, '--name', node, '--host', address, '--port', String(port)];
    const child = this.lab.spawn(node, argv, { logName: 'http' });
    this.servers.set(node, child);
    await this.lab.waitForLog(child, /^listening on /, timeoutMs);
    return child;
  }

  /** A real curl from the client namespace with the given source address. */
  async curlFrom(sourceIp: string, url: string, options: { maxTimeS?: number; connectTimeoutS?: number } = {}): Promise<CurlResult> {
    const maxTimeS = options.maxTimeS ?? 5;
    const argv = ['curl', '--silent', '--show-error', '--interface', sourceIp, '--max-time', String(maxTimeS)];
    if (options.connectTimeoutS !== undefined) argv.push('--connect-timeout', String(options.connectTimeoutS));
    const result = await this.lab.exec('client', [...argv, url], { timeoutMs: maxTimeS * 1000 + 5000 });
    if (result.code === 0) return { ok: true, body: result.stdout };
    checkToolRan('curl', result);
    return { ok: false, error: `curl exit ${result.code}: ${result.stderr.trim()}` };
  }

  /** Asks the VIP's HTTP server who serves `sourceIp` (an IPv6 source asks the IPv6 VIP). */
  async servedBy(sourceIp: string, options: { maxTimeS?: number; connectTimeoutS?: number } = {}): Promise<Served> {
    const result = await this.curlFrom(sourceIp, sourceIp.includes(':') ? `http://[${VIP6}]/` : `http://${VIP}/`, options);
    if (!result.ok) return { error: result.error };
    try {
      const body = JSON.parse(result.body) as { node?: unknown };
      return typeof body.node === 'string' ? { node: body.node } : { error: `no node in ${result.body}` };
    } catch {
      return { error: `not JSON: ${result.body}` };
    }
  }

  /** servedBy for every source, a few curls at a time (2 cores also run the daemons). */
  async survey(sources: readonly string[], concurrency = 8): Promise<Map<string, Served>> {
    const answers = await mapLimit(sources, concurrency, (source) => this.servedBy(source));
    return new Map(sources.map((source, i) => [source, answers[i] as Served]));
  }

  /**
   * Retries each source (short connect timeout, so a SYN lost before the takeover costs little)
   * until one of `allowedNodes` answers it, or until `timeoutMs` after `since`.
   */
  async waitServedBy(sources: readonly string[], allowedNodes: readonly string[], since: number, timeoutMs: number): Promise<TakeoverReport> {
    const answered = new Map<string, { node: string; afterMs: number }>();
    const deadline = since + timeoutMs;
    await Promise.all(
      sources.map(async (source) => {
        while (performance.now() < deadline) {
          const served = await this.servedBy(source, { maxTimeS: 2, connectTimeoutS: 0.2 });
          if ('node' in served && allowedNodes.includes(served.node)) {
            answered.set(source, { node: served.node, afterMs: performance.now() - since });
            return;
          }
          await sleep(20);
        }
      }),
    );
    const unanswered = sources.filter((source) => !answered.has(source));
    const worstMs = Math.max(0, ...[...answered.values()].map((a) => a.afterMs));
    return { answered, unanswered, worstMs };
  }

  /**
   * Pings `target` from each source every 20 ms until the first echo reply, and reports when it
   * came (ping -D wall-clock stamps), in ms after `sinceEpochMs`: a failover figure with 20 ms
   * resolution, where a TCP connect can only be retried after its timeout.
   */
  async waitPingAnswered(sources: readonly string[], target: string, sinceEpochMs: number, timeoutMs: number): Promise<PingTakeover> {
    const deadlineS = String(Math.ceil(timeoutMs / 1000));
    const firstReplyMs = new Map<string, number>();
    await Promise.all(
      sources.map(async (source) => {
        // With -w, `-c 1` means "until one reply": ping keeps sending every -i until then.
        const argv = ['ping', '-n', '-D', '-c', '1', '-i', '0.02', '-w', deadlineS, '-I', source, target];
        const result = await this.lab.exec('client', argv, { timeoutMs: timeoutMs + 5000 });
        checkToolRan('ping', result);
        const stamp = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(result.stdout);
        if (stamp?.[1] !== undefined) firstReplyMs.set(source, Number(stamp[1]) * 1000 - sinceEpochMs);
      }),
    );
    const unanswered = sources.filter((source) => !firstReplyMs.has(source));
    return { firstReplyMs, unanswered, worstMs: Math.max(0, ...firstReplyMs.values()) };
  }

  /** A real ping from the client namespace with the given source address. */
  async pingFrom(sourceIp: string, target: string, count: number): Promise<PingResult> {
    const deadlineS = Math.ceil(count * 0.2) + 3;
    const argv = ['ping', '-n', '-c', String(count), '-i', '0.2', '-w', String(deadlineS), '-I', sourceIp, target];
    const result = await this.lab.exec('client', argv, { timeoutMs: deadlineS * 1000 + 5000 });
    checkToolRan('ping', result);
    return parsePing(result.stdout + result.stderr);
  }

  /** The last lines of every daemon and server log, for a failing test to print. */
  /**
   * The switch drops `percent` of the tracking-state fragments it forwards (lnlb's EtherType,
   * LNLB header type CONNTRACK at byte 18 of the frame: nft `numgen random`), counted; every
   * other frame passes. Returns a reader of how many it dropped so far. Gone with the lab.
   */
  async dropStateFragments(percent: number): Promise<() => Promise<number>> {
    const nft = systemTool('nft');
    const rule = ['ether', 'type', `0x${ETH_P_LNLB.toString(16)}`, '@ll,144,32', String(MessageType.CONNTRACK), 'numgen', 'random', 'mod', '100', 'lt', String(percent), 'counter', 'drop'];
    for (const argv of [
      [nft, 'add', 'table', 'bridge', 'lnlbloss'],
      [nft, 'add', 'chain', 'bridge', 'lnlbloss', 'forward', '{ type filter hook forward priority 0 ; }'],
      [nft, 'add', 'rule', 'bridge', 'lnlbloss', 'forward', ...rule],
    ]) {
      const r = await this.lab.exec('sw', argv);
      if (r.code !== 0) throw lnlbError('LNLB_ERR_LAB_SETUP', `${argv.join(' ')}: ${r.stderr}`);
    }
    return async () => {
      const listed = await this.lab.exec('sw', [nft, 'list', 'table', 'bridge', 'lnlbloss']);
      return Number(/counter packets (\d+)/.exec(listed.stdout)?.[1] ?? Number.NaN);
    };
  }

  logTails(lines = 20): string {
    const processes = [...this.daemons.values(), ...this.servers.values()];
    return processes.map((p) => `--- ${p.host}: ${p.logFile}\n${tail(p.logFile, lines)}`).join('\n');
  }

  cleanup(): Promise<void> {
    return this.lab.cleanup();
  }

  /** Runs lnlbctl on `node` against its daemon; exit code and output as they are. */
  ctl(node: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const argv = [process.execPath, LNLBCTL, '--run-dir', this.runDir(node), ...args];
    return this.lab.exec(node, argv, { timeoutMs, cwd: REPO_ROOT });
  }

  private async lnlbctl(node: string, args: string[]): Promise<string> {
    const argv = [process.execPath, LNLBCTL, '--run-dir', this.runDir(node), ...args];
    const result = await this.lab.exec(node, argv, { timeoutMs: 5000, cwd: REPO_ROOT });
    if (result.code !== 0) {
      throw lnlbError('LNLB_ERR_LAB_SETUP', `lnlbctl ${args.join(' ')} on ${node} failed (exit ${result.code}): ${result.stderr.trim()}`);
    }
    return result.stdout;
  }
}

/** Parses iputils ping output: the summary line, and `DUP!` lines in case the summary is cut. */
export function parsePing(output: string): PingResult {
  const summary = /(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?/.exec(output);
  const dupLines = output.split('\n').filter((line) => line.includes('DUP!')).length;
  return {
    transmitted: Number(summary?.[1] ?? 0),
    received: Number(summary?.[2] ?? 0),
    duplicates: Math.max(Number(summary?.[3] ?? 0), dupLines),
    output,
  };
}

function agreeOn(statuses: DaemonStatus[], count: number): boolean {
  const selfMacs = new Set<string>();
  const listed: Array<Set<string>> = [];
  for (const status of statuses) {
    const iface = status.interfaces?.[0];
    // Settled: accepting, and no change or weight in flight (a node's first weight follows its listening period).
    if (iface === undefined || iface.converged === false || iface.state === 'converging' || iface.nodes.length !== count) return false;
    if (iface.nodes.some((n) => n.status !== 'OK')) return false;
    const self = iface.nodes.filter((n) => n.self);
    if (self.length !== 1) return false;
    selfMacs.add((self[0]?.mac ?? '').toLowerCase());
    listed.push(new Set(iface.nodes.map((n) => n.mac.toLowerCase())));
  }
  return selfMacs.size === count && listed.every((macs) => macs.size === count && [...macs].every((mac) => selfMacs.has(mac)));
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
