// packaging/lnlbd.service run the way systemd runs it, without systemd: the unit's ExecStart
// (with the repo's bin/lnlbd for /usr/bin/lnlbd and a copy of packaging/lnlb.conf adapted to
// the lab) under setpriv with the unit's capability sets and no_new_privs, in a mount
// namespace with the unit's read-only file system (ProtectSystem=strict,
// ProtectKernelTunables=, ReadWritePaths=). The daemon must work with exactly what the unit
// grants, reload on its ExecReload, and stop cleanly on its KillSignal within TimeoutStopSec.
import test from 'ava';
import { mkdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, hasExited, sweepStale, systemTool, tail, waitExit, waitUntil, type LabProcess } from '../../lab/netns.js';
import { capabilityMask, mountSandboxArgv, NotifySocket, parseExecCommand, readServiceUnit, setprivArgv, type ServiceSettings } from '../../lab/service-unit.js';
import type { StatusJson } from '../../src/main/admin-protocol.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const LNLBD = `${REPO}bin/lnlbd`;
const LNLBCTL = `${REPO}bin/lnlbctl`;
const UNIT_PATH = `${REPO}packaging/lnlbd.service`;
const CONF_PATH = `${REPO}packaging/lnlb.conf`;
const VIP = '10.0.0.100';
/** packaging/lnlb.conf adapted to the lab: node1's eth0, a VIP of its subnet, quick heartbeats (and the lab's key file). */
const LAB_SETTINGS = { vip: VIP, bind: 'eth0', 'heartbeat-ms': '100', 'dead-after-ms': '500' };
const SYSCTLS = ['net.ipv4.conf.eth0.arp_ignore', 'net.ipv4.conf.eth0.arp_announce'];

let lab: Lab | undefined;
const unit: ServiceSettings = readServiceUnit(readFileSync(UNIT_PATH, 'utf8'), UNIT_PATH);

test.before(async () => {
  await sweepStale();
  lab = new Lab();
  await lab.addSwitch();
  await lab.addHost('node1', { addresses: ['10.0.0.1/24'] });
});

test.after.always(async () => {
  await lab?.cleanup();
});

function theLab(): Lab {
  if (!lab) throw new Error('lab not built');
  return lab;
}

/** packaging/lnlb.conf with these keys set (each must be in the file, commented out or not). */
function adaptedConfig(settings: Record<string, string>): string {
  let text = readFileSync(CONF_PATH, 'utf8');
  for (const [key, value] of Object.entries(settings)) {
    const line = new RegExp(`^#?${key} = .*$`, 'm');
    if (!line.test(text)) throw new Error(`${CONF_PATH} has no "${key} = " line to adapt`);
    text = text.replace(line, `${key} = ${value}`);
  }
  return text;
}

/**
 * A run of the unit's ExecStart in node1: its own run dir (the unit's /run/lnlb) and config
 * copy; for Type=notify, the socket systemd would listen on, named to it by $NOTIFY_SOCKET.
 */
function startUnit(name: string, settings: ServiceSettings = unit): { runDir: string; config: string; argv: string[]; notify: NotifySocket | undefined; start(): LabProcess; run(): ReturnType<Lab['exec']> } {
  const l = theLab();
  const dir = `${l.dir}/${name}`;
  const runDir = `${dir}/run`;
  mkdirSync(runDir, { recursive: true, mode: settings.runtimeDirectoryMode }); // RuntimeDirectory=
  // The other RuntimeDirectory= (/run/lnlb-host, shared by every lnlbd on the host) at its own path, as systemd makes it.
  for (const shared of settings.runtimeDirectories.filter((d) => d !== '/run/lnlb')) mkdirSync(shared, { recursive: true, mode: settings.runtimeDirectoryMode });
  const config = `${dir}/lnlb.conf`;
  writeFileSync(config, adaptedConfig({ ...LAB_SETTINGS, 'key-file': l.keyFile }));
  const argv = settings.execStart.argv.map((word, i, all) => (word === '/usr/bin/lnlbd' ? LNLBD : all[i - 1] === '--config' ? config : word));
  argv.push('--run-dir', runDir);
  const wrapped = mountSandboxArgv(settings, setprivArgv(settings, argv, systemTool('setpriv')), { '/run/lnlb': runDir }, { unshare: systemTool('unshare'), sh: systemTool('sh') });
  const notify = settings.type === 'notify' ? new NotifySocket(`${dir}/notify`) : undefined;
  // bin/lnlbd starts with `#!/usr/bin/env node`: the node running these tests comes first.
  const env = { ...process.env, ...notify?.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  return {
    runDir,
    config,
    argv,
    notify,
    start: () => l.spawn('node1', wrapped, { logName: name, env }),
    run: () => l.exec('node1', wrapped, { env, timeoutMs: 20_000 }),
  };
}

function procStatus(pid: number): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^([A-Za-z_]+):\s*(.*)$/.exec(line);
    if (m) fields[m[1]!] = m[2]!;
  }
  return fields;
}

