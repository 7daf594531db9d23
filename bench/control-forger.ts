/**
 * The control-flood benchmark's forger, run inside the client namespace: floods forged LNLB
 * control frames (EtherType 0x88b5) at the cluster MAC, as fast as one AF_PACKET socket
 * takes them (native sendBurst: one write per frame, no JS per frame), for `--seconds`, then
 * prints {"sent": N, "seconds": S, "byKind": {...}} on stdout.
 *
 * Kinds, taken in turn, one burst each (a random MAC is a new locally administered MAC
 * per burst, so the receivers see thousands of senders):
 *   hb-wrongkey-member    HEARTBEAT weight 65535, signed with a wrong key, from a member's MAC
 *   leave-wrongkey-member LEAVE, signed with a wrong key, from a member's MAC
 *   join-wrongkey-random  JOIN, signed with a wrong key, from random MACs
 *   unsigned-member       LEAVE without a signature, from a member's MAC
 *   unsigned-random       JOIN without a signature, from random MACs
 *   garbage-member        a valid signed HEARTBEAT header, then 200 random bytes, member's MAC
 *   conntrack-65535       CONNTRACK fragment k of 65535 (1 KiB of data), signed with a wrong
 *                         key, from random MACs
 *   conntrack-unsigned    the same without a signature
 *
 *   frame = | Ethernet 14 | LNLB header 28 | data | trailer 24 (signed kinds) | tail 20 |
 *
 * The 20-byte tail looks like an IPv4 header to sendBurst, which rewrites its checksum and
 * source per frame; a receiver finds the trailer from dataLength and ignores the tail as
 * Ethernet padding. `--kinds a,b` sends only those kinds, `--rate N` at most N frames a second. `--ethertype N` sends the same frames with another EtherType (a decoy
 * the benchmark uses as its reference: the same load, nothing for lnlb to read).
 */

import { randomBytes } from 'node:crypto';
import { writeU32 } from '../src/net/bytes.js';
import { encodeMessage, MessageType, MSG_OFF_FLAGS, MSG_OFF_FRAGMENT_NUMBER, MSG_OFF_FRAGMENT_TOTAL, MSG_OFF_DATA_LENGTH } from '../src/net/cluster-message.js';
import { AUTH_TRAILER_LENGTH, FLAG_AUTHENTICATED } from '../src/net/auth.js';
import { ETH_HLEN, ETH_P_LNLB, parseMac, writeEthernetHeader } from '../src/net/ethernet.js';
import * as lab from '../lab/native.js';
import * as port from '../src/port/native.js';

function arg(name: string): string {
  const at = process.argv.indexOf(`--${name}`);
  const value = at < 0 ? undefined : process.argv[at + 1];
  if (value === undefined) throw new Error(`control-forger: --${name} is required`);
  return value;
}

const seconds = Number(arg('seconds'));
const memberMac = parseMac(arg('member-mac'));
const clusterMac = parseMac(arg('cluster-mac'));
const clusterIp = Number(arg('cluster-ip')) >>> 0;
const burst = Number(process.argv.includes('--burst') ? arg('burst') : 64);
/** Another EtherType: the same frames as a decoy no lnlb socket reads (the benchmark's reference). */
const etherType = process.argv.includes('--ethertype') ? Number(arg('ethertype')) : ETH_P_LNLB;

const TAIL = 20;

interface Kind {
  name: string;
  frame: Uint8Array;
  randomSource: boolean;
  /** CONNTRACK: the fragment number changes per burst. */
  fragment: boolean;
}

function forge(type: MessageType, data: Uint8Array, signed: boolean, options: { garbage?: number; fragments?: number } = {}): Uint8Array {
  const extra = options.garbage ?? 0;
  const frame = new Uint8Array(ETH_HLEN + 28 + data.length + extra + (signed ? AUTH_TRAILER_LENGTH : 0) + TAIL);
  writeEthernetHeader(frame, 0, clusterMac, memberMac, etherType);
  const len = encodeMessage(frame, ETH_HLEN, { clusterIp, type, messageId: randomBytes(4).readUInt32BE(), data });
  let end = ETH_HLEN + len;
  if (extra > 0) {
    // A valid header that claims the garbage as data: the body is random, the CRC stale.
    frame.set(randomBytes(extra), end);
    writeU32(frame, ETH_HLEN + MSG_OFF_DATA_LENGTH, data.length + extra);
    end += extra;
  }
  if (options.fragments !== undefined) {
    frame[ETH_HLEN + MSG_OFF_FRAGMENT_TOTAL] = options.fragments >>> 8;
    frame[ETH_HLEN + MSG_OFF_FRAGMENT_TOTAL + 1] = options.fragments;
  }
  if (signed) {
    writeU32(frame, ETH_HLEN + MSG_OFF_FLAGS, FLAG_AUTHENTICATED);
    // A sequence near now and a MAC made with some other key: only the key is wrong.
    const ms = Date.now();
    writeU32(frame, end, Math.floor(ms / 1024));
    writeU32(frame, end + 4, ((ms % 1024) * 0x40_0000) >>> 0);
    frame.set(randomBytes(16), end + 8);
    end += AUTH_TRAILER_LENGTH;
  }
  frame[end] = 0x45; // the tail sendBurst takes for an IPv4 header
  return frame;
}

