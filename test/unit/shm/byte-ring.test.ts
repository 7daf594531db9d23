import test from 'ava';
import { Worker } from 'node:worker_threads';
import { RING_CONTROL_BYTES } from '../../../src/shm/layout.js';
import { ByteRing } from '../../../src/shm/byte-ring.js';
import { between, prng } from './fixtures/prng.js';

function fill(ring: ByteRing, at: number, len: number, seq: number): void {
  const base = Math.imul(seq, 131) & 0xff;
  const bytes = ring.bytes;
  for (let i = 0; i < len; i++) bytes[at + i] = (base + i) & 0xff;
}

function intact(ring: ByteRing, at: number, len: number, seq: number): boolean {
  const base = Math.imul(seq, 131) & 0xff;
  const bytes = ring.bytes;
  for (let i = 0; i < len; i++) if (bytes[at + i] !== ((base + i) & 0xff)) return false;
  return true;
}

test('allocate wants a power of two; the constructor wants a ring buffer', (t) => {
  for (const bad of [0, 32, 100, 3 * 1024, 2 ** 31]) t.throws(() => ByteRing.allocate(bad), { instanceOf: RangeError }, String(bad));
  const sab = ByteRing.allocate(1024);
  t.is(sab.byteLength, RING_CONTROL_BYTES + 1024);
  const ring = new ByteRing(sab);
  t.is(ring.capacity, 1024);
  t.is(ring.bytes.length, 1024);
  t.is(ring.words.length, 256);
  t.is(ring.words.buffer, ring.bytes.buffer);
  t.throws(() => new ByteRing(new SharedArrayBuffer(RING_CONTROL_BYTES + 1024)), { instanceOf: TypeError });
});

test('records are invisible until commit, and come out with their length and flags', (t) => {
  const ring = new ByteRing(ByteRing.allocate(1024));
  const a = ring.reserve(5, 7);
  t.is(a % 8, 0);
  fill(ring, a, 5, 1);
  const b = ring.reserve(0);
  t.is(ring.beginRead(), 0, 'nothing published yet');
  t.is(ring.next(), -1);
  ring.commit();
  t.is(ring.beginRead(), 8 + 8 + 8);
  t.is(ring.next(), a);
  t.is(ring.recordLength, 5);
  t.is(ring.recordFlags, 7);
  t.true(intact(ring, a, 5, 1));
  t.is(ring.next(), b);
  t.is(ring.recordLength, 0);
  t.is(ring.recordFlags, 0);
  t.is(ring.next(), -1);
  ring.endRead();
  t.is(ring.usedBytes(), 0);
});

test('a full ring refuses records and counts them; space comes back after endRead', (t) => {
  const ring = new ByteRing(ByteRing.allocate(256));
  for (let i = 0; i < 4; i++) t.true(ring.reserve(56) >= 0, `record ${i}`); // 4 x 64 bytes = the whole ring
  t.is(ring.reserve(1), -1);
  t.is(ring.reserve(56), -1);
  t.is(ring.overflows, 2);
  t.is(ring.reserve(256), -1, 'larger than the ring');
  t.is(ring.overflows, 3);
  ring.commit();
  t.is(ring.beginRead(), 256);
  t.is(ring.next(), 8);
  t.is(ring.reserve(56), -1, 'read but not yet released');
  ring.endRead();
  t.is(ring.reserve(56), 8, 'the released space at the start of the data area');
  t.is(ring.overflows, 4);
});

test('a record that does not fit before the end goes to the start behind a padding record', (t) => {
  const ring = new ByteRing(ByteRing.allocate(256));
  t.is(ring.reserve(96), 8); // bytes 0..103
  ring.commit();
  ring.beginRead();
  ring.next();
  ring.endRead();
  // Position 104: 152 bytes to the end, the record needs 208. With 152 bytes of padding in use
  // it cannot fit yet: refused, but the padding record is placed.
  t.is(ring.reserve(200), -1);
  ring.commit();
  t.is(ring.beginRead(), 152);
  t.is(ring.next(), -1, 'padding is skipped');
  ring.endRead();
  const at = ring.reserve(200);
  t.is(at, 8, 'at the start of the data area');
  fill(ring, at, 200, 9);
  ring.commit();
  t.is(ring.beginRead(), 208);
  t.is(ring.next(), 8);
  t.is(ring.recordLength, 200);
  t.true(intact(ring, 8, 200, 9));
});

