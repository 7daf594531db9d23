// The namespace lab on its own, without lnlb: the plumbing every cluster test stands on.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterLab, parsePing } from '../../lab/cluster.js';
import { Lab, listNamespaces, sweepStale } from '../../lab/netns.js';

const NETNS_MODULE = new URL('../../lab/netns.js', import.meta.url).href;

async function namespacesOf(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((ns) => ns.startsWith(`${prefix}-`));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40 && isRunning(pid); i++) await sleep(50);
  return !isRunning(pid);
}

interface ChildLab {
  prefix: string;
  dir: string;
  sleeper: number;
}

/**
 * Runs a separate Node process that builds a lab with a long-running process inside, reports
 * it, then `throw`s (a test body failing) or `wait`s (for a signal from the test).
 */
async function startChildLab(mode: 'throw' | 'wait'): Promise<{ child: ReturnType<typeof spawn>; lab: ChildLab }> {
  const code = `
    import { Lab } from ${JSON.stringify(NETNS_MODULE)};
    const lab = new Lab();
    await lab.addSwitch();
    await lab.addHost('h1', { addresses: ['10.9.0.1/24'] });
    const sleeper = lab.spawn('h1', ['sleep', '600']);
    console.log(JSON.stringify({ prefix: lab.prefix, dir: lab.dir, sleeper: sleeper.pid }));
    if (process.argv[1] === 'throw') throw new Error('a test body failed');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.resume();
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`child lab exited (${code}) before reporting`)));
  });
  return { child, lab: JSON.parse(first) as ChildLab };
}

function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

test.serial('a client address pings node addresses through the bridge', async (t) => {
  const cluster = await ClusterLab.create({ nodes: 2, clientAddresses: 3 });
  try {
    const toNode1 = await cluster.pingFrom('10.0.0.101', cluster.nodeIp('node1'), 3);
    const toNode2 = await cluster.pingFrom('10.0.0.103', cluster.nodeIp('node2'), 3);
    t.like(toNode1, { transmitted: 3, received: 3, duplicates: 0 }, toNode1.output);
    t.like(toNode2, { transmitted: 3, received: 3, duplicates: 0 }, toNode2.output);
  } finally {
    await cluster.cleanup();
  }
});

test.serial('curl from a client address reaches an HTTP server on a node address', async (t) => {
  const cluster = await ClusterLab.create({ nodes: 2, clientAddresses: 3 });
  try {
    await cluster.startHttpServer('node2', 8080, cluster.nodeIp('node2'));
    const result = await cluster.curlFrom('10.0.0.102', `http://${cluster.nodeIp('node2')}:8080/`);
    t.true(result.ok, result.ok ? '' : result.error);
    if (result.ok) t.deepEqual(JSON.parse(result.body), { node: 'node2', client: '10.0.0.102' });
  } finally {
    await cluster.cleanup();
  }
});

test.serial('linkDown cuts a host off the switch and linkUp plugs it back', async (t) => {
  const cluster = await ClusterLab.create({ nodes: 1, clientAddresses: 1 });
  try {
    await cluster.lab.linkDown('node1');
    t.is((await cluster.pingFrom('10.0.0.101', '10.0.0.1', 2)).received, 0);
    await cluster.lab.linkUp('node1');
    const back = await cluster.pingFrom('10.0.0.101', '10.0.0.1', 2);
    t.is(back.received, 2, back.output);
  } finally {
    await cluster.cleanup();
  }
});

test.serial('cleanup ends processes and removes namespaces and the run directory, twice without harm', async (t) => {
  const lab = new Lab();
  await lab.addSwitch();
  await lab.addHost('h1', { addresses: ['10.9.0.1/24'] });
  const sleeper = lab.spawn('h1', ['sleep', '600']);
  // Also a process the lab did not spawn itself, found through `ip netns pids`.
  const stray = await lab.exec('h1', ['sh', '-c', 'sleep 600 >/dev/null 2>&1 & echo $!']);
  const strayPid = Number(stray.stdout.trim());
  t.deepEqual((await namespacesOf(lab.prefix)).sort(), [`${lab.prefix}-h1`, `${lab.prefix}-sw`]);

  await lab.cleanup();
  await lab.cleanup();
  t.deepEqual(await namespacesOf(lab.prefix), []);
  t.true(await waitGone(sleeper.pid!), 'the spawned process is gone');
  t.true(await waitGone(strayPid), 'the stray process is gone');
  t.false(existsSync(lab.dir));
});

