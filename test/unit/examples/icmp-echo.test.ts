/**
 * The example ICMP echo handler, tested as its author would: loaded through the loader (so the
 * contract check runs), then driven with real frames parsed the way the dispatcher parses them.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { AFFINITY_KEY_WORDS, HANDLER_API_VERSION, UNTRACKED, type ParsedFrame, type ProtocolHandler, type Tracker } from '../../../src/handlers/handler.js';
import { loadHandler, parseHandlerSpec } from '../../../src/handlers/loader.js';
import { IPF_MF, IPPROTO_ICMP, parseIPv4 } from '../../../src/net/ipv4.js';
import { parsedFrameOf } from '../handlers/fixtures/frames.js';
import { ipv4Frame } from '../../fixtures/frames.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/handlers/icmp-echo.js', import.meta.url));
const NOW = 1_750_000_000;
const IDLE = 60;
const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;
const DEST_UNREACHABLE = 3;

let handler: ProtocolHandler;

test.before(async () => {
  handler = await loadHandler(parseHandlerSpec(`icmp=${EXAMPLE}`, '--handler'));
});

interface IcmpSpec {
  src?: string;
  type?: number;
  id?: number;
  seq?: number;
  /** ICMP bytes (header + payload). */
  icmpLength?: number;
  flags?: number;
  fragOffset?: number;
}

/** An Ethernet + IPv4 + ICMP frame, parsed into a ParsedFrame as the dispatcher does. */
function icmpFrame(s: IcmpSpec = {}): ParsedFrame {
  const bytes = ipv4Frame({
    protocol: IPPROTO_ICMP,
    ipSrc: parseIPv4(s.src ?? '10.0.1.7'),
    l4Length: s.icmpLength ?? 64,
    flags: s.flags ?? 0,
    fragOffset: s.fragOffset ?? 0,
  });
  const frame = parsedFrameOf(bytes);
  const l4 = frame.l4;
  if ((s.fragOffset ?? 0) === 0 && (s.icmpLength ?? 64) >= 8) {
    const id = s.id ?? 0x1234;
    const seq = s.seq ?? 1;
    bytes[l4] = s.type ?? ECHO_REQUEST;
    bytes[l4 + 4] = id >> 8;
    bytes[l4 + 5] = id & 0xff;
    bytes[l4 + 6] = seq >> 8;
    bytes[l4 + 7] = seq & 0xff;
  }
  return frame;
}

function keyOf(frame: ParsedFrame): [lo: number, hi: number, flags: number] {
  const out = new Uint32Array(AFFINITY_KEY_WORDS);
  handler.affinityKey(frame, out);
  return [out[0]!, out[1]!, out[2]!];
}

function tracker(capacity = 1024): Tracker {
  return handler.createTracker({ memory: new SharedArrayBuffer(handler.trackerBytes(capacity)), capacity, idleTimeoutSeconds: IDLE });
}

/** What an actor does with a frame: the tracked owner, or the election's pick recorded. */
function deliver(t: Tracker, frame: ParsedFrame, elected: number, now = NOW): number {
  const [lo, hi, flags] = keyOf(frame);
  const owner = t.isRelated(lo, hi, flags, now);
  if (owner !== UNTRACKED) return owner;
  t.assigned(lo, hi, elected, flags, now);
  return elected;
}

test('it loads through the loader: the contract check passes', (t) => {
  t.is(handler.name, 'icmp-echo');
  t.is(handler.protocol, IPPROTO_ICMP);
  t.is(handler.apiVersion, HANDLER_API_VERSION);
});

test('echo requests are keyed (source, identifier) and flagged as echo', (t) => {
  const [lo, hi, flags] = keyOf(icmpFrame({ src: '10.0.1.7', id: 0xbeef }));
  t.is(lo, parseIPv4('10.0.1.7'));
  t.is(hi, 0xbeef);
  t.not(flags, 0);
  // The sequence number is not part of the key: one ping run is one key.
  t.deepEqual(keyOf(icmpFrame({ id: 0xbeef, seq: 1 })), keyOf(icmpFrame({ id: 0xbeef, seq: 99 })));
  // Two ping runs from one client are two keys, so affinity `none` balances them apart.
  t.notDeepEqual(keyOf(icmpFrame({ id: 1 })), keyOf(icmpFrame({ id: 2 })));
});

const untrackedCases: Array<{ what: string; frame: () => ParsedFrame }> = [
  { what: 'destination unreachable', frame: () => icmpFrame({ type: DEST_UNREACHABLE, id: 0x4242 }) },
  { what: 'an echo reply to the VIP', frame: () => icmpFrame({ type: ECHO_REPLY, id: 0x4242 }) },
  { what: 'a later fragment of a big ping', frame: () => icmpFrame({ fragOffset: 1480, icmpLength: 200 }) },
  { what: 'an ICMP header cut short', frame: () => icmpFrame({ icmpLength: 4 }) },
];

