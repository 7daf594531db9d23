// Our userspace bond on real links in namespaces, driven through lnlbctl as an operator does:
// back-to-back hosts over two veth pairs for balance-rr, balance-xor, broadcast and 802.3ad
// (traffic flows, both links carry frames by the veth counters, LACP reaches
// collecting+distributing), tshark decoding our LACPDUs, active-backup against a Linux bridge
// (unplug, gratuitous ARP, primary back), the ARP monitor against nftables drops beyond the
// switch, and balance-alb's receive balancing. Each test builds its own lab and removes it.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BondLab } from '../../lab/bond-lab.js';
import { parsePing } from '../../lab/cluster.js';
import { sweepStale, systemTool, waitExit, waitUntil as waitFor } from '../../lab/netns.js';

const NFT = systemTool('nft');
import type { BondJson } from '../../src/main/bond-manager.js';

// This file runs as dist/test/integration/bond.test.js; the fixture is compiled beside it.
const CRASHING_HOST = fileURLToPath(new URL('./fixtures/crashing-host.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const A_IP = '10.9.0.1';
const B_IP = '10.9.0.2';

test.before(async () => {
  await sweepStale();
});

async function withLab(lab: BondLab, body: (lab: BondLab) => Promise<void>): Promise<void> {
  try {
    await body(lab);
  } catch (error) {
    console.error(lab.logTails());
    throw error;
  } finally {
    await lab.cleanup();
  }
}

async function show(lab: BondLab, host: string, bond = 'bond0'): Promise<BondJson> {
  return JSON.parse(await lab.lnlbctl(host, ['bond', 'show', bond, '--json'])) as BondJson;
}

async function ping(lab: BondLab, host: string, target: string, count: number, intervalS = 0.02) {
  const r = await lab.lab.exec(host, ['ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '1', target], { timeoutMs: 60_000 });
  return parsePing(r.stdout + r.stderr);
}

/** Both hosts bonded over eth0+eth1 with the same options, addressed 10.9.0.1 and .2. */
async function bondBothSides(lab: BondLab, options: string[]): Promise<void> {
  await lab.startDaemon('a');
  await lab.startDaemon('b');
  await lab.bond('a', options, ['eth0', 'eth1'], `${A_IP}/24`);
  await lab.bond('b', options, ['eth0', 'eth1'], `${B_IP}/24`);
}

/** TCP streams from a to b (iperf3 -P), so layer3+4 hashing has several flows to spread. */
async function tcpStreams(lab: BondLab, seconds: number, streams: number): Promise<number> {
  const server = lab.lab.spawn('b', ['iperf3', '-s', '-1', '-B', B_IP], { logName: 'iperf3-server' });
  await sleep(300);
  const r = await lab.lab.exec('a', ['iperf3', '-c', B_IP, '-t', String(seconds), '-P', String(streams), '-J'], { timeoutMs: (seconds + 20) * 1000 });
  server.kill();
  if (r.code !== 0) throw new Error(`iperf3 failed (${r.code}): ${r.stderr || r.stdout.slice(0, 400)}`);
  const result = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return result.end.sum_received.bits_per_second;
}

async function txDelta(lab: BondLab, host: string, run: () => Promise<unknown>): Promise<{ eth0: number; eth1: number }> {
  const before0 = await lab.counters(host, 'eth0');
  const before1 = await lab.counters(host, 'eth1');
  await run();
  const after0 = await lab.counters(host, 'eth0');
  const after1 = await lab.counters(host, 'eth1');
  return { eth0: after0.txPackets - before0.txPackets, eth1: after1.txPackets - before1.txPackets };
}

test.serial('balance-rr back to back: ping flows and each frame goes out on the next link', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await bondBothSides(lab, ['mode=balance-rr', 'miimon=100']);
    const tx = await txDelta(lab, 'a', async () => {
      const p = await ping(lab, 'a', B_IP, 40);
      t.is(p.received, 40, p.output);
    });
    t.true(tx.eth0 >= 15 && tx.eth1 >= 15, `rr should alternate links: eth0 +${tx.eth0}, eth1 +${tx.eth1}`);
    const s = await show(lab, 'a');
    t.deepEqual(s.slaves.map((x) => [x.name, x.linkState]), [['eth0', 'UP'], ['eth1', 'UP']]);
    const text = await lab.lnlbctl('a', ['bond', 'show', 'bond0']);
    t.regex(text, /^Bonding Mode: load balancing \(round-robin\)$/m);
    t.regex(text, /^Slave Interface: eth1$/m);
  });
});

test.serial('balance-xor layer3+4 back to back: TCP streams spread over both links', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await bondBothSides(lab, ['mode=balance-xor', 'miimon=100', 'xmit_hash_policy=layer3+4']);
    t.is((await ping(lab, 'a', B_IP, 5)).received, 5);
    // Each stream's link is its hash of random source ports: with 8, all on one link was a
    // 1-in-128 chance (it happened in CI); with 16, 1 in 32,768.
    const tx = await txDelta(lab, 'a', () => tcpStreams(lab, 2, 16));
    t.true(tx.eth0 > 100 && tx.eth1 > 100, `16 TCP streams should use both links: eth0 +${tx.eth0}, eth1 +${tx.eth1}`);
    t.regex(await lab.lnlbctl('a', ['bond', 'show', 'bond0']), /^Transmit Hash Policy: layer3\+4 \(1\)$/m);
  });
});

