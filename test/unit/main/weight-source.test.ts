import { resolveDaemonOptions } from '../../../src/main/options.js';
import test from 'ava';
import { Readable } from 'node:stream';
import { LnlbError } from '../../../src/errors.js';
import {
  computeWeight,
  DEFAULT_MANUAL_WEIGHT,
  IDLE_WEIGHT,
  parseManualWeight,
  parseWeightMode,
  readManualWeight,
  readWeight,
  WEIGHT_MAX,
  WEIGHT_MIN,
  WEIGHT_MODES,
  WeightSource,
  type WeightInputs,
} from '../../../src/main/weight-source.js';

const LOADAVG = '0.50 1.00 3.00 2/467 12345\n';
/** A 16 GiB box with 4 GiB available: 75% in use. */
const MEMINFO = ['MemTotal:       16000000 kB', 'MemFree:         1000000 kB', 'MemAvailable:    4000000 kB', 'Buffers:          500000 kB', 'Cached:          2000000 kB', ''].join('\n');
/** A kernel before 3.14: no MemAvailable line. */
const MEMINFO_OLD = ['MemTotal:       16000000 kB', 'MemFree:         1000000 kB', 'Buffers:          500000 kB', 'Cached:          2500000 kB', ''].join('\n');

function inputs(over: Partial<WeightInputs> = {}): WeightInputs {
  return { loadavgText: LOADAVG, meminfoText: MEMINFO, cores: 1, ...over };
}

test('loadavg modes turn the 1-, 5- and 15-minute averages into capacity: 100 / (1 + load / cores)', (t) => {
  t.is(computeWeight('loadavg', inputs()), 67);
  t.is(computeWeight('loadavg5', inputs()), 50);
  t.is(computeWeight('loadavg15', inputs()), 25);
  t.is(computeWeight('loadavg15', inputs({ cores: 4 })), 57, 'load is per core');
  t.is(computeWeight('loadavg', inputs({ loadavgText: '0.00 0.00 0.00 1/100 1' })), IDLE_WEIGHT, 'an idle node weighs 100');
  t.is(computeWeight('loadavg', inputs({ loadavgText: '1.00 0.00 0.00 1/100 1' })), 50, 'one task per core: half an idle node');
  t.is(computeWeight('loadavg', inputs({ loadavgText: '9.00 0.00 0.00 1/100 1' })), 10, 'nine per core: a tenth');
});

test('capacity falls as load rises, never below the floor', (t) => {
  let before = Number.POSITIVE_INFINITY;
  for (let load = 0; load <= 400; load += 0.25) {
    const w = computeWeight('loadavg', inputs({ loadavgText: `${load.toFixed(2)} 0 0 1/1 1`, cores: 2 }));
    t.true(w <= before && w >= WEIGHT_MIN, `load ${load}: ${w} after ${before}`);
    before = w;
  }
  t.is(before, WEIGHT_MIN);
});

test('the shares are those of the load rule before capacities: 1 / (1 + load / cores)', (t) => {
  const loads = [0, 0.5, 1, 3];
  const capacities = loads.map((l) => computeWeight('loadavg', inputs({ loadavgText: `${l} 0 0 1/1 1` })));
  const oldLoads = loads.map((l) => 100 * (1 + l));
  for (let i = 1; i < loads.length; i++) {
    const now = capacities[i]! / capacities[0]!;
    const then = oldLoads[0]! / oldLoads[i]!;
    t.true(Math.abs(now - then) < 0.02, `load ${loads[i]}: ${now} vs ${then}`);
  }
});

test('near idle, load jitter barely moves the weight (no herding onto the idlest node)', (t) => {
  const a = computeWeight('loadavg', inputs({ loadavgText: '0.00 0 0 1/1 1' }));
  const b = computeWeight('loadavg', inputs({ loadavgText: '0.05 0 0 1/1 1' }));
  t.true(a / b < 1.06);
});

