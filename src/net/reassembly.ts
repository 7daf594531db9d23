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
 * Receiver, one message being reassembled (a Partial):
 *
 *   data  ┌ chunk ┬ chunk ┬ ... ┬ last ┬ (slack < chunk) ┐   one buffer of total*chunk bytes,
 *         └───────┴───────┴─────┴──────┴─────────────────┘   fragment k copied at k*chunk
 *   bits  one bit per fragment received; `received` counts them
 *
 * The buffer is allocated once, when the first fragment that is not the last arrives (it
 * gives the chunk size); a last fragment arriving first is kept aside until then. The data
 * handed out is a view of that buffer: no concatenation copy. Bounds, each refusal counted
 * by reason: `maxMessages` concurrent messages (64) and `maxMessagesPerSender` (8, so one
 * sender cannot hold every slot), `maxMessageBytes` per message (64 MiB: fragmentTotal is
 * checked against it as soon as it is seen, before anything is allocated), `maxTotalBytes`
 * reserved over all messages (128 MiB). A message expires `timeoutMs` (2 s) after its last
 * new fragment; duplicates neither count nor refresh it (a replayed fragment cannot keep a
 * message alive). A message that completed (or failed its CRC) is remembered for the same
 * time, so a late duplicate of one of its fragments is not taken for a new message.
 *
 * Pure: no I/O, time passed in. Per fragment, push() allocates only the view it copies from.
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
export const DEFAULT_MAX_MESSAGES = 64;
export const DEFAULT_MAX_MESSAGES_PER_SENDER = 8;
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_TOTAL_BYTES = 128 * 1024 * 1024;

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
  /** maxMessages, or maxMessagesPerSender for this sender, are being reassembled already. */
  TOO_MANY_MESSAGES = 6,
  /** Taking it would exceed maxTotalBytes over all messages. */
  OVER_BUDGET = 7,
  /** All fragments there, CRC-32 mismatch: the message is dropped, nothing handed out. */
  BAD_CRC = 8,
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
  /** Messages dropped incomplete, timeoutMs after their last new fragment (not a push verdict). */
  expired: number;
}

export interface ReassemblerOptions {
  maxMessages?: number;
  maxMessagesPerSender?: number;
  maxMessageBytes?: number;
  maxTotalBytes?: number;
  timeoutMs?: number;
}

/** A message being reassembled. */
class Partial {
  chunk = 0;
  /** Data bytes of the last fragment, -1 until it arrived. */
  lastLength = -1;
  received = 0;
  data: Uint8Array | undefined;
  /** The last fragment's data when it came before the chunk size was known. */
  stash: Uint8Array | undefined;
  /** Bytes counted against maxTotalBytes. */
  reserved = 0;
  readonly bits: Uint8Array;

  constructor(
    readonly mac: number,
    readonly messageId: number,
    readonly clusterIp: number,
    readonly type: number,
    readonly flags: number,
    readonly crc: number,
    readonly total: number,
    public lastSeen: number,
  ) {
    this.bits = new Uint8Array((total + 7) >>> 3);
  }
}

