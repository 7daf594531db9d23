import test from 'ava';
import { BUCKET_COUNT, bucketOf } from '../../../src/cluster/buckets.js';
import type { ElectionName } from '../../../src/cluster/election.js';
import { deriveElectionKey, keyedElectionHash } from '../../../src/cluster/hash.js';
import { compileRules, SHARE_EQUAL } from '../../../src/cluster/port-rules.js';
import { parseHandlerSpec, resolveHandlerSpecs } from '../../../src/handlers/loader.js';
import { BPF_ACCEPT, dataFilter, runBpf, withVlanGuard } from '../../../src/net/bpf.js';
import { createPublishedView, VIEW_BUCKETS_CURRENT, VIEW_BUCKETS_PASS, VIEW_MAX_RULE_SLOTS, type PublishedView } from '../../../src/shm/view.js';
import { defaultRuleShared, FilterPlan, filterShape, FilterWhy, NARROW_GRACE_MS, type FilterConfig } from '../../../src/workers/dispatcher-filter.js';
import { CLUSTER_MAC, ipv4Frame, VIP } from '../../fixtures/frames.js';
import { prng } from '../shm/fixtures/prng.js';

const KEY = deriveElectionKey(new Uint8Array(32).fill(9));
const WORDS = BUCKET_COUNT >> 5;

function handlers(...flags: string[]): FilterConfig['handlers'] {
  return resolveHandlerSpecs(flags.map((f) => parseHandlerSpec(f, '--handler')));
}

function config(over: { election?: ElectionName; rules?: string[]; handlers?: FilterConfig['handlers'] } = {}): FilterConfig {
  return { election: over.election ?? 'bucket', rules: compileRules(over.rules ?? []), handlers: over.handlers ?? handlers(), clusterMac: CLUSTER_MAC, vip: VIP, electionKey: KEY };
}

/** A view of `members` members with equal default-rule shares, and the pass mask when given. */
function view(pass: Uint32Array | undefined, members = 3): PublishedView {
  const v = createPublishedView();
  v.nodeCount = members;
  for (let i = 0; i < members; i++) v.ruleParams[i * VIEW_MAX_RULE_SLOTS] = SHARE_EQUAL;
  v.bucketTables = VIEW_BUCKETS_CURRENT | (pass === undefined ? 0 : VIEW_BUCKETS_PASS);
  if (pass !== undefined) v.passBuckets.set(pass);
  return v;
}

/** Buckets b with b % 3 === r: about a third. */
function third(r: number): Uint32Array {
  const mask = new Uint32Array(WORDS);
  for (let b = 0; b < BUCKET_COUNT; b++) if (b % 3 === r) mask[b >> 5]! |= 1 << (b & 31);
  return mask;
}

const none = (): Uint32Array => new Uint32Array(WORDS);
const has = (mask: Uint32Array, b: number): boolean => ((mask[b >> 5]! >>> (b & 31)) & 1) === 1;

/** Sends 600 sources' frames through `program`: every verdict must be `mask`'s for the source's bucket (affinity single, keyed). */
function verdictsMatch(program: Uint32Array, mask: Uint32Array): { ok: boolean; passed: number } {
  const random = prng(11);
  let passed = 0;
  for (let i = 0; i < 600; i++) {
    const src = (0x0a000000 + Math.floor(random() * 0xffffff)) >>> 0;
    const frame = ipv4Frame({ ipSrc: src, protocol: 17, sport: 1000 + i, dport: 53 });
    const pass = runBpf(program, frame, frame.length) === BPF_ACCEPT;
    if (pass !== has(mask, bucketOf(keyedElectionHash(KEY[0]!, KEY[1]!, src, 0)))) return { ok: false, passed };
    if (pass) passed++;
  }
  return { ok: true, passed };
}

