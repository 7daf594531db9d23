/**
 * Codec of the LACPDU (IEEE 802.1AX-2008 clause 5.4.2 "LACPDU structure and encoding"; the
 * same layout as 802.3-2005 clause 43.4.2), in an Ethernet frame of the Slow Protocols
 * (802.3 Annex 57A): destination 01:80:c2:00:00:02, EtherType 0x8809, subtype 1 = LACP
 * (2 = Marker, which we recognise and do not decode). The LACPDU is 110 bytes, so the frame is
 * 124 bytes before the FCS and never needs Ethernet padding.
 *
 *   frame  LACPDU
 *   +0            destination MAC (01:80:c2:00:00:02)
 *   +6            source MAC (the port's own address)
 *   +12           EtherType 0x8809
 *   +14    +0     subtype 1                 +1  version 1
 *   +16    +2     TLV type 1 (Actor)        +3  length 20
 *          +4     system priority u16       +6  system MAC (6)
 *          +12    key u16                   +14 port priority u16
 *          +16    port number u16           +18 state u8        +19 reserved (3)
 *   +36    +22    TLV type 2 (Partner)      +23 length 20, then the same 18 bytes as the actor
 *   +56    +42    TLV type 3 (Collector)    +43 length 16
 *          +44    collector max delay u16   +46 reserved (12)
 *   +72    +58    TLV type 0 (Terminator)   +59 length 0
 *          +60    reserved (50)
 *   +124   +110   end (the FCS follows on the wire)
 *
 * Version: a receiver processes a LACPDU of a higher version by the version-1 fields it knows
 * and ignores the rest, so that later revisions interoperate (the protocol's extensibility
 * rule, 802.3-2005 43.4.12; FreeBSD's and NetBSD's LACP skip the version check for that
 * reason, Linux never looks at it). Version 0 was never a LACP version: BAD_VERSION. For version 1 the Terminator must be where version 1 puts it; a
 * version 2 LACPDU (802.1AX-2014) may carry further TLVs there and in a longer frame, so its
 * Terminator is not checked.
 *
 * System IDs are 48-bit MACs held as numbers (exact below 2^53, as `macToNumber`): the state
 * machines compare them with === and copy them by assignment, and the decoder allocates
 * nothing. `decodeLacpdu` never throws, whatever the bytes: every defect is a LacpduResult.
 * `encodeLacpdu` throws a RangeError on a programming error (a field out of range, no room).
 */
import { ETH_ALEN, ETH_HLEN, ETH_TYPE_OFFSET, copyMac, macFromNumber, macToNumber } from '../../net/ethernet.js';

export const ETH_P_SLOW = 0x8809;
/** Slow_Protocols_Multicast address. Do not write into it. */
export const SLOW_PROTOCOLS_MULTICAST: Uint8Array = new Uint8Array([0x01, 0x80, 0xc2, 0x00, 0x00, 0x02]);
export const SLOW_SUBTYPE_LACP = 1;
export const SLOW_SUBTYPE_MARKER = 2;
export const LACP_VERSION = 1;

/** The LACPDU after the Ethernet header. */
export const LACPDU_LENGTH = 110;
/** Ethernet header + LACPDU, before the FCS. */
export const LACPDU_FRAME_LENGTH = ETH_HLEN + LACPDU_LENGTH;

export const TLV_TERMINATOR = 0;
export const TLV_ACTOR_INFORMATION = 1;
export const TLV_PARTNER_INFORMATION = 2;
export const TLV_COLLECTOR_INFORMATION = 3;
export const ACTOR_INFORMATION_LENGTH = 20;
export const PARTNER_INFORMATION_LENGTH = 20;
export const COLLECTOR_INFORMATION_LENGTH = 16;
export const TERMINATOR_LENGTH = 0;

