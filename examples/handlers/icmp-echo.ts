/**
 * An example lnlb protocol handler: ICMP echo ("ping") tracked per (source IPv4, echo
 * identifier), written as a user of the published package writes one. Load it with
 *
 *   lnlbd --handler icmp=./dist/examples/handlers/icmp-echo.js ...
 *
 * What it does. Every ping session (`ping` picks one identifier per run) is one tracked
 * thing: its first echo request is elected by the port rule, and every later request of the
 * same session goes to the node that answered the first, so the sequence numbers a client sees
 * come from one node. With the rule's affinity `none`, two `ping`s from one client are two
 * keys and are balanced on their own; with affinity source IP they end up on one node anyway.
 *
 * Everything that is not an unfragmented echo request (errors such as destination
 * unreachable, timestamp, echo replies to the VIP, and every fragment of a ping bigger than
 * the MTU) is keyed (source, 0) and left UNTRACKED: the rule's election decides each frame, and
 * nothing is recorded. A frame flag (ECHO_FLAG) tells the tracker which is which, so an echo
 * session whose identifier happens to be 0 is still tracked.
 *
 * Fragments: only the first fragment of a datagram has the ICMP header, so keying it by the
 * identifier would send it to one node and the other fragments (keyed (source, 0)) perhaps to
 * another, which could then reassemble nothing. So every fragment, the first one included, is
 * keyed (source, 0): all fragments of a big ping land on one node. The handler reads the IP
 * header's MF bit and fragment offset itself rather than trust `firstFragment` alone, which is
 * also true for the first fragment of a fragmented datagram. Big pings are therefore not kept
 * on their session's node; keep pings under the MTU if that matters.
 *
 * The tracker is a plain Map bounded by `capacity`, with idle expiry. It ignores the shared
 * memory the framework hands it, so no other thread can read its entries. That is fine: lnlb
 * reaches a tracker only through its methods, on the actor thread that owns the shard
 * (`lnlbctl conntrack` and the state sent to a newcomer both go through saveStatus). The
 * shipped handlers keep their tables in the SharedArrayBuffer all the same, because a Map
 * allocates as it grows and costs more per entry; for a few thousand ping sessions it does not
 * matter.
 */

import {
  HANDLER_API_VERSION,
  UNTRACKED,
  type ParsedFrame,
  type ProtocolHandler,
  type StatusVisitor,
  type Tracker,
  type TrackerOptions,
} from 'lnlb/handler';

/** IANA protocol number of ICMP. */
export const IPPROTO_ICMP = 1;
/** ICMP type of an echo request (RFC 792). */
export const ICMP_ECHO_REQUEST = 8;
/** Bytes of the ICMP echo header: type, code, checksum, identifier, sequence number. */
const ICMP_ECHO_HEADER = 8;
/** The IPv4 header's "more fragments" bit and fragment offset, in its 16-bit word at byte 6. */
const IP_MF = 0x2000;
const IP_OFFSET_MASK = 0x1fff;
/** Frame flag: the frame is an echo request and its key holds the echo identifier. */
export const ECHO_FLAG = 0x1;

/** One tracked ping session. Mutated in place: refreshing an entry allocates nothing. */
interface Session {
  owner: number;
  lastSeen: number;
}

/**
 * A 48-bit Map key from (source IPv4, identifier): exact as a JS number (below 2^53).
 * Identifiers are 16 bits, so keyHi never exceeds 0xffff for a key this handler made.
 */
function mapKey(keyLo: number, keyHi: number): number {
  return keyLo * 0x10000 + keyHi;
}

/** A Map-based tracker for one actor shard. Runs on that actor's thread only. */
export class EchoTracker implements Tracker {
  readonly #sessions = new Map<number, Session>();
  readonly #capacity: number;
  readonly #idle: number;
  /** Where the incremental expiry sweep stopped (Map iterators survive deletions). */
  #sweep: Iterator<[number, Session]> | undefined;
  #evictions = 0;
  #nonEchoFrames = 0;

  constructor(options: TrackerOptions) {
    this.#capacity = Math.max(1, options.capacity);
    this.#idle = options.idleTimeoutSeconds;
  }

