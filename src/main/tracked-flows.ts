/**
 * The flows one interface tracks, as the main thread handles them: listed (`lnlbctl
 * conntrack`), counted (a drain waits for this node's to go quiet), saved for another node
 * (a newcomer's state transfer, `lnlbctl resync`) and loaded from one. Each actor lists or
 * snapshots its own shard between two batches; the listing is turned into rows by pure
 * functions here, the snapshots serialised off the actors' and the control plane's threads.
 */

import { lnlbError } from '../errors.js';
import type { ProtocolHandler } from '../handlers/handler.js';
import { encodeTrackerState, SNAPSHOT_WORDS, visitEntries } from '../handlers/tracker-state.js';
import { parseMac } from '../net/ethernet.js';
import { formatIPv4 } from '../net/ipv4.js';
import { formatIPv6, isIPv6Identity } from '../net/ipv6.js';
import type { SourceBook } from '../shm/source-book.js';
import type { Datapath } from '../workers/datapath.js';
import type { ControlEvent, SavedState, ShardListing } from '../workers/messages.js';
import type { ConntrackJson } from './admin-protocol.js';
import type { ClusterThreads } from './cluster-threads.js';
import type { Logger } from './logger.js';

/** The tracking tables' clock: u32 seconds, the same as the actors'. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Enough for every flow of any table a drain counts (the listing's limit). */
const DRAIN_LIST_LIMIT = 1 << 22;
/** How long a resync may take, the state sent to every node. */
const RESYNC_TIMEOUT_MS = 60_000;

/** A handler's words for a flow key (its describeKey), or the source address if it has none or it throws. */
function describeKey(handler: Pick<ProtocolHandler, 'describeKey'>, keyLo: number, keyHi: number): string {
  try {
    return handler.describeKey?.(keyLo, keyHi) ?? formatIPv4(keyLo);
  } catch {
    return formatIPv4(keyLo);
  }
}

/**
 * How a listing names an IPv6 source, which the tables know by its identity (cluster/hash.ts
 * ipv6Identity): its address when the source book still holds it, else `ipv6#<identity>`.
 * Handlers describe keys with the source as a dotted quad: that prefix becomes the address
 * (in brackets when a port follows, as in a URL).
 */
export function ipv6SourceNamer(book: Pick<SourceBook, 'lookup'> | undefined): (keyLo: number, described: string) => { source: string; flow: string } | undefined {
  const address = new Uint8Array(16);
  return (keyLo, described) => {
    if (!isIPv6Identity(keyLo)) return undefined;
    const source = book?.lookup(keyLo, address) === true ? formatIPv6(address) : `ipv6#${(keyLo & 0x1fffffff).toString(16).padStart(8, '0')}`;
    const dotted = formatIPv4(keyLo);
    if (!described.startsWith(dotted)) return { source, flow: described };
    const rest = described.slice(dotted.length);
    return { source, flow: `${rest.startsWith(':') ? `[${source}]` : source}${rest}` };
  };
}

/** What a conntrack listing is made of: the actors' listings and what names their owners. */
export interface ConntrackInputs {
  interfaceName: string;
  /** Per handler, every actor's listing (Datapath#list). */
  listings: ShardListing[][];
  /** The handlers in the same order: their names and describeKey, and their idle timeouts. */
  handlers: readonly Pick<ProtocolHandler, 'name' | 'describeKey'>[];
  idleTimeoutSeconds: readonly number[];
  /** Owner id → MAC (the control plane's table); an id not in it is a node gone. */
  owners: Record<number, string>;
  /** MAC → the name and address the member announced ('' for none). */
  members: ReadonlyMap<string, { name: string; address: string }>;
  /** This node's MAC. */
  self: string;
  now: number;
  limit: number;
  /** Names IPv6 sources (ipv6SourceNamer); absent: an interface without an IPv6 VIP. */
  ipv6Source?: (keyLo: number, described: string) => { source: string; flow: string } | undefined;
}

/** `lnlbctl conntrack`'s answer: every listed flow, the most recently seen first, at most `limit`. Pure. */
export function conntrackListing(input: ConntrackInputs): ConntrackJson {
  const { now } = input;
  const entries: ConntrackJson['entries'] = [];
  let total = 0;
  input.listings.forEach((shards, h) => {
    const handler = input.handlers[h]!;
    const idle = input.idleTimeoutSeconds[h] ?? 0;
    for (const shard of shards) {
      total += shard.total;
      const e = shard.entries;
      for (let k = 0; k + SNAPSHOT_WORDS <= e.length; k += SNAPSHOT_WORDS) {
        const keyLo = e[k]!;
        const keyHi = e[k + 1]!;
        const owner = e[k + 2]!;
        const mac = input.owners[owner];
        const member = mac === undefined ? undefined : input.members.get(mac);
        const described = describeKey(handler, keyLo, keyHi);
        const ipv6 = input.ipv6Source?.(keyLo, described);
        entries.push({
          handler: handler.name,
          source: ipv6?.source ?? formatIPv4(keyLo),
          ...(keyHi === 0 ? {} : { key: keyHi }),
          flow: ipv6?.flow ?? described,
          node: mac ?? `id ${owner} (gone)`,
          ...(member === undefined || member.name === '' ? {} : { nodeName: member.name }),
          ...(member === undefined || member.address === '' ? {} : { nodeAddress: member.address }),
          self: mac === input.self,
          idleSeconds: Math.max(0, (now - e[k + 3]!) | 0),
          expiresInSeconds: Math.max(0, idle - ((now - e[k + 3]!) | 0)),
        });
      }
    }
  });
  entries.sort((a, b) => a.idleSeconds - b.idleSeconds || a.source.localeCompare(b.source));
  return { interface: input.interfaceName, total, entries: entries.slice(0, input.limit) };
}

