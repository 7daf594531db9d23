import test from 'ava';
import { initialLink, inspectLink, LinkEvent, linkDelays, LinkState, linkUsable, miiStatus } from '../../../src/bond/link-monitor.js';

/** Feeds one carrier observation per tick; returns the tick (0-based) at which each event happened. */
function run(carrier: boolean[], delays = linkDelays(100, 0, 0), start = true) {
  const link = initialLink(start, delays);
  const events: [number, LinkEvent, LinkState][] = [];
  carrier.forEach((c, tick) => {
    const e = inspectLink(link, c, delays);
    if (e !== LinkEvent.NONE) events.push([tick, e, link.state]);
  });
  return { link, events };
}

test('delays are whole miimon ticks, rounded down as the driver rounds them', (t) => {
  t.deepEqual(linkDelays(100, 250, 200), { upTicks: 2, downTicks: 2 });
  t.deepEqual(linkDelays(0, 250, 200), { upTicks: 0, downTicks: 0 }, 'no carrier monitor: no delays');
});

test('no downdelay: DOWN on the tick that sees the carrier go, counted as one failure; no updelay: UP on the tick that sees it back', (t) => {
  const { link, events } = run([true, false, false, true]);
  t.deepEqual(events, [
    [1, LinkEvent.DOWN, LinkState.DOWN],
    [3, LinkEvent.UP, LinkState.UP],
  ]);
  t.is(link.failures, 1);
});

test('downdelay 200 ms at miimon 100: FAIL for two ticks (still usable), DOWN on the third', (t) => {
  const delays = linkDelays(100, 0, 200);
  const link = initialLink(true, delays);
  t.is(inspectLink(link, false, delays), LinkEvent.GOING_DOWN);
  t.is(link.state, LinkState.FAIL);
  t.true(linkUsable(link));
  t.is(miiStatus(link), 'going down');
  t.is(inspectLink(link, false, delays), LinkEvent.NONE);
  t.is(inspectLink(link, false, delays), LinkEvent.DOWN, '200 ms after the tick that saw it');
  t.false(linkUsable(link));
  t.is(link.failures, 1);
});

test('a carrier that comes back within downdelay is UP again and no failure is counted', (t) => {
  const { link, events } = run([false, true], linkDelays(100, 0, 300));
  t.deepEqual(events, [
    [0, LinkEvent.GOING_DOWN, LinkState.FAIL],
    [1, LinkEvent.UP_AGAIN, LinkState.UP],
  ]);
  t.is(link.failures, 0);
});

test('updelay 200 ms: BACK for two ticks (not usable), UP on the third; a flap while BACK is DOWN again', (t) => {
  const delays = linkDelays(100, 200, 0);
  const { events } = run([true, true, true], delays, false);
  t.deepEqual(events, [
    [0, LinkEvent.COMING_UP, LinkState.BACK],
    [2, LinkEvent.UP, LinkState.UP],
  ]);
  const flap = run([true, false], delays, false);
  t.deepEqual(flap.events.map(([, e]) => e), [LinkEvent.COMING_UP, LinkEvent.DOWN_AGAIN]);
  t.false(linkUsable(initialLink(true, delays)), 'enslaved with carrier and an updelay: BACK, not used yet');
  t.is(miiStatus(initialLink(true, delays)), 'going back');
});
