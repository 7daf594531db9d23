/**
 * The flows one interface tracks, as the main thread handles them: listed (`lnlbctl
 * conntrack`), counted (a drain waits for this node's to go quiet), saved for another node
 * (a newcomer's state transfer, `lnlbctl resync`) and loaded from one. Each actor lists,
 * counts or snapshots its own shard between two batches; listings are named and serialised,
 * snapshots encoded, in the bulk pool (bulk-pool.ts): this thread only passes buffers on.
 */

import { lnlbError } from '../errors.js';
import { ownerIdsOf } from '../workers/conntrack-listing.js';
import type { Datapath } from '../workers/datapath.js';
import type { ControlEvent, HandlerSetup, SavedState } from '../workers/messages.js';
import { RawJson } from './admin-protocol.js';
import { BulkPool } from './bulk-pool.js';
import type { ClusterThreads } from './cluster-threads.js';
import type { Logger } from './logger.js';

/** The tracking tables' clock: u32 seconds, the same as the actors'. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** How long a resync may take, the state sent to every node. */
const RESYNC_TIMEOUT_MS = 60_000;

type StateEvent = Extract<ControlEvent, { type: 'state' }>;

export class TrackedFlows {
  readonly #interfaceName: string;
  readonly #threads: ClusterThreads;
  readonly #log: Logger;
  /** The handlers in the datapath's order (the bulk pool loads their modules to name flows). */
  readonly #handlers: readonly HandlerSetup[];
  #pool: BulkPool | undefined;
  /** Each handler's idle timeout, in the datapath's handler order. */
  readonly #idleTimeoutSeconds: readonly number[];
  /** State loads run one after another (a transfer is several handlers' states). */
  #loading: Promise<void> = Promise.resolve();

  constructor(interfaceName: string, threads: ClusterThreads, handlers: readonly HandlerSetup[], log: Logger) {
    this.#interfaceName = interfaceName;
    this.#threads = threads;
    this.#handlers = handlers;
    this.#idleTimeoutSeconds = handlers.map((h) => h.idleTimeoutSeconds);
    this.#log = log;
  }

