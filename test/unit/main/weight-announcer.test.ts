import test from 'ava';
import { pino } from 'pino';
import { WEIGHT_HYSTERESIS, WeightAnnouncer, weightToAnnounce } from '../../../src/main/weight-announcer.js';

test('a measured weight is announced only past the hysteresis; the first, a fixed one or a forced read at once', (t) => {
  t.is(WEIGHT_HYSTERESIS, 0.05);
  t.is(weightToAnnounce(0, 37, 'loadavg', false), 37, 'nothing announced yet');
  t.is(weightToAnnounce(100, 96, 'loadavg', false), 100, '4% off: kept');
  t.is(weightToAnnounce(100, 95, 'loadavg', false), 95, '5% off: announced');
  t.is(weightToAnnounce(100, 105, 'freemem', false), 105);
  t.is(weightToAnnounce(100, 99, 'loadavg', true), 99, 'forced (start, rejoin, weight_mode)');
  t.is(weightToAnnounce(100, 101, 'fixed', false), 101, 'fixed: as set');
});

test('set_weight in fixed mode is the weight announced; weight_mode answers with the weight it gives', (t) => {
  const weights = new WeightAnnouncer('nlb0', 'fixed', pino({ level: 'silent' }));
  t.is(weights.current(true), 100, 'fixed before set_weight: an idle node');
  t.is(weights.setManual('250'), 250);
  t.is(weights.current(false), 250);
  t.deepEqual(weights.setMode('fixed'), { mode: 'fixed', weight: 250 });
  t.is(weights.source.mode, 'fixed');
});
