/**
 * Which program the data socket's kernel filter should carry, decided from the node's
 * configuration and what the view and the actors say it takes (pure: inputs in, a program
 * out; the dispatcher attaches it). With --election bucket and a configuration the bucket
 * filter can compute (net/bucket-filter.ts), the kernel drops the frames of every bucket this
 * node neither owns (now or under pending weights: the view's passBuckets) nor still drains
 * (the actors' masks, shm/draining-buckets.ts), so a node of N copies about 1/N of the
 * cluster's frames. Anything else keeps the plain dataFilter: every IPv4 frame to the cluster
 * MAC, and userspace decides as before.
 *
 * - --election lnlb: plain. The bucket filter could compute LNLB's shares, but an LNLB node
 *   records every node's flows (every node elects and tracks every new flow, so that a flow
 *   keeps its owner through a membership change without a transfer): it must see every frame.
 * - --election rendezvous: plain; its election cannot be computed in cBPF (no floating point).
 * - Port rules other than the default, a default rule that is not `multiple`, or a member
 *   that gives the default rule a share (the actors then elect over share-weighted members,
 *   not by the agreed bucket table): plain.
 * - Affinity none (the handler's key): the filter knows the built-in handlers' keys; tcp and
 *   udp must both be keyed by their built-in handlers or both by the default one (then the key
 *   is the source, as with affinity single); other protocols with handlers of their own are
 *   passed to userspace. A custom default handler: plain.
 * - No pass mask in the view (the members' tables differ, a membership change is pending, the
 *   node does not serve yet): every bucket passes (the plain filter).
 *
 * A swap widens at once and narrows only after the narrower set has held for
 * NARROW_GRACE_MS: a bucket this node stops owning may still hold its tracked flows, and the
 * actors add it to their draining masks only once they have read the new view. Passing more
 * frames than needed for a moment costs CPU; passing fewer loses frames.
 */

import type { ElectionName } from '../cluster/election.js';
import { RuleModeCode, SHARE_EQUAL, shareOf, type RuleSet } from '../cluster/port-rules.js';
import type { HandlerSpec } from '../handlers/loader.js';
import { dataFilter, withVlanGuard } from '../net/bpf.js';
import { multicastMac, solicitedNodeAddress } from '../net/ndp.js';
import { bucketFilter, MAX_OPAQUE_PROTOCOLS, type FilterAffinity } from '../net/bucket-filter.js';
import { countBuckets, DRAINING_MASK_WORDS } from '../shm/draining-buckets.js';
import { VIEW_BUCKETS_PASS, VIEW_MAX_RULE_SLOTS, type PublishedView } from '../shm/view.js';

/** What the data socket carries and why (a dispatcher gauge; FILTER_WHY_TEXT says it in words). */
export const FilterWhy = {
  /** The bucket filter: only the buckets this node owns or drains. */
  buckets: 0,
  /** Plain: the election is not `bucket`. */
  election: 1,
  /** Plain: port rules (or a default rule that is not `multiple`). */
  portRules: 2,
  /** Plain: affinity none with handlers whose keys the filter cannot compute. */
  handlers: 3,
  /** Plain: the view has no pass mask (tables differ, a change is pending, not serving yet). */
  unsettled: 4,
  /** Plain: a member gives the default rule a share. */
  shares: 5,
  /** Plain: the kernel refused the bucket filter. */
  failed: 6,
  /** Plain: this node owns or drains every bucket (a cluster of one). */
  everyBucket: 7,
} as const;
export type FilterWhyCode = (typeof FilterWhy)[keyof typeof FilterWhy];

export const FILTER_WHY_TEXT: Readonly<Record<FilterWhyCode, string>> = {
  [FilterWhy.buckets]: 'buckets this node owns or drains',
  [FilterWhy.election]: 'every frame: only --election bucket is filtered by bucket',
  [FilterWhy.portRules]: 'every frame: port rules are not in the kernel filter',
  [FilterWhy.handlers]: 'every frame: affinity none with handlers whose keys the kernel filter cannot compute',
  [FilterWhy.unsettled]: 'every frame: the bucket tables are changing or this node does not serve yet',
  [FilterWhy.shares]: 'every frame: a member gives the default rule a share',
  [FilterWhy.failed]: 'every frame: the kernel refused the bucket filter',
  [FilterWhy.everyBucket]: 'every frame: this node owns or drains every bucket',
};

/** How long a narrower pass set must hold before the filter narrows (the actors' draining masks catch up meanwhile). */
export const NARROW_GRACE_MS = 200;

