/**
 * IPv6 end to end: a dual-stack cluster of three (10.0.0.100,fd00:10::100 on one interface,
 * one membership) on a bridge, real IPv6 clients (curl -6, ping -6, nc -6) from many sources.
 * What a user checks: every source answered, spread over the nodes, each source kept by its
 * node; the client's neighbour table holds the VIP at the cluster MAC and never at a node's
 * own MAC; one echo reply per echo request; a killed node's sources answered by the others
 * and a restarted node taking its share again; IPv4 working beside it on the same interface.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { VIP, VIP6 } from '../../lab/cluster.js';
import { clusterSuite } from './fixtures/cluster-suite.js';

const CLUSTER_MAC = '02:00:0a:00:00:64';
const UDP_ECHO = fileURLToPath(new URL('../../lab/udp-echo-server.js', import.meta.url));
/** Sources the tests survey before the kill; the rest are new clients after the join (tracked sources stay where they are). */
const SURVEYED = 24;

const lab = clusterSuite(test, { nodes: 3, clientAddresses: 40, ipv6: true });

/** Every node's eth0 MAC, lower-case. */
function nodeMacs(): string[] {
  const cluster = lab();
  return cluster.nodes.map((node) => cluster.lab.host(node).mac.toLowerCase());
}

test.serial('every IPv6 source is answered over curl -6, spread over the nodes, and stays with its node', async (t) => {
  const cluster = lab();
  const sources = cluster.clientIps6.slice(0, SURVEYED);
  const first = await cluster.survey(sources);
  const unanswered = [...first].filter(([, served]) => !('node' in served));
  t.deepEqual(unanswered, [], 'every IPv6 source answered');
  const counts = new Map<string, number>();
  for (const served of first.values()) if ('node' in served) counts.set(served.node, (counts.get(served.node) ?? 0) + 1);
  t.log(`spread over ${counts.size} nodes: ${[...counts].map(([node, n]) => `${node} ${n}`).join(', ')}`);
  t.true(counts.size >= 2, 'more than one node serves IPv6 sources');
  const again = await cluster.survey(sources);
  for (const source of sources) t.deepEqual(again.get(source), first.get(source), `${source} kept by its node`);
});

test.serial("the client's neighbour table has the VIP at the cluster MAC, never at a node's own MAC", async (t) => {
  const cluster = lab();
  const neighbours = await cluster.lab.exec('client', ['ip', '-6', 'neigh', 'show', 'dev', 'eth0']);
  t.is(neighbours.code, 0, neighbours.stderr);
  const vipLine = neighbours.stdout.split('\n').find((line) => line.startsWith(`${VIP6} `));
  t.truthy(vipLine, `the client resolved ${VIP6}:\n${neighbours.stdout}`);
  t.regex(vipLine ?? '', new RegExp(`lladdr ${CLUSTER_MAC}`), vipLine);
  for (const mac of nodeMacs()) t.false((vipLine ?? '').includes(mac), `the VIP is never at ${mac}`);
  // The nodes answered their clients from the VIP through their own stacks: their solicitations
  // came from their own addresses, so no neighbour entry of the client names a node's MAC for the VIP.
  const dump = await cluster.status('node1');
  const iface = dump.interfaces[0]!;
  t.is(iface.vip, `${VIP},${VIP6}`);
  t.true(iface.counters.ndpAdvertisements >= 1, 'node1 answered a solicitation for the VIP');
});

test.serial('ping -6: every echo request has one reply, none duplicated', async (t) => {
  const cluster = lab();
  const results = await Promise.all(cluster.clientIps6.slice(0, 6).map((source) => cluster.pingFrom(source, VIP6, 5)));
  for (const [i, r] of results.entries()) {
    t.is(r.received, 5, `${cluster.clientIps6[i]}: ${r.output}`);
    t.is(r.duplicates, 0, `${cluster.clientIps6[i]}: no duplicate replies`);
  }
});

test.serial('nc -6: a TCP byte stream reaches one node, and UDP datagrams are answered by one node, from IPv6 sources', async (t) => {
  const cluster = lab();
  const udp = cluster.nodes.map((n) => cluster.lab.spawn(n, [process.execPath, UDP_ECHO, '--name', n, '--host', VIP6, '--port', '7007'], { logName: 'udp' }));
  const tcp = cluster.nodes.map((n) => cluster.lab.spawn(n, ['nc', '-6', '-l', '-k', VIP6, '7070'], { logName: 'nc' }));
  try {
    for (const server of udp) await cluster.lab.waitForLog(server, /^listening on /, 10_000);
    await sleep(200); // nc prints nothing when it listens
    const source = cluster.clientIps6[3]!;
    const sent = await cluster.lab.exec('client', ['sh', '-c', `printf 'hello over IPv6\\n' | nc -6 -N -w 3 -s ${source} ${VIP6} 7070`], { timeoutMs: 10_000 });
    t.is(sent.code, 0, sent.stderr);
    await sleep(200);
    const received = tcp.filter((server) => readFileSync(server.logFile, 'utf8').includes('hello over IPv6'));
    t.is(received.length, 1, 'exactly one node received the stream');
    const replies = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const echoed = await cluster.lab.exec('client', ['sh', '-c', `printf 'datagram ${i}' | nc -6 -u -w 1 -s ${source} ${VIP6} 7007`], { timeoutMs: 10_000 });
      t.regex(echoed.stdout, new RegExp(`^node\\d datagram ${i}$`), echoed.stderr);
      replies.add(echoed.stdout.split(' ')[0]!);
    }
    t.is(replies.size, 1, 'one node answers every datagram of the source');
  } finally {
    for (const server of [...udp, ...tcp]) server.kill('SIGKILL');
  }
});

