import test from 'ava';
import {
  LACPDU_FRAME_LENGTH,
  LACP_STATE_ACTIVITY,
  LACP_STATE_AGGREGATION,
  LACP_STATE_COLLECTING,
  LACP_STATE_DEFAULTED,
  LACP_STATE_DISTRIBUTING,
  LACP_STATE_EXPIRED,
  LACP_STATE_SYNCHRONIZATION,
  LACP_STATE_TIMEOUT,
  LacpduResult,
  createDecodedLacpdu,
  decodeLacpdu,
  describeState,
  encodeLacpdu,
  lacpduResultName,
  type Lacpdu,
} from '../../../../src/bond/lacp/lacpdu.js';
import { formatMac, macFromNumber, parseMac } from '../../../../src/net/ethernet.js';
import { between, prng } from '../../shm/fixtures/prng.js';

/**
 * A LACPDU as a Linux bond port sends it to a switch once both ends are collecting and
 * distributing, written out byte by byte.
 */
const FIXTURE = Uint8Array.from([
  // Ethernet header
  0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, // destination: Slow_Protocols_Multicast
  0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, // source: the port's MAC
  0x88, 0x09,                         // EtherType: Slow Protocols
  // LACPDU
  0x01,                               // subtype: LACP
  0x01,                               // version 1
  // Actor Information TLV
  0x01, 0x14,                         // type 1, length 20
  0xff, 0xff,                         // actor system priority 65535
  0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, // actor system 02:aa:00:00:00:01
  0x00, 0x09,                         // actor key 9 (1 Gb/s, full duplex)
  0x00, 0xff,                         // actor port priority 255
  0x00, 0x01,                         // actor port 1
  0x3d,                               // actor state: Activity, Aggregation, Sync, Collecting, Distributing
  0x00, 0x00, 0x00,                   // reserved
  // Partner Information TLV
  0x02, 0x14,                         // type 2, length 20
  0x80, 0x00,                         // partner system priority 32768
  0x00, 0x1d, 0xe6, 0xd5, 0x27, 0x80, // partner system 00:1d:e6:d5:27:80
  0x00, 0x01,                         // partner key 1
  0x80, 0x00,                         // partner port priority 32768
  0x01, 0x09,                         // partner port 265
  0x3f,                               // partner state: as the actor, plus LACP_Timeout (short)
  0x00, 0x00, 0x00,                   // reserved
  // Collector Information TLV
  0x03, 0x10,                         // type 3, length 16
  0x00, 0x00,                         // collector max delay 0
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // reserved (12)
  // Terminator TLV
  0x00, 0x00,                         // type 0, length 0
  ...new Array<number>(50).fill(0),   // reserved (50)
]);

const PORT_MAC = parseMac('02:aa:00:00:00:01');

function fixturePdu(): Lacpdu {
  return {
    version: 1,
    actor: { systemPriority: 65535, system: 0x02aa_0000_0001, key: 9, portPriority: 255, port: 1, state: 0x3d },
    partner: { systemPriority: 32768, system: 0x001d_e6d5_2780, key: 1, portPriority: 32768, port: 265, state: 0x3f },
    collectorMaxDelay: 0,
  };
}

test('the fixture is a 124-byte frame (110-byte LACPDU)', (t) => {
  t.is(FIXTURE.length, 124);
  t.is(LACPDU_FRAME_LENGTH, 124);
});

test('the fixture decodes field by field', (t) => {
  const d = createDecodedLacpdu();
  t.is(decodeLacpdu(FIXTURE, 0, FIXTURE.length, d), LacpduResult.OK);
  t.is(formatMac(macFromNumber(d.srcMac)), '02:aa:00:00:00:01');
  t.is(d.subtype, 1);
  t.is(d.version, 1);
  t.is(d.actor.systemPriority, 65535);
  t.is(formatMac(macFromNumber(d.actor.system)), '02:aa:00:00:00:01');
  t.is(d.actor.key, 9);
  t.is(d.actor.portPriority, 255);
  t.is(d.actor.port, 1);
  t.is(d.actor.state, LACP_STATE_ACTIVITY | LACP_STATE_AGGREGATION | LACP_STATE_SYNCHRONIZATION | LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING);
  t.is(d.partner.systemPriority, 32768);
  t.is(formatMac(macFromNumber(d.partner.system)), '00:1d:e6:d5:27:80');
  t.is(d.partner.key, 1);
  t.is(d.partner.portPriority, 32768);
  t.is(d.partner.port, 265);
  t.is(d.partner.state, 0x3f);
  t.is(d.collectorMaxDelay, 0);
});

