/**
 * The operator's surface against real daemons in namespaces: lnlbctl's error paths with a
 * daemon running, stop/start, suspend/resume, drainstop with a long TCP connection that
 * finishes while new clients go to the other node, status --watch / top with rates, and a
 * SIGHUP reload of the config file (applied, and a bad file refused); node names and states in
 * status and conntrack; weights as capacities (a higher fixed weight gets more new clients).
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VIP } from '../../lab/cluster.js';
import { clusterSuite } from './fixtures/cluster-suite.js';
import type { ConntrackJson, DrainResult, StatusJson } from '../../src/main/admin-protocol.js';

let configPath = '';
const lab = clusterSuite(test, {
  nodes: 2,
  clientAddresses: 120,
  beforeStart: (cluster) => {
    configPath = join(cluster.lab.dir, 'node1.conf');
    writeFileSync(configPath, '# node1, as an operator would write it\nlog-level = info\n');
  },
  // node1 is named by its flag; node2 takes the host name (the namespaces share this host's).
  daemonArgs: (node) => (node === 'node1' ? ['--config', configPath, '--node-name', 'web-1'] : []),
});
/** Sources no test before the weight test has used (up to the last NAME_SOURCES, the names test's). */
const WEIGHT_SOURCES_FROM = 40;
// 24: with weights 50 and 100 (the reload test leaves them so), all 24 going to one node is a 1 in 16,000 chance.
const NAME_SOURCES = 24;
/** Sources of the stop test; then 4 fresh ones after the start; the drain test has the rest. */
const OLD_SOURCES = 16;
const DRAIN_CANDIDATES = 10;

function nodeOf(answer: { node: string } | { error: string } | undefined): string {
  return answer === undefined ? 'none' : 'node' in answer ? answer.node : `unanswered (${answer.error})`;
}

async function servedBy(sources: readonly string[]): Promise<Map<string, string>> {
  const survey = await lab().survey(sources);
  return new Map(sources.map((s) => [s, nodeOf(survey.get(s))]));
}

async function state(node: string): Promise<string> {
  return (await lab().status(node)).interfaces[0]?.state ?? 'none';
}

/** The state on the row of the node named `of`, in `on`'s status. */
async function row(of: string, on: string): Promise<string | undefined> {
  return (await lab().status(on)).interfaces[0]?.nodes.find((n) => n.name === of)?.state;
}

async function waitState(node: string, wanted: string, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < until) {
    last = await state(node);
    if (last === wanted) return;
    await sleep(100);
  }
  throw new Error(`${node} stayed ${last}, wanted ${wanted}`);
}


test.serial('lnlbctl against a running daemon: unknown interface, set_weight when not fixed, out of range, bad IP', async (t) => {
  const unknown = await lab().ctl('node1', ['stop', 'nlb9']);
  t.is(unknown.code, 1);
  t.deepEqual(unknown.stderr.trim().split('\n'), ['lnlbctl: no cluster interface "nlb9": this daemon serves nlb0']);

  const notManual = await lab().ctl('node1', ['set_weight', 'nlb0', '50']);
  t.is(notManual.code, 1);
  t.regex(notManual.stderr, /^lnlbctl: nlb0 takes its weight from loadavg, so a fixed weight does not apply: switch first with `lnlbctl weight_mode nlb0 fixed`\n$/);

  const outOfRange = await lab().ctl('node1', ['set_weight', 'nlb0', '1001']);
  t.is(outOfRange.code, 2);
  t.regex(outOfRange.stderr, /1\.\.1000/);

  const badIp = await lab().ctl('node1', ['addif', '10.0.0.256', 'eth0']);
  t.is(badIp.code, 2);
  t.regex(badIp.stderr, /^lnlbctl: <cluster ip>: expected an IPv4 or IPv6 address/);

  const noDevice = await lab().ctl('node1', ['addif', '10.0.0.200', 'eth9']);
  t.is(noDevice.code, 1);
  t.regex(noDevice.stderr, /eth9/);

  t.is((await lab().ctl('node1', ['weight_mode', 'nlb0', 'fixed'])).code, 0);
  const set = await lab().ctl('node1', ['set_weight', 'nlb0', '50', '--json']);
  t.is(set.code, 0, set.stderr);
  t.deepEqual(JSON.parse(set.stdout), { weight: 50 });
  t.is((await lab().ctl('node1', ['weight_mode', 'nlb0', 'loadavg'])).code, 0);
});

