import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUTH_TRAILER_LENGTH,
  AuthVerdict,
  ControlAuthenticator,
  DEFAULT_CLOCK_TOLERANCE_MS,
  FLAG_AUTHENTICATED,
  FLAGS_MASK,
  REPLAY_WINDOW,
  authVerdictName,
  loadKeyFile,
  sequenceTimeMs,
  type AuthCounters,
} from '../../../src/net/auth.js';
import { readU32 } from '../../../src/net/bytes.js';
import {
  DecodeResult,
  MESSAGE_HEADER_LENGTH,
  MSG_OFF_DATA_LENGTH,
  MSG_OFF_FLAGS,
  MessageType,
  createDecodedMessage,
  decodeMessage,
  encodeMessage,
  type MessageFields,
} from '../../../src/net/cluster-message.js';
import { ETH_HLEN, ETH_P_LNLB, parseMac, writeEthernetHeader } from '../../../src/net/ethernet.js';
import { isLnlbError } from '../../../src/errors.js';
import { prng } from '../shm/fixtures/prng.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER_KEY = Buffer.from('0123456789abcdef0123456789abcdeX');
const A = parseMac('52:54:00:00:00:0a');
const B = parseMac('52:54:00:00:00:0b');
const C = parseMac('52:54:00:00:00:0c');
const CLUSTER_MAC = parseMac('02:00:0a:00:00:64');
const CLUSTER = 0x0a000064;
const T0 = 1_750_000_000_000; // a realistic Date.now()

interface Frame {
  buf: Uint8Array;
  /** Length of the message (after the Ethernet header), trailer included once sealed. */
  len: number;
  src: Uint8Array;
  dst: Uint8Array;
}

/** An Ethernet frame holding one control message, sealed by `auth` (when given). */
function frame(auth: ControlAuthenticator | undefined, m: Partial<MessageFields> = {}, src = A, dst = CLUSTER_MAC): Frame {
  const buf = new Uint8Array(2048);
  writeEthernetHeader(buf, 0, dst, src, ETH_P_LNLB);
  let len = encodeMessage(buf, ETH_HLEN, { clusterIp: CLUSTER, type: MessageType.HEARTBEAT, messageId: 1, data: 100, ...m });
  if (auth) len = auth.seal(buf, ETH_HLEN, len, src, dst);
  return { buf, len, src, dst };
}

function open(rx: ControlAuthenticator, f: Frame): AuthVerdict {
  return rx.open(f.buf, ETH_HLEN, f.len, f.src, f.dst);
}

function rejects(c: AuthCounters): number {
  return c.unsigned + c.unexpectedSignature + c.badMac + c.replayed + c.malformed + c.stale + c.future;
}

/** The wall-clock time a sealed frame's sequence says it was sealed at. */
function sealedAt(f: Frame): number {
  const t = ETH_HLEN + f.len - AUTH_TRAILER_LENGTH;
  return sequenceTimeMs(readU32(f.buf, t), readU32(f.buf, t + 4));
}

/** A node's wall clock, set by the test. */
class FakeClock {
  constructor(public ms: number) {}
  readonly now = (): number => this.ms;
}

test('a sealed message opens, keeps the LNLB header, and still decodes', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const rx = new ControlAuthenticator(KEY, () => T0 + 5);
  const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const f = frame(tx, { type: MessageType.CONNTRACK, flags: 3, messageId: 0xfffffffe, data });
  t.is(f.len, MESSAGE_HEADER_LENGTH + 300 + AUTH_TRAILER_LENGTH);
  t.is(tx.counters.sealed, 1);
  t.is(open(rx, f), AuthVerdict.OK);
  t.is(rx.counters.ok, 1);
  const m = createDecodedMessage();
  t.is(decodeMessage(f.buf, ETH_HLEN, f.len, m), DecodeResult.OK, 'the trailer reads as padding');
  t.is(m.dataLength, 300, 'dataLength still counts the data only');
  t.is((m.flags & FLAG_AUTHENTICATED) >>> 0, FLAG_AUTHENTICATED);
  t.is(m.flags & FLAGS_MASK, 3, 'the handler index survives under the mask');
  t.deepEqual(f.buf.subarray(m.dataOffset, m.dataOffset + m.dataLength), data);
});

