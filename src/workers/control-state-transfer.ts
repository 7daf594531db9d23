/**
 * The control plane's side of the tracking-state transfers (the machines are pure, in
 * cluster/state-transfer.ts; the wire format in net/state-transfer-message.ts): what a member
 * does for a newcomer (save the tables through the main thread, send them, keep them until
 * acknowledged, resend what a NACK lists) and what a newcomer does (ask its sender for what it
 * lacks, from the reassembler's view of it; acknowledge; hand the whole state on, in order, to
 * its main thread). The control plane (control-plane.ts) feeds it frames and drives its timers.
 */

import { MAX_MEMBERS } from '../cluster/election.js';
import type { Membership, MemberNode } from '../cluster/membership.js';
import { receiverOptions, senderOptions, StateReceiver, StateSenders, type ReceiverAction, type ReceiverOptions, type SenderCandidate } from '../cluster/state-transfer.js';
import { MessageType } from '../net/cluster-message.js';
import { TokenBucket } from '../net/rate-limit.js';
import { askedFragments, decodeStateAck, decodeStateNack, encodeStateAck, encodeStateNack, STATE_LAST, STATE_PROTOCOL_MASK, transferCount, transferIdOf, transferIndex, type NackEntry } from '../net/state-transfer-message.js';
import type { ControlChannel, PreparedTransfer } from './control-channel.js';
import type { ControlClock } from './control-socket.js';
import type { LogLevel } from './messages.js';

/**
 * Tracking-state transfers to newcomers: per second, and burst (several nodes joining at once).
 * On a keyed cluster every JOIN comes from a holder of the key, and a newcomer is one of at most
 * a node table of them: the burst is a whole table, so a cluster whose nodes all start at once
 * is served at once. Measured at 32 daemons started together with a burst of 8: newcomers were
 * refused 108 times before all agreed, each asking again later. An unkeyed cluster keeps 8
 * against a flood of spoofed JOINs.
 */
const STATE_SENDS_PER_SECOND = 2;
const STATE_SENDS_BURST_UNKEYED = 8;
const STATE_SENDS_BURST_KEYED = MAX_MEMBERS;

/** What the transfers need of the control plane. */
export interface StateTransferHost {
  readonly membership: Membership;
  /** This node served since its start: it has tracking state worth handing out. */
  serving(): boolean;
  log(level: LogLevel, fields: Record<string, unknown>, msg: string): void;
  logLimited(level: LogLevel, key: string, fields: Record<string, unknown>, msg: string): void;
  /** Ask the main thread to save the tables for `to` (it answers with sendSaved). */
  saveState(to: string): void;
  /** A state (one handler's) to load: the main thread's business. */
  loadState(from: string, flags: number, state: Uint8Array): void;
  /** No member that has joined is left to send the state: the first round may complete without it. */
  noStateNeeded(now: number): void;
  /** Run the plane's timers again (a send finished). */
  drive(): void;
}

export class ControlStateTransfers {
  readonly #host: StateTransferHost;
  readonly #channel: ControlChannel;
  readonly #clock: ControlClock;
  readonly #receiverOptions: ReceiverOptions;
  /** The newcomer's side of the state transfer (cluster/state-transfer.ts). */
  readonly #receiver: StateReceiver;
  /** The messages of the incoming transfer that are whole, held until all are (handed on in order). */
  #incoming: { from: string; transferId: number; messages: Map<number, { flags: number; data: Uint8Array; fragments: number }> } | undefined;
  /** Fragments of the incoming transfer asked again, messages asked whole (for the log line that ends it). */
  #askedFragments = 0;
  #askedWhole = 0;
  readonly #receivedCounters = { fragmentsAsked: 0, messagesAskedWhole: 0 };
  /** The senders' side: one transfer per newcomer, kept until acknowledged. */
  readonly #senders: StateSenders;
  readonly #outgoing = new Map<string, PreparedTransfer & { entries: number; bytes: number }>();
  readonly #stateSends: TokenBucket;
  /** Newcomers refused a transfer past STATE_SENDS_PER_SECOND (an overflow counter). */
  stateSendsSkipped = 0;

