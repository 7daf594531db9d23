import test from 'ava';
import {
  decodeIdentity,
  defaultNodeName,
  encodeIdentity,
  IDENTITY_MARK,
  IDENTITY_MAX_BYTES,
  IdentityResult,
  isNodeName,
  NODE_NAME_MAX,
  type DecodedIdentity,
} from '../../../src/net/cluster-message.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { prng } from '../shm/fixtures/prng.js';

const fresh = (): DecodedIdentity => ({ name: '', address: 0 });

test('the identity block has the documented layout and round-trips', (t) => {
  const buf = new Uint8Array(IDENTITY_MAX_BYTES + 4);
  const n = encodeIdentity(buf, 2, 'web-1.lan', parseIPv4('10.0.0.21'));
  t.is(n, 7 + 9);
  t.deepEqual([...buf.subarray(2, 9)], [IDENTITY_MARK, 5 + 9, 10, 0, 0, 21, 9]);
  t.is(new TextDecoder().decode(buf.subarray(9, 18)), 'web-1.lan');
  const out = fresh();
  t.is(decodeIdentity(buf, 2, 2 + n, out), IdentityResult.OK);
  t.deepEqual(out, { name: 'web-1.lan', address: parseIPv4('10.0.0.21') });
});

test('no block (an LNLB node, an earlier lnlb): ABSENT, the target untouched', (t) => {
  const out = { name: 'kept', address: 7 };
  t.is(decodeIdentity(new Uint8Array(0), 0, 0, out), IdentityResult.ABSENT);
  t.is(decodeIdentity(Uint8Array.of(0x52, 1, 2, 3), 0, 4, out), IdentityResult.ABSENT, 'another block');
  t.is(decodeIdentity(Uint8Array.of(IDENTITY_MARK), 0, 1, out), IdentityResult.ABSENT, 'nothing after the mark');
  t.deepEqual(out, { name: 'kept', address: 7 });
});

test('a later version may append fields after the name: they are skipped', (t) => {
  const buf = new Uint8Array(40);
  const n = encodeIdentity(buf, 0, 'a', 0);
  buf[1] = buf[1]! + 6; // six more bytes of a field this version does not know
  const out = fresh();
  t.is(decodeIdentity(buf, 0, n + 6, out), IdentityResult.OK);
  t.deepEqual(out, { name: 'a', address: 0 });
});

test('a malformed block is MALFORMED, never a name: lengths past the end, an empty or too long name, a byte a name may not hold', (t) => {
  const good = new Uint8Array(32);
  const n = encodeIdentity(good, 0, 'node-7', parseIPv4('192.168.1.7'));
  const cases: [string, (b: Uint8Array) => void, number][] = [
    ['block length past the message', (b) => (b[1] = 200), n],
    ['message cut inside the block', () => undefined, n - 1],
    ['block too short for its fields', (b) => (b[1] = 3), n],
    ['empty name', (b) => (b[6] = 0), n],
    ['name longer than the block', (b) => (b[6] = 7), n],
    ['name longer than NODE_NAME_MAX', (b) => ((b[6] = NODE_NAME_MAX + 1), (b[1] = 255)), 257],
    ['a space', (b) => (b[8] = 0x20), n],
    ['a control character', (b) => (b[7] = 0x1b), n],
    ['a non-ASCII byte', (b) => (b[9] = 0xc3), n],
  ];
  for (const [what, mutate, end] of cases) {
    const buf = new Uint8Array(300);
    buf.set(good);
    mutate(buf);
    const out = fresh();
    t.is(decodeIdentity(buf, 0, end, out), IdentityResult.MALFORMED, what);
    t.deepEqual(out, fresh(), `${what}: nothing taken`);
  }
});

test('decodeIdentity never throws on 20k random blocks, and every name it accepts is a valid name', (t) => {
  const random = prng(13);
  const rnd = (): number => Math.floor(random() * 0x1_0000_0000);
  const buf = new Uint8Array(96);
  let ok = 0;
  for (let i = 0; i < 20_000; i++) {
    for (let k = 0; k < buf.length; k++) buf[k] = rnd() & 0xff;
    buf[0] = IDENTITY_MARK;
    if (i % 2 === 0) buf[6] = 1 + (rnd() % 12); // short names, so some pass
    if (i % 4 === 0) {
      for (let k = 7; k < 7 + buf[6]!; k++) buf[k] = 0x61 + (rnd() % 26);
      buf[1] = 5 + buf[6]! + (rnd() % 4);
    }
    const out = fresh();
    const r = decodeIdentity(buf, 0, (rnd() % buf.length) + 1, out);
    if (r === IdentityResult.OK) {
      ok++;
      t.true(isNodeName(out.name), out.name);
    }
  }
  t.true(ok > 0, 'some random blocks are valid');
});

test('encodeIdentity refuses a name that is no node name (programming errors: names are checked where they are given)', (t) => {
  const buf = new Uint8Array(IDENTITY_MAX_BYTES);
  for (const name of ['', 'a b', 'x'.repeat(NODE_NAME_MAX + 1), 'é', 'a\n']) t.throws(() => encodeIdentity(buf, 0, name, 0), { instanceOf: RangeError }, JSON.stringify(name));
  t.throws(() => encodeIdentity(buf, 0, 'a', -1), { instanceOf: RangeError });
  t.throws(() => encodeIdentity(new Uint8Array(4), 0, 'abc', 0), { instanceOf: RangeError }, 'no room');
  t.is(encodeIdentity(buf, 0, 'x'.repeat(NODE_NAME_MAX), 0), IDENTITY_MAX_BYTES);
});

test('default node name: the host name, or its first label made valid', (t) => {
  t.is(defaultNodeName('web1'), 'web1');
  t.is(defaultNodeName('web1.example.com'), 'web1.example.com');
  t.is(defaultNodeName(`web1.${'sub.'.repeat(20)}example.com`), 'web1', 'too long: the first label');
  t.is(defaultNodeName('my host'), 'my-host');
  t.is(defaultNodeName(''), 'node');
  for (const h of ['', 'a b.c', 'é', 'x'.repeat(100)]) t.true(isNodeName(defaultNodeName(h)), h);
});
