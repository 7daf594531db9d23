/**
 * Bucket handovers (--election bucket): when buckets move, the flows tracked in them move with
 * them, so that a flow keeps its node. Pure: tables adopted, digests heard and replies in,
 * plans and actions out; time passed in.
 *
 * Each node tracks only the flows it owns (and those handed to it), so when a bucket moves
 * from A to B, B does not know A's flows in it. Without them, B would elect A's ongoing flows
 * to itself and both would take their frames. So:
 *
 * - **Every member sends what moves to others.** On each table the members agreed on (`adopt`),
 *   a node compares it with the last table it handed over for: every bucket whose owner
 *   changed (and is not this node now) is to be scanned, and the flows this node tracks in it
 *   (its own, still draining, and those handed to it earlier) go to the bucket's new owner,
 *   one message per new owner, kept until acknowledged and resent until then (`tick`). Once
 *   every message is acknowledged (or there was nothing to send), the node's heartbeats
 *   announce that table's digest as handed over (`handedDigest`).
 * - **The new owner holds what it gained until every member has handed over.** The buckets a
 *   node gains are `pending`: the actors hold their untracked flows, as during a view change,
 *   until every live member (draining ones included: they still own flows) announces the new
 *   table as handed over. Then the held frames are decided: the flows handed over go to their
 *   owners, the others are new and this node's. A member that never answers releases them
 *   after `pendingTimeoutMs` (counted: its flows in those buckets may then be taken twice).
 * - **A death needs no transfer**: a dead node is no longer a member to wait for, and its
 *   flows are re-elected (their owner has left the view). The buckets gained from a member
 *   that died or left are not held at all, so a failover is as fast as the view change. The
 *   price, in one rare case: a third member still draining such a bucket (it owned it before
 *   the dead one) hands its flows in it over as usual, and until they arrive the new owner
 *   may take their new frames too.
 *
 * Each new plan starts from the last table fully handed over, so a change that arrives before
 * the previous handover is done replaces it with one that covers both: a flow is sent to
 * wherever its bucket is now, not where it was going.
 */

import { BUCKET_COUNT, macKey, type BucketTable } from './buckets.js';
import { NO_TABLE_DIGEST } from './bucket-ledger.js';

export const BUCKET_MASK_WORDS = BUCKET_COUNT / 32;
/** An owner index no table has: the bucket's owner is gone. */
const NO_OWNER_INDEX = 0xff;
/** HandoverPlan.targetOf for a bucket whose flows stay. */
export const NO_TARGET = 0xff;

export interface BucketHandoverOptions {
  selfMac: ArrayLike<number>;
  /** How long a handover message waits for its acknowledgement before it is sent again. */
  resendMs: number;
  /** Resends before a handover message is given up (the receiver's pending buckets time out). */
  maxResends: number;
  /** How long gained buckets wait for every member's handover before their flows are released. */
  pendingTimeoutMs: number;
}

/** What to scan and where it goes: this node's entries in bucket b go to targets[targetOf[b]]. */
export interface HandoverPlan {
  id: number;
  digest: number;
  /** Per bucket: an index into `targets`, NO_TARGET for a bucket whose flows stay. */
  targetOf: Uint8Array;
  /** The new owners, 6 bytes each. */
  targets: Uint8Array[];
  /** Buckets to scan. */
  moved: number;
}

export type HandoverAction =
  | { kind: 'resend'; id: number; to: Uint8Array; resends: number }
  | { kind: 'abandoned'; id: number; to: Uint8Array }
  | { kind: 'handed'; digest: number; ms: number }
  | { kind: 'released'; buckets: number; ms: number }
  | { kind: 'release-timeout'; buckets: number; ms: number; silent: number[] };

interface Send {
  mac: Uint8Array;
  transferId: number | undefined;
  sentAt: number;
  resends: number;
}

interface Plan {
  id: number;
  digest: number;
  table: BucketTable;
  startedAt: number;
  saved: boolean;
  sends: Map<number, Send>;
}

export interface HandoverCounters {
  plans: number;
  messagesSent: number;
  messagesResent: number;
  messagesAcknowledged: number;
  messagesAbandoned: number;
  bucketsGained: number;
  releases: number;
  releaseTimeouts: number;
}

function copyTable(t: BucketTable): BucketTable {
  return { owners: t.owners.slice(), macs: t.macs.slice(0, t.count * 6), count: t.count };
}

