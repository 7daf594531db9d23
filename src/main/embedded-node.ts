/**
 * The library's way in: `createNode(options)` runs one cluster node inside the calling
 * process, as lnlbd runs one in its own (src/main/lnlbd.ts), with the same options checked by
 * the same table (DAEMON_OPTIONS, STYLE.md habit 1) and the same teardown (Daemon.stop: LEAVE,
 * the TAP removed, every sysctl restored); a host that exits without `close()` gets the
 * synchronous part of it on process 'exit' (src/main/restore-at-exit.ts), and no process-wide
 * handler that would change how the host fails.
 *
 * Named after what it is, beside lnlbd.ts: the daemon's entry point and this one both build a
 * Daemon; this one hands it back behind a small typed surface (`LnlbNode`) instead of serving
 * signals and an admin socket (the latter only if asked, `adminSocket: true`).
 *
 *   options (camelCase, typed) ──toRawOptions──▶ raw strings ──resolveDaemonOptions──▶ DaemonOptions
 *                                (the flags' own parsers: a bad value is LNLB_ERR_CLI_BAD_FLAG
 *                                 naming the option and its flag, before anything is created)
 */

import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { isLnlbError, LnlbError, lnlbError } from '../errors.js';
import { ADMIN_SOCKET_NAME, type DrainResult, type InterfaceState, type InterfaceStatusJson } from './admin-protocol.js';
import { AdminServer } from './admin-server.js';
import { registerAdminCommands } from './admin-commands.js';
import { CAP_NET_ADMIN, CAP_NET_RAW, effectiveCapabilities, missingCapabilities } from './capabilities.js';
import type { ClusterEvents } from './cluster-events.js';
import type { ClusterInterface } from './cluster-interface.js';
import { loadConfigFile, resolveWithConfig, suggestKey, type RawOptions } from './config-file.js';
import { Daemon } from './daemon.js';
import { checkDrainOptions, type DrainOptions } from './drain.js';
export { checkDrainOptions };
import { createLogger, flushLoggerSync, type Logger } from './logger.js';
import { ensurePrivateDir, removeCreatedDirs } from './run-dir.js';
import { CREATE_NODE_BINDING_NAMES, preflightInterface } from './interface-preflight.js';
import { processExitRestorer } from './restore-at-exit.js';
import type { MetricsServer } from './metrics.js';
import { DAEMON_OPTIONS, keyMissingMessage, REPEAT_SEPARATOR, type AuthOptionNames, type DaemonOptions, type LogLevel, type MacMode, type RxRing } from './options.js';
import { parseClusterVip } from '../net/vip.js';
import type { ElectionName } from '../cluster/election.js';
import type { WeightMode } from './weight-source.js';
import type { HealthCheckFunction, HealthCheckSpec } from '../health/check-spec.js';

/**
 * What `createNode` takes: lnlbd's options, camelCase, each checked by the flag's own parser
 * (`heartbeatMs` is `--heartbeat-ms`). `bind` and `vip` are required, and `keyFile` unless
 * `insecureNoAuth`; everything else has lnlbd's default, except `logLevel` (`'warn'` here: a
 * library keeps quiet).
 */
