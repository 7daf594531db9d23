/** `lnlbctl drainstop`'s options, shared by lnlbctl (which must not load the datapath) and the daemon. */

import { lnlbError } from '../errors.js';

/** How long to wait, and how quiet a flow must be to count as finished. */
export interface DrainOptions {
  /** Stop after this long even with flows left; undefined: wait for the last one. */
  timeoutSeconds?: number;
  /**
   * A tracked flow not seen for this long counts as finished. A closed TCP connection (tcp
   * handler) counts at once: its entry is stamped old when its FIN or RST passes.
   */
  idleSeconds?: number;
}

export const DEFAULT_DRAIN_IDLE_SECONDS = 10;

const MAX_DRAIN_SECONDS = 30 * 86400;

const describe = (value: unknown): string => (typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value));

/**
 * Drain options from an untrusted caller (the admin socket, the library), checked:
 * LNLB_ERR_CTL_BAD_ARGUMENT naming the option. Unknown keys are ignored (the admin request
 * carries the interface name and `wait` beside them).
 */
export function checkDrainOptions(options: unknown): DrainOptions {
  if (typeof options !== 'object' || options === null) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `drain: expected { timeoutSeconds?, idleSeconds? }, got ${describe(options)}`);
  const given = options as Record<string, unknown>;
  const out: DrainOptions = {};
  for (const key of ['timeoutSeconds', 'idleSeconds'] as const) {
    const v = given[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_DRAIN_SECONDS) {
      throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${key}: expected seconds from 0 to ${MAX_DRAIN_SECONDS}, got ${describe(v)}`);
    }
    out[key] = v;
  }
  return out;
}