test.serial('broadcast back to back: every frame on both links, replies duplicated as with the driver', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await bondBothSides(lab, ['mode=broadcast', 'miimon=100']);
    const tx = await txDelta(lab, 'a', async () => {
      const p = await ping(lab, 'a', B_IP, 20);
      t.is(p.received, 20, p.output);
      t.true(p.duplicates > 0, `broadcast mode sends each echo on both links, so replies come twice: ${p.output}`);
    });
    t.true(tx.eth0 >= 20 && tx.eth1 >= 20, `each frame on both links: eth0 +${tx.eth0}, eth1 +${tx.eth1}`);
  });
});

const SYNC_COLLECTING_DISTRIBUTING = 0x08 | 0x10 | 0x20;

async function waitDistributing(lab: BondLab, host: string, ports: number): Promise<BondJson> {
  return waitFor(
    `${host}: ${ports} ports collecting and distributing`,
    async () => {
      const s = await show(lab, host);
      const distributing = s.slaves.filter((x) => ((x.actorState ?? 0) & SYNC_COLLECTING_DISTRIBUTING) === SYNC_COLLECTING_DISTRIBUTING);
      return distributing.length === ports ? s : undefined;
    },
    15_000,
  );
}

test.serial('802.3ad back to back: LACP negotiates both ports, TCP streams use both links, a dead partner port leaves', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await bondBothSides(lab, ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4']);
    const a = await waitDistributing(lab, 'a', 2);
    await waitDistributing(lab, 'b', 2);
    t.is(a.status.ad?.active?.ports, 2);
    t.is(a.status.ad?.active?.partnerMac, await lab.mac('b', 'bond0'));
    const text = await lab.lnlbctl('a', ['bond', 'show', 'bond0']);
    t.regex(text, /^Bonding Mode: IEEE 802\.3ad Dynamic link aggregation$/m);
    t.regex(text, /^\tNumber of ports: 2$/m);
    t.notRegex(text, /Not distributing/);
    // Each stream's link is its hash of random source ports: with 8, all on one link was a
    // 1-in-128 chance (it happened in CI); with 16, 1 in 32,768.
    const tx = await txDelta(lab, 'a', () => tcpStreams(lab, 2, 16));
    t.true(tx.eth0 > 100 && tx.eth1 > 100, `16 TCP streams should use both links: eth0 +${tx.eth0}, eth1 +${tx.eth1}`);

    // b stops sending LACPDUs on eth1 (its bond releases it; the link stays up): within the
    // fast timeout (3 s) a's eth1 leaves the aggregator and show says why.
    await lab.lnlbctl('b', ['bond', 'release', 'bond0', 'eth1']);
    const after = await waitFor(
      'a: eth1 no longer distributing',
      async () => {
        const s = await show(lab, 'a');
        const eth1 = s.slaves.find((x) => x.name === 'eth1');
        return eth1 !== undefined && ((eth1.actorState ?? 0) & 0x20) === 0 ? s : undefined;
      },
      6_000,
    );
    const why = after.status.slaves.find((x) => x.name === 'eth1')?.notDistributingBecause ?? '';
    t.regex(why, /expired|defaulted|partner/, why);
    // Its partner information then times out too (EXPIRED → DEFAULTED): it leaves the aggregator.
    await waitFor('a: the active aggregator down to 1 port', async () => ((await show(lab, 'a')).status.ad?.active?.ports === 1 ? true : undefined), 8_000);
    t.is((await ping(lab, 'a', B_IP, 10)).received, 10, 'traffic goes on over eth0');
  });
});

