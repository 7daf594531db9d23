/**
 * The bulk pool's tasks (piscina: src/main/bulk-pool.ts runs them): work on a whole table that
 * belongs to no shard and would hold the main thread, which in an embedded node is the host
 * service's event loop, for tens of milliseconds to seconds. Buffers come in moved (the
 * actors' snapshots and listings) and go back moved (the states, the JSON): the main thread
 * only passes handles.
 */

import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { ProtocolHandler } from '../handlers/handler.js';
import { loadHandler, type HandlerSpec } from '../handlers/loader.js';
import { encodeSnapshots, type EncodedState } from '../handlers/tracker-state.js';
import { SourceBook } from '../shm/source-book.js';
import { conntrackListing, ipv6SourceNamer, type ConntrackInputs } from './conntrack-listing.js';
import { lowerBulkThread, nameOwnThread } from './thread-priority.js';

// A pool thread loads this module once: it names itself and steps below the main thread.
nameOwnThread('lnlb-bulk');
lowerBulkThread();

/** A value whose buffers piscina moves back instead of copying them. */
function moving<T>(value: T, buffers: ArrayBufferLike[]): T {
  const movable = {
    get [transferableSymbol](): ArrayBufferLike[] {
      return buffers;
    },
    get [valueSymbol](): T {
      return value;
    },
  };
  return move(movable as unknown as Parameters<typeof move>[0]) as unknown as T;
}

export interface EncodeStatesTask {
  /** Per handler, per actor: packed snapshot entries (Datapath#snapshot). */
  snapshots: Uint32Array[][];
  protocols: number[];
  owners: Record<number, string>;
  nowSeconds: number;
}

/** Every handler's state for a newcomer or a resync (a million flows: about 80 ms of work). */
export function encodeStates(task: EncodeStatesTask): EncodedState[] {
  const states = encodeSnapshots(task.snapshots, task.protocols, task.owners, task.nowSeconds);
  return moving(states, states.map((s) => s.state.buffer));
}

export interface ConntrackTask extends Omit<ConntrackInputs, 'handlers' | 'ipv6Source' | 'members'> {
  /** The handlers' modules, loaded here for their names and describeKey. */
  specs: HandlerSpec[];
  members: [string, { name: string; address: string }][];
  /** The interface's source book (IPv6 VIP), to name IPv6 sources. */
  sourceBook?: SharedArrayBuffer | undefined;
}

/** Handlers by module, loaded once per pool thread. */
const loaded = new Map<string, Promise<ProtocolHandler>>();

function handlerFor(spec: HandlerSpec): Promise<ProtocolHandler> {
  const key = `${spec.protocol} ${spec.module}`;
  let handler = loaded.get(key);
  if (handler === undefined) {
    handler = loadHandler(spec, { smokeTest: false });
    loaded.set(key, handler);
  }
  return handler;
}

/** `lnlbctl conntrack`'s answer as JSON text (UTF-8), ready for the admin socket. */
export async function conntrackJson(task: ConntrackTask): Promise<Uint8Array> {
  const handlers = await Promise.all(task.specs.map(handlerFor));
  const listing = conntrackListing({
    ...task,
    handlers,
    members: new Map(task.members),
    ...(task.sourceBook === undefined ? {} : { ipv6Source: ipv6SourceNamer(new SourceBook(task.sourceBook)) }),
  });
  const bytes = new TextEncoder().encode(JSON.stringify(listing));
  return moving(bytes, [bytes.buffer]);
}
