/**
 * createNode's options: the typed, camelCase options become the raw strings of lnlbd's flags
 * and go through the same table (DAEMON_OPTIONS), so every bad value is refused with the
 * flag's own message, the option's name in front, before anything is created. No root needed.
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LnlbError, lnlbError, reviveError, serializeError, type ErrorCode } from '../../../src/errors.js';
import { effectiveCapabilities } from '../../../src/main/capabilities.js';
import type { InterfaceStatusJson } from '../../../src/main/admin-protocol.js';
import type { ClusterEvents } from '../../../src/main/cluster-events.js';
import type { ClusterInterface } from '../../../src/main/cluster-interface.js';
import type { Daemon } from '../../../src/main/daemon.js';
import type { DrainOptions } from '../../../src/main/drain.js';
import {
  checkDrainOptions,
  checkPrivileges,
  CLUSTER_EVENT_NAMES,
  createNode,
  EmbeddedNode,
  NOT_EMBEDDED,
  resolveNodeOptions,
  toRawOptions,
  type LnlbNodeOptions,
  type NotEmbeddedOption,
} from '../../../src/main/embedded-node.js';
import { DAEMON_OPTIONS, REPEAT_SEPARATOR, resolveDaemonOptions, type DaemonOptions } from '../../../src/main/options.js';

const BASE = { bind: 'eth0', vip: '10.0.0.100', keyFile: '/etc/lnlb/cluster.key' } as const;

// Compile-time: every daemon option is an option of createNode or listed in NOT_EMBEDDED.
const everyOptionTyped: [Exclude<keyof DaemonOptions, keyof LnlbNodeOptions | NotEmbeddedOption>] extends [never] ? true : false = true;

test('every lnlbd option is taken by createNode or listed, with a reason, as not embedded', (t) => {
  t.true(everyOptionTyped);
  for (const spec of DAEMON_OPTIONS) {
    if (Object.hasOwn(NOT_EMBEDDED, spec.key)) {
      t.regex(NOT_EMBEDDED[spec.key as NotEmbeddedOption], /\w/, spec.key);
      continue;
    }
    // Given as undefined: a name createNode does not know is refused even so.
    if (spec.key !== 'bind' && spec.key !== 'vip') t.notThrows(() => toRawOptions({ ...BASE, [spec.key]: undefined }), `${spec.key} is taken`);
  }
});

test('typed values become the flags\' raw strings: numbers as text, lists NUL-joined', (t) => {
  const raw = toRawOptions({
    ...BASE,
    heartbeatMs: 200,
    deadAfterMs: 1000,
    workers: 4,
    rule: ['22/tcp=single,priority=1', '443/tcp=multiple,affinity=none'],
    handler: ['tcp=tcp'],
    weightMode: 'fixed',
    adminSocket: true,
  });
  t.deepEqual(raw, {
    bind: 'eth0',
    vip: '10.0.0.100',
    keyFile: '/etc/lnlb/cluster.key',
    heartbeatMs: '200',
    deadAfterMs: '1000',
    workers: '4',
    rule: `22/tcp=single,priority=1${REPEAT_SEPARATOR}443/tcp=multiple,affinity=none`,
    handler: 'tcp=tcp',
    weightMode: 'fixed',
  });
});

test('resolved as lnlbd resolves the same flags; the library logs at warn unless told', (t) => {
  const resolved = resolveNodeOptions({ ...BASE, heartbeatMs: 200, deadAfterMs: 1000, rule: ['443/tcp=multiple,affinity=none'] });
  const daemon = resolveDaemonOptions({ ...BASE, heartbeatMs: '200', deadAfterMs: '1000', rule: '443/tcp=multiple,affinity=none', logLevel: 'warn' });
  t.deepEqual(resolved.daemon, { ...daemon, bind: 'eth0', vip: '10.0.0.100' });
  t.like(resolved, { adminSocket: false, logger: undefined });
  t.like(resolved.daemon, { logLevel: 'warn', runDir: '/run/lnlb', name: 'nlb%d', workers: 1, config: undefined });
  t.is(resolveNodeOptions({ ...BASE, logLevel: 'debug' }).daemon.logLevel, 'debug');
  t.deepEqual(resolveNodeOptions({ ...BASE, metrics: '127.0.0.1:9750' }).daemon.metrics, { host: '127.0.0.1', port: 9750 });
  const logger = pino({ level: 'silent' });
  t.is(resolveNodeOptions({ ...BASE, logger, adminSocket: true }).logger, logger);
  t.true(resolveNodeOptions({ ...BASE, adminSocket: true }).adminSocket);
});

/** Options a JavaScript caller (no compiler) may pass: typed loosely on purpose. */
type Loose = Record<string, unknown>;

