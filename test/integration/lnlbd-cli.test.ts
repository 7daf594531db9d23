// lnlbd's command-line contract on a real host namespace: bad flags, a missing device, a
// missing privilege and a missing or unusable key each give one clear line and a non-zero exit,
// with nothing created; a clean stop removes the TAP and restores every sysctl it changed, and
// so does an unexpected error (then exit 1).
// Every daemon here gets the lab's key (KEY below) unless the test is about not having one.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, sweepStale, systemTool, waitExit, waitUntil } from '../../lab/netns.js';
import { defaultNodeName } from '../../src/net/cluster-message.js';
import { hostname } from 'node:os';

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

/** Stands for the lab's key file in an argument list (the lab is built after the list). */
const KEY = '<the lab key>';

async function lnlbd(args: string[], runAs?: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const argv = [process.execPath, LNLBD, ...args.map((a) => (a === KEY ? theLab().keyFile : a))];
  const wrapped = runAs ? ['setpriv', `--reuid=${runAs}`, `--regid=${runAs}`, '--clear-groups', '--inh-caps=-all', ...argv] : argv;
  return theLab().exec('solo', wrapped, { timeoutMs: 15_000 });
}

const refusals: { title: string; args: string[]; code: number; line: RegExp; runAs?: string }[] = [
  { title: 'a missing --vip', args: ['--bind', 'eth0'], code: 2, line: /^lnlbd: --vip: is required with --bind \(or give neither, and add clusters with lnlbctl addif\)$/ },
  { title: 'a bad IP', args: ['--bind', 'eth0', '--vip', '10.0.0.300'], code: 2, line: /^lnlbd: --vip: expected an IPv4 or IPv6 address/ },
  { title: 'an unknown flag', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--frobnicate'], code: 2, line: /^lnlbd: unknown option '--frobnicate'$/ },
  { title: 'a bad --workers', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--workers', '0'], code: 2, line: /^lnlbd: --workers: expected a whole number from 1 to 31/ },
  { title: 'a missing device', args: ['--bind', 'eth7', '--vip', '10.0.0.100', '--run-dir', '/tmp/lnlb-cli-eth7', '--key-file', KEY], code: 1, line: /^lnlbd: no such device eth7/ },
  { title: 'a missing privilege', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', '/tmp/lnlb-cli-nobody', '--key-file', KEY], code: 1, line: /^lnlbd: lnlbd needs CAP_NET_ADMIN and CAP_NET_RAW/, runAs: '65534' },
  {
    title: 'a bad --health-check',
    args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--key-file', KEY, '--health-check', 'http://10.0.0.100/', '--health-check', 'tcp://127.0.0.1'],
    code: 2,
    line: /^lnlbd: --health-check: "tcp:\/\/127\.0\.0\.1": tcp:\/\/ needs a port \(tcp:\/\/HOST:PORT\) \(expected tcp:\/\/HOST:PORT, http:\/\/HOST\[:PORT\]\/PATH\[#STATUS\] or exec:COMMAND/,
  },
  { title: 'a key and --insecure-no-auth', args: ['--bind', 'eth0', '--vip', '10.0.0.100', '--key-file', KEY, '--insecure-no-auth'], code: 2, line: /^lnlbd: --key-file: cannot be given with --insecure-no-auth/ },
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
  t.deepEqual(result.stderr.trim().split('\n'), [`lnlbd: ${file}:4: --workers: expected a whole number from 1 to 31, got 0`]);
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
  const daemon = l.spawn('solo', [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', runDir, '--heartbeat-ms', '100', '--dead-after-ms', '500', '--key-file', l.keyFile]);
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

/** The reload command docs/config.md gives, as a user would copy it. */
function docsReloadCommand(): string {
  const docs = readFileSync(fileURLToPath(new URL('../../../docs/config.md', import.meta.url)), 'utf8');
  const command = /`(kill -HUP \$\(pidof lnlbd\))`/.exec(docs)?.[1];
  if (command === undefined) throw new Error('docs/config.md no longer gives `kill -HUP $(pidof lnlbd)`');
  return command;
}

test.serial("the daemon is lnlbd to pidof, pgrep -x and ps (not node), and docs/config.md's reload command reloads it", async (t) => {
  const l = theLab();
  const dir = `${l.dir}/named`;
  mkdirSync(dir);
  const config = `${dir}/lnlb.conf`;
  writeFileSync(config, `vip = 10.0.0.100\nbind = eth0\nkey-file = ${l.keyFile}\nheartbeat-ms = 100\ndead-after-ms = 500\nlog-level = info\n`);
  // In a PID namespace of its own, where this daemon is the only lnlbd: the commands run as a
  // user types them (pidof and pgrep see every lnlbd of the host otherwise, other tests' too).
  // bin/lnlbd through its #!/usr/bin/env node, as systemd and a shell start it.
  const script = [
    'set -u',
    `${LNLBD} --config ${config} --run-dir ${dir}/run >${dir}/lnlbd.log 2>&1 &`,
    'daemon=$!',
    `waitfor() { for i in $(seq 150); do grep -q "$1" ${dir}/lnlbd.log && return 0; sleep 0.1; done; echo "no $1 in the log"; return 1; }`,
    "waitfor 'cluster interface up' || exit 1",
    'echo "daemon=$daemon pidof=$(pidof lnlbd) pgrep=$(pgrep -x lnlbd) comm=$(cat /proc/$daemon/comm)"',
    'echo "ps=$(ps -o args= -p $daemon)"',
    `sed -i 's/^log-level = info$/log-level = debug/' ${config}`,
    docsReloadCommand(),
    "waitfor 'configuration reloaded' || exit 1",
    'kill -TERM $(pgrep -x lnlbd)',
    'wait $daemon; echo "exit=$?"',
  ].join('\n');
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  const run = await l.exec('solo', [systemTool('unshare'), '--pid', '--fork', '--kill-child', '--mount-proc', '--', systemTool('sh'), '-c', script], { env, timeoutMs: 30_000 });
  const log = readFileSync(`${dir}/lnlbd.log`, 'utf8');
  t.is(run.code, 0, `${run.stdout}${run.stderr}\n${log}`);
  const found = /^daemon=(\d+) pidof=(\S*) pgrep=(\S*) comm=(\S*)$/m.exec(run.stdout);
  t.truthy(found, run.stdout);
  const [, pid, pidof, pgrep, comm] = found ?? [];
  t.is(pidof, pid, 'pidof lnlbd');
  t.is(pgrep, pid, 'pgrep -x lnlbd');
  t.is(comm, 'lnlbd', '/proc/PID/comm');
  t.regex(run.stdout, new RegExp(`^ps=lnlbd --config ${config} --run-dir ${dir}/run$`, 'm'), 'ps shows how it was started');
  t.regex(log, /configuration reloaded: applied logLevel=debug/, `${docsReloadCommand()} reloaded the config file`);
  t.regex(run.stdout, /^exit=0$/m, 'kill -TERM $(pgrep -x lnlbd) stopped it cleanly');
});

/** The nice value of every thread of `pid` (/proc/PID/task/TID/stat, field 19). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test.serial('lnlbd threads run at --nice (-20 by default), the control thread at -20 whatever it is, the datapath threads (the dispatcher, and the actor threads of --workers N ≥ 2) 10 steps lower (never below 0); without --node-name it announces the host name', async (t) => {
  const l = theLab();
  const runDir = `${l.dir}/solo-nice`;
  for (const [args, expected] of [[[], -20], [['--nice', '-7', '--workers', '2'], -7]] as const) {
    const daemon = l.spawn('solo', [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', runDir, '--key-file', l.keyFile, ...args]);
    try {
      await l.waitForLog(daemon, /cluster interface up/, 10_000);
      const nices = threadNices(daemon.pid!);
      t.true(nices.length >= 4, `${nices.length} threads`);
      // The control thread raised itself further, the dispatcher (the actor too by default) and
      // the actor threads of --workers 2 lowered themselves; all the others (V8's, libuv's,
      // the main thread) are at --nice.
      const datapath = Math.min(0, expected + 10);
      const apart = nices.filter((n) => n !== expected).sort((a, b) => a - b);
      t.deepEqual(apart, expected === -20 ? [datapath] : [-20, datapath, datapath, datapath], `${args.join(' ') || 'default'}: ${nices.join(' ')}`);
      // Without --node-name, the node announces the host's name.
      const status = await l.exec('solo', [process.execPath, LNLBCTL, '--run-dir', runDir, 'status', '--json']);
      const self = (JSON.parse(status.stdout) as { interfaces: { nodes: { self: boolean; name?: string }[] }[] }).interfaces[0]!.nodes.find((n) => n.self);
      t.is(self?.name, defaultNodeName(hostname()));
    } finally {
      daemon.kill('SIGTERM');
      await waitExit(daemon, 8000);
    }
  }
});

test.serial('after kill -9 the TAP is gone, and the next start restores the true originals on exit', async (t) => {
  const l = theLab();
  const key = 'net.ipv4.conf.eth0.arp_ignore';
  const original = (await l.exec('solo', ['sysctl', '-n', key])).stdout.trim();
  const runDir = `${l.dir}/solo-crash`;
  const args = [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', runDir, '--heartbeat-ms', '100', '--dead-after-ms', '500', '--key-file', l.keyFile];
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

const ARP_SYSCTLS = ['net.ipv4.conf.eth0.arp_ignore', 'net.ipv4.conf.eth0.arp_announce'];

/** What a refused start must leave as it was: no TAP, the bound device's sysctls. */
async function hostState(): Promise<{ tap: boolean; sysctls: string }> {
  const l = theLab();
  const tap = (await l.exec('solo', ['ip', 'link', 'show', 'nlb0'])).code === 0;
  return { tap, sysctls: (await l.exec('solo', ['sysctl', '-n', ...ARP_SYSCTLS])).stdout };
}

test.serial('no key, by flags or by the config file: exit 2, one line naming --key-file and lnlbctl genkey; no TAP, no sysctl touched, no run directory', async (t) => {
  const l = theLab();
  // Values no lnlbd would leave, so that a write shows.
  await l.exec('solo', ['sysctl', '-q', '-w', 'net.ipv4.conf.eth0.arp_ignore=0', 'net.ipv4.conf.eth0.arp_announce=0']);
  const before = await hostState();
  t.deepEqual(before, { tap: false, sysctls: '0\n0\n' });
  const config = `${l.dir}/nokey.conf`;
  writeFileSync(config, 'bind = eth0\nvip = 10.0.0.100\n');
  for (const args of [['--bind', 'eth0', '--vip', '10.0.0.100'], ['--config', config]]) {
    const runDir = `${l.dir}/nokey-run`;
    const result = await lnlbd([...args, '--run-dir', runDir]);
    t.is(result.code, 2, args.join(' '));
    t.deepEqual(result.stderr.trim().split('\n'), [
      'lnlbd: a cluster interface needs a key, or any host on this LAN can take the cluster over: give --key-file PATH (key-file = PATH in the config file), the same file on every node; make one with `lnlbctl genkey /etc/lnlb/cluster.key` and copy it to every node (for a lab only, --insecure-no-auth runs without a key)',
    ]);
    t.deepEqual(await hostState(), before, 'no TAP, sysctls untouched');
    t.false(existsSync(runDir), 'no run directory');
  }
});

test.serial('--bind lo, and a VIP that is an address of the host (on the bound device or another): exit 2, one line naming the flag; no TAP, no sysctl, no run directory', async (t) => {
  const l = theLab();
  await l.exec('solo', ['sysctl', '-q', '-w', 'net.ipv4.conf.eth0.arp_ignore=0', 'net.ipv4.conf.eth0.arp_announce=0']);
  const before = await hostState();
  await l.exec('solo', ['ip', 'addr', 'add', '10.0.0.200/32', 'dev', 'lo']);
  try {
    const cases: [string[], RegExp][] = [
      [['--bind', 'lo', '--vip', '10.0.0.100'], /^lnlbd: --bind lo: lo is the loopback device: no other host can reach a cluster on it, and its MAC is 00:00:00:00:00:00; bind the device on the LAN/],
      [['--bind', 'eth0', '--vip', '10.0.0.1'], /^lnlbd: --vip 10\.0\.0\.1: 10\.0\.0\.1 is an address of this host already \(on eth0\): the cluster IP must be one no host owns .*\(ip addr del 10\.0\.0\.1 dev eth0\)$/],
      [['--bind', 'eth0', '--vip', '10.0.0.200'], /^lnlbd: --vip 10\.0\.0\.200: 10\.0\.0\.200 is an address of this host already \(on lo\)/],
    ];
    for (const [args, line] of cases) {
      const runDir = `${l.dir}/refused-run`;
      const result = await lnlbd([...args, '--key-file', KEY, '--run-dir', runDir]);
      t.is(result.code, 2, args.join(' '));
      t.deepEqual(result.stderr.trim().split('\n').length, 1, result.stderr);
      t.regex(result.stderr.trim(), line);
      t.deepEqual(await hostState(), before, `${args.join(' ')}: no TAP, sysctls untouched`);
      t.false(existsSync(runDir), 'no run directory');
    }
  } finally {
    await l.exec('solo', ['ip', 'addr', 'del', '10.0.0.200/32', 'dev', 'lo']);
  }
});

test.serial('the cheap checks come first: where nlb0 exists already, a missing key file, a missing handler module, --bind lo are each reported as what they are, before any device is touched', async (t) => {
  const l = theLab();
  await l.exec('solo', ['sysctl', '-q', '-w', 'net.ipv4.conf.eth0.arp_ignore=0', 'net.ipv4.conf.eth0.arp_announce=0']);
  const made = await l.exec('solo', ['ip', 'tuntap', 'add', 'nlb0', 'mode', 'tap']);
  t.is(made.code, 0, made.stderr);
  try {
    const sysctls = (await l.exec('solo', ['sysctl', '-n', ...ARP_SYSCTLS])).stdout;
    const link = (await l.exec('solo', ['ip', '-o', 'link', 'show', 'nlb0'])).stdout;
    const cases: [string[], number, RegExp][] = [
      [['--bind', 'eth0', '--vip', '10.0.0.100', '--name', 'nlb0', '--key-file', `${l.dir}/missing.key`], 1, /^lnlbd: cannot read key file \S+missing\.key \(ENOENT\): check the path, or make one with `lnlbctl genkey/],
      [['--bind', 'eth0', '--vip', '10.0.0.100', '--name', 'nlb0', '--key-file', KEY, '--handler', `icmp=${l.dir}/missing-handler.js`], 1, /^lnlbd: handler icmp=\S+: cannot load handler module \S+missing-handler\.js: no such file/],
      [['--bind', 'lo', '--vip', '10.0.0.100', '--name', 'nlb0', '--key-file', KEY], 2, /^lnlbd: --bind lo: lo is the loopback device/],
    ];
    for (const [args, code, line] of cases) {
      const runDir = `${l.dir}/cheap-run`;
      const result = await lnlbd([...args, '--run-dir', runDir]);
      t.is(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
      t.regex(result.stderr.trim(), line);
      t.notRegex(result.stderr, /EBUSY|exists already/, 'not the device it never reached');
      t.is((await l.exec('solo', ['sysctl', '-n', ...ARP_SYSCTLS])).stdout, sysctls, 'no sysctl touched');
      t.is((await l.exec('solo', ['ip', '-o', 'link', 'show', 'nlb0'])).stdout, link, 'nlb0 as it was');
      t.false(existsSync(runDir), 'no run directory');
    }
  } finally {
    await l.exec('solo', ['ip', 'tuntap', 'del', 'nlb0', 'mode', 'tap']);
  }
});

test.serial('a run directory lnlbd may not create: one line naming it, the directory above with its owner and mode, and the fix (LNLB_ERR_RUN_DIR_ACCESS, also as a JSON log line)', async (t) => {
  const l = theLab();
  const runDir = `/run/${l.prefix}-nobody`;
  // nobody, with the two capabilities lnlbd needs (as a unit with User= and AmbientCapabilities=): /run is root's, 0755.
  const argv = [systemTool('setpriv'), '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all,+net_admin,+net_raw', '--ambient-caps=-all,+net_admin,+net_raw', process.execPath, LNLBD, '--run-dir', runDir, '--config', '/dev/null'];
  const result = await l.exec('solo', argv, { timeoutMs: 15_000 });
  t.is(result.code, 1, result.stderr);
  t.deepEqual(result.stderr.trim().split('\n'), [
    `lnlbd: cannot create run directory ${runDir}: lnlbd's user (uid 65534) may not write in /run (owned by uid 0, mode 0755), which creating it needs: run lnlbd as root, make the directory for it (mkdir -p -m 700 ${runDir} && chown 65534 ${runDir}), or give --run-dir a directory lnlbd's user may write in`,
  ]);
  const logged = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as { level: number; event: string; code: string; errno: string };
  t.like(logged, { level: 60, event: 'start-failed', code: 'LNLB_ERR_RUN_DIR_ACCESS', errno: 'EACCES' });
  t.false(existsSync(runDir));
});

test.serial('a start that fails once it made its run directory takes the directories back, and only those', async (t) => {
  const l = theLab();
  // --metrics on an address of no device here: refused after the run directory and the admin socket exist.
  const metrics = ['--metrics', '10.9.9.9:9750'];
  const made = `${l.dir}/made`;
  const fresh = await lnlbd(['--bind', 'eth0', '--vip', '10.0.0.100', '--key-file', KEY, '--run-dir', `${made}/a/run`, ...metrics]);
  t.is(fresh.code, 1, fresh.stderr);
  t.regex(fresh.stderr, /^lnlbd: --metrics 10\.9\.9\.9:9750: cannot listen/);
  t.false(existsSync(made), 'made/a/run and the parents it made are gone');
  const kept = `${l.dir}/kept/run`;
  mkdirSync(kept, { recursive: true, mode: 0o700 });
  const existing = await lnlbd(['--bind', 'eth0', '--vip', '10.0.0.100', '--key-file', KEY, '--run-dir', kept, ...metrics]);
  t.is(existing.code, 1, existing.stderr);
  t.deepEqual(readdirSync(kept), [], 'the run directory that was there stays, empty: no admin socket left');
  t.not((await theLab().exec('solo', ['ip', 'link', 'show', 'nlb0'])).code, 0, 'no TAP');
});

test.serial('an unusable key file (symbolic link, FIFO, group-readable, other owner) is refused at once, before anything is created', async (t) => {
  const l = theLab();
  const before = await hostState();
  const link = `${l.dir}/link.key`;
  symlinkSync(l.keyFile, link);
  const fifo = `${l.dir}/fifo.key`;
  execFileSync('mkfifo', ['-m', '600', fifo]);
  const open = `${l.dir}/open.key`;
  writeFileSync(open, `${'ab'.repeat(32)}\n`, { mode: 0o640 });
  const nobodys = `${l.dir}/nobody.key`;
  writeFileSync(nobodys, `${'cd'.repeat(32)}\n`, { mode: 0o600 });
  execFileSync('chown', ['65534', nobodys]);
  const cases: [string, RegExp][] = [
    [link, /^lnlbd: key file \S+link\.key is a symbolic link \(refused: whoever can change the link chooses the key\): give the real path of the file$/],
    [fifo, /^lnlbd: key file \S+fifo\.key is not a regular file \(a FIFO\)/],
    [open, /^lnlbd: key file \S+open\.key has mode 0640: group or others may read or write it; run `chmod 600 /],
    [nobodys, /^lnlbd: key file \S+nobody\.key is owned by uid 65534, not by this daemon's user \(uid 0\) or root/],
  ];
  for (const [key, line] of cases) {
    const started = performance.now();
    const result = await lnlbd(['--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', `${l.dir}/badkey-run`, '--key-file', key]);
    t.is(result.code, 1, key);
    t.true(performance.now() - started < 10_000, 'refused at once (a FIFO never blocks the start)');
    const lines = result.stderr.trim().split('\n');
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0] ?? '', line);
    t.deepEqual(await hostState(), before, `${key}: no TAP, sysctls untouched`);
  }
});

test.serial('--insecure-no-auth starts, says so as an error in the log, and lnlbctl status shows it on the header line and in JSON', async (t) => {
  const l = theLab();
  const runDir = `${l.dir}/insecure`;
  const daemon = l.spawn('solo', [process.execPath, LNLBD, '--bind', 'eth0', '--vip', '10.0.0.100', '--run-dir', runDir, '--heartbeat-ms', '100', '--dead-after-ms', '500', '--insecure-no-auth']);
  try {
    await l.waitForLog(daemon, /cluster interface up/, 10_000);
    const logged = JSON.parse(await l.waitForLog(daemon, /"event":"insecure-no-auth"/, 5000)) as { level: number; msg: string };
    t.is(logged.level, 50, 'error level');
    t.regex(logged.msg, /^AUTH OFF \(--insecure-no-auth\): control plane NOT authenticated, any host on this LAN can take this cluster over/);
    const text = await l.exec('solo', [process.execPath, LNLBCTL, '--run-dir', runDir, 'status']);
    t.is(text.code, 0, text.stderr);
    const header = text.stdout.split('\n')[0] ?? '';
    t.true(header.startsWith('nlb0: vip 10.0.0.100 on eth0, '), header);
    t.true(header.endsWith(', AUTH OFF (--insecure-no-auth): any host on this LAN can take this cluster over'), header);
    const json = await l.exec('solo', [process.execPath, LNLBCTL, '--run-dir', runDir, 'status', '--json']);
    const status = JSON.parse(json.stdout) as { interfaces: { authenticated: boolean; insecure: boolean }[] };
    t.like(status.interfaces[0], { authenticated: false, insecure: true });
  } finally {
    daemon.kill('SIGTERM');
    await waitExit(daemon, 8000);
  }
  t.is(daemon.exitCode, 0);
});

test.serial('a daemon started empty needs no key; lnlbctl addif without one is refused (exit 2, nothing created), with --key-file it serves, authenticated', async (t) => {
  const l = theLab();
  const runDir = `${l.dir}/empty`;
  const daemon = l.spawn('solo', [process.execPath, LNLBD, '--run-dir', runDir, '--heartbeat-ms', '100', '--dead-after-ms', '500']);
  const ctl = (args: string[]) => l.exec('solo', [process.execPath, LNLBCTL, '--run-dir', runDir, ...args], { timeoutMs: 15_000 });
  try {
    await l.waitForLog(daemon, /"event":"idle"/, 10_000);
    const before = await hostState();
    const refused = await ctl(['addif', '10.0.0.100', 'eth0']);
    t.is(refused.code, 2);
    t.deepEqual(refused.stderr.trim().split('\n'), [
      'lnlbctl: a cluster interface needs a key, or any host on this LAN can take the cluster over: give --key-file PATH (to lnlbd, as key-file in its config file, or to lnlbctl addif), the same file on every node; make one with `lnlbctl genkey /etc/lnlb/cluster.key` and copy it to every node (for a lab only, --insecure-no-auth runs without a key)',
    ]);
    t.deepEqual(await hostState(), before, 'no TAP, sysctls untouched');
    // With --json, the daemon's refusals come as one JSON object on stdout, with the code the daemon raised.
    for (const [args, exit, code] of [[['addif', '10.0.0.100', 'eth0', '--json'], 2, 'LNLB_ERR_AUTH_KEY_MISSING'], [['stop', 'nlb7', '--json'], 1, 'LNLB_ERR_CTL_NO_INTERFACE']] as const) {
      const refusedJson = await ctl([...args]);
      t.is(refusedJson.code, exit, args.join(' '));
      const error = (JSON.parse(refusedJson.stdout) as { error: { code: string; message: string } }).error;
      t.is(error.code, code, args.join(' '));
      t.is(refusedJson.stderr, `lnlbctl: ${error.message}\n`);
    }
    // The daemon refuses a loopback device and a VIP of the host before it makes anything: exit 2, the argument named.
    const loopback = await ctl(['addif', '10.0.0.100', 'lo', '--key-file', l.keyFile]);
    t.is(loopback.code, 2, loopback.stderr);
    t.regex(loopback.stderr, /^lnlbctl: <dev> lo: lo is the loopback device: no other host can reach a cluster on it/);
    const own = await ctl(['addif', '10.0.0.1', 'eth0', '--key-file', l.keyFile]);
    t.is(own.code, 2, own.stderr);
    t.regex(own.stderr, /^lnlbctl: <cluster ip> 10\.0\.0\.1: 10\.0\.0\.1 is an address of this host already \(on eth0\)/);
    t.deepEqual(await hostState(), before, 'no TAP, sysctls untouched');
    const added = await ctl(['addif', '10.0.0.100', 'eth0', '--key-file', l.keyFile]);
    t.is(added.code, 0, added.stderr);
    t.is(added.stdout, 'nlb0\n');
    const status = JSON.parse((await ctl(['status', '--json'])).stdout) as { interfaces: { name: string; authenticated: boolean; insecure: boolean }[] };
    t.like(status.interfaces[0], { name: 'nlb0', authenticated: true, insecure: false });
    t.is((await ctl(['delif', 'nlb0'])).code, 0);
  } finally {
    daemon.kill('SIGTERM');
    await waitExit(daemon, 8000);
  }
  t.is(daemon.exitCode, 0);
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
