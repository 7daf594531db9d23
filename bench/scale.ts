/**
 * Scale: N real lnlbd daemons in namespaces on one bridge (ClusterLab), at lnlbd's default
 * timing, for N = 2, 4, 8, 16, 32, 64 (--quick: 2, 4, 8; LNLB_BENCH_SCALE_SIZES=2,16 picks
 * others). For each N, in this order on one cluster:
 *
 * - convergence: every daemon started at once; ms from the last start until every node lists
 *   the same N members, all OK, itself once among them (ClusterLab.waitConverged);
 * - steady state, over a window after it settled: lnlb's control frames and bytes each node
 *   sends and receives a second (counted by the switch: an nft counter per port on the bridge's
 *   prerouting hook, lnlb's EtherType), each daemon's CPU (schedstat of all its threads) as a
 *   share of one core, and its RSS and PSS;
 * - spread: one real frame from each of 10,000 new sources, 2,000 a second (the generator,
 *   from the client namespace); each node's accepted-frames counter says how many it took:
 *   max / mean;
 * - failover, one node: kill -9 of one daemon; ms from the kill until the last survivor
 *   published a view without it (the survivors' own record, status lastFailover), and every
 *   survivor agrees on the N − 1;
 * - failover, N/8 nodes (at least 1): kill -9 of all of them in one loop; the same figure;
 * - join, N/8 nodes: 10,000 more sources sent to the survivors first (they track them), then
 *   the N/8 restarted at once; ms from the last start until all N agree, then the same 10,000
 *   sources sent again: every one must be accepted by the node that took it before (clients
 *   moved: the frames a node accepted beyond its first count);
 * - `lnlbctl status --json` (the real CLI) on every node lists all N.
 *
 * A size the machine has no memory for is not started; the row says so (MemAvailable against
 * what N daemons took per daemon at the sizes before).
 */

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../lab/cluster.js';
import { systemTool, tail, waitExit, waitStopped, type LabProcess } from '../lab/netns.js';
import { resolveDaemonOptions } from '../src/main/options.js';
import { ETH_P_LNLB } from '../src/net/ethernet.js';
import { lineChartSvg, type ChartSeries } from './chart.js';
import { cpuShares, threadCpu } from './memory.js';
import { cpuSeconds, fmt, ratio, spread, type BenchOptions, type BenchResult, type BenchRow } from './report.js';
import { sourceOwners, viaAdminSocket } from './source-owners.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
const FULL_SIZES = [2, 4, 8, 16, 32, 64];
const QUICK_SIZES = [2, 4, 8];
const SOURCES = 10_000;
/**
 * New clients arrive at this rate (5 s for the 10,000). Sent in one burst, each of 64 daemons
 * (every node reads every frame under the default election) took the whole burst at once on
 * the 2 cores, and in one run of three two of them went unheard for 800 ms: declared dead.
 */
const NEW_SOURCES_PER_SECOND = 2000;
/** What one more daemon is expected to take before any was measured (RSS of an idle one, README's memory rows, with room). */
const FIRST_GUESS_RSS_MIB = 160;

export interface ScalePoint {
  nodes: number;
  /** ms from the last daemon's start until all N agree. */
  convergeMs: number;
  /**
   * CPU seconds each daemon had used when all N agreed (median, and all of them together): on a
   * machine of few cores, starting N daemons at once is bound by this; and the newcomers the
   * first members refused state meanwhile (stateSendsSkipped, all nodes together: each asks again).
   */
  startCpuSeconds: number;
  startCpuSecondsTotal: number;
  stateSendsSkipped: number;
  steady: {
    seconds: number;
    /** Per node, a second: lnlb's frames and bytes it sent (median over the nodes) and received (everything the others sent). */
    sentFrames: number;
    sentBytes: number;
    receivedFrames: number;
    receivedBytes: number;
    /** % of one core per daemon: median and the largest. */
    cpuPercent: number;
    cpuPercentMax: number;
    rssMiB: number;
    pssMiB: number;
    /** Deaths and self-resets declared in the window (none expected). */
    deaths: number;
  };
  spread: {
    perNode: number[];
    max: number;
    mean: number;
    maxOverMean: number;
    accepted: number;
    kernelDrops: number;
    dropped: Record<string, number>;
    backlogDrops: number;
    viewsChanged: number;
    /** Sources no node holds as its own, and those two or more hold (their tracking tables). */
    byNone: number;
    byTwo: number;
    /** HEARTBEATs announcing a weight the nodes' datapaths saw while the sources came, and the new sources held for them. */
    weightAnnouncements: number;
    heldForAnnouncement: number;
  };
  failoverOne: { victims: string[]; ms: number; declaredMs: number };
  failoverEighth: { victims: string[]; ms: number; declaredMs: number };
  join: { joiners: string[]; ms: number; moved: number; lost: number; acceptedBefore: number; accepted: number; newcomersTook: number; dropped: Record<string, number>; backlogDrops: number; newcomersStateTransfer: Record<string, number>[] };
  /** Nodes whose `lnlbctl status --json` listed all N members. */
  ctlListsAll: number;
  /** Deaths declared of nodes that were not killed, and self-resets, over the whole run (logs). */
  falseDeaths: number;
  falseDeathLines: string[];
}

