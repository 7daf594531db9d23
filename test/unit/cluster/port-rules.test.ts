import test from 'ava';
import { AffinityCode, compileRules, describeRule, parsePortRule, priorityOf, RuleModeCode, SHARE_EQUAL, shareOf } from '../../../src/cluster/port-rules.js';
import { LnlbError } from '../../../src/errors.js';

test('a rule: ports, protocol, mode and parameters', (t) => {
  t.like(parsePortRule('8000-8099/udp=multiple,affinity=network,share=40'), { first: 8000, last: 8099, protocol: 'udp', mode: 'multiple', affinity: 'network', share: 40, priority: undefined });
  t.like(parsePortRule('22/tcp=single,priority=3'), { first: 22, last: 22, protocol: 'tcp', mode: 'single', priority: 3 });
  t.like(parsePortRule('*=disabled'), { first: 0, last: 65535, protocol: 'both', mode: 'disabled' });
  t.like(parsePortRule('443=multiple'), { protocol: 'both', affinity: 'single', share: undefined }, 'both protocols, single affinity by default (Windows NLB)');
});

const refused: [string, RegExp][] = [
  ['80', /expected <ports>\[\/<tcp\|udp\|both>\]=<mode>/],
  ['80/sctp=multiple', /protocol must be one of tcp, udp, both, got "sctp"/],
  ['90-80/tcp=multiple', /port range 90-80 is not inside 0\.\.65535 in increasing order/],
  ['70000=multiple', /not inside 0\.\.65535/],
  ['80/tcp=balanced', /the mode must be one of multiple, single, disabled, got "balanced"/],
  ['80/tcp=multiple,affinity=sticky', /affinity must be one of none, single, network/],
  ['80/tcp=multiple,share=101', /share must be a whole number from 0 to 100/],
  ['22/tcp=single,priority=0', /priority must be a whole number from 1 to 32/],
  ['22/tcp=single,affinity=none', /affinity and share apply to mode multiple only/],
  ['80/tcp=multiple,priority=1', /priority applies to mode single only/],
  ['80/tcp=multiple,weight=5', /unknown parameter "weight": expected affinity, share or priority/],
];
for (const [text, message] of refused) {
  test(`refused with the flag and the rule named: ${text}`, (t) => {
    const err = t.throws(() => compileRules([text]), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_CLI_BAD_FLAG');
    t.true(err.message.startsWith(`--rule: ${JSON.stringify(text)}: `), err.message);
    t.regex(err.message, message);
  });
}

test('overlapping rules are refused on the port and protocol where they meet; tcp and udp rules on one port do not overlap', (t) => {
  t.throws(() => compileRules(['80-90/tcp=multiple', '85/both=disabled']), { message: /it overlaps "80-90\/tcp=multiple" on tcp port 85/ });
  t.notThrows(() => compileRules(['53/tcp=single', '53/udp=multiple']));
  t.throws(() => compileRules(['default=single', 'default=multiple']), { message: /a second default rule/ });
  t.throws(() => compileRules(Array.from({ length: 33 }, (_, i) => `${1000 + i}/tcp=multiple`)), { message: /at most 32 port rules, got 33/ });
});

test('lookup tables: each port of each protocol maps to its rule; everything else to the default rule 0', (t) => {
  const set = compileRules(['53/udp=multiple,affinity=none', '22/tcp=single', '8000-8002=disabled', 'default=multiple,affinity=network']);
  // Rules are kept in port order after the default rule.
  t.deepEqual(set.rules.map((r, i) => describeRule(r, i)), ['default=multiple,affinity=network', '22/tcp=single', '53/udp=multiple,affinity=none', '8000-8002/both=disabled']);
  t.is(set.tcpRuleByPort[22], 1);
  t.is(set.udpRuleByPort[22], 0);
  t.is(set.udpRuleByPort[53], 2);
  t.is(set.tcpRuleByPort[53], 0);
  for (const port of [8000, 8001, 8002]) {
    t.is(set.tcpRuleByPort[port], 3);
    t.is(set.udpRuleByPort[port], 3);
  }
  t.is(set.tcpRuleByPort[8003], 0);
  t.deepEqual([...set.modes], [RuleModeCode.multiple, RuleModeCode.single, RuleModeCode.multiple, RuleModeCode.disabled]);
  t.deepEqual([...set.affinities], [AffinityCode.network, AffinityCode.single, AffinityCode.none, AffinityCode.single]);
});

test('the digest covers what every node must share, not the per-node share and priority, nor the order given', (t) => {
  const a = compileRules(['22/tcp=single,priority=1', '80/tcp=multiple,share=50']);
  const b = compileRules(['80/tcp=multiple', '22/tcp=single,priority=2']);
  t.is(a.digest, b.digest);
  t.not(compileRules(['80/tcp=multiple,affinity=none']).digest, compileRules(['80/tcp=multiple']).digest);
  t.not(compileRules(['80/tcp=multiple']).digest, compileRules([]).digest);
  t.not(compileRules(['80/tcp=multiple']).digest, compileRules(['80/both=multiple']).digest);
  // This node's own parameters travel beside the digest.
  t.is(shareOf(a.params[2]!), 50);
  t.is(priorityOf(a.params[1]!), 1);
  t.is(shareOf(b.params[2]!), SHARE_EQUAL);
});
