/**
 * The Node flags our worker threads start with: the process's own (a service's
 * --enable-source-maps, --max-old-space-size, ...) less those a worker refuses. A worker
 * inherits process.execArgv, and `node --input-type=module -e '...'` (a one-liner embedding
 * lnlb) would make every thread fail at start with "--input-type can only be used with string
 * input": the datapath would never come up.
 */
const REFUSED_IN_WORKERS = ['--input-type'];

export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  return execArgv.filter((arg) => !REFUSED_IN_WORKERS.some((flag) => arg === flag || arg.startsWith(`${flag}=`)));
}
