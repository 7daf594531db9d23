/**
 * The authenticated control plane (beyond LNLB, which trusted every frame of its EtherType).
 * With a shared key (`--key-file`, see loadKeyFile) every control message carries a trailer
 * after its data, and the FLAG_AUTHENTICATED bit of its flags word says so:
 *
 *   msgOff
 *   +0   LNLB header, 28 bytes, layout unchanged (src/net/cluster-message.ts);
 *        flags |= FLAG_AUTHENTICATED (0x8000_0000); dataLength and crc32 are unchanged:
 *        they describe the data only, never the trailer
 *   +28  data, dataLength bytes
 *   +28+dataLength          trailer, AUTH_TRAILER_LENGTH = 24 bytes:
 *        +0  sequence high u32 ┐ u64, big-endian, strictly increasing per sender
 *        +4  sequence low  u32 ┘
 *        +8  HMAC-SHA256 truncated to 16 bytes over
 *              destination MAC (6) · source MAC (6) · header · data · sequence (8)
 *   then Ethernet padding, if any (a sealed message is at least 52 bytes, so a sealed frame
 *   is never padded, but the receiver finds the trailer from dataLength, not from the end).
 *
 * Because the trailer lies past dataLength, decodeMessage treats it like Ethernet padding:
 * the codec needs no change, and the header a decoder reads is exactly what was signed.
 *
 * Design choices:
 *
 * - **Flag bit 31 of flags.** The flags word carries CONNTRACK's handler index (small), so the
 *   top bit is free; readers of the handler index mask it off (FLAGS_MASK). The bit is
 *   covered by the MAC, so it cannot be cleared to pass a frame off as unsigned: a keyed
 *   receiver drops unsigned frames (UNSIGNED), an unkeyed one drops signed frames
 *   (UNEXPECTED_SIGNATURE), and the counters tell the operator which side lacks the key.
 *
 * - **The sequence is the sender's wall clock at every seal: max(previous + 1, now in ms ×
 *   2^22)** (high word = ms >> 10, low word = (ms & 1023) << 22, the low 22 bits a counter
 *   within one millisecond). So every sequence says when its message was sealed
 *   (sequenceTimeMs), and a restarted sender is ahead of everything it sent before as long
 *   as its clock did not step back across the restart: receivers accept it with no
 *   handshake and no state on disk (WireGuard's TAI64N timestamp makes the same bet). The
 *   max() means a clock stepping back while the sender runs never lowers its sequence (one
 *   exception, case 2 below). A random 32-bit high word was rejected: it is no more secret
 *   (the sequence travels in clear, the MAC is the protection), it says nothing about age,
 *   and a restart lands *below* the previous incarnation half the time, where the replay
 *   window must drop it. The high word overflows in the year 2109.
 *
 * - **Receivers check the time before the window.** open() compares the sequence's time with
 *   its own clock: older than now − T is STALE, newer than now + T is FUTURE (each counted),
 *   checked after the MAC (only genuine frames reach it, so the counters describe clocks,
 *   not forgers) and before the replay window, which never records a sequence outside ±T.
 *   So a receiver with no window for a sender (just restarted, or the sender evicted) still
 *   refuses a captured frame older than T. T is `clockToleranceMs`, default 60 s: hosts on
 *   NTP agree within milliseconds, so T is not about sync accuracy but about how long a
 *   host without NTP keeps working (a PC clock drifts up to ~2 s a day: a month at 60 s)
 *   against what T costs: a receiver with no window for a sender accepts a replay of that
 *   sender's frames sealed within the last T, and a sender restarted with its clock set
 *   back by d < T is refused for up to d (case 3). Infinity turns the check off (a
 *   restarted receiver then accepts any old frame, as before issue 12). Every node should
 *   use the same T: a sender uses its own T in case 2.
 *
 *   How each clock accident recovers, with no operator (receiver's clock right unless said):
 *   1. A running sender's clock steps back by d <= T: its sequence stays at the old top (+1 a
 *      message) until the clock passes it; receivers see its time stand still for d, never
 *      more than T behind: nothing is refused.
 *   2. A running sender's clock steps back by d > T: either the old clock was more than T
 *      ahead (every receiver refused its frames as FUTURE and recorded nothing) or the new
 *      one is more than T behind (STALE whatever it sends). Staying at the old top would keep
 *      it FUTURE for d (an hour for a clock kept in local time, then fixed by NTP), so the
 *      sender restarts its sequence at its clock (counted in `sequenceResets`): accepted at
 *      once in the first case; in the second, STALE until NTP fixes its clock, when the
 *      sequence jumps forward with the clock and is accepted. In between (the old clock
 *      ahead and the new one behind, each by at most T) receivers hold a top up to d above
 *      the new sequences: REPLAYED for up to d (< 2T), as in 3.
 *   3. A sender restarts with its clock set back by d <= T: receivers still hold the window
 *      of its previous life, whose top is up to d above its new sequences: REPLAYED until its
 *      clock passes that top, at most d minus the restart time (< T), then accepted. This
 *      wait cannot be cut safely: the receiver cannot tell these frames from replays of the
 *      previous life's last d, which is what the window is for. `forget(mac)` ends it at once
 *      for an operator in a hurry; nothing needs it to recover.
 *   4. A sender restarts with its clock set back by d > T: if its new clock is more than T
 *      behind, STALE until NTP fixes it, then accepted; if its old clock was more than T
 *      ahead, nothing was recorded (as in 2): accepted at once; in between, as in 3, for up
 *      to d (< 2T).
 *   5. A sender's clock is wrong by more than T and then fixed by NTP: while wrong, STALE or
 *      FUTURE at every receiver (its counters and the sender's MAC name the problem), nothing
 *      recorded; fixed forward: the sequence jumps with the clock; fixed backward: case 2.
 *      Accepted as soon as the clock is right.
 *   6. The receiver's clock steps by e: e <= T changes nothing. More: every sender is STALE
 *      (stepped forward) or FUTURE (back) until NTP fixes it, then accepted. A window
 *      recorded while the receiver's clock was ahead can be more than T ahead of its clock
 *      afterwards (the whole cluster booted an hour ahead, then NTP fixed each node in turn):
 *      a window whose top is more than T ahead of now came from a clock that was wrong, and
 *      it is dropped on the sender's next genuine in-tolerance frame (counted in
 *      `windowsDropped`) instead of refusing the sender as REPLAYED until the receiver's
 *      clock reaches that top. The cost: frames sealed an hour ago by a clock an hour ahead
 *      look current now, and a receiver that dropped the window accepts one of them; a
 *      restarted receiver would too. Clocks kept within T (NTP) are what make the clock a
 *      replay defence.
 *
 * - **HMAC-SHA256 truncated to 128 bits** (HMAC-SHA-256-128, as IPsec uses it, RFC 4868;
 *   RFC 2104 §5 allows truncation to half the output). A forger can only guess on line,
 *   one frame per guess, each wrong guess dropped and counted: 2^-128 per try is beyond
 *   reach, and the 16 bytes saved per frame are 16 bytes more per CONNTRACK fragment.
 *   The MAC key is derived from the file's key with HKDF-SHA256 (info "lnlb control-mac
 *   v1"), so the same key file can later key something else without sharing a MAC key.
 *
 * - **The destination MAC is covered too**, beyond the source MAC and the message: a unicast
 *   (CONNTRACK to a newcomer, ASKRETRASM) captured on its way to B cannot be redirected to
 *   C, whose window never saw that sequence. The receiver passes the destination it saw,
 *   which is what the sender wrote (switches do not rewrite addresses).
 *
 * - **Replay window** per sender MAC, as IPsec's (RFC 4303 §3.4.3): the highest sequence
 *   seen and a 64-bit bitmap of the 64 sequences at and below it. Newer: accepted, window
 *   slides. Inside the window and unseen: accepted once (reordering). Seen or older than
 *   the window: REPLAYED. (The time check above comes first: a frame within T is what
 *   reaches the window.) The window moves only after the MAC verified, so a forged frame
 *   cannot push it. Senders are kept in an LRU table of `maxSenders` (default 256, more
 *   than a cluster's nodes); only verified senders get an entry, so without the key nobody
 *   can fill it; an evicted sender (counted) starts a fresh window on its next frame.
 *
 * One ControlAuthenticator per control channel: it seals what the channel sends and opens
 * what it receives. Neither seal nor open allocates beyond what the MAC function needs (the
 * default, node:crypto's Hmac, makes an object and a digest per message; the daemon gives the
 * native one, which makes nothing); each reads the wall clock once (the constructor's `now`,
 * or the `nowMs` argument).
 * Only loadKeyFile does I/O.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { lnlbError } from '../errors.js';
import { readU32, writeU32 } from './bytes.js';
import { MESSAGE_HEADER_LENGTH, MSG_OFF_DATA_LENGTH, MSG_OFF_FLAGS } from './cluster-message.js';
import { ETH_ALEN, macToNumber } from './ethernet.js';

/** Bit of the header's flags word that marks a sealed message. */
export const FLAG_AUTHENTICATED = 0x8000_0000;
/** The flags bits left to the message (CONNTRACK's handler index): `flags & FLAGS_MASK`. */
export const FLAGS_MASK = 0x7fff_ffff;
export const AUTH_SEQUENCE_LENGTH = 8;
export const AUTH_MAC_LENGTH = 16;
/** Bytes seal() appends; fragmentMessage's `reserve` when the channel is keyed. */
export const AUTH_TRAILER_LENGTH = AUTH_SEQUENCE_LENGTH + AUTH_MAC_LENGTH;
export const MIN_KEY_BYTES = 16;
export const MAX_KEY_FILE_BYTES = 4096;
/** Replay window width, in sequences (a bitmap of two u32). */
export const REPLAY_WINDOW = 64;
export const DEFAULT_MAX_SENDERS = 256;
/**
 * How far a sequence's time may lie from the receiver's clock, either way (see the module
 * comment: NTP-synced hosts agree within ms; 60 s keeps a host without NTP working for weeks
 * and bounds what a receiver with no window for a sender can be replayed).
 */
