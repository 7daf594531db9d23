/**
 * `npm run bench [-- --quick] [-- --only NAME[,NAME]]`: runs the benchmarks, shows progress on
 * stderr, prints one table (figure, lnlb, reference, ratio, goal, met; a section per benchmark,
 * the notes below: bench/table.ts) sized to the terminal, and writes the same to bench/results/
 * twice: as JSON (every measurement) and as Markdown, the README's form (same basename, .md). Every figure stands beside a reference measured in the same run
 * (these machines are shared and noisy). The run fails only when a benchmark cannot run,
 * never on a slow number: a missed goal is marked in the table.
 */

import { resolveDaemonOptions } from '../src/main/options.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchBond } from './bond.js';
import { benchControlFlood } from './control-flood.js';
import { benchAuthMac } from './auth-mac.js';
import { benchControlFuzz } from './control-fuzz.js';
import { benchDisruption } from './disruption.js';
import { fastestSafeHeartbeat, PROBE_CLIENTS, PROBE_INTERVAL_MS, runFailover, type FailoverResult } from './failover.js';
import { benchKeepalived } from './keepalived.js';
import { benchLatency } from './latency.js';
import { benchLookups } from './lookups.js';
import { benchElectionHash } from './election-hash.js';
import { benchJoin } from './join.js';
import { benchHostLoop, benchStatusRtt } from './host-loop.js';
import { benchThreadCalls } from './thread-calls.js';
import { benchHealth } from './health.js';
import { benchHeartbeat } from './heartbeat.js';
import { benchMemory } from './memory.js';
import { benchReplay } from './replay.js';
import { benchScale } from './scale.js';
import { benchThroughput } from './throughput.js';
import { benchWeightChange } from './weight-change.js';
import { ensureSystemTools } from '../lab/system-tools.js';
import { fmt, ratio, type BenchOptions, type BenchResult, type BenchRow } from './report.js';
import { formatMarkdown, formatTable, tableWidth, type BenchSection } from './table.js';

interface Benchmark {
  name: string;
  needsRoot: boolean;
  run(o: BenchOptions): Promise<BenchResult>;
}

/**
 * Failover: keepalived at its fastest setting first (the peer, same run, same probe), then
 * lnlb at its defaults, each killed with kill -9 (keepalived also gets its link pulled:
 * with kill -9 alone both of its nodes hold the VIP).
 */
