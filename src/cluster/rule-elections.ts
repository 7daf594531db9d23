/**
 * The elections of a rule set: which node owns a new key under each port rule. Pure: the view
 * (members, weights, each member's per-rule share and priority) in, owners out. Rebuilt when
 * the view changes; electing allocates nothing.
 *
 * - multiple: the base election over every member, unless some member gave the rule a share:
 *   then the rule has its own election over the members with a share above 0, each weighted
 *   by its node weight (a capacity) times share / 100. A rule where every member's share is 0
 *   falls back to the base election rather than to nobody.
 * - single: the member with the lowest priority; members without one rank after, in table
 *   (MAC) order, so the cluster always agrees on one owner and the next takes over on death.
 * - disabled: never elected (the dispatcher drops those frames); -1 if asked.
 */

import type { Election, ElectionInput } from './election.js';
import { DRAINING_WEIGHT, MAX_MEMBERS } from './election.js';
import { MAX_RULE_SLOTS, PRIORITY_NONE, priorityOf, RuleModeCode, SHARE_EQUAL, shareOf } from './port-rules.js';

export interface RuleElectionInput extends ElectionInput {
  /** Per member (table order) and rule: the parameter word, at i * MAX_RULE_SLOTS + rule. */
  readonly ruleParams: ArrayLike<number>;
}

export class RuleElections {
  readonly #modes: Uint8Array;
  readonly #base: Election;
  readonly #create: () => Election;
  /** Per rule: its own election, or undefined to use the base one. */
  readonly #own: (Election | undefined)[];
  readonly #spare: (Election | undefined)[];
  /** Per rule in mode single: the owner's id (-1: no member). */
  readonly #single = new Int32Array(MAX_RULE_SLOTS).fill(-1);
  readonly #ids = new Int32Array(MAX_MEMBERS);
  readonly #weights = new Float64Array(MAX_MEMBERS);
  readonly #macs = new Uint8Array(6 * MAX_MEMBERS);
  /** The view less its draining members, rebuilt in place. */
  readonly #filtered = { ids: new Int32Array(MAX_MEMBERS), weights: new Float64Array(MAX_MEMBERS), macs: new Uint8Array(6 * MAX_MEMBERS), ruleParams: new Uint32Array(MAX_MEMBERS * MAX_RULE_SLOTS) };

  /** `modes`: RuleModeCode per rule index (RuleSet.modes); `create` makes the base election's kind. */
  constructor(modes: Uint8Array, create: () => Election) {
    if (modes.length < 1 || modes.length > MAX_RULE_SLOTS) throw new RangeError(`1..${MAX_RULE_SLOTS} rules, got ${modes.length}`);
    this.#modes = modes;
    this.#create = create;
    this.#base = create();
    this.#own = new Array<Election | undefined>(modes.length).fill(undefined);
    this.#spare = new Array<Election | undefined>(modes.length).fill(undefined);
  }

  get memberCount(): number {
    return this.#base.memberCount;
  }

  rebuild(view: RuleElectionInput): void {
    const input = this.#withoutDraining(view);
    this.#base.rebuild(input);
    const count = Math.min(input.count, MAX_MEMBERS);
    for (let rule = 0; rule < this.#modes.length; rule++) {
      const mode = this.#modes[rule]!;
      this.#own[rule] = undefined;
      if (mode === RuleModeCode.single) this.#single[rule] = this.#singleOwner(input, count, rule);
      else if (mode === RuleModeCode.multiple) this.#own[rule] = this.#shareElection(input, count, rule);
    }
  }

  /**
   * The view without its draining members (DRAINING_WEIGHT), who take no new keys, unless
   * every member drains: then they all do, rather than nobody.
   */
  #withoutDraining(view: RuleElectionInput): RuleElectionInput {
    const count = Math.min(view.count, MAX_MEMBERS);
    let draining = 0;
    for (let i = 0; i < count; i++) if (view.weights[i] === DRAINING_WEIGHT) draining++;
    if (draining === 0 || draining === count) return view;
    const f = this.#filtered;
    let n = 0;
    for (let i = 0; i < count; i++) {
      if (view.weights[i] === DRAINING_WEIGHT) continue;
      f.ids[n] = view.ids[i] ?? 0;
      f.weights[n] = view.weights[i] ?? 1;
      if (view.macs) for (let b = 0; b < 6; b++) f.macs[n * 6 + b] = view.macs[i * 6 + b] ?? 0;
      for (let r = 0; r < MAX_RULE_SLOTS; r++) f.ruleParams[n * MAX_RULE_SLOTS + r] = view.ruleParams[i * MAX_RULE_SLOTS + r] ?? 0;
      n++;
    }
    return { count: n, ids: f.ids, weights: f.weights, macs: f.macs, ruleParams: f.ruleParams, ...(view.bucketOwners !== undefined ? { bucketOwners: view.bucketOwners } : {}) };
  }

  /**
   * The rule elects from the base election (mode multiple, no shares of its own): under
   * --election bucket, the members' agreed table, whose buckets move with handovers.
   */
  usesBase(rule: number): boolean {
    return this.#modes[rule] === RuleModeCode.multiple && this.#own[rule] === undefined;
  }

  /** The base election's owner of a hash (whatever the rules). */
  baseOwner(hash: number): number {
    return this.#base.electOwner(hash);
  }

  /** The owner of a new key under `rule` (its affinity hash); -1 when nobody may have it. */
  electOwner(rule: number, hash: number): number {
    const mode = this.#modes[rule];
    if (mode === RuleModeCode.multiple) return (this.#own[rule] ?? this.#base).electOwner(hash);
    if (mode === RuleModeCode.single) return this.#single[rule]!;
    return -1;
  }

  #singleOwner(input: RuleElectionInput, count: number, rule: number): number {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i < count; i++) {
      const priority = priorityOf(input.ruleParams[i * MAX_RULE_SLOTS + rule] ?? 0);
      const rank = priority === PRIORITY_NONE ? 1000 + i : priority * MAX_MEMBERS + i;
      if (rank < bestRank) {
        bestRank = rank;
        best = input.ids[i] ?? -1;
      }
    }
    return best;
  }

  #shareElection(input: RuleElectionInput, count: number, rule: number): Election | undefined {
    let given = false;
    let members = 0;
    for (let i = 0; i < count; i++) {
      const share = shareOf(input.ruleParams[i * MAX_RULE_SLOTS + rule] ?? SHARE_EQUAL);
      if (share !== SHARE_EQUAL) given = true;
      const effective = share === SHARE_EQUAL ? 100 : share;
      if (effective === 0) continue;
      this.#ids[members] = input.ids[i] ?? 0;
      this.#weights[members] = ((input.weights[i] ?? 1) * effective) / 100;
      if (input.macs) for (let b = 0; b < 6; b++) this.#macs[members * 6 + b] = input.macs[i * 6 + b] ?? 0;
      members++;
    }
    if (!given || members === 0) return undefined;
    // Elections are rebuilt in place; keep one per rule across views.
    const election = (this.#spare[rule] ??= this.#create());
    election.rebuild({ count: members, ids: this.#ids, weights: this.#weights, macs: this.#macs });
    return election;
  }
}
