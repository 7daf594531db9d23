import test from 'ava';
import { DEFAULT_IDLE_TIMEOUT_SECONDS, sourceIpHandler } from '../../../src/handlers/default.js';
import { HANDLER_API_VERSION, UNTRACKED } from '../../../src/handlers/handler.js';
import { IPPROTO_ICMP, IPPROTO_TCP, parseIPv4 } from '../../../src/net/ipv4.js';
import { CLIENT_IP, entries, keyOf, makeTracker, parsedFrame } from './fixtures/frames.js';

const IDLE = DEFAULT_IDLE_TIMEOUT_SECONDS;
const T0 = 3_000_000;
const OTHER = parseIPv4('10.0.2.2');

test('affinityKey: the source IP alone, whatever the protocol, ports or fragment', (t) => {
  t.is(sourceIpHandler.protocol, 0);
  t.is(sourceIpHandler.apiVersion, HANDLER_API_VERSION);
  t.deepEqual(keyOf(sourceIpHandler, parsedFrame({ protocol: IPPROTO_ICMP })), [CLIENT_IP, 0, 0]);
  t.deepEqual(keyOf(sourceIpHandler, parsedFrame({ protocol: IPPROTO_TCP, sport: 1, dport: 2 })), [CLIENT_IP, 0, 0]);
  t.deepEqual(keyOf(sourceIpHandler, parsedFrame({ protocol: IPPROTO_TCP, fragOffset: 1480 })), [CLIENT_IP, 0, 0]);
  t.is(sourceIpHandler.describeKey!(CLIENT_IP, 0), '10.0.1.7');
});

test('a source is tracked until it is idle longer than the timeout: the boundary second', (t) => {
  const tr = makeTracker(sourceIpHandler, IDLE);
  t.is(tr.isRelated(CLIENT_IP, 0, 0, T0), UNTRACKED);
  tr.assigned(CLIENT_IP, 0, 3, 0, T0);
  t.is(tr.isRelated(CLIENT_IP, 0, 0, T0 + IDLE), 3, 'idle exactly the timeout: still tracked (and refreshed)');
  t.is(tr.expire(T0 + 2 * IDLE, 2048), 0, 'the refresh moved the deadline');
  t.is(tr.isRelated(CLIENT_IP, 0, 0, T0 + 2 * IDLE + 1), UNTRACKED, 'one second more: expired, even before the sweep');
  t.is(tr.size, 1, 'not swept yet');
  t.is(tr.expire(T0 + 2 * IDLE + 1, 2048), 1);
  t.is(tr.size, 0);
});

test('refresh: every frame restarts the idle time; an untouched source expires beside it', (t) => {
  const tr = makeTracker(sourceIpHandler, 100);
  tr.assigned(CLIENT_IP, 0, 1, 0, T0);
  tr.assigned(OTHER, 0, 2, 0, T0);
  for (let now = T0 + 50; now <= T0 + 300; now += 50) t.is(tr.isRelated(CLIENT_IP, 0, 0, now), 1);
  t.is(tr.expire(T0 + 300, 2048), 1, 'the quiet source went, the busy one stayed');
  t.deepEqual(entries(tr), [[CLIENT_IP, 0, 1, T0 + 300]]);
});

test('nodeDied drops the dead node\'s sources, which are then elected afresh', (t) => {
  const tr = makeTracker(sourceIpHandler, IDLE);
  for (let i = 0; i < 40; i++) tr.assigned(OTHER + i, 0, i % 4 === 1 ? 5 : 6, 0, T0);
  t.is(tr.nodeDied(5), 10);
  t.is(tr.size, 30);
  t.is(tr.isRelated(OTHER + 1, 0, 0, T0 + 1), UNTRACKED);
  t.is(tr.isRelated(OTHER + 2, 0, 0, T0 + 1), 6);
  t.is(tr.nodeDied(5), 0);
});
