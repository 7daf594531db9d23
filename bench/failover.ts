/**
 * Failover: `trials` times, kill -9 one daemon of a 3-node cluster and measure, with
 * PROBE_CLIENTS of the clients it served pinging the VIP every PROBE_INTERVAL_MS since before
 * the kill (PingProbe), when the last of them is answered again. The killed daemon is restarted and the cluster
 * reconverges between trials.
 */

import { ClusterLab, VIP, VIP6 } from '../lab/cluster.js';
import { tail, waitExit, waitStopped } from '../lab/netns.js';
import { PingProbe } from '../lab/ping-probe.js';
import { spread } from './report.js';

/**
 * One failover, step by step, in ms after the kill (medians over the trials): the victim's last
 * frame heard by a survivor, the first survivor's death declaration, its view without the
 * victim published, the survivors' actors on that view, the first new client a survivor took
 * after it, the first and the last orphaned source answered (ping).
 */
export interface FailoverTimelineMs {
  lastHeard: number;
  declared: number;
  /** The last survivor's declaration: its share of the orphans waits for it. */
  declaredLast: number;
  published: number;
  actorsSwitched: number;
  firstTaken: number;
  firstOrphanAnswered: number;
  lastOrphanAnswered: number;
}

/** Each client's ping interval, here and in keepalived's benchmark (iputils sends every 10 ms at best while unanswered): what a figure can be off by. */
export const PROBE_INTERVAL_MS = 8;
/** How many of the victim's clients ping, here and in keepalived's benchmark: the figure is the last of them answered again. */
export const PROBE_CLIENTS = 10;

const TIMELINE_STEPS = ['lastHeard', 'declared', 'declaredLast', 'published', 'actorsSwitched', 'firstTaken', 'firstOrphanAnswered', 'lastOrphanAnswered'] as const satisfies readonly (keyof FailoverTimelineMs)[];

/** Each step's median over the trials (a step a trial could not see is left out of it). */
function medianTimeline(timelines: readonly FailoverTimelineMs[]): FailoverTimelineMs {
  const out = {} as FailoverTimelineMs;
  for (const step of TIMELINE_STEPS) out[step] = spread(timelines.map((x) => x[step]).filter(Number.isFinite)).median;
  return out;
}

/** The survivors' own record of the failover of `victimMac` (status: lastFailover, actors' view times), relative to `since`. */
async function timelineOf(lab: ClusterLab, survivors: string[], victimMac: string, since: number, pings: { firstReplyMs: Map<string, number>; worstMs: number }): Promise<FailoverTimelineMs> {
  const statuses = await Promise.all(survivors.map((node) => lab.status(node)));
  const steps = { lastHeard: [] as number[], declared: [] as number[], published: [] as number[], actors: [] as number[], taken: [] as number[] };
  for (const s of statuses) {
    const c = s.interfaces[0]!.counters;
    const f = c.lastFailover;
    if (f === undefined || f.node.toLowerCase() !== victimMac || f.declaredAt < since) continue;
    steps.lastHeard.push(f.lastHeardAt - since);
    steps.declared.push(f.declaredAt - since);
    if (f.publishedAt > 0) steps.published.push(f.publishedAt - since);
    for (const a of c.actors ?? []) {
      if (a.shrinkAppliedAt >= f.declaredAt) steps.actors.push(a.shrinkAppliedAt - since);
      if (a.firstTakenAfterShrinkAt >= f.declaredAt) steps.taken.push(a.firstTakenAfterShrinkAt - since);
    }
  }
  const earliest = (xs: number[]): number => (xs.length === 0 ? Number.NaN : Math.min(...xs));
  return {
    lastHeard: Math.max(...steps.lastHeard),
    declared: earliest(steps.declared),
    declaredLast: steps.declared.length === 0 ? Number.NaN : Math.max(...steps.declared),
    published: earliest(steps.published),
    // Every survivor's every actor: the datapath follows when the last of them has the view.
    actorsSwitched: steps.actors.length === 0 ? Number.NaN : Math.max(...steps.actors),
    firstTaken: earliest(steps.taken),
    firstOrphanAnswered: earliest([...pings.firstReplyMs.values()]),
    lastOrphanAnswered: pings.worstMs,
  };
}

