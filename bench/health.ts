/**
 * Health checks: a 3-node cluster, each node checking its own HTTP service
 * (`--health-check http://VIP/`). Per setting (the defaults, interval 1000 ms / fall 3 / rise 2,
 * and a fast one, 100 ms / fall 2 / rise 2), `trials` times:
 *
 * - health failover: kill -9 the victim's service; when is every source it served answered by
 *   another node (curl, a new connection every ~20 ms: a refused one fails at once);
 * - health rejoin: start the service again; when does every node's view carry the victim with
 *   its weight (not the newcomer's draining weight: it takes new clients), from the daemons'
 *   own `view` log lines.
 *
 * The reference, in the same lab and run: the same victim taken out and back by the operator
 * (`lnlbctl stop`, `lnlbctl start`), which is the same LEAVE and rejoin without the detection.
 * Each trial asks with sources never used before (a source sticks to the node that first served
 * it, so a rejoined node gets new clients only).
 */

import { readFileSync } from 'node:fs';
import { ClusterLab, VIP } from '../lab/cluster.js';
import { waitExit, type LabProcess } from '../lab/netns.js';
import { fmt, ratio, spread, type BenchOptions, type BenchResult, type BenchRow, type Spread } from './report.js';

const DRAINING_WEIGHT = 65535;

export interface HealthSetting {
  intervalMs: number;
  fall: number;
  rise: number;
}

export interface HealthBenchResult {
  setting: HealthSetting;
  healthFailoverMs: Spread;
  healthRejoinMs: Spread;
  stopFailoverMs: Spread;
  startRejoinMs: Spread;
  /** Sources not answered by another node within the deadline, over all trials. */
  unanswered: number;
}

/** When every daemon's log first shows `mac` in its view with a real weight, after `sinceEpochMs`; NaN if one does not. */
function servingInEveryView(daemons: readonly LabProcess[], mac: string, sinceEpochMs: number): number {
  let last = 0;
  for (const d of daemons) {
    let found = Number.NaN;
    for (const line of readFileSync(d.logFile, 'utf8').split('\n')) {
      if (!line.includes('"event":"view"')) continue;
      const entry = JSON.parse(line) as { time?: string; nodes?: string[]; weights?: number[] };
      const at = Date.parse(entry.time ?? '');
      if (!(at >= sinceEpochMs)) continue;
      const i = entry.nodes?.indexOf(mac) ?? -1;
      if (i >= 0 && entry.weights?.[i] !== DRAINING_WEIGHT) {
        found = at;
        break;
      }
    }
    if (Number.isNaN(found)) return Number.NaN;
    last = Math.max(last, found);
  }
  return last - sinceEpochMs;
}

/** The time of `victim`'s first log line of `event` at or after `sinceEpochMs` (epoch ms); NaN if none. */
function eventTime(daemon: LabProcess, event: string, sinceEpochMs: number): number {
  for (const line of readFileSync(daemon.logFile, 'utf8').split('\n')) {
    if (!line.includes(`"event":"${event}"`)) continue;
    const at = Date.parse((JSON.parse(line) as { time?: string }).time ?? '');
    if (at >= sinceEpochMs) return at;
  }
  return Number.NaN;
}