export const DEFAULT_CLOCK_TOLERANCE_MS = 60_000;

const HKDF_INFO = 'lnlb control-mac v1';
/** 2^22: sequence steps per millisecond of the sender's clock. */
const SEQ_PER_MS = 0x40_0000;
const TWO_32 = 0x1_0000_0000;

export enum AuthVerdict {
  /** Keyed: signature and sequence good. Unkeyed: an unsigned message. */
  OK = 0,
  /** Keyed node, message without FLAG_AUTHENTICATED (a peer without the key, or a forgery). */
  UNSIGNED = 1,
  /** Unkeyed node, signed message: a peer has a key and this node has none. */
  UNEXPECTED_SIGNATURE = 2,
  /** The MAC does not match: wrong key, or header, data, addresses or sequence altered. */
  BAD_MAC = 3,
  /** Genuine, but its sequence was already accepted or is older than the window. */
  REPLAYED = 4,
  /** No room for a header, a trailer past the bytes received, or nonsense offsets. */
  MALFORMED = 5,
  /** Genuine, but sealed more than clockToleranceMs before the receiver's now (an old capture, or a clock behind). */
  STALE = 6,
  /** Genuine, but sealed more than clockToleranceMs after the receiver's now (a clock ahead). */
  FUTURE = 7,
}

