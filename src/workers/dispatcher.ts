/**
 * The dispatcher thread: one blocking loop over the AF_PACKET ring. It never needs its event
 * loop for frames, so it blocks in poll() (inside ringRead) for at most POLL_MS and checks the
 * stop word between batches; stopping takes at most POLL_MS. Nothing else needs it awake: a
 * frame wakes it at once, and the watchdog judges it stuck only inside handler code.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { compileRules } from '../cluster/port-rules.js';
import { isLnlbError, serializeError } from '../errors.js';
import type { InterfaceInfo, ProtocolHandler } from '../handlers/handler.js';
import { loadHandler } from '../handlers/loader.js';
import { ByteRing } from '../shm/byte-ring.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';
import { CounterBlock, DispatcherCounter } from './counters.js';
import { FrameDispatcher } from './dispatcher-core.js';
import type { DispatcherData, WorkerToMain } from './messages.js';
import { PacketRingSource } from './ports.js';
import { HandlerErrorLog, runInterfaceHook } from './handler-errors.js';

/**
 * 500: an idle dispatcher wakes twice a second (at 50 ms it woke 20 times, 0.19% of a core per
 * daemon, a tenth of an idle daemon's CPU), and an interface stops at most half a second later.
 */
const POLL_MS = 500;
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
  const info: InterfaceInfo = { name: data.interfaceName, vip: data.vip, thread: 'dispatcher', actorIndex: -1, actorCount: data.actorRings.length };
  runInterfaceHook(handlers, 'interfaceCreated', info, errors);
  const source = new PacketRingSource(data.dataFd);
  const dispatcher = new FrameDispatcher({
    source,
    rings: data.actorRings.map((sab) => new ByteRing(sab)),
    counters,
    vnetHdr: data.vnetHdr,
    vip: data.vip,
    clusterMac: data.clusterMac,
    ownMac: data.ownMac,
    tapMac: data.tapMac,
    handlers,
    rules: compileRules(data.rules),
    handlerErrors: errors,
    actorSeed: data.actorSeed,
  });
  const stop = new Int32Array(data.control);
  post({ type: 'ready', tid: ownThreadId() });
  let statsAt = performance.now() + STATS_EVERY_MS;
  while (Atomics.load(stop, 0) === 0) {
    try {
      dispatcher.pollOnce(POLL_MS);
    } catch (err) {
      // The port reports a link going down once (ENETDOWN) and resumes when it is back: a
      // fact to count and log, not a reason to stop the datapath.
      if (!isLnlbError(err) || err.errno !== 'ENETDOWN') throw err;
      counters[DispatcherCounter.linkDownEvents]!++;
      post({ type: 'link-down' });
    }
    const now = performance.now();
    if (now >= statsAt) {
      statsAt = now + STATS_EVERY_MS;
      counters[DispatcherCounter.kernelDrops] = source.kernelDrops();
    }
  }
  counters[DispatcherCounter.kernelDrops] = source.kernelDrops();
  runInterfaceHook(handlers, 'interfaceDeleted', info, errors);
  post({ type: 'stopped' });
}

run(workerData as DispatcherData).catch((err: unknown) => {
  post({ type: 'error', error: serializeError(err, 'dispatcher') });
});
