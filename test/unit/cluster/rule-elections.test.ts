import test from 'ava';
import { DRAINING_WEIGHT, RendezvousElection } from '../../../src/cluster/election.js';
import { compileRules, MAX_RULE_SLOTS, RULE_PARAMS_UNKNOWN, SHARE_EQUAL } from '../../../src/cluster/port-rules.js';
import { RuleElections } from '../../../src/cluster/rule-elections.js';
import { mix32 } from '../../../src/cluster/hash.js';
import { VIEW_MAX_RULE_SLOTS } from '../../../src/shm/view.js';

const RULES = compileRules(['22/tcp=single', '80/tcp=multiple', '81/tcp=multiple', '9999/tcp=disabled']);
const SINGLE = 1;
const MULTIPLE = 2;
const SHARED = 3;
const DISABLED = 4;

/** Members 1..n (MACs 02:..:0i), weight 1; `params[id][rule]` overrides a member's parameter word. */
function view(ids: number[], params: Record<number, Record<number, number>> = {}) {
  const macs = new Uint8Array(6 * ids.length);
  const ruleParams = new Uint16Array(ids.length * MAX_RULE_SLOTS).fill(RULE_PARAMS_UNKNOWN);
  ids.forEach((id, i) => {
    macs.set([2, 0, 0, 0, 0, id], i * 6);
    for (const [rule, word] of Object.entries(params[id] ?? {})) ruleParams[i * MAX_RULE_SLOTS + Number(rule)] = word;
  });
  return { count: ids.length, ids, weights: ids.map(() => 1), macs, ruleParams };
}

const priority = (p: number): number => SHARE_EQUAL | (p << 8);
const share = (s: number): number => s;

function owners(e: RuleElections, rule: number, keys = 3000): Map<number, number> {
  const counts = new Map<number, number>();
  for (let k = 0; k < keys; k++) {
    const owner = e.electOwner(rule, mix32(k + 1));
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}

test('the view and the rule parameters share one layout', (t) => {
  t.is(MAX_RULE_SLOTS, VIEW_MAX_RULE_SLOTS);
});

test('single: the lowest priority owns every new client; the next takes over when it leaves; no priority ranks last, by MAC', (t) => {
  const e = new RuleElections(RULES.modes, () => new RendezvousElection());
  e.rebuild(view([1, 2, 3], { 2: { [SINGLE]: priority(1) }, 3: { [SINGLE]: priority(2) } }));
  t.deepEqual([...owners(e, SINGLE)], [[2, 3000]]);
  e.rebuild(view([1, 3], { 3: { [SINGLE]: priority(2) } }));
  t.deepEqual([...owners(e, SINGLE)], [[3, 3000]]);
  e.rebuild(view([1, 3]));
  t.deepEqual([...owners(e, SINGLE)], [[1, 3000]], 'nobody has a priority: table (MAC) order');
});

test('multiple: every member gets new clients; the base election decides while no member gives a share', (t) => {
  const e = new RuleElections(RULES.modes, () => new RendezvousElection());
  e.rebuild(view([1, 2, 3]));
  const counts = owners(e, MULTIPLE);
  t.deepEqual([...counts.keys()].sort(), [1, 2, 3]);
  for (const n of counts.values()) t.true(n > 800 && n < 1200, `${[...counts]}`);
  const base = new RendezvousElection();
  base.rebuild(view([1, 2, 3]));
  for (let k = 0; k < 100; k++) t.is(e.electOwner(MULTIPLE, mix32(k)), base.electOwner(mix32(k)));
  t.is(e.electOwner(DISABLED, 1), -1, 'a disabled rule elects nobody');
});

test('multiple with shares: a share of 0 takes no new clients, unequal shares split in proportion, other rules unaffected', (t) => {
  const e = new RuleElections(RULES.modes, () => new RendezvousElection());
  e.rebuild(view([1, 2, 3], { 1: { [SHARED]: share(0) }, 2: { [SHARED]: share(100) }, 3: { [SHARED]: share(50) } }));
  const counts = owners(e, SHARED, 6000);
  t.false(counts.has(1));
  const ratio = counts.get(2)! / counts.get(3)!;
  t.true(ratio > 1.7 && ratio < 2.3, `share 100 vs 50 gave ${ratio.toFixed(2)}`);
  t.is(owners(e, MULTIPLE).size, 3, 'rule 80 has no shares: all three');
  e.rebuild(view([1, 2], { 1: { [SHARED]: share(0) }, 2: { [SHARED]: share(0) } }));
  t.is(owners(e, SHARED).size, 2, 'every share 0: the base election rather than nobody');
});

test('multiple with shares: a share scales the node\'s weight (a capacity): weight 200 share 50 ≈ weight 100 share 100', (t) => {
  const e = new RuleElections(RULES.modes, () => new RendezvousElection());
  const v = { ...view([1, 2, 3], { 1: { [SHARED]: share(50) }, 2: { [SHARED]: share(100) }, 3: { [SHARED]: share(100) } }), weights: [200, 100, 300] };
  e.rebuild(v);
  const counts = owners(e, SHARED, 30_000);
  // Effective capacities 100, 100, 300: 1/5, 1/5, 3/5.
  t.true(Math.abs(counts.get(1)! / counts.get(2)! - 1) < 0.1, `${[...counts]}`);
  t.true(Math.abs(counts.get(3)! / counts.get(2)! - 3) < 0.3, `${[...counts]}`);
  const base = owners(e, MULTIPLE, 30_000);
  t.true(Math.abs(base.get(1)! / base.get(2)! - 2) < 0.2, `no share on rule 80: weights alone, ${[...base]}`);
});

test('a draining member (DRAINING_WEIGHT) is elected for no new key under any rule, unless every member drains', (t) => {
  const e = new RuleElections(RULES.modes, () => new RendezvousElection());
  const v = view([1, 2, 3], { 1: { [SINGLE]: priority(1) } });
  v.weights[0] = DRAINING_WEIGHT;
  e.rebuild(v);
  t.false(owners(e, 0).has(1), 'default rule');
  t.false(owners(e, MULTIPLE).has(1), 'multiple');
  t.is(e.electOwner(SINGLE, 7), 2, 'single: the next in rank takes over from the draining priority-1 member');
  t.deepEqual([...owners(e, 0).keys()].sort(), [2, 3]);
  const all = view([1, 2]);
  all.weights = [DRAINING_WEIGHT, DRAINING_WEIGHT];
  e.rebuild(all);
  t.deepEqual([...owners(e, 0).keys()].sort(), [1, 2], 'all draining: they all still serve');
});
