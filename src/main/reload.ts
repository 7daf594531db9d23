/**
 * SIGHUP: the config file is read again and what can change live is applied; the rest is
 * reported as waiting for a restart. Pure: the options before and after in, a plan out.
 */

import { DAEMON_OPTIONS, type DaemonOptions } from './options.js';

/** The options the table marks `live`: applied on SIGHUP without a restart. */
type LiveOption = Extract<(typeof DAEMON_OPTIONS)[number], { live: true }>['key'];
export const LIVE_OPTIONS: readonly LiveOption[] = DAEMON_OPTIONS.filter((s): s is Extract<(typeof DAEMON_OPTIONS)[number], { live: true }> => 'live' in s && s.live).map((s) => s.key);
const isLive = (key: keyof DaemonOptions): key is LiveOption => (LIVE_OPTIONS as readonly string[]).includes(key);

export interface ReloadPlan {
  /** Live options whose value changed: apply these. */
  apply: Partial<Pick<DaemonOptions, LiveOption>>;
  /** Other options whose value changed: they take effect when the daemon restarts. */
  needRestart: (keyof DaemonOptions)[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Compares the options the daemon runs with and the ones just read. A live option is applied
 * only when the file changed it, so a reload does not undo an `lnlbctl weight_mode` that the
 * file never mentioned anew.
 */
export function planReload(before: DaemonOptions, after: DaemonOptions): ReloadPlan {
  const apply: Partial<Pick<DaemonOptions, LiveOption>> = {};
  const needRestart: (keyof DaemonOptions)[] = [];
  for (const key of Object.keys(after) as (keyof DaemonOptions)[]) {
    if (same(before[key], after[key])) continue;
    if (isLive(key)) Object.assign(apply, { [key]: after[key] });
    else needRestart.push(key);
  }
  return { apply, needRestart };
}
