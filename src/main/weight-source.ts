/**
 * Weight sources, per cluster interface: where a node's weight comes from before it goes into
 * a HEARTBEAT. A weight is a *capacity*, as in keepalived, LVS and Windows NLB: the election
 * gives a node a share of new clients proportional to its weight, so a node of weight 200 gets
 * twice the new clients of one of weight 100. The measured modes turn load into capacity: the
 * busier a node, the lower its weight.
 *
 *   mode        source                                weight (capacity)
 *   loadavg     /proc/loadavg, 1-minute (default)     round(100 / (1 + load / cores))
 *   loadavg5    /proc/loadavg, 5-minute               same
 *   loadavg15   /proc/loadavg, 15-minute              same
 *   freemem     /proc/meminfo, fraction available     round(100 × MemAvailable / MemTotal)
 *   fixed       the operator (`lnlbctl set_weight`)   as given (100 until set)
 *   every result is clamped to [WEIGHT_MIN, WEIGHT_MAX] = [1, 1000].
 *
 * 100 is the unit: an idle node under loadavg, a node with all its memory free under freemem,
 * and a fixed node whose operator gave no weight all weigh 100, so mixing modes shares alike
 * while the nodes are idle; a fixed weight of 200 is "twice an idle node".
 *
 * Before capacities, lnlb (like LNLB) read a weight as a load (share ∝ 1 / weight) and called
 * the operator's mode `manual`. That mode name is refused (LNLB_ERR_WEIGHT_MANUAL_RETIRED) in
 * flags, config files, createNode and `lnlbctl weight_mode`, so a script or config written
 * for loads fails with a message rather than silently inverting its weights; every manual
 * weight went through that mode, so none slips through.
 *
 * The range. The wire has a u16, but 0 is taken (a zero weight anywhere makes every node keep
 * its previous election table), so the floor is 1; 0xffff marks a draining node. The ceiling,
 * 1000, gives ten times an idle node and a dynamic range of 1000:1, far more than a load signal
 * is worth.
 *
 * The loadavg scaling. load / cores is the run queue per core, what "busy" means on a machine
 * of any size (a load of 4 saturates 4 cores but overloads 1). Under processor sharing, a new
 * client on a node with L runnable tasks per core runs about (1 + L) times slower than alone,
 * so 1 / (1 + L) is the rate the node can give it: that, times 100, is its capacity. An idle
 * node weighs 100, one task per core 50, three 25, nine 10: the idle node gets twice the new
 * clients of the saturated one, ten times those of the overloaded one. The "+1" matters: with
 * 100 / L two idle nodes whose loads jitter between 0.01 and 0.05 would swing five to one,
 * and since loadavg lags by a minute, so steep a response herds every new client onto
 * whichever node looked idle last round, which then is not. (These are the shares the load
 * rule gave, 1 / (100 × (1 + L)), now written as a capacity.)
 *
 * The freemem scaling: the fraction of memory available, times 100. "Available" is
 * MemAvailable / MemTotal: MemFree alone counts the page cache as used, and a long-running box
 * would look full forever. Kernels before 3.14 lack MemAvailable; there it is MemFree +
 * Buffers + Cached.
 *
 * The pure core (`computeWeight`) takes the /proc texts, so every mode is tested from fixture
 * texts; `readWeight` is the thin reader. It reads synchronously: once per heartbeat, two
 * small procfs files, about 10 µs, on the main thread that owns the timers anyway.
 */

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { lnlbError, type LnlbError } from '../errors.js';

export const WEIGHT_MODES = ['loadavg', 'loadavg5', 'loadavg15', 'freemem', 'fixed'] as const;
export type WeightMode = (typeof WEIGHT_MODES)[number];
export const DEFAULT_WEIGHT_MODE: WeightMode = 'loadavg';

/** The mode name of earlier versions, when a weight was a load: refused with what changed. */
export const RETIRED_WEIGHT_MODE = 'manual';

export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 1000;
/** The weight of an idle node (see above): the unit the measured modes scale to. */
export const IDLE_WEIGHT = 100;
/**
 * The weight in fixed mode before the operator sets one: an idle node's weight under the
 * measured modes, so a node just switched to fixed neither takes nor sheds more than its share.
 */
export const DEFAULT_MANUAL_WEIGHT = IDLE_WEIGHT;

