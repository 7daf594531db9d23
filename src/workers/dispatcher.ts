/**
 * The dispatcher thread: one blocking loop over the AF_PACKET ring. It never needs its event
 * loop for frames, so it blocks in poll() (inside ringReadInPlace) for at most POLL_MS and
 * checks the stop word between batches (a stop wakes the poll). Nothing else needs it awake: a
 * frame wakes it at once, and the watchdog judges it stuck only inside handler code.
 *
 * Between batches it also keeps the data socket's kernel filter (dispatcher-filter.ts): one
 * atomic load of the view's generation and one per actor of the draining masks' versions; a
 * program is built and attached only when what passes changes. A view that changes what
 * passes wakes it at once (port.ringWake, from the control plane or the main thread); a
 * narrowing is its own deadline; anything else is seen at the next batch or within POLL_MS.
 *
 * Under --workers 1 this thread is also the actor (actor-host.ts): each batch is decided where
 * it was read and written to the TAP from there, with no hand-off to another thread. Its
 * control messages are taken between batches with receiveMessageOnPort (this loop never
 * yields to the event loop); the main thread raises control[1] and wakes the poll (ringWake).
 */

import { formatIPv6 } from '../net/ipv6.js';
import { SourceBook } from '../shm/source-book.js';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { compileRules } from '../cluster/port-rules.js';
import { isLnlbError, serializeError } from '../errors.js';
import type { InterfaceInfo, ProtocolHandler } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { ByteRing } from '../shm/byte-ring.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';
import { CounterBlock, DispatcherCounter } from './counters.js';
import { FrameDispatcher } from './dispatcher-core.js';
import type { DispatcherData, MainToActor, WorkerToMain } from './messages.js';
import { createActorHost, type ActorHost } from './actor-host.js';
import { PacketRingSource } from './ports.js';
import { attachFilter, writeBatch } from '../port/native.js';
import { createPublishedView, ViewReader } from '../shm/view.js';
import { DRAINING_MASK_WORDS, DrainingBuckets } from '../shm/draining-buckets.js';
import { FilterPlan, type FilterSwap } from './dispatcher-filter.js';
import { HandlerErrorLog, runInterfaceHook } from './handler-errors.js';

/**
 * The longest poll: nothing needs this thread on a quiet wire. Whatever it must act on wakes
 * it (ringWake): a stop, a message for its actor, a new view or kernel filter; and its own
 * deadlines (the filter's narrowing, the actor's housekeeping) shorten the poll. At 500 ms an
 * idle dispatcher woke twice a second for nothing.
 */
const POLL_MS = 10_000;
/** How often the kernel's drop counter is read (it costs a getsockopt): by time, not by batches. */
const STATS_EVERY_MS = 200;

function post(message: WorkerToMain): void {
  parentPort?.postMessage(message);
}

async function run(data: DispatcherData): Promise<void> {
  nameOwnThread('lnlb-dispatcher');
  lowerDatapathThread();
  const counters = new CounterBlock(data.counters).row(0);
  const handlers: ProtocolHandler[] = [];
  // The main thread ran each module's self-test (in a thread of its own, with a time limit).
  for (const setup of data.handlers) handlers.push(await loadHandler(setup.spec, { smokeTest: false }));
  const errors = new HandlerErrorLog((report) => post({ type: 'handler-error', ...report }));
  const info: InterfaceInfo = { name: data.interfaceName, vip: data.vip, ...(data.vip6 === undefined ? {} : { vip6: formatIPv6(data.vip6) }), thread: 'dispatcher', actorIndex: -1, actorCount: data.actorRings.length };
  runInterfaceHook(handlers, 'interfaceCreated', info, errors);
  const source = new PacketRingSource(data.dataFd);
  // The actor this thread is (--workers 1): its own handler instances' trackers, the same modules.
  const host: ActorHost | undefined = data.actor === undefined ? undefined : createActorHost(data.actor, handlers, undefined);
  const dispatcher = new FrameDispatcher({
    source,
    rings: data.actorRings.map((sab) => new ByteRing(sab)),
    actor: host?.core,
    counters,
    vnetHdr: data.vnetHdr,
    vip: data.vip,
    vip6: data.vip6,
    electionKey: data.electionKey,
    sourceBook: data.sourceBook === undefined ? undefined : new SourceBook(data.sourceBook),
    vlan: data.vlan,
    ...(data.vlan === 0 ? {} : { toHost: hostWriter(data.tapFd) }),
    clusterMac: data.clusterMac,
    ownMac: data.ownMac,
    tapMac: data.tapMac,
    handlers,
    rules: compileRules(data.rules),
    handlerErrors: errors,
    actorSeed: data.actorSeed,
  });
  const filter = kernelFilter(data, counters);
  const control = new Int32Array(data.control);
  post({ type: 'ready', tid: ownThreadId() });
  // One clock read per batch (a flood reads many small batches): every deadline below uses it.
  let now = performance.now();
  let statsAt = now + STATS_EVERY_MS;
  /** When the actor's housekeeping is next due (performance.now() ms). */
  let tickAt = 0;
  while (Atomics.load(control, 0) === 0) {
    let timeoutMs = filter.timeoutMs(POLL_MS, now);
    if (host !== undefined) timeoutMs = Math.min(timeoutMs, Math.max(0, Math.ceil(tickAt - now)));
    try {
      const n = dispatcher.pollOnce(timeoutMs);
      now = performance.now();
      // No frames: a new view may have ended a round with frames held (the control plane wakes this poll).
      if (host !== undefined && n === 0) host.core.processAvailable(Math.floor(Date.now() / 1000));
      filter.check(now);
    } catch (err) {
      // The port reports a link going down once (ENETDOWN) and resumes when it is back: a
      // fact to count and log, not a reason to stop the datapath.
      if (!isLnlbError(err) || err.errno !== 'ENETDOWN') throw err;
      counters[DispatcherCounter.linkDownEvents]!++;
      post({ type: 'link-down' });
      now = performance.now();
    }
    if (host !== undefined) {
      if (Atomics.load(control, 1) !== 0) {
        // Cleared before reading: a message posted meanwhile raises it again.
        Atomics.store(control, 1, 0);
        for (let m = receiveMessageOnPort(parentPort!); m !== undefined; m = receiveMessageOnPort(parentPort!)) host.handle(m.message as MainToActor);
        // Requests (ActorApi) run now, between batches; their answers leave in one event-loop turn.
        if (host.requests.poll()) await host.requests.settle();
        tickAt = 0;
      }
      if (now >= tickAt) tickAt = now + host.tick(Math.floor(Date.now() / 1000));
    }
    if (now >= statsAt) {
      statsAt = now + STATS_EVERY_MS;
      counters[DispatcherCounter.kernelDrops] = source.kernelDrops();
    }
  }
  counters[DispatcherCounter.kernelDrops] = source.kernelDrops();
  runInterfaceHook(handlers, 'interfaceDeleted', info, errors);
  host?.close();
  post({ type: 'stopped' });
}