export interface FilterConfig {
  election: ElectionName;
  rules: RuleSet;
  /** The handlers by protocol (resolveHandlerSpecs: protocol 0, the default, always there). */
  handlers: readonly Pick<HandlerSpec, 'protocol' | 'module'>[];
  clusterMac: Uint8Array;
  /** The IPv4 VIP (host order u32; 0: none). */
  vip: number;
  /** The IPv6 VIP (16 bytes), or undefined. */
  vip6?: Uint8Array | undefined;
  /** --vlan: the VLAN every program passes (withVlanGuard); 0: untagged frames only. */
  vlan?: number;
  electionKey: Uint32Array | undefined;
}

/** What the configuration allows, whatever the view: a bucket filter of this shape, or the plain filter for a reason. */
export type FilterShape = { kind: 'buckets'; affinity: FilterAffinity; opaqueProtocols: number[] } | { kind: 'plain'; why: FilterWhyCode };

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const BUILTIN_DEFAULT = 'builtin:default';

/** The shape of filter a configuration allows (see the header for each case). */
export function filterShape(config: Pick<FilterConfig, 'election' | 'rules' | 'handlers'>): FilterShape {
  if (config.election !== 'bucket') return { kind: 'plain', why: FilterWhy.election };
  const rules = config.rules;
  if (rules.rules.length !== 1 || rules.modes[0] !== RuleModeCode.multiple) return { kind: 'plain', why: FilterWhy.portRules };
  const affinity = rules.rules[0]!.affinity;
  if (affinity !== 'none') return { kind: 'buckets', affinity, opaqueProtocols: [] };
  const byProtocol = new Map(config.handlers.map((h) => [h.protocol, h.module]));
  if ((byProtocol.get(0) ?? BUILTIN_DEFAULT) !== BUILTIN_DEFAULT) return { kind: 'plain', why: FilterWhy.handlers };
  const tcp = byProtocol.get(IPPROTO_TCP) ?? BUILTIN_DEFAULT;
  const udp = byProtocol.get(IPPROTO_UDP) ?? BUILTIN_DEFAULT;
  const opaqueProtocols = config.handlers.filter((h) => h.protocol !== 0 && h.protocol !== IPPROTO_TCP && h.protocol !== IPPROTO_UDP && h.module !== BUILTIN_DEFAULT).map((h) => h.protocol);
  if (opaqueProtocols.length > MAX_OPAQUE_PROTOCOLS) return { kind: 'plain', why: FilterWhy.handlers };
  // The default handler keys by (source, rule 0): the election input of affinity single.
  if (tcp === BUILTIN_DEFAULT && udp === BUILTIN_DEFAULT) return opaqueProtocols.length === 0 ? { kind: 'buckets', affinity: 'single', opaqueProtocols } : { kind: 'plain', why: FilterWhy.handlers };
  if (tcp === 'builtin:tcp' && udp === 'builtin:udp') return { kind: 'buckets', affinity: 'none', opaqueProtocols };
  return { kind: 'plain', why: FilterWhy.handlers };
}

/** A member of the view gives the default rule (slot 0) a share. */
export function defaultRuleShared(view: Pick<PublishedView, 'nodeCount' | 'ruleParams'>): boolean {
  for (let i = 0; i < view.nodeCount; i++) if (shareOf(view.ruleParams[i * VIEW_MAX_RULE_SLOTS]!) !== SHARE_EQUAL) return true;
  return false;
}

/** A program to attach now. */
export interface FilterSwap {
  program: Uint32Array;
  why: FilterWhyCode;
  /** Buckets it passes (1024 for the plain filter). */
  buckets: number;
}

const WORDS = DRAINING_MASK_WORDS;
const ALL = 0xffffffff;

