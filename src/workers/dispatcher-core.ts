/**
 * The dispatcher's per-frame work, free of threads and sockets so that it runs under tests
 * and the replay benchmark as it runs in the dispatcher thread.
 *
 * For each frame read from the wire: ARP requests for the VIP are answered here (the cluster
 * MAC in the ARP payload, our own MAC as Ethernet source, so the switch never learns the
 * cluster MAC and keeps flooding); other frames are checked (cluster MAC, IPv4, for the VIP),
 * parsed once, keyed by their handler, matched to a port rule by destination port (a
 * `disabled` rule drops here; the rule's affinity picks what the election hashes: the
 * handler's key, the source IP or the source /24), and handed to the actor that owns the key.
 * The election hash itself (keyed, ~20 ns) is left to the actor, which needs it only for a
 * key it does not track yet.
 *
 * Frames are read in place (FrameSource): parsed where the kernel put them, in its ring, so a
 * dropped frame is never copied. Under --workers 1 the actor is this thread (DirectHandoff) and
 * a kept frame goes to the TAP from the ring: no copy in userspace at all. With actor threads
 * (RingHandoff) a kept frame is copied once, with a 16-byte descriptor, into its actor's ring;
 * one commit per ring per batch, no per-frame wake-up.
 *
 *   actor ring record payload:
 *     word 0 keyLo · word 1 keyHi · word 2 what the election hashes (source, source /24, or
 *     keyLo when the rule's affinity is none: then with keyHi)
 *     word 3 handler index (bits 0-7) | port rule index (8-15) | the handler's frame flags (16-31)
 *     byte 16 + shift (the record's flags, 0-3): vnet hdr (10 bytes when the port has it) · Ethernet frame
 */

import { actorForKey, ipv6Identity, isIPv6Identity } from '../cluster/hash.js';
import { AffinityCode, compileRules, RuleModeCode, type RuleSet } from '../cluster/port-rules.js';
import { AFFINITY_KEY_WORDS, FRAME_FLAGS_MASK, type ParsedFrame, type ProtocolHandler } from '../handlers/handler.js';
import { ARP_OFF_OP, ARP_OP_REPLY, ARP_PAYLOAD_LENGTH, ArpParse, ARPR_SENDER_IP, ARPR_TARGET_IP, buildArpReply, createArpResult, parseArpRequest } from '../net/arp.js';
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_P_LNLB, macEquals } from '../net/ethernet.js';
import { isWeightAnnouncement } from '../net/cluster-message.js';
import { createIPv6Result, IPPROTO_ICMPV6, IP6R_DST, IP6R_FLAGS, IP6R_IP_OFFSET, IP6R_L4_OFFSET, IP6R_PAYLOAD_LENGTH, IP6R_PROTOCOL, IP6R_SRC, IPV6_HEADER, IPv6Parse, readIPv6 } from '../net/ipv6.js';
import { buildSolicitedAdvertisement, createNdpResult, ICMPV6_NEIGHBOR_ADVERTISEMENT, NdpParse, parseNeighborSolicitation } from '../net/ndp.js';
import {
  createIPv4Result,
  IPF_FRAGMENT,
  IPR_DST,
  IPR_FLAGS,
  IPR_IP_OFFSET,
  IPR_L4_OFFSET,
  IPR_PROTOCOL,
  IPR_SRC,
  IPR_TOTAL_LENGTH,
  IPv4Parse,
  readIPv4,
} from '../net/ipv4.js';
import type { ByteRing } from '../shm/byte-ring.js';
import type { SourceBook } from '../shm/source-book.js';
import { readU32 } from '../net/bytes.js';
import { DispatcherCounter as C } from './counters.js';
import { META_SPILLED, META_TRUNCATED, META_VLAN, META_WORDS, VNET_HDR_LEN } from '../port/native.js';
import { insertVlanTag } from '../net/vlan.js';
import type { FrameSource } from './ports.js';
import { handlerCall, HandlerMethod } from './watchdog.js';
import type { HandlerErrorLog } from './handler-errors.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const NETWORK_MASK = 0xffffff00;

export const DESCRIPTOR_BYTES = 16;
const BATCH_FRAMES = 256;
/**
 * In an actor ring record, the frame starts this many bytes (0-3) after the descriptor: the
 * offset modulo 4 it had in the kernel's ring (ByteRing record flags), so it is copied in words.
 */