/** The MAC key of bucket b's owner, -1 for none. */
export function ownerKeyOf(table: BucketTable, b: number): number {
  const o = table.owners[b]!;
  return o < table.count ? macKey(table.macs, o) : -1;
}

/** Sets in `mask` the buckets `table` gives to the member `key`. */
export function ownedMask(table: BucketTable, key: number, mask: Uint32Array): Uint32Array {
  mask.fill(0);
  for (let b = 0; b < BUCKET_COUNT; b++) if (ownerKeyOf(table, b) === key) mask[b >>> 5] = (mask[b >>> 5]! | (1 << (b & 31))) >>> 0;
  return mask;
}

export function maskCount(mask: Uint32Array): number {
  let n = 0;
  for (let k = 0; k < mask.length; k++) {
    let x = mask[k]!;
    while (x !== 0) {
      x &= x - 1;
      n++;
    }
  }
  return n;
}

export class BucketHandovers {
  readonly #self: number;
  readonly #o: BucketHandoverOptions;
  /** The last table this node handed everything over for. */
  #handed: BucketTable | undefined;
  #handedDigest = NO_TABLE_DIGEST;
  #plan: Plan | undefined;
  #nextId = 1;
  #adopted: BucketTable | undefined;
  #adoptedDigest = NO_TABLE_DIGEST;
  /** Buckets gained whose handovers are not all in. */
  readonly pending = new Uint32Array(BUCKET_MASK_WORDS);
  #pendingSince = 0;
  /** The live members other than this node, by MAC key, and the handed digest each announced. */
  readonly #members = new Set<number>();
  readonly #handedBy = new Map<number, number>();
  /** The buckets each member announced it drains. */
  readonly #drainingBy = new Map<number, Uint32Array>();
  readonly #actions: HandoverAction[] = [];
  readonly #owned = new Uint32Array(BUCKET_MASK_WORDS);
  readonly counters: HandoverCounters = { plans: 0, messagesSent: 0, messagesResent: 0, messagesAcknowledged: 0, messagesAbandoned: 0, bucketsGained: 0, releases: 0, releaseTimeouts: 0 };

  constructor(options: BucketHandoverOptions) {
    this.#self = macKey(options.selfMac, 0);
    this.#o = options;
  }

  /** This node forgot its flows (it left, or was declared dead and rejoins): it starts again as a newcomer. */
  reset(): void {
    this.#handed = undefined;
    this.#handedDigest = NO_TABLE_DIGEST;
    this.#plan = undefined;
    this.#adopted = undefined;
    this.#adoptedDigest = NO_TABLE_DIGEST;
    this.pending.fill(0);
    this.#handedBy.clear();
    this.#drainingBy.clear();
  }

  /** What this node's heartbeats announce: the last table it has handed everything over for. */
  get handedDigest(): number {
    return this.#handedDigest;
  }

  /** Buckets held for their handovers now. */
  get pendingCount(): number {
    return maskCount(this.pending);
  }

  /** A handover is being scanned or waits for acknowledgements. */
  get handing(): boolean {
    return this.#plan !== undefined;
  }

