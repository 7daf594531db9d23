/** lnlbctl: talks to lnlbd over the admin socket in its run directory. */

import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { resolveBondOptions } from '../bond/options.js';
import { isLnlbError, lnlbError, serializeError } from '../errors.js';
import { adminRequest } from './admin-client.js';
import type { BondCreateResult, BondListJson, BondShowJson, ConntrackJson, DrainResult, StatusJson } from './admin-protocol.js';
import { DEFAULT_DRAIN_IDLE_SECONDS } from './drain.js';
import { deviceArgument, devicesArgument } from './bond-spec.js';
import { generateKeyFile } from './key-file.js';
import { DEFAULT_KEY_PATH, interfaceArguments } from './options.js';
import { formatStatus, interfaceRates, type InterfaceRates } from './status-format.js';
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
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      checkLocally(() => deviceArgument(name, '<bond>'));
      const result = await adminRequest(runDir(), 'bond.destroy', { bond: name }, 30_000);
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}

interface WatchOptions {
  interval: string;
  count?: string;
  json?: boolean;
}

/** `status --watch` and `top`: a sample every interval; rates from the difference of two. */
async function watchStatus(runDir: string, opts: WatchOptions): Promise<void> {
  const interval = checkLocally(() => positiveNumber(opts.interval, '--interval', 0.1, 3600));
  const count = opts.count === undefined ? Number.POSITIVE_INFINITY : checkLocally(() => positiveNumber(opts.count!, '--count', 1, 1e9, true));
  const tty = process.stdout.isTTY === true && !opts.json;
  let previous: { status: StatusJson; at: number } | undefined;
  for (let n = 0; n < count; n++) {
    if (n > 0) await new Promise((resolve) => setTimeout(resolve, interval * 1000));
    const status = (await adminRequest(runDir, 'status')) as StatusJson;
    const at = performance.now();
    const rates = new Map<string, InterfaceRates>();
    if (previous !== undefined) {
      const seconds = (at - previous.at) / 1000;
      for (const iface of status.interfaces) {
        const before = previous.status.interfaces.find((i) => i.name === iface.name);
        if (before !== undefined) rates.set(iface.name, interfaceRates(before, iface, seconds));
      }
    }
    previous = { status, at };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), interfaces: status.interfaces.map((i) => ({ ...i, ...(rates.has(i.name) ? { perSecond: rates.get(i.name) } : {}) })) })}\n`);
    } else {
      // A terminal gets the screen redrawn in place; a pipe gets one block per sample.
      process.stdout.write(`${tty ? '\x1b[H\x1b[2J' : n > 0 ? '\n' : ''}${new Date().toISOString()}  every ${interval}s${tty ? ' (Ctrl-C to quit)' : ''}\n${formatStatus(status, rates)}`);
    }
  }
}

function positiveNumber(text: string, what: string, min: number, max: number, whole = false): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${what}: expected ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** A cluster interface argument: a device name (the daemon says whether it serves it). */
function interfaceArgument(name: string): string {
  return checkLocally(() => deviceArgument(name, '<interface>'));
}

/** Windows NLB's per-interface operations: stop, start, drainstop, suspend, resume. */
function clusterOperations(program: Command): void {
  const runDir = (): string => program.opts<{ runDir: string }>().runDir;
  const simple = (name: 'stop' | 'start' | 'suspend' | 'resume', description: string): void => {
    program
      .command(name)
      .description(description)
      .argument('<interface>', 'the cluster interface, e.g. nlb0')
      .option('--json', 'machine-readable output')
      .action(async (iface: string, opts: { json?: boolean }) => {
        const result = (await adminRequest(runDir(), name, { interface: interfaceArgument(iface) }, 10_000)) as { state: string };
        const hint = result.state === 'unhealthy' ? ' (a health check fails: it stays out of the cluster and joins once its checks pass; see lnlbctl status)' : '';
        process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${iface}: ${result.state}${hint}\n`);
      });
  };
  simple('stop', 'leave the cluster now (LEAVE): the other nodes take every client; connections to this node break. The interface stays, for start');
  simple('start', 'join the cluster again after stop or drainstop (refused while suspended); ends a drain in progress');
  simple('suspend', 'stop, and refuse start until resume (Windows NLB: for maintenance that a script must not undo)');
  simple('resume', 'allow start again after suspend; as in Windows NLB, the node stays stopped until start');
  program
    .command('drainstop')
    .description("no new clients (the others take every new flow), this node's tracked flows finish, then stop; waits until then unless --no-wait")
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .option('--timeout <s>', 'stop after this many seconds even if flows remain (default: wait for the last one)')
    .option('--idle <s>', 'a flow not seen for this many seconds counts as finished (a closed TCP connection counts at once)', String(DEFAULT_DRAIN_IDLE_SECONDS))
    .option('--no-wait', 'return at once; lnlbctl status shows draining, then stopped')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, opts: { timeout?: string; idle: string; wait: boolean; json?: boolean }) => {
      const name = interfaceArgument(iface);
      const timeoutSeconds = opts.timeout === undefined ? undefined : checkLocally(() => positiveNumber(opts.timeout!, '--timeout', 0, 30 * 86400));
      const idleSeconds = checkLocally(() => positiveNumber(opts.idle, '--idle', 0, 30 * 86400));
      const args = { interface: name, idleSeconds, wait: opts.wait, ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }) };
      const answerWithin = opts.wait ? (timeoutSeconds === undefined ? 2 ** 31 - 1 : (timeoutSeconds + 15) * 1000) : 10_000;
      const result = (await adminRequest(runDir(), 'drainstop', args, answerWithin)) as DrainResult & { waited?: boolean };
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else if (result.waited === false) process.stdout.write(`${iface}: draining\n`);
      else if (result.cancelled) process.stdout.write(`${iface}: drain ended by another command after ${result.ms} ms (${result.state})\n`);
      else process.stdout.write(`${iface}: ${result.state} after ${(result.ms / 1000).toFixed(1)} s, ${result.drained ? 'every flow finished' : `timeout with ${result.remainingFlows} flow(s) still active`}\n`);
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
  const watchOptions = (command: Command): Command =>
    command
      .option('--interval <s>', 'seconds between refreshes (with --watch)', '1')
      .option('--count <n>', 'stop after this many refreshes (default: until interrupted)')
      .option('--json', 'machine-readable output: one JSON object a line, with per-second rates from the second on');
  watchOptions(
    program
      .command('status')
      .description('each cluster interface: its state (converging, converged, draining, stopped, suspended, failed: why), members with MAC, status and weight, counters')
      .option('--watch', 'refresh every --interval seconds, with rates per second (as lnlbctl top)'),
  ).action(async (opts: WatchOptions & { watch?: boolean }) => {
    const { runDir } = program.opts<{ runDir: string }>();
    if (opts.watch) return watchStatus(runDir, opts);
    const status = (await adminRequest(runDir, 'status')) as StatusJson;
    process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  });
  watchOptions(program.command('top').description('lnlbctl status --watch: the cluster refreshed live, with rates per second')).action((opts: WatchOptions) =>
    watchStatus(program.opts<{ runDir: string }>().runDir, opts),
  );
  clusterOperations(program);
  program
    .command('conntrack')
    .description('tracked flows of a cluster interface, every handler: flow, owning node (MAC, name, address; this node marked), seconds until forgotten')
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .option('--limit <n>', 'at most this many entries', '10000')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, opts: { json?: boolean; limit: string }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) checkLocally(() => { throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `--limit: expected a whole number ≥ 1, got ${JSON.stringify(opts.limit)}`); });
      const result = (await adminRequest(runDir, 'conntrack', { interface: interfaceArgument(iface), limit }, 30_000)) as ConntrackJson;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      // The owner by MAC, its name and address as it announced them, this node marked.
      const rows = [
        ['HANDLER', 'FLOW', 'NODE', 'NAME', 'ADDRESS', 'EXPIRES IN', ''],
        ...result.entries.map((e) => [e.handler, e.flow, e.node, e.nodeName ?? '-', e.nodeAddress ?? '-', `${e.expiresInSeconds}s`, e.self === true ? '(this node)' : '']),
      ];
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()}\n`);
      process.stdout.write(`${result.total} tracked${result.total > result.entries.length ? ` (${result.entries.length} shown)` : ''}\n`);
    });
  program
    .command('addif')
    .description("add a cluster interface for <cluster ip> on <dev>; prints its name (nlb0, nlb1, ... unless given). It needs a key: the daemon's --key-file, or --key-file here")
    .argument('<cluster ip>', 'the VIP shared by the cluster, e.g. 10.0.0.100')
    .argument('<dev>', 'the real device, e.g. eth0')
    .argument('[name]', 'the interface name (default: the lowest free nlb%d)')
    .option('--rule <rule>', "a port rule for this interface, repeatable (as lnlbd's --rule; replaces the daemon's)", collect, [] as string[])
    .option('--handler <proto=module>', "a protocol handler for this interface, repeatable (as lnlbd's --handler)", collect, [] as string[])
    .option('--key-file <path>', "this cluster's key (as lnlbd's --key-file; replaces the daemon's): the same file on every node; make one with lnlbctl genkey")
    .option('--insecure-no-auth', 'this interface WITHOUT a key (labs only: any host on the LAN can take the cluster over)')
    .option('--vlan <id>', "the trunk VLAN this cluster serves on <dev> (as lnlbd's --vlan; replaces the daemon's)")
    .option('--json', 'machine-readable output')
    .action(async (vip: string, dev: string, name: string | undefined, opts: { json?: boolean; rule: string[]; handler: string[]; keyFile?: string; insecureNoAuth?: boolean; vlan?: string }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      // A key file is the caller's path: made absolute here, since the daemon runs elsewhere.
      const auth = { ...(opts.keyFile === undefined ? {} : { keyFile: opts.keyFile === '' ? '' : resolve(opts.keyFile) }), ...(opts.insecureNoAuth === true ? { insecureNoAuth: true } : {}) };
      // The daemon checks them again with the same table; here they exit 2 without asking it.
      checkLocally(() => interfaceArguments({ vip, bind: dev, name, rule: opts.rule, handler: opts.handler.map(absoluteHandler), ...auth, ...(opts.vlan === undefined ? {} : { vlan: opts.vlan }) }));
      const extra = { ...(opts.rule.length > 0 ? { rule: opts.rule } : {}), ...(opts.handler.length > 0 ? { handler: opts.handler.map(absoluteHandler) } : {}), ...auth, ...(opts.vlan === undefined ? {} : { vlan: opts.vlan }) };
      const result = (await adminRequest(runDir, 'addif', { vip, dev, ...(name === undefined ? {} : { name }), ...extra }, 30_000)) as { name: string };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${result.name}\n`);
    });
  program
    .command('genkey')
    .description(`make a new cluster key: 32 random bytes as 64 hex characters, mode 600; copy the file to every node and give lnlbd --key-file (refuses to overwrite a file unless --force)`)
    .argument('<path>', `the key file to create, e.g. ${DEFAULT_KEY_PATH}`)
    .option('--force', 'replace an existing key file (every node then needs the new one)')
    .option('--json', 'machine-readable output (never the key itself)')
    .addHelpText('after', ['', 'Example:', `  lnlbctl genkey ${DEFAULT_KEY_PATH}`, `  scp -p ${DEFAULT_KEY_PATH} node2:${DEFAULT_KEY_PATH}`, `  lnlbd --bind eth0 --vip 10.0.0.100 --key-file ${DEFAULT_KEY_PATH}`].join('\n'))
    .action((path: string, opts: { force?: boolean; json?: boolean }) => {
      const result = generateKeyFile(path, { force: opts.force === true });
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(result)}\n`
          : `${result.replaced ? 'replaced' : 'wrote'} ${path}: a new ${result.bytes * 8}-bit key, mode ${result.mode}. Copy it to every node (scp -p ${path} NODE:${path}) and start each lnlbd with --key-file ${path}\n`,
      );
    });
  program
    .command('delif')
    .description('leave the cluster and remove the interface (the others take its clients at once)')
    .argument('<name>', 'the cluster interface, e.g. nlb0')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const result = await adminRequest(runDir, 'delif', { interface: interfaceArgument(name) }, 30_000);
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  program
    .command('weight_mode')
    .description("where this node's weight (a capacity: higher gets more new clients) comes from: loadavg (default), loadavg5, loadavg15, freemem (load turned into capacity, 100 = idle), fixed (set_weight)")
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .argument('<mode>', 'loadavg | loadavg5 | loadavg15 | freemem | fixed')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, mode: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const result = (await adminRequest(runDir, 'weight_mode', { interface: interfaceArgument(iface), mode: checkLocally(() => parseWeightMode(mode)) })) as { mode: string; weight: number };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${iface}: weight from ${result.mode}, now ${result.weight}\n`);
    });
  program
    .command('set_weight')
    .description('set this node\'s weight by hand (fixed mode only): a capacity, a higher weight gets more new clients; "stdin" reads it from standard input')
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .argument('<weight>', `${WEIGHT_MIN}..${WEIGHT_MAX} (a capacity: 100 = an idle node, 200 = twice its share), or stdin`)
    .option('--json', 'machine-readable output')
    .action(async (iface: string, weightText: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const weight = weightText === 'stdin' ? await readManualWeight(process.stdin) : checkLocally(() => parseManualWeight(weightText));
      const result = (await adminRequest(runDir, 'set_weight', { interface: interfaceArgument(iface), weight: String(weight) })) as { weight: number };
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${iface}: weight ${result.weight}\n`);
    });
  program
    .command('resync')
    .description("send this node's tracking state to every node; each clears its tables and loads it (LNLB's resync); with --election bucket, hand each flow tracked in a bucket this node does not own to that bucket's owner")
    .argument('<interface>', 'the cluster interface, e.g. nlb0')
    .option('--json', 'machine-readable output')
    .action(async (iface: string, opts: { json?: boolean }) => {
      const { runDir } = program.opts<{ runDir: string }>();
      const result = (await adminRequest(runDir, 'resync', { interface: interfaceArgument(iface) }, 65_000)) as { entries: number; bytes: number; fragments: number; handedTo?: number };
      const text =
        result.handedTo === undefined
          ? `${iface}: sent ${result.entries} tracked flows (${result.bytes} bytes in ${result.fragments} frames) to every node`
          : `${iface}: handed ${result.entries} tracked flows (${result.bytes} bytes) to the owners of their buckets (${result.handedTo} node(s))`;
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${text}\n`);
    });
  bondCommands(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return;
      // An unknown command or option, a missing argument: refused here, exit 2, with a code as any error.
      checkLocally(() => {
        throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', err.message.replace(/^error: /, ''));
      });
    }
    throw err;
  }
}