test('encoding the fixture PDU gives the fixture bytes', (t) => {
  const out = new Uint8Array(200).fill(0xee); // dirty: reserved bytes must be written as zeros
  t.is(encodeLacpdu(out, 10, fixturePdu(), PORT_MAC), LACPDU_FRAME_LENGTH);
  t.deepEqual([...out.subarray(10, 10 + LACPDU_FRAME_LENGTH)], [...FIXTURE]);
  t.is(out[9], 0xee);
  t.is(out[10 + LACPDU_FRAME_LENGTH], 0xee);
});

test('decode at an offset, and encode → decode round trip', (t) => {
  const buf = new Uint8Array(300);
  const pdu = fixturePdu();
  pdu.actor.state = 0xc7;
  pdu.collectorMaxDelay = 0x1234;
  encodeLacpdu(buf, 33, pdu, PORT_MAC);
  const d = createDecodedLacpdu();
  t.is(decodeLacpdu(buf, 33, LACPDU_FRAME_LENGTH, d), LacpduResult.OK);
  t.deepEqual(d.actor, pdu.actor);
  t.deepEqual(d.partner, pdu.partner);
  t.is(d.collectorMaxDelay, 0x1234);
});

test('encode refuses programming errors', (t) => {
  const pdu = fixturePdu();
  t.throws(() => encodeLacpdu(new Uint8Array(123), 0, pdu, PORT_MAC), { instanceOf: RangeError });
  t.throws(() => encodeLacpdu(new Uint8Array(200), 100, pdu, PORT_MAC), { instanceOf: RangeError });
  pdu.actor.key = 0x10000;
  t.throws(() => encodeLacpdu(new Uint8Array(200), 0, pdu, PORT_MAC), { message: /actor\.key/ });
});

function variant(edit: (b: Uint8Array) => void): Uint8Array {
  const b = Uint8Array.from(FIXTURE);
  edit(b);
  return b;
}

const CASES: Array<{ name: string; frame: Uint8Array; length?: number; expect: LacpduResult }> = [
  { name: 'another EtherType (IPv4)', frame: variant((b) => { b[12] = 0x08; b[13] = 0x00; }), expect: LacpduResult.NOT_SLOW_PROTOCOL },
  { name: 'unicast destination', frame: variant((b) => { b[0] = 0x02; }), expect: LacpduResult.BAD_DESTINATION },
  { name: 'Marker PDU (subtype 2)', frame: variant((b) => { b[14] = 2; }), expect: LacpduResult.NOT_LACP },
  { name: 'OAM (subtype 3)', frame: variant((b) => { b[14] = 3; }), expect: LacpduResult.NOT_LACP },
  { name: 'version 0', frame: variant((b) => { b[15] = 0; }), expect: LacpduResult.BAD_VERSION },
  { name: 'actor TLV type 2', frame: variant((b) => { b[16] = 2; }), expect: LacpduResult.BAD_TLV },
  { name: 'actor TLV length 19', frame: variant((b) => { b[17] = 19; }), expect: LacpduResult.BAD_TLV },
  { name: 'partner TLV type 1', frame: variant((b) => { b[36] = 1; }), expect: LacpduResult.BAD_TLV },
  { name: 'collector TLV length 14', frame: variant((b) => { b[57] = 14; }), expect: LacpduResult.BAD_TLV },
  { name: 'version 1 without its terminator', frame: variant((b) => { b[72] = 4; b[73] = 6; }), expect: LacpduResult.BAD_TLV },
  { name: 'version 2 with a TLV where version 1 ends: read as version 1', frame: variant((b) => { b[15] = 2; b[72] = 4; b[73] = 6; }), expect: LacpduResult.OK },
  { name: '13 bytes', frame: FIXTURE, length: 13, expect: LacpduResult.TRUNCATED },
  { name: 'header only', frame: FIXTURE, length: 14, expect: LacpduResult.TRUNCATED },
  { name: 'one byte short', frame: FIXTURE, length: 123, expect: LacpduResult.TRUNCATED },
  { name: 'minimum Ethernet frame (60 bytes)', frame: FIXTURE, length: 60, expect: LacpduResult.TRUNCATED },
  { name: 'longer frame (FCS kept): accepted', frame: Uint8Array.from([...FIXTURE, 1, 2, 3, 4]), expect: LacpduResult.OK },
];

