import test from 'ava';
import { pino } from 'pino';
import { DRAINING_WEIGHT } from '../../../src/cluster/election.js';
import type { LnlbError } from '../../../src/errors.js';
import type { InterfaceState } from '../../../src/main/admin-protocol.js';
import { interfaceState, modeChangeState, Participation, shownState, type ParticipationFlags } from '../../../src/main/participation.js';
import type { MainToControl } from '../../../src/workers/messages.js';

const RUNNING: ParticipationFlags = { stopped: false, failed: undefined, mode: 'running', suspended: false, healthOut: false };

test('the state word: stopping, then failed, stopped/suspended, unhealthy, draining, converged/converging, in that precedence', (t) => {
  t.is(interfaceState(RUNNING, true), 'converged');
  t.is(interfaceState(RUNNING, false), 'converging');
  t.is(interfaceState({ ...RUNNING, mode: 'draining' }, true), 'draining');
  t.is(interfaceState({ ...RUNNING, mode: 'draining', healthOut: true }, true), 'unhealthy', 'out for its health wins over a drain');
  t.is(interfaceState({ ...RUNNING, mode: 'stopped', healthOut: true }, true), 'stopped', 'the operator stop wins over the health checks');
  t.is(interfaceState({ ...RUNNING, mode: 'stopped', suspended: true }, true), 'suspended');
  t.is(interfaceState({ ...RUNNING, mode: 'stopped', failed: 'handler x stuck in actor 0' }, true), 'failed');
  t.is(interfaceState({ ...RUNNING, mode: 'stopped', failed: 'x', stopped: true }, true), 'stopping');
});

test('status shows held while the control plane holds a running node, and converged only when no change is pending', (t) => {
  const plane = { accepting: true, changePending: false, heldBy: undefined };
  t.is(shownState(RUNNING, plane), 'converged');
  t.is(shownState(RUNNING, { ...plane, changePending: true }), 'converging');
  t.is(shownState(RUNNING, undefined), 'converging', 'no answer from the control plane: not known to be converged');
  t.is(shownState(RUNNING, { ...plane, heldBy: 'unauthenticated-peers' }), 'held');
  t.is(shownState({ ...RUNNING, mode: 'draining' }, { ...plane, heldBy: 'unauthenticated-peers' }), 'draining', 'held only says why a running node does not serve');
  t.is(shownState({ ...RUNNING, stopped: true }, { ...plane, heldBy: 'unauthenticated-peers' }), 'stopping');
});

test('a mode change announces suspended, unhealthy, converging, or the mode', (t) => {
  t.is(modeChangeState(RUNNING), 'converging');
  t.is(modeChangeState({ ...RUNNING, mode: 'stopped' }), 'stopped');
  t.is(modeChangeState({ ...RUNNING, mode: 'stopped', suspended: true }), 'suspended');
  t.is(modeChangeState({ ...RUNNING, mode: 'stopped', healthOut: true }), 'stopped');
  t.is(modeChangeState({ ...RUNNING, mode: 'draining', healthOut: true }), 'unhealthy');
  t.is(modeChangeState({ ...RUNNING, mode: 'draining' }), 'draining');
});

/** Participation over ports that record what it posts and emits; `active` is the drain's count of live flows. */
function rig(active: () => number = () => 0) {
  const posted: MainToControl[] = [];
  const states: InterfaceState[] = [];
  const p = new Participation(
    'nlb0',
    { post: (m) => void posted.push(m), weight: () => 150, emitState: (s) => void states.push(s), activeOwnedFlows: async () => active() },
    pino({ level: 'silent' }),
  );
  return { p, posted, states, types: () => posted.map((m) => m.type) };
}

test('stop sends LEAVE once; start announces the weight and rejoins; a stopped node does not announce its measured weight', (t) => {
  const { p, posted, states, types } = rig();
  t.true(p.announcesWeight);
  t.deepEqual(p.stop(), { state: 'stopped' });
  t.deepEqual(p.stop(), { state: 'stopped' });
  t.deepEqual(types(), ['leave'], 'one LEAVE for two stops');
  t.false(p.announcesWeight);
  t.true(p.operatorOut);
  t.deepEqual(p.start(), { state: 'converging' });
  t.deepEqual(posted.slice(1), [{ type: 'weight', weight: 150 }, { type: 'rejoin' }]);
  t.deepEqual(states, ['stopped', 'converging']);
  t.false(p.operatorOut);
});