  /**
   * The members agreed on `table`: the buckets this node gains become pending, and the flows it
   * tracks in buckets that moved elsewhere are to be handed over (the plan to scan; undefined:
   * nothing moved away from what this node last handed over for, and it announces `digest`).
   */
  adopt(table: BucketTable, digest: number, now: number): HandoverPlan | undefined {
    if (digest === this.#adoptedDigest && this.#adopted !== undefined) return undefined;
    // Receiver: what this node gains waits for the others' handovers; what it lost waits for nothing.
    const owned = ownedMask(table, this.#self, this.#owned);
    const before = this.#adopted;
    let gained = 0;
    for (let b = 0; b < BUCKET_COUNT; b++) {
      const bit = 1 << (b & 31);
      const w = b >>> 5;
      if ((owned[w]! & bit) === 0) {
        this.pending[w] = (this.pending[w]! & ~bit) >>> 0;
      } else if (before === undefined || ownerKeyOf(before, b) !== this.#self) {
        // From a member that died or left: its flows are re-elected, nothing to wait for (a
        // failover stays as fast as the view change), unless a live member says it still
        // drains the bucket: its flows there come with its handover.
        if (before !== undefined && !this.#members.has(ownerKeyOf(before, b)) && !this.#drainedByMember(w, bit)) continue;
        this.pending[w] = (this.pending[w]! | bit) >>> 0;
        gained++;
      }
    }
    if (gained > 0) {
      this.counters.bucketsGained += gained;
      this.#pendingSince = now;
    }
    this.#adopted = copyTable(table);
    this.#adoptedDigest = digest;

    // Sender: from the last table handed over (a newcomer has tracked nothing to hand).
    const from = this.#handed;
    this.#plan = undefined;
    if (from === undefined) {
      this.#handedDone(table, digest, now, now);
      return undefined;
    }
    const plan = this.#planFrom(from, table, digest, now);
    if (plan === undefined) this.#handedDone(table, digest, now, now);
    return plan;
  }

  /**
   * `lnlbctl resync` under --election bucket: every flow this node tracks in a bucket it does
   * not own goes to that bucket's owner again (a handover that timed out, a table that lost an
   * entry). Undefined before the node has a table, or when it owns every bucket.
   */
  handAll(now: number): HandoverPlan | undefined {
    const table = this.#adopted;
    if (table === undefined) return undefined;
    return this.#planFrom(undefined, table, this.#adoptedDigest, now);
  }

  /** The plan moving `table`'s buckets from `from` (undefined: from nowhere, every bucket not this node's). */
  #planFrom(from: BucketTable | undefined, table: BucketTable, digest: number, now: number): HandoverPlan | undefined {
    const targetOf = new Uint8Array(BUCKET_COUNT).fill(NO_TARGET);
    const targets: Uint8Array[] = [];
    const index = new Map<number, number>();
    let moved = 0;
    for (let b = 0; b < BUCKET_COUNT; b++) {
      const to = ownerKeyOf(table, b);
      if (to < 0 || to === this.#self || (from !== undefined && to === ownerKeyOf(from, b))) continue;
      let i = index.get(to);
      if (i === undefined) {
        i = targets.length;
        index.set(to, i);
        const o = table.owners[b]!;
        targets.push(table.macs.slice(o * 6, o * 6 + 6));
      }
      targetOf[b] = i;
      moved++;
    }
    if (moved === 0) return undefined;
    const id = this.#nextId++;
    this.#plan = { id, digest, table: copyTable(table), startedAt: now, saved: false, sends: new Map() };
    this.counters.plans++;
    return { id, digest, targetOf, targets, moved };
  }

  /**
   * Plan `id` was scanned: a message goes to each of `to` (the new owners with flows to take).
   * False when the plan was replaced meanwhile (nothing to send).
   */
  scanned(id: number, to: readonly Uint8Array[], now: number): boolean {
    const plan = this.#plan;
    if (plan === undefined || plan.id !== id) return false;
    plan.saved = true;
    for (const mac of to) {
      const key = macKey(mac, 0);
      if (this.#members.has(key)) plan.sends.set(key, { mac: mac.slice(0, 6), transferId: undefined, sentAt: now, resends: 0 });
    }
    this.#maybeHanded(now);
    return true;
  }

  /** Plan `id`'s message to `to` went out (again) as transfer `transferId`. */
  sent(id: number, to: Uint8Array, transferId: number, now: number): void {
    const send = this.#plan?.id === id ? this.#plan.sends.get(macKey(to, 0)) : undefined;
    if (send === undefined) return;
    send.transferId = transferId;
    send.sentAt = now;
    this.counters.messagesSent++;
  }

  /** An acknowledgement of `transferId` from `from`; true when it was a handover's. */
  acknowledged(from: ArrayLike<number>, transferId: number, now: number): boolean {
    const plan = this.#plan;
    const key = macKey(from, 0);
    const send = plan?.sends.get(key);
    if (plan === undefined || send === undefined || send.transferId !== transferId) return false;
    plan.sends.delete(key);
    this.counters.messagesAcknowledged++;
    this.#maybeHanded(now);
    return true;
  }

  /** The live members now (this node may be among them): the others are waited for, a gone one is not. */
  membersChanged(macs: Iterable<ArrayLike<number>>, now: number): void {
    this.#members.clear();
    for (const mac of macs) {
      const key = macKey(mac, 0);
      if (key !== this.#self) this.#members.add(key);
    }
    for (const key of [...this.#handedBy.keys()]) if (!this.#members.has(key)) this.#handedBy.delete(key);
    for (const key of [...this.#drainingBy.keys()]) if (!this.#members.has(key)) this.#drainingBy.delete(key);
    const plan = this.#plan;
    if (plan !== undefined) for (const key of [...plan.sends.keys()]) if (!this.#members.has(key)) plan.sends.delete(key);
    // A member gone owns nothing any more, in the last table handed over too: if it comes back
    // (same MAC, new incarnation) before this node hands over again, the buckets returning to
    // it count as moved, and the flows others took meanwhile go to it.
    const handed = this.#handed;
    if (handed !== undefined) {
      for (let b = 0; b < BUCKET_COUNT; b++) {
        const key = ownerKeyOf(handed, b);
        if (key >= 0 && key !== this.#self && !this.#members.has(key)) handed.owners[b] = NO_OWNER_INDEX;
      }
    }
    this.#maybeHanded(now);
  }

  /** A member's heartbeat announced the buckets it drains (undefined: none). */
  heardDraining(mac: ArrayLike<number>, mask: Uint32Array | undefined): void {
    const key = macKey(mac, 0);
    if (!this.#members.has(key)) return;
    if (mask === undefined) {
      this.#drainingBy.delete(key);
      return;
    }
    let copy = this.#drainingBy.get(key);
    if (copy === undefined) this.#drainingBy.set(key, (copy = new Uint32Array(BUCKET_MASK_WORDS)));
    copy.set(mask);
  }

  #drainedByMember(word: number, bit: number): boolean {
    for (const [key, mask] of this.#drainingBy) if (this.#members.has(key) && (mask[word]! & bit) !== 0) return true;
    return false;
  }

  /** A member's heartbeat announced the last table it handed over for. */
  heardHanded(mac: ArrayLike<number>, digest: number): void {
    const key = macKey(mac, 0);
    if (this.#members.has(key)) this.#handedBy.set(key, digest >>> 0);
  }

  /** Resends, give-ups, releases; call on every heartbeat and after `heardHanded`. */
  tick(now: number): HandoverAction[] {
    const plan = this.#plan;
    if (plan !== undefined) {
      for (const [key, send] of [...plan.sends]) {
        if (send.transferId === undefined || now - send.sentAt < this.#o.resendMs) continue;
        if (send.resends >= this.#o.maxResends) {
          plan.sends.delete(key);
          this.counters.messagesAbandoned++;
          this.#actions.push({ kind: 'abandoned', id: plan.id, to: send.mac });
          continue;
        }
        send.resends++;
        send.sentAt = now;
        this.counters.messagesResent++;
        this.#actions.push({ kind: 'resend', id: plan.id, to: send.mac, resends: send.resends });
      }
      this.#maybeHanded(now);
    }
    this.#checkPending(now);
    return this.#actions.splice(0);
  }

  /** When tick next has something to do (Infinity: nothing waits). */
  nextDeadline(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const send of this.#plan?.sends.values() ?? []) if (send.transferId !== undefined) next = Math.min(next, send.sentAt + this.#o.resendMs);
    if (this.pendingCount > 0) next = Math.min(next, this.#pendingSince + this.#o.pendingTimeoutMs);
    return next;
  }

  /** The members that have not announced the adopted table as handed over (MAC keys). */
  silentMembers(): number[] {
    const out: number[] = [];
    for (const key of this.#members) if (this.#handedBy.get(key) !== this.#adoptedDigest) out.push(key);
    return out;
  }

  #checkPending(now: number): void {
    const count = this.pendingCount;
    if (count === 0) return;
    const silent = this.silentMembers();
    if (silent.length === 0) {
      this.pending.fill(0);
      this.counters.releases++;
      this.#actions.push({ kind: 'released', buckets: count, ms: now - this.#pendingSince });
    } else if (now - this.#pendingSince >= this.#o.pendingTimeoutMs) {
      this.pending.fill(0);
      this.counters.releaseTimeouts++;
      this.#actions.push({ kind: 'release-timeout', buckets: count, ms: now - this.#pendingSince, silent });
    }
  }

  #maybeHanded(now: number): void {
    const plan = this.#plan;
    if (plan === undefined || !plan.saved || plan.sends.size > 0) return;
    this.#plan = undefined;
    this.#handedDone(plan.table, plan.digest, plan.startedAt, now);
  }

  #handedDone(table: BucketTable, digest: number, startedAt: number, now: number): void {
    this.#handed = copyTable(table);
    this.#handedDigest = digest;
    this.#actions.push({ kind: 'handed', digest, ms: now - startedAt });
  }
}
