import test from 'ava';
import { TrackingTable } from '../../../src/shm/tracking-table.js';
import { between, prng } from './fixtures/prng.js';

/** A fixed hash seed, so a failing run replays exactly. */
function table(capacity: number, seed = 0x5eed): TrackingTable {
  return new TrackingTable(TrackingTable.allocate(capacity, seed), 0);
}

/**
 * Checks the table against itself: the size counter matches the occupied slots, no key is
 * stored twice, and every stored key is found by find() at its slot (i.e. no empty slot sits
 * between its home and its position: backward-shift deletion kept the probe chains whole).
 */
function consistent(tt: TrackingTable): string | null {
  const seen = new Set<string>();
  let n = 0;
  let problem: string | null = null;
  tt.forEach((lo, hi, _owner, _lastSeen, slot) => {
    n++;
    const k = `${lo}:${hi}`;
    if (seen.has(k)) problem ??= `duplicate ${k}`;
    seen.add(k);
    if (tt.find(lo, hi) !== slot) problem ??= `${k} at slot ${slot} not found by find()`;
  });
  if (n !== tt.size) problem ??= `size ${tt.size} but ${n} occupied slots`;
  return problem;
}

test('insert, find, touch, update and remove', (t) => {
  const tt = table(64);
  t.is(tt.capacity, 64);
  t.is(tt.loadLimit, 56);
  t.is(tt.find(1, 2), -1);
  const s = tt.upsert(0x0a000001, 443, 3, 1000);
  t.is(tt.find(0x0a000001, 443), s);
  t.is(tt.find(0x0a000001, 444), -1, 'keyHi is part of the key');
  t.is(tt.find(0x0a000002, 443), -1, 'keyLo is part of the key');
  t.is(tt.ownerAt(s), 3);
  t.is(tt.lastSeenAt(s), 1000);
  t.is(tt.keyLoAt(s), 0x0a000001);
  t.is(tt.keyHiAt(s), 443);
  tt.touch(s, 1010);
  t.is(tt.lastSeenAt(s), 1010);
  t.is(tt.upsert(0x0a000001, 443, 65535, 1020), s, 'an update keeps the slot');
  t.is(tt.ownerAt(s), 65535);
  t.is(tt.lastSeenAt(s), 1020);
  t.is(tt.size, 1);
  // Keys are u32 words: an Int32 view of the same bits finds the same entry.
  const big = tt.upsert(0xc0a80001, 0xffffffff, 1, 5);
  t.is(tt.find(0xc0a80001 | 0, -1), big);
  t.is(tt.upsert(0, 0, 0, 0) >= 0, true, 'the all-zero key is a key like any other');
  t.not(tt.find(0, 0), -1);
  t.is(tt.size, 3);
  t.true(tt.remove(0x0a000001, 443));
  t.false(tt.remove(0x0a000001, 443));
  t.is(tt.find(0x0a000001, 443), -1);
  t.is(tt.size, 2);
  t.is(consistent(tt), null);
  tt.clear();
  t.is(tt.size, 0);
  t.is(tt.find(0, 0), -1);
});

test('clear empties a table whose entries are spread over many pages, and a cleared table takes entries again', (t) => {
  const sab = TrackingTable.allocate(20_000, 7);
  const tt = new TrackingTable(sab);
  for (let k = 0; k < 5000; k += 3) tt.upsert(0x0a000000 + k * 977, k, 1, 10);
  t.true(tt.size > 1000);
  tt.clear();
  t.is(tt.size, 0);
  t.true(new Uint32Array(sab, 64).every((w) => w === 0), 'every slot zero again (past the 64-byte header)');
  t.is(tt.find(0x0a000000, 0), -1);
  t.true(tt.upsert(0x0a000000, 0, 2, 11) >= 0);
  t.is(tt.size, 1);
});

