/**
 * Failover, the peer: Debian's keepalived (VRRPv3, active/passive) at its fastest setting,
 * `advert_int 0.01`, with the same kill and the same probe as lnlb's failover benchmark:
 *
 * ```
 *   switch ── master (10.0.0.1/24)  keepalived, priority 150, holds the VIP 10.0.0.100
 *          ── backup (10.0.0.2/24)  keepalived, priority 100
 *          ── client (10.0.0.101-110/24) a ping to the VIP from each address, every 10 ms
 * ```
 * Each trial: the pings run (PingProbe, as in lnlb's benchmark: ten clients, all of them the
 * master's); `kill -9` of the master's keepalived (parent and VRRP child, one signal to its
 * process group) and its link down at once, as when the machine dies; the figure is the time
 * from the kill until the last client is answered again, for a request sent once the link was
 * down. The link must go down too: a killed keepalived leaves the VIP on its interface, and
 * that kernel keeps answering (and the backup takes the VIP as well: a split brain). Between
 * trials the master comes back as after a reboot (VIP gone, link up, keepalived started) and
 * preempts the backup; the next trial waits until the client's ARP entry points at it again.
 *
 * The split brain itself is measured too: `kill -9` alone, link up, and whether both nodes
 * hold the VIP a second later.
 */

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lab, tail, waitExit, type LabProcess } from '../lab/netns.js';
import { PingProbe } from '../lab/ping-probe.js';
import { PROBE_CLIENTS, PROBE_INTERVAL_MS } from './failover.js';
import { fmt, fmtSpread, spread, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

const VIP = '10.0.0.100';
/** As many clients as lnlb's benchmark probes of the killed node's. */
const CLIENT_IPS = Array.from({ length: PROBE_CLIENTS }, (_, i) => `10.0.0.${101 + i}`);
const ADVERT_INT_S = 0.01;
const PROBE_TIMEOUT_MS = 10_000;
const SETTLE_TIMEOUT_MS = 15_000;
/** How long after a `kill -9` alone the split brain is looked for. */
const SPLIT_BRAIN_WAIT_MS = 1000;

interface Node {
  name: 'master' | 'backup';
  ip: string;
  priority: number;
}
const MASTER: Node = { name: 'master', ip: '10.0.0.1', priority: 150 };
const BACKUP: Node = { name: 'backup', ip: '10.0.0.2', priority: 100 };

export interface KeepalivedJson {
  version: string;
  advertIntS: number;
  probeIntervalMs: number;
  /** ms from the kill (with the link down) until the last client is answered again, per trial answered. */
  trials: number[];
  /** Per trial, when the link was down (ms after the kill): requests sent before do not count. */
  linkDownMs: number[];
  /** Trials in which some client was not answered within PROBE_TIMEOUT_MS. */
  unanswered: number;
  medianMs: number;
  worstMs: number;
  /** `kill -9` alone, link up: in how many runs both nodes held the VIP afterwards. */
  splitBrain: { runs: number; bothHeldVip: number };
}

function keepalivedBinary(): string {
  const found = ['/usr/sbin/keepalived', '/sbin/keepalived', '/usr/bin/keepalived'].find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error("keepalived is not installed: install Debian's keepalived package (apt-get install keepalived, or run scripts/install-system-deps.sh as root)");
  }
  return found;
}

