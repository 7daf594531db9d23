/**
 * Whether a node may start serving, when it can hear peers it cannot authenticate (a node
 * with another key, or none among keyed nodes, or the reverse). Without this rule such a node
 * forms a cluster of its own and serves the VIP too: duplicates and failed clients.
 *
 * Unauthenticated peers: senders whose frames decode as LNLB messages for our cluster IP but
 * fail authentication (BAD_MAC, UNSIGNED, UNEXPECTED_SIGNATURE), by MAC, with the header's
 * FLAG_JOINED bit (it claims to be serving). Bounded (LRU, evictions counted); an entry is
 * current until `expireMs` (the death timeout) of silence.
 *
 * The rule:
 * - A node that is not yet serving (since its start, rejoin or reset) first listens for a
 *   while (two heartbeats: every running node sends one per heartbeat), announcing the
 *   draining weight and accepting nothing.
 * - It then serves if no unauthenticated peer is current, or if an authenticated peer heard
 *   recently serves (it joins a running cluster it can verify: a flood of forged frames from
 *   spoofed MACs must not keep a restarted node out), or else only if its verified group
 *   (itself and the authenticated senders heard recently) is strictly larger than the current
 *   unauthenticated peers and none of them claims to be serving. While held it takes
 *   part in membership with the draining weight (every node's election leaves it out of new
 *   flows) and its actors accept nothing. So a latecomer with the wrong key never serves; on
 *   a simultaneous start the larger group serves and a tie serves nobody.
 * - A serving node never stops for frames it cannot authenticate: forged frames can keep a
 *   new node from starting, never switch a running one off. (Held nodes do not set
 *   FLAG_JOINED, so a held node never holds another.)
 *
 * Known gap: two groups that both served before they could hear each other (a partition
 * that heals, two clusters with different keys plugged together) both go on serving, with
 * duplicates, until an operator fixes the keys; each side logs the other's MACs.
 *
 * Pure: time passed in.
 */

export type UnauthenticatedVerdict = 'BAD_MAC' | 'UNSIGNED' | 'UNEXPECTED_SIGNATURE';

/** What each verdict says about the peer, for the operator. */
export const VERDICT_MEANING: Readonly<Record<UnauthenticatedVerdict, string>> = {
  BAD_MAC: 'a different key',
  UNSIGNED: 'no key',
  UNEXPECTED_SIGNATURE: 'a key, and this node has none',
};

export const DEFAULT_MAX_UNAUTHENTICATED_PEERS = 64;

export interface UnauthenticatedPeer {
  readonly macKey: number;
  readonly mac: string;
  verdict: UnauthenticatedVerdict;
  /** Its last frame's FLAG_JOINED: it says it is serving. */
  claimsJoined: boolean;
  readonly firstSeenAt: number;
  lastSeenAt: number;
}

export function macKeyToString(key: number): string {
  return key
    .toString(16)
    .padStart(12, '0')
    .replace(/(..)(?!$)/g, '$1:');
}

export class UnauthenticatedPeers {
  readonly #max: number;
  readonly #expireMs: number;
  /** By MAC; Map order is recency (a frame moves its sender to the end). */
  readonly #peers = new Map<number, UnauthenticatedPeer>();
  /** Entries dropped to stay within the bound. */
  evicted = 0;

  constructor(expireMs: number, max = DEFAULT_MAX_UNAUTHENTICATED_PEERS) {
    this.#expireMs = expireMs;
    this.#max = max;
  }

  /** A frame from `macKey` failed authentication; returns the entry when the peer is new (or back after expiring). */
  note(macKey: number, verdict: UnauthenticatedVerdict, claimsJoined: boolean, now: number): UnauthenticatedPeer | undefined {
    const known = this.#peers.get(macKey);
    if (known !== undefined && now - known.lastSeenAt < this.#expireMs) {
      known.verdict = verdict;
      known.claimsJoined = claimsJoined;
      known.lastSeenAt = now;
      this.#peers.delete(macKey);
      this.#peers.set(macKey, known);
      return undefined;
    }
    if (known !== undefined) this.#peers.delete(macKey);
    this.prune(now);
    if (this.#peers.size >= this.#max) {
      const oldest = this.#peers.keys().next().value as number;
      this.#peers.delete(oldest);
      this.evicted++;
    }
    const peer: UnauthenticatedPeer = { macKey, mac: macKeyToString(macKey), verdict, claimsJoined, firstSeenAt: now, lastSeenAt: now };
    this.#peers.set(macKey, peer);
    return peer;
  }

  /** `macKey` has a current entry. */
  has(macKey: number, now: number): boolean {
    const peer = this.#peers.get(macKey);
    return peer !== undefined && now - peer.lastSeenAt < this.#expireMs;
  }

  /** Drops the entries silent for expireMs. */
  prune(now: number): void {
    for (const [key, peer] of this.#peers) {
      if (now - peer.lastSeenAt >= this.#expireMs) this.#peers.delete(key);
    }
  }

  /** The current peers, most recent last, without those `exclude` names (authenticated members). */
  current(now: number, exclude?: (macKey: number) => boolean): UnauthenticatedPeer[] {
    const out: UnauthenticatedPeer[] = [];
    for (const peer of this.#peers.values()) {
      if (now - peer.lastSeenAt >= this.#expireMs) continue;
      if (exclude?.(peer.macKey) === true) continue;
      out.push(peer);
    }
    return out;
  }

  get size(): number {
    return this.#peers.size;
  }

  clear(): void {
    this.#peers.clear();
  }
}

export interface AdmissionInput {
  /** It has served since its start (or rejoin, or reset): nothing holds it any more. */
  serving: boolean;
  /** Still in its first listening period. */
  listening: boolean;
  /** Itself and the distinct authenticated senders heard recently. */
  verifiedGroup: number;
  /** One of those authenticated senders says it serves: a running cluster this node can verify. */
  verifiedServing: boolean;
  peers: readonly UnauthenticatedPeer[];
}

export type AdmissionDecision = 'serve' | 'listening' | 'held';

export function admission(input: AdmissionInput): AdmissionDecision {
  if (input.serving) return 'serve';
  if (input.listening) return 'listening';
  const peers = input.peers;
  if (peers.length === 0) return 'serve';
  // Joining a cluster that serves and that this node can verify: what it cannot authenticate
  // does not matter (or a flood of spoofed MACs would keep every restarted node out).
  if (input.verifiedServing) return 'serve';
  if (input.verifiedGroup > peers.length && !peers.some((p) => p.claimsJoined)) return 'serve';
  return 'held';
}
