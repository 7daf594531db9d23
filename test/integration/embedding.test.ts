// The embedding API end to end: examples/http-service (an HTTP service that calls
// createNode from 'lnlb', no lnlbd) runs on two namespace hosts; real curls from 16 client
// addresses reach the VIP; the service's typed events are in its log; SIGTERM drains, closes
// and exits 0 with the TAP gone and the host's sysctls as they were. Then, with port 80 taken
// by another process: the example says so, closes its node and exits 1, and a host that does
// not handle the failure at all crashes as Node crashes, its sysctls restored all the same.
import test, { type ExecutionContext } from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterLab, LAB_DAEMON_TIMING, VIP, type CurlResult } from '../../lab/cluster.js';
import { sweepStale, tail, waitExit, type LabProcess } from '../../lab/netns.js';

// This file runs as dist/test/integration/embedding.test.js; the compiled example is beside it.
const EXAMPLE = fileURLToPath(new URL('../../examples/http-service/server.js', import.meta.url));
const CRASHING_HOST = fileURLToPath(new URL('./fixtures/crashing-host.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * Each source goes to either node with even odds (rendezvous hashing over random veth MACs):
 * with 8 sources one node would get them all in 1 run of 128, with 16 in 1 of 32768.
 */
const CLIENT_ADDRESSES = 16;
/** The sysctls createNode changes on the bound device (src/main/cluster-device.ts, SysctlGuard). */
const SYSCTLS = ['arp_ignore', 'arp_announce'] as const;
/** This node's service also serves Prometheus metrics (createNode's `metrics`), on its own address. */
const METRICS_NODE = 'node1';
const METRICS_PORT = 9750;

interface Answer {
  node: string;
  view: { mac: string; name?: string; address?: string; state?: string; self: boolean; status: string }[];
  state: string;
}

let cluster: ClusterLab | undefined;
const services = new Map<string, LabProcess>();
/** Each node's eth0 sysctls before the service started. */
const original = new Map<string, Record<string, string>>();

function maintenanceFile(node: string): string {
  return join(lab().lab.dir, `${node}.maintenance`);
}

function lab(): ClusterLab {
  if (cluster === undefined) throw new Error('the cluster lab was not built (see the before hook)');
  return cluster;
}

async function sysctls(node: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of SYSCTLS) out[key] = (await lab().lab.exec(node, ['cat', `/proc/sys/net/ipv4/conf/eth0/${key}`])).stdout.trim();
  return out;
}

function logTails(): string {
  return [...services.values()].map((p) => `--- ${p.host}: ${p.logFile}\n${tail(p.logFile, 30)}`).join('\n');
}

/** The example's JSON lines with this `event`. */
function events(node: string, event: string): Record<string, unknown>[] {
  const service = services.get(node);
  if (service === undefined) return [];
  return readFileSync(service.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    // The service's typed events only: lnlb's own log lines (they have a level) share the
    // file and are written asynchronously, so one can land after the event it announces.
    .filter((line) => line['event'] === event && !('level' in line));
}

test.before(async (t) => {
  await sweepStale();
  cluster = await ClusterLab.create({ nodes: 2, clientAddresses: CLIENT_ADDRESSES });
  try {
    for (const node of cluster.nodes) {
      original.set(node, await sysctls(node));
      const argv = [process.execPath, EXAMPLE, '--bind', 'eth0', '--vip', VIP, '--port', '80', '--name', node, '--run-dir', cluster.runDir(node), '--key-file', cluster.keyFile, ...LAB_DAEMON_TIMING];
      // --admin-socket: lnlbctl (waitConverged) reads the embedded node's status as a daemon's.
      argv.push('--drain-timeout', '5', '--drain-idle', '1', '--admin-socket');
      // A health check of the service's own (a function): unhealthy while this file exists.
      argv.push('--maintenance-file', maintenanceFile(node), '--health-interval-ms', '200');
      if (node === METRICS_NODE) argv.push('--metrics', `${cluster.nodeIp(node)}:${METRICS_PORT}`);
      services.set(node, cluster.lab.spawn(node, argv, { logName: 'http-service', cwd: REPO_ROOT }));
    }
    for (const node of cluster.nodes) await cluster.lab.waitForLog(services.get(node)!, /"event":"listening"/, 20_000);
    const convergedMs = await cluster.waitConverged(cluster.nodes, 20_000);
    t.log(`2 embedded nodes converged, lnlbctl status agreeing ${convergedMs.toFixed(0)} ms after both listened`);
  } catch (error) {
    console.error(logTails());
    throw error;
  }
});

let logsShown = false;
test.afterEach.always((t) => {
  if (t.passed || logsShown) return;
  logsShown = true;
  console.error(`logs after "${t.title}":\n${logTails()}`);
});

test.after.always(async () => {
  await cluster?.cleanup();
});

test.serial('every source is answered, both nodes serve some, every answer shows a view of 2 members', async (t) => {
  const results = await Promise.all(lab().clientIps.map((source) => lab().curlFrom(source, `http://${VIP}/`)));
  const answers = new Map<string, Answer>();
  const problems: string[] = [];
  results.forEach((result: CurlResult, i) => {
    const source = lab().clientIps[i]!;
    if (!result.ok) problems.push(`${source}: ${result.error}`);
    else answers.set(source, JSON.parse(result.body) as Answer);
  });
  t.deepEqual(problems, [], 'every source is answered');
  const perNode: Record<string, number> = {};
  for (const answer of answers.values()) perNode[answer.node] = (perNode[answer.node] ?? 0) + 1;
  t.log('sources per node:', perNode);
  t.deepEqual(Object.keys(perNode).sort(), [...lab().nodes].sort(), 'both nodes serve some sources');
  for (const [source, answer] of answers) {
    t.is(answer.view.length, 2, `${source}: ${JSON.stringify(answer)}`);
    t.is(answer.view.filter((m) => m.self).length, 1, `${source}: ${JSON.stringify(answer)}`);
    t.true(answer.view.every((m) => m.status === 'OK'), `${source}: ${JSON.stringify(answer)}`);
    t.deepEqual(answer.view.map((m) => m.name).sort(), [...lab().nodes].sort(), `${source}: every member by its name`);
    t.true(answer.view.every((m) => m.state === (m.self ? 'converged' : 'serving')), `${source}: ${JSON.stringify(answer)}`);
    t.is(answer.state, 'converged', `${source}: ${JSON.stringify(answer)}`);
  }
});

test.serial('the embedded node serves its Prometheus metrics when asked (metrics option)', async (t) => {
  const result = await lab().curlFrom(lab().clientIps[0]!, `http://${lab().nodeIp(METRICS_NODE)}:${METRICS_PORT}/metrics`);
  t.true(result.ok, result.ok ? '' : result.error);
  if (result.ok) t.regex(result.body, /^lnlb_\w+\{[^}]*interface="nlb0"[^}]*\} \d/m, result.body.slice(0, 2000));
});

