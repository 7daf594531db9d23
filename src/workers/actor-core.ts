/**
 * An actor's per-frame work, free of threads and sockets (tests and the replay benchmark run
 * it as the actor thread does). The actor owns one shard of every handler's tracking table;
 * for each frame it decides: already tracked → its recorded owner; untracked → elect an owner
 * in the current view and record it (every node records every assignment, so the nodes'
 * tables agree); then keeps the frame only if the owner is this node.
 *
 * The view is re-read only when its generation changes (one atomic load per batch). Owners are
 * node ids; an entry whose owner has left the view counts as untracked and is re-elected, so a
 * death takes effect the moment the view is published, before the purge message arrives.
 */

import { RendezvousElection, type Election } from '../cluster/election.js';
import type { Tracker } from '../handlers/handler.js';
import type { ByteRing } from '../shm/byte-ring.js';
import { createPublishedView, type PublishedView, type ViewReader } from '../shm/view.js';
import { ActorCounter as C } from './counters.js';
import { DESCRIPTOR_BYTES } from './dispatcher-core.js';
import type { FrameSink } from './ports.js';

const WRITE_BATCH = 256;

export interface ActorConfig {
  ring: ByteRing;
  sink: FrameSink;
  /** One tracker per handler, in the dispatcher's handler order. */
  trackers: readonly Tracker[];
  view: ViewReader;
  counters: Float64Array;
  election?: Election;
}

export class ActorCore {
  readonly #ring: ByteRing;
  readonly #words: Uint32Array;
  readonly #sink: FrameSink;
  readonly #trackers: readonly Tracker[];
  readonly #viewReader: ViewReader;
  readonly #view: PublishedView = createPublishedView();
  readonly #election: Election;
  readonly #c: Float64Array;
  /** live[id] = 1 while node `id` is in the view. */
  readonly #live = new Uint8Array(65536);
  readonly #offsets = new Uint32Array(WRITE_BATCH);
  readonly #lengths = new Uint32Array(WRITE_BATCH);
  #pending = 0;
  #generation = -1;
  #accepting = false;
  #selfId = 0;

  constructor(config: ActorConfig) {
    this.#ring = config.ring;
    this.#words = config.ring.words;
    this.#sink = config.sink;
    this.#trackers = config.trackers;
    this.#viewReader = config.view;
    this.#c = config.counters;
    this.#election = config.election ?? new RendezvousElection();
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  /** Decides every record available now; returns how many. */
  processAvailable(nowSeconds: number): number {
    const ring = this.#ring;
    if (ring.beginRead() === 0) return 0;
    if (this.#viewReader.generation() !== this.#generation) this.#refreshView();
    const words = this.#words;
    const c = this.#c;
    const live = this.#live;
    const trackers = this.#trackers;
    const election = this.#election;
    const selfId = this.#selfId;
    const accepting = this.#accepting;
    let count = 0;
    let at: number;
    while ((at = ring.next()) >= 0) {
      count++;
      const w = at >>> 2;
      if (!accepting) continue;
      const keyLo = words[w]!;
      const keyHi = words[w + 1]!;
      const tracker = trackers[words[w + 3]!]!;
      let owner = tracker.isRelated(keyLo, keyHi, nowSeconds);
      if (owner < 0 || live[owner] === 0) {
        owner = election.electOwner(words[w + 2]!);
        if (owner < 0) continue;
        tracker.assigned(keyLo, keyHi, owner, nowSeconds);
        c[C.elected]!++;
      }
      if (owner !== selfId) {
        c[C.dropOtherNode]!++;
        continue;
      }
      const p = this.#pending;
      this.#offsets[p] = at + DESCRIPTOR_BYTES;
      this.#lengths[p] = ring.recordLength - DESCRIPTOR_BYTES;
      if (++this.#pending === WRITE_BATCH) this.#flush();
    }
    c[C.framesIn]! += count;
    if (!accepting) c[C.dropNotConverged]! += count;
    this.#flush(); // before endRead: the frames are written straight from ring memory
    ring.endRead();
    return count;
  }

  /** Drops a dead node's entries from every tracker of this shard. */
  nodeDied(id: number): number {
    let removed = 0;
    for (const tracker of this.#trackers) removed += tracker.nodeDied(id);
    this.#c[C.purgedByDeath]! += removed;
    this.#updateGauges();
    return removed;
  }

  /** Incremental expiry; cheap enough to call once a second. */
  housekeeping(nowSeconds: number, budget = 8192): void {
    let expired = 0;
    for (const tracker of this.#trackers) expired += tracker.expire(nowSeconds, budget);
    this.#c[C.expired]! += expired;
    this.#updateGauges();
  }

  #updateGauges(): void {
    let size = 0;
    let evictions = 0;
    for (const tracker of this.#trackers) {
      size += tracker.size;
      evictions += tracker.evictions;
    }
    this.#c[C.trackedEntries] = size;
    this.#c[C.evictions] = evictions;
  }

  #flush(): void {
    const n = this.#pending;
    if (n === 0) return;
    this.#pending = 0;
    const written = this.#sink.writeBatch(this.#ring.bytes, this.#offsets, this.#lengths, n);
    this.#c[C.accepted]! += written;
    if (written < n) this.#c[C.dropTapWrite]! += n - written;
  }

  #refreshView(): void {
    const view = this.#view;
    // Retries inside read() until it gets a consistent copy (the writer is never blocked).
    this.#viewReader.read(view);
    for (let i = 0; i < this.#live.length; i++) this.#live[i] = 0;
    for (let i = 0; i < view.nodeCount; i++) this.#live[view.ids[i]!] = 1;
    this.#election.rebuild({ count: view.nodeCount, ids: view.ids, weights: view.weights, macs: view.macs });
    this.#selfId = view.selfId;
    this.#accepting = view.accepting;
    this.#generation = view.generation;
  }
}
