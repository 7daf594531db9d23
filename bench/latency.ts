/**
 * Added latency: a 3-node cluster with lnlbd on every node and a UDP echo server on every node
 * (bound to the VIP and to the node's own address). From one client source address, N
 * sequential request/response pairs (a) to the VIP, through lnlb, and (b) to the address of the
 * node that owns that source, kernel only: the reference. Each client run warms up first (ARP,
 * lnlb's tracking entry). p50/p99/p99.9 of both, median (min–max) over the repeats, which
 * alternate the order of (a) and (b).
 */

import { fileURLToPath } from 'node:url';
import { ClusterLab, VIP } from '../lab/cluster.js';
import { fmt, fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type BenchRow, type Spread } from './report.js';

const ECHO = fileURLToPath(new URL('./udp-echo.js', import.meta.url));
const RTT = fileURLToPath(new URL('./udp-rtt.js', import.meta.url));
const PORT = 7007;
const PAYLOAD_BYTES = 64;
const WARMUP = 500;
/** A request unanswered this long counts as lost (and the next one leaves). */
const LOST_AFTER_MS = 200;

/** One client run, as udp-rtt.ts prints it (µs). */
export interface RttRun {
  count: number;
  lost: number;
  wrongSource: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
}

export interface LatencyJson {
  requests: number;
  repeats: number;
  payloadBytes: number;
  source: string;
  owner: string;
  ownerIp: string;
  /** Through lnlb, to the VIP. */
  vip: RttRun[];
  /** To the owner's own address: kernel only. */
  kernel: RttRun[];
  /** The same with --workers 2 (a hand-off to an actor thread per frame), each with its own kernel runs. */
  actorThreads?: { owner: string; vip: RttRun[]; kernel: RttRun[] };
}

export async function benchLatency(o: BenchOptions): Promise<BenchResult> {
  const requests = o.quick ? 2_000 : 20_000;
  const repeats = o.quick ? 1 : 3;
  o.progress(`latency: 3-node cluster, ${repeats} × ${fmt(requests)} UDP request/response pairs via the VIP and via the node's own address…`);
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 1 });
  try {
    /** Daemons started with `extra`, echo servers on every node, then the alternated runs; everything stopped after. */
    const measure = async (extra: string[], label: string): Promise<{ owner: string; ownerIp: string; vip: RttRun[]; kernel: RttRun[] }> => {
      for (const node of lab.nodes) lab.startDaemon(node, ['--log-level', 'warn', ...extra]);
      await lab.waitConverged(lab.nodes, 20_000);
      const servers = await Promise.all(
        lab.nodes.map(async (node) => {
          const argv = [process.execPath, ECHO, '--name', node, '--port', String(PORT), '--host', VIP, '--host', lab.nodeIp(node)];
          const server = lab.lab.spawn(node, argv, { logName: 'udp-echo' });
          await lab.lab.waitForLog(server, /^listening on /, 30_000);
          return server;
        }),
      );
      try {
        const who = await lab.lab.exec('client', [process.execPath, RTT, '--source', source, '--target', VIP, '--port', String(PORT), '--who']);
        const owner = who.stdout.trim();
        if (who.code !== 0 || !lab.nodes.includes(owner)) {
          throw new Error(`latency: no node answered "who" on the VIP from ${source}: ${who.stderr.trim() || who.stdout.trim()}\n${lab.logTails(10)}`);
        }
        const ownerIp = lab.nodeIp(owner);
        o.progress(`latency${label}: ${source} is owned by ${owner} (${ownerIp})`);
        const run = async (target: string): Promise<RttRun> => {
          const argv = [process.execPath, RTT, '--source', source, '--target', target, '--port', String(PORT)];
          argv.push('--count', String(requests), '--warmup', String(WARMUP), '--size', String(PAYLOAD_BYTES), '--timeout-ms', String(LOST_AFTER_MS));
          const result = await lab.lab.exec('client', argv, { timeoutMs: 300_000 });
          if (result.code !== 0) throw new Error(`latency: udp-rtt to ${target} failed (exit ${result.code}): ${result.stderr.trim()}`);
          return JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as RttRun;
        };
        const vip: RttRun[] = [];
        const kernel: RttRun[] = [];
        for (let r = 0; r < repeats; r++) {
          // Alternate which path goes first, so neither always runs on a warmer (or busier) machine.
          for (const path of r % 2 === 0 ? (['vip', 'kernel'] as const) : (['kernel', 'vip'] as const)) {
            const result = await run(path === 'vip' ? VIP : ownerIp);
            (path === 'vip' ? vip : kernel).push(result);
            o.progress(`  repeat ${r + 1}${label}, ${path === 'vip' ? 'VIP   ' : 'kernel'}: p50 ${fmt(result.p50Us, 1)} µs, p99 ${fmt(result.p99Us, 1)} µs, p99.9 ${fmt(result.p999Us, 1)} µs, lost ${result.lost}`);
          }
        }
        return { owner, ownerIp, vip, kernel };
      } finally {
        for (const server of servers) server.kill('SIGTERM');
        for (const node of lab.nodes) await lab.killDaemon(node, 'SIGTERM');
      }
    };
    const source = lab.clientIps[0]!;
    // The daemon's default (--workers 1: the dispatcher decides and writes each frame itself),
    // then with actor threads (each frame handed from the dispatcher to an actor thread).
    const { owner, ownerIp, vip, kernel } = await measure([], '');
    const threads = await measure(['--workers', '2'], ' (--workers 2)');
    const json: LatencyJson = { requests, repeats, payloadBytes: PAYLOAD_BYTES, source, owner, ownerIp, vip, kernel, actorThreads: { owner: threads.owner, vip: threads.vip, kernel: threads.kernel } };
    return { rows: latencyRows(json), json };
  } finally {
    await lab.cleanup();
  }
}

