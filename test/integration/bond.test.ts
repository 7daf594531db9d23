// Our userspace bond on real links in namespaces, driven through lnlbctl as an operator does:
// back-to-back hosts over two veth pairs for balance-rr, balance-xor, broadcast and 802.3ad
// (traffic flows, both links carry frames by the veth counters, LACP reaches
// collecting+distributing), tshark decoding our LACPDUs, active-backup against a Linux bridge
// (unplug, gratuitous ARP, primary back), the ARP monitor against nftables drops beyond the
// switch, and balance-alb's receive balancing. Each test builds its own lab and removes it.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { BondLab } from '../../src/lab/bond-lab.js';
import { parsePing } from '../../src/lab/cluster.js';
import { sweepStale } from '../../src/lab/netns.js';
import type { BondJson } from '../../src/main/bond-manager.js';

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

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
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
    const tx = await txDelta(lab, 'a', () => tcpStreams(lab, 2, 8));
    t.true(tx.eth0 > 100 && tx.eth1 > 100, `8 TCP streams should use both links: eth0 +${tx.eth0}, eth1 +${tx.eth1}`);
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
    const tx = await txDelta(lab, 'a', () => tcpStreams(lab, 2, 8));
    t.true(tx.eth0 > 100 && tx.eth1 > 100, `8 TCP streams should use both links: eth0 +${tx.eth0}, eth1 +${tx.eth1}`);

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
