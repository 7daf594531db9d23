/**
 * The TCP handler (protocol 6): one tracked entry per connection, so each connection stays on
 * the node that accepted it, whatever the port rule's affinity, until it closes or idles out.
 *
 * Key (ports.ts): keyLo = source IPv4, keyHi = source port << 16 | destination port.
 *
 * Frame flags (out[2]), from the TCP header's flags byte at l4 + 13:
 *   TCP_SYN       SYN set and ACK clear: a client opening a connection (a SYN+ACK is not one)
 *   TCP_FIN       FIN set
 *   TCP_RST       RST set
 *   TCP_FRAGMENT  no ports to read: an IP fragment (any, the first too), or a TCP header shorter than its
 *                 first 14 bytes (ports to flags). Key (source IP, 0); never tracked.
 *
 * Tracker, per frame (every node runs the same steps on the same frames, so their tables agree
 * without talking):
 *
 *   isRelated
 *     TCP_FRAGMENT                       → UNTRACKED (the rule's election decides it)
 *     not in the table, or expired       → UNTRACKED; the actor elects an owner with the port
 *                                          rule's election and calls `assigned`
 *     closing (FIN or RST seen) + SYN    → UNTRACKED: the client reuses the port for a new
 *                                          connection, elected afresh (counted `reopened`)
 *     found                              → its owner; a FIN or RST marks it closing (counted
 *                                          `closed`); a closing entry is refreshed only to its
 *                                          shortened life, anything else to the idle timeout
 *   assigned
 *     TCP_FRAGMENT                       → nothing recorded
 *     SYN                                → recorded: a new connection
 *     anything else                      → the TCP mid-stream decision, below; recorded too,
 *                                          and counted `midstreamAdopted`
 *     FIN or RST                         → the recorded entry starts closing
 *
 * The TCP mid-stream decision. Every node records every SYN, so a segment of a connection no
 * entry knows (or whose owner has left the view) means the entry expired, was evicted, or was
 * missed by a node that joined after the SYN and before the state transfer reached it. Such a
 * segment is decided by the election of the port rule in force (the current view): that is
 * the only answer every node reaches on its own. If the view has not changed since the SYN,
 * the election picks again the node that holds the socket and the connection goes on; if it
 * has, the elected node's kernel has no such socket and answers with a RST at once, so the
 * client learns the connection is gone instead of hanging until its own timeout (which is what
 * dropping the segment would do). Either way the decision is recorded, so the connection's
 * later segments stay where this one went.
 *
 * Closing: after a FIN or RST the connection has its last few segments to exchange (the other
 * FIN, the last ACK, retransmits of them), so its entry lives only `closingTimeoutSeconds` (10
 * by default) from its latest frame instead of the idle timeout. The table has one timeout for
 * every entry, so a closing entry is stamped lastSeen = now − (idle − closing): the one expiry
 * sweep removes it `closing` seconds after its latest frame, and no second timer exists. With
 * a closing timeout ≥ the idle timeout a closing entry simply lives the idle timeout.
 *
 * The idle timeout (the handler's flag, DEFAULT_TCP_IDLE_TIMEOUT_SECONDS by default) is longer
 * than Linux's default keepalive interval of 7200 s, so a quiet connection kept alive by
 * keepalives is refreshed before it can be forgotten.
 *
 * State transfer (saveStatus / loadStatus, as TableTracker): entries travel as (key, owner,
 * lastSeen); the closing mark does not. A closing entry keeps its shortened life (its lastSeen
 * is already moved back) but on the receiving node it is an ordinary entry: a SYN reusing its
 * port there goes to the old owner instead of being elected afresh, and a later frame refreshes
 * it to the full idle timeout. Both only until the sender's next state or the entry's expiry.
 *
 * Counters (`counters()`, plain numbers of this actor's tracker, not shared memory):
 * midstreamAdopted, closed (entries that started closing), reopened (SYNs on closing entries).
 */

import { IPPROTO_TCP } from '../net/ipv4.js';
import { TrackingTable } from '../shm/tracking-table.js';
import { TableTracker } from './default.js';
import { HANDLER_API_VERSION, UNTRACKED, type ParsedFrame, type ProtocolHandler, type Tracker, type TrackerOptions } from './handler.js';
import { describePortKey, portKeyOrigin, PORTS_UNREADABLE, writePortKey } from './ports.js';

/** Longer than Linux's default tcp_keepalive_time (7200 s), with a margin for late probes. */
export const DEFAULT_TCP_IDLE_TIMEOUT_SECONDS = 7440;
export const DEFAULT_TCP_CLOSING_TIMEOUT_SECONDS = 10;

/** Frame flags (out[2]). */
export const TCP_SYN = 1;
export const TCP_FIN = 2;
export const TCP_RST = 4;
export const TCP_FRAGMENT = PORTS_UNREADABLE;

