/**
 * ARP for Ethernet/IPv4 (RFC 826): the request parser of the dispatcher and the reply /
 * request builders.
 *
 *   l2Off  +14                                                          +42      +60
 *   | eth  | htype=1 ptype=0x0800 hlen=6 plen=4 op | sha(6) spa(4) tha(6) tpa(4) | pad to 60 |
 *          +0      +2           +4     +5     +6  +8     +14    +18    +24
 *
 * LNLB semantics for a VIP: the reply's ARP payload carries the CLUSTER MAC as sender
 * hardware address while the Ethernet source stays the node's own MAC, so switches never learn
 * the cluster MAC and keep flooding frames for it to every node.
 */
import { BROADCAST_MAC, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_TYPE_OFFSET, ETH_ZLEN, copyMac, writeEthernetHeader } from './ethernet.js';
import { readU32, writeU32 } from './bytes.js';

export const ARP_HRD_ETHER = 1;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;
/** ARP payload for Ethernet/IPv4. */
export const ARP_PAYLOAD_LENGTH = 28;
/** Frame length the builders return: 14 + 28, padded to the 60-byte minimum. */
export const ARP_FRAME_LENGTH = ETH_ZLEN;

/** Offsets inside the ARP payload. */
export const ARP_OFF_OP = 6;
export const ARP_OFF_SHA = 8;
export const ARP_OFF_SPA = 14;
export const ARP_OFF_THA = 18;
export const ARP_OFF_TPA = 24;

/** Result codes of parseArp / parseArpRequest. */
export const ArpParse = {
  OK: 0,
  /** EtherType is not ARP. */
  NOT_ARP: 1,
  /** Shorter than 14 + 28 bytes. */
  TOO_SHORT: 2,
  /** Not Ethernet/IPv4 (htype, ptype, hlen or plen). */
  UNSUPPORTED: 3,
  /** op is neither request nor reply. */
  BAD_OP: 4,
  /** A valid ARP reply where parseArpRequest wanted a request (the fields are filled in). */
  NOT_REQUEST: 5,
} as const;
export type ArpParseCode = (typeof ArpParse)[keyof typeof ArpParse];

/** Caller-owned storage for the parsers; make it once with createArpResult(). */
export interface ArpResult {
  /** [ARPR_OP, ARPR_SENDER_IP, ARPR_TARGET_IP] */
  readonly fields: Uint32Array;
  /** Sender hardware address (6 bytes). */
  readonly senderMac: Uint8Array;
  /** Target hardware address (6 bytes; zeros in a request). */
  readonly targetMac: Uint8Array;
}
export const ARPR_OP = 0;
export const ARPR_SENDER_IP = 1;
export const ARPR_TARGET_IP = 2;

export function createArpResult(): ArpResult {
  return { fields: new Uint32Array(3), senderMac: new Uint8Array(6), targetMac: new Uint8Array(6) };
}



/**
 * Parses an Ethernet/IPv4 ARP request or reply of `len` bytes at `l2Off` into `out`.
 * Allocation-free; never throws on frame contents.
 */
export function parseArp(buf: Uint8Array, l2Off: number, len: number, out: ArpResult): ArpParseCode {
  let end = l2Off + len;
  if (end > buf.length) end = buf.length;
  if (!(l2Off >= 0) || !(end - l2Off >= ETH_HLEN)) return ArpParse.TOO_SHORT;
  if (((buf[l2Off + ETH_TYPE_OFFSET]! << 8) | buf[l2Off + ETH_TYPE_OFFSET + 1]!) !== ETH_P_ARP) return ArpParse.NOT_ARP;
  if (end - l2Off < ETH_HLEN + ARP_PAYLOAD_LENGTH) return ArpParse.TOO_SHORT;
  const a = l2Off + ETH_HLEN;
  if (
    ((buf[a]! << 8) | buf[a + 1]!) !== ARP_HRD_ETHER ||
    ((buf[a + 2]! << 8) | buf[a + 3]!) !== ETH_P_IP ||
    buf[a + 4] !== 6 ||
    buf[a + 5] !== 4
  ) {
    return ArpParse.UNSUPPORTED;
  }
  const op = (buf[a + ARP_OFF_OP]! << 8) | buf[a + ARP_OFF_OP + 1]!;
  if (op !== ARP_OP_REQUEST && op !== ARP_OP_REPLY) return ArpParse.BAD_OP;
  const f = out.fields;
  f[ARPR_OP] = op;
  f[ARPR_SENDER_IP] = readU32(buf, a + ARP_OFF_SPA);
  f[ARPR_TARGET_IP] = readU32(buf, a + ARP_OFF_TPA);
  copyMac(out.senderMac, 0, buf, a + ARP_OFF_SHA);
  copyMac(out.targetMac, 0, buf, a + ARP_OFF_THA);
  return ArpParse.OK;
}

