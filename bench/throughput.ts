/**
 * Datapath throughput (issue 4, item 1; issue 14): a generator in the client namespace floods UDP
 * frames for the VIP through the bridge into a cluster of N = 1, 2 and 3 nodes (--quick: 1 and
 * 3); every node receives every frame and keeps its share. lnlb runs --election bucket, so the
 * kernel's bucket filter keeps the share (dispatcher-filter.ts), as for the C reference with the
 * same filter (reference-filtered); a node of one owns every bucket and carries the plain filter.
 * Measured per node: frames seen, frames accepted into the TAP, frames lost (the kernel's ring
 * drops, and lnlb's own drops by reason), and CPU (user + system time of the node's process over
 * the flood, from /proc/<pid>/stat) per frame seen and per frame offered to the cluster: with the
 * filter a node of N should pay about 1/N of what the node of one pays.
 *
 * Reference in the same run, on the same namespaces and the same offered load (the generator
 * at full speed for the same number of seconds): bench/ref/tpacket-tap.c, a small C program
 * with lnlb's default socket setup (TPACKET_V2 ring with its interrupt moderation, same filter, vnet headers) that keeps its share
 * by a plain hash of the source address and writes it into a TAP, compiled with `cc -O2`.
 *
 * "Lost" is counted end to end, the same way for both: frames sent minus frames accepted by the
 * N nodes together (each frame has exactly one owner), after the nodes have drained.
 * The counters then say where the loss happened.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BUCKET_COUNT, canonicalBuckets, createBucketTable } from '../src/cluster/buckets.js';
import { deriveElectionKey } from '../src/cluster/hash.js';
import { ClusterLab, VIP } from '../lab/cluster.js';
import { FILTER_WHY_TEXT, FilterWhy } from '../src/workers/dispatcher-filter.js';
import { loadKeyFile } from '../src/net/auth.js';
import { bucketFilter } from '../src/net/bucket-filter.js';
import { tail, waitExit, type LabProcess } from '../lab/netns.js';
import { clusterMacUnicast, formatMac, parseMac } from '../src/net/ethernet.js';
import { parseIPv4 } from '../src/net/ipv4.js';
import { lineChartSvg } from './chart.js';
import { cpuSeconds, fmt, fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type BenchRow, type Spread } from './report.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
// This file runs as dist/bench/throughput.js; the C source stays in the repository's bench/.
/** The reference reads the wire as lnlbd does by default (--rx-ring v2). */
const REFERENCE_RING = 'v2';
const REFERENCE_SOURCE = fileURLToPath(new URL('../../bench/ref/tpacket-tap.c', import.meta.url));
/** lnlb's drop reasons that are not losses: frames another node owns, or frames not for the VIP at all. */
const NOT_LOST = new Set(['otherNode', 'notIP', 'notVip', 'notClusterMac', 'malformed']);
const CPU_GOAL = 1.5;
/**
 * The generator, and with it the kernel's whole delivery path (bridge, flooding, filling every
 * node's ring: all softirq work on the sending CPU), runs on CPU 0; the node processes share the
 * other CPUs. The offered load then does not depend on how much CPU the contender takes, and a
 * node that cannot keep up loses frames in its ring instead of slowing the generator down.
 */
const GENERATOR_CPUS = '0';
const NODE_CPUS = availableParallelism() > 2 ? `1-${availableParallelism() - 1}` : '1';
const PINNED = availableParallelism() >= 2;
const pin = (cpus: string): string[] => (PINNED ? ['taskset', '-c', cpus] : []);

/** reference-filtered: the C reference with the bucket filter (src/net/bucket-filter.ts): the kernel picks its share. */
export type Contender = 'lnlb' | 'reference' | 'reference-filtered';

export interface NodeSample {
  node: string;
  seen: number;
  /** Frames written into the TAP (lnlb: accepted; reference: written). */
  accepted: number;
  /**
   * Frames the kernel dropped because the node's ring was full, by the contender's own count.
   * lnlb refreshes this counter every 1024 batches, so its delta over a run can lag behind; the
   * rows use sent − seen instead, the same for both contenders.
   */
  kernelDrops: number;
  /** The contender's own losses by reason (lnlb: ringFull, tapWrite, ...; reference: writeErrors). */
  dropped: Record<string, number>;
  cpuSeconds: number;
  /** lnlb: self-resets of the control plane during the flood (a stalled node rejoining); 0 for the reference. */
  resets: number;
}

export interface ThroughputRun {
  contender: Contender;
  /** Nodes in the cluster (N). */
  clusterSize: number;
  /**
   * The kernel kept each node's share (the bucket filter): a node sees about 1/N of the frames by
   * design. lnlb on a node of one: its filter passes every frame because it owns every bucket.
   */
  filtered: boolean;
  /** lnlb's --workers; 0 for the reference. */
  workers: number;
  frameBytes: number;
  /** Frames/s of an evenly paced run; 0: a flood. */
  rate: number;
  rep: number;
  sent: number;
  seconds: number;
  nodes: NodeSample[];
  /** sent − Σ accepted when positive: frames no node delivered. */
  lost: number;
  /**
   * Σ accepted − sent when positive: frames delivered by two nodes. Seen when the nodes recorded
   * different owners for a source (a weight change while new sources arrived); the same divergence
   * can leave other sources with no owner, so `lost` is then a lower bound.
   */
  duplicated: number;
  /** Σ over the nodes of sent − seen: frames a node never read (its ring was full, mostly). */
  unseen: number;
  seenPerNodePerSecond: number;
  cpuMicrosPerFrame: number;
  /** CPU of one node per frame offered to the cluster (the N nodes' CPU ÷ N ÷ frames sent), µs: what the bucket filter cuts to about 1/N. */
  cpuMicrosPerNodePerOffered: number;
  /** Busy CPU of the whole machine (generator, kernel delivery, nodes) per frame offered, µs. */
  machineMicrosPerOffered: number;
}

