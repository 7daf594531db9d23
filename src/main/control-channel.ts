/**
 * The control plane's own AF_PACKET socket (LNLB's EtherType, a kernel filter for frames to
 * the cluster MAC or to us), so a data flood cannot starve heartbeats. Low rate: plain recv()
 * on readability, woken by libuv (uv_poll) on the main thread.
 */

import { controlFilter } from '../net/bpf.js';
import { readU32, writeU32 } from '../net/bytes.js';
import {
  createDecodedMessage,
  decodeMessage,
  DecodeResult,
  encodeMessage,
  MessageType,
  messageTypeName,
} from '../net/cluster-message.js';
import { ETH_HLEN, ETH_P_LNLB, ETH_ZLEN, formatMac, macEquals, parseMac, writeEthernetHeader } from '../net/ethernet.js';
import * as port from '../port/native.js';

export interface ControlMessageHandler {
  (type: MessageType, srcMac: string, weight: number, incarnation: number): void;
}

export interface ControlCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  rejected: Record<string, number>;
}

const FRAME_BYTES = 2048;

/**
 * Membership data after the LNLB header: HEARTBEAT/RETRASM start with the u16 weight (LNLB's
 * layout, which the codec checks); then, for every type but LEAVE, our u32 incarnation.
 */
const INCARNATION_BYTES = 4;

export class ControlChannel {
  readonly #dev: string;
  readonly #ownMac: Uint8Array;
  readonly #clusterMac: Uint8Array;
  readonly #clusterIp: number;
  readonly #onMessage: ControlMessageHandler;
  readonly #rx = new Uint8Array(FRAME_BYTES);
  readonly #tx = new Uint8Array(FRAME_BYTES);
  readonly #decoded = createDecodedMessage();
  readonly #payloadBytes = new Uint8Array(2 + INCARNATION_BYTES);
  #fd = -1;
  #watch: { stop(): void } | undefined;
  #messageId = 0;
  readonly counters: ControlCounters = { received: {}, sent: {}, rejected: {} };

  constructor(options: { dev: string; ownMac: Uint8Array; clusterMac: Uint8Array; clusterIp: number; onMessage: ControlMessageHandler }) {
    this.#dev = options.dev;
    this.#ownMac = options.ownMac;
    this.#clusterMac = options.clusterMac;
    this.#clusterIp = options.clusterIp;
    this.#onMessage = options.onMessage;
  }

  open(): void {
    this.#fd = port.packetOpen(this.#dev, {
      protocol: ETH_P_LNLB,
      // Control frames go to the cluster MAC, which is not ours: the NIC must pass them up.
      promisc: true,
      filter: controlFilter(this.#ownMac, this.#clusterMac),
      vnetHdr: false,
      ignoreOutgoing: true,
    });
    this.#watch = port.watch(this.#fd, () => this.#drain());
  }

  close(): void {
    this.#watch?.stop();
    this.#watch = undefined;
    if (this.#fd >= 0) port.close(this.#fd);
    this.#fd = -1;
  }

  /** Sends to every node (the cluster MAC) or to one node's MAC. */
  send(type: MessageType, to: 'cluster' | string, weight?: number, incarnation?: number): void {
    if (this.#fd < 0) return;
    const tx = this.#tx;
    const dst = to === 'cluster' ? this.#clusterMac : parseMac(to);
    writeEthernetHeader(tx, 0, dst, this.#ownMac, ETH_P_LNLB);
    this.#messageId = (this.#messageId + 1) >>> 0;
    let len =
      ETH_HLEN +
      encodeMessage(tx, ETH_HLEN, {
        clusterIp: this.#clusterIp,
        type,
        messageId: this.#messageId,
        data: this.#payload(weight, incarnation),
      });
    if (len < ETH_ZLEN) {
      tx.fill(0, len, ETH_ZLEN);
      len = ETH_ZLEN;
    }
    const name = messageTypeName(type);
    if (port.send(this.#fd, tx, 0, len) > 0) this.counters.sent[name] = (this.counters.sent[name] ?? 0) + 1;
    else this.#reject('send-dropped');
  }

  #payload(weight: number | undefined, incarnation: number | undefined): Uint8Array | undefined {
    const out = this.#payloadBytes;
    let at = 0;
    if (weight !== undefined) {
      out[0] = weight >>> 8;
      out[1] = weight;
      at = 2;
    }
    if (incarnation !== undefined) {
      writeU32(out, at, incarnation);
      at += INCARNATION_BYTES;
    }
    return at === 0 ? undefined : out.subarray(0, at);
  }

  #drain(): void {
    const rx = this.#rx;
    const m = this.#decoded;
    for (;;) {
      if (this.#fd < 0) return;
      const len = port.recv(this.#fd, rx, 0, rx.length);
      if (len < 0) return;
      if (len < ETH_HLEN) {
        this.#reject('too-short');
        continue;
      }
      if (macEquals(rx, 6, this.#ownMac, 0)) continue; // our own frame looped back
      const verdict = decodeMessage(rx, ETH_HLEN, len - ETH_HLEN, m);
      if (verdict !== DecodeResult.OK) {
        this.#reject(DecodeResult[verdict] ?? 'invalid');
        continue;
      }
      if (m.clusterIp !== this.#clusterIp) {
        this.#reject('other-cluster');
        continue;
      }
      const name = messageTypeName(m.type);
      this.counters.received[name] = (this.counters.received[name] ?? 0) + 1;
      const at = m.weight >= 0 ? 2 : 0;
      const d = m.dataOffset + at;
      const incarnation = m.dataLength >= at + INCARNATION_BYTES ? readU32(rx, d) : 0;
      this.#onMessage(m.type as MessageType, formatMac(rx, 6), m.weight, incarnation);
    }
  }

  #reject(reason: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
  }
}