export interface LnlbNodeOptions {
  /** The real device the cluster listens on (`--bind`), e.g. `'eth0'` or a bond. */
  bind: string;
  /** The cluster IP shared by every node (`--vip`), e.g. `'10.0.0.100'`. */
  vip: string;
  /** The cluster interface (TAP) to create (`--name`); `%d` takes the lowest free number. Default `'nlb%d'`. */
  name?: string;
  /**
   * Directory of the state files (bond slaves' MACs) and, with `adminSocket`, of the admin
   * socket (`--run-dir`). Default `'/run/lnlb'`; created mode 0700, refused when it is a
   * symlink, another user's or writable by group or others. Two nodes on one host (an lnlbd
   * and an embedded node, or two processes) need two run directories and two devices; the
   * sysctl originals are kept once per host in /run/lnlb-host ($LNLB_HOST_DIR).
   */
  runDir?: string;
  /** Actor threads, each owning a shard of the tracking tables (`--workers`, 1..31). Default 1: the dispatcher thread is the actor. */
  workers?: number;
  /** Milliseconds between heartbeats (`--heartbeat-ms`, 10..60000). Default 1000. */
  heartbeatMs?: number;
  /** A node silent this long is dead (`--dead-after-ms`, 20..600000, above `heartbeatMs`). Default 5000. */
  deadAfterMs?: number;
  /** Level of the logger created when `logger` is not given (`--log-level`). Default `'warn'`. */
  logLevel?: LogLevel;
  /** Who gets a new client (`--election`). Default `'rendezvous'`. */
  election?: ElectionName;
  /** Where this node's weight (a capacity: higher gets more new clients) comes from (`--weight-mode`). Default `'loadavg'`; `'fixed'` for `setWeight`-style fixed weights. */
  weightMode?: WeightMode;
  /** The name this node announces (`--node-name`), shown beside its MAC by status, conntrack and events. Default: the host name. */
  nodeName?: string;
  /**
   * The cluster key file that authenticates the control plane, the same file on every node
   * (`--key-file`; mode 600, owned by the service's user or root). Required unless
   * `insecureNoAuth`: make one with `lnlbctl genkey /etc/lnlb/cluster.key`.
   */
  keyFile?: string;
  /**
   * Run without a key (`--insecure-no-auth`), so that any host on the LAN can take the cluster over.
   * For labs only; logged as an error every minute, `status()` says `insecure: true`.
   */
  insecureNoAuth?: boolean;
  /** Cluster MAC: unicast (flooded) or multicast (joined by IGMP) (`--mac-mode`). Default `'unicast'`. */
  macMode?: MacMode;
  /** The 802.1Q VLAN the cluster serves when `bind` is a trunk (`--vlan`, 1..4094); default 0: untagged frames only. */
  vlan?: number;
  /** Flows this node can track (`--table-entries`). Default 1048576. */
  tableEntries?: number;
  /** Receive ring of the data socket (`--rx-ring`). Default `'v2'`. */
  rxRing?: RxRing;
  /** Slots of the data socket's receive ring with `rxRing: 'v2'` (`--rx-ring-frames`, 512..262144). Default 16384. */
  rxRingFrames?: number;
  /** 256 KiB blocks of the data socket's receive ring with `rxRing: 'v3'` (`--rx-ring-blocks`, 4..4096). Default 128. */
  rxRingBlocks?: number;
  /** KiB of each dispatcher → actor ring, a power of two (`--actor-ring-kib`, 64..1048576). Default 8192. */
  actorRingKib?: number;
  /** KiB of the control socket's receive ring, a power of two (`--control-ring-kib`, 256..65536). Default 4096. */
  controlRingKib?: number;
  /** Seconds until an idle tracked client is forgotten (`--idle-timeout`). Default 1800. */
  idleTimeout?: number;
  /** Seconds until an idle established TCP connection is forgotten (`--tcp-idle-timeout`). Default 7440. */
  tcpIdleTimeout?: number;
  /** Seconds a control message's seal may be from this node's clock, either way (`--clock-tolerance`). Default 60. */
  clockTolerance?: number;
  /** Seconds until an idle UDP flow is forgotten (`--udp-idle-timeout`). Default 120. */
  udpIdleTimeout?: number;
  /** Port rules, as `--rule` takes them: `['443/tcp=multiple,affinity=none', '22/tcp=single,priority=1']`. */
  rule?: readonly string[];
  /** Protocol handlers, as `--handler` takes them: `['tcp=tcp', 'icmp=./my-handler.js']`. */
  handler?: readonly string[];
  /** Bonds to create before the cluster interface, as `--bond` takes them: `['bond0 mode=active-backup miimon=100 slaves=eth1,eth2']`. */
  bond?: readonly string[];
  /**
   * Serve Prometheus metrics at `http://<addr:port>/metrics` (`--metrics`, e.g. `'127.0.0.1:9750'`;
   * docs/metrics.md), from a registry of its own: the service's prom-client default registry is untouched.
   */
  metrics?: string;
  /**
   * Health checks that must all pass for this node to take part (`--health-check`, docs/health.md):
   * `'tcp://127.0.0.1:5432'`, `'http://127.0.0.1:8080/healthz'` (2xx/3xx; `#204` for exactly that
   * status), `'exec:/usr/local/bin/check'`, or a function of this service resolving true when
   * healthy (it gets an AbortSignal, aborted at the timeout; false, a throw or the timeout fail).
   * Unhealthy, the node leaves the cluster (the others take its clients) and keeps checking;
   * healthy again, it rejoins. Default: none.
   */
  healthCheck?: string | HealthCheckFunction | readonly (string | HealthCheckFunction)[];
  /** Milliseconds between two rounds of health checks (`--health-interval-ms`, 10..3600000). Default 1000. */
  healthIntervalMs?: number;
  /** Milliseconds a check may take before it fails (`--health-timeout-ms`, at most the interval). Default: the interval. */
  healthTimeoutMs?: number;
  /** Failures in a row that make a healthy check unhealthy (`--health-fall`, 1..100). Default 3. */
  healthFall?: number;
  /** Successes in a row that make an unhealthy check healthy (`--health-rise`, 1..100). Default 1: the dispatcher thread is the actor. */
  healthRise?: number;
  /** A config file in lnlbd's format (`--config`, docs/config.md); options given here win over it. Not read unless given. */
  config?: string;
  /** Open the admin socket in `runDir`, so that `lnlbctl --run-dir <runDir>` can talk to this node. Default false. */
  adminSocket?: boolean;
  /** A pino logger to log into (its own level applies; `logLevel` is then ignored). Default: a new pino logger on stdout at `logLevel`. */
  logger?: Logger;
}