interface Flood {
  sent: number;
  seconds: number;
}

/**
 * The evenly paced case: about what a busy service's clients send, frame by frame, where every
 * frame may wake a reader (a flood fills batches; a paced stream mostly does not).
 */
const PACED_RATE = 13_600;
const PACED_SOURCES = 1000;

interface Config {
  reps: number;
  seconds: number;
  frameSizes: number[];
  /** The cluster sizes N, smallest first: N = 1 is the baseline each node's CPU is read against. */
  clusterSizes: number[];
  /** lnlb's worker counts at the largest N. */
  workers: number[];
  /** lnlb's worker count at the smaller N (the daemon's default). */
  curveWorkers: number;
}

function config(quick: boolean): Config {
  return quick
    ? { reps: 1, seconds: 1.5, frameSizes: [64, 1500], clusterSizes: [1, 3], workers: [1], curveWorkers: 1 }
    : { reps: 3, seconds: 3, frameSizes: [64, 1500], clusterSizes: [1, 2, 3], workers: [1, 2], curveWorkers: 1 };
}

function workersAt(cfg: Config, n: number): number[] {
  return n === Math.max(...cfg.clusterSizes) ? cfg.workers : [cfg.curveWorkers];
}

function run(file: string, args: string[]): Promise<{ code: number | string | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : ((error as NodeJS.ErrnoException).code ?? null), stderr });
    });
  });
}

/** Compiles the reference into `dir`; throws a clear error when it cannot. */
async function compileReference(dir: string): Promise<string> {
  const binary = join(dir, 'tpacket-tap');
  const result = await run('cc', ['-O2', '-Wall', '-o', binary, REFERENCE_SOURCE]);
  if (result.code === 'ENOENT') throw new Error('throughput: no C compiler (cc) to build the reference bench/ref/tpacket-tap.c: install gcc (apt-get install gcc)');
  if (result.code !== 0) throw new Error(`throughput: cc failed on ${REFERENCE_SOURCE}:\n${result.stderr}`);
  return binary;
}

/** Not measured: a short flood first, so that neither contender is timed while it warms up (JIT, page faults in the ring). */
const WARMUP_SECONDS = 0.5;