export interface ScaleSkip {
  nodes: number;
  skipped: string;
}

function sizes(quick: boolean): number[] {
  const env = process.env.LNLB_BENCH_SCALE_SIZES;
  if (env !== undefined && env !== '') return env.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 2);
  return quick ? QUICK_SIZES : FULL_SIZES;
}

/**
 * Frames the host's kernel dropped before any socket saw them (its per-CPU input backlog was
 * full: /proc/net/softnet_stat, second column), all namespaces together: a burst flooded to N
 * veth ports on 2 cores can overflow it, and such a frame never reached its owner.
 */
function backlogDrops(): number {
  return readFileSync('/proc/net/softnet_stat', 'utf8')
    .trim()
    .split('\n')
    .reduce((sum, line) => sum + parseInt(line.split(/\s+/)[1] ?? '0', 16), 0);
}

function memAvailableMiB(): number {
  return Number(/^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
}

export async function benchScale(o: BenchOptions): Promise<BenchResult> {
  const points: ScalePoint[] = [];
  const skipped: ScaleSkip[] = [];
  for (const n of sizes(o.quick)) {
    const perDaemon = points.length === 0 ? FIRST_GUESS_RSS_MIB : Math.max(...points.map((p) => p.steady.rssMiB));
    const needMiB = n * perDaemon * 1.25 + 1024;
    const available = memAvailableMiB();
    if (available < needMiB) {
      const skip = { nodes: n, skipped: `not started: ${n} daemons need about ${fmt(needMiB)} MiB (${fmt(perDaemon)} MiB each, measured, with a quarter and 1 GiB to spare), MemAvailable is ${fmt(available)} MiB` };
      o.progress(`scale: N = ${n} ${skip.skipped}`);
      skipped.push(skip);
      continue;
    }
    o.progress(`scale: N = ${n}`);
    points.push(await scaleOnce(n, o));
  }
  return { rows: scaleRows(points, skipped), json: { points, skipped }, charts: scaleCharts(points) };
}

/** An nft counter per node's switch port for lnlb's EtherType on the bridge's prerouting hook: the frames and bytes each node sends (once per frame, before the bridge floods it). */
async function controlCounters(lab: ClusterLab): Promise<() => Promise<Map<string, { frames: number; bytes: number }>>> {
  const nft = systemTool('nft');
  const table = ['bridge', 'lnlbscale'];
  const commands = [
    [nft, 'add', 'table', ...table],
    [nft, 'add', 'chain', ...table, 'pre', '{ type filter hook prerouting priority 0 ; }'],
    ...lab.nodes.map((node) => [nft, 'add', 'rule', ...table, 'pre', 'iifname', lab.lab.host(node).switchPort, 'ether', 'type', `0x${ETH_P_LNLB.toString(16)}`, 'counter', 'comment', `"${node}"`]),
  ];
  for (const argv of commands) {
    const r = await lab.lab.exec('sw', argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  }
  return async () => {
    const r = await lab.lab.exec('sw', [nft, '-j', 'list', 'table', ...table]);
    if (r.code !== 0) throw new Error(`nft list table: ${r.stderr}`);
    const out = new Map<string, { frames: number; bytes: number }>();
    for (const item of (JSON.parse(r.stdout) as { nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number; bytes: number } }> } }> }).nftables) {
      const counter = item.rule?.expr.find((e) => e.counter !== undefined)?.counter;
      if (item.rule?.comment !== undefined && counter !== undefined) out.set(item.rule.comment, { frames: counter.packets, bytes: counter.bytes });
    }
    return out;
  };
}

