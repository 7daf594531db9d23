/**
 * Tracker lookups per second for one actor (one actor = one thread): the default, tcp and udp
 * trackers, each on one shard sized for 1M flows with one actor (shardSlots, as the daemon
 * sizes it) and filled with 1M random keys, i.e. at the table's 7/8 load limit, its worst
 * steady state. Three rates each:
 *
 *   assigned      inserting the 1M keys into the empty shard (tcp: as SYNs)
 *   hits          isRelated on every key, in a random order (the refresh path)
 *   misses        isRelated on 1M keys not in the shard (a new flow's first frame)
 *
 * Reference, same run, same keys: a JS Map<number, number> (key = lo × 65536 + (hi & 0xffff),
 * a safe integer, no BigInt): Map.set for the inserts, Map.get for hits and misses. The Map
 * lives in the thread's heap and cannot be shared, the shard is a SharedArrayBuffer other
 * threads read; the ratio is what sharing costs, or saves. No goal: a rate is reported, not
 * judged.
 */

import { sourceIpHandler } from '../src/handlers/default.js';
import { UNTRACKED, type ProtocolHandler, type Tracker } from '../src/handlers/handler.js';
import { TCP_SYN, tcpHandler } from '../src/handlers/tcp.js';
import { udpHandler } from '../src/handlers/udp.js';
import { DEFAULT_TABLE_ENTRIES, shardSlots } from '../src/workers/datapath.js';
import { fmt, fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type BenchRow, type Spread } from './report.js';

const FLOWS = DEFAULT_TABLE_ENTRIES;
const NOW = 1_000_000;
const OPS = ['assigned', 'hits', 'misses'] as const;
type Op = (typeof OPS)[number];

const OP_TEXT: Record<Op, { what: string; ref: string }> = {
  assigned: { what: 'assigned, filling it', ref: 'Map.set' },
  hits: { what: 'isRelated hits, random order', ref: 'Map.get, hits' },
  misses: { what: 'isRelated misses', ref: 'Map.get, misses' },
};

interface Keys {
  lo: Uint32Array;
  hi: Uint32Array;
  /** The same keys, shuffled: lookups must not walk the table in insertion order. */
  hitLo: Uint32Array;
  hitHi: Uint32Array;
  missLo: Uint32Array;
  missHi: Uint32Array;
}

/** xorshift32: the same keys every run, so runs compare. */
function randomWords(count: number, seed: number): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed | 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

function makeKeys(count: number, portless: boolean): Keys {
  const lo = randomWords(count, 0x1234567);
  const hi = portless ? new Uint32Array(count) : randomWords(count, 0x7654321);
  const order = randomWords(count, 0x2468ace);
  const perm = new Uint32Array(count);
  for (let i = 0; i < count; i++) perm[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = order[i]! % (i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  const hitLo = new Uint32Array(count);
  const hitHi = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    hitLo[i] = lo[perm[i]!]!;
    hitHi[i] = hi[perm[i]!]!;
  }
  return { lo, hi, hitLo, hitHi, missLo: randomWords(count, 0x13579bd), missHi: portless ? new Uint32Array(count) : randomWords(count, 0xfdb9753) };
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** One fill and the two lookup passes on `tracker`, cleared first; rates in operations/s. */
function measureTracker(tracker: Tracker, keys: Keys, insertFlags: number): Record<Op, number> {
  tracker.clear();
  const n = keys.lo.length;
  const { lo, hi, hitLo, hitHi, missLo, missHi } = keys;
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) tracker.assigned(lo[i]!, hi[i]!, 1 + (i & 3), insertFlags, NOW);
  const assigned = n / seconds(t);

  let found = 0;
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (tracker.isRelated(hitLo[i]!, hitHi[i]!, 0, NOW) !== UNTRACKED) found++;
  const hits = n / seconds(t);

  let missed = 0;
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (tracker.isRelated(missLo[i]!, missHi[i]!, 0, NOW) === UNTRACKED) missed++;
  const misses = n / seconds(t);

  // Random keys repeat now and then (a birthday collision in 1M), not more: anything else is a bug.
  if (found < n * 0.999 || missed < n * 0.999) throw new Error(`lookups: ${found} of ${n} keys found, ${missed} of ${n} absent keys missed`);
  if (tracker.evictions > 0) throw new Error(`lookups: ${tracker.evictions} evictions filling a shard sized for ${n} flows`);
  return { assigned, hits, misses };
}

function measureMap(keys: Keys): Record<Op, number> {
  const n = keys.lo.length;
  const mapKey = (lo: Uint32Array, hi: Uint32Array): Float64Array => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = lo[i]! * 65536 + (hi[i]! & 0xffff);
    return out;
  };
  const fill = mapKey(keys.lo, keys.hi);
  const hitKeys = mapKey(keys.hitLo, keys.hitHi);
  const missKeys = mapKey(keys.missLo, keys.missHi);
  const map = new Map<number, number>();
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) map.set(fill[i]!, 1 + (i & 3));
  const assigned = n / seconds(t);

  let found = 0;
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (map.get(hitKeys[i]!) !== undefined) found++;
  const hits = n / seconds(t);

  let missed = 0;
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (map.get(missKeys[i]!) === undefined) missed++;
  const misses = n / seconds(t);
  if (found < n * 0.999 || missed < n * 0.999) throw new Error(`lookups: Map found ${found}, missed ${missed} of ${n}`);
  return { assigned, hits, misses };
}