const membership = (weight: number): Uint8Array => {
  const d = new Uint8Array(6);
  d[0] = weight >>> 8;
  d[1] = weight;
  writeU32(d, 2, 0x7fff_ffff); // a high incarnation
  return d;
};

const allKinds: Kind[] = [
  { name: 'hb-wrongkey-member', frame: forge(MessageType.HEARTBEAT, membership(0xffff), true), randomSource: false, fragment: false },
  { name: 'leave-wrongkey-member', frame: forge(MessageType.LEAVE, membership(0).subarray(2), true), randomSource: false, fragment: false },
  { name: 'join-wrongkey-random', frame: forge(MessageType.JOIN, membership(0xffff), true), randomSource: true, fragment: false },
  { name: 'unsigned-member', frame: forge(MessageType.LEAVE, membership(0).subarray(2), false), randomSource: false, fragment: false },
  { name: 'unsigned-random', frame: forge(MessageType.JOIN, membership(0xffff), false), randomSource: true, fragment: false },
  { name: 'garbage-member', frame: forge(MessageType.HEARTBEAT, membership(1), true, { garbage: 200 }), randomSource: false, fragment: false },
  { name: 'conntrack-65535', frame: forge(MessageType.CONNTRACK, randomBytes(1024), true, { fragments: 0xffff }), randomSource: true, fragment: true },
  { name: 'conntrack-unsigned', frame: forge(MessageType.CONNTRACK, randomBytes(1024), false, { fragments: 0xffff }), randomSource: true, fragment: true },
];

/** `--rate N`: at most N frames a second (default 0: as fast as the socket takes them). */
const rate = process.argv.includes('--rate') ? Number(arg('rate')) : 0;
const pause = new Int32Array(new SharedArrayBuffer(4));
/** `--kinds a,b`: only these kinds (default all). */
const only = process.argv.includes('--kinds') ? arg('kinds').split(',') : undefined;
for (const name of only ?? []) if (!allKinds.some((k) => k.name === name)) throw new Error(`control-forger: unknown kind ${name}`);
const kinds = allKinds.filter((k) => only === undefined || only.includes(k.name));
const fd = port.packetOpen('eth0', { protocol: etherType, promisc: false, vnetHdr: false, ignoreOutgoing: true });
const byKind: Record<string, number> = Object.fromEntries(kinds.map((k) => [k.name, 0]));
let sent = 0;
let round = 0;
const start = performance.now();
const deadline = start + seconds * 1000;
while (performance.now() < deadline) {
  for (const kind of kinds) {
    const f = kind.frame;
    if (kind.randomSource) {
      // 02:xx:xx:xx:xx:xx, a new sender per burst (never a member's: those are the veths' own).
      f[6] = 0x02;
      writeU32(f, 8, (round * kinds.length + kinds.indexOf(kind)) >>> 0);
      f[7] = 0xfe;
    }
    if (kind.fragment) {
      const k = round % 0xffff;
      f[ETH_HLEN + MSG_OFF_FRAGMENT_NUMBER] = k >>> 8;
      f[ETH_HLEN + MSG_OFF_FRAGMENT_NUMBER + 1] = k;
    }
    const n = lab.sendBurst(fd, f, 0, f.length, burst, { ipv4Offset: f.length - TAIL, sourceCount: 1 });
    sent += n;
    byKind[kind.name]! += n;
    if (rate > 0) {
      // Paced: sleep until the time the frames sent so far are due at `rate` per second.
      const ahead = start + (sent * 1000) / rate - performance.now();
      if (ahead > 0) Atomics.wait(pause, 0, 0, ahead);
    }
  }
  round++;
}
const elapsed = (performance.now() - start) / 1000;
port.close(fd);
process.stdout.write(`${JSON.stringify({ sent, seconds: elapsed, byKind, burst })}\n`);
