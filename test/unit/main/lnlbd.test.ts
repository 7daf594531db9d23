// lnlbd's command line without root: a bad --bond is refused while parsing, before lnlbd
// looks at its privileges or touches anything (exit 2, one line naming the flag and the word).
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
