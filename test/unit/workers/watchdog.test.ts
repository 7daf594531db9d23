/**
 * The watchdog's decision, with time passed in: a datapath thread whose beat stands still for
 * the limit while it has frames waiting or is inside handler code is stuck; an idle one, a
 * busy one that makes progress, or a look after the observer itself stalled, is not. Then the
 * same rule on a real ActorCore: the beat and the handler mark it publishes.
 */
import test from 'ava';
import type { ProtocolHandler, Tracker } from '../../../src/handlers/handler.js';
import { sourceIpHandler } from '../../../src/handlers/default.js';
import { ActorCounter, DispatcherCounter } from '../../../src/workers/counters.js';
import { bulkLimitMs, describeHandlerCall, handlerCall, HandlerMethod, Watchdog, watchdogIntervalMs, watchdogLimitMs, type ThreadProgress } from '../../../src/workers/watchdog.js';
import { ipFrame, makeNode, publish } from './fixtures/sim.js';

const LIMIT = 2000;
const STEP = 250;
const IDLE: ThreadProgress = { beat: 7, call: 0, queuedBytes: 0 };

/** Looks every STEP ms from `from` to `to` (inclusive) with `progress(now)`; returns when each thread was first reported. */
function run(watchdog: Watchdog, from: number, to: number, progress: (now: number) => ThreadProgress[]): Map<number, number> {
  const reported = new Map<number, number>();
  for (let now = from; now <= to; now += STEP) {
    for (const s of watchdog.look(now, progress(now))) {
      if (!reported.has(s.thread)) reported.set(s.thread, now);
    }
  }
  return reported;
}

test('the limit follows --dead-after-ms, never under 2 s; the interval is a quarter of it, at most 500 ms', (t) => {
  t.is(watchdogLimitMs(1000), 2000, 'the lab timing');
  t.is(watchdogLimitMs(5000), 5000, 'the default --dead-after-ms');
  t.is(watchdogIntervalMs(2000), 500);
  t.is(watchdogIntervalMs(5000), 500);
  t.is(watchdogIntervalMs(400), 100);
  t.is(watchdogIntervalMs(100), 50);
});

test('handler calls are encoded with the handler index and the method, 0 meaning none', (t) => {
  t.deepEqual(describeHandlerCall(handlerCall(3, HandlerMethod.isRelated)), { handlerIndex: 3, method: 'isRelated' });
  t.deepEqual(describeHandlerCall(handlerCall(0, HandlerMethod.affinityKey)), { handlerIndex: 0, method: 'affinityKey' });
  t.is(describeHandlerCall(0), undefined);
  t.not(handlerCall(0, HandlerMethod.isRelated), 0);
});

test('a thread stuck in handler code is reported once, after the limit and within one look of it', (t) => {
  const watchdog = new Watchdog(LIMIT);
  const stuckAt = 1000;
  const call = handlerCall(1, HandlerMethod.isRelated);
  const reports: number[] = [];
  let report;
  for (let now = 0; now <= 6000; now += STEP) {
    const busy: ThreadProgress = now < stuckAt ? { beat: now, call: 0, queuedBytes: 100 } : { beat: stuckAt - STEP, call, queuedBytes: 4096 };
    for (const s of watchdog.look(now, [IDLE, busy])) {
      reports.push(now);
      report = s;
    }
  }
  t.is(reports.length, 1, 'reported once');
  t.true(reports[0]! >= stuckAt + LIMIT - STEP && reports[0]! <= stuckAt + LIMIT + STEP, `reported at ${reports[0]} ms`);
  t.like(report, { thread: 1, call });
  t.true(report!.stalledMs >= LIMIT);
});

test('a whole state loaded, saved or cleared (loadStatus, saveStatus, clear) may take ten limits, at least 30 s, before it is stuck; any other method the limit', (t) => {
  t.is(bulkLimitMs(LIMIT), 30_000);
  t.is(bulkLimitMs(5000), 50_000);
  const stuckAt = 1000;
  const inCall = (method: number) => (now: number): ThreadProgress[] => [now < stuckAt ? { beat: now, call: 0, queuedBytes: 100 } : { beat: stuckAt - STEP, call: handlerCall(0, method), queuedBytes: 4096 }];
  for (const method of [HandlerMethod.loadStatus, HandlerMethod.saveStatus, HandlerMethod.clear]) {
    // A newcomer's actor starved on a loaded host: 2.0-2.1 s in loadStatus measured at 64 daemons.
    t.is(run(new Watchdog(LIMIT), 0, stuckAt + 10_000, inCall(method)).size, 0, `${method}: 10 s is no hang`);
    const at = run(new Watchdog(LIMIT), 0, stuckAt + 31_000, inCall(method)).get(0);
    t.true(at !== undefined && at >= stuckAt + 30_000 - STEP && at <= stuckAt + 30_000 + STEP, `reported at ${at} ms`);
  }
  const at = run(new Watchdog(LIMIT), 0, stuckAt + 10_000, inCall(HandlerMethod.nodeDied)).get(0);
  t.true(at !== undefined && at <= stuckAt + LIMIT + STEP, `nodeDied reported at ${at} ms`);
});

