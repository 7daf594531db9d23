/**
 * The main thread's part of the bucket handovers (cluster/bucket-handover.ts): the control
 * plane decides what moves and when; here the actors' shards are scanned for the flows in the
 * buckets that moved and serialised per new owner, and a handover that arrived is added to
 * the actors' live tables. Both cost time proportional to the flows (a shard scan, a million
 * entries serialised), which must not delay a heartbeat on the control thread.
 */

import type { ProtocolHandler } from '../handlers/handler.js';
import { encodeTrackerState, SNAPSHOT_WORDS } from '../handlers/tracker-state.js';
import { parseMac } from '../net/ethernet.js';
import { decodeHandover, encodeHandover } from '../net/handover-message.js';
import type { ControlEvent } from '../workers/messages.js';
import type { ClusterThreads } from './cluster-threads.js';
import { nowSeconds } from './tracked-flows.js';
import type { Logger } from './logger.js';

type HandOverEvent = Extract<ControlEvent, { type: 'hand-over' }>;
type HandoverEvent = Extract<ControlEvent, { type: 'handover' }>;

/** One handler's scanned entries from every actor: packed SNAPSHOT_WORDS each, with the target index of each. */
export interface ScannedShard {
  entries: Uint32Array;
  targets: Uint8Array;
}

/**
 * The handover messages of one plan: per target with at least one flow, every handler's
 * entries for it as a tracking state. Pure.
 */
export function handoverMessages(
  scanned: readonly (readonly ScannedShard[])[],
  handlers: readonly Pick<ProtocolHandler, 'protocol'>[],
  targets: readonly string[],
  digest: number,
  owners: Record<number, string>,
  now: number,
): { to: string; data: Uint8Array; entries: number }[] {
  const macs = new Map(Object.entries(owners).map(([id, mac]) => [Number(id), parseMac(mac)]));
  const out: { to: string; data: Uint8Array; entries: number }[] = [];
  targets.forEach((to, t) => {
    let total = 0;
    const states = scanned.map((shards, h) => {
      const stats = { saved: 0, skippedUnknownOwner: 0 };
      let room = 0;
      for (const s of shards) for (const x of s.targets) if (x === t) room++;
      const state = encodeTrackerState(
        (visit) => {
          for (const s of shards) {
            for (let i = 0; i < s.targets.length; i++) {
              if (s.targets[i] !== t) continue;
              const k = i * SNAPSHOT_WORDS;
              visit(s.entries[k]!, s.entries[k + 1]!, s.entries[k + 2]!, s.entries[k + 3]!);
            }
          }
        },
        room,
        now,
        (id) => macs.get(id),
        stats,
      );
      total += stats.saved;
      return { protocol: handlers[h]!.protocol, state };
    });
    if (total > 0) out.push({ to, data: encodeHandover({ digest, states }), entries: total });
  });
  return out;
}

export class BucketHandoverWork {
  readonly #threads: ClusterThreads;
  readonly #log: Logger;
  /** Handovers merge one after the other (each is several actor round trips). */
  #merging: Promise<void> = Promise.resolve();
  /** The last plan's scan: what it found to send (a resync reports it). */
  lastScan: Promise<{ entries: number; bytes: number; targets: number }> = Promise.resolve({ entries: 0, bytes: 0, targets: 0 });

  constructor(threads: ClusterThreads, log: Logger) {
    this.#threads = threads;
    this.#log = log;
  }

  /** The control plane's plan: scan, serialise per new owner, hand the messages back to send. */
  handOver(e: HandOverEvent): void {
    const started = performance.now();
    const scan = this.#scan(e);
    this.lastScan = scan.then(
      (messages) => ({ entries: messages.reduce((n, m) => n + m.entries, 0), bytes: messages.reduce((n, m) => n + m.data.length, 0), targets: messages.length }),
      () => ({ entries: 0, bytes: 0, targets: 0 }),
    );
    void scan
      .then((messages) => {
        this.#threads.post({ type: 'handover-scanned', id: e.id, messages });
        const entries = messages.reduce((n, m) => n + m.entries, 0);
        this.#log.debug({ event: 'handover-scanned', id: e.id, targets: messages.length, entries, ms: Math.round(performance.now() - started) }, `handover ${e.id}: ${entries} tracked flows for ${messages.length} new owner(s)`);
      })
      .catch((err: unknown) => {
        const error = err instanceof Error ? err.message : String(err);
        this.#threads.post({ type: 'handover-scanned', id: e.id, messages: [], error });
        this.#log.error({ event: 'handover-scan-failed', id: e.id }, `handover ${e.id}: ${error}`);
      });
  }

  async #scan(e: HandOverEvent): Promise<{ to: string; data: Uint8Array; entries: number }[]> {
    const datapath = this.#threads.datapath;
    if (datapath === undefined) return [];
    const scanned = await datapath.scanBuckets(e.targetOf);
    return handoverMessages(scanned, datapath.handlers, e.targets, e.digest, e.owners, nowSeconds());
  }

  /** A handover arrived: every handler's state goes into the actors' live tables, then it is acknowledged. */
  receive(e: HandoverEvent): void {
    this.#merging = this.#merging.then(() => this.#merge(e));
  }

  async #merge(e: HandoverEvent): Promise<void> {
    const started = performance.now();
    const decoded = decodeHandover(e.data);
    let merged = 0;
    let error: string | undefined;
    if ('error' in decoded) {
      error = decoded.error;
    } else {
      const datapath = this.#threads.datapath;
      for (const { protocol, state } of decoded.states) {
        const index = datapath?.handlers.findIndex((h) => h.protocol === protocol) ?? -1;
        if (datapath === undefined || index < 0) continue; // a handler this node does not run: nothing of it to track
        try {
          const r = await datapath.mergeState(e.from, index, state, e.ownerIds);
          merged += r.merged;
          if (r.refused !== undefined) error = r.refused;
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
        }
      }
    }
    this.#threads.post({ type: 'handover-merged', from: e.from, messageId: e.messageId, entries: merged, ...(error === undefined ? {} : { error }) });
    if (error !== undefined) this.#log.error({ event: 'handover-refused', from: e.from, error }, `bucket handover from ${e.from} refused: ${error}`);
    else this.#log.debug({ event: 'handover-merged', from: e.from, entries: merged, ms: Math.round(performance.now() - started) }, `took ${merged} tracked flows from ${e.from} with the buckets that moved here`);
  }
}