export const FRAME_SHIFT_MASK = 3;

export interface DispatcherConfig {
  source: FrameSource;
  /** The actors' rings (one actor thread per ring); unused when `actor` is given. */
  rings?: ByteRing[];
  /** The actor this thread is itself (--workers 1): frames are decided here, from the batch, without a hand-off. */
  actor?: DirectActor;
  /** The actor's clock in whole seconds (the trackers' time); default the wall clock. */
  nowSeconds?: () => number;
  counters: Float64Array;
  vnetHdr: boolean;
  /** The IPv4 VIP as a u32; 0: the interface has none (IPv6 only). */
  vip: number;
  /** The IPv6 VIP's 16 bytes, or undefined (IPv4 only). */
  vip6?: Uint8Array | undefined;
  /**
   * The election key (hash.ts deriveElectionKey), which also keys the identity an IPv6 source
   * goes by (ipv6Identity); undefined: the unkeyed fold (a cluster without a key).
   */
  electionKey?: Uint32Array | undefined;
  /** --vlan: the 802.1Q VLAN read on a trunk (others are dropped, counted); 0 (default): untagged frames only. */
  vlan?: number;
  /**
   * --vlan: the host's side of the cluster interface, for the ARP replies and neighbour
   * advertisements answering the host's own resolutions there (it sends through the cluster
   * interface on a trunk). `frame` starts with a virtio-net header when the port has one.
   */
  toHost?: (frame: Uint8Array, length: number) => boolean;
  /** Where each IPv6 source's address is recorded under its identity (for conntrack's listing). */
  sourceBook?: SourceBook | undefined;
  clusterMac: Uint8Array;
  ownMac: Uint8Array;
  /** Handler per IP protocol (index = protocol); the default handler fills the gaps. */
  handlers: readonly ProtocolHandler[];
  /**
   * Multicast mode: written over each forwarded frame's destination MAC. The host stack takes a
   * frame to a multicast MAC as PACKET_MULTICAST, and TCP drops anything not PACKET_HOST.
   */
  tapMac?: Uint8Array | undefined;
  /** Port rules (default: the default rule alone: multiple, affinity single). */
  rules?: RuleSet;
  /** Where a throwing handler is reported (once per cause). */
  handlerErrors?: HandlerErrorLog;
  /** This process's actor hash seed (the actors of the datapath use the same); default 0. */
  actorSeed?: number;
}

/** Actors one dispatcher feeds: which rings a batch touched is one 31-bit mask (a small integer, never a heap number). */
export const MAX_ACTORS = 31;

export class FrameDispatcher {
  readonly #source: FrameSource;
  readonly #c: Float64Array;
  readonly #vnet: number;
  readonly #vip: number;
  readonly #vip6: Uint8Array | undefined;
  readonly #electionKey: Uint32Array | undefined;
  readonly #sourceBook: SourceBook | undefined;
  readonly #vlan: number;
  readonly #toHost: ((frame: Uint8Array, length: number) => boolean) | undefined;
  /** A neighbour answer on its way to the host (a virtio-net header, then the frame). */
  readonly #hostFrame = new Uint8Array(2048);
  /** The IPv6 VIP as the four words readIPv6 gives an address in. */
  readonly #vip6Words = new Uint32Array(4);
  readonly #clusterMac: Uint8Array;
  readonly #ownMac: Uint8Array;
  readonly #tapMac: Uint8Array | undefined;
  /** handler index by IP protocol (0..255) into #handlers. */
  readonly #handlerByProtocol = new Uint8Array(256);
  readonly #handlers: readonly ProtocolHandler[];
  readonly #handoff: FrameHandoff;
  readonly #meta = new Uint32Array(BATCH_FRAMES * META_WORDS);
  /** When each frame of the batch reached the host (epoch ms, the kernel's; NaN: not known). */
  readonly #stamps = new Float64Array(BATCH_FRAMES).fill(Number.NaN);
  /** The frame being dispatched: its stamp. */
  #frameAt = Number.NaN;
  readonly #ip = createIPv4Result();
  readonly #ip6 = createIPv6Result();
  readonly #ndp = createNdpResult();
  readonly #key = new Uint32Array(AFFINITY_KEY_WORDS);
  readonly #arp = createArpResult();
  readonly #tx = new Uint8Array(128);
  readonly #requesterMac = new Uint8Array(6);
  /** Some rule elects by the network (an IPv6 frame then needs its /64's identity too). */
  readonly #networkRules: boolean;
  readonly #parsed: ParsedFrame;
  readonly #tcpRule: Uint8Array;
  readonly #udpRule: Uint8Array;
  readonly #ruleModes: Uint8Array;
  readonly #ruleAffinities: Uint8Array;
  readonly #handlerErrors: HandlerErrorLog | undefined;