  /** The process's bulk pool, taken on first use (an interface that never sends a state never starts it). */
  #bulk(): BulkPool {
    this.#pool ??= BulkPool.acquire();
    return this.#pool;
  }

  /** The interface stops: its hold on the bulk pool ends. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.release();
  }

  /**
   * `lnlbctl conntrack`: every tracked flow of every handler (key → owning node, idle
   * seconds), each actor listing its own shard between two batches, at most `limit` in all.
   */
  async conntrack(limit: number, self: string): Promise<RawJson> {
    const datapath = this.#threads.datapath;
    const owners = (await this.#threads.owners()) ?? {};
    // Names and addresses as the members announced them; this node by its own MAC.
    const members = (await this.#threads.controlStatus())?.nodes.map((n): [string, { name: string; address: string }] => [n.mac, { name: n.name, address: n.address }]) ?? [];
    const now = nowSeconds();
    const listings = datapath === undefined ? [] : await datapath.list(limit, now);
    // Named, sorted and serialised in the bulk pool: a million rows would hold this thread for seconds.
    const json = await this.#bulk().conntrackJson({
      interfaceName: this.#interfaceName,
      listings,
      specs: this.#handlers.map((h) => h.spec),
      idleTimeoutSeconds: this.#idleTimeoutSeconds,
      owners,
      members,
      self,
      now,
      limit,
      sourceBook: datapath?.sourceBook?.memory,
    });
    return new RawJson(json);
  }

  /** Flows this node (`self`, its MAC) owns that were seen within the last `idleSeconds`; +Infinity when the control plane does not answer (not known to be drained). */
  async activeOwned(self: string, idleSeconds: number): Promise<number> {
    const datapath = this.#threads.datapath;
    if (datapath === undefined) return 0;
    const owners = await this.#threads.owners();
    if (owners === undefined) return Number.POSITIVE_INFINITY;
    // Each actor counts its own shards: nothing the size of a table crosses to this thread.
    return datapath.activeOwned(ownerIdsOf(owners, self), nowSeconds(), idleSeconds);
  }

  /** `lnlbctl resync`: broadcasts this node's tracking state; every other node reloads from it. */
  async resync(): Promise<{ entries: number; bytes: number; fragments: number }> {
    const owners = await this.#threads.owners();
    if (owners === undefined) throw lnlbError('LNLB_ERR_WORKER_FAILED', 'the control plane did not answer');
    const states = await this.save(owners);
    // Counted before the buffers move to the control thread.
    const entries = states.reduce((n, s) => n + s.entries, 0);
    const bytes = states.reduce((n, s) => n + s.state.length, 0);
    const answer = await this.#threads.sendState('cluster', states, RESYNC_TIMEOUT_MS);
    if (answer === undefined) throw lnlbError('LNLB_ERR_WORKER_FAILED', 'the control plane did not finish the resync within 60 s');
    if (answer.error !== undefined) throw lnlbError('LNLB_ERR_WORKER_FAILED', `resync failed: ${answer.error}`);
    return { entries, bytes, fragments: answer.fragments };
  }

  /** A newcomer asked for the state (`save-state`): saved here, sent by the control plane; a failure is logged. */
  sendTo(to: string, owners: Record<number, string>): void {
    this.save(owners)
      // The control plane logs a failure to send (state-send-failed) and says it in its answer.
      .then((states) => this.#threads.sendState(to, states, RESYNC_TIMEOUT_MS))
      .catch((err: unknown) => this.#log.error({ event: 'state-save-failed', to }, err instanceof Error ? err.message : String(err)));
  }

  /**
   * Every handler's state, from a snapshot each actor takes of its own shard between two
   * batches (consistent per shard), serialised here, off the actors' and the control plane's
   * threads.
   */
  async save(owners: Record<number, string>): Promise<SavedState[]> {
    const datapath = this.#threads.datapath;
    if (datapath === undefined) return [];
    const snapshots = await datapath.snapshot();
    // Serialised in the bulk pool: a million flows held this thread 50-180 ms (bench host-loop).
    return this.#bulk().encodeStates({ snapshots, protocols: datapath.handlers.map((h) => h.protocol), owners, nowSeconds: nowSeconds() });
  }

  /** A state arrived from another node: loaded after the ones before it; a newcomer's last one tells the control plane it is in. */
  receive(e: StateEvent): void {
    this.#loading = this.#loading
      .then(() => this.#load(e.from, e.protocol, e.state, e.ownerIds, e.newcomer))
      .finally(() => {
        // A newcomer's first round waits for the last handler's state (loaded or refused).
        if (e.newcomer && e.last) this.#threads.post({ type: 'state-loaded' });
      })
      // Caught here: a rejected link would be unhandled, and would skip every later state.
      .catch((err: unknown) => this.#log.error({ event: 'state-refused', from: e.from, err }, `tracking state from ${e.from}: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** A handler's state from another node: every actor loads its shard, all or nothing. */
  async #load(from: string, protocol: number, state: Uint8Array, ownerIds: Record<string, number>, newcomer: boolean): Promise<void> {
    const datapath: Datapath | undefined = this.#threads.datapath;
    if (datapath === undefined) return;
    const index = datapath.handlers.findIndex((h) => h.protocol === protocol);
    if (index < 0) {
      this.#log.warn({ event: 'state-ignored', from, protocol }, `tracking state for protocol ${protocol} from ${from} ignored: no handler for it here (are the --handler flags the same on every node?)`);
      return;
    }
    const handler = datapath.handlers[index]!;
    const started = performance.now();
    try {
      const result = await datapath.loadState(from, index, state, ownerIds);
      if (result.refused !== undefined) {
        this.#log.error({ event: 'state-refused', from, handler: handler.name }, `${result.refused} (every shard rolled back)`);
        return;
      }
      this.#log.info(
        { event: newcomer ? 'state-loaded' : 'resync-loaded', from, handler: handler.name, entries: result.loaded, skipped: result.skipped, clockShift: result.clockShift, ms: Math.round(performance.now() - started) },
        `loaded ${result.loaded} tracked ${handler.name} flows from ${from}`,
      );
    } catch (err) {
      this.#log.error({ event: 'state-refused', from, handler: handler.name }, (err as Error).message);
    }
  }
}