test('frames waiting and no progress is stuck even outside handler code; nothing waiting and no beat is idle', (t) => {
  const watchdog = new Watchdog(LIMIT);
  const reported = run(watchdog, 0, 5000, () => [IDLE, { beat: 3, call: 0, queuedBytes: 512 }]);
  t.deepEqual([...reported.keys()], [1], 'only the thread with frames waiting');
});

test('a thread that beats is never stuck, however busy; a short stall (GC pause) is not either', (t) => {
  const watchdog = new Watchdog(LIMIT);
  const call = handlerCall(0, HandlerMethod.isRelated);
  const reported = run(watchdog, 0, 20_000, (now) => [
    { beat: now, call, queuedBytes: 1 << 20 },
    // stands still 1.5 s every 4 s
    { beat: now % 4000 < 1500 ? Math.floor(now / 4000) : now, call, queuedBytes: 100 },
  ]);
  t.deepEqual([...reported.keys()], []);
});

test('a look long after the previous one judges nothing (the observer stalled, or the host was paused)', (t) => {
  const watchdog = new Watchdog(LIMIT);
  const stuck: ThreadProgress = { beat: 1, call: handlerCall(0, HandlerMethod.expire), queuedBytes: 0 };
  t.deepEqual(watchdog.look(0, [stuck]), []);
  t.deepEqual(watchdog.look(250, [stuck]), []);
  t.deepEqual(watchdog.look(5000, [stuck]), [], 'after a 4.75 s gap: no verdict, even though the beat did not move');
  // The stall counts from the first look after the gap.
  const later = run(watchdog, 5250, 8000, () => [stuck]);
  t.is(later.get(0), 5000 + LIMIT);
});

test('a thread that recovers before the limit starts from zero the next time', (t) => {
  const watchdog = new Watchdog(LIMIT);
  const call = handlerCall(0, HandlerMethod.isRelated);
  const reported = run(watchdog, 0, 10_000, (now) => [{ beat: now < 1750 ? 0 : now < 2000 ? 1 : now < 3750 ? 1 : now, call, queuedBytes: 10 }]);
  t.deepEqual([...reported.keys()], [], 'two stalls of 1.75 s each: never 2 s in a row');
});

/** A handler whose isRelated (affinityKey) records what the actor (dispatcher) published while it runs. */
function spyHandler(seen: number[], row: () => Float64Array, dispatcherSeen: number[] = [], dispatcherRow?: () => Float64Array): ProtocolHandler {
  return {
    ...sourceIpHandler,
    affinityKey(frame, out): void {
      if (dispatcherRow !== undefined) dispatcherSeen.push(dispatcherRow()[DispatcherCounter.inHandler]!);
      sourceIpHandler.affinityKey(frame, out);
    },
    createTracker(options): Tracker {
      const inner = sourceIpHandler.createTracker(options);
      return Object.assign(Object.create(inner) as Tracker, {
        isRelated(keyLo: number, keyHi: number, flags: number, now: number): number {
          seen.push(row()[ActorCounter.inHandler]!);
          return inner.isRelated(keyLo, keyHi, flags, now);
        },
      });
    },
  };
}

test('an actor and the dispatcher publish a beat per batch and which handler method they are in, 0 outside', (t) => {
  const seen: number[] = [];
  const dispatcherSeen: number[] = [];
  let node: ReturnType<typeof makeNode> | undefined;
  const rowOf = (actor: number): Float64Array => node!.counters.row(1 + actor);
  const frames = Array.from({ length: 20 }, (_, i) => ipFrame(`10.0.9.${i + 1}`));
  node = makeNode(1, frames, { actorCount: 1, handlers: [spyHandler(seen, () => rowOf(0), dispatcherSeen, () => node!.counters.row(0))] });
  publish(node, [1]);
  const beatBefore = rowOf(0)[ActorCounter.beat]!;
  const dispatcherBeatBefore = node.counters.row(0)[DispatcherCounter.beat]!;
  node.dispatcher.pollOnce(0);
  t.is(node.counters.row(0)[DispatcherCounter.beat]! - dispatcherBeatBefore, 1, 'the dispatcher: one beat per poll');
  t.is(dispatcherSeen.length, 20);
  t.true(dispatcherSeen.every((v) => v === handlerCall(0, HandlerMethod.affinityKey)), 'inside affinityKey: handler 0, affinityKey');
  t.is(node.counters.row(0)[DispatcherCounter.inHandler], 0);
  node.actors[0]!.processAvailable(1000);
  node.actors[0]!.processAvailable(1000);
  t.is(rowOf(0)[ActorCounter.beat]! - beatBefore, 2, 'one beat per batch, an empty one included');
  t.is(seen.length, 20);
  t.true(seen.every((v) => v === handlerCall(0, HandlerMethod.isRelated)), 'inside isRelated: handler 0, isRelated');
  t.is(rowOf(0)[ActorCounter.inHandler], 0, 'outside handler code');
});