interface Subject {
  name: string;
  handler: ProtocolHandler;
  insertFlags: number;
  idleTimeoutSeconds: number;
}

const SUBJECTS: Subject[] = [
  { name: 'default', handler: sourceIpHandler, insertFlags: 0, idleTimeoutSeconds: 1800 },
  { name: 'tcp', handler: tcpHandler, insertFlags: TCP_SYN, idleTimeoutSeconds: 7440 },
  { name: 'udp', handler: udpHandler, insertFlags: 0, idleTimeoutSeconds: 120 },
];

function createTracker(handler: ProtocolHandler, capacity: number, idleTimeoutSeconds: number): Tracker {
  return handler.createTracker({ memory: new SharedArrayBuffer(handler.trackerBytes(capacity)), capacity, idleTimeoutSeconds });
}

export interface LookupsResult {
  flows: number;
  slots: number;
  reps: number;
  /** Operations per second, per subject and op (one sample a rep). */
  rates: Record<string, Record<Op, number[]>>;
}

export async function benchLookups(o: BenchOptions): Promise<BenchResult> {
  const reps = o.quick ? 1 : 5;
  const slots = shardSlots(FLOWS, 1);
  o.progress(`lookups: ${fmt(FLOWS)} random keys into one shard of ${fmt(slots)} slots, ${reps} run(s) per tracker`);
  const portKeys = makeKeys(FLOWS, false);
  // The default handler's key is the source IP alone.
  const ipKeys: Keys = { ...portKeys, hi: new Uint32Array(FLOWS), hitHi: new Uint32Array(FLOWS), missHi: new Uint32Array(FLOWS) };
  const keysOf = (s: Subject): Keys => (s.handler === sourceIpHandler ? ipKeys : portKeys);

  // Warm-up on small shards, every tracker through the same call sites (the actor calls
  // isRelated on whichever handler's tracker a frame belongs to: the sites are polymorphic there too).
  const warm = makeKeys(1 << 16, false);
  for (const s of SUBJECTS) measureTracker(createTracker(s.handler, shardSlots(1 << 16, 1), s.idleTimeoutSeconds), warm, s.insertFlags);
  measureMap(warm);

  const trackers = SUBJECTS.map((s) => createTracker(s.handler, slots, s.idleTimeoutSeconds));
  const rates: Record<string, Record<Op, number[]>> = {};
  for (const name of ['Map', ...SUBJECTS.map((s) => s.name)]) rates[name] = { assigned: [], hits: [], misses: [] };
  for (let rep = 0; rep < reps; rep++) {
    // Interleaved, so a noisy neighbour on this shared machine slows every subject alike.
    for (const [i, s] of SUBJECTS.entries()) {
      const r = measureTracker(trackers[i]!, keysOf(s), s.insertFlags);
      for (const op of OPS) rates[s.name]![op].push(r[op]);
    }
    const m = measureMap(portKeys);
    for (const op of OPS) rates.Map![op].push(m[op]);
  }

  const millions = (samples: number[]): Spread => spread(samples.map((x) => x / 1e6));
  const perSecond = (s: Spread): string => `${fmtSpread(s, 2)} M/s`;
  const rows: BenchRow[] = [];
  for (const s of SUBJECTS) {
    for (const op of OPS) {
      const mine = millions(rates[s.name]![op]);
      const ref = millions(rates.Map![op]);
      rows.push({
        figure: `${s.name} tracker: ${OP_TEXT[op].what}`,
        note: `millions of operations a second in one actor's shard of ${fmt(FLOWS)} flows (${fmt(slots)} slots), in the tracker of the handler named; ref: a JavaScript Map doing the same (${OPS.map((x) => OP_TEXT[x].ref).join('; ')}), the same keys, this run`,
        lnlb: perSecond(mine),
        reference: perSecond(ref),
        ratio: ratio(mine.median, ref.median),
        goal: '',
      });
    }
  }
  const json: LookupsResult = { flows: FLOWS, slots, reps, rates };
  return { rows, json };
}