const badCases: [string, Loose, RegExp, ErrorCode?][] = [
  ['missing bind', { vip: '10.0.0.100' }, /^bind \(--bind\): is required/],
  ['missing vip', { bind: 'eth0' }, /^vip \(--vip\): is required/],
  ['bad VIP', { ...BASE, vip: '10.0.0.256' }, /^vip \(--vip\): expected an IPv4 or IPv6 address such as 10\.0\.0\.100 or fd00:10::100 \(dual stack: one of each, comma-separated\), got "10\.0\.0\.256"/],
  ['heartbeat out of range', { ...BASE, heartbeatMs: 5 }, /^heartbeatMs \(--heartbeat-ms\): expected a whole number from 10 to 60000, got 5$/],
  ['workers not whole', { ...BASE, workers: 1.5 }, /^workers \(--workers\): expected a whole number from 1 to 31, got "1\.5"/],
  ['workers negative', { ...BASE, workers: -1 }, /^workers \(--workers\): expected a whole number/],
  ['workers NaN', { ...BASE, workers: Number.NaN }, /^workers \(--workers\): expected a whole number/],
  ['workers a boolean', { ...BASE, workers: true }, /^workers \(--workers\): expected a number, got true/],
  ['dead-after not above heartbeat', { ...BASE, heartbeatMs: 500, deadAfterMs: 500 }, /^deadAfterMs \(--dead-after-ms\): must be longer than --heartbeat-ms \(500\)/],
  ['unknown log level', { ...BASE, logLevel: 'loud' }, /^logLevel \(--log-level\): expected one of fatal, error/],
  ['unknown weight mode', { ...BASE, weightMode: 'cpu' }, /^weightMode \(--weight-mode\): unknown weight mode "cpu": expected one of loadavg/, 'LNLB_ERR_WEIGHT_MODE'],
  ['unknown election', { ...BASE, election: 'maglev' }, /^election \(--election\): expected one of rendezvous, lnlb, bucket/],
  ['interface named as the bound device', { ...BASE, name: 'eth0' }, /^name \(--name\): the cluster interface cannot have the bound device's name/],
  ['device name too long', { ...BASE, bind: 'eth0-with-a-long-name' }, /^bind \(--bind\): expected a device name of 1 to 15/],
  ['bad port rule', { ...BASE, rule: ['443/tcp=sometimes'] }, /^rule \(--rule\): .*443\/tcp=sometimes/],
  ['rule not a list', { ...BASE, rule: 443 }, /^rule \(--rule\): expected an array of strings, got 443/],
  ['bad handler', { ...BASE, handler: ['tcp'] }, /^handler \(--handler\): expected <proto>=<module>/],
  ['keyFile a number', { ...BASE, keyFile: 7 }, /^keyFile \(--key-file\): expected a string, got 7/],
  ['keyFile and insecureNoAuth both', { ...BASE, insecureNoAuth: true }, /^keyFile \(--key-file\): cannot be given with insecureNoAuth: true: give the key \(authenticated\) or the opt-out \(labs only\), not both$/],
  ['insecureNoAuth not a boolean', { bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'yes' }, /^insecureNoAuth \(--insecure-no-auth\): expected true or false, got "yes"$/],
  ['unknown option, the near one suggested', { ...BASE, heartbeat: 200 }, /^heartbeat: unknown option \(did you mean heartbeatMs\?\)$/],
  ['unknown option, nothing near', { ...BASE, colour: 'blue' }, /^colour: unknown option$/],
  ['an Object.prototype name is no option', { ...BASE, constructor: 1 }, /^constructor: unknown option$/],
  ['bad metrics address', { ...BASE, metrics: 'localhost:9750' }, /^metrics \(--metrics\): expected <IPv4 address>:<port>/],
  ['adminSocket not a boolean', { ...BASE, adminSocket: 'yes' }, /^adminSocket: expected true or false, got "yes"/],
  ['logger not a logger', { ...BASE, logger: console.log }, /^logger: expected a pino logger/],
];

for (const [title, options, message, code] of badCases) {
  test(`refused, naming the option and its flag: ${title}`, (t) => {
    const err = t.throws(() => resolveNodeOptions(options as unknown as LnlbNodeOptions), { instanceOf: LnlbError });
    t.is(err?.code, code ?? 'LNLB_ERR_CLI_BAD_FLAG');
    t.regex(err?.message ?? '', message);
  });
}

test('weightMode \'manual\' (weights as loads) is refused with its own code, naming the option and what changed', (t) => {
  const err = t.throws(() => resolveNodeOptions({ ...BASE, weightMode: 'manual' } as unknown as LnlbNodeOptions), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_WEIGHT_MANUAL_RETIRED');
  t.regex(err?.message ?? '', /^weightMode \(--weight-mode\): weight mode "manual" was retired when weights became capacities: a higher weight now gets MORE new clients/);
});

test('not an object at all', (t) => {
  const err = t.throws(() => resolveNodeOptions('eth0' as unknown as LnlbNodeOptions), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CLI_BAD_FLAG');
  t.regex(err?.message ?? '', /^createNode: expected an options object/);
});

test('no key: LNLB_ERR_AUTH_KEY_MISSING naming keyFile, insecureNoAuth and lnlbctl genkey; insecureNoAuth: true is the explicit opt-out', (t) => {
  for (const options of [{ bind: 'eth0', vip: '10.0.0.100' }, { bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: false }, { ...BASE, keyFile: undefined }]) {
    const err = t.throws(() => resolveNodeOptions(options), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_AUTH_KEY_MISSING');
    t.is(
      err?.message,
      "a cluster interface needs a key, or any host on this LAN can take the cluster over: give keyFile: 'PATH' (or key-file = PATH in its config file), the same file on every node; make one with `lnlbctl genkey /etc/lnlb/cluster.key` and copy it to every node (for a lab only, insecureNoAuth: true runs without a key)",
    );
  }
  const lab = resolveNodeOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: true }).daemon;
  t.like(lab, { insecureNoAuth: true, keyFile: undefined });
  t.like(resolveNodeOptions(BASE).daemon, { insecureNoAuth: false, keyFile: '/etc/lnlb/cluster.key' });
  t.is(toRawOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: true }).insecureNoAuth, 'true', 'the raw string the flag gives');
});

