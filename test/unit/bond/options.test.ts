import test from 'ava';
import {
  BOND_MODES,
  BOND_OPTION_NAMES,
  BOND_OPTIONS,
  DEFAULT_MIIMON,
  MAX_ARP_TARGETS,
  bondOptionDefault,
  bondOptionValue,
  bondStatusLine,
  defaultBondOptions,
  formatBondOptions,
  parseBondOptions,
  resolveBondOptions,
  xmitPolicyNumber,
  type BondOptionName,
  type BondOptions,
} from '../../../src/bond/options.js';
import { LnlbError } from '../../../src/errors.js';

function refused(t: import('ava').ExecutionContext, words: string[]): string {
  const err = t.throws(() => parseBondOptions(words), { instanceOf: LnlbError }, words.join(' '));
  t.is(err?.code, 'LNLB_ERR_BOND_OPTION');
  return err?.message ?? '';
}

const warningsOf = (words: string[]): string[] => resolveBondOptions(words).warnings.map((w) => w.message);

// ---------------------------------------------------------------------------------------------
// Defaults

test("defaults are the reference's table (../shared/reference/bonding.md, Options)", (t) => {
  const o = parseBondOptions([]);
  const reference: Partial<BondOptions> = {
    mode: 'balance-rr',
    miimon: 100, // "100 when no ARP monitor"
    updelay: 0,
    downdelay: 0,
    arp_interval: 0,
    arp_ip_target: [],
    arp_validate: 'none',
    arp_all_targets: 'any',
    arp_missed_max: 2,
    primary: undefined,
    primary_reselect: 'always',
    fail_over_mac: 'none',
    num_grat_arp: 1,
    all_slaves_active: false,
    xmit_hash_policy: 'layer2',
    packets_per_slave: 1,
    tlb_dynamic_lb: true,
    lp_interval: 1,
    lacp_rate: 'slow',
    lacp_active: true,
    ad_select: 'stable',
    ad_actor_sys_prio: 65535,
    min_links: 0,
  };
  for (const [name, value] of Object.entries(reference)) t.deepEqual(o[name as BondOptionName], value, name);
});

test('defaults the reference leaves to the kernel documentation', (t) => {
  const o = parseBondOptions([]);
  t.is(o.peer_notif_delay, 0);
  t.is(o.use_carrier, true);
  t.is(o.resend_igmp, 1);
  t.is(o.ad_user_port_key, 0);
  t.is(o.ad_actor_system, undefined); // the bond's own MAC
});

test('miimon defaults to 100 without the ARP monitor and to 0 with it; defaultBondOptions is the table', (t) => {
  t.is(DEFAULT_MIIMON, 100);
  t.is(parseBondOptions(['mode=active-backup']).miimon, 100);
  t.is(parseBondOptions(['mode=active-backup', 'arp_interval=1000', 'arp_ip_target=10.0.0.1']).miimon, 0);
  t.is(bondOptionDefault('miimon', { arp_interval: 0 }), 100);
  t.is(bondOptionDefault('miimon', { arp_interval: 500 }), 0);
  const d = defaultBondOptions();
  for (const name of BOND_OPTION_NAMES) t.deepEqual(d[name], BOND_OPTIONS[name].default, name);
  t.deepEqual(parseBondOptions([]), d);
});

test('the table: each entry is filed under its own name, says what it accepts, and applies somewhere', (t) => {
  t.is(BOND_OPTION_NAMES.length, 28);
  for (const name of BOND_OPTION_NAMES) {
    const spec = BOND_OPTIONS[name];
    t.is(spec.name, name);
    t.true(spec.accepted.length > 0, name);
    t.true(spec.description.length > 0, name);
    t.true(spec.modes.length > 0, name);
  }
});

// ---------------------------------------------------------------------------------------------
// Values

test('the example of the issue parses', (t) => {
  const { options, warnings } = resolveBondOptions(['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4']);
  t.like(options, { mode: '802.3ad', miimon: 100, lacp_rate: 'fast', xmit_hash_policy: 'layer3+4' });
  t.deepEqual(warnings, []);
});

