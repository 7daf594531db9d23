/**
 * The newcomer's tracking-state transfer, made reliable (LNLB sent it once: one lost fragment
 * and the newcomer served without it, so two nodes could claim one existing client). Pure:
 * what arrived and the time come in, decisions go out through `drainActions()`; the control
 * plane does the I/O (src/workers/control-plane.ts), the wire format is
 * src/net/state-transfer-message.ts.
 *
 * Receiver (the newcomer), one machine per join:
 *
 *   IDLE ──begin()──► LISTENING ──need()──► WAITING ──every message in──► COMPLETE
 *                        │                    │ └──no joined member left──► COMPLETE (none needed)
 *                        └──every message in (a push before the first round)──► COMPLETE
 *
 *   LISTENING  a push from the sender is taken, nothing is asked: the first round has not said
 *              yet whether there is a state to wait for (nodes starting together have none).
 *   WAITING    the first round waits for the state. After `retryMs` without a new fragment the
 *              newcomer asks its sender for what it lacks (a NACK; with nothing at all, a
 *              request), the interval doubling while unanswered up to `maxRetryMs`.
 *   COMPLETE   every message of the transfer arrived: ACK sent (or no state was needed).
 *
 *   The sender is the first member in table order that has joined (FLAG_JOINED: it serves),
 *   as the first member pushes it. One that dies (silent for `deadAfterMs`: no frame, no
 *   fragment), leaves or stops serving is replaced by the next such member, and the newcomer
 *   says so; one that answers `maxRequests` requests in a row with nothing is passed over the
 *   same way, and when every member has been, they are asked again in turn: the newcomer never
 *   serves an existing client without the state while a member that could send it lives. (It
 *   costs no client: its first round announced the draining weight, so no new client is
 *   elected to it meanwhile, and existing ones stay with their owners.) With no joined member
 *   left there is nothing to wait for.
 *
 * Sender (every member, for each newcomer it sends to): a transfer is kept, fragments and all,
 * until acknowledged (STATE_ACK, or the newcomer says it serves), its newcomer is gone, or
 * `idleMs` pass without a word from it; a NACK resends what it lists. Bounded: `maxTransfers`
 * at once, and at most `resendFactor` × the transfer's fragments resent (+ `resendSlack`).
 */

/** A member that may send the state: it has joined and serves. In table order. */
export interface SenderCandidate {
  mac: string;
  /** Its last authenticated frame. */
  lastHeardAt: number;
}

export const ReceiverPhase = { IDLE: 'IDLE', LISTENING: 'LISTENING', WAITING: 'WAITING', COMPLETE: 'COMPLETE' } as const;
export type ReceiverPhase = (typeof ReceiverPhase)[keyof typeof ReceiverPhase];

/** Why the newcomer takes the state from another member. */
export type SenderChange = 'died' | 'left' | 'unresponsive';

export type ReceiverAction =
  /** Ask `to` for what is missing: transferId 0 = nothing known (send it all); `incomplete`: the transfer's messages not in yet. */
  | { kind: 'ask'; to: string; transferId: number; incomplete: number[]; attempt: number }
  | { kind: 'ack'; to: string; transferId: number }
  /** Drop what is being reassembled from `from` (and messages of its transfer held): another sender replaces it. */
  | { kind: 'forget'; from: string }
  /** Every message of `transferId` from `from` is in: hand them on, in order. */
  | { kind: 'complete'; from: string; transferId: number; ms: number; requests: number }
  /** Nothing to wait for: no member that has joined is left to send a state. */
  | { kind: 'none-needed'; ms: number }
  | { kind: 'sender-changed'; from: string; to: string | undefined; reason: SenderChange; silentMs: number; received: number }
  /** Every member that could send was passed over as unresponsive: asking them again, from the first. */
  | { kind: 'still-waiting'; waitedMs: number; senders: number };

export interface ReceiverOptions {
  /** Silence before the first request, and the base of its doubling. */
  retryMs: number;
  /** The longest interval between two requests. */
  maxRetryMs: number;
  /** Requests in a row answered by nothing before the sender is passed over. */
  maxRequests: number;
  /** A sender silent this long died (the membership's own rule). */
  deadAfterMs: number;
}

/** The receiver's options for a cluster's timers: requests every few ms on a LAN, capped well under the death timeout. */
export function receiverOptions(deadAfterMs: number): ReceiverOptions {
  // A resend comes back within a millisecond or two on a LAN; a sender saving a million flows
  // takes a few hundred: the doubling covers that before it is passed over.
  const retryMs = Math.max(10, Math.min(50, Math.round(deadAfterMs / 32)));
  return { retryMs, maxRetryMs: Math.max(retryMs, Math.round(deadAfterMs / 4)), maxRequests: 8, deadAfterMs };
}

