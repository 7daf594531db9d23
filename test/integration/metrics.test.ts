// Two real lnlbd daemons with `--metrics <node ip>:9750`, real HTTP traffic to the VIP, and a real
// curl from the client namespace scraping each node: the figures Prometheus would see.
import test from 'ava';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { VIP } from '../../lab/cluster.js';
import { clusterSuite } from './fixtures/cluster-suite.js';

const METRICS_PORT = 9750;
// This file runs as dist/test/integration/metrics.test.js; the repository root is three levels up.
const LNLBD = fileURLToPath(new URL('../../../bin/lnlbd', import.meta.url));

const lab = clusterSuite(test, { nodes: 2, clientAddresses: 4, daemonArgs: (node, cluster) => ['--metrics', `${cluster.nodeIp(node)}:${METRICS_PORT}`] });

const metricsUrl = (node: string, path = '/metrics'): string => `http://${lab().nodeIp(node)}:${METRICS_PORT}${path}`;

/** curl from the client namespace: the status code and the body. */
async function curl(url: string): Promise<{ code: string; body: string }> {
  const result = await lab().lab.exec('client', ['curl', '--silent', '--show-error', '--max-time', '5', '--write-out', '\n%{http_code}', url], { timeoutMs: 10_000 });
  if (result.code !== 0) throw new Error(`curl ${url}: exit ${result.code}: ${result.stderr.trim()}`);
  const cut = result.stdout.lastIndexOf('\n');
  return { body: result.stdout.slice(0, cut), code: result.stdout.slice(cut + 1) };
}

/** One scrape: `name{labels as exported}` → value. */
async function scrape(node: string): Promise<Map<string, number>> {
  const { code, body } = await curl(metricsUrl(node));
  if (code !== '200') throw new Error(`GET ${metricsUrl(node)}: HTTP ${code}: ${body}`);
  const samples = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const value = (samples: Map<string, number>, key: string): number => samples.get(key) ?? Number.NaN;


test.serial('after real traffic, each node serves its figures: frames, accepts, otherNode drops, members, rounds, heartbeats', async (t) => {
  for (let round = 0; round < 2; round++) {
    for (const source of lab().clientIps) {
      const result = await lab().curlFrom(source, `http://${VIP}/`);
      t.true(result.ok, `${source}: ${result.ok ? '' : result.error}`);
    }
  }
  const scrapes = new Map<string, Map<string, number>>();
  for (const node of lab().nodes) scrapes.set(node, await scrape(node));
  const name = (await lab().status(lab().nodes[0]!)).interfaces[0]?.name ?? 'nlb0';
  const l = `interface="${name}"`;
  for (const [node, samples] of scrapes) {
    t.true(value(samples, `lnlb_frames_seen_total{${l}}`) > 0, `${node}: frames seen`);
    t.is(value(samples, `lnlb_cluster_members{${l}}`), 2, `${node}: members`);
    t.is(value(samples, `lnlb_converged{${l}}`), 1, `${node}: converged`);
    t.is(value(samples, `lnlb_control_insecure{${l}}`), 0, `${node}: keyed (the lab's key), not --insecure-no-auth`);
    t.true(value(samples, `lnlb_convergence_rounds_total{${l}}`) > 0, `${node}: rounds`);
    t.true(value(samples, `lnlb_control_messages_received_total{${l},type="HEARTBEAT"}`) > 0, `${node}: HEARTBEATs received`);
    t.true(value(samples, `lnlb_control_messages_sent_total{${l},type="HEARTBEAT"}`) > 0, `${node}: HEARTBEATs sent`);
    t.true(value(samples, `lnlb_actor_frames_total{${l},actor="0"}`) >= 0, `${node}: per-actor load`);
    t.is(value(samples, `lnlb_queue_capacity_bytes{${l},actor="0"}`), 0, `${node}: no dispatcher → actor ring (--workers 1: the dispatcher is the actor)`);
    t.false(samples.has(`lnlb_actor_frames_total{${l},actor="1"}`), `${node}: one actor by default`);
    t.true(value(samples, 'lnlb_process_resident_memory_bytes') > 0, `${node}: process metrics`);
    t.log(
      `${node}: seen ${value(samples, `lnlb_frames_seen_total{${l}}`)}, accepted ${value(samples, `lnlb_frames_accepted_total{${l}}`)}, ` +
        `otherNode ${value(samples, `lnlb_frames_dropped_total{${l},reason="otherNode"}`)}, rounds ${value(samples, `lnlb_convergence_rounds_total{${l}}`)}`,
    );
  }
  const all = [...scrapes.values()];
  t.true(all.some((s) => value(s, `lnlb_frames_accepted_total{${l}}`) > 0), 'some node accepted frames');
  t.true(all.some((s) => value(s, `lnlb_frames_dropped_total{${l},reason="otherNode"}`) > 0), 'some node dropped frames of the other node');
});

test.serial('another path is 404', async (t) => {
  const { code } = await curl(metricsUrl(lab().nodes[0]!, '/'));
  t.is(code, '404');
  t.is((await curl(metricsUrl(lab().nodes[0]!, '/status'))).code, '404');
});

test.serial('a second lnlbd asking for the same --metrics address fails at once, naming --metrics', async (t) => {
  const node = lab().nodes[0]!;
  const runDir = join(lab().lab.dir, `${node}-second`);
  const result = await lab().lab.exec(node, [process.execPath, LNLBD, '--run-dir', runDir, '--metrics', `${lab().nodeIp(node)}:${METRICS_PORT}`], { timeoutMs: 15_000 });
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`^lnlbd: --metrics ${lab().nodeIp(node).replace(/\./g, '\\.')}:${METRICS_PORT}: cannot listen: the port is in use`));
});

test.serial('a killed node is counted as a death (missed-heartbeats) and leaves the members gauge', async (t) => {
  const [survivor, victim] = lab().nodes as [string, string];
  const name = (await lab().status(survivor)).interfaces[0]?.name ?? 'nlb0';
  const l = `interface="${name}"`;
  await lab().killDaemon(victim, 'SIGKILL');
  let samples = await scrape(survivor);
  for (let i = 0; i < 50 && value(samples, `lnlb_cluster_members{${l}}`) !== 1; i++) {
    await sleep(100);
    samples = await scrape(survivor);
  }
  t.is(value(samples, `lnlb_cluster_members{${l}}`), 1);
  t.is(value(samples, `lnlb_node_deaths_total{${l},reason="missed-heartbeats"}`), 1);
  t.is(value(samples, `lnlb_node_deaths_total{${l},reason="left"}`), 0);
});
