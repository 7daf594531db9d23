// The data socket's kernel filter with real daemons (--election bucket): each node's dispatcher
// reads only about a third of the frames offered to the VIP, every source is still answered
// exactly once by one node, and after a death the survivors' filters pass the dead node's
// buckets and every source is answered again. (Joins, leaves and weight changes under the
// filter, with the bucket handovers: bucket-chaos.test.ts.)
import test from 'ava';
import { performance } from 'node:perf_hooks';
import type { ClusterLab } from '../../lab/cluster.js';
import { sweepStale } from '../../lab/netns.js';
import type { InterfaceCounters } from '../../src/main/admin-protocol.js';
import { interfaceCounters as counters, withLab } from './fixtures/lab-scenarios.js';
import { startUdpEcho, udpFlows } from './fixtures/udp-flows.js';

const SOURCES = 150; // the lab's client /24 holds at most 154
const COUNT = 10;
const UDP_PORT = 7007;
const BUCKETS = ['--election', 'bucket', '--weight-mode', 'fixed'];
test.before(async () => {
  await sweepStale();
});

/** Polls until every node's kernel filter passes a bucket set of the expected size (at most 10 s). */
async function filtersPass(lab: ClusterLab, nodes: readonly string[], buckets: (n: number) => boolean): Promise<InterfaceCounters[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const all = await Promise.all(nodes.map((node) => counters(lab, node)));
    if (all.every((c) => c.kernelFilter?.program === 'buckets' && buckets(c.kernelFilter.passBuckets))) return all;
    if (performance.now() > deadline) throw new Error(`kernel filters: ${JSON.stringify(all.map((c) => c.kernelFilter))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every source sends COUNT datagrams; each must get all COUNT answers, once each, from one node. Returns source → node. */
async function everySourceAnsweredOnce(t: import('ava').ExecutionContext, lab: ClusterLab, allowed: readonly string[]): Promise<Map<string, string>> {
  const replies = await udpFlows(lab, { port: UDP_PORT, count: COUNT, everyMs: 50 });
  const ownerOf = new Map<string, string>();
  const wrong: string[] = [];
  for (const source of lab.clientIps) {
    const got = replies.get(source) ?? [];
    const nodes = new Set(got.map((r) => r.node));
    const seqs = got.map((r) => r.seq).sort((a, b) => a - b);
    const once = seqs.length === COUNT && seqs.every((s, i) => s === i + 1);
    const node = [...nodes][0] ?? 'nobody';
    if (nodes.size !== 1 || !once || !allowed.includes(node)) wrong.push(`${source}: ${got.length} answers from ${[...nodes].join(', ') || 'nobody'} (seqs ${seqs.join(',')})`);
    ownerOf.set(source, node);
  }
  t.deepEqual(wrong, [], 'every source: every datagram answered exactly once, by one node');
  return ownerOf;
}

function histogram(values: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

test.serial('each dispatcher reads about a third of the frames for the VIP, every source answered once; after a death the survivors pass its buckets and every source is answered again', async (t) => {
  await withLab(3, SOURCES, async (lab) => {
    for (const node of lab.nodes) lab.startDaemon(node, BUCKETS);
    await lab.waitConverged(lab.nodes, 20_000);
    await Promise.all(lab.nodes.map((node) => startUdpEcho(lab, node, UDP_PORT)));
    // Fixed equal weights: 341 or 342 buckets each once the tables agree and the filters narrowed.
    const before = await filtersPass(lab, lab.nodes, (n) => n === 341 || n === 342);
    const owners = await everySourceAnsweredOnce(t, lab, lab.nodes);
    const after = await Promise.all(lab.nodes.map((node) => counters(lab, node)));
    const offered = SOURCES * COUNT;
    const shares = lab.nodes.map((_, i) => (after[i]!.framesSeen - before[i]!.framesSeen) / offered);
    const served = histogram(owners.values());
    t.log('sources per node:', served, '; frames each dispatcher read / frames offered:', shares.map((s) => s.toFixed(3)).join(' '));
    for (const [i, share] of shares.entries()) {
      t.true(share < 0.5, `${lab.nodes[i]}'s dispatcher read ${share.toFixed(3)} of the frames offered`);
      // What it reads is what it serves (and a few ARP frames): its sources' datagrams.
      const own = ((served[lab.nodes[i]!] ?? 0) * COUNT) / offered;
      t.true(Math.abs(share - own) < 0.02, `${lab.nodes[i]} read ${share.toFixed(3)}, serves ${own.toFixed(3)}`);
    }

    // A death: the survivors' filters take the dead node's buckets (no handover needed).
    await lab.killDaemon('node2');
    await lab.waitConverged(['node1', 'node3'], 20_000);
    const survivors = ['node1', 'node3'];
    const widened = await filtersPass(lab, survivors, (n) => n === 512);
    for (const [i, node] of survivors.entries()) {
      const was = before[lab.nodes.indexOf(node)]!.kernelFilter!;
      t.true(widened[i]!.kernelFilter!.swaps > was.swaps, `${node}'s filter was swapped (${was.swaps} → ${widened[i]!.kernelFilter!.swaps})`);
      t.is(widened[i]!.kernelFilter!.failures, 0);
    }
    const again = await everySourceAnsweredOnce(t, lab, survivors);
    const end = await Promise.all(survivors.map((node) => counters(lab, node)));
    for (const [i, node] of survivors.entries()) {
      const share = (end[i]!.framesSeen - widened[i]!.framesSeen) / offered;
      t.true(share > 0.3 && share < 0.7, `${node}'s dispatcher read ${share.toFixed(3)} of the frames offered to two nodes`);
    }
    for (const [source, owner] of owners) if (owner !== 'node2') t.is(again.get(source), owner, `${source} stays with ${owner}`);
    t.log('after the death, sources per node:', histogram(again.values()));
  });
});