test.serial('a failed setup throws LNLB_ERR_LAB_SETUP naming the command, and cleanup still removes everything', async (t) => {
  const lab = new Lab();
  try {
    await t.throwsAsync(lab.addHost('h1', { addresses: ['10.9.0.1/24'] }), { code: 'LNLB_ERR_LAB_SETUP', message: /needs addSwitch/ });
    await lab.addSwitch();
    await t.throwsAsync(lab.addHost('h1', { addresses: ['not-an-address'] }), {
      code: 'LNLB_ERR_LAB_SETUP',
      message: /^ip -n lt[0-9a-f]{4}-h1 address add not-an-address dev eth0 failed/,
    });
    await t.throwsAsync(lab.addHost('much-too-long-name', { addresses: ['10.9.0.1/24'] }), { code: 'LNLB_ERR_LAB_SETUP' });
  } finally {
    await lab.cleanup();
  }
  t.deepEqual(await namespacesOf(lab.prefix), []);
});

test.serial('a process whose test body threw still removes its lab on exit', async (t) => {
  const { child, lab } = await startChildLab('throw');
  const exit = await exitOf(child);
  t.is(exit.code, 1);
  t.deepEqual(await namespacesOf(lab.prefix), []);
  t.true(await waitGone(lab.sleeper));
  t.false(existsSync(lab.dir));
});

test.serial('SIGTERM removes the lab before the process exits', async (t) => {
  const { child, lab } = await startChildLab('wait');
  child.kill('SIGTERM');
  const exit = await exitOf(child);
  t.is(exit.code, 143);
  t.deepEqual(await namespacesOf(lab.prefix), []);
  t.true(await waitGone(lab.sleeper));
});

test.serial('sweepStale removes the labs of dead runs and leaves live ones alone', async (t) => {
  const { child, lab: dead } = await startChildLab('wait');
  child.kill('SIGKILL'); // no cleanup can run: the namespaces stay behind
  await exitOf(child);
  t.is((await namespacesOf(dead.prefix)).length, 2);

  const live = new Lab();
  try {
    await live.addSwitch();
    const report = await sweepStale();
    t.true(report.removed.includes(`${dead.prefix}-sw`));
    t.true(report.kept.includes(`${live.prefix}-sw`));
    t.deepEqual(await namespacesOf(dead.prefix), []);
    t.deepEqual(await namespacesOf(live.prefix), [`${live.prefix}-sw`]);
    t.true(await waitGone(dead.sleeper));
    t.false(existsSync(dead.dir));
  } finally {
    await live.cleanup();
  }
});

test('parsePing counts duplicates from the summary line and from DUP! lines', (t) => {
  const output = [
    '64 bytes from 10.0.0.100: icmp_seq=1 ttl=64 time=0.1 ms',
    '64 bytes from 10.0.0.100: icmp_seq=1 ttl=64 time=0.2 ms (DUP!)',
    '64 bytes from 10.0.0.100: icmp_seq=2 ttl=64 time=0.1 ms',
    '2 packets transmitted, 2 received, +1 duplicates, 0% packet loss, time 201ms',
  ].join('\n');
  t.like(parsePing(output), { transmitted: 2, received: 2, duplicates: 1 });
  t.like(parsePing(output.split('\n').slice(0, 3).join('\n')), { transmitted: 0, received: 0, duplicates: 1 });
  t.like(parsePing('3 packets transmitted, 0 received, 100% packet loss, time 2030ms'), { transmitted: 3, received: 0, duplicates: 0 });
});
