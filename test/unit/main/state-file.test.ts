import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LnlbError } from '../../../src/errors.js';
import { readStateFile, writeStateFile } from '../../../src/main/state-file.js';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('written mode 0600 and read back; no temporary left behind', (t) => {
  const dir = scratch(t);
  const file = join(dir, 'state.json');
  writeStateFile(file, '{"a":1}');
  writeStateFile(file, '{"a":2}');
  t.is(lstatSync(file).mode & 0o777, 0o600);
  t.is(readStateFile(file), '{"a":2}');
  t.deepEqual(readdirSync(dir), ['state.json']);
});

test('a symlink planted at the path is replaced, never written through', (t) => {
  const dir = scratch(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious');
  symlinkSync(victim, join(dir, 'state.json'));
  writeStateFile(join(dir, 'state.json'), '{}');
  t.is(readFileSync(victim, 'utf8'), 'precious');
  t.false(lstatSync(join(dir, 'state.json')).isSymbolicLink());
});

test('missing: undefined; a symlink, a FIFO, an oversize file, another owner: refused unread', (t) => {
  const dir = scratch(t);
  t.is(readStateFile(join(dir, 'none.json')), undefined);
  writeFileSync(join(dir, 'target'), '{}');
  symlinkSync(join(dir, 'target'), join(dir, 'link.json'));
  const refused = (path: string, message: RegExp, max?: number, owner?: number): void => {
    const err = t.throws(() => readStateFile(path, max, owner), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_STATE_FILE_UNSAFE');
    t.regex(err?.message ?? '', message);
  };
  refused(join(dir, 'link.json'), /is a symlink: not followed/);
  execFileSync('mkfifo', [join(dir, 'fifo.json')]); // would hang a plain read
  refused(join(dir, 'fifo.json'), /is not a regular file/);
  writeFileSync(join(dir, 'big.json'), 'x'.repeat(2000));
  refused(join(dir, 'big.json'), /is 2000 bytes, more than lnlb ever writes there \(1000\)/, 1000);
  const uid = process.geteuid?.() ?? 0;
  refused(join(dir, 'target'), new RegExp(`is owned by uid ${uid}, not by lnlbd's user \\(uid ${uid + 1}\\)`), undefined, uid + 1);
});