test.serial('stop: the node leaves and the other serves every client; start: it rejoins and takes its share again', async (t) => {
  const sources = lab().clientIps.slice(0, OLD_SOURCES);
  const stop = await lab().ctl('node1', ['stop', 'nlb0']);
  t.is(stop.code, 0, stop.stderr);
  t.is(stop.stdout, 'nlb0: stopped\n');
  t.is(await state('node1'), 'stopped');
  t.is(await row('web-1', 'node1'), 'stopped', 'header and row both say stopped');
  t.regex(await lab().statusText('node1'), /^nlb0: .*, stopped, [^]*^ {2}\S+ +web-1 +10\.0\.0\.1 +stopped +- +same +\(this node\)$/m);
  await lab().waitConverged(['node2'], 10_000);
  const alone = await servedBy(sources);
  t.deepEqual([...new Set(alone.values())], ['node2'], 'every source is served by node2 while node1 is stopped');

  const start = await lab().ctl('node1', ['start', 'nlb0', '--json']);
  t.is(start.code, 0, start.stderr);
  t.deepEqual(JSON.parse(start.stdout), { interface: 'nlb0', state: 'converging' });
  await lab().waitConverged(lab().nodes, 10_000);
  // The clients node2 took while node1 was out stay with node2 (tracked): a rejoin moves
  // nobody. New clients are shared again.
  const fresh = await servedBy(lab().clientIps.slice(OLD_SOURCES, OLD_SOURCES + 4));
  t.true([...fresh.values()].every((n) => n === 'node1' || n === 'node2'), JSON.stringify([...fresh]));
  t.deepEqual(await servedBy(sources), alone, 'the clients of node2 stay with it');
});

test.serial('suspend: stopped, and start refused until resume; resume leaves it stopped until start', async (t) => {
  const suspend = await lab().ctl('node1', ['suspend', 'nlb0']);
  t.is(suspend.stdout, 'nlb0: suspended\n', suspend.stderr);
  t.is(await state('node1'), 'suspended');
  const refused = await lab().ctl('node1', ['start', 'nlb0']);
  t.is(refused.code, 1);
  t.deepEqual(refused.stderr.trim().split('\n'), ['lnlbctl: nlb0 is suspended: lnlbctl resume nlb0 first, then start']);
  t.is((await lab().ctl('node1', ['resume', 'nlb0'])).stdout, 'nlb0: stopped\n');
  t.is(await state('node1'), 'stopped');
  t.is((await lab().ctl('node1', ['start', 'nlb0'])).code, 0);
  await lab().waitConverged(lab().nodes, 10_000);
  t.is(await state('node1'), 'converged');
});