async function flood(lab: ClusterLab, frameBytes: number, seconds: number, rate = 0): Promise<Flood> {
  const argv = [...pin(GENERATOR_CPUS), process.execPath, GENERATOR, '--seconds', String(seconds), '--bytes', String(frameBytes), ...(rate > 0 ? ['--rate', String(rate), '--sources', String(PACED_SOURCES)] : [])];
  const result = await lab.lab.exec('client', argv, { timeoutMs: (seconds + 30) * 1000 });
  if (result.code !== 0) throw new Error(`throughput: the generator failed (exit ${result.code}): ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as Flood;
}

/** Waits until the processes stop using CPU: the rings are drained and the last frame handled. */
async function settle(pids: number[], maxMs = 5000): Promise<void> {
  const total = async (): Promise<number> => (await Promise.all(pids.map((pid) => cpuSeconds(pid)))).reduce((a, b) => a + b, 0);
  const deadline = performance.now() + maxMs;
  await sleep(200);
  let last = await total();
  while (performance.now() < deadline) {
    await sleep(200);
    const now = await total();
    if (now - last <= 0.01) return; // one tick of 10 ms: idle
    last = now;
  }
}

/**
 * Busy CPU time of the whole machine, s (every CPU, /proc/stat: all but idle and iowait). The
 * kernel's delivery of the flood (bridge, each node's filter and ring) runs in softirq on the
 * generator's CPU here, not in the nodes' processes; on a LAN it runs on each node's own CPUs.
 * So what a filter saves in the kernel shows only in this figure.
 */
async function machineBusySeconds(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
}

function finish(contender: Contender, filtered: boolean, workers: number, frameBytes: number, rate: number, rep: number, f: Flood, nodes: NodeSample[], machineSeconds: number): ThroughputRun {
  const clusterSize = nodes.length;
  const seen = nodes.reduce((a, n) => a + n.seen, 0);
  const cpu = nodes.reduce((a, n) => a + n.cpuSeconds, 0);
  const delivered = nodes.reduce((a, n) => a + n.accepted, 0);
  return {
    contender,
    clusterSize,
    filtered,
    workers,
    frameBytes,
    rate,
    rep,
    sent: f.sent,
    seconds: f.seconds,
    nodes,
    lost: Math.max(0, f.sent - delivered),
    duplicated: Math.max(0, delivered - f.sent),
    // With the bucket filter a node of several sees only its share by design: what it missed is its ring's drops.
    unseen: filtered && clusterSize > 1 ? nodes.reduce((a, n) => a + n.kernelDrops, 0) : nodes.reduce((a, n) => a + Math.max(0, f.sent - n.seen), 0),
    seenPerNodePerSecond: seen / nodes.length / f.seconds,
    cpuMicrosPerFrame: seen > 0 ? (cpu / seen) * 1e6 : Number.NaN,
    cpuMicrosPerNodePerOffered: (cpu * 1e6) / clusterSize / Math.max(1, f.sent),
    machineMicrosPerOffered: (machineSeconds * 1e6) / Math.max(1, f.sent),
  };
}

// ---------------------------------------------------------------------------------------
// The contenders

interface ReferenceCounters {
  seen: number;
  kept: number;
  written: number;
  writeErrors: number;
  kernelDrops: number;
}

/** SIGUSR1 makes the reference print its counters so far: waits for that line. */
/**
 * Each node's bucket filter, written as struct sock_filter records for the reference: a table
 * over the N nodes' MACs, keyed with the lab's cluster key, affinity single (the
 * generator's frames differ by source).
 */
function writeBucketFilters(lab: ClusterLab, dir: string): string[] {
  const macs = lab.nodes.map((node) => [...parseMac(lab.lab.host(node).mac)]);
  const order = macs.map((mac, i) => ({ mac, i })).sort((a, b) => Buffer.compare(Buffer.from(a.mac), Buffer.from(b.mac)));
  const table = createBucketTable();
  canonicalBuckets({ count: order.length, weights: order.map(() => 1), macs: order.flatMap((m) => m.mac) }, table);
  const electionKey = deriveElectionKey(loadKeyFile(lab.keyFile));
  const clusterMac = clusterMacUnicast(parseIPv4(VIP));
  return lab.nodes.map((node, i) => {
    const member = order.findIndex((m) => m.i === i);
    const pass = new Uint32Array(BUCKET_COUNT >> 5);
    for (let b = 0; b < BUCKET_COUNT; b++) if (table.owners[b] === member) pass[b >> 5]! |= 1 << (b & 31);
    const program = bucketFilter({ clusterMac, vip: parseIPv4(VIP), electionKey, affinity: 'single', owned: { kind: 'buckets', pass } });
    const records = Buffer.alloc((program.length / 4) * 8);
    for (let k = 0; k < program.length / 4; k++) {
      records.writeUInt16LE(program[k * 4]!, k * 8);
      records.writeUInt8(program[k * 4 + 1]!, k * 8 + 2);
      records.writeUInt8(program[k * 4 + 2]!, k * 8 + 3);
      records.writeUInt32LE(program[k * 4 + 3]!, k * 8 + 4);
    }
    const file = join(dir, `bucket-filter-${lab.lab.prefix}-${node}.bin`);
    writeFileSync(file, records);
    return file;
  });
}

async function referenceCounters(child: LabProcess): Promise<ReferenceCounters> {
  const lines = (): string[] => tail(child.logFile, 1000).split('\n').filter((l) => l.startsWith('{'));
  const before = lines().length;
  child.kill('SIGUSR1');
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    const now = lines();
    if (now.length > before) return JSON.parse(now[now.length - 1]!) as ReferenceCounters;
    await sleep(20);
  }
  throw new Error(`throughput: the reference on ${child.host} did not print its counters:\n${tail(child.logFile)}`);
}

async function runReference(lab: ClusterLab, binary: string, frameBytes: number, seconds: number, rep: number, filters?: string[], rate = 0): Promise<ThroughputRun> {
  const mac = formatMac(clusterMacUnicast(parseIPv4(VIP)));
  const children: LabProcess[] = lab.nodes.map((node, i) =>
    lab.lab.spawn(node, [...pin(NODE_CPUS), binary, 'eth0', 'ref0', mac, VIP, String(lab.nodes.length), String(i), ...(filters ? [filters[i]!] : [])], {
      logName: 'tpacket-tap',
      // lnlb's default ring (v2: each frame at once, moderated on a busy wire); the reference's
      // v3 ring would batch an evenly paced stream by its 1 ms block timer and pay no wake-ups.
      env: { ...process.env, TPACKET_TAP_RING: REFERENCE_RING },
    }),
  );
  try {
    await Promise.all(children.map((child) => lab.lab.waitForLog(child, /^ready$/, 10_000)));
    const pids = children.map((child) => child.pid!);
    await flood(lab, frameBytes, WARMUP_SECONDS);
    await settle(pids);
    const before = await Promise.all(children.map((child) => referenceCounters(child)));
    const cpuBefore = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
    const machineBefore = await machineBusySeconds();
    const f = await flood(lab, frameBytes, seconds, rate);
    await settle(pids);
    const machine = (await machineBusySeconds()) - machineBefore;
    const cpuAfter = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
    const after = await Promise.all(children.map((child) => referenceCounters(child)));
    const nodes = children.map((child, i): NodeSample => {
      const b = before[i]!;
      const a = after[i]!;
      return {
        node: child.host,
        seen: a.seen - b.seen,
        accepted: a.written - b.written,
        kernelDrops: a.kernelDrops - b.kernelDrops,
        dropped: { writeErrors: a.writeErrors - b.writeErrors },
        cpuSeconds: cpuAfter[i]! - cpuBefore[i]!,
        resets: 0,
      };
    });
    return finish(filters ? 'reference-filtered' : 'reference', filters !== undefined, 0, frameBytes, rate, rep, f, nodes, machine);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const exited = await Promise.all(children.map((child) => waitExit(child, 5000)));
    for (const [i, child] of children.entries()) if (!exited[i]) child.kill('SIGKILL');
    await Promise.all(children.map((child) => waitExit(child, 2000)));
  }
}

interface LnlbCounters {
  seen: number;
  accepted: number;
  kernelDrops: number;
  dropped: Record<string, number>;
  resets: number;
  /** Frames read but not yet decided (in an actor's ring), plus the ARP frames answered: seen − accepted − Σ dropped. */
  undecided: number;
  /**
   * The data socket's filter passes this node's share (lnlbctl status: kernel filter): the bucket
   * filter, or on a node of one the plain filter because it owns every bucket.
   */
  bucketFilter: boolean;
}

const EVERY_BUCKET = FILTER_WHY_TEXT[FilterWhy.everyBucket];

async function lnlbCounters(lab: ClusterLab, node: string): Promise<LnlbCounters> {
  const st = (await lab.status(node)).interfaces[0]!;
  const c = st.counters;
  // A node of one carries the plain filter because it owns every bucket. Its status can still give
  // the reason it started with (the dispatcher writes the reason only when it swaps a program, and
  // the plain one never changes there), so the bucket table says it here.
  const ownsEvery = st.buckets !== undefined && st.buckets.agreed && st.buckets.owned === BUCKET_COUNT && st.buckets.pending === 0 && c.kernelFilter?.passBuckets === BUCKET_COUNT;
  const dropped = Object.values(c.framesDropped).reduce((a, b) => a + b, 0);
  return {
    seen: c.framesSeen,
    accepted: c.framesAccepted,
    kernelDrops: c.kernelDrops,
    dropped: c.framesDropped,
    resets: c.resets,
    undecided: c.framesSeen - c.framesAccepted - dropped,
    bucketFilter: c.kernelFilter?.program === 'buckets' || c.kernelFilter?.why === EVERY_BUCKET || ownsEvery,
  };
}

/** The counters once every frame read has been decided (idle CPUs alone do not prove that no frame waits for an actor), at most `maxMs` later. */
async function lnlbSettled(lab: ClusterLab, before: LnlbCounters[], maxMs = 3000): Promise<LnlbCounters[]> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const now = await Promise.all(lab.nodes.map((node) => lnlbCounters(lab, node)));
    if (now.every((c, i) => c.undecided <= before[i]!.undecided) || performance.now() > deadline) return now;
    await sleep(200);
  }
}

/** One flood through running daemons; counters and CPU are deltas over the flood. */
async function runLnlb(lab: ClusterLab, workers: number, frameBytes: number, seconds: number, rep: number, rate = 0): Promise<ThroughputRun> {
  const pids = lab.nodes.map((node) => lab.daemon(node)!.pid!);
  const before = await Promise.all(lab.nodes.map((node) => lnlbCounters(lab, node)));
  const cpuBefore = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const machineBefore = await machineBusySeconds();
  const f = await flood(lab, frameBytes, seconds, rate);
  await settle(pids);
  const machine = (await machineBusySeconds()) - machineBefore;
  const after = await lnlbSettled(lab, before);
  const cpuAfter = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const nodes = lab.nodes.map((node, i): NodeSample => {
    const b = before[i]!;
    const a = after[i]!;
    const dropped: Record<string, number> = {};
    for (const [reason, n] of Object.entries(a.dropped)) {
      const delta = n - (b.dropped[reason] ?? 0);
      if (delta !== 0) dropped[reason] = delta;
    }
    return {
      node,
      seen: a.seen - b.seen,
      accepted: a.accepted - b.accepted,
      kernelDrops: a.kernelDrops - b.kernelDrops,
      dropped,
      cpuSeconds: cpuAfter[i]! - cpuBefore[i]!,
      resets: a.resets - b.resets,
    };
  });
  // Filtered only if every node's filter held its buckets from before the flood to after it.
  const filtered = [...before, ...after].every((c) => c.bucketFilter);
  return finish('lnlb', filtered, workers, frameBytes, rate, rep, f, nodes, machine);
}

/**
 * The daemon's own defaults for failure detection, not the lab's fast ones (200 ms / 1 s): with
 * three nodes and the flood sharing a core, a control thread can be starved past a second, and
 * a false death in the middle of a throughput run measures the failover, not the datapath.
 */
const DAEMON_TIMING = ['--heartbeat-ms', '1000', '--dead-after-ms', '5000'];
/**
 * --election bucket: each daemon's data socket carries the bucket filter (the kernel keeps its
 * share, as for reference-filtered); fixed equal weights, so the shares are the reference's
 * (341 or 342 buckets each) and no load-average weight change widens a filter mid-run.
 */
const LNLB_ELECTION = ['--election', 'bucket', '--weight-mode', 'fixed'];

/** Until every daemon's kernel filter passes only its buckets (at most `maxMs`). */
async function bucketFiltersOn(lab: ClusterLab, maxMs = 15_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const all = await Promise.all(lab.nodes.map((node) => lnlbCounters(lab, node)));
    if (all.every((c) => c.bucketFilter)) return;
    if (performance.now() > deadline) throw new Error('throughput: the daemons\' kernel filters did not take their buckets (lnlbctl status: kernel filter)');
    await sleep(200);
  }
}

async function startLnlb(lab: ClusterLab, workers: number): Promise<void> {
  for (const node of lab.nodes) lab.startDaemon(node, [...DAEMON_TIMING, ...LNLB_ELECTION, '--workers', String(workers), '--log-level', 'warn']);
  await lab.waitConverged(lab.nodes, 30_000);
  await bucketFiltersOn(lab);
  // Every thread of each daemon (-a), as the reference is pinned from its start.
  for (const node of lab.nodes) {
    if (!PINNED) break;
    const result = await run('taskset', ['-a', '-p', '-c', NODE_CPUS, String(lab.daemon(node)!.pid!)]);
    if (result.code !== 0) throw new Error(`throughput: taskset failed on lnlbd of ${node}: ${result.stderr.trim()}`);
  }
  await flood(lab, 64, WARMUP_SECONDS);
  await settle(lab.nodes.map((node) => lab.daemon(node)!.pid!));
}

async function stopLnlb(lab: ClusterLab): Promise<void> {
  for (const node of lab.nodes) {
    const child = lab.daemon(node);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) await lab.killDaemon(node, 'SIGTERM');
  }
}

// ---------------------------------------------------------------------------------------
// Report

/**
 * Where the nodes dropped frames in the worst run, summed over the nodes: frames a node never read
 * (its kernel ring was full), then the contender's own drops by reason. A node drops frames it
 * does not own too, so these add up to more than the frames lost.
 */
function dropsAtNodes(r: ThroughputRun): string {
  const out = new Map<string, number>([['ring', r.unseen]]);
  for (const n of r.nodes) {
    for (const [reason, count] of Object.entries(n.dropped)) if (!NOT_LOST.has(reason)) out.set(reason, (out.get(reason) ?? 0) + count);
  }
  out.set('self-resets', r.nodes.reduce((a, n) => a + n.resets, 0));
  return [...out].filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmt(n)}`).join(', ');
}

