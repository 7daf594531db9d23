/**
 * Every error lnlb throws on purpose comes from this one factory, with a stable code
 * `LNLB_ERR_<AREA>_<WHAT>` and a message that says what to do. Each code is documented in
 * docs/errors.md (a unit test fails on an undocumented code); a retired code is never reused.
 */

export const ErrorCodes = {
  /** A command-line flag or option value is invalid; the message names the flag. */
  LNLB_ERR_CLI_BAD_FLAG: 'bad command-line flag',
  /** The config file (`--config`, /etc/lnlb/lnlb.conf) cannot be read or holds a bad line; the message names file, line and key. */
  LNLB_ERR_CONFIG_INVALID: 'bad config file',
  /** An operation needs a Linux capability the process does not have. */
  LNLB_ERR_PRIV_MISSING: 'missing privilege',
  /** A network device named by the user does not exist. */
  LNLB_ERR_DEV_NOT_FOUND: 'no such device',
  /** A device could not be created or configured (TAP, address, flags). */
  LNLB_ERR_DEV_SETUP: 'device setup failed',
  /** A socket operation on a port (AF_PACKET or TAP) failed. */
  LNLB_ERR_PORT_IO: 'port I/O failed',
  /** The native addon is missing or could not be loaded. */
  LNLB_ERR_PORT_ADDON: 'native addon not available',
  /** A sysctl could not be read or written. */
  LNLB_ERR_SYS_SYSCTL: 'sysctl failed',
  /** The daemon's admin socket could not be reached. */
  LNLB_ERR_CTL_NO_DAEMON: 'daemon not running',
  /** lnlbctl named a cluster interface the daemon does not serve. */
  LNLB_ERR_CTL_NO_INTERFACE: 'unknown cluster interface',
  /** lnlbctl start on a suspended interface: resume it first. */
  LNLB_ERR_CTL_SUSPENDED: 'cluster interface suspended',
  /** An lnlbctl command's argument is invalid (the message names it). */
  LNLB_ERR_CTL_BAD_ARGUMENT: 'bad command argument',
  /** The admin socket answered with an error or garbage. */
  LNLB_ERR_CTL_PROTOCOL: 'admin protocol error',
  /** Another daemon already uses this run directory. */
  LNLB_ERR_RUN_DIR_BUSY: 'run directory in use',
  /** A worker thread failed to start or died. */
  LNLB_ERR_WORKER_FAILED: 'worker thread failed',
  /** A namespace lab (demo, tests, bench) could not be built. */
  LNLB_ERR_LAB_SETUP: 'lab setup failed',
  /** A system tool the demo, a test or the bench runs (ping, curl) did not run or failed as a program: its figure is unknown, never made up. */
  LNLB_ERR_LAB_TOOL: 'lab tool failed',
  /** The control-plane key file is readable or writable by group or others. */
  LNLB_ERR_AUTH_KEY_MODE: 'key file permissions too open',
  /** The control-plane key file cannot be read, is not a regular file (a FIFO, a symbolic link, a directory), or is too short or too long. */
  LNLB_ERR_AUTH_KEY_INVALID: 'key file unusable',
  /** The control-plane key file is owned by another user than the daemon's (or root): that user could change the cluster's key. */
  LNLB_ERR_AUTH_KEY_OWNER: 'key file owned by another user',
  /**
   * A cluster interface was asked for (lnlbd's flags or config file, `lnlbctl addif`,
   * `createNode`) without a key (`--key-file`, `key-file`, `keyFile`) and without the explicit
   * opt-out `--insecure-no-auth`; nothing was created. Make a key with `lnlbctl genkey PATH`.
   */
  LNLB_ERR_AUTH_KEY_MISSING: 'cluster key missing',
  /** `lnlbctl genkey` refused to overwrite an existing file (give `--force` to replace it). */
  LNLB_ERR_AUTH_KEY_EXISTS: 'key file exists',
  /** `lnlbctl genkey` could not write the key file (no such directory, permission denied, a symbolic link). */
  LNLB_ERR_AUTH_KEY_WRITE: 'key file cannot be written',
  /** A weight mode other than loadavg, loadavg5, loadavg15, freemem or fixed was asked for. */
  LNLB_ERR_WEIGHT_MODE: 'unknown weight mode',
  /**
   * The weight mode `manual` of earlier versions, when a weight was a load (higher got fewer
   * clients): weights are capacities now, the mode is `fixed`, and a load must be inverted.
   */
  LNLB_ERR_WEIGHT_MANUAL_RETIRED: 'weight mode manual retired: weights are capacities',
  /** A fixed weight is not a whole number inside WEIGHT_MIN..WEIGHT_MAX. */
  LNLB_ERR_WEIGHT_RANGE: 'invalid weight',
  /** A fixed weight (set_weight) was set on an interface whose weight mode is not fixed (code kept from when the mode was called manual). */
  LNLB_ERR_WEIGHT_NOT_MANUAL: 'weight mode is not fixed',
  /** /proc/loadavg or /proc/meminfo could not be read or parsed. */
  LNLB_ERR_WEIGHT_SOURCE: 'weight source unreadable',
  /** A saved tracking state is truncated, corrupt or inconsistent; nothing was loaded. */
  LNLB_ERR_STATE_CORRUPT: 'tracking state corrupt',
  /** A saved tracking state has a format version this node does not read; nothing was loaded. */
  LNLB_ERR_STATE_VERSION: 'tracking state version unsupported',
  /** The sender of a tracking state has a clock more than one week off ours; nothing was loaded. */
  LNLB_ERR_STATE_CLOCK_SKEW: 'tracking state clock skew',
  /** A protocol handler module (`--handler`) could not be imported: no such file, a syntax error, a throw at load. */
  LNLB_ERR_HANDLER_LOAD: 'handler module cannot be loaded',
  /** A protocol handler module breaks the handler contract (shape, API version, protocol, or a method failing its smoke test). */
  LNLB_ERR_HANDLER_INVALID: 'invalid protocol handler',
  /** A protocol handler module, or a directory above it, can be changed by another user than the daemon's or root (owner, or group/other write). */
  LNLB_ERR_HANDLER_UNSAFE: 'handler module writable by others',
  /** A handler stopped returning in a datapath thread: the interface left the cluster and stays out until the daemon is restarted. */
  LNLB_ERR_HANDLER_STUCK: 'handler stuck',
  /** A bonding option is unknown, given twice, refused by its parser, given in a mode it does not apply to, or in conflict with another; the message names it and what it accepts. */
  LNLB_ERR_BOND_OPTION: 'bad bonding option',
  /** enslave/release refused: no such device, already a slave (of this bond or another), the bond itself, a cluster TAP, not a slave of this bond. */
  LNLB_ERR_BOND_SLAVE: 'slave refused',
  /** No bond by that name in this daemon (or, for create, one exists already). */
  LNLB_ERR_CTL_NO_BOND: 'unknown bond',
  /** The run directory or /run/lnlb-host is a symlink, not a directory, owned by another user, or writable by group or others. */
  LNLB_ERR_RUN_DIR_UNSAFE: 'run directory unsafe',
  /** The run directory or /run/lnlb-host cannot be created (no write permission in the directory above, a read-only file system) or written in; the message names the directory, the permission and the fix. */
  LNLB_ERR_RUN_DIR_ACCESS: 'run directory not writable',
  /** A state file in the run directory or /run/lnlb-host is a symlink, not a regular file, another user's, or too large; it was not read. */
  LNLB_ERR_STATE_FILE_UNSAFE: 'state file refused',
  /** Another lnlbd on this host (same network namespace) uses the device: as a cluster's bound device, a TAP, a bond or a bond's slave. */
  LNLB_ERR_DEV_IN_USE: 'device used by another lnlbd',
  /** The `--metrics` endpoint could not listen on its address (port in use, address not on this host). */
  LNLB_ERR_METRICS_LISTEN: 'metrics endpoint cannot listen',
  /** A `--health-check` (config key `health-check`, createNode `healthCheck`) is not tcp://HOST:PORT, http://HOST[:PORT]/PATH[#STATUS], exec:COMMAND (or, in createNode, a function); the message names the flag and the value. */
  LNLB_ERR_HEALTH_BAD_CHECK: 'bad health check',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class LnlbError extends Error {
  readonly code: ErrorCode;
  /** errno name from the kernel when the cause is a system call (EPERM, ENODEV, ...). */
  readonly errno: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LnlbError';
    this.code = code;
    this.errno = options?.errno;
  }
}

