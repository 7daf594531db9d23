/**
 * The Marker protocol's responder (802.1AX 6.5, slow protocols subtype 2): a partner that moves
 * a conversation between links sends a Marker PDU on the old link and waits for its response,
 * so that no frame of the conversation still in flight is overtaken on the new one. The
 * responder answers each Marker Information PDU with the same PDU as a Marker Response, from
 * the port's own MAC to the slow protocols address (the driver's ad_marker_info_received does
 * the same). lnlb sends no Marker of its own (nor does the driver: it moves conversations
 * only when a link goes, and then nothing is in flight on it).
 *
 *   | dst 01:80:c2:00:00:02 | src | 0x8809 |
 *   | subtype 2 | version 1 | TLV 1 (information) or 2 (response) | length 16 |
 *   | requester port 2 | requester system 6 | transaction id 4 | pad 2 |
 *   | terminator 0, 0 | reserved 90 |
 */

import { ETH_HLEN } from '../../net/ethernet.js';
import { ETH_P_SLOW, SLOW_PROTOCOLS_MULTICAST, SLOW_SUBTYPE_MARKER } from './lacpdu.js';

export const MARKER_INFORMATION = 1;
export const MARKER_RESPONSE = 2;
/** The Marker PDU after the Ethernet header, reserved bytes included (as a LACPDU). */
export const MARKER_PDU_LENGTH = 110;
const MARKER_TLV_LENGTH = 16;
/** The bytes the responder must be able to read and copy: the TLV and the terminator. */
const MARKER_MIN_LENGTH = 2 + MARKER_TLV_LENGTH + 2;

/** MARKER_INFORMATION or MARKER_RESPONSE for a valid Marker PDU at buf[l2, l2 + len), else 0. */
export function markerKind(buf: Uint8Array, l2: number, len: number): number {
  if (len < ETH_HLEN + MARKER_MIN_LENGTH || l2 + len > buf.length) return 0;
  if (((buf[l2 + 12]! << 8) | buf[l2 + 13]!) !== ETH_P_SLOW) return 0;
  const pdu = l2 + ETH_HLEN;
  if (buf[pdu] !== SLOW_SUBTYPE_MARKER || buf[pdu + 1] !== 1 || buf[pdu + 3] !== MARKER_TLV_LENGTH) return 0;
  const tlv = buf[pdu + 2]!;
  return tlv === MARKER_INFORMATION || tlv === MARKER_RESPONSE ? tlv : 0;
}

/**
 * The response to the Marker Information PDU at buf[l2, l2 + len), written at out[off]: the
 * same PDU (up to its full length, zero-padded), TLV type 2, from `portMac`. Returns its length.
 */
export function buildMarkerResponse(buf: Uint8Array, l2: number, len: number, out: Uint8Array, off: number, portMac: Uint8Array): number {
  const length = ETH_HLEN + MARKER_PDU_LENGTH;
  if (off + length > out.length) throw new RangeError(`no room for a ${length}-byte Marker response at ${off}`);
  out.fill(0, off, off + length);
  out.set(SLOW_PROTOCOLS_MULTICAST, off);
  out.set(portMac.subarray(0, 6), off + 6);
  out[off + 12] = ETH_P_SLOW >>> 8;
  out[off + 13] = ETH_P_SLOW & 0xff;
  const copy = Math.min(len - ETH_HLEN, MARKER_PDU_LENGTH);
  out.set(buf.subarray(l2 + ETH_HLEN, l2 + ETH_HLEN + copy), off + ETH_HLEN);
  out[off + ETH_HLEN + 2] = MARKER_RESPONSE;
  return length;
}
