/**
 * Memory: bytes per tracked flow (the shared-memory tables) and the daemon's RSS with 0, 100k
 * and 1M tracked flows. One node; a generator sends one frame from each of N distinct sources.
 *
 * Idle: a 3-node cluster at default settings (heartbeats every 100 ms), no traffic: each
 * daemon's CPU as a share of one core, by thread (lnlbd names its own; V8's and libuv's keep the
 * process's name), and its RSS with no flows by mapping (the kernel's packet rings, the node
 * binary, anonymous memory). Reference, in the same run: a bare Node process with as many
 * worker threads (control, dispatcher, actors), idle: the floor that the runtime alone costs.
 */

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../lab/cluster.js';
import { TrackingTable } from '../src/shm/tracking-table.js';
import { shardSlots } from '../src/workers/datapath.js';
import { fmt, fmtSpread, ratio, rssBytes, spread, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
const WORKERS = 2;
const TABLE_ENTRIES = 1 << 20;

export async function benchMemory(o: BenchOptions): Promise<BenchResult> {
  const idle = await idleOnce(o);
  const reps = o.quick ? 1 : 2;
  const runs: BenchResult[] = [];
  for (let rep = 0; rep < reps; rep++) runs.push(await memoryOnce(o, rep + 1, reps));
  // The table's figures are the same every run (sizes); the RSS ones vary: show each run's,
  // "run 1 / run 2" (not "|": the table is also Markdown).
  const rows = runs[0]!.rows.map((row, i) => ({
    ...row,
    lnlb: runs.length > 1 ? runs.map((r) => r.rows[i]!.lnlb).join(' / ') : row.lnlb,
    ratio: runs.length > 1 ? runs.map((r) => r.rows[i]!.ratio.trim()).filter((x) => x !== '').join(' / ') : row.ratio,
  }));
  return { rows: [...idle.rows, ...rows], json: { idle: idle.json, flows: runs.map((r) => r.json) } };
}

// ---------------------------------------------------------------------------------------
// Idle

const IDLE_GOAL_PERCENT = 0.2;
const BY_THREAD_NOTE = 'medians over the nodes, by thread (lnlbd names its own; V8/libuv: the runtime\'s threads, which keep the process\'s name)';
const RSS_GOAL_MIB = 100;
/** lnlbd's defaults, over the lab's slower 200/1000 ms. */
const DEFAULT_TIMING = ['--heartbeat-ms', '100', '--dead-after-ms', '700'];

/**
 * CPU time (ns, from schedstat: exact, where /proc/PID/stat counts 10 ms ticks) of each thread,
 * by name, and its wake-ups (voluntary context switches: each sleep that ended).
 */
export function threadCpu(pid: number): Map<number, { name: string; ns: number; wakeups: number }> {
  const out = new Map<number, { name: string; ns: number; wakeups: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const wakeups = Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
      out.set(Number(tid), { name: Number(tid) === pid ? 'main' : name.startsWith('lnlb-') ? name.replace(/-\d+$/, '') : 'V8/libuv', ns, wakeups });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** Each thread group's share of one core between two samples, in %. */
export function cpuShares(before: ReturnType<typeof threadCpu>, after: ReturnType<typeof threadCpu>, seconds: number): Map<string, number> {
  const shares = new Map<string, number>();
  for (const [tid, a] of after) {
    const delta = a.ns - (before.get(tid)?.ns ?? 0);
    shares.set(a.name, (shares.get(a.name) ?? 0) + (delta / 1e9 / seconds) * 100);
  }
  return shares;
}

/** Each thread group's wake-ups a second between two samples. */
function wakeupRates(before: ReturnType<typeof threadCpu>, after: ReturnType<typeof threadCpu>, seconds: number): Map<string, number> {
  const rates = new Map<string, number>();
  for (const [tid, a] of after) rates.set(a.name, (rates.get(a.name) ?? 0) + (a.wakeups - (before.get(tid)?.wakeups ?? 0)) / seconds);
  return rates;
}

/**
 * RSS in KiB by kind of mapping, from /proc/PID/smaps. The two packet rings are the socket
 * mappings: the data socket's is the larger (8192 slots against the control socket's ~2600).
 */
function rssByMapping(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  const mapping = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/;
  let dataRingKib = 0;
  for (const line of smaps) {
    const map = mapping.exec(line);
    if (map !== null && map[3]!.startsWith('socket:')) dataRingKib = Math.max(dataRingKib, (parseInt(map[2]!, 16) - parseInt(map[1]!, 16)) / 1024);
  }
  let kind = '';
  for (const line of smaps) {
    const map = mapping.exec(line);
    if (map !== null) {
      const name = map[3]!;
      const kib = (parseInt(map[2]!, 16) - parseInt(map[1]!, 16)) / 1024;
      if (name.startsWith('socket:')) kind = kib === dataRingKib ? 'data ring' : 'control ring';
      else if (name === process.execPath || name.endsWith('/node')) kind = 'node binary (shared)';
      else if (name === '' || name === '[heap]' || name.startsWith('[anon')) kind = 'heaps, malloc, shared memory';
      else kind = 'libraries, stacks, other';
    } else if (line.startsWith('Rss:')) {
      out.set(kind, (out.get(kind) ?? 0) + Number(line.split(/\s+/)[1]));
    }
  }
  return out;
}

/** A bare Node process with `threads` idle worker threads: its CPU share and RSS (KiB) over `seconds`. */
async function bareNode(threads: number, seconds: number): Promise<{ cpuPercent: number; rssKib: number }> {
  const script = `const { Worker } = require('node:worker_threads'); for (let i = 0; i < ${threads}; i++) new Worker('setInterval(() => {}, 60000)', { eval: true }); setInterval(() => {}, 60000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  try {
    await sleep(10_000); // past its start (compiling, the first collections)
    const before = threadCpu(child.pid!);
    await sleep(seconds * 1000);
    const after = threadCpu(child.pid!);
    const cpuPercent = [...cpuShares(before, after, seconds).values()].reduce((a, b) => a + b, 0);
    const rssKib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid!}/status`, 'utf8'))?.[1]);
    return { cpuPercent, rssKib };
  } finally {
    child.kill('SIGKILL');
  }
}

