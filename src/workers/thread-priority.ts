/**
 * Which of lnlbd's threads the scheduler prefers. The control thread raises itself to the top
 * (control-thread.ts); the datapath threads (dispatcher, actors, bonds) run DATAPATH_NICE_STEPS
 * below the rest (lnlbd sets them by id once started: process-priority.ts; later ones lower
 * themselves), so that when the machine has more work than cores (a flood, a node restarting
 * beside others) a heartbeat is not queued behind frames.
 * Measured (3 daemons on 2 cores, hb 10 ms, dead after 30 ms, a full-speed flood for 15 s and
 * three kills and restarts): every thread at -20, 5 of 10 runs had a live node reset itself
 * after a stall of 31 to 45 ms; the datapath at -10, 1 of 14.
 *
 * Linux keeps a nice value per thread and setpriority() takes a thread id where it wants a
 * pid; /proc/thread-self names ours. Lowering one's own priority needs no privilege.
 */

import { readlinkSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export const DATAPATH_NICE_STEPS = 10;

/** This thread's kernel id (what gettid() returns). */
export function ownThreadId(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}

/** Sets this thread's nice value; the error's message when it cannot (EACCES without CAP_SYS_NICE). */
export function setOwnNice(nice: number): string | undefined {
  try {
    setPriority(ownThreadId(), nice);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A datapath thread's nice under a process at `nice`: DATAPATH_NICE_STEPS below it when it is
 * raised (lnlbd's --nice, or an embedding application run with a negative nice), never below
 * the default 0; an unraised process's threads are left at its own.
 */
export function datapathNice(nice: number): number {
  return nice < 0 ? Math.min(0, nice + DATAPATH_NICE_STEPS) : nice;
}

/**
 * A datapath thread's first step, from the priority it inherited. (lnlbd raises its process
 * once started, setting the datapath threads that exist then by their ids; this covers the
 * ones made later, by addif or bond create, and an embedding application's.)
 */
export function lowerDatapathThread(): void {
  const inherited = getPriority(ownThreadId());
  const nice = datapathNice(inherited);
  if (nice !== inherited) setOwnNice(nice);
}

/** How far below its process the bulk pool's thread runs (bulk-tasks.ts). */
export const BULK_NICE_STEPS = 10;

/**
 * The bulk pool's thread: below its process whatever the process is (nice 19 at most), because
 * its work (encoding a state, a listing) can wait and the main thread, a host service's event
 * loop in an embedded node, cannot: at the same priority, a 100 ms encode on a busy 2-core
 * machine held the sender's event loop up to 48 ms (bench host-loop). Lowering needs no privilege.
 */
export function lowerBulkThread(): void {
  const inherited = getPriority(ownThreadId());
  setOwnNice(Math.min(19, inherited + BULK_NICE_STEPS));
}

/**
 * Names this thread (15 characters at most, what `top -H`, `ps -L` and /proc/PID/task/TID/comm
 * show): an operator, or bench/memory.ts, can then tell lnlbd's threads from V8's and libuv's,
 * which all keep the process's name. Best effort: a name is not worth failing a thread for.
 */
export function nameOwnThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // No /proc (a sandbox): the thread keeps the process's name.
  }
}
