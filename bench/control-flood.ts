/**
 * Control flood: a keyed 3-node cluster at lnlbd's default timing (or LNLB_BENCH_FLOOD_TIMING) while a
 * host on the same LAN (the client namespace) floods forged control frames at the cluster MAC
 * as fast as its generator goes (control-forger.ts: wrong-key HEARTBEAT/LEAVE/JOIN from a
 * member's MAC and from random MACs, unsigned frames, garbage after a valid header, CONNTRACK
 * fragments claiming 65535 fragments).
 *
 *   switch ── node1..node3 (lnlbd --key-file, HTTP on the VIP)
 *          ── client: control-forger.ts (one core, nice -20) + a curl loop
 *
 * Phases, each `seconds` long, each followed by 3 death timeouts (deaths it caused show by
 * then) and the status of every node:
 *   reference  the forger into the LAN before any daemon runs: the rate it reaches here
 *   idle       the cluster alone: heartbeats received, RSS noise
 *   decoy      the same forger with another EtherType (0x88b6): the same load on the kernel
 *              and the CPUs, frames the control sockets' filters drop; what the machine's load
 *              alone does to the cluster
 *   forged     the forged LNLB frames
 *   again      the same flood again: memory that grows flood after flood is a leak; the first
 *              flood may grow V8's young generation once (allocation pressure), which stays
 *   strangers  only the kinds from random MACs (what a filter on members' MACs would stop)
 *   spoofed    only the kinds that carry node1's MAC (what no filter on MACs can stop)
 *   rate-N     the mixed flood paced at N frames/s, for each N of LADDER: where deaths begin
 * Measured per phase: frames/s sent, deaths and self-resets declared (all false: nobody is
 * killed), heartbeats received, curl clients answered, each daemon's RSS (before, peak, after)
 * and CPU, rejects by reason (lnlbctl status --json).
 */

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ClusterLab, VIP, type DaemonStatus } from '../lab/cluster.js';
import { resolveDaemonOptions } from '../src/main/options.js';
import { tail, type LabProcess } from '../lab/netns.js';
import { clusterMacUnicast, formatMac } from '../src/net/ethernet.js';
import { parseIPv4 } from '../src/net/ipv4.js';
import { cpuSeconds, fmt, ratio, rssBytes, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

const FORGER = fileURLToPath(new URL('./control-forger.js', import.meta.url));
/** The cluster's timing: lnlbd's defaults; LNLB_BENCH_FLOOD_TIMING=HB/DEAD (ms) measures another. */
const DEFAULTS = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' });
const [HEARTBEAT_MS, DEAD_AFTER_MS] = floodTiming(process.env.LNLB_BENCH_FLOOD_TIMING ?? `${DEFAULTS.heartbeatMs}/${DEFAULTS.deadAfterMs}`);
/** Set rates of the mixed flood, frames/s: where false deaths begin. */
const LADDER = [25_000, 50_000, 100_000, 200_000];
/** An EtherType no lnlb socket takes (IEEE 802 local experimental 2). */
const DECOY_ETHERTYPE = 0x88b6;
/** RSS growth during the second flood still taken for noise (the first may grow the heap's young generation once). */
const RSS_NOISE_BYTES = 8 * 2 ** 20;

function floodTiming(text: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[2]) <= Number(m[1])) throw new Error(`LNLB_BENCH_FLOOD_TIMING=${text}: expected HEARTBEAT_MS/DEAD_AFTER_MS, e.g. 100/500`);
  return [Number(m[1]), Number(m[2])];
}

interface ForgerRun {
  sent: number;
  seconds: number;
  byKind: Record<string, number>;
}

export interface PhaseResult {
  name: string;
  forger?: ForgerRun;
  rate: number;
  /** Deaths (missed heartbeats, restarted) and self-resets declared: all false. */
  falseDeaths: number;
  /** Heartbeats each node received from its two peers during the phase and the wait after it. */
  heartbeatsReceived: number[];
  curlOk: number;
  curlFailed: number;
  curlErrors: string[];
  rss: { node: string; before: number; peak: number; after: number }[];
  /** CPU seconds each daemon used during the phase and the wait after it (all its threads). */
  cpu: number[];
  /** The machine's CPU time during the phase, by kind, in % of all cores (/proc/stat). */
  machine: Record<string, number>;
  /** Wall seconds of the phase and the wait after it. */
  wallSeconds: number;
  /** Rejected frames by reason, summed over the nodes. */
  rejected: Record<string, number>;
  /** Frames each node's control thread rejected (forged frames it read). */
  read: number[];
  /** The longest late timer of each node's control thread so far (ms): how long it was not scheduled. */
  stallMaxMs: number[];
  /** The cluster converged (all three nodes, one view) within 10 s after the phase. */
  convergedAfter: boolean;
}

