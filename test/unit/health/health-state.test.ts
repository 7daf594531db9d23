import test from 'ava';
import { HealthSchedule, HealthTracker, nextCheckState, type CheckOutcome, type HealthTransition } from '../../../src/health/health-state.js';

const OK: CheckOutcome = { ok: true, detail: '200 in 1 ms', ms: 1 };
const FAIL: CheckOutcome = { ok: false, detail: 'GET ECONNREFUSED', ms: 1 };

/** Feeds one check's results, one per `everyMs` from `start`; the transitions with their times. */
function run(tracker: HealthTracker, results: string, everyMs = 1000, start = 0): HealthTransition[] {
  const out: HealthTransition[] = [];
  [...results].forEach((r, i) => {
    const t = tracker.record(0, r === '+' ? OK : FAIL, start + i * everyMs);
    if (t !== undefined) out.push(t);
  });
  return out;
}

test('the first result decides; then unhealthy after fall failures in a row, healthy after rise successes in a row', (t) => {
  const tracker = new HealthTracker(['http://h:80/'], { fall: 3, rise: 2 }, 0);
  t.is(tracker.state, 'unknown');
  //           0 1 2 3 4 5 6 7 8 9
  const seen = run(tracker, '++--+---+-++');
  t.deepEqual(
    seen.map((x) => [x.from, x.to, x.at]),
    [
      ['unknown', 'healthy', 0],
      ['healthy', 'unhealthy', 7000], // the failures at 5, 6, 7 s: a broken run of two at 2-3 s did not count
      ['unhealthy', 'healthy', 11_000], // successes at 10 and 11 s; the one at 8 s was broken by a failure
    ],
  );
  t.deepEqual(seen[1]?.failing, [{ check: 'http://h:80/', detail: 'GET ECONNREFUSED' }]);
  t.deepEqual(seen[2]?.failing, []);
  t.is(tracker.transitions, 3);
  t.is(tracker.since, 11_000);
});

test('a node that starts with its service down is unhealthy at the first failure', (t) => {
  const tracker = new HealthTracker(['tcp://h:1'], { fall: 3, rise: 2 }, 0);
  t.deepEqual(run(tracker, '-').map((x) => x.to), ['unhealthy']);
});

test('fall 1 / rise 1: every change of result is a transition', (t) => {
  const tracker = new HealthTracker(['exec:x'], { fall: 1, rise: 1 }, 0);
  t.deepEqual(run(tracker, '+-+-').map((x) => x.to), ['healthy', 'unhealthy', 'healthy', 'unhealthy']);
});

test('several checks: unhealthy if one is, healthy only when all are, unknown until each has answered', (t) => {
  const tracker = new HealthTracker(['a', 'b'], { fall: 2, rise: 2 }, 0);
  t.is(tracker.record(0, OK, 0), undefined, 'b has not answered: still unknown');
  t.is(tracker.state, 'unknown');
  t.like(tracker.record(1, OK, 0), { from: 'unknown', to: 'healthy' });
  t.is(tracker.record(1, FAIL, 1000), undefined);
  const down = tracker.record(1, FAIL, 2000);
  t.like(down, { from: 'healthy', to: 'unhealthy', failing: [{ check: 'b', detail: 'GET ECONNREFUSED' }] });
  t.is(tracker.record(0, FAIL, 2000), undefined);
  t.is(tracker.record(0, FAIL, 3000), undefined, 'a fails too: the node was unhealthy already');
  tracker.record(1, OK, 4000);
  t.is(tracker.record(1, OK, 5000), undefined, 'b is healthy again, a is not');
  t.is(tracker.state, 'unhealthy');
  tracker.record(0, OK, 6000);
  t.like(tracker.record(0, OK, 7000), { from: 'unhealthy', to: 'healthy', at: 7000 });
});

test("a check's figures: runs, failures, transitions, the runs in a row and the last result with its age", (t) => {
  const tracker = new HealthTracker(['tcp://h:1'], { fall: 2, rise: 2 }, 0);
  run(tracker, '+--', 100);
  t.deepEqual(tracker.checks(450), [
    { check: 'tcp://h:1', state: 'unhealthy', successesInARow: 0, failuresInARow: 2, run: 3, failed: 2, transitions: 2, last: { ok: false, detail: 'GET ECONNREFUSED', ms: 1, agoMs: 250 } },
  ]);
  t.false('last' in (new HealthTracker(['x'], { fall: 1, rise: 1 }, 0).checks(0)[0] ?? {}));
});

test('nextCheckState is the table', (t) => {
  const fr = { fall: 3, rise: 2 };
  t.is(nextCheckState('unknown', 1, 0, fr), 'healthy');
  t.is(nextCheckState('unknown', 0, 1, fr), 'unhealthy');
  t.is(nextCheckState('healthy', 0, 2, fr), 'healthy');
  t.is(nextCheckState('healthy', 0, 3, fr), 'unhealthy');
  t.is(nextCheckState('unhealthy', 1, 0, fr), 'unhealthy');
  t.is(nextCheckState('unhealthy', 2, 0, fr), 'healthy');
  t.throws(() => new HealthTracker(['x'], { fall: 0, rise: 1 }, 0), { instanceOf: RangeError });
});

test('the schedule: one round per interval from the planned time, never two at once; a round late by more than an interval restarts the count', (t) => {
  const s = new HealthSchedule(1000, 0);
  t.true(s.begin(0));
  t.false(s.begin(1500), 'the first round is still running');
  s.end();
  t.is(s.nextAt, 1000);
  t.true(s.begin(1010)); // a late timer: the next stays on the grid
  s.end();
  t.is(s.nextAt, 2000);
  t.false(s.begin(1999));
  t.true(s.begin(4500)); // the process was stopped: no burst of catch-up rounds
  s.end();
  t.is(s.nextAt, 5500);
});