test.serial('the typed events reached the service: the other node joined, a view of both converged', (t) => {
  for (const node of lab().nodes) {
    const joined = events(node, 'joined');
    t.true(joined.length >= 1 && joined.every((e) => typeof e['node'] === 'string' && typeof e['id'] === 'number'), `${node} joined: ${JSON.stringify(joined)}`);
    const other = lab().nodes.find((n) => n !== node)!;
    t.true(
      joined.some((e) => e['name'] === other && e['address'] === lab().nodeIp(other)),
      `${node} heard ${other} join by its name (nodeName) and address: ${JSON.stringify(joined)}`,
    );
    const converged = events(node, 'converged');
    t.true(
      converged.some((e) => Array.isArray(e['nodes']) && e['nodes'].length === 2 && Array.isArray(e['weights']) && e['weights'].length === 2),
      `${node} converged: ${JSON.stringify(converged)}`,
    );
  }
});

test.serial('a health check function of the service: its maintenance file takes node2 out (typed health event, the other node answers every source), its removal brings it back', async (t) => {
  const healthy = events('node2', 'health');
  t.like(healthy[0], { state: 'healthy', from: 'unknown', serving: 'in', action: 'none' });
  t.like((healthy[0]?.['checks'] as unknown[] | undefined)?.[0], { check: 'function:notInMaintenance', state: 'healthy' });
  writeFileSync(maintenanceFile('node2'), '');
  await lab().lab.waitForLog(services.get('node2')!, /"event":"health".*"action":"left"/, 10_000);
  t.like(events('node2', 'health').at(-1), { state: 'unhealthy', from: 'healthy', serving: 'out', action: 'left' });
  await lab().waitConverged(['node1'], 10_000);
  const answers = await Promise.all(lab().clientIps.map((source) => lab().curlFrom(source, `http://${VIP}/`)));
  t.deepEqual(
    answers.map((a) => (a.ok ? (JSON.parse(a.body) as Answer).node : a.error)),
    lab().clientIps.map(() => 'node1'),
    'node1 answers every source while node2 is in maintenance',
  );
  rmSync(maintenanceFile('node2'));
  await lab().lab.waitForLog(services.get('node2')!, /"event":"health".*"action":"rejoined"/, 10_000);
  t.like(events('node2', 'health').at(-1), { state: 'healthy', from: 'unhealthy', serving: 'in', action: 'rejoined' });
  await lab().waitConverged(lab().nodes, 20_000);
});