test('every message type round-trips, and Ethernet padding after the trailer is ignored', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const rx = new ControlAuthenticator(KEY, () => T0);
  for (const type of [MessageType.JOIN, MessageType.WELCOME, MessageType.HEARTBEAT, MessageType.ASKRETRASM, MessageType.RETRASM, MessageType.LEAVE]) {
    const weighted = type === MessageType.HEARTBEAT || type === MessageType.RETRASM;
    const f = frame(tx, { type, ...(weighted ? { data: 7 } : { data: undefined }) }, A, B);
    t.is(rx.open(f.buf, ETH_HLEN, f.len + 20, A, B), AuthVerdict.OK, MessageType[type]);
  }
  t.is(rx.counters.ok, 6);
});

test('the sequence starts at the clock (ms << 22) and carries into the high word', (t) => {
  const tx = new ControlAuthenticator(KEY, () => 1000.7);
  t.deepEqual(tx.nextSequence, [0, (1000 * 0x40_0000) >>> 0]);
  const real = new ControlAuthenticator(KEY, () => T0);
  t.deepEqual(real.nextSequence, [Math.floor(T0 / 1024), ((T0 % 1024) * 0x40_0000) >>> 0]);
  // 1023.999… ms: the low word is 0xffc0_0000; 2^22 seals later it carries.
  const edge = new ControlAuthenticator(KEY, () => 1023);
  t.deepEqual(edge.nextSequence, [0, 0xffc0_0000]);
  const buf = new Uint8Array(128);
  for (let i = 0; i < 3; i++) {
    const len = encodeMessage(buf, 0, { clusterIp: CLUSTER, type: MessageType.JOIN, messageId: i });
    edge.seal(buf, 0, len, A, B);
  }
  t.deepEqual(edge.nextSequence, [0, 0xffc0_0003]);
  t.throws(() => new ControlAuthenticator(KEY, () => -1), { instanceOf: RangeError });
  t.throws(() => new ControlAuthenticator(KEY, () => Number.NaN), { instanceOf: RangeError });
});

test('any altered byte of header, data or trailer is refused', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const data = Uint8Array.from({ length: 40 }, (_, i) => 255 - i);
  const f = frame(tx, { type: MessageType.CONNTRACK, flags: 1, data });
  const verdicts = new Map<AuthVerdict, number>();
  for (let i = 0; i < f.len; i++) {
    for (const bit of [0x01, 0x80]) {
      const rx = new ControlAuthenticator(KEY, () => T0);
      const copy = { ...f, buf: f.buf.slice() };
      copy.buf[ETH_HLEN + i]! ^= bit;
      const v = open(rx, copy);
      verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
      const inDataLength = i >= MSG_OFF_DATA_LENGTH && i < MSG_OFF_DATA_LENGTH + 4;
      const isFlagBit = i === MSG_OFF_FLAGS && bit === 0x80;
      if (isFlagBit) t.is(v, AuthVerdict.UNSIGNED, 'clearing the flag makes it unsigned, which a keyed node drops');
      else if (inDataLength) t.true(v === AuthVerdict.BAD_MAC || v === AuthVerdict.MALFORMED, `byte ${i}`);
      else t.is(v, AuthVerdict.BAD_MAC, `byte ${i} bit ${bit}`);
    }
  }
  t.true((verdicts.get(AuthVerdict.BAD_MAC) ?? 0) > 2 * f.len - 10);
});

test('the source and destination MACs are covered: no replay from another MAC, no redirection', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const f = frame(tx, {}, A, B);
  const rx = new ControlAuthenticator(KEY, () => T0);
  t.is(rx.open(f.buf, ETH_HLEN, f.len, C, B), AuthVerdict.BAD_MAC, 'same frame, other source');
  t.is(rx.open(f.buf, ETH_HLEN, f.len, A, C), AuthVerdict.BAD_MAC, 'unicast to B redirected to C');
  t.is(rx.open(f.buf, ETH_HLEN, f.len, A, B), AuthVerdict.OK);
  t.is(rx.counters.badMac, 2);
});

