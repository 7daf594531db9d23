import test from 'ava';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LnlbError } from '../../../src/errors.js';
import { ensurePrivateDir } from '../../../src/main/run-dir.js';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-rundir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function refused(t: import('ava').ExecutionContext, fn: () => void, message: RegExp): void {
  const err = t.throws(fn, { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_RUN_DIR_UNSAFE');
  t.regex(err?.message ?? '', message);
}

test('a missing run directory is created with mode 0700 (parents too)', (t) => {
  const dir = join(scratch(t), 'a', 'run');
  ensurePrivateDir(dir, 'run directory');
  const st = statSync(dir);
  t.true(st.isDirectory());
  t.is(st.mode & 0o777, 0o700);
});

test('an existing 0755 directory of the daemon user is accepted as it is', (t) => {
  const dir = join(scratch(t), 'run');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  ensurePrivateDir(dir, 'run directory');
  t.is(statSync(dir).mode & 0o777, 0o755);
});

test('a symlink to a directory is refused, not followed, with the fix', (t) => {
  const base = scratch(t);
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync(join(base, 'real'), join(base, 'run'));
  refused(t, () => ensurePrivateDir(join(base, 'run'), 'run directory'), /^run directory .*\/run is a symlink: lnlbd does not follow it; remove it \(rm .*\/run\)/);
});

test('a directory writable by group and others (0777) is refused: chmod go-w', (t) => {
  const dir = join(scratch(t), 'run');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  refused(t, () => ensurePrivateDir(dir, 'run directory'), /is writable by group and others \(mode 0777\): chmod go-w .*\/run$/);
  chmodSync(dir, 0o775);
  refused(t, () => ensurePrivateDir(dir, 'host state directory'), /^host state directory .* is writable by group \(mode 0775\)/);
});

test("another user's directory is refused: chown to the daemon's uid", (t) => {
  const dir = join(scratch(t), 'run');
  mkdirSync(dir, { mode: 0o700 });
  const euid = process.geteuid?.() ?? 0;
  if (euid === 0) {
    chownSync(dir, 65534, 65534); // nobody
    refused(t, () => ensurePrivateDir(dir, 'run directory'), /is owned by uid 65534, not by lnlbd's user \(uid 0\): chown 0 /);
  } else {
    // Without root the directory cannot change hands: the daemon is another user instead.
    refused(t, () => ensurePrivateDir(dir, 'run directory', euid + 1), new RegExp(`is owned by uid ${euid}, not by lnlbd's user \\(uid ${euid + 1}\\)`));
  }
});

test('a file where the directory should be is refused', (t) => {
  const path = join(scratch(t), 'run');
  writeFileSync(path, '');
  refused(t, () => ensurePrivateDir(path, 'run directory'), /exists and is not a directory/);
});
