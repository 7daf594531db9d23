// lnlb's 802.3ad bond against a switch that is not lnlb: Open vSwitch with its userspace
// datapath, its two ports of host a bonded with LACP (balance-tcp, fast LACPDUs), or left plain
// ports with LACP off. What a user checks: LACP negotiates on both sides (OVS says so too), a
// ping keeps going when a link is lost and both links aggregate again when it is back; with no
// LACP on the switch the bond still carries traffic on one port, as the Linux driver's does.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BondLab } from '../../lab/bond-lab.js';
import { parsePing } from '../../lab/cluster.js';
import { sweepStale, waitUntil as waitFor } from '../../lab/netns.js';
import type { BondJson } from '../../src/main/bond-manager.js';

const A_IP = '10.9.0.1';
const PEER_IP = '10.9.0.2';
const OPTIONS = ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4'];
const SYNC_COLLECTING_DISTRIBUTING = 0x08 | 0x10 | 0x20;

test.before(async () => {
  await sweepStale();
});

async function show(lab: BondLab): Promise<BondJson> {
  return JSON.parse(await lab.lnlbctl('a', ['bond', 'show', 'bond0', '--json'])) as BondJson;
}

function distributing(s: BondJson): string[] {
  return s.slaves.filter((x) => x.role === 'active' && ((x.actorState ?? 0) & SYNC_COLLECTING_DISTRIBUTING) === SYNC_COLLECTING_DISTRIBUTING).map((x) => x.name);
}

