import test from 'ava';
import { ipv4Sysctl, ipv6Sysctl, isSysctlValue, parseDottedSysctlKey, parseSysctlKey, sysctlKeyText, sysctlPath } from '../../../src/main/sysctl-keys.js';
import { deviceNameProblem, isDeviceName } from '../../../src/main/device-name.js';

test('a VLAN device (eth0.100) gets the path with its dot kept: /proc/sys/net/ipv4/conf/eth0.100/arp_ignore', (t) => {
  const key = ipv4Sysctl('eth0.100', 'arp_ignore');
  t.is(sysctlPath(key), '/proc/sys/net/ipv4/conf/eth0.100/arp_ignore');
  t.is(sysctlKeyText(key), 'net/ipv4/conf/eth0.100/arp_ignore');
  t.deepEqual(parseSysctlKey(sysctlKeyText(key)), key, 'the saved form reads back as the same key');
  t.is(sysctlPath(ipv6Sysctl('bond0.7', 'disable_ipv6')), '/proc/sys/net/ipv6/conf/bond0.7/disable_ipv6');
});

test('the dotted form older lnlb saved is read with the device between the prefix and the last dot', (t) => {
  t.deepEqual(parseDottedSysctlKey('net.ipv4.conf.eth0.100.arp_announce'), ipv4Sysctl('eth0.100', 'arp_announce'));
  t.deepEqual(parseDottedSysctlKey('net.ipv6.conf.eth1.disable_ipv6'), ipv6Sysctl('eth1', 'disable_ipv6'));
});

test('only the sysctls lnlb sets are keys: a planted kernel.core_pattern, other net keys and path tricks are refused', (t) => {
  for (const text of ['kernel.core_pattern', 'net.ipv4.ip_forward', 'net.ipv4.conf.eth0.forwarding', 'net.ipv6.conf.eth0.arp_ignore', 'net.ipv4.conf..arp_ignore', 'net.ipv4.conf.a b.arp_ignore']) {
    t.is(parseDottedSysctlKey(text), undefined, text);
  }
  for (const text of ['kernel/core_pattern', 'net/ipv4/conf/../../../kernel/core_pattern', 'net/ipv4/conf/../arp_ignore', 'net/ipv4/conf/eth0/forwarding', 'net/ipv4/conf/all/../eth0/arp_ignore', 'net/ipv4/conf/thisnameistoolong/rp_filter']) {
    t.is(parseSysctlKey(text), undefined, text);
  }
});

test('saved values must be small integers', (t) => {
  for (const v of ['0', '1', '8', '255']) t.true(isSysctlValue(v), v);
  for (const v of ['', '-1', '01', '1000', '|/tmp/x', '1\n', 1, null]) t.false(isSysctlValue(v), String(v));
});

test('device names: 1 to 15 bytes, dots allowed, no slash, colon, space or control character', (t) => {
  for (const n of ['eth0', 'eth0.100', 'bønd0123456789', 'veth-a_b@x']) t.true(isDeviceName(n), n);
  for (const n of ['', '.', '..', 'a/b', 'a:b', 'a b', 'a\nb', 'a\x01', 'sixteen-bytes-xx']) t.false(isDeviceName(n), JSON.stringify(n));
  t.regex(deviceNameProblem('a\x7f') ?? '', /control characters/);
});
