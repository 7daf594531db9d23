import test from 'ava';
import { checkBondSpecs, deviceArgument, deviceNameProblem, devicesArgument, optionWordsArgument, parseBondSpec } from '../../../src/main/bond-spec.js';
import { REPEAT_SEPARATOR, resolveDaemonOptions } from '../../../src/main/options.js';
import { LnlbError } from '../../../src/errors.js';

function refused(t: import('ava').ExecutionContext, fn: () => unknown, code: LnlbError['code'], message: RegExp): LnlbError {
  const err = t.throws(fn, { instanceOf: LnlbError });
  t.is(err.code, code);
  t.regex(err.message, message);
  return err;
}

test('a spec is the name, the option words in order, and the slaves', (t) => {
  t.deepEqual(parseBondSpec('bond0 mode=802.3ad miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4 slaves=eth1,eth2', '--bond'), {
    name: 'bond0',
    options: ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4'],
    slaves: ['eth1', 'eth2'],
  });
  t.deepEqual(parseBondSpec('bond1', '--bond'), { name: 'bond1', options: [], slaves: [] }, 'the name alone: the defaults, no slaves');
  t.deepEqual(parseBondSpec('  bond2 \t slaves=eth3  mode=active-backup primary=eth3 ', '--bond'), { name: 'bond2', options: ['mode=active-backup', 'primary=eth3'], slaves: ['eth3'] }, 'slaves= anywhere after the name; any white space');
  t.deepEqual(parseBondSpec('bond3 mode=4 arp_interval=100 arp_ip_target=10.0.0.1', '--bond').options, ['mode=4', 'arp_interval=100', 'arp_ip_target=10.0.0.1'], 'words are kept as given');
});