  constructor(config: DispatcherConfig) {
    this.#source = config.source;
    this.#c = config.counters;
    this.#vnet = config.vnetHdr ? VNET_HDR_LEN : 0;
    this.#vip = config.vip >>> 0;
    this.#vip6 = config.vip6;
    if (config.vip6 !== undefined) for (let w = 0; w < 4; w++) this.#vip6Words[w] = readU32(config.vip6, 4 * w);
    this.#electionKey = config.electionKey;
    this.#sourceBook = config.sourceBook;
    this.#vlan = config.vlan ?? 0;
    this.#toHost = config.toHost;
    this.#clusterMac = config.clusterMac;
    this.#ownMac = config.ownMac;
    this.#tapMac = config.tapMac;
    this.#handlers = config.handlers;
    const fallback = config.handlers.findIndex((h) => h.protocol === 0);
    if (fallback < 0) throw new RangeError('a default handler (protocol 0) is required');
    this.#handlerByProtocol.fill(fallback);
    config.handlers.forEach((h, i) => {
      if (h.protocol !== 0) this.#handlerByProtocol[h.protocol] = i;
    });
    this.#handoff = config.actor !== undefined ? new DirectHandoff(config.actor, config.nowSeconds ?? wallSeconds) : new RingHandoff(config.rings ?? [], config.actorSeed ?? 0, config.source);
    this.#parsed = { bytes: config.source.bytes, l2: 0, l3: 0, l4: 0, ipEnd: 0, length: 0, family: 4, protocol: 0, src: 0, dst: 0, firstFragment: true, rule: 0 };
    const rules = config.rules ?? compileRules([]);
    this.#tcpRule = rules.tcpRuleByPort;
    this.#udpRule = rules.udpRuleByPort;
    this.#ruleModes = rules.modes;
    this.#ruleAffinities = rules.affinities;
    this.#networkRules = rules.affinities.includes(AffinityCode.network);
    this.#handlerErrors = config.handlerErrors;
  }

  /** Reads one batch (waiting up to `timeoutMs` if the wire is idle) and hands it out. */
  pollOnce(timeoutMs: number): number {
    this.#c[C.beat]!++; // the watchdog's sign of progress (watchdog.ts)
    const meta = this.#meta;
    const stamps = this.#stamps;
    const source = this.#source;
    const n = source.read(meta, BATCH_FRAMES, timeoutMs, stamps);
    if (n > 0) this.#handoff.beginBatch();
    for (let i = 0; i < n; i++) {
      const row = i * META_WORDS;
      const flags = meta[row + 3]!;
      this.#frameAt = stamps[i]!;
      this.#dispatch((flags & META_SPILLED) === 0 ? source.bytes : source.spill, meta[row]!, meta[row + 1]!, flags);
    }
    if (n > 0) this.#handoff.endBatch();
    return n;
  }

