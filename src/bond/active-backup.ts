/**
 * active-backup's choice of the active slave (the driver's bond_choose_primary_or_current and
 * bond_find_best_slave), pure: the slaves' link states in, the active slave's index out.
 *
 * 1. With a primary whose link is UP:
 *    - no current active, or the current one's link is not UP → the primary;
 *    - primary_reselect `always` → the primary (it takes over again as soon as it is UP);
 *    - `better` → the primary only if it is faster, or as fast with a better duplex;
 *    - `failure` → the current one stays until it fails.
 * 2. Otherwise the current active slave if its link is UP.
 * 3. Otherwise the first slave (in enslave order) whose link is UP; if none, the slave coming
 *    back (BACK) with the least delay left, so traffic resumes on the likeliest link; else none.
 *
 * "UP" here is the link state UP only: a slave in FAIL (carrier lost, downdelay running) keeps
 * carrying traffic while it is the active one, but is never chosen anew.
 */

import { LinkState, type SlaveLink } from './link-monitor.js';

export const PRIMARY_RESELECTS = ['always', 'better', 'failure'] as const;
export type PrimaryReselect = (typeof PRIMARY_RESELECTS)[number];

export interface CandidateSlave {
  link: SlaveLink;
  /** Mb/s; 0 when the device does not say. */
  speed: number;
  /** 1 full, 0 half or unknown. */
  duplex: number;
}

/** -1: no slave. */
export function chooseActive(slaves: readonly CandidateSlave[], current: number, primary: number, reselect: PrimaryReselect): number {
  const up = (i: number): boolean => i >= 0 && i < slaves.length && slaves[i]!.link.state === LinkState.UP;
  if (up(primary)) {
    if (!up(current) || current === primary) return primary;
    if (reselect === 'always') return primary;
    if (reselect === 'failure') return current;
    const p = slaves[primary]!;
    const c = slaves[current]!;
    if (p.speed < c.speed) return current;
    if (p.speed === c.speed && p.duplex <= c.duplex) return current;
    return primary;
  }
  if (up(current)) return current;
  let best = -1;
  let leastDelay = Infinity;
  for (let i = 0; i < slaves.length; i++) {
    const link = slaves[i]!.link;
    if (link.state === LinkState.UP) return i;
    if (link.state === LinkState.BACK && link.delay < leastDelay) {
      leastDelay = link.delay;
      best = i;
    }
  }
  // The active slave in FAIL keeps carrying traffic while nothing better exists.
  if (best < 0 && current >= 0 && current < slaves.length && slaves[current]!.link.state === LinkState.FAIL) return current;
  return best;
}
