/**
 * What every benchmark hands to the runner: rows for the table (figure, lnlb, reference, ratio,
 * goal; bench/table.ts prints them in the terminal and in Markdown) and a JSON-able record of
 * everything it measured. Each figure is compared with a reference measured in the same run,
 * because these machines are shared and noisy; a goal says what the figure is judged against,
 * and `met` whether it holds this run (the runner never fails on a slow number, only on a
 * benchmark that cannot run).
 */

/**
 * One line of the table. The cells are short, so that the table reads in an 80-column
 * terminal: what the figure is exactly, what its reference is, and this run's particulars
 * (trials, settings, counts) go in `note`, printed below the table. The README's Benchmarks
 * section explains every figure name a benchmark prints.
 */
export interface BenchRow {
  /** A short name, unique within its benchmark, e.g. `60 B, 2 actors: actor ns/frame`; a sub-row of the row above starts with two spaces. */
  figure: string;
  lnlb: string;
  reference: string;
  ratio: string;
  /** What the figure is judged against; empty when it is reported only. */
  goal: string;
  /** Whether the goal holds this run; undefined: no goal, or not judged this run (the note says why). */
  met?: boolean;
  /** What the figure and its reference are, and this run's particulars: below the table, numbered. */
  note?: string;
}

export interface BenchResult {
  rows: BenchRow[];
  json: unknown;
  /** SVG charts of figures against a size (bench/chart.ts), written beside the JSON as `<results file>-<name>.svg`. */
  charts?: { name: string; svg: string }[];
}

export interface BenchOptions {
  quick: boolean;
  /** Progress lines go here (stderr), never into the table. */
  progress(line: string): void;
}

/** Median with min and max of repeated measurements. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function spread(samples: readonly number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0] ?? Number.NaN, max: sorted[sorted.length - 1] ?? Number.NaN, samples: [...samples] };
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** "median (min–max)". */
export function fmtSpread(s: Spread, digits = 0): string {
  return s.samples.length > 1 ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : fmt(s.median, digits);
}

export function ratio(a: number, b: number, digits = 2): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${fmt(a / b, digits)}×` : 'n/a';
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may contain spaces and is wrapped in parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Resident set size of a process in bytes, from /proc/<pid>/status. */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? Number.NaN : Number(kb) * 1024;
}