test('a bad option word is refused with the flag, the spec and the option table\'s own message', (t) => {
  const err = refused(t, () => parseBondSpec('bond0 lacp_rate=fast', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: "bond0 lacp_rate=fast": lacp_rate: only for mode 802\.3ad \(4\), not balance-rr \(0\)/);
  t.notRegex(err.message, /\n/);
  refused(t, () => parseBondSpec('bond0 mode=nope', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: "bond0 mode=nope": mode: "nope" is not a bonding mode; use one of balance-rr \(0\), active-backup \(1\)/);
  refused(t, () => parseBondSpec('bond0 miimon=100 miimon=200', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /: miimon: given twice/);
  refused(t, () => parseBondSpec('bond0 lacp-rate=fast', 'bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^bond: "bond0 lacp-rate=fast": unknown option "lacp-rate" \(did you mean "lacp_rate"\?\)/);
  refused(t, () => parseBondSpec('bond0 802.3ad', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /got "802\.3ad" \(did you mean mode=802\.3ad\?\)/);
});

test('the name comes first and is a device name', (t) => {
  refused(t, () => parseBondSpec('', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: expected "<name> \[option=value \.\.\.\] \[slaves=dev1,dev2\]", got an empty value$/);
  refused(t, () => parseBondSpec('   ', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /got an empty value/);
  refused(t, () => parseBondSpec('mode=802.3ad miimon=100', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: "mode=802\.3ad miimon=100": the first word is the bond's name \(e\.g\. bond0 mode=802\.3ad\)/);
  refused(t, () => parseBondSpec('bond-with-a-long-name mode=1', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /: the bond's name: expected a device name of 1 to 15 bytes .*got "bond-with-a-long-name"$/);
  refused(t, () => parseBondSpec('bond/0', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /the bond's name: expected a device name/);
  refused(t, () => parseBondSpec('bond%d', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /the bond's name: expected a device name/);
  t.is(parseBondSpec('bønd0123456789', '--bond').name, 'bønd0123456789', '15 bytes');
  refused(t, () => parseBondSpec('bønd01234567890', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /the bond's name/);
});

test('slaves=: one word, a comma list of device names, each once, not the bond', (t) => {
  refused(t, () => parseBondSpec('bond0 slaves=', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: "bond0 slaves=": slaves=: expected slaves=dev1,dev2/);
  refused(t, () => parseBondSpec('bond0 slaves=eth1,,eth2', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /slaves=eth1,,eth2: expected slaves=dev1,dev2/);
  refused(t, () => parseBondSpec('bond0 slaves=eth1,eth1', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /slaves=eth1,eth1: eth1 is given twice$/);
  refused(t, () => parseBondSpec('bond0 slaves=eth1 slaves=eth2', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /slaves=eth2: slaves= is given twice/);
  refused(t, () => parseBondSpec('bond0 slaves=bond0', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /bond0 cannot be a slave of itself/);
  refused(t, () => parseBondSpec('bond0 slaves=eth1,a/b', '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /slaves=eth1,a\/b: expected a device name of 1 to 15 bytes .*got "a\/b"/);
});

test('several bonds: each name once, a device the slave of one bond only, a bond never a slave', (t) => {
  const a = parseBondSpec('bond0 slaves=eth1,eth2', '--bond');
  const b = parseBondSpec('bond1 mode=active-backup slaves=eth3', '--bond');
  t.deepEqual(checkBondSpecs([a, b], '--bond'), [a, b]);
  refused(t, () => checkBondSpecs([a, parseBondSpec('bond0', '--bond')], '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: bond0 is given twice/);
  refused(t, () => checkBondSpecs([a, parseBondSpec('bond1 slaves=eth2', '--bond')], '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: eth2 is a slave of bond0 already/);
  refused(t, () => checkBondSpecs([a, parseBondSpec('bond1 slaves=bond0', '--bond')], '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: bond1: bond0 is a bond; a bond cannot also be a slave/);
  refused(t, () => checkBondSpecs([parseBondSpec('bond1 slaves=bond0', '--bond'), a], '--bond'), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: bond0 is a slave of bond1 already; a bond cannot also be a slave/);
});

test('--bond through the option table: repeatable, checked together and against --bind and --name', (t) => {
  const o = resolveDaemonOptions({ bond: ['bond0 mode=802.3ad slaves=eth1,eth2', 'bond1 mode=active-backup'].join(REPEAT_SEPARATOR), bind: 'bond0', vip: '10.0.0.100', keyFile: '/etc/lnlb/cluster.key' });
  t.deepEqual(o.bond, [
    { name: 'bond0', options: ['mode=802.3ad'], slaves: ['eth1', 'eth2'] },
    { name: 'bond1', options: ['mode=active-backup'], slaves: [] },
  ]);
  t.deepEqual(resolveDaemonOptions({}).bond, [], 'none by default');
  refused(t, () => resolveDaemonOptions({ bond: 'bond0 lacp_rate=fast' }), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: "bond0 lacp_rate=fast": lacp_rate:/);
  refused(t, () => resolveDaemonOptions({ bond: ['bond0', 'bond0'].join(REPEAT_SEPARATOR) }), 'LNLB_ERR_CLI_BAD_FLAG', /^--bond: bond0 is given twice/);
  refused(t, () => resolveDaemonOptions({ bond: 'bond0 slaves=eth1', bind: 'eth1', vip: '10.0.0.100' }), 'LNLB_ERR_CLI_BAD_FLAG', /^--bind: eth1 is a slave of bond0 \(--bond\): bind the cluster to the bond \(--bind bond0\)$/);
  refused(t, () => resolveDaemonOptions({ bond: 'nlb0', name: 'nlb0' }), 'LNLB_ERR_CLI_BAD_FLAG', /^--name: the cluster interface cannot have the name of the bond nlb0/);
});

test('admin arguments: device names, a non-empty list of them, option words; messages name the argument', (t) => {
  t.is(deviceArgument('bond0', 'name'), 'bond0');
  refused(t, () => deviceArgument(undefined, 'name'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^name: expected a device name of 1 to 15 bytes .*, got nothing$/);
  refused(t, () => deviceArgument(7, 'bond'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^bond: expected a device name .*, got number$/);
  for (const bad of ['', 'a/b', 'a b', 'a\tb', 'bond0123456789ab', '.', '..', 'eth:1']) {
    refused(t, () => deviceArgument(bad, 'name'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^name: expected a device name/);
    t.not(deviceNameProblem(bad), undefined, bad);
  }
  t.deepEqual(devicesArgument(['eth1', 'eth2'], 'devices'), ['eth1', 'eth2']);
  refused(t, () => devicesArgument([], 'devices'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^devices: expected a non-empty list of devices/);
  refused(t, () => devicesArgument('eth1', 'devices'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^devices: expected a non-empty list/);
  refused(t, () => devicesArgument(['eth1', 'eth 2'], 'devices'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^devices: expected a device name .*got "eth 2"$/);
  refused(t, () => devicesArgument(['eth1', 'eth1'], 'devices'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^devices: eth1 is given twice$/);
  t.deepEqual(optionWordsArgument(undefined, 'options'), []);
  t.deepEqual(optionWordsArgument(['mode=1'], 'options'), ['mode=1']);
  refused(t, () => optionWordsArgument('mode=1', 'options'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^options: expected a list of key=value words/);
  refused(t, () => optionWordsArgument(['mode=1', 2], 'options'), 'LNLB_ERR_CTL_BAD_ARGUMENT', /^options: /);
});
