/**
 * Flow hashing. Every node must compute the same value for the same key, so these functions
 * depend on nothing but their inputs (no per-process seed). Two independent mixes are used:
 * one picks the actor thread that owns a key (local sharding), the other feeds the election
 * (cluster-wide owner). Keeping them independent avoids a correlation where, say, every key
 * an actor sees is elected to the same node.
 */

/** murmur3's 32-bit finalizer: full avalanche, 5 integer ops, no allocation. */
export function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of an affinity key (two u32 words: e.g. source IPv4, and 0 or a port) for the election. */
export function electionHash(keyLo: number, keyHi: number): number {
  return mix32(keyLo ^ mix32(keyHi ^ 0x9e3779b9));
}

/** Which of `actorCount` actors owns a key: a different mix than the election's. */
export function actorForKey(keyLo: number, keyHi: number, actorCount: number): number {
  const h = mix32((keyLo ^ 0x5bd1e995) + Math.imul(keyHi, 0x27d4eb2d));
  return actorCount === 1 ? 0 : h % actorCount;
}
