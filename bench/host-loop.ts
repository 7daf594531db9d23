/**
 * What an embedded node costs the service it lives in (bench/embedded-host.ts on each lab
 * node: createNode in the service's own process):
 * - `host-loop`: the service's event-loop delay (monitorEventLoopDelay, p99 and max) while a
 *   newcomer joins two members that track `flows` clients and receives their state, on the
 *   member that sends it and on the newcomer. The reference: a bystander process, the same
 *   loop watch with nothing embedded, over the same window (what the machine itself does to
 *   any event loop: these machines are shared); the members' own idle window is recorded
 *   beside. Goal: no pause over 10 ms.
 * - `status-rtt`: a status round trip, `status()` in the process and `lnlbctl status`'s
 *   request on the admin socket, beside a bare round trip to an echo thread in the same run.
 */

import { fileURLToPath } from 'node:url';
import { ClusterLab, VIP } from '../lab/cluster.js';
import { tail, type LabProcess } from '../lab/netns.js';
import { fmt, ratio, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

const HOST = fileURLToPath(new URL('./embedded-host.js', import.meta.url));
const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
/** The goal: the service's loop never waits longer than this for lnlb. */
const PAUSE_GOAL_MS = 10;

interface LoopWindow {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: number;
}

interface RttLine {
  what: string;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  calls: number;
}

function startHost(lab: ClusterLab, node: string, extra: string[] = []): LabProcess {
  const argv = [process.execPath, HOST, '--vip', VIP, '--run-dir', lab.runDir(node), '--key-file', lab.keyFile, '--node-name', node, ...extra];
  return lab.lab.spawn(node, argv, { logName: 'embedded-host' });
}

/** The JSON lines of `child`'s log with this event. */
function lines<T>(child: LabProcess, event: string): T[] {
  return tail(child.logFile, 100_000)
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as T);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Signals `children` and reads the loop window each prints. */
async function loopWindows(children: LabProcess[]): Promise<LoopWindow[]> {
  const before = children.map((c) => lines<LoopWindow>(c, 'loop').length);
  for (const c of children) c.kill('SIGUSR2');
  const deadline = Date.now() + 5000;
  for (;;) {
    const now = children.map((c) => lines<LoopWindow>(c, 'loop'));
    if (now.every((l, i) => l.length > before[i]!)) return now.map((l) => l[l.length - 1]!);
    if (Date.now() > deadline) throw new Error(`no loop window from ${children.map((c) => c.host).join(', ')}`);
    await sleep(50);
  }
}

export interface HostLoopResult {
  flows: number;
  sender: string;
  idle: LoopWindow;
  bystanderIdle: LoopWindow;
  bystanderJoin: LoopWindow;
  senderJoin: LoopWindow;
  newcomerJoin: LoopWindow;
  /** The sender's state-sent line: ms, entries. */
  sendMs: number;
  entries: number;
}

export async function runHostLoop(flows: number): Promise<HostLoopResult> {
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 1 });
  try {
    const bystander = lab.lab.spawn('client', [process.execPath, HOST, '--bystander'], { logName: 'bystander' });
    const members = ['node1', 'node2'].map((n) => startHost(lab, n));
    for (const m of [bystander, ...members]) await lab.lab.waitForLog(m, /"event":"up"/, 30_000);
    await lab.waitConverged(['node1', 'node2'], 20_000);
    const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(flows), '--base', '10.64.0.0'], { timeoutMs: 60_000 });
    if (run.code !== 0) throw new Error(`generator: ${run.stderr}`);
    await sleep(1500); // the actors record every flow
    // Reference: the members' loop over an idle window as long as the join's.
    const watched = [bystander, ...members];
    for (const m of watched) m.kill('SIGUSR1');
    await sleep(4000);
    const [bystanderIdle, ...idle] = await loopWindows(watched);
    for (const m of watched) m.kill('SIGUSR1');
    const newcomer = startHost(lab, 'node3');
    await lab.lab.waitForLog(newcomer, /"event":"state-loaded"/, 60_000);
    await lab.waitConverged(lab.nodes, 30_000);
    await sleep(1000);
    const [bystanderJoin, joined, ...rest] = await loopWindows([bystander, newcomer, ...members]);
    const senderIndex = members.findIndex((m) => tail(m.logFile, 100_000).includes('"event":"state-sent"'));
    const sentLine = tail(members[senderIndex]?.logFile ?? '', 100_000).split('\n').find((l) => l.includes('"event":"state-sent"')) ?? '';
    const field = (name: string): number => Number(new RegExp(`"${name}":(\\d+)`).exec(sentLine)?.[1] ?? Number.NaN);
    const worstIdle = idle.reduce((a, b) => (b.maxMs > a.maxMs ? b : a));
    return {
      flows,
      sender: members[senderIndex]?.host ?? 'none',
      idle: worstIdle,
      bystanderIdle: bystanderIdle!,
      bystanderJoin: bystanderJoin!,
      senderJoin: rest[senderIndex] ?? rest[0]!,
      newcomerJoin: joined!,
      sendMs: field('ms'),
      entries: field('entries'),
    };
  } finally {
    await lab.cleanup();
  }
}

