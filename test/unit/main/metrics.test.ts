import test from 'ava';
import { request } from 'node:http';
import type { InterfaceStatusJson } from '../../../src/main/admin-protocol.js';
import { parseConfigFile } from '../../../src/main/config-file.js';
import { buildMetricsRegistry, MetricsServer } from '../../../src/main/metrics.js';
import { resolveDaemonOptions } from '../../../src/main/options.js';
import { LnlbError } from '../../../src/errors.js';

function fakeInterface(name: string, overrides: Partial<InterfaceStatusJson['counters']> = {}): InterfaceStatusJson {
  return {
    name,
    vip: '10.0.0.100',
    bind: 'eth0',
    clusterMac: '02:00:0a:00:00:64',
    converged: true,
    state: 'converged',
    suspended: false,
    weightMode: 'loadavg',
    authenticated: true,
    insecure: false,
    unauthenticatedPeers: [],
    workers: 2,
    nodes: [
      { mac: '02:00:00:00:00:01', status: 'OK', weight: 10, self: true },
      { mac: '02:00:00:00:00:02', status: 'ASKED_RETRASM', weight: 10, self: false },
      { mac: '02:00:00:00:00:03', status: 'JOINING', weight: 10, self: false },
    ],
    rules: ['default=multiple,affinity=single'],
    rulesDigest: '1234abcd',
    rulesMismatch: [],
    handlers: [],
    counters: {
      framesSeen: 1000,
      framesAccepted: 400,
      framesDropped: { otherNode: 550, ringFull: 3, holdFull: 2, notVip: 45 },
      arpReplies: 7,
      trackedEntries: 12,
      kernelDrops: 1,
      kernelFilter: { program: 'buckets', why: 'buckets this node owns or drains', passBuckets: 341, swaps: 4, failures: 1 },
      weightAnnouncements: { seen: 3, heldFlows: 2 },
      control: {
        received: { HEARTBEAT: 50, JOIN: 1 },
        sent: { HEARTBEAT: 51, WELCOME: 1 },
        rejected: { 'auth-BAD_MAC': 4, 'auth-REPLAYED': 2, BAD_CRC: 1 },
        overflow: { unauthenticatedPeersEvicted: 3, unauthenticatedPeersNotTracked: 0, logLinesSuppressed: 9 },
        stateTransfer: { transfersStarted: 2, fragmentsResent: 41, requestsSent: 0 },
      },
      nodeTableFull: 0,
      rounds: 9,
      resets: 1,
      evictions: 5,
      deaths: { 'missed-heartbeats': 2, left: 1, restarted: 0, 'self-reset': 0 },
      actors: [
        { framesIn: 300, accepted: 150, held: 4, holdOverflows: 2, trackedEntries: 7, evictions: 3, ringBytesUsed: 4096, ringBytesCapacity: 8 << 20, ringOverflows: 1 },
        { framesIn: 252, accepted: 250, held: 0, holdOverflows: 0, trackedEntries: 5, evictions: 2, ringBytesUsed: 0, ringBytesCapacity: 8 << 20, ringOverflows: 2 },
      ],
      ...overrides,
    },
  } as InterfaceStatusJson;
}

interface Exposition {
  types: Map<string, string>;
  /** `name{a="x",b="y"}` (labels sorted) → value. */
  samples: Map<string, number>;
}

/** The Prometheus text format, enough of it for these tests. */
function parse(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    samples.set(`${m[1]}${labels.length > 0 ? `{${labels.join(',')}}` : ''}`, Number(m[3]));
  }
  return { types, samples };
}

async function scrape(status: () => readonly InterfaceStatusJson[]): Promise<Exposition> {
  return parse(await buildMetricsRegistry(status, { processMetrics: false }).metrics());
}

