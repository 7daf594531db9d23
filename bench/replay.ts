/**
 * Per-frame cost without the kernel: frames replayed from memory through the dispatcher and
 * the actors of one node of a 3-node view, in one thread. Reference in the same run: the
 * memory source alone (laying the frames out in its buffer, as the kernel fills its ring), so the ratio is what our
 * classification adds on top of touching the bytes.
 *
 * The frames are the unit tests' packet fixtures (test/fixtures/datapath-packets.ts), each
 * from many sources: the headline figures replay the smallest UDP datagram by actor count,
 * then every fixture of the table is timed on its own, so each verdict the tests check has
 * its cost beside it.
 */

import { parseIPv4 } from '../src/net/ipv4.js';
import { META_WORDS } from '../src/port/native.js';
import { MemoryFrameSource } from '../src/workers/ports.js';
import { DATAPATH_PACKETS, UDP6_TO_VIP, UDP_TO_VIP, type DatapathPacket } from '../test/fixtures/datapath-packets.js';
import { deriveElectionKey } from '../src/cluster/hash.js';
import { VNET_HDR_LEN } from '../test/fixtures/frames.js';
import { makeNode, publish, runAll } from '../test/unit/workers/fixtures/sim.js';
import { fmtSpread, ratio, spread, type BenchOptions, type BenchResult, type BenchRow } from './report.js';

export interface ReplayResult {
  /** The packet fixture replayed (its description in the table). */
  packet: string;
  actors: number;
  /** Ethernet bytes of a frame (the virtio-net header not counted). */
  frameBytes: number;
  frames: number;
  /** Dispatcher + actors, the source's copy included. */
  nsPerFrame: number;
  /** The dispatcher alone (reading the source, parsing, hashing, copying into the rings; with one actor, deciding too). */
  dispatcherNsPerFrame: number;
  /** The actors alone (lookup, election, decision), per frame an actor handles. */
  actorNsPerFrame: number;
  referenceNsPerFrame: number;
}

/** The fixture from `count` client addresses (10.1.0.0 up), built before anything is timed. */
function frameSet(packet: DatapathPacket, count: number): Uint8Array[] {
  const base = parseIPv4('10.1.0.0');
  return Array.from({ length: count }, (_, i) => packet.frame(base + i));
}

function referenceNs(frames: Uint8Array[], total: number): number {
  const source = new MemoryFrameSource(frames, total);
  const meta = new Uint32Array(256 * META_WORDS);
  const start = process.hrtime.bigint();
  while (source.read(meta, 256) > 0);
  return Number(process.hrtime.bigint() - start) / total;
}

/** `electionKey`: a keyed cluster's election key (deriveElectionKey); absent: the unkeyed hash. */
export function runReplay(actorCount: number, packet: DatapathPacket, total: number, sources = 65536, electionKey?: Uint32Array): ReplayResult {
  const frames = frameSet(packet, sources);
  // Node 1 of a 3-node view, with room for every source: the unit tests' simulated node.
  // One actor: the daemon's --workers 1, the dispatcher deciding each frame itself (no ring).
  const node = makeNode(1, frames, { actorCount, direct: actorCount === 1, electionKey, trackerCapacity: 1 << 17, ringBytes: 8 << 20, keepDelivered: false });
  publish(node, [1, 2, 3]);
  const { source, dispatcher, actors } = node;
  // Warm-up: the JIT, and the steady state in which every source is already tracked.
  source.remaining = sources * 2;
  runAll(node);
  source.sent.length = 0; // ARP replies: the memory port keeps what it sends
  source.remaining = total;
  // Alternate: the dispatcher fills the rings for a while, then the actors drain them, each
  // phase timed on its own (in the daemon they run on different threads).
  let dispatcherNs = 0n;
  let actorNs = 0n;
  for (;;) {
    const t0 = process.hrtime.bigint();
    let n = 0;
    for (let batch = 0; batch < 64; batch++) n += dispatcher.pollOnce(0);
    const t1 = process.hrtime.bigint();
    for (const a of actors) a.processAvailable(1000);
    const t2 = process.hrtime.bigint();
    dispatcherNs += t1 - t0;
    actorNs += t2 - t1;
    source.sent.length = 0;
    if (n === 0) break;
  }
  const ns = Number(dispatcherNs + actorNs) / total;
  return {
    packet: packet.description,
    actors: actorCount,
    frameBytes: frames[0]!.length - VNET_HDR_LEN,
    frames: total,
    nsPerFrame: ns,
    dispatcherNsPerFrame: Number(dispatcherNs) / total,
    actorNsPerFrame: Number(actorNs) / total,
    referenceNsPerFrame: referenceNs(frames, total),
  };
}

/** Per-frame cost without the kernel, by actor count (the goal is < 150 ns per actor), then per packet fixture. */
/** What the --workers 1 rows measure. */
const WHOLE_FRAME_NOTE = 'ns per frame with --workers 1 (the dispatcher thread is the actor: reads, decides, writes to the TAP), the memory source included; ref: the memory source alone, the same frames, this run';