export interface ReceiverCounters {
  /** Requests and NACKs sent. */
  requests: number;
  /** Transfers completed. */
  completed: number;
  /** Senders passed over because they died, left or stopped serving. */
  sendersDied: number;
  /** Senders passed over because they did not answer. */
  sendersUnresponsive: number;
  /** Joins that found no member left to send the state. */
  noneNeeded: number;
}

interface IncomingTransfer {
  transferId: number;
  count: number;
  done: boolean[];
  remaining: number;
}

/** ids are u32 and grow per sender from a random start: `a` is after `b` on the circle. */
function isAfter(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x8000_0000;
}

const NO_RECEIVER_ACTIONS: readonly ReceiverAction[] = Object.freeze([]);

export class StateReceiver {
  readonly #o: ReceiverOptions;
  #phase: ReceiverPhase = ReceiverPhase.IDLE;
  #actions: ReceiverAction[] = [];
  #sender: string | undefined;
  /** Senders passed over during this join, and why. */
  readonly #passedOver = new Map<string, SenderChange>();
  #transfer: IncomingTransfer | undefined;
  /** Fragments stored from the current sender (for the log). */
  #received = 0;
  #lastProgressAt = Number.NEGATIVE_INFINITY;
  #unanswered = 0;
  #nextAskAt = Number.POSITIVE_INFINITY;
  #beganAt = 0;
  #requests = 0;
  #lastTickAt = Number.NaN;
  /** The sender the membership declared dead, and its silence then: gone from the candidates, it died rather than left. */
  #senderDied: { mac: string; silentMs: number } | undefined;
  readonly counters: ReceiverCounters = { requests: 0, completed: 0, sendersDied: 0, sendersUnresponsive: 0, noneNeeded: 0 };

  constructor(options: ReceiverOptions) {
    this.#o = options;
  }

  get phase(): ReceiverPhase {
    return this.#phase;
  }

  /** The member the state is taken from now (undefined: none chosen, or not a newcomer). */
  get sender(): string | undefined {
    return this.#sender;
  }

  drainActions(): readonly ReceiverAction[] {
    const out = this.#actions;
    if (out.length === 0) return NO_RECEIVER_ACTIONS; // the usual answer: nothing allocated
    this.#actions = [];
    return out;
  }

  /** Listening for or waiting for a transfer: `tick` and `nextDeadline` have something to do. */
  get following(): boolean {
    return this.#phase === ReceiverPhase.LISTENING || this.#phase === ReceiverPhase.WAITING;
  }

