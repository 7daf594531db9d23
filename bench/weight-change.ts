/**
 * What a weight change costs new clients. Every node holds the first frames of new flows from
 * the round that announces a weight until it has applied it (Membership's weightsInFlight):
 * nodes that applied it at different moments would otherwise take a SYN twice or not at all.
 * Measured: the connect time (curl's time_connect) of new TCP connections made back to back
 * to the VIP of a 2-node cluster (--handler tcp=tcp, so each connection is a new flow), for
 * `seconds` with node1's fixed weight changed every second, and for as long with no change:
 * the reference, same run, same cluster.
 *
 * And whether every new client is taken by exactly one node: 10,000 new sources, one frame
 * each, 2,000 a second, into 4 nodes at the default heartbeat while a weight changes every
 * 400 ms (a node after another, 100 ↔ 300), then the same into the same cluster with no change
 * (the reference). And the same while every node's weight changes at once every 400 ms (as the
 * load average of one host changes every node's: announcements overlap, and a new source held
 * across two of them must be decided under the weights of its time). Every node records the
 * owner it elected for each source (the default handler tracks every source): from each node's
 * `lnlbctl conntrack --json`, a source no node holds as its own was taken by none, one two hold
 * by two.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ClusterLab, VIP } from '../lab/cluster.js';
import { fmt, ratio, type BenchOptions, type BenchResult, type BenchRow } from './report.js';
import { sourceOwners, viaLnlbctl, type SourceOwners } from './source-owners.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
const RACE_SOURCES = 10_000;
const RACE_RATE = 2000;
const RACE_NODES = 4;
const RACE_FLIP_MS = 400;

interface Race extends SourceOwners {
  flips: number;
}

interface Phase {
  connectsMs: number[];
  failed: number;
  changes: number;
}

const HEARTBEAT_MS = 200;
const SLOW_MS = 50;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Back-to-back connections from `lanes` sources at a time for `ms`, changing the weight every second if asked. */
async function phase(lab: ClusterLab, ms: number, changeWeights: boolean, lanes = 2): Promise<Phase> {
  const result: Phase = { connectsMs: [], failed: 0, changes: 0 };
  const until = performance.now() + ms;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < until) {
      const source = lab.clientIps[next++ % lab.clientIps.length]!;
      const r = await lab.lab.exec('client', ['curl', '--silent', '--output', '/dev/null', '--max-time', '5', '--interface', source, '--write-out', '%{time_connect}', `http://${VIP}/`], { timeoutMs: 10_000 });
      if (r.code === 0) result.connectsMs.push(Number(r.stdout) * 1000);
      else result.failed++;
    }
  };
  const changer = async (): Promise<void> => {
    if (!changeWeights) return;
    let weight = 100;
    while (performance.now() + 1000 < until) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      weight = weight === 100 ? 150 : 100;
      const r = await lab.ctl('node1', ['set_weight', 'nlb0', String(weight)]);
      if (r.code !== 0) throw new Error(`set_weight: ${r.stderr}`);
      result.changes++;
    }
  };
  await Promise.all([...Array.from({ length: lanes }, lane), changer()]);
  result.connectsMs.sort((a, b) => a - b);
  return result;
}

/**
 * One frame from each of RACE_SOURCES new sources from `base` up while weights flip every
 * RACE_FLIP_MS (`one`: a node after another; `all`: every node at once; `none`); then who
 * holds each source.
 */
async function race(lab: ClusterLab, base: number, flip: 'none' | 'one' | 'all'): Promise<Race> {
  let flips = 0;
  let sending = true;
  const setWeight = async (node: string, weight: number): Promise<void> => {
    const r = await lab.ctl(node, ['set_weight', 'nlb0', String(weight)]);
    if (r.code !== 0) throw new Error(`set_weight: ${r.stderr}`);
  };
  const flipper = async (): Promise<void> => {
    while (flip !== 'none') {
      await sleep(RACE_FLIP_MS);
      if (!sending) return;
      const weight = flips % 2 === 0 ? 300 : 100;
      // Every node at once: node i to a weight of its own, so that every announcement moves sources.
      if (flip === 'all') await Promise.all(lab.nodes.map((node, i) => setWeight(node, weight + 10 * i)));
      else await setWeight(lab.nodes[flips % lab.nodes.length]!, weight);
      flips++;
    }
  };
  const flipping = flipper();
  const baseText = `${base >>> 24}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.${base & 255}`;
  const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(RACE_SOURCES), '--rate', String(RACE_RATE), '--base', baseText], { timeoutMs: 60_000 });
  sending = false;
  await flipping;
  if (run.code !== 0) throw new Error(`generator: ${run.stderr}`);
  await sleep(1000); // the last frames through every node
  return { flips, ...(await sourceOwners(viaLnlbctl(lab), lab.nodes, base, RACE_SOURCES)) };
}