test('what each configuration allows: only --election bucket with the default rule alone is filtered by bucket', (t) => {
  t.deepEqual(filterShape(config()), { kind: 'buckets', affinity: 'single', opaqueProtocols: [] });
  t.deepEqual(filterShape(config({ rules: ['default=multiple,affinity=network'] })), { kind: 'buckets', affinity: 'network', opaqueProtocols: [] });
  t.deepEqual(filterShape(config({ election: 'lnlb' })), { kind: 'plain', why: FilterWhy.election });
  t.deepEqual(filterShape(config({ election: 'rendezvous' })), { kind: 'plain', why: FilterWhy.election });
  t.deepEqual(filterShape(config({ rules: ['80/tcp=multiple'] })), { kind: 'plain', why: FilterWhy.portRules });
  t.deepEqual(filterShape(config({ rules: ['default=single'] })), { kind: 'plain', why: FilterWhy.portRules });
});

test('affinity none: the built-in handlers\' keys are in the filter, others pass to userspace, mixed tcp/udp keys keep the plain filter', (t) => {
  const rules = ['default=multiple,affinity=none'];
  // The default handler alone keys every protocol by source: affinity single's input.
  t.deepEqual(filterShape(config({ rules })), { kind: 'buckets', affinity: 'single', opaqueProtocols: [] });
  t.deepEqual(filterShape(config({ rules, handlers: handlers('tcp=tcp', 'udp=udp') })), { kind: 'buckets', affinity: 'none', opaqueProtocols: [] });
  t.deepEqual(filterShape(config({ rules, handlers: handlers('tcp=tcp', 'udp=udp', 'gre=/x/gre.js') })), { kind: 'buckets', affinity: 'none', opaqueProtocols: [47] });
  t.deepEqual(filterShape(config({ rules, handlers: handlers('tcp=tcp') })), { kind: 'plain', why: FilterWhy.handlers });
  t.deepEqual(filterShape(config({ rules, handlers: handlers('gre=/x/gre.js') })), { kind: 'plain', why: FilterWhy.handlers });
  t.deepEqual(filterShape(config({ rules, handlers: handlers('default=/x/mine.js', 'tcp=tcp', 'udp=udp') })), { kind: 'plain', why: FilterWhy.handlers });
  // Under affinity single the handlers' keys do not enter the election.
  t.deepEqual(filterShape(config({ handlers: handlers('default=/x/mine.js') })), { kind: 'buckets', affinity: 'single', opaqueProtocols: [] });
});

test('no pass mask in the view: the plain filter stays; a mask narrows only after the grace, to a program that passes exactly its buckets', (t) => {
  const plan = new FilterPlan(config());
  t.is(plan.update(view(undefined), none(), 0), undefined);
  t.is(plan.why, FilterWhy.unsettled);
  t.is(plan.buckets, BUCKET_COUNT);
  const mine = third(1);
  t.is(plan.update(view(mine), none(), 10), undefined, 'narrowing waits');
  t.is(plan.narrowAt, 10 + NARROW_GRACE_MS);
  t.is(plan.tick(10 + NARROW_GRACE_MS - 1), undefined);
  const swap = plan.tick(10 + NARROW_GRACE_MS);
  if (swap === undefined) return t.fail('no swap after the grace');
  t.is(swap.why, FilterWhy.buckets);
  t.is(swap.buckets, 341);
  const { ok, passed } = verdictsMatch(swap.program, mine);
  t.true(ok, 'every verdict is the bucket mask\'s');
  t.true(passed > 150 && passed < 250, `${passed} of 600 passed`);
  // The same inputs again: nothing to attach.
  t.is(plan.update(view(mine), none(), 500), undefined);
  t.is(plan.tick(10_000), undefined);
});

