// The bulk pool (src/main/bulk-pool.ts) with its real piscina thread: a state encoded there
// decodes to what the actors' snapshots held, the snapshots' buffers moved (not copied) to
// it; a conntrack listing comes back as the JSON the pure listing gives; a released pool
// refuses work.
import test from 'ava';
import { BUILTIN_HANDLERS } from '../../../src/handlers/loader.js';
import { readTrackerState, SNAPSHOT_WORDS } from '../../../src/handlers/tracker-state.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { BulkPool } from '../../../src/main/bulk-pool.js';
import { conntrackListing } from '../../../src/workers/conntrack-listing.js';
import { sourceIpHandler } from '../../../src/handlers/default.js';

const NOW = 2_000_000;
const OWNERS: Record<number, string> = { 1: '02:00:00:00:00:01', 2: '02:00:00:00:00:02' };

/** One actor's packed shard from [source, owner id, seconds since last seen]. */
function shard(rows: [string, number, number][]): Uint32Array {
  const out = new Uint32Array(rows.length * SNAPSHOT_WORDS);
  rows.forEach(([source, owner, age], i) => out.set([parseIPv4(source), 0, owner, NOW - age], i * SNAPSHOT_WORDS));
  return out;
}

test('a state encoded in the pool decodes to the snapshots it was given; their buffers moved there', async (t) => {
  const pool = BulkPool.acquire();
  try {
    const actors = [shard([['10.1.0.1', 1, 5], ['10.1.0.2', 2, 9]]), shard([['10.1.0.3', 1, 0], ['10.1.0.4', 7, 1]])];
    const [state] = await pool.encodeStates({ snapshots: [actors], protocols: [0], owners: OWNERS, nowSeconds: NOW });
    t.truthy(state);
    t.is(state!.protocol, 0);
    t.is(state!.entries, 3, 'owner 7 is no member: left out');
    t.true(actors.every((a) => a.length === 0), 'the snapshots were moved to the pool, not copied');
    const ids = new Map([['02:00:00:00:00:01', 11], ['02:00:00:00:00:02', 12]]);
    const decoded = readTrackerState(state!.state, { nowSeconds: NOW, ownerId: (mac) => ids.get([...mac].map((b) => b.toString(16).padStart(2, '0')).join(':')), shardOf: () => 0 }, 1);
    const sources = [];
    for (let k = 0; k < decoded.entries.length; k += SNAPSHOT_WORDS) sources.push([decoded.entries[k], decoded.entries[k + 2]]);
    t.deepEqual(sources.sort(), [[parseIPv4('10.1.0.1'), 11], [parseIPv4('10.1.0.2'), 12], [parseIPv4('10.1.0.3'), 11]].sort());
  } finally {
    await pool.release();
  }
});

test('a conntrack listing built in the pool is the JSON of the pure listing', async (t) => {
  const pool = BulkPool.acquire();
  try {
    const listing = () => [[{ total: 2, entries: shard([['10.2.0.1', 1, 3], ['10.2.0.2', 2, 40]]) }]];
    const members: [string, { name: string; address: string }][] = [['02:00:00:00:00:01', { name: 'alpha', address: '10.0.0.1' }]];
    const common = { interfaceName: 'nlb0', idleTimeoutSeconds: [60], owners: OWNERS, self: OWNERS[1]!, now: NOW, limit: 10 };
    const bytes = await pool.conntrackJson({ ...common, listings: listing(), specs: [...BUILTIN_HANDLERS], members });
    const expected = conntrackListing({ ...common, listings: listing(), handlers: [sourceIpHandler], members: new Map(members) });
    t.deepEqual(JSON.parse(new TextDecoder().decode(bytes)), JSON.parse(JSON.stringify(expected)));
    t.is(expected.entries[0]?.nodeName, 'alpha');
  } finally {
    await pool.release();
  }
});

test('a released handle refuses work, naming why', async (t) => {
  const pool = BulkPool.acquire();
  await pool.release();
  const refused = await t.throwsAsync(pool.encodeStates({ snapshots: [], protocols: [], owners: {}, nowSeconds: NOW }));
  t.is((refused as { code?: string }).code, 'LNLB_ERR_WORKER_FAILED');
  t.regex(refused!.message, /released/);
});
