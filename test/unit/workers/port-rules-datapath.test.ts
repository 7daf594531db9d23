/**
 * Port rules and handlers in the datapath of three simulated nodes on a fake wire: what each
 * node accepts, what is dropped and counted.
 */
import test from 'ava';
import { sourceIpHandler } from '../../../src/handlers/default.js';
import { DROP_FRAME, HANDLER_API_VERSION, UNTRACKED, type ParsedFrame, type ProtocolHandler, type Tracker } from '../../../src/handlers/handler.js';
import { tcpHandler } from '../../../src/handlers/tcp.js';
import { ActorCounter, DispatcherCounter } from '../../../src/workers/counters.js';
import { cluster, ipFrame, publish, purgeDead, runAll, sourceOf, type SimNode } from './fixtures/sim.js';

const TCP = 6;
const UDP = 17;
const SYN = 0x02;
const ACK = 0x10;

/** Which node accepted each source, and how often; throws if two nodes accepted one source. */
function acceptedBy(nodes: SimNode[]): Map<string, number> {
  const owner = new Map<string, number>();
  for (const n of nodes) {
    for (const f of n.sink.frames) {
      const src = sourceOf(f);
      const before = owner.get(src);
      if (before !== undefined && before !== n.id) throw new Error(`${src} accepted by nodes ${before} and ${n.id}`);
      owner.set(src, n.id);
    }
  }
  return owner;
}

const sources = (n: number, net = '10.1.0'): string[] => Array.from({ length: n }, (_, i) => `${net}.${i + 1}`);

test('a disabled port is dropped by every node and counted; other ports are served', (t) => {
  const frames = [...sources(10).map((s) => ipFrame(s, { protocol: TCP, sport: 40000, dport: 9999, tcpFlags: SYN })), ...sources(10, '10.2.0').map((s) => ipFrame(s, { protocol: TCP, sport: 40000, dport: 80, tcpFlags: SYN }))];
  const nodes = cluster(frames, { rules: ['9999/tcp=disabled'] });
  for (const n of nodes) runAll(n);
  const owners = acceptedBy(nodes);
  t.is(owners.size, 10);
  t.true([...owners.keys()].every((s) => s.startsWith('10.2.0.')));
  for (const n of nodes) t.is(n.counters.sum(DispatcherCounter.dropDisabledRule, 0, 1), 10);
});

test('single: every client of the port goes to the priority node, the next takes over when it dies; other ports stay balanced', (t) => {
  const ssh = sources(30).map((s) => ipFrame(s, { protocol: TCP, sport: 40000, dport: 22, tcpFlags: SYN }));
  const web = sources(30, '10.2.0').map((s) => ipFrame(s, { protocol: TCP, sport: 40000, dport: 80, tcpFlags: SYN }));
  const nodes = cluster([...ssh, ...web], { rules: ['22/tcp=single'] });
  const p = (priority: number): number[] => [0xff, 0xff | (priority << 8)];
  const params = { 1: [0xff, 0xff], 2: p(1), 3: p(2) };
  for (const n of nodes) publish(n, [1, 2, 3], true, false, params);
  for (const n of nodes) runAll(n);
  const owners = acceptedBy(nodes);
  t.deepEqual(new Set(sources(30).map((s) => owners.get(s))), new Set([2]), 'port 22: node 2 (priority 1)');
  t.is(new Set(sources(30, '10.2.0').map((s) => owners.get(s))).size, 3, 'port 80: all three nodes');

  const survivors = [nodes[0]!, nodes[2]!];
  for (const n of survivors) {
    publish(n, [1, 3], true, false, params);
    purgeDead(n, 2);
    n.sink.frames.length = 0;
    n.source.remaining = ssh.length; // the ssh clients again
    runAll(n, 1001);
  }
  t.deepEqual(new Set(sources(30).map((s) => acceptedBy(survivors).get(s))), new Set([3]), 'port 22: node 3 (priority 2) took over');
});

test('the default handler tracks a client per port rule: a client stuck to a node on port 80 still reaches the priority node on port 22', (t) => {
  const srcs = sources(30);
  const web = srcs.map((s) => ipFrame(s, { protocol: TCP, sport: 40000, dport: 80, tcpFlags: SYN }));
  const ssh = srcs.map((s) => ipFrame(s, { protocol: TCP, sport: 40001, dport: 22, tcpFlags: SYN }));
  const nodes = cluster([...web, ...ssh], { rules: ['22/tcp=single,priority=1'] });
  const params = { 1: [0xff, 0xff | (1 << 8)], 2: [0xff, 0xff], 3: [0xff, 0xff] };
  for (const n of nodes) publish(n, [1, 2, 3], true, false, params);
  for (const n of nodes) runAll(n);
  const sshOwners = new Map<string, number>();
  for (const n of nodes) for (const f of n.sink.frames) if (f[10 + 34 + 3] === 22) sshOwners.set(sourceOf(f), n.id);
  t.is(sshOwners.size, 30);
  t.deepEqual(new Set(sshOwners.values()), new Set([1]));
  t.true(nodes[1]!.sink.frames.length > 0 && nodes[2]!.sink.frames.length > 0, 'port 80 is balanced over the others too');
});