function sameMask(a: Uint32Array, b: Uint32Array): boolean {
  for (let k = 0; k < WORDS; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** `a` has a bucket `b` lacks. */
function hasMore(a: Uint32Array, b: Uint32Array): boolean {
  for (let k = 0; k < WORDS; k++) if ((a[k]! & ~b[k]!) !== 0) return true;
  return false;
}

/**
 * The filter's state across views: what is attached, what the latest inputs want, and when a
 * narrowing is due. The socket starts with the plain filter (packetOpen attaches it).
 */
export class FilterPlan {
  readonly shape: FilterShape;
  readonly #config: FilterConfig;
  /** The attached set (all ones: the plain filter). */
  readonly #attached = new Uint32Array(WORDS).fill(ALL);
  #attachedWhy: FilterWhyCode;
  /** What the latest inputs want. */
  readonly #wanted = new Uint32Array(WORDS).fill(ALL);
  #wantedWhy: FilterWhyCode;
  readonly #next = new Uint32Array(WORDS);
  /** The set the kernel refused: not tried again until the inputs want another. */
  readonly #refused = new Uint32Array(WORDS);
  #hasRefused = false;
  #narrowAt = Infinity;

  constructor(config: FilterConfig) {
    this.#config = config;
    this.shape = filterShape(config);
    this.#attachedWhy = this.#wantedWhy = this.shape.kind === 'plain' ? this.shape.why : FilterWhy.unsettled;
  }

  /** Why the attached program is what it is. */
  get why(): FilterWhyCode {
    return this.#attachedWhy;
  }

  /** Buckets the attached program passes. */
  get buckets(): number {
    return countBuckets(this.#attached);
  }

  /** When a narrowing falls due (ms on the caller's clock; Infinity: none pending): call tick then. */
  get narrowAt(): number {
    return this.#narrowAt;
  }

  /**
   * New inputs: the view (its pass mask and rule parameters) and the union of the actors'
   * draining masks. Returns the program to attach now, or undefined when the attached one stays.
   */
  update(view: Pick<PublishedView, 'bucketTables' | 'passBuckets' | 'nodeCount' | 'ruleParams'>, draining: Uint32Array, nowMs: number): FilterSwap | undefined {
    if (this.shape.kind === 'plain') return undefined;
    const wanted = this.#wanted;
    if ((view.bucketTables & VIEW_BUCKETS_PASS) === 0) {
      wanted.fill(ALL);
      this.#wantedWhy = FilterWhy.unsettled;
    } else if (defaultRuleShared(view)) {
      wanted.fill(ALL);
      this.#wantedWhy = FilterWhy.shares;
    } else {
      for (let k = 0; k < WORDS; k++) wanted[k] = (view.passBuckets[k]! | draining[k]!) >>> 0;
      this.#wantedWhy = FilterWhy.buckets;
    }
    if (this.#hasRefused && !sameMask(wanted, this.#refused)) this.#hasRefused = false;
    // Narrowing waits for the grace (restarted by every change that narrows); widening does not.
    if (hasMore(this.#attached, wanted)) this.#narrowAt = nowMs + NARROW_GRACE_MS;
    else this.#narrowAt = Infinity;
    const next = this.#next;
    for (let k = 0; k < WORDS; k++) next[k] = (this.#attached[k]! | wanted[k]!) >>> 0;
    return this.#attach(next, this.#narrowAt === Infinity ? this.#wantedWhy : this.#attachedWhy);
  }

  /** The time passed: the narrowing that fell due, if any. */
  tick(nowMs: number): FilterSwap | undefined {
    if (nowMs < this.#narrowAt) return undefined;
    this.#narrowAt = Infinity;
    return this.#attach(this.#wanted, this.#wantedWhy);
  }

  /**
   * The kernel refused the last swap: the plain filter goes on (every frame passes, userspace
   * decides), and this set is not tried again until the inputs want another.
   */
  refused(): FilterSwap {
    this.#refused.set(this.#wanted);
    this.#hasRefused = true;
    this.#narrowAt = Infinity;
    this.#attached.fill(ALL);
    this.#attachedWhy = FilterWhy.failed;
    return { program: this.#plain(), why: FilterWhy.failed, buckets: countBuckets(this.#attached) };
  }

  #attach(mask: Uint32Array, why: FilterWhyCode): FilterSwap | undefined {
    if (this.#hasRefused && sameMask(mask, this.#refused)) return undefined;
    const every = countBuckets(mask) === WORDS * 32;
    const plainWhy = why === FilterWhy.buckets ? FilterWhy.everyBucket : why;
    if (sameMask(mask, this.#attached)) {
      // Same frames pass; only the reason may differ (plain for another cause).
      if (every) this.#attachedWhy = plainWhy;
      return undefined;
    }
    this.#attached.set(mask);
    this.#attachedWhy = every ? plainWhy : FilterWhy.buckets;
    return { program: this.#program(mask, every), why: this.#attachedWhy, buckets: countBuckets(mask) };
  }

  /** The plain filter: every frame to the cluster MAC (and the VIP's neighbour solicitations). */
  #plain(): Uint32Array {
    const vip6 = this.#config.vip6;
    return withVlanGuard(dataFilter(this.#config.clusterMac, vip6 === undefined ? undefined : multicastMac(solicitedNodeAddress(vip6))), this.#config.vlan ?? 0);
  }

  #program(mask: Uint32Array, every: boolean): Uint32Array {
    const shape = this.shape;
    const c = this.#config;
    if (every || shape.kind === 'plain') return this.#plain();
    const vlan = c.vlan ?? 0;
    return withVlanGuard(bucketFilter({
      clusterMac: c.clusterMac,
      vip: c.vip,
      vip6: c.vip6,
      hostNeighbours: vlan !== 0,
      electionKey: c.electionKey,
      affinity: shape.affinity,
      owned: { kind: 'buckets', pass: new Uint32Array(mask) },
      ...(shape.opaqueProtocols.length > 0 ? { opaqueProtocols: shape.opaqueProtocols } : {}),
    }), vlan);
  }
}
