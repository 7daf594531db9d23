/** lnlbctl: talks to lnlbd over the admin socket in its run directory. */

import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { resolveBondOptions } from '../bond/options.js';
import { isLnlbError, lnlbError } from '../errors.js';
import { adminRequest } from './admin-client.js';
import type { BondCreateResult, BondListJson, BondShowJson, ConntrackJson, StatusJson } from './admin-protocol.js';
import { deviceArgument, devicesArgument } from './bond-spec.js';
import { formatStatus } from './status-format.js';
import { parseManualWeight, parseWeightMode, readManualWeight, WEIGHT_MAX, WEIGHT_MIN } from './weight-source.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Errors of arguments checked here, before the daemon is asked: exit 2, as commander's own. */
const refusedLocally = new WeakSet<object>();

function checkLocally<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (isLnlbError(err)) refusedLocally.add(err);
    throw err;
  }
}

/** `lnlbctl bond ...`: the daemon's bonds, with the Linux bonding driver's option words. */
function bondCommands(program: Command): void {
  const runDir = (): string => program.opts<{ runDir: string }>().runDir;
  const bond = program
    .command('bond')
    .description("bonds: several devices as one, with the Linux bonding driver's modes and options (see docs/bonding.md)")
    .addHelpText(
      'after',
      [
        '',
        'Example:',
        '  lnlbctl bond create bond0 mode=802.3ad miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4',
        '  lnlbctl bond enslave bond0 eth1 eth2',
        '  lnlbctl bond show bond0',
        '  lnlbctl addif 10.0.0.100 bond0',
      ].join('\n'),
    );
  bond
    .command('create')
    .description('create a bond (a device, up, without slaves) with these options; prints its name')
    .argument('<name>', 'the bond, e.g. bond0')
    .argument('[option=value...]', "the driver's options, e.g. mode=802.3ad miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4 (default: mode=balance-rr miimon=100)")
    .option('--json', 'machine-readable output')
    .action(async (name: string, words: string[], opts: { json?: boolean }) => {
      checkLocally(() => {
        deviceArgument(name, '<name>');
        resolveBondOptions(words); // refused here with the daemon's own message; its warnings come back from the daemon
      });
      const result = (await adminRequest(runDir(), 'bond.create', { name, options: words }, 30_000)) as BondCreateResult;
      for (const warning of result.warnings) process.stderr.write(`lnlbctl: warning: ${warning}\n`);
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${result.name}\n`);
    });
  bond
    .command('enslave')
    .description('add devices to a bond as slaves, in order (on the first refusal none of them stays enslaved)')
    .argument('<bond>', 'the bond, e.g. bond0')
    .argument('<dev...>', 'the devices, e.g. eth1 eth2')
    .option('--json', 'machine-readable output')
    .action(async (name: string, devices: string[], opts: { json?: boolean }) => {
      checkLocally(() => [deviceArgument(name, '<bond>'), devicesArgument(devices, '<dev>')]);
      const result = await adminRequest(runDir(), 'bond.enslave', { bond: name, devices }, 30_000);
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  bond
    .command('release')
    .description('give slaves back to the host, with their own MAC, state and sysctls')
    .argument('<bond>', 'the bond, e.g. bond0')
    .argument('<dev...>', 'the slaves, e.g. eth2')
    .option('--json', 'machine-readable output')
    .action(async (name: string, devices: string[], opts: { json?: boolean }) => {
      checkLocally(() => [deviceArgument(name, '<bond>'), devicesArgument(devices, '<dev>')]);
      const result = await adminRequest(runDir(), 'bond.release', { bond: name, devices }, 30_000);
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  bond
    .command('show')
    .description("a bond's status in the layout of /proc/net/bonding/<bond> (without a name: every bond)")
    .argument('[bond]', 'the bond, e.g. bond0 (default: every bond)')
    .option('--json', 'machine-readable output (without a name: an array)')
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      if (name !== undefined) {
        checkLocally(() => deviceArgument(name, '<bond>'));
        const shown = (await adminRequest(runDir(), 'bond.show', { bond: name })) as BondShowJson;
        process.stdout.write(opts.json ? `${JSON.stringify(shown.json, null, 2)}\n` : shown.text);
        return;
      }
      const { bonds } = (await adminRequest(runDir(), 'bond.list')) as BondListJson;
      const shown: BondShowJson[] = [];
      for (const b of bonds) {
        try {
          shown.push((await adminRequest(runDir(), 'bond.show', { bond: b })) as BondShowJson);
        } catch (err) {
          if (!(isLnlbError(err) && err.code === 'LNLB_ERR_CTL_NO_BOND')) throw err; // destroyed meanwhile
        }
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(shown.map((s) => s.json), null, 2)}\n`);
      else process.stdout.write(shown.map((s) => (s.text.endsWith('\n') ? s.text : `${s.text}\n`)).join('\n'));
    });
  bond
    .command('list')
    .description("the daemon's bonds, one name a line")
    .option('--json', 'machine-readable output (an array of names)')
    .action(async (opts: { json?: boolean }) => {
      const { bonds } = (await adminRequest(runDir(), 'bond.list')) as BondListJson;
      process.stdout.write(opts.json ? `${JSON.stringify(bonds)}\n` : bonds.map((b) => `${b}\n`).join(''));
    });
  bond
    .command('destroy')
    .description('release every slave and remove the bond')
    .argument('<bond>', 'the bond, e.g. bond0')
    .action(async (name: string) => {
      checkLocally(() => deviceArgument(name, '<bond>'));
      await adminRequest(runDir(), 'bond.destroy', { bond: name }, 30_000);
    });
}

