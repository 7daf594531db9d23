/**
 * A bond's datapath thread: the TAP facing the host on one side, one AF_PACKET socket per
 * slave on the other, BondCore deciding in between. Event-driven (a uv_poll per fd and a 10 ms
 * timer for the monitors) rather than a blocking loop, because it waits on several fds at
 * once and the monitors must tick while the wire is quiet. Frames keep their virtio-net
 * header both ways, so GSO frames and partial checksums cross the bond whole.
 */

import { readFileSync } from 'node:fs';
import { readLinkSpeed } from '../bond/link-speed.js';
import { networkInterfaces } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BondCore, MAX_SLAVES, RX_DELIVER, type BondIo, type SlaveConfig } from '../bond/bond-core.js';
import type { BondOptions } from '../bond/options.js';
import { formatMac } from '../net/ethernet.js';
import { parseIPv4 } from '../net/ipv4.js';
import { parseIPv6 } from '../net/ipv6.js';
import { copyWithTag } from '../net/vlan.js';
import { parseProcIgmp, parseProcIgmp6 } from '../net/igmp.js';
import { lnlbError, serializeError, type SerializedError } from '../errors.js';
import * as port from '../port/native.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';

export interface BondThreadData {
  name: string;
  options: BondOptions;
  tapFd: number;
  mac: Uint8Array;
  vnetHdrLen: number;
  version: string;
}

export interface BondSlaveHandoff extends SlaveConfig {
  fd: number;
}

export type MainToBond =
  | { type: 'enslave'; id: number; slave: BondSlaveHandoff; adoptMac: boolean }
  | { type: 'release'; id: number; name: string }
  | { type: 'status'; id: number }
  | { type: 'stop'; id: number };

export interface BondThreadStatus {
  status: ReturnType<BondCore['statusView']>;
  mac: string;
  counters: BondCore['counters'];
  slaves: Array<{ name: string; linkState: string; carries: boolean; mac: string; txFrames: number; rxFrames: number; actorState?: number; partnerState?: number; tapDrops?: number }>;
  promiscuous: boolean;
  tapWriteDrops: number;
  /** Frames that came tagged (802.1Q) and went to the host with their tag put back. */
  vlanFramesIn: number;
}

export type BondToMain =
  | { type: 'ready'; tid: number }
  /** `error`: serializeError's form, revived by the manager with its code (LNLB_ERR_BOND_SLAVE, ...). */
  | { type: 'reply'; id: number; result?: unknown; error?: SerializedError }
  | { type: 'event'; kind: string; fields: Record<string, string | number | boolean | undefined> }
  | { type: 'error'; error: SerializedError };

/** Frames taken from one fd per wake-up, so one busy side cannot starve the other. */
const BATCH = 64;
const TICK_MS = 10;
/** Room for a GSO frame of 64 KiB with its headers. */
const TAP_FRAME_BYTES = 10 + 65_536 + 256;
const RX_BYTES = 1 << 20;
/** The bond's addresses are read again at most this often (getifaddrs is a netlink dump, ~50 µs): an address added is in use for ARP probes, peer notifications and alb within a quarter second. */
const ADDRESS_REFRESH_MS = 250;

interface SlavePort {
  name: string;
  slot: number;
  fd: number;
  watcher: port.Watcher;
  /** A send-only socket holding promiscuous membership while the bond's TAP is promiscuous. */
  promiscFd: number;
}

function post(message: BondToMain): void {
  parentPort?.postMessage(message);
}

