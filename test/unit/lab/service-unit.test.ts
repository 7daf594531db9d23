import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CAPABILITIES,
  capabilityMask,
  capabilityNames,
  mountSandboxArgv,
  parseExecCommand,
  parseNotifyMessage,
  parseTimeSpan,
  parseUnitFile,
  readServiceUnit,
  setprivArgv,
  splitWords,
  unitList,
  unitValue,
} from '../../../lab/service-unit.js';
import { readConfig } from '../../../src/main/config-file.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const UNIT_TEXT = readFileSync(`${REPO}packaging/lnlbd.service`, 'utf8');
const CONF_TEXT = readFileSync(`${REPO}packaging/lnlb.conf`, 'utf8');

test('packaging/lnlbd.service: the daemon as a notify service (READY=1 from its main process), restarted on failure, stopped by SIGTERM', (t) => {
  const unit = readServiceUnit(UNIT_TEXT, 'lnlbd.service');
  t.is(unit.type, 'notify');
  t.is(unit.notifyAccess, 'main');
  t.deepEqual(unit.execStart, { path: '/usr/bin/lnlbd', argv: ['/usr/bin/lnlbd', '--config', '/etc/lnlb/lnlb.conf'], prefixes: '' });
  t.deepEqual(parseExecCommand(unit.execReload ?? '', { MAINPID: '4242' }).argv, ['/bin/kill', '-HUP', '4242']);
  t.is(unit.restart, 'on-failure');
  t.is(unit.restartSec, 2);
  t.is(unit.killSignal, 'SIGTERM');
  t.true(unit.timeoutStopSec > 2 && unit.timeoutStopSec <= 30, `TimeoutStopSec=${unit.timeoutStopSec}: above the daemon's 2 s LEAVE wait`);
  t.deepEqual(unit.runtimeDirectories, ['/run/lnlb', '/run/lnlb-host']);
  t.is(unit.runtimeDirectoryMode, 0o700);
  t.deepEqual(unit.after, ['network-online.target']);
  t.deepEqual(unit.wants, ['network-online.target']);
  t.deepEqual(unit.wantedBy, ['multi-user.target']);
  t.is(unit.user, undefined, 'root, limited by the capability sets');
});

