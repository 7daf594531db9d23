import test from 'ava';
import { checkClusterAuth, DAEMON_OPTIONS, interfaceArguments, LNLBD_AUTH_NAMES, REPEAT_SEPARATOR, resolveDaemonOptions } from '../../../src/main/options.js';
import { LnlbError } from '../../../src/errors.js';

const KEY = '/etc/lnlb/cluster.key';

test('defaults fill in what is not given', (t) => {
  const o = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', keyFile: KEY });
  t.like(o, { bind: 'eth0', vip: '10.0.0.100', keyFile: KEY, insecureNoAuth: false, name: 'nlb%d', runDir: '/run/lnlb', workers: 1, logLevel: 'info', election: 'rendezvous', rxRing: 'v2' });
});

const badCases: [string, Record<string, string>, RegExp][] = [
  ['missing --bind', { vip: '10.0.0.100' }, /^--bind: is required/],
  ['missing --vip', { bind: 'eth0' }, /^--vip: is required/],
  ['bad IP', { bind: 'eth0', vip: '10.0.0.256' }, /^--vip: expected an IPv4 or IPv6 address/],
  ['two IPv4 VIPs', { bind: 'eth0', vip: '10.0.0.100,10.0.0.101' }, /^--vip: .*two IPv4 cluster IPs/],
  ['a link-local IPv6 VIP', { bind: 'eth0', vip: 'fe80::100' }, /^--vip: .*cannot be a cluster IP/],
  ['VLAN out of range', { bind: 'eth0', vip: '10.0.0.1', vlan: '4095' }, /^--vlan: expected a whole number from 0 to 4094, got 4095$/],
  ['VLAN with multicast MAC mode', { bind: 'eth0', vip: '10.0.0.1', vlan: '100', macMode: 'multicast' }, /^--vlan: a cluster on a trunk VLAN runs in unicast MAC mode/],
  ['workers not a number', { bind: 'eth0', vip: '10.0.0.1', workers: 'two' }, /^--workers: expected a whole number from 1 to 31/],
  // One dispatcher feeds at most 31 actors: refused here, before any device exists (it threw after the TAP was made).
  ['workers above what a dispatcher feeds', { bind: 'eth0', vip: '10.0.0.1', workers: '32' }, /^--workers: expected a whole number from 1 to 31, got 32$/],
  ['nice out of range', { bind: 'eth0', vip: '10.0.0.1', nice: '-21' }, /^--nice: expected a whole number from -20 to 19, got -21$/],
  ['nice not a number', { bind: 'eth0', vip: '10.0.0.1', nice: '--5' }, /^--nice: expected a whole number from -20 to 19, got "--5"$/],
  ['workers out of range', { bind: 'eth0', vip: '10.0.0.1', workers: '0' }, /^--workers:/],
  ['device name too long', { bind: 'eth0-with-a-long-name', vip: '10.0.0.1' }, /^--bind: expected a device name of 1 to 15/],
  ['dead-after not above heartbeat', { bind: 'eth0', vip: '10.0.0.1', heartbeatMs: '500', deadAfterMs: '500' }, /^--dead-after-ms: must be longer than --heartbeat-ms/],
  ['unknown log level', { bind: 'eth0', vip: '10.0.0.1', logLevel: 'loud' }, /^--log-level: expected one of fatal, error/],
  ['unknown election', { bind: 'eth0', vip: '10.0.0.1', election: 'maglev' }, /^--election: expected one of rendezvous, lnlb, bucket/],
  ['name equal to bind', { bind: 'eth0', vip: '10.0.0.1', name: 'eth0' }, /^--name:/],
  ['unknown rx ring', { bind: 'eth0', vip: '10.0.0.1', rxRing: 'v1' }, /^--rx-ring: expected one of v2, v3, got "v1"/],
  ['rx ring frames too few', { bind: 'eth0', vip: '10.0.0.1', rxRingFrames: '100' }, /^--rx-ring-frames: expected a whole number from 512 to 262144, got 100$/],
  ['rx ring blocks not a number', { bind: 'eth0', vip: '10.0.0.1', rxRingBlocks: '8k' }, /^--rx-ring-blocks: expected a whole number from 4 to 4096, got "8k"$/],
  ['actor ring not a power of two', { bind: 'eth0', vip: '10.0.0.1', actorRingKib: '3000' }, /^--actor-ring-kib: expected a power of two from 64 to 1048576, got 3000$/],
];

