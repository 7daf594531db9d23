/**
 * The run directory (admin socket, bond-slaves.json) and the host-wide state directory
 * (/run/lnlb-host): created mode 0700 when missing, and when they exist, checked with lstat
 * before anything is read from or written into them: a directory (not a symlink to one),
 * owned by the daemon's user, not writable by group or others. Otherwise another local user
 * could plant the state lnlbd restores on start, or swap the admin socket.
 *
 * 0700, not 0755: nothing in them is for other users (the admin socket is mode 0600 and
 * lnlbctl runs as root), and a closed directory also covers the instant between the socket's
 * bind() and its chmod().
 */

import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import { lnlbError } from '../errors.js';

export type PrivateDirKind = 'run directory' | 'host state directory';

/** What is wrong with a directory lnlbd is to use, or undefined when nothing is. Pure. */
export function privateDirProblem(path: string, kind: PrivateDirKind, st: Pick<Stats, 'uid' | 'mode' | 'isDirectory' | 'isSymbolicLink'>, euid: number): string | undefined {
  if (st.isSymbolicLink()) return `${kind} ${path} is a symlink: lnlbd does not follow it; remove it (rm ${path}) and let lnlbd create the directory, or name the real directory`;
  if (!st.isDirectory()) return `${kind} ${path} exists and is not a directory: remove it or name another path`;
  if (st.uid !== euid) return `${kind} ${path} is owned by uid ${st.uid}, not by lnlbd's user (uid ${euid}): chown ${euid} ${path}`;
  const mode = st.mode & 0o7777;
  if ((mode & 0o022) !== 0) return `${kind} ${path} is writable by ${(mode & 0o020) !== 0 ? 'group' : ''}${(mode & 0o022) === 0o022 ? ' and ' : ''}${(mode & 0o002) !== 0 ? 'others' : ''} (mode ${mode.toString(8).padStart(4, '0')}): chmod go-w ${path}`;
  return undefined;
}

/**
 * Creates `path` (mode 0700, parents as needed) if missing, then checks it; throws
 * LNLB_ERR_RUN_DIR_UNSAFE naming the problem and the fix.
 */
export function ensurePrivateDir(path: string, kind: PrivateDirKind, euid: number = process.geteuid?.() ?? 0): void {
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (err) {
    // EEXIST when a non-directory is there: the lstat below says what it is.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw lnlbError('LNLB_ERR_RUN_DIR_UNSAFE', `cannot create ${kind} ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  const problem = privateDirProblem(path, kind, lstatSync(path), euid);
  if (problem !== undefined) throw lnlbError('LNLB_ERR_RUN_DIR_UNSAFE', problem);
}
