// How native port failures reach users: the errno -> LnlbError mapping (pure), and a few
// real calls that fail without any privilege.
import test from 'ava';
import { ErrorCodes, LnlbError } from '../../src/errors.js';
import * as port from '../../src/port/native.js';

interface Case {
  op: port.PortOp;
  errno: string;
  syscall: string;
  device?: string;
  code: keyof typeof ErrorCodes;
  message: string | RegExp;
}

const cases: Case[] = [
  { op: 'tapOpen', errno: 'EPERM', syscall: 'ioctl(TUNSETIFF)', device: 'nlb0', code: 'LNLB_ERR_PRIV_MISSING', message: 'EPERM: lnlbd needs CAP_NET_ADMIN to create tap nlb0' },
  { op: 'packetOpen', errno: 'EPERM', syscall: 'socket(AF_PACKET)', device: 'eth0', code: 'LNLB_ERR_PRIV_MISSING', message: 'EPERM: AF_PACKET socket on eth0 needs CAP_NET_RAW' },
  { op: 'ifSetMac', errno: 'EPERM', syscall: 'ioctl(SIOCSIFHWADDR)', device: 'nlb0', code: 'LNLB_ERR_PRIV_MISSING', message: /CAP_NET_ADMIN to set the MAC address of nlb0/ },
  { op: 'ifSetUp', errno: 'EACCES', syscall: 'ioctl(SIOCSIFFLAGS)', device: 'nlb0', code: 'LNLB_ERR_PRIV_MISSING', message: /^EACCES: lnlbd needs CAP_NET_ADMIN/ },
  { op: 'packetOpen', errno: 'ENODEV', syscall: 'ioctl(SIOCGIFINDEX)', device: 'eth7', code: 'LNLB_ERR_DEV_NOT_FOUND', message: 'no such device eth7' },
  { op: 'ifInfo', errno: 'ENODEV', syscall: 'netlink(RTM_GETLINK)', device: 'eth7', code: 'LNLB_ERR_DEV_NOT_FOUND', message: 'no such device eth7' },
  { op: 'tapOpen', errno: 'EACCES', syscall: 'open(/dev/net/tun)', device: 'nlb0', code: 'LNLB_ERR_PRIV_MISSING', message: 'EACCES: lnlbd needs CAP_NET_ADMIN to create tap nlb0 (and read-write access to /dev/net/tun)' },
  { op: 'tapOpen', errno: 'ENOENT', syscall: 'open(/dev/net/tun)', device: 'nlb0', code: 'LNLB_ERR_DEV_SETUP', message: '/dev/net/tun missing: load the tun module (modprobe tun)' },
  { op: 'tapOpen', errno: 'ENODEV', syscall: 'open(/dev/net/tun)', device: 'nlb0', code: 'LNLB_ERR_DEV_SETUP', message: '/dev/net/tun missing: load the tun module (modprobe tun)' },
  { op: 'tapOpen', errno: 'EBUSY', syscall: 'ioctl(TUNSETIFF)', device: 'nlb0', code: 'LNLB_ERR_DEV_SETUP', message: /^device nlb0 exists already \(EBUSY\)/ },
  { op: 'tapOpen', errno: 'EINVAL', syscall: 'ioctl(TUNSETIFF)', device: 'eth0', code: 'LNLB_ERR_DEV_SETUP', message: /^device eth0 exists already and is not a TAP/ },
  { op: 'tapOpen', errno: 'ENAMETOOLONG', syscall: 'check(ifname)', device: 'a-very-long-name-20c', code: 'LNLB_ERR_DEV_SETUP', message: /is 20 bytes, Linux allows at most 15/ },
  { op: 'ringRead', errno: 'ENETDOWN', syscall: 'poll(POLLERR)', code: 'LNLB_ERR_PORT_IO', message: /ENETDOWN.*bring it up/ },
  { op: 'ringOpen', errno: 'ENOMEM', syscall: 'setsockopt(PACKET_RX_RING)', code: 'LNLB_ERR_PORT_IO', message: /lower blockCount or blockSize/ },
  { op: 'packetOpen', errno: 'EMFILE', syscall: 'socket(AF_PACKET)', device: 'eth0', code: 'LNLB_ERR_PORT_IO', message: /ulimit -n/ },
  { op: 'packetOpen', errno: 'EINVAL', syscall: 'setsockopt(SO_ATTACH_FILTER)', device: 'eth0', code: 'LNLB_ERR_PORT_IO', message: /rejected the BPF filter for eth0/ },
  { op: 'send', errno: 'EMSGSIZE', syscall: 'write', code: 'LNLB_ERR_PORT_IO', message: /larger than the device MTU/ },
  { op: 'netnsEnter', errno: 'EPERM', syscall: 'setns(CLONE_NEWNET)', device: '/run/netns/x', code: 'LNLB_ERR_PRIV_MISSING', message: /needs CAP_SYS_ADMIN/ },
  { op: 'ifSetIPv4', errno: 'EADDRNOTAVAIL', syscall: 'ioctl(SIOCSIFADDR)', device: 'nlb0', code: 'LNLB_ERR_DEV_SETUP', message: /^ifSetIPv4 failed: / },
  { op: 'writeBatch', errno: 'EFAULT', syscall: 'write', code: 'LNLB_ERR_PORT_IO', message: /^writeBatch failed: / },
  { op: 'flock', errno: 'ENOLCK', syscall: 'flock', code: 'LNLB_ERR_PORT_IO', message: /^flock failed \(ENOLCK\): the kernel is out of lock records/ },
];

