import test from 'ava';
import { type ControlInfo, Membership, type MembershipAction, MembershipPhase } from '../../../src/cluster/membership.js';
import { MessageType } from '../../../src/net/cluster-message.js';

// One node (A) driven by hand against one peer (B): every phase, every way in and out of it.
// The peer's frames are fed in directly, so each step's phase, deadline and frames are exact.

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const HEARTBEAT_MS = 100;
const DEAD_AFTER_MS = 400;
const JOIN_INTERVAL_MS = 25;
/** The first round starts when the three JOINs are out. */
const FIRST_ROUND_MS = 3 * JOIN_INTERVAL_MS;

const starting: ControlInfo = { weight: 1, incarnation: 7, joined: false };
const serving: ControlInfo = { weight: 1, incarnation: 7, joined: true };

function node(): Membership {
  return new Membership({ selfMac: A, heartbeatMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, joinCount: 3, joinIntervalMs: JOIN_INTERVAL_MS, incarnation: 1 });
}

function frames(actions: readonly MembershipAction[], type: MessageType): MembershipAction[] {
  return actions.filter((a) => a.kind === 'send' && a.type === type);
}

/** What the driver and the peer see of one step, times relative to `base`: no ids, no incarnations. */
function seen(m: Membership, base: number): unknown {
  const actions = m.drainActions().map((a) => {
    switch (a.kind) {
      case 'send':
        return `send ${a.type} to ${a.to} weight ${a.weight ?? '-'} joined ${a.joined}`;
      case 'node-joined':
        return `joined ${a.node.mac}`;
      case 'node-died':
        return `died ${a.node.mac} ${a.reason}`;
      case 'round-completed':
        return `round ${a.durationMs} ms, view ${a.changedView}`;
      default:
        return a.kind;
    }
  });
  return {
    phase: m.phase,
    deadline: m.nextDeadline() - base,
    accepting: m.accepting,
    awaitingState: m.awaitingState,
    changePending: m.changePending,
    holdsAllNewFlows: m.holdsAllNewFlows,
    members: m.members.map((n) => `${n.mac} ${n.status} ${n.weight}`),
    stallMaxMs: m.stallMaxMs,
    actions,
  };
}

type Script = (m: Membership, at: number) => unknown[];

/** Two nodes starting together: JOINING, FIRST_ROUND (no state to wait for), IDLE, CONVERGING, IDLE. */
const startingTogether: Script = (m, at) => {
  const out: unknown[] = [];
  m.receive(MessageType.JOIN, B, at + 1, starting);
  out.push(seen(m, at));
  m.receive(MessageType.HEARTBEAT, B, at + 10, starting); // does not start the first round early
  out.push(seen(m, at));
  m.tick(at + JOIN_INTERVAL_MS);
  out.push(seen(m, at));
  m.tick(at + 2 * JOIN_INTERVAL_MS);
  out.push(seen(m, at));
  m.tick(at + FIRST_ROUND_MS - 1);
  out.push(seen(m, at));
  m.tick(at + FIRST_ROUND_MS);
  out.push(seen(m, at));
  m.receive(MessageType.HEARTBEAT, B, at + FIRST_ROUND_MS + 5, starting);
  out.push(seen(m, at));
  m.tick(at + FIRST_ROUND_MS + HEARTBEAT_MS);
  out.push(seen(m, at));
  m.receive(MessageType.HEARTBEAT, B, at + FIRST_ROUND_MS + HEARTBEAT_MS + 5, serving);
  out.push(seen(m, at));
  return out;
};

/** A newcomer beside a serving member: JOINING, AWAITING_STATE, FIRST_ROUND once the state is in, IDLE. */
const besideAMember: Script = (m, at) => {
  const out: unknown[] = [];
  m.receive(MessageType.WELCOME, B, at + 1, serving);
  out.push(seen(m, at));
  m.tick(at + JOIN_INTERVAL_MS);
  m.tick(at + 2 * JOIN_INTERVAL_MS);
  out.push(seen(m, at));
  m.tick(at + FIRST_ROUND_MS);
  out.push(seen(m, at));
  m.receive(MessageType.HEARTBEAT, B, at + FIRST_ROUND_MS + 5, serving);
  out.push(seen(m, at));
  m.tick(at + FIRST_ROUND_MS + 50);
  out.push(seen(m, at));
  m.stateReceived();
  out.push(seen(m, at));
  m.tick(at + FIRST_ROUND_MS + 60);
  out.push(seen(m, at));
  return out;
};

