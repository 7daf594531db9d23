import test from 'ava';
import type { BenchRow } from '../../../bench/report.js';
import { columnWidths, formatMarkdown, formatTable, numberNotes, tableWidth, verdict, wrap, type BenchSection } from '../../../bench/table.js';

const SHARED_NOTE = 'ns per frame through the dispatcher and the actor, the memory source included; ref: the memory source alone, timed in the same run';

/** Rows as the benchmarks make them: a judged goal met, one not met, one not judged, none, a sub-row, cells far wider than any terminal. */
const SECTIONS: BenchSection[] = [
  {
    name: 'replay',
    rows: [
      { figure: '60 B, --workers 1: ns/frame', lnlb: '202.4 (202.1–209.4)', reference: '24.5 (23.1–30.3)', ratio: '8.25×', goal: '', note: SHARED_NOTE },
      { figure: '60 B, 2 actors: actor ns/frame', lnlb: '97.0 (95.8–109.9)', reference: '25.0 (24.0–46.4)', ratio: '3.88×', goal: '< 150 ns per actor', met: true, note: SHARED_NOTE },
      { figure: '60 B, 4 actors: actor ns/frame', lnlb: '180.4 (170.0–190.2)', reference: '33.5 (23.2–55.2)', ratio: '5.39×', goal: '< 150 ns per actor', met: false },
    ],
  },
  {
    name: 'memory',
    rows: [
      { figure: 'idle RSS, no flows, MiB', lnlb: '112.5 (112.4–113.2)', reference: '66.5', ratio: '1.69×', goal: '≤ 100 MiB', met: false, note: 'the daemon with no flows, 3 nodes; ref: bare Node with 4 idle workers' },
      {
        figure: '  by mapping, MiB (medians over the nodes)',
        lnlb: 'node binary (shared) 42.0, heaps, malloc, shared memory 36.8, data ring 25.6, control ring 4.1, libraries, stacks, other 4.0',
        reference: '',
        ratio: '',
        goal: '',
      },
      { figure: '  by thread, % of one core', lnlb: 'lnlb-control 0.397, main 0.069, V8/libuv 0.031, lnlb-dispatcher 0.009', reference: '', ratio: '', goal: '' },
      // Long words in every column at once: kept whole they would not fit in 80 columns.
      { figure: 'p99.9 µs, --workers 2', lnlb: '1,848.2 (1,703.2–2,537.9)', reference: '989.1 (905.3–998.3)', ratio: '+329.6 B/flow', goal: "median ≤ keepalived's, 0 false deaths", met: true },
      { figure: 'bytes per tracked flow', lnlb: '19.2 (12.3) / 19.2 (10.8)', reference: '18.3 at the 7/8 load limit', ratio: '+329.6 B/flow / +349.2 B/flow', goal: '≤ 24 B per entry (judged at 1M flows)', note: 'not judged: --quick sends 100,000 flows | not 1M' },
    ],
  },
];

const rowsOf = (sections: readonly BenchSection[]): BenchRow[] => sections.flatMap((s) => [...s.rows]);

test('verdict: ✓ met, ✗ not met, – not judged when a goal was not judged, nothing without a goal', (t) => {
  const [noGoal, met, notMet] = SECTIONS[0]!.rows;
  t.deepEqual(verdict(met!), { mark: '✓', words: 'met' });
  t.deepEqual(verdict(notMet!), { mark: '✗', words: 'not met' });
  t.deepEqual(verdict(SECTIONS[1]!.rows.at(-1)!), { mark: '–', words: 'not judged' });
  t.deepEqual(verdict(noGoal!), { mark: '', words: '' });
});

test('the table width follows the terminal between 80 and 120 columns, 100 when stdout is not one', (t) => {
  t.is(tableWidth(undefined), 100);
  t.is(tableWidth(60), 80);
  t.is(tableWidth(95), 95);
  t.is(tableWidth(300), 120);
});

for (const width of [80, 100, 120]) {
  test(`the terminal table fits ${width} columns, wrapped cells included`, (t) => {
    const text = formatTable(SECTIONS, width);
    const lines = text.trimEnd().split('\n');
    const tooWide = lines.filter((l) => [...l].length > width);
    t.deepEqual(tooWide, [], text);
    // Nothing lost in the wrapping: every word of every cell is printed.
    const printed = new Set(text.split(/\s+/));
    for (const row of rowsOf(SECTIONS)) {
      for (const cell of [row.lnlb, row.reference, row.goal]) for (const word of cell.split(' ').filter((w) => w.length > 0 && w.length < 10)) t.true(printed.has(word), `${word} of ${cell}`);
    }
  });
}