test('random operations agree with a Map model (backward-shift deletion keeps every key reachable)', (t) => {
  // Odd capacities too: probes wrap at the capacity, not at a power of two.
  for (const [capacity, keySpace, seed] of [[16, 40, 1], [64, 200, 2], [1024, 3000, 3], [128, 100_000, 4], [13, 30, 5], [1000, 2500, 6]] as const) {
    const tt = table(capacity, seed);
    const model = new Map<string, { owner: number; lastSeen: number }>();
    const rnd = prng(seed);
    let bad = 0;
    for (let op = 0; op < 60_000; op++) {
      const lo = between(rnd, 0, keySpace - 1) * 2654435761;
      const hi = between(rnd, 0, 3);
      const key = `${lo >>> 0}:${hi}`;
      const r = rnd();
      if (r < 0.45) {
        // Insert only below the load limit: eviction has its own test.
        if (model.has(key) || model.size < tt.loadLimit) {
          const owner = between(rnd, 0, 65535);
          const s = tt.upsert(lo, hi, owner, op);
          model.set(key, { owner, lastSeen: op });
          if (tt.ownerAt(s) !== owner) bad++;
        }
      } else if (r < 0.8) {
        if (tt.remove(lo, hi) !== model.delete(key)) bad++;
      } else {
        const s = tt.find(lo, hi);
        const m = model.get(key);
        if ((s >= 0) !== (m !== undefined)) bad++;
        else if (m && (tt.ownerAt(s) !== m.owner || tt.lastSeenAt(s) !== m.lastSeen)) bad++;
      }
      if (op % 5000 === 0 && consistent(tt) !== null) bad++;
    }
    t.is(bad, 0, `capacity ${capacity}`);
    t.is(tt.size, model.size);
    t.is(consistent(tt), null);
    for (const [key, m] of model) {
      const [lo, hi] = key.split(':').map(Number) as [number, number];
      const s = tt.find(lo, hi);
      if (s < 0 || tt.ownerAt(s) !== m.owner) bad++;
    }
    t.is(bad, 0, `capacity ${capacity}: every model key is in the table`);
    t.is(tt.evictions, 0);
  }
});

test('at the load limit an insert evicts the stalest entry it finds, counts it, and stays consistent', (t) => {
  const tt = table(64);
  for (let i = 0; i < tt.loadLimit; i++) tt.upsert(i, 0, 1, 1000 + i);
  t.is(tt.size, 56);
  t.is(tt.evictions, 0);
  // Updating an existing key at the limit evicts nothing.
  tt.upsert(5, 0, 2, 1100);
  t.is(tt.evictions, 0);
  const s = tt.upsert(9999, 0, 3, 2000);
  t.is(tt.size, 56);
  t.is(tt.evictions, 1);
  t.is(tt.ownerAt(s), 3);
  t.not(tt.find(9999, 0), -1);
  t.not(tt.find(5, 0), -1, 'the freshest old entry survives');
  t.is(consistent(tt), null);

  // Many more keys, time moving on: the table stays full and whole, and prefers old victims.
  const rnd = prng(77);
  let now = 3000;
  for (let i = 0; i < 20_000; i++) {
    now++;
    const key = 100_000 + i;
    tt.upsert(key, between(rnd, 0, 1), 4, now);
    if (i % 997 === 0) t.is(consistent(tt), null);
  }
  t.is(tt.size, 56);
  t.is(tt.evictions, 1 + 20_000);
  t.is(consistent(tt), null);
  let sumAge = 0;
  tt.forEach((_lo, _hi, _owner, lastSeen) => {
    sumAge += now - lastSeen;
  });
  // Random eviction would leave a mean age near 56; choosing the oldest of ~10 candidates
  // keeps the table much younger.
  t.log(`mean age of the survivors: ${(sumAge / tt.size).toFixed(1)} s`);
  t.true(sumAge / tt.size < 40, `mean age ${sumAge / tt.size}`);
});

test('expire removes idle entries incrementally, remembering where it stopped', (t) => {
  const tt = table(256);
  for (let i = 0; i < 200; i++) tt.upsert(i * 7919, i, 1, 1000 + i); // lastSeen 1000..1199
  const now = 1300;
  const idle = 150; // expired: lastSeen < 1150, i.e. i < 150
  let removed = tt.expire(now, idle, 16);
  t.true(removed <= 16, 'one call looks at 16 slots at most');
  // A removal costs one step of the budget and re-examines its slot, so a full sweep takes
  // capacity + removals steps: 26 calls of 16 cover 256 + 150.
  for (let calls = 1; calls < 26; calls++) removed += tt.expire(now, idle, 16);
  t.is(removed, 150);
  t.is(tt.expired, 150);
  t.is(tt.size, 50);
  t.is(consistent(tt), null);
  for (let i = 0; i < 200; i++) t.is(tt.find(i * 7919, i) >= 0, i >= 150, `key ${i}`);
  t.is(tt.expire(now, idle, 1000), 0, 'nothing left to expire');
  t.is(tt.expire(now + 100, idle, 256 * 2), 50, 'later, the rest');
  t.is(tt.size, 0);
});

