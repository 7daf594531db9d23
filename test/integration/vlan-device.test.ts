/**
 * A cluster bound to a VLAN's untagged side, named as a VLAN device is (`--bind eth0.100`):
 * this kernel has no 802.1Q module, so `ip link add ... type vlan` cannot make one; each node's
 * link is instead an access port of VLAN 100 of an Open vSwitch switch, named eth0.100, which
 * gives lnlb what a VLAN device gives it: VLAN 100's frames, untagged, on a device whose name
 * holds a dot (its sysctls are saved and restored in the slash form). End to end with curl and
 * ping; the sysctls restored on stop.
 */
import test from 'ava';
import { clusterSuite } from './fixtures/cluster-suite.js';

const lab = clusterSuite(test, { nodes: 3, clientAddresses: 16, switch: 'ovs-vlan-device', daemonArgs: () => ['--bind', 'eth0.100'] });

test.serial('bound to eth0.100: every client answered, spread over the nodes, one reply per echo request', async (t) => {
  const cluster = lab();
  const served = await cluster.survey(cluster.clientIps);
  t.deepEqual([...served].filter(([, s]) => !('node' in s)), []);
  t.true(new Set([...served.values()].map((s) => ('node' in s ? s.node : ''))).size >= 2);
  const ping = await cluster.pingFrom(cluster.clientIps[0]!, '10.0.0.100', 5);
  t.is(ping.received, 5, ping.output);
  t.is(ping.duplicates, 0);
  const status = await cluster.status('node1');
  t.is(status.interfaces[0]!.bind, 'eth0.100');
  const arp = await cluster.lab.exec('node1', ['sysctl', '-n', 'net.ipv4.conf.eth0/100.arp_announce']);
  t.is(arp.stdout.trim(), '2', 'arp_announce=2 on eth0.100 while serving');
});

test.serial('a stopped daemon restores the sysctls of eth0.100', async (t) => {
  const cluster = lab();
  await cluster.killDaemon('node3', 'SIGTERM');
  const arp = await cluster.lab.exec('node3', ['sysctl', '-n', 'net.ipv4.conf.eth0/100.arp_announce', 'net.ipv4.conf.eth0/100.arp_ignore']);
  t.deepEqual(arp.stdout.trim().split('\n'), ['0', '0']);
});