function describeLoss(runs: ThroughputRun[]): string {
  const worst = runs.reduce((a, b) => (b.lost + b.duplicated > a.lost + a.duplicated ? b : a), runs[0]!);
  const duplicated = Math.max(...runs.map((r) => r.duplicated));
  const where = [dropsAtNodes(worst), duplicated > 0 ? `≥ ${fmt(duplicated)} delivered twice` : ''].filter((x) => x !== '').join('; ');
  const lost = fmtSpread(spread(runs.map((r) => r.lost)));
  return where === '' ? lost : `${lost} [${where}]`;
}

/** What the rows measure, each said once below the table. */
const NOTE = {
  offered:
    "CPU µs per node per frame offered (the N nodes' user + system CPU ÷ N ÷ the frames sent), median (min–max) over the repetitions",
  machine: "the whole machine's busy CPU (the generator, the kernel's delivery and filters, the nodes) per frame offered, µs; for the C reference: with the bucket filter, ref: without (at N = 1 without only); for lnlb: ref: the C reference with the same filter",
  loss: 'frames lost: sent − Σ accepted into the TAPs, median (min–max); in brackets, where the nodes dropped frames in the worst run (ring: never read, the kernel ring was full; then the drops by reason; a node drops the frames it does not own too) and the frames delivered twice',
  offeredRate: "frames a second the generator offered while lnlb ran; ref: while the C reference without a filter ran (the rate differs with N: the generator's CPU also delivers to every node's ring)",
  curve: 'what one node of N pays per frame offered, as a fraction of what a node of one pays (medians), lnlb at the default --workers; ref: the same for the C reference with the bucket filter, each against its own N = 1 (in brackets: the C reference without a filter); the ideal is 1/N',
  cpuSeen: "the user + system CPU of the node processes per frame they read, µs; ref: the C reference's",
} as const;