/** Bytes of TCP header up to and including the flags byte (offset 13). */
const TCP_HEADER_TO_FLAGS = 14;
const TCP_FLAGS_OFFSET = 13;
/** Bits of the TCP header's flags byte (RFC 9293, 3.1). */
const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_RST = 0x04;
const TH_ACK = 0x10;

/** Entry flag (TrackingTable.flagsAt): a FIN or RST was seen; the entry lives the closing timeout. */
const ENTRY_CLOSING = 1;

export interface TcpHandlerOptions {
  /** Seconds a connection's entry lives after its FIN or RST, counted from its latest frame. */
  closingTimeoutSeconds?: number;
}

export interface TcpCounters {
  /** Non-SYN segments of unknown connections, decided by the rule's election and recorded. */
  midstreamAdopted: number;
  /** Entries that started closing (a FIN or RST). */
  closed: number;
  /** SYNs on closing entries: the port reused for a new connection, elected afresh. */
  reopened: number;
}

class TcpTracker extends TableTracker {
  /** How far back a closing entry's lastSeen is stamped: idle − closing (0 when closing ≥ idle). */
  private readonly closingStampBack: number;
  /** Returned by counters() as is: no object per call, plain increments on the hot path. */
  private readonly tally: TcpCounters = { midstreamAdopted: 0, closed: 0, reopened: 0 };

  constructor(options: TrackerOptions, closingTimeoutSeconds: number) {
    super(options);
    this.closingStampBack = Math.max(0, this.idle - closingTimeoutSeconds);
  }

  override isRelated(keyLo: number, keyHi: number, frameFlags: number, nowSeconds: number): number {
    if ((frameFlags & TCP_FRAGMENT) !== 0) return UNTRACKED;
    const slot = this.liveSlot(keyLo, keyHi, nowSeconds);
    if (slot < 0) return UNTRACKED;
    const table = this.table;
    if ((table.flagsAt(slot) & ENTRY_CLOSING) !== 0) {
      if ((frameFlags & TCP_SYN) !== 0) {
        this.tally.reopened++;
        return UNTRACKED;
      }
      table.touch(slot, (nowSeconds - this.closingStampBack) >>> 0);
    } else if ((frameFlags & (TCP_FIN | TCP_RST)) !== 0) {
      this.startClosing(slot, nowSeconds);
    } else {
      table.touch(slot, nowSeconds);
    }
    return table.ownerAt(slot);
  }

  override assigned(keyLo: number, keyHi: number, owner: number, frameFlags: number, nowSeconds: number): void {
    if ((frameFlags & TCP_FRAGMENT) !== 0) return;
    const slot = this.table.upsert(keyLo, keyHi, owner, nowSeconds);
    if ((frameFlags & TCP_SYN) === 0) this.tally.midstreamAdopted++;
    if ((frameFlags & (TCP_FIN | TCP_RST)) !== 0) this.startClosing(slot, nowSeconds);
  }

  counters(): Readonly<TcpCounters> {
    return this.tally;
  }

  private startClosing(slot: number, nowSeconds: number): void {
    this.table.setFlags(slot, ENTRY_CLOSING);
    this.table.touch(slot, (nowSeconds - this.closingStampBack) >>> 0);
    this.tally.closed++;
  }
}

/** A TCP handler with its own closing timeout; `tcpHandler` is the one with the default. */
export function createTcpHandler(options: TcpHandlerOptions = {}): ProtocolHandler {
  const closing = options.closingTimeoutSeconds ?? DEFAULT_TCP_CLOSING_TIMEOUT_SECONDS;
  if (!Number.isInteger(closing) || closing < 1 || closing > 0xffff_ffff) {
    throw new RangeError(`the TCP closing timeout must be a whole number of seconds ≥ 1, got ${closing}`);
  }
  return {
    name: 'tcp',
    apiVersion: HANDLER_API_VERSION,
    protocol: IPPROTO_TCP,
    affinityKey(frame: ParsedFrame, out: Uint32Array): void {
      if (!writePortKey(frame, TCP_HEADER_TO_FLAGS, out)) {
        out[2] = TCP_FRAGMENT;
        return;
      }
      const th = frame.bytes[frame.l4 + TCP_FLAGS_OFFSET]!;
      // TH_FIN is bit 0 and TCP_FIN bit 1; TH_RST and TCP_RST are the same bit.
      out[2] = ((th & (TH_SYN | TH_ACK)) === TH_SYN ? TCP_SYN : 0) | ((th & TH_FIN) << 1) | (th & TH_RST);
    },
    trackerBytes(capacity: number): number {
      return TrackingTable.byteLength(capacity);
    },
    createTracker(trackerOptions: TrackerOptions): Tracker {
      return new TcpTracker(trackerOptions, closing);
    },
    describeKey: describePortKey,
    keyOrigin: portKeyOrigin,
  };
}

export const tcpHandler: ProtocolHandler = createTcpHandler();