/** parseArp, but only an ARP request (op 1) is OK; a reply yields NOT_REQUEST. */
export function parseArpRequest(buf: Uint8Array, l2Off: number, len: number, out: ArpResult): ArpParseCode {
  const code = parseArp(buf, l2Off, len, out);
  if (code === ArpParse.OK && out.fields[ARPR_OP] !== ARP_OP_REQUEST) return ArpParse.NOT_REQUEST;
  return code;
}

export interface ArpFrameFields {
  /** Ethernet source: the node's own MAC. */
  ethSrc: Uint8Array;
  /** Ethernet destination. */
  ethDst: Uint8Array;
  /** ARP sender hardware address: the cluster MAC when senderIp is a VIP. */
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

function buildArp(buf: Uint8Array, off: number, op: number, f: ArpFrameFields): number {
  if (off < 0 || off + ARP_FRAME_LENGTH > buf.length) throw new RangeError(`no room for a ${ARP_FRAME_LENGTH}-byte ARP frame at offset ${off}`);
  const a = writeEthernetHeader(buf, off, f.ethDst, f.ethSrc, ETH_P_ARP);
  buf[a] = 0;
  buf[a + 1] = ARP_HRD_ETHER;
  buf[a + 2] = ETH_P_IP >>> 8;
  buf[a + 3] = ETH_P_IP & 0xff;
  buf[a + 4] = 6;
  buf[a + 5] = 4;
  buf[a + 6] = 0;
  buf[a + 7] = op;
  copyMac(buf, a + ARP_OFF_SHA, f.senderMac);
  writeU32(buf, a + ARP_OFF_SPA, f.senderIp);
  copyMac(buf, a + ARP_OFF_THA, f.targetMac);
  writeU32(buf, a + ARP_OFF_TPA, f.targetIp);
  buf.fill(0, a + ARP_PAYLOAD_LENGTH, off + ARP_FRAME_LENGTH);
  return ARP_FRAME_LENGTH;
}

/**
 * Builds an ARP reply at `off`; returns its length (60, padded). For a VIP pass the node's own
 * MAC as ethSrc and the cluster MAC as senderMac; ethDst/targetMac/targetIp are the
 * requester's (its sender MAC and IP).
 */
export function buildArpReply(buf: Uint8Array, off: number, f: ArpFrameFields): number {
  return buildArp(buf, off, ARP_OP_REPLY, f);
}

const ZERO_MAC = new Uint8Array(6);

/** Builds a broadcast "who has targetIp, tell senderIp" request; returns 60. */
export function buildArpRequest(
  buf: Uint8Array,
  off: number,
  f: { ethSrc: Uint8Array; senderMac?: Uint8Array; senderIp: number; targetIp: number },
): number {
  return buildArp(buf, off, ARP_OP_REQUEST, {
    ethSrc: f.ethSrc,
    ethDst: BROADCAST_MAC,
    senderMac: f.senderMac ?? f.ethSrc,
    senderIp: f.senderIp,
    targetMac: ZERO_MAC,
    targetIp: f.targetIp,
  });
}

/**
 * Builds a broadcast gratuitous ARP announcing `ip` at `senderMac` (sender IP = target IP).
 * A request by default (what Linux sends); `reply: true` for the reply form.
 */
export function buildGratuitousArp(
  buf: Uint8Array,
  off: number,
  f: { ethSrc: Uint8Array; senderMac: Uint8Array; ip: number; reply?: boolean },
): number {
  return buildArp(buf, off, f.reply === true ? ARP_OP_REPLY : ARP_OP_REQUEST, {
    ethSrc: f.ethSrc,
    ethDst: BROADCAST_MAC,
    senderMac: f.senderMac,
    senderIp: f.ip,
    targetMac: f.reply === true ? f.senderMac : ZERO_MAC,
    targetIp: f.ip,
  });
}
