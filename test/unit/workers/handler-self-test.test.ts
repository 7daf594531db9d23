/**
 * The load-time self-test in a worker thread with a time limit: a handler whose method never
 * returns, or whose module code never finishes, is refused within the limit (plus a margin),
 * and this process goes on.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { LnlbError } from '../../../src/errors.js';
import { loadHandler, parseHandlerSpec, type HandlerSpec } from '../../../src/handlers/loader.js';
import { SELF_TEST_IMPORT_LIMIT_MS, SELF_TEST_STEP_LIMIT_MS, selfTestInWorker } from '../../../src/workers/handler-self-test.js';
import { FIXTURE_PROTOCOL } from '../handlers/fixtures/base.js';

/** Starting a worker thread on a loaded 2-core host, and the 20 ms poll. */
const MARGIN_MS = 1500;

function spec(name: string): HandlerSpec {
  return parseHandlerSpec(`${FIXTURE_PROTOCOL}=${fileURLToPath(new URL(`../handlers/fixtures/${name}.js`, import.meta.url))}`, '--handler');
}

test('the limits are the documented ones: 2 s per method, 10 s for the import', (t) => {
  t.is(SELF_TEST_STEP_LIMIT_MS, 2000);
  t.is(SELF_TEST_IMPORT_LIMIT_MS, 10_000);
});

test('a good handler passes its self-test in a worker thread', async (t) => {
  await t.notThrowsAsync(selfTestInWorker(spec('good')));
  await t.notThrowsAsync(selfTestInWorker(parseHandlerSpec('tcp=tcp', '--handler')), 'a built-in');
});

test('isRelated that never returns: refused within the limit, naming the method, and this process goes on', async (t) => {
  const started = performance.now();
  // A timer of this thread must keep firing while the handler spins in its own thread.
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 100);
  t.teardown(() => clearInterval(ticker));
  const err = await t.throwsAsync(selfTestInWorker(spec('never-returns')), { instanceOf: LnlbError });
  const tookMs = performance.now() - started;
  t.is(err?.code, 'LNLB_ERR_HANDLER_INVALID');
  t.regex(err?.message ?? '', /^handler 132=.*never-returns\.js: handler module .*never-returns\.js is not a valid lnlb protocol handler: it did not return from isRelated within 2000 ms during its self-test \(the self-test thread was stopped\)/);
  t.true(tookMs >= SELF_TEST_STEP_LIMIT_MS, `refused after ${Math.round(tookMs)} ms: not before the limit`);
  t.true(tookMs < SELF_TEST_STEP_LIMIT_MS + MARGIN_MS, `refused after ${Math.round(tookMs)} ms`);
  t.true(ticks >= 10, `this thread's timers ran meanwhile (${ticks} ticks)`);
  // The stopped thread holds nothing: the next load goes through at once.
  await t.notThrowsAsync(selfTestInWorker(spec('good')));
});

test('module code that never finishes: refused at the import limit as HANDLER_LOAD', async (t) => {
  const started = performance.now();
  const err = await t.throwsAsync(selfTestInWorker(spec('hangs-at-import'), { stepMs: 2000, importMs: 1000 }), { instanceOf: LnlbError });
  const tookMs = performance.now() - started;
  t.is(err?.code, 'LNLB_ERR_HANDLER_LOAD');
  t.regex(err?.message ?? '', /cannot load handler module .*hangs-at-import\.js: its module code did not finish within 1000 ms during its self-test/);
  t.true(tookMs < 1000 + MARGIN_MS, `refused after ${Math.round(tookMs)} ms`);
});

test('a contract problem found in the thread comes back with its code and message, as loadHandler gives it here', async (t) => {
  const inThread = await t.throwsAsync(loadHandler(spec('bad-answer')), { instanceOf: LnlbError });
  const inWorker = await t.throwsAsync(selfTestInWorker(spec('bad-answer')), { instanceOf: LnlbError });
  t.is(inWorker?.code, 'LNLB_ERR_HANDLER_INVALID');
  t.is(inWorker?.message, inThread?.message);
  const missing = await t.throwsAsync(selfTestInWorker(spec('does-not-exist')), { instanceOf: LnlbError });
  t.is(missing?.code, 'LNLB_ERR_HANDLER_LOAD');
  t.regex(missing?.message ?? '', /no such file/);
});

test('a module that exits its thread is refused, not waited for', async (t) => {
  const err = await t.throwsAsync(selfTestInWorker(spec('exits')), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_HANDLER_INVALID');
  t.regex(err?.message ?? '', /its self-test thread exited \(code 3\) before the self-test finished/);
});
