/**
 * Line charts as SVG text, for the benchmarks' figures against a size (nodes in a cluster):
 * a reader sees the curve rather than a column of numbers. Pure (data in, a string out) and
 * self-contained: no dependency, no font or script to load; each point carries a <title>
 * with its exact value, so hovering it in a browser shows the figure.
 */

export interface ChartPoint {
  x: number;
  /** A point whose y is not finite (not measured at this x) is left out of its line. */
  y: number;
}

export interface ChartSeries {
  name: string;
  points: readonly ChartPoint[];
}

export interface LineChart {
  title: string;
  /** With the unit, e.g. "nodes in the cluster (N)". */
  xLabel: string;
  /** With the unit, e.g. "ms". */
  yLabel: string;
  series: readonly ChartSeries[];
  /** 'log2': sizes that double (2, 4, … 64) evenly spaced; default 'linear'. */
  xScale?: 'linear' | 'log2';
  /** A line drawn across the chart (a goal or an ideal), labelled. */
  reference?: { y: number; label: string };
}

const WIDTH = 640;
const HEIGHT = 400;
const MARGIN = { left: 76, right: 24, top: 44, bottom: 84 };
/** Colour-blind-safe (Okabe–Ito), one per series in order. */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick steps (1, 2 or 5 × 10^k) from 0 to at least `max`, about `count` of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let t = 0; t < max + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return ticks;
}

function label(n: number): string {
  return Math.abs(n) >= 1000 ? n.toLocaleString('en-US', { maximumFractionDigits: 0 }) : String(Number(n.toPrecision(4)));
}

export function lineChartSvg(chart: LineChart): string {
  const xs = [...new Set(chart.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const ys = chart.series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite);
  const yTicks = niceTicks(Math.max(...ys, chart.reference?.y ?? 0, 0));
  const yMax = yTicks[yTicks.length - 1]!;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const scaleX = chart.xScale === 'log2' ? Math.log2 : (x: number): number => x;
  const lo = scaleX(xs[0] ?? 0);
  const hi = scaleX(xs[xs.length - 1] ?? 1);
  const px = (x: number): number => MARGIN.left + (hi === lo ? plotW / 2 : ((scaleX(x) - lo) / (hi - lo)) * plotW);
  const py = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const f = (n: number): string => n.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(chart.title)}</title>`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`);
  // Grid and y ticks.
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" y1="${f(py(t))}" x2="${MARGIN.left + plotW}" y2="${f(py(t))}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${f(py(t) + 4)}" text-anchor="end">${escapeXml(label(t))}</text>`);
  }
  // x ticks: one per measured size.
  for (const x of xs) {
    out.push(`<line x1="${f(px(x))}" y1="${MARGIN.top + plotH}" x2="${f(px(x))}" y2="${MARGIN.top + plotH + 5}" stroke="#000000"/>`);
    out.push(`<text x="${f(px(x))}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${escapeXml(label(x))}</text>`);
  }
  out.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="#000000"/>`);
  out.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}" stroke="#000000"/>`);
  out.push(`<text class="x-label" x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 38}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`);
  out.push(`<text class="y-label" transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`);
  if (chart.reference !== undefined && Number.isFinite(chart.reference.y)) {
    const y = f(py(chart.reference.y));
    out.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#777777" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${MARGIN.left + plotW - 4}" y="${f(py(chart.reference.y) - 5)}" text-anchor="end" fill="#555555">${escapeXml(chart.reference.label)}</text>`);
  }
  chart.series.forEach((series, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const points = series.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (points.length > 1) {
      out.push(`<polyline class="series" fill="none" stroke="${colour}" stroke-width="2" points="${points.map((p) => `${f(px(p.x))},${f(py(p.y))}`).join(' ')}"/>`);
    }
    for (const p of points) {
      out.push(`<circle class="point" cx="${f(px(p.x))}" cy="${f(py(p.y))}" r="3.5" fill="${colour}"><title>${escapeXml(`${series.name}: ${label(p.x)} → ${label(p.y)} ${chart.yLabel}`)}</title></circle>`);
    }
    // Legend under the x label, one entry per series.
    const lx = MARGIN.left + (i % 3) * 190;
    const ly = HEIGHT - 22 + Math.floor(i / 3) * 14 - (chart.series.length > 3 ? 10 : 0);
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 18}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 24}" y="${ly}">${escapeXml(series.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