test('datapath counters per interface, drops by reason, with their types', async (t) => {
  const { types, samples } = await scrape(() => [fakeInterface('nlb0')]);
  t.is(samples.get('lnlb_frames_seen_total{interface="nlb0"}'), 1000);
  t.is(samples.get('lnlb_frames_accepted_total{interface="nlb0"}'), 400);
  t.is(samples.get('lnlb_frames_dropped_total{interface="nlb0",reason="otherNode"}'), 550);
  t.is(samples.get('lnlb_frames_dropped_total{interface="nlb0",reason="notVip"}'), 45);
  t.is(samples.get('lnlb_kernel_drops_total{interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_kernel_filter_pass_buckets{interface="nlb0"}'), 341);
  t.is(samples.get('lnlb_kernel_filter_swaps_total{interface="nlb0"}'), 4);
  t.is(samples.get('lnlb_weight_announcements_seen_total{interface="nlb0"}'), 3);
  t.is(samples.get('lnlb_flows_held_for_announcement_total{interface="nlb0"}'), 2);
  t.is(samples.get('lnlb_kernel_filter_failures_total{interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_arp_replies_total{interface="nlb0"}'), 7);
  t.is(samples.get('lnlb_tracked_entries{interface="nlb0"}'), 12);
  t.is(samples.get('lnlb_tracking_evictions_total{interface="nlb0"}'), 5);
  for (const [name, type] of types) {
    if (name.endsWith('_total')) t.is(type, 'counter', `${name} is a counter`);
    else t.is(type, 'gauge', `${name} is a gauge`);
  }
  t.true([...types.keys()].every((name) => name.startsWith('lnlb_')));
});

test('per actor: load, tracked flows, queue depth and capacity, overflows of the ring and of the hold queue', async (t) => {
  const { samples } = await scrape(() => [fakeInterface('nlb0')]);
  t.is(samples.get('lnlb_actor_frames_total{actor="0",interface="nlb0"}'), 300);
  t.is(samples.get('lnlb_actor_frames_total{actor="1",interface="nlb0"}'), 252);
  t.is(samples.get('lnlb_actor_accepted_total{actor="1",interface="nlb0"}'), 250);
  t.is(samples.get('lnlb_actor_tracked_entries{actor="0",interface="nlb0"}'), 7);
  t.is(samples.get('lnlb_actor_held_total{actor="0",interface="nlb0"}'), 4);
  t.is(samples.get('lnlb_queue_depth_bytes{actor="0",interface="nlb0"}'), 4096);
  t.is(samples.get('lnlb_queue_depth_bytes{actor="1",interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_queue_capacity_bytes{actor="1",interface="nlb0"}'), 8 << 20);
  t.is(samples.get('lnlb_queue_overflows_total{actor="0",interface="nlb0",queue="ring"}'), 1);
  t.is(samples.get('lnlb_queue_overflows_total{actor="1",interface="nlb0",queue="ring"}'), 2);
  t.is(samples.get('lnlb_queue_overflows_total{actor="0",interface="nlb0",queue="hold"}'), 2);
  t.false(samples.has('lnlb_actor_frames_total{actor="2",interface="nlb0"}'));
});

test('lnlb_control_insecure: 1 for an interface running without a key (--insecure-no-auth), 0 with one', async (t) => {
  const { types, samples } = await scrape(() => [fakeInterface('nlb0'), { ...fakeInterface('nlb1'), authenticated: false, insecure: true }]);
  t.is(types.get('lnlb_control_insecure'), 'gauge');
  t.is(samples.get('lnlb_control_insecure{interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_control_insecure{interface="nlb1"}'), 1);
});

