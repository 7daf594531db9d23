/**
 * Two clusters on one trunk: Open vSwitch (userspace datapath) as the switch, every node's port
 * a trunk of VLANs 100 and 200, a client on an access port of each. Each node runs one lnlbd
 * with nlb0 on VLAN 100 (10.0.0.100) and, by `lnlbctl addif --vlan 200`, nlb1 on VLAN 200
 * (10.0.2.100), both bound to the same eth0. What a user checks: each VLAN's clients are served,
 * spread over the nodes and kept by their node (so the replies left tagged with their VLAN:
 * the switch delivers nothing else to an access port); each cluster reads only its own VLAN;
 * a killed node's clients are answered again on both VLANs.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { CLIENT2_PREFIX, type ClusterLab } from '../../lab/cluster.js';
import { clusterSuite } from './fixtures/cluster-suite.js';

const VIP2 = `${CLIENT2_PREFIX}100`;
const CLIENT2_SOURCES = Array.from({ length: 10 }, (_, i) => `${CLIENT2_PREFIX}${101 + i}`);

const lab = clusterSuite(test, {
  nodes: 3,
  clientAddresses: 20,
  switch: 'ovs-trunk',
  daemonArgs: () => ['--vlan', '100'],
  httpServers: false,
});

async function curl2(cluster: ClusterLab, source: string): Promise<string> {
  const result = await cluster.lab.exec('client2', ['curl', '--silent', '--show-error', '--interface', source, '--max-time', '4', `http://${VIP2}/`], { timeoutMs: 10_000 });
  if (result.code !== 0) return `error: ${result.stderr.trim()}`;
  return (JSON.parse(result.stdout) as { node: string }).node;
}

test.before(async () => {
  const cluster = lab();
  for (const node of cluster.nodes) {
    const added = await cluster.ctl(node, ['addif', VIP2, 'eth0', '--vlan', '200']);
    if (added.code !== 0 || added.stdout.trim() !== 'nlb1') throw new Error(`addif on ${node}: ${added.stdout}${added.stderr}`);
    await cluster.routeVia(node, '10.0.0.0/24', 'nlb0');
    await cluster.routeVia(node, `${CLIENT2_PREFIX}0/24`, 'nlb1');
    await cluster.startHttpServer(node, 80, '0.0.0.0');
  }
  await cluster.waitConverged(cluster.nodes, 20_000);
});

test.serial('VLAN 100: every client is answered, spread over the nodes and kept by its node', async (t) => {
  const cluster = lab();
  const first = await cluster.survey(cluster.clientIps);
  t.deepEqual([...first].filter(([, s]) => !('node' in s)), [], 'every VLAN 100 client answered');
  const nodes = new Set([...first.values()].map((s) => ('node' in s ? s.node : '')));
  t.true(nodes.size >= 2, `spread: ${[...nodes].join(', ')}`);
  const again = await cluster.survey(cluster.clientIps);
  for (const source of cluster.clientIps) t.deepEqual(again.get(source), first.get(source), `${source} kept`);
  const neighbours = await cluster.lab.exec('client', ['ip', 'neigh', 'show', '10.0.0.100']);
  t.regex(neighbours.stdout, /lladdr 02:00:0a:00:00:64/, 'the VIP at the cluster MAC');
});

test.serial('VLAN 200, the second cluster on the same trunk: its clients are answered by it, spread', async (t) => {
  const cluster = lab();
  const served = await Promise.all(CLIENT2_SOURCES.map((source) => curl2(cluster, source)));
  t.deepEqual(served.filter((s) => s.startsWith('error')), [], 'every VLAN 200 client answered');
  t.true(new Set(served).size >= 2, `spread: ${served.join(', ')}`);
  const status = await cluster.status('node1');
  const byName = new Map(status.interfaces.map((i) => [i.name, i]));
  t.is(byName.get('nlb0')?.counters.vlan?.id, 100);
  t.is(byName.get('nlb1')?.counters.vlan?.id, 200);
  t.true((byName.get('nlb0')?.counters.vlan?.egressFrames ?? 0) > 0, 'the host sent through nlb0, tagged');
  t.true((byName.get('nlb1')?.counters.vlan?.egressFrames ?? 0) > 0, 'and through nlb1');
});

test.serial('each cluster reads only its own VLAN: traffic on VLAN 200 adds nothing to what nlb0 sees', async (t) => {
  const cluster = lab();
  const seen = async (): Promise<number> => (await cluster.status('node2')).interfaces.find((i) => i.name === 'nlb0')!.counters.framesSeen;
  const before = await seen();
  await Promise.all(CLIENT2_SOURCES.map((source) => curl2(cluster, source)));
  const after = await seen();
  // nlb0 reads its own VLAN's frames (a heartbeat-free datapath: none came on VLAN 100 meanwhile).
  t.true(after - before <= 2, `nlb0 read ${after - before} frames while VLAN 200 carried ${CLIENT2_SOURCES.length} HTTP exchanges`);
});

test.serial("a killed node's clients on both VLANs are answered by the others", async (t) => {
  const cluster = lab();
  const survey = await cluster.survey(cluster.clientIps);
  const victim = 'node2';
  const orphans = [...survey].filter(([, s]) => 'node' in s && s.node === victim).map(([source]) => source);
  t.true(orphans.length > 0);
  const since = performance.now();
  await cluster.killDaemon(victim);
  const takeover = await cluster.waitServedBy(orphans, ['node1', 'node3'], since, 10_000);
  t.deepEqual(takeover.unanswered, []);
  t.log(`VLAN 100 failover on the trunk: ${orphans.length} clients answered again ${takeover.worstMs.toFixed(0)} ms after the kill`);
  const served2 = await Promise.all(CLIENT2_SOURCES.map((source) => curl2(cluster, source)));
  t.true(served2.every((s) => s === 'node1' || s === 'node3'), `VLAN 200 after the kill: ${served2.join(', ')}`);
});
