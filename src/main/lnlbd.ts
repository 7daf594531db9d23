/**
 * lnlbd: the daemon, in the foreground. One cluster interface per daemon for now
 * (`--bind DEV --vip IP`); SIGTERM/SIGINT leave the cluster, remove the TAP and restore the
 * sysctls before exiting, and so does an uncaught exception or unhandled rejection (then
 * exiting 1): see shutdown.ts.
 */

import { setProcessNice } from './process-priority.js';
import { Command, CommanderError } from 'commander';
import { isLnlbError, lnlbError } from '../errors.js';
import { AdminServer } from './admin-server.js';
import { CAP_NET_ADMIN, CAP_NET_RAW, missingCapabilities } from './capabilities.js';
import { registerAdminCommands } from './admin-commands.js';
import { Daemon } from './daemon.js';
import type { BondSpec } from './bond-spec.js';
import { createLogger, setLogLevel, type Logger } from './logger.js';
import type { MetricsServer } from './metrics.js';
import { daemonOptions, type RawOptions } from './config-file.js';
import { planReload } from './reload.js';
import { nameProcess } from './process-title.js';
import { ServiceNotifier } from './service-notify.js';
import { LNLBD_BINDING_NAMES, preflightInterface, type InterfacePreflight } from './interface-preflight.js';
import type { InterfaceStatusJson } from './admin-protocol.js';
import { parseClusterVip } from '../net/vip.js';
import { ensurePrivateDir, removeCreatedDirs } from './run-dir.js';
import { Shutdown } from './shutdown.js';
import { DAEMON_OPTIONS, DEFAULT_KEY_PATH, REPEAT_SEPARATOR, type DaemonOptions } from './options.js';
import { loadKeyFile } from '../net/auth.js';

/** The command line's options as raw strings; `daemonOptions` puts the config file under them. */
function parseCommandLine(argv: string[]): RawOptions {
  const program = new Command('lnlbd')
    .description('lnlb daemon: share one IP address across hosts, each taking its own share of clients')
    .exitOverride()
    .configureOutput({ outputError: () => undefined }) // we print one line ourselves
    .allowExcessArguments(false);
  for (const spec of DAEMON_OPTIONS) {
    if ('repeatable' in spec && spec.repeatable) {
      program.option(spec.flag, spec.description, (value: string, previous: string[]) => [...previous, value], [] as string[]);
      continue;
    }
    const fallback = spec.default === undefined || ('boolean' in spec && spec.boolean) ? '' : ` (default: ${String(spec.default)})`;
    program.option(spec.flag, `${spec.description}${fallback}`);
  }
  program.addHelpText(
    'after',
    [
      '',
      'Examples:',
      `  lnlbctl genkey ${DEFAULT_KEY_PATH}     # once; copy the file to every node`,
      `  lnlbd --bind eth0 --vip 10.0.0.100 --key-file ${DEFAULT_KEY_PATH} --rule 22/tcp=single,priority=1 --rule 443/tcp=multiple,affinity=none`,
      '  lnlbctl status',
      `  lnlbd --bond "bond0 mode=802.3ad miimon=100 lacp_rate=fast slaves=eth1,eth2" --bind bond0 --vip 10.0.0.100 --key-file ${DEFAULT_KEY_PATH}`,
      '  lnlbctl bond show bond0',
    ].join('\n'),
  );
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') process.exit(0); // commander printed it
      throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const raw: Partial<Record<keyof DaemonOptions, string>> = {};
  for (const [key, value] of Object.entries(program.opts<Record<string, string | string[] | boolean | undefined>>())) {
    if (Array.isArray(value)) {
      if (value.length > 0) raw[key as keyof DaemonOptions] = value.join(REPEAT_SEPARATOR);
    } else if (typeof value === 'boolean') {
      raw[key as keyof DaemonOptions] = String(value); // a switch (--insecure-no-auth): 'true', as the config file writes it
    } else if (value !== undefined) {
      raw[key as keyof DaemonOptions] = value;
    }
  }
  return raw;
}

/** The daemon's log once it exists: a start that fails is said there too, as a JSON line with its code. */
let startLog: Logger | undefined;

