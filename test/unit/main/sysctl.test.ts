import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostState, type Holder } from '../../../src/main/host-state.js';
import { ipv4Sysctl, sysctlKeyText, type DeviceSysctl } from '../../../src/main/sysctl-keys.js';
import { LEGACY_SAVE_FILE, SysctlGuard, parseHostSysctls, type SysctlIo } from '../../../src/main/sysctl.js';

/** /proc/sys as a map, recording every write: what a test asserts was (or was never) written. */
class FakeSysctls implements SysctlIo {
  readonly values = new Map<string, string>();
  readonly writes: string[] = [];
  constructor(initial: Record<string, string>) {
    for (const [k, v] of Object.entries(initial)) this.values.set(k, v);
  }
  read(key: DeviceSysctl): string {
    const v = this.values.get(sysctlKeyText(key));
    if (v === undefined) throw new Error(`no ${sysctlKeyText(key)}`);
    return v;
  }
  write(key: DeviceSysctl, value: string): void {
    this.writes.push(`${sysctlKeyText(key)}=${value}`);
    this.values.set(sysctlKeyText(key), value);
  }
  exists(key: DeviceSysctl): boolean {
    return this.values.has(sysctlKeyText(key));
  }
}

const NETNS = 4026531999;
const IGNORE = ipv4Sysctl('eth0', 'arp_ignore');
const ANNOUNCE = ipv4Sysctl('eth0', 'arp_announce');

function scratch(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-sysctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A daemon's view of the host: its own run dir, the shared host dir, its own holder identity. */
function daemon(base: string, name: string, io: SysctlIo, isAlive?: (h: Holder) => boolean): { host: HostState; guard: SysctlGuard; runDir: string } {
  const runDir = join(base, name);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const host = new HostState({ runDir, dir: join(base, 'host'), netns: NETNS, ...(isAlive === undefined ? {} : { isAlive }) });
  return { host, guard: new SysctlGuard(host, io), runDir };
}

const CLUSTER = [
  { key: IGNORE, value: '1', restore: true },
  { key: ANNOUNCE, value: '2', restore: true },
];

for (const order of [['a', 'b'], ['b', 'a']] as const) {
  test(`two daemons holding the same keys, stopped ${order.join(' then ')}: the true originals come back, after the last`, (t) => {
    const base = scratch(t);
    const io = new FakeSysctls({ 'net/ipv4/conf/eth0/arp_ignore': '3', 'net/ipv4/conf/eth0/arp_announce': '1' });
    const d = { a: daemon(base, 'a', io), b: daemon(base, 'b', io) };
    d.a.guard.apply('nlb0', CLUSTER);
    d.b.guard.apply('nlb0', CLUSTER); // the second sees lnlb's values: it must not take them for originals
    t.deepEqual(d[order[0]].guard.restoreAll(), []);
    t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '1', 'still held by the other daemon');
    t.deepEqual(d[order[1]].guard.restoreAll(), []);
    t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '3');
    t.is(io.values.get('net/ipv4/conf/eth0/arp_announce'), '1');
    t.deepEqual(readdirSync(join(base, 'host')).filter((f) => f.startsWith('sysctl-')), [], 'nothing held: the file is gone');
  });
}

test('within one daemon a key is given back when the last interface holding it releases it', (t) => {
  const io = new FakeSysctls({ 'net/ipv4/conf/eth0/arp_ignore': '0', 'net/ipv4/conf/eth0/arp_announce': '0' });
  const { guard } = daemon(scratch(t), 'a', io);
  guard.apply('nlb0', CLUSTER);
  guard.apply('nlb1', CLUSTER);
  t.deepEqual(guard.release('nlb0'), []);
  t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '1');
  t.deepEqual(guard.release('nlb1'), []);
  t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '0');
});

test('a daemon killed while holding: the next start anywhere on the host restores what it saved, if the value is still lnlb\'s', (t) => {
  const base = scratch(t);
  const io = new FakeSysctls({ 'net/ipv4/conf/eth0/arp_ignore': '2', 'net/ipv4/conf/eth0/arp_announce': '1' });
  const dead = new Set<string>();
  const isAlive = (h: Holder): boolean => !dead.has(h.instance);
  const crashed = daemon(base, 'a', io, isAlive);
  crashed.guard.apply('nlb0', CLUSTER);
  dead.add(crashed.host.self.instance); // kill -9: nothing restored
  io.values.set('net/ipv4/conf/eth0/arp_announce', '0'); // the operator changed this one since
  const next = daemon(base, 'b', io, isAlive); // another run dir
  const recovered = next.guard.recover(next.runDir);
  t.deepEqual(recovered.restored, ['net/ipv4/conf/eth0/arp_ignore']);
  t.deepEqual(recovered.leftAlone, ['net/ipv4/conf/eth0/arp_announce']);
  t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '2');
  t.is(io.values.get('net/ipv4/conf/eth0/arp_announce'), '0', "the operator's value stays");
});

