/**
 * The bench report as text: the table printed in a terminal and the same in Markdown (written
 * beside the JSON in bench/results/, and the form of the README's table). Pure: rows in, text out.
 *
 * Each benchmark's rows form a section under its name. A row's figure is a short name; what it
 * measures exactly, its reference and this run's particulars are its note, printed below the
 * table and numbered (a note shared by several rows is printed once). In the terminal the table
 * fits the width it is given (80 to 120 columns): every column but the mark wraps at spaces,
 * the widest narrowed first.
 *
 *   figure                        lnlb             reference        ratio  goal             met
 *   ── replay ─────────────────────────────────────────────────────────────────────────────────
 *   60 B, 2 actors: actor ns/frame 97.0 (95.8–109.9) 25.0 (24.0–46.4) 3.88×  < 150 ns         ✓
 *   [1]
 *
 *   [1] what the figure is, its reference, ...
 */

import type { BenchRow } from './report.js';

/** One benchmark's rows, under its name. */
export interface BenchSection {
  name: string;
  rows: readonly BenchRow[];
}

/** Narrowest and widest table the terminal gets. */
export const MIN_WIDTH = 80;
export const MAX_WIDTH = 120;
/** The width when stdout is not a terminal (a file, a pipe): reads in any terminal of 100 columns or more. */
export const DEFAULT_WIDTH = 100;

/** The table's width for a terminal of `columns` (undefined: not a terminal). */
export function tableWidth(columns: number | undefined): number {
  if (columns === undefined || !Number.isFinite(columns) || columns <= 0) return DEFAULT_WIDTH;
  return Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, Math.floor(columns)));
}

/** Whether a row's goal held: the mark and the words. A row with a goal not judged this run says so. */
export interface Verdict {
  mark: '✓' | '✗' | '–' | '';
  words: 'met' | 'not met' | 'not judged' | '';
}

export function verdict(row: BenchRow): Verdict {
  if (row.met === true) return { mark: '✓', words: 'met' };
  if (row.met === false) return { mark: '✗', words: 'not met' };
  return row.goal.trim() === '' ? { mark: '', words: '' } : { mark: '–', words: 'not judged' };
}

/** Each distinct note, numbered from 1 in the order the rows show them. */
export function numberNotes(sections: readonly BenchSection[]): Map<string, number> {
  const numbers = new Map<string, number>();
  for (const s of sections) for (const r of s.rows) if (r.note !== undefined && r.note !== '' && !numbers.has(r.note)) numbers.set(r.note, numbers.size + 1);
  return numbers;
}

/** The figure with its note's number: `60 B, 2 actors: actor ns/frame [3]`. */
function figureText(row: BenchRow, notes: ReadonlyMap<string, number>): string {
  const n = row.note === undefined ? undefined : notes.get(row.note);
  return n === undefined ? row.figure : `${row.figure} [${n}]`;
}

const length = (s: string): number => [...s].length;

/**
 * Breaks `text` into lines of at most `width` characters, at spaces (a word longer than the
 * width is cut). Leading spaces (a sub-row's indent) are kept on the first line and on the
 * others, which `hang` more spaces indent further (a wrapped figure then reads as one).
 */
export function wrap(text: string, width: number, hang = 0): string[] {
  const indent = /^ */.exec(text)![0];
  const words = text.slice(indent.length).split(/ +/).filter((w) => w !== '');
  if (words.length === 0) return [indent.slice(0, width)];
  const next = (indent + ' '.repeat(hang)).slice(0, Math.max(0, width - 1));
  const lines: string[] = [];
  let line = indent.slice(0, Math.max(0, width - 1));
  let fresh = true; // nothing but the indent on `line` yet
  for (let word of words) {
    if (!fresh && length(line) + 1 + length(word) <= width) {
      line += ` ${word}`;
      continue;
    }
    if (!fresh) {
      lines.push(line);
      line = next;
    }
    // A word longer than what is left of the line: cut it.
    while (length(line) + length(word) > width) {
      const room = width - length(line);
      lines.push(line + [...word].slice(0, room).join(''));
      word = [...word].slice(room).join('');
      line = next;
    }
    line += word;
    fresh = false;
  }
  lines.push(line);
  return lines;
}

const pad = (s: string, width: number, right = false): string => {
  const fill = ' '.repeat(Math.max(0, width - length(s)));
  return right ? fill + s : s + fill;
};

type Column = 'figure' | 'lnlb' | 'reference' | 'ratio' | 'goal' | 'met';
const COLUMNS: readonly Column[] = ['figure', 'lnlb', 'reference', 'ratio', 'goal', 'met'];
/** How narrow each wrapping column may get (the mark never wraps). */
const MIN_COLUMN: Readonly<Partial<Record<Column, number>>> = { figure: 20, lnlb: 10, reference: 10, ratio: 7, goal: 10 };
/** No word of a figure is cut while a column may be narrowed instead: up to this length, a column keeps its longest word whole. */
const LONGEST_WHOLE_WORD = 16;
/** Which column gives up a character first: the one widest for its weight (a figure's name keeps more room than a goal, a goal than a value). */
const WEIGHT: Readonly<Record<Column, number>> = { figure: 1.6, lnlb: 1, reference: 1, ratio: 0.8, goal: 1.2, met: 1 };
const GAP = '  ';