export interface AuthCounters {
  /** Messages sealed by this node. */
  sealed: number;
  ok: number;
  unsigned: number;
  unexpectedSignature: number;
  badMac: number;
  replayed: number;
  malformed: number;
  stale: number;
  future: number;
  /** Sender windows dropped to make room (LRU), not a verdict. */
  sendersEvicted: number;
  /** Sender windows dropped because their top was more than the tolerance ahead of now (case 6), not a verdict. */
  windowsDropped: number;
  /** Times this sender restarted its sequence at its clock, which stepped back by more than the tolerance (case 2). */
  sequenceResets: number;
}

export function authVerdictName(v: AuthVerdict): string {
  return AuthVerdict[v] ?? `UNKNOWN(${String(v)})`;
}

export interface ControlAuthenticatorOptions {
  /** Sender windows kept (LRU). Default 256. */
  maxSenders?: number;
  /**
   * Most milliseconds a sequence's time may lie before or after the receiver's clock
   * (STALE, FUTURE); also how far the sender's own clock may step back before it restarts
   * its sequence at the clock. A positive number, or Infinity for no check. Default 60 000.
   */
  clockToleranceMs?: number;
  /**
   * Makes the MAC function from the 32-byte key derived from the cluster key. Default:
   * node:crypto's HMAC-SHA256. The daemon gives the native one (src/port/native.ts
   * hmacSha256), the same function in 0.17-0.39× the time: under a flood of forged frames that
   * claim a member's MAC, every one costs a MAC.
   */
  macFactory?: (derivedKey: Uint8Array) => ControlMacFunction;
}

/**
 * HMAC-SHA256 of dstMac[0..6) · srcMac[0..6) · frame[from, to) under the derived key; its first
 * `out.length` bytes (AUTH_MAC_LENGTH) written to `out`.
 */
export type ControlMacFunction = (frame: Uint8Array, from: number, to: number, srcMac: Uint8Array, dstMac: Uint8Array, out: Uint8Array) => void;

