/**
 * Flow hashing. Two independent hashes: one feeds the election (which node of the cluster owns
 * a key), the other picks the actor thread of this node that owns it (local sharding).
 * Keeping them independent avoids a correlation where, say, every key an actor sees is
 * elected to the same node.
 *
 * The election hash must be the same on every node, so it depends only on the key and on the
 * cluster key: with a cluster key (--key-file) it is HalfSipHash-1-3 under a 64-bit key derived
 * from it (HKDF-SHA256, info "lnlb election v1"), the kernel's hsiphash for 32-bit words, so a
 * host on the LAN that does not hold the key cannot choose sources that all land on one node.
 * Without a key (the insecure opt-out) it is the unkeyed murmur mix LNLB-style clusters
 * always used. The actor hash is local to this process and takes a random seed, so which
 * actor thread gets a source cannot be precomputed either.
 *
 * Everything here is a few integer ops on numbers: no allocation per call (hot path: once per
 * frame in the dispatcher).
 */

import { hkdfSync } from 'node:crypto';
import { IPV6_IDENTITY_BASE, IPV6_IDENTITY_MASK, UNKEYED_FOLD_SEED } from '../net/ipv6.js';
import { mix32 } from '../net/bytes.js';

export { isIPv6Identity } from '../net/ipv6.js';
// In net (which imports nothing of ours): the kernel filter folds constants with it too.
export { mix32 } from '../net/bytes.js';

/** Unkeyed hash of an affinity key (two u32 words: e.g. source IPv4, and 0 or a port): a cluster without a key. */
export function electionHash(keyLo: number, keyHi: number): number {
  return mix32(keyLo ^ mix32(keyHi ^ 0x9e3779b9));
}

/** HKDF info of the election key: a new version of the keyed election gets a new string. */
export const ELECTION_KEY_INFO = 'lnlb election v1';

/**
 * The election key (two u32 words, 64 bits) every node holding `clusterKey` derives alike;
 * independent of the control plane's HMAC key, which uses the cluster key itself.
 */
export function deriveElectionKey(clusterKey: Uint8Array): Uint32Array {
  const bytes = new Uint8Array(hkdfSync('sha256', clusterKey, new Uint8Array(0), ELECTION_KEY_INFO, 8));
  const view = new DataView(bytes.buffer);
  return Uint32Array.of(view.getUint32(0, true), view.getUint32(4, true));
}

/**
 * HalfSipHash over one 8-byte message (two u32 words, as the kernel's hsiphash_2u32 takes
 * them) under the key (k0, k1), with `c` compression and `d` finalization rounds; 32-bit
 * output. The election uses c = 1, d = 3 (keyedElectionHash); the unit test checks the round
 * function against the reference implementation's HalfSipHash-2-4 vectors.
 */
export function halfSipHash8(k0: number, k1: number, m0: number, m1: number, c: number, d: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  // Words m0, m1, then the final block: no tail bytes, the length (8) in the top byte.
  for (let w = 0; w < 3; w++) {
    const m = w === 0 ? m0 | 0 : w === 1 ? m1 | 0 : 8 << 24;
    v3 ^= m;
    for (let r = 0; r < c; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
    }
    v0 ^= m;
  }
  v2 ^= 0xff;
  for (let r = 0; r < d; r++) {
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  }
  return (v1 ^ v3) >>> 0;
}

/**
 * The election hash of a keyed cluster: HalfSipHash-1-3 under the election key (k0, k1),
 * halfSipHash8(k0, k1, keyLo, keyHi, 1, 3) unrolled (the loops cost 5× here; a unit test
 * holds the two equal). Six SipRounds, each the block of four lines below.
 */
export function keyedElectionHash(k0: number, k1: number, keyLo: number, keyHi: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  const m0 = keyLo | 0;
  const m1 = keyHi | 0;
  const b = 8 << 24;
  v3 ^= m0;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m0;
  v3 ^= m1;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m1;
  v3 ^= b;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= b;
  v2 ^= 0xff;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  return (v1 ^ v3) >>> 0;
}

