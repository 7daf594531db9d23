/**
 * lnlbd's scheduling priority. Raising the control thread alone is not enough: when its heap
 * fills, V8 collects it with the process's shared platform threads, and the control thread
 * sleeps until they have run. Measured (bench control-flood, three daemons and a forger at
 * nice -20 on two cores): with only the control thread at -20, a single rejected frame's
 * processing took 627 ms of wall time of which the thread ran 1.6 ms and waited for a CPU
 * 8 ms: the rest it slept, waiting for GC threads at nice 0; 15 false deaths in two 5 s floods.
 * With every thread at -20: longest stall 161 ms, none. The datapath threads then lower
 * themselves 10 steps (src/workers/thread-priority.ts): they are the ones a flood keeps busy.
 *
 * Linux keeps a nice value per thread (setpriority(PRIO_PROCESS, tid)); threads created later
 * (workers, libuv's pool) inherit their creator's, so the threads that exist now are the ones
 * to set. Needs CAP_SYS_NICE to raise (root has it).
 */

import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { datapathNice } from '../workers/thread-priority.js';

export interface PriorityResult {
  /** Threads set. */
  threads: number;
  /** Why some could not be set (the first error), e.g. EACCES without CAP_SYS_NICE. */
  failed?: string;
}

/**
 * Gives every thread of this process the nice value `nice` (-20..19), the datapath threads
 * (`datapath`, kernel thread ids) datapathNice(nice), and leaves the `skip` ones. A thread
 * already above its target keeps its priority: the control thread raised itself to -20
 * (control-thread.ts).
 */
export function setProcessNice(nice: number, datapath: ReadonlySet<number> = new Set(), skip: ReadonlySet<number> = new Set()): PriorityResult {
  let threads = 0;
  let failed: string | undefined;
  for (const entry of readdirSync('/proc/self/task')) {
    const tid = Number(entry);
    if (skip.has(tid)) continue;
    try {
      const target = datapath.has(tid) ? datapathNice(nice) : nice;
      if (getPriority(tid) >= target) setPriority(tid, target);
      threads++;
    } catch (err) {
      // A thread that ended meanwhile is gone (ESRCH): nothing to set.
      const code = (err as NodeJS.ErrnoException).code ?? (err as { info?: { code?: string } }).info?.code;
      if (code === 'ESRCH') continue;
      failed ??= (err as Error).message;
    }
  }
  return failed === undefined ? { threads } : { threads, failed };
}