/** The default MAC: node:crypto's HMAC-SHA256 (an object and a digest per message). */
export function nodeCryptoHmacSha256(derivedKey: Uint8Array): ControlMacFunction {
  const key: KeyObject = createSecretKey(Buffer.from(derivedKey));
  return (frame, from, to, srcMac, dstMac, out) => {
    const h = createHmac('sha256', key);
    h.update(dstMac.length === ETH_ALEN ? dstMac : dstMac.subarray(0, ETH_ALEN));
    h.update(srcMac.length === ETH_ALEN ? srcMac : srcMac.subarray(0, ETH_ALEN));
    h.update(frame.subarray(from, to));
    out.set(h.digest().subarray(0, out.length));
  };
}

/** The wall-clock time (ms since the epoch, whole) a sequence (high, low word) was sealed at. */
export function sequenceTimeMs(hi: number, lo: number): number {
  return hi * 1024 + (lo >>> 22);
}

/**
 * Seals outgoing and opens incoming control messages. `key` undefined: an unkeyed node,
 * whose seal() is the identity and whose open() accepts only unsigned messages.
 * `now` is the wall clock (ms since the epoch, default Date.now): read at construction (the
 * first sequence) and by every seal() and open() not given their `nowMs`.
 */
export class ControlAuthenticator {
  readonly counters: AuthCounters = {
    sealed: 0,
    ok: 0,
    unsigned: 0,
    unexpectedSignature: 0,
    badMac: 0,
    replayed: 0,
    malformed: 0,
    stale: 0,
    future: 0,
    sendersEvicted: 0,
    windowsDropped: 0,
    sequenceResets: 0,
  };

  /** The MAC under the derived key; undefined: an unkeyed node. */
  readonly #macOf: ControlMacFunction | undefined;
  /** The tag just computed (seal writes it into the frame, open compares it): no allocation per message. */
  readonly #tag = new Uint8Array(AUTH_MAC_LENGTH);
  readonly #now: () => number;
  readonly #toleranceMs: number;
  // The next sequence to send (high, low word): max(last sent + 1, clock) at every seal.
  #seqHi = 0;
  #seqLo = 0;

  // Replay windows: slot i holds sender #macs[i], its highest sequence (hi, lo) and the
  // bitmap (bit k = highest - k seen; bit 0 of bitsLo is the highest itself):
  //   #win[4i] seqHi · #win[4i+1] seqLo · #win[4i+2] bitsLo (k 0..31) · #win[4i+3] bitsHi (k 32..63)
  // LRU order: a doubly linked list through #prev/#next, most recent at #head.
  readonly #maxSenders: number;
  readonly #slotOf = new Map<number, number>();
  readonly #macs: Float64Array;
  readonly #win: Uint32Array;
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  #head = -1;
  #tail = -1;
  #used = 0;

  constructor(key: Uint8Array | undefined, now: () => number = Date.now, options: ControlAuthenticatorOptions = {}) {
    const maxSenders = options.maxSenders ?? DEFAULT_MAX_SENDERS;
    if (!Number.isInteger(maxSenders) || maxSenders < 1) throw new RangeError(`maxSenders must be a positive integer, got ${maxSenders}`);
    this.#maxSenders = maxSenders;
    this.#macs = new Float64Array(maxSenders);
    this.#win = new Uint32Array(4 * maxSenders);
    this.#prev = new Int32Array(maxSenders);
    this.#next = new Int32Array(maxSenders);
    const tolerance = options.clockToleranceMs ?? DEFAULT_CLOCK_TOLERANCE_MS;
    if (!(tolerance > 0)) throw new RangeError(`clockToleranceMs must be a positive number of milliseconds or Infinity, got ${tolerance}`);
    this.#toleranceMs = tolerance;
    this.#now = now;
    if (key === undefined) {
      this.#macOf = undefined;
      return;
    }
    if (key.length < MIN_KEY_BYTES) throw new RangeError(`a control-plane key needs at least ${MIN_KEY_BYTES} bytes, got ${key.length}`);
    const derived = new Uint8Array(hkdfSync('sha256', key, new Uint8Array(0), HKDF_INFO, 32));
    this.#macOf = (options.macFactory ?? nodeCryptoHmacSha256)(derived);
    derived.fill(0);
    const ms = wholeMs(now());
    this.#seqHi = Math.floor(ms / 1024);
    this.#seqLo = ((ms % 1024) * SEQ_PER_MS) >>> 0;
  }

  get keyed(): boolean {
    return this.#macOf !== undefined;
  }

  /** The tolerance open() applies (Infinity: none). */
  get clockToleranceMs(): number {
    return this.#toleranceMs;
  }