// Offsets from the start of the LACPDU (the byte after the EtherType).
export const LACP_OFF_SUBTYPE = 0;
export const LACP_OFF_VERSION = 1;
export const LACP_OFF_ACTOR = 2;
export const LACP_OFF_PARTNER = 22;
export const LACP_OFF_COLLECTOR = 42;
export const LACP_OFF_TERMINATOR = 58;
// Offsets inside the Actor and Partner Information TLVs.
export const INFO_OFF_TYPE = 0;
export const INFO_OFF_LENGTH = 1;
export const INFO_OFF_SYSTEM_PRIORITY = 2;
export const INFO_OFF_SYSTEM = 4;
export const INFO_OFF_KEY = 10;
export const INFO_OFF_PORT_PRIORITY = 12;
export const INFO_OFF_PORT = 14;
export const INFO_OFF_STATE = 16;
// Offsets inside the Collector Information TLV.
export const COLLECTOR_OFF_MAX_DELAY = 2;

/**
 * Actor_State / Partner_State bits (802.1AX-2008 5.4.2.2, item s). A set Timeout bit asks for
 * the short timeout, i.e. that the partner transmits at the fast periodic rate.
 */
export const LACP_STATE_ACTIVITY = 0x01;
export const LACP_STATE_TIMEOUT = 0x02;
export const LACP_STATE_AGGREGATION = 0x04;
export const LACP_STATE_SYNCHRONIZATION = 0x08;
export const LACP_STATE_COLLECTING = 0x10;
export const LACP_STATE_DISTRIBUTING = 0x20;
export const LACP_STATE_DEFAULTED = 0x40;
export const LACP_STATE_EXPIRED = 0x80;

const STATE_NAMES: readonly string[] = [
  'LACP_Activity',
  'LACP_Timeout',
  'Aggregation',
  'Synchronization',
  'Collecting',
  'Distributing',
  'Defaulted',
  'Expired',
];

/**
 * The set bits of a state octet by the standard's names, for the status file and logs:
 * `describeState(0x3d)` is `LACP_Activity,Aggregation,Synchronization,Collecting,Distributing`,
 * `describeState(0)` is `none`.
 */
export function describeState(bits: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) {
    if ((bits & (1 << i)) === 0) continue;
    if (s !== '') s += ',';
    s += STATE_NAMES[i]!;
  }
  return s === '' ? 'none' : s;
}

export enum LacpduResult {
  OK = 0,
  /** Not EtherType 0x8809. */
  NOT_SLOW_PROTOCOL = 1,
  /** Slow Protocols, but not sent to 01:80:c2:00:00:02 (802.1AX: "The DA in LACPDUs is the Slow_Protocols_Multicast address"). */
  BAD_DESTINATION = 2,
  /** Slow Protocols, another subtype (2 = Marker, 3 = OAM, ...). */
  NOT_LACP = 3,
  /** Version 0. */
  BAD_VERSION = 4,
  /** An Actor, Partner, Collector or (version 1) Terminator TLV with the wrong type or length. */
  BAD_TLV = 5,
  /** Fewer bytes than the 124-byte frame, or offset/length outside the buffer. */
  TRUNCATED = 6,
}

/** The Actor or Partner Information of a LACPDU. */
export interface LacpPortInfo {
  systemPriority: number;
  /** 48-bit system MAC as a number (see the module comment). */
  system: number;
  key: number;
  portPriority: number;
  port: number;
  /** LACP_STATE_* bits. */
  state: number;
}

export interface Lacpdu {
  /** The received version; the encoder always writes LACP_VERSION. */
  version: number;
  actor: LacpPortInfo;
  partner: LacpPortInfo;
  /** Tens of microseconds (802.1AX-2008 5.4.2.2, CollectorMaxDelay). */
  collectorMaxDelay: number;
}

/** Caller-owned decode target; make one with createDecodedLacpdu() and reuse it. */
export interface DecodedLacpdu extends Lacpdu {
  /** Source MAC of the frame as a number. */
  srcMac: number;
  subtype: number;
}

export function createPortInfo(): LacpPortInfo {
  return { systemPriority: 0, system: 0, key: 0, portPriority: 0, port: 0, state: 0 };
}

export function createDecodedLacpdu(): DecodedLacpdu {
  return { version: 0, actor: createPortInfo(), partner: createPortInfo(), collectorMaxDelay: 0, srcMac: 0, subtype: 0 };
}