async function benchFailover(o: BenchOptions): Promise<BenchResult> {
  const trials = o.quick ? 3 : 20;
  const { heartbeatMs: hb, deadAfterMs: dead } = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' });
  o.progress(`failover: keepalived VRRPv3 advert_int 0.01, ${trials} kills`);
  const peer = await benchKeepalived({ ...o, trials });
  o.progress(`failover: lnlb, ${trials} kill -9 at the defaults (--heartbeat-ms ${hb} --dead-after-ms ${dead})`);
  const r = await runFailover({ trials, heartbeatMs: hb, deadAfterMs: dead });
  const v6Trials = o.quick ? 2 : 10;
  o.progress(`failover: lnlb, IPv6, ${v6Trials} kill -9 at the defaults (a dual-stack cluster, ping -6 from IPv6 sources)`);
  const v6 = await runFailover({ trials: v6Trials, heartbeatMs: hb, deadAfterMs: dead, ipv6: true });
  const cutTrials = o.quick ? 2 : 10;
  o.progress(`failover: lnlb, ${cutTrials} link-down trials at the defaults`);
  const cut = await runFailover({ trials: cutTrials, heartbeatMs: hb, deadAfterMs: dead, fault: 'link-down' });
  o.progress('failover: the smallest heartbeat with no false death under a full flood');
  const safe = await fastestSafeHeartbeat(o.quick ? [50] : [50, 30, 20, 10], o.quick ? 3 : 6, o.progress);
  let fast: Awaited<ReturnType<typeof runFailover>> | undefined;
  if (Number.isFinite(safe.heartbeatMs)) {
    o.progress(`failover: lnlb, ${trials} kill -9 at --heartbeat-ms ${safe.heartbeatMs} --dead-after-ms ${safe.deadAfterMs}`);
    fast = await runFailover({ trials, heartbeatMs: safe.heartbeatMs, deadAfterMs: safe.deadAfterMs });
  }
  const rows: BenchRow[] = [
    ...peer.rows,
    {
      figure: 'lnlb: kill -9, defaults, ms',
      note: `a daemon killed with kill -9, ${r.trials.length} trials, at the defaults (hb ${hb} ms, dead after ${dead} ms): ms until the last of its ${PROBE_CLIENTS} clients (each pinging every ${PROBE_INTERVAL_MS} ms since before the kill) is answered again by a survivor, median / worst; ref: keepalived's median / worst, this run`,
      lnlb: `${fmt(r.medianMs)} / ${fmt(r.worstMs)}`,
      reference: `${fmt(peer.medianMs)} / ${fmt(peer.worstMs)}`,
      ratio: ratio(r.medianMs, peer.medianMs),
      goal: 'worst < 1 s, 0 false deaths',
      met: r.worstMs < 1000 && r.falseDeaths === 0,
    },
    timelineRow(r, 'the defaults', peer.medianMs),
    {
      figure: 'lnlb IPv6: kill -9, defaults, ms',
      note: `the same in a dual-stack cluster with clients pinging the VIP over IPv6 (ping -6), ${v6.trials.length} trials, median / worst; ref: the IPv4 figure above`,
      lnlb: `${fmt(v6.medianMs)} / ${fmt(v6.worstMs)}`,
      reference: `${fmt(r.medianMs)} / ${fmt(r.worstMs)}`,
      ratio: ratio(v6.medianMs, r.medianMs),
      goal: 'worst < 1 s, 0 false deaths',
      met: v6.worstMs < 1000 && v6.falseDeaths === 0,
    },
    {
      figure: 'lnlb: link down, defaults, ms',
      note: `a node's link pulled (the daemon keeps running), ${cut.trials.length} trials, the defaults: ms until the last of its clients is answered again, median / worst; ref: keepalived's kill -9 + link down`,
      lnlb: `${fmt(cut.medianMs)} / ${fmt(cut.worstMs)}`,
      reference: `${fmt(peer.medianMs)} / ${fmt(peer.worstMs)}`,
      ratio: ratio(cut.medianMs, peer.medianMs),
      goal: '',
    },
    ...(fast === undefined
      ? []
      : [
          {
            figure: 'lnlb: kill -9, fastest safe, ms',
            note: `kill -9 at the fastest setting found without false deaths under a flood with restarts: hb ${fast.heartbeatMs} ms, dead after ${fast.deadAfterMs} ms (heartbeats tried, hb:false deaths: ${safe.tried.map((x) => `${x.heartbeatMs}:${x.falseDeaths}`).join(' ')}), ${fast.trials.length} trials, median / worst; ref: keepalived's`,
            lnlb: `${fmt(fast.medianMs)} / ${fmt(fast.worstMs)}`,
            reference: `${fmt(peer.medianMs)} / ${fmt(peer.worstMs)}`,
            ratio: ratio(fast.medianMs, peer.medianMs),
            goal: "median ≤ keepalived's fastest, 0 false deaths",
            met: fast.medianMs <= peer.medianMs && fast.falseDeaths === 0,
          },
          timelineRow(fast, `hb ${fast.heartbeatMs} ms, dead after ${fast.deadAfterMs} ms`, peer.medianMs),
        ]),
    {
      figure: 'false deaths in the trials',
      note: 'live nodes declared dead during all the lnlb failover trials above',
      lnlb: String(r.falseDeaths + v6.falseDeaths + cut.falseDeaths + (fast?.falseDeaths ?? 0)),
      reference: '0',
      ratio: '',
      goal: '0',
      met: r.falseDeaths + v6.falseDeaths + cut.falseDeaths + (fast?.falseDeaths ?? 0) === 0,
    },
  ];
  return { rows, json: { lnlb: r, lnlbIPv6: v6, lnlbLinkDown: cut, lnlbFastest: fast, safeSearch: safe, keepalived: peer.json } };
}

/** One failover step by step (medians over the kills): where the time after the death goes. */
function timelineRow(r: FailoverResult, setting: string, keepalivedMedianMs: number): BenchRow {
  const t = r.timeline;
  return {
    figure: '  step by step, ms after kill -9',
    note: `one failover step by step, from the survivors' own records: ms after the kill -9 (medians of ${r.timelines.length} kills, ${setting}) at which the victim was last heard / its death declared by the first survivor / by the last / the new view published / the actors on it / the first new client taken / the victim's first client answered again / its last; ref: keepalived's median failover`,
    lnlb: [t.lastHeard, t.declared, t.declaredLast, t.published, t.actorsSwitched, t.firstTaken, t.firstOrphanAnswered, t.lastOrphanAnswered].map((x) => fmt(x)).join(' / '),
    reference: `${fmt(keepalivedMedianMs)} (keepalived)`,
    ratio: '',
    goal: '',
  };
}

