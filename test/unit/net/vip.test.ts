import test from 'ava';
import { formatMac } from '../../../src/net/ethernet.js';
import { formatIPv6 } from '../../../src/net/ipv6.js';
import { CLUSTER_MAC_FORMS, clusterMacFor, mldGroupFor, parseClusterVip, sharedAddress, tapMacFor } from '../../../src/net/vip.js';

test('an IPv4 VIP, an IPv6 VIP, or one of each in either order; the text is canonical', (t) => {
  const v4 = parseClusterVip('10.0.0.100');
  t.like(v4, { text: '10.0.0.100', v4: 0x0a000064, v6: undefined, id: 0x0a000064 });
  const v6 = parseClusterVip('FD00:10:0:0::0100');
  t.is(v6.text, 'fd00:10::100');
  t.is(v6.v4, 0);
  t.is(formatIPv6(v6.v6!), 'fd00:10::100');
  t.is(v6.id, 0x00000100, 'an IPv6 VIP alone: its last 32 bits name the cluster');
  const dual = parseClusterVip(' fd00:10::100 , 10.0.0.100 ');
  t.is(dual.text, '10.0.0.100,fd00:10::100');
  t.is(dual.id, 0x0a000064, 'dual stack: the IPv4 VIP names the cluster');
});

test('refused with what is wrong: two of a family, three addresses, addresses no client sends to, a bad address', (t) => {
  const refused: [string, RegExp][] = [
    ['', /expected a cluster IP/],
    ['10.0.0.1,10.0.0.2', /two IPv4/],
    ['fd00::1,fd00::2', /two IPv6/],
    ['10.0.0.1,fd00::1,10.0.0.2', /at most two/],
    ['224.0.0.5', /cannot be a cluster IP/],
    ['127.0.0.1', /cannot be a cluster IP/],
    ['0.1.2.3', /cannot be a cluster IP/],
    ['::', /cannot be a cluster IP/],
    ['::1', /cannot be a cluster IP/],
    ['ff02::1', /cannot be a cluster IP/],
    ['fe80::1', /cannot be a cluster IP/],
    ['::ffff:10.0.0.1', /cannot be a cluster IP/],
    ['fd00:10::', /last 32 bits/],
    ['10.0.0.300', /invalid IPv4 address/],
    ['fd00::g', /invalid IPv6 address/],
  ];
  for (const [text, message] of refused) t.throws(() => parseClusterVip(text), { instanceOf: RangeError, message }, text);
});

test('the cluster MAC: 02:00 and the identity in unicast mode; multicast: the IPv4 form, or 33:33:7f:fe:c:d for an IPv6 VIP alone', (t) => {
  const v4 = parseClusterVip('10.0.0.100');
  t.is(formatMac(tapMacFor(v4)), '02:00:0a:00:00:64');
  t.is(formatMac(clusterMacFor(v4, 'unicast')), '02:00:0a:00:00:64');
  t.is(formatMac(clusterMacFor(v4, 'multicast')), '01:00:5e:7f:0a:00');
  const v6 = parseClusterVip('2001:db8::c0a8:164');
  t.is(formatMac(tapMacFor(v6)), '02:00:c0:a8:01:64');
  t.is(formatMac(clusterMacFor(v6, 'multicast')), '33:33:7f:fe:01:64');
  t.is(formatIPv6(mldGroupFor(v6)), 'ff15::7ffe:164', 'the group whose MAC it is');
  const dual = parseClusterVip('10.0.0.100,2001:db8::c0a8:164');
  t.is(formatMac(clusterMacFor(dual, 'unicast')), '02:00:0a:00:00:64');
  t.is(formatMac(clusterMacFor(dual, 'multicast')), '01:00:5e:7f:0a:00', 'one MAC for both families: the IPv4 form');
});

/** A MAC form of the help (`01:00:5e:7f:a:b`) with a, b, c, d replaced by the identity's bytes, in formatMac's spelling. */
function fillForm(form: string, id: number): string {
  const bytes: Record<string, number> = { a: id >>> 24, b: (id >>> 16) & 0xff, c: (id >>> 8) & 0xff, d: id & 0xff };
  return form
    .split(':')
    .map((part) => (bytes[part] === undefined ? part : bytes[part].toString(16).padStart(2, '0')))
    .join(':');
}

test('the MAC forms lnlbd --help and the README give (CLUSTER_MAC_FORMS) are what clusterMacFor derives', (t) => {
  for (const text of ['10.0.0.100', '192.168.250.77', '172.31.1.2,fd00::1']) {
    const vip = parseClusterVip(text);
    t.is(fillForm(CLUSTER_MAC_FORMS.unicast, vip.id), formatMac(clusterMacFor(vip, 'unicast')), text);
    t.is(fillForm(CLUSTER_MAC_FORMS.multicast, vip.id), formatMac(clusterMacFor(vip, 'multicast')), text);
  }
  const v6 = parseClusterVip('2001:db8::c0a8:1fe');
  t.is(fillForm(CLUSTER_MAC_FORMS.multicastIPv6, v6.id), formatMac(clusterMacFor(v6, 'multicast')));
  t.is(fillForm(CLUSTER_MAC_FORMS.multicast, parseClusterVip('192.168.250.77').id), '01:00:5e:7f:c0:a8', 'the first two octets, not the last');
});

test('one interface per cluster IP: a shared address of either family, or a shared identity, is named', (t) => {
  const a = parseClusterVip('10.0.0.100,fd00::100');
  t.is(sharedAddress(a, parseClusterVip('10.0.0.100')), '10.0.0.100');
  t.is(sharedAddress(a, parseClusterVip('fd00::100')), 'fd00::100');
  t.is(sharedAddress(parseClusterVip('fd00::a00:64'), parseClusterVip('10.0.0.100')), 'the cluster identity 10.0.0.100');
  t.is(sharedAddress(a, parseClusterVip('10.0.0.101,fd00::101')), undefined);
});
