/**
 * The control plane's messages on its own socket (a ControlSocket: the AF_PACKET one in the
 * daemon, a memory wire in tests), so a data flood cannot starve heartbeats.
 *
 * Every message is sealed and opened by the ControlAuthenticator: with a key, an HMAC trailer
 * and a replay window; without one, plain LNLB-style messages (and signed ones are refused:
 * a key mismatch). Long messages (CONNTRACK: a tracking state) are cut into fragments at the
 * link MTU and reassembled per (sender, message id) with expiry and a CRC over the whole.
 *
 * Input from outside the membership changes nothing: frames are read 64 at a time, yielding
 * to timers between batches; the cheap checks (length, EtherType, header and CRC, cluster IP)
 * come before the HMAC, whose cost for senders the membership does not know comes out of one
 * budget of 200 a second; tracking state is taken only from members, before reassembly; a
 * frame that fails authentication names its sender to the admission rule (cluster/admission.ts).
 *
 * Membership data after the LNLB header: HEARTBEAT/RETRASM start with the u16 weight (LNLB's
 * layout, which the codec checks), and so do our JOIN and WELCOME (a newcomer learns the
 * weights from them); then, for every type but CONNTRACK, our u32 incarnation; then the port
 * rules block (lnlb's addition; LNLB nodes stop reading before it):
 *   | 'R' u8 | rule slots u8 | rules digest u32 | slots × u16 parameter word (share | priority << 8) |
 * then the node identity block (the sender's name and address; earlier lnlb versions stop
 * reading before it; layout in net/cluster-message.ts, encodeIdentity):
 *   | 'N' u8 | block length u8 | IPv4 u32 | name length u8 | name |
 * then, with --election bucket, the digest of the sender's bucket table (versions before it
 * stop reading at the end of the identity block):
 *   | 'B' u8 | digest u32 |
 * Header flags bit 0 (FLAG_JOINED): the sender has completed its own join and serves (a node
 * listening or held by the admission rule does not set it). CONNTRACK's flags
 * are the handler's IP protocol (LNLB's handler index: handlers are registered per protocol)
 * in bits 0-7, STATE_LAST (bit 8) on the last handler's state of one transfer, and the
 * message's index and count in its transfer (net/state-transfer-message.ts). STATE_ACK and
 * STATE_NACK, the newcomer's answers, are taken from nodes of the table only and handed to the
 * control plane, which runs the transfer (cluster/state-transfer.ts).
 */

import type { ControlInfo } from '../cluster/membership.js';
import type { UnauthenticatedVerdict } from '../cluster/admission.js';
import { AUTH_TRAILER_LENGTH, authVerdictName, AuthVerdict, ControlAuthenticator, DEFAULT_MAX_SENDERS, FLAG_AUTHENTICATED, FLAGS_MASK, type ControlAuthenticatorOptions } from '../net/auth.js';
import { readU32, writeU32 } from '../net/bytes.js';
import {
  createDecodedMessage,
  decodeIdentity,
  decodeMessage,
  DecodeResult,
  encodeIdentity,
  encodeMessage,
  FLAG_PROBE,
  FLAG_WAKE,
  IDENTITY_MAX_BYTES,
  IdentityResult,
  isWeightAnnouncement,
  MESSAGE_HEADER_LENGTH,
  MessageType,
  messageTypeName,
} from '../net/cluster-message.js';
import { ETH_HLEN, ETH_P_LNLB, ETH_ZLEN, formatMac, macEquals, macToNumber, parseMac, writeEthernetHeader } from '../net/ethernet.js';
import { fragmentMessage, Reassembler, reassemblyVerdictName, ReassemblyVerdict, type MessageFragments } from '../net/reassembly.js';
import { MAX_TRANSFER_MESSAGES, transferFlags } from '../net/state-transfer-message.js';
import { TokenBucket } from '../net/rate-limit.js';
import { MAX_MEMBERS } from '../cluster/election.js';
import { HANDOVER_PROTOCOL } from '../net/handover-message.js';
import type { ControlClock, ControlSocket } from './control-socket.js';
import type { ControlData } from './messages.js';

export interface ControlMessageHandler {
  (type: MessageType, srcMac: string, info: ControlInfo): void;
}

/**
 * A tracking-state fragment from `srcMac` was stored (`data` undefined) or completed its message
 * (`data`: the whole message, CRC checked). Flags say which transfer it belongs to
 * (net/state-transfer-message.ts).
 */
