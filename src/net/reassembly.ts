/**
 * Fragmentation and reassembly of long control messages (CONNTRACK carries a handler's
 * serialized table, possibly megabytes), as LNLB does it: every fragment carries the full
 * LNLB header with the same messageId, its fragmentNumber 0..fragmentTotal-1, the
 * fragmentTotal, a dataLength that is the fragment's own share, and the CRC-32 of the WHOLE
 * reassembled data; the receiver keeps fragments per (sender MAC, messageId) until all of
 * 0..total-1 are there, checks the CRC, and hands the data out once.
 *
 * Sender, one fragment (at most `mtu` bytes, `reserve` left free for the auth trailer):
 *
 *   off  +0 header (28)   +28 data[k*chunk, k*chunk + len_k)   [+reserve: seal() appends]
 *        chunk = mtu - 28 - reserve; len_k = chunk for k < total-1, the rest for the last
 *
 * Receiver, one message being reassembled (a Partial), held in blocks of consecutive
 * fragments, each allocated when its first fragment arrives:
 *
 *   blocks   j → ┌ chunk ┬ chunk ┬ ... ┐  perBlock fragments (~16 KiB, 1..32), fragment k
 *                └───────┴───────┴─────┘  in block k / perBlock at (k % perBlock) * chunk;
 *                mask: bit i set when fragment j*perBlock + i is in
 *   stash    the last fragment, when it comes before all the others (the chunk size is unknown
 *            until a fragment that is not the last arrives); it then moves into its block
 *
 * What a message holds is what arrived, rounded up to whole blocks: a header claiming 65535
 * fragments holds the block of its own fragment, nothing for the rest until it comes (it
 * used to reserve the whole claim up front, and two 1 KB
 * frames claiming 65535 fragments each took the whole 128 MiB budget and blocked a real
 * state transfer until they expired). The data is handed out as one buffer, copied from the
 * blocks when there are several (a view when there is one): one copy of the message, outside
 * the budget, for a path that runs once per state transfer.
 *
 * Bounds, each refusal counted by reason (ReassemblyVerdict): `maxMessageBytes` per message
 * (64 MiB: checked against fragmentTotal as soon as it is seen), `maxMessages` in progress
 * (64) and `maxMessagesPerSender` (8), bytes held over all messages `maxTotalBytes` (128 MiB)
 * and per sender `maxBytesPerSender` (one largest message). A fragment that would pass a byte
 * cap drops its message at once (it can no longer complete: only a receiver that asks for it
 * again, reopen(), gets it resent) and frees what it held. A message goes `timeoutMs` (2 s) after its last new fragment or, at the
 * latest, `deadlineMs` (10 s) after its first, whatever arrives (a sender trickling fragments
 * cannot keep one alive); duplicates never refresh it. `acceptSender` (optional) is asked
 * when a sender's fragment would start a message: the control plane's "members only";
 * forgetSender drops a sender's messages at once when it leaves. A message that completed,
 * failed its CRC or was dropped is remembered for timeoutMs, so that a late fragment of it
 * does not start it again (DUPLICATE, or ABANDONED). Besides the byte caps, a message's
 * bookkeeping (an object, its block map) is bounded by maxMessages.
 *
 * Pure: no I/O, time passed in. Per fragment, push() allocates only the view it copies from
 * (and a block every perBlock fragments).
 */
import { crc32 } from 'node:zlib';
import { writeU32 } from './bytes.js';
import {
  createDecodedMessage,
  decodeMessage,
  DecodeResult,
  isMessageType,
  MESSAGE_HEADER_LENGTH,
  MessageType,
  MSG_OFF_CLUSTER_IP,
  MSG_OFF_CRC32,
  MSG_OFF_DATA,
  MSG_OFF_DATA_LENGTH,
  MSG_OFF_FLAGS,
  MSG_OFF_FRAGMENT_NUMBER,
  MSG_OFF_FRAGMENT_TOTAL,
  MSG_OFF_MESSAGE_ID,
  MSG_OFF_TYPE,
  type DecodedMessage,
} from './cluster-message.js';
import { ETH_ALEN, macToNumber } from './ethernet.js';

/** fragmentTotal is a u16. */
export const MAX_FRAGMENTS = 0xffff;
/** Smallest mtu fragmentMessage takes (IPv4's minimum MTU). */
export const MIN_MTU = 68;
export const DEFAULT_REASSEMBLY_TIMEOUT_MS = 2000;
/** A 64 MiB message at 100 Mbit/s takes 5.4 s. */
export const DEFAULT_REASSEMBLY_DEADLINE_MS = 10_000;
export const DEFAULT_MAX_MESSAGES = 64;
export const DEFAULT_MAX_MESSAGES_PER_SENDER = 8;
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_TOTAL_BYTES = 128 * 1024 * 1024;
/** What a message's last block may hold beyond its data (under one chunk), in the per-sender default. */
const LAST_BLOCK_SLACK = 64 * 1024;

