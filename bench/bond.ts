/**
 * The bond (lnlbd's userspace bonding driver) in three lab topologies, each figure beside a
 * reference from the same run:
 *
 * 1. active-backup failover, miimon=100, downdelay 0, on a Linux bridge:
 *
 *      a: bond0 ── eth0 ── sw (br0) ── p1 (ping -D -i 0.002 to a and to r)
 *               ── eth1 ──     │
 *      r: eth0 (10.9.0.3) ─────┤   the reference: no bond, eth1 has eth0's MAC and address
 *         eth1 (admin down) ───┘   and is brought up by hand the moment eth0's port is pulled
 *
 *    The active slave's switch port is pulled (at a random phase against the miimon period)
 *    while p1 pings every 2 ms; the traffic gap is
 *    the time between the last reply before and the first reply after (through eth1). The
 *    reference swap has no detection delay (it is done at the unplug), so it is the floor any
 *    host-side swap pays on this switch; the bond adds its link detection, bounded by
 *    miimon + downdelay = 100 ms. The port is plugged back in and the primary returns
 *    (primary_reselect=always) before the next trial; the failback gap is recorded too.
 *
 * 2. 802.3ad lacp_rate=fast, back to back (a ══ b, our bond on both sides): an nftables rule on
 *    the egress hook of b's eth1 drops its LACPDUs (carrier stays up; added at a random phase
 *    against the 1 s LACPDU period), a captures what still arrives, and a's `bond show` is
 *    polled every 20 ms until a's eth1 stops distributing. Reference: the short timeout of IEEE
 *    802.1AX (3 × the 1 s fast periodic time), counted from the last LACPDU received, so the
 *    time from the drop lies between 2 and 3 s.
 *
 * 3. TCP throughput a → b (iperf3 -P 4) over the bond with 2 slaves (balance-xor layer3+4),
 *    the same bond with 1 slave (eth1 released on both sides), and a plain veth pair in the
 *    same namespaces (eth2, no bond: the kernel path, the reference), interleaved.
 *
 * `bond show` is read over the admin socket (what `lnlbctl bond show --json` asks), so that a
 * poll costs a round trip, not a Node start.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BondLab } from '../lab/bond-lab.js';
import { waitExit, waitUntil, type LabProcess } from '../lab/netns.js';
import { adminRequest } from '../src/main/admin-client.js';
import type { BondShowJson } from '../src/main/admin-protocol.js';
import type { BondJson } from '../src/main/bond-manager.js';
import { cpuSeconds, fmt, fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type BenchRow, type Spread } from './report.js';
import { runOvsBond } from './bond-ovs.js';

const A_IP = '10.9.0.1';
const B_IP = '10.9.0.2';
const R_IP = '10.9.0.3';
const PLAIN_A_IP = '10.9.1.1';
const PLAIN_B_IP = '10.9.1.2';
const MIIMON_MS = 100;
const DOWNDELAY_MS = 0;
const PING_INTERVAL_S = 0.002;
/** Replies flow this long before the unplug (the first ones wait for ARP). */
const LEAD_MS = 300;
/** The stream goes on this long after the unplug: the gap ends well within it. */
const AFTER_CUT_MS = 500;
/** The stream goes on this long after the primary is back: the failback gap ends within it. */
const AFTER_BACK_MS = 200;
const SHORT_TIMEOUT_MS = 3000;
const FAST_PERIODIC_MS = 1000;
/** The Linux driver runs its 802.3ad machines every 100 ms (AD_TIMER_INTERVAL): its timeouts land within one tick. */
const AD_TICK_MS = 100;
const POLL_MS = 20;
/** actorState bits: synchronization, collecting, distributing. */
const SYNC_COLLECTING_DISTRIBUTING = 0x08 | 0x10 | 0x20;
const DISTRIBUTING = 0x20;
const LACPDU_DROP_RULE = ['ether', 'type', '0x8809', 'counter', 'drop'];

/**
 * A system tool by its absolute path: under `npm run bench`, node_modules/.bin comes first in
 * PATH and holds an `nft` of its own (@vercel/nft) that exits 0 to everything.
 */