  /** One frame at bytes[off, off + len): where the kernel put it (no copy to look at it). */
  #dispatch(b: Uint8Array, off: number, len: number, flags: number): void {
    const c = this.#c;
    c[C.framesSeen]!++;
    c[C.bytesSeen]! += len;
    if ((flags & META_TRUNCATED) !== 0) {
      c[C.dropTruncated]!++;
      return;
    }
    // The kernel filter passes only this VLAN's frames; a frame read before it was attached may not be.
    if (((flags & META_VLAN) === 0 ? 0 : (flags >>> 16) & 0xfff) !== this.#vlan) {
      c[C.dropOtherVlan]!++;
      return;
    }
    const l2 = off + this.#vnet;
    const frameLen = len - this.#vnet;
    if (frameLen < ETH_HLEN) {
      c[C.dropMalformed]!++;
      return;
    }
    const type = (b[l2 + 12]! << 8) | b[l2 + 13]!;
    if (type === ETH_P_ARP) {
      this.#answerArp(b, l2, frameLen);
      return;
    }
    if (type === ETH_P_IPV6) {
      this.#dispatchIPv6(b, off, len, l2, frameLen);
      return;
    }
    if (type === ETH_P_LNLB && this.#isAnnouncement(b, l2, frameLen)) {
      c[C.announcementsSeen]!++;
      this.#handoff.announcement(this.#frameAt);
      return;
    }
    if (!macEquals(b, l2, this.#clusterMac, 0)) {
      c[C.dropNotClusterMac]!++;
      return;
    }
    if (type !== ETH_P_IP) {
      c[C.dropNotIP]!++;
      return;
    }
    const ip = this.#ip;
    if (readIPv4(b, l2, frameLen, ip) !== IPv4Parse.OK) {
      c[C.dropMalformed]!++;
      return;
    }
    if (ip[IPR_DST] !== this.#vip || this.#vip === 0) {
      c[C.dropNotVip]!++;
      return;
    }
    const src = ip[IPR_SRC]!;
    // 224.0.0.0/3 (multicast, class E) is no client's source, and the IPv6 identities live there.
    if (isIPv6Identity(src)) {
      c[C.dropMalformed]!++;
      return;
    }
    const parsed = this.#parsed;
    parsed.bytes = b;
    parsed.l2 = l2;
    parsed.l3 = ip[IPR_IP_OFFSET]!;
    parsed.l4 = ip[IPR_L4_OFFSET]!;
    parsed.ipEnd = Math.min(parsed.l3 + ip[IPR_TOTAL_LENGTH]!, l2 + frameLen);
    parsed.length = frameLen;
    parsed.family = 4;
    parsed.protocol = ip[IPR_PROTOCOL]!;
    parsed.src = src;
    parsed.dst = ip[IPR_DST]!;
    parsed.firstFragment = (ip[IPR_FLAGS]! & IPF_FRAGMENT) === 0;
    this.#keyAndHand(b, off, len, (src & NETWORK_MASK) >>> 0);
  }

  /**
   * A member's HEARTBEAT announcing a weight (FLAG_WAKE, to the cluster MAC), which the data
   * filter passes so that the actors see it in order with the clients' frames: a new flow
   * after it waits until the control plane has read it (ActorCore.announcementSeen). Not
   * authenticated here: a forged one holds new flows only until the control plane's next read.
   */
  #isAnnouncement(b: Uint8Array, l2: number, frameLen: number): boolean {
    return macEquals(b, l2, this.#clusterMac, 0) && isWeightAnnouncement(b, l2 + ETH_HLEN, frameLen - ETH_HLEN);
  }

