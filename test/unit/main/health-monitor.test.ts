import test from 'ava';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthCheckSpec } from '../../../src/health/check-spec.js';
import type { PresenceView } from '../../../src/health/presence.js';
import { createHealthMonitor, HealthMonitor, presenceView, type HealthEvent, type HealthHost } from '../../../src/main/health-monitor.js';
import { resolveDaemonOptions } from '../../../src/main/options.js';

const SELF = '02:00:00:00:00:01';
const OTHER = '02:00:00:00:00:02';

/** A monitor over a function check whose answer the test sets, a host that records, and the log lines. */
function rig(options: { members?: string[]; operatorOut?: boolean } = {}) {
  let healthy = true;
  const check: HealthCheckSpec = { kind: 'function', label: 'function:app', fn: async () => healthy };
  const calls: boolean[] = [];
  const state = { members: options.members ?? [SELF, OTHER], operatorOut: options.operatorOut ?? false };
  const host: HealthHost = {
    view: async (): Promise<PresenceView> => ({ self: SELF, members: state.members, settled: true }),
    setHealthOut: (out) => calls.push(out),
    operatorOut: () => state.operatorOut,
  };
  const lines: { level: number; event?: string; msg: string; action?: string | null }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  const events: HealthEvent[] = [];
  const monitor = new HealthMonitor([check], { intervalMs: 20, timeoutMs: 20, fall: 2, rise: 2 }, host, pino({ level: 'info' }, sink), (e) => events.push(e));
  return {
    monitor,
    calls,
    state,
    events,
    healthLines: () => lines.filter((l) => l.event === 'health'),
    set: (value: boolean) => (healthy = value),
  };
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('a failing service takes the node out (one warn line, one event), a recovered one brings it back as a newcomer', async (t) => {
  const r = rig();
  r.monitor.start();
  try {
    await until('healthy', () => r.monitor.state === 'healthy');
    r.set(false);
    await until('left', () => r.calls.length === 1);
    t.deepEqual(r.calls, [true]);
    t.is(r.monitor.status().serving, 'out');
    r.set(true);
    await until('rejoined', () => r.calls.length === 2);
    t.deepEqual(r.calls, [true, false]);
    await sleep(100); // more rounds: nothing more to say
    const lines = r.healthLines();
    t.deepEqual(
      lines.map((l) => [l.level, l.action]),
      [
        [30, null],
        [40, 'leave'],
        [30, 'rejoin'],
      ],
    );
    t.regex(lines[1]!.msg, /^health healthy → unhealthy \(function:app: returned false \(2 failures in a row\)\): left the cluster \(LEAVE sent: the 1 other member\(s\) take every client this node served\); checking on$/);
    t.regex(lines[2]!.msg, /^health unhealthy → healthy: joining the cluster again as a newcomer/);
    t.deepEqual(
      r.events.map((e) => [e.from, e.state, e.action, e.serving]),
      [
        ['unknown', 'healthy', 'none', 'in'],
        ['healthy', 'unhealthy', 'left', 'out'],
        ['unhealthy', 'healthy', 'rejoined', 'in'],
      ],
    );
    const s = r.monitor.status();
    t.like(s, { state: 'healthy', serving: 'in', intervalMs: 20, timeoutMs: 20, fall: 2, rise: 2, transitions: 3 });
    t.like(s.checks[0], { check: 'function:app', state: 'healthy', transitions: 3, last: { ok: true, detail: 'true' } });
    t.true(s.checks[0]!.failed >= 2 && s.checks[0]!.run > s.checks[0]!.failed);
  } finally {
    r.monitor.stop();
  }
});

test('the only member left: an unhealthy node stays, says so, and leaves once another member has stayed in its view', async (t) => {
  const r = rig({ members: [SELF] });
  r.monitor.start();
  try {
    await until('healthy', () => r.monitor.state === 'healthy');
    r.set(false);
    await until('last resort', () => r.monitor.status().serving === 'last-resort');
    t.deepEqual(r.calls, []);
    const line = r.healthLines().at(-1)!;
    t.is(line.action, 'last-resort');
    t.regex(line.msg, /the only member left in the view: it stays and serves \(last resort/);
    t.is(r.events.at(-1)?.action, 'last-resort');
    r.state.members = [SELF, OTHER]; // a member comes: left after 2 intervals + the timeout (60 ms)
    await until('left', () => r.calls.length === 1);
    t.deepEqual(r.calls, [true]);
    t.regex(r.healthLines().at(-1)!.msg, /^health unhealthy .*left the cluster \(LEAVE sent\) after serving as the last resort/);
  } finally {
    r.monitor.stop();
  }
});

test('stopped by the operator: an unhealthy node is marked out (start will not bring it back) and a recovery only tells the interface', async (t) => {
  const r = rig({ operatorOut: true });
  r.monitor.start();
  try {
    await until('healthy', () => r.monitor.state === 'healthy');
    r.set(false);
    await until('out', () => r.calls.length === 1);
    t.regex(r.healthLines().at(-1)!.msg, /stopped by the operator\): it stays out until its checks pass/);
    r.set(true);
    await until('back', () => r.calls.length === 2);
    t.deepEqual(r.calls, [true, false]);
    t.regex(r.healthLines().at(-1)!.msg, /it stays out: the operator stopped it \(lnlbctl start brings it back\)/);
  } finally {
    r.monitor.stop();
  }
});

test('stop(): no round after it', async (t) => {
  const r = rig();
  r.monitor.start();
  await until('healthy', () => r.monitor.state === 'healthy');
  r.monitor.stop();
  const runs = r.monitor.status().checks[0]!.run;
  await sleep(100);
  t.true(r.monitor.status().checks[0]!.run <= runs + 1, 'at most the round in flight');
});

test('the view for the presence rule: members without joining ones, settled only when accepting, nothing pending and not held', (t) => {
  const nodes = [
    { mac: SELF, status: 'OK', weight: 5, name: '', address: '', joined: true, self: true, rulesDigest: undefined, rulesMatch: undefined },
    { mac: OTHER, status: 'OK', weight: 5, name: '', address: '', joined: true, self: false, rulesDigest: undefined, rulesMatch: undefined },
    { mac: '02:00:00:00:00:03', status: 'JOINING', weight: 5, name: '', address: '', joined: false, self: false, rulesDigest: undefined, rulesMatch: undefined },
  ];
  t.deepEqual(presenceView({ nodes, accepting: true, changePending: false, heldBy: undefined }, SELF), { self: SELF, members: [SELF, OTHER], settled: true });
  t.false(presenceView({ nodes, accepting: true, changePending: true, heldBy: undefined }, SELF).settled);
  t.false(presenceView({ nodes, accepting: false, changePending: false, heldBy: undefined }, SELF).settled);
  t.false(presenceView({ nodes, accepting: true, changePending: false, heldBy: 'unauthenticated-peers' }, SELF).settled);
  t.deepEqual(presenceView({ nodes: [], accepting: false, changePending: false, heldBy: undefined }, SELF), { self: SELF, members: [], settled: false });
});

test('createHealthMonitor: none without a check; the timeout is the interval unless given', (t) => {
  const host: HealthHost = { view: async () => undefined, setHealthOut: () => undefined, operatorOut: () => false };
  const log = pino({ level: 'silent' });
  const base = { bind: 'eth0', vip: '10.0.0.100', keyFile: '/k' };
  t.is(createHealthMonitor(resolveDaemonOptions(base), host, log, () => undefined), undefined);
  const m = createHealthMonitor(resolveDaemonOptions({ ...base, healthCheck: 'tcp://127.0.0.1:1', healthIntervalMs: '300' }), host, log, () => undefined);
  t.like(m?.status(), { state: 'unknown', serving: 'in', intervalMs: 300, timeoutMs: 300, fall: 3, rise: 2, transitions: 0 });
  t.like(createHealthMonitor(resolveDaemonOptions({ ...base, healthCheck: 'tcp://127.0.0.1:1', healthTimeoutMs: '50' }), host, log, () => undefined)?.status(), { intervalMs: 1000, timeoutMs: 50 });
});

test('a host whose view throws: logged, and the next decisions still happen', async (t) => {
  let healthy = true;
  let calls = 0;
  let throwing = true;
  const host: HealthHost = {
    view: async () => {
      if (throwing) throw new Error('control plane gone');
      return { self: SELF, members: [SELF, OTHER], settled: true };
    },
    setHealthOut: () => void calls++,
    operatorOut: () => false,
  };
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const check: HealthCheckSpec = { kind: 'function', label: 'function:f', fn: () => healthy };
  const monitor = new HealthMonitor([check], { intervalMs: 20, timeoutMs: 20, fall: 1, rise: 1 }, host, pino({ level: 'info' }, sink), () => undefined);
  monitor.start();
  try {
    await until('healthy', () => monitor.state === 'healthy');
    healthy = false;
    await until('the error logged', () => lines.some((l) => l.includes('health decision: control plane gone')));
    throwing = false;
    await until('left', () => calls === 1);
    t.is(monitor.status().serving, 'out');
  } finally {
    monitor.stop();
  }
});
