/**
 * Which of lnlbd's threads the scheduler prefers. The control thread raises itself to the top
 * (control-thread.ts); the datapath threads (dispatcher, actors, bonds) run DATAPATH_NICE_STEPS
 * below the priority they were created with, so that when the machine has more work than cores
 * (a flood, a node restarting beside others) a heartbeat is not queued behind frames.
 * Measured (3 daemons on 2 cores, hb 10 ms, dead after 30 ms, a full-speed flood for 15 s and
 * three kills and restarts): every thread at -20, 5 of 10 runs had a live node reset itself
 * after a stall of 31 to 45 ms; the datapath at -10, 1 of 14.
 *
 * Linux keeps a nice value per thread and setpriority() takes a thread id where it wants a
 * pid; /proc/thread-self names ours. Lowering one's own priority needs no privilege.
 */

import { readlinkSync } from 'node:fs';
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
 * A datapath thread's first step: DATAPATH_NICE_STEPS below what it inherited, when that was
 * raised (lnlbd's --nice, or an embedding application run with a negative nice), never below
 * the default 0. An unraised process is left alone.
 */
export function lowerDatapathThread(): void {
  const inherited = getPriority(ownThreadId());
  if (inherited < 0) setOwnNice(Math.min(0, inherited + DATAPATH_NICE_STEPS));
}
