/**
 * What every benchmark hands to the runner: rows for the one aligned table (figure, lnlb,
 * reference, ratio, goal) and a JSON-able record of everything it measured. Each figure is
 * compared with a reference measured in the same run, because these machines are shared and
 * noisy; a goal says what the figure is judged against, and `met` whether it holds this run
 * (the runner never fails on a slow number, only on a benchmark that cannot run).
 */

export interface BenchRow {
  figure: string;
  lnlb: string;
  reference: string;
  ratio: string;
  goal: string;
  /** undefined: no goal to meet, or not measurable this run. */
  met?: boolean;
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
