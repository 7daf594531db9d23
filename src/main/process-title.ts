/**
 * The daemon's process name. lnlbd runs as `node /usr/bin/lnlbd ...` (the script's
 * `#!/usr/bin/env node`), so without a name of its own the kernel calls it `node`, and
 * `pidof lnlbd`, `pgrep lnlbd`, `killall lnlbd` and `ps -C lnlbd` find nothing. What they read:
 *
 * - `/proc/PID/comm` (the `Name:` of /proc/PID/status; 15 characters): `pgrep`, `pkill`,
 *   `ps -C`, `top`, `killall`, and sysvinit's `pidof` (Debian's) when argv[0] has a space in it.
 * - `/proc/PID/cmdline` (the argument area of the process's memory): `pgrep -f`, `ps aux`,
 *   and `pidof`, which compares the base name of argv[0].
 *
 * Node's `process.title` setter (libuv's uv_set_process_title) writes the title over the
 * argument area, at most as long as the original arguments (`node /usr/bin/lnlbd ARGS` is
 * always longer than `lnlbd ARGS`), and sets comm to the title's first 15 characters. So the
 * title is `lnlbd ARGS` (ps aux still shows how it was started), then comm is set to `lnlbd`
 * alone through /proc/thread-self/comm (the main thread's comm is the process's), since
 * `lnlbd --config /e` is not `lnlbd` to `pgrep -x`. Threads started later inherit `lnlbd`
 * (lnlbd's own rename themselves, thread-priority.ts). Only lnlbd does this: an application
 * that embeds a node (createNode) keeps its own name.
 */

import { writeFileSync } from 'node:fs';

/** The kernel's limit on comm: TASK_COMM_LEN (16) with the NUL. */
const COMM_MAX = 15;

/** `lnlbd --bind eth0 --vip 10.0.0.100`: the name, then the arguments as ps shows them. Pure. */
export function processTitle(name: string, args: readonly string[]): string {
  return [name, ...args].join(' ');
}

/**
 * Names this process `name` (comm) with `name ARGS` as its command line; best effort: a
 * process that cannot be renamed (no /proc) runs under its old name.
 */
export function nameProcess(name: string, args: readonly string[]): void {
  process.title = processTitle(name, args);
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, COMM_MAX));
  } catch {
    // No /proc: comm keeps the title's first 15 characters.
  }
}