/** A handler module path is the caller's: made absolute here, since the daemon runs elsewhere. */
function absoluteHandler(spec: string): string {
  const eq = spec.indexOf('=');
  const module = spec.slice(eq + 1);
  return eq > 0 && (module.startsWith('.') || module.includes('/')) && !module.startsWith('file:') ? `${spec.slice(0, eq)}=${resolve(module)}` : spec;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('lnlbctl')
    .description('control and inspect a running lnlbd')
    .option('--run-dir <dir>', "the daemon's run directory", '/run/lnlb')
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  program
    .command('status')
    .description('members of each cluster interface, with their status and weight')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const status = (await adminRequest(runDir, 'status')) as StatusJson;
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    });
  program
    .command('conntrack')
    .description('tracked flows of a cluster interface, every handler: flow, owning node, seconds until forgotten')
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .option('--limit <n>', 'at most this many entries', '10000')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, opts: { json?: boolean; limit: string }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) checkLocally(() => { throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `--limit: expected a whole number ≥ 1, got ${JSON.stringify(opts.limit)}`); });
      const result = (await adminRequest(runDir, 'conntrack', { interface: iface, limit }, 30_000)) as ConntrackJson;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const rows = [['HANDLER', 'FLOW', 'NODE', 'EXPIRES IN'], ...result.entries.map((e) => [e.handler, e.flow, e.node, `${e.expiresInSeconds}s`])];
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()}\n`);
      process.stdout.write(`${result.total} tracked${result.total > result.entries.length ? ` (${result.entries.length} shown)` : ''}\n`);
    });
  program
    .command('addif')
    .description('add a cluster interface for <cluster ip> on <dev>; prints its name (nlb0, nlb1, ... unless given)')
    .argument('<cluster ip>', 'the VIP shared by the cluster, e.g. 10.0.0.100')
    .argument('<dev>', 'the real device, e.g. eth0')
    .argument('[name]', 'the interface name (default: the lowest free nlb%d)')
    .option('--rule <rule>', "a port rule for this interface, repeatable (as lnlbd's --rule; replaces the daemon's)", collect, [] as string[])
    .option('--handler <proto=module>', "a protocol handler for this interface, repeatable (as lnlbd's --handler)", collect, [] as string[])
    .option('--json', 'machine-readable output')
    .action(async (vip: string, dev: string, name: string | undefined, opts: { json?: boolean; rule: string[]; handler: string[] }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const extra = { ...(opts.rule.length > 0 ? { rule: opts.rule } : {}), ...(opts.handler.length > 0 ? { handler: opts.handler.map(absoluteHandler) } : {}) };
      const result = (await adminRequest(runDir, 'addif', { vip, dev, ...(name === undefined ? {} : { name }), ...extra }, 30_000)) as { name: string };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${result.name}\n`);
    });
  program
    .command('delif')
    .description('leave the cluster and remove the interface (the others take its clients at once)')
    .argument('<name>', 'the cluster interface, e.g. nlb0')
    .action(async (name: string) => {
      const { runDir } = program.opts<{ runDir: string }>();
      await adminRequest(runDir, 'delif', { interface: name }, 30_000);
    });
  program
    .command('weight_mode')
    .description("where this node's weight comes from: loadavg (default), loadavg5, loadavg15, freemem, manual")
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .argument('<mode>', 'loadavg | loadavg5 | loadavg15 | freemem | manual')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, mode: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const result = (await adminRequest(runDir, 'weight_mode', { interface: iface, mode: checkLocally(() => parseWeightMode(mode)) })) as { mode: string; weight: number };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${iface}: weight from ${result.mode}, now ${result.weight}\n`);
    });
  program
    .command('set_weight')
    .description('set this node\'s weight by hand (manual mode only); "stdin" reads it from standard input')
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .argument('<weight>', `${WEIGHT_MIN}..${WEIGHT_MAX} (a load: higher gets fewer new clients), or stdin`)
    .option('--json', 'machine-readable output')
    .action(async (iface: string, weightText: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const weight = weightText === 'stdin' ? await readManualWeight(process.stdin) : checkLocally(() => parseManualWeight(weightText));
      const result = (await adminRequest(runDir, 'set_weight', { interface: iface, weight: String(weight) })) as { weight: number };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${iface}: weight ${result.weight}\n`);
    });
  program
    .command('resync')
    .description("send this node's tracking state to every node; each clears its tables and loads it (LNLB's resync)")
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const result = (await adminRequest(runDir, 'resync', { interface: iface }, 65_000)) as { entries: number; bytes: number; fragments: number };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${iface}: sent ${result.entries} tracked flows (${result.bytes} bytes in ${result.fragments} frames) to every node\n`);
    });
  bondCommands(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return;
      process.stderr.write(`lnlbctl: ${err.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    throw err;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`lnlbctl: ${isLnlbError(err) || err instanceof Error ? err.message : String(err)}\n`);
  // A bad argument exits 2, as a bad flag does: refused here, or a bond option word refused by
  // the daemon (the same table: it would have been refused here by another lnlbctl version).
  const badArgument = isLnlbError(err) && (refusedLocally.has(err) || err.code === 'LNLB_ERR_BOND_OPTION');
  process.exit(badArgument ? 2 : 1);
});