export async function benchReplay(o: BenchOptions): Promise<BenchResult> {
  const rows: BenchRow[] = [];
  const json: ReplayResult[] = [];
  const runs = o.quick ? 1 : 3;
  const replay = (actors: number, packet: DatapathPacket, total: number): ReplayResult[] => {
    const results: ReplayResult[] = [];
    for (let r = 0; r < runs; r++) {
      o.progress(`replay: ${packet.description}, ${actors} actor(s), run ${r + 1}`);
      results.push(runReplay(actors, packet, total));
    }
    json.push(...results);
    return results;
  };
  {
    const results = replay(1, UDP_TO_VIP, o.quick ? 300_000 : 3_000_000);
    const total = spread(results.map((x) => x.dispatcherNsPerFrame + x.actorNsPerFrame));
    const ref = spread(results.map((x) => x.referenceNsPerFrame));
    rows.push({
      figure: '60 B, --workers 1: ns/frame',
      note: WHOLE_FRAME_NOTE,
      lnlb: fmtSpread(total, 1),
      reference: fmtSpread(ref, 1),
      ratio: ratio(total.median, ref.median),
      goal: '',
    });
  }
  {
    // IPv6 beside IPv4 in a keyed cluster (the default: a key is required): an IPv6 frame adds
    // the walk of its header and the keyed identity of its 128-bit source (cluster/hash.ts).
    const key = deriveElectionKey(new Uint8Array(32).fill(7));
    const keyedRuns = (packet: DatapathPacket): ReplayResult[] => {
      const results: ReplayResult[] = [];
      for (let r = 0; r < runs; r++) {
        o.progress(`replay: ${packet.description}, keyed, run ${r + 1}`);
        results.push(runReplay(1, packet, o.quick ? 300_000 : 3_000_000, 65536, key));
      }
      json.push(...results.map((x) => ({ ...x, packet: `${x.packet}, keyed` })));
      return results;
    };
    const v4 = keyedRuns(UDP_TO_VIP);
    const v6 = keyedRuns(UDP6_TO_VIP);
    const cost = (results: ReplayResult[]) => spread(results.map((x) => x.dispatcherNsPerFrame + x.actorNsPerFrame));
    const v4Cost = cost(v4);
    const v6Cost = cost(v6);
    rows.push({
      figure: 'UDP keyed: IPv6 70 B, ns/frame',
      note: 'a UDP datagram over IPv6 (70 B, the smallest) through a keyed cluster (the default: a key is required), --workers 1, the source included; ref: the same over IPv4 (60 B), this run. IPv6 adds the walk of its header and the keyed identity of its 128-bit source',
      lnlb: fmtSpread(v6Cost, 1),
      reference: fmtSpread(v4Cost, 1),
      ratio: ratio(v6Cost.median, v4Cost.median),
      goal: '',
    });
  }
  for (const actors of [2, 4]) {
    const results = replay(actors, UDP_TO_VIP, o.quick ? 300_000 : 3_000_000);
    const dispatcher = spread(results.map((x) => x.dispatcherNsPerFrame));
    const actor = spread(results.map((x) => x.actorNsPerFrame));
    const ref = spread(results.map((x) => x.referenceNsPerFrame));
    rows.push({
      figure: `60 B, ${actors} actors: actor ns/frame`,
      note: 'ns per frame in each actor thread (takes the frame from its ring, decides, writes it to the TAP); ref: the memory source alone, this run',
      lnlb: fmtSpread(actor, 1),
      reference: fmtSpread(ref, 1),
      ratio: ratio(actor.median, ref.median),
      goal: '< 150 ns',
      met: actor.median < 150,
    });
    rows.push({
      figure: `60 B, ${actors} actors: dispatcher ns/frame`,
      note: 'ns per frame in the dispatcher thread (reads it, picks its actor, hands it over), the memory source included; ref: the memory source alone, this run',
      lnlb: fmtSpread(dispatcher, 1),
      reference: fmtSpread(ref, 1),
      ratio: ratio(dispatcher.median, ref.median),
      goal: '',
    });
  }
  for (const packet of DATAPATH_PACKETS) {
    const results = replay(1, packet, o.quick ? 100_000 : 1_000_000);
    const total = spread(results.map((x) => x.dispatcherNsPerFrame + x.actorNsPerFrame));
    const ref = spread(results.map((x) => x.referenceNsPerFrame));
    rows.push({
      figure: `${packet.verdict}: ${packet.description}`,
      note: WHOLE_FRAME_NOTE,
      lnlb: fmtSpread(total, 1),
      reference: fmtSpread(ref, 1),
      ratio: ratio(total.median, ref.median),
      goal: '',
    });
  }
  return { rows, json };
}
