// Several lnlbd on one host (one network namespace), each with its own run directory, and the
// files a daemon reads back on start: two daemons on two devices stop in either order and
// every sysctl is back to the host's original; one daemon asking for the device the other
// uses is refused with the other's pid and run dir; the second TAP is nlb1 when nlb0 exists;
// a device with a dot in its name (eth1.100, as VLANs are named) binds and restores; planted state files change nothing they name.
import test from 'ava';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Lab, sweepStale, tail, waitExit, type LabProcess } from '../../lab/netns.js';

const LNLBD = fileURLToPath(new URL('../../../bin/lnlbd', import.meta.url));
const LNLBCTL = fileURLToPath(new URL('../../../bin/lnlbctl', import.meta.url));
const TIMING = ['--heartbeat-ms', '100', '--dead-after-ms', '500'];
/** Originals set before each test, unlike the kernel's defaults (0), so that "restored" cannot be confused with "reset". */
const ORIGINALS: Record<string, Record<string, string>> = {
  eth0: { arp_ignore: '2', arp_announce: '1' },
  eth1: { arp_ignore: '3', arp_announce: '1' },
  'eth1.100': { arp_ignore: '4', arp_announce: '1' },
};

let lab: Lab | undefined;
let keyFile = '';

test.before(async () => {
  await sweepStale();
  lab = new Lab();
  await lab.addSwitch();
  await lab.addHost('solo', { addresses: ['10.0.0.1/24'] });
  await lab.addSwitchLink('solo', 'eth1');
  // A VLAN needs the 8021q module, which this kernel may lack: a veth named like one has the same dotted paths.
  await lab.addSwitchLink('solo', 'eth1.100');
  keyFile = `${lab.dir}/cluster.key`;
  writeFileSync(keyFile, Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)));
  chmodSync(keyFile, 0o600);
});

test.after.always(async () => {
  await lab?.cleanup();
});

function theLab(): Lab {
  if (!lab) throw new Error('lab not built');
  return lab;
}

async function readSysctls(dev: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of ['arp_ignore', 'arp_announce']) out[name] = (await theLab().exec('solo', ['cat', `/proc/sys/net/ipv4/conf/${dev}/${name}`])).stdout.trim();
  return out;
}

async function setOriginals(): Promise<void> {
  for (const [dev, values] of Object.entries(ORIGINALS)) {
    for (const [name, value] of Object.entries(values)) await theLab().exec('solo', ['sh', '-c', `echo ${value} > /proc/sys/net/ipv4/conf/${dev}/${name}`]);
  }
}

function runDir(name: string): string {
  const dir = `${theLab().dir}/${name}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function daemonArgs(bind: string, vip: string, dir: string): string[] {
  return [process.execPath, LNLBD, '--bind', bind, '--vip', vip, '--run-dir', dir, '--key-file', keyFile, ...TIMING];
}

async function start(bind: string, vip: string, dir: string): Promise<LabProcess> {
  const daemon = theLab().spawn('solo', daemonArgs(bind, vip, dir), { logName: `lnlbd-${bind}` });
  await theLab().waitForLog(daemon, /cluster interface up/, 15_000);
  return daemon;
}

async function stop(t: import('ava').ExecutionContext, daemon: LabProcess): Promise<void> {
  daemon.kill('SIGTERM');
  t.true(await waitExit(daemon, 10_000), `${daemon.logFile}: exits on SIGTERM`);
  t.is(daemon.exitCode, 0, tail(daemon.logFile));
}

async function linkExists(dev: string): Promise<boolean> {
  return (await theLab().exec('solo', ['ip', 'link', 'show', dev])).code === 0;
}

async function hostStateFiles(): Promise<string[]> {
  const ino = (await theLab().exec('solo', ['stat', '-L', '-c', '%i', '/proc/self/ns/net'])).stdout.trim();
  const ls = await theLab().exec('solo', ['ls', '/run/lnlb-host']);
  return ls.stdout.split('\n').filter((f) => f.includes(`-${ino}`));
}

for (const order of [['first', 'second'], ['second', 'first']] as const) {
  test.serial(`two daemons on eth0 and eth1, own run dirs, stopped ${order.join(' then ')}: both devices' sysctls back to the originals; the second TAP is nlb1`, async (t) => {
    await setOriginals();
    const daemons = {
      first: await start('eth0', '10.0.0.100', runDir('a')),
      second: await start('eth1', '10.0.0.101', runDir('b')),
    };
    t.true(await linkExists('nlb0'));
    t.true(await linkExists('nlb1'), 'nlb0 exists (the other daemon\'s): the second takes nlb1');
    t.deepEqual(await readSysctls('eth0'), { arp_ignore: '1', arp_announce: '2' });
    t.deepEqual(await readSysctls('eth1'), { arp_ignore: '1', arp_announce: '2' });
    await stop(t, daemons[order[0]]);
    await stop(t, daemons[order[1]]);
    t.deepEqual(await readSysctls('eth0'), ORIGINALS['eth0']);
    t.deepEqual(await readSysctls('eth1'), ORIGINALS['eth1']);
    t.false(await linkExists('nlb0'));
    t.false(await linkExists('nlb1'));
    t.deepEqual(await hostStateFiles(), [], 'no sysctl file or device lock of this namespace left in /run/lnlb-host');
  });
}