export interface StateHandler {
  (srcMac: string, flags: number, messageId: number, fragmentTotal: number, data: Uint8Array | undefined): void;
}

/** A STATE_ACK or STATE_NACK from a member; `data` is valid during the call only. */
export interface StateReplyHandler {
  (type: MessageType.STATE_ACK | MessageType.STATE_NACK, srcMac: string, data: Uint8Array): void;
}

/** One tracking-state transfer, cut into fragments: message i has id transferId + i. */
export interface PreparedTransfer {
  transferId: number;
  messages: MessageFragments[];
}

export { STATE_LAST, STATE_PROTOCOL_MASK } from '../net/state-transfer-message.js';

/** The port rules this node announces in every membership message. */
export interface AnnouncedRules {
  digest: number;
  /** Parameter word per rule slot. */
  params: readonly number[];
}

const RULES_MARK = 0x52; // 'R'
const RULES_HEADER_BYTES = 6;
/**
 * The bucket table's digest (--election bucket, cluster/bucket-ledger.ts), that of the last
 * table the sender has handed every moved flow over for, the digest of the view its table is
 * for, and the buckets it still drains (cluster/bucket-handover.ts):
 * | 'B' u8 | digest u32 | handed digest u32 | view digest u32 | words u8 | mask |, the mask
 * `words` (0 or 32) u32, bit b % 32 of word b >> 5 = bucket b. A shorter block reads as nothing
 * handed over, any view, and nothing drained.
 */
const BUCKETS_MARK = 0x42; // 'B'
const BUCKETS_DIGEST_ONLY_BYTES = 5;
const BUCKETS_HANDED_BYTES = 13;
const BUCKETS_MASK_WORDS = 32;
const BUCKETS_BLOCK_BYTES = BUCKETS_HANDED_BYTES + 1 + 4 * BUCKETS_MASK_WORDS;
/** Slots a rules block may carry (the default rule and 32 port rules). */
const MAX_ANNOUNCED_SLOTS = 33;

export interface ControlCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  rejected: Record<string, number>;
}

/** Header flags bit: the sender has completed its own join and serves. */
export const FLAG_JOINED = 0x1;

const INCARNATION_BYTES = 4;
/**
 * Fragments sent back to back before yielding (to our own event loop and, through the 1 ms
 * pause, to the receivers): 256 fragments are ~380 KiB, well inside the 8 MiB receive buffer
 * every control socket asks for (SO_RCVBUFFORCE), so receivers drain them between bursts.
 */
const FRAGMENT_BURST = 256;
/** Frames read before yielding to timers. */
export const READ_BATCH = 64;
/**
 * HMACs a second spent on senders the membership does not know (newcomers, and anyone forging
 * frames): a newcomer sends a few JOINs, a flood gets this much CPU (~2 µs each) and no more.
 */
export const DEFAULT_STRANGER_HMACS_PER_SECOND = 200;
/** Authenticated senders whose MAC text and name are kept (the membership's table holds fewer). */
const SENDER_CACHE_MAX = 2 * MAX_MEMBERS;

/** The link and cluster fields come from the control thread's start data (one definition). */
export type ControlChannelOptions = Pick<ControlData, 'ownMac' | 'clusterMac' | 'clusterIp' | 'mtu' | 'key' | 'clockToleranceMs'> & {
  /** This node's name and IPv4 (u32, 0: none), announced in every membership message; no name: no identity block. */
  identity?: { name: string; address: number };
  socket: ControlSocket;
  clock: ControlClock;
  /** The MAC of control messages (ControlAuthenticatorOptions.macFactory); default node:crypto's. */
  macFactory?: ControlAuthenticatorOptions['macFactory'];
  onMessage: ControlMessageHandler;
  onState: StateHandler;
  onStateReply: StateReplyHandler;
  rules: AnnouncedRules;
  /** The sender (48-bit MAC) is in the membership's table: never rate-limited. */
  isKnownSender: (macKey: number) => boolean;
  /**
   * The sender left the table lately (a member that left or died): not rate-limited either,
   * so a member restarting under a flood of forged frames is heard (its JOINs would otherwise
   * compete with the flood for the strangers' HMACs). Default: none.
   */
  wasMember?: (macKey: number) => boolean;
  /** The sender may send tracking state now (a member; for a newcomer, a member that has joined). */
  acceptsStateFrom: (macKey: number) => boolean;
  /** A frame for our cluster failed authentication in a way that names a misconfigured peer. */
  onUnauthenticated: (macKey: number, verdict: UnauthenticatedVerdict, claimsJoined: boolean) => void;
  /**
   * A batch read because the socket was readable is done (not one read by `readWaiting`): the
   * handlers above may leave what the frames call for (timers, replies) to one run here, per
   * batch rather than per frame (control-plane.ts: one drive per wake-up).
   */
  onReadDone?: () => void;
  /** Default DEFAULT_STRANGER_HMACS_PER_SECOND. */
  strangerHmacsPerSecond?: number;
};

