import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '../../../src/main/admin-client.js';
import { registerAdminCommands } from '../../../src/main/admin-commands.js';
import { AdminServer } from '../../../src/main/admin-server.js';
import type { BondCreateResult } from '../../../src/main/admin-protocol.js';
import type { Daemon } from '../../../src/main/daemon.js';
import { LnlbError, lnlbError } from '../../../src/errors.js';

/** The bond commands against a stand-in for daemon.bonds that records each call. */
async function withBonds(t: import('ava').ExecutionContext): Promise<{ dir: string; calls: unknown[][] }> {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-admin-bond-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const calls: unknown[][] = [];
  const names: string[] = [];
  const bonds = {
    names: () => [...names],
    async create(name: string, words: readonly string[]): Promise<BondCreateResult> {
      calls.push(['create', name, words]);
      if (names.includes(name)) throw lnlbError('LNLB_ERR_CTL_NO_BOND', `${name} exists already`);
      names.push(name);
      return { name, options: ['mode=balance-rr'], warnings: ['miimon: a warning'] };
    },
    async enslave(bond: string, devices: readonly string[]) {
      calls.push(['enslave', bond, devices]);
      return { bond, enslaved: [...devices] };
    },
    async release(bond: string, devices: readonly string[]) {
      calls.push(['release', bond, devices]);
      return { bond, released: [...devices] };
    },
    async show(bond: string) {
      calls.push(['show', bond]);
      return { text: `Bonding Mode: load balancing (round-robin)\n`, json: { name: bond } };
    },
    async destroy(bond: string) {
      calls.push(['destroy', bond]);
    },
  };
  const admin = new AdminServer(dir);
  registerAdminCommands(admin, { bonds } as unknown as Daemon);
  await admin.listen();
  t.teardown(() => admin.close());
  return { dir, calls };
}

test('bond.* commands call daemon.bonds with the checked arguments and return its results', async (t) => {
  const { dir, calls } = await withBonds(t);
  t.deepEqual(await adminRequest(dir, 'bond.create', { name: 'bond0', options: ['mode=802.3ad', 'miimon=100'] }), { name: 'bond0', options: ['mode=balance-rr'], warnings: ['miimon: a warning'] });
  t.deepEqual(await adminRequest(dir, 'bond.create', { name: 'bond1' }), { name: 'bond1', options: ['mode=balance-rr'], warnings: ['miimon: a warning'] }, 'no options: the defaults');
  t.deepEqual(await adminRequest(dir, 'bond.list'), { bonds: ['bond0', 'bond1'] });
  t.deepEqual(await adminRequest(dir, 'bond.enslave', { bond: 'bond0', devices: ['eth1', 'eth2'] }), { bond: 'bond0', enslaved: ['eth1', 'eth2'] });
  t.deepEqual(await adminRequest(dir, 'bond.release', { bond: 'bond0', devices: ['eth2'] }), { bond: 'bond0', released: ['eth2'] });
  t.deepEqual(await adminRequest(dir, 'bond.show', { bond: 'bond0' }), { text: 'Bonding Mode: load balancing (round-robin)\n', json: { name: 'bond0' } });
  t.deepEqual(await adminRequest(dir, 'bond.destroy', { bond: 'bond1' }), { destroyed: 'bond1' });
  t.deepEqual(calls, [
    ['create', 'bond0', ['mode=802.3ad', 'miimon=100']],
    ['create', 'bond1', []],
    ['enslave', 'bond0', ['eth1', 'eth2']],
    ['release', 'bond0', ['eth2']],
    ['show', 'bond0'],
    ['destroy', 'bond1'],
  ]);
  const again = await t.throwsAsync(adminRequest(dir, 'bond.create', { name: 'bond0' }), { instanceOf: LnlbError });
  t.is(again?.code, 'LNLB_ERR_CTL_NO_BOND', "the manager's own error comes back with its code");
});

test('bad bond.* arguments are refused before daemon.bonds is called, naming the argument', async (t) => {
  const { dir, calls } = await withBonds(t);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['bond.create', {}, /^name: expected a device name of 1 to 15 bytes .*, got nothing$/],
    ['bond.create', { name: 'bond/0' }, /^name: expected a device name .*got "bond\/0"$/],
    ['bond.create', { name: 'bond-with-a-long-name' }, /^name: /],
    ['bond.create', { name: 'bond0', options: 'mode=1' }, /^options: expected a list of key=value words/],
    ['bond.enslave', { bond: 'bond0' }, /^devices: expected a non-empty list of devices/],
    ['bond.enslave', { bond: 'bond0', devices: [] }, /^devices: expected a non-empty list/],
    ['bond.enslave', { bond: 'bond0', devices: ['eth1', 'e th2'] }, /^devices: expected a device name .*got "e th2"$/],
    ['bond.enslave', { devices: ['eth1'] }, /^bond: expected a device name/],
    ['bond.release', { bond: 'bond0', devices: ['eth1', 'eth1'] }, /^devices: eth1 is given twice$/],
    ['bond.show', { bond: 3 }, /^bond: expected a device name .*got number$/],
    ['bond.destroy', { bond: '' }, /^bond: expected a device name/],
  ];
  for (const [cmd, args, message] of cases) {
    const err = await t.throwsAsync(adminRequest(dir, cmd, args), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_CTL_BAD_ARGUMENT', `${cmd} ${JSON.stringify(args)}`);
    t.regex(err?.message ?? '', message);
  }
  t.deepEqual(calls, []);
});