  /** Hot path: no allocation. Times are u32 seconds; ages are signed 32-bit differences (the clock may wrap). */
  isRelated(keyLo: number, keyHi: number, frameFlags: number, nowSeconds: number): number {
    if ((frameFlags & ECHO_FLAG) === 0) {
      this.#nonEchoFrames++;
      return UNTRACKED; // never recorded: the election decides every such frame
    }
    const session = this.#sessions.get(mapKey(keyLo, keyHi));
    if (session === undefined) return UNTRACKED;
    if (((nowSeconds - session.lastSeen) | 0) > this.#idle) return UNTRACKED; // expired, not yet swept
    session.lastSeen = nowSeconds;
    return session.owner;
  }

  /** Every node records every assignment, so all nodes agree on who answers a session. */
  assigned(keyLo: number, keyHi: number, owner: number, frameFlags: number, nowSeconds: number): void {
    if ((frameFlags & ECHO_FLAG) === 0) return;
    this.#record(keyLo, keyHi, owner, nowSeconds);
  }

  nodeDied(owner: number): number {
    let dropped = 0;
    for (const [key, session] of this.#sessions) {
      if (session.owner === owner) {
        this.#sessions.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): void {
    this.#sessions.clear();
    this.#sweep = undefined;
  }

  /** Looks at no more than `budget` sessions, carrying on where the previous sweep stopped. */
  expire(nowSeconds: number, budget: number): number {
    let removed = 0;
    for (let looked = 0; looked < budget && this.#sessions.size > 0; looked++) {
      this.#sweep ??= this.#sessions.entries();
      const next = this.#sweep.next();
      if (next.done === true) {
        this.#sweep = undefined; // one full pass done; the next call starts over
        break;
      }
      const [key, session] = next.value;
      if (((nowSeconds - session.lastSeen) | 0) > this.#idle) {
        this.#sessions.delete(key);
        removed++;
      }
    }
    return removed;
  }

  saveStatus(visit: StatusVisitor): void {
    for (const [key, session] of this.#sessions) {
      visit(Math.floor(key / 0x10000), key % 0x10000, session.owner, session.lastSeen);
    }
  }

  /**
   * Called after clear(), once per saved entry. Throwing makes the framework roll this shard
   * back: a key this handler cannot have made means the state is not ours.
   */
  loadStatus(keyLo: number, keyHi: number, owner: number, lastSeen: number): void {
    if (keyHi > 0xffff) throw new RangeError(`icmp-echo: key (${keyLo}, ${keyHi}) has no 16-bit echo identifier`);
    this.#record(keyLo, keyHi, owner, lastSeen);
  }

  get size(): number {
    return this.#sessions.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  /** Summed over the actors into `lnlbctl status`. */
  counters(): Readonly<Record<string, number>> {
    return { nonEchoFrames: this.#nonEchoFrames };
  }

  #record(keyLo: number, keyHi: number, owner: number, lastSeen: number): void {
    const key = mapKey(keyLo, keyHi);
    const session = this.#sessions.get(key);
    if (session !== undefined) {
      session.owner = owner;
      session.lastSeen = lastSeen;
      return;
    }
    if (this.#sessions.size >= this.#capacity) this.#evictOldest();
    this.#sessions.set(key, { owner, lastSeen }); // one small object per new session
  }

  /**
   * The Map keeps insertion order, so its first entry is the session that started first
   * (refreshing does not move an entry): not exactly the stalest, but cheap and good enough.
   */
  #evictOldest(): void {
    const first = this.#sessions.keys().next();
    if (first.done === true) return;
    this.#sessions.delete(first.value);
    this.#evictions++;
  }
}

function formatIPv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

export const icmpEchoHandler: ProtocolHandler = {
  name: 'icmp-echo',
  apiVersion: HANDLER_API_VERSION,
  protocol: IPPROTO_ICMP,

  /**
   * Runs in the dispatcher thread, once per frame: must not allocate. The dispatcher parsed the
   * IPv4 header already (`l3`, `l4`, `src`); `l4` is valid only on a first fragment.
   */
  affinityKey(frame: ParsedFrame, out: Uint32Array): void {
    out[0] = frame.src;
    const b = frame.bytes;
    const l4 = frame.l4;
    // Flags and fragment offset (RFC 791): MF set or a non-zero offset means a fragment.
    const fragmented = (((b[frame.l3 + 6]! << 8) | b[frame.l3 + 7]!) & (IP_MF | IP_OFFSET_MASK)) !== 0;
    if (frame.firstFragment && !fragmented && l4 + ICMP_ECHO_HEADER <= frame.l2 + frame.length && b[l4] === ICMP_ECHO_REQUEST) {
      out[1] = (b[l4 + 4]! << 8) | b[l4 + 5]!; // the echo identifier
      out[2] = ECHO_FLAG;
      return;
    }
    out[1] = 0;
    out[2] = 0;
  },

  /**
   * The Map needs no shared memory, but the framework allocates a SharedArrayBuffer per shard
   * from this and expects a positive size: one word is enough.
   */
  trackerBytes(): number {
    return 8;
  },

  /** Runs in each actor thread, once per shard. */
  createTracker(options: TrackerOptions): Tracker {
    return new EchoTracker(options);
  },

  describeKey(keyLo: number, keyHi: number): string {
    return `${formatIPv4(keyLo)} echo id ${keyHi}`;
  },
};

export default icmpEchoHandler;
