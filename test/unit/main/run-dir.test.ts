import test from 'ava';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LnlbError } from '../../../src/errors.js';
import { createdChain, createDirProblem, ensurePrivateDir, removeCreatedDirs } from '../../../src/main/run-dir.js';

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

test('a missing run directory is created with mode 0700 (parents too), and the directories made are returned, outermost first', (t) => {
  const base = scratch(t);
  const dir = join(base, 'a', 'run');
  t.deepEqual(ensurePrivateDir(dir, 'run directory'), [join(base, 'a'), dir]);
  const st = statSync(dir);
  t.true(st.isDirectory());
  t.is(st.mode & 0o777, 0o700);
  t.deepEqual(ensurePrivateDir(dir, 'run directory'), [], 'nothing made the second time');
});

test('a failed start takes back the directories it made, innermost first, and leaves one someone else filled', (t) => {
  const base = scratch(t);
  const made = ensurePrivateDir(join(base, 'a', 'b', 'run'), 'run directory');
  t.deepEqual(removeCreatedDirs(made), []);
  t.false(existsSync(join(base, 'a')), 'a/b/run and its parents gone');
  t.true(existsSync(base), 'what was there before stays');
  const again = ensurePrivateDir(join(base, 'a', 'run'), 'run directory');
  writeFileSync(join(base, 'a', 'someone-elses'), '');
  t.deepEqual(removeCreatedDirs(again), [join(base, 'a')], 'a is not empty: left, and said');
  t.false(existsSync(join(base, 'a', 'run')));
  t.true(existsSync(join(base, 'a', 'someone-elses')));
});

test('createdChain: the directories from the first one mkdir -p made down to the path', (t) => {
  t.deepEqual(createdChain('/run/x/y/lnlb', '/run/x'), ['/run/x', '/run/x/y', '/run/x/y/lnlb']);
  t.deepEqual(createdChain('/run/lnlb', '/run/lnlb'), ['/run/lnlb']);
  t.deepEqual(createdChain('/run/lnlb', undefined), []);
});

test('a run directory that cannot be made is refused naming it, the directory above with its owner and mode, the permission and the fixes', (t) => {
  const nobody = createDirProblem('/run/lnlb', 'run directory', 'EACCES', { path: '/run', uid: 0, mode: 0o40755 }, 65534, '--run-dir');
  t.is(
    nobody,
    "cannot create run directory /run/lnlb: lnlbd's user (uid 65534) may not write in /run (owned by uid 0, mode 0755), which creating it needs: run lnlbd as root, make the directory for it (mkdir -p -m 700 /run/lnlb && chown 65534 /run/lnlb), or give --run-dir a directory lnlbd's user may write in",
  );
  t.regex(createDirProblem('/srv/lnlb', 'run directory', 'EACCES', { path: '/srv', uid: 1000, mode: 0o40700 }, 0, '--run-dir'), /\(uid 0\) \(root, but without CAP_DAC_OVERRIDE, as in the systemd unit\) may not write in \/srv \(owned by uid 1000, mode 0700\)/);
  t.regex(createDirProblem('/run/lnlb', 'run directory', 'EROFS', { path: '/run', uid: 0, mode: 0o40755 }, 0, '--run-dir'), /^cannot create run directory \/run\/lnlb: the file system of \/run is read-only \(under systemd: RuntimeDirectory= makes \/run\/lnlb/);
  t.regex(createDirProblem('/tmp/f/run', 'host state directory', 'ENOTDIR', { path: '/tmp/f', uid: 0, mode: 0o100644 }, 0, 'LNLB_HOST_DIR'), /^cannot create host state directory \/tmp\/f\/run: \/tmp\/f is not a directory: give LNLB_HOST_DIR a directory/);
});

test('a directory of its own that its owner may not write in (mode 0500) is refused: LNLB_ERR_RUN_DIR_ACCESS, chmod u+rwx', (t) => {
  const dir = join(scratch(t), 'run');
  mkdirSync(dir, { mode: 0o500 });
  chmodSync(dir, 0o500);
  const euid = process.geteuid?.() ?? 0;
  if (euid === 0) {
    t.deepEqual(ensurePrivateDir(dir, 'run directory'), [], 'root writes anyway (CAP_DAC_OVERRIDE)');
    return;
  }
  const err = t.throws(() => ensurePrivateDir(dir, 'run directory'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_RUN_DIR_ACCESS');
  t.regex(err?.message ?? '', /is not writable by lnlbd's user .*mode 0500: chmod u\+rwx/);
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
    refused(t, () => ensurePrivateDir(dir, 'run directory', { euid: euid + 1 }), new RegExp(`is owned by uid ${euid}, not by lnlbd's user \\(uid ${euid + 1}\\)`));
  }
});

test('a file where the directory should be is refused', (t) => {
  const path = join(scratch(t), 'run');
  writeFileSync(path, '');
  refused(t, () => ensurePrivateDir(path, 'run directory'), /exists and is not a directory/);
});
