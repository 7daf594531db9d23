/**
 * `lnlbctl genkey PATH`: a new cluster key, made once and copied to every node (`--key-file`).
 *
 *   PATH   64 hex characters (32 random bytes) and a newline, mode 0600, owned by the caller
 *
 * Written so that nothing else can be hit by mistake: the file is created with
 * O_CREAT|O_EXCL|O_NOFOLLOW (an existing file or a symbolic link is never written through);
 * `--force` replaces an existing regular file by renaming a fresh one over it, so the key is
 * never half-written, and still refuses a symbolic link. loadKeyFile (src/net/auth.ts) reads
 * the same text back: the key is the 64 characters, identical on every node that has the file.
 */

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, lstatSync, openSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { lnlbError } from '../errors.js';

/** Random bytes of a new key (written as twice as many hex characters). */
export const GENKEY_BYTES = 32;
export const KEY_FILE_MODE = 0o600;

export interface GenkeyResult {
  path: string;
  /** Random bytes in the key (its text is twice as many hex characters). */
  bytes: number;
  mode: string;
  /** An existing file was replaced (`--force`). */
  replaced: boolean;
}

const WRITE_ERRORS: Record<string, string> = {
  ENOENT: 'no such directory: create it first (mkdir -p -m 755 DIR)',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied: run as the user that will own the key (root for the packaged lnlbd)',
  EROFS: 'read-only file system',
  ELOOP: 'the path is a symbolic link: give the real path',
  EISDIR: 'it is a directory',
};

function writeError(path: string, errno: string, cause?: unknown): never {
  throw lnlbError('LNLB_ERR_AUTH_KEY_WRITE', `cannot write key file ${path}: ${errno}${WRITE_ERRORS[errno] === undefined ? '' : ` (${WRITE_ERRORS[errno]})`}`, {
    errno,
    ...(cause === undefined ? {} : { cause }),
  });
}

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'EIO';

/** What is at `path` now: nothing, a regular file, or something genkey never writes over. */
function existing(path: string): 'none' | 'file' {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return 'none';
    writeError(path, errnoOf(err), err);
  }
  if (st.isSymbolicLink()) writeError(path, 'ELOOP');
  if (st.isDirectory()) writeError(path, 'EISDIR');
  if (!st.isFile()) throw lnlbError('LNLB_ERR_AUTH_KEY_WRITE', `cannot write key file ${path}: it exists and is not a regular file`);
  return 'file';
}

/** Creates `path` exclusively (never through a link) with the key text, mode 0600, synced. */
function createExclusive(path: string, text: Buffer): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, KEY_FILE_MODE);
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') {
      throw lnlbError('LNLB_ERR_AUTH_KEY_EXISTS', `key file ${path} exists already: not overwritten (a key in use would be lost); give --force to replace it, then copy it to every node`, { errno: 'EEXIST', cause: err });
    }
    writeError(path, errnoOf(err), err);
  }
  try {
    fchmodSync(fd, KEY_FILE_MODE); // the umask may have taken bits away, never added: exact anyway
    let written = 0;
    while (written < text.length) written += writeSync(fd, text, written);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    writeError(path, errnoOf(err), err);
  }
  closeSync(fd);
}

/**
 * Writes a new random key to `path`: refused if something is there, unless `force` and it is a
 * regular file (then replaced atomically). Never prints or returns the key.
 */
export function generateKeyFile(path: string, options: { force?: boolean } = {}): GenkeyResult {
  if (path === '') throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', '<path>: expected a file path, e.g. /etc/lnlb/cluster.key');
  const before = existing(path);
  if (before === 'file' && options.force !== true) {
    throw lnlbError('LNLB_ERR_AUTH_KEY_EXISTS', `key file ${path} exists already: not overwritten (a key in use would be lost); give --force to replace it, then copy it to every node`);
  }
  const random = randomBytes(GENKEY_BYTES);
  const text = Buffer.from(`${random.toString('hex')}\n`);
  try {
    if (before === 'none') {
      createExclusive(path, text);
    } else {
      // A fresh file beside it, renamed over it: the old key stays whole until the new one is.
      const temporary = join(dirname(path), `.${randomBytes(6).toString('hex')}.genkey`);
      createExclusive(temporary, text);
      try {
        renameSync(temporary, path);
      } catch (err) {
        rmSync(temporary, { force: true });
        writeError(path, errnoOf(err), err);
      }
    }
  } finally {
    random.fill(0);
    text.fill(0);
  }
  return { path, bytes: GENKEY_BYTES, mode: KEY_FILE_MODE.toString(8).padStart(4, '0'), replaced: before === 'file' };
}