async function accepted(lab: ClusterLab, nodes: readonly string[]): Promise<{ accepted: number[]; kernelDrops: number[]; dropped: Map<string, number>; views: string[]; announcementsSeen: number; heldForAnnouncement: number }> {
  const statuses = await Promise.all(nodes.map((node) => lab.socketStatus(node)));
  // Each node's view: members and their weights (the default weight mode follows the load average).
  const views = statuses.map((s) => s.interfaces[0]!.nodes.map((n) => `${n.mac}=${n.weight}`).join(','));
  const dropped = new Map<string, number>();
  for (const s of statuses) for (const [reason, n] of Object.entries(s.interfaces[0]!.counters.framesDropped)) dropped.set(reason, (dropped.get(reason) ?? 0) + n);
  const announcements = statuses.map((s) => s.interfaces[0]!.counters.weightAnnouncements ?? { seen: 0, heldFlows: 0 });
  return {
    accepted: statuses.map((s) => s.interfaces[0]!.counters.framesAccepted),
    kernelDrops: statuses.map((s) => s.interfaces[0]!.counters.kernelDrops),
    dropped,
    views,
    announcementsSeen: announcements.reduce((a, b) => a + b.seen, 0),
    heldForAnnouncement: announcements.reduce((a, b) => a + b.heldFlows, 0),
  };
}

/**
 * One frame from each of SOURCES sources from `base` up; each node's accepted frames (delta)
 * once all are in, or after 10 s; and the frames the nodes dropped meanwhile, by reason, beside
 * `otherNode` (each frame is dropped by every node but its owner): `held` is a new flow that
 * came while a round changed the view, which a real client sends again.
 */
async function sendSources(
  lab: ClusterLab,
  nodes: readonly string[],
  base: string,
): Promise<{ perNode: number[]; kernelDrops: number; dropped: Record<string, number>; backlogDrops: number; viewsChanged: number; announcementsSeen: number; heldForAnnouncement: number }> {
  const before = await accepted(lab, nodes);
  const backlogBefore = backlogDrops();
  const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(SOURCES), '--rate', String(NEW_SOURCES_PER_SECOND), '--base', base], { timeoutMs: 60_000 });
  if (run.code !== 0) throw new Error(`generator: ${run.stderr}`);
  let after = before;
  for (let waited = 0; waited < 10_000; waited += 250) {
    // The generator has sent them all when it returns: 10 s more for the nodes to count them.
    await sleep(250);
    after = await accepted(lab, nodes);
    if (after.accepted.reduce((a, b) => a + b, 0) - before.accepted.reduce((a, b) => a + b, 0) >= SOURCES) break;
  }
  const dropped = Object.fromEntries([...after.dropped].map(([reason, n]) => [reason, n - (before.dropped.get(reason) ?? 0)]).filter(([reason, n]) => reason !== 'otherNode' && (n as number) > 0));
  return {
    perNode: after.accepted.map((a, i) => a - before.accepted[i]!),
    kernelDrops: after.kernelDrops.reduce((a, b) => a + b, 0) - before.kernelDrops.reduce((a, b) => a + b, 0),
    dropped,
    backlogDrops: backlogDrops() - backlogBefore,
    // Nodes whose view (members, weights) differs after the sending from before it: a weight
    // change meanwhile (the load average moved) is a moment two nodes may elect a source apart.
    viewsChanged: after.views.filter((v, i) => v !== before.views[i]).length,
    // Weights announced meanwhile, as the nodes' datapaths saw them among the sources' frames.
    announcementsSeen: after.announcementsSeen - before.announcementsSeen,
    heldForAnnouncement: after.heldForAnnouncement - before.heldForAnnouncement,
  };
}