test.serial('release gives a slave back with its own MAC and state; destroy removes the bond', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await lab.startDaemon('a');
    const own0 = await lab.mac('a', 'eth0');
    const own1 = await lab.mac('a', 'eth1');
    await lab.lab.ipIn('a', ['link', 'set', 'eth1', 'down']);
    await lab.bond('a', ['mode=balance-rr'], ['eth0', 'eth1'], `${A_IP}/24`);
    t.is(await lab.mac('a', 'bond0'), own0, 'the bond takes its first slave MAC');
    t.is(await lab.mac('a', 'eth1'), own0, 'in balance-rr every slave takes the bond MAC');
    await lab.lnlbctl('a', ['bond', 'release', 'bond0', 'eth1']);
    t.is(await lab.mac('a', 'eth1'), own1);
    const eth1 = JSON.parse(await lab.lab.ipIn('a', ['-j', 'link', 'show', 'eth1'])) as Array<{ flags: string[] }>;
    t.false(eth1[0]!.flags.includes('UP'), 'eth1 was down before: down again');

    const refused = await lab.lnlbctlResult('a', ['bond', 'enslave', 'bond0', 'eth0']);
    t.not(refused.code, 0);
    t.regex(refused.stderr, /eth0 is already a slave of bond0/);
    const missing = await lab.lnlbctlResult('a', ['bond', 'enslave', 'bond0', 'eth1', 'nosuch0']);
    t.regex(missing.stderr, /no such device nosuch0/);
    t.is(await lab.mac('a', 'eth1'), own1, 'a refused enslave leaves nothing half-done');
    t.regex((await lab.lnlbctlResult('a', ['bond', 'enslave', 'bond0', 'bond0'])).stderr, /bond itself/);

    await lab.lnlbctl('a', ['bond', 'destroy', 'bond0']);
    t.is(await lab.mac('a', 'eth0'), own0);
    const links = JSON.parse(await lab.lab.ipIn('a', ['-j', 'link', 'show'])) as Array<{ ifname: string }>;
    t.false(links.some((l) => l.ifname === 'bond0'), 'bond0 is gone');
  });
});

