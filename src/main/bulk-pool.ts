/**
 * The bulk pool: work on a whole table that belongs to no shard (bulk-tasks.ts), on a piscina
 * pool rather than on the main thread, which in an embedded node is the host service's event
 * loop. Encoding a million-flow state for a newcomer held it for 50-180 ms, building a
 * million-flow conntrack listing for seconds (bench host-loop).
 *
 * One pool per process, shared by its interfaces (and embedded nodes), created on first use:
 * - one thread at most: these tasks are rare and each is sequential; a second core is the
 *   datapath's;
 * - no thread while idle (minThreads 0, gone IDLE_MS after its last task): an idle daemon
 *   keeps its thread count and its memory; the first task pays the thread's start, ~30 ms,
 *   off the main thread;
 * - a bounded queue: past MAX_QUEUE tasks waiting, a task is refused (LNLB_ERR_WORKER_FAILED).
 * Why not the actors, which own the data: each holds a shard, not the state, and 80 ms of
 * encoding in an actor is 80 ms of frames held behind it. A drain's count does run there
 * (a sum over the shard, no allocation: ActorApi.activeOwned).
 */

import { Piscina } from 'piscina';
import { lnlbError } from '../errors.js';
import type { EncodedState } from '../handlers/tracker-state.js';
import type { ConntrackTask, EncodeStatesTask } from '../workers/bulk-tasks.js';
import { workerExecArgv } from '../workers/exec-argv.js';

/** A pool thread with nothing to do ends after this long. */
const IDLE_MS = 30_000;
/** Tasks waiting for the thread, at most. */
const MAX_QUEUE = 32;

export class BulkPool {
  static #shared: Piscina | undefined;
  static #users = 0;
  #released = false;

  private constructor() {}

  /** A handle on the process's pool; release() it when done (the last release ends the pool). */
  static acquire(): BulkPool {
    BulkPool.#users++;
    return new BulkPool();
  }

  #pool(): Piscina {
    if (this.#released) throw lnlbError('LNLB_ERR_WORKER_FAILED', 'the bulk pool was released: the interface is stopping');
    BulkPool.#shared ??= new Piscina({
      filename: new URL('../workers/bulk-tasks.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: IDLE_MS,
      maxQueue: MAX_QUEUE,
      execArgv: workerExecArgv(),
    });
    return BulkPool.#shared;
  }

  /** Every handler's state from the actors' snapshots; the snapshots' buffers move to the pool. */
  async encodeStates(task: EncodeStatesTask): Promise<EncodedState[]> {
    return this.#run<EncodedState[]>('encodeStates', task, task.snapshots.flat().map((s) => s.buffer));
  }

  /** `lnlbctl conntrack`'s answer as JSON text; the listings' buffers move to the pool. */
  async conntrackJson(task: ConntrackTask): Promise<Uint8Array> {
    return this.#run<Uint8Array>('conntrackJson', task, task.listings.flat().map((l) => l.entries.buffer));
  }

  async #run<T>(name: string, task: object, buffers: ArrayBufferLike[]): Promise<T> {
    const transferList = [...new Set(buffers)].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer && b.byteLength > 0);
    try {
      return (await this.#pool().run(task, { name, transferList })) as T;
    } catch (err) {
      throw lnlbError('LNLB_ERR_WORKER_FAILED', `bulk task ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Done with the pool; the last user's release ends its thread. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (--BulkPool.#users > 0) return;
    const pool = BulkPool.#shared;
    BulkPool.#shared = undefined;
    await pool?.destroy();
  }
}