test.serial("a second daemon asking for the first's device is refused, naming the first's pid and run dir; the first keeps serving", async (t) => {
  await setOriginals();
  const dirA = runDir('a');
  const first = await start('eth0', '10.0.0.100', dirA);
  const second = await theLab().exec('solo', daemonArgs('eth0', '10.0.0.102', runDir('b')), { timeoutMs: 15_000 });
  t.is(second.code, 1);
  t.is(second.stderr.trim(), `lnlbd: eth0 is in use by another lnlbd on this host (pid ${first.pid}, run dir ${dirA}): stop that one, add this cluster to it (lnlbctl --run-dir DIR addif), or use another device`);
  t.true(await linkExists('nlb0'));
  t.false(await linkExists('nlb1'), 'the refused daemon created nothing');
  t.deepEqual(await readSysctls('eth0'), { arp_ignore: '1', arp_announce: '2' }, "the refused daemon did not touch the first's settings");
  await stop(t, first);
  t.deepEqual(await readSysctls('eth0'), ORIGINALS['eth0']);
});

test.serial('a device named with a dot (eth1.100, as VLANs are) binds, gets its sysctls at /proc/sys/net/ipv4/conf/eth1.100/, and has them restored', async (t) => {
  await setOriginals();
  const daemon = await start('eth1.100', '10.0.0.103', runDir('vlan'));
  t.deepEqual(await readSysctls('eth1.100'), { arp_ignore: '1', arp_announce: '2' });
  t.deepEqual(await readSysctls('eth1'), ORIGINALS['eth1'], 'eth1 (what a dotted key split on dots would name) is not touched');
  await stop(t, daemon);
  t.deepEqual(await readSysctls('eth1.100'), ORIGINALS['eth1.100']);
});

test.serial('killed with -9, then another daemon starts with another run dir: it restores what the killed one changed', async (t) => {
  await setOriginals();
  const killed = await start('eth0', '10.0.0.100', runDir('a'));
  killed.kill('SIGKILL');
  await waitExit(killed, 5000);
  t.deepEqual(await readSysctls('eth0'), { arp_ignore: '1', arp_announce: '2' }, 'a killed daemon cannot restore');
  const next = await start('eth1', '10.0.0.101', runDir('b'));
  t.deepEqual(await readSysctls('eth0'), ORIGINALS['eth0'], "restored on the other daemon's start");
  t.regex(tail(next.logFile, 100), /an lnlbd that died did not restore these sysctls/);
  await stop(t, next);
  t.deepEqual(await readSysctls('eth1'), ORIGINALS['eth1']);
});