export interface WeightInputs {
  /** The contents of /proc/loadavg (read by the loadavg modes only). */
  loadavgText: string;
  /** The contents of /proc/meminfo (read by freemem only). */
  meminfoText: string;
  /** CPUs this process may run on (os.availableParallelism()). */
  cores: number;
  /** The operator's weight (fixed mode only); DEFAULT_MANUAL_WEIGHT when not set. */
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
      return clampWeight(IDLE_WEIGHT / (1 + load / cores));
    }
    case 'freemem':
      return clampWeight(IDLE_WEIGHT * (1 - memoryInUse(inputs.meminfoText)));
    case 'fixed':
      return clampWeight(inputs.manual ?? DEFAULT_MANUAL_WEIGHT);
  }
}

/** Reads /proc (only the file the mode needs) and computes the weight (a capacity). */
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

/**
 * The refusal of the retired mode `manual` (`where`: how the operator wrote it), saying what
 * changed and what to write instead.
 */
export function retiredModeError(where: string): LnlbError {
  return lnlbError(
    'LNLB_ERR_WEIGHT_MANUAL_RETIRED',
    `${where}: weight mode "manual" was retired when weights became capacities: a higher weight now gets MORE new clients (as in keepalived, LVS and Windows NLB; before, it was a load and got fewer). ` +
      `Use "fixed" and give lnlbctl set_weight a capacity (100 = an idle node; 200 = twice its share); a weight written as a load must be inverted (e.g. 50 ↔ 200)`,
  );
}

/**
 * A weight mode named by the operator: `--weight-mode`, the config file's `weight-mode`,
 * `createNode`'s `weightMode` and `lnlbctl weight_mode <if> <mode>` all parse it here. `where`
 * names what gave it (the flag, or the command).
 */
export function parseWeightMode(text: string, where = 'weight_mode'): WeightMode {
  const s = text.trim();
  if ((WEIGHT_MODES as readonly string[]).includes(s)) return s as WeightMode;
  if (s === RETIRED_WEIGHT_MODE) throw retiredModeError(where); // weights were loads then: refused, not inverted silently
  throw lnlbError('LNLB_ERR_WEIGHT_MODE', `${where}: unknown weight mode ${JSON.stringify(s)}: expected one of ${WEIGHT_MODES.join(', ')}`);
}

/**
 * A fixed weight given by the operator: the argument of `set_weight`, or its standard input
 * (`echo 250 | lnlbctl set_weight nlb0 stdin`), so surrounding white space and a final newline
 * are trimmed. A whole number inside WEIGHT_MIN..WEIGHT_MAX: a capacity.
 */
const CAPACITY_HINT = `a capacity: higher gets more new clients, ${IDLE_WEIGHT} = an idle node`;
export function parseManualWeight(text: string): number {
  const s = text.trim();
  if (!/^[+-]?\d+$/.test(s)) {
    throw lnlbError('LNLB_ERR_WEIGHT_RANGE', `${s === '' ? 'no weight given' : `${JSON.stringify(s)} is not a weight`}: expected a whole number in ${RANGE} (${CAPACITY_HINT})`);
  }
  const n = Number(s);
  if (n < WEIGHT_MIN || n > WEIGHT_MAX) throw lnlbError('LNLB_ERR_WEIGHT_RANGE', `weight ${s} is outside ${RANGE} (${CAPACITY_HINT})`);
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
 * One interface's weight setting: its mode and the operator's fixed weight. The admin socket
 * and the config file both go through `setMode` and `setManual`, so they apply the same rule:
 * a fixed weight is refused unless the mode is fixed (LNLB's rule for its manual mode).
 * Switching away from fixed keeps the weight for when the mode comes back.
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

  /** Sets the fixed weight from the operator's text; refused unless the mode is fixed. */
  setManual(text: string): number {
    if (this.#mode !== 'fixed') {
      throw lnlbError(
        'LNLB_ERR_WEIGHT_NOT_MANUAL',
        `${this.ifName} takes its weight from ${this.#mode}, so a fixed weight does not apply: switch first with \`lnlbctl weight_mode ${this.ifName} fixed\``,
      );
    }
    this.#manual = parseManualWeight(text);
    return this.#manual;
  }

  /** This node's weight now (reads /proc unless the mode is fixed). */
  read(): number {
    return readWeight(this.#mode, this.#manual);
  }
}