/** Flows owned by `self` (a MAC) that were seen within the last `idleSeconds`, in these listings. Pure. */
export function activeOwnedFlows(listings: ShardListing[][], owners: Record<number, string>, self: string, now: number, idleSeconds: number): number {
  const selfIds = new Set(Object.entries(owners).filter(([, mac]) => mac === self).map(([id]) => Number(id)));
  let active = 0;
  for (const shards of listings) {
    for (const shard of shards) {
      const e = shard.entries;
      for (let k = 0; k + SNAPSHOT_WORDS <= e.length; k += SNAPSHOT_WORDS) {
        // Whole seconds on both sides: a flow seen 0.1 s ago may read as 1 s old, so "quiet
        // for idleSeconds" means more than idleSeconds whole seconds since its last frame.
        if (selfIds.has(e[k + 2]!) && ((now - e[k + 3]!) | 0) <= idleSeconds) active++;
      }
    }
  }
  return active;
}


type StateEvent = Extract<ControlEvent, { type: 'state' }>;

export class TrackedFlows {
  readonly #interfaceName: string;
  readonly #threads: ClusterThreads;
  readonly #log: Logger;
  /** Each handler's idle timeout, in the datapath's handler order. */
  readonly #idleTimeoutSeconds: readonly number[];
  /** State loads run one after another (a transfer is several handlers' states). */
  #loading: Promise<void> = Promise.resolve();

  constructor(interfaceName: string, threads: ClusterThreads, idleTimeoutSeconds: readonly number[], log: Logger) {
    this.#interfaceName = interfaceName;
    this.#threads = threads;
    this.#idleTimeoutSeconds = idleTimeoutSeconds;
    this.#log = log;
  }

  /**
   * `lnlbctl conntrack`: every tracked flow of every handler (key → owning node, idle
   * seconds), each actor listing its own shard between two batches, at most `limit` in all.
   */
  async conntrack(limit: number, self: string): Promise<ConntrackJson> {
    const datapath = this.#threads.datapath;
    const owners = (await this.#threads.owners()) ?? {};
    // Names and addresses as the members announced them; this node by its own MAC.
    const members = new Map((await this.#threads.controlStatus())?.nodes.map((n) => [n.mac, n]) ?? []);
    const now = nowSeconds();
    const listings = datapath === undefined ? [] : await datapath.list(limit, now);
    const ipv6Source = datapath?.sourceBook === undefined ? undefined : ipv6SourceNamer(datapath.sourceBook);
    return conntrackListing({ interfaceName: this.#interfaceName, listings, handlers: datapath?.handlers ?? [], idleTimeoutSeconds: this.#idleTimeoutSeconds, owners, members, self, now, limit, ...(ipv6Source === undefined ? {} : { ipv6Source }) });
  }

  /** Flows this node (`self`, its MAC) owns that were seen within the last `idleSeconds`; +Infinity when the control plane does not answer (not known to be drained). */
  async activeOwned(self: string, idleSeconds: number): Promise<number> {
    const datapath = this.#threads.datapath;
    if (datapath === undefined) return 0;
    const owners = await this.#threads.owners();
    if (owners === undefined) return Number.POSITIVE_INFINITY;
    const now = nowSeconds();
    return activeOwnedFlows(await datapath.list(DRAIN_LIST_LIMIT, now), owners, self, now, idleSeconds);
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
    const macs = new Map(Object.entries(owners).map(([id, mac]) => [Number(id), parseMac(mac)]));
    const snapshots = await datapath.snapshot();
    const now = nowSeconds();
    return snapshots.map((shards, h) => {
      const stats = { saved: 0, skippedUnknownOwner: 0 };
      const room = shards.reduce((n, s) => n + s.length / SNAPSHOT_WORDS, 0);
      const state = encodeTrackerState((visit) => visitEntries(shards, visit), room, now, (id) => macs.get(id), stats);
      return { protocol: datapath.handlers[h]!.protocol, state, entries: stats.saved };
    });
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