async function status(runDir: string): Promise<StatusJson | undefined> {
  const ctl = await theLab().exec('node1', [process.execPath, LNLBCTL, '--run-dir', runDir, 'status', '--json']);
  return ctl.code === 0 ? (JSON.parse(ctl.stdout) as StatusJson) : undefined;
}

test.serial('the unit as systemd runs it: CAP_NET_ADMIN and CAP_NET_RAW only, READY=1 once converged, reloads on ExecReload (RELOADING=1, READY=1), stops on KillSignal within TimeoutStopSec (STOPPING=1)', async (t) => {
  const l = theLab();
  const read = async (): Promise<string> => (await l.exec('node1', ['sysctl', '-n', ...SYSCTLS])).stdout;
  const before = await read();
  const run = startUnit('unit');
  t.deepEqual(run.argv.slice(0, 3), [LNLBD, '--config', `${dirname(run.runDir)}/lnlb.conf`], 'the unit ExecStart, /usr/bin/lnlbd replaced');
  const notify = run.notify;
  if (notify === undefined) throw new Error(`Type=${unit.type}: the unit no longer tells systemd when it is ready`);
  t.teardown(() => notify.close());
  const daemon = run.start();
  const up = JSON.parse(await l.waitForLog(daemon, /cluster interface up/, 15_000)) as { time: string };

  // setpriv, env and unshare exec in place: by now the pid is node running lnlbd.
  const pid = daemon.pid!;
  t.is(realpathSync(readlinkSync(`/proc/${pid}/exe`)), realpathSync(process.execPath), 'the capabilities read are the node process');
  const caps = procStatus(pid);
  const wanted = capabilityMask(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  t.is(wanted, 0x3000n);
  t.is(BigInt(`0x${caps.CapEff}`), wanted, `CapEff ${caps.CapEff}`);
  t.is(BigInt(`0x${caps.CapPrm}`), wanted, `CapPrm ${caps.CapPrm}`);
  t.is(BigInt(`0x${caps.CapBnd}`), wanted, `CapBnd ${caps.CapBnd}`);
  t.is(BigInt(`0x${caps.CapAmb}`), wanted, `CapAmb ${caps.CapAmb}`);
  t.is(caps.NoNewPrivs, '1');

  const converged = await waitUntil('lnlbctl status --json to show nlb0 converged', async () => {
    const s = await status(run.runDir);
    const iface = s?.interfaces.find((i) => i.name === 'nlb0');
    return iface?.converged === true && iface.state === 'converged' ? iface : undefined;
  }, 10_000, 100);
  t.is(converged.vip, VIP);
  t.is(converged.bind, 'eth0');

  // Type=notify: READY=1 from the main process, once the interface has converged, not before.
  const ready = await notify.waitFor('READY', '1', 15_000);
  t.is(ready.pid, pid, 'sent by the main process (NotifyAccess=main takes nothing else)');
  t.is(ready.fields['STATUS'], 'nlb0 converged: 1 node, vip 10.0.0.100 on eth0');
  const view = JSON.parse(await l.waitForLog(daemon, /"event":"view"/, 1000)) as { time: string; msg: string };
  t.true(Date.parse(view.time) <= ready.at, `the first view (${view.time}, "${view.msg}") before READY=1 (${new Date(ready.at).toISOString()})`);
  t.true(Date.parse(up.time) < Date.parse(view.time), 'the interface was up and converging first');
  const beforeReady = notify.messages.slice(0, notify.messages.indexOf(ready));
  t.true(beforeReady.every((m) => m.fields['READY'] === undefined && /converging/.test(m.fields['STATUS'] ?? '')), `only STATUS=...converging before it: ${JSON.stringify(beforeReady.map((m) => m.fields))}`);
  t.is(await read(), '1\n2\n', 'the net sysctls were written through ReadWritePaths=/proc/sys/net');
  const log = readFileSync(daemon.logFile, 'utf8');
  t.notRegex(log, /EROFS|read-only file system/i, 'nothing refused by the read-only file system');
  t.notRegex(log, /"level":(50|60)/, 'no error logged');
  for (const line of log.split('\n').filter((l) => l.includes('"level":40'))) t.log(`warning under the unit: ${line}`);

  // ExecReload= (SIGHUP), run as systemd runs it: with the unit's capabilities, $MAINPID set.
  writeFileSync(run.config, adaptedConfig({ ...LAB_SETTINGS, 'key-file': l.keyFile, 'log-level': 'debug' }));
  const reload = parseExecCommand(unit.execReload ?? '', { MAINPID: String(pid) });
  const beforeReload = notify.messages.length;
  const reloaded = await l.exec('node1', setprivArgv(unit, reload.argv, systemTool('setpriv')));
  t.is(reloaded.code, 0, reloaded.stderr);
  await l.waitForLog(daemon, /configuration reloaded: applied logLevel=debug/, 5000);
  t.false(hasExited(daemon), 'a reload does not stop the daemon');
  // RELOADING=1 with the monotonic clock (Type=notify-reload's protocol), then READY=1 again.
  const reloading = await notify.waitFor('RELOADING', '1', 5000, beforeReload);
  t.regex(reloading.fields['MONOTONIC_USEC'] ?? '', /^\d+$/);
  const readyAgain = await notify.waitFor('READY', '1', 5000, notify.messages.indexOf(reloading) + 1);
  t.true(readyAgain.at >= reloading.at);

  const beforeStop = notify.messages.length;
  daemon.kill(unit.killSignal as NodeJS.Signals);
  t.true(await waitExit(daemon, unit.timeoutStopSec * 1000), `exits within TimeoutStopSec=${unit.timeoutStopSec}s:\n${tail(daemon.logFile)}`);
  t.is(daemon.exitCode, 0, tail(daemon.logFile));
  const stopping = await notify.waitFor('STOPPING', '1', 1000, beforeStop);
  t.is(stopping.pid, pid);
  t.not((await l.exec('node1', ['ip', 'link', 'show', 'nlb0'])).code, 0, 'the TAP is gone');
  t.is(await read(), before, 'sysctls restored');
  t.is(await status(run.runDir), undefined, 'the admin socket is gone');
});

test.serial('without CAP_NET_ADMIN in the bounding set: the daemon names it and exits non-zero, leaving nothing', async (t) => {
  const onlyRaw: ServiceSettings = { ...unit, capabilityBoundingSet: ['CAP_NET_RAW'], ambientCapabilities: ['CAP_NET_RAW'] };
  const run = startUnit('noadmin', onlyRaw);
  t.teardown(() => run.notify?.close());
  const result = await run.run();
  t.deepEqual(run.notify?.messages ?? [], [], 'never READY=1: systemd sees the start fail');
  t.is(result.code, 1, result.stderr);
  const lines = result.stderr.trim().split('\n');
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0] ?? '', /^lnlbd: lnlbd needs CAP_NET_ADMIN \(to create nlb0 and read eth0\)/);
  t.false(lines[0]?.includes('CAP_NET_RAW'), 'CAP_NET_RAW was granted: only the missing one is named');
  t.not((await theLab().exec('node1', ['ip', 'link', 'show', 'nlb0'])).code, 0, 'no TAP');
});
