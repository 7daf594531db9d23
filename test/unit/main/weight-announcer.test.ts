import test from 'ava';
import { pino } from 'pino';
import { LOADAVG_SAMPLE_MS, WEIGHT_HYSTERESIS, WEIGHT_SAMPLE_MS, WeightAnnouncer, weightSampleMs, weightToAnnounce } from '../../../src/main/weight-announcer.js';

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

test('the load average is read every 5 s (the kernel recomputes it no more often); free memory and a fixed weight every second', (t) => {
  for (const mode of ['loadavg', 'loadavg5', 'loadavg15'] as const) t.is(weightSampleMs(mode), LOADAVG_SAMPLE_MS);
  t.is(LOADAVG_SAMPLE_MS, 5000);
  t.is(weightSampleMs('freemem'), WEIGHT_SAMPLE_MS);
  t.is(weightSampleMs('fixed'), WEIGHT_SAMPLE_MS);
});