function rowsFor(n: number, frameBytes: number, workers: number, lnlb: ThroughputRun[], reference: ThroughputRun[]): BenchRow[] {
  const med = (runs: ThroughputRun[], f: (r: ThroughputRun) => number): Spread => spread(runs.map(f));
  const seenL = med(lnlb, (r) => r.seenPerNodePerSecond);
  const seenR = med(reference, (r) => r.seenPerNodePerSecond);
  const offeredL = med(lnlb, (r) => r.sent / r.seconds);
  const offeredR = med(reference, (r) => r.sent / r.seconds);
  const cpuL = med(lnlb, (r) => r.cpuMicrosPerFrame);
  const cpuR = med(reference, (r) => r.cpuMicrosPerFrame);
  const referenceLost = reference.some((r) => r.lost > 0);
  const lnlbLost = lnlb.some((r) => r.lost > 0 || r.duplicated > 0);
  const filtered = reference.some((r) => r.filtered);
  return [
    {
      figure: `${frameBytes} B, N = ${n}, ${workers} worker(s): frames/s seen`,
      note: `frames a second each node read (offered: ${fmt(offeredL.median)} to lnlb, ${fmt(offeredR.median)} to the C reference); ref: the C reference that sees the same frames${filtered ? ': both with the bucket filter' : ', without a filter'}`,
      lnlb: fmtSpread(seenL),
      reference: fmtSpread(seenR),
      ratio: ratio(seenL.median, seenR.median),
      goal: '',
    },
    {
      figure: '  frames lost',
      note: `${NOTE.loss}. The goal is not judged when the C reference loses frames too: the load is then past what the machine carries`,
      lnlb: describeLoss(lnlb),
      reference: describeLoss(reference),
      ratio: '',
      goal: 'none while the C ref loses none',
      // Undefined when the reference itself loses frames: the load is past what the machine carries.
      ...(referenceLost ? {} : { met: !lnlbLost }),
    },
    {
      figure: '  CPU µs per frame seen',
      note: NOTE.cpuSeen,
      lnlb: fmtSpread(cpuL, 2),
      reference: fmtSpread(cpuR, 2),
      ratio: ratio(cpuL.median, cpuR.median),
      goal: `≤ ${CPU_GOAL}× the C ref`,
      met: cpuL.median <= CPU_GOAL * cpuR.median,
    },
  ];
}