test('a message sealed with another key is refused', (t) => {
  const f = frame(new ControlAuthenticator(OTHER_KEY, () => T0));
  const rx = new ControlAuthenticator(KEY, () => T0);
  t.is(open(rx, f), AuthVerdict.BAD_MAC);
  t.is(rx.counters.badMac, 1);
  t.is(rx.senders, 0, 'a refused frame creates no replay state');
});

test('a replayed frame is refused; so is a genuine frame older than the window', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const rx = new ControlAuthenticator(KEY, () => T0);
  const old = frame(tx);
  t.is(open(rx, old), AuthVerdict.OK);
  t.is(open(rx, old), AuthVerdict.REPLAYED);
  const held = frame(tx); // captured, never delivered
  for (let i = 0; i < REPLAY_WINDOW; i++) t.is(open(rx, frame(tx)), AuthVerdict.OK);
  t.is(open(rx, held), AuthVerdict.REPLAYED, '65 behind: outside the window');
  t.is(open(rx, old), AuthVerdict.REPLAYED);
  t.is(rx.counters.replayed, 3);
  t.is(rx.counters.ok, 1 + REPLAY_WINDOW);
});

test('reordering inside the window is accepted, each frame once', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const rx = new ControlAuthenticator(KEY, () => T0);
  const frames = Array.from({ length: REPLAY_WINDOW }, () => frame(tx));
  for (const f of [...frames].reverse()) t.is(open(rx, f), AuthVerdict.OK);
  for (const f of frames) t.is(open(rx, f), AuthVerdict.REPLAYED);
});

test('the replay window agrees with a reference model over 20k random deliveries', (t) => {
  const rnd = prng(77);
  const tx = new ControlAuthenticator(KEY, () => 0);
  const rx = new ControlAuthenticator(KEY, () => 0);
  // Seal 3000 frames; sequence i is frames[i] (the clock start is 0).
  const frames: Frame[] = Array.from({ length: 3000 }, () => frame(tx));
  const seen = new Set<number>();
  let highest = -1;
  let next = 0;
  for (let n = 0; n < 20_000; n++) {
    // Mostly forward with jumps of 1..100 (slides by < 32, < 64 and >= 64), sometimes back.
    let i: number;
    const r = rnd();
    if (r < 0.6 && next < frames.length) {
      i = Math.min(frames.length - 1, next + Math.floor(rnd() * rnd() * 100));
      next = i + 1;
    } else {
      i = Math.max(0, Math.min(frames.length - 1, highest - Math.floor(rnd() * 80)));
    }
    const expected = !seen.has(i) && i > highest - REPLAY_WINDOW;
    t.is(open(rx, frames[i]!), expected ? AuthVerdict.OK : AuthVerdict.REPLAYED, `delivery ${n}: frame ${i}, highest ${highest}`);
    if (expected) {
      seen.add(i);
      highest = Math.max(highest, i);
    }
  }
  t.is(rx.counters.ok + rx.counters.replayed, 20_000);
});

test('a restarted sender is accepted; one whose clock went back waits, or is forgotten', (t) => {
  const rx = new ControlAuthenticator(KEY, () => T0);
  const first = new ControlAuthenticator(KEY, () => T0);
  for (let i = 0; i < 1000; i++) t.is(open(rx, frame(first)), AuthVerdict.OK);
  // Restarted one millisecond later: its first sequence is above the 1000 sent before.
  const restarted = new ControlAuthenticator(KEY, () => T0 + 1);
  t.is(open(rx, frame(restarted)), AuthVerdict.OK);
  // Restarted with the clock set back a second: below everything seen, dropped as a replay.
  const wrongClock = new ControlAuthenticator(KEY, () => T0 - 1000);
  const f = frame(wrongClock);
  t.is(open(rx, f), AuthVerdict.REPLAYED);
  t.true(rx.forget(A));
  t.false(rx.forget(A));
  t.is(open(rx, f), AuthVerdict.OK, 'the operator forgot the old window');
  t.is(open(rx, frame(wrongClock)), AuthVerdict.OK);
});

