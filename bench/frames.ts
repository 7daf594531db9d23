/** Frames for the benchmarks: UDP datagrams to the VIP from many sources, with a virtio-net header. */

import { clusterMacUnicast, ETH_P_IP, parseMac, writeEthernetHeader } from '../src/net/ethernet.js';
import { parseIPv4, writeIPv4Header } from '../src/net/ipv4.js';

export const BENCH_VIP = '10.0.0.100';
export const VNET_HDR_LEN = 10;

/** One UDP frame of `frameBytes` (Ethernet header included, ≥ 42) from `src`, optionally with a vnet header. */
export function udpFrame(src: number, frameBytes: number, vnetHdr: boolean, srcMac = '02:aa:00:00:00:01'): Uint8Array {
  const pre = vnetHdr ? VNET_HDR_LEN : 0;
  const frame = new Uint8Array(pre + frameBytes);
  const vip = parseIPv4(BENCH_VIP);
  writeEthernetHeader(frame, pre, clusterMacUnicast(vip), parseMac(srcMac), ETH_P_IP);
  const ipLength = frameBytes - 14;
  writeIPv4Header(frame, pre + 14, { src, dst: vip, protocol: 17, totalLength: ipLength });
  const udp = pre + 34;
  frame[udp] = 0x30; // source port 12345
  frame[udp + 1] = 0x39;
  frame[udp + 2] = 0x23; // destination port 9000
  frame[udp + 3] = 0x28;
  frame[udp + 4] = (ipLength - 20) >>> 8;
  frame[udp + 5] = ipLength - 20;
  return frame;
}
