// lnlbctl's command line without a daemon and without root: arguments refused locally with
// exit 2 and one line, help on every level, and "not running" against an empty run directory.
import test from 'ava';
import { execFile } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadKeyFile } from '../../../src/net/auth.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LNLBCTL = fileURLToPath(new URL('../../../../bin/lnlbctl', import.meta.url));

function emptyRunDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlbctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs lnlbctl; the run directory is an empty one unless args give theirs. */
function lnlbctl(t: import('ava').ExecutionContext, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const runDir = args.includes('--run-dir') ? [] : ['--run-dir', emptyRunDir(t)];
  return new Promise((resolve) => {
    execFile(process.execPath, [LNLBCTL, ...runDir, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

const lines = (text: string): string[] => text.trim().split('\n');

test('bond create with a bad option word: exit 2, one line naming the option and what it accepts', async (t) => {
  const r = await lnlbctl(t, ['bond', 'create', 'bond0', 'mode=nope']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.deepEqual(lines(r.stderr), [
    'lnlbctl: mode: "nope" is not a bonding mode; use one of balance-rr (0), active-backup (1), balance-xor (2), broadcast (3), 802.3ad (4), balance-tlb (5), balance-alb (6)',
  ]);
  const rule = await lnlbctl(t, ['bond', 'create', 'bond0', 'mode=active-backup', 'lacp_rate=fast']);
  t.is(rule.code, 2);
  t.regex(rule.stderr, /^lnlbctl: lacp_rate: only for mode 802\.3ad \(4\), not active-backup \(1\)/);
});

test('bond arguments are checked before the daemon is asked (no daemon here): exit 2', async (t) => {
  const badName = await lnlbctl(t, ['bond', 'create', 'bond/0', 'mode=1']);
  t.is(badName.code, 2);
  t.deepEqual(lines(badName.stderr), [`lnlbctl: <name>: expected a device name of 1 to 15 bytes (no '/', ':', '%' or white space), got "bond/0"`]);
  const noDevice = await lnlbctl(t, ['bond', 'enslave', 'bond0']);
  t.is(noDevice.code, 2);
  t.deepEqual(lines(noDevice.stderr), ["lnlbctl: missing required argument 'dev'"]);
  const twice = await lnlbctl(t, ['bond', 'release', 'bond0', 'eth1', 'eth1']);
  t.is(twice.code, 2);
  t.deepEqual(lines(twice.stderr), ['lnlbctl: <dev>: eth1 is given twice']);
  const unknown = await lnlbctl(t, ['bond', 'frobnicate']);
  t.is(unknown.code, 2);
  t.deepEqual(lines(unknown.stderr), ["lnlbctl: unknown command 'frobnicate'"]);
});

test('lnlbctl bond alone prints its help, listing every subcommand; each subcommand has its own', async (t) => {
  const r = await lnlbctl(t, ['bond']);
  t.is(r.code, 0);
  const help = r.stdout + r.stderr;
  t.regex(help, /^Usage: lnlbctl bond \[options\] \[command\]/m);
  for (const sub of ['create', 'enslave', 'release', 'show', 'list', 'destroy']) t.regex(help, new RegExp(`^  ${sub} `, 'm'), sub);
  t.regex(help, /lnlbctl bond create bond0 mode=802\.3ad miimon=100/);
  const show = await lnlbctl(t, ['bond', 'show', '--help']);
  t.is(show.code, 0);
  t.regex(show.stdout, /^Usage: lnlbctl bond show \[options\] \[bond\]/);
  t.regex(show.stdout, /--json/);
  const create = await lnlbctl(t, ['bond', 'create', '--help']);
  t.is(create.code, 0);
  t.regex(create.stdout, /^Usage: lnlbctl bond create \[options\] <name> \[option=value\.\.\.\]/);
  const top = await lnlbctl(t, ['--help']);
  t.regex(top.stdout, /^ {2}bond /m, 'lnlbctl --help lists bond');
});

test('bond list and bond show without a daemon: exit 1, "not running"; good options reach the socket', async (t) => {
  for (const args of [['bond', 'list'], ['bond', 'show'], ['bond', 'show', 'bond0', '--json'], ['bond', 'create', 'bond0', 'mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4']]) {
    const r = await lnlbctl(t, args);
    t.is(r.code, 1, args.join(' '));
    t.is(lines(r.stderr).length, 1, r.stderr);
    t.regex(r.stderr, /^lnlbctl: no lnlbd is running at \S+ \(ENOENT\): start it with lnlbd/, args.join(' '));
  }
  const after = await lnlbctl(t, ['bond', 'list', '--run-dir', emptyRunDir(t)]);
  t.regex(after.stderr, /no lnlbd is running/, '--run-dir after the subcommand works too');
});

test('every command has --help (exit 0, its own usage line), and lnlbctl --help lists them all', async (t) => {
  const commands = ['status', 'top', 'conntrack', 'addif', 'delif', 'weight_mode', 'set_weight', 'resync', 'stop', 'start', 'drainstop', 'suspend', 'resume', 'bond', 'genkey'];
  const all = await lnlbctl(t, ['--help']);
  t.is(all.code, 0);
  for (const command of commands) {
    t.regex(all.stdout, new RegExp(`^  ${command}\\b`, 'm'), `lnlbctl --help lists ${command}`);
    const r = await lnlbctl(t, [command, '--help']);
    t.is(r.code, 0, command);
    t.regex(r.stdout, new RegExp(`^Usage: lnlbctl ${command}\\b`), command);
  }
});

test('an unknown command or option: one line on stderr naming it, exit 2', async (t) => {
  const unknown = await lnlbctl(t, ['frobnicate']);
  t.is(unknown.code, 2);
  t.deepEqual(lines(unknown.stderr), ["lnlbctl: unknown command 'frobnicate'"]);
  const option = await lnlbctl(t, ['status', '--bogus']);
  t.is(option.code, 2);
  t.deepEqual(lines(option.stderr), ["lnlbctl: unknown option '--bogus'"]);
  const missing = await lnlbctl(t, ['drainstop']);
  t.is(missing.code, 2);
  t.deepEqual(lines(missing.stderr), ["lnlbctl: missing required argument 'interface'"]);
});

test('with --json every error is one JSON object on stdout with its code and message, beside the line on stderr, and a non-zero exit', async (t) => {
  const cases: [string[], number, string, RegExp][] = [
    [['status', '--json', '--bogus'], 2, 'LNLB_ERR_CTL_BAD_ARGUMENT', /^unknown option '--bogus'$/],
    [['stop', '--json'], 2, 'LNLB_ERR_CTL_BAD_ARGUMENT', /^missing required argument 'interface'$/],
    [['frobnicate', '--json'], 2, 'LNLB_ERR_CTL_BAD_ARGUMENT', /^unknown command 'frobnicate'$/],
    [['set_weight', 'nlb0', '1001', '--json'], 2, 'LNLB_ERR_WEIGHT_RANGE', /1\.\.1000/],
    [['addif', '10.0.0.300', 'eth0', '--json'], 2, 'LNLB_ERR_CLI_BAD_FLAG', /^<cluster ip>: expected an IPv4 or IPv6 address/],
    [['status', '--json'], 1, 'LNLB_ERR_CTL_NO_DAEMON', /^no lnlbd is running at .*: start it with lnlbd/],
    [['status', '--watch', '--count', '2', '--json'], 1, 'LNLB_ERR_CTL_NO_DAEMON', /^no lnlbd is running/],
    [['bond', 'list', '--json'], 1, 'LNLB_ERR_CTL_NO_DAEMON', /^no lnlbd is running/],
    [['genkey', '/nonexistent-lnlb-dir/cluster.key', '--json'], 1, 'LNLB_ERR_AUTH_KEY_WRITE', /^cannot write key file \/nonexistent-lnlb-dir\/cluster\.key: ENOENT/],
  ];
  for (const [args, code, errorCode, message] of cases) {
    const r = await lnlbctl(t, args);
    const what = args.join(' ');
    t.is(r.code, code, what);
    t.is(lines(r.stdout).length, 1, `${what}: one line on stdout: ${r.stdout}`);
    const error = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
    t.is(error.code, errorCode, what);
    t.regex(error.message, message, what);
    t.deepEqual(lines(r.stderr), [`lnlbctl: ${error.message}`], `${what}: the same message, for a person, on stderr`);
  }
  const plain = await lnlbctl(t, ['status', '--bogus']);
  t.is(plain.stdout, '', 'without --json, stdout stays empty');
});

test('bad arguments are refused before the daemon is asked: bad IP, weight outside 1..1000, bad seconds (exit 2, one line)', async (t) => {
  const cases: [string[], RegExp][] = [
    [['addif', '10.0.0.300', 'eth0'], /<cluster ip>: expected an IPv4 or IPv6 address such as 10\.0\.0\.100 or fd00:10::100 \(dual stack: one of each, comma-separated\), got "10\.0\.0\.300"/],
    [['addif', '10.0.0.100', 'a/b'], /<dev>: expected a device name/],
    [['set_weight', 'nlb0', '1001'], /1\.\.1000/],
    [['set_weight', 'nlb0', '0'], /1\.\.1000/],
    [['weight_mode', 'nlb0', 'fastest'], /loadavg/],
    [['weight_mode', 'nlb0', 'manual'], /^lnlbctl: weight_mode: weight mode "manual" was retired when weights became capacities/],
    [['drainstop', 'nlb0', '--timeout', 'soon'], /--timeout: expected a number from 0/],
    [['drainstop', 'nlb0', '--idle', '-1'], /--idle: expected a number from 0/],
    [['status', '--watch', '--interval', '0'], /--interval: expected a number from 0\.1/],
    [['stop', 'this-name-is-too-long'], /<interface>/],
    [['addif', '10.0.0.100', 'eth0', '--key-file', '/etc/lnlb/cluster.key', '--insecure-no-auth'], /^lnlbctl: --key-file: cannot be given with --insecure-no-auth/],
  ];
  for (const [args, message] of cases) {
    const r = await lnlbctl(t, args);
    t.is(r.code, 2, args.join(' '));
    t.is(lines(r.stderr).length, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
  }
});

test('daemon not running: every command that needs it says to start lnlbd (exit 1)', async (t) => {
  for (const args of [['status'], ['stop', 'nlb0'], ['start', 'nlb0'], ['drainstop', 'nlb0', '--timeout', '1'], ['suspend', 'nlb0'], ['resume', 'nlb0'], ['top', '--count', '1'], ['delif', 'nlb0'], ['set_weight', 'nlb0', '5']]) {
    const r = await lnlbctl(t, args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, /^lnlbctl: no lnlbd is running at .*: start it with lnlbd/, args.join(' '));
  }
});

test('genkey PATH: 64 hex characters and a newline, mode 0600, a key loadKeyFile takes without a warning', async (t) => {
  const dir = emptyRunDir(t);
  const path = join(dir, 'cluster.key');
  const r = await lnlbctl(t, ['genkey', path]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `wrote ${path}: a new 256-bit key, mode 0600. Copy it to every node (scp -p ${path} NODE:${path}) and start each lnlbd with --key-file ${path}\n`);
  const text = readFileSync(path, 'utf8');
  t.regex(text, /^[0-9a-f]{64}\n$/);
  t.false(r.stdout.includes(text.trim()), 'the key itself is never printed');
  t.is(lstatSync(path).mode & 0o777, 0o600);
  const warnings: string[] = [];
  t.is(loadKeyFile(path, { warn: (m) => warnings.push(m) }).toString(), text.trim());
  t.deepEqual(warnings, []);
  const other = join(dir, 'other.key');
  await lnlbctl(t, ['genkey', other]);
  t.not(readFileSync(other, 'utf8'), text, 'a new key each time');
});

test('genkey refuses to overwrite a file (exit 1, LNLB_ERR_AUTH_KEY_EXISTS message); --force replaces it; --json', async (t) => {
  const dir = emptyRunDir(t);
  const path = join(dir, 'cluster.key');
  writeFileSync(path, 'the key in use\n', { mode: 0o600 });
  const refused = await lnlbctl(t, ['genkey', path]);
  t.is(refused.code, 1);
  t.deepEqual(lines(refused.stderr), [`lnlbctl: key file ${path} exists already: not overwritten (a key in use would be lost); give --force to replace it, then copy it to every node`]);
  t.is(readFileSync(path, 'utf8'), 'the key in use\n', 'untouched');
  const forced = await lnlbctl(t, ['genkey', path, '--force', '--json']);
  t.is(forced.code, 0, forced.stderr);
  t.deepEqual(JSON.parse(forced.stdout), { path, bytes: 32, mode: '0600', replaced: true });
  t.regex(readFileSync(path, 'utf8'), /^[0-9a-f]{64}\n$/);
  t.is(lstatSync(path).mode & 0o777, 0o600);
  const fresh = await lnlbctl(t, ['genkey', join(dir, 'new.key'), '--json']);
  t.deepEqual(JSON.parse(fresh.stdout), { path: join(dir, 'new.key'), bytes: 32, mode: '0600', replaced: false });
});

test('genkey never writes through a symbolic link (even with --force), nor into a missing directory: exit 1, one clear line', async (t) => {
  const dir = emptyRunDir(t);
  const target = join(dir, 'target');
  writeFileSync(target, 'not a key\n');
  const link = join(dir, 'link.key');
  symlinkSync(target, link);
  for (const args of [['genkey', link], ['genkey', link, '--force']]) {
    const r = await lnlbctl(t, args);
    t.is(r.code, 1, args.join(' '));
    t.deepEqual(lines(r.stderr), [`lnlbctl: cannot write key file ${link}: ELOOP (the path is a symbolic link: give the real path)`]);
  }
  t.is(readFileSync(target, 'utf8'), 'not a key\n');
  const nowhere = join(dir, 'no-such-dir', 'cluster.key');
  const r = await lnlbctl(t, ['genkey', nowhere]);
  t.is(r.code, 1);
  t.deepEqual(lines(r.stderr), [`lnlbctl: cannot write key file ${nowhere}: ENOENT (no such directory: create it first (mkdir -p -m 755 DIR))`]);
  const isDir = await lnlbctl(t, ['genkey', dir, '--force']);
  t.is(isDir.stderr, `lnlbctl: cannot write key file ${dir}: EISDIR (it is a directory)\n`);
  const help = await lnlbctl(t, ['genkey', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--force +replace an existing key file/);
  t.regex(help.stdout, /lnlbd --bind eth0 --vip 10\.0\.0\.100 --key-file \/etc\/lnlb\/cluster\.key/);
  const none = await lnlbctl(t, ['genkey']);
  t.is(none.code, 2);
  t.deepEqual(lines(none.stderr), ["lnlbctl: missing required argument 'path'"]);
});