  /** The one entry function: every phase change goes through it. */
  #enter(phase: ReceiverPhase, now: number): void {
    this.#phase = phase;
    switch (phase) {
      case ReceiverPhase.IDLE:
        this.#reset();
        break;
      case ReceiverPhase.LISTENING:
        this.#reset();
        this.#beganAt = now;
        this.#lastTickAt = now;
        break;
      case ReceiverPhase.WAITING:
        // The push from the first member is on its way (or its tables are being saved): ask only after a quiet spell.
        this.#unanswered = 0;
        this.#nextAskAt = Math.max(now, this.#lastProgressAt) + this.#o.retryMs;
        break;
      case ReceiverPhase.COMPLETE:
        this.#nextAskAt = Number.POSITIVE_INFINITY;
        break;
    }
  }

  #reset(): void {
    this.#sender = undefined;
    this.#senderDied = undefined;
    this.#passedOver.clear();
    this.#transfer = undefined;
    this.#received = 0;
    this.#lastProgressAt = Number.NEGATIVE_INFINITY;
    this.#unanswered = 0;
    this.#nextAskAt = Number.POSITIVE_INFINITY;
    this.#requests = 0;
  }

  /**
   * The membership declared `mac` dead (silent for `silentMs`): if it is the sender, it is passed
   * over on the next tick as one that died, not as one that left (the membership may find the
   * silence before this machine does).
   */
  died(mac: string, silentMs: number): void {
    if (mac === this.#sender && this.following) this.#senderDied = { mac, silentMs };
  }

  /** A newcomer again (start, rejoin, reset): take a pushed state, ask nothing yet. */
  begin(now: number): void {
    this.#enter(ReceiverPhase.LISTENING, now);
  }

  /** The first round waits for the state: ask for it when it does not come. */
  need(now: number): void {
    if (this.#phase === ReceiverPhase.IDLE) this.#enter(ReceiverPhase.LISTENING, now); // a rejoin the driver did not announce
    if (this.#phase === ReceiverPhase.LISTENING) this.#enter(ReceiverPhase.WAITING, now);
  }

  /** Joined (or stopped): state from now on is a resync, outside this machine. */
  end(now: number): void {
    if (this.#phase !== ReceiverPhase.IDLE) this.#enter(ReceiverPhase.IDLE, now);
  }

  /** CONNTRACK from `mac` is taken now: from the chosen sender, while joining. */
  accepts(mac: string): boolean {
    return (this.#phase === ReceiverPhase.LISTENING || this.#phase === ReceiverPhase.WAITING) && mac === this.#sender;
  }

  /**
   * A fragment of message `index` of `count` of transfer `transferId` from `from` was stored.
   * False when it belongs to no transfer this machine follows (an older one, a bad count).
   */
  fragment(from: string, transferId: number, index: number, count: number, now: number): boolean {
    if (!this.accepts(from) || count < 1 || index >= count) return false;
    let t = this.#transfer;
    if (t !== undefined && t.transferId !== transferId) {
      if (!isAfter(transferId, t.transferId)) return false; // a late fragment of a transfer it replaced
      // The sender started over (it had dropped the first transfer): this one replaces it (the
      // reassembler lets what it held of the first expire).
      t = undefined;
    }
    if (t === undefined) {
      t = { transferId, count, done: new Array<boolean>(count).fill(false), remaining: count };
      this.#transfer = t;
    } else if (t.count !== count) {
      return false;
    }
    this.#received++;
    this.#progress(now);
    return true;
  }

  /**
   * Message `index` of the transfer is whole (CRC checked): its last fragment arrived (not also
   * given to fragment()). False when it belongs to no transfer this machine follows.
   */
  messageComplete(from: string, transferId: number, index: number, count: number, now: number): boolean {
    if (!this.fragment(from, transferId, index, count, now)) return false;
    const t = this.#transfer!;
    if (t.done[index] === true) return true;
    t.done[index] = true;
    t.remaining--;
    if (t.remaining > 0) return true;
    this.counters.completed++;
    this.#actions.push({ kind: 'ack', to: from, transferId });
    this.#actions.push({ kind: 'complete', from, transferId, ms: now - this.#beganAt, requests: this.#requests });
    this.#enter(ReceiverPhase.COMPLETE, now);
    return true;
  }

  #progress(now: number): void {
    this.#lastProgressAt = now;
    this.#unanswered = 0;
    if (this.#phase === ReceiverPhase.WAITING) this.#nextAskAt = now + this.#o.retryMs;
  }

  /**
   * Advances the machine: chooses the sender among `candidates` (members that have joined, in
   * table order), passes over one that died or does not answer, asks for what is missing.
   */
  tick(now: number, candidates: readonly SenderCandidate[]): void {
    if (this.#phase !== ReceiverPhase.LISTENING && this.#phase !== ReceiverPhase.WAITING) return;
    // This node itself stalled (its driver ticks at least every half death timeout): what it
    // has not read yet may be its senders' frames, so no one is found silent on this tick.
    const stalled = now - this.#lastTickAt > 0.75 * this.#o.deadAfterMs;
    this.#lastTickAt = now;
    if (stalled) return;
    const waiting = this.#phase === ReceiverPhase.WAITING;
    if (this.#sender !== undefined) {
      const current = candidates.find((c) => c.mac === this.#sender);
      const silentMs = current === undefined ? 0 : now - Math.max(current.lastHeardAt, this.#lastProgressAt);
      const died = this.#senderDied?.mac === this.#sender ? this.#senderDied : undefined;
      if (current === undefined) this.#passOver(died === undefined ? 'left' : 'died', now, died?.silentMs ?? 0, candidates);
      else if (silentMs >= this.#o.deadAfterMs) this.#passOver('died', now, silentMs, candidates);
      else if (waiting && this.#unanswered >= this.#o.maxRequests) this.#passOver('unresponsive', now, silentMs, candidates);
    }
    // Until something arrives from it, the sender is the first member in table order (one
    // learnt later may sort before it: that is the one that pushes).
    if (this.#sender === undefined || this.#transfer === undefined) this.#sender = this.#choose(now, candidates) ?? this.#sender;
    if (this.#sender !== undefined && !candidates.some((c) => c.mac === this.#sender)) this.#sender = undefined;
    if (!waiting) return;
    if (this.#sender === undefined) {
      this.counters.noneNeeded++;
      this.#actions.push({ kind: 'none-needed', ms: now - this.#beganAt });
      this.#enter(ReceiverPhase.COMPLETE, now);
      return;
    }
    if (now >= this.#nextAskAt) this.#ask(now);
  }

  /** The next time `tick` has something to do. */
  nextDeadline(candidates: readonly SenderCandidate[]): number {
    if (this.#phase !== ReceiverPhase.LISTENING && this.#phase !== ReceiverPhase.WAITING) return Number.POSITIVE_INFINITY;
    let t = this.#nextAskAt;
    const current = candidates.find((c) => c.mac === this.#sender);
    if (current !== undefined) t = Math.min(t, Math.max(current.lastHeardAt, this.#lastProgressAt) + this.#o.deadAfterMs);
    return t;
  }

  #ask(now: number): void {
    const t = this.#transfer;
    const incomplete: number[] = [];
    if (t !== undefined) for (let i = 0; i < t.count; i++) if (t.done[i] !== true) incomplete.push(i);
    this.#unanswered++;
    this.#requests++;
    this.counters.requests++;
    this.#actions.push({ kind: 'ask', to: this.#sender!, transferId: t?.transferId ?? 0, incomplete, attempt: this.#unanswered });
    this.#nextAskAt = now + Math.min(this.#o.maxRetryMs, this.#o.retryMs * 2 ** this.#unanswered);
  }

  #passOver(reason: SenderChange, now: number, silentMs: number, candidates: readonly SenderCandidate[]): void {
    const from = this.#sender!;
    this.#passedOver.set(from, reason);
    if (reason === 'unresponsive') this.counters.sendersUnresponsive++;
    else this.counters.sendersDied++;
    const received = this.#received;
    this.#sender = undefined;
    this.#senderDied = undefined;
    this.#transfer = undefined;
    this.#received = 0;
    this.#unanswered = 0;
    this.#lastProgressAt = Number.NEGATIVE_INFINITY;
    this.#actions.push({ kind: 'forget', from });
    const next = this.#choose(now, candidates);
    this.#actions.push({ kind: 'sender-changed', from, to: next, reason, silentMs, received });
    this.#sender = next;
    // The next sender is asked at once: the wait has lasted long enough.
    if (this.#phase === ReceiverPhase.WAITING) this.#nextAskAt = now;
  }

  /** The first candidate not passed over; when only unresponsive ones are left, they are all tried again. */
  #choose(now: number, candidates: readonly SenderCandidate[]): string | undefined {
    const fresh = (c: SenderCandidate): boolean => now - c.lastHeardAt < this.#o.deadAfterMs;
    let next = candidates.find((c) => !this.#passedOver.has(c.mac) && fresh(c));
    if (next === undefined && candidates.some((c) => this.#passedOver.get(c.mac) === 'unresponsive' && fresh(c))) {
      for (const [mac, why] of this.#passedOver) if (why === 'unresponsive') this.#passedOver.delete(mac);
      next = candidates.find((c) => !this.#passedOver.has(c.mac) && fresh(c));
      if (next !== undefined) this.#actions.push({ kind: 'still-waiting', waitedMs: now - this.#beganAt, senders: candidates.length });
    }
    return next?.mac;
  }
}

// ---------------------------------------------------------------------------------------
// Sender

export const SenderPhase = { SAVING: 'SAVING', SENDING: 'SENDING', SENT: 'SENT' } as const;
export type SenderPhase = (typeof SenderPhase)[keyof typeof SenderPhase];

export interface OutgoingTransfer {
  readonly to: string;
  phase: SenderPhase;
  transferId: number;
  /** Fragments of each message, by index. */
  totals: number[];
  readonly startedAt: number;
  lastHeardAt: number;
  fragmentsResent: number;
  nacks: number;
}

export interface SenderOptions {
  /** Transfers kept at once (each holds its saved state until acknowledged). */
  maxTransfers: number;
  /** A transfer whose newcomer said nothing for this long is dropped. */
  idleMs: number;
  /** Fragments a transfer may resend: this many times its own count, plus resendSlack. */
  resendFactor: number;
  resendSlack: number;
}

export function senderOptions(deadAfterMs: number): SenderOptions {
  return { maxTransfers: 8, idleMs: Math.max(2000, 2 * deadAfterMs), resendFactor: 4, resendSlack: 256 };
}

/** What to do with a NACK. */
export type NackDecision =
  /** Resend what it lists. */
  | 'resend'
  /** It knows nothing of our transfer (or we have none): save the tables and send a new one. */
  | 'start'
  /** A send of that transfer is under way (or the tables are being saved): the NACK comes again later. */
  | 'busy'
  /** The transfer resent all it may: dropped (the newcomer's next request starts a new one). */
  | 'exhausted'
  /** No room for another transfer. */
  | 'full';

export interface SenderCounters {
  started: number;
  acknowledged: number;
  /** Dropped before any acknowledgement: idle, resend budget spent, newcomer gone. */
  abandoned: number;
  /** Newcomers refused a transfer: maxTransfers already running. */
  refusedFull: number;
  nacks: number;
  fragmentsResent: number;
}

const NO_TRANSFERS: readonly OutgoingTransfer[] = Object.freeze([]);

export class StateSenders {
  readonly #o: SenderOptions;
  readonly #transfers = new Map<string, OutgoingTransfer>();
  readonly counters: SenderCounters = { started: 0, acknowledged: 0, abandoned: 0, refusedFull: 0, nacks: 0, fragmentsResent: 0 };

  constructor(options: SenderOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#transfers.size;
  }

  get(to: string): OutgoingTransfer | undefined {
    return this.#transfers.get(to);
  }

  /** A transfer to `to` may start now (none running to it, room for it): it is SAVING. */
  start(to: string, now: number): boolean {
    if (this.#transfers.has(to)) return false;
    if (this.#transfers.size >= this.#o.maxTransfers) {
      this.counters.refusedFull++;
      return false;
    }
    this.counters.started++;
    this.#transfers.set(to, { to, phase: SenderPhase.SAVING, transferId: 0, totals: [], startedAt: now, lastHeardAt: now, fragmentsResent: 0, nacks: 0 });
    return true;
  }

  /** The tables are saved and cut: fragments go out now. */
  sending(to: string, transferId: number, totals: number[]): void {
    const t = this.#transfers.get(to);
    if (t === undefined) return;
    t.phase = SenderPhase.SENDING;
    t.transferId = transferId;
    t.totals = totals;
  }

  /** Every fragment asked for is out. */
  sent(to: string, now: number): void {
    const t = this.#transfers.get(to);
    if (t === undefined || t.phase !== SenderPhase.SENDING) return;
    t.phase = SenderPhase.SENT;
    t.lastHeardAt = Math.max(t.lastHeardAt, now);
  }

  /** A NACK from `from` for `transferId` asking `asked` fragments. */
  nack(from: string, transferId: number, asked: number, now: number): NackDecision {
    this.counters.nacks++;
    const t = this.#transfers.get(from);
    if (t === undefined) return this.#transfers.size >= this.#o.maxTransfers ? 'full' : 'start';
    t.lastHeardAt = now;
    t.nacks++;
    if (t.phase !== SenderPhase.SENT) return 'busy';
    // transferId 0: it has nothing from us, it is asked whole (`asked` says how much that is).
    if (transferId !== 0 && transferId !== t.transferId) {
      this.#drop(from);
      return 'start';
    }
    const total = t.totals.reduce((a, b) => a + b, 0);
    if (t.fragmentsResent + asked > this.#o.resendFactor * total + this.#o.resendSlack) {
      this.#drop(from);
      return 'exhausted';
    }
    t.fragmentsResent += asked;
    this.counters.fragmentsResent += asked;
    t.phase = SenderPhase.SENDING;
    return 'resend';
  }

  /** An ACK (or the newcomer says it serves): the transfer is done. */
  acknowledged(from: string, transferId: number | undefined): OutgoingTransfer | undefined {
    const t = this.#transfers.get(from);
    if (t === undefined || (transferId !== undefined && transferId !== t.transferId)) return undefined;
    this.#transfers.delete(from);
    this.counters.acknowledged++;
    return t;
  }

  /** The newcomer is gone (died, left, restarted), or the tables could not be saved. */
  drop(to: string): OutgoingTransfer | undefined {
    return this.#drop(to);
  }

  #drop(to: string): OutgoingTransfer | undefined {
    const t = this.#transfers.get(to);
    if (t === undefined) return undefined;
    this.#transfers.delete(to);
    this.counters.abandoned++;
    return t;
  }

  /** Drops transfers whose newcomer said nothing for idleMs; returns them. */
  expire(now: number): readonly OutgoingTransfer[] {
    if (this.#transfers.size === 0) return NO_TRANSFERS; // a member between joins: every heartbeat
    const out: OutgoingTransfer[] = [];
    for (const t of [...this.#transfers.values()]) {
      if (t.phase === SenderPhase.SENT && now - t.lastHeardAt >= this.#o.idleMs) out.push(this.#drop(t.to)!);
    }
    return out;
  }

  nextDeadline(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.#transfers.values()) if (t.phase === SenderPhase.SENT) next = Math.min(next, t.lastHeardAt + this.#o.idleMs);
    return next;
  }
}