test('the sequence follows the clock at every seal, and a clock stepping back by less than the tolerance never lowers it (case 1)', (t) => {
  const clock = new FakeClock(T0);
  const tx = new ControlAuthenticator(KEY, clock.now);
  const rxClock = new FakeClock(T0);
  const rx = new ControlAuthenticator(KEY, rxClock.now);
  const a = frame(tx);
  const b = frame(tx);
  t.is(sealedAt(a), T0);
  t.is(sealedAt(b), T0, 'two seals in one millisecond: +1');
  clock.ms = T0 + 5000.9;
  t.is(sealedAt(frame(tx)), T0 + 5000, 'each message says when it was sealed (not the start time + n)');
  // NTP steps the sender back 30 s: its sequence stands at T0 + 5000 (+1 a message) until the
  // clock passes it; the receiver's clock moves on meanwhile and accepts every message.
  clock.ms = T0 + 5000 - 30_000;
  let sent = 0;
  for (let s = 0; s <= 40; s++) {
    rxClock.ms = T0 + 5000 + s * 1000;
    clock.ms = T0 + 5000 - 30_000 + s * 1000;
    const f = frame(tx);
    t.is(sealedAt(f), Math.max(T0 + 5000, clock.ms), `${s} s after the step`);
    t.is(open(rx, f), AuthVerdict.OK, `${s} s after the step`);
    sent++;
  }
  t.is(rx.counters.ok, sent);
  t.is(tx.counters.sequenceResets, 0);
  // The nowMs arguments override the constructor's clock.
  const g = { ...frame(undefined), buf: new Uint8Array(2048) };
  writeEthernetHeader(g.buf, 0, CLUSTER_MAC, A, ETH_P_LNLB);
  g.len = tx.seal(g.buf, ETH_HLEN, encodeMessage(g.buf, ETH_HLEN, { clusterIp: CLUSTER, type: MessageType.JOIN, messageId: 9 }), A, CLUSTER_MAC, T0 + 3_600_000);
  t.is(sealedAt(g), T0 + 3_600_000);
  t.is(rx.open(g.buf, ETH_HLEN, g.len, A, CLUSTER_MAC), AuthVerdict.FUTURE);
  t.is(rx.open(g.buf, ETH_HLEN, g.len, A, CLUSTER_MAC, T0 + 3_600_000), AuthVerdict.OK);
  t.throws(() => tx.seal(g.buf, ETH_HLEN, 28, A, CLUSTER_MAC, Number.NaN), { instanceOf: RangeError });
});

test('a restarted receiver refuses a captured frame older than the tolerance, before any window (STALE), and one from a clock ahead (FUTURE)', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const captured = frame(tx);
  t.is(DEFAULT_CLOCK_TOLERANCE_MS, 60_000);
  // The receiver restarted: no window for A.
  t.is(open(new ControlAuthenticator(KEY, () => T0 + 60_000), captured), AuthVerdict.OK, 'exactly the tolerance old');
  const late = new ControlAuthenticator(KEY, () => T0 + 60_001);
  t.is(open(late, captured), AuthVerdict.STALE);
  t.is(open(late, captured), AuthVerdict.STALE);
  t.is(late.counters.stale, 2);
  t.is(late.senders, 0, 'a frame outside the tolerance is never recorded');
  const early = new ControlAuthenticator(KEY, () => T0 - 60_001);
  t.is(open(early, captured), AuthVerdict.FUTURE);
  t.is(early.counters.future, 1);
  t.is(early.senders, 0);
  t.is(open(new ControlAuthenticator(KEY, () => T0 - 60_000), captured), AuthVerdict.OK);
  // A shorter tolerance, and none at all (as before issue 12).
  t.is(open(new ControlAuthenticator(KEY, () => T0 + 1001, { clockToleranceMs: 1000 }), captured), AuthVerdict.STALE);
  const off = new ControlAuthenticator(KEY, () => T0 + 86_400_000, { clockToleranceMs: Infinity });
  t.is(off.clockToleranceMs, Infinity);
  t.is(open(off, captured), AuthVerdict.OK, 'Infinity: a day-old frame passes the clock check');
  t.is(open(off, captured), AuthVerdict.REPLAYED, 'and the window still works');
  // A clock that is not a number refuses rather than accepts.
  t.is(new ControlAuthenticator(KEY, () => T0).open(captured.buf, ETH_HLEN, captured.len, A, CLUSTER_MAC, Number.NaN), AuthVerdict.STALE);
  // Forged frames are BAD_MAC whatever their time: the time is checked on genuine ones only.
  const forged = { ...captured, buf: captured.buf.slice() };
  forged.buf[ETH_HLEN + captured.len - 1]! ^= 1;
  t.is(open(late, forged), AuthVerdict.BAD_MAC);
  for (const bad of [0, -1, Number.NaN]) {
    t.throws(() => new ControlAuthenticator(KEY, () => T0, { clockToleranceMs: bad }), { instanceOf: RangeError }, String(bad));
  }
  t.is(authVerdictName(AuthVerdict.FUTURE), 'FUTURE');
});

