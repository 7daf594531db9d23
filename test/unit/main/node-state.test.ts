import test from 'ava';
import { readFileSync } from 'node:fs';
import { DRAINING_WEIGHT } from '../../../src/cluster/election.js';
import { NodeStatus } from '../../../src/cluster/membership.js';
import { MEMBER_STATES, memberState, STATUS_NAMES, weightText } from '../../../src/main/node-state.js';

test('another member\'s state in words, from its code, its weight and whether it says it serves', (t) => {
  t.is(memberState(NodeStatus.OK, 100, true), 'serving');
  t.is(memberState(NodeStatus.OK, DRAINING_WEIGHT, true), 'draining', 'the draining weight from a node that serves: drainstop');
  t.is(memberState(NodeStatus.OK, DRAINING_WEIGHT, false), 'not serving', 'the draining weight from a node that does not serve yet: listening or held');
  t.is(memberState(NodeStatus.ASKED_RETRASM, 100, true), 'asked to retransmit', 'a late heartbeat wins over the weight');
  t.is(memberState(NodeStatus.ASKED_RETRASM, DRAINING_WEIGHT, true), 'asked to retransmit');
  t.is(memberState(NodeStatus.JOINING, 100, false), 'joining');
  t.is(memberState(NodeStatus.JOINING, DRAINING_WEIGHT, false), 'joining', 'not yet in the view, whatever it announces');
});

test('every membership code has a readable name with no underscore; the member states are the documented ones', (t) => {
  for (const code of Object.values(NodeStatus)) {
    t.truthy(STATUS_NAMES[code], code);
    t.notRegex(STATUS_NAMES[code]!, /_|[A-Z]/, code);
  }
  t.deepEqual([...MEMBER_STATES], ['serving', 'draining', 'not serving', 'asked to retransmit', 'joining']);
});

test('the weight column: a capacity, or - for the draining marker', (t) => {
  t.is(weightText(100), '100');
  t.is(weightText(DRAINING_WEIGHT), '-');
});

test('docs/operating.md documents every member state and every code', (t) => {
  const doc = readFileSync(new URL('../../../../docs/operating.md', import.meta.url), 'utf8');
  for (const state of MEMBER_STATES) t.regex(doc, new RegExp(`^\\| \`${state}\` \\|`, 'm'), state);
  for (const code of [NodeStatus.OK, NodeStatus.ASKED_RETRASM, NodeStatus.JOINING, NodeStatus.WAITING_HEARTBEAT, NodeStatus.DEAD]) t.true(doc.includes(`\`${code}\``), code);
  for (const state of ['converging', 'converged', 'held', 'draining', 'stopped', 'suspended', 'stopping', 'failed']) t.regex(doc, new RegExp(`^\\| \`${state}\` \\|`, 'm'), state);
});
