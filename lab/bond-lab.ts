/**
 * The bonding lab: namespaces joined by several links, an lnlbd in each (no cluster, only
 * bonds), driven through lnlbctl exactly as an operator would. Two shapes:
 *
 *   back to back:  a ══ eth0 ══ b        our bond on both sides, two veth pairs
 *                    ══ eth1 ══
 *
 *   on a switch:   a ── eth0 ── sw (Linux bridge br0) ── peers p1, p2, ...
 *                    ── eth1 ──
 */

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lnlbError } from '../src/errors.js';
import { Lab, tail, waitExit, type ExecResult, type LabProcess } from './netns.js';
import { OvsSwitch } from './ovs-switch.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LNLBD = join(REPO_ROOT, 'bin', 'lnlbd');
const LNLBCTL = join(REPO_ROOT, 'bin', 'lnlbctl');

export interface LinkCounters {
  txPackets: number;
  rxPackets: number;
  txBytes: number;
  rxBytes: number;
}

export class BondLab {
  readonly lab: Lab;
  readonly #daemons = new Map<string, LabProcess>();

  private constructor(lab: Lab) {
    this.lab = lab;
  }

  /** Hosts `a` and `b` joined by `links` veth pairs named eth0, eth1, ... on both sides. */
  static async backToBack(links = 2): Promise<BondLab> {
    const lab = new Lab();
    try {
      await lab.addBareHost('a');
      await lab.addBareHost('b');
      for (let i = 0; i < links; i++) await lab.addLink('a', `eth${i}`, 'b', `eth${i}`);
      return new BondLab(lab);
    } catch (error) {
      await lab.cleanup();
      throw error;
    }
  }

  /** Host `a` with `links` ports on the switch (eth0, eth1, ...; their switch-side names returned), and peers with one port each. */
  static async onSwitch(links: number, peers: Array<{ name: string; address: string }>): Promise<{ lab: BondLab; switchPorts: string[] }> {
    const lab = new Lab();
    try {
      await lab.addSwitch();
      await lab.addBareHost('a');
      const switchPorts: string[] = [];
      for (let i = 0; i < links; i++) switchPorts.push(await lab.addSwitchLink('a', `eth${i}`));
      for (const peer of peers) await lab.addHost(peer.name, { addresses: [peer.address] });
      return { lab: new BondLab(lab), switchPorts };
    } catch (error) {
      await lab.cleanup();
      throw error;
    }
  }

  /**
   * Host `a` with `links` ports on an Open vSwitch switch (userspace datapath: ovs-switch.ts),
   * and peers with one plain port each. `lacp`: the switch bonds a's ports with LACP
   * (`lacp=active`, balance-tcp, fast LACPDUs), or leaves them plain ports with LACP off, as a
   * switch not configured for it does. `vlan`: the switch's bond is a trunk of that VLAN, and
   * the peers are on access ports of it.
   */
  static async onOvs(links: number, peers: Array<{ name: string; address: string }>, lacp: 'active' | 'off', vlan?: number): Promise<{ lab: BondLab; switchPorts: string[]; ovs: OvsSwitch }> {
    const lab = new Lab();
    try {
      await lab.addSwitch({ bridge: false });
      const ovs = await OvsSwitch.start(lab);
      await lab.addBareHost('a');
      const switchPorts: string[] = [];
      const none = async (): Promise<void> => undefined;
      for (let i = 0; i < links; i++) switchPorts.push(await lab.addSwitchLink('a', `eth${i}`, lacp === 'active' ? none : ovs.port()));
      if (lacp === 'active') await ovs.bond('bond-a', switchPorts, ['lacp=active', 'bond_mode=balance-tcp', 'other_config:lacp-time=fast', ...(vlan === undefined ? [] : [`trunks=${vlan}`])]);
      for (const peer of peers) await lab.addHost(peer.name, { addresses: [peer.address], plug: vlan === undefined ? ovs.port() : ovs.access(vlan) });
      return { lab: new BondLab(lab), switchPorts, ovs };
    } catch (error) {
      await lab.cleanup();
      throw error;
    }
  }

