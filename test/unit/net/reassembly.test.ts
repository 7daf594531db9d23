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
import { ETH_HLEN, ETH_P_LNLB, formatMac, parseMac, writeEthernetHeader } from '../../../src/net/ethernet.js';
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
import { prng } from '../shm/fixtures/prng.js';

const A = parseMac('52:54:00:00:00:0a');
const B = parseMac('52:54:00:00:00:0b');
const C = parseMac('52:54:00:00:00:0c');
/** Hosts that are not members. */
const X = parseMac('52:54:00:00:00:f1');
const Y = parseMac('52:54:00:00:00:f2');
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

test('bounds refuse and count: message size, fragmentTotal, messages in progress in total and per sender', (t) => {
  const r = new Reassembler({ maxMessageBytes: 10_000, maxMessages: 3, maxMessagesPerSender: 2 });
  // 20 000 bytes: the first fragment already says (total - 1) * chunk + 1 > 10 000.
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

  // 4 000-byte messages (3 fragments): two from A, a third from A is one too many for A.
  const m = (id: number): Uint8Array[] => fragments(payload(4000, id), id);
  t.is(push(r, m(10)[0]!, A, 0), undefined);
  t.is(push(r, m(11)[0]!, A, 0), undefined);
  t.is(push(r, m(12)[0]!, A, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.SENDER_TOO_MANY_MESSAGES);
  t.is(r.counters.senderTooManyMessages, 1);
  // B takes the third slot of three; C finds none.
  t.is(push(r, m(13)[0]!, B, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.STORED);
  t.is(push(r, m(14)[0]!, C, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.TOO_MANY_MESSAGES, 'in total');
  t.is(r.counters.tooManyMessages, 1);
  // The refused ones left the others alone: A's two messages and B's complete.
  let completed = 0;
  for (const id of [10, 11]) for (const f of m(id).slice(1)) if (push(r, f, A, 1)) completed++;
  for (const f of m(13).slice(1)) if (push(r, f, B, 1)) completed++;
  t.is(completed, 3);
  t.is(r.reservedBytes, 0);
  t.is(reassemblyVerdictName(ReassemblyVerdict.SENDER_OVER_BUDGET), 'SENDER_OVER_BUDGET');
});

/** A frame that claims a message of `total` fragments and carries `len` bytes of it (fragment `k`). */
function claim(total: number, len: number, messageId: number, k = 0): Uint8Array {
  const f = fragments(payload(len * 2, messageId), messageId, MESSAGE_HEADER_LENGTH + len)[0]!;
  f[MSG_OFF_FRAGMENT_TOTAL] = total >>> 8;
  f[MSG_OFF_FRAGMENT_TOTAL + 1] = total;
  f[MSG_OFF_FRAGMENT_NUMBER] = k >>> 8;
  f[MSG_OFF_FRAGMENT_NUMBER + 1] = k;
  return f;
}

test('the budget counts bytes held, not claimed: two 1 KB frames claiming 65535 fragments do not block a real 20 MB transfer', (t) => {
  const r = new Reassembler(); // the defaults the control channel uses: 128 MiB in total
  // Each claims 65535 fragments of 1000 bytes (65.5 MB, under the 64 MiB message limit):
  // before, each reserved its whole claim, the pair 131 MB > 128 MiB, and the transfer
  // below was refused OVER_BUDGET until they expired.
  t.is(push(r, claim(0xffff, 1000, 1), X, 0), undefined);
  t.is(push(r, claim(0xffff, 1000, 2, 0xfff0), Y, 0), undefined);
  t.is(r.counters.stored, 2);
  t.true(r.reservedBytes <= 2 * 16 * 1024, `held ${r.reservedBytes} bytes for 2000 received`);
  t.true(r.heldBytesOf(X) >= 1000 && r.heldBytesOf(X) <= 16 * 1024);
  // A real state transfer, keyed framing, through the real fragmenter, in order.
  const data = payload(20 * 1024 * 1024, 21);
  const f = fragmentMessage({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, flags: 6, messageId: 500, data }, { mtu: MTU, reserve: AUTH_TRAILER_LENGTH });
  const buf = new Uint8Array(MTU);
  let out: Uint8Array | undefined;
  let now = 10;
  let peak = 0;
  for (const len of f.frames(buf, 0)) {
    now += 0.005;
    out = r.push(buf, 0, len, A, now) ?? out;
    peak = Math.max(peak, r.reservedBytes);
  }
  t.is(r.counters.overBudget + r.counters.senderOverBudget, 0);
  t.truthy(out);
  t.true(Buffer.from(out!.buffer, out!.byteOffset, out!.length).equals(data), 'the 20 MB arrived whole');
  t.true(peak <= data.length + 64 * 1024, `peak held ${peak} bytes for a ${data.length}-byte message`);
  t.is(r.pending, 2, "the attacker's claims are still there, holding their few bytes");
  t.is(r.expire(now + 10_000), 2);
  t.is(r.reservedBytes, 0);
});

test('bytes are held as fragments arrive (in blocks), in any order', (t) => {
  const data = payload(3 * 1024 * 1024, 22);
  const frags = fragments(data, 23);
  const r = new Reassembler();
  let received = 0;
  // Every other fragment first: each one touches a block of its own or its neighbour's.
  const order = [...frags.keys()].filter((k) => k % 2 === 0).concat([...frags.keys()].filter((k) => k % 2 === 1));
  for (const [n, k] of order.entries()) {
    const got = push(r, frags[k]!, A, 0);
    received += frags[k]!.length - MESSAGE_HEADER_LENGTH;
    if (n === Math.floor(order.length / 4)) {
      t.true(r.reservedBytes <= 2 * received + 16 * 1024, `a quarter in: held ${r.reservedBytes} for ${received} received`);
    }
    if (n < order.length - 1) t.is(got, undefined);
    else t.deepEqual(got, data);
  }
  // Two fragments, the last first: it waits for the chunk size, then completes the message.
  const two = fragments(payload(2000, 24), 24);
  t.is(two.length, 2);
  t.is(push(r, two[1]!, B, 0), undefined);
  t.is(r.reservedBytes, two[1]!.length - MESSAGE_HEADER_LENGTH, 'the stash holds what arrived');
  t.deepEqual(push(r, two[0]!, B, 0), payload(2000, 24));
  t.is(r.reservedBytes, 0);
});

test('a message has an absolute deadline from its first fragment: trickled fragments cannot keep it alive', (t) => {
  const r = new Reassembler({ timeoutMs: 2000, deadlineMs: 10_000 });
  const frags = fragments(payload(100_000, 25), 25);
  let now = 1000;
  // One new fragment every 1.5 s: never idle for 2 s, but 10 s after the first it goes.
  let k = 0;
  for (; now < 1000 + 10_000; now += 1500, k++) {
    t.is(push(r, frags[k]!, A, now), undefined);
    t.is(r.lastVerdict, ReassemblyVerdict.STORED, `fragment ${k} at ${now - 1000} ms`);
  }
  t.is(push(r, frags[k]!, A, now), undefined);
  t.is(r.counters.overdue, 1);
  t.is(r.counters.expired, 0);
  t.is(r.lastVerdict, ReassemblyVerdict.ABANDONED, 'its late fragments do not start it again');
  t.is(r.pending, 0);
  t.is(r.reservedBytes, 0);
  // A whole message sent within the deadline is unaffected.
  let out: Uint8Array | undefined;
  for (const f of fragments(payload(100_000, 26), 26)) out = push(r, f, A, (now += 100)) ?? out;
  t.deepEqual(out, payload(100_000, 26));
  t.throws(() => new Reassembler({ deadlineMs: 0 }), { instanceOf: RangeError });
});

test('per-sender and total byte caps: the message that would pass one is dropped and counted, the others go on', (t) => {
  const r = new Reassembler({ maxBytesPerSender: 100_000, maxTotalBytes: 150_000 });
  const bigA = fragments(payload(200_000, 27), 27);
  const smallB = fragments(payload(60_000, 28), 28);
  const otherC = fragments(payload(120_000, 29), 29);
  let outB: Uint8Array | undefined;
  let refusedAt = -1;
  for (let k = 0; k < bigA.length; k++) {
    push(r, bigA[k]!, A, 0);
    if (r.lastVerdict === ReassemblyVerdict.SENDER_OVER_BUDGET && refusedAt < 0) refusedAt = k;
    if (k < smallB.length) outB = push(r, smallB[k]!, B, 0) ?? outB;
    t.true(r.heldBytesOf(A) <= 100_000);
    t.true(r.reservedBytes <= 150_000);
  }
  t.true(refusedAt > 50 && refusedAt < 70, `A refused at fragment ${refusedAt} (about 100 000 bytes in)`);
  t.is(r.counters.senderOverBudget, 1, 'counted once: the message was dropped');
  t.is(r.counters.abandoned, bigA.length - refusedAt - 1, 'its later fragments are ABANDONED');
  t.is(r.heldBytesOf(A), 0);
  t.deepEqual(outB, payload(60_000, 28), "B's message completed meanwhile");
  // Total: B holds about 60 000 again, C cannot add 120 000 to it within 150 000.
  const againB = fragments(payload(60_000, 30), 30);
  for (const f of againB.slice(0, -1)) push(r, f, B, 0);
  for (const f of otherC) push(r, f, C, 0);
  t.is(r.counters.overBudget, 1);
  t.is(r.heldBytesOf(C), 0);
  t.deepEqual(push(r, againB[againB.length - 1]!, B, 0), payload(60_000, 30));
  t.is(r.reservedBytes, 0);
});

test("forgetSender drops a sender's messages at once, frees their bytes and refuses their late fragments", (t) => {
  const r = new Reassembler();
  const a1 = fragments(payload(50_000, 31), 31);
  const a2 = fragments(payload(30_000, 32), 32);
  const b1 = fragments(payload(40_000, 33), 33);
  for (const f of a1.slice(0, 10)) push(r, f, A, 0);
  for (const f of a2.slice(0, 5)) push(r, f, A, 0);
  for (const f of b1.slice(0, 10)) push(r, f, B, 0);
  t.is(r.pending, 3);
  const heldB = r.heldBytesOf(B);
  t.is(r.forgetSender(A), 2);
  t.is(r.counters.forgotten, 2);
  t.is(r.pending, 1);
  t.is(r.reservedBytes, heldB);
  t.is(push(r, a1[10]!, A, 1), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.ABANDONED);
  t.is(r.pending, 1);
  t.is(r.forgetSender(A), 0);
  let out: Uint8Array | undefined;
  for (const f of b1.slice(10)) out = push(r, f, B, 2) ?? out;
  t.deepEqual(out, payload(40_000, 33));
  // A sender's new message after the forget is taken as usual.
  let outA: Uint8Array | undefined;
  for (const f of fragments(payload(5000, 34), 34)) outA = push(r, f, A, 3) ?? outA;
  t.deepEqual(outA, payload(5000, 34));
});

test('acceptSender refuses a sender before anything of it is held, asked once per message', (t) => {
  const members = new Set([formatMac(A)]);
  let asked = 0;
  const r = new Reassembler({
    acceptSender: (mac, off) => {
      asked++;
      return members.has(formatMac(mac, off));
    },
  });
  t.is(push(r, claim(0xffff, 1000, 40), X, 0), undefined);
  t.is(r.lastVerdict, ReassemblyVerdict.SENDER_REFUSED);
  t.is(push(r, fragments(payload(100, 41), 41)[0]!, X, 0), undefined, 'a single-fragment message too');
  t.is(r.lastVerdict, ReassemblyVerdict.SENDER_REFUSED);
  t.is(r.counters.senderRefused, 2);
  t.is(r.pending, 0);
  t.is(r.reservedBytes, 0);
  asked = 0;
  let out: Uint8Array | undefined;
  const frags = fragments(payload(30_000, 42), 42);
  for (const f of frags) out = push(r, f, A, 0) ?? out;
  t.deepEqual(out, payload(30_000, 42));
  t.is(asked, 1, `asked once for ${frags.length} fragments`);
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

test('missingFragments lists what a message in progress lacks (for a NACK); reopen lets a dropped message start again when asked for', (t) => {
  const data = payload(20_000, 21);
  const frags = fragments(data, 77);
  const r = new Reassembler();
  const lost = new Set([0, 5, 6, frags.length - 1]);
  for (let k = 0; k < frags.length; k++) if (!lost.has(k)) push(r, frags[k]!, A, 1000);
  const missing = r.missingFragments(A, 77)!;
  t.is(missing.first, 0);
  t.is(missing.bits, frags.length);
  t.is(missing.total, frags.length);
  const listed: number[] = [];
  for (let i = 0; i < missing.bits; i++) if ((missing.bitmap[i >>> 3]! & (0x80 >>> (i & 7))) !== 0) listed.push(missing.first + i);
  t.deepEqual(listed, [...lost].sort((a, b) => a - b));
  t.is(r.missingFragments(A, 78), undefined, 'not in progress');
  t.is(r.missingFragments(B, 77), undefined, 'another sender');
  // Dropped (expired): its late fragments are ABANDONED, unless the receiver asked for it again.
  r.expire(5000);
  push(r, frags[0]!, A, 5001);
  t.is(r.lastVerdict, ReassemblyVerdict.ABANDONED);
  r.reopen(A, 77);
  let out: Uint8Array | undefined;
  for (const f of frags) out = push(r, f, A, 5002) ?? out;
  t.truthy(out, 'resent whole, it completes');
  t.true(Buffer.from(out!).equals(Buffer.from(data)));
});
