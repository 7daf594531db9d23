import test from 'ava';
import { formatIPv4, ipv4Checksum, parseIPv4 } from '../../../src/net/ipv4.js';
import { formatIPv6, parseIPv6 } from '../../../src/net/ipv6.js';
import { buildIgmpv3Report, buildMldv2Report, MAX_REPORT_GROUPS, parseProcIgmp, parseProcIgmp6 } from '../../../src/net/igmp.js';
import { icmpv6Checksum } from '../../../src/net/ndp.js';
import { parseMac } from '../../../src/net/ethernet.js';

const PROC_IGMP = [
  'Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter',
  '1\tlo        :     1      V3',
  '\t\t\t\t010000E0     1 0:00000000\t\t0',
  '7\tbond0     :     3      V3',
  '\t\t\t\t0A0101EF     1 0:00000000\t\t0',
  '\t\t\t\t050000E0     1 0:00000000\t\t0',
  '\t\t\t\t010000E0     1 0:00000000\t\t0',
  '8\tbond1     :     1      V3',
  '\t\t\t\t0B0101EF     1 0:00000000\t\t0',
  '',
].join('\n');

const PROC_IGMP6 = [
  '1    lo              ff020000000000000000000000000001     1 0000000C 0',
  '7    bond0           ff020000000000000000000000000001     1 0000000C 0',
  '7    bond0           ff020000000000000000000000000002     1 00000004 0',
  '7    bond0           ff150000000000000000000000001234     1 00000004 0',
  '8    bond1           ff020000000000000000000000000002     1 00000004 0',
  '',
].join('\n');

test("the bond's groups from /proc/net/igmp and igmp6, the all-hosts groups left out", (t) => {
  t.deepEqual(parseProcIgmp(PROC_IGMP, 'bond0').map(formatIPv4), ['239.1.1.10', '224.0.0.5']);
  t.deepEqual(parseProcIgmp(PROC_IGMP, 'eth9'), []);
  t.deepEqual(parseProcIgmp6(PROC_IGMP6, 'bond0').map(formatIPv6), ['ff02::2', 'ff15::1234']);
});

test('an IGMPv3 report: to 224.0.0.22 with Router Alert and TTL 1, one CHANGE_TO_EXCLUDE record per group, checksums valid', (t) => {
  const buf = new Uint8Array(2000);
  const groups = [parseIPv4('239.1.1.10'), parseIPv4('224.0.0.5')];
  const length = buildIgmpv3Report(buf, 0, { ethSrc: parseMac('02:00:00:00:00:aa'), ipSrc: parseIPv4('10.9.0.1'), groups });
  t.is(length, 14 + 24 + 8 + 16);
  t.deepEqual([...buf.subarray(0, 6)], [0x01, 0x00, 0x5e, 0x00, 0x00, 0x16]);
  t.is(buf[14], 0x46);
  t.is(buf[22], 1, 'TTL 1');
  t.deepEqual([...buf.subarray(34, 38)], [0x94, 0x04, 0, 0], 'Router Alert');
  t.is(ipv4Checksum(buf, 14, 24), 0, 'IP checksum');
  t.is(buf[38], 0x22);
  t.is(ipv4Checksum(buf, 38, 8 + 16), 0, 'IGMP checksum');
  t.is((buf[44]! << 8) | buf[45]!, 2);
  t.deepEqual([buf[46], [...buf.subarray(50, 54)].join('.')], [4, '239.1.1.10']);
  const many = buildIgmpv3Report(buf, 0, { ethSrc: parseMac('02:00:00:00:00:aa'), ipSrc: 0, groups: Array.from({ length: 100 }, (_, i) => 0xef000000 + i) });
  t.is(many, 14 + 24 + 8 + 8 * MAX_REPORT_GROUPS, 'bounded');
});

test('an MLDv2 report: to ff02::16 from the link-local address, hop limit 1, Router Alert, one record per group, checksum valid', (t) => {
  const buf = new Uint8Array(2000);
  const src = parseIPv6('fe80::1');
  const length = buildMldv2Report(buf, 0, { ethSrc: parseMac('02:00:00:00:00:aa'), ipSrc: src, groups: [parseIPv6('ff15::1234')] });
  t.is(length, 14 + 40 + 8 + 8 + 20);
  t.deepEqual([...buf.subarray(0, 6)], [0x33, 0x33, 0, 0, 0, 0x16]);
  t.is(buf[20], 0, 'a Hop-by-Hop header first');
  t.is(buf[21], 1, 'hop limit 1');
  t.is(formatIPv6(buf.subarray(38, 54)), 'ff02::16');
  t.deepEqual([...buf.subarray(54, 62)], [58, 0, 5, 2, 0, 0, 1, 0]);
  t.is(buf[62], 143);
  t.is(icmpv6Checksum(buf, 14, 62, 8 + 20), 0);
  t.is(formatIPv6(buf.subarray(62 + 12, 62 + 28)), 'ff15::1234');
});