  runDir(host: string): string {
    return join(this.lab.dir, `${host}-run`);
  }

  /**
   * lnlbd with no cluster (`--run-dir` only: bonds need no key), ready when it says it is idle;
   * with `--bind` in `extraArgs` (a cluster on a bond) it gets the lab's key.
   */
  async startDaemon(host: string, extraArgs: string[] = []): Promise<LabProcess> {
    if (!existsSync(LNLBD)) throw lnlbError('LNLB_ERR_LAB_SETUP', `${LNLBD} not found: the daemon is not built`);
    mkdirSync(this.runDir(host), { recursive: true });
    const key = extraArgs.includes('--bind') ? this.lab.keyArgs(extraArgs) : [];
    const child = this.lab.spawn(host, [process.execPath, LNLBD, '--run-dir', this.runDir(host), ...key, ...extraArgs], { logName: 'lnlbd', cwd: REPO_ROOT });
    this.#daemons.set(host, child);
    await this.lab.waitForLog(child, /"event":"(idle|interface-started|bond-enslaved)"/, 15_000);
    return child;
  }

  daemon(host: string): LabProcess | undefined {
    return this.#daemons.get(host);
  }

  /** Stops the daemon with SIGTERM and waits for it (it releases its slaves on the way out). */
  async stopDaemon(host: string): Promise<void> {
    const child = this.#daemons.get(host);
    if (child === undefined) return;
    child.kill('SIGTERM');
    if (!(await waitExit(child, 10_000))) throw lnlbError('LNLB_ERR_LAB_SETUP', `lnlbd on ${host} did not exit on SIGTERM`);
  }

  lnlbctlResult(host: string, args: string[]): Promise<ExecResult> {
    return this.lab.exec(host, [process.execPath, LNLBCTL, '--run-dir', this.runDir(host), ...args], { timeoutMs: 15_000, cwd: REPO_ROOT });
  }

  /** lnlbctl in the host's namespace; its stdout, or a throw with stderr. */
  async lnlbctl(host: string, args: string[]): Promise<string> {
    const result = await this.lnlbctlResult(host, args);
    if (result.code !== 0) throw lnlbError('LNLB_ERR_LAB_SETUP', `lnlbctl ${args.join(' ')} on ${host} failed (exit ${result.code}): ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Creates bond0 with `options`, enslaves `slaves`, puts `address` on it. */
  async bond(host: string, options: string[], slaves: string[], address: string, name = 'bond0'): Promise<void> {
    await this.lnlbctl(host, ['bond', 'create', name, ...options]);
    await this.lnlbctl(host, ['bond', 'enslave', name, ...slaves]);
    await this.lab.ipIn(host, ['address', 'add', address, 'dev', name]);
  }

  async counters(host: string, dev: string): Promise<LinkCounters> {
    const out = await this.lab.ipIn(host, ['-s', '-j', 'link', 'show', dev]);
    const stats = (JSON.parse(out) as Array<{ stats64: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } } }>)[0]!.stats64;
    return { txPackets: stats.tx.packets, rxPackets: stats.rx.packets, txBytes: stats.tx.bytes, rxBytes: stats.rx.bytes };
  }

  async mac(host: string, dev: string): Promise<string> {
    const out = await this.lab.ipIn(host, ['-j', 'link', 'show', dev]);
    return (JSON.parse(out) as Array<{ address: string }>)[0]!.address;
  }

  logTails(lines = 30): string {
    return [...this.#daemons.values()].map((p) => `--- ${p.host}: ${p.logFile}\n${tail(p.logFile, lines)}`).join('\n');
  }

  cleanup(): Promise<void> {
    return this.lab.cleanup();
  }
}
