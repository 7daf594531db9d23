import test from 'ava';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { LnlbError, type ErrorCode } from '../../../src/errors.js';
import { HANDLER_API_VERSION } from '../../../src/handlers/handler.js';
import { BUILTIN_HANDLERS, loadHandler, ownershipProblem, parseHandlerSpec, resolveHandlerSpecs, type HandlerSpec } from '../../../src/handlers/loader.js';
import { FIXTURE_PROTOCOL } from './fixtures/base.js';

const FLAG = '--handler';

/** The compiled fixture module's path. */
function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
}

function specFor(path: string, protocol = FIXTURE_PROTOCOL): HandlerSpec {
  return parseHandlerSpec(`${protocol}=${path}`, FLAG);
}

async function refused(t: import('ava').ExecutionContext, path: string, code: ErrorCode, problem: RegExp, protocol?: number): Promise<string> {
  const err = await t.throwsAsync(loadHandler(specFor(path, protocol)), { instanceOf: LnlbError });
  t.is(err?.code, code);
  t.true(err?.message.includes(path), `the message names the module: ${err?.message}`);
  t.regex(err?.message ?? '', problem);
  return err?.message ?? '';
}

// --- parseHandlerSpec ------------------------------------------------------------------------

test('parseHandlerSpec: protocol names and numbers, built-ins, paths made absolute file: URLs', (t) => {
  t.deepEqual(parseHandlerSpec('tcp=tcp', FLAG), { protocol: 6, module: 'builtin:tcp', label: 'tcp=tcp' });
  t.deepEqual(parseHandlerSpec('default=default', FLAG), { protocol: 0, module: 'builtin:default', label: 'default=default' });
  t.is(parseHandlerSpec('ICMP=udp', FLAG).protocol, 1);
  t.is(parseHandlerSpec('132=./x.js', FLAG).protocol, 132);
  for (const [name, n] of [['gre', 47], ['esp', 50], ['sctp', 132], ['udp', 17], ['0', 0], ['255', 255]] as const) {
    t.is(parseHandlerSpec(`${name}=default`, FLAG).protocol, n);
  }
  t.is(parseHandlerSpec('icmp=./h/icmp.js', FLAG).module, pathToFileURL(join(process.cwd(), 'h/icmp.js')).href);
  t.is(parseHandlerSpec('icmp=/opt/h/icmp.js', FLAG).module, 'file:///opt/h/icmp.js');
  t.is(parseHandlerSpec('icmp=file:///opt/h/icmp.js', FLAG).module, 'file:///opt/h/icmp.js');
  t.is(parseHandlerSpec('icmp=./tcp', FLAG).module, pathToFileURL(join(process.cwd(), 'tcp')).href, 'a file named like a built-in');
  t.is(parseHandlerSpec('icmp=./a=b.js', FLAG).module, pathToFileURL(join(process.cwd(), 'a=b.js')).href, 'split at the first =');
});

test('parseHandlerSpec: malformed values are CLI_BAD_FLAG naming the flag', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['tcp', /^--handler: expected <proto>=<module>, got "tcp"$/],
    ['=./x.js', /expected <proto>=<module>/],
    ['tcp=', /expected <proto>=<module>/],
    ['256=./x.js', /protocol 256 .* \(0\.\.255\)/],
    ['-1=./x.js', /unknown protocol "-1"/],
    ['ipv6=./x.js', /unknown protocol "ipv6" .*default, icmp, tcp, udp, gre, esp, sctp/],
    ['tcp=builtin:quic', /no built-in handler "quic"/],
  ];
  for (const [raw, message] of cases) {
    const err = t.throws(() => parseHandlerSpec(raw, FLAG), { instanceOf: LnlbError }, raw);
    t.is(err?.code, 'LNLB_ERR_CLI_BAD_FLAG');
    t.regex(err?.message ?? '', message);
    t.true(err?.message.startsWith('--handler: '));
  }
});

// --- resolveHandlerSpecs ---------------------------------------------------------------------

test('resolveHandlerSpecs: LNLB\'s default handler alone when the operator gives nothing', (t) => {
  t.deepEqual(
    resolveHandlerSpecs([]).map((s) => [s.protocol, s.module]),
    [[0, 'builtin:default']],
  );
  t.deepEqual(
    BUILTIN_HANDLERS.map((s) => s.protocol),
    [0],
  );
});