export interface FailoverResult {
  heartbeatMs: number;
  deadAfterMs: number;
  trials: number[];
  medianMs: number;
  worstMs: number;
  unanswered: number;
  /** Deaths declared of nodes that were not killed (read from the survivors' logs). */
  falseDeaths: number;
  /** Each kill's steps, and their medians. */
  timelines: FailoverTimelineMs[];
  timeline: FailoverTimelineMs;
}

/** `ipv6`: a dual-stack cluster, its clients probing the IPv6 VIP from IPv6 sources (ping -6). */
export async function runFailover(options: { trials: number; heartbeatMs: number; deadAfterMs: number; fault?: 'kill' | 'link-down'; ipv6?: boolean }): Promise<FailoverResult> {
  const fault = options.fault ?? 'kill';
  const timing = ['--heartbeat-ms', String(options.heartbeatMs), '--dead-after-ms', String(options.deadAfterMs), '--log-level', 'warn'];
  const ipv6 = options.ipv6 === true;
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 30, ipv6 });
  const sources = ipv6 ? lab.clientIps6 : lab.clientIps;
  const trials: number[] = [];
  const timelines: FailoverTimelineMs[] = [];
  let unanswered = 0;
  let falseDeaths = 0;
  try {
    const daemons = lab.nodes.map((node) => lab.startDaemon(node, timing));
    await lab.waitConverged(lab.nodes, 20_000);
    for (const node of lab.nodes) await lab.startHttpServer(node);
    for (let i = 0; i < options.trials; i++) {
      const victim = lab.nodes[i % lab.nodes.length]!;
      const survey = await lab.survey(sources);
      const orphans = [...survey].filter(([, s]) => 'node' in s && s.node === victim).map(([source]) => source);
      if (orphans.length === 0) continue;
      const probe = await PingProbe.start(lab.lab, 'client', orphans.slice(0, PROBE_CLIENTS), ipv6 ? VIP6 : VIP, { intervalMs: PROBE_INTERVAL_MS });
      const since = Date.now();
      const daemon = lab.daemon(victim)!;
      if (fault === 'kill') {
        daemon.kill('SIGKILL');
        waitStopped(daemon.pid!, 100);
      } else {
        await lab.lab.linkDown(victim); // its switch port: the node lives on, cut off
      }
      // A killed daemon serves until it is gone, a cut-off node what reaches it until its port
      // is down: only requests sent after that count (keepalived's figure counts alike).
      const pings = await probe.answeredAgain(since, 10_000, { sentAfterEpochMs: Date.now() });
      probe.stop();
      if (fault === 'kill') await waitExit(daemon, 2000);
      trials.push(pings.worstMs);
      unanswered += pings.unanswered.length;
      if (fault === 'kill') timelines.push(await timelineOf(lab, lab.nodes.filter((n) => n !== victim), lab.lab.host(victim).mac.toLowerCase(), since, pings));

      process.stderr.write(`  trial ${i + 1}: ${victim} ${fault === 'kill' ? 'killed' : 'cut off'}, ${pings.firstReplyMs.size} of its clients answered again after ${Math.round(pings.worstMs)} ms\n`);
      if (fault === 'kill') daemons.push(lab.startDaemon(victim, timing));
      else await lab.lab.linkUp(victim); // the partition heals: the cluster merges again
      await lab.waitConverged(lab.nodes, 20_000);
    }
    // Each kill is seen by the two survivors (a cut-off node also declares the two others
    // dead on its side): any other death declared is a false one.
    const declared = daemons
      .flatMap((d) => tail(d.logFile, 5000).split('\n'))
      .filter((l) => l.includes('"event":"node-died"') && l.includes('"reason":"missed-heartbeats"')).length;
    falseDeaths = Math.max(0, declared - (fault === 'kill' ? 2 : 4) * trials.length);
  } finally {
    await lab.cleanup();
  }
  const sorted = [...trials].sort((a, b) => a - b);
  return {
    heartbeatMs: options.heartbeatMs,
    deadAfterMs: options.deadAfterMs,
    trials,
    medianMs: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
    worstMs: sorted[sorted.length - 1] ?? Number.NaN,
    unanswered,
    falseDeaths,
    timelines,
    timeline: medianTimeline(timelines),
  };
}

