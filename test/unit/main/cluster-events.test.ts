import test from 'ava';
import { membershipEvent } from '../../../src/main/cluster-events.js';

const MAC = '02:00:00:00:00:02';

test("the control plane's log lines become typed events, with the node's name and address when it announced them", (t) => {
  t.deepEqual(membershipEvent({ event: 'node-joined', node: MAC, name: 'node2', address: '10.0.0.2', id: 3 }), { name: 'joined', payload: { node: MAC, name: 'node2', address: '10.0.0.2', id: 3 } });
  t.deepEqual(membershipEvent({ event: 'node-left', node: MAC }), { name: 'left', payload: { node: MAC } }, 'no name or address announced: none in the event');
  t.deepEqual(membershipEvent({ event: 'node-died', node: MAC, reason: 'missed-heartbeats', missedHeartbeats: 3, silentMs: 1012 }), {
    name: 'died',
    payload: { node: MAC, reason: 'missed-heartbeats', missedHeartbeats: 3, silentMs: 1012 },
  });
  t.deepEqual(membershipEvent({ event: 'view', nodes: [MAC], names: ['node2'], weights: [100] }), { name: 'converged', payload: { nodes: [MAC], names: ['node2'], weights: [100] } });
  t.deepEqual(membershipEvent({ event: 'view' }), { name: 'converged', payload: { nodes: [], names: [], weights: [] } });
  t.deepEqual(membershipEvent({ event: 'node-weight', node: MAC, self: true, from: 100, to: 50 }), { name: 'weight', payload: { node: MAC, self: true, from: 100, to: 50 } });
});

test('other lines are no event; fields of the wrong type read as empty', (t) => {
  t.is(membershipEvent({ event: 'round-started' }), undefined);
  t.is(membershipEvent({}), undefined);
  t.deepEqual(membershipEvent({ event: 'node-joined', node: 7, name: 1, id: 'x' }), { name: 'joined', payload: { node: '', id: 0 } });
});
