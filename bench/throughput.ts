/**
 * Datapath throughput (issue 4, item 1): a generator in the client namespace floods UDP frames
 * for the VIP through the bridge into a 3-node cluster, so every node sees every frame and
 * keeps its share. Measured per node: frames seen, frames accepted into the TAP, frames lost
 * (the kernel's ring drops, and lnlb's own drops by reason), and CPU per frame seen (user +
 * system time of the node's process over the flood, from /proc/<pid>/stat).
 *
 * Reference in the same run, on the same namespaces and the same offered load (the generator
 * at full speed for the same number of seconds): bench/ref/tpacket-tap.c, a small C program
 * with lnlb's socket setup (TPACKET_V3 ring, same filter, vnet headers) that keeps its share
 * by a plain hash of the source address and writes it into a TAP, compiled with `cc -O2`.
 *
 * "Lost" is counted end to end, the same way for both: frames sent minus frames accepted by
 * the three nodes together (each frame has exactly one owner), after the nodes have drained.
 * The counters then say where the loss happened.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ClusterLab, VIP } from '../src/lab/cluster.js';
import { tail, waitExit, type LabProcess } from '../src/lab/netns.js';
import { clusterMacUnicast, formatMac } from '../src/net/ethernet.js';
import { parseIPv4 } from '../src/net/ipv4.js';
import { cpuSeconds, fmt, fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type BenchRow, type Spread } from './report.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
// This file runs as dist/bench/throughput.js; the C source stays in the repository's bench/.
const REFERENCE_SOURCE = fileURLToPath(new URL('../../bench/ref/tpacket-tap.c', import.meta.url));
const NODES = 3;
/** lnlb's drop reasons that are not losses: frames another node owns, or frames not for the VIP at all. */
const NOT_LOST = new Set(['otherNode', 'notIPv4', 'notVip', 'notClusterMac', 'malformed']);
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

export type Contender = 'lnlb' | 'reference';

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
  /** lnlb's --workers; 0 for the reference. */
  workers: number;
  frameBytes: number;
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
}

interface Flood {
  sent: number;
  seconds: number;
}

interface Config {
  reps: number;
  seconds: number;
  frameSizes: number[];
  workers: number[];
}

