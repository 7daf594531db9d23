/**
 * Datapath counters in shared memory: one row of Float64 per thread, written only by that
 * thread (no atomics needed: one writer, and an aligned 8-byte store cannot tear on the
 * platforms Node runs lnlb on), read by the main thread for status and metrics.
 *
 *   SharedArrayBuffer: [ row 0: dispatcher | row 1: actor 0 | row 2: actor 1 | ... ]
 *   row: COUNTER_SLOTS × Float64
 */

export const COUNTER_SLOTS = 32;

/** Dispatcher row. */
export const DispatcherCounter = {
  framesSeen: 0,
  bytesSeen: 1,
  arpRequests: 2,
  arpReplies: 3,
  arpReplyFailed: 4,
  /** To the cluster MAC but neither IPv4 nor IPv6 (or a family the interface has no VIP of). */
  dropNotIP: 5,
  dropMalformed: 6,
  dropNotVip: 7,
  dropNotClusterMac: 8,
  dropRingFull: 9,
  dropTruncated: 10,
  kernelDrops: 11,
  linkDownEvents: 12,
  /** The port rule of the frame's destination port is `disabled`. */
  dropDisabledRule: 13,
  /** A handler's affinityKey threw on the frame. */
  dropHandlerError: 14,
  /** Progress for the watchdog (watchdog.ts): one per poll. */
  beat: 15,
  /** handlerCall() while in handler code, else 0 (watchdog.ts). */
  inHandler: 16,
  /** The data socket's kernel filter (dispatcher-filter.ts): programs attached since the start. */
  kernelFilterSwaps: 17,
  /** Programs the kernel refused (the plain filter went on instead). */
  kernelFilterFailures: 18,
  /** Gauge: buckets the attached program passes (1024: every frame, the plain filter). */
  kernelFilterBuckets: 19,
  /** Gauge: FilterWhy, why the attached program is what it is. */
  kernelFilterWhy: 20,
  /** IPv6 Neighbour Solicitations read (for any address), and advertisements of the VIP sent. */
  ndpSolicitations: 21,
  ndpAdvertisements: 22,
  /** IPv6 frames for the VIP (of framesSeen). */
  framesIPv6: 23,
  /** Frames of another VLAN than the interface's (--vlan; untagged counts as VLAN 0). */
  dropOtherVlan: 24,
  /** --vlan: ARP replies and neighbour advertisements to the cluster MAC passed to the host (its own resolutions through the cluster interface). */
  neighbourToHost: 25,
  /** --vlan: frames the host sent through the cluster interface, forwarded tagged (egress.ts), and those the wire refused. */
  egressFrames: 26,
  egressDrops: 27,
  /** HEARTBEATs announcing a weight (FLAG_WAKE) read in the data stream: each one holds the actors' new flows until the control plane has read it too. */
  announcementsSeen: 28,
} as const;

/** Actor rows. */
export const ActorCounter = {
  framesIn: 0,
  accepted: 1,
  dropNotConverged: 2,
  dropOtherNode: 3,
  dropTapWrite: 4,
  elected: 5,
  trackedEntries: 6,
  evictions: 7,
  expired: 8,
  purgedByDeath: 9,
  held: 10,
  dropHoldFull: 11,
  dropStale: 12,
  /** A tracker method threw on the frame. */
  dropHandlerError: 13,
  /** The handler said DROP_FRAME. */
  dropByHandler: 14,
  /** The rule's election had nobody (a disabled rule reached the actor, or no member). */
  dropNoOwner: 15,
  /** Progress for the watchdog (watchdog.ts): one per batch, at least one a second. */
  beat: 16,
  /** handlerCall() while in handler code, else 0 (watchdog.ts). */
  inHandler: 17,
  /** Wall-clock ms (epoch, sub-ms) when this actor last took a view with fewer members than the one before (a death or a leave): a failover's timeline. */
  shrinkAppliedAt: 18,
  /** Wall-clock ms of the first new flow this actor took after that view (0: none yet). */
  firstTakenAfterShrinkAt: 19,
  /** New flows held because a weight was announced in the data stream before them and the control plane had not read it yet. */
  heldForAnnouncement: 20,
} as const;

export class CounterBlock {
  readonly rows: number;
  readonly #values: Float64Array;

  static allocate(rows: number): SharedArrayBuffer {
    return new SharedArrayBuffer(rows * COUNTER_SLOTS * Float64Array.BYTES_PER_ELEMENT);
  }

  constructor(memory: SharedArrayBuffer) {
    this.#values = new Float64Array(memory);
    this.rows = this.#values.length / COUNTER_SLOTS;
  }

  /** The writable row of one thread: index with a DispatcherCounter or ActorCounter value. */
  row(index: number): Float64Array {
    return this.#values.subarray(index * COUNTER_SLOTS, (index + 1) * COUNTER_SLOTS);
  }

  /** Sum of one counter over rows [from, to). */
  sum(counter: number, from: number, to: number): number {
    let total = 0;
    for (let r = from; r < to; r++) total += this.#values[r * COUNTER_SLOTS + counter]!;
    return total;
  }
}
