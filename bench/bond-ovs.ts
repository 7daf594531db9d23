/**
 * lnlb's 802.3ad bond against Open vSwitch (userspace datapath, LACP active, balance-tcp, fast
 * LACPDUs): what the failover costs when a link goes down under a 100 Hz ping from a peer on
 * the switch (each trial takes the other link down, so the ping's flow is on the lost link
 * about half the time), and what a second port brings to TCP throughput towards that peer,
 * against the same bond with one port, in the same run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BondLab } from '../lab/bond-lab.js';
import { gapTrial, iperf, pingDuring, waitDistributing, type GapTrial } from './bond.js';
import { spread, type Spread } from './report.js';

const A_IP = '10.9.0.1';
const P_IP = '10.9.0.2';
const PING_100HZ_S = 0.01;
const AFTER_CUT_MS = 500;
/** Ping before the link goes: OVS's userspace datapath sets up each new flow on its first packets (an upcall), slower on a loaded machine. */
const LEAD_MS = 1000;
const OPTIONS = ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4'];

export interface OvsBondBench {
  trials: GapTrial[];
  gap: Spread;
  seconds: number;
  streams: number;
  twoPorts: Spread;
  onePort: Spread;
}

const wallMs = (): number => performance.timeOrigin + performance.now();

export async function runOvsBond(trials: number, seconds: number, reps: number, progress: (line: string) => void): Promise<OvsBondBench> {
  const streams = 4;
  const { lab, switchPorts } = await BondLab.onOvs(2, [{ name: 'p1', address: `${P_IP}/24` }], 'active');
  const results: GapTrial[] = [];
  const two: number[] = [];
  const one: number[] = [];
  try {
    await lab.startDaemon('a');
    await lab.bond('a', OPTIONS, ['eth0', 'eth1'], `${A_IP}/24`);
    await waitDistributing(lab, 'a', 2);
    // The path answers before any trial: ARP resolved, OVS's flows set up.
    const warm = await lab.lab.exec('p1', ['ping', '-n', '-c', '1', '-w', '10', A_IP], { timeoutMs: 15_000 });
    if (warm.code !== 0) throw new Error(`no ping from the peer through OVS to the bond: ${warm.stdout}${warm.stderr}`);
    for (let i = 0; i < trials; i++) {
      const port = switchPorts[i % switchPorts.length]!;
      let cutAt = 0;
      const replies = await pingDuring(
        lab,
        A_IP,
        async () => {
          cutAt = wallMs();
          await lab.lab.setSwitchPort(port, false);
          await sleep(AFTER_CUT_MS);
        },
        PING_100HZ_S,
        LEAD_MS,
      );
      const trial = gapTrial(replies, cutAt, 0);
      results.push(trial);
      progress(`  link ${i % switchPorts.length} down: largest gap ${trial.gapMs.toFixed(1)} ms, ${trial.lost} echo requests lost`);
      await lab.lab.setSwitchPort(port, true);
      await waitDistributing(lab, 'a', 2);
    }
    for (let r = 0; r < reps; r++) two.push(await iperf(lab, P_IP, seconds, streams, 'p1'));
    await lab.lnlbctl('a', ['bond', 'release', 'bond0', 'eth1']);
    for (let r = 0; r < reps; r++) one.push(await iperf(lab, P_IP, seconds, streams, 'p1'));
    progress(`  TCP to the peer through OVS: 2 ports ${two.map((x) => x.toFixed(2)).join(', ')} Gbit/s; 1 port ${one.map((x) => x.toFixed(2)).join(', ')} Gbit/s`);
  } catch (error) {
    process.stderr.write(`${lab.logTails()}\n`);
    throw error;
  } finally {
    await lab.cleanup();
  }
  return { trials: results, gap: spread(results.map((t) => t.gapMs)), seconds, streams, twoPorts: spread(two), onePort: spread(one) };
}