// ---------------------------------------------------------------------------------------
// Sender

export interface FragmentFields {
  clusterIp: number;
  type: MessageType;
  /** u32; CONNTRACK: the handler index. Default 0. */
  flags?: number;
  messageId: number;
  data: Uint8Array;
}

export interface FragmentOptions {
  /** Most bytes of one control message (the Ethernet payload: the link MTU, 1500). */
  mtu: number;
  /** Bytes left free at the end of each fragment: AUTH_TRAILER_LENGTH when keyed. Default 0. */
  reserve?: number;
}

/** Data bytes per fragment for an mtu and reserve. */
export function fragmentChunk(options: FragmentOptions): number {
  const reserve = options.reserve ?? 0;
  if (!Number.isInteger(reserve) || reserve < 0) throw new RangeError(`reserve must be a non-negative integer, got ${reserve}`);
  if (!Number.isInteger(options.mtu) || options.mtu < MIN_MTU || options.mtu > 0xffff) {
    throw new RangeError(`mtu must be an integer in ${MIN_MTU}..65535, got ${options.mtu}`);
  }
  const chunk = options.mtu - MESSAGE_HEADER_LENGTH - reserve;
  if (chunk < 1) throw new RangeError(`mtu ${options.mtu} leaves no room for data after the header and ${reserve} reserved bytes`);
  return chunk;
}

/** Fragments a message of dataLength bytes needs (1 for an empty message). */
export function fragmentCount(dataLength: number, options: FragmentOptions): number {
  return Math.max(1, Math.ceil(dataLength / fragmentChunk(options)));
}

/**
 * A message cut into fragments. Nothing is copied until write(): each fragment is written
 * into a caller buffer (typically the channel's transmit buffer, after the Ethernet header),
 * then sealed and sent by the caller.
 */
export class MessageFragments {
  readonly total: number;
  /** Data bytes of every fragment but the last. */
  readonly chunk: number;
  /** CRC-32 of the whole data, written in every fragment's header. */
  readonly crc32: number;
  readonly #m: FragmentFields;
  readonly #flags: number;