/**
 * The kernel filter's keeper: reads the view and the draining masks when they moved, and
 * attaches what the plan says. A refused program is counted, reported once, and replaced by
 * the plain filter (every frame passes: userspace decides, as without a filter).
 */
function kernelFilter(data: DispatcherData, counters: Float64Array): { timeoutMs(max: number, now: number): number; check(now: number): void } {
  const plan = new FilterPlan({ election: data.election, rules: compileRules(data.rules), handlers: data.handlers.map((h) => h.spec), clusterMac: data.clusterMac, vip: data.vip, vip6: data.vip6, vlan: data.vlan, electionKey: data.electionKey });
  const gauges = (): void => {
    counters[DispatcherCounter.kernelFilterBuckets] = plan.buckets;
    counters[DispatcherCounter.kernelFilterWhy] = plan.why;
  };
  gauges();
  if (plan.shape.kind === 'plain') return { timeoutMs: (max) => max, check: () => undefined };
  const reader = new ViewReader(data.view);
  const view = createPublishedView();
  const draining = new DrainingBuckets(data.draining);
  const drainingMask = new Uint32Array(DRAINING_MASK_WORDS);
  let generation = -1;
  let drainingVersion = -1;
  let reported = false;
  const attach = (swap: FilterSwap | undefined): void => {
    if (swap === undefined) {
      // The plan may have moved on without a new program (a node of one: all buckets, the
      // plain filter it already carries), and status must say why.
      gauges();
      return;
    }
    try {
      attachFilter(data.dataFd, swap.program);
      counters[DispatcherCounter.kernelFilterSwaps]!++;
    } catch (err) {
      counters[DispatcherCounter.kernelFilterFailures]!++;
      if (!reported) {
        reported = true;
        post({ type: 'kernel-filter-failed', message: err instanceof Error ? err.message : String(err) });
      }
      const fallback = plan.refused();
      try {
        attachFilter(data.dataFd, fallback.program);
        counters[DispatcherCounter.kernelFilterSwaps]!++;
      } catch {
        counters[DispatcherCounter.kernelFilterFailures]!++;
      }
    }
    gauges();
  };
  return {
    timeoutMs: (max, now) => Math.min(max, Math.max(0, Math.ceil(plan.narrowAt - now))),
    check: (now) => {
      const g = reader.generation();
      const d = draining.version();
      if (g === generation && d === drainingVersion) {
        attach(plan.tick(now));
        return;
      }
      // An odd generation: the writer is busy; read() waits for it (a few loads).
      if (!reader.read(view)) return;
      generation = view.generation;
      drainingVersion = d;
      drainingMask.fill(0);
      draining.unionInto(drainingMask);
      attach(plan.update(view, drainingMask, now));
    },
  };
}

/** --vlan: writes one frame (virtio-net header first) to the TAP: the host's side of the cluster interface. */
function hostWriter(tapFd: number): (frame: Uint8Array, length: number) => boolean {
  const offsets = new Uint32Array(1);
  const lengths = new Uint32Array(1);
  return (frame, length) => {
    lengths[0] = length;
    return writeBatch(tapFd, frame, offsets, lengths, 1) === 1;
  };
}

run(workerData as DispatcherData).catch((err: unknown) => {
  post({ type: 'error', error: serializeError(err, 'dispatcher') });
});
