import test from 'ava';
import { HANDLER_API_VERSION, UNTRACKED } from '../../../src/handlers/handler.js';
import { DEFAULT_UDP_IDLE_TIMEOUT_SECONDS, UDP_FRAGMENT, udpHandler } from '../../../src/handlers/udp.js';
import { IPF_MF, IPPROTO_UDP, parseIPv4 } from '../../../src/net/ipv4.js';
import { TrackingTable } from '../../../src/shm/tracking-table.js';
import { CLIENT_IP, entries, keyOf, makeTracker, parsedFrame, type FrameSpec } from './fixtures/frames.js';

const IDLE = DEFAULT_UDP_IDLE_TIMEOUT_SECONDS;
const T0 = 2_000_000;
/** 10.0.1.7:5353 → VIP:53. */
const LO = CLIENT_IP;
const HI = ((5353 << 16) | 53) >>> 0;

const KEY_CASES: Array<{ what: string; frame: FrameSpec; key: [number, number, number] }> = [
  { what: 'a datagram: source IP, source port << 16 | destination port', frame: { l4Length: 8 }, key: [LO, HI, 0] },
  // The dispatcher marks every fragment, the first too, as not firstFragment (ParsedFrame).
  { what: 'the first fragment (MF, offset 0), as the dispatcher hands it: no ports, like the later ones', frame: { flags: IPF_MF }, key: [LO, 0, UDP_FRAGMENT] },
  { what: 'a non-first fragment: key (source IP, 0)', frame: { fragOffset: 1480 }, key: [LO, 0, UDP_FRAGMENT] },
  { what: 'a UDP header shorter than 8 bytes', frame: { l4Length: 7 }, key: [LO, 0, UDP_FRAGMENT] },
  { what: 'a 4-byte UDP header padded to 60 bytes', frame: { l4Length: 4, padTo: 60 }, key: [LO, 0, UDP_FRAGMENT] },
];

for (const c of KEY_CASES) {
  test(`affinityKey: ${c.what}`, (t) => {
    t.deepEqual(keyOf(udpHandler, parsedFrame({ protocol: IPPROTO_UDP, sport: 5353, dport: 53, ...c.frame })), c.key);
  });
}

test('the handler: protocol 17, API v2, 120 s idle timeout, keys read as client:port→port', (t) => {
  t.is(udpHandler.protocol, 17);
  t.is(udpHandler.name, 'udp');
  t.is(udpHandler.apiVersion, HANDLER_API_VERSION);
  t.is(DEFAULT_UDP_IDLE_TIMEOUT_SECONDS, 120);
  t.is(udpHandler.trackerBytes(777), TrackingTable.byteLength(777));
  t.is(udpHandler.describeKey!(parseIPv4('192.168.1.20'), ((5353 << 16) | 53) >>> 0), '192.168.1.20:5353→53');
});

test('a flow is elected once, stays with its owner while datagrams come, and expires at the idle timeout', (t) => {
  const tr = makeTracker(udpHandler, IDLE);
  t.is(tr.isRelated(LO, HI, 0, T0), UNTRACKED);
  tr.assigned(LO, HI, 2, 0, T0);
  t.is(tr.isRelated(LO, HI, 0, T0 + 60), 2);
  t.is(tr.isRelated(LO, ((5354 << 16) | 53) >>> 0, 0, T0 + 60), UNTRACKED, 'another source port is another flow');
  t.deepEqual(entries(tr), [[LO, HI, 2, T0 + 60]], 'refreshed');
  t.is(tr.expire(T0 + 60 + IDLE, 2048), 0, 'idle exactly the timeout: kept');
  t.is(tr.isRelated(LO, HI, 0, T0 + 60 + IDLE + 1), UNTRACKED, 'past it: not answered for before the sweep');
  t.is(tr.expire(T0 + 60 + IDLE + 1, 2048), 1);
  t.is(tr.size, 0);
});

test('fragments are decided by the election and never recorded', (t) => {
  const tr = makeTracker(udpHandler, IDLE);
  const [lo, hi, flags] = keyOf(udpHandler, parsedFrame({ protocol: IPPROTO_UDP, fragOffset: 8 }));
  t.is(tr.isRelated(lo, hi, flags, T0), UNTRACKED);
  tr.assigned(lo, hi, 3, flags, T0);
  t.is(tr.size, 0);
  t.is(tr.isRelated(lo, hi, flags, T0), UNTRACKED);
});

test('nodeDied and a saveStatus / loadStatus round trip', (t) => {
  const tr = makeTracker(udpHandler, IDLE);
  for (let port = 1; port <= 20; port++) tr.assigned(LO, ((port << 16) | 53) >>> 0, port <= 5 ? 4 : 1, 0, T0 + port);
  t.is(tr.nodeDied(4), 5);
  t.is(tr.size, 15);
  const saved = entries(tr);
  const other = makeTracker(udpHandler, IDLE);
  for (const [lo, hi, owner, lastSeen] of saved) other.loadStatus(lo!, hi!, owner!, lastSeen!);
  t.deepEqual(entries(other), saved);
  t.is(other.isRelated(LO, ((20 << 16) | 53) >>> 0, 0, T0 + 30), 1);
  t.is(other.isRelated(LO, ((3 << 16) | 53) >>> 0, 0, T0 + 30), UNTRACKED);
});
