import test from 'ava';
import { performance } from 'node:perf_hooks';
import { LnlbError, type ErrorCode } from '../../../src/errors.js';
import { sourceIpHandler } from '../../../src/handlers/default.js';
import {
  encodeTrackerState,
  loadTrackerState,
  loadTrackerStateInto,
  restoreTracker,
  snapshotTracker,
  MAX_CLOCK_SKEW_SECONDS,
  NOT_MY_SHARD,
  saveTrackerState,
  STATE_ENTRY_BYTES,
  STATE_H_CRC,
  STATE_H_ENTRIES,
  STATE_H_FLAGS,
  STATE_H_MAGIC,
  STATE_H_OWNERS,
  STATE_HEADER_BYTES,
  STATE_OWNER_BYTES,
  stateCrc,
  type LoadOptions,
  type SaveStats,
} from '../../../src/handlers/tracker-state.js';
import { TrackingTable } from '../../../src/shm/tracking-table.js';
import { between, prng } from '../shm/fixtures/prng.js';

const NOW = 1_750_000_000;

/** Member MACs 02:00:00:00:00:0n. */
function mac(n: number): Uint8Array {
  return Uint8Array.of(2, 0, 0, 0, 0, n);
}

interface Shards {
  tables: TrackingTable[];
  sabs: SharedArrayBuffer[];
}

function shards(count: number, capacity: number, seed: number): Shards {
  const sabs = Array.from({ length: count }, (_, i) => TrackingTable.allocate(capacity, seed + i));
  return { sabs, tables: sabs.map((sab) => new TrackingTable(sab)) };
}

/** The dispatcher's rule in miniature: a hash of the key picks one of two shards. */
function shardOf2(lo: number, hi: number): number {
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 31;
}

/** The sender numbers members 1..4; the receiver numbered the same MACs differently. */
const senderMacs = new Map([1, 2, 3, 4].map((id) => [id, mac(id)] as const));
const receiverIds = new Map([
  [1, 7],
  [2, 3],
  [3, 12],
  [4, 1],
]);
const ownerMac = (id: number): Uint8Array | undefined => senderMacs.get(id);
const ownerId = (m: Uint8Array): number | undefined => (m.slice(0, 5).every((b, i) => b === (i === 0 ? 2 : 0)) ? receiverIds.get(m[5]!) : undefined);

interface Entry {
  lo: number;
  hi: number;
  owner: number;
  lastSeen: number;
}