/** Dead-after in heartbeats for the fastest setting: VRRP's master-down interval is three advertisements (plus a skew under one). */
export const FASTEST_DEAD_AFTER_HEARTBEATS = 3;

/**
 * The smallest heartbeat at which a 3-node cluster declares no false death while its
 * datapath is flooded (the generator at full speed for `seconds`) and one node is killed and
 * restarted three times meanwhile (what the failover trials do); dead-after is
 * FASTEST_DEAD_AFTER_HEARTBEATS heartbeats. A false death is any death of a node that was not
 * killed, or a self-reset.
 */
export async function fastestSafeHeartbeat(candidates: readonly number[], seconds: number, progress: (line: string) => void): Promise<{ heartbeatMs: number; deadAfterMs: number; tried: { heartbeatMs: number; falseDeaths: number; lines: string[] }[] }> {
  const generator = new URL('./generator.js', import.meta.url).pathname;
  const tried: { heartbeatMs: number; falseDeaths: number; lines: string[] }[] = [];
  let best = { heartbeatMs: Number.NaN, deadAfterMs: Number.NaN };
  for (const heartbeatMs of candidates) {
    const deadAfterMs = FASTEST_DEAD_AFTER_HEARTBEATS * heartbeatMs;
    progress(`failover: --heartbeat-ms ${heartbeatMs} --dead-after-ms ${deadAfterMs} under a ${seconds} s flood with three kills and restarts`);
    const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 1 });
    let falseDeaths = 0;
    let lines: string[] = [];
    try {
      const timing = ['--heartbeat-ms', String(heartbeatMs), '--dead-after-ms', String(deadAfterMs), '--log-level', 'warn'];
      const daemons = lab.nodes.map((node) => lab.startDaemon(node, timing));
      await lab.waitConverged(lab.nodes, 20_000);
      const flood = lab.lab.exec('client', [process.execPath, generator, '--seconds', String(seconds), '--bytes', '60'], { timeoutMs: (seconds + 30) * 1000 });
      // Three kills and restarts of node3 while the flood runs: a restart is a CPU spike on
      // this small machine, the moment a tight timeout is most likely to fire on a live node.
      for (let cycle = 0; cycle < 3; cycle++) {
        await new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / 8));
        const victim = lab.daemon('node3')!;
        victim.kill('SIGKILL');
        await waitExit(victim, 2000);
        await new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / 8));
        daemons.push(lab.startDaemon('node3', timing));
      }
      const done = await flood;
      if (done.code !== 0) throw new Error(`generator: ${done.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 3 * deadAfterMs));
      const victimMac = lab.lab.host('node3').mac.toLowerCase();
      const found = daemons
        .flatMap((d) => tail(d.logFile, 2000).split('\n').map((l) => `${d.host}: ${l}`))
        .filter((l) => l.includes('"event":"reset"') || (l.includes('"event":"node-died"') && !l.toLowerCase().includes(victimMac)));
      falseDeaths = found.length;
      lines = found.slice(0, 8); // for the JSON: which node, when, why
    } finally {
      await lab.cleanup();
    }
    tried.push({ heartbeatMs, falseDeaths, lines });
    if (falseDeaths > 0) break;
    best = { heartbeatMs, deadAfterMs };
  }
  return { ...best, tried };
}