export async function benchKeepalived(o: BenchOptions & { trials: number }): Promise<BenchResult & { medianMs: number; worstMs: number }> {
  const binary = keepalivedBinary();
  const lab = new Lab();
  try {
    await lab.addSwitch();
    for (const node of [MASTER, BACKUP]) await lab.addHost(node.name, { addresses: [`${node.ip}/24`] });
    await lab.addHost('client', { addresses: CLIENT_IPS.map((ip) => `${ip}/24`) });
    const k = new Keepalived(lab, binary);
    const version = await k.version();
    o.progress(`keepalived: ${version}, VRRPv3 advert_int ${ADVERT_INT_S}, ${o.trials} kills of the master (kill -9 and link down)…`);
    k.start(BACKUP);
    k.start(MASTER);
    await k.waitMasterHolds();

    const trials: number[] = [];
    const linkDownMs: number[] = [];
    let unanswered = 0;
    for (let i = 0; i < o.trials; i++) {
      const probe = await PingProbe.start(lab, 'client', CLIENT_IPS, VIP, { intervalMs: PROBE_INTERVAL_MS });
      const since = Date.now();
      k.kill9(MASTER);
      await lab.linkDown(MASTER.name);
      const downAt = Date.now();
      linkDownMs.push(downAt - since);
      const answered = await probe.answeredAgain(since, PROBE_TIMEOUT_MS, { sentAfterEpochMs: downAt });
      probe.stop();
      if (answered.unanswered.length > 0) unanswered += 1;
      else trials.push(answered.worstMs);
      o.progress(`  trial ${i + 1}: ${answered.unanswered.length > 0 ? `${answered.unanswered.length} clients not answered within ${PROBE_TIMEOUT_MS} ms` : `the ${CLIENT_IPS.length} clients answered again after ${Math.round(answered.worstMs)} ms`}`);
      await k.waitExited(MASTER);
      await k.reboot(MASTER);
      await k.waitMasterHolds();
    }

    // The same kill without the link down: the dead master's kernel keeps the VIP.
    const splitRuns = o.quick ? 1 : 3;
    let bothHeldVip = 0;
    for (let i = 0; i < splitRuns; i++) {
      k.kill9(MASTER);
      await k.waitExited(MASTER);
      await sleep(SPLIT_BRAIN_WAIT_MS);
      const held = await Promise.all([MASTER, BACKUP].map((node) => k.holdsVip(node)));
      if (held.every(Boolean)) bothHeldVip += 1;
      o.progress(`  kill -9 alone, run ${i + 1}: VIP held by ${[MASTER, BACKUP].filter((_, j) => held[j]).map((n) => n.name).join(' and ') || 'nobody'}`);
      await k.reboot(MASTER);
      await k.waitMasterHolds();
    }

    const s = spread(trials);
    const json: KeepalivedJson = {
      version,
      advertIntS: ADVERT_INT_S,
      probeIntervalMs: PROBE_INTERVAL_MS,
      trials,
      linkDownMs,
      unanswered,
      medianMs: s.median,
      worstMs: s.max,
      splitBrain: { runs: splitRuns, bothHeldVip },
    };
    const rows: BenchRow[] = [
      {
        figure: 'keepalived: kill -9 + link down, ms',
        note: `the peer: keepalived, VRRPv3 at advert_int ${ADVERT_INT_S} (its fastest), its master killed with kill -9 and its link pulled, ${trials.length} trials: ms until the last of its ${CLIENT_IPS.length} clients (each pinging every ${PROBE_INTERVAL_MS} ms since before the kill) is answered again, median (min–max)`,
        lnlb: '',
        reference: fmtSpread(s),
        ratio: '',
        goal: '',
      },
      {
        figure: '  keepalived: split brain, kill -9 alone',
        note: 'runs in which both keepalived nodes held the VIP after a kill -9 of the master with its link left up (its kernel keeps answering for the VIP)',
        lnlb: '',
        reference: `${bothHeldVip} of ${splitRuns}`,
        ratio: '',
        goal: '',
      },
    ];
    if (unanswered > 0) {
      rows.push({ figure: '  keepalived: trials unanswered', note: `keepalived trials in which a client had no reply within ${PROBE_TIMEOUT_MS} ms`, lnlb: '', reference: fmt(unanswered), ratio: '', goal: '' });
    }
    return { rows, json, medianMs: s.median, worstMs: s.max };
  } finally {
    await lab.cleanup();
  }
}

/** The two keepalived instances of the lab: their config, pid files, processes and VIP. */
class Keepalived {
  private readonly processes = new Map<string, LabProcess>();

  constructor(
    private readonly lab: Lab,
    private readonly binary: string,
  ) {}

  async version(): Promise<string> {
    const result = await this.lab.exec('client', [this.binary, '--version']);
    return (result.stdout + result.stderr).split('\n')[0]?.trim() ?? 'keepalived';
  }