  constructor(m: FragmentFields, options: FragmentOptions) {
    checkU32('clusterIp', m.clusterIp);
    checkU32('messageId', m.messageId);
    this.#flags = m.flags ?? 0;
    checkU32('flags', this.#flags);
    if (!isMessageType(m.type)) throw new RangeError(`unknown message type ${String(m.type)}`);
    this.chunk = fragmentChunk(options);
    this.total = fragmentCount(m.data.length, options);
    if (this.total > MAX_FRAGMENTS) {
      throw new RangeError(`${m.data.length} bytes need ${this.total} fragments at mtu ${options.mtu}; the most is ${MAX_FRAGMENTS}`);
    }
    if (this.total > 1 && (m.type === MessageType.HEARTBEAT || m.type === MessageType.RETRASM)) {
      throw new RangeError(`a ${MessageType[m.type]} is never fragmented`);
    }
    this.#m = m;
    this.crc32 = crc32(m.data);
  }

  /** Data bytes of fragment k. */
  dataLength(k: number): number {
    return k < this.total - 1 ? this.chunk : this.#m.data.length - (this.total - 1) * this.chunk;
  }

  /** Writes fragment k (header + its data) at out[off]; returns its length (no padding). */
  write(k: number, out: Uint8Array, off: number): number {
    if (!Number.isInteger(k) || k < 0 || k >= this.total) throw new RangeError(`fragment ${k} of ${this.total}`);
    const len = this.dataLength(k);
    if (!Number.isInteger(off) || off < 0 || off + MESSAGE_HEADER_LENGTH + len > out.length) {
      throw new RangeError(`no room for a ${MESSAGE_HEADER_LENGTH + len}-byte fragment at offset ${off} (buffer ${out.length})`);
    }
    const m = this.#m;
    writeU32(out, off + MSG_OFF_CLUSTER_IP, m.clusterIp);
    writeU32(out, off + MSG_OFF_TYPE, m.type);
    writeU32(out, off + MSG_OFF_DATA_LENGTH, len);
    writeU32(out, off + MSG_OFF_FLAGS, this.#flags);
    writeU32(out, off + MSG_OFF_MESSAGE_ID, m.messageId);
    out[off + MSG_OFF_FRAGMENT_NUMBER] = k >>> 8;
    out[off + MSG_OFF_FRAGMENT_NUMBER + 1] = k;
    out[off + MSG_OFF_FRAGMENT_TOTAL] = this.total >>> 8;
    out[off + MSG_OFF_FRAGMENT_TOTAL + 1] = this.total;
    writeU32(out, off + MSG_OFF_CRC32, this.crc32);
    const from = k * this.chunk;
    out.set(m.data.subarray(from, from + len), off + MSG_OFF_DATA);
    return MESSAGE_HEADER_LENGTH + len;
  }

  /**
   * Writes fragment 0, 1, ... in turn into the same out[off..] and yields each one's length:
   * send (and seal) before asking for the next.
   */
  *frames(out: Uint8Array, off: number): Generator<number, void, void> {
    for (let k = 0; k < this.total; k++) yield this.write(k, out, off);
  }
}

/** Cuts `m` into fragments of at most options.mtu bytes (options.reserve kept free in each). */
export function fragmentMessage(m: FragmentFields, options: FragmentOptions): MessageFragments {
  return new MessageFragments(m, options);
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${name} must be a u32, got ${v}`);
}

// ---------------------------------------------------------------------------------------
// Receiver

export enum ReassemblyVerdict {
  /** The last missing fragment arrived and the CRC matched: data handed out. */
  COMPLETE = 0,
  /** A new fragment kept; the message is not complete yet. */
  STORED = 1,
  /** A fragment already received (or of a message already delivered): ignored. */
  DUPLICATE = 2,
  /** The frame does not decode, or its header fields are impossible. */
  MALFORMED = 3,
  /** Disagrees with the message's earlier fragments (total, type, flags, CRC, cluster, sizes). */
  INCONSISTENT = 4,
  /** The message would exceed maxMessageBytes (fragmentTotal alone can tell). */
  TOO_LARGE = 5,
  /** maxMessages are being reassembled already (all senders together). */
  TOO_MANY_MESSAGES = 6,
  /** Holding this fragment would exceed maxTotalBytes over all messages: its message is dropped. */
  OVER_BUDGET = 7,
  /** All fragments there, CRC-32 mismatch: the message is dropped, nothing handed out. */
  BAD_CRC = 8,
  /** maxMessagesPerSender of this sender's messages are being reassembled already. */
  SENDER_TOO_MANY_MESSAGES = 9,
  /** Holding this fragment would exceed maxBytesPerSender for its sender: its message is dropped. */
  SENDER_OVER_BUDGET = 10,
  /** acceptSender refused the sender: nothing of it is kept or handed out. */
  SENDER_REFUSED = 11,
  /** A fragment of a message dropped lately (expired, over budget, sender forgotten): not restarted. */
  ABANDONED = 12,
}

export interface ReassemblyCounters {
  complete: number;
  stored: number;
  duplicate: number;
  malformed: number;
  inconsistent: number;
  tooLarge: number;
  tooManyMessages: number;
  overBudget: number;
  badCrc: number;
  senderTooManyMessages: number;
  senderOverBudget: number;
  senderRefused: number;
  abandoned: number;
  /** Messages dropped incomplete, timeoutMs after their last new fragment (not a push verdict). */
  expired: number;
  /** Messages dropped incomplete at their deadline, deadlineMs after their first fragment (not a push verdict). */
  overdue: number;
  /** Messages dropped incomplete by forgetSender (not a push verdict). */
  forgotten: number;
}

export interface ReassemblerOptions {
  /** Messages in progress, all senders together. Default 64. */
  maxMessages?: number;
  /** Messages in progress per sender. Default 8. */
  maxMessagesPerSender?: number;
  /** Bytes of one message. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Bytes held for messages in progress, all senders together. Default 128 MiB. */
  maxTotalBytes?: number;
  /** Bytes held for one sender's messages in progress. Default min(maxTotalBytes, maxMessageBytes + 64 KiB). */
  maxBytesPerSender?: number;
  /** A message is dropped this long after its last new fragment. Default 2 s. */
  timeoutMs?: number;
  /** ... and at the latest this long after its first fragment, whatever arrives. Default 10 s. */
  deadlineMs?: number;
  /**
   * Asked when a sender's fragment would start a message (not for every fragment): false
   * refuses it (SENDER_REFUSED). For "members only"; a sender that leaves later is dropped
   * with forgetSender. Default: every sender.
   */
  acceptSender?: (srcMac: Uint8Array, srcMacOff: number) => boolean;
}

/** A block of up to 32 consecutive fragments' data (`mask` bit i: fragment first+i is in). */
class Block {
  mask = 0;
  constructor(readonly data: Uint8Array) {}
}

/** A message being reassembled. */
class Partial {
  /** Data bytes of every fragment but the last, 0 until a fragment that is not the last arrived. */
  chunk = 0;
  /** Fragments per block, once chunk is known. */
  perBlock = 0;
  /** Data bytes of the last fragment, -1 until it arrived. */
  lastLength = -1;
  received = 0;
  /** Bytes held (blocks and stash), counted against maxTotalBytes and maxBytesPerSender. */
  held = 0;
  /** The last fragment's data when it came before the chunk size was known. */
  stash: Uint8Array | undefined;
  readonly blocks = new Map<number, Block>();
  /** The block the last fragment went to (fragments mostly arrive in order): no Map lookup. */
  hotIndex = -1;
  hot: Block | undefined;
  readonly deadline: number;

  constructor(
    readonly mac: number,
    readonly messageId: number,
    readonly clusterIp: number,
    readonly type: number,
    readonly flags: number,
    readonly crc: number,
    readonly total: number,
    public lastSeen: number,
    deadlineMs: number,
  ) {
    this.deadline = lastSeen + deadlineMs;
  }

  has(k: number): boolean {
    if (k === this.total - 1 && this.stash !== undefined) return true;
    if (this.perBlock === 0) return false;
    const b = this.block(Math.floor(k / this.perBlock));
    return b !== undefined && (b.mask & (1 << (k % this.perBlock))) !== 0;
  }

  block(j: number): Block | undefined {
    if (j === this.hotIndex) return this.hot;
    const b = this.blocks.get(j);
    if (b !== undefined) {
      this.hotIndex = j;
      this.hot = b;
    }
    return b;
  }
}

export function reassemblyVerdictName(v: ReassemblyVerdict): string {
  return ReassemblyVerdict[v] ?? `UNKNOWN(${String(v)})`;
}

/** Aimed-for bytes of one block (a block holds at least 1 and at most 32 fragments). */
const BLOCK_BYTES = 16 * 1024;
const MAX_FRAGMENTS_PER_BLOCK = 32;
/** The done ring's entry kinds. */
const DONE_DELIVERED = 0;
const DONE_ABANDONED = 1;

export class Reassembler {
  readonly counters: ReassemblyCounters = {
    complete: 0,
    stored: 0,
    duplicate: 0,
    malformed: 0,
    inconsistent: 0,
    tooLarge: 0,
    tooManyMessages: 0,
    overBudget: 0,
    badCrc: 0,
    senderTooManyMessages: 0,
    senderOverBudget: 0,
    senderRefused: 0,
    abandoned: 0,
    expired: 0,
    overdue: 0,
    forgotten: 0,
  };
  /** Verdict of the last push (every push counts exactly one verdict). */
  lastVerdict: ReassemblyVerdict = ReassemblyVerdict.STORED;

  readonly #maxMessages: number;
  readonly #maxPerSender: number;
  readonly #maxMessageBytes: number;
  readonly #maxTotalBytes: number;
  readonly #maxSenderBytes: number;
  readonly #timeoutMs: number;
  readonly #deadlineMs: number;
  readonly #acceptSender: ((srcMac: Uint8Array, srcMacOff: number) => boolean) | undefined;
  readonly #decoded = createDecodedMessage();
  readonly #partials: Partial[] = [];
  #lastHit: Partial | undefined;
  #held = 0;
  #nextDeadline = Infinity;
  /** The latest time push or expire was given (forgetSender's now). */
  #now = -Infinity;
  // Recently finished messages (delivered, failed CRC, or dropped): a ring of maxMessages
  // entries, so that their late fragments do not start a new message.
  readonly #doneMac: Float64Array;
  readonly #doneId: Uint32Array;
  readonly #doneCrc: Uint32Array;
  readonly #doneTotal: Uint32Array;
  readonly #doneUntil: Float64Array;
  readonly #doneKind: Uint8Array;
  #doneNext = 0;

  constructor(options: ReassemblerOptions = {}) {
    this.#maxMessages = positive('maxMessages', options.maxMessages ?? DEFAULT_MAX_MESSAGES);
    this.#maxPerSender = positive('maxMessagesPerSender', options.maxMessagesPerSender ?? DEFAULT_MAX_MESSAGES_PER_SENDER);
    this.#maxMessageBytes = positive('maxMessageBytes', options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    this.#maxTotalBytes = positive('maxTotalBytes', options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES);
    this.#maxSenderBytes = positive(
      'maxBytesPerSender',
      options.maxBytesPerSender ?? Math.min(this.#maxTotalBytes, this.#maxMessageBytes + LAST_BLOCK_SLACK),
    );
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs ?? DEFAULT_REASSEMBLY_TIMEOUT_MS);
    this.#deadlineMs = positive('deadlineMs', options.deadlineMs ?? DEFAULT_REASSEMBLY_DEADLINE_MS);
    this.#acceptSender = options.acceptSender;
    const n = this.#maxMessages;
    this.#doneMac = new Float64Array(n);
    this.#doneId = new Uint32Array(n);
    this.#doneCrc = new Uint32Array(n);
    this.#doneTotal = new Uint32Array(n);
    this.#doneUntil = new Float64Array(n).fill(-Infinity);
    this.#doneKind = new Uint8Array(n);
  }

  /** Messages being reassembled. */
  get pending(): number {
    return this.#partials.length;
  }

  /** Bytes held for them (counted against maxTotalBytes): what arrived, in whole blocks. */
  get reservedBytes(): number {
    return this.#held;
  }

  /** Bytes held for one sender's messages (counted against maxBytesPerSender). */
  heldBytesOf(srcMac: Uint8Array, srcMacOff = 0): number {
    return this.#senderHeld(macToNumber(srcMac, srcMacOff));
  }

  /**
   * Takes the control message at frame[msgOff, msgOff+msgLen) from srcMac (6 bytes at
   * srcMacOff) at time `now` (ms). Returns the whole data when this fragment completes a
   * message whose CRC matches (or for a valid single-fragment message), else undefined; the
   * reason is lastVerdict, and every push counts one verdict. The header fields of the
   * completed message are this frame's. The returned array is the caller's. Never throws.
   */
  push(frame: Uint8Array, msgOff: number, msgLen: number, srcMac: Uint8Array, now: number, srcMacOff = 0): Uint8Array | undefined {
    const m = this.#decoded;
    const d = decodeMessage(frame, msgOff, msgLen, m);
    if (d !== DecodeResult.OK) {
      if (d === DecodeResult.BAD_CRC) return this.#verdict(ReassemblyVerdict.BAD_CRC);
      return this.#verdict(ReassemblyVerdict.MALFORMED);
    }
    return this.pushDecoded(m, frame, srcMac, now, srcMacOff);
  }

  /**
   * push() for a message the caller decoded already (decodeMessage said OK). The fields are
   * checked again against the buffer, so a stale or made-up DecodedMessage is only MALFORMED.
   */
  pushDecoded(m: DecodedMessage, frame: Uint8Array, srcMac: Uint8Array, now: number, srcMacOff = 0): Uint8Array | undefined {
    if (!Number.isFinite(now)) return this.#verdict(ReassemblyVerdict.MALFORMED);
    this.#now = now;
    if (now >= this.#nextDeadline) this.expire(now);
    const off = m.dataOffset;
    const len = m.dataLength;
    const k = m.fragmentNumber;
    const total = m.fragmentTotal;
    if (
      !Number.isInteger(off) ||
      !Number.isInteger(len) ||
      !Number.isInteger(k) ||
      !Number.isInteger(total) ||
      off < 0 ||
      len < 0 ||
      off + len > frame.length ||
      total < 1 ||
      total > MAX_FRAGMENTS ||
      k < 0 ||
      k >= total ||
      !Number.isInteger(srcMacOff) ||
      srcMacOff < 0 ||
      srcMacOff + ETH_ALEN > srcMac.length ||
      !isMessageType(m.type) ||
      !isU32(m.clusterIp) ||
      !isU32(m.flags) ||
      !isU32(m.messageId) ||
      !isU32(m.crc32)
    ) {
      return this.#verdict(ReassemblyVerdict.MALFORMED);
    }
    const last = k === total - 1;
    // Every fragment but the last is full and the last holds at least one byte, so the
    // message is at least total-1 + len bytes, or (total-1)*len + 1 if this is not the last.
    if ((last ? total - 1 + len : (total - 1) * len + 1) > this.#maxMessageBytes) return this.#verdict(ReassemblyVerdict.TOO_LARGE);
    if (total === 1) {
      if (this.#acceptSender !== undefined && !this.#acceptSender(srcMac, srcMacOff)) return this.#verdict(ReassemblyVerdict.SENDER_REFUSED);
      if (crc32(frame.subarray(off, off + len)) !== m.crc32) return this.#verdict(ReassemblyVerdict.BAD_CRC);
      this.#verdict(ReassemblyVerdict.COMPLETE);
      return frame.slice(off, off + len);
    }
    // In a fragmented message every fragment holds data (an empty one is never sent).
    if (len < 1) return this.#verdict(ReassemblyVerdict.MALFORMED);

    const mac = macToNumber(srcMac, srcMacOff);
    const id = m.messageId;
    let p = this.#lastHit;
    if (p === undefined || p.mac !== mac || p.messageId !== id) p = this.#find(mac, id);
    if (p === undefined) {
      const v = this.#mayStart(m, mac, srcMac, srcMacOff, now);
      if (v !== ReassemblyVerdict.STORED) return this.#verdict(v);
      p = new Partial(mac, id, m.clusterIp, m.type, m.flags, m.crc32, total, now, this.#deadlineMs);
      this.#partials.push(p);
      const expiry = Math.min(now + this.#timeoutMs, p.deadline);
      if (expiry < this.#nextDeadline) this.#nextDeadline = expiry;
    } else if (p.total !== total || p.type !== m.type || p.flags !== m.flags || p.crc !== m.crc32 || p.clusterIp !== m.clusterIp) {
      return this.#verdict(ReassemblyVerdict.INCONSISTENT);
    } else if (p.has(k)) {
      return this.#verdict(ReassemblyVerdict.DUPLICATE);
    }
    this.#lastHit = p;

    if (last) {
      if (p.chunk > 0 && len > p.chunk) return this.#refuse(p, ReassemblyVerdict.INCONSISTENT);
    } else if (p.chunk === 0) {
      // The first fragment that is not the last: it gives the chunk size.
      if (p.lastLength > len) return this.#refuse(p, ReassemblyVerdict.INCONSISTENT);
      if (p.lastLength > 0 && (total - 1) * len + p.lastLength > this.#maxMessageBytes) return this.#refuse(p, ReassemblyVerdict.TOO_LARGE);
      p.chunk = len;
      p.perBlock = Math.max(1, Math.min(MAX_FRAGMENTS_PER_BLOCK, Math.floor(BLOCK_BYTES / len)));
    } else if (len !== p.chunk) {
      return this.#refuse(p, ReassemblyVerdict.INCONSISTENT);
    }

    const v = this.#store(p, k, frame, off, len);
    if (v !== ReassemblyVerdict.STORED) return this.#drop(p, v, now);
    p.lastSeen = now;
    // The last fragment came first and was kept aside; now that the chunk size is known it
    // moves into its block like any other.
    if (p.stash !== undefined && p.chunk > 0) {
      const stash = p.stash;
      p.stash = undefined;
      p.held -= stash.length;
      this.#held -= stash.length;
      p.received--;
      const w = this.#store(p, total - 1, stash, 0, stash.length);
      if (w !== ReassemblyVerdict.STORED) return this.#drop(p, w, now);
    }
    if (p.received === total) return this.#finish(p, now);
    return this.#verdict(ReassemblyVerdict.STORED);
  }

  /**
   * Drops messages whose last new fragment is timeoutMs old (counted in `expired`) or whose
   * first is deadlineMs old (`overdue`); returns how many.
   */
  expire(now: number): number {
    if (now > this.#now) this.#now = now;
    const ps = this.#partials;
    let dropped = 0;
    let next = Infinity;
    for (let i = ps.length - 1; i >= 0; i--) {
      const p = ps[i]!;
      const idle = p.lastSeen + this.#timeoutMs;
      if (now >= p.deadline) {
        this.counters.overdue++;
      } else if (now >= idle) {
        this.counters.expired++;
      } else {
        next = Math.min(next, idle, p.deadline);
        continue;
      }
      this.#remove(i);
      this.#remember(p, now, DONE_ABANDONED);
      dropped++;
    }
    this.#nextDeadline = next;
    return dropped;
  }

  /**
   * Drops every message in progress from one sender at once (counted in `forgotten`), and
   * refuses their late fragments for a while (ABANDONED). For the control plane when a node
   * leaves the membership. Returns how many messages were dropped.
   */
  forgetSender(srcMac: Uint8Array, srcMacOff = 0): number {
    const now = this.#now;
    const mac = macToNumber(srcMac, srcMacOff);
    const ps = this.#partials;
    let dropped = 0;
    for (let i = ps.length - 1; i >= 0; i--) {
      const p = ps[i]!;
      if (p.mac !== mac) continue;
      this.#remove(i);
      this.#remember(p, now, DONE_ABANDONED);
      dropped++;
    }
    this.counters.forgotten += dropped;
    return dropped;
  }

  /**
   * The fragments of message (srcMac, messageId) not received yet, for a NACK: a bitmap (MSB
   * first) whose bit i is fragment first + i, from the first missing one to the last; undefined
   * when the message is not being reassembled (never started, complete, or dropped).
   */
  missingFragments(srcMac: Uint8Array, messageId: number, srcMacOff = 0): { first: number; bits: number; bitmap: Uint8Array; total: number } | undefined {
    const p = this.#find(macToNumber(srcMac, srcMacOff), messageId >>> 0);
    if (p === undefined) return undefined;
    let first = -1;
    let last = -1;
    for (let k = 0; k < p.total; k++) {
      if (p.has(k)) continue;
      if (first < 0) first = k;
      last = k;
    }
    if (first < 0) return undefined;
    const bits = last - first + 1;
    const bitmap = new Uint8Array(Math.ceil(bits / 8));
    for (let k = first; k <= last; k++) if (!p.has(k)) bitmap[(k - first) >>> 3]! |= 0x80 >>> ((k - first) & 7);
    return { first, bits, bitmap, total: p.total };
  }

  /**
   * Forgets that message (srcMac, messageId) was dropped, so its fragments start it again: the
   * receiver asked its sender for it once more (a NACK), so they are no late leftovers.
   */
  reopen(srcMac: Uint8Array, messageId: number, srcMacOff = 0): void {
    const mac = macToNumber(srcMac, srcMacOff);
    const id = messageId >>> 0;
    for (let j = 0; j < this.#doneMac.length; j++) {
      if (this.#doneMac[j] === mac && this.#doneId[j] === id && this.#doneKind[j] === DONE_ABANDONED) this.#doneUntil[j] = -Infinity;
    }
  }

  /** Forgets everything (the interface went away). Counters are kept. */
  clear(): void {
    this.#partials.length = 0;
    this.#lastHit = undefined;
    this.#held = 0;
    this.#nextDeadline = Infinity;
    this.#doneUntil.fill(-Infinity);
  }

  /** STORED if a new message from `mac` may start, else why not. */
  #mayStart(m: DecodedMessage, mac: number, srcMac: Uint8Array, srcMacOff: number, now: number): ReassemblyVerdict {
    const done = this.#recentlyDone(mac, m.messageId, m.crc32, m.fragmentTotal, now);
    if (done === DONE_DELIVERED) return ReassemblyVerdict.DUPLICATE;
    if (done === DONE_ABANDONED) return ReassemblyVerdict.ABANDONED;
    if (this.#acceptSender !== undefined && !this.#acceptSender(srcMac, srcMacOff)) return ReassemblyVerdict.SENDER_REFUSED;
    const ps = this.#partials;
    if (ps.length >= this.#maxMessages) return ReassemblyVerdict.TOO_MANY_MESSAGES;
    let mine = 0;
    for (const q of ps) if (q.mac === mac) mine++;
    if (mine >= this.#maxPerSender) return ReassemblyVerdict.SENDER_TOO_MANY_MESSAGES;
    return ReassemblyVerdict.STORED;
  }

  /** Copies fragment k in, allocating its block (or the stash) within the budgets; STORED or why not. */
  #store(p: Partial, k: number, frame: Uint8Array, off: number, len: number): ReassemblyVerdict {
    const src = frame.subarray(off, off + len);
    if (p.chunk === 0) {
      // Only the last fragment can come before the chunk size is known.
      const v = this.#hold(p, len);
      if (v !== ReassemblyVerdict.STORED) return v;
      const stash = allocate(len);
      if (stash === undefined) return this.#unhold(p, len, ReassemblyVerdict.OVER_BUDGET);
      stash.set(src);
      p.stash = stash;
      p.lastLength = len;
      p.received++;
      return ReassemblyVerdict.STORED;
    }
    const j = Math.floor(k / p.perBlock);
    let b = p.block(j);
    if (b === undefined) {
      const fragments = Math.min(p.perBlock, p.total - j * p.perBlock);
      const bytes = fragments * p.chunk;
      const v = this.#hold(p, bytes);
      if (v !== ReassemblyVerdict.STORED) return v;
      const data = allocate(bytes);
      if (data === undefined) return this.#unhold(p, bytes, ReassemblyVerdict.OVER_BUDGET);
      b = new Block(data);
      p.blocks.set(j, b);
      p.hotIndex = j;
      p.hot = b;
    }
    const i = k - j * p.perBlock;
    b.data.set(src, i * p.chunk);
    b.mask |= 1 << i;
    if (k === p.total - 1) p.lastLength = len;
    p.received++;
    return ReassemblyVerdict.STORED;
  }

  /** Counts `bytes` more held by p if both budgets allow it. */
  #hold(p: Partial, bytes: number): ReassemblyVerdict {
    if (this.#held + bytes > this.#maxTotalBytes) return ReassemblyVerdict.OVER_BUDGET;
    if (this.#senderHeld(p.mac) + bytes > this.#maxSenderBytes) return ReassemblyVerdict.SENDER_OVER_BUDGET;
    p.held += bytes;
    this.#held += bytes;
    return ReassemblyVerdict.STORED;
  }

  #unhold(p: Partial, bytes: number, v: ReassemblyVerdict): ReassemblyVerdict {
    p.held -= bytes;
    this.#held -= bytes;
    return v;
  }

  #senderHeld(mac: number): number {
    let sum = 0;
    for (const q of this.#partials) if (q.mac === mac) sum += q.held;
    return sum;
  }

  /** A fragment refused that leaves its message as it was: if it started the message, the message goes. */
  #refuse(p: Partial, v: ReassemblyVerdict): undefined {
    if (p.received === 0) this.#remove(this.#partials.indexOf(p));
    return this.#verdict(v);
  }

  /** A fragment that could not be kept: its message cannot complete, so it goes now, and its late fragments are ABANDONED. */
  #drop(p: Partial, v: ReassemblyVerdict, now: number): undefined {
    this.#remove(this.#partials.indexOf(p));
    this.#remember(p, now, DONE_ABANDONED);
    return this.#verdict(v);
  }

  #finish(p: Partial, now: number): Uint8Array | undefined {
    this.#remove(this.#partials.indexOf(p));
    this.#remember(p, now, DONE_DELIVERED);
    const length = (p.total - 1) * p.chunk + p.lastLength;
    const span = p.perBlock * p.chunk;
    let out: Uint8Array | undefined;
    if (p.blocks.size === 1) {
      out = p.blocks.get(0)!.data.subarray(0, length);
    } else {
      // Handed out as one buffer: one copy, outside the budget (the blocks go with it).
      out = allocate(length);
      if (out === undefined) return this.#verdict(ReassemblyVerdict.OVER_BUDGET);
      for (const [j, b] of p.blocks) out.set(b.data.subarray(0, Math.min(b.data.length, length - j * span)), j * span);
    }
    if (crc32(out) !== p.crc) return this.#verdict(ReassemblyVerdict.BAD_CRC);
    this.#verdict(ReassemblyVerdict.COMPLETE);
    return out;
  }

  #find(mac: number, id: number): Partial | undefined {
    for (const p of this.#partials) if (p.mac === mac && p.messageId === id) return p;
    return undefined;
  }

  #remove(i: number): void {
    const ps = this.#partials;
    const p = ps[i]!;
    this.#held -= p.held;
    const tail = ps.pop()!;
    if (i < ps.length) ps[i] = tail;
    if (this.#lastHit === p) this.#lastHit = undefined;
  }

  #remember(p: Partial, now: number, kind: number): void {
    const j = this.#doneNext;
    this.#doneMac[j] = p.mac;
    this.#doneId[j] = p.messageId;
    this.#doneCrc[j] = p.crc;
    this.#doneTotal[j] = p.total;
    this.#doneUntil[j] = now + this.#timeoutMs;
    this.#doneKind[j] = kind;
    this.#doneNext = (j + 1) % this.#doneMac.length;
  }

  /** The kind of a recently finished message with these fields, or -1. */
  #recentlyDone(mac: number, id: number, crc: number, total: number, now: number): number {
    for (let j = 0; j < this.#doneMac.length; j++) {
      if (this.#doneUntil[j]! > now && this.#doneMac[j] === mac && this.#doneId[j] === id && this.#doneCrc[j] === crc && this.#doneTotal[j] === total) {
        return this.#doneKind[j]!;
      }
    }
    return -1;
  }

  #verdict(v: ReassemblyVerdict): undefined {
    this.lastVerdict = v;
    const c = this.counters;
    switch (v) {
      case ReassemblyVerdict.COMPLETE:
        c.complete++;
        break;
      case ReassemblyVerdict.STORED:
        c.stored++;
        break;
      case ReassemblyVerdict.DUPLICATE:
        c.duplicate++;
        break;
      case ReassemblyVerdict.MALFORMED:
        c.malformed++;
        break;
      case ReassemblyVerdict.INCONSISTENT:
        c.inconsistent++;
        break;
      case ReassemblyVerdict.TOO_LARGE:
        c.tooLarge++;
        break;
      case ReassemblyVerdict.TOO_MANY_MESSAGES:
        c.tooManyMessages++;
        break;
      case ReassemblyVerdict.OVER_BUDGET:
        c.overBudget++;
        break;
      case ReassemblyVerdict.BAD_CRC:
        c.badCrc++;
        break;
      case ReassemblyVerdict.SENDER_TOO_MANY_MESSAGES:
        c.senderTooManyMessages++;
        break;
      case ReassemblyVerdict.SENDER_OVER_BUDGET:
        c.senderOverBudget++;
        break;
      case ReassemblyVerdict.SENDER_REFUSED:
        c.senderRefused++;
        break;
      case ReassemblyVerdict.ABANDONED:
        c.abandoned++;
        break;
    }
    return undefined;
  }
}

/** A zeroed buffer, or undefined when the engine cannot allocate it (never throws). */
function allocate(bytes: number): Uint8Array | undefined {
  try {
    return new Uint8Array(bytes);
  } catch {
    return undefined;
  }
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}