export async function runStatusRtt(calls: number): Promise<RttLine[]> {
  const lab = await ClusterLab.create({ nodes: 2, clientAddresses: 1 });
  try {
    const hosts = lab.nodes.map((n) => startHost(lab, n, ['--status-calls', String(calls)]));
    await lab.lab.waitForLog(hosts[0]!, /"event":"rtt-done"/, 120_000);
    return lines<RttLine>(hosts[0]!, 'rtt');
  } finally {
    await lab.cleanup();
  }
}

export async function benchHostLoop(o: BenchOptions): Promise<BenchResult> {
  const flows = o.quick ? 100_000 : 1_000_000;
  o.progress(`host-loop: embedded nodes, a newcomer receives ${fmt(flows)} tracked flows; the services' event-loop delay`);
  const r = await runHostLoop(flows);
  const row = (who: string, w: LoopWindow, detail: string): BenchRow => ({
    figure: `${who}: loop delay p99/max, ms`,
    note: `the host service's event-loop delay (monitorEventLoopDelay, 1 ms resolution) while a newcomer joins two embedded members tracking ${fmt(flows)} flows, ${detail}; reference: a bystander process watching its own loop over the same window`,
    lnlb: `${fmt(w.p99Ms, 1)} / ${fmt(w.maxMs, 1)}`,
    reference: `bystander ${fmt(r.bystanderJoin.p99Ms, 1)} / ${fmt(r.bystanderJoin.maxMs, 1)}`,
    ratio: ratio(w.maxMs, r.bystanderJoin.maxMs),
    goal: `no pause > ${PAUSE_GOAL_MS} ms`,
    met: w.maxMs <= PAUSE_GOAL_MS,
  });
  return {
    rows: [row('sender', r.senderJoin, `on the member that sends the state (${r.sender}: ${fmt(r.entries)} entries, sent in ${fmt(r.sendMs)} ms)`), row('newcomer', r.newcomerJoin, 'on the newcomer, from its createNode() to 1 s after it converged')],
    json: r,
  };
}

export async function benchStatusRtt(o: BenchOptions): Promise<BenchResult> {
  const calls = o.quick ? 200 : 1000;
  o.progress(`status-rtt: ${calls} status round trips on an embedded node`);
  const rtts = await runStatusRtt(calls);
  const echo = rtts.find((r) => r.what === 'echo thread');
  const rows = rtts
    .filter((r) => r !== echo)
    .map((r): BenchRow => ({
      figure: `${r.what}: p50/p99, µs`,
      note: `${calls} status round trips one after the other on an embedded node, ${r.what === 'status()' ? 'node.status() in the process' : "the admin socket's status request, as lnlbctl status sends it"}; reference: a round trip to a thread that echoes at once`,
      lnlb: `${fmt(r.p50Us)} / ${fmt(r.p99Us)}`,
      reference: echo === undefined ? 'n/a' : `echo thread ${fmt(echo.p50Us)} / ${fmt(echo.p99Us)}`,
      ratio: ratio(r.p50Us, echo?.p50Us ?? Number.NaN),
      goal: '',
    }));
  return { rows, json: rtts };
}