test('the terminal table: one header, a rule per section, each row marked ✓ or ✗ in the met column', (t) => {
  const text = formatTable(SECTIONS, 100);
  const lines = text.split('\n');
  t.regex(lines[0]!, /^figure\s+lnlb\s+reference\s+ratio\s+goal\s+met$/);
  t.truthy(lines.find((l) => l.startsWith('── replay ─')));
  t.truthy(lines.find((l) => l.startsWith('── memory ─')));
  // The mark is on a row's first line, at the end.
  const rowLine = (figure: string): string => lines.find((l) => l.startsWith(figure))!;
  t.regex(rowLine('60 B, 2 actors:'), /< 150 ns per actor\s+✓$/);
  t.regex(rowLine('60 B, 4 actors:'), /< 150 ns per actor\s+✗$/);
  t.regex(rowLine('60 B, --workers 1:'), /8\.25×$/, 'no goal: no mark');
  t.regex(rowLine('bytes per tracked'), /≤ 24 B per entry.*\s–$/, 'a goal not judged this run is marked so');
});

test('notes: numbered below the table in order, a note shared by two rows printed once', (t) => {
  const notes = numberNotes(SECTIONS);
  t.deepEqual([...notes.values()], [1, 2, 3]);
  t.is(notes.get(SHARED_NOTE), 1);
  const text = formatTable(SECTIONS, 80);
  t.is(text.split('\n').filter((l) => l.startsWith('[1] ')).length, 1, 'note 1 printed once below the table');
  t.true(formatTable(SECTIONS, 120).includes('60 B, --workers 1: ns/frame [1]'));
  t.regex(text, /\[1\] ns per frame through the dispatcher/);
  t.false(text.includes(`[1] ${SHARED_NOTE}`), 'a note longer than the table is wrapped, not one line');
});

test('Markdown: the README columns, a bold row per section, the verdict in words, pipes escaped, notes as a list', (t) => {
  const md = formatMarkdown(SECTIONS);
  const lines = md.trimEnd().split('\n');
  t.is(lines[0], '| figure | lnlb | reference | ratio | goal | met |');
  t.is(lines[2], '| **replay** | | | | | |');
  t.true(lines.includes('| 60 B, 2 actors: actor ns/frame [1] | 97.0 (95.8–109.9) | 25.0 (24.0–46.4) | 3.88× | < 150 ns per actor | ✓ met |'));
  t.true(lines.includes('| 60 B, 4 actors: actor ns/frame | 180.4 (170.0–190.2) | 33.5 (23.2–55.2) | 5.39× | < 150 ns per actor | ✗ not met |'));
  t.true(lines.some((l) => l.startsWith('| bytes per tracked flow [3] |') && l.endsWith('| – not judged |')));
  t.true(lines.includes('| 60 B, --workers 1: ns/frame [1] | 202.4 (202.1–209.4) | 24.5 (23.1–30.3) | 8.25× | | |'), md);
  t.true(lines.some((l) => l.startsWith('| ↳ by mapping, MiB')), 'a sub-row keeps its place under its row');
  t.true(lines.includes('- [3] not judged: --quick sends 100,000 flows \\| not 1M'));
  // Every table line has the same six cells (an unescaped pipe would add one).
  for (const line of lines.filter((l) => l.startsWith('|'))) t.is(line.replaceAll('\\|', '').split('|').length, 8, line);
});

test('wrap: at spaces, a sub-row indent kept and continued, a long word cut', (t) => {
  t.deepEqual(wrap('frames lost by the C reference', 12), ['frames lost', 'by the C', 'reference']);
  t.deepEqual(wrap('  by thread, % of one core', 14), ['  by thread, %', '  of one core']);
  t.deepEqual(wrap('  by thread, % of one core', 14, 2), ['  by thread, %', '    of one', '    core']);
  t.deepEqual(wrap('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
  t.deepEqual(wrap('abcdefghij', 4, 2), ['abcd', '  ef', '  gh', '  ij']);
  t.deepEqual(wrap('', 5), ['']);
});

test('column widths: natural when they fit; else the widest wrapping column narrows first, the mark never', (t) => {
  const cells = [{ figure: 'f'.repeat(30), lnlb: 'l'.repeat(10), reference: 'r'.repeat(10), ratio: '1.00×', goal: 'g'.repeat(40), met: '✓' }];
  t.deepEqual(columnWidths(cells, 200), { figure: 30, lnlb: 10, reference: 10, ratio: 5, goal: 40, met: 1 });
  const narrow = columnWidths(cells, 80);
  t.is(Object.values(narrow).reduce((a, b) => a + b, 0) + 2 * 5, 80);
  t.is(narrow.met, 1);
  t.is(narrow.ratio, 5);
  t.true(narrow.goal < 40 && narrow.figure <= 30);
  // A value's words stay whole while another column can give: `(202.1–209.4)` is not cut at 80 columns.
  const values = [{ figure: 'x'.repeat(60), lnlb: '202.4 (202.1–209.4)', reference: '24.5 (23.1–30.3)', ratio: '8.25×', goal: 'g '.repeat(30), met: '✓' }];
  t.true(columnWidths(values, 80).lnlb >= '(202.1–209.4)'.length);
});
