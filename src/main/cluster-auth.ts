/**
 * The cluster key of one interface: loaded before anything on the host changes, and, run
 * without one (--insecure-no-auth), said as an error until the interface stops.
 */

import { loadKeyFile } from '../net/auth.js';
import type { Logger } from './logger.js';
import { checkClusterAuth, DAEMON_AUTH_NAMES, type InterfaceOptions } from './options.js';

/** How often --insecure-no-auth is said again in the log, as an error. */
export const INSECURE_REPEAT_MS = 60_000;
/** The log line (and, shortened, the status header) of an interface running without a key. */
export const INSECURE_LOG_LINE =
  'AUTH OFF (--insecure-no-auth): control plane NOT authenticated, any host on this LAN can take this cluster over (send LEAVE, fake members, replace tracking state); for labs only: give every node the same --key-file (lnlbctl genkey)';

/**
 * The control-plane key (LNLB_ERR_AUTH_KEY_MISSING without one, unless --insecure-no-auth;
 * loadKeyFile's refusals for a bad file); a key that loads but looks guessable is logged.
 * undefined: --insecure-no-auth, plain LNLB messages.
 */
export function loadClusterKey(options: InterfaceOptions, log: Pick<Logger, 'warn'>): Buffer | undefined {
  checkClusterAuth(options, DAEMON_AUTH_NAMES);
  const keyFile = options.keyFile;
  if (keyFile === undefined) return undefined;
  return loadKeyFile(keyFile, { warn: (message) => log.warn({ event: 'key-file-weak', keyFile }, message) });
}

/**
 * --insecure-no-auth: said as an error now and every `everyMs` (a minute), so that nobody runs
 * it unaware; returns the timer (unref'd) to clear on stop.
 */
export function warnInsecureNoAuth(log: Pick<Logger, 'error'>, everyMs: number = INSECURE_REPEAT_MS): NodeJS.Timeout {
  const say = (): void => log.error({ event: 'insecure-no-auth', authenticated: false, insecure: true }, INSECURE_LOG_LINE);
  say();
  const timer = setInterval(say, everyMs);
  timer.unref();
  return timer;
}
