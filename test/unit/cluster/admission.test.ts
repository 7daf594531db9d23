import test from 'ava';
import { admission, macKeyToString, UnauthenticatedPeers } from '../../../src/cluster/admission.js';

const peer = (table: UnauthenticatedPeers, key: number, joined = false, now = 0): void => void table.note(key, 'BAD_MAC', joined, now);

test('a node that served is never held; one that listens waits', (t) => {
  const table = new UnauthenticatedPeers(1000);
  peer(table, 1, true);
  t.is(admission({ serving: true, listening: false, verifiedGroup: 1, verifiedServing: false, peers: table.current(0) }), 'serve');
  t.is(admission({ serving: false, listening: true, verifiedGroup: 9, verifiedServing: false, peers: [] }), 'listening');
});

test('a newcomer serves only if its verified group outnumbers the unauthenticated peers and none of them serves', (t) => {
  const table = new UnauthenticatedPeers(1000);
  const decide = (group: number): string => admission({ serving: false, listening: false, verifiedGroup: group, verifiedServing: false, peers: table.current(10) });
  t.is(decide(1), 'serve', 'nobody else: serve');
  peer(table, 1);
  t.is(decide(1), 'held', '1 vs 1: a tie serves nobody');
  t.is(decide(2), 'serve', '2 vs 1');
  peer(table, 2);
  t.is(decide(2), 'held', '2 vs 2');
  peer(table, 3, true);
  t.is(decide(10), 'held', 'a peer that serves holds any newcomer');
});

test('a newcomer that can verify a serving peer joins it, whatever it cannot authenticate (a flood of spoofed MACs keeps no restarted node out)', (t) => {
  const table = new UnauthenticatedPeers(1000);
  for (let k = 1; k <= 64; k++) peer(table, k, k % 2 === 0);
  const peers = table.current(10);
  t.is(admission({ serving: false, listening: false, verifiedGroup: 3, verifiedServing: true, peers }), 'serve');
  t.is(admission({ serving: false, listening: false, verifiedGroup: 3, verifiedServing: false, peers }), 'held', 'no verified peer serves: the rule above holds');
  t.is(admission({ serving: false, listening: true, verifiedGroup: 3, verifiedServing: true, peers }), 'listening', 'it still listens first');
});

test('entries expire after the death timeout, are bounded (LRU, counted) and keep the latest verdict', (t) => {
  const table = new UnauthenticatedPeers(1000, 3);
  t.truthy(table.note(0x02_00_00_00_00_01, 'UNSIGNED', false, 0), 'new');
  t.is(table.note(0x02_00_00_00_00_01, 'BAD_MAC', true, 500), undefined, 'known: refreshed');
  t.deepEqual(table.current(600).map((p) => [p.mac, p.verdict, p.claimsJoined]), [['02:00:00:00:00:01', 'BAD_MAC', true]]);
  t.deepEqual(table.current(1500), [], 'silent for 1000 ms: gone');
  for (let k = 10; k < 20; k++) table.note(k, 'BAD_MAC', false, 2000);
  t.is(table.size, 3);
  t.is(table.evicted, 7);
  t.deepEqual(table.current(2000, (k) => k === 19).map((p) => p.macKey), [17, 18], 'members excluded');
  t.is(macKeyToString(0x02_bf_0a_00_00_64), '02:bf:0a:00:00:64');
});
