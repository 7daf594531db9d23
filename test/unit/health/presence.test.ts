import test from 'ava';
import { HealthPresence, type PresenceView } from '../../../src/health/presence.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const view = (self: string, members: string[], settled = true): PresenceView => ({ self, members, settled });
const presence = (): HealthPresence => new HealthPresence({ staggerMs: 50, confirmMs: 3000 });

test('unhealthy with other members: leave (at once, the highest MAC of the view after the stagger); healthy again: rejoin', (t) => {
  const a = presence();
  t.is(a.update('healthy', view(A, [A, B, C]), false, 0), undefined);
  t.deepEqual(a.update('unhealthy', view(A, [A, B, C]), false, 1000), { kind: 'leave', why: 'unhealthy', others: 2 });
  t.is(a.serving, 'out');
  t.is(a.update('unhealthy', undefined, false, 2000), undefined, 'out: it keeps checking, nothing to do');
  t.deepEqual(a.update('healthy', undefined, false, 3000), { kind: 'rejoin' });
  t.is(a.serving, 'in');
  t.is(a.update('healthy', view(A, [A, B, C]), false, 4000), undefined);

  const b = presence();
  t.deepEqual(b.update('unhealthy', view(B, [A, B, C]), false, 1000), { kind: 'leave', why: 'unhealthy', others: 2 }, 'not the highest: at once');
  const c = presence();
  t.deepEqual(c.update('unhealthy', view(C, [A, B, C]), false, 1000), { kind: 'wait', at: 1050 }, 'the highest MAC waits');
  t.deepEqual(c.update('unhealthy', view(C, [A, B, C]), false, 1050), { kind: 'leave', why: 'unhealthy', others: 2 }, 'the others are still there: it leaves too');
});

test('every node unhealthy at the same moment: the highest MAC looks again, finds itself alone and stays (last resort)', (t) => {
  const [a, b, c] = [presence(), presence(), presence()];
  // All three turn unhealthy at 1000 ms, each seeing the others.
  t.deepEqual(a.update('unhealthy', view(A, [A, B, C]), false, 1000), { kind: 'leave', why: 'unhealthy', others: 2 });
  t.deepEqual(b.update('unhealthy', view(B, [A, B, C]), false, 1000), { kind: 'leave', why: 'unhealthy', others: 2 });
  t.deepEqual(c.update('unhealthy', view(C, [A, B, C]), false, 1000), { kind: 'wait', at: 1050 });
  // A's and B's LEAVEs reached C: C's view is C alone.
  t.deepEqual(c.update('unhealthy', view(C, [C]), false, 1050), { kind: 'last-resort' });
  t.is(c.serving, 'last-resort');
  t.is(c.update('unhealthy', view(C, [C]), false, 2050), undefined, 'said once');
});

test('one after the other: whoever turns unhealthy last finds itself alone, whatever its MAC', (t) => {
  const [a, b, c] = [presence(), presence(), presence()];
  t.deepEqual(c.update('unhealthy', view(C, [A, B, C]), false, 0), { kind: 'wait', at: 50 });
  t.deepEqual(c.update('unhealthy', view(C, [A, B, C]), false, 50), { kind: 'leave', why: 'unhealthy', others: 2 });
  t.deepEqual(b.update('unhealthy', view(B, [A, B]), false, 1000), { kind: 'wait', at: 1050 }, 'B is now the highest of its view');
  t.deepEqual(b.update('unhealthy', view(B, [A, B]), false, 1050), { kind: 'leave', why: 'unhealthy', others: 1 });
  t.deepEqual(a.update('unhealthy', view(A, [A]), false, 2000), { kind: 'last-resort' });
});

test('a last resort leaves once another member has stayed in its view for confirmMs; not for one that comes and goes', (t) => {
  const b = presence();
  t.deepEqual(b.update('unhealthy', view(B, [B]), false, 0), { kind: 'last-resort' });
  t.deepEqual(b.update('unhealthy', view(B, [A, B]), false, 1000), { kind: 'wait', at: 4000 });
  t.is(b.update('unhealthy', view(B, [B]), false, 2000), undefined, 'A left again (it was unhealthy too)');
  t.is(b.serving, 'last-resort');
  t.deepEqual(b.update('unhealthy', view(B, [A, B]), false, 5000), { kind: 'wait', at: 8000 }, 'the count starts again');
  t.deepEqual(b.update('unhealthy', view(B, [A, B]), false, 8000), { kind: 'leave', why: 'member-appeared', others: 1 });
  t.deepEqual(b.update('healthy', undefined, false, 9000), { kind: 'rejoin' });
});

test('alone in a view not settled yet (just started, the others not heard): wait rather than claim to be the last', (t) => {
  const a = presence();
  t.is(a.update('unhealthy', view(A, [A], false), false, 0), undefined);
  t.is(a.serving, 'in');
  t.deepEqual(a.update('unhealthy', view(A, [A, B], false), false, 200), { kind: 'leave', why: 'unhealthy', others: 1 });
});

test('the operator has taken the node out: an unhealthy node is marked out (a start will not bring it back), a healthy one rejoins only as far as health goes', (t) => {
  const a = presence();
  t.deepEqual(a.update('unhealthy', undefined, true, 0), { kind: 'leave', why: 'unhealthy', others: 0 });
  t.is(a.serving, 'out');
  t.is(a.update('unhealthy', view(A, [A]), false, 1000), undefined, 'started again while unhealthy: stays out, not last resort');
  t.deepEqual(a.update('healthy', undefined, true, 2000), { kind: 'rejoin' }, 'the interface decides whether the operator lets it');
  t.is(new HealthPresence({ staggerMs: 50, confirmMs: 1 }).update('healthy', undefined, true, 0), undefined);
});

test('the control plane does not answer: no decision until it does', (t) => {
  const a = presence();
  t.is(a.update('unhealthy', undefined, false, 0), undefined);
  t.is(a.serving, 'in');
  t.deepEqual(a.update('unhealthy', view(A, [A, B]), false, 100), { kind: 'leave', why: 'unhealthy', others: 1 });
});