test('a sender restarted with its clock set back by less than the tolerance is accepted again after that much, by itself (case 3)', (t) => {
  const rxClock = new FakeClock(T0);
  const rx = new ControlAuthenticator(KEY, rxClock.now);
  const old = new ControlAuthenticator(KEY, rxClock.now);
  for (let s = 0; s < 10; s++, rxClock.ms += 1000) t.is(open(rx, frame(old)), AuthVerdict.OK);
  // Down for 5 s; comes back with its clock 20 s behind the receiver's.
  rxClock.ms += 5000;
  const back = 20_000;
  const txClock = new FakeClock(rxClock.ms - back);
  const restarted = new ControlAuthenticator(KEY, txClock.now);
  let firstOk = -1;
  for (let ms = 0; ms <= 30_000; ms += 100) {
    rxClock.ms += 100;
    txClock.ms += 100;
    const v = open(rx, frame(restarted));
    if (v === AuthVerdict.OK && firstOk < 0) firstOk = ms;
    if (firstOk < 0) t.is(v, AuthVerdict.REPLAYED, `${ms} ms after the restart`);
    else t.is(v, AuthVerdict.OK, `${ms} ms after the restart`);
  }
  t.true(firstOk > 0 && firstOk <= back - 5000, `accepted ${firstOk} ms after the restart: the 20 s set back minus the 5 s down`);
  t.is(rx.counters.stale + rx.counters.future, 0);
});

test('a sender whose clock was ahead by more than the tolerance and is fixed recovers at once, running or restarted (cases 2, 4, 5)', (t) => {
  const rxClock = new FakeClock(T0);
  const rx = new ControlAuthenticator(KEY, rxClock.now);
  const txClock = new FakeClock(T0);
  const tx = new ControlAuthenticator(KEY, txClock.now);
  t.is(open(rx, frame(tx)), AuthVerdict.OK);
  // Its clock jumps an hour ahead (local time in the RTC): FUTURE everywhere, nothing recorded.
  txClock.ms += 3_600_000;
  for (let s = 0; s < 10; s++, rxClock.ms += 1000, txClock.ms += 1000) t.is(open(rx, frame(tx)), AuthVerdict.FUTURE);
  // NTP steps it back: staying above its old top would keep it FUTURE for an hour, so it
  // restarts its sequence at its clock, and is accepted at once.
  txClock.ms = rxClock.ms;
  const fixed = frame(tx);
  t.is(tx.counters.sequenceResets, 1);
  t.is(sealedAt(fixed), rxClock.ms);
  t.is(open(rx, fixed), AuthVerdict.OK);
  rxClock.ms += 1000;
  txClock.ms += 1000;
  t.is(open(rx, frame(tx)), AuthVerdict.OK);
  // A sender restarted with its clock fixed back an hour: the same, its old frames were never recorded.
  rxClock.ms += 2000;
  txClock.ms += 2000;
  const restarted = new ControlAuthenticator(KEY, txClock.now);
  t.is(open(rx, frame(restarted)), AuthVerdict.OK);

  // A clock 5 minutes behind (case 5, other way): STALE until NTP steps it forward, then OK.
  const behindClock = new FakeClock(rxClock.ms - 300_000);
  const behind = new ControlAuthenticator(KEY, behindClock.now);
  t.is(open(rx, frame(behind, {}, B)), AuthVerdict.STALE);
  t.is(rx.counters.stale, 1);
  // A running sender stepped back more than the tolerance by a wrong clock: STALE, and it
  // follows the clock when NTP puts it right.
  const txC = new ControlAuthenticator(KEY, behindClock.now);
  behindClock.ms = rxClock.ms;
  t.is(open(rx, frame(txC, {}, C)), AuthVerdict.OK);
  behindClock.ms -= 300_000;
  t.is(open(rx, frame(txC, {}, C)), AuthVerdict.STALE);
  t.is(txC.counters.sequenceResets, 1);
  behindClock.ms = rxClock.ms += 10;
  t.is(open(rx, frame(txC, {}, C)), AuthVerdict.OK);
  behindClock.ms = rxClock.ms;
  t.is(open(rx, frame(behind, {}, B)), AuthVerdict.OK, 'B fixed too');
});

