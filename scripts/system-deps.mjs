#!/usr/bin/env node
// The system tools each job of lnlb runs (the demo, the tests, the bench), the Debian package
// of each, and one check before the job starts: a job never runs half-equipped and never prints
// a figure from a tool that is not there.
//
//   node scripts/system-deps.mjs check  JOB   names what is missing, exit 1 if anything is
//   node scripts/system-deps.mjs ensure JOB   as root, installs what is missing (one line says
//                                             so); otherwise, or if that fails, stops with one
//                                             line naming the tools and the command to run
// JOB: demo, test, bench or all. LNLB_INSTALL=never makes `ensure` stop instead of installing.
//
// A tool is looked up in PATH as the job will run it, except node_modules/.bin: under npm it
// comes first and holds an `nft` of its own (@vercel/nft) that exits 0 to everything.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** tool → its Debian package. */
export const PACKAGE_OF = {
  ip: 'iproute2',
  bridge: 'iproute2',
  ping: 'iputils-ping',
  curl: 'curl',
  nc: 'netcat-openbsd',
  nft: 'nftables',
  sysctl: 'procps',
  pkill: 'procps',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  iperf3: 'iperf3',
  tshark: 'tshark',
  keepalived: 'keepalived',
  wrk: 'wrk',
  'ovsdb-tool': 'openvswitch-switch',
  'ovsdb-server': 'openvswitch-switch',
  'ovs-vswitchd': 'openvswitch-switch',
  'ovs-vsctl': 'openvswitch-switch',
  'ovs-appctl': 'openvswitch-switch',
};

/** The tools each job runs. */
export const TOOLS_OF = {
  demo: ['ip', 'ping', 'curl'],
  test: ['ip', 'bridge', 'ping', 'curl', 'nc', 'nft', 'sysctl', 'setpriv', 'unshare', 'iperf3', 'tshark', 'ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl'],
  bench: ['ip', 'bridge', 'ping', 'curl', 'nft', 'sysctl', 'iperf3', 'tshark', 'keepalived'],
};
TOOLS_OF.all = [...new Set([...TOOLS_OF.test, ...TOOLS_OF.bench, 'pkill', 'wrk'])];

/** The absolute path `name` runs from with this PATH, or undefined. */
export function findTool(name, path = process.env.PATH ?? '') {
  for (const dir of path.split(delimiter)) {
    if (dir === '' || dir.split('/').includes('node_modules')) continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function missingTools(job, path = process.env.PATH) {
  const tools = TOOLS_OF[job];
  if (tools === undefined) throw new Error(`unknown job ${JSON.stringify(job)}: one of ${Object.keys(TOOLS_OF).join(', ')}`);
  return tools.filter((tool) => findTool(tool, path) === undefined);
}

function describe(tools) {
  return tools.map((tool) => `${tool} (${PACKAGE_OF[tool]})`).join(', ');
}

function stopLine(job, missing) {
  const packages = [...new Set(missing.map((tool) => PACKAGE_OF[tool]))];
  return `${job} needs ${describe(missing)}, not found in PATH: install them with \`sudo scripts/install-system-deps.sh\` (or \`sudo apt-get install ${packages.join(' ')}\`)`;
}

function apt(args) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'pipe'], env, encoding: 'utf8' });
  return { ok: r.status === 0, error: r.error?.message ?? r.stderr?.trim().split('\n').pop() ?? '' };
}

/** Installs the packages of `missing` with apt-get; undefined on success, else why not. */
function install(missing) {
  const packages = [...new Set(missing.map((tool) => PACKAGE_OF[tool]))];
  const args = ['install', '-y', '-qq', '--no-install-recommends', ...packages];
  let r = apt(args);
  if (!r.ok) {
    // A fresh machine has no package lists yet.
    const update = apt(['update', '-qq']);
    if (!update.ok) return `apt-get update failed: ${update.error}`;
    r = apt(args);
  }
  return r.ok ? undefined : `apt-get install failed: ${r.error}`;
}

/**
 * Returns the line to stop with, or undefined when every tool of `job` is there (installing the
 * missing ones first as root, unless LNLB_INSTALL=never). `say` prints the one progress line.
 */
export function ensureTools(job, say = (line) => console.error(line)) {
  const missing = missingTools(job);
  if (missing.length === 0) return undefined;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || process.env.LNLB_INSTALL === 'never') return stopLine(job, missing);
  say(`${job}: installing the missing Debian packages for ${describe(missing)}`);
  const failure = install(missing);
  const still = missingTools(job);
  if (still.length === 0) return undefined;
  return `${stopLine(job, still)}${failure === undefined ? ' (installed, but still not in PATH)' : `; ${failure}`}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, job = 'all'] = process.argv.slice(2);
  if ((command !== 'check' && command !== 'ensure') || TOOLS_OF[job] === undefined) {
    console.error(`usage: node scripts/system-deps.mjs check|ensure ${Object.keys(TOOLS_OF).join('|')}`);
    process.exit(2);
  }
  if (command === 'check') {
    const missing = missingTools(job);
    if (missing.length > 0) console.error(stopLine(job, missing));
    process.exit(missing.length > 0 ? 1 : 0);
  }
  // The progress line on stdout; the line to stop with on stderr, where callers read it.
  const stop = ensureTools(job, (line) => console.log(line));
  if (stop !== undefined) {
    console.error(stop);
    process.exit(1);
  }
}