test('expire: a single call scans at most its budget', (t) => {
  const tt = table(1024);
  for (let i = 0; i < 800; i++) tt.upsert(i, 0, 1, 0);
  const removed = tt.expire(10_000, 10, 32);
  t.true(removed <= 32 && removed > 0, `removed ${removed}`);
  t.is(tt.size, 800 - removed);
  t.is(consistent(tt), null);
});

test('ages are signed 32-bit differences: clock wrap and entries from the future are fresh', (t) => {
  const tt = table(16);
  tt.upsert(1, 0, 1, 0xfffffff0); // 16 s before the clock wraps to 5
  tt.upsert(2, 0, 1, 60); // 55 s in the future (a loaded state from a node ahead of us)
  tt.upsert(3, 0, 1, 0xffffff00); // 261 s old at now = 5
  t.is(tt.expire(5, 100, 16), 1);
  t.not(tt.find(1, 0), -1);
  t.not(tt.find(2, 0), -1);
  t.is(tt.find(3, 0), -1);
});

test('removeOwner removes every entry of a dead node and nothing else', (t) => {
  const tt = table(512);
  const rnd = prng(5);
  const owners = new Map<number, number>();
  for (let i = 0; i < 440; i++) {
    const owner = between(rnd, 1, 4);
    tt.upsert(i * 2654435761, 0, owner, i);
    owners.set(i, owner);
  }
  const dead = [...owners.values()].filter((o) => o === 2).length;
  t.is(tt.removeOwner(2), dead);
  t.is(tt.size, 440 - dead);
  t.is(consistent(tt), null);
  let wrong = 0;
  for (const [i, owner] of owners) if ((tt.find(i * 2654435761, 0) >= 0) !== (owner !== 2)) wrong++;
  t.is(wrong, 0);
  t.is(tt.removeOwner(2), 0);
});

test('removeOwnerSlice: slices of any size, upserts between them, end with -1 and the dead node\u2019s entries gone', (t) => {
  for (const budget of [1, 7, 64, 10_000]) {
    const tt = table(512);
    const rnd = prng(budget);
    for (let i = 0; i < 400; i++) tt.upsert(i * 2654435761, 0, between(rnd, 1, 4), i);
    const before = tt.size;
    let from = 0;
    let slices = 0;
    let upserted = 0;
    while (from !== -1) {
      const next = tt.removeOwnerSlice(2, from, budget);
      t.true(next === -1 || next === from + budget, `slice from ${from}: ${next}`);
      from = next;
      slices++;
      // Frames between slices: new flows of live nodes come in.
      if (slices % 5 === 0 && upserted < 40) tt.upsert((1000 + upserted++) * 2654435761, 0, 3, 500);
    }
    t.is(slices, Math.ceil(tt.capacity / budget), `budget ${budget}`);
    t.is(consistent(tt), null);
    t.is(tt.removeOwner(2), 0, 'nothing of node 2 left behind');
    t.true(tt.size < before + upserted);
  }
});

test('a second view of the same memory (another thread) sees the entries; capacity is checked', (t) => {
  const sab = new SharedArrayBuffer(64 + TrackingTable.byteLength(128));
  t.throws(() => new TrackingTable(sab, 64), { instanceOf: TypeError }, 'not initialised and no capacity');
  t.throws(() => new TrackingTable(sab, 4, 128), { instanceOf: RangeError }, 'offset not 8-aligned');
  t.throws(() => new TrackingTable(sab, 64, 7), { instanceOf: RangeError }, 'too small');
  t.throws(() => new TrackingTable(sab, 64, 100.5), { instanceOf: RangeError }, 'not a whole number');
  t.throws(() => new TrackingTable(sab, 64, 256), { instanceOf: RangeError }, 'does not fit');
  const writer = new TrackingTable(sab, 64, 128);
  writer.upsert(10, 20, 7, 99);
  const reader = new TrackingTable(sab, 64);
  t.is(reader.capacity, 128);
  t.is(reader.ownerAt(reader.find(10, 20)), 7);
  t.is(reader.size, 1);
  t.throws(() => new TrackingTable(sab, 64, 64), { instanceOf: RangeError }, 'capacity mismatch');
  t.is(TrackingTable.byteLength(128), 64 + 128 * 16);
});

