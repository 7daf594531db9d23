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

/**
 * How long a thread may take to say it is ready. A thread that fails says so at once (an
 * error, an exit); this limit is for one that hangs. Its start is bound by the CPU it gets:
 * 64 daemons started at once on 2 cores give each thread a thirtieth of a core, and a datapath
 * thread (module graph, native addon, rings) then took over 10 s, the limit before: the daemon
 * gave up on a start that was only slow (scale bench, N = 64).
 */
export const THREAD_START_LIMIT_MS = 30_000;