function config(quick: boolean): Config {
  return quick ? { reps: 1, seconds: 1.5, frameSizes: [64, 1500], workers: [2] } : { reps: 3, seconds: 3, frameSizes: [64, 1500], workers: [1, 2, 4] };
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

async function flood(lab: ClusterLab, frameBytes: number, seconds: number): Promise<Flood> {
  const argv = [...pin(GENERATOR_CPUS), process.execPath, GENERATOR, '--seconds', String(seconds), '--bytes', String(frameBytes)];
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

function finish(contender: Contender, workers: number, frameBytes: number, rep: number, f: Flood, nodes: NodeSample[]): ThroughputRun {
  const seen = nodes.reduce((a, n) => a + n.seen, 0);
  const cpu = nodes.reduce((a, n) => a + n.cpuSeconds, 0);
  const delivered = nodes.reduce((a, n) => a + n.accepted, 0);
  return {
    contender,
    workers,
    frameBytes,
    rep,
    sent: f.sent,
    seconds: f.seconds,
    nodes,
    lost: Math.max(0, f.sent - delivered),
    duplicated: Math.max(0, delivered - f.sent),
    unseen: nodes.reduce((a, n) => a + Math.max(0, f.sent - n.seen), 0),
    seenPerNodePerSecond: seen / nodes.length / f.seconds,
    cpuMicrosPerFrame: seen > 0 ? (cpu / seen) * 1e6 : Number.NaN,
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

async function runReference(lab: ClusterLab, binary: string, frameBytes: number, seconds: number, rep: number): Promise<ThroughputRun> {
  const mac = formatMac(clusterMacUnicast(parseIPv4(VIP)));
  const children: LabProcess[] = lab.nodes.map((node, i) => lab.lab.spawn(node, [...pin(NODE_CPUS), binary, 'eth0', 'ref0', mac, VIP, String(NODES), String(i)], { logName: 'tpacket-tap' }));
  try {
    await Promise.all(children.map((child) => lab.lab.waitForLog(child, /^ready$/, 10_000)));
    const pids = children.map((child) => child.pid!);
    await flood(lab, frameBytes, WARMUP_SECONDS);
    await settle(pids);
    const before = await Promise.all(children.map((child) => referenceCounters(child)));
    const cpuBefore = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
    const f = await flood(lab, frameBytes, seconds);
    await settle(pids);
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
    return finish('reference', 0, frameBytes, rep, f, nodes);
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
}

async function lnlbCounters(lab: ClusterLab, node: string): Promise<LnlbCounters> {
  const c = (await lab.status(node)).interfaces[0]!.counters;
  const dropped = Object.values(c.framesDropped).reduce((a, b) => a + b, 0);
  return { seen: c.framesSeen, accepted: c.framesAccepted, kernelDrops: c.kernelDrops, dropped: c.framesDropped, resets: c.resets, undecided: c.framesSeen - c.framesAccepted - dropped };
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
async function runLnlb(lab: ClusterLab, workers: number, frameBytes: number, seconds: number, rep: number): Promise<ThroughputRun> {
  const pids = lab.nodes.map((node) => lab.daemon(node)!.pid!);
  const before = await Promise.all(lab.nodes.map((node) => lnlbCounters(lab, node)));
  const cpuBefore = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const f = await flood(lab, frameBytes, seconds);
  await settle(pids);
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
  return finish('lnlb', workers, frameBytes, rep, f, nodes);
}

/**
 * The daemon's own defaults for failure detection, not the lab's fast ones (200 ms / 1 s): with
 * three nodes and the flood sharing a core, a control thread can be starved past a second, and
 * a false death in the middle of a throughput run measures the failover, not the datapath.
 */
const DAEMON_TIMING = ['--heartbeat-ms', '1000', '--dead-after-ms', '5000'];

async function startLnlb(lab: ClusterLab, workers: number): Promise<void> {
  for (const node of lab.nodes) lab.startDaemon(node, [...DAEMON_TIMING, '--workers', String(workers), '--log-level', 'warn']);
  await lab.waitConverged(lab.nodes, 30_000);
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

function rowsFor(frameBytes: number, workers: number, lnlb: ThroughputRun[], reference: ThroughputRun[]): BenchRow[] {
  const med = (runs: ThroughputRun[], f: (r: ThroughputRun) => number): Spread => spread(runs.map(f));
  const seenL = med(lnlb, (r) => r.seenPerNodePerSecond);
  const seenR = med(reference, (r) => r.seenPerNodePerSecond);
  const offeredL = med(lnlb, (r) => r.sent / r.seconds);
  const offeredR = med(reference, (r) => r.sent / r.seconds);
  const cpuL = med(lnlb, (r) => r.cpuMicrosPerFrame);
  const cpuR = med(reference, (r) => r.cpuMicrosPerFrame);
  const referenceLost = reference.some((r) => r.lost > 0);
  const lnlbLost = lnlb.some((r) => r.lost > 0 || r.duplicated > 0);
  const label = `throughput ${frameBytes} B, ${workers} worker(s)`;
  return [
    {
      figure: `${label}: frames/s seen per node (offered ${fmt(offeredL.median)} vs ${fmt(offeredR.median)})`,
      lnlb: fmtSpread(seenL),
      reference: fmtSpread(seenR),
      ratio: ratio(seenL.median, seenR.median),
      goal: '',
    },
    {
      figure: `  frames lost (sent − Σ accepted into the TAPs) [drops at the nodes, worst run]`,
      lnlb: describeLoss(lnlb),
      reference: describeLoss(reference),
      ratio: '',
      goal: 'no frame lost by lnlb while the C reference loses none',
      // Undefined when the reference itself loses frames: the load is past what the machine carries.
      ...(referenceLost ? {} : { met: !lnlbLost }),
    },
    {
      figure: `  CPU per frame seen, µs (user + system of the node processes)`,
      lnlb: fmtSpread(cpuL, 2),
      reference: fmtSpread(cpuR, 2),
      ratio: ratio(cpuL.median, cpuR.median),
      goal: `≤ ${CPU_GOAL}× the reference's`,
      met: cpuL.median <= CPU_GOAL * cpuR.median,
    },
  ];
}

// ---------------------------------------------------------------------------------------

/**
 * Floods a 3-node cluster with 64 B and 1500 B frames, lnlb with 1, 2 and 4 workers and the C
 * reference, each configuration repeated (3 times; --quick: once, 2 workers).
 * Throws when it cannot run (not root, no C compiler, lnlb not built); never on a slow number.
 */
export async function benchThroughput(o: BenchOptions): Promise<BenchResult> {
  if (process.getuid?.() !== 0) throw new Error('throughput: builds network namespaces and needs root (sudo npm run bench)');
  const cfg = config(o.quick);
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-ref-'));
  const runs: ThroughputRun[] = [];
  try {
    const binary = await compileReference(dir);
    if (PINNED && (await run('taskset', ['-c', '0', 'true'])).code === 'ENOENT') throw new Error('throughput: taskset not found: install util-linux');
    const lab = await ClusterLab.create({ nodes: NODES, clientAddresses: 1 });
    try {
      for (let rep = 1; rep <= cfg.reps; rep++) {
        const of = `run ${rep}/${cfg.reps}`;
        for (const frameBytes of cfg.frameSizes) {
          o.progress(`throughput: C reference, ${frameBytes} B, ${of}`);
          runs.push(await runReference(lab, binary, frameBytes, cfg.seconds, rep));
        }
        for (const workers of cfg.workers) {
          o.progress(`throughput: lnlb, ${workers} worker(s), ${cfg.frameSizes.join(' and ')} B, ${of}`);
          await startLnlb(lab, workers);
          try {
            for (const frameBytes of cfg.frameSizes) runs.push(await runLnlb(lab, workers, frameBytes, cfg.seconds, rep));
          } finally {
            await stopLnlb(lab);
          }
        }
      }
    } finally {
      await lab.cleanup();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const rows: BenchRow[] = [];
  for (const frameBytes of cfg.frameSizes) {
    const reference = runs.filter((r) => r.contender === 'reference' && r.frameBytes === frameBytes);
    for (const workers of cfg.workers) {
      const lnlb = runs.filter((r) => r.contender === 'lnlb' && r.workers === workers && r.frameBytes === frameBytes);
      rows.push(...rowsFor(frameBytes, workers, lnlb, reference));
    }
  }
  return { rows, json: { nodes: NODES, ...cfg, warmupSeconds: WARMUP_SECONDS, cpuGoal: CPU_GOAL, cpus: PINNED ? { generator: GENERATOR_CPUS, nodes: NODE_CPUS } : 'not pinned', runs } };
}