/**
 * The events of a node: the cluster interface's own (membership and state, see
 * {@link ClusterEvents}), and two of the node itself.
 */
export interface LnlbNodeEvents extends ClusterEvents {
  /**
   * The node failed (a datapath or control-plane thread died) and has been closed: it left the
   * cluster, its TAP is gone and its sysctls are restored. `err.code` is the code the thread
   * raised (LNLB_ERR_PORT_IO for a failed read, ...), LNLB_ERR_WORKER_FAILED when it had none.
   * As for any EventEmitter, an `error` nobody listens to is thrown.
   */
  error: [LnlbError];
  /** The node is closed (by `close()` or after an `error`). */
  close: [];
}

/** The names {@link LnlbNode} re-emits from its cluster interface. */
export const CLUSTER_EVENT_NAMES = ['joined', 'left', 'died', 'converged', 'weight', 'state', 'health'] as const satisfies readonly (keyof ClusterEvents)[];

/** A cluster node running in this process; see {@link createNode}. */
export interface LnlbNode extends EventEmitter<LnlbNodeEvents> {
  /** The cluster interface (TAP) this node created, e.g. `'nlb0'`. */
  readonly interfaceName: string;
  readonly vip: string;
  readonly bind: string;
  /** The admin socket's path, when `adminSocket` was asked for. */
  readonly adminSocketPath: string | undefined;
  /** Where the metrics endpoint listens (`'127.0.0.1:9750'`), when `metrics` was given. */
  readonly metricsAddress: string | undefined;
  /** True once `close()` was called (or the node failed). */
  readonly closed: boolean;
  /** The interface's status, as `lnlbctl status --json` gives it for one interface. */
  status(): Promise<InterfaceStatusJson>;
  /**
   * `lnlbctl drainstop`: no new clients for this node while its tracked flows stay; resolves
   * once they are quiet (`idleSeconds`, default 10) or at `timeoutSeconds`, with the node stopped.
   */
  drain(options?: DrainOptions): Promise<DrainResult>;
  /** `lnlbctl stop`: leave the cluster now (LEAVE); the others take every client. The TAP stays. */
  stop(): Promise<InterfaceState>;
  /** `lnlbctl start`: join again after a stop or a drain. */
  start(): Promise<InterfaceState>;
  /**
   * Leaves the cluster, removes the TAP (and any bond), restores every sysctl. Safe to call twice.
   * A process that exits without it (an uncaught exception, `process.exit()`) still gets its
   * sysctls and bond slaves back, on 'exit' (the VIP taken off first); but its LEAVE is not
   * waited for then, and a signal the process does not handle (SIGTERM, SIGINT) ends it with
   * nothing restored until the next lnlb start in that network namespace.
   */
  close(): Promise<void>;
}