test('affinity network: one /24 goes to one node; different /24s spread', (t) => {
  const frames: Uint8Array[] = [];
  for (let net = 1; net <= 24; net++) for (let host = 1; host <= 5; host++) frames.push(ipFrame(`10.${net}.7.${host}`));
  const nodes = cluster(frames, { rules: ['default=multiple,affinity=network'] });
  for (const n of nodes) runAll(n);
  const owners = acceptedBy(nodes);
  t.is(owners.size, 120);
  const byNet = new Map<string, Set<number>>();
  for (const [src, node] of owners) {
    const net = src.split('.').slice(0, 3).join('.');
    byNet.set(net, (byNet.get(net) ?? new Set()).add(node));
  }
  t.true([...byNet.values()].every((set) => set.size === 1), 'each /24 on one node');
  t.is(new Set([...byNet.values()].map((set) => [...set][0])).size, 3);
});

test('affinity none with the tcp handler: one client\'s connections spread over the nodes, each connection stays put', (t) => {
  const conns = Array.from({ length: 60 }, (_, i) => 30000 + i);
  const syn = conns.map((port) => ipFrame('10.3.0.1', { protocol: TCP, sport: port, dport: 443, tcpFlags: SYN }));
  const data = conns.map((port) => ipFrame('10.3.0.1', { protocol: TCP, sport: port, dport: 443, tcpFlags: ACK }));
  const nodes = cluster([...syn, ...data], { rules: ['443/tcp=multiple,affinity=none'], handlers: [sourceIpHandler, tcpHandler] });
  for (const n of nodes) runAll(n);
  const perNode = nodes.map((n) => n.sink.frames.length);
  t.is(perNode.reduce((a, b) => a + b, 0), 120, 'every segment accepted exactly once');
  t.true(perNode.every((c) => c > 0), `${perNode}`);
  for (const n of nodes) t.is(n.sink.frames.length % 2, 0, 'a connection\'s SYN and data on the same node');
});

/** A user handler for UDP that misbehaves on purpose. */
function faultyUdpHandler(): ProtocolHandler {
  return {
    name: 'faulty',
    apiVersion: HANDLER_API_VERSION,
    protocol: UDP,
    affinityKey(frame: ParsedFrame, out: Uint32Array): void {
      const port = (frame.bytes[frame.l4 + 2]! << 8) | frame.bytes[frame.l4 + 3]!;
      if (port === 1) throw new Error('cannot key port 1');
      out[0] = frame.src;
      out[1] = port;
      out[2] = 0;
    },
    trackerBytes: () => 8,
    createTracker(): Tracker {
      return {
        isRelated: (_lo, hi) => {
          if (hi === 2) throw new Error('lookup failed');
          return hi === 3 ? DROP_FRAME : UNTRACKED;
        },
        assigned: () => undefined,
        nodeDied: () => 0,
        clear: () => undefined,
        expire: () => 0,
        saveStatus: () => undefined,
        loadStatus: () => undefined,
        size: 0,
        evictions: 0,
      };
    },
  };
}

test('a handler that throws: the frame is dropped and counted, the cause reported once, the thread goes on', (t) => {
  const frames = [1, 1, 2, 2, 3, 4].map((port, i) => ipFrame(`10.4.0.${i + 1}`, { protocol: UDP, sport: 5000, dport: port }));
  const nodes = cluster(frames, { handlers: [sourceIpHandler, faultyUdpHandler()], actorCount: 1 });
  for (const n of nodes) t.notThrows(() => runAll(n));
  t.is(acceptedBy(nodes).size, 1, 'port 4 is served; ports 1 and 2 fail, port 3 is dropped by the handler');
  for (const n of nodes) {
    t.is(n.counters.sum(DispatcherCounter.dropHandlerError, 0, 1), 2);
    t.is(n.counters.sum(ActorCounter.dropHandlerError, 1, 2), 2);
    t.is(n.counters.sum(ActorCounter.dropByHandler, 1, 2), 1);
    t.deepEqual(
      n.errors.map((e) => `${e.handler}.${e.method}: ${e.message}`),
      ['faulty.affinityKey: cannot key port 1', 'faulty.isRelated: lookup failed'],
      'each cause once',
    );
  }
});