function systemTool(name: string): string {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].map((dir) => `${dir}/${name}`).find((path) => existsSync(path)) ?? name;
}
const NFT = systemTool('nft');
const PING = systemTool('ping');
const IPERF3 = systemTool('iperf3');
const TSHARK = systemTool('tshark');

/** Wall clock in ms with sub-ms precision: the clock `ping -D` stamps its replies with. */
const wallMs = (): number => performance.timeOrigin + performance.now();

async function show(lab: BondLab, host: string): Promise<BondJson> {
  return ((await adminRequest(lab.runDir(host), 'bond.show', { bond: 'bond0' })) as BondShowJson).json;
}


// ---------------------------------------------------------------------------------------------
// 1. active-backup failover

/** One unplug: the traffic gap it caused and, for the bond, the failback gap. */
export interface GapTrial {
  /** Last reply before the outage to the first one after it. */
  gapMs: number;
  /** The unplug command issued to the first reply after the outage (includes the command's own run time). */
  fromUnplugMs: number;
  /** How long `ip link set PORT down` took to return. */
  unplugCommandMs: number;
  /** Replies that never came (sequence numbers missing up to the last reply). */
  lost: number;
  /** Bond only: the largest gap after the port was plugged back (the primary's return). */
  failbackGapMs?: number;
  /** Bond only: the active slave after the unplug. */
  activeAfter?: string;
}

export interface FailoverBench {
  trials: number;
  bond: GapTrial[];
  reference: GapTrial[];
  gap: Spread;
  fromUnplug: Spread;
  failbackGap: Spread;
  referenceGap: Spread;
  referenceFromUnplug: Spread;
  /** Bond trials with no reply after the unplug within the window. */
  notRecovered: number;
}

export interface PingReply {
  seq: number;
  atMs: number;
}

/** `ping -D` reply lines: `[1700000000.123456] 64 bytes from 10.9.0.1: icmp_seq=12 ttl=64 time=0.1 ms`. */
function parsePingReplies(output: string): PingReply[] {
  const replies: PingReply[] = [];
  for (const line of output.split('\n')) {
    const m = /^\[(\d+\.\d+)\] \d+ bytes from [\d.]+: icmp_seq=(\d+) /.exec(line);
    if (m === null || line.includes('DUP!')) continue;
    replies.push({ atMs: Number(m[1]) * 1000, seq: Number(m[2]) });
  }
  return replies;
}

/** The largest gap between consecutive replies whose end falls in [fromMs, toMs). */
function largestGap(replies: readonly PingReply[], fromMs: number, toMs = Number.POSITIVE_INFINITY): { gapMs: number; endMs: number } {
  let best = { gapMs: Number.NaN, endMs: Number.NaN };
  for (let i = 1; i < replies.length; i++) {
    const end = replies[i]!.atMs;
    if (end < fromMs || end >= toMs) continue;
    const gap = end - replies[i - 1]!.atMs;
    if (!(gap <= best.gapMs)) best = { gapMs: gap, endMs: end };
  }
  return best;
}

/** A steady ping stream from p1 to `target` (every `intervalS`) for the duration of `during`; its replies. */
export async function pingDuring(lab: BondLab, target: string, during: () => Promise<void>, intervalS = PING_INTERVAL_S, leadMs = LEAD_MS): Promise<PingReply[]> {
  const ping = lab.lab.spawn('p1', [PING, '-n', '-D', '-i', String(intervalS), target], { logName: 'ping' });
  try {
    await sleep(leadMs);
    await during();
  } finally {
    ping.kill('SIGINT'); // ping prints (and flushes) what it has, then exits
    if (!(await waitExit(ping, 3000))) ping.kill('SIGKILL');
  }
  return parsePingReplies(readFileSync(ping.logFile, 'utf8'));
}

export function gapTrial(replies: readonly PingReply[], cutAt: number, unplugCommandMs: number, backAt = Number.POSITIVE_INFINITY): GapTrial {
  if (!replies.some((r) => r.atMs < cutAt)) throw new Error('no ping reply before the unplug: the lab does not pass traffic');
  // Replies already on their way may still arrive just after the unplug: the outage is the
  // largest gap ending after it (and before the replug).
  const outage = largestGap(replies, cutAt, backAt);
  const last = replies[replies.length - 1]!.seq;
  const seen = new Set(replies.map((r) => r.seq));
  let lost = 0;
  for (let seq = replies[0]!.seq; seq <= last; seq++) if (!seen.has(seq)) lost++;
  const trial: GapTrial = { gapMs: outage.gapMs, fromUnplugMs: outage.endMs - cutAt, unplugCommandMs, lost };
  if (Number.isFinite(backAt)) trial.failbackGapMs = largestGap(replies, backAt).gapMs;
  return trial;
}

