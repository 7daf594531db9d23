import test from 'ava';
import {
  BROADCAST_MAC,
  ETH_HLEN,
  ETH_P_LNLB,
  clusterMacMulticast,
  clusterMacUnicast,
  formatMac,
  isBroadcastMac,
  isMulticastMac,
  macEquals,
  macFromNumber,
  macToNumber,
  parseMac,
  readEtherType,
  writeEthernetHeader,
} from '../../../src/net/ethernet.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';

test('parseMac reads the usual spellings', (t) => {
  const cases: Array<[string, number[]]> = [
    ['02:00:0a:00:00:64', [2, 0, 10, 0, 0, 100]],
    ['02-00-0A-00-00-64', [2, 0, 10, 0, 0, 100]],
    ['02:00:a:0:0:64', [2, 0, 10, 0, 0, 100]], // LNLB's own short form
    ['FF:ff:Ff:fF:ff:ff', [255, 255, 255, 255, 255, 255]],
  ];
  for (const [s, bytes] of cases) t.deepEqual([...parseMac(s)], bytes, s);
});

test('parseMac rejects bad input with a message naming it', (t) => {
  for (const s of ['', '02:00:0a:00:00', '02:00:0a:00:00:64:01', '02:00:0g:00:00:64', '02:00:0a0:00:00:64', '02::0a:00:00:64', '02:00:0a-00-00:64', ' 02:00:0a:00:00:64']) {
    const err = t.throws(() => parseMac(s), { instanceOf: RangeError }, JSON.stringify(s));
    t.true(err?.message.includes(`'${s}'`), err?.message);
  }
});

test('formatMac is lower case with two digits, honours the offset, and round-trips', (t) => {
  const buf = new Uint8Array([9, 9, 0x02, 0x00, 0x0a, 0xab, 0xcd, 0x0f]);
  t.is(formatMac(buf, 2), '02:00:0a:ab:cd:0f');
  t.is(formatMac(parseMac('AA:BB:CC:DD:EE:FF')), 'aa:bb:cc:dd:ee:ff');
});

test('macEquals compares six bytes at the offsets', (t) => {
  const a = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
  const b = new Uint8Array([1, 2, 3, 4, 5, 6]);
  t.true(macEquals(a, 1, b, 0));
  t.false(macEquals(a, 0, b, 0));
  b[5] = 7;
  t.false(macEquals(a, 1, b, 0));
});

test('macToNumber orders like the bytes and round-trips through macFromNumber', (t) => {
  const macs = ['00:00:00:00:00:01', '00:00:00:00:01:00', '02:00:0a:00:00:64', '7f:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:fe', 'ff:ff:ff:ff:ff:ff'];
  const nums = macs.map((m) => macToNumber(parseMac(m)));
  for (let i = 1; i < nums.length; i++) t.true(nums[i - 1]! < nums[i]!, macs[i]);
  t.is(nums[nums.length - 1], 2 ** 48 - 1);
  for (const m of macs) t.is(formatMac(macFromNumber(macToNumber(parseMac(m)))), m);
});

test('cluster MACs are derived from the VIP like LNLB', (t) => {
  const vip = parseIPv4('10.0.0.100');
  t.is(formatMac(clusterMacUnicast(vip)), '02:00:0a:00:00:64');
  t.is(formatMac(clusterMacMulticast(vip)), '01:00:5e:7f:0a:00');
  t.is(formatMac(clusterMacUnicast(parseIPv4('192.168.255.1'))), '02:00:c0:a8:ff:01');
  t.is(formatMac(clusterMacMulticast(parseIPv4('192.168.255.1'))), '01:00:5e:7f:c0:a8');
  t.false(isMulticastMac(clusterMacUnicast(vip)));
  t.true(isMulticastMac(clusterMacMulticast(vip)));
  t.true(isBroadcastMac(BROADCAST_MAC));
  t.false(isBroadcastMac(clusterMacUnicast(vip)));
});

test('writeEthernetHeader writes dst, src, type and returns the payload offset', (t) => {
  const buf = new Uint8Array(20);
  const dst = parseMac('02:00:0a:00:00:64');
  const src = parseMac('52:54:00:12:34:56');
  t.is(writeEthernetHeader(buf, 2, dst, src, ETH_P_LNLB), 2 + ETH_HLEN);
  t.deepEqual([...buf.subarray(2, 16)], [2, 0, 10, 0, 0, 100, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x88, 0xb5]);
  t.is(readEtherType(buf, 2), ETH_P_LNLB);
  t.throws(() => writeEthernetHeader(buf, 7, dst, src, ETH_P_LNLB), { instanceOf: RangeError });
});