test.serial('drainstop: a long TCP connection to the draining node finishes while every new client goes to the other node; then it stops', async (t) => {
  // A client of node1 opens a connection streaming 60 lines over 3 s.
  const candidatesFrom = OLD_SOURCES + 4;
  const old = await servedBy(lab().clientIps.slice(candidatesFrom, candidatesFrom + DRAIN_CANDIDATES));
  const source = [...old].find(([, node]) => node === 'node1')?.[0];
  if (source === undefined) return t.fail(`node1 serves none of ${JSON.stringify([...old])}`);
  const stream = lab().curlFrom(source, `http://${VIP}/stream?lines=60&everyMs=50`, { maxTimeS: 20 });
  await sleep(300);

  const startedAt = performance.now();
  const drain = lab().ctl('node1', ['drainstop', 'nlb0', '--idle', '1', '--timeout', '30', '--json'], 40_000);
  await waitState('node1', 'draining', 5000);
  await sleep(1000); // the draining weight is applied by the round after the one announcing it
  t.is(await row('web-1', 'node1'), 'draining', 'its own row says what its header says');
  t.is(await row('web-1', 'node2'), 'draining', 'the other node sees it draining');
  t.regex(await lab().statusText('node2'), /^ {2}\S+ +web-1 +10\.0\.0\.1 +draining +- +same *$/m);
  const newClients = lab().clientIps.slice(candidatesFrom + DRAIN_CANDIDATES, WEIGHT_SOURCES_FROM);
  const served = await servedBy(newClients);
  t.deepEqual([...new Set(served.values())], ['node2'], `new clients while node1 drains: ${JSON.stringify([...served])}`);

  const body = await stream;
  const streamedMs = performance.now() - startedAt;
  t.true(body.ok, `the long connection finished: ${JSON.stringify(body)}`);
  const lines = body.ok ? body.body.trim().split('\n') : [];
  t.is(lines.length, 60);
  t.true(lines.every((line, i) => line === `${i + 1} node1`), 'every line from node1, in order');

  const result = await drain;
  t.is(result.code, 0, result.stderr);
  const drained = JSON.parse(result.stdout) as DrainResult;
  t.like(drained, { interface: 'nlb0', state: 'stopped', drained: true, remainingFlows: 0 } as Partial<DrainResult>);
  t.true(performance.now() - startedAt >= streamedMs, 'drainstop waited for the connection');
  t.log(`long connection ended ${streamedMs.toFixed(0)} ms into the drain; drainstop returned after ${drained.ms} ms (--idle 1)`);
  t.is(await state('node1'), 'stopped');
  t.is(await row('web-1', 'node1'), 'stopped', 'drained: header and row both say stopped');
  t.regex(await lab().statusText('node1'), /^nlb0: .*, stopped, [^]*^ {2}\S+ +web-1 +10\.0\.0\.1 +stopped +- +same +\(this node\)$/m);
  await lab().waitConverged(['node2'], 10_000);

  t.is((await lab().ctl('node1', ['start', 'nlb0'])).code, 0);
  await lab().waitConverged(lab().nodes, 10_000);
});

test.serial('top and status --watch: one sample a refresh, rates per second from the second on', async (t) => {
  const top = await lab().ctl('node1', ['top', '--count', '2', '--interval', '0.5']);
  t.is(top.code, 0, top.stderr);
  t.is(top.stdout.match(/^nlb0: vip 10\.0\.0\.100 on eth0/gm)?.length, 2, top.stdout);
  t.is(top.stdout.match(/^ {2}per second: seen \d/gm)?.length, 1, top.stdout);

  const json = await lab().ctl('node1', ['status', '--watch', '--count', '2', '--interval', '0.5', '--json']);
  t.is(json.code, 0, json.stderr);
  const samples = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as StatusJson & { interfaces: { perSecond?: Record<string, number> }[] });
  t.is(samples.length, 2);
  t.is(samples[0]!.interfaces[0]!.perSecond, undefined);
  t.true((samples[1]!.interfaces[0]!.perSecond?.['controlIn'] ?? 0) > 0, 'heartbeats arrive every 200 ms');
});

test.serial('SIGHUP reloads the config file: log level and weight mode applied live; a bad file is refused and the daemon keeps serving', async (t) => {
  const daemon = lab().daemon('node1')!;
  writeFileSync(configPath, 'log-level = debug\nweight-mode = fixed\nworkers = 3\n');
  daemon.kill('SIGHUP');
  const line = await lab().lab.waitForLog(daemon, /"event":"reloaded"/, 5000);
  t.regex(line, /applied logLevel=debug, weightMode=fixed; workers changed and take effect on restart/);
  t.is((await lab().status('node1')).interfaces[0]?.weightMode, 'fixed');

  writeFileSync(configPath, 'log-level = debug\nweight-mode = freemem\nworkers = many\n');
  daemon.kill('SIGHUP');
  const refused = await lab().lab.waitForLog(daemon, /"event":"reload-failed"/, 5000);
  t.regex(refused, /node1\.conf:3.*--workers/);
  t.is((await lab().status('node1')).interfaces[0]?.weightMode, 'fixed', 'nothing of the bad file applied');
  t.is(nodeOf((await lab().survey([lab().clientIps[0]!])).get(lab().clientIps[0]!)).startsWith('node'), true, 'still serving');
});

