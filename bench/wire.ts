/**
 * Frames per second through the real datapath: a generator in the client namespace floods UDP
 * frames for the VIP through the bridge; one node of a cluster reads them from its AF_PACKET
 * ring, classifies them in its dispatcher and actors, and writes its share into its TAP.
 * Reference in the same run: the rate the generator put on the wire.
 */

import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../lab/cluster.js';
import type { InterfaceCounters } from '../src/main/admin-protocol.js';

export interface WireResult {
  nodes: number;
  workers: number;
  frameBytes: number;
  offeredPerSecond: number;
  seenPerSecond: number;
  acceptedPerSecond: number;
  lostInKernel: number;
  lostInLnlb: number;
  seconds: number;
}

async function counters(lab: ClusterLab, node: string): Promise<InterfaceCounters> {
  return (await lab.status(node)).interfaces[0]!.counters;
}

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));

export async function runWire(options: { nodes: number; workers: number; frameBytes: number; seconds: number }): Promise<WireResult> {
  const lab = await ClusterLab.create({ nodes: options.nodes, clientAddresses: 1 });
  try {
    for (const node of lab.nodes) lab.startDaemon(node, ['--workers', String(options.workers), '--log-level', 'warn']);
    await lab.waitConverged(lab.nodes, 20_000);
    const before = await counters(lab, 'node1');
    const run = await lab.lab.exec('client', [process.execPath, GENERATOR, '--seconds', String(options.seconds), '--bytes', String(options.frameBytes)], { timeoutMs: (options.seconds + 30) * 1000 });
    if (run.code !== 0) throw new Error(`generator failed: ${run.stderr}`);
    const { sent, seconds } = JSON.parse(run.stdout) as { sent: number; seconds: number };
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the rings drain
    const after = await counters(lab, 'node1');
    const dropped = (k: string): number => (after.framesDropped[k] ?? 0) - (before.framesDropped[k] ?? 0);
    return {
      nodes: options.nodes,
      workers: options.workers,
      frameBytes: options.frameBytes,
      offeredPerSecond: sent / seconds,
      seenPerSecond: (after.framesSeen - before.framesSeen) / seconds,
      acceptedPerSecond: (after.framesAccepted - before.framesAccepted) / seconds,
      lostInKernel: after.kernelDrops - before.kernelDrops,
      lostInLnlb: dropped('ringFull') + dropped('tapWrite'),
      seconds,
    };
  } finally {
    await lab.cleanup();
  }
}
