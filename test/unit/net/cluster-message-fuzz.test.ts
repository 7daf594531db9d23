/**
 * Fuzz of the control-plane receive path: decodeMessage, ControlAuthenticator.open (keyed and
 * unkeyed) and Reassembler (fed everything, and fed only what authentication let through),
 * on 50k genuine, replayed, mutated, truncated, absurd and random frames from a seeded PRNG
 * (a failure prints the seed and the iteration). Nothing may throw, every call counts exactly
 * one verdict, the rejects counted equal the rejects returned, the bounds hold at every step,
 * and whatever is handed out is a genuine message (authenticated path) or at least matches
 * its CRC (unauthenticated path).
 */
import test from 'ava';
import { crc32 } from 'node:zlib';
import { AUTH_TRAILER_LENGTH, AuthVerdict, ControlAuthenticator, type AuthCounters } from '../../../src/net/auth.js';
import { readU32, writeU32 } from '../../../src/net/bytes.js';
import {
  DecodeResult,
  MESSAGE_HEADER_LENGTH,
  MSG_OFF_CRC32,
  MSG_OFF_DATA_LENGTH,
  MSG_OFF_FLAGS,
  MSG_OFF_FRAGMENT_NUMBER,
  MSG_OFF_FRAGMENT_TOTAL,
  MSG_OFF_MESSAGE_ID,
  MessageType,
  createDecodedMessage,
  decodeMessage,
  encodeMessage,
  type DecodedMessage,
} from '../../../src/net/cluster-message.js';
import { ETH_HLEN, ETH_P_LNLB, parseMac, writeEthernetHeader } from '../../../src/net/ethernet.js';
import { Reassembler, ReassemblyVerdict, fragmentMessage, type MessageFragments, type ReassemblyCounters } from '../../../src/net/reassembly.js';
import { between, prng } from '../shm/fixtures/prng.js';

const SEED = 0x1a2b3c;
const ITERATIONS = 50_000;
const KEY = Buffer.from('fuzzing key, thirty-two bytes!!');
const CLUSTER = 0x0a000064;
const CLUSTER_MAC = parseMac('02:00:0a:00:00:64');
const MTU = 1500;
const SENDERS = [parseMac('52:54:00:00:00:01'), parseMac('52:54:00:00:00:02'), parseMac('52:54:00:00:00:03')];

interface Frame {
  buf: Uint8Array;
  len: number;
}

interface Stream {
  sender: number;
  messageId: number;
  data: Uint8Array;
  fragments: MessageFragments;
  next: number;
}

const AUTH_REJECTS = (c: AuthCounters): number => c.unsigned + c.unexpectedSignature + c.badMac + c.replayed + c.malformed + c.stale + c.future;
const AUTH_TOTAL = (c: AuthCounters): number => c.ok + AUTH_REJECTS(c);
const REASSEMBLY_REJECTS = (c: ReassemblyCounters): number =>
  c.malformed + c.inconsistent + c.tooLarge + c.tooManyMessages + c.overBudget + c.badCrc + c.senderTooManyMessages + c.senderOverBudget + c.senderRefused + c.abandoned;
const REASSEMBLY_TOTAL = (c: ReassemblyCounters): number => c.complete + c.stored + c.duplicate + REASSEMBLY_REJECTS(c);
const REJECT_VERDICTS = new Set([
  ReassemblyVerdict.MALFORMED,
  ReassemblyVerdict.INCONSISTENT,
  ReassemblyVerdict.TOO_LARGE,
  ReassemblyVerdict.TOO_MANY_MESSAGES,
  ReassemblyVerdict.OVER_BUDGET,
  ReassemblyVerdict.BAD_CRC,
  ReassemblyVerdict.SENDER_TOO_MANY_MESSAGES,
  ReassemblyVerdict.SENDER_OVER_BUDGET,
  ReassemblyVerdict.SENDER_REFUSED,
  ReassemblyVerdict.ABANDONED,
]);

