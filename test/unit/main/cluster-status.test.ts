import test from 'ava';
import { DRAINING_WEIGHT } from '../../../src/cluster/election.js';
import { compileRules } from '../../../src/cluster/port-rules.js';
import { BUILTIN_HANDLERS } from '../../../src/handlers/loader.js';
import { clusterMacUnicast } from '../../../src/net/ethernet.js';
import { formatIPv4, parseIPv4 } from '../../../src/net/ipv4.js';
import { assembleStatus, type StatusInputs } from '../../../src/main/cluster-status.js';
import type { ControlStatus } from '../../../src/workers/messages.js';

const VIP = parseIPv4('10.0.0.100');
const SELF = '02:00:00:00:00:01';
const OTHER = '02:00:00:00:00:02';

function inputs(over: Partial<StatusInputs> = {}): StatusInputs {
  return {
    name: 'nlb0',
    vip: formatIPv4(VIP),
    bind: 'eth0',
    clusterMac: clusterMacUnicast(VIP),
    workers: 2,
    insecure: false,
    weightMode: 'loadavg',
    state: 'converging',
    failed: undefined,
    suspended: false,
    health: undefined,
    rules: compileRules([]),
    handlerSetups: [{ spec: BUILTIN_HANDLERS[0]!, idleTimeoutSeconds: 60 }],
    handlerNames: [],
    plane: undefined,
    counters: undefined,
    handlerCounters: [],
    actorCounters: [],
    ...over,
  };
}

const node = (mac: string, over: Partial<ControlStatus['nodes'][number]> = {}): ControlStatus['nodes'][number] => ({
  mac,
  name: '',
  address: '',
  status: 'OK',
  joined: true,
  weight: 100,
  self: false,
  rulesDigest: undefined,
  rulesMatch: undefined,
  ...over,
});

function plane(nodes: ControlStatus['nodes']): ControlStatus {
  return {
    accepting: true,
    changePending: false,
    nodes,
    control: { received: { HEARTBEAT: 4 }, sent: {}, rejected: {}, overflow: {}, stateTransfer: {} },
    nodeTableFull: 0,
    rounds: 3,
    resets: 0,
    stallMaxMs: 2,
    stallTotalMs: 5,
    deaths: { 'missed-heartbeats': 1 },
    authenticated: true,
    unauthenticatedPeers: [],
    heldBy: undefined,
  };
}

test('before the threads answer: the header from the options, zero counters, the handlers by their labels', (t) => {
  const s = assembleStatus(inputs());
  t.like(s, { name: 'nlb0', vip: '10.0.0.100', bind: 'eth0', clusterMac: '02:00:0a:00:00:64', converged: false, state: 'converging', suspended: false, authenticated: false, insecure: false, weightMode: 'loadavg', workers: 2 });
  t.false('failed' in s);
  t.false('health' in s);
  t.false('heldBy' in s);
  t.deepEqual(s.nodes, []);
  t.deepEqual(s.unauthenticatedPeers, []);
  t.deepEqual(s.handlers, [{ protocol: 0, name: 'default=default (built-in)', module: 'default=default (built-in)', idleTimeoutSeconds: 60, counters: {} }]);
  t.like(s.counters, { framesSeen: 0, framesAccepted: 0, framesDropped: {}, rounds: 0, control: { received: {}, sent: {}, rejected: {} }, deaths: {}, actors: [] });
  t.is(s.rules.length, 1, 'the default rule');
  t.regex(s.rulesDigest, /^[0-9a-f]{8}$/);
});

test("this node's row says the header's state; the others' what this node sees of them; names and digests only when known", (t) => {
  const s = assembleStatus(
    inputs({
      state: 'draining',
      plane: plane([
        node(SELF, { self: true, name: 'node1', address: '10.0.0.1', weight: DRAINING_WEIGHT }),
        node(OTHER, { weight: DRAINING_WEIGHT, joined: false, rulesDigest: 0xabc, rulesMatch: false }),
        node('02:00:00:00:00:03', { status: 'JOINING' }),
      ]),
      handlerNames: ['default'],
    }),
  );
  t.true(s.converged);
  t.true(s.authenticated);
  t.deepEqual(s.nodes[0], { mac: SELF, name: 'node1', address: '10.0.0.1', state: 'draining', status: 'OK', weight: DRAINING_WEIGHT, self: true });
  t.deepEqual(s.nodes[1], { mac: OTHER, state: 'not serving', status: 'OK', weight: DRAINING_WEIGHT, self: false, rulesDigest: '00000abc', rulesMatch: false });
  t.is(s.nodes[2]!.state, 'joining');
  t.deepEqual(s.rulesMismatch, [OTHER]);
  t.is(s.handlers[0]!.name, 'default', "the module's own name once it runs");
  t.like(s.counters, { rounds: 3, stallMaxMs: 2, deaths: { 'missed-heartbeats': 1 }, control: { received: { HEARTBEAT: 4 } } });
});

test('failed, held, suspended and the datapath counters pass through', (t) => {
  const held = { ...plane([]), heldBy: 'unauthenticated-peers' as const };
  const s = assembleStatus(
    inputs({
      state: 'failed',
      failed: 'handler tcp stuck in actor 0',
      suspended: true,
      plane: held,
      counters: { framesSeen: 10, framesIPv6: 0, vlan: { neighbourToHost: 0, egressFrames: 0, egressDrops: 0 }, framesAccepted: 4, arpRequests: 1, arpReplies: 1, ndpSolicitations: 0, ndpAdvertisements: 0, trackedEntries: 2, evictions: 0, kernelDrops: 0, kernelFilter: { program: 'plain', why: 'every frame: only --election bucket is filtered by bucket', passBuckets: 1024, swaps: 0, failures: 0 }, weightAnnouncements: { seen: 0, heldFlows: 0 }, dropped: { notOurs: 6 } },
      handlerCounters: [{ opened: 2 }],
    }),
  );
  t.like(s, { state: 'failed', failed: 'handler tcp stuck in actor 0', suspended: true, heldBy: 'unauthenticated-peers' });
  t.like(s.counters, { framesSeen: 10, framesAccepted: 4, framesDropped: { notOurs: 6 }, arpReplies: 1, trackedEntries: 2 });
  t.deepEqual(s.handlers[0]!.counters, { opened: 2 });
});

test("the last failover and the control thread's stalls pass through from the control plane; absent until a death", (t) => {
  const lastFailover = { node: '02:00:00:00:00:03', lastHeardAt: 1000, declaredAt: 1700, publishedAt: 1701 };
  const s = assembleStatus(inputs({ plane: { ...plane([]), stallMaxMs: 120, stallTotalMs: 300, lastFailover } }));
  t.deepEqual(s.counters.lastFailover, lastFailover);
  t.like(s.counters, { stallMaxMs: 120, stallTotalMs: 300 });
  t.false('lastFailover' in assembleStatus(inputs({ plane: plane([]) })).counters);
});