const BENCHMARKS: Benchmark[] = [
  { name: 'throughput', needsRoot: true, run: benchThroughput },
  { name: 'replay', needsRoot: false, run: benchReplay },
  { name: 'lookups', needsRoot: false, run: benchLookups },
  { name: 'election-hash', needsRoot: false, run: benchElectionHash },
  { name: 'disruption', needsRoot: false, run: benchDisruption },
  { name: 'latency', needsRoot: true, run: benchLatency },
  { name: 'failover', needsRoot: true, run: benchFailover },
  { name: 'join', needsRoot: true, run: benchJoin },
  { name: 'host-loop', needsRoot: true, run: benchHostLoop },
  { name: 'status-rtt', needsRoot: true, run: benchStatusRtt },
  { name: 'thread-calls', needsRoot: false, run: benchThreadCalls },
  { name: 'health', needsRoot: true, run: benchHealth },
  { name: 'memory', needsRoot: true, run: benchMemory },
  { name: 'bond', needsRoot: true, run: benchBond },
  { name: 'weight', needsRoot: true, run: benchWeightChange },
  { name: 'control-flood', needsRoot: true, run: benchControlFlood },
  { name: 'control-fuzz', needsRoot: false, run: benchControlFuzz },
  { name: 'auth-mac', needsRoot: false, run: benchAuthMac },
  { name: 'heartbeat', needsRoot: false, run: benchHeartbeat },
  { name: 'scale', needsRoot: true, run: benchScale },
];

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\nusage: npm run bench [-- --quick] [-- --only ${BENCHMARKS.map((b) => b.name).join(',')}]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? usage('--only needs a name')).split(',') : undefined;
for (const name of only ?? []) if (!BENCHMARKS.some((b) => b.name === name)) usage(`--only: unknown benchmark ${JSON.stringify(name)}`);
for (const a of args) if (a.startsWith('--') && a !== '--quick' && a !== '--only') usage(`unknown option ${a}`);
const selected = BENCHMARKS.filter((b) => only === undefined || only.includes(b.name));
if (selected.some((b) => b.needsRoot) && process.getuid?.() !== 0) {
  usage(`${selected.filter((b) => b.needsRoot).map((b) => b.name).join(', ')} build network namespaces and need root (sudo npm run bench), or pick --only replay,disruption`);
}
// The namespace benchmarks run ping, curl, nft, iperf3, tshark and keepalived: installed here
// as root, or the run stops now (a figure from a tool that did not run is no figure).
if (selected.some((b) => b.needsRoot)) {
  const missing = ensureSystemTools('bench');
  if (missing !== undefined) {
    console.error(missing);
    process.exit(1);
  }
}

const started = Date.now();
const progress = (line: string): void => {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
};
const sections: BenchSection[] = [];
const results: Record<string, unknown> = { date: new Date().toISOString(), quick };
const failed: string[] = [];
const charts: { name: string; svg: string }[] = [];
for (const bench of selected) {
  try {
    const r = await bench.run({ quick, progress });
    sections.push({ name: bench.name, rows: r.rows });
    results[bench.name] = r.json;
    charts.push(...(r.charts ?? []));
  } catch (err) {
    failed.push(bench.name);
    progress(`${bench.name} could not run: ${(err as Error).message}`);
    results[bench.name] = { error: (err as Error).message };
  }
}

process.stdout.write(formatTable(sections, tableWidth(process.stdout.isTTY ? process.stdout.columns : undefined)));
const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const base = `${dir}bench-${new Date().toISOString().replaceAll(':', '-')}`;
writeFileSync(`${base}.json`, `${JSON.stringify({ ...results, rows: sections.flatMap((s) => s.rows.map((row) => ({ bench: s.name, ...row }))) }, null, 2)}\n`);
const run = `\`npm run bench --${quick ? ' --quick' : ''}${only === undefined ? '' : ` --only ${only.join(',')}`}\``;
writeFileSync(`${base}.md`, `${run} at ${results.date as string}, ${fmt((Date.now() - started) / 1000)} s:\n\n${formatMarkdown(sections)}`);
progress(`results: ${base}.json, ${base}.md`);
for (const chart of charts) {
  const svg = `${base}-${chart.name}.svg`;
  writeFileSync(svg, chart.svg);
  progress(`chart: ${svg}`);
}
if (failed.length > 0) {
  process.stderr.write(`bench: could not run: ${failed.join(', ')}\n`);
  process.exit(1);
}
