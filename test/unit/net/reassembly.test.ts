import test from 'ava';
import { crc32 } from 'node:zlib';
import { AUTH_TRAILER_LENGTH, AuthVerdict, ControlAuthenticator } from '../../../src/net/auth.js';
import { writeU32 } from '../../../src/net/bytes.js';
import {
  DecodeResult,
  MESSAGE_HEADER_LENGTH,
  MSG_OFF_CRC32,
  MSG_OFF_FRAGMENT_NUMBER,
  MSG_OFF_FRAGMENT_TOTAL,
  MessageType,
  createDecodedMessage,
  decodeMessage,
  encodeMessage,
} from '../../../src/net/cluster-message.js';
import { ETH_HLEN, ETH_P_LNLB, parseMac, writeEthernetHeader } from '../../../src/net/ethernet.js';
import {
  MAX_FRAGMENTS,
  Reassembler,
  ReassemblyVerdict,
  fragmentChunk,
  fragmentCount,
  fragmentMessage,
  reassemblyVerdictName,
  type ReassemblyCounters,
} from '../../../src/net/reassembly.js';
import { prng } from './fixtures/frames.js';

const A = parseMac('52:54:00:00:00:0a');
const B = parseMac('52:54:00:00:00:0b');
const CLUSTER = 0x0a000064;
const MTU = 1500;

/** Every fragment of a message as its own buffer (header + data, no Ethernet header). */
function fragments(data: Uint8Array, messageId = 1, mtu = MTU, flags = 2): Uint8Array[] {
  const f = fragmentMessage({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, flags, messageId, data }, { mtu });
  const out: Uint8Array[] = [];
  const buf = new Uint8Array(mtu);
  for (const len of f.frames(buf, 0)) out.push(buf.slice(0, len));
  return out;
}

function payload(bytes: number, seed: number): Uint8Array {
  const rnd = prng(seed);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4) {
    const v = (rnd() * 0x1_0000_0000) >>> 0;
    out[i] = v;
    out[i + 1] = v >>> 8;
    out[i + 2] = v >>> 16;
    out[i + 3] = v >>> 24;
  }
  return out;
}

