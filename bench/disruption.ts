/**
 * Disruption: the fraction of 100k untracked sources that change owner when one of N equal
 * nodes leaves or one joins, N = 2…32, for each election, against the ideal (1/N and 1/(N+1)).
 * Pure computation: the same election code the actors run. The bucket election's tables come
 * as the daemons' do (cluster/bucket-ledger.ts): the base view's canonical table, and each
 * change rebalanced from it (rebalanceBuckets), not a table computed from the new view alone.
 */

import { canonicalBuckets, createBucketTable, rebalanceBuckets, type BucketTable } from '../src/cluster/buckets.js';
import { createElection, ELECTIONS, type ElectionName } from '../src/cluster/election.js';
import { electionHash } from '../src/cluster/hash.js';
import { fmt, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

interface Members {
  count: number;
  ids: number[];
  weights: number[];
  macs: number[];
}

function members(n: number): Members {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  return { count: n, ids, weights: ids.map(() => 1), macs: ids.flatMap((id) => [2, 0, 0, 0, id >> 8, id & 0xff]) };
}

function without(m: Members, index: number): Members {
  return {
    count: m.count - 1,
    ids: m.ids.filter((_, i) => i !== index),
    weights: m.weights.filter((_, i) => i !== index),
    macs: m.macs.filter((_, b) => Math.floor(b / 6) !== index),
  };
}

export interface DisruptionPoint {
  n: number;
  removal: number;
  join: number;
}

export function measureDisruption(name: ElectionName, sources: number, maxN = 32): DisruptionPoint[] {
  const hashes = Int32Array.from({ length: sources }, (_, i) => electionHash((0x0a000000 + i * 7919) >>> 0, 0));
  const election = createElection(name);
  const owners = (m: Members, table?: BucketTable): Int32Array => {
    election.rebuild(table === undefined ? m : { ...m, bucketOwners: table.owners });
    const out = new Int32Array(sources);
    for (let s = 0; s < sources; s++) out[s] = election.electOwner(hashes[s]! >>> 0);
    return out;
  };
  const moved = (a: Int32Array, b: Int32Array): number => {
    let n = 0;
    for (let s = 0; s < sources; s++) if (a[s] !== b[s]) n++;
    return n / sources;
  };
  const points: DisruptionPoint[] = [];
  for (let n = 2; n <= maxN; n++) {
    const all = members(n + 1);
    const base = without(all, n);
    const smaller = without(base, n >> 1);
    if (name === 'bucket') {
      // The daemons' way: the next table rebalanced from the one every member agreed on.
      const from = createBucketTable();
      canonicalBuckets(base, from);
      const after = (m: Members): BucketTable => {
        const t = createBucketTable();
        rebalanceBuckets(from, m, t);
        return t;
      };
      const before = owners(base, from);
      points.push({ n, removal: moved(before, owners(smaller, after(smaller))) / (1 / n), join: moved(before, owners(all, after(all))) / (1 / (n + 1)) });
      continue;
    }
    const before = owners(base);
    points.push({
      n,
      removal: moved(before, owners(smaller)) / (1 / n),
      join: moved(before, owners(all)) / (1 / (n + 1)),
    });
  }
  return points;
}

/** The election as the table names it: the original LNLB's is there for comparison. */
const title = (name: string): string => (name === 'lnlb' ? 'lnlb (the original)' : name);

export async function benchDisruption(o: BenchOptions): Promise<BenchResult> {
  const sources = 100_000;
  const rows: BenchRow[] = [];
  const json: Record<string, DisruptionPoint[]> = {};
  for (const name of ELECTIONS) {
    o.progress(`disruption: ${name} election, N = 2…32 on ${sources} sources`);
    const points = measureDisruption(name, sources);
    json[name] = points;
    const worstRemoval = Math.max(...points.map((p) => p.removal));
    const worstJoin = Math.max(...points.map((p) => p.join));
    const at = (n: number): DisruptionPoint => points.find((p) => p.n === n)!;
    rows.push({
      figure: `${title(name)}: one of N leaves, × ideal`,
      note: `the share of ${fmt(sources)} untracked sources that change owner when one of N equal nodes leaves, as a multiple of the ideal 1/N (only the leaver's move): the worst over N = 2…32, in brackets at N = 3 / N = 32; ref: 1, the ideal`,
      lnlb: `${fmt(worstRemoval, 3)} (${fmt(at(3).removal, 2)} / ${fmt(at(32).removal, 2)})`,
      reference: '1 (ideal)',
      ratio: `${fmt(worstRemoval, 2)}×`,
      goal: name === 'lnlb' ? '' : '≤ 1.1× ideal',
      ...(name === 'lnlb' ? {} : { met: worstRemoval <= 1.1 }),
    });
    rows.push({
      figure: `${title(name)}: one joins N, × ideal`,
      note: `the share of ${fmt(sources)} untracked sources that change owner when one node joins N equal ones, as a multiple of the ideal 1/(N+1) (only the newcomer's share moves): the worst over N = 2…32, in brackets at N = 3 / N = 32; ref: 1, the ideal`,
      lnlb: `${fmt(worstJoin, 3)} (${fmt(at(3).join, 2)} / ${fmt(at(32).join, 2)})`,
      reference: '1 (ideal)',
      ratio: `${fmt(worstJoin, 2)}×`,
      goal: name === 'lnlb' ? '' : '≤ 1.1× ideal',
      ...(name === 'lnlb' ? {} : { met: worstJoin <= 1.1 }),
    });
  }
  return { rows, json };
}