for (const c of cases) {
  test(`${c.op} ${c.errno} in ${c.syscall} -> ${c.code}`, (t) => {
    const cause = new Error('native');
    const err = port.toPortError(c.op, { errno: c.errno, syscall: c.syscall, device: c.device }, cause);
    t.true(err instanceof LnlbError);
    t.is(err.code, c.code);
    t.is(err.errno, c.errno);
    t.is(err.cause, cause, 'the native error stays attached for logs');
    if (typeof c.message === 'string') t.is(err.message, c.message);
    else t.regex(err.message, c.message);
  });
}

test('every mapped code is a documented one', (t) => {
  for (const c of cases) t.true(c.code in ErrorCodes);
});

test('ifInfo of a missing device throws LNLB_ERR_DEV_NOT_FOUND without needing privilege', (t) => {
  const err = t.throws(() => port.ifInfo('nosuchdev0'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_DEV_NOT_FOUND');
  t.is(err?.errno, 'ENODEV');
  t.is(err?.message, 'no such device nosuchdev0');
  const cause = err?.cause as { syscall?: string } | undefined;
  t.is(cause?.syscall, 'netlink(RTM_GETLINK)');
});

test('ifInfo of lo works unprivileged', (t) => {
  const lo = port.ifInfo('lo');
  t.true(lo.index > 0);
  t.true(lo.up);
  t.is(lo.mac.length, 6);
});

test('I/O on a closed fd is LNLB_ERR_PORT_IO; reading a ring that was never opened says so', (t) => {
  const buf = new Uint8Array(64);
  const write = t.throws(() => port.send(1_000_000, buf, 0, 60), { instanceOf: LnlbError });
  t.is(write?.code, 'LNLB_ERR_PORT_IO');
  t.is(write?.errno, 'EBADF');
  const read = t.throws(() => port.ringRead(1_000_000, buf, 0, 64, new Uint32Array(4), 1, 0), { instanceOf: LnlbError });
  t.is(read?.code, 'LNLB_ERR_PORT_IO');
  t.is(read?.errno, 'EBADFD');
  t.regex(read?.message ?? '', /has no receive ring \(EBADFD\): call ringOpen first/);
});

test('argument mistakes stay TypeError/RangeError, not LnlbError', (t) => {
  t.throws(() => port.send(0, new Uint8Array(10), 5, 10), { instanceOf: RangeError });
  t.throws(() => port.ringRead(0, new Uint16Array(4) as unknown as Uint8Array, 0, 4, new Uint32Array(4), 1, 0), { instanceOf: TypeError });
});

test('a missing addon file says how to build it', (t) => {
  const err = t.throws(() => port.loadAddonFrom('/nonexistent/build/Release/lnlb_port.node'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_PORT_ADDON');
  t.regex(err?.message ?? '', /run npm ci \(it builds the addon\)/);
});

test('the addon is found from the compiled module location', (t) => {
  t.regex(port.addonPath(), /build\/Release\/lnlb_port\.node$/);
  t.true(port.addonAvailable());
});
