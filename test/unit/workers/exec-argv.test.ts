import test from 'ava';
import { workerExecArgv } from '../../../src/workers/exec-argv.js';

test('worker threads keep the process flags but --input-type, which a worker refuses (node --input-type=module -e ...)', (t) => {
  t.deepEqual(workerExecArgv(['--input-type=module', '-e', 'code', '--enable-source-maps']), ['-e', 'code', '--enable-source-maps']);
  t.deepEqual(workerExecArgv(['--input-type', '--max-old-space-size=512']), ['--max-old-space-size=512']);
  t.deepEqual(workerExecArgv([]), []);
});
