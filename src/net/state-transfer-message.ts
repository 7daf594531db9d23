/**
 * The messages of a reliable tracking-state transfer (beyond LNLB, which sent CONNTRACK once
 * and hoped): which CONNTRACK message of which transfer a fragment belongs to, and the
 * newcomer's answers, STATE_ACK (everything arrived) and STATE_NACK (these fragments are
 * missing, or: send me the state). Both answers are unicast to the sender, sealed like every
 * control message; the data after the LNLB header:
 *
 *   STATE_ACK   | transferId u32 |
 *   STATE_NACK  | transferId u32 | entries u8 | entries × entry |
 *     entry     | index u8 | kind u8 | first u16 | bits u16 | bitmap, ceil(bits / 8) bytes |
 *     kind 0 (WHOLE): message `index` of the transfer is missing whole (first = bits = 0, no bitmap);
 *     kind 1 (SOME): bit i of the bitmap (MSB first) set = fragment first + i is missing.
 *   transferId 0 in a NACK: the newcomer has nothing of any transfer from this sender: send it.
 *
 * A transfer is one CONNTRACK message per protocol handler, sent with consecutive message ids
 * (transferId = the first one), so a fragment of any of them says where it belongs through
 * its flags word (u32, bit 31 is the authentication flag):
 *
 *   bits 0-7 protocol | bit 8 STATE_LAST | bits 16-22 index in the transfer | bits 24-30 messages in it
 *
 * A count of 0 is a message that belongs to no transfer (a resync to every node: nothing is
 * acknowledged). Pure codec: no I/O; decode never throws.
 */
import { readU32, writeU32 } from './bytes.js';

/** CONNTRACK flags: the last handler's state of one transfer. */
export const STATE_LAST = 0x100;
export const STATE_PROTOCOL_MASK = 0xff;
/** Messages one transfer may hold (one per handler; the field has 7 bits). */
export const MAX_TRANSFER_MESSAGES = 127;
const INDEX_SHIFT = 16;
const COUNT_SHIFT = 24;
const SEVEN_BITS = 0x7f;

/** The CONNTRACK flags of message `index` of `count` for `protocol` (count 0: outside any transfer). */
export function transferFlags(protocol: number, index: number, count: number): number {
  if (!Number.isInteger(count) || count < 0 || count > MAX_TRANSFER_MESSAGES) throw new RangeError(`a state transfer holds 0..${MAX_TRANSFER_MESSAGES} messages, got ${count}`);
  if (!Number.isInteger(index) || index < 0 || (count > 0 && index >= count)) throw new RangeError(`message ${index} of a ${count}-message transfer`);
  return ((protocol & STATE_PROTOCOL_MASK) | (index === count - 1 ? STATE_LAST : 0) | (index << INDEX_SHIFT) | (count << COUNT_SHIFT)) >>> 0;
}

/** Index of a CONNTRACK message in its transfer. */
export function transferIndex(flags: number): number {
  return (flags >>> INDEX_SHIFT) & SEVEN_BITS;
}

/** Messages in the transfer a CONNTRACK message belongs to; 0: none (a resync). */
export function transferCount(flags: number): number {
  return (flags >>> COUNT_SHIFT) & SEVEN_BITS;
}

/** The transfer a CONNTRACK message belongs to: its first message id. */
export function transferIdOf(messageId: number, flags: number): number {
  return (messageId - transferIndex(flags)) >>> 0;
}

export const STATE_ACK_LENGTH = 4;
const NACK_HEADER = 5;
const ENTRY_HEADER = 6;
export const NackKind = { WHOLE: 0, SOME: 1 } as const;

/** One message of a transfer the newcomer lacks (whole), or the fragments of it it lacks (some). */
export interface NackEntry {
  index: number;
  /** Absent: the whole message. */
  missing?: { first: number; bits: number; bitmap: Uint8Array };
}

export interface StateNack {
  transferId: number;
  entries: NackEntry[];
}

export function encodeStateAck(transferId: number): Uint8Array {
  const out = new Uint8Array(STATE_ACK_LENGTH);
  writeU32(out, 0, transferId);
  return out;
}