export function lnlbError(code: ErrorCode, message: string, options?: { cause?: unknown; errno?: string }): LnlbError {
  return new LnlbError(code, message, options);
}

export function isLnlbError(value: unknown): value is LnlbError {
  return value instanceof LnlbError;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ErrorCodes, value);
}

/**
 * An error as it crosses a thread (postMessage) or the admin socket: structured clone keeps
 * neither the class nor `code` of an Error, so every sender posts this and every receiver
 * revives it. `code` is absent for an error that is not an LnlbError (a bug, a RangeError):
 * the receiver picks the code that fits where it happened.
 */
export interface SerializedError {
  code?: string;
  message: string;
  /** errno name of a failed system call (EPERM, ENODEV, ...). */
  errno?: string;
  /** The cause's message, when the error had one. */
  cause?: string;
}

/** `context` (e.g. `bond thread`) is put in front of the message: the receiver's log names the thread. */
export function serializeError(err: unknown, context?: string): SerializedError {
  const base = err instanceof Error ? err.message : String(err);
  const out: SerializedError = { message: context === undefined ? base : `${context}: ${base}` };
  const code = (err as { code?: unknown } | null)?.code;
  if (isLnlbError(err) || isErrorCode(code)) out.code = code as string;
  // A Node system error carries its errno name as `code` (ENOENT); an LnlbError as `errno`.
  const errno = isLnlbError(err) ? err.errno : typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
  if (errno !== undefined) out.errno = errno;
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause !== undefined) out.cause = cause instanceof Error ? cause.message : String(cause);
  return out;
}

/**
 * The LnlbError a SerializedError stands for: its own code when it has a known one, else
 * `fallback` (what failing there means, e.g. LNLB_ERR_WORKER_FAILED). Anything that is not a
 * SerializedError (a thread of an older build posting a bare string) is revived as a message.
 */
export function reviveError(value: unknown, fallback: ErrorCode = 'LNLB_ERR_WORKER_FAILED'): LnlbError {
  if (typeof value !== 'object' || value === null) return new LnlbError(fallback, String(value));
  const o = value as Record<string, unknown>;
  const message = typeof o['message'] === 'string' ? o['message'] : 'unknown error';
  const code = isErrorCode(o['code']) ? o['code'] : fallback;
  const errno = typeof o['errno'] === 'string' ? o['errno'] : undefined;
  const cause = typeof o['cause'] === 'string' ? new Error(o['cause']) : undefined;
  return new LnlbError(code, message, { ...(errno === undefined ? {} : { errno }), ...(cause === undefined ? {} : { cause }) });
}