export function reassemblyVerdictName(v: ReassemblyVerdict): string {
  return ReassemblyVerdict[v] ?? `UNKNOWN(${String(v)})`;
}

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
    expired: 0,
  };
  /** Verdict of the last push (every push counts exactly one verdict). */
  lastVerdict: ReassemblyVerdict = ReassemblyVerdict.STORED;

  readonly #maxMessages: number;
  readonly #maxPerSender: number;
  readonly #maxMessageBytes: number;
  readonly #maxTotalBytes: number;
  readonly #timeoutMs: number;
  readonly #decoded = createDecodedMessage();
  readonly #partials: Partial[] = [];
  #lastHit: Partial | undefined;
  #reserved = 0;
  #nextDeadline = Infinity;
  // Recently finished messages (delivered or failed CRC): a ring of maxMessages entries.
  readonly #doneMac: Float64Array;
  readonly #doneId: Uint32Array;
  readonly #doneCrc: Uint32Array;
  readonly #doneTotal: Uint32Array;
  readonly #doneUntil: Float64Array;
  #doneNext = 0;

  constructor(options: ReassemblerOptions = {}) {
    this.#maxMessages = positive('maxMessages', options.maxMessages ?? DEFAULT_MAX_MESSAGES);
    this.#maxPerSender = positive('maxMessagesPerSender', options.maxMessagesPerSender ?? DEFAULT_MAX_MESSAGES_PER_SENDER);
    this.#maxMessageBytes = positive('maxMessageBytes', options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    this.#maxTotalBytes = positive('maxTotalBytes', options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES);
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs ?? DEFAULT_REASSEMBLY_TIMEOUT_MS);
    const n = this.#maxMessages;
    this.#doneMac = new Float64Array(n);
    this.#doneId = new Uint32Array(n);
    this.#doneCrc = new Uint32Array(n);
    this.#doneTotal = new Uint32Array(n);
    this.#doneUntil = new Float64Array(n).fill(-Infinity);
  }

  /** Messages being reassembled. */
  get pending(): number {
    return this.#partials.length;
  }

  /** Bytes reserved for them (counted against maxTotalBytes). */
  get reservedBytes(): number {
    return this.#reserved;
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
    // message is at least total-1 + len bytes (len bytes per fragment if this is not the last).
    if ((last ? total - 1 + len : total * len) > this.#maxMessageBytes) return this.#verdict(ReassemblyVerdict.TOO_LARGE);
    if (total === 1) {
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
    if (p === undefined) return this.#start(m, mac, id, frame, now, last);
    this.#lastHit = p;

    if (p.total !== total || p.type !== m.type || p.flags !== m.flags || p.crc !== m.crc32 || p.clusterIp !== m.clusterIp) {
      return this.#verdict(ReassemblyVerdict.INCONSISTENT);
    }
    if ((p.bits[k >>> 3]! & (1 << (k & 7))) !== 0) return this.#verdict(ReassemblyVerdict.DUPLICATE);
    if (last) {
      if (p.chunk > 0 && len > p.chunk) return this.#verdict(ReassemblyVerdict.INCONSISTENT);
    } else if (p.chunk === 0) {
      // The last fragment came first; this one gives the chunk size and the buffer.
      if (len < p.lastLength) return this.#verdict(ReassemblyVerdict.INCONSISTENT);
      if (total * len > this.#maxMessageBytes) return this.#verdict(ReassemblyVerdict.TOO_LARGE);
      const need = total * len;
      if (this.#reserved - p.reserved + need > this.#maxTotalBytes) return this.#verdict(ReassemblyVerdict.OVER_BUDGET);
      const data = allocate(need);
      if (data === undefined) return this.#verdict(ReassemblyVerdict.OVER_BUDGET);
      this.#reserved += need - p.reserved;
      p.reserved = need;
      p.chunk = len;
      p.data = data;
      if (p.stash !== undefined) p.data.set(p.stash, (total - 1) * len);
      p.stash = undefined;
    } else if (len !== p.chunk) {
      return this.#verdict(ReassemblyVerdict.INCONSISTENT);
    }
    this.#store(p, k, frame, off, len, now);
    if (p.received < total) return this.#verdict(ReassemblyVerdict.STORED);
    return this.#finish(p, now);
  }

  /** Drops messages whose last new fragment is timeoutMs old or more; returns how many. */
  expire(now: number): number {
    const ps = this.#partials;
    let dropped = 0;
    let next = Infinity;
    for (let i = ps.length - 1; i >= 0; i--) {
      const p = ps[i]!;
      const deadline = p.lastSeen + this.#timeoutMs;
      if (now >= deadline) {
        this.#remove(i);
        dropped++;
      } else if (deadline < next) {
        next = deadline;
      }
    }
    this.#nextDeadline = next;
    this.counters.expired += dropped;
    return dropped;
  }

  /** Forgets everything (the interface went away). Counters are kept. */
  clear(): void {
    this.#partials.length = 0;
    this.#lastHit = undefined;
    this.#reserved = 0;
    this.#nextDeadline = Infinity;
    this.#doneUntil.fill(-Infinity);
  }

  #start(m: DecodedMessage, mac: number, id: number, frame: Uint8Array, now: number, last: boolean): undefined {
    const total = m.fragmentTotal;
    const crc = m.crc32;
    if (this.#recentlyDone(mac, id, crc, total, now)) return this.#verdict(ReassemblyVerdict.DUPLICATE);
    const ps = this.#partials;
    if (ps.length >= this.#maxMessages) return this.#verdict(ReassemblyVerdict.TOO_MANY_MESSAGES);
    let mine = 0;
    for (const q of ps) if (q.mac === mac) mine++;
    if (mine >= this.#maxPerSender) return this.#verdict(ReassemblyVerdict.TOO_MANY_MESSAGES);
    const len = m.dataLength;
    const need = last ? len : total * len;
    if (this.#reserved + need > this.#maxTotalBytes) return this.#verdict(ReassemblyVerdict.OVER_BUDGET);
    const data = allocate(need);
    if (data === undefined) return this.#verdict(ReassemblyVerdict.OVER_BUDGET);
    const p = new Partial(mac, id, m.clusterIp, m.type, m.flags, crc, total, now);
    p.reserved = need;
    this.#reserved += need;
    if (last) {
      p.stash = data;
    } else {
      p.chunk = len;
      p.data = data;
    }
    ps.push(p);
    this.#lastHit = p;
    this.#store(p, m.fragmentNumber, frame, m.dataOffset, len, now);
    const deadline = now + this.#timeoutMs;
    if (deadline < this.#nextDeadline) this.#nextDeadline = deadline;
    return this.#verdict(ReassemblyVerdict.STORED);
  }

  #store(p: Partial, k: number, frame: Uint8Array, off: number, len: number, now: number): void {
    const src = frame.subarray(off, off + len);
    if (k === p.total - 1) p.lastLength = len;
    if (p.data !== undefined) p.data.set(src, k * p.chunk);
    else p.stash!.set(src); // the last fragment, first to arrive
    p.bits[k >>> 3] = p.bits[k >>> 3]! | (1 << (k & 7));
    p.received++;
    p.lastSeen = now;
  }

  #finish(p: Partial, now: number): Uint8Array | undefined {
    const i = this.#partials.indexOf(p);
    this.#remove(i);
    this.#remember(p, now);
    const data = p.data!;
    const length = (p.total - 1) * p.chunk + p.lastLength;
    const out = length === data.length ? data : data.subarray(0, length);
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
    this.#reserved -= p.reserved;
    const tail = ps.pop()!;
    if (i < ps.length) ps[i] = tail;
    if (this.#lastHit === p) this.#lastHit = undefined;
  }

  #remember(p: Partial, now: number): void {
    const j = this.#doneNext;
    this.#doneMac[j] = p.mac;
    this.#doneId[j] = p.messageId;
    this.#doneCrc[j] = p.crc;
    this.#doneTotal[j] = p.total;
    this.#doneUntil[j] = now + this.#timeoutMs;
    this.#doneNext = (j + 1) % this.#doneMac.length;
  }

  #recentlyDone(mac: number, id: number, crc: number, total: number, now: number): boolean {
    for (let j = 0; j < this.#doneMac.length; j++) {
      if (this.#doneUntil[j]! > now && this.#doneMac[j] === mac && this.#doneId[j] === id && this.#doneCrc[j] === crc && this.#doneTotal[j] === total) {
        return true;
      }
    }
    return false;
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
