import test from 'ava';
import type { StatusJson } from '../../../src/main/admin-protocol.js';
import { formatStatus, interfaceRates } from '../../../src/main/status-format.js';

const status: StatusJson = {
  interfaces: [
    {
      name: 'nlb0',
      vip: '10.0.0.100',
      bind: 'eth0',
      clusterMac: '02:00:0a:00:00:64',
      converged: true,
      state: 'converged',
      suspended: false,
      weightMode: 'loadavg',
      authenticated: false,
      insecure: false,
      unauthenticatedPeers: [],
      workers: 2,
      nodes: [
        { mac: '02:00:00:00:00:01', name: 'web1', address: '10.0.0.1', state: 'serving', status: 'OK', weight: 100, self: false, rulesDigest: '0badf00d', rulesMatch: false },
        { mac: '02:00:00:00:00:02', name: 'web2.example.com', address: '10.0.0.2', state: 'converged', status: 'OK', weight: 12, self: true, rulesDigest: '1234abcd', rulesMatch: true },
      ],
      rules: ['default=multiple,affinity=single', '22/tcp=single,priority=1'],
      rulesDigest: '1234abcd',
      rulesMismatch: ['02:00:00:00:00:01'],
      handlers: [
        { protocol: 0, name: 'default', module: 'default=default', idleTimeoutSeconds: 1800, counters: {} },
        { protocol: 6, name: 'tcp', module: 'tcp=tcp', idleTimeoutSeconds: 7440, counters: { midstreamAdopted: 3, closed: 0 } },
      ],
      counters: {
        framesSeen: 10,
        framesAccepted: 4,
        framesDropped: { otherNode: 6, ringFull: 0 },
        arpReplies: 1,
        ndpAdvertisements: 0,
        framesIPv6: 0,
        trackedEntries: 3,
        kernelDrops: 0,
        control: { received: { HEARTBEAT: 5 }, sent: { HEARTBEAT: 5 }, rejected: { BAD_CRC: 2 } },
        nodeTableFull: 0,
        rounds: 12,
        resets: 0,
      },
    },
  ],
};

test('human status: one line per node in aligned columns (MAC, name, address, state, weight), this node marked, drops by reason', (t) => {
  const text = formatStatus(status);
  const lines = text.split('\n');
  t.regex(lines[0]!, /^nlb0: vip 10\.0\.0\.100 on eth0, cluster MAC 02:00:0a:00:00:64, converged, weight from loadavg, 2 worker\(s\), control plane NOT authenticated$/);
  t.regex(lines[1]!, /^ {2}NODE +NAME +ADDRESS +STATE +WEIGHT +RULES$/);
  const rows = lines.filter((l) => /^\s+02:00/.test(l));
  t.is(rows.length, 2);
  t.regex(rows[0]!, /^ {2}02:00:00:00:00:01 +web1 +10\.0\.0\.1 +serving +100 +DIFFERENT/);
  t.regex(rows[1]!, /^ {2}02:00:00:00:00:02 +web2\.example\.com +10\.0\.0\.2 +converged +12 +same +\(this node\)$/, 'this node\'s row has the header\'s state');
  t.is(rows[0]!.indexOf('serving'), rows[1]!.indexOf('converged'), 'columns aligned');
  t.true(rows[1]!.endsWith('(this node)'));
  t.false(rows[0]!.includes('(this node)'));
  t.true(text.includes('dropped: otherNode 6'));
  t.false(text.includes('ringFull'), 'zero counters are not listed');
  t.true(text.includes('control messages rejected: BAD_CRC 2'));
  t.false(text.includes('kernel filter'), 'an older daemon that does not say gets no line');
});