test.serial('IPv4 on the same interface answers as before (dual stack, one membership)', async (t) => {
  const cluster = lab();
  const served = await cluster.survey(cluster.clientIps.slice(0, 12));
  t.true([...served.values()].every((s) => 'node' in s), JSON.stringify([...served]));
  const dump = await cluster.status('node2');
  t.is(dump.interfaces.length, 1, 'one interface carries both VIPs');
  t.is(dump.interfaces[0]!.vip, `${VIP},${VIP6}`);
});

test.serial("a killed node's IPv6 sources are answered by the others; restarted, it takes its share again", async (t) => {
  const cluster = lab();
  const surveyed = cluster.clientIps6.slice(0, SURVEYED);
  const before = await cluster.survey(surveyed);
  const victim = 'node3';
  const orphans = surveyed.filter((s) => {
    const served = before.get(s);
    return served !== undefined && 'node' in served && served.node === victim;
  });
  t.true(orphans.length > 0, `${victim} served some IPv6 sources`);
  const since = performance.now();
  await cluster.killDaemon(victim);
  const takeover = await cluster.waitServedBy(orphans, ['node1', 'node2'], since, 10_000);
  t.deepEqual(takeover.unanswered, [], 'every orphaned IPv6 source answered by a survivor');
  t.log(`IPv6 failover: ${orphans.length} sources answered by the survivors ${takeover.worstMs.toFixed(0)} ms after the kill`);
  const kept = surveyed.filter((s) => !orphans.includes(s));
  const after = await cluster.survey(kept);
  for (const s of kept) t.deepEqual(after.get(s), before.get(s), `${s} stays with its node`);

  cluster.startDaemon(victim);
  await cluster.waitConverged(cluster.nodes, 20_000);
  // The joiner was sent the tracking state of one survivor (the first member): it holds that
  // survivor's IPv6 flows, for the same owners (it names them by identity, `ipv6#…`, until it
  // sees a frame of theirs: a state carries a source's 4-byte identity, not its 16 bytes). The
  // two survivors' tables may differ by a few orphans: while one had declared the death and the
  // other not yet, only the first recorded the orphans' frames (the second elects them alike on
  // their next frame).
  const ipv6Owners = async (node: string): Promise<Record<string, number>> => {
    const listing = await cluster.ctl(node, ['conntrack', 'nlb0', '--json']);
    t.is(listing.code, 0, listing.stderr);
    const counts: Record<string, number> = {};
    for (const e of (JSON.parse(listing.stdout) as { entries: { source: string; node: string }[] }).entries) {
      if (e.source.startsWith('fd00:10::') || e.source.startsWith('ipv6#')) counts[e.node] = (counts[e.node] ?? 0) + 1;
    }
    return counts;
  };
  const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, n) => a + n, 0);
  const joiner = await ipv6Owners(victim);
  const survivors = [await ipv6Owners('node1'), await ipv6Owners('node2')];
  t.true(survivors.every((counts) => total(counts) >= kept.length), `each survivor tracks the IPv6 sources that never moved (${kept.length}): ${JSON.stringify(survivors)}`);
  t.true(
    survivors.some((counts) => JSON.stringify(Object.entries(counts).sort()) === JSON.stringify(Object.entries(joiner).sort())),
    `the joiner tracks the IPv6 flows its sender sent, with their owners (flows per owner MAC): joiner ${JSON.stringify(joiner)}, survivors ${JSON.stringify(survivors)}`,
  );
  // New clients: the sources seen before are tracked by their node (LNLB's stickiness).
  const rejoined = await cluster.survey(cluster.clientIps6.slice(SURVEYED));
  t.true([...rejoined.values()].every((s) => 'node' in s), 'every new source answered after the join');
  t.true([...rejoined.values()].some((s) => 'node' in s && s.node === victim), `${victim} serves new IPv6 sources again`);
});

test.serial('conntrack lists IPv6 flows by their address', async (t) => {
  const cluster = lab();
  await cluster.survey(cluster.clientIps6.slice(0, 4));
  const listing = await cluster.ctl('node1', ['conntrack', 'nlb0']);
  t.is(listing.code, 0, listing.stderr);
  t.regex(listing.stdout, /fd00:10::1\d\d/, listing.stdout);
  t.notRegex(listing.stdout, /\b2[23]\d\.\d+\.\d+\.\d+/, 'no IPv6 identity shown as a dotted quad');
});
