import type { ElectionName } from '../cluster/election.js';

/**
 * Every message the main thread and the datapath threads send each other (piscina's
 * src/types.ts habit): control only, never per frame. Frames move through shared rings.
 */

/** What a dispatcher thread is started with (structured-clone-able). */
export interface DispatcherData {
  role: 'dispatcher';
  /** AF_PACKET socket with a TPACKET_V3 ring, opened by the main thread. */
  dataFd: number;
  vnetHdr: boolean;
  actorRings: SharedArrayBuffer[];
  counters: SharedArrayBuffer;
  /** Int32Array[0] != 0: stop. */
  control: SharedArrayBuffer;
  vip: number;
  clusterMac: Uint8Array;
  ownMac: Uint8Array;
}

/** What an actor thread is started with. */
export interface ActorData {
  role: 'actor';
  index: number;
  tapFd: number;
  ring: SharedArrayBuffer;
  tracker: SharedArrayBuffer;
  trackerCapacity: number;
  idleTimeoutSeconds: number;
  election: ElectionName;
  view: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

export type MainToActor = { type: 'node-died'; id: number } | { type: 'reset' } | { type: 'stop' };

export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'stopped' }
  | { type: 'link-down' }
  | { type: 'purged'; id: number; entries: number }
  | { type: 'error'; message: string; code?: string };