export interface ControlFloodResult {
  seconds: number;
  reference: ForgerRun;
  referenceRate: number;
  idle: PhaseResult;
  decoy: PhaseResult;
  forged: PhaseResult;
  /** The same flood again: memory that grows flood after flood is a leak, the first flood's growth may be warm-up. */
  again: PhaseResult;
  /** Only the kinds from random MACs (what a filter on members' MACs would keep out). */
  strangers: PhaseResult;
  /** Only the kinds that carry a member's MAC (what no MAC filter keeps out). */
  spoofed: PhaseResult;
  /** The mixed flood at set rates (frames/s), lowest first: where false deaths begin. */
  ladder: PhaseResult[];
  /** The daemons' node-died and reset log lines (the first 30). */
  deathLines: string[];
}

/** The forger's kinds that carry a member's MAC, and those from MACs nobody uses. */
const MEMBER_KINDS = ['hb-wrongkey-member', 'leave-wrongkey-member', 'unsigned-member', 'garbage-member'];
const STRANGER_KINDS = ['join-wrongkey-random', 'unsigned-random', 'conntrack-65535', 'conntrack-unsigned'];

function forgerArgv(seconds: number, memberMac: string, etherType?: number, kinds?: string[], rate?: number): string[] {
  // nice -20: on a real LAN the attacker has a machine of its own; here it shares two cores
  // with the three daemons, and must not be the one that yields.
  return [
    'nice', '-n', '-20', process.execPath, FORGER,
    '--seconds', String(seconds),
    '--member-mac', memberMac,
    '--cluster-mac', formatMac(clusterMacUnicast(parseIPv4(VIP))),
    '--cluster-ip', String(parseIPv4(VIP)),
    ...(etherType === undefined ? [] : ['--ethertype', String(etherType)]),
    ...(kinds === undefined ? [] : ['--kinds', kinds.join(',')]),
    ...(rate === undefined ? [] : ['--rate', String(rate)]),
  ];
}

const STAT_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** The first line of /proc/stat: the machine's CPU ticks by kind since boot. */
function machineTicks(): number[] {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  return line.trim().split(/\s+/).slice(1, 1 + STAT_FIELDS.length).map(Number);
}

function machineShare(before: number[], after: number[]): Record<string, number> {
  const d = after.map((x, i) => x - before[i]!);
  const total = d.reduce((a, b) => a + b, 0) || 1;
  return Object.fromEntries(STAT_FIELDS.map((k, i) => [k, Math.round((100 * d[i]!) / total)]));
}

async function forge(lab: ClusterLab, argv: string[], seconds: number): Promise<ForgerRun> {
  const run = await lab.lab.exec('client', argv, { timeoutMs: (seconds + 30) * 1000 });
  if (run.code !== 0) throw new Error(`control-forger: ${run.stderr.trim()}`);
  return JSON.parse(run.stdout) as ForgerRun;
}

function counters(s: DaemonStatus): { rejected: Record<string, number>; heartbeats: number; deaths: number } {
  const c = s.interfaces[0]!.counters;
  const deaths = Object.entries(c.deaths ?? {}).reduce((sum, [reason, n]) => sum + (reason === 'left' ? 0 : n), 0) + c.resets;
  return { rejected: { ...c.control.rejected }, heartbeats: c.control.received.HEARTBEAT ?? 0, deaths };
}