/** Kills every victim's daemon in one loop (kill -9), then measures until the survivors agree without them. */
async function failover(lab: ClusterLab, victims: readonly string[], timeoutMs: number, pollMs: number): Promise<{ victims: string[]; ms: number; declaredMs: number }> {
  const survivors = lab.nodes.filter((n) => !victims.includes(n));
  const children = victims.map((v) => lab.daemon(v)!);
  const since = Date.now();
  for (const child of children) child.kill('SIGKILL');
  for (const child of children) waitStopped(child.pid!, 200);
  for (const child of children) await waitExit(child, 5000);
  await lab.waitConverged(survivors, timeoutMs, pollMs);
  const macs = new Set(victims.map((v) => lab.lab.host(v).mac.toLowerCase()));
  const records = (await Promise.all(survivors.map((node) => lab.socketStatus(node))))
    .map((s) => s.interfaces[0]!.counters.lastFailover)
    .filter((f) => f !== undefined && macs.has(f.node.toLowerCase()) && f.declaredAt >= since);
  return {
    victims: [...victims],
    // The last survivor's view without the victims: from then on every node elects without them.
    ms: records.length === 0 ? Number.NaN : Math.max(...records.map((f) => f!.publishedAt)) - since,
    declaredMs: records.length === 0 ? Number.NaN : Math.max(...records.map((f) => f!.declaredAt)) - since,
  };
}