test('100k records of 1..9000 bytes keep FIFO order and content across wrap-around', (t) => {
  const ring = new ByteRing(ByteRing.allocate(1 << 15));
  const rnd = prng(12345);
  const pending: number[] = []; // lengths by sequence, FIFO
  let produced = 0;
  let consumed = 0;
  let refused = 0;
  let bad = 0;
  const total = 100_000;
  while (consumed < total) {
    // Produce a random batch (until full), then consume a random number of records.
    const batch = between(rnd, 1, 12);
    for (let i = 0; i < batch && produced < total; i++) {
      const len = between(rnd, 1, 9000);
      const at = ring.reserve(len);
      if (at < 0) {
        refused++;
        break;
      }
      fill(ring, at, len, produced);
      pending.push(len);
      produced++;
    }
    ring.commit();
    ring.beginRead();
    const take = between(rnd, 1, 12);
    for (let i = 0; i < take; i++) {
      const at = ring.next();
      if (at < 0) break;
      const len = pending[consumed];
      if (ring.recordLength !== len || !intact(ring, at, ring.recordLength, consumed)) bad++;
      consumed++;
    }
    ring.endRead();
  }
  t.is(bad, 0);
  t.is(consumed, total);
  t.is(ring.beginRead(), 0);
  t.true(refused > 0, 'the ring did fill up');
  t.is(ring.overflows, refused);
});

test('waitAsync: null when records are there, woken by commit, times out when idle', async (t) => {
  const ring = new ByteRing(ByteRing.allocate(1024));
  t.is(await ring.waitAsync(30), 'timed-out');
  ring.reserve(4);
  ring.commit();
  t.is(ring.waitAsync(1000), null, 'a committed record: no sleep');
  ring.beginRead();
  t.true(ring.next() >= 0);
  const sleeping = ring.waitAsync(5000);
  t.not(sleeping, null);
  setTimeout(() => {
    ring.reserve(4);
    ring.commit();
  }, 20);
  t.is(await sleeping, 'ok');
  t.is(ring.wakeups, 1);
  t.is(ring.beginRead(), 16);
  t.is(ring.waitSync(1000), null);
  ring.next();
  t.is(ring.waitSync(10), 'timed-out');
});

test('two threads: a worker produces 200k records, the consumer sleeps with waitAsync; none lost, none duplicated, in order, no wake-up missed', async (t) => {
  const count = 200_000;
  const sab = ByteRing.allocate(1 << 16);
  const ring = new ByteRing(sab);
  const worker = new Worker(new URL('./fixtures/ring-producer.js', import.meta.url), {
    workerData: { sab, count, seed: 99, maxPayload: 2000, lockstepFrom: count / 2 },
  });
  let failed: unknown = null;
  let exited = false;
  worker.on('error', (err) => {
    failed = err;
  });
  worker.on('exit', () => {
    exited = true;
  });
  let expected = 0;
  let outOfOrder = 0;
  let corrupt = 0;
  let timeouts = 0;
  let sleeps = 0;
  while (expected < count && failed === null) {
    if (ring.beginRead() > 0) {
      let at: number;
      while ((at = ring.next()) >= 0) {
        const words = ring.words;
        const seq = words[at >> 2]!;
        const len = ring.recordLength;
        if (seq !== expected) outOfOrder++;
        if (words[(at >> 2) + 1] !== len) corrupt++;
        const base = (seq * 31) & 0xff;
        for (let i = 8; i < len; i++) {
          if (ring.bytes[at + i] !== ((base + i) & 0xff)) {
            corrupt++;
            break;
          }
        }
        expected = seq + 1;
      }
      ring.endRead();
      continue;
    }
    const wait = ring.waitAsync(2000);
    if (wait === null) continue;
    sleeps++;
    // A lost wake-up would show as a timeout while the producer still has records to send.
    if ((await wait) === 'timed-out' && !exited) timeouts++;
    if (exited && ring.beginRead() === 0) break;
  }
  await new Promise((resolve) => (exited ? resolve(undefined) : worker.once('exit', resolve)));
  t.is(failed, null);
  t.is(expected, count, 'every record arrived');
  t.is(outOfOrder, 0, 'in order, no loss, no duplicates');
  t.is(corrupt, 0);
  t.is(timeouts, 0, 'every sleep was ended by a commit');
  t.true(sleeps > 0 && ring.wakeups > 0, `slept ${sleeps} times, woken ${ring.wakeups}`);
  t.is(ring.beginRead(), 0);
  t.log(`sleeps ${sleeps}, wakeups ${ring.wakeups}, producer refusals (ring full) ${ring.overflows}`);
});

test('waitSync with the doorbell read before looking for work: a wakeConsumer rung in between (a message posted) ends the wait at once; without one it times out', (t) => {
  const ring = new ByteRing(ByteRing.allocate(1024));
  const bell = ring.doorbell();
  ring.wakeConsumer(); // the main thread posted a message after the consumer looked at its port
  const t0 = performance.now();
  t.is(ring.waitSync(5000, bell), 'not-equal');
  t.true(performance.now() - t0 < 1000, 'did not sleep');
  t.is(ring.waitSync(20, ring.doorbell()), 'timed-out');
  // A commit while the consumer sleeps rings the same bell.
  const producer = new ByteRing(ring.sab);
  const before = ring.doorbell();
  t.true(producer.reserve(8) >= 0);
  producer.commit();
  t.is(ring.waitSync(1000, before), null, 'the record is there: no sleep at all');
});