async function ping(lab: BondLab, count: number, intervalS = 0.01) {
  const r = await lab.lab.exec('a', ['ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '1', PEER_IP], { timeoutMs: 60_000 });
  return parsePing(r.stdout + r.stderr);
}

test.serial('802.3ad against Open vSwitch with LACP: both ports negotiate, OVS agrees, a lost link is survived and aggregates again', async (t) => {
  const { lab, switchPorts, ovs } = await BondLab.onOvs(2, [{ name: 'peer', address: `${PEER_IP}/24` }], 'active');
  try {
    await lab.startDaemon('a');
    await lab.bond('a', OPTIONS, ['eth0', 'eth1'], `${A_IP}/24`);
    await waitFor('both ports collecting and distributing', async () => ((await distributing(await show(lab))).length === 2 ? true : undefined), 20_000);
    // The status file in /proc/net/bonding's layout, under the run directory, kept current.
    const file = join(lab.runDir('a'), 'bonding', 'bond0');
    const ovsSystem = /^\s*sys_id: ([0-9a-f:]+)$/m.exec(await ovs.appctl(['lacp/show', 'bond-a']))?.[1];
    const status = await waitFor('the status file shows both ports in sync with the partner', async () => {
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const inSync = (text.match(/^Actor Churn State: none$/gm) ?? []).length === 2;
      return inSync && (text.match(/details partner lacp pdu:\n    system priority: \d+\n    system mac address: (?!00:00:00:00:00:00)/g) ?? []).length === 2 ? text : undefined;
    }, 10_000);
    t.regex(status, /^802\.3ad info$/m);
    t.regex(status, /^MII Status: up$/m);
    t.truthy(ovsSystem, 'OVS names its LACP system');
    t.is((status.match(new RegExp(`details partner lacp pdu:\\n    system priority: 65534\\n    system mac address: ${ovsSystem ?? '-'}`, 'g')) ?? []).length, 2, `both ports' partner is OVS's system ${ovsSystem}`);
    t.deepEqual((JSON.parse(await lab.lnlbctl('a', ['bond', 'show', 'bond0', '--json'])) as BondJson).status.slaves.map((x) => x.lacp?.partner.portNumber !== undefined), [true, true], 'bond show --json has the same details');

    const ovsBond = await ovs.appctl(['bond/show', 'bond-a']);
    t.regex(ovsBond, /lacp_status: negotiated/, ovsBond);
    t.is((ovsBond.match(/may_enable: true/g) ?? []).length, 2, `OVS enabled both members:\n${ovsBond}`);
    const before = await ping(lab, 50);
    t.is(before.received, 50, before.output);

    // A link lost under a 100 Hz ping: the bond moves its traffic to the other port.
    const pinging = ping(lab, 300);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await lab.lab.setSwitchPort(switchPorts[0]!, false);
    const during = await pinging;
    t.log(`a link lost under a 100 Hz ping: ${300 - during.received} of 300 echo requests lost`);
    t.true(during.received >= 280, `${300 - during.received} of 300 echo requests lost across the link loss:\n${during.output}`);
    t.deepEqual(distributing(await show(lab)), ['eth1']);

    await lab.lab.setSwitchPort(switchPorts[0]!, true);
    await waitFor('both ports aggregate again', async () => ((await distributing(await show(lab))).length === 2 ? true : undefined), 20_000);
    await lab.lnlbctl('a', ['bond', 'destroy', 'bond0']);
    t.false(existsSync(file), 'the status file goes with the bond');
  } catch (error) {
    console.error(lab.logTails());
    throw error;
  } finally {
    await lab.cleanup();
  }
});

test.serial("802.3ad against a switch with LACP off: the Linux driver's fallback, one port carries the traffic", async (t) => {
  const { lab } = await BondLab.onOvs(2, [{ name: 'peer', address: `${PEER_IP}/24` }], 'off');
  try {
    await lab.startDaemon('a');
    await lab.bond('a', OPTIONS, ['eth0', 'eth1'], `${A_IP}/24`);
    const s = await waitFor('one port carries traffic', async () => {
      const status = await show(lab);
      return distributing(status).length === 1 ? status : undefined;
    }, 20_000);
    t.log(`distributing: ${distributing(s).join(', ')}`);
    const p = await ping(lab, 50);
    t.is(p.received, 50, p.output);
    const text = await lab.lnlbctl('a', ['bond', 'show', 'bond0']);
    t.regex(text, /Partner Mac Address: 00:00:00:00:00:00/, text);
    t.regex(text, /MII Status: up/, text);
  } catch (error) {
    console.error(lab.logTails());
    throw error;
  } finally {
    await lab.cleanup();
  }
});

/** Run in host a: sends one frame, given as hex, through a packet socket on `dev` (as a VLAN device on the bond would hand it over: tag in the bytes). */
const SEND_FRAME = `
const [native, dev, hex] = process.argv.slice(1);
const port = await import(native);
const fd = port.packetOpen(dev, { protocol: 0, promisc: false, vnetHdr: false, ignoreOutgoing: true });
const frame = Uint8Array.from(Buffer.from(hex, 'hex'));
console.log(port.send(fd, frame, 0, frame.length));
`;

test.serial('VLAN tags pass through the bond both ways: a frame tagged 100 by the switch reaches the host tagged, a tagged frame from the host leaves on VLAN 100', async (t) => {
  const { lab } = await BondLab.onOvs(2, [{ name: 'peer', address: `${PEER_IP}/24` }], 'active', 100);
  try {
    await lab.startDaemon('a');
    await lab.bond('a', OPTIONS, ['eth0', 'eth1'], `${A_IP}/24`);
    await waitFor('both ports collecting and distributing', async () => ((await distributing(await show(lab))).length === 2 ? true : undefined), 20_000);
    // The peer (an access port of VLAN 100) asks for a's address: the switch tags its broadcast.
    const captureIn = lab.lab.exec('a', ['timeout', '8', 'tshark', '-i', 'bond0', '-c', '1', '-f', 'vlan 100 and arp', '-T', 'fields', '-e', 'vlan.id', '-e', 'arp.src.proto_ipv4'], { timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await lab.lab.exec('peer', ['ping', '-c', '2', '-W', '1', A_IP], { timeoutMs: 10_000 });
    const inbound = await captureIn;
    t.is(inbound.stdout.trim(), `100\t${PEER_IP}`, `the host saw the peer's ARP tagged 100: ${inbound.stderr.slice(-300)}`);
    t.true(((await show(lab)).counters['vlanFramesIn'] ?? 0) >= 1);

    // The host side sends an ARP request tagged 100; the peer, on VLAN 100's access port, gets it.
    const bondMac = (await lab.mac('a', 'bond0')).replaceAll(':', '');
    const arp = `ffffffffffff${bondMac}8100006408060001080006040001${bondMac}0a090001000000000000${'0a090002'}`;
    const captureOut = lab.lab.exec('peer', ['timeout', '8', 'tshark', '-i', 'eth0', '-c', '1', '-f', `arp and ether src ${bondMac.match(/../g)!.join(':')}`, '-T', 'fields', '-e', 'arp.dst.proto_ipv4', '-e', 'vlan.id'], { timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const native = new URL('../../src/port/native.js', import.meta.url).pathname;
    const sent = await lab.lab.exec('a', [process.execPath, '--input-type=module', '-e', SEND_FRAME, native, 'bond0', arp], { timeoutMs: 10_000 });
    t.is(sent.code, 0, sent.stderr);
    const outbound = await captureOut;
    t.is(outbound.stdout.trim(), PEER_IP, `the peer got the host's tagged frame on VLAN 100, untagged at its access port: ${outbound.stderr.slice(-300)}`);
  } catch (error) {
    console.error(lab.logTails());
    throw error;
  } finally {
    await lab.cleanup();
  }
});

test.serial('Marker: a Marker Information PDU sent to a bonded port from the switch side is answered on that link with the same PDU as a Response, from the port\'s MAC', async (t) => {
  const { lab, switchPorts } = await BondLab.onOvs(2, [{ name: 'peer', address: `${PEER_IP}/24` }], 'active');
  try {
    await lab.startDaemon('a');
    await lab.bond('a', OPTIONS, ['eth0', 'eth1'], `${A_IP}/24`);
    await waitFor('both ports collecting and distributing', async () => ((await distributing(await show(lab))).length === 2 ? true : undefined), 20_000);
    const eth0Mac = (JSON.parse(await lab.lnlbctl('a', ['bond', 'show', 'bond0', '--json'])) as BondJson).status.slaves.find((x) => x.name === 'eth0')!.permanentMac;
    // A partner's Marker Information PDU: port 5 of system 02:00:00:00:00:bb, transaction 0x0a0b0c0d.
    const marker = `0180c2000002${'0200000000bb'}8809` + '02010110' + '0005' + '0200000000bb' + '0a0b0c0d' + '0000' + '0000' + '00'.repeat(90);
    const capture = lab.lab.exec('sw', ['tshark', '-i', switchPorts[0]!, '-a', 'duration:6', '-c', '1', '-f', 'ether proto 0x8809 and ether[14] == 2 and ether[16] == 2', '-T', 'fields', '-e', 'eth.src', '-e', 'marker.tlvType', '-e', 'marker.requesterPort', '-e', 'marker.requesterSystem', '-e', 'marker.requesterTransId'], { timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const native = new URL('../../src/port/native.js', import.meta.url).pathname;
    const sent = await lab.lab.exec('sw', [process.execPath, '--input-type=module', '-e', SEND_FRAME, native, switchPorts[0]!, marker], { timeoutMs: 10_000 });
    t.is(sent.code, 0, sent.stderr);
    const captured = await capture;
    const response = captured.stdout.trim().split('\t');
    t.is(response[0], eth0Mac, "from the port's own MAC, on the link the Marker came in on");
    t.is(Number(response[1]?.split(',')[0]), 2, 'a Marker Response (then the terminator TLV)');
    t.is(response[2], '5', "the requester's port");
    t.is(response[3], '02:00:00:00:00:bb', "the requester's system");
    t.is(Number(response[4]), 0x0a0b0c0d, 'the transaction id');
    t.is((await show(lab)).counters['markersAnswered'], 1);
  } catch (error) {
    console.error(lab.logTails());
    throw error;
  } finally {
    await lab.cleanup();
  }
});