async function scaleOnce(n: number, o: BenchOptions): Promise<ScalePoint> {
  const { heartbeatMs, deadAfterMs } = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' });
  const args = ['--heartbeat-ms', String(heartbeatMs), '--dead-after-ms', String(deadAfterMs), '--log-level', 'warn'];
  // Polling 64 admin sockets every 100 ms would be a load of its own.
  const pollMs = n > 16 ? 250 : 100;
  const convergeTimeoutMs = 60_000 + n * 2000;
  const lab = await ClusterLab.create({ nodes: n, clientAddresses: 1 });
  const started: LabProcess[] = [];
  try {
    const readCounters = await controlCounters(lab);
    for (const node of lab.nodes) started.push(lab.startDaemon(node, args));
    const lastStart = performance.now();
    await lab.waitConverged(lab.nodes, convergeTimeoutMs, pollMs);
    const convergeMs = performance.now() - lastStart;
    const startCpu = await Promise.all(lab.nodes.map((node) => cpuSeconds(lab.daemon(node)!.pid!)));
    const stateSendsSkipped = (await Promise.all(lab.nodes.map((node) => lab.socketStatus(node)))).reduce((sum, s) => sum + (s.interfaces[0]!.counters.control.overflow?.stateSendsSkipped ?? 0), 0);
    o.progress(`scale: N = ${n}: converged ${fmt(convergeMs)} ms after the last start (CPU per daemon until then ${fmt(spread(startCpu).median, 2)} s, ${fmt(startCpu.reduce((a, b) => a + b, 0), 1)} s in all; newcomers refused state ${stateSendsSkipped} times)`);

    // Steady state: settled, then one window.
    const settleS = o.quick ? 3 : 10;
    const seconds = o.quick ? 5 : 20;
    await sleep(settleS * 1000);
    const pids = lab.nodes.map((node) => lab.daemon(node)!.pid!);
    const deathsOf = async (): Promise<number> =>
      (await Promise.all(lab.nodes.map((node) => lab.socketStatus(node)))).reduce((sum, s) => {
        const c = s.interfaces[0]!.counters;
        return sum + Object.values(c.deaths ?? {}).reduce((a, b) => a + b, 0) + c.resets;
      }, 0);
    const deaths0 = await deathsOf();
    const c0 = await readCounters();
    const cpu0 = pids.map(threadCpu);
    await sleep(seconds * 1000);
    const cpu1 = pids.map(threadCpu);
    const c1 = await readCounters();
    const deaths1 = await deathsOf();
    const sent = lab.nodes.map((node) => ({ frames: (c1.get(node)!.frames - c0.get(node)!.frames) / seconds, bytes: (c1.get(node)!.bytes - c0.get(node)!.bytes) / seconds }));
    const totalFrames = sent.reduce((a, s) => a + s.frames, 0);
    const totalBytes = sent.reduce((a, s) => a + s.bytes, 0);
    const cpu = pids.map((_, i) => [...cpuShares(cpu0[i]!, cpu1[i]!, seconds).values()].reduce((a, b) => a + b, 0));
    const memory = pids.map((pid) => ({
      rss: Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024,
      pss: Number(/^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]) / 1024,
    }));
    const steady = {
      seconds,
      sentFrames: spread(sent.map((s) => s.frames)).median,
      sentBytes: spread(sent.map((s) => s.bytes)).median,
      receivedFrames: spread(sent.map((s) => totalFrames - s.frames)).median,
      receivedBytes: spread(sent.map((s) => totalBytes - s.bytes)).median,
      cpuPercent: spread(cpu).median,
      cpuPercentMax: Math.max(...cpu),
      rssMiB: spread(memory.map((m) => m.rss)).median,
      pssMiB: spread(memory.map((m) => m.pss)).median,
      deaths: deaths1 - deaths0,
    };
    o.progress(`scale: N = ${n}: per node ${fmt(steady.sentFrames, 1)} control frames/s sent, ${fmt(steady.receivedFrames)} received; ${fmt(steady.cpuPercent, 2)}% of a core, ${fmt(steady.rssMiB)} MiB RSS per daemon`);

    // Spread of new clients.
    const first = await sendSources(lab, lab.nodes, '10.64.0.0');
    const total = first.perNode.reduce((a, b) => a + b, 0);
    const mean = SOURCES / n;
    // Who holds each source as its own (every node tracks every source it saw): the spread's
    // sum of frames taken cannot tell a source taken twice from one taken by nobody.
    const owners = await sourceOwners(viaAdminSocket(lab), lab.nodes, 0x0a400000, SOURCES);
    const spreadFig = {
      perNode: first.perNode,
      max: Math.max(...first.perNode),
      mean,
      maxOverMean: Math.max(...first.perNode) / mean,
      accepted: total,
      kernelDrops: first.kernelDrops,
      dropped: first.dropped,
      backlogDrops: first.backlogDrops,
      viewsChanged: first.viewsChanged,
      byNone: owners.byNone,
      byTwo: owners.byTwo,
      weightAnnouncements: first.announcementsSeen,
      heldForAnnouncement: first.heldForAnnouncement,
    };
    o.progress(
      `scale: N = ${n}: ${fmt(total)} of ${fmt(SOURCES)} sources accepted, taken by none ${owners.byNone}, by two ${owners.byTwo} (dropped besides otherNode: ${JSON.stringify(first.dropped)}, in the ring ${first.kernelDrops}, in the host's input backlog ${first.backlogDrops}; views changed meanwhile on ${first.viewsChanged} nodes, weights announced in the data stream ${first.announcementsSeen} times, new sources held for them ${first.heldForAnnouncement}), max/mean ${fmt(spreadFig.maxOverMean, 2)}`,
    );

    // Failover of one node, then it comes back.
    const one = await failover(lab, [lab.nodes[n - 1]!], convergeTimeoutMs, pollMs);
    o.progress(`scale: N = ${n}: one node killed: survivors' view without it ${fmt(one.ms)} ms after the kill`);
    started.push(lab.startDaemon(lab.nodes[n - 1]!, args));
    await lab.waitConverged(lab.nodes, convergeTimeoutMs, pollMs);

    // N/8 at once: every 8th node, spread over the table.
    const eighth = Math.max(1, Math.floor(n / 8));
    const victims = Array.from({ length: eighth }, (_, i) => lab.nodes[Math.min(n - 1, i * 8 + 1)]!);
    const many = await failover(lab, victims, convergeTimeoutMs, pollMs);
    o.progress(`scale: N = ${n}: ${eighth} node(s) killed at once: survivors' view without them ${fmt(many.ms)} ms after the kill`);

    // N/8 join at once; the survivors' clients must stay where they are.
    const survivors = lab.nodes.filter((node) => !victims.includes(node));
    const before = await sendSources(lab, survivors, '10.80.0.0');
    for (const victim of victims) started.push(lab.startDaemon(victim, args));
    const joinStart = performance.now();
    await lab.waitConverged(lab.nodes, convergeTimeoutMs, pollMs);
    const joinMs = performance.now() - joinStart;
    const again = await sendSources(lab, lab.nodes, '10.80.0.0');
    const beforeByNode = new Map(survivors.map((node, i) => [node, before.perNode[i]!]));
    const moved = lab.nodes.reduce((sum, node, i) => sum + Math.max(0, again.perNode[i]! - (beforeByNode.get(node) ?? 0)), 0);
    // A source its node took before and took no more: lost on the second pass.
    const lost = lab.nodes.reduce((sum, node, i) => sum + Math.max(0, (beforeByNode.get(node) ?? 0) - again.perNode[i]!), 0);
    const newcomerStatus = await Promise.all(victims.map((v) => lab.socketStatus(v)));
    const join = {
      joiners: victims,
      ms: joinMs,
      dropped: again.dropped,
      backlogDrops: again.backlogDrops,
      // What each newcomer's state transfer took (requests, fragments asked again): the join's time goes there.
      newcomersStateTransfer: newcomerStatus.map((s) => s.interfaces[0]!.counters.control.stateTransfer ?? {}),
      moved,
      lost,
      acceptedBefore: before.perNode.reduce((a, b) => a + b, 0),
      accepted: again.perNode.reduce((a, b) => a + b, 0),
      newcomersTook: lab.nodes.reduce((sum, node, i) => sum + (victims.includes(node) ? again.perNode[i]! : 0), 0),
    };
    o.progress(`scale: N = ${n}: ${eighth} joined at once in ${fmt(joinMs)} ms; ${fmt(moved)} of ${fmt(SOURCES)} existing clients moved, ${fmt(lost)} taken before and not again (${fmt(join.acceptedBefore)} taken before, ${fmt(join.accepted)} after; views changed meanwhile on ${before.viewsChanged} and ${again.viewsChanged} nodes)`);

    // The operator's view: lnlbctl itself, on every node, a few at a time.
    let ctlListsAll = 0;
    for (let i = 0; i < n; i += 4) {
      const statuses = await Promise.all(lab.nodes.slice(i, i + 4).map((node) => lab.status(node)));
      ctlListsAll += statuses.filter((s) => s.interfaces[0]?.nodes.length === n).length;
    }

    const victimMacs = new Set([...victims, lab.nodes[n - 1]!].map((v) => lab.lab.host(v).mac.toLowerCase()));
    const falseDeathLines = started
      .flatMap((d) => tail(d.logFile, 100_000).split('\n').map((l) => `${d.host}: ${l}`))
      .filter((l) => l.includes('"event":"reset"') || (l.includes('"event":"node-died"') && l.includes('"reason":"missed-heartbeats"') && ![...victimMacs].some((mac) => l.toLowerCase().includes(`"node":"${mac}"`))));
    return {
      nodes: n,
      convergeMs,
      startCpuSeconds: spread(startCpu).median,
      startCpuSecondsTotal: startCpu.reduce((a, b) => a + b, 0),
      stateSendsSkipped,
      steady,
      spread: spreadFig,
      failoverOne: one,
      failoverEighth: many,
      join,
      ctlListsAll,
      falseDeaths: falseDeathLines.length,
      falseDeathLines: falseDeathLines.slice(0, 10),
    };
  } catch (error) {
    o.progress(`scale: N = ${n} failed; the daemons' last lines:\n${lab.logTails(5)}`);
    throw error;
  } finally {
    await lab.cleanup();
  }
}

