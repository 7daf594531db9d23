import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LnlbError } from '../../../src/errors.js';
import { HostState, holderAlive, processStart } from '../../../src/main/host-state.js';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-host-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a device claimed by one daemon is refused to another, naming its pid and run dir; free again once released', (t) => {
  const dir = join(scratch(t), 'host');
  const a = new HostState({ runDir: '/run/lnlb-a', dir, netns: 1 });
  const b = new HostState({ runDir: '/run/lnlb-b', dir, netns: 1 });
  a.claimDevice('eth0', 'cluster interface on eth0');
  a.claimDevice('eth0', 'bond0/eth0'); // two users in one daemon: counted
  const err = t.throws(() => b.claimDevice('eth0', 'x'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_DEV_IN_USE');
  t.is(err?.message, `eth0 is in use by another lnlbd on this host (pid ${process.pid}, run dir /run/lnlb-a): stop that one, add this cluster to it (lnlbctl --run-dir DIR addif), or use another device`);
  a.releaseDevice('eth0', 'cluster interface on eth0');
  t.throws(() => b.claimDevice('eth0', 'x'), { instanceOf: LnlbError }, 'still held by the other user in a');
  a.releaseDevice('eth0', 'bond0/eth0');
  t.notThrows(() => b.claimDevice('eth0', 'x'));
  b.close();
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('dev-')), [], 'lock files removed on release');
});

test('the same device name in another network namespace is another device', (t) => {
  const dir = join(scratch(t), 'host');
  const a = new HostState({ runDir: '/a', dir, netns: 1 });
  const b = new HostState({ runDir: '/b', dir, netns: 2 });
  a.claimDevice('eth0', 'x');
  t.notThrows(() => b.claimDevice('eth0', 'x'));
  a.close();
  b.close();
});

test('a daemon killed with -9 holds nothing: its device is free at once', async (t) => {
  const dir = join(scratch(t), 'host');
  const module = new URL('../../../src/main/host-state.js', import.meta.url).href;
  const code = `const { HostState } = await import(${JSON.stringify(module)}); new HostState({ runDir: '/a', dir: ${JSON.stringify(dir)}, netns: 1 }).claimDevice('eth0', 'x'); console.log('held'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const b = new HostState({ runDir: '/b', dir, netns: 1 });
  t.throws(() => b.claimDevice('eth0', 'x'), { code: 'LNLB_ERR_DEV_IN_USE' } as never);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  t.notThrows(() => b.claimDevice('eth0', 'x'));
  b.close();
});

test('holders are alive by pid and start time: a reused pid is not the holder', (t) => {
  const start = processStart('self');
  t.regex(start ?? '', /^\d+$/);
  t.true(holderAlive({ pid: process.pid, start: start!, instance: 'a', runDir: '/' }));
  t.false(holderAlive({ pid: process.pid, start: `${start!}1`, instance: 'a', runDir: '/' }));
  t.false(holderAlive({ pid: 0x3fffffff, start: '1', instance: 'a', runDir: '/' }));
});

test('lock files left by a killed daemon are swept by the next start; held ones are kept', (t) => {
  const dir = join(scratch(t), 'host');
  const live = new HostState({ runDir: '/a', dir, netns: 1 });
  live.claimDevice('eth0', 'x');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'dev-7-eth5.lock'), '{"pid":1}'); // nobody holds it
  new HostState({ runDir: '/b', dir, netns: 2 });
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('dev-')), ['dev-1-eth0.lock']);
  live.close();
});
