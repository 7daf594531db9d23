// lnlbd's command line without root: a bad --bond is refused while parsing, before lnlbd
// looks at its privileges or touches anything (exit 2, one line naming the flag and the word).
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER_MAC_FORMS } from '../../../src/net/vip.js';

const LNLBD = fileURLToPath(new URL('../../../../bin/lnlbd', import.meta.url));

/** Runs lnlbd with an empty config file (so the host's /etc/lnlb/lnlb.conf stays out of it). */
function lnlbd(t: import('ava').ExecutionContext, args: string[], config = ''): Promise<{ code: number | null; stdout: string; stderr: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lnlbd-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lnlb.conf');
  writeFileSync(file, config);
  return new Promise((resolve) => {
    execFile(process.execPath, [LNLBD, '--config', file, '--run-dir', join(dir, 'run'), ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr, dir });
    });
  });
}

test('--bond with an option outside its mode: exit 2, one line naming --bond and the option', async (t) => {
  const r = await lnlbd(t, ['--bond', 'bond0 lacp_rate=fast']);
  t.is(r.code, 2);
  t.deepEqual(r.stderr.trim().split('\n'), [
    'lnlbd: --bond: "bond0 lacp_rate=fast": lacp_rate: only for mode 802.3ad (4), not balance-rr (0); leave lacp_rate out or choose one of those modes',
  ]);
});

test('--bond: a missing name, a doubled slave, two bonds sharing a slave, --bind on a slave: exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--bond', 'mode=802.3ad'], /^lnlbd: --bond: "mode=802\.3ad": the first word is the bond's name/],
    [['--bond', 'bond0 slaves=eth1,eth1'], /^lnlbd: --bond: "bond0 slaves=eth1,eth1": slaves=eth1,eth1: eth1 is given twice$/],
    [['--bond', 'bond0 slaves=eth1', '--bond', 'bond1 slaves=eth1'], /^lnlbd: --bond: eth1 is a slave of bond0 already/],
    [['--bond', 'bond0 slaves=eth1', '--bind', 'eth1', '--vip', '10.0.0.100'], /^lnlbd: --bind: eth1 is a slave of bond0 \(--bond\): bind the cluster to the bond \(--bind bond0\)$/],
  ];
  for (const [args, line] of cases) {
    const r = await lnlbd(t, args);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr.trim(), line);
  }
});

test('a bad bond line in the config file: exit 2, file:line and --bond', async (t) => {
  const r = await lnlbd(t, [], '# bonds\nbond = bond0 mode=802.3ad miimon=100\nbond = bond1 mode=active-backup lacp_rate=fast\n');
  t.is(r.code, 2);
  t.regex(r.stderr.trim(), /^lnlbd: \S+lnlb\.conf:3: --bond: "bond1 mode=active-backup lacp_rate=fast": lacp_rate: only for mode 802\.3ad \(4\)/);
});

test('--help describes --bond', async (t) => {
  const r = await lnlbd(t, ['--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /--bond <spec>/);
  t.regex(r.stdout, /slaves=dev1,dev2/);
});

const KEY_MISSING =
  'lnlbd: a cluster interface needs a key, or any host on this LAN can take the cluster over: give --key-file PATH (key-file = PATH in the config file), the same file on every node; make one with `lnlbctl genkey /etc/lnlb/cluster.key` and copy it to every node (for a lab only, --insecure-no-auth runs without a key)';

test('a cluster without a key, by flags or by the config file: exit 2, one line saying how to make a key; nothing created', async (t) => {
  for (const [args, config] of [
    [['--bind', 'eth0', '--vip', '10.0.0.100'], ''],
    [[], 'bind = eth0\nvip = 10.0.0.100\n'],
    [['--bind', 'eth0'], 'vip = 10.0.0.100\ninsecure-no-auth = false\n'],
  ] as const) {
    const r = await lnlbd(t, [...args], config);
    t.is(r.code, 2, `${args.join(' ')} / ${config}`);
    t.deepEqual(r.stderr.trim().split('\n'), [KEY_MISSING]);
    t.false(existsSync(join(r.dir, 'run')), 'not even the run directory');
  }
});

test('a key and --insecure-no-auth together: exit 2 naming both (on the file line when the file gave the key)', async (t) => {
  const both = await lnlbd(t, ['--bind', 'eth0', '--vip', '10.0.0.100', '--key-file', '/etc/lnlb/cluster.key', '--insecure-no-auth']);
  t.is(both.code, 2);
  t.deepEqual(both.stderr.trim().split('\n'), ['lnlbd: --key-file: cannot be given with --insecure-no-auth: give the key (authenticated) or the opt-out (labs only), not both']);
  const fromFile = await lnlbd(t, ['--insecure-no-auth'], '# key\n\nkey-file = /etc/lnlb/cluster.key\n');
  t.is(fromFile.code, 2);
  t.regex(fromFile.stderr.trim(), /^lnlbd: \S+lnlb\.conf:3: --key-file: cannot be given with --insecure-no-auth/);
  const badSwitch = await lnlbd(t, [], 'insecure-no-auth = yes\n');
  t.is(badSwitch.code, 2);
  t.regex(badSwitch.stderr.trim(), /^lnlbd: \S+lnlb\.conf:1: --insecure-no-auth: expected true or false, got "yes"$/);
});

test('--help describes --key-file (with lnlbctl genkey) and --insecure-no-auth', async (t) => {
  const r = await lnlbd(t, ['--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /--key-file <path>/);
  t.regex(r.stdout, /lnlbctl genkey/);
  t.regex(r.stdout, /--insecure-no-auth +run cluster interfaces WITHOUT a key/);
  t.notRegex(r.stdout, /default: false/);
});

test('--help and the README give the cluster MACs as the code derives them (multicast 01:00:5e:7f:a:b: the first two octets)', async (t) => {
  const r = await lnlbd(t, ['--help']);
  t.is(r.code, 0);
  const help = r.stdout.replace(/\s+/g, ' '); // commander wraps descriptions
  const readme = readFileSync(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8');
  for (const form of Object.values(CLUSTER_MAC_FORMS)) {
    t.true(help.includes(form), `lnlbd --help gives ${form}`);
    t.true(readme.includes(`\`${form}\``), `README gives ${form}`);
  }
  t.false(/01:00:5e:7f:c:d/.test(help + readme), 'not the last two octets');
});