test('suspend stops and refuses start until resume; resume leaves the node stopped', (t) => {
  const { p, types } = rig();
  t.deepEqual(p.suspend(), { state: 'suspended' });
  t.is(p.state(true), 'suspended');
  t.is((t.throws(() => p.start()) as LnlbError).code, 'LNLB_ERR_CTL_SUSPENDED');
  t.deepEqual(p.resume(), { state: 'stopped' });
  t.is(p.state(true), 'stopped');
  t.deepEqual(p.start(), { state: 'converging' });
  t.deepEqual(types(), ['leave', 'weight', 'rejoin']);
});

test('out for its health: LEAVE, then weight and rejoin when healthy; a stopped node is left stopped by either', (t) => {
  const { p, posted, types } = rig();
  p.setHealthOut(true);
  t.is(p.state(true), 'unhealthy');
  t.false(p.announcesWeight);
  t.false(p.operatorOut, 'the health checks keep checking: not the operator that keeps it out');
  p.setHealthOut(false);
  t.deepEqual(types(), ['leave', 'weight', 'rejoin']);
  posted.length = 0;
  p.stop();
  p.setHealthOut(true);
  p.setHealthOut(false);
  t.deepEqual(types(), ['leave'], 'health changes of a stopped node send nothing');
  t.is(p.state(true), 'stopped');
});

test('a start while unhealthy announces the weight but waits for the checks to rejoin', (t) => {
  const { p, posted, types } = rig();
  p.setHealthOut(true);
  p.stop();
  t.deepEqual(types(), ['leave'], 'out already: stop sends no second LEAVE');
  posted.length = 0;
  t.deepEqual(p.start(), { state: 'unhealthy' });
  t.deepEqual(types(), ['weight']);
  p.setHealthOut(false);
  t.deepEqual(types(), ['weight', 'weight', 'rejoin']);
});

test('a stuck datapath thread: LEAVE, state failed, start refused with LNLB_ERR_HANDLER_STUCK, nothing undoes it', (t) => {
  const { p, states, types } = rig();
  p.fail({ thread: 'actor 1', handler: { name: 'tcp', protocol: 6, method: 'onFrame' }, stalledMs: 1200 });
  t.is(p.failed, 'handler tcp stuck in actor 1');
  t.is(p.state(true), 'failed');
  t.deepEqual(states, ['failed']);
  const err = t.throws(() => p.start()) as LnlbError;
  t.is(err.code, 'LNLB_ERR_HANDLER_STUCK');
  t.regex(err.message, /nlb0 failed: handler tcp stuck in actor 1/);
  t.deepEqual(p.stop(), { state: 'failed' });
  t.deepEqual(p.resume(), { state: 'failed' });
  p.fail({ thread: 'dispatcher', handler: undefined, stalledMs: 1 });
  t.is(p.failed, 'handler tcp stuck in actor 1', 'the first failure is kept');
  t.deepEqual(types(), ['leave']);
});

test('drainstop: the draining weight at once, a stop when no flow of this node is active', async (t) => {
  const { p, posted, states } = rig(() => 0);
  const result = await p.drainstop({ idleSeconds: 1 });
  t.like(result, { state: 'stopped', drained: true, remainingFlows: 0 });
  t.deepEqual(posted, [{ type: 'weight', weight: DRAINING_WEIGHT }, { type: 'leave' }]);
  t.deepEqual(states, ['draining', 'stopped']);
  t.deepEqual(await p.drainstop(), { state: 'stopped', drained: true, remainingFlows: 0, ms: 0 }, 'stopped already');
});

test('drainstop: ended by a start (cancelled, flows left) and by the interface stopping', async (t) => {
  const { p, types } = rig(() => 3);
  const draining = p.drainstop({ idleSeconds: 1 });
  t.is(p.state(true), 'draining');
  p.start();
  t.like(await draining, { state: 'converged', drained: false, remainingFlows: 3, cancelled: true });
  t.deepEqual(types(), ['weight', 'weight'], 'the draining weight, then the measured one again; no LEAVE');
  const again = p.drainstop();
  p.beginStop();
  t.like(await again, { drained: false, cancelled: true });
  t.is(p.state(true), 'stopping');
});

test('drainstop with a timeout stops with the flows that are left', async (t) => {
  const { p, types } = rig(() => 2);
  const result = await p.drainstop({ timeoutSeconds: 0 });
  t.like(result, { state: 'stopped', drained: false, remainingFlows: 2 });
  t.deepEqual(types(), ['weight', 'leave']);
});