test("the receiver's clock stepping out of tolerance refuses everyone until fixed; a window left ahead by a wrong clock is dropped (case 6)", (t) => {
  const rxClock = new FakeClock(T0);
  const rx = new ControlAuthenticator(KEY, rxClock.now);
  const txClock = new FakeClock(T0);
  const tx = new ControlAuthenticator(KEY, txClock.now);
  const tick = (ms: number): void => {
    rxClock.ms += ms;
    txClock.ms += ms;
  };
  t.is(open(rx, frame(tx)), AuthVerdict.OK);
  tick(1000);
  // Stepped back 30 s (within the tolerance): nothing changes.
  rxClock.ms -= 30_000;
  t.is(open(rx, frame(tx)), AuthVerdict.OK);
  // Stepped back 2 minutes: FUTURE; then forward 2 minutes: STALE; fixed: OK.
  rxClock.ms -= 90_000;
  t.is(open(rx, frame(tx)), AuthVerdict.FUTURE);
  rxClock.ms += 240_000;
  tick(1);
  t.is(open(rx, frame(tx)), AuthVerdict.STALE);
  rxClock.ms = txClock.ms;
  tick(1);
  t.is(open(rx, frame(tx)), AuthVerdict.OK);
  t.is(rx.counters.windowsDropped, 0);

  // The cluster booted an hour ahead; both nodes exchange frames, then NTP fixes the
  // receiver first (the sender is FUTURE), then the sender (which restarts its sequence).
  const hour = 3_600_000;
  const rx2Clock = new FakeClock(T0 + hour);
  const rx2 = new ControlAuthenticator(KEY, rx2Clock.now);
  const tx2Clock = new FakeClock(T0 + hour);
  const tx2 = new ControlAuthenticator(KEY, tx2Clock.now);
  const recorded: Frame[] = [];
  for (let s = 0; s < 5; s++, rx2Clock.ms += 1000, tx2Clock.ms += 1000) {
    const f = frame(tx2);
    recorded.push(f);
    t.is(open(rx2, f), AuthVerdict.OK);
  }
  rx2Clock.ms -= hour;
  t.is(open(rx2, frame(tx2)), AuthVerdict.FUTURE);
  tx2Clock.ms -= hour;
  const first = frame(tx2);
  t.is(tx2.counters.sequenceResets, 1);
  t.is(open(rx2, first), AuthVerdict.OK, 'not REPLAYED for an hour');
  t.is(rx2.counters.windowsDropped, 1);
  rx2Clock.ms += 1000;
  tx2Clock.ms += 1000;
  t.is(open(rx2, frame(tx2)), AuthVerdict.OK);
  t.is(open(rx2, first), AuthVerdict.REPLAYED, 'the new window works');
  t.is(open(rx2, recorded[0]!), AuthVerdict.FUTURE, 'the old frames are an hour ahead now');
  t.is(rx2.counters.windowsDropped, 1);

  // A window ahead of the receiver by less than the tolerance is kept: its replays stay refused.
  const rx3Clock = new FakeClock(T0);
  const rx3 = new ControlAuthenticator(KEY, rx3Clock.now);
  const ahead = new ControlAuthenticator(KEY, () => T0 + 50_000);
  const f = frame(ahead);
  t.is(open(rx3, f), AuthVerdict.OK);
  rx3Clock.ms -= 5000;
  t.is(open(rx3, f), AuthVerdict.REPLAYED);
  t.is(rx3.counters.windowsDropped, 0);
});

