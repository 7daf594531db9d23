/**
 * What a weight change costs new clients. Every node holds the first frames of new flows from
 * the round that announces a weight until it has applied it (Membership's weightsInFlight):
 * nodes that applied it at different moments would otherwise take a SYN twice or not at all.
 * Measured: the connect time (curl's time_connect) of new TCP connections made back to back
 * to the VIP of a 2-node cluster (--handler tcp=tcp, so each connection is a new flow), for
 * `seconds` with node1's fixed weight changed every second, and for as long with no change:
 * the reference, same run, same cluster.
 */

import { ClusterLab, VIP } from '../lab/cluster.js';
import { fmt, ratio, type BenchOptions, type BenchResult } from './report.js';

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
    ],
    json: { heartbeatMs: HEARTBEAT_MS, steady, changing },
  };
}