test('a key given in the config file counts; the opt-out too', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'lnlb.conf');
  writeFileSync(config, 'key-file = /etc/lnlb/cluster.key\n');
  t.is(resolveNodeOptions({ bind: 'eth0', vip: '10.0.0.100', config }).daemon.keyFile, '/etc/lnlb/cluster.key');
  writeFileSync(config, 'insecure-no-auth = true\n');
  t.true(resolveNodeOptions({ bind: 'eth0', vip: '10.0.0.100', config }).daemon.insecureNoAuth);
});

test('createNode without a key creates nothing: no run directory, no privilege asked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = join(dir, 'run');
  const err = await t.throwsAsync(createNode({ bind: 'eth0', vip: '10.0.0.100', runDir }), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_AUTH_KEY_MISSING');
  t.false(existsSync(runDir));
});

test('undefined values count as not given ({ keyFile: process.env.KEY_FILE })', (t) => {
  t.is(resolveNodeOptions({ ...BASE, metrics: undefined, workers: undefined }).daemon.workers, 1);
  const err = t.throws(() => resolveNodeOptions({ ...BASE, keyFile: undefined }), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_AUTH_KEY_MISSING', 'keyFile: undefined is no key (refused as such), not a bad value');
});

test('createNode rejects a bad option before it creates anything (no run directory, no privilege asked)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = join(dir, 'run');
  const err = await t.throwsAsync(createNode({ ...BASE, runDir, heartbeatMs: 1000, deadAfterMs: 900 }), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CLI_BAD_FLAG');
  t.regex(err?.message ?? '', /^deadAfterMs \(--dead-after-ms\)/);
  t.false(existsSync(runDir));
});

test('a config file in lnlbd\'s format is read when named; the options given win over it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'lnlb.conf');
  writeFileSync(config, 'heartbeat-ms = 200\ndead-after-ms = 1000\nworkers = 3\nlog-level = info\n');
  const o = resolveNodeOptions({ ...BASE, config, workers: 1 }).daemon;
  t.like(o, { heartbeatMs: 200, deadAfterMs: 1000, workers: 1, logLevel: 'info', config });
  t.is(resolveNodeOptions({ ...BASE, config, logLevel: 'error' }).daemon.logLevel, 'error');
  writeFileSync(config, 'heartbeat-ms = fast\n');
  const err = t.throws(() => resolveNodeOptions({ ...BASE, config }), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CONFIG_INVALID');
  t.regex(err?.message ?? '', /lnlb\.conf:1: --heartbeat-ms: expected a whole number/);
});

test('a missing privilege is named, with what it is for', (t) => {
  const options = resolveNodeOptions({ ...BASE, name: 'web%d' }).daemon;
  const onlyAdmin = effectiveCapabilities('CapEff:\t0000000000001000\n');
  const err = t.throws(() => checkPrivileges(options, onlyAdmin), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_PRIV_MISSING');
  t.regex(err?.message ?? '', /^createNode needs CAP_NET_RAW \(to create web0 and read eth0\)/);
  const none = t.throws(() => checkPrivileges(options, 0n), { instanceOf: LnlbError });
  t.regex(none?.message ?? '', /^createNode needs CAP_NET_ADMIN and CAP_NET_RAW/);
  t.notThrows(() => checkPrivileges(options, effectiveCapabilities('CapEff:\t000001ffffffffff\n')));
});

test('drain options are checked as drainstop\'s, naming the option', (t) => {
  t.deepEqual(checkDrainOptions({ timeoutSeconds: 5, idleSeconds: 0 }), { timeoutSeconds: 5, idleSeconds: 0 });
  t.deepEqual(checkDrainOptions({}), {});
  for (const bad of [{ timeoutSeconds: -1 }, { idleSeconds: Number.POSITIVE_INFINITY }, { timeoutSeconds: '5' }]) {
    const err = t.throws(() => checkDrainOptions(bad as unknown as { timeoutSeconds?: number }), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_CTL_BAD_ARGUMENT');
    t.regex(err?.message ?? '', /^(timeoutSeconds|idleSeconds): expected seconds from 0 to 2592000/);
  }
});

test("the package entry: import { createNode } from 'lnlb' is this createNode", async (t) => {
  const lnlb = await import('lnlb');
  t.is(lnlb.createNode, createNode);
  t.is(lnlb.LnlbError, LnlbError);
  const err = await t.throwsAsync(lnlb.createNode({ ...BASE, workers: 0 }), { instanceOf: LnlbError });
  t.regex(err?.message ?? '', /^workers \(--workers\)/);
});

/** The parts of a Daemon and its ClusterInterface the node shell calls, recorded. */
function fakeDaemon() {
  const calls: string[] = [];
  const events = new EventEmitter<ClusterEvents>();
  let present = true;
  const cluster = {
    name: 'nlb0',
    vip: '10.0.0.100',
    bind: 'eth0',
    events,
    status: async () => {
      calls.push('status');
      return { name: 'nlb0', state: 'converged' } as unknown as InterfaceStatusJson;
    },
    drainstop: async (options: DrainOptions) => {
      calls.push(`drainstop ${JSON.stringify(options)}`);
      return { state: 'stopped' as const, drained: true, remainingFlows: 0, ms: 1 };
    },
    stopCluster: () => (calls.push('stopCluster'), { state: 'stopped' as const }),
    startCluster: () => (calls.push('startCluster'), { state: 'converging' as const }),
  };
  const daemon = {
    get: (name: unknown) => {
      if (!present || name !== 'nlb0') throw new LnlbError('LNLB_ERR_CTL_NO_INTERFACE', `no cluster interface ${String(name)}`);
      return cluster;
    },
    stop: async () => {
      calls.push('daemon.stop');
      present = false;
    },
  };
  const node = new EmbeddedNode(daemon as unknown as Daemon, cluster as unknown as ClusterInterface, { admin: undefined, metrics: undefined, log: pino({ level: 'silent' }), afterStop: () => calls.push('afterStop') });
  return { node, events, calls };
}

test('the node re-emits every cluster event under its own name, with the same payload', (t) => {
  const { node, events } = fakeDaemon();
  const seen: [string, unknown][] = [];
  for (const name of CLUSTER_EVENT_NAMES) node.on(name, (payload: object) => seen.push([name, payload]));
  const payloads: { [K in keyof ClusterEvents]: ClusterEvents[K][0] } = {
    joined: { node: '02:00:00:00:00:02', id: 2 },
    left: { node: '02:00:00:00:00:02' },
    died: { node: '02:00:00:00:00:03', reason: 'missed-heartbeats', missedHeartbeats: 5, silentMs: 1000 },
    converged: { nodes: ['02:00:00:00:00:01'], names: ['web1'], weights: [100] },
    weight: { node: '02:00:00:00:00:01', self: true, from: 100, to: 65535 },
    state: { state: 'draining' },
    health: { state: 'unhealthy', from: 'healthy', serving: 'out', action: 'left', checks: [{ check: 'tcp://127.0.0.1:5432', state: 'unhealthy', successesInARow: 0, failuresInARow: 3, run: 9, failed: 3, transitions: 2 }] },
  };
  for (const name of CLUSTER_EVENT_NAMES) (events.emit as (n: string, p: unknown) => boolean)(name, payloads[name]);
  t.deepEqual(seen, CLUSTER_EVENT_NAMES.map((name) => [name, payloads[name]]));
  t.like(node, { interfaceName: 'nlb0', vip: '10.0.0.100', bind: 'eth0', adminSocketPath: undefined, metricsAddress: undefined, closed: false });
});

test('status, drain, stop and start go to the interface; drain options are checked first', async (t) => {
  const { node, calls } = fakeDaemon();
  t.like(await node.status(), { name: 'nlb0' });
  t.like(await node.drain({ timeoutSeconds: 3 }), { state: 'stopped', drained: true });
  t.is(await node.start(), 'converging');
  t.is(await node.stop(), 'stopped');
  const err = await t.throwsAsync(node.drain({ timeoutSeconds: -1 }), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CTL_BAD_ARGUMENT');
  t.deepEqual(calls, ['status', 'drainstop {"timeoutSeconds":3}', 'startCluster', 'stopCluster']);
});

test('close stops the daemon once, however often it is called; then nothing is relayed and every call is refused', async (t) => {
  const { node, events, calls } = fakeDaemon();
  let closes = 0;
  node.on('close', () => closes++);
  const relayed: unknown[] = [];
  node.on('joined', (e) => relayed.push(e));
  await Promise.all([node.close(), node.close()]);
  await node.close();
  t.deepEqual(calls, ['daemon.stop', 'afterStop'], 'stopped once, then no longer restored at exit');
  t.is(closes, 1);
  t.true(node.closed);
  events.emit('joined', { node: '02:00:00:00:00:09', id: 9 });
  t.deepEqual(relayed, []);
  for (const call of [() => node.status(), () => node.drain(), () => node.stop(), () => node.start()]) {
    const err = await t.throwsAsync(call(), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_CTL_NO_INTERFACE');
    t.regex(err?.message ?? '', /this node is closed/);
  }
});

test('a failed thread closes the node, then reports it as an error event', async (t) => {
  const { node, calls } = fakeDaemon();
  const order: string[] = [];
  node.on('close', () => order.push('close'));
  const error = new Promise<LnlbError>((resolve) => node.once('error', resolve));
  // As the Daemon reports it: prefixed with the interface's name.
  node.fail(lnlbError('LNLB_ERR_WORKER_FAILED', 'nlb0: the control-plane thread exited unexpectedly (code 1)'));
  node.fail(lnlbError('LNLB_ERR_WORKER_FAILED', 'nlb0: a second report changes nothing'));
  const err = await error;
  order.push('error');
  t.is(err.code, 'LNLB_ERR_WORKER_FAILED');
  t.regex(err.message, /^nlb0: the control-plane thread exited unexpectedly \(code 1\) \(the node was closed\)$/);
  t.deepEqual(calls, ['daemon.stop', 'afterStop']);
  t.deepEqual(order, ['close', 'error']);
});

test('the error event keeps the code a thread raised (revived from what it posted)', async (t) => {
  const { node } = fakeDaemon();
  const error = new Promise<LnlbError>((resolve) => node.once('error', resolve));
  // What a dispatcher posts when its ring read fails, revived as the main thread does.
  const posted = serializeError(lnlbError('LNLB_ERR_PORT_IO', 'ringRead on eth0: ENXIO', { errno: 'ENXIO' }), 'dispatcher');
  node.fail(lnlbError('LNLB_ERR_PORT_IO', `nlb0: ${reviveError(posted).message}`, { errno: 'ENXIO' }));
  const err = await error;
  t.is(err.code, 'LNLB_ERR_PORT_IO');
  t.is(err.errno, 'ENXIO');
  t.regex(err.message, /^nlb0: dispatcher: ringRead on eth0: ENXIO \(the node was closed\)$/);
});

test('the embedding API installs no process-wide handler: a crash in the host program stays the host program\'s', async (t) => {
  const events = ['uncaughtException', 'unhandledRejection', 'SIGTERM', 'SIGINT'] as const;
  const before = events.map((e) => process.listenerCount(e));
  const { node } = fakeDaemon();
  node.on('error', () => undefined);
  node.fail(lnlbError('LNLB_ERR_WORKER_FAILED', 'nlb0: a thread died'));
  await node.close();
  t.deepEqual(events.map((e) => process.listenerCount(e)), before);
});

test('healthCheck: URLs as --health-check takes them, and functions of the service, in one list; a bad one names the option', (t) => {
  async function dbReachable(): Promise<boolean> {
    return true;
  }
  const o = resolveNodeOptions({ ...BASE, healthCheck: ['http://127.0.0.1:8080/healthz', dbReachable, async () => false], healthIntervalMs: 200, healthFall: 2 }).daemon;
  t.deepEqual(o.healthCheck.map((c) => c.label), ['http://127.0.0.1:8080/healthz', 'function:dbReachable', 'function:3']);
  t.like(o, { healthIntervalMs: 200, healthTimeoutMs: undefined, healthFall: 2, healthRise: 2 });
  t.deepEqual(resolveNodeOptions({ ...BASE, healthCheck: dbReachable }).daemon.healthCheck.map((c) => c.kind), ['function']);
  t.deepEqual(resolveNodeOptions({ ...BASE, healthCheck: 'tcp://127.0.0.1:5432' }).daemon.healthCheck.map((c) => c.kind), ['tcp']);
  const bad = t.throws(() => resolveNodeOptions({ ...BASE, healthCheck: ['tcp://127.0.0.1'] }), { instanceOf: LnlbError });
  t.is(bad?.code, 'LNLB_ERR_HEALTH_BAD_CHECK');
  t.regex(bad?.message ?? '', /^healthCheck \(--health-check\): "tcp:\/\/127\.0\.0\.1": tcp:\/\/ needs a port/);
  const wrongType = t.throws(() => resolveNodeOptions({ ...BASE, healthCheck: [42] as unknown as string[] }), { instanceOf: LnlbError });
  t.regex(wrongType?.message ?? '', /^healthCheck \(--health-check\): expected URLs \(strings\) or functions returning a promise of boolean, got an array/);
  const timeout = t.throws(() => resolveNodeOptions({ ...BASE, healthIntervalMs: 100, healthTimeoutMs: 500 }), { instanceOf: LnlbError });
  t.regex(timeout?.message ?? '', /^healthTimeoutMs \(--health-timeout-ms\): must be at most --health-interval-ms/);
});
