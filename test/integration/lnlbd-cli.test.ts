// lnlbd's command-line contract on a real host namespace: bad flags, a missing device and a
// missing privilege each give one clear line and a non-zero exit; a clean stop removes the
// TAP and restores every sysctl it changed.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Lab, sweepStale, waitExit } from '../../src/lab/netns.js';

const LNLBD = fileURLToPath(new URL('../../../bin/lnlbd', import.meta.url));
const LNLBCTL = fileURLToPath(new URL('../../../bin/lnlbctl', import.meta.url));

let lab: Lab | undefined;

test.before(async () => {
  await sweepStale();
  lab = new Lab();
  await lab.addSwitch();
  await lab.addHost('solo', { addresses: ['10.0.0.1/24'] });
});

test.after.always(async () => {
  await lab?.cleanup();
});

function theLab(): Lab {
  if (!lab) throw new Error('lab not built');
  return lab;
}

async function lnlbd(args: string[], runAs?: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const argv = [process.execPath, LNLBD, ...args];
  const wrapped = runAs ? ['setpriv', `--reuid=${runAs}`, `--regid=${runAs}`, '--clear-groups', '--inh-caps=-all', ...argv] : argv;
  return theLab().exec('solo', wrapped, { timeoutMs: 15_000 });
}

const refusals: { title: string; args: string[]; code: number; line: RegExp; runAs?: string }[] = [
  { title: 'a missing --vip', args: ['--bind', 'eth0'], code: 2, line: /^lnlbd: --vip: is required with --bind \(or give neither, and add clusters with lnlbctl addif\)$/ },
  { title: 'a bad IP', args: ['--bind', 'eth0', '--vip', '10.0.0.300'], code: 2, line: /^lnlbd: --vip: expected an IPv4 address/ },
  { title: 'an unknown flag', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--frobnicate'], code: 2, line: /^lnlbd: unknown option '--frobnicate'$/ },
  { title: 'a bad --workers', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--workers', '0'], code: 2, line: /^lnlbd: --workers: expected a whole number from 1 to 64/ },
  { title: 'a missing device', args: ['--bind', 'eth7', '--vip', '10.0.0.100', '--run-dir', '/tmp/lnlb-cli-eth7'], code: 1, line: /^lnlbd: no such device eth7/ },
  { title: 'a missing privilege', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', '/tmp/lnlb-cli-nobody'], code: 1, line: /^lnlbd: lnlbd needs CAP_NET_ADMIN and CAP_NET_RAW/, runAs: '65534' },
];

for (const r of refusals) {
  test.serial(`refused with one clear line: ${r.title}`, async (t) => {
    const result = await lnlbd(r.args, r.runAs);
    t.is(result.code, r.code);
    const lines = result.stderr.trim().split('\n');
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0] ?? '', r.line);
    const link = await theLab().exec('solo', ['ip', 'link', 'show', 'nlb0']);
    t.not(link.code, 0, 'nothing is left half-configured');
  });
}

test.serial('a bad config file value: exit 2, one line naming file:line and the flag', async (t) => {
  const file = `${theLab().dir}/bad.conf`;
  writeFileSync(file, '# solo\nvip = 10.0.0.100\nbind = eth0\nworkers = 0\n');
  const result = await lnlbd(['--config', file]);
  t.is(result.code, 2);
  t.deepEqual(result.stderr.trim().split('\n'), [`lnlbd: ${file}:4: --workers: expected a whole number from 1 to 64, got 0`]);
  const missing = await lnlbd(['--config', `${file}.missing`]);
  t.is(missing.code, 2);
  t.is(missing.stderr.trim(), `lnlbd: ${file}.missing: cannot read the config file: ENOENT (no such file)`);
});

test.serial('--help lists every flag and exits 0', async (t) => {
  const result = await lnlbd(['--help']);
  t.is(result.code, 0);
  for (const flag of ['--bind', '--vip', '--name', '--run-dir', '--workers', '--heartbeat-ms', '--dead-after-ms', '--log-level']) {
    t.true(result.stdout.includes(flag), flag);
  }
});

test.serial('SIGTERM removes the TAP and restores the sysctls; lnlbctl then says to start the daemon', async (t) => {
  const l = theLab();
  const sysctls = ['net.ipv4.conf.eth0.arp_ignore', 'net.ipv4.conf.eth0.arp_announce'];
  const read = async (): Promise<string> => (await l.exec('solo', ['sysctl', '-n', ...sysctls])).stdout;
  const before = await read();
  const runDir = `${l.dir}/solo`;
  const daemon = l.spawn('solo', [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', runDir, '--heartbeat-ms', '100', '--dead-after-ms', '500']);
  await l.waitForLog(daemon, /cluster interface up/, 10_000);
  t.is((await l.exec('solo', ['sysctl', '-n', ...sysctls])).stdout, '1\n2\n');
  const addr = await l.exec('solo', ['ip', '-o', '-4', 'addr', 'show', 'nlb0']);
  t.regex(addr.stdout, /inet 10\.0\.0\.100\/32/);
  const mac = await l.exec('solo', ['cat', '/sys/class/net/nlb0/address']);
  t.is(mac.stdout.trim(), '02:00:0a:00:00:64');
  daemon.kill('SIGTERM');
  t.true(await waitExit(daemon, 8000), 'lnlbd exits on SIGTERM');
  t.is(daemon.exitCode, 0);
  t.is(await read(), before, 'sysctls restored');
  t.not((await l.exec('solo', ['ip', 'link', 'show', 'nlb0'])).code, 0, 'the TAP is gone');
  const ctl = await l.exec('solo', [process.execPath, LNLBCTL, '--run-dir', runDir, 'status']);
  t.is(ctl.code, 1);
  t.regex(ctl.stderr, /no lnlbd is running .* start it with lnlbd/);
});

test.serial('after kill -9 the TAP is gone, and the next start restores the true originals on exit', async (t) => {
  const l = theLab();
  const key = 'net.ipv4.conf.eth0.arp_ignore';
  const original = (await l.exec('solo', ['sysctl', '-n', key])).stdout.trim();
  const runDir = `${l.dir}/solo-crash`;
  const args = [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', runDir, '--heartbeat-ms', '100', '--dead-after-ms', '500'];
  const first = l.spawn('solo', args);
  await l.waitForLog(first, /cluster interface up/, 10_000);
  first.kill('SIGKILL');
  await waitExit(first, 5000);
  t.not((await l.exec('solo', ['ip', 'link', 'show', 'nlb0'])).code, 0, 'the TAP vanished with its process');
  t.is((await l.exec('solo', ['sysctl', '-n', key])).stdout.trim(), '1', 'a killed daemon cannot restore');
  const second = l.spawn('solo', args);
  await l.waitForLog(second, /cluster interface up/, 10_000);
  second.kill('SIGTERM');
  await waitExit(second, 8000);
  t.is((await l.exec('solo', ['sysctl', '-n', key])).stdout.trim(), original, 'the value from before the crash is back');
});
