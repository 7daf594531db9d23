/**
 * The daemon's state files (bond-slaves.json in the run directory, the host-wide sysctl
 * bookkeeping in /run/lnlb-host): written so that a symlink planted at the path or at a
 * temporary name is never followed, and read back only when they are what lnlb writes.
 *
 * Writing: a fresh temporary name opened O_CREAT|O_EXCL|O_NOFOLLOW (an existing file or link
 * there fails instead of being written through), mode 0600, written, fsync'd, then renamed
 * over the path (rename replaces a symlink at the path, never follows it).
 * Reading: opened O_NOFOLLOW|O_NONBLOCK (a symlink fails with ELOOP; a FIFO cannot hang the
 * start), then fstat: a regular file, the daemon's user's, at most `maxBytes`.
 */

import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lnlbError } from '../errors.js';

/** Larger than anything lnlb writes in these files; a larger one is refused unread. */
export const STATE_FILE_MAX_BYTES = 256 * 1024;

const euid = (): number => process.geteuid?.() ?? 0;

/** Replaces `path` with `text`, never following a symlink; the file is mode 0600. */
export function writeStateFile(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const data = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * The text of a state file, or undefined when there is none; LNLB_ERR_STATE_FILE_UNSAFE for a
 * symlink, something other than a regular file, another user's file, or one over `maxBytes`.
 */
export function readStateFile(path: string, maxBytes: number = STATE_FILE_MAX_BYTES, owner: number = euid()): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw lnlbError('LNLB_ERR_STATE_FILE_UNSAFE', `${path} is a symlink: not followed; remove it (lnlb writes its state files itself)`, { cause: err, errno: code });
    throw lnlbError('LNLB_ERR_STATE_FILE_UNSAFE', `cannot open ${path}: ${(err as Error).message}`, { cause: err, ...(code === undefined ? {} : { errno: code }) });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw lnlbError('LNLB_ERR_STATE_FILE_UNSAFE', `${path} is not a regular file: not read; remove it`);
    if (st.uid !== owner) throw lnlbError('LNLB_ERR_STATE_FILE_UNSAFE', `${path} is owned by uid ${st.uid}, not by lnlbd's user (uid ${owner}): not read; remove it`);
    if (st.size > maxBytes) throw lnlbError('LNLB_ERR_STATE_FILE_UNSAFE', `${path} is ${st.size} bytes, more than lnlb ever writes there (${maxBytes}): not read; remove it`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * A state file's text as the JSON object lnlb writes, or why it is not one (a line for the
 * `ignored` list the parsers log). Pure.
 */
export function parseStateObject(text: string): { object: Record<string, unknown> } | { why: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { why: 'the file is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { why: 'the file is not a JSON object' };
  return { object: parsed as Record<string, unknown> };
}