async function main(): Promise<void> {
  // `lnlbd`, not `node`, to pidof, pgrep and ps (process-title.ts): first, so a start that hangs is found too.
  nameProcess('lnlbd', process.argv.slice(2));
  const commandLine = parseCommandLine(process.argv.slice(2));
  let options = daemonOptions(commandLine); // the config file (--config, or /etc/lnlb/lnlb.conf) under the flags
  const missing = missingCapabilities([CAP_NET_ADMIN, CAP_NET_RAW]);
  if (missing.length > 0) {
    const bonds = options.bond.length === 0 ? '' : `${options.bond.map((b) => b.name).join(', ')} and `;
    const what = options.bind === undefined ? `to create ${bonds}cluster interfaces` : `to create ${bonds}${options.name.replace('%d', '0')} and read ${options.bind}`;
    throw lnlbError('LNLB_ERR_PRIV_MISSING', `lnlbd needs ${missing.join(' and ')} (${what}): run it as root or grant the capabilities`);
  }
  const log = createLogger(options.logLevel);
  startLog = log;
  // Under systemd (Type=notify): READY=1 once converged, RELOADING=1, STOPPING=1 (service-notify.ts).
  const notifier = ServiceNotifier.fromEnvironment(process.env, log);
  // Everything that can be refused without touching the host, before anything is made (the run
  // directory, bonds, the TAP): the key file, and for the first cluster interface its device,
  // its VIP and the handler modules (interface-preflight.ts). A bond it binds to is looked at
  // once created.
  let checked: InterfacePreflight | undefined;
  if (options.bind !== undefined && options.vip !== undefined) {
    const bondMadeLater = options.bond.some((b) => b.name === options.bind);
    checked = await preflightInterface({ ...options, bind: options.bind, vip: options.vip }, parseClusterVip(options.vip), log, LNLBD_BINDING_NAMES, bondMadeLater);
  } else if (options.keyFile !== undefined) {
    loadKeyFile(options.keyFile); // the key of the interfaces lnlbctl addif adds
  }
  // Created 0700, or refused when unsafe or not writable (run-dir.ts); a start that fails takes back what it made.
  const createdDirs = ensurePrivateDir(options.runDir, 'run directory');
  // V8's platform threads now (the control thread's collections wait on them), the main
  // thread and the datapath once started (raisePriority).
  const priority = options.nice === 0 ? undefined : setProcessNice(options.nice, new Set(), new Set([process.pid]));
  if (priority?.failed !== undefined) {
    log.warn({ event: 'priority', nice: options.nice }, `could not set lnlbd's threads to nice ${options.nice} (${priority.failed}): it needs CAP_SYS_NICE; on a busy machine heartbeats may be late and live nodes declared dead`);
  }

  let admin: AdminServer | undefined;
  let daemon: Daemon | undefined;
  let metrics: MetricsServer | undefined;
  const shutdown = new Shutdown({
    stop: async () => {
      notifier?.stopping('leaving the cluster, restoring the host');
      try {
        await daemon?.stop();
      } finally {
        await metrics?.close();
        await admin?.close();
      }
    },
    exit: (code) => {
      log.flush?.();
      process.exit(code);
    },
    log,
  });
  try {
    admin = new AdminServer(options.runDir);
    await admin.listen(); // first: refuses to start beside another daemon on the same run dir
    // Shutdown.begin never rejects (failures become the exit code); the catches only keep that explicit.
    const started = new Daemon(options, log, (err) => shutdown.begin(`failed: ${err.message}`, 1).catch(() => undefined));
    daemon = started;
    shutdown.install(process);
    process.on('SIGTERM', () => shutdown.begin('SIGTERM', 0).catch(() => undefined));
    process.on('SIGINT', () => shutdown.begin('SIGINT', 0).catch(() => undefined));
    // SIGHUP (systemctl reload): read the config again, apply what can change live, keep the
    // rest, and on a bad file keep running with what we have.
    process.on('SIGHUP', () => {
      notifier?.reloading();
      let next: DaemonOptions;
      try {
        next = daemonOptions(commandLine);
      } catch (err) {
        log.error({ event: 'reload-failed' }, `reload refused, nothing changed: ${(err as Error).message}`);
        notifier?.reloaded();
        return;
      }
      const plan = planReload(options, next);
      if (plan.apply.logLevel !== undefined) setLogLevel(log, plan.apply.logLevel);
      if (plan.apply.weightMode !== undefined) for (const cluster of started.interfaces) cluster.setWeightMode(plan.apply.weightMode);
      options = { ...options, ...plan.apply };
      log.info(
        { event: 'reloaded', config: next.config ?? null, applied: plan.apply, needRestart: plan.needRestart },
        `configuration reloaded${Object.keys(plan.apply).length > 0 ? `: applied ${Object.entries(plan.apply).map(([k, v]) => `${k}=${String(v)}`).join(', ')}` : ': nothing to apply'}${plan.needRestart.length > 0 ? `; ${plan.needRestart.join(', ')} changed and take effect on restart` : ''}`,
      );
      notifier?.reloaded();
    });
    registerAdminCommands(admin, started);
    if (notifier !== undefined) {
      // STATUS= follows each interface's view and state, those addif adds too.
      const statuses = (): Promise<InterfaceStatusJson[]> => started.status();
      started.events.on('added', (cluster) => {
        cluster.events.on('converged', () => notifier.statusChanged(statuses));
        cluster.events.on('state', () => notifier.statusChanged(statuses));
      });
    }
    if (options.metrics !== undefined) {
      // Imported here: prom-client is loaded only by a daemon that serves metrics.
      const { MetricsServer, buildMetricsRegistry } = await import('./metrics.js');
      metrics = await MetricsServer.listen(options.metrics, buildMetricsRegistry(() => started.status()), (err) => log.error({ event: 'metrics-error', err }, `metrics endpoint: ${err.message}`));
      log.info({ event: 'metrics', address: metrics.address }, `Prometheus metrics at http://${metrics.address}/metrics`);
    }
    // Bonds first: the cluster interface may be bound to one (`--bond "bond0 ..." --bind bond0`).
    for (const bond of options.bond) await createBond(started, bond, log);
    if (options.bind !== undefined && options.vip !== undefined) await started.addInterface(options.vip, options.bind, options.name, {}, { names: LNLBD_BINDING_NAMES, ...(checked === undefined ? {} : { checked }) });
  } catch (err) {
    await daemon?.stop().catch(() => undefined);
    await metrics?.close();
    await admin?.close();
    const left = removeCreatedDirs(createdDirs);
    if (left.length > 0) log.warn({ event: 'run-dir-left', dirs: left }, `left ${left.join(', ')}, made by this start: not empty`);
    throw err;
  }
  raisePriority(options.nice, daemon);
  if (options.bind === undefined) {
    const keyHint = options.keyFile === undefined && !options.insecureNoAuth ? ' --key-file <path> (this daemon has no --key-file)' : '';
    log.info({ event: 'idle' }, `no cluster interface yet: add one with lnlbctl addif <vip> <dev>${keyHint}, and bonds with lnlbctl bond create <name> [option=value ...]`);
  }
  if (notifier !== undefined) {
    const started = daemon;
    void notifier.announceWhenSettled(() => started.status()).catch((err: unknown) => log.warn({ event: 'sd-notify-failed' }, `readiness not announced: ${(err as Error).message}`));
  }
  injectTestFault(process.env['LNLB_TEST_FAULT']);
}

