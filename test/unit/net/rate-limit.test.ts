import test from 'ava';
import { LogLimiter, TokenBucket } from '../../../src/net/rate-limit.js';

test('a token bucket gives its burst at once, then its rate, and counts refusals', (t) => {
  const b = new TokenBucket(200, 200);
  let taken = 0;
  for (let i = 0; i < 1000; i++) if (b.take(0)) taken++;
  t.is(taken, 200);
  t.is(b.refused, 800);
  taken = 0;
  for (let ms = 1; ms <= 1000; ms++) for (let i = 0; i < 10; i++) if (b.take(ms)) taken++;
  t.is(taken, 200, '200 a second after the burst');
  t.throws(() => new TokenBucket(0), { instanceOf: RangeError });
});

test('the log limiter writes one line per key per interval and says how many it held back', (t) => {
  const l = new LogLimiter(10_000, 2);
  t.deepEqual(l.permit('a', 0), { write: true, suppressed: 0 });
  t.deepEqual(l.permit('a', 5000), { write: false, suppressed: 1 });
  t.deepEqual(l.permit('a', 9999), { write: false, suppressed: 2 });
  t.deepEqual(l.permit('b', 9999), { write: true, suppressed: 0 }, 'keys are independent');
  t.deepEqual(l.permit('a', 10_000), { write: true, suppressed: 2 });
  t.deepEqual(l.permit('c', 10_001), { write: true, suppressed: 0 });
  t.is(l.size, 2, 'bounded: the least recently written key went');
  t.is(l.evicted, 1);
});