test('a dead holder beside a live one: the live one restores on its stop', (t) => {
  const base = scratch(t);
  const io = new FakeSysctls({ 'net/ipv4/conf/eth0/arp_ignore': '2', 'net/ipv4/conf/eth0/arp_announce': '1' });
  const dead = new Set<string>();
  const isAlive = (h: Holder): boolean => !dead.has(h.instance);
  const a = daemon(base, 'a', io, isAlive);
  const b = daemon(base, 'b', io, isAlive);
  a.guard.apply('nlb0', CLUSTER);
  b.guard.apply('nlb0', CLUSTER);
  dead.add(a.host.self.instance);
  t.deepEqual(b.guard.recover(b.runDir).restored, [], 'b still holds them');
  b.guard.restoreAll();
  t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '2');
});

test('a planted kernel.core_pattern in the old per-run-dir file is ignored and never written; valid entries are restored', (t) => {
  const base = scratch(t);
  const io = new FakeSysctls({ 'net/ipv4/conf/eth0.100/arp_ignore': '1' });
  const d = daemon(base, 'a', io);
  writeFileSync(join(d.runDir, LEGACY_SAVE_FILE), JSON.stringify({ 'kernel.core_pattern': '|/tmp/evil %p', 'net.ipv4.conf.eth0.100.arp_ignore': '0', 'net.ipv4.conf.eth0.rp_filter': '|x' }));
  const recovered = d.guard.recover(d.runDir);
  t.deepEqual(io.writes, ['net/ipv4/conf/eth0.100/arp_ignore=0']);
  t.deepEqual(recovered.restored, ['net/ipv4/conf/eth0.100/arp_ignore']);
  t.is(recovered.ignored.length, 2);
  t.regex(recovered.ignored.join('\n'), /"kernel\.core_pattern": not a sysctl lnlb sets/);
  t.regex(recovered.ignored.join('\n'), /net\.ipv4\.conf\.eth0\.rp_filter: "\|x" is not a value lnlb would have saved/);
  t.deepEqual(readdirSync(d.runDir), [], 'the old file is gone');
});

test('the host file: keys of other shapes, odd values and path tricks are ignored and never written', (t) => {
  const base = scratch(t);
  const io = new FakeSysctls({ 'net/ipv4/conf/eth1/rp_filter': '1' });
  const d = daemon(base, 'a', io, () => false);
  const holder = { pid: 1, start: '1', instance: 'ab', runDir: '/x' };
  const planted = {
    version: 1,
    entries: {
      'kernel/core_pattern': { original: '|/tmp/evil', value: '0', holders: [] },
      'net/ipv4/conf/../../../kernel/core_pattern': { original: '0', value: '0', holders: [] },
      'net/ipv4/conf/eth1/rp_filter': { original: '0', value: '1', holders: [holder] },
      'net/ipv4/conf/eth1/arp_ignore': { original: '99999', value: '1', holders: [] },
    },
  };
  writeFileSync(d.host.path('sysctl', '.json'), JSON.stringify(planted));
  const recovered = d.guard.recover(d.runDir);
  t.deepEqual(io.writes, ['net/ipv4/conf/eth1/rp_filter=0']);
  t.is(recovered.ignored.length, 3);
  t.regex(recovered.ignored.join('\n'), /"kernel\/core_pattern": not a sysctl lnlb sets/);
});

test('parseHostSysctls: a file of another format is ignored whole', (t) => {
  t.deepEqual(parseHostSysctls('{"net/ipv4/conf/eth0/arp_ignore":"0"}').ignored, ["the file is not lnlb's format version 1"]);
  t.deepEqual(parseHostSysctls('not json').ignored, ['the file is not JSON']);
  t.deepEqual(parseHostSysctls('[1]').ignored, ['the file is not a JSON object']);
});

test('a symlink planted as the host file is not followed: its target is untouched', (t) => {
  const base = scratch(t);
  const io = new FakeSysctls({ 'net/ipv4/conf/eth0/arp_ignore': '0', 'net/ipv4/conf/eth0/arp_announce': '0' });
  const d = daemon(base, 'a', io);
  const victim = join(base, 'victim');
  writeFileSync(victim, 'precious');
  symlinkSync(victim, d.host.path('sysctl', '.json'));
  t.regex(d.guard.recover(d.runDir).ignored.join('\n'), /is a symlink: not followed/);
  d.guard.apply('nlb0', CLUSTER);
  t.is(readFileSync(victim, 'utf8'), 'precious');
  d.guard.restoreAll();
  t.is(io.values.get('net/ipv4/conf/eth0/arp_ignore'), '0');
});

test('a write that fails leaves no hold behind: stopping restores nothing it never changed', (t) => {
  const io = new FakeSysctls({ 'net/ipv4/conf/eth0/arp_ignore': '0' });
  const failing: SysctlIo = { ...io, read: (k) => io.read(k), exists: (k) => io.exists(k), write: () => { throw new Error('EPERM'); } };
  const d = daemon(scratch(t), 'a', failing);
  t.throws(() => d.guard.apply('nlb0', [{ key: IGNORE, value: '1', restore: true }]), { message: 'EPERM' });
  t.deepEqual(d.guard.held, []);
  t.deepEqual(readdirSync(d.host.dir).filter((f) => f.startsWith('sysctl-')), []);
});
