/**
 * The self-test thread (see handler-self-test.ts): loads one handler with every check and the
 * smoke test, storing each step's index before it runs, and answers once.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { loadHandler, SELF_TEST_STEPS } from '../handlers/loader.js';
import type { SelfTestAnswer, SelfTestData } from './handler-self-test.js';

const data = workerData as SelfTestData;
const progress = new Int32Array(data.progress);
const answer = (message: SelfTestAnswer): void => parentPort?.postMessage(message);

// From here the import's limit runs (the ownership check before it is a few stat calls).
Atomics.store(progress, 0, SELF_TEST_STEPS.indexOf('import'));
loadHandler(data.spec, { onStep: (step) => Atomics.store(progress, 0, SELF_TEST_STEPS.indexOf(step)) }).then(
  () => answer({ ok: true }),
  (err: Error & { code?: string }) => answer({ ok: false, code: err.code, message: err.message }),
);