test.serial('status and conntrack name each node beside its MAC (--node-name; the lab names its nodes) with its address; conntrack marks this node', async (t) => {
  // Fixed weights: a load average moving on this busy machine would make the view change (converging) now and then.
  for (const node of lab().nodes) t.is((await lab().ctl(node, ['weight_mode', 'nlb0', 'fixed'])).code, 0);
  await sleep(1000);
  await lab().waitConverged(lab().nodes, 10_000);
  const status = (await lab().status('node1')).interfaces[0]!;
  const nodes = status.nodes.map((n) => ({ name: n.name, address: n.address, state: n.state, self: n.self }));
  t.deepEqual(nodes.sort((a, b) => (a.address ?? '').localeCompare(b.address ?? '')), [
    { name: 'web-1', address: '10.0.0.1', state: 'converged', self: true },
    { name: 'node2', address: '10.0.0.2', state: 'serving', self: false },
  ]);
  const text = await lab().statusText('node2');
  t.regex(text, /^ {2}NODE +NAME +ADDRESS +STATE +WEIGHT +RULES$/m);
  t.regex(text, /^ {2}\S+ +web-1 +10\.0\.0\.1 +serving +\d+ +same *$/m);
  t.regex(text, /^ {2}\S+ +\S+ +10\.0\.0\.2 +converged +\d+ +same +\(this node\)$/m);

  await lab().survey(lab().clientIps.slice(-NAME_SOURCES)); // fresh sources: some tracked by each node
  const conntrack = await lab().ctl('node1', ['conntrack', 'nlb0', '--json']);
  t.is(conntrack.code, 0, conntrack.stderr);
  const entries = (JSON.parse(conntrack.stdout) as ConntrackJson).entries;
  t.true(entries.length > 0);
  for (const e of entries) {
    t.is(e.self, e.nodeName === 'web-1', JSON.stringify(e));
    t.is(e.nodeAddress, e.self ? '10.0.0.1' : '10.0.0.2');
  }
  const human = await lab().ctl('node1', ['conntrack', 'nlb0']);
  t.regex(human.stdout, /^HANDLER +FLOW +NODE +NAME +ADDRESS +EXPIRES IN$/m);
  t.regex(human.stdout, /^\S+ +10\.0\.0\.\d+ +\S+ +web-1 +10\.0\.0\.1 +\d+s +\(this node\)$/m);
});

test.serial('a weight is a capacity: with fixed weights 300 and 100, the node of weight 300 gets about three times the new clients', async (t) => {
  for (const [node, weight] of [['node1', '300'], ['node2', '100']] as const) {
    t.is((await lab().ctl(node, ['weight_mode', 'nlb0', 'fixed'])).code, 0);
    const set = await lab().ctl(node, ['set_weight', 'nlb0', weight]);
    t.is(set.code, 0, set.stderr);
  }
  await sleep(1500); // a weight is applied by the round after the one announcing it
  await lab().waitConverged(lab().nodes, 10_000);
  const weights = (await lab().status('node2')).interfaces[0]!.nodes.map((n) => [n.name, n.weight]);
  t.deepEqual(weights.sort(), [['node2', 100], ['web-1', 300]].sort());
  const served = [...(await servedBy(lab().clientIps.slice(WEIGHT_SOURCES_FROM, -NAME_SOURCES))).values()];
  const one = served.filter((n) => n === 'node1').length;
  const two = served.filter((n) => n === 'node2').length;
  t.log(`${served.length} new clients: node1 (weight 300) ${one}, node2 (weight 100) ${two}`);
  t.is(one + two, served.length, 'every client answered');
  t.true(one >= 1.5 * two, `weight 300 got ${one}, weight 100 got ${two}`);
  const refused = await lab().ctl('node1', ['weight_mode', 'nlb0', 'manual']);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /weight mode "manual" was retired when weights became capacities/);
  for (const node of lab().nodes) t.is((await lab().ctl(node, ['weight_mode', 'nlb0', 'loadavg'])).code, 0);
});