/** The transfer an ACK acknowledges, or undefined when the data is not an ACK's. */
export function decodeStateAck(data: Uint8Array): number | undefined {
  return data.length === STATE_ACK_LENGTH ? readU32(data, 0) : undefined;
}

/**
 * A NACK of at most `maxBytes`: entries are written in order while they fit; a bitmap that does
 * not fit whole is cut (its first bits, which the next NACK follows up). Returns the bytes and
 * the number of fragments it asks for (`asked`, a whole message counting `wholeSize(index)`).
 */
export function encodeStateNack(nack: StateNack, maxBytes: number, wholeSize: (index: number) => number = () => 0): { data: Uint8Array; asked: number } {
  if (maxBytes < NACK_HEADER) throw new RangeError(`a NACK needs ${NACK_HEADER} bytes, got ${maxBytes}`);
  const out = new Uint8Array(maxBytes);
  writeU32(out, 0, nack.transferId);
  let at = NACK_HEADER;
  let entries = 0;
  let asked = 0;
  for (const e of nack.entries) {
    if (entries === 0xff || at + ENTRY_HEADER > maxBytes) break;
    out[at] = e.index;
    if (e.missing === undefined) {
      out[at + 1] = NackKind.WHOLE;
      at += ENTRY_HEADER;
      asked += wholeSize(e.index);
    } else {
      const room = (maxBytes - at - ENTRY_HEADER) * 8;
      const bits = Math.min(e.missing.bits, room, 0xffff);
      if (bits === 0) break;
      out[at + 1] = NackKind.SOME;
      out[at + 2] = e.missing.first >>> 8;
      out[at + 3] = e.missing.first;
      out[at + 4] = bits >>> 8;
      out[at + 5] = bits;
      const bytes = Math.ceil(bits / 8);
      out.set(e.missing.bitmap.subarray(0, bytes), at + ENTRY_HEADER);
      // Bits past `bits` in the last byte are cleared: they are not asked.
      if (bits % 8 !== 0) out[at + ENTRY_HEADER + bytes - 1]! &= (0xff << (8 - (bits % 8))) & 0xff;
      for (let i = 0; i < bits; i++) if ((out[at + ENTRY_HEADER + (i >>> 3)]! & (0x80 >>> (i & 7))) !== 0) asked++;
      at += ENTRY_HEADER + bytes;
    }
    entries++;
  }
  out[4] = entries;
  return { data: out.subarray(0, at), asked };
}

/** A NACK's contents, or undefined when the data is malformed (lengths that do not add up, an unknown kind). */
export function decodeStateNack(data: Uint8Array): StateNack | undefined {
  if (data.length < NACK_HEADER) return undefined;
  const transferId = readU32(data, 0);
  const count = data[4]!;
  const entries: NackEntry[] = [];
  let at = NACK_HEADER;
  for (let n = 0; n < count; n++) {
    if (at + ENTRY_HEADER > data.length) return undefined;
    const index = data[at]!;
    const kind = data[at + 1]!;
    const first = (data[at + 2]! << 8) | data[at + 3]!;
    const bits = (data[at + 4]! << 8) | data[at + 5]!;
    at += ENTRY_HEADER;
    if (kind === NackKind.WHOLE) {
      if (first !== 0 || bits !== 0) return undefined;
      entries.push({ index });
    } else if (kind === NackKind.SOME) {
      const bytes = Math.ceil(bits / 8);
      if (bits === 0 || at + bytes > data.length) return undefined;
      entries.push({ index, missing: { first, bits, bitmap: data.subarray(at, at + bytes) } });
      at += bytes;
    } else {
      return undefined;
    }
  }
  return at === data.length ? { transferId, entries } : undefined;
}

/** The fragments a NACK entry asks for, given the message's fragment count (those past it ignored). */
export function* askedFragments(entry: NackEntry, total: number): Generator<number, void, void> {
  if (entry.missing === undefined) {
    for (let k = 0; k < total; k++) yield k;
    return;
  }
  const { first, bits, bitmap } = entry.missing;
  for (let i = 0; i < bits && first + i < total; i++) if ((bitmap[i >>> 3]! & (0x80 >>> (i & 7))) !== 0) yield first + i;
}
