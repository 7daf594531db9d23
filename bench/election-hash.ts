/**
 * What keying the election costs: the election hash alone (HalfSipHash-1-3 under the election
 * key vs the unkeyed murmur mix), and the dispatcher's per-frame cost in the replay with a keyed
 * and an unkeyed cluster, alternated in the same run. No goal: a cost is reported.
 */

import { randomBytes } from 'node:crypto';
import { deriveElectionKey, electionHash, keyedElectionHash } from '../src/cluster/hash.js';
import { runReplay } from './replay.js';
import { fmtSpread, ratio, spread, type BenchOptions, type BenchResult } from './report.js';

/** ns per hash over `count` sources (the sum is returned so that the loop is not optimized away). */
function hashNs(count: number, key: Uint32Array | undefined): { ns: number; sum: number } {
  let sum = 0;
  const k0 = key?.[0] ?? 0;
  const k1 = key?.[1] ?? 0;
  const start = process.hrtime.bigint();
  if (key === undefined) for (let i = 0; i < count; i++) sum = (sum + electionHash(0x0a000000 + i, i & 0xffff)) | 0;
  else for (let i = 0; i < count; i++) sum = (sum + keyedElectionHash(k0, k1, 0x0a000000 + i, i & 0xffff)) | 0;
  return { ns: Number(process.hrtime.bigint() - start) / count, sum };
}

export async function benchElectionHash(o: BenchOptions): Promise<BenchResult> {
  const key = deriveElectionKey(randomBytes(32));
  const hashes = o.quick ? 2_000_000 : 20_000_000;
  const frames = o.quick ? 300_000 : 3_000_000;
  const runs = o.quick ? 3 : 5;
  hashNs(hashes, undefined); // warm-up, both
  hashNs(hashes, key);
  const keyedHash: number[] = [];
  const plainHash: number[] = [];
  const keyedFrame: number[] = [];
  const plainFrame: number[] = [];
  for (let r = 0; r < runs; r++) {
    o.progress(`election-hash: run ${r + 1} of ${runs}`);
    plainHash.push(hashNs(hashes, undefined).ns);
    keyedHash.push(hashNs(hashes, key).ns);
    plainFrame.push(runReplay(1, 60, frames).dispatcherNsPerFrame);
    keyedFrame.push(runReplay(1, 60, frames, 65536, key).dispatcherNsPerFrame);
  }
  const kh = spread(keyedHash);
  const ph = spread(plainHash);
  const kf = spread(keyedFrame);
  const pf = spread(plainFrame);
  return {
    rows: [
      { figure: 'election hash ns/key: keyed HalfSipHash-1-3 (ref: unkeyed mix)', lnlb: fmtSpread(kh, 2), reference: fmtSpread(ph, 2), ratio: ratio(kh.median, ph.median), goal: '' },
      { figure: 'replay 60 B, 1 actor: dispatcher ns/frame, keyed cluster (ref: unkeyed)', lnlb: fmtSpread(kf, 1), reference: fmtSpread(pf, 1), ratio: ratio(kf.median, pf.median), goal: '' },
    ],
    json: { keyedHashNs: kh, unkeyedHashNs: ph, keyedDispatcherNsPerFrame: kf, unkeyedDispatcherNsPerFrame: pf },
  };
}