for (const c of untrackedCases) {
  test(`${c.what} is keyed (source, 0) and never recorded`, (t) => {
    const frame = c.frame();
    const [lo, hi, flags] = keyOf(frame);
    t.is(lo, parseIPv4('10.0.1.7'));
    t.is(hi, 0);
    t.is(flags, 0);
    const tr = tracker();
    t.is(tr.isRelated(lo, hi, flags, NOW), UNTRACKED);
    tr.assigned(lo, hi, 3, flags, NOW);
    t.is(tr.size, 0);
    t.is(tr.isRelated(lo, hi, flags, NOW), UNTRACKED);
    t.true((tr.counters?.()['nonEchoFrames'] ?? 0) >= 2);
  });
}

test('every fragment of a big ping, the first included, is keyed (source, 0): they land on one node', (t) => {
  const first = icmpFrame({ flags: IPF_MF, id: 0x4242, icmpLength: 1480 });
  const later = icmpFrame({ fragOffset: 1480, icmpLength: 200 });
  t.deepEqual(keyOf(first), keyOf(later));
  t.deepEqual(keyOf(first), [parseIPv4('10.0.1.7'), 0, 0]);
  t.false(first.firstFragment, 'as the dispatcher marks it: every fragment, the first too');
  // A handler must not rely on that: keyed alike even if a first fragment were called first.
  first.firstFragment = true;
  t.deepEqual(keyOf(first), keyOf(later));
});

test('an echo session with identifier 0 is tracked: the flag, not the key, says echo', (t) => {
  const tr = tracker();
  t.is(deliver(tr, icmpFrame({ id: 0 }), 5), 5);
  t.is(deliver(tr, icmpFrame({ id: 0, seq: 2 }), 9), 5);
  const [lo] = keyOf(icmpFrame({ id: 0 }));
  t.is(tr.isRelated(lo, 0, 0, NOW), UNTRACKED, 'an error from the same client is not taken for the session');
});

test('a session sticks to its first owner until it idles out', (t) => {
  const tr = tracker();
  t.is(deliver(tr, icmpFrame({ id: 7, seq: 1 }), 2), 2);
  t.is(deliver(tr, icmpFrame({ id: 7, seq: 2 }), 4, NOW + 1), 2);
  t.is(deliver(tr, icmpFrame({ id: 8, seq: 1 }), 4, NOW + 1), 4, 'another ping run is elected on its own');
  t.is(deliver(tr, icmpFrame({ id: 7, seq: 3 }), 4, NOW + 1 + IDLE), 2, 'refreshed by seq 2: still fresh');
  t.is(deliver(tr, icmpFrame({ id: 7, seq: 4 }), 4, NOW + 2 + 2 * IDLE + 1), 4, 'idle longer than the timeout: elected anew');
});

test('expire() removes idle sessions within its budget, carrying on where it stopped', (t) => {
  const tr = tracker();
  for (let id = 0; id < 10; id++) deliver(tr, icmpFrame({ id }), 1);
  deliver(tr, icmpFrame({ id: 100 }), 1, NOW + IDLE);
  let removed = tr.expire(NOW + IDLE + 1, 4);
  t.is(removed, 4);
  removed += tr.expire(NOW + IDLE + 1, 100);
  t.is(removed, 10);
  t.is(tr.size, 1, 'the fresh session stays');
});

test('the table is bounded by capacity: the oldest session is evicted and counted', (t) => {
  const tr = tracker(8);
  for (let id = 1; id <= 12; id++) deliver(tr, icmpFrame({ id }), 1);
  t.is(tr.size, 8);
  t.is(tr.evictions, 4);
  const [lo] = keyOf(icmpFrame());
  t.is(tr.isRelated(lo, 1, 1, NOW), UNTRACKED, 'the first session went first');
  t.is(tr.isRelated(lo, 12, 1, NOW), 1);
});

test('nodeDied() drops only that node\u2019s sessions', (t) => {
  const tr = tracker();
  for (let id = 1; id <= 6; id++) deliver(tr, icmpFrame({ id }), id % 2 === 0 ? 2 : 3);
  t.is(tr.nodeDied(2), 3);
  t.is(tr.size, 3);
  t.is(tr.nodeDied(2), 0);
});

test('saveStatus() and loadStatus() carry every session to another tracker', (t) => {
  const from = tracker();
  for (let id = 1; id <= 5; id++) deliver(from, icmpFrame({ src: `10.0.2.${id}`, id: 1000 + id }), id);
  const saved: Array<[number, number, number, number]> = [];
  from.saveStatus((lo, hi, owner, lastSeen) => saved.push([lo, hi, owner, lastSeen]));
  t.is(saved.length, 5);
  const to = tracker();
  to.clear();
  for (const [lo, hi, owner, lastSeen] of saved) to.loadStatus(lo, hi, owner, lastSeen);
  t.is(to.size, 5);
  for (let id = 1; id <= 5; id++) {
    const [lo, hi, flags] = keyOf(icmpFrame({ src: `10.0.2.${id}`, id: 1000 + id }));
    t.is(to.isRelated(lo, hi, flags, NOW), id);
  }
});

test('loadStatus() refuses a key it cannot have made (the framework then rolls the shard back)', (t) => {
  const tr = tracker();
  t.throws(() => tr.loadStatus(parseIPv4('10.0.1.7'), 0x10000, 1, NOW), { instanceOf: RangeError, message: /echo identifier/ });
});

test('describeKey() reads as source and identifier', (t) => {
  t.is(handler.describeKey?.(parseIPv4('10.0.1.7'), 4660), '10.0.1.7 echo id 4660');
});