test.serial('planted state files change nothing: a netns sysctl that is not lnlb\'s, and a bond slave that does not carry the MAC lnlb set', async (t) => {
  await setOriginals();
  const dir = runDir('planted');
  const forward = (await theLab().exec('solo', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
  const eth1Mac = (await theLab().exec('solo', ['cat', '/sys/class/net/eth1/address'])).stdout.trim();
  writeFileSync(`${dir}/sysctl-originals.json`, JSON.stringify({ 'net.ipv4.ip_forward': forward === '1' ? '0' : '1', 'net.ipv4.conf.eth0.arp_ignore': '1; reboot' }));
  // eth1 never was a slave: it carries its own MAC, not the "set" one.
  writeFileSync(`${dir}/bond-slaves.json`, JSON.stringify({ eth1: { bond: 'bond0', mac: '02:66:66:66:66:66', set: '02:77:77:77:77:77', up: false } }));
  const daemon = await start('eth0', '10.0.0.100', dir);
  const log = tail(daemon.logFile, 200);
  await stop(t, daemon);
  t.is((await theLab().exec('solo', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), forward);
  t.is((await theLab().exec('solo', ['cat', '/sys/class/net/eth1/address'])).stdout.trim(), eth1Mac);
  t.true(await linkExists('eth1'));
  t.regex((await theLab().exec('solo', ['ip', '-o', 'link', 'show', 'eth1'])).stdout, /state UP|,UP/);
  t.regex(log, /\\"net\.ipv4\.ip_forward\\": not a sysctl lnlb sets; nothing of it was written/);
  t.regex(log, /net\.ipv4\.conf\.eth0\.arp_ignore: \\"1; reboot\\" is not a value lnlb would have saved/);
  t.regex(log, /eth1 not restored: it carries [0-9a-f:]+, not 02:77:77:77:77:77 which lnlb gave it/);
  t.deepEqual(await readSysctls('eth0'), ORIGINALS['eth0']);
});

test.serial("a bond's slaves left by kill -9 get their own MAC and sysctls back from the next start", async (t) => {
  await setOriginals();
  const dir = runDir('bond');
  const mac = async (dev: string): Promise<string> => (await theLab().exec('solo', ['cat', `/sys/class/net/${dev}/address`])).stdout.trim();
  const own = await mac('eth1.100');
  const bonded = theLab().spawn('solo', [process.execPath, LNLBD, '--run-dir', dir, '--bond', 'bond0 mode=active-backup miimon=100 slaves=eth1,eth1.100'], { logName: 'lnlbd-bond' });
  await theLab().waitForLog(bonded, /bond bond0 created/, 15_000);
  t.is(await mac('eth1.100'), await mac('eth1'), 'the second slave carries the bond MAC (the first slave\'s)');
  t.is((await readSysctls('eth1.100')).arp_ignore, '8');
  bonded.kill('SIGKILL');
  await waitExit(bonded, 5000);
  t.not(await mac('eth1.100'), own, 'a killed daemon cannot give the MAC back');
  const next = theLab().spawn('solo', [process.execPath, LNLBD, '--run-dir', dir], { logName: 'lnlbd-idle' });
  await theLab().waitForLog(next, /no cluster interface yet/, 15_000);
  t.regex(tail(next.logFile, 50), /eth1\.100 was left enslaved to bond0 by a previous lnlbd: its MAC [0-9a-f:]+ is restored/);
  t.is(await mac('eth1.100'), own);
  t.deepEqual(await readSysctls('eth1'), ORIGINALS['eth1']);
  t.deepEqual(await readSysctls('eth1.100'), ORIGINALS['eth1.100']);
  await stop(t, next);
});

test.serial('two clusters of one daemon on eth0: eth0 stays its own until the last of them is removed', async (t) => {
  await setOriginals();
  const dirA = runDir('a');
  const first = await start('eth0', '10.0.0.100', dirA);
  const ctl = (args: string[]): ReturnType<Lab['exec']> => theLab().exec('solo', [process.execPath, LNLBCTL, '--run-dir', dirA, ...args], { timeoutMs: 30_000 });
  const added = await ctl(['addif', '10.0.0.110', 'eth0']);
  t.is(added.code, 0, added.stderr);
  t.is((await ctl(['delif', 'nlb0'])).code, 0);
  const refused = await theLab().exec('solo', daemonArgs('eth0', '10.0.0.102', runDir('b')), { timeoutMs: 15_000 });
  t.regex(refused.stderr, /eth0 is in use by another lnlbd on this host/, 'nlb1 still binds eth0');
  t.deepEqual(await readSysctls('eth0'), { arp_ignore: '1', arp_announce: '2' });
  t.is((await ctl(['delif', 'nlb1'])).code, 0);
  t.deepEqual(await readSysctls('eth0'), ORIGINALS['eth0'], 'the last cluster on eth0 gave its sysctls back');
  const second = await start('eth0', '10.0.0.102', runDir('b'));
  await stop(t, second);
  await stop(t, first);
});
