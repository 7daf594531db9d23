/**
 * `npm run bench [-- --quick] [-- --only replay|wire]`: runs the benchmarks, prints one
 * aligned table (figure, lnlb, reference, ratio) and writes the same as JSON to
 * bench/results/. Every figure is a ratio to a reference measured in the same run, because
 * these machines are shared and noisy.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runReplay } from './replay.js';
import { runFailover } from './failover.js';
import { runJoin } from './join.js';
import { runWire } from './wire.js';

interface Row {
  figure: string;
  lnlb: string;
  reference: string;
  ratio: string;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const KNOWN = ['replay', 'wire', 'join', 'failover'];
if (only !== undefined && !KNOWN.includes(only)) {
  process.stderr.write(`bench: --only takes one of ${KNOWN.join(', ')}, got ${JSON.stringify(only)}\n`);
  process.exit(2);
}
const wanted = (name: string): boolean => only === undefined || only === name;
const rows: Row[] = [];
const results: Record<string, unknown> = { date: new Date().toISOString(), quick };
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

if (wanted('replay')) {
  const replay = [];
  for (const actors of [1, 2, 4]) {
    process.stderr.write(`replay: ${actors} actor(s)…\n`);
    const r = runReplay(actors, 60, quick ? 300_000 : 3_000_000);
    replay.push(r);
    rows.push({
      figure: `replay 60 B, ${actors} actor(s): ns/frame (ref: memory source alone)`,
      lnlb: fmt(r.nsPerFrame, 1),
      reference: fmt(r.referenceNsPerFrame, 1),
      ratio: `${fmt(r.nsPerFrame / r.referenceNsPerFrame, 2)}×`,
    });
  }
  results['replay'] = replay;
}

if (wanted('wire')) {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: the wire benchmark builds network namespaces and needs root (sudo npm run bench)\n');
    process.exit(1);
  }
  const wire = [];
  for (const frameBytes of [60, 1500]) {
    for (const workers of quick ? [2] : [1, 2]) {
      process.stderr.write(`wire: ${frameBytes} B, ${workers} worker(s)…\n`);
      const r = await runWire({ nodes: 1, workers, frameBytes, seconds: quick ? 1 : 3 });
      wire.push(r);
      rows.push({
        figure: `wire ${frameBytes} B, ${workers} worker(s): frames/s seen (ref: offered)`,
        lnlb: fmt(r.seenPerSecond),
        reference: fmt(r.offeredPerSecond),
        ratio: `${fmt(r.seenPerSecond / r.offeredPerSecond, 2)}×`,
      });
      rows.push({
        figure: `  lost in kernel ring / in lnlb; accepted/s`,
        lnlb: `${fmt(r.lostInKernel)} / ${fmt(r.lostInLnlb)}`,
        reference: fmt(r.acceptedPerSecond),
        ratio: '',
      });
    }
  }
  results['wire'] = wire;
}

const needsRoot = (name: string): void => {
  if (process.getuid?.() !== 0) {
    process.stderr.write(`bench: the ${name} benchmark builds network namespaces and needs root (sudo npm run bench)\n`);
    process.exit(1);
  }
};

if (wanted('join')) {
  needsRoot('join');
  const join = [];
  for (const flows of quick ? [10_000] : [10_000, 100_000]) {
    process.stderr.write(`join: a newcomer receives ${flows} tracked flows…\n`);
    const r = await runJoin(flows);
    join.push(r);
    rows.push({
      figure: `join, ${flows} flows: state sent / loaded (ms); entries, bytes, frames`,
      lnlb: `${r.sendMs} / ${r.loadMs}`,
      reference: `${r.entriesLoaded}, ${fmt(r.bytes)} B, ${r.fragments}`,
      ratio: `join ${fmt(r.joinMs)} ms`,
    });
  }
  results['join'] = join;
}

if (wanted('failover')) {
  needsRoot('failover');
  const trials = quick ? 3 : 20;
  process.stderr.write(`failover: ${trials} kills at --heartbeat-ms 100 --dead-after-ms 300…\n`);
  const r = await runFailover({ trials, heartbeatMs: 100, deadAfterMs: 300 });
  results['failover'] = r;
  rows.push({
    figure: `failover after kill -9, ${r.trials.length} trials (hb 100 ms): median / worst ms (ref: keepalived fastest, physical-limits.md)`,
    lnlb: `${fmt(r.medianMs)} / ${fmt(r.worstMs)}`,
    reference: '38',
    ratio: `${fmt(r.medianMs / 38, 1)}×`,
  });
}

const header: Row = { figure: 'figure', lnlb: 'lnlb', reference: 'reference', ratio: 'ratio' };
const all = [header, ...rows];
const width = (k: keyof Row): number => Math.max(...all.map((r) => r[k].length));
for (const r of all) {
  process.stdout.write(`${r.figure.padEnd(width('figure'))}  ${r.lnlb.padStart(width('lnlb'))}  ${r.reference.padStart(width('reference'))}  ${r.ratio.padStart(width('ratio'))}\n`);
}
const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}bench-${Date.now()}.json`;
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
process.stderr.write(`results: ${file}\n`);