export class ControlChannel {
  readonly #o: ControlChannelOptions;
  readonly #auth: ControlAuthenticator;
  readonly #reassembler = new Reassembler();
  readonly #rx: Uint8Array;
  readonly #tx: Uint8Array;
  readonly #decoded = createDecodedMessage();
  readonly #payloadBytes = new Uint8Array(2 + INCARNATION_BYTES + RULES_HEADER_BYTES + 2 * MAX_ANNOUNCED_SLOTS + IDENTITY_MAX_BYTES + BUCKETS_BLOCK_BYTES);
  readonly #info: ControlInfo = { weight: 0, incarnation: 0, joined: false, probe: false };
  /**
   * The rules block of the message being handled (ruleSlots -1 when it had none), and its
   * identity block (hasIdentity false when it had none, or a malformed one: counted).
   */
  readonly received = { ruleSlots: -1, rulesDigest: 0, ruleParams: new Uint16Array(MAX_ANNOUNCED_SLOTS), hasIdentity: false, identity: { name: '', address: 0 }, bucketDigest: -1, handedDigest: -1, viewDigest: -1, draining: new Uint32Array(BUCKETS_MASK_WORDS), hasDraining: false };
  /** The digest this node's membership messages carry (--election bucket); undefined: no block. */
  announcedBucketDigest: number | undefined;
  /** With it, the last table this node handed every moved flow over for. */
  announcedHandedDigest = 0;
  /** The digest of the view its table is for (BucketLedger.viewDigest). */
  announcedViewDigest = 0;
  /** And the buckets it drains (32 words), or undefined for none. */
  announcedDraining: Uint32Array | undefined;
  readonly #srcMac = new Uint8Array(6);
  /**
   * What authenticated senders' frames repeat, by 48-bit MAC: the MAC as text and the last
   * name announced, so a heartbeat builds no string. Bounded: cleared when full (an unkeyed
   * cluster's forger may send from any MAC).
   */
  readonly #senders = new Map<number, { mac: string; name: string | undefined }>();
  readonly #socket: ControlSocket;
  readonly #clock: ControlClock;
  #open = false;
  #drainQueued = false;
  #reading = false;
  #watching = true;
  #framesRead = 0;
  /** HEARTBEATs announcing a weight (FLAG_WAKE) read since takeAnnouncementsRead, forged or not. */
  #announcementsRead = 0;
  /** The latest receive time among the frames read. */
  #lastReceivedAt = Number.NEGATIVE_INFINITY;
  /**
   * Every frame this socket received before this time (epoch ms) has been read and handled:
   * the latest read that found the socket empty started then (or read a frame received then,
   * if later). PublishedView.readThrough.
   */
  readThrough = Number.NEGATIVE_INFINITY;
  readonly #strangers: TokenBucket;
  #messageId = 0;
  readonly counters: ControlCounters = { received: {}, sent: {}, rejected: {} };

  constructor(options: ControlChannelOptions) {
    this.#o = options;
    this.#socket = options.socket;
    this.#clock = options.clock;
    // Sequences and their age are wall-clock time (the replay tolerance).
    const authOptions = {
      maxSenders: DEFAULT_MAX_SENDERS,
      ...(options.clockToleranceMs === undefined ? {} : { clockToleranceMs: options.clockToleranceMs }),
      ...(options.macFactory === undefined ? {} : { macFactory: options.macFactory }),
    };
    this.#auth = new ControlAuthenticator(options.key, () => options.clock.wallNow(), authOptions);
    const strangers = options.strangerHmacsPerSecond ?? DEFAULT_STRANGER_HMACS_PER_SECOND;
    this.#strangers = new TokenBucket(strangers, strangers);
    this.#rx = new Uint8Array(ETH_HLEN + Math.max(options.mtu, 1500) + 64);
    this.#tx = new Uint8Array(ETH_HLEN + Math.max(options.mtu, 1500) + 64);
    // Message ids start at a random point so a restarted node's first ids do not collide
    // with fragments of its previous life still held by a receiver.
    this.#messageId = (Math.random() * 0xffff_ffff) >>> 0;
  }