for (const c of CASES) {
  test(`decode: ${c.name} → ${lacpduResultName(c.expect)}`, (t) => {
    const d = createDecodedLacpdu();
    t.is(lacpduResultName(decodeLacpdu(c.frame, 0, c.length ?? c.frame.length, d)), lacpduResultName(c.expect));
  });
}

test('decode: offset and length outside the buffer are TRUNCATED, not an exception', (t) => {
  const d = createDecodedLacpdu();
  t.is(decodeLacpdu(FIXTURE, 1, FIXTURE.length, d), LacpduResult.TRUNCATED);
  t.is(decodeLacpdu(FIXTURE, -1, 10, d), LacpduResult.TRUNCATED);
  t.is(decodeLacpdu(FIXTURE, 0.5, 100, d), LacpduResult.TRUNCATED);
  t.is(decodeLacpdu(FIXTURE, 0, Number.NaN, d), LacpduResult.TRUNCATED);
});

test('describeState names the set bits', (t) => {
  t.is(describeState(0), 'none');
  t.is(describeState(0x3d), 'LACP_Activity,Aggregation,Synchronization,Collecting,Distributing');
  t.is(describeState(LACP_STATE_TIMEOUT | LACP_STATE_DEFAULTED | LACP_STATE_EXPIRED), 'LACP_Timeout,Defaulted,Expired');
  t.is(describeState(0xff).split(',').length, 8);
});

test('fuzz: random bytes, mutations and truncations never throw', (t) => {
  const rnd = prng(0x1ac9);
  const d = createDecodedLacpdu();
  const counts = new Map<LacpduResult, number>();
  for (let i = 0; i < 20_000; i++) {
    let frame: Uint8Array;
    const kind = i % 3;
    if (kind === 0) {
      frame = new Uint8Array(between(rnd, 0, 200));
      for (let j = 0; j < frame.length; j++) frame[j] = between(rnd, 0, 255);
      if (frame.length >= 16 && rnd() < 0.5) frame.set([0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0x88, 0x09, 1, 1]);
    } else {
      frame = Uint8Array.from(FIXTURE);
      const flips = between(rnd, 1, 4);
      for (let j = 0; j < flips; j++) frame[between(rnd, 12, frame.length - 1)] = between(rnd, 0, 255);
    }
    const offset = kind === 2 ? between(rnd, -2, frame.length + 2) : 0;
    const length = kind === 2 ? between(rnd, -2, frame.length + 2) : between(rnd, 0, frame.length);
    let r: LacpduResult;
    try {
      r = decodeLacpdu(frame, offset, length, d);
    } catch (err) {
      t.fail(`iteration ${i} threw ${String(err)}`);
      return;
    }
    counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  // The generator reaches every verdict.
  for (const r of [LacpduResult.OK, LacpduResult.NOT_SLOW_PROTOCOL, LacpduResult.NOT_LACP, LacpduResult.BAD_TLV, LacpduResult.TRUNCATED]) {
    t.true((counts.get(r) ?? 0) > 0, lacpduResultName(r));
  }
});
