/**
 * Join and state sync: two nodes track `flows` distinct sources (a generator sends one frame
 * from each), then a third node joins and receives the first member's tracking state. Reported:
 * entries, bytes and fragments on the wire, the sender's and the newcomer's time (from the
 * daemons' own log lines), and the newcomer's time from start to convergence. Then the same
 * join with the switch dropping 30% of the state's fragments (nft): fragments dropped, asked
 * again, requests, and the time until the state is complete, beside the lossless join's.
 */

import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../lab/cluster.js';
import { tail } from '../lab/netns.js';
import { fmt, fmtSpread, spread, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

export interface JoinResult {
  flows: number;
  entriesSent: number;
  bytes: number;
  fragments: number;
  sendMs: number;
  loadMs: number;
  entriesLoaded: number;
  joinMs: number;
  /** The newcomer's state-received line: complete this long after it started, fragments asked again, requests. */
  completeMs: number;
  fragmentsAsked: number;
  requests: number;
  /** Percent of the state's fragments the switch dropped, and how many it did. */
  lossPercent: number;
  dropped: number;
}

/** The switch's share of state fragments dropped in the lossy join. */
const LOSS_PERCENT = 30;

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));

function field(line: string | undefined, name: string): number {
  return Number(new RegExp(`"${name}":(\\d+)`).exec(line ?? '')?.[1] ?? Number.NaN);
}

export async function runJoin(flows: number, lossPercent = 0): Promise<JoinResult> {
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 1 });
  try {
    for (const node of ['node1', 'node2']) lab.startDaemon(node, ['--log-level', 'info']);
    await lab.waitConverged(['node1', 'node2'], 20_000);
    // One frame from each source, 65536 sources per /16 (the generator varies the low 16 bits).
    const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(flows), '--base', '10.64.0.0'], { timeoutMs: 60_000 });
    if (run.code !== 0) throw new Error(`generator: ${run.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the actors record every flow
    const dropped = lossPercent > 0 ? await lab.dropStateFragments(lossPercent) : async () => 0;
    const started = performance.now();
    const newcomer = lab.startDaemon('node3', ['--log-level', 'info']);
    await lab.waitConverged(lab.nodes, 60_000);
    const joinMs = performance.now() - started;
    await lab.lab.waitForLog(newcomer, /"event":"state-loaded"/, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The first member of the table (by MAC) sends: node1 or node2.
    const sentLine = ['node1', 'node2']
      .flatMap((node) => tail(lab.daemon(node)!.logFile, 400).split('\n'))
      .find((l) => l.includes('"event":"state-sent"'));
    const loadedLine = tail(newcomer.logFile, 400).split('\n').find((l) => l.includes('"event":"state-loaded"'));
    const receivedLine = tail(newcomer.logFile, 400).split('\n').find((l) => l.includes('"event":"state-received"'));
    return {
      flows,
      entriesSent: field(sentLine, 'entries'),
      bytes: field(sentLine, 'bytes'),
      fragments: field(sentLine, 'fragments'),
      sendMs: field(sentLine, 'ms'),
      entriesLoaded: field(loadedLine, 'entries'),
      loadMs: field(loadedLine, 'ms'),
      joinMs,
      completeMs: field(receivedLine, 'ms'),
      fragmentsAsked: field(receivedLine, 'fragmentsAsked'),
      requests: field(receivedLine, 'requests'),
      lossPercent,
      dropped: await dropped(),
    };
  } finally {
    await lab.cleanup();
  }
}

export interface BucketJoinResult {
  flows: number;
  /** Flows the two members handed the newcomer, the bytes of their handovers, and how many messages. */
  handed: number;
  bytes: number;
  messages: number;
  /** The members' scans of their shards (the slower one), ms. */
  scanMs: number;
  /** How long the newcomer held its gained buckets' new flows for the handovers, ms; -1 if it timed out. */
  releaseMs: number;
  joinMs: number;
}

function lines(lab: ClusterLab, node: string, event: string): string[] {
  return tail(lab.daemon(node)!.logFile, 2000)
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`));
}

/**
 * The same join under --election bucket: the newcomer is handed the table alone, and each
 * member sends it only the flows of the buckets that move to it (cluster/bucket-handover.ts).
 */
