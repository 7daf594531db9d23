/**
 * loadKeyFile's checks of the key file (src/net/auth.ts): opened with O_NOFOLLOW|O_NONBLOCK
 * and checked on the descriptor, so a symbolic link or a FIFO is refused at once (never a hang),
 * the owner must be the daemon's user or root, and a key that loads but looks typed is warned
 * about. The older cases (mode, size, missing) are in auth.test.ts.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLnlbError, type LnlbError } from '../../../src/errors.js';
import { keyWarnings, loadKeyFile, MIN_TEXT_KEY_CHARS } from '../../../src/net/auth.js';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-keyfile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(dir: string, name: string, content: string | Uint8Array, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

function refusal(t: import('ava').ExecutionContext, load: () => unknown): LnlbError {
  const err = t.throws(load);
  if (!isLnlbError(err)) throw new Error(`expected an LnlbError, got ${String(err)}`);
  return err;
}

/** 64 hex characters and a newline: what `lnlbctl genkey` writes. */
const GENKEY_TEXT = `${'0123456789abcdef'.repeat(4)}\n`;

test('a symbolic link is refused at once (O_NOFOLLOW), even to a good key: LNLB_ERR_AUTH_KEY_INVALID, give the real path', (t) => {
  const dir = tempDir(t);
  const real = write(dir, 'real.key', GENKEY_TEXT);
  t.is(loadKeyFile(real).length, 64);
  const link = join(dir, 'link.key');
  symlinkSync(real, link);
  const err = refusal(t, () => loadKeyFile(link));
  t.is(err.code, 'LNLB_ERR_AUTH_KEY_INVALID');
  t.is(err.errno, 'ELOOP');
  t.is(err.message, `key file ${link} is a symbolic link (refused: whoever can change the link chooses the key): give the real path of the file`);
});

test('a FIFO is refused at once, not read (the start never hangs on a writer that never comes)', (t) => {
  const dir = tempDir(t);
  const fifo = join(dir, 'fifo.key');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  const started = performance.now();
  const err = refusal(t, () => loadKeyFile(fifo));
  t.true(performance.now() - started < 1000, 'no wait for a writer');
  t.is(err.code, 'LNLB_ERR_AUTH_KEY_INVALID');
  t.regex(err.message, new RegExp(`^key file ${fifo} is not a regular file \\(a FIFO\\): give the path of the key itself, or make one with \`lnlbctl genkey ${fifo}\``));
});

test('owner: another user than the daemon\'s (or root) is refused, LNLB_ERR_AUTH_KEY_OWNER; the daemon\'s own and root\'s load', (t) => {
  const dir = tempDir(t);
  const path = write(dir, 'owned.key', GENKEY_TEXT);
  const me = process.geteuid!();
  t.notThrows(() => loadKeyFile(path), 'owned by this process');
  let err: LnlbError;
  let owner: number;
  if (me === 0) {
    // As root: give the file to nobody (65534), and load it as root would: refused.
    chownSync(path, 65534, 65534);
    owner = 65534;
    err = refusal(t, () => loadKeyFile(path));
    t.notThrows(() => loadKeyFile(path, { euid: 65534 }), 'the owner itself may');
  } else {
    // Not root: the file is ours; a daemon running as another uid must refuse it.
    owner = me;
    err = refusal(t, () => loadKeyFile(path, { euid: me + 1 }));
  }
  t.is(err.code, 'LNLB_ERR_AUTH_KEY_OWNER');
  const expectedEuid = me === 0 ? 0 : me + 1;
  t.is(err.message, `key file ${path} is owned by uid ${owner}, not by this daemon's user (uid ${expectedEuid}) or root: that user could change the cluster's key; run \`chown ${expectedEuid} ${path}\``);
});

test('a key that loads but looks typed is warned about (text under 32 characters, few distinct bytes); genkey\'s and random keys are not', (t) => {
  const dir = tempDir(t);
  const load = (content: string | Uint8Array): { key: Buffer; warnings: string[] } => {
    const warnings: string[] = [];
    const key = loadKeyFile(write(dir, `k${Math.random().toString(16).slice(2)}`, content), { warn: (m) => warnings.push(m) });
    return { key, warnings };
  };
  const typed = load('correct horse 16\n');
  t.is(typed.key.toString(), 'correct horse 16', 'loads: a warning, not a refusal');
  t.is(typed.warnings.length, 1);
  t.regex(typed.warnings[0]!, /^key file \S+ looks guessable: a 16-character text key \(a typed password\?\), shorter than 32\. A LAN host that guesses it can take the cluster over: make a random one with `lnlbctl genkey \S+` and copy it to every node$/);
  t.deepEqual(load(`${'ab'.repeat(15)}x\n`).warnings.length, 1, '31 printable characters');
  t.deepEqual(load('k'.repeat(40)).warnings.map((w) => /only 1 distinct byte value/.test(w)), [true], 'long but one letter');
  t.deepEqual(load(GENKEY_TEXT).warnings, [], 'genkey: 64 hex characters');
  t.deepEqual(load('Xq7#pL9!vR2@mK5$wN8&zB4*yT6^hJ3%\n').warnings, [], '32 varied printable characters');
  const binary = Uint8Array.from({ length: 16 }, (_, i) => (i * 53 + 7) & 0xff);
  t.deepEqual(load(binary).warnings, [], '16 random-looking bytes');
  t.notThrows(() => loadKeyFile(write(dir, 'quiet', 'short text key!!')), 'no warn callback: nothing said, still loads');
});

test('keyWarnings (pure): the rule on its edges', (t) => {
  const text = (n: number): Uint8Array => Buffer.from('abcdefghij'.repeat(10).slice(0, n));
  t.is(keyWarnings(text(MIN_TEXT_KEY_CHARS - 1)).length, 1);
  t.deepEqual(keyWarnings(text(MIN_TEXT_KEY_CHARS)), []);
  const withByte = Buffer.concat([text(20), Buffer.from([0x01])]);
  t.deepEqual(keyWarnings(withByte), [], 'a non-printable byte: not typed text');
  t.deepEqual(keyWarnings(Buffer.from('abcdefg'.repeat(6))), ['only 7 distinct byte values']);
  t.deepEqual(keyWarnings(Buffer.from('abcdefgh'.repeat(5))), []);
});
