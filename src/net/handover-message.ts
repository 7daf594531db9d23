/**
 * A bucket handover (cluster/bucket-handover.ts) on the wire: the flows one node tracks in the
 * buckets that moved to another, every handler's in one message. It travels as a CONNTRACK
 * message of protocol HANDOVER_PROTOCOL outside any transfer (count 0), so a member or a
 * newcomer takes it whatever it is doing, and is acknowledged by a STATE_ACK of its message id.
 *
 *   | magic "LNHO" u32 | version u16 = 1 | states u16 | table digest u32 |
 *   then per handler: | protocol u16 | length u32 | tracking state (handlers/tracker-state.ts) |
 *
 * Each tracking state carries its own CRC and is checked whole when loaded; this layer checks
 * that the lengths add up, so a short or padded message is refused before anything is read.
 */

/** The IP protocol number a handover travels under (254, IANA's for experimentation; 255 is the bucket table's). */
export const HANDOVER_PROTOCOL = 254;
export const HANDOVER_MAGIC = 0x4c4e484f; // "LNHO"
export const HANDOVER_VERSION = 1;
const HEADER_BYTES = 12;
const STATE_HEADER_BYTES = 6;
/** Handlers a handover may carry (one per IP protocol at most). */
export const MAX_HANDOVER_STATES = 256;

export interface HandoverState {
  protocol: number;
  state: Uint8Array;
}

export interface Handover {
  digest: number;
  states: HandoverState[];
}

export function encodeHandover(handover: Handover): Uint8Array {
  if (handover.states.length > MAX_HANDOVER_STATES) throw new RangeError(`a handover carries at most ${MAX_HANDOVER_STATES} states, got ${handover.states.length}`);
  const length = HEADER_BYTES + handover.states.reduce((n, s) => n + STATE_HEADER_BYTES + s.state.length, 0);
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setUint32(0, HANDOVER_MAGIC);
  v.setUint16(4, HANDOVER_VERSION);
  v.setUint16(6, handover.states.length);
  v.setUint32(8, handover.digest >>> 0);
  let at = HEADER_BYTES;
  for (const { protocol, state } of handover.states) {
    v.setUint16(at, protocol);
    v.setUint32(at + 2, state.length);
    out.set(state, at + STATE_HEADER_BYTES);
    at += STATE_HEADER_BYTES + state.length;
  }
  return out;
}

/** The handover in `bytes`, or a reason to refuse it. The states are views into `bytes`. */
export function decodeHandover(bytes: Uint8Array): Handover | { error: string } {
  if (bytes.length < HEADER_BYTES) return { error: `${bytes.length} bytes, shorter than a handover header` };
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0) !== HANDOVER_MAGIC) return { error: 'not a handover (bad magic)' };
  if (v.getUint16(4) !== HANDOVER_VERSION) return { error: `handover version ${v.getUint16(4)}, this node reads ${HANDOVER_VERSION}` };
  const count = v.getUint16(6);
  const digest = v.getUint32(8);
  const states: HandoverState[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + STATE_HEADER_BYTES > bytes.length) return { error: `state ${i} of ${count} is cut short` };
    const protocol = v.getUint16(at);
    const length = v.getUint32(at + 2);
    if (at + STATE_HEADER_BYTES + length > bytes.length) return { error: `state ${i} of ${count} claims ${length} bytes past the end` };
    states.push({ protocol, state: bytes.subarray(at + STATE_HEADER_BYTES, at + STATE_HEADER_BYTES + length) });
    at += STATE_HEADER_BYTES + length;
  }
  if (at !== bytes.length) return { error: `${bytes.length - at} bytes after the last state` };
  return { digest, states };
}
