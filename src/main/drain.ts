/** `lnlbctl drainstop`'s options, shared by lnlbctl (which must not load the datapath) and the daemon. */

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