function perN(points: readonly ScalePoint[], pick: (p: ScalePoint) => number, digits = 0): string {
  return points.map((p) => fmt(pick(p), digits)).join(' / ');
}

function scaleRows(points: readonly ScalePoint[], skipped: readonly ScaleSkip[]): BenchRow[] {
  if (points.length === 0) return skipped.map((s) => ({ figure: `N = ${s.nodes}`, lnlb: s.skipped, reference: '', ratio: '', goal: '' }));
  const ns = `N = ${points.map((p) => p.nodes).join(' / ')}`;
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const grow = (pick: (p: ScalePoint) => number): string => ratio(pick(last), pick(first));
  const rows: BenchRow[] = [
    {
      figure: 'converged after the last start, ms',
      note: `${ns}: ms from the last daemon's start until every node lists the same N members; reference: at N = ${first.nodes}`,
      lnlb: perN(points, (p) => p.convergeMs),
      reference: fmt(first.convergeMs),
      ratio: grow((p) => p.convergeMs),
      goal: 'every N converges',
      met: true,
    },
    {
      figure: 'control frames/s per node, sent/received',
      note: `${ns}: lnlb's frames a second each node sends / receives in steady state, counted by the switch; reference: sent at N = ${first.nodes}`,
      lnlb: points.map((p) => `${fmt(p.steady.sentFrames, 1)}/${fmt(p.steady.receivedFrames)}`).join(' · '),
      reference: fmt(first.steady.sentFrames, 1),
      ratio: grow((p) => p.steady.sentFrames),
      goal: 'sent per node flat in N',
      met: last.steady.sentFrames <= first.steady.sentFrames * 1.5,
    },
    {
      figure: 'control bytes/s per node, sent/received',
      note: `${ns}: as the switch's nft counters count them`,
      lnlb: points.map((p) => `${fmt(p.steady.sentBytes)}/${fmt(p.steady.receivedBytes)}`).join(' · '),
      reference: fmt(first.steady.sentBytes),
      ratio: grow((p) => p.steady.sentBytes),
      goal: '',
    },
    {
      figure: 'idle daemon, % of one core',
      note: `${ns}: median over the daemons, ${last.steady.seconds} s window; reference: at N = ${first.nodes}`,
      lnlb: perN(points, (p) => p.steady.cpuPercent, 2),
      reference: fmt(first.steady.cpuPercent, 2),
      ratio: grow((p) => p.steady.cpuPercent),
      goal: '',
    },
    {
      figure: 'idle daemon RSS/PSS, MiB',
      note: `${ns}: medians over the daemons`,
      lnlb: points.map((p) => `${fmt(p.steady.rssMiB)}/${fmt(p.steady.pssMiB)}`).join(' · '),
      reference: fmt(first.steady.rssMiB),
      ratio: grow((p) => p.steady.rssMiB),
      goal: '',
    },
    {
      figure: 'new-client spread, max/mean',
      note: `${ns}: ${fmt(SOURCES)} new sources (real frames); the busiest node ÷ the mean (frames taken; sources no node holds as its own / two hold, from their tracking tables; lost in the host's input backlog); reference: 1, even`,
      lnlb: points.map((p) => `${fmt(p.spread.maxOverMean, 2)} (${fmt(p.spread.accepted)}; ${p.spread.byNone}/${p.spread.byTwo}; ${fmt(p.spread.backlogDrops)})`).join(' / '),
      reference: '1',
      ratio: '',
      goal: 'every source that reached the nodes taken once, max/mean ≤ 1.3',
      met: points.every((p) => p.spread.byTwo === 0 && p.spread.byNone <= p.spread.backlogDrops + p.spread.kernelDrops && p.spread.maxOverMean <= 1.3),
    },
    {
      figure: 'failover, 1 killed, ms',
      note: `${ns}: kill -9 of one node: ms until the last survivor's view is without it; reference: --dead-after-ms`,
      lnlb: perN(points, (p) => p.failoverOne.ms),
      reference: String(resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' }).deadAfterMs),
      ratio: grow((p) => p.failoverOne.ms),
      goal: 'each < 1000 ms',
      met: points.every((p) => p.failoverOne.ms < 1000),
    },
    {
      figure: 'failover, N/8 killed, ms',
      note: `${ns}: kill -9 of N/8 nodes at once (${points.map((p) => p.failoverEighth.victims.length).join('/')}): ms until the last survivor's view is without them; reference: one killed at the smallest N`,
      lnlb: perN(points, (p) => p.failoverEighth.ms),
      reference: perN([first], (p) => p.failoverOne.ms),
      ratio: grow((p) => p.failoverEighth.ms),
      goal: 'each < 1000 ms',
      met: points.every((p) => p.failoverEighth.ms < 1000),
    },
    {
      figure: 'N/8 join, ms (clients moved)',
      note: `${ns}: N/8 nodes join at once: ms from the last start until all N agree; existing clients moved (of ${fmt(SOURCES)}); reference: the whole cluster's convergence at the smallest N`,
      lnlb: points.map((p) => `${fmt(p.join.ms)} (${fmt(p.join.moved)} moved)`).join(' / '),
      reference: fmt(first.convergeMs),
      ratio: '',
      goal: 'no existing client moved',
      met: points.every((p) => p.join.moved === 0 && p.join.lost === 0),
    },
    {
      figure: 'lnlbctl lists all N; false deaths',
      note: `${ns}: nodes whose lnlbctl status --json lists all N, of N; false deaths and self-resets`,
      lnlb: points.map((p) => `${p.ctlListsAll}/${p.nodes}, ${p.falseDeaths}`).join(' · '),
      reference: '',
      ratio: '',
      goal: 'every node lists every node, no false death',
      met: points.every((p) => p.ctlListsAll === p.nodes && p.falseDeaths === 0),
    },
    ...skipped.map((s) => ({ figure: `N = ${s.nodes}`, lnlb: s.skipped, reference: '', ratio: '', goal: '' })),
  ];
  return rows;
}

const X_LABEL = 'nodes in the cluster (N)';

function series(name: string, points: readonly ScalePoint[], pick: (p: ScalePoint) => number): ChartSeries {
  return { name, points: points.map((p) => ({ x: p.nodes, y: pick(p) })) };
}

/** One chart per figure against N, written beside the JSON (bench/run.ts). */
export function scaleCharts(points: readonly ScalePoint[]): { name: string; svg: string }[] {
  if (points.length === 0) return [];
  const { deadAfterMs } = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' });
  return [
    {
      name: 'scale-convergence',
      svg: lineChartSvg({
        title: 'Time until every node has one identical view',
        xLabel: X_LABEL,
        yLabel: 'ms',
        xScale: 'log2',
        series: [series('all N started at once: from the last start', points, (p) => p.convergeMs), series('N/8 join a running cluster at once', points, (p) => p.join.ms)],
      }),
    },
    {
      name: 'scale-control-frames',
      svg: lineChartSvg({
        title: 'Control frames per node per second, steady state',
        xLabel: X_LABEL,
        yLabel: 'frames/s',
        xScale: 'log2',
        series: [series('sent by one node', points, (p) => p.steady.sentFrames), series('received by one node', points, (p) => p.steady.receivedFrames)],
      }),
    },
    {
      name: 'scale-control-bytes',
      svg: lineChartSvg({
        title: 'Control bytes per node per second, steady state',
        xLabel: X_LABEL,
        yLabel: 'bytes/s',
        xScale: 'log2',
        series: [series('sent by one node', points, (p) => p.steady.sentBytes), series('received by one node', points, (p) => p.steady.receivedBytes)],
      }),
    },
    {
      name: 'scale-idle-cpu',
      svg: lineChartSvg({
        title: 'CPU of one idle daemon',
        xLabel: X_LABEL,
        yLabel: '% of one core',
        xScale: 'log2',
        series: [series('median daemon', points, (p) => p.steady.cpuPercent), series('busiest daemon', points, (p) => p.steady.cpuPercentMax)],
      }),
    },
    {
      name: 'scale-memory',
      svg: lineChartSvg({
        title: 'Memory of one idle daemon',
        xLabel: X_LABEL,
        yLabel: 'MiB',
        xScale: 'log2',
        series: [series('RSS', points, (p) => p.steady.rssMiB), series('PSS (shared pages split)', points, (p) => p.steady.pssMiB)],
      }),
    },
    {
      name: 'scale-failover',
      svg: lineChartSvg({
        title: 'Failover: kill -9 until the survivors elect without the dead',
        xLabel: X_LABEL,
        yLabel: 'ms',
        xScale: 'log2',
        series: [series('one node killed', points, (p) => p.failoverOne.ms), series('N/8 nodes killed at once', points, (p) => p.failoverEighth.ms)],
        reference: { y: deadAfterMs, label: `--dead-after-ms ${deadAfterMs}` },
      }),
    },
    {
      name: 'scale-spread',
      svg: lineChartSvg({
        title: `New clients per node over ${SOURCES.toLocaleString('en-US')} sources`,
        xLabel: X_LABEL,
        yLabel: 'max node ÷ mean',
        xScale: 'log2',
        series: [series('busiest node ÷ mean', points, (p) => p.spread.maxOverMean), series('idlest node ÷ mean', points, (p) => Math.min(...p.spread.perNode) / p.spread.mean)],
        reference: { y: 1, label: 'even' },
      }),
    },
  ];
}