async function phase(lab: ClusterLab, daemons: LabProcess[], name: string, seconds: number, argv: string[] | undefined): Promise<PhaseResult> {
  const before = await Promise.all(lab.nodes.map((node) => lab.status(node)));
  const rssBefore = await Promise.all(daemons.map((d) => rssBytes(d.pid!)));
  const cpuBefore = await Promise.all(daemons.map((d) => cpuSeconds(d.pid!)));
  const machineBefore = machineTicks();
  const wallStart = performance.now();
  const peak = [...rssBefore];
  let running = true;
  const work = (argv === undefined ? sleep(seconds * 1000).then(() => undefined) : forge(lab, argv, seconds)).finally(() => {
    running = false;
  });
  const sampler = (async () => {
    while (running) {
      const now = await Promise.all(daemons.map((d) => rssBytes(d.pid!).catch(() => Number.NaN)));
      now.forEach((v, i) => {
        if (v > peak[i]!) peak[i] = v;
      });
      await sleep(250);
    }
  })();
  let curlOk = 0;
  let curlFailed = 0;
  const curlErrors: string[] = [];
  const curls = (async () => {
    await sleep(200); // the flood is on
    for (let i = 0; running; i++) {
      const r = await lab.curlFrom(lab.clientIps[i % lab.clientIps.length]!, `http://${VIP}/`, { maxTimeS: 2 });
      if (!running && !r.ok) break; // a request cut by the end of the phase is not counted
      if (r.ok) curlOk++;
      else {
        curlFailed++;
        if (curlErrors.length < 5) curlErrors.push(r.error);
      }
    }
  })();
  const forger = await work;
  await Promise.all([sampler, curls]);
  await sleep(3 * DEAD_AFTER_MS); // deaths the phase caused show by now
  const rssAfter = await Promise.all(daemons.map((d) => rssBytes(d.pid!)));
  const cpu = (await Promise.all(daemons.map((d) => cpuSeconds(d.pid!)))).map((x, i) => x - cpuBefore[i]!);
  const machine = machineShare(machineBefore, machineTicks());
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const after = await Promise.all(lab.nodes.map((node) => lab.status(node)));
  let convergedAfter = true;
  await lab.waitConverged(lab.nodes, 10_000).catch(() => {
    convergedAfter = false;
  });
  const rejected: Record<string, number> = {};
  const read: number[] = [];
  const heartbeatsReceived: number[] = [];
  let falseDeaths = 0;
  after.forEach((s, i) => {
    const a = counters(s);
    const b = counters(before[i]!);
    falseDeaths += a.deaths - b.deaths;
    let n = 0;
    for (const [reason, count] of Object.entries(a.rejected)) {
      const d = count - (b.rejected[reason] ?? 0);
      if (d > 0) rejected[reason] = (rejected[reason] ?? 0) + d;
      n += d;
    }
    read.push(n);
    heartbeatsReceived.push(a.heartbeats - b.heartbeats);
  });
  return {
    name,
    ...(forger === undefined ? {} : { forger }),
    rate: forger === undefined ? 0 : forger.sent / forger.seconds,
    falseDeaths,
    heartbeatsReceived,
    curlOk,
    curlFailed,
    curlErrors,
    rss: lab.nodes.map((node, i) => ({ node, before: rssBefore[i]!, peak: peak[i]!, after: rssAfter[i]! })),
    cpu,
    machine,
    wallSeconds,
    rejected,
    read,
    stallMaxMs: after.map((s) => s.interfaces[0]!.counters.stallMaxMs ?? 0),
    convergedAfter,
  };
}

export async function runControlFlood(seconds: number, progress: (line: string) => void): Promise<ControlFloodResult> {
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 20 });
  try {
    const keyFile = join(lab.lab.dir, 'cluster.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const memberMac = lab.lab.host('node1').mac;
    progress(`control-flood: reference, the forger for ${seconds} s into the LAN with no lnlb running`);
    const reference = await forge(lab, forgerArgv(seconds, memberMac), seconds);

    const args = ['--key-file', keyFile, '--heartbeat-ms', String(HEARTBEAT_MS), '--dead-after-ms', String(DEAD_AFTER_MS), '--log-level', 'info'];
    const daemons = lab.nodes.map((node) => lab.startDaemon(node, args));
    await lab.waitConverged(lab.nodes, 20_000);
    for (const node of lab.nodes) await lab.startHttpServer(node);
    await sleep(2000); // heaps and JIT settle after the start
    progress(`control-flood: idle, ${seconds} s (hb ${HEARTBEAT_MS} ms, dead after ${DEAD_AFTER_MS} ms)`);
    const idle = await phase(lab, daemons, 'idle', seconds, undefined);
    progress(`control-flood: decoy, ${seconds} s of the forger with EtherType 0x${DECOY_ETHERTYPE.toString(16)} (no lnlb socket reads it)`);
    const decoy = await phase(lab, daemons, 'decoy', seconds, forgerArgv(seconds, memberMac, DECOY_ETHERTYPE));
    progress(`control-flood: forged, ${seconds} s of forged LNLB control frames`);
    const forged = await phase(lab, daemons, 'forged', seconds, forgerArgv(seconds, memberMac));
    progress(`control-flood: forged again, ${seconds} s (memory that grows flood after flood is a leak)`);
    const again = await phase(lab, daemons, 'again', seconds, forgerArgv(seconds, memberMac));
    progress(`control-flood: ${seconds} s of the kinds from random MACs only`);
    const strangers = await phase(lab, daemons, 'strangers', seconds, forgerArgv(seconds, memberMac, undefined, STRANGER_KINDS));
    progress(`control-flood: ${seconds} s of the kinds that carry node1's MAC only`);
    const spoofed = await phase(lab, daemons, 'spoofed', seconds, forgerArgv(seconds, memberMac, undefined, MEMBER_KINDS));
    const ladder: PhaseResult[] = [];
    for (const rate of LADDER) {
      progress(`control-flood: ${seconds} s of the mixed flood at ${fmt(rate)} frames/s`);
      ladder.push(await phase(lab, daemons, `rate-${rate}`, seconds, forgerArgv(seconds, memberMac, undefined, undefined, rate)));
    }
    const deathLines = daemons
      .flatMap((d) => tail(d.logFile, 5000).split('\n'))
      .filter((l) => l.includes('"event":"node-died"') || l.includes('"event":"reset"'))
      .slice(0, 30);
    return { seconds, reference, referenceRate: reference.sent / reference.seconds, idle, decoy, forged, again, strangers, spoofed, ladder, deathLines };
  } finally {
    await lab.cleanup();
  }
}