test('entry flags: 15 bits per entry beside the owner, reset by upsert, never mistaken for the occupied bit', (t) => {
  const tt = table(64);
  const s = tt.upsert(0x0a000001, 443, 0xffff, 1000);
  t.is(tt.flagsAt(s), 0, 'a new entry has no flags');
  tt.setFlags(s, 0x7fff);
  t.is(tt.flagsAt(s), 0x7fff, 'all 15 bits, the top one in the word sign bit included');
  t.is(tt.ownerAt(s), 0xffff, 'the owner is untouched');
  t.is(tt.lastSeenAt(s), 1000);
  t.is(tt.find(0x0a000001, 443), s);
  tt.setFlags(s, 0x1_8001);
  t.is(tt.flagsAt(s), 1, 'bits above the 15 are dropped, not spilled into the owner or occupied bits');
  t.is(tt.ownerAt(s), 0xffff);
  tt.setFlags(s, 5);
  let visited = 0;
  tt.forEach((lo, hi, owner, lastSeen, slot) => {
    visited++;
    t.deepEqual([lo, hi, owner, lastSeen, tt.flagsAt(slot)], [0x0a000001, 443, 0xffff, 1000, 5]);
  });
  t.is(visited, 1);
  t.is(tt.removeOwner(0xffff), 1, 'removeOwner matches the owner whatever the flags');
  const again = tt.upsert(0x0a000001, 443, 2, 1001);
  tt.setFlags(again, 3);
  t.is(tt.upsert(0x0a000001, 443, 2, 1002), again);
  t.is(tt.flagsAt(again), 0, 'an upsert of an existing key is a new assignment: flags reset');
  tt.setFlags(again, 0);
  t.is(tt.size, 1);
  t.is(tt.find(0x0a000001, 443), again, 'clearing every flag leaves the slot occupied');
});

test('entry flags move with their entry through backward-shift deletion, expiry and eviction', (t) => {
  for (const [capacity, seed] of [[64, 11], [1000, 12], [13, 13]] as const) {
    const tt = table(capacity, seed);
    const rnd = prng(seed);
    const model = new Map<string, { owner: number; flags: number }>();
    let bad = 0;
    let removals = 0;
    for (let op = 0; op < 30_000; op++) {
      const lo = between(rnd, 0, capacity * 3) * 2654435761;
      const key = `${lo >>> 0}`;
      if (rnd() < 0.5) {
        if (model.has(key) || model.size < tt.loadLimit) {
          const owner = between(rnd, 1, 65535);
          const flags = between(rnd, 0, 0x7fff);
          const s = tt.upsert(lo, 0, owner, 0);
          tt.setFlags(s, flags);
          model.set(key, { owner, flags });
        }
      } else if (tt.remove(lo, 0)) {
        model.delete(key);
        removals++;
      }
    }
    t.true(removals > 1000, `capacity ${capacity}: enough removals to shift entries (${removals})`);
    for (const [key, m] of model) {
      const s = tt.find(Number(key), 0);
      if (s < 0 || tt.ownerAt(s) !== m.owner || tt.flagsAt(s) !== m.flags) bad++;
    }
    t.is(bad, 0, `capacity ${capacity}: every entry kept its own owner and flags`);
    t.is(consistent(tt), null);
  }

  // Expiry and eviction shift entries too.
  const tt = table(64, 21);
  for (let i = 0; i < tt.loadLimit; i++) tt.setFlags(tt.upsert(i * 7, 0, 1, i % 2 === 0 ? 0 : 100), i & 0x7fff);
  t.is(tt.expire(150, 100, 64 * 2), 28, 'the even keys, stamped at 0, are idle 150 s');
  for (let i = 0; i < 200; i++) tt.setFlags(tt.upsert(1000 + i, 0, 2, 200 + i), 0x4000 | i);
  t.true(tt.evictions > 0);
  let bad = 0;
  tt.forEach((lo, _hi, owner, _lastSeen, slot) => {
    const want = owner === 1 ? (lo / 7) & 0x7fff : 0x4000 | (lo - 1000);
    if (tt.flagsAt(slot) !== want) bad++;
  });
  t.is(bad, 0);
  t.is(consistent(tt), null);
});