  /** Starts keepalived on `node` with its own config and pid files in the lab directory. */
  start(node: Node): void {
    const file = (suffix: string): string => join(this.lab.dir, `keepalived-${node.name}${suffix}`);
    const conf = file('.conf');
    writeFileSync(conf, config(node));
    // A pid file left by a `kill -9` could name a live process by now: keepalived would refuse to start.
    for (const suffix of ['.pid', '-vrrp.pid']) rmSync(file(suffix), { force: true });
    // setsid: keepalived (the same pid, `ip netns exec` and setsid exec in place) leads its own
    // process group, so one kill(-pid) reaches the parent and its VRRP child at once: killing
    // only the parent makes the child leave gracefully (it gets SIGTERM and hands the VIP over
    // at once), killing only the child makes the parent respawn it.
    // -n: no fork; -l -D: detailed log on the console (the lab log); -P: the VRRP subsystem only.
    const argv = ['setsid', this.binary, '-n', '-l', '-D', '-P', '-f', conf, '-p', file('.pid'), '-r', file('-vrrp.pid')];
    this.processes.set(node.name, this.lab.spawn(node.name, argv, { logName: 'keepalived' }));
  }

  kill9(node: Node): void {
    const child = this.process(node);
    if (child.pid === undefined) throw new Error(`keepalived on ${node.name} did not start:\n${tail(child.logFile)}`);
    // Field 5 of /proc/<pid>/stat, counted after the command name: the process group.
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    if (group !== child.pid) throw new Error(`keepalived on ${node.name} (pid ${child.pid}) does not lead its process group (${group})`);
    process.kill(-child.pid, 'SIGKILL');
  }

  async waitExited(node: Node): Promise<void> {
    if (!(await waitExit(this.process(node), 5000))) throw new Error(`keepalived on ${node.name} did not exit on SIGKILL`);
  }

  /** Back as after a reboot: the VIP the dead instance left is gone, the link is up, keepalived runs. */
  async reboot(node: Node): Promise<void> {
    await this.lab.exec(node.name, ['ip', 'address', 'del', `${VIP}/24`, 'dev', 'eth0']);
    await this.lab.linkUp(node.name);
    this.start(node);
  }

  async holdsVip(node: Node): Promise<boolean> {
    const result = await this.lab.exec(node.name, ['ip', '-4', '-o', 'address', 'show', 'dev', 'eth0']);
    return result.stdout.includes(` ${VIP}/`);
  }

  /**
   * Until the master alone holds the VIP and the client reaches it there (its ARP entry for the
   * VIP names the master's MAC, refreshed by the master's gratuitous ARPs).
   */
  async waitMasterHolds(): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    const masterMac = this.lab.host(MASTER.name).mac.toLowerCase();
    let state = '';
    while (Date.now() < deadline) {
      for (const node of [MASTER, BACKUP]) {
        const child = this.process(node);
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`keepalived on ${node.name} exited (${child.exitCode ?? child.signalCode}):\n${tail(child.logFile)}`);
        }
      }
      const [master, backup] = await Promise.all([this.holdsVip(MASTER), this.holdsVip(BACKUP)]);
      if (master && !backup) {
        await this.lab.exec('client', ['ping', '-n', '-q', '-c', '1', '-W', '1', VIP]);
        const neigh = await this.lab.exec('client', ['ip', 'neigh', 'show', VIP, 'dev', 'eth0']);
        if (neigh.stdout.toLowerCase().includes(` lladdr ${masterMac} `)) {
          await sleep(100); // the rest of the gratuitous ARP burst
          return;
        }
        state = `client's ARP entry: ${neigh.stdout.trim()}`;
      } else {
        state = `VIP on master: ${master}, on backup: ${backup}`;
      }
      await sleep(20);
    }
    throw new Error(`keepalived: the master did not take the VIP back within ${SETTLE_TIMEOUT_MS} ms (${state}):\n${tail(this.process(MASTER).logFile, 15)}`);
  }

  private process(node: Node): LabProcess {
    const child = this.processes.get(node.name);
    if (child === undefined) throw new Error(`keepalived was never started on ${node.name}`);
    return child;
  }
}

function config(node: Node): string {
  return `global_defs {
  router_id ${node.name}
  vrrp_version 3
}
vrrp_instance VI_1 {
  state ${node === MASTER ? 'MASTER' : 'BACKUP'}
  interface eth0
  virtual_router_id 51
  priority ${node.priority}
  advert_int ${ADVERT_INT_S}
  virtual_ipaddress {
    ${VIP}/24 dev eth0
  }
}
`;
}