  get authenticated(): boolean {
    return this.#auth.keyed;
  }

  open(): void {
    this.#socket.onReadable(() => this.#readable());
    this.#socket.open();
    this.#open = true;
    this.#watching = true;
  }

  /**
   * Reading as frames arrive (true, after open), or only when told (`readWaiting`) and when a
   * frame that is not a HEARTBEAT arrives (the socket's doorbell). Resuming reads what waits
   * after the caller is done, never inside it.
   */
  setWatching(on: boolean): void {
    if (on === this.#watching || !this.#open) return;
    if (!on) {
      // Frames already waiting keep it watching (the socket says so): they are read first.
      this.#watching = this.#socket.setWatching(false);
      return;
    }
    this.#watching = true;
    const queued = this.#drainQueued;
    this.#drainQueued = true; // the memory wire calls back at once: that read waits for the one below
    this.#socket.setWatching(true);
    if (!queued) this.#clock.defer(() => this.#drain());
  }

  get watching(): boolean {
    return this.#watching;
  }

  close(): void {
    this.#open = false;
    this.#socket.close();
  }

  /** A membership message to every node (the cluster MAC) or to one node's MAC. */
  send(type: MessageType, to: 'cluster' | string, weight: number | undefined, incarnation: number, joined: boolean, wake = false, probe = false): void {
    if (!this.#open) return;
    const tx = this.#tx;
    const dst = to === 'cluster' ? this.#o.clusterMac : parseMac(to);
    writeEthernetHeader(tx, 0, dst, this.#o.ownMac, ETH_P_LNLB);
    const len = encodeMessage(tx, ETH_HLEN, {
      clusterIp: this.#o.clusterIp,
      type,
      flags: (joined ? FLAG_JOINED : 0) | (wake ? FLAG_WAKE : 0) | (probe ? FLAG_PROBE : 0),
      messageId: this.#nextMessageId(),
      data: this.#payload(weight, incarnation),
    });
    this.#sealAndSend(type, dst, len);
  }

  /**
   * Every handler's state as one transfer: a CONNTRACK message each, with consecutive message
   * ids, flags saying protocol, index and count. Nothing is sent yet.
   */
  prepareTransfer(states: readonly { protocol: number; state: Uint8Array }[]): PreparedTransfer {
    if (states.length > MAX_TRANSFER_MESSAGES) throw new RangeError(`a state transfer holds at most ${MAX_TRANSFER_MESSAGES} handlers' states, got ${states.length}`);
    const transferId = this.#nextMessageId();
    // The transfer's ids are taken together: message i is transferId + i.
    for (let i = 1; i < states.length; i++) this.#nextMessageId();
    const reserve = this.#auth.keyed ? AUTH_TRAILER_LENGTH : 0;
    const messages = states.map(({ protocol, state }, i) =>
      fragmentMessage({ clusterIp: this.#o.clusterIp, type: MessageType.CONNTRACK, flags: transferFlags(protocol, i, states.length), messageId: (transferId + i) >>> 0, data: state }, { mtu: this.#o.mtu, reserve }),
    );
    return { transferId, messages };
  }

  /**
   * A bucket handover (net/handover-message.ts) as one CONNTRACK message outside any transfer
   * (count 0: taken whatever the receiver is doing); acknowledged by a STATE_ACK of its id.
   */
  prepareHandover(data: Uint8Array): { messageId: number; message: MessageFragments } {
    const messageId = this.#nextMessageId();
    const reserve = this.#auth.keyed ? AUTH_TRAILER_LENGTH : 0;
    const message = fragmentMessage({ clusterIp: this.#o.clusterIp, type: MessageType.CONNTRACK, flags: transferFlags(HANDOVER_PROTOCOL, 0, 0), messageId, data }, { mtu: this.#o.mtu, reserve });
    return { messageId, message };
  }

  /**
   * Fragments of one message to one node or every node: `which` (default: all of them).
   * Resolves with how many went out; yields between bursts so the receiver's socket buffer
   * keeps up.
   */
  async sendFragments(to: 'cluster' | string, message: MessageFragments, which?: Iterable<number>): Promise<number> {
    const dst = to === 'cluster' ? this.#o.clusterMac : parseMac(to);
    let sent = 0;
    for (const k of which ?? Array.from({ length: message.total }, (_, i) => i)) {
      if (!this.#open) return sent;
      writeEthernetHeader(this.#tx, 0, dst, this.#o.ownMac, ETH_P_LNLB);
      const len = message.write(k, this.#tx, ETH_HLEN);
      this.#sealAndSend(MessageType.CONNTRACK, dst, len);
      sent++;
      if (sent % FRAGMENT_BURST === 0) await new Promise<void>((resolve) => this.#clock.setTimer(resolve, 1));
    }
    return sent;
  }

  /** The data bytes a STATE_NACK may carry: one unfragmented message. */
  get stateReplyRoom(): number {
    return this.#o.mtu - MESSAGE_HEADER_LENGTH - (this.#auth.keyed ? AUTH_TRAILER_LENGTH : 0);
  }

  /** A STATE_ACK or STATE_NACK to the node that sends us a state (unicast, sealed). */
  sendStateReply(type: MessageType.STATE_ACK | MessageType.STATE_NACK, to: string, data: Uint8Array): void {
    if (!this.#open) return;
    const dst = parseMac(to);
    writeEthernetHeader(this.#tx, 0, dst, this.#o.ownMac, ETH_P_LNLB);
    const len = encodeMessage(this.#tx, ETH_HLEN, { clusterIp: this.#o.clusterIp, type, messageId: this.#nextMessageId(), data });
    this.#sealAndSend(type, dst, len);
  }

  /** The fragments of message `messageId` from `from` not received yet; undefined when it is not being reassembled. */
  missingFragments(from: string, messageId: number): { first: number; bits: number; bitmap: Uint8Array } | undefined {
    return this.#reassembler.missingFragments(parseMac(from), messageId);
  }

  /** A message from `from` is asked for again: its fragments start it anew even if it was dropped lately. */
  reopenState(from: string, messageId: number): void {
    this.#reassembler.reopen(parseMac(from), messageId);
  }

  /** Drops every state message being reassembled from `from` (another transfer, or another sender, replaces it). */
  forgetStateFrom(from: string): number {
    return this.#reassembler.forgetSender(parseMac(from));
  }

  #sealAndSend(type: MessageType, dst: Uint8Array, msgLen: number): void {
    const tx = this.#tx;
    let len = ETH_HLEN + this.#auth.seal(tx, ETH_HLEN, msgLen, this.#o.ownMac, dst);
    if (len < ETH_ZLEN) {
      tx.fill(0, len, ETH_ZLEN);
      len = ETH_ZLEN;
    }
    const name = messageTypeName(type);
    if (this.#socket.send(tx, len)) this.counters.sent[name] = (this.counters.sent[name] ?? 0) + 1;
    else this.#reject('send-dropped');
  }

  #nextMessageId(): number {
    this.#messageId = (this.#messageId + 1) >>> 0;
    return this.#messageId;
  }

  #payload(weight: number | undefined, incarnation: number): Uint8Array {
    const out = this.#payloadBytes;
    let at = 0;
    if (weight !== undefined) {
      out[0] = weight >>> 8;
      out[1] = weight;
      at = 2;
    }
    writeU32(out, at, incarnation);
    at += INCARNATION_BYTES;
    const rules = this.#o.rules;
    const slots = Math.min(rules.params.length, MAX_ANNOUNCED_SLOTS);
    out[at] = RULES_MARK;
    out[at + 1] = slots;
    writeU32(out, at + 2, rules.digest);
    at += RULES_HEADER_BYTES;
    for (let i = 0; i < slots; i++, at += 2) {
      out[at] = rules.params[i]! >>> 8;
      out[at + 1] = rules.params[i]!;
    }
    const identity = this.#o.identity;
    if (identity !== undefined) at += encodeIdentity(out, at, identity.name, identity.address);
    const digest = this.announcedBucketDigest;
    if (digest !== undefined) {
      out[at] = BUCKETS_MARK;
      writeU32(out, at + 1, digest);
      writeU32(out, at + 5, this.announcedHandedDigest);
      writeU32(out, at + 9, this.announcedViewDigest);
      const mask = this.announcedDraining;
      out[at + BUCKETS_HANDED_BYTES] = mask === undefined ? 0 : BUCKETS_MASK_WORDS;
      at += BUCKETS_HANDED_BYTES + 1;
      if (mask !== undefined) for (let k = 0; k < BUCKETS_MASK_WORDS; k++, at += 4) writeU32(out, at, mask[k]!);
    }
    return out.subarray(0, at);
  }

  /** Reads the rules block after the incarnation at `at`, if the message has one; returns where it ends (-1: none). */
  #readRules(rx: Uint8Array, at: number, end: number): number {
    const r = this.received;
    r.ruleSlots = -1;
    if (at + RULES_HEADER_BYTES > end || rx[at] !== RULES_MARK) return -1;
    const slots = rx[at + 1]!;
    if (slots > MAX_ANNOUNCED_SLOTS || at + RULES_HEADER_BYTES + 2 * slots > end) {
      this.#reject('rules-block-malformed');
      return -1;
    }
    r.rulesDigest = readU32(rx, at + 2);
    for (let i = 0, p = at + RULES_HEADER_BYTES; i < slots; i++, p += 2) r.ruleParams[i] = (rx[p]! << 8) | rx[p + 1]!;
    r.ruleSlots = slots;
    return at + RULES_HEADER_BYTES + 2 * slots;
  }

  /**
   * Reads the identity block at `at` (after the rules block), if the message has one; a
   * malformed one is counted and dropped. Returns where the next block starts (-1: none can).
   */
  #readIdentity(rx: Uint8Array, at: number, end: number, sender: { name: string | undefined }): number {
    const r = this.received;
    r.hasIdentity = false;
    if (at < 0) return -1;
    const result = decodeIdentity(rx, at, end, r.identity, sender.name);
    if (result === IdentityResult.MALFORMED) this.#reject('identity-block-malformed');
    r.hasIdentity = result === IdentityResult.OK;
    if (r.hasIdentity) sender.name = r.identity.name;
    return result === IdentityResult.OK ? at + 2 + rx[at + 1]! : result === IdentityResult.ABSENT ? at : -1;
  }

  /** Reads the bucket digest block at `at`, if the message has one (received.bucketDigest, -1 without). */
  #readBuckets(rx: Uint8Array, at: number, end: number): void {
    const r = this.received;
    r.bucketDigest = -1;
    r.handedDigest = -1;
    r.viewDigest = -1;
    r.hasDraining = false;
    if (at < 0 || at + BUCKETS_DIGEST_ONLY_BYTES > end || rx[at] !== BUCKETS_MARK) return;
    r.bucketDigest = readU32(rx, at + 1);
    if (at + BUCKETS_HANDED_BYTES > end) return;
    r.handedDigest = readU32(rx, at + 5);
    r.viewDigest = readU32(rx, at + 9);
    const words = at + BUCKETS_HANDED_BYTES < end ? rx[at + BUCKETS_HANDED_BYTES]! : 0;
    if (words !== BUCKETS_MASK_WORDS || at + BUCKETS_HANDED_BYTES + 1 + 4 * words > end) return;
    for (let k = 0, p = at + BUCKETS_HANDED_BYTES + 1; k < words; k++, p += 4) r.draining[k] = readU32(rx, p);
    r.hasDraining = true;
  }

  /** When the frame being handled reached this host (wall-clock ms, ControlSocket.receivedAt): valid during onMessage. */
  get receivedAt(): number {
    return this.#socket.receivedAt();
  }

  /** The source MAC of the frame being handled, as bytes: valid during onMessage only (the array is reused). */
  get receivedFrom(): Uint8Array {
    return this.#srcMac;
  }

  /** Frames are being handled (a batch under way): a handler's follow-up may wait for its end. */
  get reading(): boolean {
    return this.#reading;
  }

  /** uv_poll (or the memory wire) says frames are waiting. */
  #readable(): void {
    if (!this.#drainQueued) this.#drain();
  }

  /**
   * Reads what is waiting now, up to READ_BATCH frames, before a timer decides anything: in
   * Node's event loop the timers run before the I/O callbacks, so a heartbeat that arrived in
   * time could otherwise sit unread while the member's death was declared (seen at hb 10 ms,
   * dead after 30 ms under a flood: "silent for 31 ms" of a live node). True when it stopped
   * at the batch's end: more may be waiting.
   */
  readWaiting(): boolean {
    return this.#readBatch();
  }

  /**
   * Reads at most READ_BATCH frames, then, if more may be waiting, yields (the clock's defer:
   * setImmediate) so due timers (heartbeats, round timeouts) run between batches: a flood
   * cannot starve them.
   */
  #drain(): void {
    this.#drainQueued = false;
    const more = this.#readBatch();
    this.#o.onReadDone?.();
    if (!more || !this.#open) return;
    this.#drainQueued = true;
    this.#clock.defer(() => this.#drain());
  }

  /** Up to READ_BATCH frames; true when it stopped at the batch's end (more may wait). */
  #readBatch(): boolean {
    const rx = this.#rx;
    const startedAt = this.#clock.preciseWallNow();
    this.#reading = true;
    try {
      for (let n = 0; n < READ_BATCH; n++) {
        if (!this.#open) return false;
        const len = this.#socket.recv(rx);
        if (len < 0) {
          this.readThrough = Math.max(this.readThrough, startedAt, this.#lastReceivedAt);
          return false;
        }
        this.#framesRead++;
        const at = this.#socket.receivedAt();
        if (at > this.#lastReceivedAt) this.#lastReceivedAt = at;
        this.#frame(len);
      }
      return true;
    } finally {
      this.#reading = false;
    }
  }

  /**
   * Frames read since the last call, whatever they were: a flood of forged heartbeats rings no
   * doorbell, and a node that read it only on its timer would let the ring overflow between
   * two reads (control-plane.ts counts them per heartbeat).
   */
  takeFramesRead(): number {
    const n = this.#framesRead;
    this.#framesRead = 0;
    return n;
  }

  /**
   * HEARTBEATs announcing a weight read since the last call, authenticated or not: the data
   * socket passes them to the actors too, which hold new flows until a view reads through them.
   */
  takeAnnouncementsRead(): number {
    const n = this.#announcementsRead;
    this.#announcementsRead = 0;
    return n;
  }

  /** Announcements read and not yet taken. */
  get announcementsRead(): number {
    return this.#announcementsRead;
  }

  /**
   * One received frame. The cheap checks come first (length, EtherType, our own frame, the
   * header decodes with its CRC, our cluster IP, a known type); the HMAC, the expensive one,
   * is rate-limited for senders the membership does not know (one global bucket, so a flood
   * of spoofed MACs costs at most that many HMACs a second and no per-sender memory; members
   * are never limited). Every refusal is counted by reason.
   */
  #frame(len: number): void {
    const rx = this.#rx;
    const m = this.#decoded;
    if (len < ETH_HLEN + MESSAGE_HEADER_LENGTH) {
      this.#reject('too-short');
      return;
    }
    if (rx[12] !== ETH_P_LNLB >>> 8 || rx[13] !== (ETH_P_LNLB & 0xff)) {
      this.#reject('not-lnlb');
      return;
    }
    // What the data filter passes to the actors (bpf.ts dataFilter), counted before any check.
    if (isWeightAnnouncement(rx, ETH_HLEN, len - ETH_HLEN)) this.#announcementsRead++;
    if (macEquals(rx, 6, this.#o.ownMac, 0)) {
      // The socket never reads back what we send (PACKET_IGNORE_OUTGOING): someone forged our MAC.
      this.#reject('own-source');
      return;
    }
    const decoded = decodeMessage(rx, ETH_HLEN, len - ETH_HLEN, m);
    if (decoded !== DecodeResult.OK) {
      this.#reject(DecodeResult[decoded] ?? 'invalid');
      return;
    }
    if (m.clusterIp !== this.#o.clusterIp) {
      this.#reject('other-cluster');
      return;
    }
    const srcKey = macToNumber(rx, 6);
    const signed = (m.flags & FLAG_AUTHENTICATED) !== 0;
    // Work that costs (an HMAC; for an unkeyed node, a membership change) only within the
    // strangers' budget. A refusal a flag can decide (UNSIGNED, UNEXPECTED_SIGNATURE) is free.
    if (signed === this.#auth.keyed && !this.#o.isKnownSender(srcKey) && this.#o.wasMember?.(srcKey) !== true && !this.#strangers.take(this.#clock.now())) {
      this.#reject('unknown-sender-rate-limited');
      return;
    }
    // No views per frame (a flood of forged frames reaches this line): the source MAC is copied
    // into a reused array, and the frame itself is the destination MAC (open reads its first 6 bytes).
    const src = this.#srcMac;
    for (let i = 0; i < 6; i++) src[i] = rx[6 + i]!;
    const verdict = this.#auth.open(rx, ETH_HLEN, len - ETH_HLEN, src, rx);
    if (verdict !== AuthVerdict.OK) {
      const name = authVerdictName(verdict);
      this.#reject(`auth-${name}`);
      if (verdict === AuthVerdict.BAD_MAC || verdict === AuthVerdict.UNSIGNED || verdict === AuthVerdict.UNEXPECTED_SIGNATURE) {
        // CONNTRACK's flags are a protocol number, not membership flags.
        const claimsJoined = m.type !== MessageType.CONNTRACK && (m.flags & FLAG_JOINED) !== 0;
        this.#o.onUnauthenticated(srcKey, name as UnauthenticatedVerdict, claimsJoined);
      }
      return;
    }
    if (m.type === MessageType.CONNTRACK) {
      // Tracking state replaces tables: only from the members that may send it, checked
      // before reassembly so nobody else can hold reassembly memory.
      if (!this.#o.acceptsStateFrom(srcKey)) {
        this.#reject('state-from-non-member');
        return;
      }
      this.#count(MessageType.CONNTRACK);
      this.#stateFragment(src);
      return;
    }
    if (m.type === MessageType.STATE_ACK || m.type === MessageType.STATE_NACK) {
      // Answers about a transfer only from nodes of the table (a newcomer is one from its JOIN).
      if (!this.#o.isKnownSender(srcKey)) {
        this.#reject('state-reply-from-non-member');
        return;
      }
      this.#count(m.type);
      this.#o.onStateReply(m.type, formatMac(src), rx.subarray(m.dataOffset, m.dataOffset + m.dataLength));
      return;
    }
    this.#count(m.type);
    const weighted = m.weight >= 0 || ((m.type === MessageType.JOIN || m.type === MessageType.WELCOME) && m.dataLength >= 2 + INCARNATION_BYTES);
    const at = weighted ? 2 : 0;
    const info = this.#info;
    info.weight = m.weight > 0 ? m.weight : weighted ? (rx[m.dataOffset]! << 8) | rx[m.dataOffset + 1]! : 0;
    info.incarnation = m.dataLength >= at + INCARNATION_BYTES ? readU32(rx, m.dataOffset + at) : 0;
    info.joined = (m.flags & FLAG_JOINED) !== 0;
    info.probe = (m.flags & FLAG_PROBE) !== 0;
    const end = m.dataOffset + m.dataLength;
    const sender = this.#sender(srcKey, src);
    this.#readBuckets(rx, this.#readIdentity(rx, this.#readRules(rx, m.dataOffset + at + INCARNATION_BYTES, end), end, sender), end);
    this.#o.onMessage(m.type as MessageType, sender.mac, info);
  }

  #sender(key: number, src: Uint8Array): { mac: string; name: string | undefined } {
    let sender = this.#senders.get(key);
    if (sender === undefined) {
      if (this.#senders.size >= SENDER_CACHE_MAX) this.#senders.clear();
      sender = { mac: formatMac(src), name: undefined };
      this.#senders.set(key, sender);
    }
    return sender;
  }

  #count(type: number): void {
    const name = messageTypeName(type);
    this.counters.received[name] = (this.counters.received[name] ?? 0) + 1;
  }

  #stateFragment(src: Uint8Array): void {
    const flags = this.#decoded.flags & FLAGS_MASK;
    const messageId = this.#decoded.messageId;
    const fragmentTotal = this.#decoded.fragmentTotal;
    const data = this.#reassembler.pushDecoded(this.#decoded, this.#rx, src, this.#clock.now());
    const verdict = this.#reassembler.lastVerdict;
    if (verdict !== ReassemblyVerdict.COMPLETE && verdict !== ReassemblyVerdict.STORED && verdict !== ReassemblyVerdict.DUPLICATE) {
      this.#reject(`fragment-${reassemblyVerdictName(verdict)}`);
    }
    if (data !== undefined || verdict === ReassemblyVerdict.STORED) this.#o.onState(formatMac(src), flags, messageId, fragmentTotal, data);
  }

  /** Drops reassemblies whose sender went quiet (a sender that left sends no more fragments). */
  expire(now: number): void {
    this.#reassembler.expire(now);
  }

  /** Frames the socket dropped, not read in time (a flood). */
  get socketDrops(): number {
    return this.#open ? this.#socket.droppedFrames() : 0;
  }

  /** Messages being reassembled and the bytes they hold. */
  get reassembling(): { messages: number; bytes: number } {
    return { messages: this.#reassembler.pending, bytes: this.#reassembler.reservedBytes };
  }

  /** Fragments and replay windows by reason, for the status. */
  get detail(): { auth: Record<string, number>; reassembly: Record<string, number> } {
    return { auth: { ...this.#auth.counters }, reassembly: { ...this.#reassembler.counters } };
  }

  #reject(reason: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
  }
}