/**
 * Test-only, not an option (test/integration/lnlbd-cli.test.ts): `LNLB_TEST_FAULT=KIND:MS`
 * raises an unexpected error of KIND (`uncaught-exception` or `unhandled-rejection`) MS ms
 * after the start, to check that even then lnlbd leaves the cluster and restores the host.
 * Whoever can set lnlbd's environment can stop it anyway.
 */
function injectTestFault(spec: string | undefined): void {
  const match = spec === undefined ? null : /^(uncaught-exception|unhandled-rejection):(\d+)$/.exec(spec);
  if (match === null) return;
  const fault = new Error(`injected fault (LNLB_TEST_FAULT=${spec})`);
  setTimeout(() => {
    if (match[1] === 'uncaught-exception') throw fault;
    // A rejection nobody handles, as a forgotten promise would leave.
    Promise.reject(fault);
  }, Number(match[2]));
}

/**
 * `--nice` for the main thread and the datapath, once the daemon is up: its start (modules,
 * threads, tables: some 300 ms of CPU) ran at the priority it was given, so a node restarting
 * beside others on a small machine does not hold up their control threads. (V8's platform
 * threads were raised at once: the control thread's collections wait on them.) Measured
 * (3 daemons on 2 cores, hb 10 ms, dead after 30 ms, a 15 s full-speed flood with three kills
 * and restarts): a live node reset itself in 6 of 32 runs with the priority set before the
 * start, in 2 of 20 with it set after. Threads made later inherit the main thread's priority;
 * the datapath ones then lower themselves. The first try's failure was logged (the same one).
 */
function raisePriority(nice: number, daemon: Daemon): void {
  if (nice !== 0) setProcessNice(nice, new Set(daemon.datapathThreadIds()));
}


/** A `--bond`: created with its options, then its slaves enslaved in order; warnings logged. */
async function createBond(daemon: Daemon, bond: BondSpec, log: Logger): Promise<void> {
  const created = await daemon.bonds.create(bond.name, bond.options);
  for (const warning of created.warnings) log.warn({ event: 'bond-option-warning', bond: bond.name }, `--bond ${bond.name}: ${warning}`);
  if (bond.slaves.length > 0) await daemon.bonds.enslave(bond.name, bond.slaves);
  log.info({ event: 'bond-created', bond: bond.name, options: created.options, slaves: bond.slaves }, `bond ${bond.name} created (${created.options.join(' ')})${bond.slaves.length > 0 ? ` with ${bond.slaves.join(', ')}` : ', no slaves yet'}`);
}

main().catch((err: unknown) => {
  const message = isLnlbError(err) ? err.message : err instanceof Error ? err.message : String(err);
  // The log's line (stdout, JSON: with the code, for whoever collects the log) and the person's (stderr).
  startLog?.fatal({ event: 'start-failed', code: isLnlbError(err) ? err.code : undefined, errno: isLnlbError(err) ? err.errno : undefined }, `lnlbd did not start: ${message}`);
  startLog?.flush?.();
  process.stderr.write(`lnlbd: ${message}\n`);
  // A refusal of what was asked (flags, config, a cluster without a key) exits 2, before anything was created.
  process.exit(isLnlbError(err) && (err.code === 'LNLB_ERR_CLI_BAD_FLAG' || err.code === 'LNLB_ERR_CONFIG_INVALID' || err.code === 'LNLB_ERR_AUTH_KEY_MISSING' || err.code === 'LNLB_ERR_HEALTH_BAD_CHECK' || err.code === 'LNLB_ERR_WEIGHT_MODE' || err.code === 'LNLB_ERR_WEIGHT_MANUAL_RETIRED') ? 2 : 1);
});
