/**
 * Memory: bytes per tracked flow (the shared-memory tables) and the daemon's RSS with 0, 100k
 * and 1M tracked flows. One node; a generator sends one frame from each of N distinct sources.
 */

import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../src/lab/cluster.js';
import { TrackingTable } from '../src/shm/tracking-table.js';
import { shardSlots } from '../src/workers/datapath.js';
import { fmt, rssBytes, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
const WORKERS = 2;
const TABLE_ENTRIES = 1 << 20;

export async function benchMemory(o: BenchOptions): Promise<BenchResult> {
  const reps = o.quick ? 1 : 2;
  const runs: BenchResult[] = [];
  for (let rep = 0; rep < reps; rep++) runs.push(await memoryOnce(o, rep + 1, reps));
  // The table's figures are the same every run (sizes); the RSS ones vary: show each run's.
  const rows = runs[0]!.rows.map((row, i) => ({
    ...row,
    lnlb: runs.length > 1 ? runs.map((r) => r.rows[i]!.lnlb).join(' | ') : row.lnlb,
    ratio: runs.length > 1 ? runs.map((r) => r.rows[i]!.ratio).join(' | ') : row.ratio,
  }));
  return { rows, json: runs.map((r) => r.json) };
}

async function memoryOnce(o: BenchOptions, rep: number, reps: number): Promise<BenchResult> {
  const steps = o.quick ? [0, 100_000] : [0, 100_000, 1_000_000];
  const lab = await ClusterLab.create({ nodes: 1, clientAddresses: 1 });
  const points: { flows: number; tracked: number; rssBytes: number }[] = [];
  try {
    const daemon = lab.startDaemon('node1', ['--workers', String(WORKERS), '--table-entries', String(TABLE_ENTRIES), '--log-level', 'warn']);
    await lab.waitConverged(['node1'], 20_000);
    let sent = 0;
    for (const flows of steps) {
      if (flows > sent) {
        o.progress(`memory: ${flows} tracked flows (run ${rep} of ${reps})`);
        const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(flows - sent), '--base', ipAfter(sent)], { timeoutMs: 120_000 });
        if (run.code !== 0) throw new Error(`generator: ${run.stderr}`);
        sent = flows;
        await new Promise((resolve) => setTimeout(resolve, 1500));
      }
      const tracked = (await lab.status('node1')).interfaces[0]!.counters.trackedEntries;
      points.push({ flows, tracked, rssBytes: await rssBytes(daemon.pid!) });
    }
  } finally {
    await lab.cleanup();
  }
  const slots = shardSlots(TABLE_ENTRIES, WORKERS) * WORKERS;
  const tableBytes = WORKERS * TrackingTable.byteLength(slots / WORKERS);
  const last = points[points.length - 1]!;
  const base = points[0]!;
  // RSS growth between the last two points: the first flows also touch the rings and the
  // kernel's packet ring for the first time, which is not per-flow memory.
  const before = points[points.length - 2] ?? base;
  const perFlowTable = tableBytes / Math.max(1, last.tracked);
  const perFlowRss = (last.rssBytes - before.rssBytes) / Math.max(1, last.tracked - before.tracked);
  const atLimit = 16 / (7 / 8);
  const rows: BenchRow[] = [
    ...points.map((p) => ({
      figure: `daemon RSS with ${fmt(p.flows)} flows sent (${fmt(p.tracked)} tracked)`,
      lnlb: `${fmt(p.rssBytes / 2 ** 20, 1)} MiB`,
      reference: p === base ? '—' : `${fmt(base.rssBytes / 2 ** 20, 1)} MiB at 0`,
      ratio: p === base ? '' : `+${fmt((p.rssBytes - base.rssBytes) / Math.max(1, p.tracked), 1)} B/flow`,
      goal: '',
    })),
    {
      figure: `bytes per tracked flow: tables ${fmt(tableBytes / 2 ** 20, 1)} MiB / ${fmt(last.tracked)} flows (RSS growth per flow, last step)`,
      lnlb: `${fmt(perFlowTable, 1)} (${fmt(perFlowRss, 1)})`,
      reference: `${fmt(atLimit, 1)} at the 7/8 load limit`,
      ratio: '',
      goal: '≤ 24 B per entry (judged at 1M flows)',
      ...(last.flows >= 1_000_000 ? { met: perFlowTable <= 24 } : {}),
    },
  ];
  return { rows, json: { points, tableBytes, slots, perFlowTable, perFlowRss } };
}

/** Generator bases: one /12 per step so sources never repeat. */
function ipAfter(sent: number): string {
  const base = 0x0a400000 + sent; // 10.64.0.0 + sent
  return `${base >>> 24}.${(base >>> 16) & 0xff}.${(base >>> 8) & 0xff}.${base & 0xff}`;
}