test.serial('an embedded node on a bond whose host crashes (an uncaught exception): as the process exits, each slave gets its MAC, state and sysctls back, and the bond is gone', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    const own0 = await lab.mac('a', 'eth0');
    const own1 = await lab.mac('a', 'eth1');
    await lab.lab.ipIn('a', ['link', 'set', 'eth1', 'down']);
    const keys = ['ipv4/conf/eth0/arp_ignore', 'ipv4/conf/eth0/rp_filter', 'ipv4/conf/eth1/arp_ignore', 'ipv4/conf/eth1/rp_filter', 'ipv6/conf/eth1/disable_ipv6'];
    const sysctls = async (): Promise<string> => (await lab.lab.exec('a', ['sh', '-c', keys.map((k) => `echo ${k}=$(cat /proc/sys/net/${k})`).join('; ')])).stdout;
    const before = await sysctls();
    // The same options lnlbd takes: a bond of both links in balance-rr (every slave takes the bond's MAC), the cluster on it.
    const options = { bind: 'bond0', vip: '10.9.0.100', runDir: lab.runDir('a'), insecureNoAuth: true, bond: ['bond0 mode=balance-rr miimon=100 slaves=eth0,eth1'] };
    const host = lab.lab.spawn('a', [process.execPath, CRASHING_HOST, JSON.stringify(options), 'on-sigusr2'], { logName: 'crashing-host', cwd: REPO_ROOT });
    try {
      await lab.lab.waitForLog(host, /"event":"node-created"/, 20_000);
      t.is(await lab.mac('a', 'eth1'), own0, 'enslaved: eth1 carries the bond MAC');
      t.not(await sysctls(), before, 'the slaves have the sysctls of a slave');
      host.kill('SIGUSR2');
      t.true(await waitExit(host, 10_000), 'the host exits');
      t.is(host.exitCode, 1, `as Node ends a process with an uncaught exception: ${host.exitCode ?? host.signalCode}`);
      const log = readFileSync(host.logFile, 'utf8');
      t.regex(log, /Error: the host crashed \(its own bug\)/, "Node's own report of the host's error");
      t.regex(log, /"event":"restored-at-exit"/);
      t.is(await lab.mac('a', 'eth0'), own0);
      t.is(await lab.mac('a', 'eth1'), own1, 'eth1 has its own MAC again');
      const eth1 = JSON.parse(await lab.lab.ipIn('a', ['-j', 'link', 'show', 'eth1'])) as Array<{ flags: string[] }>;
      t.false(eth1[0]!.flags.includes('UP'), 'eth1 was down before: down again');
      t.is(await sysctls(), before, 'the slaves\' sysctls are back');
      const links = JSON.parse(await lab.lab.ipIn('a', ['-j', 'link', 'show'])) as Array<{ ifname: string }>;
      t.deepEqual(links.map((l) => l.ifname).filter((n) => n === 'bond0' || n.startsWith('nlb')), [], 'the bond and the TAP are gone with the process');
    } finally {
      if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
    }
  });
});

test.serial('tshark decodes the LACPDUs of our bond as valid LACP with the fields we meant', async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await bondBothSides(lab, ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'ad_actor_sys_prio=100']);
    const a = await waitDistributing(lab, 'a', 2);
    await waitDistributing(lab, 'b', 2);
    const aEth0 = a.slaves.find((x) => x.name === 'eth0')!;
    const bMac = await lab.mac('b', 'bond0');
    const fields = [
      'eth.dst', 'eth.src', 'eth.type', 'slow.subtype', 'lacp.version',
      'lacp.actor.sys_priority', 'lacp.actor.sysid', 'lacp.actor.key', 'lacp.actor.port_priority', 'lacp.actor.port', 'lacp.actor.state',
      'lacp.partner.sys_priority', 'lacp.partner.sysid', 'lacp.partner.key', 'lacp.partner.port', 'lacp.partner.state',
      'lacp.collector.max_delay', '_ws.expert.message', '_ws.malformed',
    ];
    // Captured on b's side of the eth0 link: what a's bond sent on its eth0, as the wire carried it.
    const r = await lab.lab.exec(
      'b',
      ['tshark', '-n', '-i', 'eth0', '-f', `ether proto 0x8809 and ether src ${aEth0.permanentMac}`, '-c', '2', '-a', 'duration:8', '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', ...fields.flatMap((f) => ['-e', f])],
      { timeoutMs: 20_000 },
    );
    const lines = r.stdout.trim().split('\n').filter((l) => l !== '');
    t.is(lines.length, 2, `two LACPDUs captured: ${r.stdout}${r.stderr}`);
    for (const line of lines) {
      const v = Object.fromEntries(line.split('|').map((value, i) => [fields[i]!, value]));
      t.is(v['eth.dst'], '01:80:c2:00:00:02');
      t.is(v['eth.src'], aEth0.permanentMac);
      t.is(Number(v['eth.type']), 0x8809, line);
      t.is(Number(v['slow.subtype']), 1, line);
      t.is(Number(v['lacp.version']), 1, line);
      t.is(Number(v['lacp.actor.sys_priority']), 100, line);
      t.is(v['lacp.actor.sysid'], a.mac);
      t.is(Number(v['lacp.actor.port']), 1, 'eth0 is port 1');
      t.is(Number(v['lacp.actor.port_priority']), 255, line);
      t.is(Number(v['lacp.actor.key']), a.status.ad?.active?.actorKey ?? -1);
      // Activity, short timeout (lacp_rate fast), aggregation, in sync, collecting, distributing.
      t.is(Number(v['lacp.actor.state']), 0x3f);
      t.is(v['lacp.partner.sysid'], bMac);
      t.is(Number(v['lacp.partner.sys_priority']), 100, line);
      t.is(Number(v['lacp.partner.port']), 1);
      t.is(Number(v['lacp.partner.state']) & 0x3d, 0x3d);
      t.is(Number(v['lacp.collector.max_delay']), 0, line);
      t.is(v['_ws.malformed'] ?? '', '', 'not malformed');
      t.is(v['_ws.expert.message'] ?? '', '', `no expert warnings: ${v['_ws.expert.message']}`);
    }
  });
});