export function copyPortInfo(to: LacpPortInfo, from: Readonly<LacpPortInfo>): void {
  to.systemPriority = from.systemPriority;
  to.system = from.system;
  to.key = from.key;
  to.portPriority = from.portPriority;
  to.port = from.port;
  to.state = from.state;
}

function readU16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}

function checkU16(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${name} must be a u16, got ${v}`);
}

function checkInfo(name: string, info: Readonly<LacpPortInfo>): void {
  checkU16(`${name}.systemPriority`, info.systemPriority);
  checkU16(`${name}.key`, info.key);
  checkU16(`${name}.portPriority`, info.portPriority);
  checkU16(`${name}.port`, info.port);
  if (!Number.isInteger(info.state) || info.state < 0 || info.state > 0xff) throw new RangeError(`${name}.state must be a u8, got ${info.state}`);
  if (!Number.isInteger(info.system) || info.system < 0 || info.system > 0xffff_ffff_ffff) {
    throw new RangeError(`${name}.system must be a 48-bit MAC number, got ${info.system}`);
  }
}

function writeInfo(buf: Uint8Array, off: number, type: number, info: Readonly<LacpPortInfo>): void {
  buf[off + INFO_OFF_TYPE] = type;
  buf[off + INFO_OFF_LENGTH] = ACTOR_INFORMATION_LENGTH;
  writeU16(buf, off + INFO_OFF_SYSTEM_PRIORITY, info.systemPriority);
  macFromNumber(info.system, buf, off + INFO_OFF_SYSTEM);
  writeU16(buf, off + INFO_OFF_KEY, info.key);
  writeU16(buf, off + INFO_OFF_PORT_PRIORITY, info.portPriority);
  writeU16(buf, off + INFO_OFF_PORT, info.port);
  buf[off + INFO_OFF_STATE] = info.state;
  // reserved: 3 bytes
  buf.fill(0, off + INFO_OFF_STATE + 1, off + ACTOR_INFORMATION_LENGTH);
}

function readInfo(buf: Uint8Array, off: number, into: LacpPortInfo): void {
  into.systemPriority = readU16(buf, off + INFO_OFF_SYSTEM_PRIORITY);
  into.system = macToNumber(buf, off + INFO_OFF_SYSTEM);
  into.key = readU16(buf, off + INFO_OFF_KEY);
  into.portPriority = readU16(buf, off + INFO_OFF_PORT_PRIORITY);
  into.port = readU16(buf, off + INFO_OFF_PORT);
  into.state = buf[off + INFO_OFF_STATE]!;
}

/**
 * Writes the whole 124-byte frame (Ethernet header from `srcMac` to the Slow Protocols group,
 * the LACPDU, zeroed reserved fields) at `offset`; returns LACPDU_FRAME_LENGTH.
 */
export function encodeLacpdu(out: Uint8Array, offset: number, pdu: Readonly<Lacpdu>, srcMac: Uint8Array): number {
  if (!Number.isInteger(offset) || offset < 0 || offset + LACPDU_FRAME_LENGTH > out.length) {
    throw new RangeError(`no room for a ${LACPDU_FRAME_LENGTH}-byte LACPDU frame at offset ${offset} (buffer ${out.length})`);
  }
  if (srcMac.length < ETH_ALEN) throw new RangeError(`source MAC must be ${ETH_ALEN} bytes, got ${srcMac.length}`);
  checkInfo('actor', pdu.actor);
  checkInfo('partner', pdu.partner);
  checkU16('collectorMaxDelay', pdu.collectorMaxDelay);
  copyMac(out, offset, SLOW_PROTOCOLS_MULTICAST, 0);
  copyMac(out, offset + ETH_ALEN, srcMac, 0);
  writeU16(out, offset + ETH_TYPE_OFFSET, ETH_P_SLOW);
  const p = offset + ETH_HLEN;
  out[p + LACP_OFF_SUBTYPE] = SLOW_SUBTYPE_LACP;
  out[p + LACP_OFF_VERSION] = LACP_VERSION;
  writeInfo(out, p + LACP_OFF_ACTOR, TLV_ACTOR_INFORMATION, pdu.actor);
  writeInfo(out, p + LACP_OFF_PARTNER, TLV_PARTNER_INFORMATION, pdu.partner);
  out[p + LACP_OFF_COLLECTOR] = TLV_COLLECTOR_INFORMATION;
  out[p + LACP_OFF_COLLECTOR + 1] = COLLECTOR_INFORMATION_LENGTH;
  writeU16(out, p + LACP_OFF_COLLECTOR + COLLECTOR_OFF_MAX_DELAY, pdu.collectorMaxDelay);
  out.fill(0, p + LACP_OFF_COLLECTOR + COLLECTOR_OFF_MAX_DELAY + 2, p + LACP_OFF_TERMINATOR);
  out[p + LACP_OFF_TERMINATOR] = TLV_TERMINATOR;
  out[p + LACP_OFF_TERMINATOR + 1] = TERMINATOR_LENGTH;
  out.fill(0, p + LACP_OFF_TERMINATOR + 2, p + LACPDU_LENGTH);
  return LACPDU_FRAME_LENGTH;
}

function tlvIs(buf: Uint8Array, off: number, type: number, length: number): boolean {
  return buf[off] === type && buf[off + 1] === length;
}

/**
 * Decodes the frame in buf[offset, offset+length) (starting at its Ethernet header) into
 * `into`. Checks, in order: TRUNCATED (no Ethernet header), NOT_SLOW_PROTOCOL,
 * BAD_DESTINATION, TRUNCATED (no subtype/version), NOT_LACP, BAD_VERSION, TRUNCATED (shorter
 * than 124 bytes), BAD_TLV. `into.subtype`, `into.version` and `into.srcMac` are filled in as
 * soon as their bytes are there, the rest only for OK. Never throws, allocates nothing.
 */
export function decodeLacpdu(buf: Uint8Array, offset: number, length: number, into: DecodedLacpdu): LacpduResult {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > buf.length) {
    return LacpduResult.TRUNCATED;
  }
  if (length < ETH_HLEN) return LacpduResult.TRUNCATED;
  if (readU16(buf, offset + ETH_TYPE_OFFSET) !== ETH_P_SLOW) return LacpduResult.NOT_SLOW_PROTOCOL;
  into.srcMac = macToNumber(buf, offset + ETH_ALEN);
  for (let i = 0; i < ETH_ALEN; i++) if (buf[offset + i] !== SLOW_PROTOCOLS_MULTICAST[i]) return LacpduResult.BAD_DESTINATION;
  const p = offset + ETH_HLEN;
  if (length < ETH_HLEN + 2) return LacpduResult.TRUNCATED;
  into.subtype = buf[p + LACP_OFF_SUBTYPE]!;
  into.version = buf[p + LACP_OFF_VERSION]!;
  if (into.subtype !== SLOW_SUBTYPE_LACP) return LacpduResult.NOT_LACP;
  if (into.version < LACP_VERSION) return LacpduResult.BAD_VERSION;
  if (length < LACPDU_FRAME_LENGTH) return LacpduResult.TRUNCATED;
  if (
    !tlvIs(buf, p + LACP_OFF_ACTOR, TLV_ACTOR_INFORMATION, ACTOR_INFORMATION_LENGTH) ||
    !tlvIs(buf, p + LACP_OFF_PARTNER, TLV_PARTNER_INFORMATION, PARTNER_INFORMATION_LENGTH) ||
    !tlvIs(buf, p + LACP_OFF_COLLECTOR, TLV_COLLECTOR_INFORMATION, COLLECTOR_INFORMATION_LENGTH) ||
    (into.version === LACP_VERSION && !tlvIs(buf, p + LACP_OFF_TERMINATOR, TLV_TERMINATOR, TERMINATOR_LENGTH))
  ) {
    return LacpduResult.BAD_TLV;
  }
  readInfo(buf, p + LACP_OFF_ACTOR, into.actor);
  readInfo(buf, p + LACP_OFF_PARTNER, into.partner);
  into.collectorMaxDelay = readU16(buf, p + LACP_OFF_COLLECTOR + COLLECTOR_OFF_MAX_DELAY);
  return LacpduResult.OK;
}

export function lacpduResultName(r: LacpduResult): string {
  return LacpduResult[r] ?? `UNKNOWN(${String(r)})`;
}