function run(data: BondThreadData): void {
  nameOwnThread('lnlb-bond');
  lowerDatapathThread();
  const slaves: (SlavePort | undefined)[] = [];
  const fdBySlot = new Int32Array(64).fill(-1);
  let addresses: number[] = [];
  let addresses6: Uint8Array[] = [];
  let addressesAt = Number.NEGATIVE_INFINITY;
  const refreshAddresses = (): void => {
    const now = performance.now();
    if (now - addressesAt < ADDRESS_REFRESH_MS) return;
    addressesAt = now;
    const all = networkInterfaces()[data.name] ?? [];
    // A multicast address on the bond (ip address add ... autojoin) is a group joined, not an address to announce.
    addresses = all.filter((a) => a.family === 'IPv4').map((a) => parseIPv4(a.address)).filter((ip) => ip >>> 28 !== 0xe);
    addresses6 = all.filter((a) => a.family === 'IPv6').map((a) => parseIPv6(a.address.split('%')[0]!));
  };
  let tapWriteDrops = 0;
  let vlanFramesIn = 0;

  const io: BondIo = {
    send(slot, buf, off, len) {
      const fd = fdBySlot[slot]!;
      if (fd < 0) return false;
      try {
        return port.send(fd, buf, off, len) > 0;
      } catch {
        // ENETDOWN / ENXIO while the link is going: the monitor takes the slave out shortly.
        return false;
      }
    },
    carrier(slot) {
      const slave = slaves[slot];
      if (slave === undefined) return false;
      try {
        return port.ifInfo(slave.name).running;
      } catch {
        return false;
      }
    },
    linkSpeed(slot) {
      const slave = slaves[slot];
      return slave === undefined ? { speed: 0, fullDuplex: undefined } : readLinkSpeed(slave.name);
    },
    setSlaveMac(slot, mac) {
      const slave = slaves[slot];
      if (slave === undefined) return;
      try {
        port.ifSetMac(slave.name, mac);
      } catch (err) {
        post({ type: 'event', kind: 'mac-failed', fields: { slave: slave.name, error: (err as Error).message } });
      }
    },
    setBondMac(mac) {
      try {
        port.ifSetMac(data.name, mac);
      } catch (err) {
        post({ type: 'event', kind: 'mac-failed', fields: { slave: data.name, error: (err as Error).message } });
      }
    },
    bondAddresses() {
      refreshAddresses();
      return addresses;
    },
    bondAddresses6() {
      refreshAddresses();
      return addresses6;
    },
    bondGroups() {
      // Read only after a failover (resend_igmp): this thread's network namespace is the bond's.
      const read = (path: string): string => {
        try {
          return readFileSync(path, 'utf8');
        } catch {
          return '';
        }
      };
      return { v4: parseProcIgmp(read('/proc/net/igmp'), data.name), v6: parseProcIgmp6(read('/proc/net/igmp6'), data.name) };
    },
    event(kind, fields) {
      post({ type: 'event', kind, fields });
    },
  };

  const core = new BondCore({ name: data.name, options: data.options, mac: data.mac, vnetHdrLen: data.vnetHdrLen, version: data.version }, io);

  // Host → wire.
  const txBuf = new Uint8Array(TAP_FRAME_BYTES);
  const onTapReadable = (): void => {
    const now = performance.now();
    for (let i = 0; i < BATCH; i++) {
      const n = port.recv(data.tapFd, txBuf, 0, txBuf.length);
      if (n <= 0) break;
      core.transmit(txBuf, 0, n, now);
    }
  };
  const tapWatcher = port.watch(data.tapFd, onTapReadable);

  // Wire → host: one buffer for every slave (one slave is read at a time).
  const rxBuf = new Uint8Array(RX_BYTES);
  const meta = new Uint32Array(BATCH * port.META_WORDS);
  const offsets = new Uint32Array(BATCH);
  const lengths = new Uint32Array(BATCH);
  // A tagged frame goes to the host with its tag put back (the kernel took it off into the
  // packet's auxdata): the host's VLAN devices on the bond (bond0.100) need it.
  const tagged = new Uint8Array(RX_BYTES);
  const one = Uint32Array.of(0);
  const oneLength = new Uint32Array(1);
  const readSlave = (slave: SlavePort): void => {
    const now = performance.now();
    const count = port.ringRead(slave.fd, rxBuf, 0, rxBuf.length, meta, BATCH, 0);
    let deliver = 0;
    for (let i = 0; i < count; i++) {
      const row = i * port.META_WORDS;
      const off = meta[row]!;
      const len = meta[row + 1]!;
      const flags = meta[row + 3]!;
      if ((flags & port.META_TRUNCATED) !== 0) continue;
      if (core.receive(slave.slot, rxBuf, off, len, flags & 0xff, now) !== RX_DELIVER) continue;
      if ((flags & port.META_VLAN) !== 0) {
        // The frames before it first: the host gets them in the order they came.
        if (deliver > 0) tapWriteDrops += deliver - port.writeBatch(data.tapFd, rxBuf, offsets, lengths, deliver);
        deliver = 0;
        oneLength[0] = copyWithTag(rxBuf, off, len, tagged, flags >>> 16, data.vnetHdrLen);
        if (oneLength[0]! > 0) tapWriteDrops += 1 - port.writeBatch(data.tapFd, tagged, one, oneLength, 1);
        vlanFramesIn++;
        continue;
      }
      offsets[deliver] = off;
      lengths[deliver] = len;
      deliver++;
    }
    if (deliver > 0) tapWriteDrops += deliver - port.writeBatch(data.tapFd, rxBuf, offsets, lengths, deliver);
  };

  const syncPromiscuous = (): void => {
    let promisc = false;
    try {
      promisc = port.ifInfo(data.name).promisc;
    } catch {
      return;
    }
    if (promisc === core.promiscuous) return;
    core.promiscuous = promisc;
    for (const slave of slaves) if (slave !== undefined) setSlavePromisc(slave, promisc);
  };
  const setSlavePromisc = (slave: SlavePort, on: boolean): void => {
    if (on && slave.promiscFd < 0) {
      try {
        slave.promiscFd = port.packetOpen(slave.name, { protocol: 0, promisc: true, vnetHdr: false, ignoreOutgoing: true });
      } catch (err) {
        post({ type: 'event', kind: 'promisc-failed', fields: { slave: slave.name, error: (err as Error).message } });
      }
    } else if (!on && slave.promiscFd >= 0) {
      port.close(slave.promiscFd);
      slave.promiscFd = -1;
    }
  };

  let lastPromiscCheck = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - lastPromiscCheck >= 100) {
      lastPromiscCheck = now;
      syncPromiscuous();
    }
    core.tick(now);
  }, TICK_MS);

  const release = (name: string): void => {
    const slot = core.slotOf(name);
    if (slot < 0) return;
    core.removeSlave(name, performance.now());
    const slave = slaves[slot];
    if (slave !== undefined) {
      slave.watcher.stop();
      setSlavePromisc(slave, false);
    }
    slaves[slot] = undefined;
    fdBySlot[slot] = -1;
  };

  const status = (): BondThreadStatus => ({
    status: core.statusView(),
    mac: formatMac(core.mac),
    counters: { ...core.counters },
    slaves: core.slaveNames().map((name) => {
      const c = core.slaveCounters(name)!;
      const states = core.portStates(name);
      return {
        name,
        linkState: core.slaveLinkState(name) ?? 'DOWN',
        carries: core.carriesTraffic(name),
        mac: formatMac(core.slaveMac(name) ?? new Uint8Array(6)),
        txFrames: c.txFrames,
        rxFrames: c.rxFrames,
        ...(states === undefined ? {} : states),
      };
    }),
    promiscuous: core.promiscuous,
    tapWriteDrops,
    vlanFramesIn,
  });

  parentPort?.on('message', (msg: MainToBond) => {
    try {
      switch (msg.type) {
        case 'enslave': {
          if (msg.adoptMac) core.adoptMac(msg.slave.mac);
          const now = performance.now();
          // The socket is read before the core knows the slave only if the slot is set first.
          if (core.slaveCount >= MAX_SLAVES) throw lnlbError('LNLB_ERR_BOND_SLAVE', `${msg.slave.name}: ${data.name} has ${MAX_SLAVES} slaves already, lnlb's limit: release one first`);
          const slot = core.addSlave(msg.slave, now);
          const slave: SlavePort = { name: msg.slave.name, slot, fd: msg.slave.fd, promiscFd: -1, watcher: undefined as unknown as port.Watcher };
          slave.watcher = port.watch(msg.slave.fd, () => readSlave(slave));
          slaves[slot] = slave;
          fdBySlot[slot] = msg.slave.fd;
          if (core.promiscuous) setSlavePromisc(slave, true);
          // LACPDUs and gratuitous ARPs the new slave triggers go out now, not at the next tick.
          core.tick(now);
          post({ type: 'reply', id: msg.id, result: { slot } });
          break;
        }
        case 'release':
          release(msg.name);
          post({ type: 'reply', id: msg.id, result: { released: msg.name } });
          break;
        case 'status':
          post({ type: 'reply', id: msg.id, result: status() });
          break;
        case 'stop':
          clearInterval(timer);
          for (const name of core.slaveNames()) release(name);
          tapWatcher.stop();
          post({ type: 'reply', id: msg.id, result: { stopped: true } });
          parentPort?.close();
          break;
      }
    } catch (err) {
      post({ type: 'reply', id: msg.id, error: serializeError(err) });
    }
  });
  post({ type: 'ready', tid: ownThreadId() });
}

// Imported on the main thread (a test does; bond-manager.ts did, for readLinkSpeed, now in
// bond/link-speed.ts), the thread's body must not run there: it named lnlbd's main thread
// lnlb-bond and lowered its priority to the datapath's.
if (!isMainThread) {
  try {
    run(workerData as BondThreadData);
  } catch (err) {
    post({ type: 'error', error: serializeError(err, 'bond thread') });
  }
}