test('resolveHandlerSpecs: the operator wins per protocol; sorted by protocol, protocol 0 first and once', (t) => {
  const mine = parseHandlerSpec('tcp=./mine.js', FLAG);
  const icmp = parseHandlerSpec('icmp=./icmp.js', FLAG);
  const def = parseHandlerSpec('0=./def.js', FLAG);
  const udp = parseHandlerSpec('udp=udp', FLAG);
  const resolved = resolveHandlerSpecs([icmp, udp, mine, def]);
  t.deepEqual(
    resolved.map((s) => s.protocol),
    [0, 1, 6, 17],
  );
  t.is(resolved[0], def);
  t.is(resolved[2], mine);
  t.is(resolved.filter((s) => s.protocol === 0).length, 1);
  t.is(resolved[3]!.module, 'builtin:udp');
  t.deepEqual(
    resolveHandlerSpecs([icmp]).map((s) => s.protocol),
    [0, 1],
    'the default handler is always there',
  );
});

test('resolveHandlerSpecs: one protocol given twice is CLI_BAD_FLAG naming both', (t) => {
  const err = t.throws(() => resolveHandlerSpecs([parseHandlerSpec('tcp=./a.js', FLAG), parseHandlerSpec('6=./b.js', FLAG)]), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CLI_BAD_FLAG');
  t.regex(err?.message ?? '', /^--handler: protocol 6 is given twice \("tcp=\.\/a\.js" and "6=\.\/b\.js"\)/);
});

// --- loadHandler: accepted -------------------------------------------------------------------

test('a good handler loads and is the module\u2019s own object', async (t) => {
  const path = fixture('good');
  const handler = await loadHandler(specFor(path));
  t.is(handler.name, 'fixture');
  t.is(handler.apiVersion, HANDLER_API_VERSION);
  t.is(handler.protocol, FIXTURE_PROTOCOL);
  const module = (await import(pathToFileURL(path).href)) as { default: unknown };
  t.is<unknown, unknown>(handler, module.default);
});

test('without a default export, the export named `handler` is taken', async (t) => {
  t.is((await loadHandler(specFor(fixture('named-export')))).name, 'fixture-named');
});

test('every built-in passes the contract check', async (t) => {
  for (const spec of BUILTIN_HANDLERS) {
    const handler = await loadHandler(spec);
    t.is(handler.protocol, spec.protocol, spec.label);
  }
});

test('the built-in default handler can be registered for any protocol (tcp=default)', async (t) => {
  const handler = await loadHandler(parseHandlerSpec('tcp=default', FLAG));
  t.is(handler.protocol, 6);
  t.is(handler.name, 'default');
  const plain = await loadHandler(parseHandlerSpec('default=default', FLAG));
  t.is(plain.protocol, 0, 'the shared built-in itself is untouched');
});

test('a spec is structured-clone-able and loads in a worker thread from the spec alone', async (t) => {
  const spec = specFor(fixture('good'));
  t.deepEqual(structuredClone(spec), spec);
  const loader = new URL('../../../src/handlers/loader.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.loader).then((m) => m.loadHandler(workerData.spec)).then(
      (h) => parentPort.postMessage({ name: h.name, protocol: h.protocol }),
      (e) => parentPort.postMessage({ error: e.code + ': ' + e.message }),
    );`;
  const worker = new Worker(code, { eval: true, workerData: { loader, spec } });
  const answer = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  t.deepEqual(answer, { name: 'fixture', protocol: FIXTURE_PROTOCOL });
});

// --- loadHandler: refused --------------------------------------------------------------------

test('a missing file: HANDLER_LOAD, no such file', async (t) => {
  const path = join(fileURLToPath(new URL('./fixtures/', import.meta.url)), 'does-not-exist.js');
  const message = await refused(t, path, 'LNLB_ERR_HANDLER_LOAD', /cannot load handler module .*: no such file;/);
  t.regex(message, new RegExp(`^handler ${FIXTURE_PROTOCOL}=`), 'names what the operator wrote');
});

test('a syntax error: HANDLER_LOAD with the error and its line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-loader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'broken.mjs');
  writeFileSync(path, "export default {\n  name: 'broken',,\n};\n");
  await refused(t, path, 'LNLB_ERR_HANDLER_LOAD', /SyntaxError: Unexpected token ','.* at .*broken\.mjs:2 /);
});

test('a module that throws while loading: HANDLER_LOAD with the first line of the error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-loader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'throws.mjs');
  writeFileSync(path, "throw new Error('cannot open /etc/my-handler.conf\\nsecond line');\n");
  const message = await refused(t, path, 'LNLB_ERR_HANDLER_LOAD', /Error: cannot open \/etc\/my-handler\.conf;/);
  t.false(message.includes('second line'));
});

test('no handler export: HANDLER_INVALID', async (t) => {
  await refused(t, fixture('no-export'), 'LNLB_ERR_HANDLER_INVALID', /neither a default export nor an export named `handler`/);
});

test('a wrong apiVersion: HANDLER_INVALID saying which it has and which lnlb speaks', async (t) => {
  await refused(t, fixture('wrong-api'), 'LNLB_ERR_HANDLER_INVALID', new RegExp(`implements handler API version 1, this lnlb speaks version ${HANDLER_API_VERSION}`));
});

test('a missing method: HANDLER_INVALID naming it', async (t) => {
  await refused(t, fixture('missing-method'), 'LNLB_ERR_HANDLER_INVALID', /`createTracker` must be a function, it is missing/);
});

test('a protocol mismatch: HANDLER_INVALID with both protocols', async (t) => {
  await refused(t, fixture('protocol-mismatch'), 'LNLB_ERR_HANDLER_INVALID', new RegExp(`declares protocol 17 but is registered for protocol ${FIXTURE_PROTOCOL}`));
});

test('createTracker throwing: HANDLER_INVALID with the error', async (t) => {
  await refused(t, fixture('tracker-throws'), 'LNLB_ERR_HANDLER_INVALID', /createTracker\(\) threw Error: no memory for the table;/);
});

test('affinityKey throwing: HANDLER_INVALID with the error', async (t) => {
  await refused(t, fixture('affinity-throws'), 'LNLB_ERR_HANDLER_INVALID', /affinityKey\(\) on a protocol 132 frame threw TypeError: cannot read the SCTP verification tag;/);
});

test('an answer of the wrong kind: HANDLER_INVALID naming the method and the value', async (t) => {
  await refused(t, fixture('bad-answer'), 'LNLB_ERR_HANDLER_INVALID', /isRelated\(\) before assigned\(\) returned number 0; it must return a node id 1\.\.65535, UNTRACKED \(-1\) or DROP_FRAME \(-2\)/);
});

test('a nodeDiedSlice that does not move on: HANDLER_INVALID (the purge between batches would never end)', async (t) => {
  await refused(t, fixture('slice-stuck'), 'LNLB_ERR_HANDLER_INVALID', /nodeDiedSlice\(1, 0, 64\) returned number 0; it must return a slot after 0 to go on from, or -1 when done/);
});

test('an incomplete tracker: HANDLER_INVALID listing what it lacks', async (t) => {
  await refused(
    t,
    fixture('incomplete-tracker'),
    'LNLB_ERR_HANDLER_INVALID',
    /tracker createTracker\(\) returned is incomplete: `saveStatus` must be a function, it is missing; `loadStatus` must be a function, it is missing; the `evictions` getter is missing/,
  );
});

test('trackerBytes not positive: HANDLER_INVALID', async (t) => {
  await refused(t, fixture('zero-bytes'), 'LNLB_ERR_HANDLER_INVALID', /trackerBytes\(1024\) must give a positive whole number of bytes, it gave number 0/);
});

// --- who may change a module -----------------------------------------------------------------

const NOBODY = 65534;
const isRoot = process.geteuid?.() === 0;

test('ownershipProblem: the daemon\u2019s user or root, no group or other write; a sticky ancestor may be world-writable', (t) => {
  t.is(ownershipProblem({ uid: 0, mode: 0o100644 }, 0, true), undefined);
  t.is(ownershipProblem({ uid: 1000, mode: 0o100600 }, 1000, true), undefined, 'the daemon\u2019s own user');
  t.is(ownershipProblem({ uid: 0, mode: 0o40755 }, 1000, true), undefined, 'root, for a daemon of another user');
  t.regex(ownershipProblem({ uid: NOBODY, mode: 0o100644 }, 0, true)?.why ?? '', /^owned by uid 65534, not by this daemon's user \(uid 0\) or root$/);
  t.is(ownershipProblem({ uid: NOBODY, mode: 0o100644 }, 0, true)?.fix('/x.js'), 'chown root /x.js');
  t.is(ownershipProblem({ uid: NOBODY, mode: 0o100644 }, 1000, true)?.fix('/x.js'), 'chown 1000 /x.js');
  t.regex(ownershipProblem({ uid: 0, mode: 0o100666 }, 0, true)?.why ?? '', /^writable by group and others \(mode 0666\)$/);
  t.regex(ownershipProblem({ uid: 0, mode: 0o100664 }, 0, true)?.why ?? '', /^writable by its group \(mode 0664\)$/);
  t.regex(ownershipProblem({ uid: 0, mode: 0o100646 }, 0, true)?.why ?? '', /^writable by others \(mode 0646\)$/);
  t.is(ownershipProblem({ uid: 0, mode: 0o100666 }, 0, true)?.fix('/x.js'), 'chmod go-w /x.js');
  t.is(ownershipProblem({ uid: 0, mode: 0o41777 }, 0, false), undefined, '/tmp above the module');
  t.regex(ownershipProblem({ uid: 0, mode: 0o41777 }, 0, true)?.why ?? '', /mode 1777/, '/tmp as the module\u2019s own directory');
  t.regex(ownershipProblem({ uid: 0, mode: 0o40777 }, 0, false)?.why ?? '', /mode 0777/, 'a world-writable ancestor that is not sticky');
});

/** A copy of the good fixture in a fresh directory (0700, ours) under the temp dir. */
function goodCopy(t: import('ava').ExecutionContext): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-owner-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The fixture imports ./base.js and the sources next to it: a module that re-exports it
  // keeps the copy a real module with everything it needs.
  const path = join(dir, 'handler.mjs');
  writeFileSync(path, `export { default } from ${JSON.stringify(pathToFileURL(fixture('good')).href)};\n`, { mode: 0o644 });
  chmodSync(path, 0o644);
  return { dir, path };
}

test('a module of ours in a directory of ours loads', async (t) => {
  const { path } = goodCopy(t);
  t.is((await loadHandler(specFor(path))).name, 'fixture');
});

test('a world-writable module file (chmod 666) is refused: HANDLER_UNSAFE naming the file, the problem and the fix', async (t) => {
  const { path } = goodCopy(t);
  chmodSync(path, 0o666);
  const message = await refused(t, path, 'LNLB_ERR_HANDLER_UNSAFE', /refusing handler module .*: the file .*handler\.mjs is writable by group and others \(mode 0666\), so someone else could change the code this daemon runs; fix: chmod go-w .*handler\.mjs/);
  t.regex(message, new RegExp(`^handler ${FIXTURE_PROTOCOL}=`), 'names what the operator wrote');
});

test('a group-writable module file is refused too', async (t) => {
  const { path } = goodCopy(t);
  chmodSync(path, 0o664);
  await refused(t, path, 'LNLB_ERR_HANDLER_UNSAFE', /is writable by its group \(mode 0664\)/);
});

test('a module owned by another user (chown nobody) is refused: HANDLER_UNSAFE naming the owner and the fix', async (t) => {
  const { path } = goodCopy(t);
  if (isRoot) {
    chownSync(path, NOBODY, statSync(path).gid);
    await refused(t, path, 'LNLB_ERR_HANDLER_UNSAFE', /the file .*handler\.mjs is owned by uid 65534, not by this daemon's user \(uid 0\) or root, .*fix: chown root /);
  } else {
    // Not root: the file is ours; a daemon running as another (non-root) user must refuse it.
    const other = (process.geteuid?.() ?? 1000) + 1;
    const err = await t.throwsAsync(loadHandler(specFor(path), { euid: other }), { instanceOf: LnlbError });
    t.is(err?.code, 'LNLB_ERR_HANDLER_UNSAFE');
    t.regex(err?.message ?? '', new RegExp(`is owned by uid \\d+, not by this daemon's user \\(uid ${other}\\) or root`));
  }
});