test("enumerated values are taken by name or by the driver's number", (t) => {
  for (const m of BOND_MODES) {
    t.is(parseBondOptions([`mode=${m.value}`]).mode, m.name);
    t.is(parseBondOptions([`mode=${m.name}`]).mode, m.name);
  }
  t.is(parseBondOptions(['mode=2', 'xmit_hash_policy=1']).xmit_hash_policy, 'layer3+4');
  t.is(parseBondOptions(['mode=2', 'xmit_hash_policy=2']).xmit_hash_policy, 'layer2+3');
  t.is(parseBondOptions(['mode=4', 'lacp_rate=1']).lacp_rate, 'fast');
  t.is(parseBondOptions(['mode=4', 'ad_select=2']).ad_select, 'count');
  t.is(parseBondOptions(['mode=1', 'fail_over_mac=2']).fail_over_mac, 'follow');
  t.is(parseBondOptions(['mode=1', 'primary=eth0', 'primary_reselect=1']).primary_reselect, 'better');
  t.is(parseBondOptions(['arp_interval=100', 'arp_ip_target=10.0.0.1', 'arp_validate=6']).arp_validate, 'filter_backup');
  t.is(parseBondOptions(['all_slaves_active=on']).all_slaves_active, true);
  t.is(parseBondOptions(['all_slaves_active=1']).all_slaves_active, true);
  t.is(parseBondOptions(['mode=4', 'lacp_active=off']).lacp_active, false);
  t.is(parseBondOptions(['mode=5', 'tlb_dynamic_lb=0']).tlb_dynamic_lb, false);
  t.is(xmitPolicyNumber('layer2'), 0);
  t.is(xmitPolicyNumber('layer3+4'), 1);
  t.is(xmitPolicyNumber('layer2+3'), 2);
});

test('every option refuses a bad value with a message naming it and what it accepts', (t) => {
  for (const name of BOND_OPTION_NAMES) {
    const message = refused(t, [`${name}=x y`]);
    t.true(message.startsWith(`${name}: `), message);
    t.true(message.includes(BOND_OPTIONS[name].accepted.replace(/^one of /, '')), `${name}: ${message}`);
  }
});

