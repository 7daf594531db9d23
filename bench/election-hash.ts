/**
 * What keying the election costs, keyed vs unkeyed in the same run, alternated:
 *
 *   hash          the election hash alone (HalfSipHash-1-3 under the election key vs the
 *                 unkeyed murmur mix)
 *   new key       what an actor does for a key it does not track: hash + rendezvous election
 *                 over 3 members
 *   replay        dispatcher + actor per frame in the replay (steady state: every source
 *                 tracked, so the election, and its hash, is not on the path)
 *
 * No goal: a cost is reported.
 */

import { randomBytes } from 'node:crypto';
import { RendezvousElection } from '../src/cluster/election.js';
import { deriveElectionKey, electionHash, keyedElectionHash } from '../src/cluster/hash.js';
import { UDP_TO_VIP } from '../test/fixtures/datapath-packets.js';
import { runReplay } from './replay.js';
import { fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type Spread } from './report.js';

const MACS = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 3];

/** ns per key over `count` sources, hash only or hash + election (the sum keeps the loop from being optimized away). */
function perKeyNs(count: number, key: Uint32Array | undefined, elect: RendezvousElection | undefined): number {
  let sum = 0;
  const k0 = key?.[0] ?? 0;
  const k1 = key?.[1] ?? 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const src = 0x0a000000 + i;
    const h = key === undefined ? electionHash(src, 0) : keyedElectionHash(k0, k1, src, 0);
    sum = (sum + (elect === undefined ? h : elect.electOwner(h))) | 0;
  }
  const ns = Number(process.hrtime.bigint() - start) / count;
  return sum === 0.5 ? Number.NaN : ns; // never true: sum is an integer
}

export async function benchElectionHash(o: BenchOptions): Promise<BenchResult> {
  const key = deriveElectionKey(randomBytes(32));
  const election = new RendezvousElection();
  election.rebuild({ count: 3, ids: [1, 2, 3], weights: [1, 1, 1], macs: MACS });
  const keys = o.quick ? 2_000_000 : 20_000_000;
  const frames = o.quick ? 300_000 : 3_000_000;
  const runs = o.quick ? 3 : 5;
  for (const k of [undefined, key]) perKeyNs(keys, k, election); // warm-up
  const samples = { hashKeyed: [] as number[], hashPlain: [] as number[], newKeyed: [] as number[], newPlain: [] as number[], frameKeyed: [] as number[], framePlain: [] as number[] };
  for (let r = 0; r < runs; r++) {
    o.progress(`election-hash: run ${r + 1} of ${runs}`);
    samples.hashPlain.push(perKeyNs(keys, undefined, undefined));
    samples.hashKeyed.push(perKeyNs(keys, key, undefined));
    samples.newPlain.push(perKeyNs(keys, undefined, election));
    samples.newKeyed.push(perKeyNs(keys, key, election));
    const plain = runReplay(1, UDP_TO_VIP, frames);
    const keyed = runReplay(1, UDP_TO_VIP, frames, 65536, key);
    samples.framePlain.push(plain.dispatcherNsPerFrame + plain.actorNsPerFrame);
    samples.frameKeyed.push(keyed.dispatcherNsPerFrame + keyed.actorNsPerFrame);
  }
  const s = Object.fromEntries(Object.entries(samples).map(([name, v]) => [name, spread(v)])) as Record<keyof typeof samples, Spread>;
  return {
    rows: [
      { figure: 'hash ns/key, keyed', note: 'the election hash of one key: keyed HalfSipHash-1-3, as in a keyed cluster (the default); ref: the unkeyed mix', lnlb: fmtSpread(s.hashKeyed, 2), reference: fmtSpread(s.hashPlain, 2), ratio: ratio(s.hashKeyed.median, s.hashPlain.median), goal: '' },
      { figure: 'new key: hash + rendezvous, ns, keyed', note: 'a new key elected: hash + rendezvous over 3 members, ns, keyed; ref: the same unkeyed', lnlb: fmtSpread(s.newKeyed, 1), reference: fmtSpread(s.newPlain, 1), ratio: ratio(s.newKeyed.median, s.newPlain.median), goal: '' },
      { figure: 'replay 60 B: ns/frame, keyed', note: 'a 60 B UDP frame replayed through dispatcher and actor (1 actor) in a keyed cluster, ns; ref: the same unkeyed', lnlb: fmtSpread(s.frameKeyed, 1), reference: fmtSpread(s.framePlain, 1), ratio: ratio(s.frameKeyed.median, s.framePlain.median), goal: '' },
    ],
    json: s,
  };
}