test('human status: the kernel filter, how many buckets pass and why, swaps, and refusals when there were any', (t) => {
  const iface = status.interfaces[0]!;
  const withFilter = (kernelFilter: NonNullable<typeof iface.counters.kernelFilter>): string => formatStatus({ ...status, interfaces: [{ ...iface, counters: { ...iface.counters, kernelFilter } }] });
  const buckets = withFilter({ program: 'buckets', why: 'buckets this node owns or drains', passBuckets: 341, swaps: 2, failures: 0 });
  t.true(buckets.includes('  kernel filter: 341 of 1024 buckets pass (buckets this node owns or drains), swapped 2 time(s)\n'), buckets);
  const plain = withFilter({ program: 'plain', why: 'every frame: port rules are not in the kernel filter', passBuckets: 1024, swaps: 0, failures: 0 });
  t.true(plain.includes('  kernel filter: plain (every frame: port rules are not in the kernel filter), swapped 0 time(s)\n'), plain);
  const refused = withFilter({ program: 'plain', why: 'every frame: the kernel refused the bucket filter', passBuckets: 1024, swaps: 3, failures: 1 });
  t.true(refused.includes(', REFUSED 1 time(s) by the kernel'), refused);
});

test('human status: the port rules, a node with other rules flagged, handlers with their non-zero counters', (t) => {
  const text = formatStatus(status);
  t.regex(text, /port rules \(digest 1234abcd\): default=multiple,affinity=single {2}22\/tcp=single,priority=1/);
  t.regex(text, /02:00:00:00:00:01 .*DIFFERENT \(0badf00d\)/);
  t.regex(text, /WARNING: 02:00:00:00:00:01 run other port rules/);
  t.regex(text, /6=tcp \(idle 7440s, midstreamAdopted 3\)/);
  t.notRegex(text, /closed 0/);
});

test('watch mode: rates per second from two samples; a draining node shows as draining (state), with no weight', (t) => {
  const first = status.interfaces[0]!;
  const later = structuredClone(first);
  later.counters.framesSeen += 500;
  later.counters.framesAccepted += 200;
  later.counters.framesDropped = Object.fromEntries(Object.entries(first.counters.framesDropped).map(([k, v]) => [k, v + 50]));
  later.state = 'draining';
  later.nodes[1]!.state = 'draining';
  later.nodes[1]!.weight = 0xffff;
  const rates = interfaceRates(first, later, 2);
  t.is(rates.seen, 250);
  t.is(rates.accepted, 100);
  t.is(rates.dropped, 25 * Object.keys(first.counters.framesDropped).length);
  const text = formatStatus({ interfaces: [later] }, new Map([['nlb0', rates]]));
  t.regex(text, /^nlb0: .*, draining, /m);
  t.regex(text, /^  02:00:00:00:00:02 +web2\.example\.com +10\.0\.0\.2 +draining +- +same/m);
  t.regex(text, /^  per second: seen 250, accepted 100, dropped 50\.0, control in 0\.0 \/ out 0\.0$/m);
});

test('human status: an interface without a key (--insecure-no-auth) says so on its header line', (t) => {
  const insecure = { ...status.interfaces[0]!, authenticated: false, insecure: true };
  const header = formatStatus({ interfaces: [insecure] }).split('\n')[0]!;
  t.true(header.startsWith('nlb0: vip 10.0.0.100 on eth0, '), header);
  t.true(header.endsWith(', AUTH OFF (--insecure-no-auth): any host on this LAN can take this cluster over'), header);
  const keyed = formatStatus({ interfaces: [{ ...insecure, authenticated: true, insecure: false }] }).split('\n')[0]!;
  t.regex(keyed, /control plane authenticated$/);
  t.notRegex(keyed, /AUTH OFF/);
});

test('human status: a stopped node (after a drain, say) shows stopped on its header and its row, and no weight', (t) => {
  const stopped = structuredClone(status.interfaces[0]!);
  stopped.state = 'stopped';
  stopped.nodes = [{ ...stopped.nodes[1]!, state: 'stopped', weight: 57 }];
  const text = formatStatus({ interfaces: [stopped] });
  t.regex(text, /^nlb0: .*, stopped, /m);
  t.regex(text, /^ {2}02:00:00:00:00:02 +web2\.example\.com +10\.0\.0\.2 +stopped +- +same +\(this node\)$/m);
});

