/**
 * Weight sources, per cluster interface (reference/lnlb.md, "Weights and election"): where a
 * node's weight comes from before it goes into a HEARTBEAT. A weight is a *load*: the election
 * gives a node a share of new clients proportional to 1 / weight, so a busier node gets fewer.
 *
 *   mode        source                                weight
 *   loadavg     /proc/loadavg, 1-minute (default)     round(100 × (1 + load / cores))
 *   loadavg5    /proc/loadavg, 5-minute               same
 *   loadavg15   /proc/loadavg, 15-minute              same
 *   freemem     /proc/meminfo, fraction in use        round(1000 × (1 − MemAvailable / MemTotal))
 *   manual      the operator (`lnlbctl set_weight`)   as given
 *   every result is clamped to [WEIGHT_MIN, WEIGHT_MAX] = [1, 1000].
 *
 * The range. The wire has a u16, but 0 is taken (a zero weight anywhere makes every node keep
 * its previous election table), so the floor is 1. The ceiling, 1000, gives three significant
 * digits (the precision /proc/loadavg itself has: two decimals) and a dynamic range of 1000:1
 * between the idlest and the busiest node, far more than a load signal is worth; a larger
 * ceiling would only let one odd reading dominate a sum of weights.
 *
 * The loadavg scaling. load / cores is the run queue per core, what "busy" means on a machine
 * of any size (a load of 4 saturates 4 cores but overloads 1). The weight is that plus one,
 * times 100: under processor sharing, a new client on a node with L runnable tasks per core
 * runs about (1 + L) times slower than alone, so 1 / (1 + L) is the rate the node can give it,
 * and sharing new clients in that proportion is sharing them by what each node can serve.
 * An idle node weighs 100, one task per core 200, nine per core or more the ceiling (1000):
 * the idle node gets twice the new clients of the saturated one, ten times those of the
 * overloaded one. The "+1" matters: with `100 × L + 1` (no offset) two idle nodes whose loads
 * jitter between 0.00 and 0.05 would swing between 1 and 6, a 6:1 split between two machines
 * doing nothing; and since loadavg lags by a minute, so steep a response herds every new
 * client onto whichever node looked idle last round, which then is not. 100 per task per core
 * keeps 0.01 of load per core visible (one weight step), as /proc/loadavg reports it.
 *
 * The freemem scaling: the fraction of memory in use, scaled to the maximum (LNLB's rule).
 * "In use" is 1 − MemAvailable / MemTotal: MemFree alone counts the page cache as used, and a
 * long-running box would look full forever. Kernels before 3.14 lack MemAvailable; there it is
 * MemFree + Buffers + Cached.
 *
 * The pure core (`computeWeight`) takes the /proc texts, so every mode is tested from fixture
 * texts; `readWeight` is the thin reader. It reads synchronously: once per heartbeat, two
 * small procfs files, about 10 µs, on the main thread that owns the timers anyway.
 */

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { lnlbError } from '../errors.js';

export const WEIGHT_MODES = ['loadavg', 'loadavg5', 'loadavg15', 'freemem', 'manual'] as const;
export type WeightMode = (typeof WEIGHT_MODES)[number];
export const DEFAULT_WEIGHT_MODE: WeightMode = 'loadavg';

export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 1000;
/** Weight units per runnable task per core; also the weight of an idle node (see above). */
export const LOADAVG_SCALE = 100;
/**
 * The weight in manual mode before the operator sets one: an idle node's weight under the
 * loadavg modes, so a node just switched to manual neither takes nor sheds more than its share.
 */
export const DEFAULT_MANUAL_WEIGHT = LOADAVG_SCALE;

export interface WeightInputs {
  /** The contents of /proc/loadavg (read by the loadavg modes only). */
  loadavgText: string;
  /** The contents of /proc/meminfo (read by freemem only). */
  meminfoText: string;
  /** CPUs this process may run on (os.availableParallelism()). */
  cores: number;
  /** The operator's weight (manual mode only); DEFAULT_MANUAL_WEIGHT when not set. */
  manual?: number;
}

const RANGE = `${WEIGHT_MIN}..${WEIGHT_MAX}`;

export function clampWeight(value: number): number {
  if (!Number.isFinite(value)) throw new RangeError(`a weight must be a finite number, got ${value}`);
  return Math.min(WEIGHT_MAX, Math.max(WEIGHT_MIN, Math.round(value)));
}

/** The weight of this node in `mode`, from the /proc texts: pure, so tests give fixtures. */
export function computeWeight(mode: WeightMode, inputs: WeightInputs): number {
  switch (mode) {
    case 'loadavg':
    case 'loadavg5':
    case 'loadavg15': {
      const cores = inputs.cores;
      if (!Number.isInteger(cores) || cores < 1) throw new RangeError(`cores must be a whole number ≥ 1, got ${cores}`);
      const load = parseLoadavg(inputs.loadavgText)[mode === 'loadavg' ? 0 : mode === 'loadavg5' ? 1 : 2];
      return clampWeight(LOADAVG_SCALE * (1 + load / cores));
    }
    case 'freemem':
      return clampWeight(memoryInUse(inputs.meminfoText) * WEIGHT_MAX);
    case 'manual':
      return clampWeight(inputs.manual ?? DEFAULT_MANUAL_WEIGHT);
  }
}

