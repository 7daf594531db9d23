import test from 'ava';
import { randomBytes } from 'node:crypto';
import { compileRules } from '../../../src/cluster/port-rules.js';
import { encodeIdentity, MessageType } from '../../../src/net/cluster-message.js';
import { ControlCluster, forgeFrame } from './fixtures/control-cluster.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const D = '02:00:00:00:00:0d';
const KEY = randomBytes(32);
const DIGEST = compileRules([]).digest;

/** The rules block every node sends (no port rules), then `identity`. */
function tail(identity: Uint8Array): Uint8Array {
  const rules = Uint8Array.of(0x52, 0, DIGEST >>> 24, (DIGEST >>> 16) & 0xff, (DIGEST >>> 8) & 0xff, DIGEST & 0xff);
  const out = new Uint8Array(rules.length + identity.length);
  out.set(rules);
  out.set(identity, rules.length);
  return out;
}

test('every node announces its name and address: status lists them beside each MAC, this node included', async (t) => {
  const c = new ControlCluster();
  for (const mac of [A, B, C]) c.add(mac, { key: KEY });
  await c.run(1000);
  const nodes = c.nodes.get(A)!.plane.status().nodes;
  t.deepEqual(
    nodes.map((n) => [n.mac, n.name, n.address, n.self]),
    [
      [A, 'node-0a', '10.0.0.10', true],
      [B, 'node-0b', '10.0.0.11', false],
      [C, 'node-0c', '10.0.0.12', false],
    ],
  );
  t.true(nodes.every((n) => n.joined), 'each says it serves');
  t.deepEqual(c.nodes.get(A)!.plane.status().control.rejected, {});
});

test('log lines (and so the events) of joins, departures and deaths name the node beside its MAC', async (t) => {
  const c = new ControlCluster();
  c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  await c.run(1000);
  c.add(C, { key: KEY });
  await c.run(1000);
  c.stop(C);
  await c.run(500);
  const fields = c.nodes.get(A)!.events.flatMap((e) => (e.type === 'log' ? [e.fields] : []));
  const joined = fields.find((f) => f['event'] === 'node-joined' && f['node'] === C);
  t.like(joined, { name: 'node-0c', address: '10.0.0.12' });
  t.like(fields.find((f) => f['event'] === 'node-left' && f['node'] === C), { name: 'node-0c', address: '10.0.0.12' });
  t.true(c.logs(A).includes('node node-0c (10.0.0.12, 02:00:00:00:00:0c) left the cluster'), c.logs(A).join('\n'));
  const view = fields.filter((f) => f['event'] === 'view').at(-1);
  t.deepEqual(view?.['names'], ['node-0a', 'node-0b']);
  t.is(c.nodes.get(A)!.plane.perSenderState.identities, 1, 'the departed node\'s name is forgotten (bounded by the table)');
});

test('a malformed identity block is counted and dropped: the message stands, the node has no name, nothing throws', async (t) => {
  const c = new ControlCluster();
  c.add(A, { key: KEY });
  c.add(B, { key: KEY });
  await c.run(1000);
  // A space in the name: no node name; the JOIN itself is a good one.
  const bad = new Uint8Array(8);
  encodeIdentity(bad, 0, 'x', 0x0a00000d);
  bad[7] = 0x20;
  c.wire.inject(forgeFrame({ type: MessageType.JOIN, src: D, key: KEY, tail: tail(bad), incarnation: 99 }));
  // Lengths past the end of the message.
  const long = new Uint8Array(8);
  encodeIdentity(long, 0, 'y', 0);
  long[1] = 250;
  c.wire.inject(forgeFrame({ type: MessageType.JOIN, src: D, key: KEY, tail: tail(long), incarnation: 99, messageId: 2 }));
  await c.run(50);
  const status = c.nodes.get(A)!.plane.status();
  t.is(status.control.rejected['identity-block-malformed'], 2);
  const d = status.nodes.find((n) => n.mac === D);
  t.truthy(d, 'the JOIN was taken');
  t.is(d?.name, '');
  t.is(d?.address, '');
});