test('widening is at once: a dead member\'s buckets, the actors\' draining ones, a view change pending, a share on the default rule', (t) => {
  const plan = new FilterPlan(config());
  plan.update(view(third(0)), none(), 0);
  t.truthy(plan.tick(NARROW_GRACE_MS));
  // A death: this node owns two thirds now.
  const two = third(0).map((w, k) => w | third(1)[k]!);
  const wider = plan.update(view(two, 2), none(), 1000);
  if (wider === undefined) return t.fail('a wider set waited');
  t.is(wider.buckets, 683);
  t.true(verdictsMatch(wider.program, two).ok);
  // Draining buckets join the pass set.
  const drain = none();
  drain[0] = 0xffffffff;
  const drained = plan.update(view(two, 2), drain, 1001);
  if (drained === undefined) return t.fail('draining buckets waited');
  t.true(verdictsMatch(drained.program, two.map((w, k) => w | drain[k]!)).ok);
  // A change pending (no mask): every bucket, the plain program.
  const all = plan.update(view(undefined, 2), none(), 1002);
  t.deepEqual(all?.program, withVlanGuard(dataFilter(CLUSTER_MAC), 0));
  t.is(plan.why, FilterWhy.unsettled);
  // A share on the default rule: the actors elect over shares, not by the table.
  const shared = view(third(2));
  shared.ruleParams[VIEW_MAX_RULE_SLOTS] = 50;
  t.true(defaultRuleShared(shared));
  t.is(plan.update(shared, none(), 2000), undefined);
  t.is(plan.tick(3000), undefined);
  t.is(plan.why, FilterWhy.shares);
});

test('a narrowing is restarted by every change that narrows, and what is wider meanwhile is attached at once', (t) => {
  const plan = new FilterPlan(config());
  const a = third(0);
  plan.update(view(a), none(), 0);
  plan.tick(NARROW_GRACE_MS);
  // b adds buckets and drops a's: the added ones now (a ∪ b), a's alone after the grace.
  const b = third(1);
  const now = plan.update(view(b), none(), 1000);
  if (now === undefined) return t.fail('the added buckets waited');
  t.true(verdictsMatch(now.program, a.map((w, k) => w | b[k]!)).ok);
  t.is(plan.narrowAt, 1000 + NARROW_GRACE_MS);
  t.is(plan.tick(1000 + NARROW_GRACE_MS - 1), undefined);
  const later = plan.tick(1000 + NARROW_GRACE_MS);
  t.true(later !== undefined && verdictsMatch(later.program, b).ok);
});

test('every bucket passes (a cluster of one): the plain program, said so', (t) => {
  const plan = new FilterPlan(config());
  plan.update(view(third(0)), none(), 0);
  plan.tick(NARROW_GRACE_MS);
  const swap = plan.update(view(new Uint32Array(WORDS).fill(0xffffffff), 1), none(), 1000);
  t.deepEqual(swap?.program, withVlanGuard(dataFilter(CLUSTER_MAC), 0));
  t.is(swap?.why, FilterWhy.everyBucket);
  t.is(plan.buckets, BUCKET_COUNT);
});

test('a refused program: the plain one instead, the same set not tried again, another set tried', (t) => {
  const plan = new FilterPlan(config());
  plan.update(view(third(0)), none(), 0);
  t.truthy(plan.tick(NARROW_GRACE_MS));
  const fallback = plan.refused();
  t.deepEqual(fallback.program, withVlanGuard(dataFilter(CLUSTER_MAC), 0));
  t.is(plan.why, FilterWhy.failed);
  t.is(plan.update(view(third(0)), none(), 1000), undefined);
  t.is(plan.tick(5000), undefined, 'the refused set is not tried again');
  plan.update(view(third(1)), none(), 6000);
  t.truthy(plan.tick(6000 + NARROW_GRACE_MS), 'another set is tried');
});

test('a configuration that cannot be filtered never swaps, whatever the view says', (t) => {
  for (const c of [config({ election: 'lnlb' }), config({ rules: ['80/tcp=multiple'] })]) {
    const plan = new FilterPlan(c);
    t.is(plan.update(view(third(0)), none(), 0), undefined);
    t.is(plan.tick(10_000), undefined);
    t.is(plan.buckets, BUCKET_COUNT);
    t.not(plan.why, FilterWhy.buckets);
  }
});
