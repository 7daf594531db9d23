/**
 * The egress thread (--vlan): on a trunk the host has no VLAN device, so it sends its replies,
 * and its own ARP and neighbour solicitations, through the cluster interface (the operator
 * routes the VLAN's clients there). This thread reads them from the TAP as they come (an
 * event-loop watch: nothing runs while the host sends nothing) and puts them on the trunk with
 * the VLAN's tag and the node's own MAC as source (net/vlan.ts tagForEgress), through a
 * send-only packet socket. The virtio-net header passes through, so checksum-offloaded and GSO
 * frames leave as the host made them.
 *
 * Counts forwarded and refused frames into the dispatcher's counter row, in two slots the
 * dispatcher never writes (each slot has one writer).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import { tagForEgress, VLAN_HLEN } from '../net/vlan.js';
import * as port from '../port/native.js';
import { CounterBlock, DispatcherCounter } from './counters.js';
import type { EgressData, WorkerToMain } from './messages.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';

/** A whole GSO frame (64 KiB) with its headers. */
const FRAME_BYTES = (64 << 10) + 128;

function post(message: WorkerToMain): void {
  parentPort?.postMessage(message);
}

function run(data: EgressData): void {
  nameOwnThread('lnlb-egress');
  lowerDatapathThread();
  const counters = new CounterBlock(data.counters).row(0);
  const vnet = data.vnetHdr ? port.VNET_HDR_LEN : 0;
  const rx = new Uint8Array(FRAME_BYTES);
  const tx = new Uint8Array(FRAME_BYTES + VLAN_HLEN);
  const forward = (): void => {
    for (;;) {
      const n = port.recv(data.tapFd, rx, 0, rx.length);
      if (n <= 0) return;
      const length = tagForEgress(rx, n, tx, data.ownMac, data.vlan, vnet);
      if (length > 0 && port.send(data.egressFd, tx, 0, length) > 0) counters[DispatcherCounter.egressFrames]!++;
      else counters[DispatcherCounter.egressDrops]!++;
    }
  };
  const watcher = port.watch(data.tapFd, () => {
    try {
      forward();
    } catch (err) {
      // A link going down refuses sends (ENETDOWN): counted, and the next frame tries again.
      counters[DispatcherCounter.egressDrops]!++;
      if (!(err instanceof Error) || !/ENETDOWN|ENXIO|ENOBUFS/.test(err.message)) post({ type: 'error', error: serializeError(err, 'egress') });
    }
  });
  parentPort?.on('message', (m: { type: string }) => {
    if (m.type !== 'stop') return;
    watcher.stop();
    post({ type: 'stopped' });
    parentPort?.close();
  });
  post({ type: 'ready', tid: ownThreadId() });
}

try {
  run(workerData as EgressData);
} catch (err) {
  post({ type: 'error', error: serializeError(err, 'egress') });
}