/**
 * CPU of one node per frame offered to the cluster (the N nodes' CPU over N): what filtering in
 * the kernel changes. Without a filter every node reads every frame and this stays about what a
 * node of one pays; with it each node reads its share and pays about 1/N of that.
 */
function cpuPerNodePerOffered(r: ThroughputRun): number {
  return r.cpuMicrosPerNodePerOffered;
}

/** The reference that carries what lnlb's data socket carries at N: on a node of one, which owns every bucket, the plain filter. */
function filteredReference(n: number): Contender {
  return n === 1 ? 'reference' : 'reference-filtered';
}

/** lnlb's rows name it, and say when it ran without the bucket filter (it was not on every node). */
function lnlbName(workers: number, runs: ThroughputRun[]): string {
  const unfiltered = runs.length === 0 || !runs.every((r) => r.filtered);
  return `lnlb, ${workers} worker(s)${unfiltered ? ' UNFILTERED' : ''}`;
}

/**
 * Issue 14's figures at one N: CPU per node per frame offered, lnlb beside the C reference without
 * a filter and with the bucket filter (the kernel drops the frames of the other nodes' buckets).
 * At N = 1 there is no other node: the reference with the same filter as lnlb is the plain one.
 */
function offeredRows(label: string, n: number, workers: number[], runs: ThroughputRun[], machineRow = true): BenchRow[] {
  const of = (contender: Contender): ThroughputRun[] => runs.filter((r) => r.contender === contender);
  const cpu = (rs: ThroughputRun[]): Spread => spread(rs.map(cpuPerNodePerOffered));
  const machine = (rs: ThroughputRun[]): Spread => spread(rs.map((r) => r.machineMicrosPerOffered));
  // The offered rate differs with N (the generator's CPU also delivers to every node's ring), and a node's cost per frame with its batches.
  const offered = (rs: ThroughputRun[]): string => fmt(spread(rs.map((r) => r.sent / r.seconds)).median);
  const plainRuns = of('reference');
  const filteredRuns = of(filteredReference(n));
  const plain = cpu(plainRuns);
  const filtered = cpu(filteredRuns);
  const machinePlain = machine(plainRuns);
  const machineFiltered = machine(filteredRuns);
  const lead = `${label}, N = ${n}`;
  const rows: BenchRow[] =
    n === 1
      ? [
          {
            figure: `${lead}: C ref, CPU µs`,
            note: `${NOTE.offered}. At N = 1 the C reference alone, without a filter: one node owns every bucket, the filter would pass every frame`,
            lnlb: '',
            reference: fmtSpread(plain, 3),
            ratio: '',
            goal: '',
          },
          ...(machineRow ? [{ figure: '  machine CPU µs', note: NOTE.machine, lnlb: '', reference: fmtSpread(machinePlain, 3), ratio: '', goal: '' }] : []),
          { figure: '  frames lost, C ref', note: NOTE.loss, lnlb: '', reference: describeLoss(plainRuns), ratio: '', goal: '' },
        ]
      : [
          {
            figure: `${lead}: C ref filtered, CPU µs`,
            note: `${NOTE.offered}: the C reference with the bucket filter (the kernel drops the frames of the other nodes' buckets); ref: the same without a filter`,
            lnlb: fmtSpread(filtered, 3),
            reference: fmtSpread(plain, 3),
            ratio: ratio(filtered.median, plain.median),
            goal: '',
          },
          ...(machineRow ? [{ figure: '  machine CPU µs, filtered', note: NOTE.machine, lnlb: fmtSpread(machineFiltered, 3), reference: fmtSpread(machinePlain, 3), ratio: ratio(machineFiltered.median, machinePlain.median), goal: '' }] : []),
          { figure: '  frames lost, C ref filtered', note: `${NOTE.loss}; the C reference with the bucket filter, ref: without`, lnlb: describeLoss(filteredRuns), reference: describeLoss(plainRuns), ratio: '', goal: '' },
        ];
  for (const w of workers) {
    const lnlbRuns = runs.filter((r) => r.contender === 'lnlb' && r.workers === w);
    const l = cpu(lnlbRuns);
    const name = `  ${lnlbName(w, lnlbRuns)}`;
    if (machineRow) {
      const m = machine(lnlbRuns);
      rows.push({ figure: `${name}: machine CPU µs`, note: NOTE.machine, lnlb: fmtSpread(m, 3), reference: fmtSpread(machineFiltered, 3), ratio: ratio(m.median, machineFiltered.median), goal: '' });
    }
    rows.push(
      {
        figure: `${name}, vs C unfiltered`,
        note: `${NOTE.offered}: lnlb with the bucket filter (at N = 1 it passes every frame: the node owns every bucket); ref: the C reference without a filter, which reads every frame`,
        lnlb: fmtSpread(l, 3),
        reference: fmtSpread(plain, 3),
        ratio: ratio(l.median, plain.median),
        goal: '≤ 1.0×',
        met: l.median <= plain.median,
      },
      {
        figure: `${name}, vs C filtered`,
        note: `${NOTE.offered}: lnlb with the bucket filter; ref: the C reference with the same filter (at N = 1 the plain one)`,
        lnlb: fmtSpread(l, 3),
        reference: fmtSpread(filtered, 3),
        ratio: ratio(l.median, filtered.median),
        goal: '≤ 1.5×',
        met: l.median <= 1.5 * filtered.median,
      },
      { figure: `${name}: frames/s offered`, note: NOTE.offeredRate, lnlb: offered(lnlbRuns), reference: offered(plainRuns), ratio: '', goal: '' },
    );
  }
  return rows;
}