interface FdbEntry {
  mac: string;
  ifname: string;
  flags?: string[];
}

async function fdbPortOf(lab: BondLab, mac: string): Promise<string | undefined> {
  const r = await lab.lab.exec('sw', ['bridge', '-j', 'fdb', 'show', 'br', 'br0']);
  const entries = JSON.parse(r.stdout) as FdbEntry[];
  return entries.find((e) => e.mac === mac && !(e.flags ?? []).includes('self'))?.ifname;
}

test.serial('active-backup on a Linux bridge: unplugging the active slave moves traffic to the backup within miimon, the bridge learns it from the gratuitous ARP, the primary returns', async (t) => {
  const { lab, switchPorts } = await BondLab.onSwitch(2, [{ name: 'p1', address: `${B_IP}/24` }]);
  await withLab(lab, async () => {
    await lab.startDaemon('a');
    await lab.bond('a', ['mode=active-backup', 'miimon=100', 'primary=eth0'], ['eth0', 'eth1'], `${A_IP}/24`);
    t.is((await ping(lab, 'p1', A_IP, 10)).received, 10);
    t.is((await show(lab, 'a')).status.active, 'eth0');
    const bondMac = await lab.mac('a', 'bond0');
    t.is(await lab.mac('a', 'eth1'), bondMac, 'fail_over_mac none: every slave carries the bond MAC');
    t.is(await fdbPortOf(lab, bondMac), switchPorts[0]);

    // 300 echoes 10 ms apart from p1 while the active slave's cable is pulled.
    const stream = lab.lab.exec('p1', ['ping', '-n', '-i', '0.01', '-c', '300', '-W', '1', A_IP], { timeoutMs: 30_000 });
    await sleep(600);
    const unplugged = performance.now();
    await lab.lab.setSwitchPort(switchPorts[0]!, false);
    const movedAfter = await waitFor('eth1 to become active', async () => ((await show(lab, 'a')).status.active === 'eth1' ? performance.now() - unplugged : undefined), 3_000);
    const p = parsePing((await stream).stdout);
    // The carrier is polled every 100 ms (miimon), downdelay 0: at most ~10 echoes can fall in
    // the gap, plus scheduling on this 2-core machine.
    t.true(p.transmitted - p.received <= 30, `lost ${p.transmitted - p.received} of ${p.transmitted} echoes across the failover (eth1 active after ${movedAfter.toFixed(0)} ms)`);
    t.is(await fdbPortOf(lab, bondMac), switchPorts[1], 'the gratuitous ARP taught the bridge the new port');
    const after = await show(lab, 'a');
    const eth0 = after.status.slaves.find((s) => s.name === 'eth0')!;
    t.is(eth0.miiStatus, 'down');
    t.is(eth0.linkFailures, 1);
    t.true(after.counters['gratuitousArpsSent']! >= 1);

    // primary_reselect always (the default): eth0 takes over again once its carrier is back.
    await lab.lab.setSwitchPort(switchPorts[0]!, true);
    await waitFor('eth0 active again', async () => ((await show(lab, 'a')).status.active === 'eth0' ? true : undefined), 3_000);
    t.is((await ping(lab, 'p1', A_IP, 10)).received, 10);
    t.is(await fdbPortOf(lab, bondMac), switchPorts[0]);
  });
});