/** `n` distinct random keys with random owners 1..4 and ages up to 30 min, into `into`. */
function fill(into: Shards, n: number, seed: number, shardOf = shardOf2): Entry[] {
  const rnd = prng(seed);
  const seen = new Set<string>();
  const out: Entry[] = [];
  while (out.length < n) {
    const lo = between(rnd, 0, 0xffff_ffff);
    const hi = between(rnd, 0, 3) === 0 ? between(rnd, 1, 65535) : 0;
    const k = `${lo}:${hi}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const e = { lo, hi, owner: between(rnd, 1, 4), lastSeen: NOW - between(rnd, 0, 1800) };
    into.tables[shardOf(lo, hi)]!.upsert(lo, hi, e.owner, e.lastSeen);
    out.push(e);
  }
  return out;
}

function options(nowSeconds: number): LoadOptions {
  return { nowSeconds, ownerId, shardOf: shardOf2 };
}

function snapshot(s: Shards): Uint8Array[] {
  return s.sabs.map((sab) => new Uint8Array(sab).slice());
}

function unchanged(s: Shards, before: Uint8Array[]): boolean {
  return s.sabs.every((sab, i) => Buffer.from(new Uint8Array(sab)).equals(before[i]!));
}

test('round trip: 100k entries across 2 shards, owners renumbered by MAC, lastSeen shifted to the receiver\'s clock', (t) => {
  const sender = shards(2, 1 << 17, 11);
  const entries = fill(sender, 100_000, 1);
  const stats: SaveStats = { saved: 0, skippedUnknownOwner: 0 };
  const bytes = saveTrackerState(sender.tables, NOW, ownerMac, stats);
  t.deepEqual(stats, { saved: 100_000, skippedUnknownOwner: 0 });
  t.is(bytes.length, STATE_HEADER_BYTES + 4 * STATE_OWNER_BYTES + 100_000 * STATE_ENTRY_BYTES);
  t.true(bytes.length / 100_000 <= 20, `${(bytes.length / 100_000).toFixed(2)} bytes an entry`);

  for (const shift of [3617, -2 * 86400]) {
    // Another capacity and hash seed, and some old entries that loading must clear.
    const receiver = shards(2, 1 << 18, 99);
    receiver.tables[0]!.upsert(1, 2, 3, NOW);
    receiver.tables[1]!.upsert(0xdeadbeef, 0, 9, NOW);
    const r = loadTrackerState(bytes, receiver.tables, options(NOW + shift));
    t.deepEqual(r, { loaded: 100_000, skippedUnknownOwner: 0, evicted: 0, senderClock: NOW, clockShiftSeconds: shift });
    t.is(receiver.tables[0]!.size + receiver.tables[1]!.size, 100_000);
    t.is(receiver.tables[0]!.find(1, 2), -1, 'the previous table was cleared');
    let wrong = 0;
    for (const e of entries) {
      const table = receiver.tables[shardOf2(e.lo, e.hi)]!;
      const slot = table.find(e.lo, e.hi);
      if (slot < 0 || table.ownerAt(slot) !== receiverIds.get(e.owner) || table.lastSeenAt(slot) !== e.lastSeen + shift) wrong++;
    }
    t.is(wrong, 0, `shift ${shift}`);
  }
});

test('the clock shift wraps like the tables\' u32 clock', (t) => {
  const senderNow = 0xffff_ff00;
  const sender = shards(1, 64, 1);
  sender.tables[0]!.upsert(10, 0, 1, senderNow - 100);
  const receiver = shards(1, 64, 2);
  const r = loadTrackerState(saveTrackerState(sender.tables, senderNow, ownerMac), receiver.tables, { nowSeconds: 0x100, ownerId, shardOf: () => 0 });
  t.is(r.clockShiftSeconds, 0x200);
  const slot = receiver.tables[0]!.find(10, 0);
  t.is(receiver.tables[0]!.lastSeenAt(slot), 0x100 - 100, 'still 100 s old');
});

test('an entry stamped after the sender\'s clock loads as seen now', (t) => {
  const sender = shards(1, 64, 1);
  sender.tables[0]!.upsert(10, 0, 1, NOW + 5);
  const receiver = shards(1, 64, 2);
  loadTrackerState(saveTrackerState(sender.tables, NOW, ownerMac), receiver.tables, { nowSeconds: NOW + 60, ownerId, shardOf: () => 0 });
  t.is(receiver.tables[0]!.lastSeenAt(receiver.tables[0]!.find(10, 0)), NOW + 60);
});

test('an empty state clears the receiver', (t) => {
  const bytes = saveTrackerState(shards(2, 64, 1).tables, NOW, ownerMac);
  t.is(bytes.length, STATE_HEADER_BYTES);
  const receiver = shards(2, 64, 3);
  receiver.tables[1]!.upsert(5, 0, 1, NOW);
  t.like(loadTrackerState(bytes, receiver.tables, options(NOW)), { loaded: 0, skippedUnknownOwner: 0 });
  t.is(receiver.tables[1]!.size, 0);
});

test('a sender more than one week off is refused and the tables are left as they were', (t) => {
  const sender = shards(2, 1024, 1);
  fill(sender, 500, 2);
  const bytes = saveTrackerState(sender.tables, NOW, ownerMac);
  const receiver = shards(2, 1024, 5);
  fill(receiver, 100, 3);
  const before = snapshot(receiver);
  for (const off of [MAX_CLOCK_SKEW_SECONDS + 1, -(MAX_CLOCK_SKEW_SECONDS + 1), 30 * 86400]) {
    const err = t.throws(() => loadTrackerState(bytes, receiver.tables, options(NOW + off)), { instanceOf: LnlbError });
    t.is(err.code, 'LNLB_ERR_STATE_CLOCK_SKEW');
    t.regex(err.message, off > 0 ? /days behind this node's, more than one week/ : /days ahead of this node's, more than one week/);
    t.true(unchanged(receiver, before), `offset ${off}`);
  }
  for (const off of [MAX_CLOCK_SKEW_SECONDS, -MAX_CLOCK_SKEW_SECONDS]) {
    t.is(loadTrackerState(bytes, receiver.tables, options(NOW + off)).loaded, 500, `exactly a week (${off}) is accepted`);
  }
});

test('owners unknown to the sender or not members here are skipped and counted', (t) => {
  const sender = shards(2, 4096, 1);
  const entries = fill(sender, 2000, 4);
  sender.tables[0]!.upsert(77, 0, 9, NOW); // id 9: the sender has no MAC for it
  const stats: SaveStats = { saved: 0, skippedUnknownOwner: 0 };
  const bytes = saveTrackerState(sender.tables, NOW, ownerMac, stats);
  t.deepEqual(stats, { saved: 2000, skippedUnknownOwner: 1 });

  // MAC 3 is not a member of the receiver's cluster.
  const notMember3 = (m: Uint8Array): number | undefined => (m[5] === 3 ? undefined : ownerId(m));
  const receiver = shards(2, 4096, 8);
  const r = loadTrackerState(bytes, receiver.tables, { nowSeconds: NOW, ownerId: notMember3, shardOf: shardOf2 });
  const of3 = entries.filter((e) => e.owner === 3).length;
  t.true(of3 > 0);
  t.like(r, { loaded: 2000 - of3, skippedUnknownOwner: of3 });
  t.is(receiver.tables[0]!.size + receiver.tables[1]!.size, 2000 - of3);
  let found3 = 0;
  for (const e of entries) if (e.owner === 3 && receiver.tables[shardOf2(e.lo, e.hi)]!.find(e.lo, e.hi) >= 0) found3++;
  t.is(found3, 0);
});

test('a shard filling past its load limit evicts, and says how many', (t) => {
  const sender = shards(1, 1024, 1);
  fill(sender, 800, 6, () => 0);
  const receiver = shards(1, 512, 2); // load limit 448
  const r = loadTrackerState(saveTrackerState(sender.tables, NOW, ownerMac), receiver.tables, { nowSeconds: NOW, ownerId, shardOf: () => 0 });
  t.like(r, { loaded: 800, evicted: 800 - 448 });
  t.is(receiver.tables[0]!.size, 448);
});

/** Recomputes the CRC after tampering, to reach the structural checks behind it. */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(STATE_H_CRC, stateCrc(bytes));
  return bytes;
}

test('corrupt buffers: random cuts, flips and tails throw only LnlbError and never touch the tables', (t) => {
  const sender = shards(2, 1024, 1);
  fill(sender, 300, 7);
  const good = saveTrackerState(sender.tables, NOW, ownerMac);
  t.true(good.length * 8 < 91_000, 'CRC32 catches every 1-3 bit error at this length');
  const receiver = shards(2, 1024, 5);
  fill(receiver, 200, 8);
  const before = snapshot(receiver);
  const seed = 0xc0ffee;
  const rnd = prng(seed);
  const codes = new Map<string, number>();
  let accepted = 0;
  let foreign = 0;
  for (let round = 0; round < 3000; round++) {
    let bad: Uint8Array;
    const kind = round % 3;
    if (kind === 0) {
      bad = good.slice(0, between(rnd, 0, good.length - 1));
    } else if (kind === 1) {
      bad = good.slice();
      // A third of the flips aim at the header and owner table, where the fields are.
      const end = between(rnd, 0, 2) === 0 ? STATE_HEADER_BYTES + 4 * STATE_OWNER_BYTES : bad.length;
      for (let f = between(rnd, 1, 3); f > 0; f--) {
        const at = between(rnd, 0, end - 1);
        bad[at] = bad[at]! ^ (1 << between(rnd, 0, 7));
      }
      if (bad.every((b, i) => b === good[i])) continue; // two flips cancelled out
    } else {
      bad = new Uint8Array(good.length + between(rnd, 1, 40));
      bad.set(good);
      for (let i = good.length; i < bad.length; i++) bad[i] = between(rnd, 0, 255);
    }
    try {
      loadTrackerState(bad, receiver.tables, options(NOW));
      accepted++;
    } catch (err) {
      if (err instanceof LnlbError) codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      else foreign++;
    }
    if (!unchanged(receiver, before)) {
      t.fail(`round ${round} (seed ${seed}) modified the tables`);
      return;
    }
  }
  t.log('refusals by code:', Object.fromEntries(codes));
  t.is(foreign, 0, 'only LnlbError');
  t.is(accepted, 0, 'every damaged buffer was refused');
  t.true((codes.get('LNLB_ERR_STATE_CORRUPT') ?? 0) > 2500);
});

test('structural lies behind a valid CRC are refused as corrupt, tables untouched', (t) => {
  const sender = shards(2, 1024, 1);
  fill(sender, 50, 9);
  const good = saveTrackerState(sender.tables, NOW, ownerMac);
  const receiver = shards(2, 1024, 5);
  fill(receiver, 20, 10);
  const before = snapshot(receiver);
  const entriesAt = STATE_HEADER_BYTES + 4 * STATE_OWNER_BYTES;
  const lies: [string, (b: DataView) => void, RegExp, ErrorCode?][] = [
    ['an owner index past the owner table', (b) => b.setUint16(entriesAt + 7 * STATE_ENTRY_BYTES + 8, 4), /entry 7 names owner 4 of 4/],
    ['one entry more than the bytes hold', (b) => b.setUint32(STATE_H_ENTRIES, 51), /4 owners and 51 entries make/],
    ['a huge owner count', (b) => b.setUint32(STATE_H_OWNERS, 0xffff_ffff), /owners and 50 entries make/],
    ['unknown flags', (b) => b.setUint16(STATE_H_FLAGS, 1), /unknown flags 0x1/],
    ['another magic', (b) => b.setUint32(STATE_H_MAGIC, 0x4c4e5454), /magic "LNTS"/],
    ['a future version', (b) => b.setUint16(4, 2), /format version 2 and this node reads version 1/, 'LNLB_ERR_STATE_VERSION'],
  ];
  for (const [title, lie, message, code] of lies) {
    const bad = good.slice();
    lie(new DataView(bad.buffer));
    reseal(bad);
    const err = t.throws(() => loadTrackerState(bad, receiver.tables, options(NOW)), { instanceOf: LnlbError }, title);
    t.is(err.code, code ?? 'LNLB_ERR_STATE_CORRUPT', title);
    t.regex(err.message, message, title);
    t.true(unchanged(receiver, before), title);
  }
  const short = t.throws(() => loadTrackerState(good.subarray(0, 10), receiver.tables, options(NOW)), { instanceOf: LnlbError });
  t.regex(short.message, /^tracking state refused \(10 bytes\): shorter than the 24-byte header; the tracking tables were left as they were/);
});

test('a buffer that is a view into a larger one loads the same', (t) => {
  const sender = shards(1, 256, 1);
  fill(sender, 100, 12, () => 0);
  const bytes = saveTrackerState(sender.tables, NOW, ownerMac);
  const framed = new Uint8Array(bytes.length + 37);
  framed.set(bytes, 13);
  const receiver = shards(1, 256, 2);
  t.is(loadTrackerState(framed.subarray(13, 13 + bytes.length), receiver.tables, { nowSeconds: NOW, ownerId, shardOf: () => 0 }).loaded, 100);
});

test('1M entries: save and load time (logged, not asserted)', (t) => {
  const n = 1_000_000;
  const sender = shards(2, 1 << 20, 21);
  fill(sender, n, 13);
  let t0 = performance.now();
  const bytes = saveTrackerState(sender.tables, NOW, ownerMac);
  const saveMs = performance.now() - t0;
  const receiver = shards(2, 1 << 20, 42);
  t0 = performance.now();
  const r = loadTrackerState(bytes, receiver.tables, options(NOW + 5));
  const loadMs = performance.now() - t0;
  t.is(r.loaded, n);
  t.is(r.evicted, 0);
  t.log(`1M entries, 2 shards: save ${saveMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms, ${(bytes.length / 1e6).toFixed(1)} MB (${(bytes.length / n).toFixed(2)} bytes an entry)`);
});

test('each loader can take only its own shard of a broadcast state (NOT_MY_SHARD)', (t) => {
  const sender = shards(2, 1 << 14, 1);
  const entries = fill(sender, 5000, 77);
  const state = saveTrackerState(sender.tables, NOW, ownerMac);
  const receivers = [shards(1, 1 << 14, 2), shards(1, 1 << 14, 3)];
  let loaded = 0;
  receivers.forEach((r, mine) => {
    const result = loadTrackerState(state, r.tables, {
      nowSeconds: NOW,
      ownerId,
      shardOf: (lo, hi) => (shardOf2(lo, hi) === mine ? 0 : NOT_MY_SHARD),
    });
    loaded += result.loaded;
  });
  t.is(loaded, entries.length);
  for (const e of entries) t.true(receivers[shardOf2(e.lo, e.hi)]!.tables[0]!.find(e.lo, e.hi) >= 0);
  t.is(receivers[0]!.tables[0]!.size + receivers[1]!.tables[0]!.size, entries.length);
});

test('load into a tracker: a loadStatus that throws midway rolls the shard back to what it held; a good load returns the previous contents for a later rollback', (t) => {
  const make = () => sourceIpHandler.createTracker({ memory: TrackingTable.allocate(1024), capacity: 1024, idleTimeoutSeconds: 1800 });
  const sender = make();
  for (let i = 1; i <= 50; i++) sender.assigned(0x0a000000 + i, 0, 1 + (i % 2), 0, NOW - 10);
  const bytes = encodeTrackerState((visit) => sender.saveStatus(visit), 50, NOW, (id) => mac(id));

  const receiver = make();
  receiver.assigned(0x0b000001, 0, 3, 0, NOW);
  const before = [...snapshotTracker(receiver)];
  const options = { nowSeconds: NOW, ownerId: (m: Uint8Array) => m[5], mine: () => true };
  let calls = 0;
  const flaky = Object.create(receiver) as typeof receiver;
  flaky.loadStatus = (lo, hi, owner, lastSeen) => {
    if (++calls === 20) throw new Error('disk on fire');
    receiver.loadStatus(lo, hi, owner, lastSeen);
  };
  flaky.clear = () => receiver.clear();
  t.throws(() => loadTrackerStateInto(bytes, flaky, options), { message: 'disk on fire' });
  t.deepEqual([...snapshotTracker(receiver)], before, 'rolled back to the previous contents');

  const result = loadTrackerStateInto(bytes, receiver, options);
  t.is(result.loaded, 50);
  t.is(receiver.size, 50);
  t.deepEqual([...result.previous], before);
  restoreTracker(receiver, result.previous); // another actor refused the same state
  t.deepEqual([...snapshotTracker(receiver)], before);
});