test('a module in a world-writable directory is refused, naming the directory', async (t) => {
  const { dir, path } = goodCopy(t);
  chmodSync(dir, 0o777);
  const message = await refused(t, path, 'LNLB_ERR_HANDLER_UNSAFE', /its directory \S*lnlb-owner-\w+ is writable by group and others \(mode 0777\), so someone else could change the code this daemon runs; fix: chmod go-w \S*lnlb-owner-\w+ /);
  t.true(message.includes(dir));
});

test('a directory further up that others can write (not sticky) is refused, naming it', async (t) => {
  const { dir } = goodCopy(t);
  const inner = join(dir, 'handlers');
  mkdirSync(inner, { mode: 0o755 });
  const path = join(inner, 'h.mjs');
  writeFileSync(path, `export { default } from ${JSON.stringify(pathToFileURL(fixture('good')).href)};\n`);
  chmodSync(path, 0o644);
  chmodSync(dir, 0o777);
  await refused(t, path, 'LNLB_ERR_HANDLER_UNSAFE', /the directory above it .*lnlb-owner-\w+ is writable by group and others \(mode 0777\)/);
  chmodSync(dir, 0o1777); // sticky, as /tmp: nobody can rename `handlers` away
  t.is((await loadHandler(specFor(path))).name, 'fixture');
});

test('a symlink is followed and the file it leads to is checked', async (t) => {
  const { dir, path } = goodCopy(t);
  const target = join(dir, 'real.mjs');
  copyFileSync(path, target);
  chmodSync(target, 0o666);
  const link = join(dir, 'link.mjs');
  symlinkSync(target, link);
  const err = await t.throwsAsync(loadHandler(specFor(link)), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_HANDLER_UNSAFE');
  t.regex(err?.message ?? '', /the file \(where .*link\.mjs leads\) .*real\.mjs is writable by group and others/);
});

test('the shipped handlers pass the same ownership check', async (t) => {
  for (const name of ['default', 'tcp', 'udp']) {
    const handler = await loadHandler(parseHandlerSpec(`${name}=${name}`, FLAG));
    t.is(handler.name, name);
  }
});
