/**
 * The control plane's thread: nothing else runs here, so its timers fire on time whatever the
 * main thread (logs, admin socket) and the datapath threads are doing.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import { ControlPlane } from './control-plane.js';
import type { ControlApi, ControlEvent, ControlThreadData, MainToControl } from './messages.js';
import { serve } from './thread-rpc.js';
import { nameOwnThread, setOwnNice } from './thread-priority.js';

function post(event: ControlEvent): void {
  parentPort?.postMessage(event);
}

/**
 * A thread of its own is not enough when the datapath threads keep both cores busy (a flood):
 * the scheduler must also prefer this one, or a heartbeat waits behind frames (and the
 * datapath threads lower themselves: thread-priority.ts). Needs CAP_SYS_NICE (root has it);
 * without it the thread keeps the default priority, and says so.
 *
 * The highest timeshare priority: at -10, three daemons sharing two cores with a forger at
 * -20 had their control threads unscheduled for up to 2.4 s and declared 6 false deaths in
 * two 5 s floods (bench control-flood, hb 100 ms, dead after 500 ms); at -20, none. The
 * thread's work is bounded by what the socket delivers, read in batches that yield.
 */
const CONTROL_NICE = -20;

try {
  nameOwnThread('lnlb-control');
  const priorityError = setOwnNice(CONTROL_NICE);
  if (priorityError !== undefined) {
    post({ type: 'log', level: 'warn', fields: { event: 'control-priority' }, msg: `control thread keeps the default priority (${priorityError}): under a datapath flood heartbeats may be late` });
  }
  const data = workerData as ControlThreadData;
  const plane = new ControlPlane(data, post);
  const api: ControlApi = {
    status: () => plane.status(),
    owners: () => plane.owners(),
    // sendSavedState logs its own failures and says them in its answer.
    sendState: (to, states) => plane.sendSavedState(to, states),
    resyncBuckets: () => plane.resyncBuckets(),
  };
  serve(api, data.requests);
  parentPort?.on('message', (message: MainToControl) => {
    switch (message.type) {
      case 'weight':
        plane.setWeight(message.weight);
        break;
      case 'state-loaded':
        plane.stateLoaded();
        break;
      case 'handover-scanned':
        plane.handoverScanned(message.id, message.messages, message.error);
        break;
      case 'handover-merged':
        plane.handoverMerged(message.from, message.messageId, message.entries, message.error);
        break;
      case 'leave':
        plane.leave();
        break;
      case 'rejoin':
        plane.rejoin();
        break;
      case 'stop':
        plane.stop();
        post({ type: 'stopped' });
        data.requests.close();
        parentPort?.close();
        break;
    }
  });
  plane.start();
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'error', error: serializeError(err, 'control plane') });
}