test('freemem: the fraction of memory available, times 100', (t) => {
  t.is(computeWeight('freemem', inputs()), 25);
  t.is(computeWeight('freemem', inputs({ meminfoText: MEMINFO_OLD })), 25, 'MemFree + Buffers + Cached without MemAvailable');
  t.is(computeWeight('freemem', inputs({ meminfoText: 'MemTotal: 100 kB\nMemAvailable: 100 kB\n' })), IDLE_WEIGHT, 'nothing in use: an idle node');
  t.is(computeWeight('freemem', inputs({ meminfoText: 'MemTotal: 100 kB\nMemAvailable: 0 kB\n' })), WEIGHT_MIN, 'all in use: the floor');
});

test('fixed: the operator\'s weight, or an idle node\'s weight until one is set', (t) => {
  t.is(computeWeight('fixed', inputs({ manual: 250 })), 250);
  t.is(computeWeight('fixed', inputs()), DEFAULT_MANUAL_WEIGHT);
  t.is(DEFAULT_MANUAL_WEIGHT, IDLE_WEIGHT);
  t.is(computeWeight('fixed', inputs({ loadavgText: 'garbage', meminfoText: '', manual: 7 })), 7, 'fixed reads no /proc text');
});

test('every mode is clamped to [WEIGHT_MIN, WEIGHT_MAX]', (t) => {
  t.deepEqual([WEIGHT_MIN, WEIGHT_MAX], [1, 1000]);
  t.is(computeWeight('loadavg', inputs({ loadavgText: '250.00 0 0 1/1 1' })), WEIGHT_MIN);
  t.is(computeWeight('fixed', inputs({ manual: 0 })), WEIGHT_MIN);
  t.is(computeWeight('fixed', inputs({ manual: 70000 })), WEIGHT_MAX);
  t.is(computeWeight('freemem', inputs({ meminfoText: 'MemTotal: 100 kB\nMemAvailable: 900 kB\n' })), IDLE_WEIGHT, 'available above total counts as all free');
});