test('membership and control plane: members, converged, rounds, deaths, messages by type, rejections and auth failures', async (t) => {
  const { samples } = await scrape(() => [fakeInterface('nlb0'), { ...fakeInterface('nlb1'), converged: false, nodes: [], state: 'failed', failed: 'handler x stuck in actor 0' }]);
  t.is(samples.get('lnlb_cluster_members{interface="nlb0"}'), 2, 'a JOINING node is not a member yet');
  t.is(samples.get('lnlb_converged{interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_converged{interface="nlb1"}'), 0);
  t.is(samples.get('lnlb_interface_failed{interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_interface_failed{interface="nlb1"}'), 1, 'the watchdog took nlb1 out');
  t.is(samples.get('lnlb_cluster_members{interface="nlb1"}'), 0);
  t.is(samples.get('lnlb_convergence_rounds_total{interface="nlb0"}'), 9);
  t.is(samples.get('lnlb_convergence_resets_total{interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_node_deaths_total{interface="nlb0",reason="missed-heartbeats"}'), 2);
  t.is(samples.get('lnlb_node_deaths_total{interface="nlb0",reason="left"}'), 1);
  t.is(samples.get('lnlb_node_deaths_total{interface="nlb0",reason="restarted"}'), 0);
  t.is(samples.get('lnlb_node_table_full_total{interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_control_messages_received_total{interface="nlb0",type="HEARTBEAT"}'), 50);
  t.is(samples.get('lnlb_control_messages_received_total{interface="nlb0",type="JOIN"}'), 1);
  t.is(samples.get('lnlb_control_messages_sent_total{interface="nlb0",type="WELCOME"}'), 1);
  t.is(samples.get('lnlb_control_messages_rejected_total{interface="nlb0",reason="auth-BAD_MAC"}'), 4);
  t.is(samples.get('lnlb_control_messages_rejected_total{interface="nlb0",reason="BAD_CRC"}'), 1);
  // Every authentication verdict that fails is there from the start (0), for alerts on increase().
  t.is(samples.get('lnlb_control_auth_failures_total{interface="nlb0",reason="BAD_MAC"}'), 4);
  t.is(samples.get('lnlb_control_auth_failures_total{interface="nlb0",reason="REPLAYED"}'), 2);
  t.is(samples.get('lnlb_control_auth_failures_total{interface="nlb0",reason="UNSIGNED"}'), 0);
  t.is(samples.get('lnlb_control_auth_failures_total{interface="nlb0",reason="UNEXPECTED_SIGNATURE"}'), 0);
  t.is(samples.get('lnlb_control_auth_failures_total{interface="nlb0",reason="MALFORMED"}'), 0);
  t.false(samples.has('lnlb_control_auth_failures_total{interface="nlb0",reason="OK"}'));
  t.false(samples.has('lnlb_control_auth_failures_total{interface="nlb0",reason="BAD_CRC"}'), 'not an authentication failure');
});

test('a held node: lnlb_held 1 and its unauthenticated peers by verdict (every verdict exported, 0 included)', async (t) => {
  const heldIface: InterfaceStatusJson = {
    ...fakeInterface('nlb0'),
    state: 'held',
    heldBy: 'unauthenticated-peers',
    unauthenticatedPeers: [
      { mac: '02:00:00:00:00:07', verdict: 'BAD_MAC', claimsJoined: true, lastSeenMs: 10 },
      { mac: '02:00:00:00:00:08', verdict: 'BAD_MAC', claimsJoined: true, lastSeenMs: 20 },
    ],
  };
  const { samples } = await scrape(() => [heldIface, fakeInterface('nlb1')]);
  t.is(samples.get('lnlb_held{interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_held{interface="nlb1"}'), 0);
  t.is(samples.get('lnlb_control_unauthenticated_peers{interface="nlb0",verdict="BAD_MAC"}'), 2);
  t.is(samples.get('lnlb_control_unauthenticated_peers{interface="nlb0",verdict="UNSIGNED"}'), 0);
  t.is(samples.get('lnlb_control_unauthenticated_peers{interface="nlb1",verdict="UNEXPECTED_SIGNATURE"}'), 0);
  t.is(samples.get('lnlb_control_overflows_total{interface="nlb0",what="unauthenticatedPeersEvicted"}'), 3);
  t.is(samples.get('lnlb_control_overflows_total{interface="nlb0",what="logLinesSuppressed"}'), 9);
  t.is(samples.get('lnlb_state_transfers_total{interface="nlb0",what="fragmentsResent"}'), 41, 'the state transfers, by what');
  t.is(samples.get('lnlb_state_transfers_total{interface="nlb0",what="transfersStarted"}'), 2);
});

