import test from 'ava';
import { crc32 } from 'node:zlib';
import {
  DecodeResult,
  MESSAGE_HEADER_LENGTH,
  MSG_OFF_CRC32,
  MSG_OFF_DATA_LENGTH,
  MSG_OFF_FRAGMENT_NUMBER,
  MSG_OFF_FRAGMENT_TOTAL,
  MSG_OFF_TYPE,
  MessageType,
  createDecodedMessage,
  decodeMessage,
  encodeMessage,
  messageTypeName,
  type MessageFields,
} from '../../../src/net/cluster-message.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { prng } from '../shm/fixtures/prng.js';

const CLUSTER = parseIPv4('192.168.10.100'); // above 2^31: exercises unsigned reads

function encode(m: MessageFields, size = 1600, off = 0): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(size);
  const len = encodeMessage(buf, off, m);
  return { buf, len };
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

/** Re-computes the CRC after a test edits data, so only the intended defect remains. */
function fixCrc(buf: Uint8Array, len: number): void {
  writeU32(buf, MSG_OFF_CRC32, crc32(buf.subarray(MESSAGE_HEADER_LENGTH, len)));
}

test('node:zlib crc32 is the IEEE CRC-32', (t) => {
  t.is(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('a HEARTBEAT has the documented wire layout', (t) => {
  const { buf, len } = encode({ clusterIp: parseIPv4('10.0.0.100'), type: MessageType.HEARTBEAT, messageId: 0x01020304, data: 0x1234 });
  t.is(len, 30);
  const crc = crc32(Uint8Array.from([0x12, 0x34]));
  t.deepEqual(
    [...buf.subarray(0, len)],
    [
      10, 0, 0, 100, // cluster ip
      0, 0, 0, 3, // type
      0, 0, 0, 2, // data length
      0, 0, 0, 0, // flags
      1, 2, 3, 4, // message id
      0, 0, // fragment number
      0, 1, // fragment total
      crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff,
      0x12, 0x34, // weight
    ],
  );
});

test('every message type round-trips', (t) => {
  const out = createDecodedMessage();
  const payload = Uint8Array.from({ length: 700 }, (_, i) => (i * 7) & 0xff);
  const types = [MessageType.JOIN, MessageType.WELCOME, MessageType.HEARTBEAT, MessageType.ASKRETRASM, MessageType.RETRASM, MessageType.LEAVE, MessageType.CONNTRACK];
  for (const type of types) {
    const data = type === MessageType.HEARTBEAT || type === MessageType.RETRASM ? 65535 : type === MessageType.CONNTRACK ? payload : undefined;
    const off = 14;
    const { buf, len } = encode({ clusterIp: CLUSTER, type, messageId: 0xfffffff0 + type, flags: type === MessageType.CONNTRACK ? 2 : 0, ...(data === undefined ? {} : { data }) }, 1600, off);
    t.is(decodeMessage(buf, off, len, out), DecodeResult.OK, messageTypeName(type));
    t.is(out.clusterIp, CLUSTER);
    t.is(out.type, type);
    t.is(out.messageId, 0xfffffff0 + type);
    t.is(out.fragmentNumber, 0);
    t.is(out.fragmentTotal, 1);
    t.is(out.dataOffset, off + MESSAGE_HEADER_LENGTH);
    if (type === MessageType.HEARTBEAT || type === MessageType.RETRASM) {
      t.is(out.weight, 65535);
      t.is(out.dataLength, 2);
    } else {
      t.is(out.weight, -1);
    }
    if (type === MessageType.CONNTRACK) {
      t.is(out.flags, 2);
      t.deepEqual(buf.subarray(out.dataOffset, out.dataOffset + out.dataLength), payload);
    }
  }
  t.is(messageTypeName(MessageType.ASKRETRASM), 'ASKRETRASM');
  t.is(messageTypeName(99), 'UNKNOWN(99)');
});

test('Ethernet padding after the message is ignored', (t) => {
  const { buf, len } = encode({ clusterIp: CLUSTER, type: MessageType.JOIN, messageId: 1 });
  t.is(len, MESSAGE_HEADER_LENGTH);
  t.is(decodeMessage(buf, 0, 46, createDecodedMessage()), DecodeResult.OK);
});

test('a weight of 0 and a heartbeat with extra data decode', (t) => {
  const out = createDecodedMessage();
  const a = encode({ clusterIp: CLUSTER, type: MessageType.HEARTBEAT, messageId: 1, data: 0 });
  t.is(decodeMessage(a.buf, 0, a.len, out), DecodeResult.OK);
  t.is(out.weight, 0);
  const b = encode({ clusterIp: CLUSTER, type: MessageType.RETRASM, messageId: 1, data: Uint8Array.from([0, 9, 1, 2]) });
  t.is(decodeMessage(b.buf, 0, b.len, out), DecodeResult.OK);
  t.is(out.weight, 9);
});

test('a fragment of a multi-fragment message is not CRC-checked (the CRC covers the reassembled data)', (t) => {
  const { buf, len } = encode({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, messageId: 5, data: new Uint8Array(100) });
  buf[MSG_OFF_FRAGMENT_NUMBER + 1] = 1;
  buf[MSG_OFF_FRAGMENT_TOTAL + 1] = 3;
  writeU32(buf, MSG_OFF_CRC32, 0xdeadbeef);
  const out = createDecodedMessage();
  t.is(decodeMessage(buf, 0, len, out), DecodeResult.OK);
  t.is(out.fragmentNumber, 1);
  t.is(out.fragmentTotal, 3);
  t.is(out.crc32, 0xdeadbeef);
});

const heartbeat = (): { buf: Uint8Array; len: number } => encode({ clusterIp: CLUSTER, type: MessageType.HEARTBEAT, messageId: 77, data: 10 });
const conntrack = (): { buf: Uint8Array; len: number } =>
  encode({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, messageId: 78, flags: 1, data: Uint8Array.from({ length: 64 }, (_, i) => i) });

const rejects: Array<{ description: string; frame: () => { buf: Uint8Array; len: number }; verdict: DecodeResult }> = [
  { description: 'empty', frame: () => ({ buf: new Uint8Array(0), len: 0 }), verdict: DecodeResult.TOO_SHORT },
  { description: 'one byte short of a header', frame: () => ({ buf: heartbeat().buf, len: 27 }), verdict: DecodeResult.TOO_SHORT },
  { description: 'data length past the frame', frame: () => ({ buf: heartbeat().buf, len: 29 }), verdict: DecodeResult.BAD_LENGTH },
  {
    description: 'data length 0xffffffff',
    frame: () => {
      const m = heartbeat();
      writeU32(m.buf, MSG_OFF_DATA_LENGTH, 0xffffffff);
      return m;
    },
    verdict: DecodeResult.BAD_LENGTH,
  },
  { description: 'len beyond the buffer', frame: () => ({ buf: heartbeat().buf.subarray(0, 30), len: 31 }), verdict: DecodeResult.BAD_LENGTH },
  {
    description: 'type 0',
    frame: () => {
      const m = heartbeat();
      writeU32(m.buf, MSG_OFF_TYPE, 0);
      return m;
    },
    verdict: DecodeResult.UNKNOWN_TYPE,
  },
  {
    description: 'type 10 (one past STATE_NACK, the last)',
    frame: () => {
      const m = heartbeat();
      writeU32(m.buf, MSG_OFF_TYPE, MessageType.STATE_NACK + 1);
      return m;
    },
    verdict: DecodeResult.UNKNOWN_TYPE,
  },
  {
    description: 'fragment total 0',
    frame: () => {
      const m = heartbeat();
      m.buf[MSG_OFF_FRAGMENT_TOTAL + 1] = 0;
      return m;
    },
    verdict: DecodeResult.BAD_FRAGMENT,
  },
  {
    description: 'fragment number = total',
    frame: () => {
      const m = conntrack();
      m.buf[MSG_OFF_FRAGMENT_NUMBER + 1] = 4;
      m.buf[MSG_OFF_FRAGMENT_TOTAL + 1] = 4;
      return m;
    },
    verdict: DecodeResult.BAD_FRAGMENT,
  },
  {
    description: 'one data bit flipped',
    frame: () => {
      const m = conntrack();
      m.buf[MESSAGE_HEADER_LENGTH + 33]! ^= 0x10;
      return m;
    },
    verdict: DecodeResult.BAD_CRC,
  },
  {
    description: 'CRC field altered',
    frame: () => {
      const m = heartbeat();
      m.buf[MSG_OFF_CRC32 + 3]! ^= 1;
      return m;
    },
    verdict: DecodeResult.BAD_CRC,
  },
  {
    description: 'HEARTBEAT with one byte of data (valid CRC)',
    frame: () => {
      const m = heartbeat();
      writeU32(m.buf, MSG_OFF_DATA_LENGTH, 1);
      fixCrc(m.buf, MESSAGE_HEADER_LENGTH + 1);
      return { buf: m.buf, len: MESSAGE_HEADER_LENGTH + 1 };
    },
    verdict: DecodeResult.MALFORMED,
  },
  {
    description: 'RETRASM without data (valid CRC)',
    frame: () => {
      const m = encode({ clusterIp: CLUSTER, type: MessageType.JOIN, messageId: 1 });
      writeU32(m.buf, MSG_OFF_TYPE, MessageType.RETRASM);
      return m;
    },
    verdict: DecodeResult.MALFORMED,
  },
  {
    description: 'fragmented HEARTBEAT',
    frame: () => {
      const m = heartbeat();
      m.buf[MSG_OFF_FRAGMENT_TOTAL + 1] = 2;
      return m;
    },
    verdict: DecodeResult.MALFORMED,
  },
];

for (const c of rejects) {
  test(`decodeMessage rejects: ${c.description}`, (t) => {
    const { buf, len } = c.frame();
    t.is(decodeMessage(buf, 0, len, createDecodedMessage()), c.verdict);
  });
}

test('decodeMessage rejects nonsense offsets without throwing', (t) => {
  const { buf, len } = heartbeat();
  const out = createDecodedMessage();
  for (const [off, l] of [[-1, len], [0, -1], [Number.NaN, len], [0, Number.NaN], [0.5, len], [1e9, len], [0, Infinity]] as const) {
    t.not(decodeMessage(buf, off, l, out), DecodeResult.OK, `${off} ${l}`);
  }
});

test('decodeMessage never throws on 10k random and mutated buffers', (t) => {
  const rnd = prng(2024);
  const out = createDecodedMessage();
  const seeds = [heartbeat(), conntrack(), encode({ clusterIp: CLUSTER, type: MessageType.LEAVE, messageId: 3 })];
  const counts = new Map<DecodeResult, number>();
  for (let i = 0; i < 10_000; i++) {
    let buf: Uint8Array;
    let len: number;
    if (i % 2 === 0) {
      buf = new Uint8Array(Math.floor(rnd() * 120));
      for (let j = 0; j < buf.length; j++) buf[j] = rnd() * 256;
      if (buf.length >= 28 && rnd() < 0.5) {
        writeU32(buf, MSG_OFF_TYPE, 1 + Math.floor(rnd() * 7));
        writeU32(buf, MSG_OFF_DATA_LENGTH, Math.floor(rnd() * (buf.length - 27)));
        buf[MSG_OFF_FRAGMENT_TOTAL] = 0;
        buf[MSG_OFF_FRAGMENT_TOTAL + 1] = 1;
        buf[MSG_OFF_FRAGMENT_NUMBER] = 0;
        buf[MSG_OFF_FRAGMENT_NUMBER + 1] = 0;
      }
      len = buf.length;
    } else {
      const s = seeds[i % seeds.length]!;
      buf = s.buf.slice(0, s.len + 8);
      len = s.len - 2 + Math.floor(rnd() * 6);
      const flips = Math.floor(rnd() * 3);
      for (let j = 0; j < flips; j++) buf[Math.floor(rnd() * buf.length)] = rnd() * 256;
    }
    const verdict = decodeMessage(buf, 0, len, out);
    counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
    if (!(verdict in DecodeResult)) t.fail(`verdict ${verdict}`);
  }
  // The corpus reaches every verdict, so the loop exercised every path.
  for (const v of [DecodeResult.OK, DecodeResult.TOO_SHORT, DecodeResult.BAD_LENGTH, DecodeResult.UNKNOWN_TYPE, DecodeResult.BAD_CRC, DecodeResult.MALFORMED]) {
    t.true((counts.get(v) ?? 0) > 0, `no ${DecodeResult[v]}`);
  }
});

test('encodeMessage refuses programming errors', (t) => {
  const buf = new Uint8Array(64);
  t.throws(() => encodeMessage(buf, 0, { clusterIp: CLUSTER, type: MessageType.HEARTBEAT, messageId: 1, data: 65536 }), { instanceOf: RangeError });
  t.throws(() => encodeMessage(buf, 0, { clusterIp: CLUSTER, type: MessageType.HEARTBEAT, messageId: 1 }), { instanceOf: RangeError });
  t.throws(() => encodeMessage(buf, 0, { clusterIp: CLUSTER, type: (MessageType.STATE_NACK + 1) as MessageType, messageId: 1 }), { instanceOf: RangeError });
  t.throws(() => encodeMessage(buf, 0, { clusterIp: -1, type: MessageType.JOIN, messageId: 1 }), { instanceOf: RangeError });
  t.throws(() => encodeMessage(buf, 0, { clusterIp: CLUSTER, type: MessageType.CONNTRACK, messageId: 1, data: new Uint8Array(40) }), { instanceOf: RangeError });
});