function shuffle<T>(a: T[], rnd: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function push(r: Reassembler, frag: Uint8Array, mac: Uint8Array, now: number): Uint8Array | undefined {
  return r.push(frag, 0, frag.length, mac, now);
}

function pushVerdicts(c: ReassemblyCounters): number {
  return c.complete + c.stored + c.duplicate + c.malformed + c.inconsistent + c.tooLarge + c.tooManyMessages + c.overBudget + c.badCrc;
}

test('fragments respect the MTU and carry LNLB headers: same id, 0..total-1, whole-message CRC', (t) => {
  const data = payload(10_000, 1);
  const frags = fragments(data, 0xdeadbeef);
  t.is(frags.length, Math.ceil(10_000 / (MTU - MESSAGE_HEADER_LENGTH)));
  t.is(frags.length, fragmentCount(10_000, { mtu: MTU }));
  const m = createDecodedMessage();
  let sum = 0;
  frags.forEach((f, k) => {
    t.true(f.length <= MTU);
    t.is(decodeMessage(f, 0, f.length, m), DecodeResult.OK);
    t.is(m.messageId, 0xdeadbeef);
    t.is(m.fragmentNumber, k);
    t.is(m.fragmentTotal, frags.length);
    t.is(m.crc32, crc32(data));
    t.is(m.flags, 2);
    sum += m.dataLength;
  });
  t.is(sum, data.length);
  // Room for the auth trailer when keyed.
  t.is(fragmentChunk({ mtu: MTU, reserve: AUTH_TRAILER_LENGTH }), MTU - MESSAGE_HEADER_LENGTH - AUTH_TRAILER_LENGTH);
  // An empty message is one fragment with no data.
  const empty = fragments(new Uint8Array(0));
  t.is(empty.length, 1);
  t.is(empty[0]!.length, MESSAGE_HEADER_LENGTH);
});

test('a 5 MB payload at MTU 1500 round-trips in random order with duplicates, and is handed out once', (t) => {
  const rnd = prng(5);
  const data = payload(5 * 1024 * 1024, 2);
  const frags = fragments(data, 42);
  const order = frags.map((_, i) => i);
  const dups = Math.floor(frags.length / 10);
  for (let i = 0; i < dups; i++) order.push(Math.floor(rnd() * frags.length));
  shuffle(order, rnd);
  const r = new Reassembler();
  let out: Uint8Array | undefined;
  let completions = 0;
  let now = 1_000_000;
  for (const i of order) {
    now += 0.01;
    const got = push(r, frags[i]!, A, now);
    if (got !== undefined) {
      completions++;
      out = got;
    }
  }
  t.is(completions, 1);
  t.truthy(out);
  t.is(out!.length, data.length);
  t.true(Buffer.from(out!.buffer, out!.byteOffset, out!.length).equals(data));
  t.is(r.counters.complete, 1);
  t.is(r.counters.stored, frags.length - 1);
  t.is(r.counters.duplicate, dups, 'duplicates before and after completion are both ignored');
  t.is(pushVerdicts(r.counters), order.length);
  t.is(r.pending, 0);
  t.is(r.reservedBytes, 0);
});

test('the last fragment arriving first is kept aside until the chunk size is known', (t) => {
  const data = payload(4000, 3);
  const frags = fragments(data, 7, 1000);
  const r = new Reassembler();
  t.is(push(r, frags[frags.length - 1]!, A, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.STORED);
  let out: Uint8Array | undefined;
  for (let k = 0; k < frags.length - 1; k++) out = push(r, frags[k]!, A, 1);
  t.deepEqual(out, data);
});

test('a lost fragment: the message expires 2 s after its last fragment and is counted', (t) => {
  const frags = fragments(payload(20_000, 4), 9);
  const r = new Reassembler();
  let now = 5000;
  for (let k = 0; k < frags.length; k++) {
    if (k === 3) continue;
    t.is(push(r, frags[k]!, A, now), undefined);
    now += 10;
  }
  const lastSeen = now - 10;
  t.is(r.pending, 1);
  t.true(r.reservedBytes > 0);
  // A duplicate does not refresh the message.
  push(r, frags[0]!, A, lastSeen + 1500);
  t.is(r.lastVerdict, ReassemblyVerdict.DUPLICATE);
  t.is(r.expire(lastSeen + 1999), 0);
  t.is(r.pending, 1);
  t.is(r.expire(lastSeen + 2000), 1);
  t.is(r.counters.expired, 1);
  t.is(r.pending, 0);
  t.is(r.reservedBytes, 0);
  // push() expires on its own too: a second incomplete message is swept by a later frame.
  push(r, frags[0]!, A, 100_000);
  t.is(r.pending, 1);
  push(r, fragments(payload(10, 5), 10)[0]!, B, 102_000);
  t.is(r.counters.expired, 2);
  t.is(r.pending, 0, 'the single-fragment message from B is handed out at once');
});

test('a CRC mismatch is counted and nothing is handed out', (t) => {
  const data = payload(9000, 6);
  const r = new Reassembler();
  // One data byte altered in transit.
  const frags = fragments(data, 11);
  frags[2]![MESSAGE_HEADER_LENGTH + 5]! ^= 0x40;
  for (const f of frags) t.is(push(r, f, A, 0), undefined);
  t.is(r.counters.badCrc, 1);
  t.is(r.lastVerdict, ReassemblyVerdict.BAD_CRC);
  t.is(r.counters.complete, 0);
  t.is(r.pending, 0);
  t.is(r.reservedBytes, 0);
  // A late duplicate of the failed message does not start a new one.
  t.is(push(r, frags[0]!, A, 1), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.DUPLICATE);
  // Every header consistently claiming a wrong CRC.
  for (const f of fragments(data, 12)) {
    writeU32(f, MSG_OFF_CRC32, crc32(data) ^ 1);
    t.is(push(r, f, A, 2), undefined);
  }
  t.is(r.counters.badCrc, 2);
  // A single-fragment message with a bad CRC.
  const one = fragments(payload(100, 7), 13)[0]!;
  one[MESSAGE_HEADER_LENGTH]! ^= 1;
  t.is(push(r, one, A, 3), undefined);
  t.is(r.counters.badCrc, 3);
});

test('a single-fragment message is handed out at once, as a copy', (t) => {
  const r = new Reassembler();
  const data = payload(300, 8);
  const f = fragments(data, 14)[0]!;
  const out = push(r, f, A, 0);
  t.deepEqual(out, data);
  f.fill(0);
  t.deepEqual(out, data, 'not a view of the receive buffer');
  t.is(r.counters.complete, 1);
});

test('interleaved messages from two senders, even with the same message id, reassemble apart', (t) => {
  const rnd = prng(9);
  const dataA = payload(50_000, 10);
  const dataB = payload(70_001, 11);
  const dataA2 = payload(30_000, 12);
  const tagged = [
    ...fragments(dataA, 100).map((f) => ({ f, mac: A })),
    ...fragments(dataB, 100).map((f) => ({ f, mac: B })),
    ...fragments(dataA2, 101).map((f) => ({ f, mac: A })),
  ];
  shuffle(tagged, rnd);
  const r = new Reassembler();
  const done: Uint8Array[] = [];
  for (const { f, mac } of tagged) {
    const out = push(r, f, mac, 0);
    if (out) done.push(out);
  }
  t.is(done.length, 3);
  const sorted = done.sort((x, y) => x.length - y.length);
  t.deepEqual(sorted[0], dataA2);
  t.deepEqual(sorted[1], dataA);
  t.deepEqual(sorted[2], dataB);
  t.is(r.counters.inconsistent, 0);
});

test('bounds refuse and count: message size, fragmentTotal, concurrency, total bytes', (t) => {
  const r = new Reassembler({ maxMessageBytes: 10_000, maxMessages: 3, maxMessagesPerSender: 2, maxTotalBytes: 12_000 });
  // 20 000 bytes: the first fragment already says total * chunk > 10 000.
  const big = fragments(payload(20_000, 13), 1);
  t.is(push(r, big[0]!, A, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.TOO_LARGE);
  // fragmentTotal 65535 on a last fragment: at least 65534 + len bytes.
  const absurd = fragments(payload(2000, 14), 2);
  const last = absurd[1]!.slice();
  last[MSG_OFF_FRAGMENT_TOTAL] = 0xff;
  last[MSG_OFF_FRAGMENT_TOTAL + 1] = 0xff;
  last[MSG_OFF_FRAGMENT_NUMBER] = 0xff; // fragment number 0xfffe: the last one
  last[MSG_OFF_FRAGMENT_NUMBER + 1] = 0xfe;
  t.is(push(r, last, A, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.TOO_LARGE);
  t.is(r.counters.tooLarge, 2);
  t.is(r.reservedBytes, 0, 'nothing allocated for refused messages');

  // 4 000-byte messages (about 4 400 reserved each, 3 chunks of 1472): two from A, a third from A is one too many.
  const m = (id: number): Uint8Array[] => fragments(payload(4000, id), id);
  t.is(push(r, m(10)[0]!, A, 0), undefined);
  t.is(push(r, m(11)[0]!, A, 0), undefined);
  t.is(push(r, m(12)[0]!, A, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.TOO_MANY_MESSAGES, 'per sender');
  // B: the budget (12 000) holds two messages of 3 * 1472, not three.
  t.is(push(r, m(13)[0]!, B, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.OVER_BUDGET);
  t.is(r.counters.overBudget, 1);
  const r2 = new Reassembler({ maxMessages: 2 });
  push(r2, m(20)[0]!, A, 0);
  push(r2, m(21)[0]!, B, 0);
  push(r2, m(22)[0]!, parseMac('52:54:00:00:00:0c'), 0);
  t.is(r2.lastVerdict, ReassemblyVerdict.TOO_MANY_MESSAGES, 'in total');
  t.is(r.counters.tooManyMessages + r2.counters.tooManyMessages, 2);
  // The refused ones left the others alone: A's two messages complete.
  let completed = 0;
  for (const id of [10, 11]) for (const f of m(id).slice(1)) if (push(r, f, A, 1)) completed++;
  t.is(completed, 2);
  t.is(r.reservedBytes, 0);
  t.is(reassemblyVerdictName(ReassemblyVerdict.OVER_BUDGET), 'OVER_BUDGET');
});

test('fragments that disagree with their message are refused as INCONSISTENT', (t) => {
  const r = new Reassembler();
  const frags = fragments(payload(6000, 15), 30);
  push(r, frags[0]!, A, 0);
  const otherTotal = frags[1]!.slice();
  otherTotal[MSG_OFF_FRAGMENT_TOTAL + 1]! += 1;
  push(r, otherTotal, A, 0);
  t.is(r.lastVerdict, ReassemblyVerdict.INCONSISTENT);
  const otherCrc = frags[1]!.slice();
  otherCrc[MSG_OFF_CRC32]! ^= 1;
  push(r, otherCrc, A, 0);
  t.is(r.lastVerdict, ReassemblyVerdict.INCONSISTENT);
  const otherFlags = fragments(payload(6000, 15), 30, MTU, 5)[1]!;
  push(r, otherFlags, A, 0);
  t.is(r.lastVerdict, ReassemblyVerdict.INCONSISTENT);
  // Same id, CRC and total (5), other chunk size (MTU 1300): lengths disagree.
  const smaller = fragments(payload(6000, 15), 30, 1300)[1]!;
  push(r, smaller, A, 0);
  t.is(r.lastVerdict, ReassemblyVerdict.INCONSISTENT);
  t.is(r.counters.inconsistent, 4);
  // The genuine fragments still complete the message.
  let out: Uint8Array | undefined;
  for (const f of frags.slice(1)) out = push(r, f, A, 1);
  t.deepEqual(out, payload(6000, 15));
});

test('pushDecoded re-checks a decoded header against the buffer', (t) => {
  const r = new Reassembler();
  const f = fragments(payload(3000, 16), 40)[0]!;
  const m = createDecodedMessage();
  t.is(decodeMessage(f, 0, f.length, m), DecodeResult.OK);
  const bads = [
    { dataLength: 1e9 },
    { dataOffset: -1 },
    { fragmentTotal: 0 },
    { fragmentNumber: 3 },
    { fragmentTotal: 70_000 },
    { dataLength: Number.NaN },
    { type: 99 },
    { messageId: -1 },
    { crc32: 2 ** 32 },
    { flags: 0.5 },
  ];
  for (const bad of bads) {
    t.is(r.pushDecoded({ ...m, ...bad }, f, A, 0), undefined);
    t.is(r.lastVerdict, ReassemblyVerdict.MALFORMED, JSON.stringify(bad));
  }
  t.is(r.pushDecoded(m, f, new Uint8Array(4), 0), undefined, 'short MAC');
  t.is(r.pushDecoded(m, f, A, Number.NaN), undefined, 'no time');
  t.is(r.counters.malformed, bads.length + 2);
  t.is(r.pushDecoded(m, f, A, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.STORED);
});

test('keyed end to end: fragments leave room for the trailer, are sealed, opened, reassembled', (t) => {
  const key = Buffer.from('an example key of thirty-two by');
  const tx = new ControlAuthenticator(key, () => 1_700_000_000_000);
  const rx = new ControlAuthenticator(key, () => 1_700_000_000_000);
  const data = payload(100_000, 17);
  const frags = fragmentMessage({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, flags: 1, messageId: 77, data }, { mtu: MTU, reserve: AUTH_TRAILER_LENGTH });
  const wire: Uint8Array[] = [];
  const buf = new Uint8Array(ETH_HLEN + MTU);
  writeEthernetHeader(buf, 0, B, A, ETH_P_LNLB);
  for (const len of frags.frames(buf, ETH_HLEN)) {
    const sealed = tx.seal(buf, ETH_HLEN, len, A, B);
    t.true(sealed <= MTU);
    wire.push(buf.slice(0, ETH_HLEN + sealed));
  }
  // Reordered, but within the replay window (64): shuffled in blocks of 32.
  const rnd = prng(18);
  const reordered: Uint8Array[] = [];
  for (let i = 0; i < wire.length; i += 32) reordered.push(...shuffle(wire.slice(i, i + 32), rnd));
  const r = new Reassembler();
  let out: Uint8Array | undefined;
  for (const w of reordered) {
    t.is(rx.open(w, ETH_HLEN, w.length - ETH_HLEN, w.subarray(6, 12), w.subarray(0, 6)), AuthVerdict.OK);
    out = r.push(w, ETH_HLEN, w.length - ETH_HLEN, w, 0, 6) ?? out;
  }
  t.deepEqual(out, data);
});

test('fragmentMessage refuses programming errors', (t) => {
  const f = (data: Uint8Array, mtu: number, type = MessageType.CONNTRACK): unknown =>
    fragmentMessage({ clusterIp: CLUSTER, type, messageId: 1, data }, { mtu });
  t.throws(() => f(new Uint8Array(10), 40), { instanceOf: RangeError }, 'mtu below 68');
  t.throws(() => f(new Uint8Array(10), 1.5), { instanceOf: RangeError });
  t.throws(() => f(new Uint8Array(MAX_FRAGMENTS * 40 + 1), 68), { instanceOf: RangeError }, 'more than 65535 fragments');
  t.throws(() => f(new Uint8Array(5000), 1500, MessageType.HEARTBEAT), { instanceOf: RangeError });
  t.throws(() => fragmentMessage({ clusterIp: -1, type: MessageType.CONNTRACK, messageId: 1, data: new Uint8Array(1) }, { mtu: MTU }), { instanceOf: RangeError });
  t.throws(() => fragmentChunk({ mtu: MTU, reserve: -1 }), { instanceOf: RangeError });
  const ok = fragmentMessage({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, messageId: 1, data: new Uint8Array(3000) }, { mtu: MTU });
  t.throws(() => ok.write(3, new Uint8Array(MTU), 0), { instanceOf: RangeError }, 'fragment 3 of 3');
  t.throws(() => ok.write(0, new Uint8Array(100), 0), { instanceOf: RangeError }, 'buffer too small');
  // encodeMessage and a 1-fragment fragmentMessage write the same bytes.
  const data = payload(200, 19);
  const a = new Uint8Array(MTU);
  const b = new Uint8Array(MTU);
  const la = encodeMessage(a, 0, { clusterIp: CLUSTER, type: MessageType.CONNTRACK, flags: 4, messageId: 9, data });
  const lb = fragmentMessage({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, flags: 4, messageId: 9, data }, { mtu: MTU }).write(0, b, 0);
  t.deepEqual(a.subarray(0, la), b.subarray(0, lb));
});