export async function runActiveBackup(trials: number, progress: (line: string) => void): Promise<FailoverBench> {
  const { lab, switchPorts } = await BondLab.onSwitch(2, [{ name: 'p1', address: `${B_IP}/24` }]);
  const bond: GapTrial[] = [];
  const reference: GapTrial[] = [];
  try {
    // The reference host: two switch ports, one MAC and one address, one port in use at a time.
    await lab.lab.addBareHost('r');
    const rPort0 = await lab.lab.addSwitchLink('r', 'eth0');
    await lab.lab.addSwitchLink('r', 'eth1');
    await lab.lab.ipIn('r', ['link', 'set', 'eth1', 'down']);
    await lab.lab.ipIn('r', ['link', 'set', 'eth1', 'address', await lab.mac('r', 'eth0')]);
    for (const dev of ['eth0', 'eth1']) await lab.lab.ipIn('r', ['address', 'add', `${R_IP}/24`, 'dev', dev]);
    const swap = join(lab.lab.dir, 'r-swap.batch');
    const unswap = join(lab.lab.dir, 'r-unswap.batch');
    writeFileSync(swap, 'link set eth0 down\nlink set eth1 up\n');
    writeFileSync(unswap, 'link set eth1 down\nlink set eth0 up\n');

    await lab.startDaemon('a');
    await lab.bond('a', ['mode=active-backup', `miimon=${MIIMON_MS}`, `downdelay=${DOWNDELAY_MS}`, 'primary=eth0', 'primary_reselect=always'], ['eth0', 'eth1'], `${A_IP}/24`);
    await waitUntil('a: eth0 active', async () => ((await show(lab, 'a')).status.active === 'eth0' ? true : undefined), 5000, POLL_MS);

    for (let i = 0; i < trials; i++) {
      // The reference: pull r's eth0 port and bring eth1 up at once (ip -batch, one process).
      let cutAt = 0;
      let unplugMs = 0;
      const refReplies = await pingDuring(lab, R_IP, async () => {
        cutAt = wallMs();
        await lab.lab.setSwitchPort(rPort0, false);
        unplugMs = wallMs() - cutAt;
        await lab.lab.ipIn('r', ['-batch', swap]);
        await sleep(AFTER_CUT_MS);
      });
      const ref = gapTrial(refReplies, cutAt, unplugMs);
      reference.push(ref);
      await lab.lab.ipIn('r', ['-batch', unswap]);
      await lab.lab.setSwitchPort(rPort0, true);

      // The bond: pull the active slave's port, wait, plug it back, wait for the primary.
      let backAt = 0;
      let activeAfter = '';
      const bondReplies = await pingDuring(lab, A_IP, async () => {
        // A random phase against the miimon period: the trials are otherwise paced by the
        // primary's return, itself on a miimon tick, and would all see the same detection delay.
        await sleep(Math.random() * MIIMON_MS);
        cutAt = wallMs();
        await lab.lab.setSwitchPort(switchPorts[0]!, false);
        unplugMs = wallMs() - cutAt;
        await sleep(AFTER_CUT_MS);
        activeAfter = (await show(lab, 'a')).status.active ?? 'none';
        backAt = wallMs();
        await lab.lab.setSwitchPort(switchPorts[0]!, true);
        await waitUntil('a: the primary eth0 active again', async () => ((await show(lab, 'a')).status.active === 'eth0' ? true : undefined), 5000, POLL_MS);
        await sleep(AFTER_BACK_MS);
      });
      const t = { ...gapTrial(bondReplies, cutAt, unplugMs, backAt), activeAfter };
      bond.push(t);
      progress(
        `  unplug ${i + 1}/${trials}: bond gap ${fmt(t.gapMs, 1)} ms (first reply ${fmt(t.fromUnplugMs, 1)} ms after the unplug, active ${activeAfter}, failback gap ${fmt(t.failbackGapMs ?? Number.NaN, 1)} ms); hand swap ${fmt(ref.gapMs, 1)} ms`,
      );
    }
  } catch (error) {
    process.stderr.write(`${lab.logTails()}\n`);
    throw error;
  } finally {
    await lab.cleanup();
  }
  const recovered = bond.filter((t) => Number.isFinite(t.gapMs) && t.activeAfter === 'eth1');
  return {
    trials,
    bond,
    reference,
    gap: spread(recovered.map((t) => t.gapMs)),
    fromUnplug: spread(recovered.map((t) => t.fromUnplugMs)),
    failbackGap: spread(recovered.map((t) => t.failbackGapMs ?? Number.NaN).filter(Number.isFinite)),
    referenceGap: spread(reference.map((t) => t.gapMs).filter(Number.isFinite)),
    referenceFromUnplug: spread(reference.map((t) => t.fromUnplugMs).filter(Number.isFinite)),
    notRecovered: bond.length - recovered.length,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. 802.3ad: the partner's LACPDUs stop

export interface LacpTrial {
  /** Random wait after both ports distribute, before the drop (its phase against the 1 s LACPDU period). */
  phaseMs: number;
  /** The nft rule command issued → a's eth1 seen not distributing. */
  fromDropMs: number;
  /** The last LACPDU from b's eth1 that a received (tshark on a's eth1) → a's eth1 seen not distributing. */
  fromLastLacpduMs: number;
  /** The start of the last poll that still saw the port distributing, from the last LACPDU: the expiry came after it. */
  stillDistributingMs: number;
  /** How long the nft command took (the rule is in place somewhere in that window). */
  ruleMs: number;
  /** LACPDUs the rule dropped. */
  dropped: number;
  /** a's eth1 MII status when it stopped distributing (the carrier stays up). */
  miiStatus: string;
  because: string;
}

export interface LacpBench {
  trials: LacpTrial[];
  fromDrop: Spread;
  fromLastLacpdu: Spread;
}

export async function waitDistributing(lab: BondLab, host: string, ports: number): Promise<void> {
  await waitUntil(
    `${host}: ${ports} ports collecting and distributing`,
    async () => {
      const s = await show(lab, host);
      const n = s.slaves.filter((x) => ((x.actorState ?? 0) & SYNC_COLLECTING_DISTRIBUTING) === SYNC_COLLECTING_DISTRIBUTING).length;
      return n === ports ? true : undefined;
    },
    15_000,
    POLL_MS,
  );
}

async function nft(lab: BondLab, host: string, args: string[]): Promise<string> {
  const r = await lab.lab.exec(host, [NFT, ...args]);
  if (r.code !== 0) throw new Error(`nft ${args.join(' ')} in ${host}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Receive times (wall clock, ms) of the frames a `tshark -T fields -e frame.time_epoch` has printed so far. */
function capturedTimes(capture: LabProcess): number[] {
  return readFileSync(capture.logFile, 'utf8')
    .split('\n')
    .filter((l) => /^\d+\.\d+$/.test(l.trim()))
    .map((l) => Number(l.trim()) * 1000);
}

export async function runLacpTimeout(trials: number, progress: (line: string) => void): Promise<LacpBench> {
  const lab = await BondLab.backToBack(2);
  const results: LacpTrial[] = [];
  try {
    // A chain on the egress hook of b's eth1, empty until a trial adds the drop rule.
    await nft(lab, 'b', ['add', 'table', 'netdev', 'lb']);
    await nft(lab, 'b', ['add', 'chain', 'netdev', 'lb', 'eg', '{ type filter hook egress device eth1 priority 0; }']);
    const options = ['mode=802.3ad', `miimon=${MIIMON_MS}`, 'lacp_rate=fast', 'xmit_hash_policy=layer3+4'];
    await lab.startDaemon('a');
    await lab.startDaemon('b');
    await lab.bond('a', options, ['eth0', 'eth1'], `${A_IP}/24`);
    await lab.bond('b', options, ['eth0', 'eth1'], `${B_IP}/24`);
    // b's LACPDUs as a's eth1 receives them (sent from the port's own MAC, as the driver does).
    const bEth1 = (await show(lab, 'b')).slaves.find((x) => x.name === 'eth1')!.permanentMac;
    const capture = lab.lab.spawn('a', [TSHARK, '-l', '-n', '-i', 'eth1', '-f', `ether proto 0x8809 and ether src ${bEth1}`, '-T', 'fields', '-e', 'frame.time_epoch'], { logName: 'tshark' });
    await lab.lab.waitForLog(capture, /Capturing on/, 15_000);
    for (let i = 0; i < trials; i++) {
      await waitDistributing(lab, 'a', 2);
      await waitDistributing(lab, 'b', 2);
      // Both ports distribute right after an exchange of LACPDUs: a random wait within the
      // periodic time, so the drop does not always come just after b's last LACPDU.
      const phaseMs = Math.random() * FAST_PERIODIC_MS;
      await sleep(phaseMs);
      const t0 = performance.now();
      await nft(lab, 'b', ['add', 'rule', 'netdev', 'lb', 'eg', ...LACPDU_DROP_RULE]);
      const ruleMs = performance.now() - t0;
      // Each poll's start: the port was still distributing at some moment after the start of
      // the last poll that saw it so, and had stopped before the end of the first that did not.
      let seenDistributingAt = wallMs();
      const eth1 = await waitUntil(
        'a: eth1 not distributing',
        async () => {
          const askedAt = wallMs();
          const s = await show(lab, 'a');
          const slave = s.slaves.find((x) => x.name === 'eth1');
          if (slave === undefined || ((slave.actorState ?? 0) & DISTRIBUTING) !== 0) {
            seenDistributingAt = askedAt;
            return undefined;
          }
          return { port: s.status.slaves.find((x) => x.name === 'eth1'), at: performance.now(), wall: wallMs(), askedAt };
        },
        SHORT_TIMEOUT_MS + 5000,
        POLL_MS,
      );
      const lastRx = Math.max(...capturedTimes(capture).filter((t) => t < eth1.wall));
      const listed = await nft(lab, 'b', ['list', 'chain', 'netdev', 'lb', 'eg']);
      await nft(lab, 'b', ['flush', 'chain', 'netdev', 'lb', 'eg']);
      const t: LacpTrial = {
        phaseMs,
        fromDropMs: eth1.at - t0,
        fromLastLacpduMs: eth1.wall - lastRx,
        stillDistributingMs: seenDistributingAt - lastRx,
        ruleMs,
        dropped: Number(/counter packets (\d+)/.exec(listed)?.[1] ?? Number.NaN),
        miiStatus: eth1.port?.miiStatus ?? 'unknown',
        because: eth1.port?.notDistributingBecause ?? '',
      };
      results.push(t);
      progress(
        `  LACPDUs dropped ${i + 1}/${trials}: a's eth1 stopped distributing ${fmt(t.fromDropMs)} ms after the drop, ${fmt(t.fromLastLacpduMs)} ms after the last LACPDU it received, still distributing at ${fmt(t.stillDistributingMs)} ms (nft took ${fmt(ruleMs)} ms, ${t.dropped} LACPDUs dropped, MII ${t.miiStatus}: ${t.because})`,
      );
    }
  } catch (error) {
    process.stderr.write(`${lab.logTails()}\n`);
    throw error;
  } finally {
    await lab.cleanup();
  }
  return { trials: results, fromDrop: spread(results.map((t) => t.fromDropMs)), fromLastLacpdu: spread(results.map((t) => t.fromLastLacpduMs)) };
}

