/**
 * The UDP handler (protocol 17): one tracked entry per flow (source IP and port → destination
 * port), refreshed by every datagram and forgotten after an idle timeout
 * (DEFAULT_UDP_IDLE_TIMEOUT_SECONDS, 120 s, by default). UDP has no opening or closing to
 * watch: a flow lasts as long as datagrams keep coming. 120 s is Linux conntrack's timeout for
 * a UDP stream (nf_conntrack_udp_timeout_stream) and RFC 4787's shortest allowed NAT mapping
 * for UDP, so an application that keeps its NAT binding alive keeps its entry alive too.
 *
 * Key (ports.ts): keyLo = source IPv4, keyHi = source port << 16 | destination port.
 * Frame flags (out[2]): UDP_FRAGMENT when the ports cannot be read (an IP fragment, the first too,
 * or a UDP header shorter than its 8 bytes): key (source IP, 0), never tracked, decided by the
 * port rule's election.
 */

import { IPPROTO_UDP } from '../net/ipv4.js';
import { TrackingTable } from '../shm/tracking-table.js';
import { TableTracker } from './default.js';
import { HANDLER_API_VERSION, UNTRACKED, type ParsedFrame, type ProtocolHandler, type Tracker, type TrackerOptions } from './handler.js';
import { describePortKey, portKeyOrigin, PORTS_UNREADABLE, writePortKey } from './ports.js';

export const DEFAULT_UDP_IDLE_TIMEOUT_SECONDS = 120;

/** Frame flag (out[2]): no ports to read. */
export const UDP_FRAGMENT = PORTS_UNREADABLE;

const UDP_HEADER_BYTES = 8;

/** TableTracker, minus the frames without ports: recording (source IP, 0) would pin no flow. */
class UdpTracker extends TableTracker {
  override isRelated(keyLo: number, keyHi: number, frameFlags: number, nowSeconds: number): number {
    if ((frameFlags & UDP_FRAGMENT) !== 0) return UNTRACKED;
    return super.isRelated(keyLo, keyHi, frameFlags, nowSeconds);
  }

  override assigned(keyLo: number, keyHi: number, owner: number, frameFlags: number, nowSeconds: number): void {
    if ((frameFlags & UDP_FRAGMENT) !== 0) return;
    super.assigned(keyLo, keyHi, owner, frameFlags, nowSeconds);
  }
}

export const udpHandler: ProtocolHandler = {
  name: 'udp',
  apiVersion: HANDLER_API_VERSION,
  protocol: IPPROTO_UDP,
  affinityKey(frame: ParsedFrame, out: Uint32Array): void {
    out[2] = writePortKey(frame, UDP_HEADER_BYTES, out) ? 0 : UDP_FRAGMENT;
  },
  trackerBytes(capacity: number): number {
    return TrackingTable.byteLength(capacity);
  },
  createTracker(options: TrackerOptions): Tracker {
    return new UdpTracker(options);
  },
  describeKey: describePortKey,
    keyOrigin: portKeyOrigin,
};