/** New sources into RACE_NODES nodes while weights flip, and with none (the reference). */
async function raceRows(o: BenchOptions): Promise<{ rows: BenchRow[]; json: { flipping: Race; together: Race; steady: Race } }> {
  const lab = await ClusterLab.create({ nodes: RACE_NODES, clientAddresses: 1 });
  let flipping: Race;
  let together: Race;
  let steady: Race;
  try {
    for (const node of lab.nodes) lab.startDaemon(node, ['--weight-mode', 'fixed', '--log-level', 'warn']);
    await lab.waitConverged(lab.nodes, 30_000);
    o.progress(`weight: ${RACE_SOURCES} new sources at ${RACE_RATE}/s into ${RACE_NODES} nodes, a weight changed every ${RACE_FLIP_MS} ms`);
    flipping = await race(lab, 0x0a400000, 'one'); // 10.64.0.0
    await sleep(1000);
    o.progress(`weight: the same, every node's weight changed at once every ${RACE_FLIP_MS} ms`);
    together = await race(lab, 0x0a600000, 'all'); // 10.96.0.0
    await sleep(1000);
    o.progress(`weight: the same with no change (reference)`);
    steady = await race(lab, 0x0a500000, 'none'); // 10.80.0.0
  } finally {
    await lab.cleanup();
  }
  const text = (r: Race): string => `${r.byNone} / ${r.byTwo}`;
  return {
    rows: [
      {
        figure: 'new sources: by none / by two',
        note: `${RACE_SOURCES} new sources, one UDP frame each, ${RACE_RATE} a second, into ${RACE_NODES} nodes (default election and heartbeat) while a node's fixed weight changes every ${RACE_FLIP_MS} ms, one node after another, 100 ↔ 300 (${flipping.flips} changes): sources no node holds as its own / sources two or more hold, from every node's conntrack (${flipping.unseen} not seen by every node); ref: the same into the same cluster with no change (${steady.unseen} not seen by every node)`,
        lnlb: text(flipping),
        reference: text(steady),
        ratio: '',
        goal: '0 / 0',
        met: flipping.byNone === 0 && flipping.byTwo === 0,
      },
      {
        figure: '  every weight at once: by none / by two',
        note: `the same while every node's weight changes at once every ${RACE_FLIP_MS} ms (${together.flips} times; as one host's load average changes every node's): the announcements overlap (${together.unseen} not seen by every node)`,
        lnlb: text(together),
        reference: text(steady),
        ratio: '',
        goal: '0 / 0',
        met: together.byNone === 0 && together.byTwo === 0,
      },
    ],
    json: { flipping, together, steady },
  };
}

export async function benchWeightChange(o: BenchOptions): Promise<BenchResult> {
  const seconds = o.quick ? 5 : 15;
  const lab = await ClusterLab.create({ nodes: 2, clientAddresses: 40 });
  let steady: Phase;
  let changing: Phase;
  try {
    for (const node of lab.nodes) lab.startDaemon(node, ['--weight-mode', 'fixed', '--handler', 'tcp=tcp', '--log-level', 'warn']);
    await lab.waitConverged(lab.nodes, 20_000);
    for (const node of lab.nodes) await lab.startHttpServer(node);
    o.progress(`weight: ${seconds} s of back-to-back connections with no weight change (reference)`);
    steady = await phase(lab, seconds * 1000, false);
    o.progress(`weight: ${seconds} s of back-to-back connections, node1's weight changed every second (heartbeat ${HEARTBEAT_MS} ms)`);
    changing = await phase(lab, seconds * 1000, true);
  } finally {
    await lab.cleanup();
  }
  const races = await raceRows(o);
  const row = (p: Phase): string => `${fmt(percentile(p.connectsMs, 50), 2)} / ${fmt(percentile(p.connectsMs, 99), 1)} / ${fmt(p.connectsMs.at(-1) ?? Number.NaN, 1)}`;
  const slow = (p: Phase): number => p.connectsMs.filter((ms) => ms > SLOW_MS).length / Math.max(1, p.connectsMs.length);
  return {
    rows: [
      {
        figure: 'connect ms p50 / p99 / max',
        note: `new TCP connections back to back to the VIP while node1's weight changes every second (${changing.changes} changes, ${changing.connectsMs.length} connections, heartbeat ${HEARTBEAT_MS} ms): connect time, ms, p50 / p99 / max; ref: the same with no change (${steady.connectsMs.length} connections); ratio: of the p99s`,
        lnlb: row(changing),
        reference: row(steady),
        ratio: ratio(percentile(changing.connectsMs, 99), percentile(steady.connectsMs, 99)),
        goal: 'no connection fails',
        met: changing.failed === 0 && steady.failed === 0,
      },
      {
        figure: `  slower than ${SLOW_MS} ms / failed`,
        note: `the share of those connections slower than ${SLOW_MS} ms (the new flows a weight change moves wait while it is applied, so that no two nodes elect them with different weights) / the connections that failed; ref: with no change`,
        lnlb: `${fmt(slow(changing) * 100, 1)} % / ${changing.failed}`,
        reference: `${fmt(slow(steady) * 100, 1)} % / ${steady.failed}`,
        ratio: '',
        goal: '',
      },
      ...races.rows,
    ],
    json: { heartbeatMs: HEARTBEAT_MS, steady, changing, newSources: races.json },
  };
}
