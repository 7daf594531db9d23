/**
 * The wire benchmark's traffic generator, run inside the client namespace: floods UDP frames
 * for the VIP from `--sources` source addresses through an AF_PACKET socket (native
 * sendBurst: one syscall per frame, no JS per frame) for `--seconds`, then prints
 * {"sent": N, "seconds": S} on stdout. `--rate N` paces it instead: one frame at a time, each
 * when it is due at N frames/s (it spins between them: the generator's CPU is its own).
 * `--count N --rate R`: N frames from N sources, R a second, sent 50 times a second in equal
 * batches and asleep between them (new clients arriving, not a burst on the receivers).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { writeU32 } from '../src/net/bytes.js';
import * as lab from '../lab/native.js';
import { IPPROTO_UDP, parseIPv4 } from '../src/net/ipv4.js';
import * as port from '../src/port/native.js';
import { ipv4Frame } from '../test/fixtures/frames.js';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

const seconds = arg('seconds', 2);
const frameBytes = arg('bytes', 60);
const sources = arg('sources', 4096);
const count = arg('count', 0); // frames to send; 0: send for --seconds
const rate = arg('rate', 0); // frames/s, evenly spaced; 0: as fast as the wire takes them
const baseText = process.argv[process.argv.indexOf('--base') + 1];
const base = process.argv.includes('--base') && baseText !== undefined ? parseIPv4(baseText) : parseIPv4('10.0.128.0');
const ifInfo = port.ifInfo('eth0');
// UDP 12345 → 9000 to the VIP's cluster MAC, from this interface's MAC.
const frame = ipv4Frame({ src: ifInfo.mac, ipSrc: base, protocol: IPPROTO_UDP, sport: 12345, dport: 9000, l4Length: frameBytes - 14 - 20 });
const fd = port.packetOpen('eth0', { protocol: 0x0800, promisc: false, vnetHdr: false, ignoreOutgoing: true });
const deadline = performance.now() + seconds * 1000;
let sent = 0;
const start = performance.now();
if (count > 0 && rate > 0) {
  // Every frame from its own source, a batch each 20 ms.
  const batch = Math.max(1, Math.round(rate / 50));
  for (let due = batch; sent < count; due += batch) {
    writeU32(frame, 14 + 12, (base + sent) >>> 0);
    const n = Math.min(due, count) - sent;
    sent += lab.sendBurst(fd, frame, 0, frame.length, n, { ipv4Offset: 14, sourceCount: n });
    await sleep(Math.max(0, start + ((due / rate) * 1000) - performance.now()));
  }
} else if (count > 0) {
  // Every frame from its own source: each burst starts where the last one ended.
  while (sent < count) {
    writeU32(frame, 14 + 12, (base + sent) >>> 0);
    const n = Math.min(4096, count - sent);
    sent += lab.sendBurst(fd, frame, 0, frame.length, n, { ipv4Offset: 14, sourceCount: n });
  }
} else if (rate > 0) {
  for (let now = performance.now(); now < deadline; now = performance.now()) {
    if (sent >= ((now - start) * rate) / 1000) continue;
    writeU32(frame, 14 + 12, (base + (sent % sources)) >>> 0);
    sent += lab.sendBurst(fd, frame, 0, frame.length, 1, { ipv4Offset: 14, sourceCount: 1 });
  }
} else {
  while (performance.now() < deadline) sent += lab.sendBurst(fd, frame, 0, frame.length, 4096, { ipv4Offset: 14, sourceCount: sources });
}
const elapsed = (performance.now() - start) / 1000;
port.close(fd);
process.stdout.write(`${JSON.stringify({ sent, seconds: elapsed })}\n`);