test('keyed and unkeyed nodes refuse each other, and say which side lacks the key', (t) => {
  const keyed = new ControlAuthenticator(KEY, () => T0);
  const unkeyed = new ControlAuthenticator(undefined);
  t.false(unkeyed.keyed);
  t.true(keyed.keyed);
  const plain = frame(unkeyed);
  t.is(plain.len, MESSAGE_HEADER_LENGTH + 2, 'an unkeyed seal is the identity');
  t.is(unkeyed.counters.sealed, 0);
  t.is(open(unkeyed, plain), AuthVerdict.OK);
  t.is(open(keyed, plain), AuthVerdict.UNSIGNED);
  const signed = frame(new ControlAuthenticator(KEY, () => T0));
  t.is(open(unkeyed, signed), AuthVerdict.UNEXPECTED_SIGNATURE);
  t.is(keyed.counters.unsigned, 1);
  t.is(unkeyed.counters.unexpectedSignature, 1);
  t.is(unkeyed.counters.ok, 1);
  t.is(authVerdictName(AuthVerdict.UNEXPECTED_SIGNATURE), 'UNEXPECTED_SIGNATURE');
});

test('truncated and nonsense input is MALFORMED, never an exception', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const rx = new ControlAuthenticator(KEY, () => T0);
  const f = frame(tx);
  t.is(rx.open(f.buf, ETH_HLEN, f.len - 1, A, CLUSTER_MAC), AuthVerdict.MALFORMED, 'trailer cut short');
  t.is(rx.open(f.buf, ETH_HLEN, 27, A, CLUSTER_MAC), AuthVerdict.MALFORMED, 'no header');
  for (const [off, len] of [[-1, 60], [0, -1], [Number.NaN, 60], [ETH_HLEN, Number.NaN], [0.5, 60], [1e9, 60], [0, Infinity], [2040, 60]] as const) {
    t.is(rx.open(f.buf, off, len, A, CLUSTER_MAC), AuthVerdict.MALFORMED, `${off} ${len}`);
  }
  t.is(rx.open(f.buf, ETH_HLEN, f.len, new Uint8Array(3), CLUSTER_MAC), AuthVerdict.MALFORMED, 'short MAC');
  const huge = { ...f, buf: f.buf.slice() };
  huge.buf[ETH_HLEN + MSG_OFF_DATA_LENGTH] = 0xff;
  t.is(open(rx, huge), AuthVerdict.MALFORMED, 'dataLength 0xff000002');
  t.is(rx.counters.malformed, 12);
  t.is(rejects(rx.counters), 12);
  t.is(open(rx, f), AuthVerdict.OK);
});

test('seal refuses programming errors', (t) => {
  const tx = new ControlAuthenticator(KEY, () => T0);
  const buf = new Uint8Array(64);
  const len = encodeMessage(buf, 0, { clusterIp: CLUSTER, type: MessageType.HEARTBEAT, messageId: 1, data: 1 });
  t.throws(() => tx.seal(buf, 0, len + 2, A, B), { instanceOf: RangeError }, 'msgLen with padding');
  t.throws(() => tx.seal(buf.subarray(0, len + 10), 0, len, A, B), { instanceOf: RangeError }, 'no room for the trailer');
  t.throws(() => tx.seal(buf, 0, len, new Uint8Array(5), B), { instanceOf: RangeError });
  t.is(tx.seal(buf, 0, len, A, B), len + AUTH_TRAILER_LENGTH);
  t.throws(() => tx.seal(buf, 0, len, A, B), { instanceOf: RangeError }, 'sealed twice');
  t.throws(() => new ControlAuthenticator(Buffer.alloc(15)), { instanceOf: RangeError });
  t.throws(() => new ControlAuthenticator(KEY, Date.now, { maxSenders: 0 }), { instanceOf: RangeError });
});