/** Brings a fresh node started at 0 into `phase`; returns the time it got there. */
function reach(m: Membership, phase: MembershipPhase): number {
  m.start(0);
  if (phase === MembershipPhase.JOINING) return 0;
  if (phase === MembershipPhase.AWAITING_STATE) {
    m.receive(MessageType.WELCOME, B, 1, serving);
    m.tick(FIRST_ROUND_MS);
    return FIRST_ROUND_MS;
  }
  m.receive(MessageType.JOIN, B, 1, starting);
  m.tick(FIRST_ROUND_MS);
  if (phase === MembershipPhase.FIRST_ROUND) return FIRST_ROUND_MS;
  m.receive(MessageType.HEARTBEAT, B, FIRST_ROUND_MS + 5, starting);
  if (phase === MembershipPhase.IDLE) return FIRST_ROUND_MS + 5;
  m.tick(FIRST_ROUND_MS + HEARTBEAT_MS);
  return FIRST_ROUND_MS + HEARTBEAT_MS;
}

const LIVE_PHASES = [MembershipPhase.JOINING, MembershipPhase.FIRST_ROUND, MembershipPhase.AWAITING_STATE, MembershipPhase.IDLE, MembershipPhase.CONVERGING];

test('a node starting beside another walks STOPPED → JOINING → FIRST_ROUND → IDLE → CONVERGING → IDLE, accepting from its first completed round', (t) => {
  const m = node();
  t.is(m.phase, MembershipPhase.STOPPED);
  t.false(m.accepting);
  m.start(0);
  t.is(m.phase, MembershipPhase.JOINING);
  t.is(frames(m.drainActions(), MessageType.JOIN).length, 1, 'the first JOIN goes out at once');
  const steps = startingTogether(m, 0) as Array<{ phase: MembershipPhase; accepting: boolean; deadline: number; actions: string[] }>;
  t.deepEqual(
    steps.map((s) => s.phase),
    ['JOINING', 'JOINING', 'JOINING', 'JOINING', 'JOINING', 'FIRST_ROUND', 'IDLE', 'CONVERGING', 'IDLE'],
  );
  t.deepEqual(
    steps.map((s) => s.accepting),
    [false, false, false, false, false, false, true, true, true],
  );
  t.is(steps[1]!.deadline, JOIN_INTERVAL_MS, 'the next JOIN');
  t.is(steps[4]!.deadline, FIRST_ROUND_MS, 'the first round is due when the JOINs are out');
  t.is(steps[5]!.deadline, FIRST_ROUND_MS + DEAD_AFTER_MS / 2, 'a running round next looks at half of dead-after');
  t.is(steps[6]!.deadline, FIRST_ROUND_MS + HEARTBEAT_MS, 'the next round a heartbeat after the first started');
  t.true(steps[6]!.actions.includes('round 5 ms, view true'));
  t.true(steps[7]!.actions.includes(`send ${MessageType.HEARTBEAT} to cluster weight 1 joined true`));
});

test('a newcomer beside a serving member waits in AWAITING_STATE, heartbeats in or not, until the state is loaded; state loaded before the round skips the wait', (t) => {
  const m = node();
  m.start(0);
  m.drainActions();
  const steps = besideAMember(m, 0) as Array<{ phase: MembershipPhase; awaitingState: boolean; accepting: boolean; actions: string[] }>;
  t.deepEqual(
    steps.map((s) => s.phase),
    ['JOINING', 'JOINING', 'AWAITING_STATE', 'AWAITING_STATE', 'AWAITING_STATE', 'FIRST_ROUND', 'IDLE'],
  );
  t.deepEqual(
    steps.map((s) => s.awaitingState),
    [false, false, true, true, true, false, false],
  );
  t.false(steps[5]!.accepting);
  t.true(steps[6]!.accepting);

  const early = node();
  early.start(0);
  early.receive(MessageType.WELCOME, B, 1, serving);
  early.stateReceived(); // loaded while the JOINs were still going out
  t.is(early.phase, MembershipPhase.JOINING);
  early.tick(FIRST_ROUND_MS);
  t.is(early.phase, MembershipPhase.FIRST_ROUND);
  t.false(early.awaitingState);
  early.receive(MessageType.HEARTBEAT, B, FIRST_ROUND_MS + 5, serving);
  t.is(early.phase, MembershipPhase.IDLE);
});

test('a round ends in IDLE by a death too: CONVERGING asks the silent member from half of dead-after, then declares it dead', (t) => {
  const m = node();
  const at = reach(m, MembershipPhase.CONVERGING);
  m.drainActions();
  m.tick(at + DEAD_AFTER_MS / 2);
  t.is(m.phase, MembershipPhase.CONVERGING);
  t.is(frames(m.drainActions(), MessageType.ASKRETRASM).length, 1);
  t.true(m.holdsAllNewFlows, 'a likely death holds every new flow');
  for (let now = at + DEAD_AFTER_MS / 2; m.phase === MembershipPhase.CONVERGING && now <= at + 2 * DEAD_AFTER_MS; now += 1) m.tick(now);
  t.is(m.phase, MembershipPhase.IDLE);
  t.deepEqual(
    m.members.map((n) => n.mac),
    [A],
  );
  t.false(m.holdsAllNewFlows);
});