async function idleOnce(o: BenchOptions): Promise<BenchResult> {
  // An idle daemon is judged as it runs for days, not as it starts. Its heartbeat path runs some
  // 30 times a second, so V8 takes minutes to optimise it (Sparkplug code until then) and its
  // compiler and GC threads to go quiet: measured on main (3 idle nodes), 0.9-1.1% of a core
  // 30 s after the start, 0.48-0.59% after 180 s. --quick judges the first minute.
  const warmSeconds = o.quick ? 30 : 180;
  const seconds = o.quick ? 20 : 60;
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 1 });
  let samples: { node: string; cpu: Map<string, number>; wakeups: Map<string, number>; rss: Map<string, number>; rssKib: number; pssKib: number }[];
  try {
    for (const node of lab.nodes) lab.startDaemon(node, [...DEFAULT_TIMING, '--log-level', 'warn']);
    await lab.waitConverged(lab.nodes, 30_000);
    o.progress(`memory: idle, 3 nodes at default settings, ${warmSeconds} s to warm up, ${seconds} s measured`);
    await sleep(warmSeconds * 1000);
    const pids = lab.nodes.map((node) => lab.daemon(node)!.pid!);
    const before = pids.map(threadCpu);
    await sleep(seconds * 1000);
    const after = pids.map(threadCpu);
    samples = lab.nodes.map((node, i) => ({
      node,
      cpu: cpuShares(before[i]!, after[i]!, seconds),
      wakeups: wakeupRates(before[i]!, after[i]!, seconds),
      rss: rssByMapping(pids[i]!),
      rssKib: Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pids[i]!}/status`, 'utf8'))?.[1]),
      pssKib: Number(/^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pids[i]!}/smaps_rollup`, 'utf8'))?.[1]),
    }));
  } finally {
    await lab.cleanup();
  }
  // main, control, dispatcher and the actors (--workers 2): as many threads running JavaScript.
  const bare = await bareNode(4, seconds);
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const cpu = spread(samples.map((s) => total(s.cpu)));
  const rss = spread(samples.map((s) => s.rssKib / 1024));
  const byKey = (pick: (s: (typeof samples)[number]) => Map<string, number>, scale: number, digits: number): string => {
    const keys = [...new Set(samples.flatMap((s) => [...pick(s).keys()]))];
    const median = (k: string): number => spread(samples.map((s) => (pick(s).get(k) ?? 0) / scale)).median;
    return keys
      .sort((a, b) => median(b) - median(a))
      .map((k) => `${k} ${fmt(median(k), digits)}`)
      .join(', ');
  };
  const rows: BenchRow[] = [
    {
      figure: 'idle CPU, % of one core',
      note: `an idle daemon at the defaults (3 nodes, heartbeats every 100 ms, no traffic): its CPU as a share of one core over ${seconds} s after ${warmSeconds} s of warm-up, median (min–max) over the nodes; ref: a bare Node process with 4 idle worker threads (as many threads that run JavaScript), this run`,
      lnlb: fmtSpread(cpu, 2),
      reference: fmt(bare.cpuPercent, 2),
      ratio: '',
      goal: `≤ ${IDLE_GOAL_PERCENT}%`,
      met: cpu.median <= IDLE_GOAL_PERCENT,
    },
    { figure: '  by thread, % of one core', note: BY_THREAD_NOTE, lnlb: byKey((s) => s.cpu, 1, 3), reference: '', ratio: '', goal: '' },
    { figure: '  by thread, wake-ups a second', note: BY_THREAD_NOTE, lnlb: byKey((s) => s.wakeups, 1, 1), reference: '', ratio: '', goal: '' },
    {
      figure: 'idle RSS, no flows, MiB',
      note: 'the RSS of the same idle daemons, no flows, median (min–max) over the nodes; ref: the bare Node process with 4 idle worker threads',
      lnlb: fmtSpread(rss, 1),
      reference: fmt(bare.rssKib / 1024, 1),
      ratio: ratio(rss.median, bare.rssKib / 1024),
      goal: `≤ ${RSS_GOAL_MIB} MiB`,
      met: rss.median <= RSS_GOAL_MIB,
    },
    { figure: '  by mapping, MiB', note: 'the RSS by kind of mapping (the kernel\'s packet rings, the node binary, anonymous memory), medians over the nodes', lnlb: byKey((s) => s.rss, 1024, 1), reference: '', ratio: '', goal: '' },
    {
      // RSS counts every page mapped, the node binary's too, which every Node process on the host shares; PSS splits shared pages between their users: what one more daemon costs the host.
      figure: '  PSS, MiB',
      note: 'proportional set size: the RSS with each shared page (the node binary) split between the processes that map it, what one more daemon costs the host; median (min–max) over the nodes',
      lnlb: fmtSpread(spread(samples.map((s) => s.pssKib / 1024)), 1),
      reference: '',
      ratio: '',
      goal: '',
    },
  ];
  const plain = (m: Map<string, number>): Record<string, number> => Object.fromEntries(m);
  return { rows, json: { warmSeconds, seconds, bare, nodes: samples.map((s) => ({ node: s.node, rssKib: s.rssKib, pssKib: s.pssKib, cpu: plain(s.cpu), wakeups: plain(s.wakeups), rss: plain(s.rss) })) } };
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
      figure: `RSS, ${fmt(p.flows)} flows (${fmt(p.tracked)} tracked)`,
      note: `one daemon (--workers ${WORKERS}, --table-entries ${fmt(TABLE_ENTRIES)}) after one frame from each of that many distinct sources (tracked: as its status counts them), MiB; ref: its RSS before any flow; ratio: the growth per tracked flow. With --quick, 0 and 100,000 flows; the second of two runs after " / "`,
      lnlb: `${fmt(p.rssBytes / 2 ** 20, 1)} MiB`,
      reference: p === base ? '—' : `${fmt(base.rssBytes / 2 ** 20, 1)} MiB at 0`,
      ratio: p === base ? '' : `+${fmt((p.rssBytes - base.rssBytes) / Math.max(1, p.tracked), 1)} B/flow`,
      goal: '',
    })),
    {
      figure: 'bytes per tracked flow',
      note: `the tracking tables' ${fmt(tableBytes / 2 ** 20, 1)} MiB over the ${fmt(last.tracked)} flows tracked (in brackets: the RSS growth per flow over the last step); ref: bytes per flow of a table filled to its 7/8 load limit. Judged at 1M flows only (not with --quick)`,
      lnlb: `${fmt(perFlowTable, 1)} (${fmt(perFlowRss, 1)})`,
      reference: `${fmt(atLimit, 1)} at 7/8 full`,
      ratio: '',
      goal: '≤ 24 B (at 1M flows)',
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
