/**
 * The wire benchmark's traffic generator, run inside the client namespace: floods UDP frames
 * for the VIP from `--sources` source addresses through an AF_PACKET socket (native
 * sendBurst: one syscall per frame, no JS per frame) for `--seconds`, then prints
 * {"sent": N, "seconds": S} on stdout.
 */

import { parseIPv4 } from '../src/net/ipv4.js';
import * as port from '../src/port/native.js';
import { udpFrame } from './frames.js';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

const seconds = arg('seconds', 2);
const frameBytes = arg('bytes', 60);
const sources = arg('sources', 4096);
const ifInfo = port.ifInfo('eth0');
const frame = udpFrame(parseIPv4('10.0.128.0'), frameBytes, false, [...ifInfo.mac].map((b) => b.toString(16).padStart(2, '0')).join(':'));
const fd = port.packetOpen('eth0', { protocol: 0x0800, promisc: false, vnetHdr: false, ignoreOutgoing: true });
const deadline = performance.now() + seconds * 1000;
let sent = 0;
const start = performance.now();
while (performance.now() < deadline) sent += port.sendBurst(fd, frame, 0, frame.length, 4096, { ipv4Offset: 14, sourceCount: sources });
const elapsed = (performance.now() - start) / 1000;
port.close(fd);
process.stdout.write(`${JSON.stringify({ sent, seconds: elapsed })}\n`);