for (const [title, raw, message] of badCases) {
  test(`refused with a message naming the flag: ${title}`, (t) => {
    const err = t.throws(() => resolveDaemonOptions({ keyFile: KEY, ...raw }), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_CLI_BAD_FLAG');
    t.regex(err.message, message);
  });
}

test('--weight-mode manual (weights as loads) is refused with LNLB_ERR_WEIGHT_MANUAL_RETIRED; fixed is the mode of set_weight now', (t) => {
  const err = t.throws(() => resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', keyFile: KEY, weightMode: 'manual' }), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_MANUAL_RETIRED');
  t.regex(err.message, /^--weight-mode: weight mode "manual" was retired/);
  t.is(resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', keyFile: KEY, weightMode: 'fixed' }).weightMode, 'fixed');
});

test('a daemon may start with no cluster (neither --bind nor --vip); one alone is refused', (t) => {
  const empty = resolveDaemonOptions({});
  t.is(empty.bind, undefined);
  t.is(empty.vip, undefined);
  const err = t.throws(() => resolveDaemonOptions({ vip: '10.0.0.1' }), { instanceOf: LnlbError });
  t.regex(err.message, /^--bind: is required with --vip/);
});

test('addif arguments are checked by the same table as the flags', (t) => {
  t.deepEqual(interfaceArguments({ vip: '10.0.0.200', bind: 'eth0' }), { vip: '10.0.0.200', bind: 'eth0', name: undefined, overrides: {} });
  t.deepEqual(interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', rule: ['22/tcp=single'] }).overrides, { rule: ['22/tcp=single'] });
  t.throws(() => interfaceArguments({ vip: '10.0.0.2', bind: 'eth0', rule: ['22/tcp=sometimes'] }), { message: /^--rule: "22\/tcp=sometimes": the mode must be one of multiple, single, disabled/ });
  t.throws(() => interfaceArguments({ vip: '10.0.0.999', bind: 'eth0' }), { message: /expected an IPv4 or IPv6 address/ });
  t.is(interfaceArguments({ vip: '10.0.2.100', bind: 'eth0', vlan: '200' }).overrides.vlan, 200, 'addif --vlan');
  t.throws(() => interfaceArguments({ vip: '10.0.2.100', bind: 'eth0', vlan: 'x' }), { message: /^--vlan: expected a whole number/ });
  t.is(interfaceArguments({ vip: 'fd00:10::100, 10.0.0.100', bind: 'eth0' }).vip, '10.0.0.100,fd00:10::100', 'a dual-stack VIP, canonical');
  t.throws(() => interfaceArguments({ vip: '10.0.0.2', bind: 'a-device-name-too-long' }), { message: /device name of 1 to 15/ });
});

test('every flag reaches its option: the flag, camel-cased as the parser does, is the key', (t) => {
  for (const spec of DAEMON_OPTIONS) {
    const flag = spec.flag.split(' ')[0]!.replace(/^--/, '');
    const camel = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    t.is(camel, spec.key, `${spec.flag} would land in ${camel}, not ${spec.key}`);
  }
});

test('--rule and --handler may be repeated; each value is checked with the flag and the rule named', (t) => {
  const o = resolveDaemonOptions({ rule: ['22/tcp=single,priority=1', '443/tcp=multiple,affinity=none'].join(REPEAT_SEPARATOR), handler: 'icmp=default' });
  t.deepEqual(o.rule, ['22/tcp=single,priority=1', '443/tcp=multiple,affinity=none']);
  t.deepEqual(
    o.handler.map((h) => [h.protocol, h.module]),
    [
      [0, 'builtin:default'],
      [1, 'builtin:default'],
    ],
  );
  const overlap = t.throws(() => resolveDaemonOptions({ rule: ['80-90/tcp=multiple', '85/both=disabled'].join(REPEAT_SEPARATOR) }), { instanceOf: LnlbError });
  t.is(overlap.code, 'LNLB_ERR_CLI_BAD_FLAG');
  t.regex(overlap.message, /^--rule: "85\/both=disabled": it overlaps "80-90\/tcp=multiple" on tcp port 85/);
  t.throws(() => resolveDaemonOptions({ handler: 'tcp' }), { message: /^--handler: / });
});

test('defaults: LNLB\'s default handler for every protocol, no port rules; tcp and udp have their own idle timeouts once enabled', (t) => {
  const o = resolveDaemonOptions({});
  t.deepEqual(o.rule, []);
  t.deepEqual(o.handler.map((h) => h.module), ['builtin:default']);
  const both = resolveDaemonOptions({ handler: ['tcp=tcp', 'udp=udp'].join(REPEAT_SEPARATOR) });
  t.deepEqual(both.handler.map((h) => [h.protocol, h.module]), [[0, 'builtin:default'], [6, 'builtin:tcp'], [17, 'builtin:udp']]);
  t.is(o.tcpIdleTimeout, 7440);
  t.is(o.udpIdleTimeout, 120);
});

test('--clock-tolerance: 60 s by default, whole seconds from 1 to a day, a bad value names the flag', (t) => {
  t.is(resolveDaemonOptions({}).clockTolerance, 60);
  t.is(resolveDaemonOptions({ clockTolerance: '5' }).clockTolerance, 5);
  for (const bad of ['0', '-1', '1.5', 'soon', '86401']) t.throws(() => resolveDaemonOptions({ clockTolerance: bad }), { message: /^--clock-tolerance: / });
});

const KEY_MISSING =
  'a cluster interface needs a key, or any host on this LAN can take the cluster over: give --key-file PATH (key-file = PATH in the config file), the same file on every node; make one with `lnlbctl genkey /etc/lnlb/cluster.key` and copy it to every node (for a lab only, --insecure-no-auth runs without a key)';

test('a cluster interface without a key is refused: LNLB_ERR_AUTH_KEY_MISSING naming --key-file, the config key, lnlbctl genkey and the opt-out', (t) => {
  for (const raw of [{ bind: 'eth0', vip: '10.0.0.100' }, { bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'false' }]) {
    const err = t.throws(() => resolveDaemonOptions(raw), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_AUTH_KEY_MISSING');
    t.is(err.message, KEY_MISSING);
  }
  const insecure = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' });
  t.like(insecure, { insecureNoAuth: true, keyFile: undefined });
});

test('no key needed by a daemon without a cluster interface (only bonds, or empty for addif)', (t) => {
  t.like(resolveDaemonOptions({}), { keyFile: undefined, insecureNoAuth: false });
  t.like(resolveDaemonOptions({ bond: 'bond0 mode=active-backup slaves=eth1,eth2' }), { keyFile: undefined });
  t.like(resolveDaemonOptions({ keyFile: KEY }), { keyFile: KEY, bind: undefined }, 'a key for the interfaces addif will add');
});

test('a key and --insecure-no-auth together: a flag error naming both, with or without a cluster interface', (t) => {
  for (const raw of [{ keyFile: KEY, insecureNoAuth: 'true' }, { bind: 'eth0', vip: '10.0.0.100', keyFile: KEY, insecureNoAuth: 'true' }]) {
    const err = t.throws(() => resolveDaemonOptions(raw), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_CLI_BAD_FLAG');
    t.is(err.message, '--key-file: cannot be given with --insecure-no-auth: give the key (authenticated) or the opt-out (labs only), not both');
  }
  t.notThrows(() => resolveDaemonOptions({ keyFile: KEY, insecureNoAuth: 'false' }), 'false is no opt-out');
});

test('--insecure-no-auth takes true or false (the config file writes it so; the command line gives true)', (t) => {
  const err = t.throws(() => resolveDaemonOptions({ insecureNoAuth: 'yes' }), { instanceOf: LnlbError });
  t.is(err.message, '--insecure-no-auth: expected true or false, got "yes"');
  t.false(resolveDaemonOptions({}).insecureNoAuth);
});

test('checkClusterAuth: the one rule, with the caller\'s names in the message', (t) => {
  t.notThrows(() => checkClusterAuth({ keyFile: KEY, insecureNoAuth: false }, LNLBD_AUTH_NAMES));
  t.notThrows(() => checkClusterAuth({ keyFile: undefined, insecureNoAuth: true }, LNLBD_AUTH_NAMES));
  const err = t.throws(() => checkClusterAuth({ keyFile: undefined, insecureNoAuth: false }, { key: 'KEY-OPTION', insecure: 'OPT-OUT' }), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_AUTH_KEY_MISSING');
  t.regex(err.message, /give KEY-OPTION, the same file on every node; make one with `lnlbctl genkey \/etc\/lnlb\/cluster\.key`.*\(for a lab only, OPT-OUT runs without a key\)$/);
  t.throws(() => checkClusterAuth({ keyFile: KEY, insecureNoAuth: true }, LNLBD_AUTH_NAMES), { message: /^--key-file: cannot be given with --insecure-no-auth/ });
});

test('addif: a key file or the opt-out replaces the daemon\'s choice for this interface; both refused', (t) => {
  t.deepEqual(interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', keyFile: '/etc/lnlb/other.key' }).overrides, { keyFile: '/etc/lnlb/other.key', insecureNoAuth: false });
  t.deepEqual(interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', insecureNoAuth: true }).overrides, { keyFile: undefined, insecureNoAuth: true });
  t.deepEqual(interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', insecureNoAuth: false }).overrides, {}, 'false: the daemon\'s choice');
  t.throws(() => interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', keyFile: KEY, insecureNoAuth: true }), { message: /^--key-file: cannot be given with --insecure-no-auth/ });
  t.throws(() => interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', keyFile: '' }), { message: /^--key-file: expected a file path$/ });
  t.throws(() => interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', keyFile: 7 }), { message: /^--key-file: expected a file path$/ });
  t.throws(() => interfaceArguments({ vip: '10.0.0.200', bind: 'eth0', insecureNoAuth: 'yes' }), { message: /^--insecure-no-auth: expected true or false$/ });
});
