/**
 * The daemon's load-time check of a handler module, in a worker thread with a time limit: the
 * loader's import, contract and smoke test (src/handlers/loader.ts) run there, and a module
 * whose top-level code or one of whose methods does not return in time is refused, the thread
 * terminated, instead of hanging the daemon's start.
 *
 * The thread stores the step it is at (an index of SELF_TEST_STEPS) in shared memory before
 * each; this thread polls it, so it can say which method did not return even though the
 * thread that is stuck cannot say anything.
 */

import { Worker } from 'node:worker_threads';
import { ErrorCodes, lnlbError, type ErrorCode } from '../errors.js';
import { describeModule, SELF_TEST_STEPS, type HandlerSpec } from '../handlers/loader.js';
import { THREAD_START_LIMIT_MS, workerExecArgv } from './exec-argv.js';

/** How long one method may take in the self-test (a handler method returns in microseconds). */
export const SELF_TEST_STEP_LIMIT_MS = 2000;
/** How long importing the module may take (its top-level code and its own imports from disk). */
export const SELF_TEST_IMPORT_LIMIT_MS = 10_000;
const POLL_MS = 20;

export interface SelfTestLimits {
  stepMs: number;
  importMs: number;
}

/** What the self-test thread is started with. */
export interface SelfTestData {
  spec: HandlerSpec;
  /** Int32Array[0]: the index in SELF_TEST_STEPS of the step running now. */
  progress: SharedArrayBuffer;
}

/** What it answers (the thread is terminated after it either way). */
export type SelfTestAnswer = { ok: true } | { ok: false; code: string | undefined; message: string };

const IMPORT_STEP = SELF_TEST_STEPS.indexOf('import');

function revive(spec: HandlerSpec, answer: Extract<SelfTestAnswer, { ok: false }>): Error {
  if (answer.code !== undefined && Object.hasOwn(ErrorCodes, answer.code)) return lnlbError(answer.code as ErrorCode, answer.message);
  return lnlbError('LNLB_ERR_HANDLER_INVALID', `handler ${spec.label}: ${describeModule(spec)} failed its self-test: ${answer.message}; fix the module (docs/handlers.md)`);
}

/**
 * Runs loadHandler's checks of `spec` in a fresh worker thread; resolves when the module
 * passes, rejects with the loader's error, or with LNLB_ERR_HANDLER_INVALID (a method did not
 * return within `limits.stepMs`) or LNLB_ERR_HANDLER_LOAD (the import did not finish within
 * `limits.importMs`) after terminating the thread.
 */
export function selfTestInWorker(spec: HandlerSpec, limits: SelfTestLimits = { stepMs: SELF_TEST_STEP_LIMIT_MS, importMs: SELF_TEST_IMPORT_LIMIT_MS }): Promise<void> {
  const progress = new SharedArrayBuffer(4);
  const step = new Int32Array(progress);
  const data: SelfTestData = { spec, progress };
  const worker = new Worker(new URL('./handler-self-test-thread.js', import.meta.url), { execArgv: workerExecArgv(), workerData: data, name: 'lnlb-handler-self-test' });
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let seen = 0;
    let since = performance.now();
    const finish = (error: Error | undefined): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      // Terminate whatever the answer: a module's timers must not keep the thread alive, and a
      // stuck one is stopped here (V8 interrupts a busy loop).
      void worker.terminate().finally(() => (error === undefined ? resolve() : reject(error)));
    };
    const timer = setInterval(() => {
      const now = performance.now();
      const at = Atomics.load(step, 0);
      if (at !== seen) {
        seen = at;
        since = now;
        return;
      }
      const waited = now - since;
      if (at === 0) {
        if (waited >= THREAD_START_LIMIT_MS) finish(lnlbError('LNLB_ERR_WORKER_FAILED', `the self-test thread of handler ${spec.label} did not start within ${THREAD_START_LIMIT_MS} ms`));
      } else if (at === IMPORT_STEP) {
        if (waited >= limits.importMs) {
          finish(lnlbError('LNLB_ERR_HANDLER_LOAD', `handler ${spec.label}: cannot load ${describeModule(spec)}: its module code did not finish within ${limits.importMs} ms during its self-test (the self-test thread was stopped); fix the module (docs/handlers.md)`));
        }
      } else if (waited >= limits.stepMs) {
        const method = SELF_TEST_STEPS[at] ?? `step ${at}`;
        finish(
          lnlbError(
            'LNLB_ERR_HANDLER_INVALID',
            `handler ${spec.label}: ${describeModule(spec)} is not a valid lnlb protocol handler: it did not return from ${method} within ${limits.stepMs} ms during its self-test (the self-test thread was stopped); a handler method must return at once: fix the module (docs/handlers.md)`,
          ),
        );
      }
    }, POLL_MS);
    worker.once('message', (answer: SelfTestAnswer) => finish(answer.ok ? undefined : revive(spec, answer)));
    worker.once('error', (err) => finish(revive(spec, { ok: false, code: undefined, message: `${err.name}: ${err.message.split('\n', 1)[0] ?? ''} (uncaught in its self-test thread)` })));
    worker.once('exit', (code) => finish(revive(spec, { ok: false, code: undefined, message: `its self-test thread exited (code ${code}) before the self-test finished (does the module call process.exit?)` })));
  });
}