test('unreadable /proc texts are LnlbErrors naming the file', (t) => {
  for (const text of ['', 'abc', '0.5 1.0\n', '-1 0 0 1/1 1']) {
    const err = t.throws(() => computeWeight('loadavg', inputs({ loadavgText: text })), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_WEIGHT_SOURCE');
    t.regex(err.message, /\/proc\/loadavg/);
  }
  for (const text of ['', 'MemFree: 10 kB\n', 'MemTotal: 0 kB\nMemFree: 0 kB\n', 'MemTotal: 100 kB\n']) {
    const err = t.throws(() => computeWeight('freemem', inputs({ meminfoText: text })), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_WEIGHT_SOURCE');
    t.regex(err.message, /\/proc\/meminfo/);
  }
  t.throws(() => computeWeight('loadavg', inputs({ cores: 0 })), { instanceOf: RangeError });
});

test('readWeight reads this machine\'s /proc and stays in range', (t) => {
  for (const mode of WEIGHT_MODES) {
    const w = readWeight(mode, 42);
    t.true(Number.isInteger(w) && w >= WEIGHT_MIN && w <= WEIGHT_MAX, `${mode}: ${w}`);
  }
  t.is(readWeight('fixed', 42), 42);
});

test('parseWeightMode accepts the five modes and names them when refusing', (t) => {
  for (const mode of WEIGHT_MODES) t.is(parseWeightMode(mode), mode);
  t.is(parseWeightMode(' freemem\n'), 'freemem');
  const err = t.throws(() => parseWeightMode('cpu'), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_MODE');
  t.is(err.message, 'weight_mode: unknown weight mode "cpu": expected one of loadavg, loadavg5, loadavg15, freemem, fixed');
  // The flag, the config file and createNode use this parser too, naming what gave the value.
  const flag = t.throws(() => resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.1', insecureNoAuth: 'true', weightMode: 'cpu' }), { instanceOf: LnlbError });
  t.is(flag.code, 'LNLB_ERR_WEIGHT_MODE');
  t.is(flag.message, err.message.replace('weight_mode', '--weight-mode'));
});

test('the mode of weights-as-loads (manual) is refused, saying what changed and what to write', (t) => {
  const err = t.throws(() => parseWeightMode('manual'), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_MANUAL_RETIRED');
  t.regex(err.message, /^weight_mode: weight mode "manual" was retired/);
  t.regex(err.message, /a higher weight now gets MORE new clients/);
  t.regex(err.message, /Use "fixed"/);
  const ws = new WeightSource('nlb0');
  t.throws(() => ws.setMode('manual'), { code: 'LNLB_ERR_WEIGHT_MANUAL_RETIRED' });
  t.is(ws.mode, 'loadavg', 'nothing changed');
});

test('parseManualWeight: a trimmed whole number inside 1..1000', (t) => {
  t.is(parseManualWeight('250'), 250);
  t.is(parseManualWeight('  1000\n'), 1000, 'stdin text: spaces and the newline trimmed');
  t.is(parseManualWeight('1'), 1);
  const cases: [string, RegExp][] = [
    ['5000', /^weight 5000 is outside 1\.\.1000/],
    ['0', /^weight 0 is outside 1\.\.1000/],
    ['-3', /^weight -3 is outside 1\.\.1000/],
    ['12.5', /^"12\.5" is not a weight: expected a whole number in 1\.\.1000/],
    ['1e3', /^"1e3" is not a weight/],
    ['heavy', /^"heavy" is not a weight/],
    ['\n', /^no weight given: expected a whole number in 1\.\.1000/],
  ];
  for (const [text, message] of cases) {
    const err = t.throws(() => parseManualWeight(text), { instanceOf: LnlbError }, JSON.stringify(text));
    t.is(err.code, 'LNLB_ERR_WEIGHT_RANGE');
    t.regex(err.message, message);
  }
});

test('readManualWeight takes set_weight from a stream (stdin)', async (t) => {
  t.is(await readManualWeight(Readable.from([Buffer.from('3'), Buffer.from('00\n')])), 300);
  t.is(await readManualWeight(Readable.from(['  42  '])), 42);
  const err = await t.throwsAsync(readManualWeight(Readable.from(['9'.repeat(100)])), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_RANGE');
  await t.throwsAsync(readManualWeight(Readable.from(['5000\n'])), { message: /weight 5000 is outside 1\.\.1000/ });
});

test('a fixed weight is refused unless the mode is fixed, with the command that switches', (t) => {
  const ws = new WeightSource('nlb0');
  t.is(ws.mode, 'loadavg');
  const err = t.throws(() => ws.setManual('250'), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_NOT_MANUAL');
  t.regex(err.message, /nlb0 takes its weight from loadavg/);
  t.regex(err.message, /`lnlbctl weight_mode nlb0 fixed`/);
  t.is(ws.manual, undefined, 'nothing was set');

  t.is(ws.setMode('fixed'), 'fixed');
  t.is(ws.read(), DEFAULT_MANUAL_WEIGHT);
  t.is(ws.setManual('250\n'), 250);
  t.is(ws.read(), 250);
  t.throws(() => ws.setManual('5000'), { message: /weight 5000 is outside 1\.\.1000/ });
  t.is(ws.manual, 250, 'a refused weight keeps the previous one');

  ws.setMode('freemem');
  t.regex(t.throws(() => ws.setManual('10'))?.message ?? '', /takes its weight from freemem/);
  ws.setMode('fixed');
  t.is(ws.read(), 250, 'the fixed weight survives a round trip through another mode');
  t.throws(() => ws.setMode('bogus'), { code: 'LNLB_ERR_WEIGHT_MODE' });
  t.is(ws.mode, 'fixed', 'a refused mode keeps the previous one');
});