  /**
   * Appends the trailer to the message at frame[msgOff, msgOff+msgLen) (header + data, as
   * encodeMessage returned it, before any Ethernet padding), sets FLAG_AUTHENTICATED and
   * returns the new message length (msgLen + 24). Unkeyed: returns msgLen, frame untouched.
   * `nowMs`: the wall clock (default: the constructor's `now`), which the sequence follows.
   * Throws a RangeError on a programming error: msgLen is not 28 + dataLength, the flag is
   * already set, no room for the trailer, a clock that is not ms since the epoch.
   */
  seal(frame: Uint8Array, msgOff: number, msgLen: number, srcMac: Uint8Array, dstMac: Uint8Array, nowMs?: number): number {
    if (this.#macOf === undefined) return msgLen;
    if (!Number.isInteger(msgOff) || msgOff < 0 || msgLen < MESSAGE_HEADER_LENGTH || msgOff + msgLen > frame.length) {
      throw new RangeError(`no cluster message at [${msgOff}, +${msgLen}) in a ${frame.length}-byte buffer`);
    }
    const dataLength = readU32(frame, msgOff + MSG_OFF_DATA_LENGTH);
    if (msgLen !== MESSAGE_HEADER_LENGTH + dataLength) {
      throw new RangeError(`seal: msgLen ${msgLen} is not header + dataLength (${MESSAGE_HEADER_LENGTH + dataLength})`);
    }
    const flags = readU32(frame, msgOff + MSG_OFF_FLAGS);
    if ((flags & FLAG_AUTHENTICATED) !== 0) throw new RangeError('seal: message already sealed (or flags uses bit 31)');
    const t = msgOff + msgLen;
    if (t + AUTH_TRAILER_LENGTH > frame.length) {
      throw new RangeError(`seal: no room for the ${AUTH_TRAILER_LENGTH}-byte trailer after a ${msgLen}-byte message`);
    }
    checkMac(srcMac);
    checkMac(dstMac);
    this.#followClock(wholeMs(nowMs ?? this.#now()));
    writeU32(frame, msgOff + MSG_OFF_FLAGS, (flags | FLAG_AUTHENTICATED) >>> 0);
    writeU32(frame, t, this.#seqHi);
    writeU32(frame, t + 4, this.#seqLo);
    this.#advance();
    const tag = this.#tag;
    this.#macOf!(frame, msgOff, t + AUTH_SEQUENCE_LENGTH, srcMac, dstMac, tag);
    frame.set(tag, t + AUTH_SEQUENCE_LENGTH);
    this.counters.sealed++;
    return msgLen + AUTH_TRAILER_LENGTH;
  }

  /**
   * Checks the message at frame[msgOff, msgOff+msgLen) (msgLen may include Ethernet padding)
   * received from srcMac for dstMac (each read for its first 6 bytes: the received frame itself
   * may be passed as dstMac), and counts the verdict. On OK the message is what
   * decodeMessage should read (the trailer looks like padding to it). `nowMs`: the
   * receiver's wall clock (default: the constructor's `now`); a clock that is not a number
   * makes every signed message STALE. Never throws.
   */
  open(frame: Uint8Array, msgOff: number, msgLen: number, srcMac: Uint8Array, dstMac: Uint8Array, nowMs?: number): AuthVerdict {
    const c = this.counters;
    if (
      !Number.isInteger(msgOff) ||
      !Number.isInteger(msgLen) ||
      msgOff < 0 ||
      msgLen < MESSAGE_HEADER_LENGTH ||
      msgOff + msgLen > frame.length ||
      srcMac.length < ETH_ALEN ||
      dstMac.length < ETH_ALEN
    ) {
      c.malformed++;
      return AuthVerdict.MALFORMED;
    }
    const signed = (readU32(frame, msgOff + MSG_OFF_FLAGS) & FLAG_AUTHENTICATED) !== 0;
    if (this.#macOf === undefined) {
      if (signed) {
        c.unexpectedSignature++;
        return AuthVerdict.UNEXPECTED_SIGNATURE;
      }
      c.ok++;
      return AuthVerdict.OK;
    }
    if (!signed) {
      c.unsigned++;
      return AuthVerdict.UNSIGNED;
    }
    const dataLength = readU32(frame, msgOff + MSG_OFF_DATA_LENGTH);
    if (dataLength > msgLen - MESSAGE_HEADER_LENGTH - AUTH_TRAILER_LENGTH) {
      c.malformed++;
      return AuthVerdict.MALFORMED;
    }
    const t = msgOff + MESSAGE_HEADER_LENGTH + dataLength;
    const tag = this.#tag;
    this.#macOf!(frame, msgOff, t + AUTH_SEQUENCE_LENGTH, srcMac, dstMac, tag);
    const m = t + AUTH_SEQUENCE_LENGTH;
    if (!tagsEqual(tag, frame, m)) {
      c.badMac++;
      return AuthVerdict.BAD_MAC;
    }
    const hi = readU32(frame, t);
    const lo = readU32(frame, t + 4);
    const now = nowMs ?? this.#now();
    const tolerance = this.#toleranceMs;
    if (tolerance !== Infinity) {
      const sealedAt = sequenceTimeMs(hi, lo);
      // Written so that a NaN clock fails the first test.
      if (!(sealedAt >= now - tolerance)) {
        c.stale++;
        return AuthVerdict.STALE;
      }
      if (sealedAt > now + tolerance) {
        c.future++;
        return AuthVerdict.FUTURE;
      }
    }
    if (!this.#accept(macToNumber(srcMac, 0), hi, lo, now)) {
      c.replayed++;
      return AuthVerdict.REPLAYED;
    }
    c.ok++;
    return AuthVerdict.OK;
  }

  /**
   * Drops the replay window of one sender: its next genuine message within the clock
   * tolerance is accepted whatever its sequence, and so would be a replay of its older ones
   * from within the tolerance. Nothing needs it to recover (module comment, case 3: a sender
   * restarted with its clock set back by d is accepted again after d); it only cuts that wait
   * short. Not for LEAVE or death, where keeping the window is what stops an old HEARTBEAT
   * from bringing the node back.
   */
  forget(srcMac: Uint8Array): boolean {
    const slot = this.#slotOf.get(macToNumber(srcMac, 0));
    if (slot === undefined) return false;
    this.#unlink(slot);
    this.#slotOf.delete(this.#macs[slot]!);
    // Keep the free slots packed at the end: move the last used slot into this one.
    const last = this.#used - 1;
    if (slot !== last) {
      const lastMac = this.#macs[last]!;
      this.#win.copyWithin(4 * slot, 4 * last, 4 * last + 4);
      this.#macs[slot] = lastMac;
      const p = this.#prev[last]!;
      const n = this.#next[last]!;
      this.#prev[slot] = p;
      this.#next[slot] = n;
      if (p >= 0) this.#next[p] = slot;
      else this.#head = slot;
      if (n >= 0) this.#prev[n] = slot;
      else this.#tail = slot;
      this.#slotOf.set(lastMac, slot);
    }
    this.#used--;
    return true;
  }

  /** Senders with a replay window. */
  get senders(): number {
    return this.#used;
  }

  /** Next sequence to send, as [high, low] (for status output and tests). */
  get nextSequence(): [number, number] {
    return [this.#seqHi, this.#seqLo];
  }

  /** Moves the next sequence up to the clock (max), or back to it after a step back of more than the tolerance. */
  #followClock(ms: number): void {
    const hi = Math.floor(ms / 1024);
    const lo = ((ms % 1024) * SEQ_PER_MS) >>> 0;
    if (hi > this.#seqHi || (hi === this.#seqHi && lo > this.#seqLo)) {
      this.#seqHi = hi;
      this.#seqLo = lo;
    } else if (sequenceTimeMs(this.#seqHi, this.#seqLo) - ms > this.#toleranceMs) {
      // Case 2 of the module comment: what was sent from the old top on is refused by every
      // receiver whose clock is right, so follow the clock down.
      this.#seqHi = hi;
      this.#seqLo = lo;
      this.counters.sequenceResets++;
    }
  }

  #advance(): void {
    this.#seqLo = (this.#seqLo + 1) >>> 0;
    if (this.#seqLo === 0) {
      if (this.#seqHi === 0xffff_ffff) throw new RangeError('control-plane sequence exhausted (year 2109)');
      this.#seqHi++;
    }
  }


  /**
   * The replay check and window update (RFC 4303 §3.4.3); true if (hi, lo) is new. (hi, lo)
   * is within the tolerance of nowMs; a window whose top is not (case 6) starts afresh.
   */
  #accept(mac: number, hi: number, lo: number, nowMs: number): boolean {
    let slot = this.#slotOf.get(mac);
    const w = this.#win;
    if (slot === undefined) {
      slot = this.#allocate(mac);
      startWindow(w, 4 * slot, hi, lo);
      return true;
    }
    this.#touch(slot);
    const b = 4 * slot;
    if (sequenceTimeMs(w[b]!, w[b + 1]!) > nowMs + this.#toleranceMs) {
      startWindow(w, b, hi, lo);
      this.counters.windowsDropped++;
      return true;
    }
    const dh = hi - w[b]!;
    // |dh| >= 2^20 is far outside the window either way; below that the difference is exact.
    const d = dh >= 0x10_0000 ? Infinity : dh <= -0x10_0000 ? -Infinity : dh * TWO_32 + (lo - w[b + 1]!);
    if (d > 0) {
      if (d >= REPLAY_WINDOW) {
        w[b + 2] = 1;
        w[b + 3] = 0;
      } else if (d >= 32) {
        w[b + 3] = d === 32 ? w[b + 2]! : w[b + 2]! << (d - 32);
        w[b + 2] = 1;
      } else {
        w[b + 3] = (w[b + 3]! << d) | (w[b + 2]! >>> (32 - d));
        w[b + 2] = (w[b + 2]! << d) | 1;
      }
      w[b] = hi;
      w[b + 1] = lo;
      return true;
    }
    const k = -d;
    if (k >= REPLAY_WINDOW) return false;
    const word = k < 32 ? b + 2 : b + 3;
    const bit = 1 << (k & 31);
    if ((w[word]! & bit) !== 0) return false;
    w[word] = w[word]! | bit;
    return true;
  }

  #allocate(mac: number): number {
    let slot: number;
    if (this.#used < this.#maxSenders) {
      slot = this.#used++;
    } else {
      slot = this.#tail;
      this.#unlink(slot);
      this.#slotOf.delete(this.#macs[slot]!);
      this.counters.sendersEvicted++;
    }
    this.#macs[slot] = mac;
    this.#slotOf.set(mac, slot);
    this.#pushHead(slot);
    return slot;
  }

  #touch(slot: number): void {
    if (this.#head === slot) return;
    this.#unlink(slot);
    this.#pushHead(slot);
  }

  #pushHead(slot: number): void {
    this.#prev[slot] = -1;
    this.#next[slot] = this.#head;
    if (this.#head >= 0) this.#prev[this.#head] = slot;
    this.#head = slot;
    if (this.#tail < 0) this.#tail = slot;
  }

  #unlink(slot: number): void {
    const p = this.#prev[slot]!;
    const n = this.#next[slot]!;
    if (p >= 0) this.#next[p] = n;
    else this.#head = n;
    if (n >= 0) this.#prev[n] = p;
    else this.#tail = p;
  }
}

function startWindow(w: Uint32Array, b: number, hi: number, lo: number): void {
  w[b] = hi;
  w[b + 1] = lo;
  w[b + 2] = 1;
  w[b + 3] = 0;
}

/** A wall-clock reading as whole ms since the epoch, or a RangeError (a programming error). */
function wholeMs(now: number): number {
  const ms = Math.floor(now);
  if (!Number.isSafeInteger(ms) || ms < 0 || ms / 1024 >= TWO_32) throw new RangeError(`the clock must give milliseconds since the epoch, got ${now}`);
  return ms;
}

/** tag[0..16) against frame[at, at+16), in constant time (no early exit on the first difference). */
function tagsEqual(tag: Uint8Array, frame: Uint8Array, at: number): boolean {
  let diff = 0;
  for (let i = 0; i < AUTH_MAC_LENGTH; i++) diff |= tag[i]! ^ frame[at + i]!;
  return diff === 0;
}

function checkMac(mac: Uint8Array): void {
  if (mac.length < ETH_ALEN) throw new RangeError(`a MAC address has ${ETH_ALEN} bytes, got ${mac.length}`);
}

/** What loadKeyFile may be told: where its warnings go, and whose key it is (tests). */
export interface LoadKeyFileOptions {
  /** Called with each warning about a key that loads but looks weak (see keyWarnings). */
  warn?: (message: string) => void;
  /** The uid that must own the file (root may too); default: this process's effective uid. */
  euid?: number;
}

/**
 * Text keys shorter than this are warned about: a typed password. 32 printable characters
 * are at least 128 bits only if random hex (4 bits each); what `lnlbctl genkey` writes is 64.
 */
export const MIN_TEXT_KEY_CHARS = 32;
/** A key of fewer distinct byte values than this is warned about (`aaaa...`, `0000...`). */
export const MIN_DISTINCT_KEY_BYTES = 8;

/**
 * Why a key that loads looks guessable (pure, for loadKeyFile's warnings): only printable
 * ASCII and shorter than MIN_TEXT_KEY_CHARS (a typed password rather than random bytes), or
 * fewer than MIN_DISTINCT_KEY_BYTES distinct bytes. A random binary key of 16+ bytes and
 * genkey's 64 hex characters pass.
 */
export function keyWarnings(key: Uint8Array): string[] {
  const warnings: string[] = [];
  let printable = true;
  const seen = new Set<number>();
  for (const b of key) {
    if (b < 0x20 || b > 0x7e) printable = false;
    seen.add(b);
  }
  if (printable && key.length < MIN_TEXT_KEY_CHARS) warnings.push(`a ${key.length}-character text key (a typed password?), shorter than ${MIN_TEXT_KEY_CHARS}`);
  if (seen.size < MIN_DISTINCT_KEY_BYTES) warnings.push(`only ${seen.size} distinct byte value${seen.size === 1 ? '' : 's'}`);
  return warnings;
}

/** Open flags of the key file: never follows a symbolic link, never waits on a FIFO (refused after fstat). */
const KEY_OPEN_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;

/**
 * Reads the daemon's `--key-file`. The key is the file's bytes with trailing ASCII
 * whitespace removed (so `lnlbctl genkey FILE`, `openssl rand -hex 32 > FILE` and a file saved
 * by an editor give every node the same key); at least 16 bytes must remain. The file is opened
 * with O_NOFOLLOW|O_NONBLOCK and checked on that descriptor (fstat), so the checked file is the
 * file read, a symbolic link is refused at once and a FIFO never blocks the start. Refuses, with
 * an LnlbError naming the file and the fix: a symbolic link, a missing or unreadable file, not a
 * regular file, more than 4096 bytes, a key shorter than 16 bytes (LNLB_ERR_AUTH_KEY_INVALID);
 * a file owned by another user than the daemon's or root (LNLB_ERR_AUTH_KEY_OWNER); a file
 * group or others may read or write (LNLB_ERR_AUTH_KEY_MODE: `chmod 600`). A key that loads
 * but looks guessable (keyWarnings) is passed to `options.warn`.
 */
export function loadKeyFile(path: string, options: LoadKeyFileOptions = {}): Buffer {
  const create = `make one with \`lnlbctl genkey ${path}\` and copy it to every node`;
  let fd: number;
  try {
    fd = openSync(path, KEY_OPEN_FLAGS);
  } catch (cause) {
    const errno = errnoOf(cause);
    const why =
      errno === 'ELOOP'
        ? `key file ${path} is a symbolic link (refused: whoever can change the link chooses the key): give the real path of the file`
        : `cannot read key file ${path} (${errno ?? String(cause)}): check the path, or ${create}`;
    throw lnlbError('LNLB_ERR_AUTH_KEY_INVALID', why, { cause, ...(errno === undefined ? {} : { errno }) });
  }
  let buf: Buffer | undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw lnlbError('LNLB_ERR_AUTH_KEY_INVALID', `key file ${path} is not a regular file (${fileKind(st)}): give the path of the key itself, or ${create}`);
    const euid = options.euid ?? process.geteuid?.() ?? 0;
    if (st.uid !== euid && st.uid !== 0) {
      throw lnlbError(
        'LNLB_ERR_AUTH_KEY_OWNER',
        `key file ${path} is owned by uid ${st.uid}, not by this daemon's user (uid ${euid}) or root: that user could change the cluster's key; run \`chown ${euid} ${path}\``,
      );
    }
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw lnlbError(
        'LNLB_ERR_AUTH_KEY_MODE',
        `key file ${path} has mode ${mode}: group or others may read or write it; run \`chmod 600 ${path}\` (owner read/write only)`,
      );
    }
    if (st.size > MAX_KEY_FILE_BYTES) {
      throw lnlbError('LNLB_ERR_AUTH_KEY_INVALID', `key file ${path} holds ${st.size} bytes, more than ${MAX_KEY_FILE_BYTES}: is it the right file? ${create}`);
    }
    buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let len = 0;
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len > MAX_KEY_FILE_BYTES) {
        throw lnlbError('LNLB_ERR_AUTH_KEY_INVALID', `key file ${path} holds more than ${MAX_KEY_FILE_BYTES} bytes: is it the right file? ${create}`);
      }
    }
    while (len > 0 && isAsciiSpace(buf[len - 1]!)) len--;
    if (len < MIN_KEY_BYTES) {
      throw lnlbError('LNLB_ERR_AUTH_KEY_INVALID', `key file ${path} holds a ${len}-byte key, at least ${MIN_KEY_BYTES} are needed: ${create}`);
    }
    const key = Buffer.from(buf.subarray(0, len));
    const weak = keyWarnings(key);
    if (weak.length > 0) {
      options.warn?.(`key file ${path} looks guessable: ${weak.join('; ')}. A LAN host that guesses it can take the cluster over: ${create.replace('make one', 'make a random one')}`);
    }
    return key;
  } finally {
    buf?.fill(0);
    closeSync(fd);
  }
}

function fileKind(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

function isAsciiSpace(b: number): boolean {
  return b === 0x0a || b === 0x0d || b === 0x20 || b === 0x09;
}

function errnoOf(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}
