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

import { accessSync, constants, lstatSync, mkdirSync, rmdirSync, type Stats } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { lnlbError } from '../errors.js';

export type PrivateDirKind = 'run directory' | 'host state directory';

/** How the operator names another directory of each kind (the messages say it). */
const DEFAULT_SETTING: Record<PrivateDirKind, string> = { 'run directory': '--run-dir', 'host state directory': 'LNLB_HOST_DIR' };

/** What is wrong with a directory lnlbd is to use, or undefined when nothing is. Pure. */
export function privateDirProblem(path: string, kind: PrivateDirKind, st: Pick<Stats, 'uid' | 'mode' | 'isDirectory' | 'isSymbolicLink'>, euid: number): string | undefined {
  if (st.isSymbolicLink()) return `${kind} ${path} is a symlink: lnlbd does not follow it; remove it (rm ${path}) and let lnlbd create the directory, or name the real directory`;
  if (!st.isDirectory()) return `${kind} ${path} exists and is not a directory: remove it or name another path`;
  if (st.uid !== euid) return `${kind} ${path} is owned by uid ${st.uid}, not by lnlbd's user (uid ${euid}): chown ${euid} ${path}`;
  const mode = st.mode & 0o7777;
  if ((mode & 0o022) !== 0) return `${kind} ${path} is writable by ${(mode & 0o020) !== 0 ? 'group' : ''}${(mode & 0o022) === 0o022 ? ' and ' : ''}${(mode & 0o002) !== 0 ? 'others' : ''} (mode ${mode.toString(8).padStart(4, '0')}): chmod go-w ${path}`;
  return undefined;
}

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Why `path` cannot be created, from mkdir's errno and the nearest directory above it that
 * exists (`parent`): which permission lnlbd's user lacks where, and what to do. Pure.
 */
export function createDirProblem(path: string, kind: PrivateDirKind, errno: string, parent: { path: string; uid: number; mode: number } | undefined, euid: number, setting: string): string {
  const elsewhere = `or give ${setting} a directory lnlbd's user may write in`;
  const make = `mkdir -p -m 700 ${path}${euid === 0 ? '' : ` && chown ${euid} ${path}`}`;
  if ((errno === 'EACCES' || errno === 'EPERM') && parent !== undefined) {
    const root = euid === 0 ? ' (root, but without CAP_DAC_OVERRIDE, as in the systemd unit)' : '';
    return `cannot create ${kind} ${path}: lnlbd's user (uid ${euid})${root} may not write in ${parent.path} (owned by uid ${parent.uid}, mode ${octal(parent.mode)}), which creating it needs: run lnlbd as root, make the directory for it (${make}), ${elsewhere}`;
  }
  if (errno === 'EROFS') return `cannot create ${kind} ${path}: the file system of ${parent?.path ?? path} is read-only (under systemd: RuntimeDirectory= makes /run/lnlb, ReadWritePaths= allows another): make the directory before lnlbd starts (${make}), ${elsewhere}`;
  if (errno === 'ENOTDIR') return `cannot create ${kind} ${path}: ${parent?.path ?? 'a part of it'} is not a directory: ${elsewhere.replace(/^or /, '')}`;
  return `cannot create ${kind} ${path} (${errno}): make it before lnlbd starts (${make}), ${elsewhere}`;
}

/** The nearest ancestor of `path` that exists, with its owner and mode (undefined: none readable). */
function nearestExisting(path: string): { path: string; uid: number; mode: number } | undefined {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    try {
      const st = lstatSync(dir);
      return { path: dir, uid: st.uid, mode: st.mode };
    } catch {
      if (dir === dirname(dir)) return undefined;
    }
  }
}

/** The directories `mkdir -p` made, outermost first, from the first one it reports (mkdirSync's return). Pure. */
export function createdChain(path: string, firstCreated: string | undefined): string[] {
  if (firstCreated === undefined) return [];
  const target = resolve(path);
  const chain = [resolve(firstCreated)];
  for (const part of target.slice(chain[0]!.length).split(sep).filter((p) => p !== '')) chain.push(`${chain.at(-1)!}${sep}${part}`);
  return chain;
}

/**
 * Creates `path` (mode 0700, parents as needed) if missing, then checks it; returns the
 * directories it created, outermost first (removeCreatedDirs undoes a failed start with them).
 * Throws LNLB_ERR_RUN_DIR_ACCESS when it cannot be created or written in, and
 * LNLB_ERR_RUN_DIR_UNSAFE when it is not safe to use, each naming the problem and the fix.
 * `setting`: how the caller names another directory (default: --run-dir, LNLB_HOST_DIR).
 */
export function ensurePrivateDir(path: string, kind: PrivateDirKind, options: { euid?: number; setting?: string } = {}): string[] {
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  const setting = options.setting ?? DEFAULT_SETTING[kind];
  let created: string[] = [];
  try {
    created = createdChain(path, mkdirSync(path, { recursive: true, mode: 0o700 }));
  } catch (err) {
    // EEXIST when a non-directory is there: the lstat below says what it is.
    const errno = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    if (errno !== 'EEXIST') throw lnlbError('LNLB_ERR_RUN_DIR_ACCESS', createDirProblem(path, kind, errno, nearestExisting(path), euid, setting), { cause: err, errno });
  }
  const problem = privateDirProblem(path, kind, lstatSync(path), euid);
  if (problem !== undefined) throw lnlbError('LNLB_ERR_RUN_DIR_UNSAFE', problem);
  try {
    accessSync(path, constants.W_OK | constants.X_OK); // its owner's, yet mode 0500, or a read-only mount
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    const fix = errno === 'EROFS' ? 'its file system is read-only (under systemd: ReadWritePaths=)' : `its mode is ${octal(lstatSync(path).mode)}: chmod u+rwx ${path}`;
    throw lnlbError('LNLB_ERR_RUN_DIR_ACCESS', `${kind} ${path} is not writable by lnlbd's user (uid ${euid}, ${errno}): ${fix}, or give ${setting} another directory`, { cause: err, errno });
  }
  return created;
}

/**
 * A failed start takes back the directories it created (ensurePrivateDir's list), innermost
 * first, each only if empty: what someone else put there meanwhile stays, with its directory.
 * Returns those left.
 */
export function removeCreatedDirs(created: readonly string[]): string[] {
  const left: string[] = [];
  for (const dir of [...created].reverse()) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
    }
  }
  return left;
}
