import test from 'ava';
import { HANDLER_API_VERSION, UNTRACKED, type Tracker } from '../../../src/handlers/handler.js';
import { createTcpHandler, DEFAULT_TCP_IDLE_TIMEOUT_SECONDS, TCP_FIN, TCP_FRAGMENT, TCP_RST, TCP_SYN, tcpHandler } from '../../../src/handlers/tcp.js';
import { IPF_MF, IPPROTO_TCP, parseIPv4 } from '../../../src/net/ipv4.js';
import { TrackingTable } from '../../../src/shm/tracking-table.js';
import { CLIENT_IP, entries, keyOf, makeTracker, parsedFrame, TH, type FrameSpec } from './fixtures/frames.js';

const IDLE = DEFAULT_TCP_IDLE_TIMEOUT_SECONDS;
const CLOSING = 10;
/** The fake clock's start, u32 seconds. */
const T0 = 1_000_000;
/** A connection 10.0.1.7:40000 → VIP:80, as affinityKey keys it. */
const LO = CLIENT_IP;
const HI = ((40000 << 16) | 80) >>> 0;
const ACK = 0;

interface KeyCase {
  what: string;
  frame: FrameSpec;
  key: [number, number, number];
}

const KEY_CASES: KeyCase[] = [
  { what: 'SYN: a new connection', frame: { tcpFlags: TH.SYN }, key: [LO, HI, TCP_SYN] },
  { what: 'SYN+ACK is not a new connection', frame: { tcpFlags: TH.SYN | TH.ACK }, key: [LO, HI, 0] },
  { what: 'a plain ACK', frame: { tcpFlags: TH.ACK | TH.PSH }, key: [LO, HI, 0] },
  { what: 'FIN+ACK', frame: { tcpFlags: TH.FIN | TH.ACK }, key: [LO, HI, TCP_FIN] },
  { what: 'RST', frame: { tcpFlags: TH.RST }, key: [LO, HI, TCP_RST] },
  { what: 'RST+ACK', frame: { tcpFlags: TH.RST | TH.ACK }, key: [LO, HI, TCP_RST] },
  { what: 'ports 65535 → 443: keyHi is a u32 with its top bit set', frame: { sport: 65535, dport: 443, tcpFlags: TH.ACK }, key: [LO, 0xffff01bb, 0] },
  // The dispatcher marks every fragment, the first too, as not firstFragment (ParsedFrame), so
  // all of a datagram's fragments get one key and land on one node.
  { what: 'the first fragment (MF, offset 0), as the dispatcher hands it: no ports, like the later ones', frame: { flags: IPF_MF, tcpFlags: TH.SYN }, key: [LO, 0, TCP_FRAGMENT] },
  { what: 'a non-first fragment: no ports, key (source IP, 0)', frame: { fragOffset: 1480, sport: 1234, dport: 80 }, key: [LO, 0, TCP_FRAGMENT] },
  { what: 'a TCP header cut before its flags byte (13 bytes)', frame: { l4Length: 13, tcpFlags: undefined }, key: [LO, 0, TCP_FRAGMENT] },
  { what: 'a 4-byte TCP header padded to 60 bytes: the padding is not a header', frame: { l4Length: 4, padTo: 60 }, key: [LO, 0, TCP_FRAGMENT] },
  { what: 'exactly 14 bytes: enough', frame: { l4Length: 14, tcpFlags: TH.FIN }, key: [LO, HI, TCP_FIN] },
];

for (const c of KEY_CASES) {
  test(`affinityKey: ${c.what}`, (t) => {
    t.deepEqual(keyOf(tcpHandler, parsedFrame({ protocol: IPPROTO_TCP, ...c.frame })), c.key);
  });
}

test('the handler: protocol 6, API v2, one TrackingTable a shard, keys read as client:port→port', (t) => {
  t.is(tcpHandler.protocol, 6);
  t.is(tcpHandler.name, 'tcp');
  t.is(tcpHandler.apiVersion, HANDLER_API_VERSION);
  t.is(tcpHandler.trackerBytes(5000), TrackingTable.byteLength(5000));
  t.is(tcpHandler.describeKey!(parseIPv4('10.0.0.5'), ((40312 << 16) | 80) >>> 0), '10.0.0.5:40312→80');
  t.is(tcpHandler.describeKey!(parseIPv4('10.0.0.5'), 0xffff01bb), '10.0.0.5:65535→443');
  t.is(tcpHandler.describeKey!(parseIPv4('10.0.0.5'), 0), '10.0.0.5', 'a portless (fragment) key: the source alone');
  t.true(DEFAULT_TCP_IDLE_TIMEOUT_SECONDS > 7200, "longer than Linux's keepalive time");
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => createTcpHandler({ closingTimeoutSeconds: bad }), { instanceOf: RangeError }, `closing timeout ${bad}`);
  }
});