test('human status: an interface the watchdog took out shows failed and why', (t) => {
  const failed: StatusJson = { interfaces: [{ ...status.interfaces[0]!, state: 'failed', failed: 'handler slow-udp stuck in actor 1', converged: false }] };
  t.regex(formatStatus(failed).split('\n')[0]!, /^nlb0: vip 10\.0\.0\.100 on eth0, cluster MAC 02:00:0a:00:00:64, failed: handler slow-udp stuck in actor 1, weight from loadavg/);
});

test('human status: a held node says why and names the peers it cannot authenticate, with their verdicts', (t) => {
  const heldIface = structuredClone(status.interfaces[0]!);
  heldIface.state = 'held';
  heldIface.converged = false;
  heldIface.heldBy = 'unauthenticated-peers';
  heldIface.unauthenticatedPeers = [
    { mac: '02:00:00:00:00:07', verdict: 'BAD_MAC', claimsJoined: true, lastSeenMs: 120 },
    { mac: '02:00:00:00:00:08', verdict: 'UNSIGNED', claimsJoined: false, lastSeenMs: 40 },
  ];
  const text = formatStatus({ interfaces: [heldIface] });
  t.regex(text, /^nlb0: .*, held, /m);
  t.regex(text, /^  HELD: not serving: peers on this LAN that this node cannot authenticate \(below\): give every node the same --key-file$/m);
  t.regex(text, /^  unauthenticated peer 02:00:00:00:00:07: BAD_MAC \(a different key\), says it serves, last heard 120 ms ago$/m);
  t.regex(text, /^  unauthenticated peer 02:00:00:00:00:08: UNSIGNED \(no key\), last heard 40 ms ago$/m);
  t.notRegex(formatStatus(status), /HELD|unauthenticated peer/, 'nothing when there is nothing to say');
});

test('health checks: the node\'s health and what it does, one row per check with its last result', (t) => {
  const iface = status.interfaces[0]!;
  const text = formatStatus({
    interfaces: [
      {
        ...iface,
        state: 'unhealthy',
        health: {
          state: 'unhealthy',
          sinceMs: 2500,
          serving: 'out',
          intervalMs: 1000,
          timeoutMs: 500,
          fall: 3,
          rise: 2,
          transitions: 2,
          checks: [
            { check: 'http://10.0.0.100:80/', state: 'unhealthy', successesInARow: 0, failuresInARow: 5, run: 12, failed: 5, transitions: 2, last: { ok: false, detail: 'GET ECONNREFUSED', ms: 1, agoMs: 400 } },
            { check: 'exec:true', state: 'unknown', successesInARow: 0, failuresInARow: 0, run: 0, failed: 0, transitions: 0 },
          ],
        },
      },
    ],
  });
  t.regex(text, /^nlb0: .*, unhealthy, weight from/m);
  t.regex(text, /^ {2}health: unhealthy for 2\.5 s, OUT of the cluster \(left: the other members serve its clients; rejoins when healthy\); every 1000 ms, timeout 500 ms, fall 3, rise 2$/m);
  t.regex(text, /^ {4}CHECK +STATE +LAST RESULT +RUN +FAILED$/m);
  t.regex(text, /^ {4}http:\/\/10\.0\.0\.100:80\/ +unhealthy +FAILED: GET ECONNREFUSED, 0\.4 s ago \(5 failures in a row\) +12 +5$/m);
  t.regex(text, /^ {4}exec:true +unknown +not run yet +0 +0$/m);
  t.false(formatStatus(status).includes('health:'), 'no checks, no health line');
});

test('human status: a daemon that sends no state words (older) gets readable names of its codes; unnamed nodes show -', (t) => {
  const old = structuredClone(status.interfaces[0]!);
  old.nodes = [
    { mac: '02:00:00:00:00:01', status: 'ASKED_RETRASM', weight: 100, self: false },
    { mac: '02:00:00:00:00:03', status: 'JOINING', weight: 100, self: false },
  ];
  const text = formatStatus({ interfaces: [old] });
  t.regex(text, /^ {2}02:00:00:00:00:01 +- +- +asked to retransmit +100/m);
  t.regex(text, /^ {2}02:00:00:00:00:03 +- +- +joining +100/m);
  t.notRegex(text, /ASKED_RETRASM|JOINING/);
});
