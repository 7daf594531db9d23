import test from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_KEYS, daemonOptions, loadConfigFile, mergeOptions, parseConfigFile, readConfig, resolveWithConfig, suggestKey } from '../../../src/main/config-file.js';
import { DAEMON_OPTIONS, REPEAT_SEPARATOR, resolveDaemonOptions } from '../../../src/main/options.js';
import { LnlbError } from '../../../src/errors.js';

const PATH = '/etc/lnlb/lnlb.conf';

function refused(t: import('ava').ExecutionContext, text: string, message: RegExp): LnlbError {
  const err = t.throws(() => parseConfigFile(text, PATH), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_CONFIG_INVALID');
  t.regex(err.message, message);
  return err;
}

test('key = value lines become the raw options resolveDaemonOptions takes', (t) => {
  const raw = parseConfigFile('vip = 10.0.0.100\nbind=eth0\nheartbeat-ms   =   500\ndead-after-ms = 2500\nrun-dir = /run/lnlb-a\nkey-file = /etc/lnlb/cluster.key\n', PATH);
  t.deepEqual(raw, { vip: '10.0.0.100', bind: 'eth0', heartbeatMs: '500', deadAfterMs: '2500', runDir: '/run/lnlb-a', keyFile: '/etc/lnlb/cluster.key' });
  t.like(resolveDaemonOptions(raw), { vip: '10.0.0.100', bind: 'eth0', heartbeatMs: 500, deadAfterMs: 2500, runDir: '/run/lnlb-a', workers: 1 });
});

test('comments (whole line, or after whitespace) and blank lines are skipped; a # inside a word is kept', (t) => {
  const text = ['# lnlb on node1', '', '   # indented comment', 'vip = 10.0.0.100   # the VIP', '\t', 'run-dir = /run/lnlb#1', 'bind = eth0\t# tab before it', ''].join('\n');
  t.deepEqual(parseConfigFile(text, PATH), { vip: '10.0.0.100', runDir: '/run/lnlb#1', bind: 'eth0' });
});

test('CRLF line ends and a BOM are read like plain lines', (t) => {
  t.deepEqual(parseConfigFile('\uFEFFvip = 10.0.0.100\r\nbind = eth0\r\n', PATH), { vip: '10.0.0.100', bind: 'eth0' });
});

test('double quotes keep spaces and #; \\" and \\\\ inside them; a comment may follow', (t) => {
  const raw = parseConfigFile(['run-dir = "/run/lnlb #2 "  # quoted', 'key-file = "/etc/lnlb/a \\"b\\" \\\\c"', 'name = "nlb%d"'].join('\n'), PATH);
  t.deepEqual(raw, { runDir: '/run/lnlb #2 ', keyFile: '/etc/lnlb/a "b" \\c', name: 'nlb%d' });
  refused(t, 'vip = "10.0.0.1', /^\/etc\/lnlb\/lnlb\.conf:1: "vip": the value's opening quote is never closed$/);
  refused(t, '\nrun-dir = "/run/x" y', /^\/etc\/lnlb\/lnlb\.conf:2: "run-dir": unexpected text after the closing quote: "y"$/);
});

test('repeatable keys accumulate in order, NUL-joined as the command line sends them', (t) => {
  const text = ['rule = 22/tcp=single,priority=1', 'handler = tcp=tcp', 'rule = 443/tcp=multiple,affinity=none', 'handler = udp=udp'].join('\n');
  const file = readConfig(text, PATH);
  t.is(file.values.rule, ['22/tcp=single,priority=1', '443/tcp=multiple,affinity=none'].join(REPEAT_SEPARATOR));
  t.is(file.values.handler, ['tcp=tcp', 'udp=udp'].join(REPEAT_SEPARATOR));
  t.deepEqual(file.lines, { rule: 1, handler: 2 });
  const o = resolveDaemonOptions(file.values);
  t.deepEqual(o.rule, ['22/tcp=single,priority=1', '443/tcp=multiple,affinity=none']);
  t.deepEqual(o.handler.map((h) => h.module), ['builtin:default', 'builtin:tcp', 'builtin:udp']);
});

test('a line that is not key = value is refused with its text', (t) => {
  refused(t, 'bind = eth0\n\nvip 10.0.0.1', /^\/etc\/lnlb\/lnlb\.conf:3: expected key = value, got "vip 10\.0\.0\.1"$/);
  refused(t, '= 10.0.0.1', /:1: expected key = value, got "= 10\.0\.0\.1"$/);
  refused(t, 'rule 22/tcp=single', /:1: expected key = value, got "rule 22\/tcp=single"$/);
});

test('an unknown key is refused with the nearest known one', (t) => {
  refused(t, 'vip = 10.0.0.1\nbind = eth0\n\n\n\n\nheartbeat = 500', /^\/etc\/lnlb\/lnlb\.conf:7: unknown key "heartbeat" \(did you mean "heartbeat-ms"\?\)$/);
  refused(t, '--vip = 10.0.0.1', /:1: unknown key "--vip" \(did you mean "vip"\?\)$/);
  refused(t, 'heartbeatMs = 500', /:1: unknown key "heartbeatMs" \(did you mean "heartbeat-ms"\?\)$/);
  refused(t, 'wokers = 4', /:1: unknown key "wokers" \(did you mean "workers"\?\)$/);
  refused(t, 'colour = blue', /:1: unknown key "colour"$/);
  t.is(suggestKey('rules'), 'rule');
  t.is(suggestKey('log_level'), 'log-level');
});

test('a key given twice is refused, naming the first line; config cannot name another file', (t) => {
  refused(t, '# node1\nworkers = 2\n\n\n\n\n\n\nworkers = 4', /^\/etc\/lnlb\/lnlb\.conf:9: "workers" is given twice \(first on line 2\)$/);
  refused(t, 'config = /etc/other.conf', /:1: "config" cannot be given in a config file/);
});

test('an empty value is refused (a # after a space starts a comment)', (t) => {
  refused(t, 'bind =', /:1: "bind" has no value/);
  refused(t, 'rule = # later', /:1: "rule" has no value/);
  refused(t, 'name = ""', /:1: "name" has no value/);
});

test("a bad value is refused by the option's own parser, with file, line and flag", (t) => {
  const err = refused(t, 'vip = 10.0.0.1\nbind = eth0\nworkers = two', /^\/etc\/lnlb\/lnlb\.conf:3: --workers: expected a whole number from 1 to 31, got "two"$/);
  t.is((err.cause as LnlbError).code, 'LNLB_ERR_CLI_BAD_FLAG');
  refused(t, 'vip = 10.0.0.300', /:1: --vip: expected an IPv4 or IPv6 address/);
  refused(t, 'log-level = loud', /:1: --log-level: expected one of fatal, error/);
  refused(t, 'rule = 22/tcp=sometimes', /:1: --rule: "22\/tcp=sometimes": the mode must be one of multiple, single, disabled/);
});

test('weight-mode = manual (weights as loads) is refused with its own code, file and line, saying what changed', (t) => {
  const err = t.throws(() => parseConfigFile('vip = 10.0.0.1\nweight-mode = manual\n', PATH), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_MANUAL_RETIRED');
  t.regex(err.message, /^\/etc\/lnlb\/lnlb\.conf:2: weight-mode: weight mode "manual" was retired when weights became capacities: a higher weight now gets MORE new clients .*Use "fixed"/);
  t.is(parseConfigFile('weight-mode = fixed\n', PATH).weightMode, 'fixed');
});

test('a conflict between repeated values is reported on the line that brings it', (t) => {
  refused(t, 'rule = 80-90/tcp=multiple\n# web\nrule = 85/both=disabled', /^\/etc\/lnlb\/lnlb\.conf:3: --rule: "85\/both=disabled": it overlaps "80-90\/tcp=multiple" on tcp port 85/);
  refused(t, 'handler = tcp=tcp\nhandler = tcp=default', /:2: --handler: protocol 6 is given twice/);
});

test('every DAEMON_OPTIONS flag but --config can be given in a file under its name without --', (t) => {
  const samples: Record<string, string> = {
    bind: 'eth0', vip: '10.0.0.100', name: 'nlb%d', runDir: '/run/lnlb', workers: '3', heartbeatMs: '500', deadAfterMs: '2500', nice: '-5', logLevel: 'warn',
    election: 'lnlb', weightMode: 'fixed', nodeName: 'web-1.lan', macMode: 'multicast', vlan: '0', tableEntries: '4096', rxRing: 'v3', rxRingFrames: '16384', rxRingBlocks: '32', actorRingKib: '1024', controlRingKib: '1024', idleTimeout: '60', keyFile: '/etc/lnlb/key',
    insecureNoAuth: 'false', clockTolerance: '30',
    tcpIdleTimeout: '600', udpIdleTimeout: '30', rule: '22/tcp=single,priority=1', handler: 'tcp=tcp', bond: 'bond0 mode=802.3ad miimon=100 slaves=eth1,eth2',
    metrics: '127.0.0.1:9750', healthCheck: 'http://127.0.0.1:8080/healthz#200', healthIntervalMs: '500', healthTimeoutMs: '400', healthFall: '2', healthRise: '3',
  };
  const keys = DAEMON_OPTIONS.filter((s) => s.key !== 'config');
  t.deepEqual([...CONFIG_KEYS], keys.map((s) => s.flag.split(' ')[0]!.slice(2)));
  for (const spec of keys) {
    const sample = samples[spec.key];
    if (sample === undefined) {
      t.fail(`no sample value for ${spec.flag}: add one here`);
      continue;
    }
    const key = spec.flag.split(' ')[0]!.slice(2);
    t.deepEqual(parseConfigFile(`${key} = ${sample}\n`, PATH), { [spec.key]: sample }, spec.flag);
  }
  const all = parseConfigFile(Object.entries(samples).map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} = ${v}`).join('\n'), PATH);
  t.like(resolveDaemonOptions(all), { workers: 3, heartbeatMs: 500, election: 'lnlb', rxRing: 'v3', rxRingFrames: 16384, rxRingBlocks: 32, actorRingKib: 1024, controlRingKib: 1024, tableEntries: 4096, udpIdleTimeout: 30 });
});

test('bond: repeatable like rule, the value a name and words with spaces, each line checked by --bond\'s parser', (t) => {
  const text = ['# two bonds', 'bond = bond0 mode=802.3ad miimon=100 lacp_rate=fast slaves=eth1,eth2   # LACP to the switch', 'bond = "bond1 mode=active-backup primary=eth3 slaves=eth3,eth4"', 'bind = bond0', 'vip = 10.0.0.100', 'key-file = /etc/lnlb/cluster.key'].join('\n');
  const file = readConfig(text, PATH);
  t.is(file.values.bond, ['bond0 mode=802.3ad miimon=100 lacp_rate=fast slaves=eth1,eth2', 'bond1 mode=active-backup primary=eth3 slaves=eth3,eth4'].join(REPEAT_SEPARATOR));
  t.is(file.lines.bond, 2);
  const o = resolveWithConfig({}, file);
  t.deepEqual(o.bond, [
    { name: 'bond0', options: ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast'], slaves: ['eth1', 'eth2'] },
    { name: 'bond1', options: ['mode=active-backup', 'primary=eth3'], slaves: ['eth3', 'eth4'] },
  ]);
  t.is(o.bind, 'bond0');

  const bad = refused(t, 'bond = bond0 mode=802.3ad\n\nbond = bond1 lacp_rate=fast', /^\/etc\/lnlb\/lnlb\.conf:3: --bond: "bond1 lacp_rate=fast": lacp_rate: only for mode 802\.3ad \(4\), not balance-rr \(0\)/);
  t.is((bad.cause as LnlbError).code, 'LNLB_ERR_CLI_BAD_FLAG');
  refused(t, 'bond = bond0 mode=nope', /:1: --bond: "bond0 mode=nope": mode: "nope" is not a bonding mode; use one of balance-rr \(0\)/);
  refused(t, 'bond = bond0 slaves=eth1\nbond = bond1 slaves=eth1', /^\/etc\/lnlb\/lnlb\.conf:2: --bond: eth1 is a slave of bond0 already/);
  refused(t, 'bond = bond0\nbond = bond0 mode=1', /:2: --bond: bond0 is given twice/);
  refused(t, 'bond = mode=802.3ad', /:1: --bond: "mode=802\.3ad": the first word is the bond's name/);
  t.is(suggestKey('bonds'), 'bond');

  const onSlave = readConfig('bond = bond0 slaves=eth1\n\nbind = eth1\nvip = 10.0.0.100', PATH);
  t.regex(t.throws(() => resolveWithConfig({}, onSlave))!.message, /^\/etc\/lnlb\/lnlb\.conf:3: --bind: eth1 is a slave of bond0 \(--bond\)/);
  const replaced = resolveWithConfig({ bond: 'bond7 mode=broadcast' }, file);
  t.deepEqual(replaced.bond.map((b) => b.name), ['bond7'], "--bond replaces the file's bonds, it does not add to them");
});

test('the command line wins over the file; its --rule replaces the file\'s rules, not adds to them', (t) => {
  const file = readConfig(['vip = 10.0.0.100', 'bind = eth0', 'key-file = /etc/lnlb/cluster.key', 'workers = 4', 'log-level = debug', 'rule = 22/tcp=single,priority=1', 'rule = 443/tcp=multiple,affinity=none', 'handler = tcp=tcp'].join('\n'), PATH);
  const commandLine = { workers: '8', rule: '80/tcp=multiple' };
  const merged = mergeOptions(commandLine, file);
  t.like(merged, { vip: '10.0.0.100', bind: 'eth0', workers: '8', logLevel: 'debug', rule: '80/tcp=multiple', handler: 'tcp=tcp', config: PATH });
  const o = resolveWithConfig(commandLine, file);
  t.like(o, { vip: '10.0.0.100', workers: 8, logLevel: 'debug', config: PATH });
  t.deepEqual(o.rule, ['80/tcp=multiple']);
  t.deepEqual(o.handler.map((h) => h.module), ['builtin:default', 'builtin:tcp'], "the file's handlers stay: the command line gave none");
  t.deepEqual(mergeOptions({ vip: undefined }, file).vip, '10.0.0.100', 'an undefined command-line value does not hide the file');
  t.is(resolveWithConfig({ vip: '10.0.0.7', bind: 'eth1', insecureNoAuth: 'true' }, undefined).config, undefined);
});

test('a cross-option refusal is reported on the file line of the flag it names', (t) => {
  const file = readConfig('vip = 10.0.0.100\nbind = eth0\nheartbeat-ms = 1000\ndead-after-ms = 800', PATH);
  const err = t.throws(() => resolveWithConfig({}, file), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_CONFIG_INVALID');
  t.regex(err.message, /^\/etc\/lnlb\/lnlb\.conf:4: --dead-after-ms: must be longer than --heartbeat-ms \(1000\)/);
  const fromHeartbeat = t.throws(() => resolveWithConfig({ deadAfterMs: '800' }, file), { instanceOf: LnlbError });
  t.regex(fromHeartbeat.message, /^\/etc\/lnlb\/lnlb\.conf:3: --dead-after-ms: must be longer than --heartbeat-ms/);
  const vipOnly = readConfig('\nvip = 10.0.0.100', PATH);
  t.regex(t.throws(() => resolveWithConfig({}, vipOnly))!.message, /^\/etc\/lnlb\/lnlb\.conf:2: --bind: is required with --vip/);
  const onCommandLine = t.throws(() => resolveWithConfig({ workers: '0' }, file), { instanceOf: LnlbError });
  t.is(onCommandLine.code, 'LNLB_ERR_CLI_BAD_FLAG', 'a bad flag stays a bad flag');
  t.regex(onCommandLine.message, /^--workers:/);
});

test('files: --config must be readable; the default path is read only when it exists', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'missing.conf');
  const e = t.throws(() => loadConfigFile(missing), { instanceOf: LnlbError });
  t.is(e.code, 'LNLB_ERR_CONFIG_INVALID');
  t.is(e.errno, 'ENOENT');
  t.is(e.message, `${missing}: cannot read the config file: ENOENT (no such file)`);
  t.regex(t.throws(() => loadConfigFile(dir))!.message, /: cannot read the config file: EISDIR \(it is a directory\)$/);
  t.throws(() => daemonOptions({ config: missing }, join(dir, 'default.conf')), { message: /missing\.conf: cannot read the config file: ENOENT/ });
  t.throws(() => daemonOptions({ config: '' }, join(dir, 'default.conf')), { message: /^--config: expected a file path$/ });

  t.like(daemonOptions({}, join(dir, 'default.conf')), { workers: 1, config: undefined }, 'no default file: no config');
  const def = join(dir, 'default.conf');
  writeFileSync(def, 'workers = 5\nlog-level = warn\n');
  t.like(daemonOptions({}, def), { workers: 5, logLevel: 'warn', config: def });
  t.like(daemonOptions({ logLevel: 'error' }, def), { workers: 5, logLevel: 'error' });

  const other = join(dir, 'other.conf');
  writeFileSync(other, '# other\nworkers = 7\n');
  t.like(daemonOptions({ config: other }, def), { workers: 7, logLevel: 'info', config: other }, '--config replaces the default file, not adds to it');

  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, 'workers = 5\n\nheartbeat-ms = fast\n');
  t.is(t.throws(() => daemonOptions({ config: bad }, def))!.message, `${bad}:3: --heartbeat-ms: expected a whole number from 10 to 60000, got "fast"`);

  if (process.getuid?.() !== 0) {
    chmodSync(def, 0o000);
    const denied = t.throws(() => daemonOptions({}, def), { instanceOf: LnlbError });
    t.is(denied.errno, 'EACCES');
  }
});
