/**
 * The control plane's thread: nothing else runs here, so its timers fire on time whatever the
 * main thread (logs, admin socket) and the datapath threads are doing.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { ControlPlane } from './control-plane.js';
import type { ControlData, ControlEvent, MainToControl } from './messages.js';

function post(event: ControlEvent): void {
  parentPort?.postMessage(event);
}

try {
  const plane = new ControlPlane(workerData as ControlData, post);
  parentPort?.on('message', (message: MainToControl) => {
    switch (message.type) {
      case 'weight':
        plane.setWeight(message.weight);
        break;
      case 'status':
        post({ type: 'status', requestId: message.requestId, status: plane.status() });
        break;
      case 'owners':
        post({ type: 'owners', requestId: message.requestId, owners: plane.owners() });
        break;
      case 'send-state':
        void plane.sendSavedState(message.to, message.state, message.entries).then((result) => {
          if (message.requestId !== undefined) post({ type: 'resynced', requestId: message.requestId, ...result });
        });
        break;
      case 'state-loaded':
        plane.stateLoaded();
        break;
      case 'stop':
        plane.stop();
        post({ type: 'stopped' });
        parentPort?.close();
        break;
    }
  });
  plane.start();
  post({ type: 'ready' });
} catch (err) {
  const e = err as Error & { code?: string };
  post({ type: 'error', message: `control plane: ${e.message}`, ...(e.code ? { code: e.code } : {}) });
}