/** Reads /proc (only the file the mode needs) and computes the weight. */
export function readWeight(mode: WeightMode, manual?: number): number {
  const loadavgText = mode === 'loadavg' || mode === 'loadavg5' || mode === 'loadavg15' ? readProc('/proc/loadavg') : '';
  const meminfoText = mode === 'freemem' ? readProc('/proc/meminfo') : '';
  const inputs: WeightInputs = { loadavgText, meminfoText, cores: availableParallelism() };
  if (manual !== undefined) inputs.manual = manual;
  return computeWeight(mode, inputs);
}

function readProc(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch (cause) {
    const errno = (cause as NodeJS.ErrnoException).code;
    throw lnlbError('LNLB_ERR_WEIGHT_SOURCE', `cannot read ${path} for the node's weight (${errno ?? String(cause)}): is /proc mounted?`, errno === undefined ? { cause } : { cause, errno });
  }
}

/** The three load averages of a /proc/loadavg text ("0.52 0.58 0.59 1/467 12345"). */
export function parseLoadavg(text: string): [number, number, number] {
  const m = /^\s*(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)(?:\s|$)/.exec(text);
  if (!m) throw lnlbError('LNLB_ERR_WEIGHT_SOURCE', `/proc/loadavg does not start with three load averages: ${JSON.stringify(text.slice(0, 60))}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Fraction of memory in use, 0..1, from a /proc/meminfo text. */
export function memoryInUse(text: string): number {
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s*(\\d+)(?:\\s*kB)?\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const total = kb('MemTotal');
  if (total === undefined || total === 0) throw lnlbError('LNLB_ERR_WEIGHT_SOURCE', '/proc/meminfo has no MemTotal line (or it is 0)');
  let available = kb('MemAvailable');
  if (available === undefined) {
    const free = kb('MemFree');
    if (free === undefined) throw lnlbError('LNLB_ERR_WEIGHT_SOURCE', '/proc/meminfo has neither MemAvailable nor MemFree');
    available = free + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
  }
  return Math.min(1, Math.max(0, 1 - available / total));
}

/** A weight mode named by the operator (`lnlbctl weight_mode <if> <mode>`). */
export function parseWeightMode(text: string): WeightMode {
  const s = text.trim();
  if ((WEIGHT_MODES as readonly string[]).includes(s)) return s as WeightMode;
  throw lnlbError('LNLB_ERR_WEIGHT_MODE', `unknown weight mode ${JSON.stringify(s)}: expected one of ${WEIGHT_MODES.join(', ')}`);
}

/**
 * A manual weight given by the operator: the argument of `set_weight`, or its standard input
 * (`echo 250 | lnlbctl set_weight nlb0 stdin`), so surrounding white space and a final newline
 * are trimmed. A whole number inside WEIGHT_MIN..WEIGHT_MAX.
 */
export function parseManualWeight(text: string): number {
  const s = text.trim();
  if (!/^[+-]?\d+$/.test(s)) {
    throw lnlbError('LNLB_ERR_WEIGHT_RANGE', `${s === '' ? 'no weight given' : `${JSON.stringify(s)} is not a weight`}: expected a whole number in ${RANGE} (${WEIGHT_MIN} = idle, ${WEIGHT_MAX} = busiest)`);
  }
  const n = Number(s);
  if (n < WEIGHT_MIN || n > WEIGHT_MAX) throw lnlbError('LNLB_ERR_WEIGHT_RANGE', `weight ${s} is outside ${RANGE} (${WEIGHT_MIN} = idle, ${WEIGHT_MAX} = busiest)`);
  return n;
}

/** Reads a whole stream (process.stdin) and parses it as a manual weight. */
export async function readManualWeight(input: AsyncIterable<string | Uint8Array>): Promise<number> {
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    // A weight is at most a few characters; do not buffer an endless pipe.
    if (text.length > 64) throw lnlbError('LNLB_ERR_WEIGHT_RANGE', `standard input is not a weight (more than 64 characters): expected a whole number in ${RANGE}`);
  }
  return parseManualWeight(text + decoder.decode());
}

/**
 * One interface's weight setting: its mode and the operator's manual weight. The admin socket
 * and the config file both go through `setMode` and `setManual`, so they apply the same rule:
 * a manual weight is refused unless the mode is manual (LNLB's rule). Switching away from
 * manual keeps the manual weight for when the mode comes back.
 */
export class WeightSource {
  readonly ifName: string;
  #mode: WeightMode;
  #manual: number | undefined;

  constructor(ifName: string, mode: WeightMode = DEFAULT_WEIGHT_MODE) {
    this.ifName = ifName;
    this.#mode = mode;
  }

  get mode(): WeightMode {
    return this.#mode;
  }

  /** The operator's weight, if one was set. */
  get manual(): number | undefined {
    return this.#manual;
  }

  setMode(text: string): WeightMode {
    this.#mode = parseWeightMode(text);
    return this.#mode;
  }

  /** Sets the manual weight from the operator's text; refused unless the mode is manual. */
  setManual(text: string): number {
    if (this.#mode !== 'manual') {
      throw lnlbError(
        'LNLB_ERR_WEIGHT_NOT_MANUAL',
        `${this.ifName} takes its weight from ${this.#mode}, so a manual weight does not apply: switch first with \`lnlbctl weight_mode ${this.ifName} manual\``,
      );
    }
    this.#manual = parseManualWeight(text);
    return this.#manual;
  }

  /** This node's weight now (reads /proc unless the mode is manual). */
  read(): number {
    return readWeight(this.#mode, this.#manual);
  }
}