test.serial('while running, the bound device has the sysctls the cluster needs; SIGTERM drains, closes, exits 0 and leaves the host as it was', async (t) => {
  for (const node of lab().nodes) t.deepEqual(await sysctls(node), { arp_ignore: '1', arp_announce: '2' }, node);
  const before = await lab().lab.ipIn('node1', ['-o', 'link']);
  t.regex(before, /: nlb0[:@]/, 'the TAP is there while the service runs');

  for (const service of services.values()) service.kill('SIGTERM');
  for (const [node, service] of services) {
    t.true(await waitExit(service, 15_000), `${node} exited after SIGTERM`);
    t.is(service.exitCode, 0, `${node}: exit ${service.exitCode ?? service.signalCode}`);
    const drained = events(node, 'drained');
    t.is(drained.length, 1, `${node} drained: ${JSON.stringify(drained)}`);
    t.is(drained[0]?.['state'], 'stopped');
    t.is(events(node, 'closed').length, 1, `${node} closed`);
    t.notRegex(await lab().lab.ipIn(node, ['-o', 'link']), /: nlb\d+[:@]/, `${node}: the TAP is gone`);
    t.deepEqual(await sysctls(node), original.get(node), `${node}: arp_ignore and arp_announce on eth0 are back`);
  }
});

/** A process of another service holding port 80 of every address of `node`, as a web server already there would. */
async function holdPort80(node: string): Promise<LabProcess> {
  const holder = lab().lab.spawn(node, [process.execPath, '-e', "require('node:net').createServer().listen(80, '0.0.0.0', () => console.log('holding port 80'))"], { logName: 'port-80-holder' });
  await lab().lab.waitForLog(holder, /holding port 80/, 10_000);
  return holder;
}

/** What a process that exited left on `node`: no TAP, and eth0's sysctls as before the suite. */
async function hostRestored(t: ExecutionContext, node: string, who: string): Promise<void> {
  t.notRegex(await lab().lab.ipIn(node, ['-o', 'link']), /: nlb\d+[:@]/, `${who}: the TAP is gone`);
  t.deepEqual(await sysctls(node), original.get(node), `${who}: arp_ignore and arp_announce on eth0 are back`);
}

test.serial('port 80 taken: the example says so on stderr, closes its node and exits 1, the host restored', async (t) => {
  const holder = await holdPort80('node1');
  try {
    const argv = [process.execPath, EXAMPLE, '--bind', 'eth0', '--vip', VIP, '--port', '80', '--name', 'node1', '--run-dir', lab().runDir('node1'), '--key-file', lab().keyFile, ...LAB_DAEMON_TIMING];
    const service = lab().lab.spawn('node1', argv, { logName: 'http-service-port-taken', cwd: REPO_ROOT });
    services.set('node1', service); // its log is shown if this test fails
    t.true(await waitExit(service, 20_000), 'the service exits');
    t.is(service.exitCode, 1, `exit ${service.exitCode ?? service.signalCode}`);
    const log = readFileSync(service.logFile, 'utf8');
    t.regex(log, /^server: cannot listen on 10\.0\.0\.100:80: the port is in use on this host .*give this service another --port$/m, 'one clear line on stderr');
    t.like(events('node1', 'listen-failed')[0], { code: 'EADDRINUSE' });
    t.is(events('node1', 'closed').length, 1, 'the node was closed by the service');
    t.notRegex(log, /Unhandled 'error' event|restored-at-exit/, 'handled by the service: no crash, nothing left for the exit');
    await hostRestored(t, 'node1', 'node1');
  } finally {
    holder.kill('SIGTERM');
    await waitExit(holder, 5000);
  }
});

test.serial('port 80 taken in a host that handles nothing: it crashes as Node does (uncaught, exit 1), and lnlb restores its sysctls as it exits', async (t) => {
  const holder = await holdPort80('node2');
  try {
    const options = { bind: 'eth0', vip: VIP, runDir: lab().runDir('node2'), keyFile: lab().keyFile, heartbeatMs: 200, deadAfterMs: 1000, logLevel: 'info' };
    const host = lab().lab.spawn('node2', [process.execPath, CRASHING_HOST, JSON.stringify(options), 'listen:80'], { logName: 'unhandled-listen-host', cwd: REPO_ROOT });
    services.set('node2', host);
    await lab().lab.waitForLog(host, /"event":"node-created"/, 20_000);
    const created = Date.now();
    t.true(await waitExit(host, 20_000), 'the host exits');
    // Its dispatcher thread sleeps in poll() for up to 10 s, and Node waits for it at exit: lnlb wakes it.
    t.true(Date.now() - created < 5000, `the host exits at once, not after the dispatcher's 10 s poll: ${Date.now() - created} ms`);
    t.is(host.exitCode, 1, `Node's exit code for an uncaught exception: ${host.exitCode ?? host.signalCode}`);
    const log = readFileSync(host.logFile, 'utf8');
    t.regex(log, /Unhandled 'error' event/, "Node's own report of the uncaught error: lnlb did not take over the host's error handling");
    t.regex(log, /Error: listen EADDRINUSE: address already in use 10\.0\.0\.100:80/);
    t.regex(log, /"event":"restored-at-exit".*"exitCode":1/, 'the node says what it restored as the process exited');
    t.notRegex(log, /restore-at-exit-failed|sysctl-restore-failed/);
    await hostRestored(t, 'node2', 'node2');
  } finally {
    holder.kill('SIGTERM');
    await waitExit(holder, 5000);
  }
});