  /**
   * An IPv6 frame: a Neighbour Solicitation for the VIP is answered here (it comes to a
   * solicited-node multicast MAC, or, to check a neighbour is still there, to the cluster MAC:
   * answered by the host behind the TAP, its advertisement would leave by the TAP and be lost);
   * anything else for the VIP is keyed by the source's identity (hash.ts ipv6Identity) as an
   * IPv4 frame by its source.
   */
  #dispatchIPv6(b: Uint8Array, off: number, len: number, l2: number, frameLen: number): void {
    const c = this.#c;
    const vip6 = this.#vip6;
    const ip6 = this.#ip6;
    const code = readIPv6(b, l2, frameLen, ip6);
    if (code === IPv6Parse.OK && vip6 !== undefined && parseNeighborSolicitation(b, ip6, this.#ndp) === NdpParse.OK) {
      this.#answerSolicitation(b, l2, vip6);
      return;
    }
    // --vlan: an advertisement to the cluster MAC answers the host's own solicitation (from the
    // VIP or the TAP's link-local address): every node's host takes it, as ARP replies below.
    if (code === IPv6Parse.OK && this.#toHost !== undefined && ip6[IP6R_PROTOCOL] === IPPROTO_ICMPV6 && b[ip6[IP6R_L4_OFFSET]!] === ICMPV6_NEIGHBOR_ADVERTISEMENT && macEquals(b, l2, this.#clusterMac, 0)) {
      this.#passToHost(b, l2, frameLen);
      return;
    }
    if (!macEquals(b, l2, this.#clusterMac, 0)) {
      c[C.dropNotClusterMac]!++;
      return;
    }
    if (vip6 === undefined) {
      c[C.dropNotIP]!++;
      return;
    }
    if (code !== IPv6Parse.OK) {
      c[C.dropMalformed]!++;
      return;
    }
    const v = this.#vip6Words;
    if (ip6[IP6R_DST] !== v[0] || ip6[IP6R_DST + 1] !== v[1] || ip6[IP6R_DST + 2] !== v[2] || ip6[IP6R_DST + 3] !== v[3]) {
      c[C.dropNotVip]!++;
      return;
    }
    c[C.framesIPv6]!++;
    const key = this.#electionKey;
    const w0 = ip6[IP6R_SRC]!;
    const w1 = ip6[IP6R_SRC + 1]!;
    const w2 = ip6[IP6R_SRC + 2]!;
    const w3 = ip6[IP6R_SRC + 3]!;
    const identity = ipv6Identity(key, w0, w1, w2, w3);
    this.#sourceBook?.record(identity, w0, w1, w2, w3);
    const parsed = this.#parsed;
    parsed.bytes = b;
    parsed.l2 = l2;
    parsed.l3 = ip6[IP6R_IP_OFFSET]!;
    parsed.l4 = ip6[IP6R_L4_OFFSET]!;
    parsed.ipEnd = parsed.l3 + IPV6_HEADER + ip6[IP6R_PAYLOAD_LENGTH]!;
    parsed.length = frameLen;
    parsed.family = 6;
    parsed.protocol = ip6[IP6R_PROTOCOL]!;
    parsed.src = identity;
    parsed.dst = 0;
    parsed.firstFragment = (ip6[IP6R_FLAGS]! & IPF_FRAGMENT) === 0;
    // The /64 only when a rule asks for it: a second hash per frame otherwise spent for nothing.
    this.#keyAndHand(b, off, len, this.#networkRules ? ipv6Identity(key, w0, w1, 0, 0) : 0);
  }

  /**
   * The frame in #parsed: its port rule, its handler's key, and the actor that takes it.
   * `network` is what the `network` affinity elects by: the source /24, or an IPv6 source's /64.
   */
  #keyAndHand(b: Uint8Array, off: number, len: number, network: number): void {
    const c = this.#c;
    const parsed = this.#parsed;
    const l4 = parsed.l4;
    const protocol = parsed.protocol;
    const src = parsed.src;
    // The port rule: by destination port for TCP and UDP (a first fragment carries the ports);
    // everything else, later fragments included, falls under the default rule.
    let rule = 0;
    if (parsed.firstFragment && (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP) && l4 + 4 <= parsed.ipEnd) {
      const dstPort = (b[l4 + 2]! << 8) | b[l4 + 3]!;
      rule = protocol === IPPROTO_TCP ? this.#tcpRule[dstPort]! : this.#udpRule[dstPort]!;
    }
    if (this.#ruleModes[rule] === RuleModeCode.disabled) {
      c[C.dropDisabledRule]!++;
      return;
    }
    parsed.rule = rule;

    const handlerIndex = this.#handlerByProtocol[protocol]!;
    const key = this.#key;
    key[2] = 0; // a handler that has no flags need not write them
    c[C.inHandler] = handlerCall(handlerIndex, HandlerMethod.affinityKey);
    try {
      this.#handlers[handlerIndex]!.affinityKey(parsed, key);
    } catch (err) {
      c[C.inHandler] = 0;
      c[C.dropHandlerError]!++;
      this.#handlerErrors?.record(this.#handlers[handlerIndex]!.name, 'affinityKey', err);
      return;
    }
    c[C.inHandler] = 0;
    const keyLo = key[0]!;
    const keyHi = key[1]!;
    const affinity = this.#ruleAffinities[rule]!;
    const electionInput = affinity === AffinityCode.single ? src : affinity === AffinityCode.none ? keyLo : network;
    if (this.#tapMac !== undefined) b.set(this.#tapMac, parsed.l2);
    if (!this.#handoff.take(keyLo, keyHi, electionInput, handlerIndex | (rule << 8) | ((key[2]! & FRAME_FLAGS_MASK) << 16), b, off, len, this.#frameAt)) c[C.dropRingFull]!++;
  }

  /** A reply of `len` bytes built in tx after the virtio-net header: tagged for --vlan; its length. */
  #tagged(tx: Uint8Array, len: number): number {
    return this.#vlan === 0 ? len : insertVlanTag(tx, this.#vnet, len, this.#vlan);
  }

  /** The frame at b[l2, l2 + frameLen) to the host's side of the cluster interface, behind a blank virtio-net header. */
  #passToHost(b: Uint8Array, l2: number, frameLen: number): void {
    const out = this.#hostFrame;
    if (this.#vnet + frameLen > out.length) return;
    out.fill(0, 0, this.#vnet);
    for (let i = 0; i < frameLen; i++) out[this.#vnet + i] = b[l2 + i]!;
    if (this.#toHost!(out, this.#vnet + frameLen)) this.#c[C.neighbourToHost]!++;
  }

  /** The NS in #ndp asks for some address: the VIP's is answered with the cluster MAC, from our own MAC (as ARP). */
  #answerSolicitation(b: Uint8Array, l2: number, vip6: Uint8Array): void {
    const c = this.#c;
    const ndp = this.#ndp;
    c[C.ndpSolicitations]!++;
    for (let i = 0; i < 16; i++) if (ndp.target[i] !== vip6[i]) return;
    const tx = this.#tx;
    tx.fill(0, 0, this.#vnet);
    const requester = this.#requesterMac;
    for (let i = 0; i < 6; i++) requester[i] = b[l2 + 6 + i]!;
    const len = buildSolicitedAdvertisement(tx, this.#vnet, ndp, requester, { ethSrc: this.#ownMac, vip: vip6, clusterMac: this.#clusterMac });
    if (this.#source.send(tx, 0, this.#vnet + this.#tagged(tx, len)) > 0) c[C.ndpAdvertisements]!++;
    else c[C.arpReplyFailed]!++;
  }

  #answerArp(b: Uint8Array, l2: number, frameLen: number): void {
    const c = this.#c;
    const arp = this.#arp;
    // --vlan: a reply to the cluster MAC answers the host's own request through the cluster interface.
    if (this.#toHost !== undefined && frameLen >= ETH_HLEN + ARP_PAYLOAD_LENGTH && b[l2 + ETH_HLEN + ARP_OFF_OP] === 0 && b[l2 + ETH_HLEN + ARP_OFF_OP + 1] === ARP_OP_REPLY && macEquals(b, l2, this.#clusterMac, 0)) {
      this.#passToHost(b, l2, frameLen);
      return;
    }
    // Replies and other ARP traffic on the LAN are not ours to answer.
    if (parseArpRequest(b, l2, frameLen, arp) !== ArpParse.OK) return;
    c[C.arpRequests]!++;
    if (arp.fields[ARPR_TARGET_IP] !== this.#vip || this.#vip === 0) return;
    const tx = this.#tx;
    tx.fill(0, 0, this.#vnet); // virtio-net header: no offload on a 60-byte reply
    const len = buildArpReply(tx, this.#vnet, {
      ethSrc: this.#ownMac,
      ethDst: arp.senderMac,
      senderMac: this.#clusterMac,
      senderIp: this.#vip,
      targetMac: arp.senderMac,
      targetIp: arp.fields[ARPR_SENDER_IP]!,
    });
    if (this.#source.send(tx, 0, this.#vnet + this.#tagged(tx, len)) > 0) c[C.arpReplies]!++;
    else c[C.arpReplyFailed]!++;
  }
}

function wallSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** What the dispatcher hands a kept frame to: an actor thread's ring, or the actor it is itself. */
interface FrameHandoff {
  beginBatch(): void;
  /**
   * The frame at bytes[at, at + length) (valid until the next read) with its descriptor's
   * words and when it reached the host (epoch ms, NaN: not known); false when there was no
   * room (counted as ringFull).
   */
  take(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, at: number, length: number, receivedAt: number): boolean;
  /** A weight announced (a HEARTBEAT with FLAG_WAKE) here in the stream, received at `receivedAt`. */
  announcement(receivedAt: number): void;
  endBatch(): void;
}

/** The actor the dispatcher thread is itself (ActorCore's direct input). */
export interface DirectActor {
  beginBatch(nowSeconds: number): void;
  decideFrame(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, at: number, length: number, receivedAt: number): void;
  announcementSeen(receivedAt: number): void;
  endBatch(): void;
}

/**
 * --workers 1: no hand-off at all. The frame is decided where the kernel put it and written
 * to the TAP from there: no copy in userspace, one thread woken per batch (the wire's poll),
 * none of the ~100 µs cross-core wake-ups of a hand-off.
 */
class DirectHandoff implements FrameHandoff {
  readonly #actor: DirectActor;
  readonly #nowSeconds: () => number;

  constructor(actor: DirectActor, nowSeconds: () => number) {
    this.#actor = actor;
    this.#nowSeconds = nowSeconds;
  }

  beginBatch(): void {
    this.#actor.beginBatch(this.#nowSeconds());
  }

  take(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, at: number, length: number, receivedAt: number): boolean {
    this.#actor.decideFrame(keyLo, keyHi, electionInput, meta, bytes, at, length, receivedAt);
    return true;
  }

  announcement(receivedAt: number): void {
    this.#actor.announcementSeen(receivedAt);
  }

  endBatch(): void {
    this.#actor.endBatch();
  }
}

/**
 * --workers N ≥ 2: each kept frame is copied once, with its descriptor, from the kernel's ring
 * into the ring of the actor that owns its key (seeded per process), and each ring touched is
 * committed once per batch.
 *
 * The copy is word by word, with no view allocated: the kernel's frames start 2 bytes past a
 * word (a V2 slot), so the record keeps the frame at the same offset modulo 4 (the record's
 * flags carry it: FRAME_SHIFT_MASK), and whole words are copied from the word the frame starts
 * in. The bytes before and after the frame in those words are padding.
 */
class RingHandoff implements FrameHandoff {
  readonly #rings: ByteRing[];
  readonly #ringWords: Uint32Array[];
  readonly #actorSeed: number;
  /** The source's memories as words (the ring's view and the spill), to copy from. */
  readonly #sourceBytes: Uint8Array;
  readonly #sourceWords: Uint32Array;
  readonly #spillWords: Uint32Array;
  /** Rings written in this batch, one bit per actor. */
  #touched = 0;

  constructor(rings: ByteRing[], actorSeed: number, source: FrameSource) {
    if (rings.length > MAX_ACTORS) throw new RangeError(`at most ${MAX_ACTORS} actors`); // #touched is a bit mask
    if (rings.length === 0) throw new RangeError('a dispatcher needs an actor: rings or a direct one');
    this.#rings = rings;
    this.#ringWords = rings.map((r) => r.words);
    this.#actorSeed = actorSeed;
    this.#sourceBytes = source.bytes;
    this.#sourceWords = wordsOf(source.bytes);
    this.#spillWords = wordsOf(source.spill);
  }

  beginBatch(): void {}

  /**
   * Not passed on: an actor thread reads its ring after the control plane may have published
   * the weight, so the switch at the announcement's place in the stream is --workers 1's alone
   * (README, "Weights").
   */
  announcement(): void {}

  take(keyLo: number, keyHi: number, electionInput: number, meta: number, bytes: Uint8Array, off: number, len: number): boolean {
    const actor = actorForKey(keyLo, keyHi, this.#rings.length, this.#actorSeed);
    const ring = this.#rings[actor]!;
    const shift = off & FRAME_SHIFT_MASK;
    const at = ring.reserve(DESCRIPTOR_BYTES + shift + len, shift);
    if (at < 0) return false;
    const words = this.#ringWords[actor]!;
    const w = at >>> 2;
    words[w] = keyLo;
    words[w + 1] = keyHi;
    words[w + 2] = electionInput;
    words[w + 3] = meta;
    const src = bytes === this.#sourceBytes ? this.#sourceWords : this.#spillWords;
    // From the word the frame starts in to the one it ends in: the record is padded to 8 and
    // the source has room after its last frame (a slot, the spill's slack).
    const from = (off - shift) >>> 2;
    const to = w + (DESCRIPTOR_BYTES >>> 2);
    const count = (shift + len + 3) >>> 2;
    for (let k = 0; k < count; k++) words[to + k] = src[from + k]!;
    this.#touched |= 1 << actor;
    return true;
  }

  endBatch(): void {
    let touched = this.#touched;
    for (let a = 0; touched !== 0; a++, touched >>>= 1) {
      if ((touched & 1) !== 0) this.#rings[a]!.commit();
    }
    this.#touched = 0;
  }
}

/** The whole words of a memory that starts on a word (the kernel's ring, the spill, a memory source). */
function wordsOf(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
}
