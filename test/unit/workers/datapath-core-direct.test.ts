/**
 * datapath-core's tests again with --workers 1's datapath: the dispatcher decides each frame
 * itself with its one actor, from the batch it read (no ring, no hand-off), and writes the kept
 * ones from there. Every verdict must be the same as through the actors' rings.
 */
import { setSimDefaults } from './fixtures/sim.js';

setSimDefaults({ direct: true });
await import('./datapath-core.test.js');