function tcpTracker(closingTimeoutSeconds = CLOSING, idle = IDLE): Tracker {
  return makeTracker(createTcpHandler({ closingTimeoutSeconds }), idle);
}

/** Opens the connection as the actor does: untracked SYN, elected owner recorded. */
function open(tr: Tracker, owner: number, now: number, lo = LO, hi = HI): void {
  if (tr.isRelated(lo, hi, TCP_SYN, now) !== UNTRACKED) throw new Error('the SYN of a new connection must be untracked');
  tr.assigned(lo, hi, owner, TCP_SYN, now);
}

/** Runs the expiry sweep over the whole (small) shard. */
function sweep(tr: Tracker, now: number): number {
  return tr.expire(now, 4096);
}

test('a SYN is elected and recorded; the connection then stays with its owner and is refreshed', (t) => {
  const tr = tcpTracker();
  t.is(tr.isRelated(LO, HI, TCP_SYN, T0), UNTRACKED);
  tr.assigned(LO, HI, 3, TCP_SYN, T0);
  t.is(tr.size, 1);
  t.deepEqual(entries(tr), [[LO, HI, 3, T0]]);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 5), 3);
  t.is(tr.isRelated(LO, (HI + 1) >>> 0, ACK, T0 + 5), UNTRACKED, 'another source port is another connection');
  t.deepEqual(entries(tr), [[LO, HI, 3, T0 + 5]], 'refreshed to the frame time');
  t.is(tr.isRelated(LO, HI, TCP_SYN, T0 + 6), 3, 'a retransmitted SYN of a live connection stays put');
  t.deepEqual({ ...tr.counters!() }, { midstreamAdopted: 0, closed: 0, reopened: 0 });
});

test('an established connection expires at the idle timeout under the fake clock, not before', (t) => {
  const tr = tcpTracker();
  open(tr, 2, T0);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 100), 2);
  t.is(sweep(tr, T0 + 100 + IDLE), 0, 'idle exactly the timeout: kept');
  t.is(tr.isRelated(LO, HI, ACK, T0 + 100 + IDLE + 1), UNTRACKED, 'past the timeout it is not answered for, swept or not');
  t.is(sweep(tr, T0 + 100 + IDLE + 1), 1);
  t.is(tr.size, 0);
});

test('a FIN shortens the life to the closing timeout from the latest frame; the sweep removes it then, not before', (t) => {
  const tr = tcpTracker();
  open(tr, 2, T0);
  t.is(tr.isRelated(LO, HI, TCP_FIN, T0 + 50), 2, 'the FIN itself goes to the owner');
  t.is(tr.counters!().closed, 1);
  t.is(sweep(tr, T0 + 50 + CLOSING), 0, 'kept for the closing timeout');
  // The last ACK refreshes it, but only to the shortened life.
  t.is(tr.isRelated(LO, HI, ACK, T0 + 55), 2);
  t.is(tr.isRelated(LO, HI, TCP_FIN, T0 + 56), 2, 'a retransmitted FIN');
  t.is(tr.counters!().closed, 1, 'closing is counted once a connection');
  t.is(sweep(tr, T0 + 56 + CLOSING), 0);
  t.is(sweep(tr, T0 + 56 + CLOSING + 1), 1, 'gone one second after its closing life');
  t.is(tr.size, 0);
});

test('an RST closes like a FIN', (t) => {
  const tr = tcpTracker();
  open(tr, 4, T0);
  t.is(tr.isRelated(LO, HI, TCP_RST, T0 + 1), 4);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 1 + CLOSING), 4);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 1 + 2 * CLOSING + 1), UNTRACKED, 'past the closing life');
});

test('a SYN on a closing connection is a new connection: untracked, elected afresh, then lives the idle timeout', (t) => {
  const tr = tcpTracker();
  open(tr, 2, T0);
  tr.isRelated(LO, HI, TCP_FIN, T0 + 10);
  t.is(tr.isRelated(LO, HI, TCP_SYN, T0 + 12), UNTRACKED, 'the client reuses its port');
  t.is(tr.counters!().reopened, 1);
  tr.assigned(LO, HI, 5, TCP_SYN, T0 + 12);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 13), 5, 'the new election holds');
  t.is(tr.size, 1);
  t.is(sweep(tr, T0 + 13 + CLOSING + 1), 0, 'no longer closing: the new connection is not swept at the closing timeout');
  t.is(tr.isRelated(LO, HI, ACK, T0 + 13 + IDLE), 5);
  t.is(tr.counters!().midstreamAdopted, 0, 'a reopening SYN is no adoption');
});