test('the sender table is bounded: the least recently heard sender is evicted and counted', (t) => {
  const rx = new ControlAuthenticator(KEY, () => T0, { maxSenders: 2 });
  const txA = new ControlAuthenticator(KEY, () => T0);
  const txB = new ControlAuthenticator(KEY, () => T0);
  const txC = new ControlAuthenticator(KEY, () => T0);
  const a1 = frame(txA, {}, A);
  const b1 = frame(txB, {}, B);
  t.is(open(rx, a1), AuthVerdict.OK);
  t.is(open(rx, b1), AuthVerdict.OK);
  t.is(open(rx, frame(txA, {}, A)), AuthVerdict.OK); // A is now the most recent
  t.is(open(rx, frame(txC, {}, C)), AuthVerdict.OK); // evicts B
  t.is(rx.counters.sendersEvicted, 1);
  t.is(rx.senders, 2);
  t.is(open(rx, a1), AuthVerdict.REPLAYED, 'A kept its window');
  t.is(open(rx, b1), AuthVerdict.OK, 'B starts a fresh window (the documented cost of eviction)');
  t.is(rx.counters.sendersEvicted, 2);
  // forget() keeps the table consistent whichever slot it frees.
  t.true(rx.forget(C) || rx.forget(A));
  t.is(rx.senders, 1);
  t.is(open(rx, frame(txA, {}, A)), AuthVerdict.OK);
  t.is(open(rx, frame(txC, {}, C)), AuthVerdict.OK);
  t.is(rx.senders, 2);
});

// ---------------------------------------------------------------------------------------
// loadKeyFile

function withTempDir(run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-key-'));
  try {
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function keyFile(dir: string, content: string | Uint8Array, mode: number): string {
  const path = join(dir, `key-${mode.toString(8)}-${typeof content === 'string' ? content.length : content.length}`);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

test('loadKeyFile reads a 0600 key, without its trailing newline', (t) => {
  withTempDir((dir) => {
    const raw = Uint8Array.from({ length: 32 }, (_, i) => (i * 37) & 0xff);
    t.deepEqual(loadKeyFile(keyFile(dir, raw, 0o600)), Buffer.from(raw));
    t.deepEqual(loadKeyFile(keyFile(dir, 'a'.repeat(64) + '\n', 0o600)).toString(), 'a'.repeat(64));
    t.is(loadKeyFile(keyFile(dir, 'b'.repeat(16) + '\r\n', 0o400)).length, 16, 'read-only owner is fine');
  });
});

test('loadKeyFile refuses a key file group or others may read or write, naming the file and chmod 600', (t) => {
  withTempDir((dir) => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660]) {
      const path = keyFile(dir, 'k'.repeat(32), mode);
      const err = t.throws(() => loadKeyFile(path));
      t.true(isLnlbError(err), mode.toString(8));
      if (!isLnlbError(err)) continue;
      t.is(err.code, 'LNLB_ERR_AUTH_KEY_MODE');
      t.true(err.message.includes(path), err.message);
      t.true(err.message.includes(`chmod 600 ${path}`), err.message);
      t.true(err.message.includes(`0${mode.toString(8)}`), err.message);
    }
  });
});

test('loadKeyFile refuses short, huge, missing and non-regular key files', (t) => {
  withTempDir((dir) => {
    const cases: Array<[string, string]> = [
      [keyFile(dir, 'k'.repeat(15), 0o600), '15-byte key'],
      [keyFile(dir, 'k'.repeat(15) + '\n\n', 0o600), 'short once the newlines are gone'],
      [keyFile(dir, '', 0o600), '0-byte key'],
      [keyFile(dir, 'k'.repeat(5000), 0o600), 'more than 4096'],
      [join(dir, 'missing'), 'ENOENT'],
    ];
    const sub = join(dir, 'a-directory');
    mkdirSync(sub, { mode: 0o700 });
    cases.push([sub, 'not a regular file']);
    for (const [path, why] of cases) {
      const err = t.throws(() => loadKeyFile(path), undefined, why);
      t.true(isLnlbError(err), why);
      if (!isLnlbError(err)) continue;
      t.is(err.code, 'LNLB_ERR_AUTH_KEY_INVALID', why);
      t.true(err.message.includes(path), err.message);
      t.true(err.message.includes(`lnlbctl genkey ${path}`), err.message);
    }
    const missing = t.throws(() => loadKeyFile(join(dir, 'missing')));
    t.is(isLnlbError(missing) ? missing.errno : undefined, 'ENOENT');
  });
});

test('a key read by loadKeyFile keys two nodes alike', (t) => {
  withTempDir((dir) => {
    const key = loadKeyFile(keyFile(dir, 'c'.repeat(32) + '\n', 0o600));
    const f = frame(new ControlAuthenticator(key, () => T0));
    t.is(open(new ControlAuthenticator(Buffer.from('c'.repeat(32)), () => T0), f), AuthVerdict.OK);
  });
});