test(`decoder, open() and Reassembler survive ${ITERATIONS} fuzzed frames and count every reject (seed ${SEED})`, (t) => {
  const rnd = prng(SEED);
  let now = 1_700_000_000_000;
  const senders = SENDERS.map(() => new ControlAuthenticator(KEY, () => now));
  const keyed = new ControlAuthenticator(KEY, () => now);
  const unkeyed = new ControlAuthenticator(undefined);
  const rawLimits = { maxMessages: 10, maxMessagesPerSender: 4, maxMessageBytes: 128 * 1024, maxTotalBytes: 160 * 1024 };
  const raw = new Reassembler(rawLimits);
  const authedLimits = { maxMessageBytes: 4 * 1024 * 1024, maxTotalBytes: 16 * 1024 * 1024 };
  const authed = new Reassembler(authedLimits);
  const decoded = createDecodedMessage();

  const history: Frame[] = [];
  const streams: Stream[] = [];
  const genuine = new Map<string, Uint8Array>();
  let messageId = 1000;
  const decodeVerdicts = new Map<DecodeResult, number>();
  const authVerdicts = new Map<AuthVerdict, number>();
  const rawVerdicts = new Map<ReassemblyVerdict, number>();
  const authedVerdicts = new Map<ReassemblyVerdict, number>();
  const bump = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1);
  let keyedRejects = 0;
  let unkeyedRejects = 0;
  let rawRejects = 0;
  let authedRejects = 0;
  let pushes = 0;
  let authedPushes = 0;
  let genuineDelivered = 0;

  const frameBuf = (sender: Uint8Array, dst = CLUSTER_MAC, size = ETH_HLEN + MTU): Uint8Array => {
    const buf = new Uint8Array(size);
    writeEthernetHeader(buf, 0, dst, sender, ETH_P_LNLB);
    return buf;
  };

  const genuineFrame = (): Frame => {
    const r = rnd();
    if (r < 0.5) {
      // The next fragment of a CONNTRACK transfer (a new one when none is running).
      let s = streams.find((x) => x.next < x.fragments.total);
      if (s === undefined || rnd() < 0.02) {
        const data = new Uint8Array(between(rnd, 1, 40_000));
        for (let i = 0; i < data.length; i++) data[i] = rnd() * 256;
        const sender = between(rnd, 0, SENDERS.length - 1);
        const id = messageId++;
        s = { sender, messageId: id, data, next: 0, fragments: fragmentMessage({ clusterIp: CLUSTER, type: MessageType.CONNTRACK, flags: 1, messageId: id, data }, { mtu: MTU, reserve: AUTH_TRAILER_LENGTH }) };
        streams.push(s);
        genuine.set(`${s.sender}/${id}`, data);
      }
      const buf = frameBuf(SENDERS[s.sender]!);
      const len = s.fragments.write(s.next++, buf, ETH_HLEN);
      return { buf, len: ETH_HLEN + senders[s.sender]!.seal(buf, ETH_HLEN, len, SENDERS[s.sender]!, CLUSTER_MAC) };
    }
    const sender = between(rnd, 0, SENDERS.length - 1);
    const buf = frameBuf(SENDERS[sender]!);
    const type = between(rnd, MessageType.JOIN, MessageType.LEAVE) as MessageType;
    const weighted = type === MessageType.HEARTBEAT || type === MessageType.RETRASM;
    const len = encodeMessage(buf, ETH_HLEN, { clusterIp: CLUSTER, type, messageId: messageId++, ...(weighted ? { data: between(rnd, 0, 1000) } : {}) });
    return { buf, len: ETH_HLEN + senders[sender]!.seal(buf, ETH_HLEN, len, SENDERS[sender]!, CLUSTER_MAC) };
  };

  const pick = (): Frame => {
    const f = history[Math.floor(rnd() * history.length)];
    return f === undefined ? genuineFrame() : f;
  };

  const mutate = (f: Frame): Frame => {
    const buf = f.buf.slice(0, Math.max(f.len, 64));
    const edits = between(rnd, 1, 4);
    for (let i = 0; i < edits; i++) {
      const at = rnd() < 0.7 ? ETH_HLEN + Math.floor(rnd() * (f.len - ETH_HLEN)) : Math.floor(rnd() * buf.length);
      if (rnd() < 0.5) buf[at]! ^= 1 << between(rnd, 0, 7);
      else buf[at] = rnd() * 256;
    }
    return { buf, len: f.len };
  };

  /** Header fields set to absurd values; re-sealed a third of the time, so open() lets it through. */
  const absurd = (): Frame => {
    const sender = between(rnd, 0, SENDERS.length - 1);
    const dataLen = between(rnd, 0, MTU - MESSAGE_HEADER_LENGTH - AUTH_TRAILER_LENGTH);
    const buf = frameBuf(SENDERS[sender]!);
    const data = new Uint8Array(dataLen);
    for (let i = 0; i < dataLen; i++) data[i] = rnd() * 256;
    let len = encodeMessage(buf, ETH_HLEN, { clusterIp: CLUSTER, type: MessageType.CONNTRACK, messageId: between(rnd, 0, 20), data });
    const m = ETH_HLEN;
    const totals = [0, 1, 2, 3, 0xffff, 0xfffe, between(rnd, 0, 0xffff), between(rnd, 1, 50)];
    const total = totals[Math.floor(rnd() * totals.length)]!;
    const number = rnd() < 0.5 ? between(rnd, 0, Math.max(0, total - 1)) : between(rnd, 0, 0xffff);
    buf[m + MSG_OFF_FRAGMENT_TOTAL] = total >>> 8;
    buf[m + MSG_OFF_FRAGMENT_TOTAL + 1] = total;
    buf[m + MSG_OFF_FRAGMENT_NUMBER] = number >>> 8;
    buf[m + MSG_OFF_FRAGMENT_NUMBER + 1] = number;
    if (rnd() < 0.5) writeU32(buf, m + MSG_OFF_CRC32, (rnd() * 0x1_0000_0000) >>> 0);
    if (rnd() < 0.3) writeU32(buf, m + MSG_OFF_FLAGS, (rnd() * 0x8000_0000) >>> 0);
    if (rnd() < 0.33) {
      len = senders[sender]!.seal(buf, m, len, SENDERS[sender]!, CLUSTER_MAC);
    } else {
      const lengths = [0xffff_ffff, 0x8000_0000, len, len - MESSAGE_HEADER_LENGTH + 1, between(rnd, 0, 3000)];
      if (rnd() < 0.5) writeU32(buf, m + MSG_OFF_DATA_LENGTH, lengths[Math.floor(rnd() * lengths.length)]!);
    }
    return { buf, len: ETH_HLEN + len };
  };

  const random = (): Frame => {
    const buf = new Uint8Array(between(rnd, 0, 1600));
    for (let i = 0; i < buf.length; i++) buf[i] = rnd() * 256;
    if (buf.length >= ETH_HLEN + MESSAGE_HEADER_LENGTH && rnd() < 0.5) writeU32(buf, ETH_HLEN + 4, between(rnd, 1, 7));
    return { buf, len: buf.length };
  };

  const unsigned = (): Frame => {
    const buf = frameBuf(SENDERS[between(rnd, 0, SENDERS.length - 1)]!);
    return { buf, len: ETH_HLEN + encodeMessage(buf, ETH_HLEN, { clusterIp: CLUSTER, type: MessageType.JOIN, messageId: messageId++ }) };
  };

  const garbageDecoded = (): DecodedMessage => {
    const pool = [0, 1, -1, 28, 1500, 0xffff, 0x10000, 0xffff_ffff, 2 ** 53, Number.NaN, Infinity, -Infinity, 0.5];
    const any = (): number => (rnd() < 0.5 ? pool[Math.floor(rnd() * pool.length)]! : between(rnd, 0, 3000));
    return { clusterIp: any(), type: any(), dataLength: any(), flags: any(), messageId: any(), fragmentNumber: any(), fragmentTotal: any(), crc32: any(), dataOffset: any(), weight: any() };
  };

  for (let i = 0; i < ITERATIONS; i++) {
    now += rnd() < 0.001 ? 2500 : rnd() * 3;
    const r = rnd();
    let f: Frame;
    if (r < 0.3) {
      f = genuineFrame();
      history.push(f);
      if (history.length > 500) history.shift();
    } else if (r < 0.4) f = pick(); // replay
    else if (r < 0.6) f = mutate(pick());
    else if (r < 0.7) {
      const g = pick();
      f = { buf: g.buf, len: between(rnd, 0, g.len) }; // truncated
    } else if (r < 0.88) f = absurd();
    else if (r < 0.96) f = random();
    else f = unsigned();

    const where = `seed ${SEED}, iteration ${i}`;
    try {
      const msgLen = f.len - ETH_HLEN;
      const src = f.buf.subarray(6, 12);
      const dst = f.buf.subarray(0, 6);

      const d = decodeMessage(f.buf, ETH_HLEN, msgLen, decoded);
      if (!(d in DecodeResult)) t.fail(`${where}: decode verdict ${d}`);
      bump(decodeVerdicts, d);

      const v = keyed.open(f.buf, ETH_HLEN, msgLen, src, dst);
      bump(authVerdicts, v);
      if (v !== AuthVerdict.OK) keyedRejects++;
      if (unkeyed.open(f.buf, ETH_HLEN, msgLen, src, dst) !== AuthVerdict.OK) unkeyedRejects++;

      pushes++;
      const out = raw.push(f.buf, ETH_HLEN, msgLen, f.buf, now, 6);
      bump(rawVerdicts, raw.lastVerdict);
      if (REJECT_VERDICTS.has(raw.lastVerdict)) rawRejects++;
      if (out !== undefined) {
        if (raw.lastVerdict !== ReassemblyVerdict.COMPLETE) t.fail(`${where}: data with verdict ${raw.lastVerdict}`);
        if (crc32(out) !== readU32(f.buf, ETH_HLEN + MSG_OFF_CRC32)) t.fail(`${where}: delivered data does not match its CRC`);
      }

      if (v === AuthVerdict.OK) {
        authedPushes++;
        const got = authed.push(f.buf, ETH_HLEN, msgLen, f.buf, now, 6);
        bump(authedVerdicts, authed.lastVerdict);
        if (REJECT_VERDICTS.has(authed.lastVerdict)) authedRejects++;
        if (got !== undefined && decoded.fragmentTotal > 1) {
          const sender = SENDERS.findIndex((mac) => mac.every((b, j) => b === f.buf[6 + j]));
          const expected = genuine.get(`${sender}/${readU32(f.buf, ETH_HLEN + MSG_OFF_MESSAGE_ID)}`);
          if (expected === undefined || !Buffer.from(got).equals(expected)) t.fail(`${where}: authenticated path delivered a message nobody sent`);
          genuineDelivered++;
        }
      }

      if (i % 50 === 0) {
        pushes++;
        if (raw.pushDecoded(garbageDecoded(), f.buf, f.buf, now, 6) !== undefined && raw.lastVerdict !== ReassemblyVerdict.COMPLETE) t.fail(where);
        bump(rawVerdicts, raw.lastVerdict);
        if (REJECT_VERDICTS.has(raw.lastVerdict)) rawRejects++;
      }

      if (raw.pending > rawLimits.maxMessages || raw.reservedBytes > rawLimits.maxTotalBytes) t.fail(`${where}: raw reassembler over its bounds`);
      if (authed.reservedBytes > authedLimits.maxTotalBytes) t.fail(`${where}: authenticated reassembler over its budget`);
    } catch (e) {
      t.fail(`${where}: threw ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return;
    }
  }

  // Every call counted exactly one verdict, and the reject counters add up to the rejects seen.
  t.is(AUTH_TOTAL(keyed.counters), ITERATIONS);
  t.is(AUTH_REJECTS(keyed.counters), keyedRejects);
  t.is(AUTH_TOTAL(unkeyed.counters), ITERATIONS);
  t.is(AUTH_REJECTS(unkeyed.counters), unkeyedRejects);
  t.is(REASSEMBLY_TOTAL(raw.counters), pushes);
  t.is(REASSEMBLY_REJECTS(raw.counters), rawRejects);
  t.is(REASSEMBLY_TOTAL(authed.counters), authedPushes);
  t.is(REASSEMBLY_REJECTS(authed.counters), authedRejects);

  // The corpus reached every verdict, so every path ran.
  for (const v of [DecodeResult.OK, DecodeResult.TOO_SHORT, DecodeResult.BAD_LENGTH, DecodeResult.UNKNOWN_TYPE, DecodeResult.BAD_CRC, DecodeResult.BAD_FRAGMENT, DecodeResult.MALFORMED]) {
    t.true((decodeVerdicts.get(v) ?? 0) > 0, `decoder never said ${DecodeResult[v]}`);
  }
  for (const v of [AuthVerdict.OK, AuthVerdict.UNSIGNED, AuthVerdict.BAD_MAC, AuthVerdict.REPLAYED, AuthVerdict.MALFORMED]) {
    t.true((authVerdicts.get(v) ?? 0) > 0, `open never said ${AuthVerdict[v]}`);
  }
  t.true(unkeyed.counters.unexpectedSignature > 0);
  t.is(keyed.senders, SENDERS.length, 'only verified senders get a replay window');
  for (const v of [
    ReassemblyVerdict.COMPLETE,
    ReassemblyVerdict.STORED,
    ReassemblyVerdict.DUPLICATE,
    ReassemblyVerdict.MALFORMED,
    ReassemblyVerdict.INCONSISTENT,
    ReassemblyVerdict.TOO_LARGE,
    ReassemblyVerdict.TOO_MANY_MESSAGES,
    ReassemblyVerdict.OVER_BUDGET,
    ReassemblyVerdict.BAD_CRC,
    ReassemblyVerdict.SENDER_TOO_MANY_MESSAGES,
    ReassemblyVerdict.ABANDONED,
  ]) {
    t.true((rawVerdicts.get(v) ?? 0) > 0, `raw reassembler never said ${ReassemblyVerdict[v]}`);
  }
  t.true(raw.counters.expired > 0);
  t.true(authed.counters.complete > 0);
  t.true(genuineDelivered > 0, 'genuine transfers get through the noise');
  t.log(
    `decoder ${JSON.stringify(Object.fromEntries([...decodeVerdicts].map(([k, n]) => [DecodeResult[k], n])))}; ` +
      `open ${JSON.stringify(keyed.counters)}; raw ${JSON.stringify(raw.counters)}; authenticated ${JSON.stringify(authed.counters)}; ` +
      `transfers started ${streams.length}, delivered ${genuineDelivered}`,
  );
});