export async function runBucketJoin(flows: number): Promise<BucketJoinResult> {
  const lab = await ClusterLab.create({ nodes: 3, clientAddresses: 1 });
  const args = ['--log-level', 'debug', '--election', 'bucket', '--weight-mode', 'fixed'];
  try {
    for (const node of ['node1', 'node2']) lab.startDaemon(node, args);
    await lab.waitConverged(['node1', 'node2'], 20_000);
    const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(flows), '--base', '10.64.0.0'], { timeoutMs: 60_000 });
    if (run.code !== 0) throw new Error(`generator: ${run.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const started = performance.now();
    const newcomer = lab.startDaemon('node3', args);
    await lab.waitConverged(lab.nodes, 60_000);
    const joinMs = performance.now() - started;
    await lab.lab.waitForLog(newcomer, /"event":"buckets-release(d|-timeout)"/, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sent = ['node1', 'node2'].flatMap((node) => lines(lab, node, 'handover-sent'));
    const scans = ['node1', 'node2'].flatMap((node) => lines(lab, node, 'handover-scanned'));
    const released = lines(lab, 'node3', 'buckets-released').at(-1);
    return {
      flows,
      handed: sent.reduce((n, l) => n + field(l, 'entries'), 0),
      bytes: sent.reduce((n, l) => n + field(l, 'bytes'), 0),
      messages: sent.length,
      scanMs: Math.max(0, ...scans.map((l) => field(l, 'ms'))),
      releaseMs: released === undefined ? -1 : field(released, 'ms'),
      joinMs,
    };
  } finally {
    await lab.cleanup();
  }
}

/** Join and state sync for 10k, 100k and 1M tracked flows; the goal: 1M entries synced in < 1 s. */
export async function benchJoin(o: BenchOptions): Promise<BenchResult> {
  const rows: BenchRow[] = [];
  const json: JoinResult[] = [];
  const reps = o.quick ? 1 : 3;
  for (const flows of o.quick ? [10_000] : [10_000, 100_000, 1_000_000]) {
    const runs: JoinResult[] = [];
    for (let rep = 0; rep < reps; rep++) {
      o.progress(`join: a newcomer receives ${fmt(flows)} tracked flows (run ${rep + 1} of ${reps})`);
      runs.push(await runJoin(flows));
    }
    json.push(...runs);
    const sync = spread(runs.map((r) => r.sendMs + r.loadMs));
    const join = spread(runs.map((r) => r.joinMs));
    const r = runs[0]!;
    const allLoaded = runs.every((x) => x.entriesLoaded === flows);
    rows.push({
      figure: `${fmt(flows)} flows: sent + loaded, ms`,
      note: `a newcomer joins a cluster that tracks ${fmt(flows)} flows: ms for the state to be sent + to be loaded, median (min–max) of ${runs.length} run(s); ${fmt(r.bytes)} B in ${fmt(r.fragments)} frames, the newcomer converged after ${fmtSpread(join)} ms. ref: the entries the newcomer loaded; ratio: bytes sent per flow`,
      lnlb: fmtSpread(sync),
      reference: allLoaded ? `all ${fmt(flows)} loaded` : `${runs.map((x) => fmt(x.entriesLoaded)).join(', ')} loaded`,
      ratio: `${fmt(r.bytes / Math.max(1, r.entriesLoaded), 1)} B/flow`,
      goal: flows === 1_000_000 ? '1M synced < 1 s' : '',
      ...(flows === 1_000_000 ? { met: sync.median < 1000 && allLoaded } : {}),
    });
  }
  // The same joins under --election bucket: the members hand over only what moves to the newcomer.
  for (const flows of o.quick ? [10_000] : [10_000, 100_000, 1_000_000]) {
    const runs: BucketJoinResult[] = [];
    for (let rep = 0; rep < reps; rep++) {
      o.progress(`join: --election bucket, the members hand a newcomer its third of ${fmt(flows)} tracked flows (run ${rep + 1} of ${reps})`);
      runs.push(await runBucketJoin(flows));
    }
    json.push(...runs.map((r) => ({ election: 'bucket', ...r }) as unknown as JoinResult));
    const full = json.filter((r) => r.flows === flows && r.entriesSent !== undefined && !('election' in r));
    const release = spread(runs.map((r) => r.releaseMs));
    const r = runs[0]!;
    rows.push({
      figure: `${fmt(flows)} flows, bucket: handover, ms`,
      note: `the same join under --election bucket, where the members hand the newcomer only the flows of the buckets it gains: ms the newcomer held those buckets for the members' handovers (${runs.map((x) => fmt(x.handed)).join('/')} flows handed, ${fmt(r.bytes)} B in ${r.messages} messages; the slower member's scan ${runs.map((x) => fmt(x.scanMs)).join('/')} ms; converged after ${fmtSpread(spread(runs.map((x) => x.joinMs)))} ms). ref: the bytes of the whole state sent to one newcomer (the row above); ratio: the bytes handed over against those`,
      lnlb: fmtSpread(release),
      reference: full.length > 0 ? `${fmt(full[0]!.bytes)} B` : '',
      ratio: full.length > 0 ? `${fmt(r.bytes / Math.max(1, full[0]!.bytes), 2)}× bytes` : '',
      goal: 'released by the handovers',
      met: runs.every((x) => x.releaseMs >= 0),
    });
  }
  // The same join, the switch dropping LOSS_PERCENT of the state's fragments: the newcomer asks again.
  const flows = 10_000;
  const lossless: JoinResult[] = json.filter((r) => r.flows === flows && !('election' in r));
  const lossy: JoinResult[] = [];
  for (let rep = 0; rep < reps; rep++) {
    o.progress(`join: ${fmt(flows)} tracked flows, ${LOSS_PERCENT}% of the state's fragments dropped (run ${rep + 1} of ${reps})`);
    lossy.push(await runJoin(flows, LOSS_PERCENT));
  }
  json.push(...lossy);
  const complete = spread(lossy.map((r) => r.completeMs));
  const reference = spread(lossless.map((r) => r.completeMs));
  const r = lossy[0]!;
  rows.push({
    figure: `${fmt(flows)} flows, ${LOSS_PERCENT}% frames lost: ms`,
    note: `the join of ${fmt(flows)} flows with the switch dropping ${LOSS_PERCENT}% of the state's ${fmt(r.fragments)} fragments (dropped ${lossy.map((x) => fmt(x.dropped)).join('/')}, asked again ${lossy.map((x) => fmt(x.fragmentsAsked)).join('/')} in ${lossy.map((x) => fmt(x.requests)).join('/')} requests; ${lossy.every((x) => x.entriesLoaded === flows) ? 'all loaded' : 'NOT all loaded'}): ms from the newcomer's start until its state is complete; ref: the same without loss`,
    lnlb: fmtSpread(complete),
    reference: fmtSpread(reference),
    ratio: `${fmt(complete.median / Math.max(1, reference.median), 2)}×`,
    goal: 'all loaded before serving',
    met: lossy.every((x) => x.entriesLoaded === flows),
  });
  return { rows, json };
}
