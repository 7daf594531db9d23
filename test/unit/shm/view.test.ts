import test from 'ava';
import { Worker } from 'node:worker_threads';
import { VIEW_GENERATION } from '../../../src/shm/layout.js';
import { VIEW_BYTES, VIEW_FLAG_ACCEPTING, VIEW_MAX_NODES, ViewReader, ViewWriter, createPublishedView, type PublishedView } from '../../../src/shm/view.js';

function sample(): PublishedView {
  const v = createPublishedView();
  v.accepting = true;
  v.selfId = 7;
  v.nodeCount = 3;
  v.ids.set([3, 7, 9]);
  v.weights.set([100, 65535, 0]);
  v.nextWeights.set([120, 65535, 1]);
  v.statuses.set([1, 4, 255]);
  v.macs.set([0x02, 0, 0, 0, 0, 0x03, 0x52, 0x54, 0, 0, 0, 0x07, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa]);
  return v;
}

test('a published view reads back field by field; generations go up by two', (t) => {
  const sab = ViewWriter.allocate();
  t.is(sab.byteLength, VIEW_BYTES);
  const writer = new ViewWriter(sab);
  const reader = new ViewReader(sab);
  const into = createPublishedView();
  t.true(reader.read(into), 'the empty view before the first publication');
  t.is(into.generation, 0);
  t.is(into.nodeCount, 0);
  t.false(into.accepting);

  const v = sample();
  t.is(writer.publish(v), 2);
  t.is(v.generation, 2);
  t.is(reader.generation(), 2);
  const { ids, weights, statuses, macs } = into;
  t.true(reader.read(into));
  t.is(into.ids, ids, 'the caller-owned arrays are reused, not replaced');
  t.is(into.weights, weights);
  t.is(into.statuses, statuses);
  t.is(into.macs, macs);
  t.is(into.generation, 2);
  t.true(into.accepting);
  t.is(into.flags & VIEW_FLAG_ACCEPTING, VIEW_FLAG_ACCEPTING);
  t.is(into.selfId, 7);
  t.is(into.nodeCount, 3);
  t.deepEqual([...into.ids.subarray(0, 3)], [3, 7, 9]);
  t.deepEqual([...into.weights.subarray(0, 3)], [100, 65535, 0]);
  t.deepEqual([...into.nextWeights.subarray(0, 3)], [120, 65535, 1], 'the weights a pending change goes to');
  t.deepEqual([...into.statuses.subarray(0, 3)], [1, 4, 255]);
  t.deepEqual([...into.macs.subarray(0, 18)], [...v.macs.subarray(0, 18)]);

  v.accepting = false;
  v.flags = 0xf0;
  v.nodeCount = VIEW_MAX_NODES;
  t.is(writer.publish(v), 4);
  t.true(reader.read(into));
  t.false(into.accepting);
  t.is(into.flags, 0xf0);
  t.is(into.nodeCount, 64);

  v.nodeCount = VIEW_MAX_NODES + 1;
  t.throws(() => writer.publish(v), { instanceOf: RangeError });
  t.is(reader.generation(), 4, 'a refused publication changes nothing');
});

test('a writer that died mid-publication: readers give up, the next writer recovers', (t) => {
  const sab = ViewWriter.allocate();
  new ViewWriter(sab).publish(sample());
  Atomics.store(new Int32Array(sab), VIEW_GENERATION, 3); // odd: "writing"
  const reader = new ViewReader(sab);
  t.false(reader.read(createPublishedView(), 100));
  const writer = new ViewWriter(sab);
  t.is(writer.publish(sample()), 6);
  const into = createPublishedView();
  t.true(reader.read(into));
  t.is(into.generation, 6);
  t.is(into.selfId, 7);
});

test('the view can live at an offset of a larger buffer', (t) => {
  const sab = new SharedArrayBuffer(64 + VIEW_BYTES);
  t.throws(() => new ViewWriter(sab, 65), { instanceOf: RangeError });
  t.throws(() => new ViewWriter(sab, 68), { instanceOf: RangeError });
  new ViewWriter(sab, 64).publish(sample());
  const into = createPublishedView();
  t.true(new ViewReader(sab, 64).read(into));
  t.is(into.nodeCount, 3);
  t.is(new Int32Array(sab)[0], 0, 'nothing written before the offset');
});

/** True if `v` is exactly one of the writer thread's publications (see fixtures/view-writer). */
function whole(v: PublishedView): boolean {
  if (v.generation === 0) return v.nodeCount === 0;
  const s = v.selfId;
  if (((v.generation >>> 1) & 0xffff) !== s) return false;
  if (v.nodeCount !== 1 + (s % 64)) return false;
  if (v.accepting !== ((s & 1) === 1)) return false;
  for (let i = 0; i < v.nodeCount; i++) {
    if (v.ids[i] !== s || v.weights[i] !== s || v.statuses[i] !== (s & 0xff)) return false;
  }
  for (let i = 0; i < v.nodeCount * 6; i++) if (v.macs[i] !== (s & 0xff)) return false;
  return true;
}

test('a reader thread never sees a torn view while a writer thread publishes', async (t) => {
  const count = 100_000;
  const sab = ViewWriter.allocate();
  const done = new SharedArrayBuffer(4);
  const doneFlag = new Int32Array(done);
  const worker = new Worker(new URL('./fixtures/view-writer.js', import.meta.url), { workerData: { sab, done, count } });
  const exited = new Promise<number>((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
  const reader = new ViewReader(sab);
  const into = createPublishedView();
  let reads = 0;
  let torn = 0;
  let gaveUp = 0;
  let lastGeneration = 0;
  let backwards = 0;
  const generations = new Set<number>();
  const deadline = Date.now() + 60_000;
  // Synchronous on purpose: the reader spins on this thread while the writer runs on its own.
  while (Atomics.load(doneFlag, 0) === 0 && Date.now() < deadline) {
    if (!reader.read(into, 1000)) {
      gaveUp++;
      continue;
    }
    reads++;
    if (!whole(into)) torn++;
    if (into.generation < lastGeneration) backwards++;
    lastGeneration = into.generation;
    generations.add(into.generation);
  }
  t.is(await exited, 0);
  t.true(reader.read(into));
  t.is(into.generation, 2 * count, 'the last publication is what remains');
  t.true(whole(into));
  t.is(torn, 0, 'no torn view');
  t.is(backwards, 0, 'generations never go backwards');
  // The reader really ran alongside the writer (not only before or after it). A handful of
  // intermediate generations proves the overlap; more depends on how a loaded 2-core machine
  // schedules the two threads, which a test must not assert.
  t.true(generations.size >= 3, `saw ${generations.size} distinct generations in ${reads} reads`);
  t.log(`${reads} reads, ${generations.size} distinct generations, ${gaveUp} reads gave up after 1000 attempts`);
});
