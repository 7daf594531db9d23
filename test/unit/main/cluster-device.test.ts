import test from 'ava';
import { rxRingOptions } from '../../../src/main/cluster-device.js';
import { DEFAULT_RX_RING_BLOCKS, DEFAULT_RX_RING_FRAMES, resolveDaemonOptions } from '../../../src/main/options.js';
import { v2FrameSize, v2SlotOverhead } from '../../../src/port/native.js';

test('a V2 slot holds a whole frame of the MTU, rounded up to 16 bytes (TPACKET_ALIGNMENT): 1600 for an MTU of 1500', (t) => {
  t.is(v2SlotOverhead(true), 90, 'tpacket2_hdr + sockaddr_ll + MAC header aligned to 16 (80) + vnet header (10)');
  t.is(v2FrameSize(1500, true), 1600);
  t.is(v2FrameSize(1958, true), 2048);
  t.is(v2FrameSize(1959, true), 2064);
  t.is(v2FrameSize(1968, false), 2048);
  t.is(v2FrameSize(9000, true), 9104);
});

test('--rx-ring: v2 takes --rx-ring-frames slots that follow the MTU, v3 --rx-ring-blocks blocks of 256 KiB', (t) => {
  const o = resolveDaemonOptions({ bind: 'eth0', vip: '10.0.0.100', insecureNoAuth: 'true' });
  t.deepEqual(rxRingOptions(o, 1500), { version: 2, frameSize: 1600, frameCount: DEFAULT_RX_RING_FRAMES, copyQueueBytes: 8 << 20, holdOffUs: 500 });
  t.like(rxRingOptions({ ...o, rxRingFrames: 4096 }, 9000), { version: 2, frameSize: 9104, frameCount: 4096 });
  t.deepEqual(rxRingOptions({ ...o, rxRing: 'v3' }, 1500), { version: 3, blockSize: 256 << 10, blockCount: DEFAULT_RX_RING_BLOCKS, retireTimeoutMs: 1 });
  t.like(rxRingOptions({ ...o, rxRing: 'v3', rxRingBlocks: 8 }, 1500), { blockCount: 8 });
});