  constructor(host: StateTransferHost, channel: ControlChannel, clock: ControlClock, deadAfterMs: number, keyed: boolean) {
    this.#stateSends = new TokenBucket(STATE_SENDS_PER_SECOND, keyed ? STATE_SENDS_BURST_KEYED : STATE_SENDS_BURST_UNKEYED);
    this.#host = host;
    this.#channel = channel;
    this.#clock = clock;
    this.#receiverOptions = receiverOptions(deadAfterMs);
    this.#receiver = new StateReceiver(this.#receiverOptions);
    this.#senders = new StateSenders(senderOptions(deadAfterMs));
  }

  /** A newcomer again (start, rejoin, self-reset): a state is taken from the first member that has joined. */
  begin(now: number): void {
    this.#receiver.begin(now);
    this.#incoming = undefined;
  }

  /** Left the cluster: nothing is awaited, nothing sent. */
  end(now: number): void {
    this.#receiver.end(now);
    this.#incoming = undefined;
    this.dropAll();
  }

  /** CONNTRACK from `mac` is taken while joining: from the sender chosen. */
  accepts(mac: string): boolean {
    return this.#receiver.accepts(mac);
  }

  /** A newcomer that says it serves has the state (or has none to wait for): its transfer is done. */
  serves(mac: string): void {
    if (this.#senders.get(mac) !== undefined) this.acknowledged(mac, undefined);
  }

  #node(mac: string): MemberNode | undefined {
    for (const n of this.#host.membership.nodes) if (n.mac === mac) return n;
    return undefined;
  }

  /**
   * LNLB: the first member hands its tracking state to a newcomer (CONNTRACK); here also any
   * member a newcomer asks (its pick of sender died, or the push was lost whole). Serialising a
   * million flows takes tens of milliseconds, which must never delay a heartbeat: the main
   * thread saves the tables and hands the bytes back (`sendSavedState`).
   */
  send(to: string): void {
    // A node that never served has no tracking state worth handing out.
    if (!this.#host.serving() || !this.#host.membership.accepting) return;
    const node = this.#node(to);
    if (node === undefined || node.self) return;
    const now = this.#clock.now();
    if (this.#senders.get(to) !== undefined) return; // one transfer per newcomer: it is under way
    // Saving the tables costs the main thread tens of ms per million flows: a burst of
    // newcomers is served, a flood of them (spoofed JOINs on an unkeyed cluster) is not; a
    // newcomer refused asks again later.
    if (!this.#stateSends.take(now)) {
      this.stateSendsSkipped++;
      this.#host.log('debug', { event: 'state-send-skipped', to }, `no tracking state for newcomer ${to} now: more newcomers than ${STATE_SENDS_PER_SECOND}/s`);
      return;
    }
    if (!this.#senders.start(to, now)) {
      this.#host.logLimited('warn', 'state-transfers-full', { event: 'state-transfers-full', to }, `no tracking state for newcomer ${to} now: ${this.#senders.size} transfers are waiting for their acknowledgement`);
      return;
    }
    this.#host.saveState(to);
  }

  /** The main thread saved the shards: send every handler's state (fragments, paced) to `to`, the last one marked. */
  async sendSaved(to: 'cluster' | string, states: { protocol: number; state: Uint8Array; entries: number }[]): Promise<{ fragments: number; error?: string }> {
    const started = this.#clock.now();
    // A newcomer's transfer is kept until acknowledged; a resync to every node is sent once.
    if (to !== 'cluster' && this.#senders.get(to)?.phase !== 'SAVING') return { fragments: 0 }; // dropped meanwhile (it died)
    try {
      const transfer = this.#channel.prepareTransfer(states);
      const entries = states.reduce((n, s) => n + s.entries, 0);
      const bytes = states.reduce((n, s) => n + s.state.length, 0);
      if (to !== 'cluster') {
        this.#outgoing.set(to, { ...transfer, entries, bytes });
        this.#senders.sending(to, transfer.transferId, transfer.messages.map((m) => m.total));
      }
      let fragments = 0;
      for (const message of transfer.messages) fragments += await this.#channel.sendFragments(to, message);
      if (to !== 'cluster') this.#senders.sent(to, this.#clock.now());
      this.#host.log(
        'info',
        { event: to === 'cluster' ? 'resync-sent' : 'state-sent', to, entries, bytes, handlers: states.length, fragments, ms: Math.round(this.#clock.now() - started) },
        to === 'cluster' ? `resync: sent ${entries} tracked flows to every node` : `sent ${entries} tracked flows to newcomer ${to} (${fragments} fragments; kept until it acknowledges them)`,
      );
      if (to !== 'cluster') this.#host.drive(); // the transfer's idle timer
      return { fragments };
    } catch (err) {
      if (to !== 'cluster') this.drop(to, 'failed');
      this.#host.log('error', { event: 'state-send-failed', to }, (err as Error).message);
      return { fragments: 0, error: (err as Error).message };
    }
  }

  /** A STATE_ACK or STATE_NACK from a node of the table. */
  reply(type: MessageType.STATE_ACK | MessageType.STATE_NACK, from: string, data: Uint8Array): void {
    if (type === MessageType.STATE_ACK) {
      const transferId = decodeStateAck(data);
      if (transferId === undefined) this.#malformedReply(from, type);
      else this.acknowledged(from, transferId);
      return;
    }
    const nack = decodeStateNack(data);
    if (nack === undefined) {
      this.#malformedReply(from, type);
      return;
    }
    const node = this.#node(from);
    // Only a newcomer asks (a member has the tables).
    if (node === undefined || node.self || node.joined) return;
    const now = this.#clock.now();
    const out = this.#outgoing.get(from);
    const t = this.#senders.get(from);
    const current = out !== undefined && t !== undefined && t.phase === 'SENT' && (nack.transferId === 0 || nack.transferId === out.transferId);
    // What it asks for: everything when it has nothing (transferId 0), else what it lists.
    const plan: { index: number; fragments: number[] }[] = [];
    if (current) {
      if (nack.transferId === 0) {
        out.messages.forEach((m, index) => plan.push({ index, fragments: Array.from({ length: m.total }, (_, k) => k) }));
      } else {
        for (const entry of nack.entries) {
          const message = out.messages[entry.index];
          if (message !== undefined) plan.push({ index: entry.index, fragments: [...askedFragments(entry, message.total)] });
        }
      }
    }
    const asked = plan.reduce((n, p) => n + p.fragments.length, 0);
    switch (this.#senders.nack(from, nack.transferId, asked, now)) {
      case 'resend':
        void this.#resend(from, out!, plan);
        break;
      case 'start':
        this.#outgoing.delete(from);
        this.send(from);
        break;
      case 'exhausted':
        this.#outgoing.delete(from);
        this.#host.log('warn', { event: 'state-send-abandoned', to: from, reason: 'resend-budget' }, `tracking state to newcomer ${from}: resent all it may (${t?.fragmentsResent ?? 0} fragments), dropped; its next request starts a new transfer`);
        break;
      case 'busy':
      case 'full':
        break;
    }
  }

  async #resend(to: string, transfer: PreparedTransfer, plan: { index: number; fragments: number[] }[]): Promise<void> {
    let sent = 0;
    for (const { index, fragments } of plan) sent += await this.#channel.sendFragments(to, transfer.messages[index]!, fragments);
    this.#senders.sent(to, this.#clock.now());
    this.#host.log('debug', { event: 'state-resent', to, fragments: sent }, `resent ${sent} tracking-state fragments to newcomer ${to}`);
    this.#host.drive();
  }

  #malformedReply(from: string, type: MessageType): void {
    this.#host.logLimited('warn', 'state-reply-malformed', { event: 'state-reply-malformed', node: from, type: MessageType[type] }, `malformed ${MessageType[type]} from ${from} ignored`);
  }

  /** The newcomer has the state (its ACK), or says it serves (`transferId` undefined). */
  acknowledged(from: string, transferId: number | undefined): void {
    const t = this.#senders.acknowledged(from, transferId);
    if (t === undefined) return;
    const out = this.#outgoing.get(from);
    this.#outgoing.delete(from);
    const fragments = out?.messages.reduce((n, m) => n + m.total, 0) ?? 0;
    this.#host.log(
      'info',
      { event: 'state-acknowledged', to: from, entries: out?.entries ?? 0, fragments, fragmentsResent: t.fragmentsResent, requests: t.nacks, ms: Math.round(this.#clock.now() - t.startedAt), implicit: transferId === undefined },
      `newcomer ${from} ${transferId === undefined ? 'serves: it has' : 'acknowledged'} the tracking state (${out?.entries ?? 0} flows, ${fragments} fragments, ${t.fragmentsResent} resent on ${t.nacks} requests)`,
    );
  }

  drop(to: string, reason: 'gone' | 'failed' | 'idle'): void {
    const t = this.#senders.drop(to);
    this.#outgoing.delete(to);
    if (t === undefined || reason === 'gone') return;
    this.#host.log('warn', { event: 'state-send-abandoned', to, reason }, `tracking state to newcomer ${to}: ${reason === 'idle' ? 'no word from it' : 'not sent'}, dropped`);
  }

  /** The membership declared `mac` dead: a newcomer taking the state from it says it died. */
  senderDied(mac: string, silentMs: number): void {
    this.#receiver.died(mac, silentMs);
  }

  dropAll(): void {
    for (const to of [...this.#outgoing.keys()]) this.drop(to, 'gone');
    for (const to of this.#host.membership.nodes.map((n) => n.mac)) this.#senders.drop(to);
  }

  /**
   * The state transfers' timers, both sides: the newcomer's requests and choice of sender (the
   * members that have joined, in table order), the senders' idle transfers. Returns when they
   * next need a drive.
   */
  drive(now: number): number {
    for (const t of this.#senders.expire(now)) {
      this.#outgoing.delete(t.to);
      this.#host.log('warn', { event: 'state-send-abandoned', to: t.to, reason: 'idle' }, `tracking state to newcomer ${t.to}: no acknowledgement and no request for ${Math.round(now - t.lastHeardAt)} ms, dropped`);
    }
    const membership = this.#host.membership;
    const receiver = this.#receiver;
    if (membership.accepting) receiver.end(now);
    else if (membership.awaitingState) receiver.need(now);
    // A member's receiver follows no transfer: nothing to list (drive runs on every heartbeat).
    if (!receiver.following) {
      this.#carryOutReceiver(receiver.drainActions(), now);
      return this.#senders.nextDeadline();
    }
    const candidates: SenderCandidate[] = [];
    for (const n of membership.nodes) if (!n.self && n.joined) candidates.push({ mac: n.mac, lastHeardAt: n.lastHeardAt });
    receiver.tick(now, candidates);
    this.#carryOutReceiver(receiver.drainActions(), now);
    return Math.min(receiver.nextDeadline(candidates), this.#senders.nextDeadline());
  }

  #carryOutReceiver(actions: readonly ReceiverAction[], now: number): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'ask':
          this.#ask(a.to, a.transferId, a.incomplete, a.attempt);
          break;
        case 'ack':
          this.#channel.sendStateReply(MessageType.STATE_ACK, a.to, encodeStateAck(a.transferId));
          break;
        case 'forget':
          this.#channel.forgetStateFrom(a.from);
          if (this.#incoming?.from === a.from) this.#incoming = undefined;
          break;
        case 'complete':
          this.#handOn(a.from, a.transferId, a.ms, a.requests);
          break;
        case 'none-needed':
          this.#host.log('warn', { event: 'state-none-needed', ms: Math.round(a.ms) }, 'no member that has joined is left to send the tracking state: serving without it (no member is left to own a client)');
          this.#host.noStateNeeded(now);
          break;
        case 'sender-changed': {
          const next = a.to === undefined ? 'no other member that has joined is left' : `taking the state from ${a.to}`;
          const why = a.reason === 'died' ? `died (silent for ${Math.round(a.silentMs)} ms)` : a.reason === 'left' ? 'left or stopped serving' : `did not answer ${this.#receiverRequestsLimit} requests`;
          this.#host.log('warn', { event: 'state-sender-changed', from: a.from, to: a.to, reason: a.reason, silentMs: Math.round(a.silentMs), fragmentsReceived: a.received }, `tracking-state sender ${a.from} ${why} after ${a.received} fragments: ${next}`);
          this.#askedFragments = 0;
          this.#askedWhole = 0;
          break;
        }
        case 'still-waiting':
          this.#host.logLimited(
            'error',
            'state-still-waiting',
            { event: 'state-still-waiting', waitedMs: Math.round(a.waitedMs), senders: a.senders },
            `no member has delivered the tracking state in ${Math.round(a.waitedMs)} ms though ${a.senders} are alive: not serving yet, asking them again (state fragments lost on the way? a smaller MTU between the nodes drops them)`,
          );
          break;
      }
    }
  }

  get #receiverRequestsLimit(): number {
    return this.#receiverOptions.maxRequests;
  }

  /** A NACK for what the incoming transfer lacks (transferId 0: nothing of it yet). */
  #ask(to: string, transferId: number, incomplete: number[], attempt: number): void {
    const entries: NackEntry[] = [];
    let fragments = 0;
    let whole = 0;
    if (transferId !== 0) {
      for (const index of incomplete) {
        const id = (transferId + index) >>> 0;
        const missing = this.#channel.missingFragments(to, id);
        if (missing !== undefined) {
          entries.push({ index, missing });
        } else {
          // Never started, or dropped by the reassembler (expired, failed its CRC): whole, and let it start again.
          this.#channel.reopenState(to, id);
          entries.push({ index });
        }
      }
    }
    const { data, asked } = encodeStateNack({ transferId, entries }, this.#channel.stateReplyRoom);
    fragments += asked;
    whole += entries.filter((e) => e.missing === undefined).length;
    this.#askedFragments += fragments;
    this.#askedWhole += whole;
    this.#receivedCounters.fragmentsAsked += fragments;
    this.#receivedCounters.messagesAskedWhole += whole;
    this.#channel.sendStateReply(MessageType.STATE_NACK, to, data);
    this.#host.log(
      'debug',
      { event: 'state-asked', from: to, transferId, fragments, wholeMessages: whole, attempt },
      transferId === 0 ? `asked ${to} for the tracking state (request ${attempt})` : `asked ${to} again for ${fragments} fragments and ${whole} whole messages of the tracking state (request ${attempt})`,
    );
  }

  /** A tracking-state fragment was stored (state undefined) or completed its message. */
  fragment(from: string, flags: number, messageId: number, fragmentTotal: number, state: Uint8Array | undefined): void {
    const count = transferCount(flags);
    if (this.#host.membership.accepting || count === 0) {
      // A joined node's state comes as a resync: loaded message by message, nothing acknowledged.
      if (state !== undefined) this.#host.loadState(from, flags, state);
      return;
    }
    const now = this.#clock.now();
    const index = transferIndex(flags);
    const transferId = transferIdOf(messageId, flags);
    if (state === undefined) {
      this.#receiver.fragment(from, transferId, index, count, now);
    } else if (this.#receiver.messageComplete(from, transferId, index, count, now)) {
      if (this.#incoming === undefined || this.#incoming.from !== from || this.#incoming.transferId !== transferId) this.#incoming = { from, transferId, messages: new Map() };
      this.#incoming.messages.set(index, { flags, data: state, fragments: fragmentTotal });
    }
    this.#carryOutReceiver(this.#receiver.drainActions(), now);
  }

  /** Every message of the incoming transfer is in: the main thread loads them in order, the last one marked. */
  #handOn(from: string, transferId: number, ms: number, requests: number): void {
    const incoming = this.#incoming;
    this.#incoming = undefined;
    if (incoming === undefined || incoming.from !== from || incoming.transferId !== transferId) return;
    const indexes = [...incoming.messages.keys()].sort((a, b) => a - b);
    let fragments = 0;
    let bytes = 0;
    for (const i of indexes) {
      const m = incoming.messages.get(i)!;
      fragments += m.fragments;
      bytes += m.data.length;
      this.#host.loadState(from, (m.flags & STATE_PROTOCOL_MASK) | (i === indexes[indexes.length - 1] ? STATE_LAST : 0), m.data);
    }
    this.#host.log(
      'info',
      { event: 'state-received', from, messages: indexes.length, fragments, bytes, fragmentsAsked: this.#askedFragments, messagesAskedWhole: this.#askedWhole, requests, ms: Math.round(ms) },
      `tracking state from ${from} complete: ${fragments} fragments (${this.#askedFragments} asked again, ${this.#askedWhole} messages asked whole, in ${requests} requests), ${Math.round(ms)} ms after joining`,
    );
    this.#askedFragments = 0;
    this.#askedWhole = 0;
  }

  get counters(): Record<string, number> {
    const r = this.#receiver.counters;
    const s = this.#senders.counters;
    return {
      transfersStarted: s.started,
      transfersAcknowledged: s.acknowledged,
      transfersAbandoned: s.abandoned,
      transfersRefusedFull: s.refusedFull,
      nacksReceived: s.nacks,
      fragmentsResent: s.fragmentsResent,
      transfersReceived: r.completed,
      requestsSent: r.requests,
      fragmentsAsked: this.#receivedCounters.fragmentsAsked,
      messagesAskedWhole: this.#receivedCounters.messagesAskedWhole,
      sendersDied: r.sendersDied,
      sendersUnresponsive: r.sendersUnresponsive,
      noStateNeeded: r.noneNeeded,
    };
  }
}