test('a status without the newer fields (evictions, deaths, actors, kernel filter, weight announcements) gives no such series and no error', async (t) => {
  const old = fakeInterface('nlb0');
  delete old.counters.evictions;
  delete old.counters.deaths;
  delete old.counters.actors;
  delete old.counters.kernelFilter;
  delete old.counters.weightAnnouncements;
  const { samples } = await scrape(() => [old]);
  t.false([...samples.keys()].some((k) => k.startsWith('lnlb_tracking_evictions_total') || k.startsWith('lnlb_node_deaths_total') || k.startsWith('lnlb_actor_') || k.startsWith('lnlb_kernel_filter_') || k.startsWith('lnlb_weight_announcements_') || k.startsWith('lnlb_flows_held_for_')));
  t.is(samples.get('lnlb_frames_seen_total{interface="nlb0"}'), 1000);
});

test('values are read at scrape time, once per scrape; a removed interface leaves no stale series', async (t) => {
  let calls = 0;
  let status = [fakeInterface('nlb0'), fakeInterface('nlb1')];
  const registry = buildMetricsRegistry(
    async () => {
      calls++;
      await Promise.resolve();
      return status;
    },
    { processMetrics: false },
  );
  t.is(calls, 0, 'nothing is read before a scrape');
  let { samples } = parse(await registry.metrics());
  t.is(calls, 1, 'one status for every metric of a scrape');
  t.is(samples.get('lnlb_frames_seen_total{interface="nlb1"}'), 1000);
  status = [fakeInterface('nlb0', { framesSeen: 1500 })];
  ({ samples } = parse(await registry.metrics()));
  t.is(calls, 2);
  t.is(samples.get('lnlb_frames_seen_total{interface="nlb0"}'), 1500, 'set from the total, not added to the last scrape');
  t.false(samples.has('lnlb_frames_seen_total{interface="nlb1"}'));
  status = [];
  ({ samples } = parse(await registry.metrics()));
  t.is(samples.size, 0);
});

test('a failing status fails the scrape, and the next scrape asks again', async (t) => {
  let fail = true;
  const registry = buildMetricsRegistry(() => {
    if (fail) throw new Error('control plane did not answer');
    return [fakeInterface('nlb0')];
  }, { processMetrics: false });
  await t.throwsAsync(registry.metrics(), { message: 'control plane did not answer' });
  fail = false;
  t.is(parse(await registry.metrics()).samples.get('lnlb_frames_seen_total{interface="nlb0"}'), 1000);
});

test('process metrics: lnlb_ prefix, no interface label', async (t) => {
  const { samples, types } = parse(await buildMetricsRegistry(() => []).metrics());
  t.true((samples.get('lnlb_process_cpu_seconds_total') ?? 0) > 0);
  t.true((samples.get('lnlb_process_resident_memory_bytes') ?? 0) > 1 << 20);
  t.true((samples.get('lnlb_process_heap_used_bytes') ?? 0) > 0);
  t.true((samples.get('lnlb_process_open_fds') ?? 0) > 0);
  t.true(Math.abs((samples.get('lnlb_process_start_time_seconds') ?? 0) - (Date.now() / 1000 - process.uptime())) < 5);
  t.is(types.get('lnlb_process_cpu_seconds_total'), 'counter');
});