/**
 * The 1/N curve: what one node of N pays per frame offered, as a fraction of what the node of one
 * pays (medians), for lnlb with `workers` and for the C reference with the bucket filter (each
 * against its own N = 1); the reference without a filter shows what a node pays when it reads
 * every frame.
 */
function curveRows(label: string, clusterSizes: number[], workers: number, runs: ThroughputRun[]): BenchRow[] {
  const median = (contender: Contender, n: number): number =>
    spread(runs.filter((r) => r.contender === contender && r.clusterSize === n && (contender !== 'lnlb' || r.workers === workers)).map(cpuPerNodePerOffered)).median;
  const lnlbOne = median('lnlb', 1);
  const referenceOne = median('reference', 1);
  return clusterSizes
    .filter((n) => n > 1)
    .map((n): BenchRow => {
      const l = median('lnlb', n) / lnlbOne;
      const r = median('reference-filtered', n) / referenceOne;
      return {
        figure: `${label}: N = ${n} ÷ N = 1 (ideal ${fmt(1 / n, 2)})`,
        note: NOTE.curve,
        lnlb: fmt(l, 2),
        reference: `${fmt(r, 2)} (${fmt(median('reference', n) / referenceOne, 2)})`,
        ratio: ratio(l, r),
        goal: '',
      };
    });
}

/** Medians of CPU per node per frame offered, µs, by contender (lnlb by its workers). */
function medians(runs: ThroughputRun[]): Record<string, number> {
  const byName = new Map<string, number[]>();
  for (const r of runs) {
    const name = r.contender === 'lnlb' ? `lnlb ${r.workers} worker(s)` : r.contender;
    byName.set(name, [...(byName.get(name) ?? []), r.cpuMicrosPerNodePerOffered]);
  }
  return Object.fromEntries([...byName].map(([name, samples]) => [name, spread(samples).median]));
}

/** What each contender's medians are called in the summary, and on a chart. */
const CONTENDER_NAMES: Record<string, string> = {
  reference: 'C reference, no filter',
  'reference-filtered': 'C reference, bucket filter',
};

/**
 * One chart per case (flood of 64 B, of 1500 B, paced): CPU per node per frame offered against
 * N, a line per contender, and the ideal (lnlb's node of one ÷ N) beside them.
 */
export function throughputCharts(summary: Record<string, Record<string, Record<string, number>>>): { name: string; svg: string }[] {
  return Object.entries(summary).map(([label, byN]) => {
    const sizes = Object.keys(byN).map((k) => Number(k.replace('N=', '')));
    const contenders = [...new Set(Object.values(byN).flatMap((m) => Object.keys(m)))];
    const series = contenders.map((name) => ({ name: CONTENDER_NAMES[name] ?? name, points: sizes.map((n) => ({ x: n, y: byN[`N=${n}`]?.[name] ?? Number.NaN })) }));
    const single = byN['N=1']?.['lnlb 1 worker(s)'];
    if (single !== undefined) series.push({ name: 'ideal: lnlb at N = 1 ÷ N', points: sizes.map((n) => ({ x: n, y: single / n })) });
    return {
      name: label.startsWith('paced') ? 'throughput-paced' : `throughput-${label.replace(/\D+/g, '')}b`,
      svg: lineChartSvg({ title: `${label}: CPU per node per frame offered`, xLabel: 'nodes in the cluster (N)', yLabel: 'µs of CPU per node per frame offered', series }),
    };
  });
}

// ---------------------------------------------------------------------------------------

/**
 * Floods clusters of 1, 2 and 3 nodes (--quick: 1 and 3) with 64 B and 1500 B frames and paces
 * 64 B frames evenly, for the C reference without and with the bucket filter and for lnlb (at
 * N = 3 with 1, 2 and 4 workers, else 2; --quick: 2), each configuration repeated (3 times;
 * --quick: once). The labs of every N stand side by side, and each repetition goes through every
 * N in turn, so the 1/N curve compares runs of the same minutes.
 * Throws when it cannot run (not root, no C compiler, lnlb not built); never on a slow number.
 */
