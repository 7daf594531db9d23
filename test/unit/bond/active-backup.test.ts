import test from 'ava';
import { chooseActive, type CandidateSlave } from '../../../src/bond/active-backup.js';
import { LinkState } from '../../../src/bond/link-monitor.js';

const slave = (state: LinkState, speed = 1000, duplex = 1, delay = 0): CandidateSlave => ({ link: { state, delay, failures: 0 }, speed, duplex });
const { UP, DOWN, FAIL, BACK } = LinkState;

test('the primary takes over whenever it is up with primary_reselect always', (t) => {
  t.is(chooseActive([slave(UP), slave(UP)], 1, 0, 'always'), 0);
  t.is(chooseActive([slave(DOWN), slave(UP)], 1, 0, 'always'), 1, 'a primary that is down is not chosen');
  t.is(chooseActive([slave(BACK), slave(UP)], 1, 0, 'always'), 1, 'nor one still within its updelay');
});

test('primary_reselect failure: the current one stays until it fails; better: only a faster primary takes over', (t) => {
  t.is(chooseActive([slave(UP), slave(UP)], 1, 0, 'failure'), 1);
  t.is(chooseActive([slave(UP), slave(DOWN)], 1, 0, 'failure'), 0);
  t.is(chooseActive([slave(UP, 1000), slave(UP, 1000)], 1, 0, 'better'), 1, 'as fast: the current one stays');
  t.is(chooseActive([slave(UP, 10000), slave(UP, 1000)], 1, 0, 'better'), 0, 'faster: the primary');
  t.is(chooseActive([slave(UP, 1000, 1), slave(UP, 1000, 0)], 1, 0, 'better'), 0, 'as fast, full duplex against half');
});

test('without a usable primary: the current one while it is up, else the first up in enslave order, else the likeliest coming back', (t) => {
  t.is(chooseActive([slave(UP), slave(UP), slave(UP)], 2, -1, 'always'), 2);
  t.is(chooseActive([slave(DOWN), slave(UP), slave(UP)], 0, -1, 'always'), 1);
  t.is(chooseActive([slave(DOWN), slave(BACK, 1000, 1, 3), slave(BACK, 1000, 1, 1)], 0, -1, 'always'), 2);
  t.is(chooseActive([slave(DOWN), slave(DOWN)], 0, -1, 'always'), -1);
  t.is(chooseActive([slave(FAIL), slave(DOWN)], 0, -1, 'always'), 0, 'the active slave in downdelay keeps carrying while nothing better exists');
  t.is(chooseActive([slave(FAIL), slave(UP)], 0, -1, 'always'), 1, 'but is left for a slave that is up');
});
