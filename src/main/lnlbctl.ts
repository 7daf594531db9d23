/** lnlbctl: talks to lnlbd over the admin socket in its run directory. */

import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { isLnlbError, lnlbError } from '../errors.js';
import { adminRequest } from './admin-client.js';
import type { ConntrackJson, StatusJson } from './admin-protocol.js';
import { formatStatus } from './status-format.js';
import { parseManualWeight, parseWeightMode, readManualWeight, WEIGHT_MAX, WEIGHT_MIN } from './weight-source.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

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
      if (!Number.isInteger(limit) || limit < 1) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `--limit: expected a whole number ≥ 1, got ${JSON.stringify(opts.limit)}`);
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
      const result = (await adminRequest(runDir, 'weight_mode', { interface: iface, mode: parseWeightMode(mode) })) as { mode: string; weight: number };
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
      const weight = weightText === 'stdin' ? await readManualWeight(process.stdin) : parseManualWeight(weightText);
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
  process.exit(1);
});
