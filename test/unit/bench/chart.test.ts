/**
 * The benchmarks' SVG charts: a well-formed document a browser renders, one point per measured
 * size in each series, axis labels with their units, and every text escaped.
 */
import test from 'ava';
import { escapeXml, lineChartSvg, niceTicks, type LineChart } from '../../../bench/chart.js';

const SIZES = [2, 4, 8, 16, 32, 64];

const chart: LineChart = {
  title: 'Convergence after the last start',
  xLabel: 'nodes in the cluster (N)',
  yLabel: 'ms',
  xScale: 'log2',
  series: [
    { name: 'median', points: SIZES.map((x) => ({ x, y: x * 10 })) },
    { name: 'worst <of 3>', points: SIZES.map((x) => ({ x, y: x === 64 ? Number.NaN : x * 12 })) },
  ],
  reference: { y: 700, label: 'dead-after' },
};

/** Every opened tag is closed in order: enough of XML's rules to catch a broken document. */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing === '/') continue;
    if (closing === '/') {
      if (stack.pop() !== name) return false;
    } else stack.push(name!);
  }
  return stack.length === 0;
}

test('the chart is one well-formed SVG document', (t) => {
  const svg = lineChartSvg(chart);
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.true(wellFormed(svg));
  t.false(/NaN|Infinity|undefined/.test(svg), 'no number that failed to compute reaches the drawing');
});

test('one point per measured size; a size not measured is left out of its line', (t) => {
  const svg = lineChartSvg(chart);
  const points = [...svg.matchAll(/<circle class="point"/g)].length;
  t.is(points, SIZES.length + SIZES.length - 1);
  t.is([...svg.matchAll(/<polyline class="series"/g)].length, 2);
  // Every size has its tick label under the x axis.
  for (const x of SIZES) t.regex(svg, new RegExp(`text-anchor="middle">${x}</text>`));
});

test('the axes are labelled with their units and the texts are escaped', (t) => {
  const svg = lineChartSvg(chart);
  t.regex(svg, /class="x-label"[^>]*>nodes in the cluster \(N\)<\/text>/);
  t.regex(svg, /class="y-label"[^>]*>ms<\/text>/);
  t.true(svg.includes('worst &lt;of 3&gt;'));
  t.false(svg.includes('<of 3>'));
  t.is(escapeXml('a & "b"'), 'a &amp; &quot;b&quot;');
});

test('points rise with their values and doubling sizes are evenly spaced on a log2 axis', (t) => {
  const svg = lineChartSvg({ ...chart, series: [chart.series[0]!] });
  const circles = [...svg.matchAll(/<circle class="point" cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) }));
  t.is(circles.length, SIZES.length);
  const gaps = circles.slice(1).map((c, i) => c.x - circles[i]!.x);
  for (const gap of gaps) t.true(Math.abs(gap - gaps[0]!) < 0.2);
  // SVG's y grows downwards: a larger value is drawn higher.
  for (let i = 1; i < circles.length; i++) t.true(circles[i]!.y < circles[i - 1]!.y);
});

test('ticks are round numbers from 0 past the largest value', (t) => {
  t.deepEqual(niceTicks(640), [0, 200, 400, 600, 800]);
  t.deepEqual(niceTicks(1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.deepEqual(niceTicks(0), [0, 1]);
  const ticks = niceTicks(12_345);
  t.true(ticks[ticks.length - 1]! >= 12_345);
});
