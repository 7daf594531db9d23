/**
 * The system tools a job runs (ping, curl, nft, ...) checked before the job starts, and a
 * tool's failure told apart from what it measures: a ping that did not run is not a ping that
 * got no reply, and never becomes a figure.
 *
 * The table of tools and Debian packages lives in scripts/system-deps.mjs, which
 * scripts/install-system-deps.sh, scripts/test.mjs and this module all run: one list.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lnlbError } from '../src/errors.js';
import type { ExecResult } from './netns.js';

// This file runs as dist/lab/system-tools.js; the repository root is two levels up.
const SYSTEM_DEPS = join(fileURLToPath(new URL('../../', import.meta.url)), 'scripts', 'system-deps.mjs');

export type Job = 'demo' | 'test' | 'bench';

/**
 * Makes sure every tool `job` runs is there: as root, installs the missing Debian packages
 * (saying so in one line on stderr) unless LNLB_INSTALL=never. Returns the one line to stop
 * with when something is still missing, undefined when all is there.
 */
export function ensureSystemTools(job: Job): string | undefined {
  const r = spawnSync(process.execPath, [SYSTEM_DEPS, 'ensure', job], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (r.status === 0) return undefined;
  return (r.stderr || r.error?.message || `${SYSTEM_DEPS} exited ${String(r.status)}`).trim();
}

/**
 * Exit codes that mean the program itself ran and answered. Anything else (`ip netns exec`
 * gives 255 when the program cannot be started, a shell 126/127, a signal null) means the tool
 * failed, and what it would have measured is unknown.
 */
const ANSWERED: Record<string, readonly number[]> = {
  // iputils: 0 replies came, 1 none came before the deadline; 2 is an error.
  ping: [0, 1],
};

/** Throws LNLB_ERR_LAB_TOOL when `tool` did not run (or failed as a program, not a probe). */
export function checkToolRan(tool: string, result: ExecResult, answered: readonly number[] | undefined = ANSWERED[tool]): void {
  const ran = result.code !== null && (answered === undefined ? result.code < 126 : answered.includes(result.code));
  if (ran) return;
  const why = result.timedOut ? 'timed out' : result.code === null ? 'was killed' : `exit ${result.code}`;
  const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-2).join(' / ');
  throw lnlbError('LNLB_ERR_LAB_TOOL', `${tool} did not run (${why}${said === '' ? '' : `: ${said}`}); nothing it would have measured is known`);
}
