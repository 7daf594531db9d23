// The native HMAC-SHA256 the daemon authenticates control messages with (port.hmacSha256)
// computes what node:crypto does, for every key and message length (block boundaries, keys
// longer than a block), and the RFC 4231 vectors; authenticators using either open each
// other's messages.
import test from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import { AuthVerdict, ControlAuthenticator, nodeCryptoHmacSha256 } from '../../../src/net/auth.js';
import { encodeMessage, MessageType } from '../../../src/net/cluster-message.js';
import { hmacSha256, hmacSha256Implementation } from '../../../src/port/native.js';

test.serial('RFC 4231 test cases 2, 3 and 6 (a key longer than the block)', (t) => {
  const cases: { key: Buffer; data: Buffer; hex: string }[] = [
    { key: Buffer.alloc(20, 0xaa), data: Buffer.alloc(50, 0xdd), hex: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe' },
    { key: Buffer.from('Jefe'), data: Buffer.from('what do ya want for nothing?'), hex: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
    { key: Buffer.alloc(131, 0xaa), data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'), hex: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' },
  ];
  for (const c of cases) {
    // The function's message is dst(6) · src(6) · frame: split the vector's data that way.
    const out = new Uint8Array(32);
    hmacSha256(c.key)(c.data, 12, c.data.length, c.data.subarray(6, 12), c.data.subarray(0, 6), out);
    t.is(Buffer.from(out).toString('hex'), c.hex);
  }
});

/** Every key and message length against node:crypto, with the compression `impl` runs. */
function matchesNodeCrypto(t: import('ava').ExecutionContext, impl: string): void {
  for (const keyLength of [16, 32, 63, 64, 65, 200]) {
    const key = randomBytes(keyLength);
    const native = hmacSha256(key);
    const reference = nodeCryptoHmacSha256(key);
    const dst = randomBytes(6);
    const src = randomBytes(6);
    const frame = randomBytes(320);
    for (let len = 0; len <= 300; len++) {
      const from = len % 7;
      const a = new Uint8Array(16);
      const b = new Uint8Array(16);
      native(frame, from, from + len, src, dst, a);
      reference(frame, from, from + len, src, dst, b);
      if (Buffer.compare(a, b) !== 0) t.fail(`${impl}: key ${keyLength} bytes, message ${len} bytes: ${Buffer.from(a).toString('hex')} vs ${Buffer.from(b).toString('hex')}`);
    }
    const whole = new Uint8Array(32);
    native(frame, 0, 100, src, dst, whole);
    t.is(Buffer.from(whole).toString('hex'), createHmac('sha256', key).update(dst).update(src).update(frame.subarray(0, 100)).digest('hex'), `${impl}: key ${keyLength} bytes, all 32 bytes`);
  }
}

test.serial('the same tag as node:crypto for random keys and every message length from 0 to 300 bytes, with the CPU\'s SHA extensions where it has them and with the portable compression', (t) => {
  const auto = hmacSha256Implementation('auto');
  t.log(`this CPU: ${auto}`);
  try {
    matchesNodeCrypto(t, auto);
    t.is(hmacSha256Implementation('portable'), 'portable');
    matchesNodeCrypto(t, 'portable');
  } finally {
    hmacSha256Implementation('auto');
  }
});

test('a bad range is a RangeError, never a read outside the frame', (t) => {
  const mac = hmacSha256(randomBytes(32));
  const six = new Uint8Array(6);
  t.throws(() => mac(new Uint8Array(10), 5, 11, six, six, new Uint8Array(16)), { instanceOf: RangeError });
  t.throws(() => mac(new Uint8Array(10), 6, 5, six, six, new Uint8Array(16)), { instanceOf: RangeError });
  t.throws(() => mac(new Uint8Array(10), 0, 10, new Uint8Array(5), six, new Uint8Array(16)), { instanceOf: RangeError });
});

test('an authenticator with the native MAC and one with node:crypto open each other\'s messages, and refuse a changed byte', (t) => {
  const key = randomBytes(32);
  const now = (): number => 1_700_000_000_000;
  const native = new ControlAuthenticator(key, now, { macFactory: hmacSha256 });
  const plain = new ControlAuthenticator(key, now);
  const src = new Uint8Array([2, 0, 0, 0, 0, 1]);
  const dst = new Uint8Array([2, 0, 10, 0, 0, 100]);
  for (const [tx, rx] of [[native, plain], [plain, native]] as const) {
    const frame = new Uint8Array(200);
    const len = encodeMessage(frame, 0, { clusterIp: 0x0a000064, type: MessageType.HEARTBEAT, flags: 0, messageId: 7, data: randomBytes(40) });
    const sealed = tx.seal(frame, 0, len, src, dst);
    t.is(rx.open(frame, 0, sealed, src, dst), AuthVerdict.OK);
    const again = new Uint8Array(200);
    const len2 = encodeMessage(again, 0, { clusterIp: 0x0a000064, type: MessageType.HEARTBEAT, flags: 0, messageId: 8, data: randomBytes(40) });
    const sealed2 = tx.seal(again, 0, len2, src, dst);
    again[30] = again[30]! ^ 1;
    t.is(rx.open(again, 0, sealed2, src, dst), AuthVerdict.BAD_MAC);
  }
});