/** Daemon options createNode does not take. */
export type NotEmbeddedOption = 'nice';

/**
 * Daemon options createNode does not take, and why. A unit test checks that every option of
 * DAEMON_OPTIONS is taken or listed here, so a new lnlbd option is not forgotten.
 */
export const NOT_EMBEDDED: Readonly<Record<NotEmbeddedOption, string>> = {
  // The process is the application's: its priority is the application's to set (nice(1),
  // systemd's Nice=). The node's control thread still raises its own (src/workers/control-thread.ts).
  nice: "the process belongs to the embedding application: set its priority there (nice -n -20, or systemd's Nice=-20)",
};

/** The options that are createNode's own, not lnlbd's. */
const OWN_OPTIONS = ['adminSocket', 'logger'] as const;

/** How createNode spells the key and the opt-out, for LNLB_ERR_AUTH_KEY_MISSING. */
const CREATE_NODE_AUTH_NAMES: AuthOptionNames = {
  key: "keyFile: 'PATH' (or key-file = PATH in its config file)",
  insecure: 'insecureNoAuth: true',
};

type Spec = (typeof DAEMON_OPTIONS)[number];
const flagOf = (spec: Spec): string => spec.flag.split(' ')[0]!;
const SPECS: ReadonlyMap<string, Spec> = new Map(DAEMON_OPTIONS.filter((s) => !Object.hasOwn(NOT_EMBEDDED, s.key)).map((s) => [s.key, s]));
const OPTION_BY_FLAG: ReadonlyMap<string, string> = new Map(DAEMON_OPTIONS.map((s) => [flagOf(s), s.key]));