export async function benchThroughput(o: BenchOptions): Promise<BenchResult> {
  if (process.getuid?.() !== 0) throw new Error('throughput: builds network namespaces and needs root (sudo npm run bench)');
  const cfg = config(o.quick);
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-ref-'));
  const runs: ThroughputRun[] = [];
  const labs = new Map<number, ClusterLab>();
  try {
    const binary = await compileReference(dir);
    if (PINNED && (await run('taskset', ['-c', '0', 'true'])).code === 'ENOENT') throw new Error('throughput: taskset not found: install util-linux');
    for (const n of cfg.clusterSizes) labs.set(n, await ClusterLab.create({ nodes: n, clientAddresses: 1 }));
    const filters = new Map<number, string[]>();
    for (let rep = 1; rep <= cfg.reps; rep++) {
      const of = `run ${rep}/${cfg.reps}`;
      for (const [n, lab] of labs) {
        // A node of one owns every bucket: lnlb carries the plain filter, and so does the reference.
        if (n > 1 && !filters.has(n)) filters.set(n, writeBucketFilters(lab, dir));
        const filter = filters.get(n);
        const withFilter = filter === undefined ? '' : ', with and without the bucket filter';
        for (const frameBytes of cfg.frameSizes) {
          o.progress(`throughput: N = ${n}, C reference${withFilter}, ${frameBytes} B, ${of}`);
          runs.push(await runReference(lab, binary, frameBytes, cfg.seconds, rep));
          if (filter !== undefined) runs.push(await runReference(lab, binary, frameBytes, cfg.seconds, rep, filter));
        }
        o.progress(`throughput: N = ${n}, C reference${withFilter}, paced at ${PACED_RATE} frames/s, ${of}`);
        runs.push(await runReference(lab, binary, 64, cfg.seconds, rep, undefined, PACED_RATE));
        if (filter !== undefined) runs.push(await runReference(lab, binary, 64, cfg.seconds, rep, filter, PACED_RATE));
        for (const workers of workersAt(cfg, n)) {
          o.progress(`throughput: N = ${n}, lnlb, ${workers} worker(s), ${cfg.frameSizes.join(' and ')} B and paced, ${of}`);
          await startLnlb(lab, workers);
          try {
            for (const frameBytes of cfg.frameSizes) runs.push(await runLnlb(lab, workers, frameBytes, cfg.seconds, rep));
            runs.push(await runLnlb(lab, workers, 64, cfg.seconds, rep, PACED_RATE));
          } finally {
            await stopLnlb(lab);
          }
        }
      }
    }
  } finally {
    for (const lab of labs.values()) await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }

  const rows: BenchRow[] = [];
  const summary: Record<string, Record<string, Record<string, number>>> = {};
  const largest = Math.max(...cfg.clusterSizes);
  const cases: { label: string; runs: ThroughputRun[]; machineRow: boolean }[] = [
    ...cfg.frameSizes.map((frameBytes) => ({ label: `${frameBytes} B`, runs: runs.filter((r) => r.rate === 0 && r.frameBytes === frameBytes), machineRow: true })),
    // Not the whole machine here: the paced generator spins a core between its frames.
    { label: 'paced 64 B', runs: runs.filter((r) => r.rate > 0), machineRow: false },
  ];
  for (const c of cases) {
    for (const n of cfg.clusterSizes) rows.push(...offeredRows(c.label, n, workersAt(cfg, n), c.runs.filter((r) => r.clusterSize === n), c.machineRow));
    rows.push(...curveRows(c.label, cfg.clusterSizes, cfg.curveWorkers, c.runs));
    summary[c.label] = Object.fromEntries(cfg.clusterSizes.map((n) => [`N=${n}`, medians(c.runs.filter((r) => r.clusterSize === n))]));
  }
  // Per frame seen, at the largest N, against the reference that sees the same frames: with the filter when lnlb had it.
  const floods = runs.filter((r) => r.rate === 0 && r.clusterSize === largest);
  for (const frameBytes of cfg.frameSizes) {
    for (const workers of cfg.workers) {
      const lnlb = floods.filter((r) => r.contender === 'lnlb' && r.workers === workers && r.frameBytes === frameBytes);
      const same = lnlb.length > 0 && lnlb.every((r) => r.filtered) ? filteredReference(largest) : 'reference';
      const reference = floods.filter((r) => r.contender === same && r.frameBytes === frameBytes);
      rows.push(...rowsFor(largest, frameBytes, workers, lnlb, reference));
    }
  }
  const workers = Object.fromEntries(cfg.clusterSizes.map((n) => [n, workersAt(cfg, n)]));
  return { rows, charts: throughputCharts(summary), json: { ...cfg, workersAt: workers, cpuMicrosPerNodePerOffered: summary, paced: { rate: PACED_RATE, sources: PACED_SOURCES }, warmupSeconds: WARMUP_SECONDS, cpuGoal: CPU_GOAL, cpus: PINNED ? { generator: GENERATOR_CPUS, nodes: NODE_CPUS } : 'not pinned', runs } };
}