const refusals: [string, string[], RegExp][] = [
  ['not a mode', ['mode=802.3'], /^mode: "802\.3" is not a bonding mode; use one of balance-rr \(0\), active-backup \(1\), balance-xor \(2\), broadcast \(3\), 802\.3ad \(4\), balance-tlb \(5\), balance-alb \(6\)$/],
  ['mode number out of the table', ['mode=7'], /^mode: "7" is not a bonding mode; use one of balance-rr \(0\)/],
  ['miimon not a number', ['miimon=fast'], /^miimon: expected a whole number of milliseconds from 0 to 2147483647, got "fast"$/],
  ['miimon negative', ['miimon=-1'], /^miimon: expected a whole number of milliseconds from 0 to 2147483647, got "-1"$/],
  ['miimon above INT_MAX', ['miimon=2147483648'], /^miimon: expected a whole number of milliseconds from 0 to 2147483647, got 2147483648$/],
  ['updelay with a unit', ['updelay=200ms'], /^updelay: expected a whole number of milliseconds from 0/],
  ['empty value', ['downdelay='], /^downdelay: expected a whole number of milliseconds from 0 to 2147483647, got ""$/],
  ['arp_missed_max 0', ['arp_missed_max=0'], /^arp_missed_max: expected a whole number from 1 to 255, got 0$/],
  ['arp_missed_max 256', ['arp_missed_max=256'], /^arp_missed_max: expected a whole number from 1 to 255, got 256$/],
  ['num_grat_arp 256', ['num_grat_arp=256'], /^num_grat_arp: expected a whole number from 0 to 255, got 256$/],
  ['num_unsol_na 256 (named as given)', ['num_unsol_na=256'], /^num_unsol_na: expected a whole number from 0 to 255, got 256$/],
  ['resend_igmp 300', ['resend_igmp=300'], /^resend_igmp: expected a whole number from 0 to 255/],
  ['packets_per_slave 65536', ['packets_per_slave=65536'], /^packets_per_slave: expected a whole number from 0 to 65535, got 65536$/],
  ['lp_interval 0', ['mode=balance-alb', 'lp_interval=0'], /^lp_interval: expected a whole number of seconds from 1 to 2147483647, got 0$/],
  ['ad_actor_sys_prio 0', ['mode=802.3ad', 'ad_actor_sys_prio=0'], /^ad_actor_sys_prio: expected a whole number from 1 to 65535, got 0$/],
  ['ad_user_port_key 1024', ['mode=802.3ad', 'ad_user_port_key=1024'], /^ad_user_port_key: expected a whole number from 0 to 1023, got 1024$/],
  ['min_links not a number', ['mode=802.3ad', 'min_links=two'], /^min_links: expected a whole number from 0 to 2147483647, got "two"$/],
  ['lacp_rate', ['mode=802.3ad', 'lacp_rate=medium'], /^lacp_rate: "medium" is not a LACP rate; use one of slow \(0\), fast \(1\)$/],
  ['lacp_active', ['mode=802.3ad', 'lacp_active=yes'], /^lacp_active: "yes" is not on or off; use one of off \(0\), on \(1\)$/],
  ['ad_select', ['mode=802.3ad', 'ad_select=random'], /^ad_select: "random" is not an aggregator selection policy; use one of stable \(0\), bandwidth \(1\), count \(2\)$/],
  ['xmit_hash_policy', ['mode=balance-xor', 'xmit_hash_policy=layer4'], /^xmit_hash_policy: "layer4" is not a transmit hash policy; use one of layer2 \(0\), layer3\+4 \(1\), layer2\+3 \(2\)$/],
  ['xmit_hash_policy encap3+4', ['mode=balance-xor', 'xmit_hash_policy=encap3+4'], /^xmit_hash_policy: encap3\+4 \(4\) is not supported by lnlb yet; use one of layer2 \(0\), layer3\+4 \(1\), layer2\+3 \(2\)$/],
  ['xmit_hash_policy 5 (vlan+srcmac)', ['mode=balance-xor', 'xmit_hash_policy=5'], /^xmit_hash_policy: vlan\+srcmac \(5\) is not supported by lnlb yet; use one of layer2 \(0\)/],
  ['arp_validate', ['arp_validate=strict'], /^arp_validate: "strict" is not an ARP validation; use one of none \(0\), active \(1\), backup \(2\), all \(3\), filter \(4\), filter_active \(5\), filter_backup \(6\)$/],
  ['arp_all_targets', ['arp_all_targets=most'], /^arp_all_targets: "most" is not an arp_all_targets value; use one of any \(0\), all \(1\)$/],
  ['fail_over_mac', ['mode=active-backup', 'fail_over_mac=yes'], /^fail_over_mac: "yes" is not a fail_over_mac policy; use one of none \(0\), active \(1\), follow \(2\)$/],
  ['primary_reselect', ['mode=active-backup', 'primary_reselect=never'], /^primary_reselect: "never" is not a primary_reselect policy; use one of always \(0\), better \(1\), failure \(2\)$/],
  ['all_slaves_active 2', ['all_slaves_active=2'], /^all_slaves_active: "2" is not on or off; use one of off \(0\), on \(1\)$/],
  ['use_carrier 0', ['use_carrier=0'], /^use_carrier: 0 is not supported: lnlb always reads the carrier .*; use on \(1\) or leave use_carrier out$/],
  ['use_carrier junk', ['use_carrier=maybe'], /^use_carrier: "maybe" is not accepted; use on \(1\)/],
  ['arp_ip_target not an address', ['arp_ip_target=10.0.0'], /^arp_ip_target: "10\.0\.0" is not an IPv4 address; expected up to 16 IPv4 addresses such as 10\.0\.0\.1, separated by commas$/],
  ['arp_ip_target empty entry', ['arp_ip_target=10.0.0.1,,10.0.0.2'], /^arp_ip_target: "" is not an IPv4 address/],
  ['arp_ip_target 0.0.0.0', ['arp_ip_target=0.0.0.0'], /^arp_ip_target: 0\.0\.0\.0 cannot be probed .*; expected up to 16 IPv4 addresses/],
  ['arp_ip_target 0.1.2.3', ['arp_ip_target=0.1.2.3'], /^arp_ip_target: 0\.1\.2\.3 cannot be probed/],
  ['arp_ip_target broadcast', ['arp_ip_target=255.255.255.255'], /^arp_ip_target: 255\.255\.255\.255 cannot be probed/],
  ['arp_ip_target duplicate', ['arp_ip_target=10.0.0.1,10.0.0.2,10.0.0.1'], /^arp_ip_target: 10\.0\.0\.1 is given twice; expected up to 16 IPv4 addresses/],
  ['arp_ip_target duplicate across words', ['arp_ip_target=10.0.0.1', 'arp_ip_target=10.0.0.1'], /^arp_ip_target: 10\.0\.0\.1 is given twice/],
  [
    'arp_ip_target 17 targets',
    [`arp_ip_target=${Array.from({ length: MAX_ARP_TARGETS + 1 }, (_, i) => `10.0.0.${i + 1}`).join(',')}`],
    /^arp_ip_target: 17 targets given; expected up to 16 IPv4 addresses/,
  ],
  [
    'arp_ip_target 17 targets over two words',
    [`arp_ip_target=${Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}`).join(',')}`, `arp_ip_target=${Array.from({ length: 7 }, (_, i) => `10.0.1.${i + 1}`).join(',')}`],
    /^arp_ip_target: 17 targets given/,
  ],
  ['primary too long', ['mode=active-backup', 'primary=a-device-name-too-long'], /^primary: expected a device name of 1 to 15 characters \(no '\/', ':' or spaces\), got "a-device-name-too-long"$/],
  ['primary with a slash', ['mode=active-backup', 'primary=eth/0'], /^primary: expected a device name of 1 to 15 characters/],
  ['primary empty', ['mode=active-backup', 'primary='], /^primary: expected a device name of 1 to 15 characters .*, got ""$/],
  ['ad_actor_system not a MAC', ['mode=802.3ad', 'ad_actor_system=02:00:00:00:00'], /^ad_actor_system: "02:00:00:00:00" is not a MAC address; expected a unicast MAC address such as 02:00:00:00:00:01/],
  ['ad_actor_system multicast', ['mode=802.3ad', 'ad_actor_system=01:80:c2:00:00:02'], /^ad_actor_system: 01:80:c2:00:00:02 is a multicast address; expected a unicast MAC address/],
  ['given twice', ['miimon=100', 'miimon=200'], /^miimon: given twice; give it once, the value a whole number of milliseconds from 0 to 2147483647$/],
  ['given under both names', ['num_grat_arp=2', 'num_unsol_na=2'], /^num_unsol_na: is another name of num_grat_arp, given already; give one of them once, the value a whole number from 0 to 255$/],
  ['a bare option name', ['miimon'], /^miimon: expected miimon=<value>, the value a whole number of milliseconds from 0 to 2147483647$/],
  ['a bare mode', ['802.3ad'], /^expected key=value words such as mode=active-backup or miimon=100, got "802\.3ad" \(did you mean mode=802\.3ad\?\)$/],
  ['a bare word', ['fast'], /^expected key=value words such as mode=active-backup or miimon=100, got "fast"$/],
  ['coupled_control', ['mode=802.3ad', 'coupled_control=on'], /^coupled_control: is not supported by lnlb yet/],
  ['ns_ip6_target', ['ns_ip6_target=fd00::1'], /^ns_ip6_target: is not supported by lnlb yet/],
  ['max_bonds', ['max_bonds=2'], /^max_bonds: is a module parameter of the driver/],
];

for (const [title, words, message] of refusals) {
  test(`refused, naming the option and what it accepts: ${title}`, (t) => {
    t.regex(refused(t, words), message);
  });
}

test('an unknown option names the nearest known one', (t) => {
  t.is(refused(t, ['lacp-rate=fast']), 'unknown option "lacp-rate" (did you mean "lacp_rate"?)');
  t.is(refused(t, ['MIIMON=100']), 'unknown option "MIIMON" (did you mean "miimon"?)');
  t.is(refused(t, ['miimom=100']), 'unknown option "miimom" (did you mean "miimon"?)');
  t.is(refused(t, ['xmit_hash=layer2']), 'unknown option "xmit_hash" (did you mean "xmit_hash_policy"?)');
  t.is(refused(t, ['arp_ip_targets=10.0.0.1']), 'unknown option "arp_ip_targets" (did you mean "arp_ip_target"?)');
  t.is(refused(t, ['num-unsol-na=1']), 'unknown option "num-unsol-na" (did you mean "num_unsol_na"?)');
  t.is(refused(t, ['coupled-control=on']), 'unknown option "coupled-control" (did you mean "coupled_control"?)');
  const far = refused(t, ['speed=1000']);
  t.regex(far, /^unknown option "speed"; the options are mode, miimon, updelay, /);
  for (const name of BOND_OPTION_NAMES) t.true(far.includes(name), name);
});

// ---------------------------------------------------------------------------------------------
// Modes an option applies to

const modeBound: [BondOptionName, string, readonly string[]][] = [
  ['packets_per_slave', '2', ['balance-rr']],
  ['primary', 'eth0', ['active-backup', 'balance-tlb', 'balance-alb']],
  ['tlb_dynamic_lb', '0', ['balance-tlb', 'balance-alb']],
  ['lacp_rate', 'fast', ['802.3ad']],
  ['lacp_active', 'off', ['802.3ad']],
  ['ad_select', 'bandwidth', ['802.3ad']],
  ['min_links', '1', ['802.3ad']],
  ['ad_actor_sys_prio', '100', ['802.3ad']],
  ['ad_user_port_key', '5', ['802.3ad']],
  ['ad_actor_system', '02:00:00:00:00:01', ['802.3ad']],
];

for (const [name, value, modes] of modeBound) {
  test(`${name} is taken in ${modes.join(', ')} and refused in the other modes, the message naming both`, (t) => {
    for (const m of BOND_MODES) {
      const words = [`mode=${m.name}`, `${name}=${value}`];
      if (modes.includes(m.name)) {
        t.notThrows(() => parseBondOptions(words), words.join(' '));
      } else {
        const message = refused(t, words);
        t.true(message.startsWith(`${name}: only for mode`), message);
        t.true(message.includes(`not ${m.name} (${m.value})`), message);
        for (const ok of modes) t.true(message.includes(ok), message);
      }
    }
  });
}

test('the refusal lists the modes with their numbers', (t) => {
  t.is(refused(t, ['lacp_rate=fast']), 'lacp_rate: only for mode 802.3ad (4), not balance-rr (0); leave lacp_rate out or choose one of those modes');
  t.is(
    refused(t, ['mode=balance-xor', 'primary=eth0']),
    'primary: only for modes active-backup (1), balance-tlb (5), balance-alb (6), not balance-xor (2); leave primary out or choose one of those modes',
  );
});

test('options the driver takes and ignores in a mode come back as warnings', (t) => {
  t.deepEqual(warningsOf(['mode=balance-rr', 'xmit_hash_policy=layer3+4']), [
    'xmit_hash_policy: has no effect: only for modes balance-xor (2), 802.3ad (4), balance-tlb (5), balance-alb (6), not balance-rr (0)',
  ]);
  t.deepEqual(warningsOf(['mode=balance-xor', 'fail_over_mac=active']), ['fail_over_mac: has no effect: only for mode active-backup (1), not balance-xor (2)']);
  t.deepEqual(warningsOf(['mode=active-backup', 'lp_interval=5']), [
    'lp_interval: has no effect: only for modes balance-tlb (5), balance-alb (6), not active-backup (1)',
  ]);
  t.deepEqual(warningsOf(['mode=802.3ad', 'primary_reselect=better']), [
    'primary_reselect: has no effect: only for modes active-backup (1), balance-tlb (5), balance-alb (6), not 802.3ad (4)',
  ]);
  t.deepEqual(warningsOf(['mode=active-backup', 'primary_reselect=better']), ['primary_reselect: has no effect without primary']);
  t.regex(warningsOf(['mode=balance-tlb', 'xmit_hash_policy=layer2+3'])[0] ?? '', /^xmit_hash_policy: has no effect in balance-tlb \(5\) with tlb_dynamic_lb=1/);
  t.deepEqual(warningsOf(['mode=balance-tlb', 'tlb_dynamic_lb=0', 'xmit_hash_policy=layer2+3']), []);
  // The warnings do not stop the options from being set.
  t.is(parseBondOptions(['mode=balance-rr', 'xmit_hash_policy=layer3+4']).xmit_hash_policy, 'layer3+4');
});

// ---------------------------------------------------------------------------------------------
// Link monitors

test('miimon and arp_interval exclude each other', (t) => {
  t.is(
    refused(t, ['miimon=100', 'arp_interval=1000', 'arp_ip_target=10.0.0.1']),
    'arp_interval: cannot be used with miimon=100: the ARP and MII monitors exclude each other; keep one (miimon: carrier, arp_interval with arp_ip_target: reachability)',
  );
  // An explicit miimon=0 beside the ARP monitor is fine.
  t.like(parseBondOptions(['miimon=0', 'arp_interval=1000', 'arp_ip_target=10.0.0.1']), { miimon: 0, arp_interval: 1000 });
  // arp_interval=0 beside miimon too.
  t.like(parseBondOptions(['miimon=50', 'arp_interval=0']), { miimon: 50, arp_interval: 0 });
});

test('arp_interval needs a target; arp_validate needs arp_interval; ARP options without the monitor warn', (t) => {
  t.is(refused(t, ['arp_interval=1000']), 'arp_interval: needs at least one arp_ip_target (up to 16 IPv4 addresses such as 10.0.0.1, separated by commas)');
  t.is(refused(t, ['arp_validate=all']), 'arp_validate: needs the ARP monitor: give arp_interval=<ms> with arp_ip_target, or leave arp_validate out');
  t.notThrows(() => parseBondOptions(['arp_validate=none']));
  t.deepEqual(warningsOf(['arp_ip_target=10.0.0.1', 'arp_missed_max=3', 'arp_all_targets=all']), [
    'arp_ip_target: has no effect without arp_interval (the ARP monitor is off)',
    'arp_all_targets: has no effect without arp_interval (the ARP monitor is off)',
    'arp_missed_max: has no effect without arp_interval (the ARP monitor is off)',
  ]);
  t.deepEqual(warningsOf(['arp_interval=500', 'arp_ip_target=10.0.0.1', 'arp_missed_max=3', 'arp_all_targets=all', 'arp_validate=active']), []);
});

test('beyond the driver: the ARP monitor is allowed in 802.3ad, balance-tlb and balance-alb', (t) => {
  for (const mode of ['802.3ad', 'balance-tlb', 'balance-alb', 'active-backup', 'balance-rr', 'balance-xor', 'broadcast']) {
    const words = [`mode=${mode}`, 'arp_interval=200', 'arp_ip_target=192.168.1.1,192.168.1.2', 'arp_validate=all', 'arp_all_targets=all', 'arp_missed_max=3'];
    const { options, warnings } = resolveBondOptions(words);
    t.like(options, { mode, miimon: 0, arp_interval: 200, arp_validate: 'all', arp_all_targets: 'all', arp_missed_max: 3 }, mode);
    t.deepEqual(options.arp_ip_target, ['192.168.1.1', '192.168.1.2']);
    t.deepEqual(warnings, [], mode);
  }
});

test('no link monitor at all is allowed with the driver\'s warning', (t) => {
  const { options, warnings } = resolveBondOptions(['mode=active-backup', 'miimon=0']);
  t.is(options.miimon, 0);
  t.deepEqual(warnings.map((w) => w.option), ['miimon']);
  t.deepEqual(warnings.map((w) => w.message), [
    'miimon: no link monitoring: with miimon=0 and no arp_interval a failed link is never detected; give miimon=100, or arp_interval with arp_ip_target',
  ]);
  t.deepEqual(warningsOf(['mode=active-backup']), []); // miimon=100 by default
});

test('updelay, downdelay and peer_notif_delay are rounded down to a multiple of miimon, with a warning', (t) => {
  const { options, warnings } = resolveBondOptions(['miimon=100', 'updelay=250', 'downdelay=199', 'peer_notif_delay=300']);
  t.like(options, { updelay: 200, downdelay: 100, peer_notif_delay: 300 });
  t.deepEqual(warnings.map((w) => w.option), ['updelay', 'downdelay']);
  t.deepEqual(warnings.map((w) => w.message), [
    'updelay: 250 is not a multiple of miimon (100); rounded down to 200 ms',
    'downdelay: 199 is not a multiple of miimon (100); rounded down to 100 ms',
  ]);
  // Against the default miimon too, and below one tick the delay is 0.
  t.like(parseBondOptions(['updelay=50']), { miimon: 100, updelay: 0 });
  t.like(parseBondOptions(['miimon=30', 'downdelay=100']), { downdelay: 90 });
});

test('a delay needs the MII monitor', (t) => {
  t.is(
    refused(t, ['arp_interval=1000', 'arp_ip_target=10.0.0.1', 'updelay=200']),
    'updelay: counts in MII monitor ticks, but miimon is 0 (the ARP monitor is on); leave updelay out or use the MII monitor',
  );
  t.is(refused(t, ['miimon=0', 'downdelay=200']), 'downdelay: counts in MII monitor ticks, but miimon is 0; leave downdelay out or use the MII monitor');
  t.regex(refused(t, ['miimon=0', 'peer_notif_delay=100']), /^peer_notif_delay: counts in MII monitor ticks/);
  // A zero delay asks for nothing and is accepted.
  t.notThrows(() => parseBondOptions(['arp_interval=1000', 'arp_ip_target=10.0.0.1', 'updelay=0']));
});

test('arp_ip_target lists add up across words, in order, and are written back as one list', (t) => {
  const o = parseBondOptions(['arp_interval=100', 'arp_ip_target=10.0.0.1,10.0.0.2', 'arp_ip_target=10.0.0.3']);
  t.deepEqual(o.arp_ip_target, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  t.is(bondOptionValue(o, 'arp_ip_target'), '10.0.0.1,10.0.0.2,10.0.0.3');
  const full = Array.from({ length: MAX_ARP_TARGETS }, (_, i) => `172.16.0.${i + 1}`);
  t.is(parseBondOptions(['arp_interval=100', `arp_ip_target=${full.join(',')}`]).arp_ip_target.length, 16);
});

test("ad_actor_system: all zeroes is the bond's own MAC; a MAC is kept in canonical form", (t) => {
  t.is(parseBondOptions(['mode=802.3ad', 'ad_actor_system=00:00:00:00:00:00']).ad_actor_system, undefined);
  t.is(parseBondOptions(['mode=802.3ad', 'ad_actor_system=02-AA-00-00-00-1']).ad_actor_system, '02:aa:00:00:00:01');
});

// ---------------------------------------------------------------------------------------------
// Round trip

const configurations: string[][] = [
  [],
  ['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4'],
  ['mode=4', 'lacp_rate=1', 'lacp_active=off', 'ad_select=count', 'ad_actor_sys_prio=100', 'ad_user_port_key=7', 'ad_actor_system=02:00:00:00:00:09', 'min_links=2', 'xmit_hash_policy=2'],
  ['mode=active-backup', 'miimon=50', 'updelay=200', 'downdelay=100', 'peer_notif_delay=50', 'primary=eth1', 'primary_reselect=failure', 'fail_over_mac=follow', 'num_unsol_na=3', 'resend_igmp=0', 'all_slaves_active=1'],
  ['mode=active-backup', 'arp_interval=250', 'arp_ip_target=10.0.0.1,10.0.0.254', 'arp_validate=filter_active', 'arp_all_targets=all', 'arp_missed_max=5'],
  ['mode=balance-rr', 'packets_per_slave=0', 'miimon=0'],
  ['mode=balance-tlb', 'tlb_dynamic_lb=0', 'xmit_hash_policy=layer3+4', 'lp_interval=10', 'primary=eth0'],
  ['mode=balance-alb', 'arp_interval=1000', 'arp_ip_target=10.1.1.1', 'miimon=0'],
  ['mode=broadcast', 'use_carrier=1', 'miimon=1000'],
  ['mode=balance-xor', 'miimon=100', 'updelay=450'],
];

for (const words of configurations) {
  test(`format gives words that parse back to the same options: ${words.join(' ') || '(defaults)'}`, (t) => {
    const o = parseBondOptions(words);
    const written = formatBondOptions(o);
    t.is(written[0], `mode=${o.mode}`);
    t.deepEqual(parseBondOptions(written), o);
    t.deepEqual(formatBondOptions(parseBondOptions(written)), written);
    t.deepEqual(resolveBondOptions(written).warnings.filter((w) => w.message.includes('rounded')), []);
  });
}

test('format writes the mode and only what differs from the defaults, in table order, with names not numbers', (t) => {
  t.deepEqual(formatBondOptions(defaultBondOptions()), ['mode=balance-rr']);
  t.deepEqual(formatBondOptions(parseBondOptions(['xmit_hash_policy=1', 'lacp_rate=1', 'miimon=100', 'mode=4'])), ['mode=802.3ad', 'xmit_hash_policy=layer3+4', 'lacp_rate=fast']);
  t.deepEqual(formatBondOptions(parseBondOptions(['mode=1', 'miimon=0'])), ['mode=active-backup', 'miimon=0']);
  t.deepEqual(formatBondOptions(parseBondOptions(['mode=1', 'arp_interval=100', 'arp_ip_target=10.0.0.1'])), ['mode=active-backup', 'arp_interval=100', 'arp_ip_target=10.0.0.1']);
  t.deepEqual(formatBondOptions(parseBondOptions(['all_slaves_active=on'])), ['mode=balance-rr', 'all_slaves_active=1']);
  t.deepEqual(formatBondOptions(parseBondOptions(['mode=4', 'lacp_active=0'])), ['mode=802.3ad', 'lacp_active=off']);
});

test('every value an option formats, its parser takes back', (t) => {
  for (const o of configurations.map((words) => parseBondOptions(words))) for (const name of BOND_OPTION_NAMES) {
    const v = o[name];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue; // defaults no word writes
    t.deepEqual(BOND_OPTIONS[name].parse(bondOptionValue(o, name), name), v, name);
  }
});

// ---------------------------------------------------------------------------------------------
// The status file

test('status lines are written as /proc/net/bonding/bondX writes them', (t) => {
  const ad = parseBondOptions(['mode=802.3ad', 'miimon=100', 'lacp_rate=fast', 'xmit_hash_policy=layer3+4', 'updelay=200']);
  const lines = BOND_OPTION_NAMES.map((n) => bondStatusLine(ad, n, { bondMac: '02:aa:00:00:00:01' })).filter((l) => l !== undefined);
  t.deepEqual(lines, [
    'Bonding Mode: IEEE 802.3ad Dynamic link aggregation',
    'MII Polling Interval (ms): 100',
    'Up Delay (ms): 200',
    'Down Delay (ms): 0',
    'Peer Notification Delay (ms): 0',
    'Transmit Hash Policy: layer3+4 (1)',
    'LACP rate: fast',
    'LACP active: on',
    'Aggregator selection policy (ad_select): stable',
    'System priority: 65535',
    'System MAC address: 02:aa:00:00:00:01',
    'Min links: 0',
  ]);
  const ab = parseBondOptions(['mode=active-backup', 'fail_over_mac=active', 'primary=eth0']);
  t.is(bondStatusLine(ab, 'mode'), 'Bonding Mode: fault-tolerance (active-backup) (fail_over_mac active)');
  t.is(bondStatusLine(ab, 'primary'), 'Primary Slave: eth0 (primary_reselect always)');
  t.is(bondStatusLine(parseBondOptions(['mode=1']), 'primary'), 'Primary Slave: None');
  t.is(bondStatusLine(ab, 'xmit_hash_policy'), undefined);
  t.is(bondStatusLine(ab, 'lacp_rate'), undefined);
  t.is(bondStatusLine(ab, 'arp_interval'), undefined);
  const arp = parseBondOptions(['mode=balance-xor', 'arp_interval=1000', 'arp_ip_target=10.0.0.1,10.0.0.2']);
  t.is(bondStatusLine(arp, 'mode'), 'Bonding Mode: load balancing (xor)');
  t.is(bondStatusLine(arp, 'xmit_hash_policy'), 'Transmit Hash Policy: layer2 (0)');
  t.is(bondStatusLine(arp, 'miimon'), 'MII Polling Interval (ms): 0');
  t.is(bondStatusLine(arp, 'arp_interval'), 'ARP Polling Interval (ms): 1000');
  t.is(bondStatusLine(arp, 'arp_missed_max'), 'ARP Missed Max: 2');
  t.is(bondStatusLine(arp, 'arp_ip_target'), 'ARP IP target/s (n.n.n.n form): 10.0.0.1, 10.0.0.2');
  t.is(bondStatusLine(arp, 'primary'), undefined);
  // tlb/alb show the hash policy only when they place flows by it.
  t.is(bondStatusLine(parseBondOptions(['mode=balance-tlb']), 'xmit_hash_policy'), undefined);
  t.is(bondStatusLine(parseBondOptions(['mode=balance-tlb', 'tlb_dynamic_lb=0']), 'xmit_hash_policy'), 'Transmit Hash Policy: layer2 (0)');
  // The 802.3ad system MAC needs the bond's MAC unless ad_actor_system is set.
  t.is(bondStatusLine(ad, 'ad_actor_system'), undefined);
  t.is(bondStatusLine(parseBondOptions(['mode=4', 'ad_actor_system=02:00:00:00:00:07']), 'ad_actor_system'), 'System MAC address: 02:00:00:00:00:07');
  const modes = BOND_MODES.map((m) => bondStatusLine(parseBondOptions([`mode=${m.name}`]), 'mode'));
  t.deepEqual(modes, [
    'Bonding Mode: load balancing (round-robin)',
    'Bonding Mode: fault-tolerance (active-backup)',
    'Bonding Mode: load balancing (xor)',
    'Bonding Mode: fault-tolerance (broadcast)',
    'Bonding Mode: IEEE 802.3ad Dynamic link aggregation',
    'Bonding Mode: transmit load balancing',
    'Bonding Mode: adaptive load balancing',
  ]);
});
