// lnlbd's side of systemd's readiness protocol: the messages as sd_notify(3) writes them, sent
// for real (the native addon) to a socket bound as systemd binds $NOTIFY_SOCKET (a path or an
// abstract '@name'), READY=1 only once every interface settled, RELOADING=1/READY=1 around a
// reload, STOPPING=1, and nothing at all without NOTIFY_SOCKET.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lab from '../../../lab/native.js';
import * as port from '../../../src/port/native.js';
import { notifyMessage, readiness, ServiceNotifier, type InterfaceReadiness } from '../../../src/main/service-notify.js';

const quiet = { warn: () => undefined };

/** What the socket at `fd` holds now, one datagram each, with the pid that sent it. */
function drain(fd: number): { pid: number; message: string }[] {
  const out: { pid: number; message: string }[] = [];
  for (let d = lab.notifyRecv(fd); d !== null; d = lab.notifyRecv(fd)) out.push(d);
  return out;
}

test('a datagram reaches a socket named by a path and one in the abstract namespace (@name), as systemd names them', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of [join(dir, 'notify'), `@lnlb-notify-test-${randomBytes(6).toString('hex')}`]) {
    const fd = lab.notifyListen(name);
    try {
      t.true(port.notify(name, 'READY=1\nSTATUS=nlb0 converged'), name);
      t.deepEqual(drain(fd), [{ pid: process.pid, message: 'READY=1\nSTATUS=nlb0 converged' }], `${name}: from this process, as NotifyAccess=main wants it`);
    } finally {
      port.close(fd);
    }
  }
  const err = t.throws(() => port.notify(join(dir, 'nobody-listens'), 'READY=1'));
  t.regex(err?.message ?? '', /ENOENT|ECONNREFUSED/);
  t.throws(() => port.notify('vsock:2:1234', 'READY=1'), { message: /EAFNOSUPPORT/ });
});

const iface = (state: InterfaceReadiness['state'], nodes = 1): InterfaceReadiness => ({ name: 'nlb0', state, vip: '10.0.0.100', bind: 'eth0', nodes: Array.from({ length: nodes }, () => ({}) as InterfaceReadiness['nodes'][number]) });

test('readiness: settled once no interface converges any more; the STATUS line names each', (t) => {
  t.deepEqual(readiness([iface('converging')]), { settled: false, status: 'nlb0 converging: vip 10.0.0.100 on eth0' });
  t.deepEqual(readiness([iface('converged', 3)]), { settled: true, status: 'nlb0 converged: 3 nodes, vip 10.0.0.100 on eth0' });
  t.true(readiness([iface('held')]).settled, 'a held node says why it does not serve: systemd need not wait for it');
  t.true(readiness([iface('unhealthy')]).settled);
  t.false(readiness([iface('converged'), { ...iface('converging'), name: 'nlb1' }]).settled, 'every interface');
  t.deepEqual(readiness([]), { settled: true, status: 'no cluster interface: add one with lnlbctl addif <vip> <dev>' });
  t.is(notifyMessage({ READY: '1', STATUS: 'a\nb' }), 'READY=1\nSTATUS=a b');
});

test('READY=1 only after convergence; RELOADING=1 with MONOTONIC_USEC then READY=1 around a reload; STOPPING=1 last', async (t) => {
  const sent: string[] = [];
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify' };
  const notifier = ServiceNotifier.fromEnvironment(env, quiet, (socket, message) => {
    t.is(socket, '/run/systemd/notify');
    sent.push(message);
    return true;
  });
  t.truthy(notifier);
  t.false('NOTIFY_SOCKET' in env, 'removed: children must not speak for lnlbd');
  notifier!.reloading();
  t.deepEqual(sent, [], 'a SIGHUP before READY=1 does not make the start ready');
  const states: InterfaceReadiness['state'][] = ['converging', 'converging', 'converged'];
  await notifier!.announceWhenSettled(async () => [iface(states.shift() ?? 'converged', 2)]);
  t.deepEqual(sent, ['STATUS=nlb0 converging: vip 10.0.0.100 on eth0', 'READY=1\nSTATUS=nlb0 converged: 2 nodes, vip 10.0.0.100 on eth0'], 'STATUS while converging (once), READY=1 at convergence');
  sent.length = 0;
  notifier!.reloading();
  notifier!.reloaded();
  t.is(sent.length, 2);
  t.regex(sent[0]!, /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(sent[0]!)![1]!);
  const now = process.hrtime.bigint() / 1000n;
  t.true(usec <= now && now - usec < 5_000_000n, 'CLOCK_MONOTONIC, in µs');
  t.is(sent[1], 'READY=1');
  notifier!.stopping('SIGTERM');
  notifier!.stopping('again');
  notifier!.reloading();
  t.deepEqual(sent.slice(2), ['STOPPING=1\nSTATUS=stopping: SIGTERM'], 'once, and nothing after it');
});

test('without NOTIFY_SOCKET there is no notifier; a socket that fails is logged once and never throws', async (t) => {
  t.is(ServiceNotifier.fromEnvironment({}, quiet), undefined);
  const warnings: string[] = [];
  const notifier = new ServiceNotifier('/nonexistent/notify', { warn: (_fields: unknown, message: string) => void warnings.push(message) } as never, port.notify);
  await notifier.announceWhenSettled(async () => [iface('converged')]);
  notifier.reloading();
  notifier.reloaded();
  notifier.stopping('x');
  t.is(warnings.length, 1, 'four messages failed');
  t.regex(warnings[0]!, /^cannot notify the service manager at \/nonexistent\/notify \(NOTIFY_SOCKET\): .*\(said once\)$/);
});
