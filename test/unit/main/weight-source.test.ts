import test from 'ava';
import { Readable } from 'node:stream';
import { LnlbError } from '../../../src/errors.js';
import {
  computeWeight,
  DEFAULT_MANUAL_WEIGHT,
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

test('loadavg modes read the 1-, 5- and 15-minute averages: 100 × (1 + load / cores)', (t) => {
  t.is(computeWeight('loadavg', inputs()), 150);
  t.is(computeWeight('loadavg5', inputs()), 200);
  t.is(computeWeight('loadavg15', inputs()), 400);
  t.is(computeWeight('loadavg15', inputs({ cores: 4 })), 175, 'load is per core');
  t.is(computeWeight('loadavg', inputs({ loadavgText: '0.00 0.00 0.00 1/100 1' })), 100, 'an idle node weighs 100');
  t.is(computeWeight('loadavg', inputs({ loadavgText: '0.01 0.00 0.00 1/100 1' })), 101, '0.01 of load per core is one step');
});

test('near idle, load jitter barely moves the weight (no herding onto the idlest node)', (t) => {
  const a = computeWeight('loadavg', inputs({ loadavgText: '0.00 0 0 1/1 1' }));
  const b = computeWeight('loadavg', inputs({ loadavgText: '0.05 0 0 1/1 1' }));
  t.true(b / a < 1.06);
});

test('freemem: fraction of memory in use, scaled to the maximum', (t) => {
  t.is(computeWeight('freemem', inputs()), 750);
  t.is(computeWeight('freemem', inputs({ meminfoText: MEMINFO_OLD })), 750, 'MemFree + Buffers + Cached without MemAvailable');
  t.is(computeWeight('freemem', inputs({ meminfoText: 'MemTotal: 100 kB\nMemAvailable: 100 kB\n' })), WEIGHT_MIN, 'nothing in use → the floor');
  t.is(computeWeight('freemem', inputs({ meminfoText: 'MemTotal: 100 kB\nMemAvailable: 0 kB\n' })), WEIGHT_MAX);
});

test('manual: the operator\'s weight, or an idle node\'s weight until one is set', (t) => {
  t.is(computeWeight('manual', inputs({ manual: 250 })), 250);
  t.is(computeWeight('manual', inputs()), DEFAULT_MANUAL_WEIGHT);
  t.is(computeWeight('manual', inputs({ loadavgText: 'garbage', meminfoText: '', manual: 7 })), 7, 'manual reads no /proc text');
});

test('every mode is clamped to [WEIGHT_MIN, WEIGHT_MAX]', (t) => {
  t.deepEqual([WEIGHT_MIN, WEIGHT_MAX], [1, 1000]);
  t.is(computeWeight('loadavg', inputs({ loadavgText: '250.00 0 0 1/1 1' })), WEIGHT_MAX);
  t.is(computeWeight('loadavg', inputs({ loadavgText: '9.00 0 0 1/1 1' })), WEIGHT_MAX, 'nine per core reaches the ceiling');
  t.is(computeWeight('loadavg', inputs({ loadavgText: '8.99 0 0 1/1 1' })), 999);
  t.is(computeWeight('manual', inputs({ manual: 0 })), WEIGHT_MIN);
  t.is(computeWeight('manual', inputs({ manual: 70000 })), WEIGHT_MAX);
  t.is(computeWeight('freemem', inputs({ meminfoText: 'MemTotal: 100 kB\nMemAvailable: 900 kB\n' })), WEIGHT_MIN, 'available above total');
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
  t.is(readWeight('manual', 42), 42);
});

test('parseWeightMode accepts the five modes and names them when refusing', (t) => {
  for (const mode of WEIGHT_MODES) t.is(parseWeightMode(mode), mode);
  t.is(parseWeightMode(' freemem\n'), 'freemem');
  const err = t.throws(() => parseWeightMode('cpu'), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_MODE');
  t.is(err.message, 'unknown weight mode "cpu": expected one of loadavg, loadavg5, loadavg15, freemem, manual');
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

test('a manual weight is refused unless the mode is manual, with the command that switches', (t) => {
  const ws = new WeightSource('nlb0');
  t.is(ws.mode, 'loadavg');
  const err = t.throws(() => ws.setManual('250'), { instanceOf: LnlbError });
  t.is(err.code, 'LNLB_ERR_WEIGHT_NOT_MANUAL');
  t.regex(err.message, /nlb0 takes its weight from loadavg/);
  t.regex(err.message, /`lnlbctl weight_mode nlb0 manual`/);
  t.is(ws.manual, undefined, 'nothing was set');

  t.is(ws.setMode('manual'), 'manual');
  t.is(ws.read(), DEFAULT_MANUAL_WEIGHT);
  t.is(ws.setManual('250\n'), 250);
  t.is(ws.read(), 250);
  t.throws(() => ws.setManual('5000'), { message: /weight 5000 is outside 1\.\.1000/ });
  t.is(ws.manual, 250, 'a refused weight keeps the previous one');

  ws.setMode('freemem');
  t.regex(t.throws(() => ws.setManual('10'))?.message ?? '', /takes its weight from freemem/);
  ws.setMode('manual');
  t.is(ws.read(), 250, 'the manual weight survives a round trip through another mode');
  t.throws(() => ws.setMode('bogus'), { code: 'LNLB_ERR_WEIGHT_MODE' });
  t.is(ws.mode, 'manual', 'a refused mode keeps the previous one');
});