test.serial("active-backup resend_igmp=2: after a failover the host's multicast groups are reported through the new active slave (IGMPv3, the group the host joined)", async (t) => {
  const { lab, switchPorts } = await BondLab.onSwitch(2, [{ name: 'p1', address: `${B_IP}/24` }]);
  await withLab(lab, async () => {
    await lab.startDaemon('a');
    await lab.bond('a', ['mode=active-backup', 'miimon=100', 'primary=eth0', 'resend_igmp=2'], ['eth0', 'eth1'], `${A_IP}/24`);
    // The host joins 239.1.1.10 on the bond, as a multicast receiver would.
    await lab.lab.ipIn('a', ['address', 'add', '239.1.1.10/32', 'dev', 'bond0', 'autojoin']);
    await sleep(500);
    // On the backup slave: the host's own reports (at the join, seconds before) are not in the window.
    const capture = lab.lab.exec('a', [systemTool('tshark'), '-i', 'eth1', '-a', 'duration:5', '-f', 'igmp', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'igmp.type', '-e', 'igmp.maddr'], { timeoutMs: 20_000 });
    await sleep(2000);
    const before = (await show(lab, 'a')).counters['igmpReportsSent']!;
    const unpluggedAt = Date.now() / 1000;
    await lab.lab.setSwitchPort(switchPorts[0]!, false);
    await waitFor('eth1 to become active', async () => ((await show(lab, 'a')).status.active === 'eth1' ? true : undefined), 3_000);
    const reports = (await capture).stdout
      .trim()
      .split('\n')
      .map((line) => line.split('\t'))
      .filter((f) => Number(f[0]) >= unpluggedAt)
      .map((f) => `${f[1]} ${f[2]}`);
    t.deepEqual(reports, ['0x22 239.1.1.10', '0x22 239.1.1.10'], 'two IGMPv3 reports of the group, on the new active slave');
    t.is((await show(lab, 'a')).counters['igmpReportsSent']! - before, 2);
  });
});

