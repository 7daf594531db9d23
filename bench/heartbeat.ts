/**
 * Heartbeat: what one idle heartbeat round costs the control thread's JavaScript, through the
 * real ControlPlane → ControlChannel → ControlAuthenticator → Membership stack (keyed, as every
 * cluster is) on the memory wire with a manual clock: three nodes at default settings
 * (heartbeats every 100 ms), no traffic, for `rounds` rounds after a warm-up, so every function
 * on the path is optimised. CPU per node-round under --election rendezvous (the default) is the
 * reference for --election bucket in the same run: the bucket ledger, the handovers' ticks and
 * the bucket masks are what the second adds to every heartbeat.
 *
 * The daemon pays more per round than this (bench memory's idle rows): its wake-ups run this
 * code cold, through libuv and the kernel; this figure is the part our code decides.
 */

import { compileRules } from '../src/cluster/port-rules.js';
import type { ElectionName } from '../src/cluster/election.js';
import { parseMac } from '../src/net/ethernet.js';
import { ViewWriter } from '../src/shm/view.js';
import { ControlPlane } from '../src/workers/control-plane.js';
import { ManualClock, MemoryControlWire } from '../src/workers/control-socket.js';
import type { ControlData } from '../src/workers/messages.js';
import { fmt, ratio, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
const HEARTBEAT_MS = 100;
const DEAD_AFTER_MS = 700;

interface RoundCost {
  election: ElectionName;
  rounds: number;
  /** CPU µs per round per node. */
  usPerNodeRound: number;
  /** Timers that fired and frames delivered, per node per second (what wakes a real thread). */
  timersPerSecond: number;
  framesPerSecond: number;
}

async function measure(election: ElectionName, seconds: number): Promise<RoundCost> {
  const clock = new ManualClock(1000);
  const wire = new MemoryControlWire(clock, { delayMs: 1 });
  const key = new Uint8Array(32).fill(0x5a);
  const rules = compileRules([]);
  let timers = 0;
  const planes: ControlPlane[] = [];
  MACS.forEach((mac, i) => {
    const data: ControlData = {
      role: 'control',
      dev: 'memory',
      ownMac: parseMac(mac),
      clusterMac: parseMac('02:bf:0a:00:00:64'),
      clusterIp: 0x0a000064,
      multicast: false,
      mtu: 1500,
      key,
      heartbeatMs: HEARTBEAT_MS,
      deadAfterMs: DEAD_AFTER_MS,
      incarnation: i + 1,
      weight: 100,
      nodeName: `node${i + 1}`,
      address: 0x0a000001 + i,
      view: ViewWriter.allocate(),
      actorRings: [],
      rules: { digest: rules.digest, params: Array.from(rules.params) },
      election,
    };
    const counting = {
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
      preciseWallNow: () => clock.preciseWallNow(),
      defer: (cb: () => void) => clock.defer(cb),
      clearTimer: (h: unknown) => clock.clearTimer(h),
      setTimer: (cb: () => void, ms: number) =>
        clock.setTimer(() => {
          timers++;
          cb();
        }, ms),
    };
    const plane = new ControlPlane(data, () => undefined, { socket: wire.socket(data.ownMac, data.clusterMac), clock: counting });
    plane.start();
    planes.push(plane);
  });
  try {
    await clock.run(30_000); // joined, converged, and every function on the path optimised
    const rounds0 = planes[0]!.status().rounds;
    const frames0 = wire.framesSent;
    timers = 0;
    const cpu = process.cpuUsage();
    await clock.run(seconds * 1000);
    const used = process.cpuUsage(cpu);
    const rounds = planes[0]!.status().rounds - rounds0;
    // Every frame goes to the two other nodes.
    const delivered = (wire.framesSent - frames0) * (MACS.length - 1);
    return {
      election,
      rounds,
      usPerNodeRound: (used.user + used.system) / Math.max(1, rounds) / MACS.length,
      timersPerSecond: timers / seconds / MACS.length,
      framesPerSecond: delivered / seconds / MACS.length,
    };
  } finally {
    for (const plane of planes) plane.stop();
  }
}

export async function benchHeartbeat(o: BenchOptions): Promise<BenchResult> {
  const seconds = o.quick ? 300 : 1200;
  o.progress(`heartbeat: 3 keyed control planes on the memory wire, ${seconds} s of 100 ms rounds per election`);
  const reference = await measure('rendezvous', seconds);
  const bucket = await measure('bucket', seconds);
  const rows: BenchRow[] = [
    {
      figure: 'bucket: JS µs per node-round',
      note: `the control thread's JavaScript CPU for one idle heartbeat round of one node, µs: 3 keyed nodes on the memory wire, hb ${HEARTBEAT_MS} ms, ${fmt(bucket.rounds)} rounds, --election bucket; ref: the same with --election rendezvous`,
      lnlb: fmt(bucket.usPerNodeRound, 1),
      reference: fmt(reference.usPerNodeRound, 1),
      ratio: ratio(bucket.usPerNodeRound, reference.usPerNodeRound),
      goal: '',
    },
    {
      figure: 'bucket: timers / frames a second',
      note: 'timers fired / frames received per node per second in those idle rounds, --election bucket; ref: rendezvous',
      lnlb: `${fmt(bucket.timersPerSecond, 1)} / ${fmt(bucket.framesPerSecond, 1)}`,
      reference: `${fmt(reference.timersPerSecond, 1)} / ${fmt(reference.framesPerSecond, 1)}`,
      ratio: '',
      goal: '',
    },
  ];
  return { rows, json: { reference, bucket } };
}