/** `heartbeat-ms` → `heartbeatMs`. */
const camel = (flagKey: string): string => flagKey.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function badOption(option: string, message: string): never {
  const spec = SPECS.get(option);
  throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${spec === undefined ? option : `${option} (${flagOf(spec)})`}: ${message}`);
}

const describe = (value: unknown): string => (typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value));

/**
 * The typed options as the raw strings lnlbd's flags give resolveDaemonOptions (a repeatable
 * option's values NUL-joined). Refuses, naming the option: an unknown key (with the one it was
 * probably meant to be), a value of the wrong type, and a missing bind or vip.
 */
export function toRawOptions(options: LnlbNodeOptions): RawOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `createNode: expected an options object such as { bind: 'eth0', vip: '10.0.0.100' }, got ${describe(options)}`);
  }
  const raw: RawOptions = {};
  for (const [key, value] of Object.entries(options) as [string, unknown][]) {
    if ((OWN_OPTIONS as readonly string[]).includes(key)) continue;
    const spec = SPECS.get(key);
    if (spec === undefined) {
      if (Object.hasOwn(NOT_EMBEDDED, key)) badOption(key, `not an option of createNode: ${NOT_EMBEDDED[key as NotEmbeddedOption]}`);
      const near = suggestKey(key);
      const nearOption = near === undefined ? undefined : camel(near);
      badOption(key, `unknown option${nearOption === undefined || nearOption === key || !SPECS.has(nearOption) ? '' : ` (did you mean ${nearOption}?)`}`);
    }
    if (value === undefined) continue; // as if not given: `{ keyFile: process.env.KEY_FILE }`
    if ('repeatable' in spec && spec.repeatable) {
      // A health check may be a function: taken by healthFunctions, not a raw string.
      const given = spec.key === 'healthCheck' ? healthCheckStrings(value) : value;
      const list = typeof given === 'string' ? [given] : given;
      if (!Array.isArray(list) || !list.every((v): v is string => typeof v === 'string')) badOption(key, `expected an array of strings, got ${describe(value)}`);
      if (list.some((v) => v.includes(REPEAT_SEPARATOR))) badOption(key, 'a value holds a NUL character');
      if (list.length > 0) raw[spec.key] = list.join(REPEAT_SEPARATOR);
    } else if (typeof spec.default === 'boolean') {
      if (typeof value !== 'boolean') badOption(key, `expected true or false, got ${describe(value)}`);
      raw[spec.key] = String(value);
    } else if (typeof spec.default === 'number' || ('numeric' in spec && spec.numeric)) {
      if (typeof value !== 'number' && typeof value !== 'string') badOption(key, `expected a number, got ${describe(value)}`);
      raw[spec.key] = String(value); // 1.5, -1, NaN: refused by the flag's parser, as on the command line
    } else {
      if (typeof value !== 'string') badOption(key, `expected a string, got ${describe(value)}`);
      raw[spec.key] = value;
    }
  }
  // Both required here: a library node is one cluster interface (lnlbd may start with none).
  for (const key of ['bind', 'vip'] as const) {
    if (raw[key] === undefined) badOption(key, `is required: createNode({ bind: 'eth0', vip: '10.0.0.100', keyFile: '/etc/lnlb/cluster.key' })`);
  }
  if (raw.keyFile !== undefined && raw.insecureNoAuth === 'true') {
    badOption('keyFile', 'cannot be given with insecureNoAuth: true: give the key (authenticated) or the opt-out (labs only), not both');
  }
  return raw;
}

/** `healthCheck`'s URLs (its functions are taken by healthFunctions); a value of another type is refused. */
function healthCheckStrings(value: unknown): unknown {
  const list: unknown[] = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string' || typeof v === 'function')) {
    badOption('healthCheck', `expected URLs (strings) or functions returning a promise of boolean, got ${describe(value)}`);
  }
  return list.filter((v) => typeof v === 'string');
}

/** `healthCheck`'s functions, as checks labelled `function:<name>` (an anonymous one: its place in the list, from 1). */
function healthFunctions(value: LnlbNodeOptions['healthCheck']): HealthCheckSpec[] {
  const list: unknown[] = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.flatMap((fn, i): HealthCheckSpec[] => (typeof fn === 'function' ? [{ kind: 'function', label: `function:${fn.name === '' ? String(i + 1) : fn.name}`, fn: fn as HealthCheckFunction }] : []));
}

/** The options a node runs with: the daemon's, with its interface's bind and vip, and the library's own. */
export interface ResolvedNodeOptions {
  daemon: DaemonOptions & { bind: string; vip: string };
  adminSocket: boolean;
  logger: Logger | undefined;
}

/**
 * Checks every option as lnlbd checks its flags (the same parsers, cross-option rules and
 * messages, with the option's name in front: `heartbeatMs (--heartbeat-ms): expected ...`).
 * Creates nothing, needs no privilege.
 */
export function resolveNodeOptions(options: LnlbNodeOptions): ResolvedNodeOptions {
  const raw = toRawOptions(options);
  const adminSocket = options.adminSocket ?? false;
  if (typeof adminSocket !== 'boolean') badOption('adminSocket', `expected true or false, got ${describe(adminSocket)}`);
  const logger = options.logger;
  if (logger !== undefined && !isLogger(logger)) badOption('logger', 'expected a pino logger (with info, warn, error and child methods)');
  let daemon: DaemonOptions;
  try {
    const file = raw.config === undefined ? undefined : loadConfigFile(raw.config);
    // A library keeps quiet unless told otherwise, here or in its config file.
    if (raw.logLevel === undefined && file?.values.logLevel === undefined) raw.logLevel = 'warn';
    daemon = resolveWithConfig(raw, file);
  } catch (err) {
    if (isLnlbError(err) && err.code === 'LNLB_ERR_AUTH_KEY_MISSING') throw lnlbError('LNLB_ERR_AUTH_KEY_MISSING', keyMissingMessage(CREATE_NODE_AUTH_NAMES), { cause: err });
    if (!isLnlbError(err) || (err.code !== 'LNLB_ERR_CLI_BAD_FLAG' && err.code !== 'LNLB_ERR_HEALTH_BAD_CHECK' && err.code !== 'LNLB_ERR_WEIGHT_MANUAL_RETIRED' && err.code !== 'LNLB_ERR_WEIGHT_MODE')) throw err;
    // `--dead-after-ms: must be ...` → `deadAfterMs (--dead-after-ms): must be ...`
    const flag = /^(--[a-z][a-z0-9-]*):/.exec(err.message)?.[1];
    const option = flag === undefined ? undefined : OPTION_BY_FLAG.get(flag);
    throw option === undefined ? err : lnlbError(err.code, `${option} (${err.message.replace(/:/, '):')}`, { cause: err });
  }
  daemon.healthCheck = [...daemon.healthCheck, ...healthFunctions(options.healthCheck)];
  if (daemon.bind === undefined || daemon.vip === undefined) badOption(daemon.bind === undefined ? 'bind' : 'vip', 'is required'); // checked above; for the types
  return { daemon: { ...daemon, bind: daemon.bind, vip: daemon.vip }, adminSocket, logger };
}

function isLogger(value: unknown): value is Logger {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['info', 'warn', 'error', 'child'].every((m) => typeof v[m] === 'function');
}

/**
 * The privileges a node needs, named (LNLB_ERR_PRIV_MISSING), before anything is created:
 * CAP_NET_ADMIN for the TAP, its address and the sysctls, CAP_NET_RAW for the AF_PACKET socket.
 */
export function checkPrivileges(options: Pick<DaemonOptions, 'bind' | 'name' | 'bond'>, effective: bigint = effectiveCapabilities()): void {
  const missing = missingCapabilities([CAP_NET_ADMIN, CAP_NET_RAW], effective);
  if (missing.length === 0) return;
  const bonds = options.bond.length === 0 ? '' : `${options.bond.map((b) => b.name).join(', ')} and `;
  throw lnlbError(
    'LNLB_ERR_PRIV_MISSING',
    `createNode needs ${missing.join(' and ')} (to create ${bonds}${options.name.replace('%d', '0')} and read ${options.bind ?? 'the bound device'}): run the service as root or grant it the capabilities (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)`,
  );
}

/** True when an lnlbd (or an embedded node's admin socket) answers in `runDir`. */
function adminSocketLive(runDir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(join(runDir, ADMIN_SOCKET_NAME));
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Starts a cluster node in this process: checks the options (LNLB_ERR_CLI_BAD_FLAG naming the
 * option) and the privileges (LNLB_ERR_PRIV_MISSING naming the capability), creates the bonds
 * if any, then the cluster interface: the TAP with the VIP, the sysctls, the datapath and
 * control-plane threads. Resolves once the interface is up (converging: `converged` follows).
 *
 * ```ts
 * const node = await createNode({ bind: 'eth0', vip: '10.0.0.100', keyFile: '/etc/lnlb/cluster.key' });
 * node.on('converged', ({ nodes }) => console.log(`view: ${nodes.join(', ')}`));
 * process.once('SIGTERM', async () => { await node.drain({ timeoutSeconds: 30 }); await node.close(); });
 * ```
 */
export async function createNode(options: LnlbNodeOptions): Promise<LnlbNode> {
  const resolved = resolveNodeOptions(options);
  const o = resolved.daemon;
  checkPrivileges(o);
  const log = resolved.logger ?? createLogger(o.logLevel);
  // What can be refused without touching the host, before anything is made (run directory,
  // bonds, metrics, the TAP): the key file, the device, the VIP, the handlers (interface-preflight.ts).
  const checked = await preflightInterface({ ...o, bind: o.bind, vip: o.vip }, parseClusterVip(o.vip), log, CREATE_NODE_BINDING_NAMES, o.bond.some((b) => b.name === o.bind));
  // Created 0700, or refused when unsafe or not writable (run-dir.ts); a start that fails takes back what it made.
  const createdDirs = ensurePrivateDir(o.runDir, 'run directory', { setting: 'runDir' });
  let admin: AdminServer | undefined;
  let daemon: Daemon | undefined;
  let metrics: MetricsServer | undefined;
  let node: EmbeddedNode | undefined;
  let failure: LnlbError | undefined;
  let name: string;
  try {
    if (resolved.adminSocket) {
      admin = new AdminServer(o.runDir);
      await admin.listen(); // refuses a run directory another daemon serves (LNLB_ERR_RUN_DIR_BUSY)
    } else if (await adminSocketLive(o.runDir)) {
      // bond-slaves.json is kept in the run directory: sharing it would restore another's.
      throw lnlbError('LNLB_ERR_RUN_DIR_BUSY', `an lnlbd is serving ${join(o.runDir, ADMIN_SOCKET_NAME)}: give this node its own runDir`);
    }
    const started = new Daemon(o, log, (err) => {
      if (node === undefined) failure ??= err;
      else node.fail(err);
    });
    daemon = started;
    // From here until the daemon is stopped, a host that exits without close() (its own uncaught
    // exception, process.exit) gets its sysctls and bond slaves back on 'exit', synchronously;
    // the host's error handling is left alone (src/main/restore-at-exit.ts says why).
    processExitRestorer.watch(started, (exitCode, failures) => {
      log.warn(
        { event: 'restored-at-exit', exitCode },
        `the process is exiting (code ${exitCode}) with this node open (close() was not called): the VIP is off its TAP, its sysctls and bond slaves are restored; its LEAVE is not waited for: the other nodes take its clients when they hear it or once it has been silent ${o.deadAfterMs} ms`,
      );
      for (const failure of failures) log.error({ event: 'restore-at-exit-failed' }, failure);
      flushLoggerSync(log);
    });
    if (admin !== undefined) registerAdminCommands(admin, started);
    if (o.metrics !== undefined) {
      // Imported here, as lnlbd does: prom-client is loaded only by a node that serves metrics.
      const { MetricsServer, buildMetricsRegistry } = await import('./metrics.js');
      metrics = await MetricsServer.listen(o.metrics, buildMetricsRegistry(() => started.status()), (err) => log.error({ event: 'metrics-error', err }, `metrics endpoint: ${err.message}`));
    }
    for (const bond of o.bond) {
      const created = await started.bonds.create(bond.name, bond.options);
      for (const warning of created.warnings) log.warn({ event: 'bond-option-warning', bond: bond.name }, `bond ${bond.name}: ${warning}`);
      if (bond.slaves.length > 0) await started.bonds.enslave(bond.name, bond.slaves);
    }
    name = await started.addInterface(o.vip, o.bind, o.name, {}, { names: CREATE_NODE_BINDING_NAMES, checked });
  } catch (err) {
    await daemon?.stop().catch(() => undefined);
    if (daemon !== undefined) processExitRestorer.forget(daemon);
    await metrics?.close();
    await admin?.close();
    removeCreatedDirs(createdDirs);
    throw err;
  }
  node = new EmbeddedNode(daemon, daemon.get(name), { admin, metrics, log, afterStop: () => processExitRestorer.forget(daemon) });
  if (failure !== undefined) node.fail(failure);
  return node;
}

/**
 * The LnlbNode behind createNode: a thin typed shell over the Daemon and its one interface.
 * Exported for the unit tests (with a fake daemon); not part of the package's API.
 * @internal
 */
export class EmbeddedNode extends EventEmitter<LnlbNodeEvents> implements LnlbNode {
  readonly interfaceName: string;
  readonly vip: string;
  readonly bind: string;
  readonly adminSocketPath: string | undefined;
  readonly metricsAddress: string | undefined;
  readonly #daemon: Daemon;
  readonly #cluster: ClusterInterface;
  readonly #admin: AdminServer | undefined;
  readonly #metrics: MetricsServer | undefined;
  readonly #log: Logger;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #afterStop: () => void;
  #closing: Promise<void> | undefined;

  /** `afterStop`: called once the daemon has stopped (the host restored), whether or not that went cleanly. */
  constructor(daemon: Daemon, cluster: ClusterInterface, servers: { admin: AdminServer | undefined; metrics: MetricsServer | undefined; log: Logger; afterStop?: () => void }) {
    super();
    this.#daemon = daemon;
    this.#afterStop = servers.afterStop ?? (() => undefined);
    this.#cluster = cluster;
    this.#admin = servers.admin;
    this.#metrics = servers.metrics;
    this.#log = servers.log;
    this.interfaceName = cluster.name;
    this.vip = cluster.vip;
    this.bind = cluster.bind;
    this.adminSocketPath = servers.admin?.path;
    this.metricsAddress = servers.metrics?.address;
    for (const event of CLUSTER_EVENT_NAMES) this.#relay(event);
  }

  /** Re-emits one of the interface's events under the same name, with the same payload. */
  #relay(event: (typeof CLUSTER_EVENT_NAMES)[number]): void {
    // Untyped views of both emitters: the payload passes through as is, and ClusterEvents is
    // the type of both sides (LnlbNodeEvents extends it).
    const source: EventEmitter = this.#cluster.events;
    const target: EventEmitter = this;
    const listener = (...args: unknown[]): void => void target.emit(event, ...args);
    source.on(event, listener);
    this.#unsubscribe.push(() => source.off(event, listener));
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** The interface, or LNLB_ERR_CTL_NO_INTERFACE once closed (or removed by `lnlbctl delif`). */
  #interface(): ClusterInterface {
    if (this.#closing !== undefined) throw lnlbError('LNLB_ERR_CTL_NO_INTERFACE', `${this.interfaceName}: this node is closed (close() was called, or it failed): create a new one with createNode`);
    return this.#daemon.get(this.interfaceName);
  }

  async status(): Promise<InterfaceStatusJson> {
    return this.#interface().status();
  }

  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    const cluster = this.#interface();
    return cluster.drainstop(checkDrainOptions(options));
  }

  async stop(): Promise<InterfaceState> {
    return this.#interface().stopCluster().state;
  }

  async start(): Promise<InterfaceState> {
    return this.#interface().startCluster().state;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#daemon.stop();
      } finally {
        this.#afterStop();
        for (const off of this.#unsubscribe) off();
        await this.#metrics?.close();
        await this.#admin?.close();
        this.emit('close');
      }
    })();
    return this.#closing;
  }

  /** A thread died: close (leave, restore), then tell the owner with `error`, keeping the thread's code. */
  fail(cause: LnlbError): void {
    if (this.#closing !== undefined) return;
    const error = lnlbError(cause.code, `${cause.message} (the node was closed)`, { cause, ...(cause.errno === undefined ? {} : { errno: cause.errno }) });
    // Emitted outside the promise chain: an `error` nobody listens to is thrown as an uncaught
    // exception (EventEmitter's rule), not swallowed as a rejection.
    const report = (): void => void process.nextTick(() => this.emit('error', error));
    this.close().then(report, (err: unknown) => {
      this.#log.error({ err }, 'closing after a failure did not restore everything');
      report();
    });
  }
}