test('packaging/lnlbd.service: exactly CAP_NET_ADMIN and CAP_NET_RAW, no new privileges', (t) => {
  const unit = readServiceUnit(UNIT_TEXT, 'lnlbd.service');
  t.deepEqual(unit.capabilityBoundingSet, ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  t.deepEqual(unit.ambientCapabilities, ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  t.is(capabilityMask(unit.capabilityBoundingSet), 0x3000n);
  t.true(unit.noNewPrivileges);
  t.deepEqual(setprivArgv(unit, ['/usr/bin/lnlbd', '--config', '/etc/lnlb/lnlb.conf']), [
    'setpriv',
    '--bounding-set=-all,+net_admin,+net_raw',
    '--inh-caps=-all,+net_admin,+net_raw',
    '--ambient-caps=-all,+net_admin,+net_raw',
    '--no-new-privs',
    '--',
    '/usr/bin/lnlbd',
    '--config',
    '/etc/lnlb/lnlb.conf',
  ]);
});

test('packaging/lnlbd.service: read-only but for the run dir and the net sysctls; /dev/net/tun allowed', (t) => {
  const unit = readServiceUnit(UNIT_TEXT, 'lnlbd.service');
  t.is(unit.protectSystem, 'strict');
  t.true(unit.protectKernelTunables);
  t.deepEqual([...unit.readWritePaths].sort(), ['/proc/sys/net', '/run/lnlb']);
  t.true(unit.privateTmp);
  t.is(unit.protectHome, 'yes');
  t.is(unit.devicePolicy, 'closed');
  t.deepEqual(unit.deviceAllow, ['/dev/net/tun rw']);
  t.is(unitValue(unit.unit, 'Service', 'RuntimeDirectoryPreserve'), 'yes', 'the crash-recovery files in /run/lnlb survive a failure');
  t.is(unitValue(unit.unit, 'Service', 'MemoryDenyWriteExecute'), undefined, "V8's JIT needs W+X memory");
  t.is(unitValue(unit.unit, 'Service', 'PrivateDevices'), undefined, 'its /dev has no /dev/net/tun');
  t.is(unitValue(unit.unit, 'Service', 'ProcSubset'), undefined, 'lnlbd reads /proc/loadavg and /proc/sys');
  const sandbox = mountSandboxArgv(unit, ['lnlbd'], { '/run/lnlb': '/tmp/x/run' });
  t.deepEqual(sandbox.slice(0, 7), ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-euc']);
  t.deepEqual(sandbox.slice(8), ['sh', '/proc/sys', '/sys', '/tmp/x/run', '/proc/sys/net', '/run/lnlb-host', '--', '/', '/proc/sys', '/sys', '--', 'lnlbd'], 'binds, then read-only remounts, then the command');
});

test('packaging/lnlb.conf: a valid config, and so is every example in it once uncommented', (t) => {
  const file = readConfig(CONF_TEXT, 'lnlb.conf');
  t.is(file.values.vip, undefined, 'no VIP until the operator chooses one: the daemon starts idle');
  t.is(file.values.bind, undefined);
  t.is(file.values.keyFile, '/etc/lnlb/cluster.key', 'authenticated by default: the key file is set, not an example');
  t.is(file.values.insecureNoAuth, undefined);
  const uncommented = CONF_TEXT.split('\n')
    .map((line) => (/^#[a-z-]+ = /.test(line) ? line.slice(1) : line))
    .join('\n');
  const all = readConfig(uncommented, 'lnlb.conf (uncommented)');
  t.is(all.values.vip, '10.0.0.100');
  t.is(all.values.bind, 'eth0');
  t.is(all.values.runDir, '/run/lnlb', 'the unit RuntimeDirectory');
  t.true(Object.keys(all.values).length >= 15, Object.keys(all.values).join(' '));
});

test('unit files: sections, comments, continuation lines, last value wins, an empty assignment clears a list', (t) => {
  const unit = parseUnitFile(
    ['# c', '[Unit]', 'After=a.target', 'After=b.target c.target', '; c', '[Service]', 'ExecStart=/bin/echo one \\', '  # skipped', '  two', 'Type=simple', 'Type=oneshot', 'ReadWritePaths=/x', 'ReadWritePaths=', 'ReadWritePaths=-/y "/z w"'].join('\n'),
  );
  t.deepEqual(unitList(unit, 'Unit', 'After'), ['a.target', 'b.target', 'c.target']);
  t.deepEqual(splitWords(unitValue(unit, 'Service', 'ExecStart') ?? '').map((w) => w.text), ['/bin/echo', 'one', 'two']);
  t.is(unitValue(unit, 'Service', 'Type'), 'oneshot');
  t.deepEqual(unitList(unit, 'Service', 'ReadWritePaths'), ['-/y', '/z w']);
  t.throws(() => parseUnitFile('Key=value'), { message: /unit:1: Key= before any \[Section\]/ });
  t.throws(() => parseUnitFile('[Service]\njunk'), { message: /unit:2: expected Key=value/ });
});

test('ExecStart=: an empty assignment resets, one command is required for Type=simple', (t) => {
  const unit = readServiceUnit('[Service]\nExecStart=/bin/false\nExecStart=\nExecStart=/bin/true x\n');
  t.deepEqual(unit.execStart.argv, ['/bin/true', 'x']);
  t.throws(() => readServiceUnit('[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n'), { message: /expected one ExecStart= for Type=simple, found 2/ });
  t.throws(() => readServiceUnit('[Unit]\nDescription=x\n'), { message: /no \[Service\] section/ });
});

test('command lines are split as systemd splits them: quotes, C escapes, no shell', (t) => {
  t.deepEqual(
    splitWords(`a "b c" 'd "e"' f\\sg h\\x41 \\101 "x\\"y" |;&`).map((w) => w.text),
    ['a', 'b c', 'd "e"', 'f g', 'hA', 'A', 'x"y', '|;&'],
  );
  t.throws(() => splitWords('"open'), { message: /unterminated " quote/ });
  t.throws(() => splitWords('a\\q'), { message: /unknown escape \\q/ });
});

test('command lines: prefixes, variables, specifiers', (t) => {
  t.deepEqual(parseExecCommand('-@/bin/busybox sh -c x'), { path: '/bin/busybox', argv: ['sh', '-c', 'x'], prefixes: '-@' });
  t.deepEqual(parseExecCommand('/bin/x ${A} pre${A}post $B "$B" $$ 100%%', { A: 'one two', B: 'b1  b2' }).argv, ['/bin/x', 'one two', 'preone twopost', 'b1', 'b2', '$B', '$', '100%']);
  t.throws(() => parseExecCommand('/bin/kill -HUP $MAINPID'), { message: /\$MAINPID has no value here/ });
  t.throws(() => parseExecCommand('/bin/x %n'), { message: /specifier %n is not supported/ });
  t.throws(() => parseExecCommand('lnlbd --config x'), { message: /must be an absolute path/ });
  t.throws(() => parseExecCommand('/bin/a ; /bin/b'), { message: /several commands/ });
});

test('capability sets: lists OR together, ~ inverts, empty clears, unset bounding set is everything', (t) => {
  const caps = (body: string) => readServiceUnit(`[Service]\nExecStart=/bin/true\n${body}`);
  t.is(caps('').capabilityBoundingSet.length, CAPABILITIES.length);
  t.deepEqual(caps('').ambientCapabilities, []);
  t.deepEqual(caps('CapabilityBoundingSet=CAP_NET_RAW\nCapabilityBoundingSet=cap_net_admin').capabilityBoundingSet, ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  t.deepEqual(caps('CapabilityBoundingSet=CAP_SYS_ADMIN\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_KILL').capabilityBoundingSet, ['CAP_KILL']);
  const allBut = caps('CapabilityBoundingSet=~CAP_SYS_ADMIN CAP_SYS_MODULE').capabilityBoundingSet;
  t.is(allBut.length, CAPABILITIES.length - 2);
  t.false(allBut.includes('CAP_SYS_ADMIN'));
  t.throws(() => caps('AmbientCapabilities=CAP_NET_ADMN'), { message: /unit:3: unknown capability "CAP_NET_ADMN"/ });
  t.deepEqual(capabilityNames(0x3000n), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  t.is(CAPABILITIES[40], 'CAP_CHECKPOINT_RESTORE');
  t.deepEqual(setprivArgv(caps(''), ['/bin/true']), ['setpriv', '--inh-caps=-all', '--', '/bin/true'], 'an unset bounding set is left alone');
  t.throws(() => setprivArgv(caps('User=lnlb'), ['/bin/true']), { message: /User=lnlb is not emulated/ });
});

test('time spans', (t) => {
  t.is(parseTimeSpan('15'), 15);
  t.is(parseTimeSpan('15s'), 15);
  t.is(parseTimeSpan('1min 30s'), 90);
  t.is(parseTimeSpan('500ms'), 0.5);
  t.is(parseTimeSpan('2h'), 7200);
  t.is(parseTimeSpan('infinity'), Infinity);
  t.throws(() => parseTimeSpan('soon'), { message: /expected a time span/ });
  t.is(readServiceUnit('[Service]\nExecStart=/bin/true\n').timeoutStopSec, 90, "systemd's default");
});

test('sd_notify messages read as systemd reads them; a unit type the emulation cannot run is refused', (t) => {
  t.deepEqual(parseNotifyMessage('READY=1\nSTATUS=nlb0 converged: 1 node, vip 10.0.0.100 on eth0'), { READY: '1', STATUS: 'nlb0 converged: 1 node, vip 10.0.0.100 on eth0' });
  t.deepEqual(parseNotifyMessage('RELOADING=1\nMONOTONIC_USEC=12=3'), { RELOADING: '1', MONOTONIC_USEC: '12=3' });
  t.throws(() => readServiceUnit('[Service]\nType=forking\nExecStart=/bin/a\n'), { message: /Type=forking is not emulated/ });
  t.is(readServiceUnit('[Service]\nExecStart=/bin/a\n').notifyAccess, 'none');
});
