/**
 * An interface with an IPv6 VIP alone, in the modes a user turns on beside it: --election
 * bucket, whose kernel filter computes each IPv6 source's identity in the real kernel (each
 * dispatcher reads about a third of the frames, every source answered once), and multicast MAC
 * mode, where the cluster MAC is 33:33:7f:fe:c:d and each node joins its group by MLD.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { VIP6 } from '../../lab/cluster.js';
import { sweepStale } from '../../lab/netns.js';
import type { InterfaceCounters } from '../../src/main/admin-protocol.js';
import { interfaceCounters as counters, withLab } from './fixtures/lab-scenarios.js';
import { startUdpEcho, udpFlows } from './fixtures/udp-flows.js';

const SOURCES = 90;
const COUNT = 10;
const UDP_PORT = 7007;

test.before(async () => {
  await sweepStale();
});

test.serial('IPv6 alone under --election bucket: the kernel filter keys IPv6 sources, each dispatcher reads about a third, every source answered once by one node', async (t) => {
  await withLab(
    3,
    SOURCES,
    async (lab) => {
      for (const node of lab.nodes) lab.startDaemon(node, ['--vip', VIP6, '--election', 'bucket', '--weight-mode', 'fixed']);
      await lab.waitConverged(lab.nodes, 20_000);
      await Promise.all(lab.nodes.map((node) => startUdpEcho(lab, node, UDP_PORT, VIP6)));
      const deadline = performance.now() + 10_000;
      let before: InterfaceCounters[];
      for (;;) {
        before = await Promise.all(lab.nodes.map((node) => counters(lab, node)));
        if (before.every((c) => c.kernelFilter?.program === 'buckets' && (c.kernelFilter.passBuckets === 341 || c.kernelFilter.passBuckets === 342))) break;
        if (performance.now() > deadline) throw new Error(`kernel filters: ${JSON.stringify(before.map((c) => c.kernelFilter))}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (const c of before) t.is(c.kernelFilter?.failures, 0, 'the kernel took the IPv6 bucket program');
      const replies = await udpFlows(lab, { port: UDP_PORT, count: COUNT, everyMs: 50, ipv6: true });
      const wrong: string[] = [];
      const served = new Map<string, number>();
      for (const source of lab.clientIps6) {
        const got = replies.get(source) ?? [];
        const nodes = new Set(got.map((r) => r.node));
        const seqs = got.map((r) => r.seq).sort((a, b) => a - b);
        if (nodes.size !== 1 || seqs.length !== COUNT || !seqs.every((s, i) => s === i + 1)) wrong.push(`${source}: ${got.length} answers from ${[...nodes].join(', ') || 'nobody'}`);
        for (const node of nodes) served.set(node, (served.get(node) ?? 0) + 1);
      }
      t.deepEqual(wrong, [], 'every IPv6 source: every datagram answered exactly once, by one node');
      const after = await Promise.all(lab.nodes.map((node) => counters(lab, node)));
      const offered = SOURCES * COUNT;
      const shares = lab.nodes.map((_, i) => (after[i]!.framesIPv6 - before[i]!.framesIPv6) / offered);
      t.log('sources per node:', Object.fromEntries(served), '; IPv6 frames each dispatcher read / offered:', shares.map((s) => s.toFixed(3)).join(' '));
      for (const [i, share] of shares.entries()) {
        const own = ((served.get(lab.nodes[i]!) ?? 0) * COUNT) / offered;
        t.true(share < 0.6, `${lab.nodes[i]} read ${share.toFixed(3)} of the IPv6 frames offered`);
        t.true(Math.abs(share - own) < 0.02, `${lab.nodes[i]} read ${share.toFixed(3)}, serves ${own.toFixed(3)}`);
      }
    },
    { ipv6: true },
  );
});

test.serial('IPv6 alone in multicast MAC mode: each node joins ff15::7ffe:100 by MLD, clients reach the VIP at 33:33:7f:fe:01:00, one reply per echo request', async (t) => {
  await withLab(
    3,
    12,
    async (lab) => {
      for (const node of lab.nodes) lab.startDaemon(node, ['--vip', VIP6, '--mac-mode', 'multicast']);
      await lab.waitConverged(lab.nodes, 20_000);
      for (const node of lab.nodes) await lab.startHttpServer(node, 80, VIP6);
      for (const node of lab.nodes) {
        const groups = await lab.lab.exec(node, ['ip', '-6', 'maddr', 'show', 'dev', 'eth0']);
        t.regex(groups.stdout, /ff15::7ffe:100/, `${node} joined the cluster's group:\n${groups.stdout}`);
      }
      const iface = (await lab.status('node1')).interfaces[0]!;
      t.is(iface.clusterMac, '33:33:7f:fe:01:00');
      const survey = await lab.survey(lab.clientIps6);
      t.true([...survey.values()].every((s) => 'node' in s), JSON.stringify([...survey]));
      t.true(new Set([...survey.values()].map((s) => ('node' in s ? s.node : ''))).size >= 2, 'spread over the nodes');
      const neighbours = await lab.lab.exec('client', ['ip', '-6', 'neigh', 'show', VIP6, 'dev', 'eth0']);
      t.regex(neighbours.stdout, /lladdr 33:33:7f:fe:01:00/, neighbours.stdout);
      const ping = await lab.pingFrom(lab.clientIps6[0]!, VIP6, 5);
      t.is(ping.received, 5, ping.output);
      t.is(ping.duplicates, 0, ping.output);
    },
    { ipv6: true },
  );
});