/** Drops every frame entering or leaving the switch through `port`: a failure beyond the switch, carrier up. */
async function dropAtSwitch(lab: BondLab, port: string): Promise<void> {
  for (const argv of [
    [NFT, 'add', 'table', 'bridge', 'lnlbtest'],
    // Entering frames die before the bridge learns from them (prerouting comes before learning).
    [NFT, 'add', 'chain', 'bridge', 'lnlbtest', 'entering', '{ type filter hook prerouting priority 0 ; }'],
    [NFT, 'add', 'rule', 'bridge', 'lnlbtest', 'entering', 'iifname', port, 'drop'],
    [NFT, 'add', 'chain', 'bridge', 'lnlbtest', 'unplug', '{ type filter hook forward priority 0 ; }'],
    [NFT, 'add', 'rule', 'bridge', 'lnlbtest', 'unplug', 'oifname', port, 'drop'],
  ]) {
    const r = await lab.lab.exec('sw', argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  }
}

// balance-tlb: one of the modes where the driver refuses the ARP monitor and lnlb runs it.
for (const mode of ['active-backup', 'balance-tlb'] as const) {
  test.serial(`ARP monitor in ${mode}: frames dropped beyond the switch (carrier up) take the slave down after arp_missed_max probes`, async (t) => {
    const { lab, switchPorts } = await BondLab.onSwitch(2, [{ name: 'p1', address: `${B_IP}/24` }]);
    await withLab(lab, async () => {
      await lab.startDaemon('a');
      const options = [`mode=${mode}`, 'arp_interval=100', `arp_ip_target=${B_IP}`, 'arp_missed_max=3', ...(mode === 'active-backup' ? ['arp_validate=active', 'primary=eth0'] : [])];
      await lab.bond('a', options, ['eth0', 'eth1'], `${A_IP}/24`);
      // Slaves start up by their carrier; the first probes go out from 0.0.0.0 until the bond
      // thread has read the address (≤ 250 ms), so settle a second before judging.
      await sleep(1000);
      await waitFor('both slaves up', async () => ((await show(lab, 'a')).slaves.every((s) => s.linkState === 'UP') ? true : undefined), 5_000);
      await sleep(500);
      t.deepEqual((await show(lab, 'a')).slaves.map((s) => s.linkState), ['UP', 'UP'], 'both stay up while the target answers');

      await dropAtSwitch(lab, switchPorts[0]!);
      const dropped = performance.now();
      const downAfter = await waitFor('eth0 down', async () => ((await show(lab, 'a')).slaves.find((s) => s.name === 'eth0')?.linkState === 'DOWN' ? performance.now() - dropped : undefined), 5_000);
      // 3 missed intervals of 100 ms, plus the driver's half-interval of slack and a tick.
      t.true(downAfter >= 250 && downAfter < 1500, `eth0 went down ${downAfter.toFixed(0)} ms after the drop`);
      const links = JSON.parse(await lab.lab.ipIn('a', ['-j', 'link', 'show', 'eth0'])) as Array<{ flags: string[] }>;
      t.true(links[0]!.flags.includes('LOWER_UP'), 'the carrier never went: only the ARP monitor could see this');
      const s = await show(lab, 'a');
      t.is(s.status.slaves.find((x) => x.name === 'eth0')?.linkFailures, 1);
      t.is(s.slaves.find((x) => x.name === 'eth1')?.linkState, 'UP');
      if (mode === 'active-backup') await waitFor('eth1 active', async () => ((await show(lab, 'a')).status.active === 'eth1' ? true : undefined), 5_000);
      t.regex(await lab.lnlbctl('a', ['bond', 'show', 'bond0']), /^ARP Polling Interval \(ms\): 100$/m);
      t.is((await ping(lab, 'a', B_IP, 10)).received, 10, 'traffic goes on over eth1');
    });
  });
}

test.serial('balance-alb on a bridge: peers receive different slave MACs for the bond address, and receive traffic arrives on both slaves', async (t) => {
  const peers = [1, 2, 3, 4, 5, 6].map((i) => ({ name: `p${i}`, address: `10.9.0.${10 + i}/24` }));
  const { lab } = await BondLab.onSwitch(2, peers);
  await withLab(lab, async () => {
    await lab.startDaemon('a');
    await lab.bond('a', ['mode=balance-alb', 'miimon=100'], ['eth0', 'eth1'], `${A_IP}/24`);
    const slaveMacs = [await lab.mac('a', 'eth0'), await lab.mac('a', 'eth1')];
    t.not(slaveMacs[0], slaveMacs[1], 'alb slaves keep distinct MACs');
    // The bond thread reads the new address within 250 ms; only then are replies from it balanced.
    await sleep(400);
    for (const peer of peers) t.is((await ping(lab, peer.name, A_IP, 3, 0.05)).received, 3, peer.name);
    const learnt = new Set<string>();
    for (const peer of peers) {
      const neigh = JSON.parse((await lab.lab.exec(peer.name, ['ip', '-j', 'neigh', 'show', A_IP])).stdout) as Array<{ lladdr?: string }>;
      const mac = neigh[0]?.lladdr;
      t.true(mac !== undefined && slaveMacs.includes(mac), `${peer.name} learnt ${mac}, a slave MAC of a`);
      learnt.add(mac ?? '');
    }
    t.true(learnt.size >= 2, `peers were given ${learnt.size} distinct slave MAC(s): ${[...learnt].join(', ')}`);
    const before = [await lab.counters('a', 'eth0'), await lab.counters('a', 'eth1')];
    await Promise.all(peers.map((peer) => ping(lab, peer.name, A_IP, 20, 0.02)));
    const after = [await lab.counters('a', 'eth0'), await lab.counters('a', 'eth1')];
    const rx = after.map((c, i) => c.rxPackets - before[i]!.rxPackets);
    t.true(rx[0]! >= 20 && rx[1]! >= 20, `receive load on both slaves: eth0 +${rx[0]}, eth1 +${rx[1]}`);
  });
});

test.serial('a cluster interface on a bond: lnlbd --bond ... --bind bond0 serves the VIP and survives unplugging a slave', async (t) => {
  const { lab, switchPorts } = await BondLab.onSwitch(2, [{ name: 'c1', address: '10.9.0.50/24' }]);
  await withLab(lab, async () => {
    await lab.startDaemon('a', ['--bond', 'bond0 mode=active-backup miimon=100 slaves=eth0,eth1', '--bind', 'bond0', '--vip', '10.9.0.100']);
    await lab.lab.ipIn('a', ['address', 'add', `${A_IP}/24`, 'dev', 'bond0']);
    lab.lab.spawn('a', [process.execPath, 'dist/lab/http-echo-server.js', '--name', 'bonded', '--host', '10.9.0.100', '--port', '80'], { logName: 'http', cwd: new URL('../../../', import.meta.url).pathname });
    const curl = async (): Promise<string> => {
      const r = await lab.lab.exec('c1', ['curl', '-s', '-m', '3', 'http://10.9.0.100/'], { timeoutMs: 10_000 });
      return r.stdout;
    };
    const first = await waitFor('the VIP to answer', async () => ((await curl()).includes('"node":"bonded"') ? true : undefined), 15_000);
    t.true(first);
    const s = JSON.parse(await lab.lnlbctl('a', ['status', '--json'])) as { interfaces: Array<{ name: string; bind?: string }> };
    t.is(s.interfaces.length, 1);
    await lab.lab.setSwitchPort(switchPorts[0]!, false);
    await waitFor('eth1 active', async () => ((await show(lab, 'a')).status.active === 'eth1' ? true : undefined), 3_000);
    t.regex(await curl(), /"node":"bonded","client":"10\.9\.0\.50"/, 'the VIP still answers through eth1');
  });
});

test.serial("a refusal raised in the bond's thread reaches lnlbctl --json with its code: the 33rd slave", async (t) => {
  await withLab(await BondLab.backToBack(), async (lab) => {
    await lab.startDaemon('a');
    const devices = Array.from({ length: 33 }, (_, i) => `s${i}`);
    for (const dev of devices) await lab.lab.ipIn('a', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `p${dev}`]);
    await lab.lnlbctl('a', ['bond', 'create', 'bond0', 'mode=balance-rr']);
    for (let i = 0; i < 32; i += 8) await lab.lnlbctl('a', ['bond', 'enslave', 'bond0', ...devices.slice(i, i + 8)]);
    const own = await lab.mac('a', 's32');
    // The manager has no limit of its own: the thread, which owns the slots, refuses it.
    const refused = await lab.lnlbctlResult('a', ['bond', 'enslave', 'bond0', 's32', '--json']);
    t.is(refused.code, 1);
    const error = (JSON.parse(refused.stdout) as { error: { code: string; message: string } }).error;
    t.is(error.code, 'LNLB_ERR_BOND_SLAVE');
    t.regex(error.message, /^s32: bond0 has 32 slaves already, lnlb's limit: release one first$/);
    t.regex(refused.stderr, /bond0 has 32 slaves already/);
    t.is((await show(lab, 'a')).slaves.length, 32);
    t.is(await lab.mac('a', 's32'), own, 'the refused slave is given back as it was');
  });
});