/**
 * Which of `actorCount` actors owns a key: a different mix than the election's, under this
 * process's `seed` (the dispatcher and the actors of one datapath must use the same one;
 * other nodes need not).
 */
export function actorForKey(keyLo: number, keyHi: number, actorCount: number, seed: number): number {
  if (actorCount === 1) return 0;
  // Seed 0 is the unseeded mix lnlb used before; any other seed moves every key independently.
  const h = mix32(((keyLo ^ 0x5bd1e995 ^ seed) + Math.imul(keyHi ^ seed, 0x27d4eb2d)) | 0);
  return h % actorCount;
}

/**
 * IPv6 sources enter the election, the tables and the state transfers as a 32-bit identity,
 * so that every structure built for IPv4 (16-byte tracking entries, buckets, handovers, the
 * kernel filter) carries them unchanged. The identity is a hash of the 128-bit address, keyed
 * like the election (a host without the cluster key cannot make two sources collide), placed
 * in 224.0.0.0/3: multicast and class E, addresses no IPv4 client can send from (the
 * dispatcher drops IPv4 frames from them), so an IPv6 identity never meets an IPv4 source.
 *
 * 29 bits: among 1M distinct IPv6 sources about 930 pairs share an identity. A pair that does
 * is one client to lnlb (the same node, one tracked entry), alike on every node: no frame is
 * lost or served twice. The `network` affinity of an IPv6 source is its /64: the identity of
 * the prefix with its interface identifier zeroed.
 */
/**
 * HalfSipHash of a 16-byte message (four u32 words) under (k0, k1), with `c` compression and
 * `d` finalization rounds (the identity uses 1-3; the unit test checks 2-4 against the
 * reference implementation's vector for 16 bytes).
 */
export function halfSipHash16(k0: number, k1: number, m0: number, m1: number, m2: number, m3: number, c = 1, d = 3): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  for (let w = 0; w < 5; w++) {
    const m = w === 0 ? m0 | 0 : w === 1 ? m1 | 0 : w === 2 ? m2 | 0 : w === 3 ? m3 | 0 : 16 << 24;
    v3 ^= m;
    for (let r = 0; r < c; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
    }
    v0 ^= m;
  }
  v2 ^= 0xff;
  for (let r = 0; r < d; r++) {
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  }
  return (v1 ^ v3) >>> 0;
}

/**
 * halfSipHash16(k0, k1, m0..m3, 1, 3) unrolled (a unit test holds the two equal): the loops and
 * the word selection cost about a third of an IPv6 frame's keying in the replay benchmark.
 */
export function keyedIdentityHash(k0: number, k1: number, m0: number, m1: number, m2: number, m3: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = (0x6c796765 ^ k0) | 0;
  let v3 = (0x74656462 ^ k1) | 0;
  const b = 16 << 24;
  v3 ^= m0;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m0;
  v3 ^= m1;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m1;
  v3 ^= m2;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m2;
  v3 ^= m3;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= m3;
  v3 ^= b;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 ^= b;
  v2 ^= 0xff;
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
  v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  return (v1 ^ v3) >>> 0;
}

/** The unkeyed fold of a cluster without a key (the insecure opt-out): the murmur mix chained over the words. */
export function unkeyedFold16(m0: number, m1: number, m2: number, m3: number): number {
  return mix32(m0 ^ mix32(m1 ^ mix32(m2 ^ mix32(m3 ^ UNKEYED_FOLD_SEED))));
}

/**
 * The identity of the IPv6 address in words (m0..m3: its 16 bytes read as big-endian u32s, as
 * the kernel filter loads them): keyed under the election key (deriveElectionKey) when the
 * cluster has one.
 */
export function ipv6Identity(key: Uint32Array | undefined, m0: number, m1: number, m2: number, m3: number): number {
  const h = key === undefined ? unkeyedFold16(m0, m1, m2, m3) : keyedIdentityHash(key[0]!, key[1]!, m0, m1, m2, m3);
  return (IPV6_IDENTITY_BASE | (h & IPV6_IDENTITY_MASK)) >>> 0;
}
