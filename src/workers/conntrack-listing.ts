/**
 * `lnlbctl conntrack`'s listing, made of the actors' shard listings (pure): each flow named
 * by its handler (describeKey) and its owner by MAC, name and address. It runs in the bulk
 * pool (bulk-tasks.ts, main/bulk-pool.ts), off the main thread: a million flows take seconds
 * to name, sort and serialise. A drain's count of this node's recent flows runs in each actor,
 * on its own shard (actor-host.ts).
 */

import type { ProtocolHandler, StatusVisitor } from '../handlers/handler.js';
import { SNAPSHOT_WORDS } from '../handlers/tracker-state.js';
import { formatIPv4 } from '../net/ipv4.js';
import { formatIPv6, isIPv6Identity } from '../net/ipv6.js';
import type { SourceBook } from '../shm/source-book.js';
import type { ShardListing } from './messages.js';

export interface ConntrackJson {
  interface: string;
  /** Tracked flows in all shards (the listing may be cut at the requested limit). */
  total: number;
  /**
   * idleSeconds: since the entry was last refreshed as its table keeps it (a closing TCP
   * connection's is moved back to shorten its life); expiresInSeconds: when it is forgotten
   * unless a frame refreshes it.
   */
  entries: {
    handler: string;
    source: string;
    key?: number;
    flow: string;
    /** The owner's MAC, its announced name and address (absent if none), and whether it is this node. */
    node: string;
    nodeName?: string;
    nodeAddress?: string;
    self: boolean;
    idleSeconds: number;
    expiresInSeconds: number;
  }[];
}

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

/** The owner ids that stand for `self` (a MAC) in `owners` (id → MAC). Pure. */
export function ownerIdsOf(owners: Readonly<Record<number, string>>, self: string): number[] {
  return Object.entries(owners)
    .filter(([, mac]) => mac === self)
    .map(([id]) => Number(id));
}

/**
 * Flows owned by one of `ids` that were seen within the last `idleSeconds`, of the entries
 * `forEachEntry` hands out (a tracker's saveStatus: each actor counts its own shard). Pure.
 */
export function activeOwnedFlows(forEachEntry: (visit: StatusVisitor) => void, ids: readonly number[], now: number, idleSeconds: number): number {
  const owned = new Set(ids);
  let active = 0;
  forEachEntry((_keyLo, _keyHi, owner, lastSeen) => {
    // Whole seconds on both sides: a flow seen 0.1 s ago may read as 1 s old, so "quiet
    // for idleSeconds" means more than idleSeconds whole seconds since its last frame.
    if (owned.has(owner) && ((now - lastSeen) | 0) <= idleSeconds) active++;
  });
  return active;
}