export async function runHealth(setting: HealthSetting, trials: number, progress: (line: string) => void): Promise<HealthBenchResult> {
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 150 });
  const services = new Map<string, LabProcess>();
  const startService = async (node: string): Promise<void> => void services.set(node, await lab.startHttpServer(node, 80, '0.0.0.0'));
  const healthArgs = ['--health-check', `http://${VIP}/`, '--health-interval-ms', String(setting.intervalMs), '--health-fall', String(setting.fall), '--health-rise', String(setting.rise), '--log-level', 'info'];
  const daemons: LabProcess[] = [];
  const samples = { healthFailoverMs: [] as number[], healthRejoinMs: [] as number[], stopFailoverMs: [] as number[], startRejoinMs: [] as number[] };
  let unanswered = 0;
  try {
    for (const node of lab.nodes) await startService(node);
    for (const node of lab.nodes) daemons.push(lab.startDaemon(node, healthArgs));
    await lab.waitConverged(lab.nodes, 30_000);
    const block = Math.floor(lab.clientIps.length / (2 * trials));
    let next = 0;
    for (let i = 0; i < 2 * trials; i++) {
      const byOperator = i % 2 === 1;
      const victim = lab.nodes[Math.floor(i / 2) % lab.nodes.length]!;
      const others = lab.nodes.filter((n) => n !== victim);
      const fresh = lab.clientIps.slice(next, next + block);
      next += block;
      const survey = await lab.survey(fresh);
      const orphans = [...survey].filter(([, s]) => 'node' in s && s.node === victim).map(([source]) => source);
      if (orphans.length === 0) continue;
      const mac = lab.lab.host(victim).mac.toLowerCase();

      const outAt = performance.now();
      const outEpoch = Date.now();
      if (byOperator) {
        const r = await lab.ctl(victim, ['stop', 'nlb0']);
        if (r.code !== 0) throw new Error(`lnlbctl stop on ${victim}: ${r.stderr}`);
      } else {
        const service = services.get(victim)!;
        service.kill('SIGKILL');
        await waitExit(service, 5000);
      }
      const takeover = await lab.waitServedBy(orphans, others, outAt, 20_000);
      unanswered += takeover.unanswered.length;
      // lnlbctl itself takes a while to start: the operator's figure counts from the LEAVE the victim logged.
      const failoverMs = byOperator ? takeover.worstMs - (eventTime(lab.daemon(victim)!, 'left-cluster', outEpoch) - outEpoch) : takeover.worstMs;
      (byOperator ? samples.stopFailoverMs : samples.healthFailoverMs).push(failoverMs);

      if (!byOperator) await new Promise((resolve) => setTimeout(resolve, setting.intervalMs)); // out for a round at least
      const backAtEpoch = Date.now();
      if (byOperator) {
        const r = await lab.ctl(victim, ['start', 'nlb0']);
        if (r.code !== 0) throw new Error(`lnlbctl start on ${victim}: ${r.stderr}`);
      } else {
        await startService(victim); // resolves once it listens
      }
      // The operator's figure counts from the rejoin the victim logged, the health one from the service listening.
      const backEpoch = byOperator ? eventTime(lab.daemon(victim)!, 'rejoining', backAtEpoch) : Date.now();
      await lab.waitConverged(lab.nodes, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // the weight round after the listening period
      const rejoin = servingInEveryView(daemons, mac, backEpoch);
      (byOperator ? samples.startRejoinMs : samples.healthRejoinMs).push(rejoin);
      progress(
        `  health ${setting.intervalMs}/${setting.fall}/${setting.rise}, ${byOperator ? 'lnlbctl stop/start' : 'service killed/restarted'} on ${victim}: ${orphans.length} sources answered elsewhere after ${Math.round(failoverMs)} ms, serving again after ${Math.round(rejoin)} ms`,
      );
    }
  } finally {
    await lab.cleanup();
  }
  return {
    setting,
    healthFailoverMs: spread(samples.healthFailoverMs.filter(Number.isFinite)),
    healthRejoinMs: spread(samples.healthRejoinMs.filter(Number.isFinite)),
    stopFailoverMs: spread(samples.stopFailoverMs.filter(Number.isFinite)),
    startRejoinMs: spread(samples.startRejoinMs.filter(Number.isFinite)),
    unanswered,
  };
}

const medianWorst = (s: Spread): string => `${fmt(s.median)} / ${fmt(s.max)}`;

export async function benchHealth(o: BenchOptions): Promise<BenchResult> {
  const trials = o.quick ? 3 : 8;
  const settings: HealthSetting[] = [
    { intervalMs: 1000, fall: 3, rise: 2 },
    { intervalMs: 100, fall: 2, rise: 2 },
  ];
  const rows: BenchRow[] = [];
  const results: HealthBenchResult[] = [];
  for (const setting of settings) {
    const name = `interval ${setting.intervalMs} ms, fall ${setting.fall}, rise ${setting.rise}`;
    const short = `${setting.intervalMs}/${setting.fall}/${setting.rise}`;
    o.progress(`health: ${name}, ${trials} service kills and ${trials} lnlbctl stops in a 3-node cluster`);
    const r = await runHealth(setting, trials, o.progress);
    results.push(r);
    // Detection takes fall - 1 to fall intervals (the phase of the kill in the round), then the LEAVE path.
    const bound = setting.fall * setting.intervalMs + 300;
    rows.push(
      {
        figure: `failover ${short}: service killed, ms`,
        note: `a node's service killed in a 3-node cluster, ${trials} trials, health checks at ${name}: ms until every client of that node is answered by another, median / worst; ref: the same node taken out with lnlbctl stop, same lab. The goal: the check fails within fall × interval, then the LEAVE path (300 ms)`,
        lnlb: medianWorst(r.healthFailoverMs),
        reference: medianWorst(r.stopFailoverMs),
        ratio: ratio(r.healthFailoverMs.median, r.stopFailoverMs.median),
        goal: `worst ≤ ${fmt(bound)} ms, all answered`,
        met: r.healthFailoverMs.max <= bound && r.unanswered === 0,
      },
      {
        figure: `rejoin ${short}: service back, ms`,
        note: `the service back (listening again), health checks at ${name}: ms until the node serves in every node's view, median / worst; ref: the same after lnlbctl start`,
        lnlb: medianWorst(r.healthRejoinMs),
        reference: medianWorst(r.startRejoinMs),
        ratio: ratio(r.healthRejoinMs.median, r.startRejoinMs.median),
        goal: '',
      },
    );
  }
  return { rows, json: results };
}