function latencyRows(j: LatencyJson): BenchRow[] {
  const of = (runs: RttRun[], key: 'p50Us' | 'p99Us' | 'p999Us'): Spread => spread(runs.map((run) => run[key]));
  const row = (name: string, key: 'p50Us' | 'p99Us' | 'p999Us', goal: boolean): BenchRow => {
    const a = of(j.vip, key);
    const b = of(j.kernel, key);
    return {
      figure: `UDP ${j.payloadBytes} B round trip, ${name} µs`,
      note: `UDP requests of ${j.payloadBytes} B from one client to the VIP and their answers, the default --workers 1, µs: ${fmt(j.requests)} requests a repeat, median (min–max) of the repeats' percentiles; ref: the same requests to the owner node's own address (the kernel alone), alternating with them. The goal is judged on p99 (not judged when a path had no answers)`,
      lnlb: fmtSpread(a, 1),
      reference: fmtSpread(b, 1),
      ratio: ratio(a.median, b.median),
      goal: goal ? '≤ 1.5× the kernel path' : '',
      met: goal && Number.isFinite(a.median) && Number.isFinite(b.median) ? a.median <= 1.5 * b.median : undefined,
    };
  };
  const rows = [row('p50', 'p50Us', false), row('p99', 'p99Us', true), row('p99.9', 'p999Us', false)];
  const threads = j.actorThreads;
  if (threads !== undefined) {
    for (const [name, key] of [['p50', 'p50Us'], ['p99', 'p99Us']] as const) {
      const a = of(threads.vip, key);
      const b = of(threads.kernel, key);
      rows.push({
        figure: `  --workers 2: ${name} µs`,
        note: 'the same with --workers 2: each frame handed from the dispatcher to an actor thread; ref: the kernel path, measured beside it',
        lnlb: fmtSpread(a, 1),
        reference: fmtSpread(b, 1),
        ratio: ratio(a.median, b.median),
        goal: '',
      });
    }
  }
  const lost = (runs: RttRun[]): number => runs.reduce((n, run) => n + run.lost + run.wrongSource, 0);
  if (lost(j.vip) + lost(j.kernel) > 0) {
    rows.push({
      figure: '  lost or answered wrongly',
      note: `requests not answered, or answered from another address than the one asked, of ${fmt(j.requests * j.repeats)}; ref: the kernel path's`,
      lnlb: fmt(lost(j.vip)),
      reference: fmt(lost(j.kernel)),
      ratio: '',
      goal: '',
    });
  }
  return rows;
}