// ---------------------------------------------------------------------------------------------
// 3. TCP throughput

export type PathName = 'bond2' | 'bond1' | 'plain';

export interface ThroughputSample {
  path: PathName;
  gbps: number;
  /** Frames a sent on eth0 and eth1 during the run (bond paths). */
  txEth0: number;
  txEth1: number;
  /** CPU seconds per second of a's and b's lnlbd during the run (bond paths). */
  cpuA: number;
  cpuB: number;
}

export interface ThroughputBench {
  seconds: number;
  streams: number;
  samples: ThroughputSample[];
  bond2: Spread;
  bond1: Spread;
  plain: Spread;
}

/** iperf3 from host a to `server` (an address of `serverHost`, b by default): Gbit/s received. */
export async function iperf(lab: BondLab, server: string, seconds: number, streams: number, serverHost = 'b'): Promise<number> {
  const child: LabProcess = lab.lab.spawn(serverHost, [IPERF3, '-s', '-1', '-B', server], { logName: 'iperf3-server' });
  try {
    await sleep(300);
    const r = await lab.lab.exec('a', [IPERF3, '-c', server, '-t', String(seconds), '-P', String(streams), '-J'], { timeoutMs: (seconds + 20) * 1000 });
    if (r.code !== 0) throw new Error(`iperf3 to ${server} failed (${r.code}): ${r.stderr || r.stdout.slice(0, 400)}`);
    return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
  } finally {
    child.kill();
    await waitExit(child, 2000);
  }
}