/**
 * The widths of the columns for a table `width` characters wide: each as wide as its widest
 * cell, then the wrapping column widest for its weight narrowed one character at a time until
 * the table fits: down to its longest word (up to 16) first, then, if that is not enough, down
 * to its minimum, cutting words.
 */
export function columnWidths(cells: readonly Readonly<Record<Column, string>>[], width: number): Record<Column, number> {
  const widest = (c: Column, of: (cell: string) => number[]): number => Math.max(0, ...cells.flatMap((r) => of(r[c])));
  const widths = Object.fromEntries(COLUMNS.map((c) => [c, widest(c, (cell) => [length(cell)])])) as Record<Column, number>;
  const least = Object.fromEntries(
    COLUMNS.map((c) => [c, MIN_COLUMN[c] === undefined ? widths[c] : Math.min(widths[c], Math.max(MIN_COLUMN[c]!, Math.min(LONGEST_WHOLE_WORD, widest(c, (cell) => cell.split(' ').map(length)))))]),
  ) as Record<Column, number>;
  const total = (): number => COLUMNS.reduce((sum, c) => sum + widths[c], 0) + GAP.length * (COLUMNS.length - 1);
  // Words kept whole first; if the table is still too wide, they are cut, down to each column's minimum.
  for (const floor of [least, MIN_COLUMN]) {
    while (total() > width) {
      const shrinkable = COLUMNS.filter((c) => floor[c] !== undefined && widths[c] > floor[c]!);
      if (shrinkable.length === 0) break;
      const next = shrinkable.reduce((a, b) => (widths[b] / WEIGHT[b] > widths[a] / WEIGHT[a] ? b : a));
      widths[next]--;
    }
  }
  return widths;
}

/**
 * The terminal table: a header, each section under a rule with its name, every row's cells
 * wrapped to the column widths, then the notes, numbered, wrapped to `width`.
 */
export function formatTable(sections: readonly BenchSection[], width: number): string {
  const notes = numberNotes(sections);
  const header: Record<Column, string> = { figure: 'figure', lnlb: 'lnlb', reference: 'reference', ratio: 'ratio', goal: 'goal', met: 'met' };
  const cellsOf = (r: BenchRow): Record<Column, string> => ({ figure: figureText(r, notes), lnlb: r.lnlb, reference: r.reference, ratio: r.ratio, goal: r.goal, met: verdict(r).mark });
  const rows = sections.map((s) => ({ name: s.name, cells: s.rows.map(cellsOf) }));
  const widths = columnWidths([header, ...rows.flatMap((s) => s.cells)], width);
  const tableWidth = COLUMNS.reduce((sum, c) => sum + widths[c], 0) + GAP.length * (COLUMNS.length - 1);
  const right: ReadonlySet<Column> = new Set(['lnlb', 'reference', 'ratio']);
  const line = (cells: Readonly<Record<Column, string>>): string[] => {
    const wrapped = COLUMNS.map((c) => wrap(cells[c], widths[c], c === 'figure' ? 2 : 0));
    const height = Math.max(...wrapped.map((w) => w.length));
    const out: string[] = [];
    for (let i = 0; i < height; i++) {
      out.push(COLUMNS.map((c, k) => pad(wrapped[k]![i] ?? '', widths[c], right.has(c) && wrapped[k]!.length === 1)).join(GAP).trimEnd());
    }
    return out;
  };
  const out: string[] = [...line(header)];
  for (const s of rows) {
    const title = `── ${s.name} `;
    out.push(title + '─'.repeat(Math.max(2, Math.min(width, tableWidth) - length(title))));
    for (const cells of s.cells) out.push(...line(cells));
  }
  if (notes.size > 0) {
    out.push('');
    for (const [note, n] of notes) {
      const tag = `[${n}] `;
      out.push(...wrap(note, width - tag.length).map((l, i) => (i === 0 ? tag : ' '.repeat(tag.length)) + l));
    }
  }
  return `${out.join('\n')}\n`;
}

/** A cell of a Markdown table: no pipe or line break may end the cell early. */
function markdownCell(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replaceAll(/\s*\n\s*/g, ' ').trim();
}

/** A sub-row's indent, which Markdown would collapse, as an arrow: `  by thread` → `↳ by thread`. */
function markdownFigure(text: string): string {
  return text.startsWith(' ') ? `↳ ${text.trimStart()}` : text;
}

/**
 * The same report in Markdown, as the README shows it: one table, a bold row naming each
 * section, the goal's verdict in words (✓ met, ✗ not met, – not judged), the notes below.
 */
export function formatMarkdown(sections: readonly BenchSection[]): string {
  const notes = numberNotes(sections);
  const out = ['| figure | lnlb | reference | ratio | goal | met |', '|---|--:|--:|--:|---|---|'];
  for (const s of sections) {
    out.push(`| **${markdownCell(s.name)}** | | | | | |`);
    for (const r of s.rows) {
      const v = verdict(r);
      const cells = [markdownFigure(figureText(r, notes)), r.lnlb, r.reference, r.ratio, r.goal, v.mark === '' ? '' : `${v.mark} ${v.words}`];
      out.push(`|${cells.map((c) => (c === '' ? ' ' : ` ${markdownCell(c)} `)).join('|')}|`);
    }
  }
  if (notes.size > 0) {
    out.push('');
    for (const [note, n] of notes) out.push(`- [${n}] ${markdownCell(note)}`);
  }
  return `${out.join('\n')}\n`;
}
