/**
 * Control fuzz: 1M mutated control frames (quick: 50k) from a LAN host through four keyed
 * control planes, the whole stack (ControlPlane → channel → auth → reassembly → membership)
 * on the memory wire (test/unit/workers/fixtures/control-fuzz.ts, which the unit test runs
 * at 20k). Figures: escapes (a frame accepted, a member's view, node table, deaths or
 * tracking tables moved, an exception: goal 0), frames counted nowhere, rejects by reason,
 * and the stack's deliveries per second beside the reference of the same run: HMAC-SHA256 of
 * the same frames alone (what every keyed receiver must compute per frame).
 */

import { hmacRate, runControlFuzz } from '../test/unit/workers/fixtures/control-fuzz.js';
import { fmt, ratio, type BenchOptions, type BenchResult } from './report.js';

const SEED = 0xf0221012;

export async function benchControlFuzz(o: BenchOptions): Promise<BenchResult> {
  const frames = o.quick ? 50_000 : 1_000_000;
  o.progress(`control-fuzz: ${fmt(frames)} mutated frames through four keyed control planes (seed ${SEED})`);
  const r = await runControlFuzz({ frames, seed: SEED });
  o.progress('control-fuzz: reference, HMAC-SHA256 of the same frames alone');
  const reference = await hmacRate(Math.min(r.taken, 200_000), SEED);
  const rejects = Object.entries(r.rejected)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ${fmt(n)}`)
    .join(', ');
  return {
    rows: [
      {
        figure: 'escapes: accepted / changed / thrown',
        note: `${fmt(r.frames)} mutated control frames (${fmt(r.taken)} deliveries) through four keyed control planes (seed ${SEED}): frames accepted / frames that changed a view or a table / exceptions`,
        lnlb: `${r.accepted} / ${r.changed} / ${r.exceptions}`,
        reference: '0',
        ratio: '',
        goal: '0 escapes',
        met: r.escapes === 0,
      },
      {
        figure: 'deliveries counted nowhere',
        note: `deliveries no reject counter counted (own MAC as source: ${fmt(r.uncountedOwnMac)}); the rejects by reason: ${rejects}`,
        lnlb: fmt(r.uncounted),
        reference: '0',
        ratio: '',
        goal: 'every reject counted',
        met: r.uncounted === 0,
      },
      {
        figure: 'deliveries/s, whole control stack',
        note: 'mutated frames a second through the whole control stack; ref: HMAC-SHA256 of the same frames alone, this run',
        lnlb: fmt(r.rate),
        reference: fmt(reference),
        ratio: ratio(r.rate, reference),
        goal: '',
      },
    ],
    json: { ...r, hmacRate: reference },
  };
}
