/**
 * Open vSwitch as the lab's switch, with its userspace datapath (no kernel module: this
 * machine's kernel has neither Open vSwitch nor 802.1Q support): a switch that is not lnlb and
 * not the Linux bridge, with VLANs (access ports that tag and untag, trunk ports that carry
 * tags). ovsdb-server and ovs-vswitchd run in the switch namespace, with their database,
 * sockets and logs in the lab's run directory, and end with the lab (cleanup kills them).
 *
 *   const ovs = await OvsSwitch.start(lab);            // after lab.addSwitch({ bridge: false })
 *   await lab.addHost('node1', { addresses: [], plug: ovs.trunk([100, 200]) });
 *   await lab.addHost('client', { addresses: ['10.100.0.5/24'], plug: ovs.access(100) });
 */

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lnlbError } from '../src/errors.js';
import type { Lab } from './netns.js';
import { systemTool } from './netns.js';

const SWITCH = 'sw';
const BRIDGE = 'br0';
const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export class OvsSwitch {
  private constructor(
    private readonly lab: Lab,
    private readonly dir: string,
  ) {}

  /** ovsdb-server and ovs-vswitchd in the switch namespace, and bridge br0 on the userspace datapath. */
  static async start(lab: Lab): Promise<OvsSwitch> {
    const dir = join(lab.dir, 'ovs');
    mkdirSync(dir, { recursive: true });
    const ovs = new OvsSwitch(lab, dir);
    await ovs.run([systemTool('ovsdb-tool'), 'create', join(dir, 'conf.db'), SCHEMA]);
    // Every socket named here: the defaults are under /var/run/openvswitch, shared host-wide.
    lab.spawn(SWITCH, [systemTool('ovsdb-server'), join(dir, 'conf.db'), `--remote=punix:${ovs.db}`, `--unixctl=${join(dir, 'db.ctl')}`, '--no-chdir'], { logName: 'ovsdb-server' });
    for (let waited = 0; !existsSync(ovs.db); waited += 20) {
      if (waited > 10_000) throw lnlbError('LNLB_ERR_LAB_SETUP', `ovsdb-server made no ${ovs.db} within 10 s`);
      await sleep(20);
    }
    await ovs.vsctl(['--no-wait', 'init']);
    // Frames from the hosts' veths carry partial checksums (offloaded); with this OVS reads and
    // writes its ports with a virtio-net header and keeps that state, as a wire between real NICs
    // keeps whole checksums. Without it TCP through OVS's userspace datapath is dropped for bad
    // checksums. Read at start: set before ovs-vswitchd runs.
    await ovs.vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=true']);
    lab.spawn(SWITCH, [systemTool('ovs-vswitchd'), `unix:${ovs.db}`, `--unixctl=${join(dir, 'vswitchd.ctl')}`, '--disable-system', '--no-chdir'], { logName: 'ovs-vswitchd' });
    await ovs.vsctl(['--timeout=20', 'add-br', BRIDGE, '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev']);
    return ovs;
  }

  private get db(): string {
    return join(this.dir, 'db.sock');
  }

  /** ovs-vsctl against this switch's database. */
  async vsctl(args: string[]): Promise<string> {
    return this.run([systemTool('ovs-vsctl'), `--db=unix:${this.db}`, ...args]);
  }

  private async run(argv: string[]): Promise<string> {
    const result = await this.lab.exec(SWITCH, argv, { timeoutMs: 30_000 });
    if (result.code !== 0) throw lnlbError('LNLB_ERR_LAB_SETUP', `${argv.join(' ')}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** A plug for a plain port (every VLAN, untagged: what a port of a switch without VLANs is). */
  port(): (switchPort: string) => Promise<void> {
    return async (switchPort) => {
      await this.vsctl(['--timeout=20', 'add-port', BRIDGE, switchPort]);
    };
  }

  /** A bond of the switch over `switchPorts` (already made, not yet in the bridge), e.g. `lacp=active`, `bond_mode=balance-tcp`. */
  async bond(name: string, switchPorts: readonly string[], settings: readonly string[]): Promise<void> {
    await this.vsctl(['--timeout=20', 'add-bond', BRIDGE, name, ...switchPorts, ...settings]);
  }

  /** `ovs-appctl` against this switch's ovs-vswitchd (`bond/show`, `lacp/show`, ...). */
  async appctl(args: string[]): Promise<string> {
    return this.run([systemTool('ovs-appctl'), `--target=${join(this.dir, 'vswitchd.ctl')}`, ...args]);
  }

  /** A plug (HostOptions.plug) for an access port of `vlan`: untagged to the host, tagged inside the switch. */
  access(vlan: number): (switchPort: string) => Promise<void> {
    return async (switchPort) => {
      await this.vsctl(['--timeout=20', 'add-port', BRIDGE, switchPort, `tag=${vlan}`]);
    };
  }

  /** A plug for a trunk port carrying `vlans`, tagged to the host. */
  trunk(vlans: readonly number[]): (switchPort: string) => Promise<void> {
    return async (switchPort) => {
      await this.vsctl(['--timeout=20', 'add-port', BRIDGE, switchPort, '--', 'set', 'port', switchPort, `trunks=${vlans.join(',')}`]);
    };
  }
}
