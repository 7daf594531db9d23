// lnlbd's command-line contract on a real host namespace: bad flags, a missing device and a
// missing privilege each give one clear line and a non-zero exit; a clean stop removes the
// TAP and restores every sysctl it changed, and so does an unexpected error (then exit 1).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, sweepStale, waitExit, waitUntil } from '../../src/lab/netns.js';

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

test.serial('an unhandled rejection or uncaught exception stops lnlbd as SIGTERM does: LEAVE, TAP gone, sysctls restored, exit 1', async (t) => {
  // Two nodes of a keyed cluster on their own switch: b watches how a goes.
  const pair = new Lab();
  try {
    await pair.addSwitch();
    await pair.addHost('a', { addresses: ['10.0.0.1/24'] });
    await pair.addHost('b', { addresses: ['10.0.0.2/24'] });
    const keyFile = join(pair.dir, 'cluster.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const node = (runDir: string): string[] =>
      [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--key-file', keyFile, '--run-dir', join(pair.dir, runDir), '--heartbeat-ms', '100', '--dead-after-ms', '500', '--config', join(pair.dir, 'empty.conf')];
    writeFileSync(join(pair.dir, 'empty.conf'), '');
    const b = pair.spawn('b', node('run-b'));
    await pair.waitForLog(b, /cluster interface up/, 10_000);
    const sysctls = ['net.ipv4.conf.eth0.arp_ignore', 'net.ipv4.conf.eth0.arp_announce'];
    const before = (await pair.exec('a', ['sysctl', '-n', ...sysctls])).stdout;
    const kinds = ['unhandled-rejection', 'uncaught-exception'];
    for (const [i, kind] of kinds.entries()) {
      const a = pair.spawn('a', node(`run-a-${kind}`), { env: { ...process.env, LNLB_TEST_FAULT: `${kind}:2500` }, logName: `lnlbd-${kind}` });
      await pair.waitForLog(a, /cluster interface up/, 10_000);
      t.is((await pair.exec('a', ['sysctl', '-n', ...sysctls])).stdout, '1\n2\n');
      t.true(await waitExit(a, 20_000), `${kind}: lnlbd exits`);
      t.is(a.exitCode, 1, `${kind}: non-zero exit`);
      const log = readFileSync(a.logFile, 'utf8');
      t.regex(log, new RegExp(`${kind.replace('-', ' ')}: injected fault .*leaving the cluster and restoring the host`));
      t.not((await pair.exec('a', ['ip', 'link', 'show', 'nlb0'])).code, 0, `${kind}: the TAP is gone`);
      t.is((await pair.exec('a', ['sysctl', '-n', ...sysctls])).stdout, before, `${kind}: arp_ignore/arp_announce restored`);
      // b saw a LEAVE, not a silence: the death is 'left', never 'missed-heartbeats'.
      const deaths = await waitUntil(`b counts ${i + 1} LEAVE(s)`, async () => {
        const status = JSON.parse((await pair.exec('b', [process.execPath, LNLBCTL, '--run-dir', join(pair.dir, 'run-b'), 'status', '--json'])).stdout) as { interfaces: { counters: { deaths?: Record<string, number> } }[] };
        const deaths = status.interfaces[0]?.counters.deaths ?? {};
        return (deaths['left'] ?? 0) === i + 1 ? deaths : undefined;
      }, 5_000);
      t.is(deaths['missed-heartbeats'] ?? 0, 0, `${kind}: b saw no death by timeout`);
    }
    t.regex(readFileSync(b.logFile, 'utf8'), /left the cluster/);
    b.kill('SIGTERM');
    t.true(await waitExit(b, 8000));
  } catch (error) {
    console.error(pair.dir);
    throw error;
  } finally {
    await pair.cleanup();
  }
});