async function measure(lab: BondLab, path: PathName, seconds: number, streams: number): Promise<ThroughputSample> {
  const pids = ['a', 'b'].map((h) => lab.daemon(h)!.pid!);
  const [e0, e1] = [await lab.counters('a', 'eth0'), await lab.counters('a', 'eth1')];
  const [ca, cb] = [await cpuSeconds(pids[0]!), await cpuSeconds(pids[1]!)];
  const started = performance.now();
  const gbps = await iperf(lab, path === 'plain' ? PLAIN_B_IP : B_IP, seconds, streams);
  const elapsed = (performance.now() - started) / 1000;
  const [ca2, cb2] = [await cpuSeconds(pids[0]!), await cpuSeconds(pids[1]!)];
  const [f0, f1] = [await lab.counters('a', 'eth0'), await lab.counters('a', 'eth1')];
  return { path, gbps, txEth0: f0.txPackets - e0.txPackets, txEth1: f1.txPackets - e1.txPackets, cpuA: (ca2 - ca) / elapsed, cpuB: (cb2 - cb) / elapsed };
}

export async function runThroughput(seconds: number, reps: number, progress: (line: string) => void): Promise<ThroughputBench> {
  const streams = 4;
  const lab = await BondLab.backToBack(3);
  const samples: ThroughputSample[] = [];
  try {
    await lab.lab.ipIn('a', ['address', 'add', `${PLAIN_A_IP}/24`, 'dev', 'eth2']);
    await lab.lab.ipIn('b', ['address', 'add', `${PLAIN_B_IP}/24`, 'dev', 'eth2']);
    const options = ['mode=balance-xor', `miimon=${MIIMON_MS}`, 'xmit_hash_policy=layer3+4'];
    await lab.startDaemon('a');
    await lab.startDaemon('b');
    await lab.bond('a', options, ['eth0', 'eth1'], `${A_IP}/24`);
    await lab.bond('b', options, ['eth0', 'eth1'], `${B_IP}/24`);
    const check = await lab.lab.exec('a', [PING, '-n', '-c', '3', '-i', '0.2', '-W', '1', B_IP]);
    if (check.code !== 0) throw new Error(`no ping through the bond: ${check.stdout}${check.stderr}`);
    const run = async (path: PathName): Promise<void> => {
      const s = await measure(lab, path, seconds, streams);
      samples.push(s);
      progress(`  ${path}: ${fmt(s.gbps, 2)} Gbit/s${path === 'plain' ? '' : ` (a sent eth0 ${s.txEth0} / eth1 ${s.txEth1} frames; lnlbd CPU a ${fmt(s.cpuA, 2)} b ${fmt(s.cpuB, 2)} s/s)`}`);
    };
    for (let i = 0; i < reps; i++) for (const path of ['plain', 'bond2'] as const) await run(path);
    await lab.lnlbctl('a', ['bond', 'release', 'bond0', 'eth1']);
    await lab.lnlbctl('b', ['bond', 'release', 'bond0', 'eth1']);
    for (let i = 0; i < reps; i++) for (const path of ['bond1', 'plain'] as const) await run(path);
  } catch (error) {
    process.stderr.write(`${lab.logTails()}\n`);
    throw error;
  } finally {
    await lab.cleanup();
  }
  const of = (path: PathName): Spread => spread(samples.filter((s) => s.path === path).map((s) => s.gbps));
  return { seconds, streams, samples, bond2: of('bond2'), bond1: of('bond1'), plain: of('plain') };
}