export async function benchControlFlood(o: BenchOptions): Promise<BenchResult> {
  const r = await runControlFlood(o.quick ? 5 : 30, o.progress);
  const mib = (b: number): string => fmt(b / 2 ** 20, 1);
  const { idle, decoy, forged, again, strangers, spoofed } = r;
  const floods = [forged, again];
  const deaths = forged.falseDeaths + again.falseDeaths;
  const rate = (forged.rate + again.rate) / 2;
  const secondGrowth = Math.max(...again.rss.map((x, i) => x.after - forged.rss[i]!.after));
  const hbMin = (p: PhaseResult): number => Math.min(...p.heartbeatsReceived);
  const cpuShare = (p: PhaseResult): string => p.cpu.map((x) => `${fmt((100 * x) / p.wallSeconds)}%`).join(' / ');
  const machineText = (p: PhaseResult): string => `${(p.machine.user ?? 0) + (p.machine.nice ?? 0)} / ${p.machine.system ?? 0} / ${p.machine.softirq ?? 0} / ${p.machine.idle ?? 0}`;
  const curlOk = forged.curlOk + again.curlOk;
  const curlTried = curlOk + forged.curlFailed + again.curlFailed;
  const rows: BenchRow[] = [
    {
      figure: 'forged frames/s, 1st / 2nd flood',
      note: `forged control frames a second from one host on the LAN (a mix of every kind), two floods of ${fmt(forged.forger?.seconds ?? 0, 1)} s at the cluster (hb ${HEARTBEAT_MS} ms, dead after ${DEAD_AFTER_MS} ms: lnlbd's defaults unless LNLB_BENCH_FLOOD_TIMING=HB/DEAD); ref: the same forger with no lnlb running, this run, so that the floods are at its full speed (the decoy flood, another EtherType: ${fmt(decoy.rate)}/s)`,
      lnlb: `${fmt(forged.rate)} / ${fmt(again.rate)}`,
      reference: fmt(r.referenceRate),
      ratio: ratio(rate, r.referenceRate),
      goal: '',
    },
    {
      figure: 'false deaths + resets, 2 floods',
      note: `false deaths and self-resets the nodes declared in the first + the second flood (converged after both: ${floods.every((p) => p.convergedAfter) ? 'yes' : 'no'}); ref: the same in the idle phase / the decoy flood. The goal: none, and converged after`,
      lnlb: `${forged.falseDeaths} + ${again.falseDeaths}`,
      reference: `${idle.falseDeaths} / ${decoy.falseDeaths}`,
      ratio: '',
      goal: '0',
      met: deaths === 0 && floods.every((p) => p.convergedAfter),
    },
    {
      figure: '  … strangers / spoofed kinds',
      note: `the same with the flood of only the kinds from random MACs (${fmt(strangers.rate)}/s) / of only the kinds with node1's MAC (${fmt(spoofed.rate)}/s); ref: idle / decoy`,
      lnlb: `${strangers.falseDeaths} / ${spoofed.falseDeaths}`,
      reference: `${idle.falseDeaths} / ${decoy.falseDeaths}`,
      ratio: '',
      goal: '0',
      met: strangers.falseDeaths === 0 && spoofed.falseDeaths === 0,
    },
    {
      figure: '  … paced floods',
      note: `the same with the mixed flood paced at ${LADDER.map((x) => `${fmt(x / 1000)}k`).join(' / ')} frames/s (sent: ${r.ladder.map((p) => `${fmt(p.rate / 1000)}k`).join(' / ')}); ref: idle`,
      lnlb: r.ladder.map((p) => String(p.falseDeaths)).join(' / '),
      reference: `${idle.falseDeaths} (idle)`,
      ratio: '',
      goal: '0',
      met: r.ladder.every((p) => p.falseDeaths === 0),
    },
    {
      figure: 'longest control-thread stall, ms',
      note: "each node's longest control-thread stall (its timer late: not counted as the others' silence), ms, after the idle phase / the decoy / the two floods / the spoofed flood; ref: dead after",
      lnlb: `${idle.stallMaxMs.join(', ')} / ${decoy.stallMaxMs.join(', ')} / ${again.stallMaxMs.join(', ')} / ${spoofed.stallMaxMs.join(', ')}`,
      reference: `${fmt(DEAD_AFTER_MS)} (dead after)`,
      ratio: '',
      goal: '',
    },
    {
      figure: 'heartbeats received, fewest',
      note: 'heartbeats received by the node that received fewest, in the first / the second flood; ref: the same in the idle phase / the decoy flood, of the same length',
      lnlb: `${fmt(hbMin(forged))} / ${fmt(hbMin(again))}`,
      reference: `${fmt(hbMin(idle))} / ${fmt(hbMin(decoy))}`,
      ratio: ratio(Math.min(hbMin(forged), hbMin(again)), hbMin(idle)),
      goal: '',
    },
    {
      figure: 'clients answered / tried',
      note: 'curl clients of the VIP answered / tried during the two floods; ref: during the decoy flood',
      lnlb: `${curlOk} / ${curlTried}`,
      reference: `${decoy.curlOk} / ${decoy.curlOk + decoy.curlFailed}`,
      ratio: '',
      goal: 'all answered',
      met: curlOk === curlTried && curlOk > 0,
    },
    {
      figure: 'machine CPU %: usr / sys / si / idle',
      note: "the machine's CPU in the first flood, % of all cores: user+nice / system / softirq / idle; ref: the decoy flood",
      lnlb: machineText(forged),
      reference: machineText(decoy),
      ratio: '',
      goal: '',
    },
    {
      figure: "each daemon's CPU %, 1st flood",
      note: 'the CPU of each daemon (all its threads), % of one core, in the first flood; ref: the idle phase | the decoy flood',
      lnlb: cpuShare(forged),
      reference: `${cpuShare(idle)} | ${cpuShare(decoy)}`,
      ratio: '',
      goal: '',
    },
    ...forged.rss.map((x, i) => ({
      figure: `${x.node} RSS MiB, before / 1st / 2nd`,
      note: `each node's RSS before / after the first flood / after the second, MiB; ref: its growth over the idle phase; ratio: the growth in each flood. The goal, on the first node's row, is judged on every node: the second flood grows none by more than noise (${mib(RSS_NOISE_BYTES)} MiB)`,
      lnlb: `${mib(x.before)} / ${mib(x.after)} / ${mib(again.rss[i]!.after)}`,
      reference: `${mib(idle.rss[i]!.after - idle.rss[i]!.before)} MiB`,
      ratio: `${x.after >= x.before ? '+' : ''}${mib(x.after - x.before)}, ${again.rss[i]!.after >= x.after ? '+' : ''}${mib(again.rss[i]!.after - x.after)} MiB`,
      goal: i === 0 ? `2nd flood: all grow ≤ ${mib(RSS_NOISE_BYTES)} MiB` : '',
      ...(i === 0 ? { met: secondGrowth <= RSS_NOISE_BYTES } : {}),
    })),
    {
      figure: 'forged frames read, per node',
      note: `forged frames each node's control thread read and rejected in the first flood (the rest: dropped by its socket buffer); ref: frames sent; the rejects by reason: ${Object.entries(forged.rejected)
        .map(([reason, n]) => `${reason} ${fmt(n)}`)
        .join(', ')}`,
      lnlb: forged.read.map((n) => fmt(n)).join(' / '),
      reference: `${fmt(forged.forger?.sent ?? 0)} sent`,
      ratio: ratio(Math.min(...forged.read), forged.forger?.sent ?? 0),
      goal: '',
    },
  ];
  return { rows, json: r };
}