test('mid-stream: a segment of an unknown connection is elected, recorded, and counted', (t) => {
  const tr = tcpTracker();
  // A newcomer that missed the SYN sees an ACK first.
  t.is(tr.isRelated(LO, HI, ACK, T0), UNTRACKED);
  tr.assigned(LO, HI, 7, ACK, T0);
  t.is(tr.counters!().midstreamAdopted, 1);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 1), 7, 'it stays put from now on');

  // An entry that expired (not yet swept) is adopted the same way.
  t.is(tr.isRelated(LO, HI, ACK, T0 + 1 + IDLE + 1), UNTRACKED);
  tr.assigned(LO, HI, 8, ACK, T0 + 1 + IDLE + 1);
  t.is(tr.counters!().midstreamAdopted, 2);
  t.is(tr.isRelated(LO, HI, ACK, T0 + 1 + IDLE + 2), 8);
  t.is(tr.size, 1);

  // A FIN of an unknown connection is adopted and starts closing at once.
  const other = ((40001 << 16) | 80) >>> 0;
  t.is(tr.isRelated(LO, other, TCP_FIN, T0), UNTRACKED);
  tr.assigned(LO, other, 9, TCP_FIN, T0);
  t.deepEqual({ ...tr.counters!() }, { midstreamAdopted: 3, closed: 1, reopened: 0 });
  t.is(tr.isRelated(LO, other, ACK, T0 + CLOSING), 9);
  t.is(tr.isRelated(LO, other, TCP_SYN, T0 + CLOSING), UNTRACKED, 'it is closing: a SYN there is elected afresh');
  t.is(tr.isRelated(LO, other, ACK, T0 + 2 * CLOSING + 1), UNTRACKED, 'it lives the closing timeout only');
});

test('fragments and truncated headers are never tracked', (t) => {
  const tr = tcpTracker();
  const [lo, hi, flags] = keyOf(tcpHandler, parsedFrame({ fragOffset: 1480 }));
  t.is(tr.isRelated(lo, hi, flags, T0), UNTRACKED);
  tr.assigned(lo, hi, 2, flags, T0);
  t.is(tr.size, 0, 'nothing recorded');
  t.is(tr.isRelated(lo, hi, flags, T0 + 1), UNTRACKED, 'still decided by the election');
  t.is(tr.counters!().midstreamAdopted, 0);
});

test('nodeDied drops the connections of the dead node only', (t) => {
  const tr = tcpTracker();
  for (let port = 1; port <= 30; port++) open(tr, port % 3 === 0 ? 2 : 1, T0, LO, ((port << 16) | 80) >>> 0);
  t.is(tr.nodeDied(2), 10);
  t.is(tr.size, 20);
  t.is(tr.isRelated(LO, ((3 << 16) | 80) >>> 0, ACK, T0 + 1), UNTRACKED);
  t.is(tr.isRelated(LO, ((4 << 16) | 80) >>> 0, ACK, T0 + 1), 1);
  t.is(tr.nodeDied(2), 0);
});

test('a closing timeout ≥ the idle timeout: a closing connection lives the idle timeout', (t) => {
  const tr = tcpTracker(100, 50);
  open(tr, 2, T0);
  tr.isRelated(LO, HI, TCP_FIN, T0 + 1);
  t.is(sweep(tr, T0 + 1 + 50), 0);
  t.is(sweep(tr, T0 + 1 + 51), 1);
});

test('saveStatus / loadStatus round trip: owners and ages travel, the closing mark does not', (t) => {
  const from = tcpTracker();
  open(from, 2, T0);
  open(from, 3, T0 + 5, LO, ((40001 << 16) | 80) >>> 0);
  open(from, 4, T0 + 6, parseIPv4('10.0.9.9'), ((50000 << 16) | 443) >>> 0);
  from.isRelated(LO, HI, TCP_FIN, T0 + 20);
  const saved = entries(from);
  t.is(saved.length, 3);

  const to = tcpTracker();
  open(to, 9, T0); // whatever it held before is forgotten
  to.clear();
  for (const [lo, hi, owner, lastSeen] of saved) to.loadStatus(lo!, hi!, owner!, lastSeen!);
  t.deepEqual(entries(to), saved);
  t.is(to.isRelated(LO, ((40001 << 16) | 80) >>> 0, ACK, T0 + 30), 3);
  // The closed connection kept its shortened life...
  t.is(sweep(to, T0 + 20 + CLOSING + 1), 1);
  t.is(to.size, 2);
  // ...but not its mark: before that sweep, a SYN reusing its port would have gone to the old
  // owner on this node (see tcp.ts).
  const again = tcpTracker();
  for (const [lo, hi, owner, lastSeen] of saved) again.loadStatus(lo!, hi!, owner!, lastSeen!);
  t.is(again.isRelated(LO, HI, TCP_SYN, T0 + 21), 2);
});