/** `--json` among the arguments (before a `--`): the caller reads JSON, errors included. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * The JSON line of an error: `{"error": {"code", "message"}}` (and `errno`, `cause` when it
 * has them), with the code it was raised with, in whatever thread or process raised it.
 */
function jsonErrorLine(err: unknown): string {
  const error = serializeError(err);
  return `${JSON.stringify({ error: { ...error, code: error.code ?? 'LNLB_ERR_CTL_PROTOCOL' } })}\n`;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // One line for whoever reads the terminal or the journal, always; with --json, stdout then
  // holds the error as one JSON object and nothing else: a script reads stdout whichever way
  // the command went (`.error` or the result), a --watch stream ends with it.
  process.stderr.write(`lnlbctl: ${isLnlbError(err) || err instanceof Error ? err.message : String(err)}\n`);
  if (wantsJson(process.argv.slice(2))) process.stdout.write(jsonErrorLine(err));
  // A bad argument exits 2, as a bad flag does: refused here, a bond option word refused by
  // the daemon (the same table: it would have been refused here by another lnlbctl version), an
  // addif without a key where the daemon has none either (as lnlbd without --key-file), or an
  // addif the daemon refused by its arguments (a loopback <dev>, a <cluster ip> of the host).
  const badArgument = isLnlbError(err) && (refusedLocally.has(err) || err.code === 'LNLB_ERR_BOND_OPTION' || err.code === 'LNLB_ERR_AUTH_KEY_MISSING' || err.code === 'LNLB_ERR_CLI_BAD_FLAG');
  process.exit(badArgument ? 2 : 1);
});