test('--metrics: IPv4 address or [::], port 1..65535; the config file takes it too', (t) => {
  t.deepEqual(resolveDaemonOptions({ metrics: '127.0.0.1:9750' }).metrics, { host: '127.0.0.1', port: 9750 });
  t.deepEqual(resolveDaemonOptions({ metrics: '0.0.0.0:1' }).metrics, { host: '0.0.0.0', port: 1 });
  t.deepEqual(resolveDaemonOptions({ metrics: '[::]:65535' }).metrics, { host: '::', port: 65535 });
  t.is(resolveDaemonOptions({}).metrics, undefined);
  for (const bad of ['127.0.0.1', '9750', ':9750', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:99999', '10.0.0.256:9750', 'localhost:9750', '[::1]:9750', '127.0.0.1:97a0', '']) {
    const err = t.throws(() => resolveDaemonOptions({ metrics: bad }), { instanceOf: LnlbError }, bad);
    t.is(err?.code, 'LNLB_ERR_CLI_BAD_FLAG');
    t.regex(err?.message ?? '', /^--metrics: /);
  }
  t.deepEqual(resolveDaemonOptions(parseConfigFile('metrics = 127.0.0.1:9750\n', '/etc/lnlb/lnlb.conf')).metrics, { host: '127.0.0.1', port: 9750 });
});

function get(address: string, path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${address}${path}`, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the server (loopback): GET /metrics in the text format, 404 elsewhere, 405 for POST, a port in use named --metrics', async (t) => {
  const server = await MetricsServer.listen({ host: '127.0.0.1', port: 0 }, buildMetricsRegistry(() => [fakeInterface('nlb0')], { processMetrics: false }));
  try {
    t.regex(server.address, /^127\.0\.0\.1:\d+$/);
    const ok = await get(server.address, '/metrics');
    t.is(ok.status, 200);
    t.regex(ok.type ?? '', /^text\/plain; version=0\.0\.4/);
    t.is(parse(ok.body).samples.get('lnlb_frames_seen_total{interface="nlb0"}'), 1000);
    t.is((await get(server.address, '/metrics?name=x')).status, 200);
    t.is((await get(server.address, '/')).status, 404);
    t.is((await get(server.address, '/metricsx')).status, 404);
    t.is((await get(server.address, '/metrics', 'POST')).status, 405);
    const port = Number(server.address.split(':')[1]);
    const err = await t.throwsAsync(MetricsServer.listen({ host: '127.0.0.1', port }, buildMetricsRegistry(() => [])), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_METRICS_LISTEN');
    t.is(err?.errno, 'EADDRINUSE');
    t.regex(err?.message ?? '', new RegExp(`^--metrics 127\\.0\\.0\\.1:${port}: cannot listen: the port is in use`));
  } finally {
    await server.close();
  }
});

test('health checks: healthy and serving per interface, runs, failures and transitions per check; nothing without checks', async (t) => {
  const health: NonNullable<InterfaceStatusJson['health']> = {
    state: 'unhealthy',
    sinceMs: 1200,
    serving: 'out',
    intervalMs: 1000,
    timeoutMs: 1000,
    fall: 3,
    rise: 2,
    transitions: 2,
    checks: [
      { check: 'http://10.0.0.100:80/', state: 'unhealthy', successesInARow: 0, failuresInARow: 4, run: 40, failed: 4, transitions: 2, last: { ok: false, detail: 'GET ECONNREFUSED', ms: 1, agoMs: 300 } },
      { check: 'tcp://127.0.0.1:5432', state: 'healthy', successesInARow: 40, failuresInARow: 0, run: 40, failed: 0, transitions: 1 },
    ],
  };
  const { types, samples } = await scrape(() => [{ ...fakeInterface('nlb0'), health }, fakeInterface('nlb1')]);
  t.is(samples.get('lnlb_health_healthy{interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_health_serving{interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_health_check_up{check="http://10.0.0.100:80/",interface="nlb0"}'), 0);
  t.is(samples.get('lnlb_health_check_up{check="tcp://127.0.0.1:5432",interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_health_checks_total{check="http://10.0.0.100:80/",interface="nlb0"}'), 40);
  t.is(samples.get('lnlb_health_check_failures_total{check="http://10.0.0.100:80/",interface="nlb0"}'), 4);
  t.is(samples.get('lnlb_health_check_transitions_total{check="tcp://127.0.0.1:5432",interface="nlb0"}'), 1);
  t.is(samples.get('lnlb_health_transitions_total{interface="nlb0"}'), 2);
  t.is(types.get('lnlb_health_checks_total'), 'counter');
  t.false([...samples.keys()].some((k) => k.startsWith('lnlb_health') && k.includes('nlb1')), 'an interface without checks has no health series');
  const lastResort = await scrape(() => [{ ...fakeInterface('nlb0'), health: { ...health, serving: 'last-resort' } }]);
  t.is(lastResort.samples.get('lnlb_health_serving{interface="nlb0"}'), 1);
});
