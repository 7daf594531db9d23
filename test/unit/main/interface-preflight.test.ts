// What a cluster interface refuses before it touches the host: a device that cannot carry a
// cluster (the loopback, a tunnel, no MAC) and a VIP the host owns already, each naming the
// flag the way the caller spells it.
import test from 'ava';
import { parseClusterVip } from '../../../src/net/vip.js';
import { ARPHRD_ETHER, type HostAddress } from '../../../src/port/native.js';
import { ADDIF_BINDING_NAMES, boundDeviceProblem, handlerSetups, hostAddressHolding, LNLBD_BINDING_NAMES } from '../../../src/main/interface-preflight.js';
import { resolveDaemonOptions } from '../../../src/main/options.js';

const ethernet = { type: ARPHRD_ETHER, loopback: false, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56) };

test('--bind lo, a tunnel, a device without a MAC: refused naming the flag; an Ethernet device passes', (t) => {
  t.is(boundDeviceProblem('eth0', ethernet, '--bind'), undefined);
  t.is(
    boundDeviceProblem('lo', { type: 772, loopback: true, mac: new Uint8Array(6) }, LNLBD_BINDING_NAMES.bind),
    '--bind lo: lo is the loopback device: no other host can reach a cluster on it, and its MAC is 00:00:00:00:00:00; bind the device on the LAN where the clients and the other nodes are (e.g. eth0, a bond, a VLAN device)',
  );
  t.regex(boundDeviceProblem('lo', { type: 772, loopback: true, mac: new Uint8Array(6) }, ADDIF_BINDING_NAMES.bind) ?? '', /^<dev> lo: lo is the loopback device/);
  t.regex(boundDeviceProblem('wg0', { type: 65534, loopback: false, mac: new Uint8Array(6) }, '--bind') ?? '', /^--bind wg0: wg0 is not an Ethernet device \(link type 65534\)/);
  t.regex(boundDeviceProblem('odd0', { ...ethernet, mac: new Uint8Array(6) }, '--bind') ?? '', /^--bind odd0: odd0 has no MAC address \(00:00:00:00:00:00\)/);
});

const v4 = (text: string): HostAddress => ({ device: 'eth0', family: 4, address: Uint8Array.from(text.split('.').map(Number)) });

test('a VIP the host owns on any device is found, with the device; another address is not', (t) => {
  const addresses: HostAddress[] = [
    { ...v4('127.0.0.1'), device: 'lo' },
    v4('10.0.0.1'),
    { device: 'eth1', family: 6, address: Uint8Array.of(0xfd, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00) },
    { ...v4('10.0.0.200'), device: 'dummy0' },
  ];
  t.is(hostAddressHolding(parseClusterVip('10.0.0.100'), addresses), undefined);
  t.deepEqual(hostAddressHolding(parseClusterVip('10.0.0.1'), addresses), { address: '10.0.0.1', device: 'eth0' });
  t.deepEqual(hostAddressHolding(parseClusterVip('10.0.0.200'), addresses), { address: '10.0.0.200', device: 'dummy0' });
  t.deepEqual(hostAddressHolding(parseClusterVip('10.0.0.100,fd00:10::100'), addresses), { address: 'fd00:10::100', device: 'eth1' }, 'either family of a dual-stack VIP');
  t.is(hostAddressHolding(parseClusterVip('fd00:10::101'), addresses), undefined);
});

test('each handler with its idle timeout: tcp and udp their own flags, the rest --idle-timeout', (t) => {
  const o = resolveDaemonOptions({ handler: 'tcp=tcp\u0000udp=udp', idleTimeout: '60', tcpIdleTimeout: '70', udpIdleTimeout: '80' });
  const byModule = Object.fromEntries(handlerSetups(o).map((s) => [s.spec.module, s.idleTimeoutSeconds]));
  t.like(byModule, { 'builtin:tcp': 70, 'builtin:udp': 80 });
  t.true(Object.values(byModule).includes(60), 'the default handler');
});