// ---------------------------------------------------------------------------------------------

export async function benchBond(o: BenchOptions): Promise<BenchResult> {
  const unplugs = o.quick ? 3 : 10;
  o.progress(`bond: active-backup miimon=${MIIMON_MS} on a bridge, ${unplugs} unplugs of the active slave (and as many hand swaps without a bond)`);
  const fo = await runActiveBackup(unplugs, o.progress);
  const lacpTrials = o.quick ? 2 : 5;
  o.progress(`bond: 802.3ad lacp_rate=fast back to back, ${lacpTrials} times the partner's LACPDUs dropped on one link`);
  const lacp = await runLacpTimeout(lacpTrials, o.progress);
  const seconds = o.quick ? 2 : 5;
  const reps = o.quick ? 1 : 2;
  o.progress(`bond: iperf3 -P 4 for ${seconds} s over the bond (2 and 1 slaves) and a plain veth pair, ${reps} runs each`);
  const tp = await runThroughput(seconds, reps, o.progress);
  const ovsTrials = o.quick ? 2 : 10;
  o.progress(`bond: 802.3ad against Open vSwitch (LACP, balance-tcp), ${ovsTrials} links down under a 100 Hz ping, then iperf3 -P 4 with 2 ports and 1`);
  const ovs = await runOvsBond(ovsTrials, seconds, reps, o.progress);

  const bound = MIIMON_MS + DOWNDELAY_MS;
  const lacpLow = SHORT_TIMEOUT_MS - FAST_PERIODIC_MS;
  // The detection delay is at most one miimon period; the rest is the switch relearning, which
  // the hand swap pays too.
  const failoverGoal = bound + fo.referenceGap.median;
  const cpu = (path: PathName): string => {
    const runs = tp.samples.filter((x) => x.path === path);
    return `${fmt(spread(runs.map((x) => x.cpuA)).median, 2)} / ${fmt(spread(runs.map((x) => x.cpuB)).median, 2)}`;
  };
  const rows: BenchRow[] = [
    {
      figure: 'active-backup: gap at unplug, ms',
      note: `active-backup, miimon ${MIIMON_MS}, downdelay ${DOWNDELAY_MS}, on a Linux bridge: the traffic gap when the active slave's switch port is pulled (a ping every 2 ms), ${fo.gap.samples.length} of ${fo.trials} unplugs, median (min–max) ms; ref: the same swap done by hand at the unplug, no bond. The goal: the detection within miimon + downdelay, the rest the switch relearning, which the hand swap pays too`,
      lnlb: fmtSpread(fo.gap, 1),
      reference: fmtSpread(fo.referenceGap, 1),
      ratio: ratio(fo.gap.median, fo.referenceGap.median),
      goal: `worst ≤ ${fmt(failoverGoal)} ms, all fail over`,
      met: fo.notRecovered === 0 && fo.gap.max <= failoverGoal,
    },
    {
      figure: '  port down → other slave, ms',
      note: `\`ip link set PORT down\` issued to the first reply through the other slave (the command's own run time included), median (min–max) ms; ref: miimon + downdelay (${bound} ms)`,
      lnlb: fmtSpread(fo.fromUnplug, 1),
      reference: fmt(bound),
      ratio: ratio(fo.fromUnplug.median, bound),
      goal: '',
    },
    {
      figure: '  failback gap, ms',
      note: 'the traffic gap when the port is back and the primary slave takes over again (primary_reselect=always), median (min–max) ms',
      lnlb: fmtSpread(fo.failbackGap, 1),
      reference: '',
      ratio: '',
      goal: '',
    },
    {
      figure: '802.3ad: LACP timeout, ms',
      note: `802.3ad, lacp_rate=fast, back to back: the partner's LACPDUs dropped on one link (nft on its egress, carrier up, at a random phase), ${lacp.trials.length} trials: ms from the drop until our port stops distributing, median (min–max); ref: 802.1AX's short timeout (3 × the fast periodic ${FAST_PERIODIC_MS} ms)`,
      lnlb: fmtSpread(lacp.fromDrop),
      reference: fmt(SHORT_TIMEOUT_MS),
      ratio: ratio(lacp.fromDrop.median, SHORT_TIMEOUT_MS),
      goal: `all in ${fmt(lacpLow)}–${fmt(SHORT_TIMEOUT_MS + AD_TICK_MS)} ms`,
      met: lacp.fromDrop.min >= lacpLow - Math.max(...lacp.trials.map((t) => t.ruleMs)) && lacp.fromDrop.max <= SHORT_TIMEOUT_MS + AD_TICK_MS,
    },
    {
      figure: '  from the last LACPDU, ms',
      note: `the same, counted from the last LACPDU our port received (tshark on it), median (min–max) ms; ref: the short timeout. The goal: the timeout, within the driver's ${AD_TICK_MS} ms tick`,
      lnlb: fmtSpread(lacp.fromLastLacpdu),
      reference: fmt(SHORT_TIMEOUT_MS),
      ratio: ratio(lacp.fromLastLacpdu.median, SHORT_TIMEOUT_MS),
      goal: `all in ${fmt(SHORT_TIMEOUT_MS)}–${fmt(SHORT_TIMEOUT_MS + AD_TICK_MS)} ms`,
      met: lacp.fromLastLacpdu.min >= SHORT_TIMEOUT_MS && lacp.fromLastLacpdu.max <= SHORT_TIMEOUT_MS + AD_TICK_MS,
    },
    {
      figure: 'balance-xor, 2 slaves: Gbit/s',
      note: `balance-xor, xmit_hash_policy layer3+4, 2 slaves: TCP from host a to host b, iperf3 -P ${tp.streams} for ${tp.seconds} s, Gbit/s median (min–max); ref: a plain veth pair (the kernel path), same lab. Reported: 2 shared cores, one bond thread per host`,
      lnlb: fmtSpread(tp.bond2, 2),
      reference: fmtSpread(tp.plain, 2),
      ratio: ratio(tp.bond2.median, tp.plain.median),
      goal: '',
    },
    {
      figure: 'balance-xor, 1 slave: Gbit/s',
      note: 'the same with 1 slave; ref: the plain veth pair',
      lnlb: fmtSpread(tp.bond1, 2),
      reference: fmtSpread(tp.plain, 2),
      ratio: ratio(tp.bond1.median, tp.plain.median),
      goal: '',
    },
    {
      figure: 'balance-xor: 2 slaves ÷ 1',
      note: 'Gbit/s with 2 slaves; ref: the same bond with 1',
      lnlb: fmt(tp.bond2.median, 2),
      reference: fmt(tp.bond1.median, 2),
      ratio: ratio(tp.bond2.median, tp.bond1.median),
      goal: '',
    },
    {
      figure: '802.3ad vs OVS: gap at link down, ms',
      note: `802.3ad against Open vSwitch (its userspace datapath, LACP fast, balance-tcp): one link down (each in turn) under a 100 Hz ping from a peer on the switch, ${ovs.trials.length} trials: the largest gap, median (min–max) ms; ref: the ping interval`,
      lnlb: fmtSpread(ovs.gap, 1),
      reference: '10',
      ratio: ratio(ovs.gap.median, 10),
      goal: '',
    },
    {
      figure: '802.3ad vs OVS, 2 ports: Gbit/s',
      note: `TCP to the peer through Open vSwitch, iperf3 -P ${ovs.streams} for ${ovs.seconds} s, 2 ports, Gbit/s median (min–max); ref: the same bond with 1 port, this run. Reported: the peer has one link, and OVS forwards in userspace on 2 shared cores`,
      lnlb: fmtSpread(ovs.twoPorts, 2),
      reference: fmtSpread(ovs.onePort, 2),
      ratio: ratio(ovs.twoPorts.median, ovs.onePort.median),
      goal: '',
    },
    {
      figure: 'lnlbd CPU, 2 | 1 slaves: a / b',
      note: "lnlbd's CPU during the iperf3 runs over the bond, with 2 slaves | with 1: host a / host b, CPU seconds per second (of 2 cores, shared with iperf3 and the kernel)",
      lnlb: `${cpu('bond2')} | ${cpu('bond1')}`,
      reference: '',
      ratio: '',
      goal: '',
    },
  ];
  return { rows, json: { activeBackup: fo, lacp, throughput: tp, againstOvs: ovs } };
}
