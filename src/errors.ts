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
  /** The control-plane key file is readable or writable by group or others. */
  LNLB_ERR_AUTH_KEY_MODE: 'key file permissions too open',
  /** The control-plane key file cannot be read, is not a regular file, or is too short or too long. */
  LNLB_ERR_AUTH_KEY_INVALID: 'key file unusable',
  /** A weight mode other than loadavg, loadavg5, loadavg15, freemem or manual was asked for. */
  LNLB_ERR_WEIGHT_MODE: 'unknown weight mode',
  /** A manual weight is not a whole number inside WEIGHT_MIN..WEIGHT_MAX. */
  LNLB_ERR_WEIGHT_RANGE: 'invalid weight',
  /** A manual weight was set on an interface whose weight mode is not manual. */
  LNLB_ERR_WEIGHT_NOT_MANUAL: 'weight mode is not manual',
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
  /** The `--metrics` endpoint could not listen on its address (port in use, address not on this host). */
  LNLB_ERR_METRICS_LISTEN: 'metrics endpoint cannot listen',
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