for (const from of LIVE_PHASES) {
  test(`leave from ${from}: STOPPED, LEAVE sent, nobody known, nothing held; rejoin replays a fresh start exactly (both ways of joining)`, (t) => {
    for (const script of [startingTogether, besideAMember]) {
      const m = node();
      const leftAt = reach(m, from) + 3;
      const wasAccepting = m.accepting;
      m.drainActions();
      m.leave();
      t.is(m.phase, MembershipPhase.STOPPED);
      const left = m.drainActions();
      t.deepEqual(
        frames(left, MessageType.LEAVE).map((a) => a.kind === 'send' && a.joined),
        [wasAccepting],
        'the LEAVE says whether it had joined',
      );
      t.false(m.accepting);
      t.false(m.awaitingState);
      t.false(m.changePending);
      t.false(m.holdsAllNewFlows);
      t.deepEqual(
        m.nodes.map((n) => n.mac),
        [A],
      );
      // Stopped: frames and ticks change nothing, for as long as it stays out.
      m.receive(MessageType.HEARTBEAT, B, leftAt + 10, serving);
      // As a driver does, timer after timer: it is never asked to tick again at once.
      for (let i = 0, now = leftAt; i < 15; i++) {
        m.tick(now);
        const next = m.nextDeadline();
        t.true(next >= now + DEAD_AFTER_MS / 2, 'stopped: a tick every half dead-after, not every millisecond');
        now = Math.max(next, now + 1);
      }
      t.is(m.phase, MembershipPhase.STOPPED);
      t.deepEqual(m.drainActions(), []);

      const rejoinAt = leftAt + 5000;
      m.rejoin(rejoinAt);
      t.is(m.phase, MembershipPhase.JOINING);
      t.is(frames(m.drainActions(), MessageType.JOIN).length, 1);
      const fresh = node();
      fresh.start(rejoinAt);
      fresh.drainActions();
      t.deepEqual(script(m, rejoinAt), script(fresh, rejoinAt), `rejoined after leaving from ${from}`);
    }
  });

  test(`stop from ${from}: STOPPED, one LEAVE, frames and ticks ignored`, (t) => {
    const m = node();
    const at = reach(m, from);
    const wasAccepting = m.accepting;
    m.drainActions();
    m.stop();
    t.is(m.phase, MembershipPhase.STOPPED);
    t.deepEqual(
      frames(m.drainActions(), MessageType.LEAVE).map((a) => a.kind === 'send' && a.joined),
      [wasAccepting],
    );
    t.false(m.accepting);
    t.false(m.changePending);
    m.stop();
    m.receive(MessageType.HEARTBEAT, B, at + 10, serving);
    m.tick(at + 1000);
    t.is(m.phase, MembershipPhase.STOPPED);
    const after = m.drainActions();
    t.false(
      after.some((a) => a.kind === 'send' || a.kind === 'node-joined'),
      'one LEAVE, and nothing else sent or learned',
    );
  });

  test(`a stall longer than dead-after in ${from}: ${from === MembershipPhase.IDLE || from === MembershipPhase.CONVERGING ? 'resets to JOINING, then joins exactly as a fresh start' : 'no reset (it serves nothing yet)'}`, (t) => {
    const m = node();
    const at = reach(m, from);
    m.drainActions();
    const resumeAt = at + DEAD_AFTER_MS + 50;
    m.tick(resumeAt);
    const actions = m.drainActions();
    if (from !== MembershipPhase.IDLE && from !== MembershipPhase.CONVERGING) {
      t.not(m.phase, MembershipPhase.JOINING, 'still joining, never reset');
      t.is(m.resets, 0);
      t.false(actions.some((a) => a.kind === 'reset'));
      return;
    }
    t.is(m.phase, MembershipPhase.JOINING);
    t.is(m.resets, 1);
    t.deepEqual(
      actions.filter((a) => a.kind === 'reset' || a.kind === 'node-died').map((a) => a.kind),
      ['reset', 'node-died'],
    );
    t.false(m.accepting);
    m.tick(resumeAt); // the first JOIN of the new incarnation
    t.is(frames(m.drainActions(), MessageType.JOIN).length, 1);
    const fresh = node();
    fresh.start(resumeAt);
    fresh.drainActions();
    const strip = (steps: unknown[]) => steps.map((s) => ({ ...(s as object), stallMaxMs: 0 }));
    t.deepEqual(strip(startingTogether(m, resumeAt)), strip(startingTogether(fresh, resumeAt)));
  });
}
