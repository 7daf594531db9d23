/**
 * The control stack's fuzz (fixtures/control-fuzz.ts) at unit-test size: 20k mutated frames
 * from a LAN host through four keyed control planes. No escape (a frame accepted, a member's
 * view, node table, deaths or tracking tables moved, an exception), and every frame a member
 * took is counted, as received or as rejected. The benchmark runs the same with 1M frames.
 */
import test from 'ava';
import { MUTATIONS, runControlFuzz } from './fixtures/control-fuzz.js';

const SEED = 0xf0220012;

test('20k mutated control frames through the whole keyed stack: no escape, every frame counted', async (t) => {
  const r = await runControlFuzz({ frames: 20_000, seed: SEED });
  t.log(`seed ${r.seed}: ${r.frames} frames, ${r.taken} deliveries, rejects ${JSON.stringify(r.rejected)}`);
  for (const m of MUTATIONS) t.true(r.byMutation[m]! > 1000, `mutation ${m} was tried (${r.byMutation[m]})`);
  t.is(r.exceptions, 0, `no exception: ${r.samples.join('\n')}`);
  t.is(r.accepted, 0, `no mutated frame accepted: ${r.samples.join('\n')}`);
  t.is(r.changed, 0, `no member's view, node table, deaths or tracking tables moved: ${r.samples.join('\n')}`);
  t.is(r.uncounted, 0, `every frame a member took is counted (${r.uncountedOwnMac} of ${r.uncounted} uncounted carried the receiver's own MAC)`);
});
