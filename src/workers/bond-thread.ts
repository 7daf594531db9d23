/**
 * A bond's datapath thread: the TAP facing the host on one side, one AF_PACKET socket per
 * slave on the other, BondCore deciding in between. Event-driven (a uv_poll per fd and a 10 ms
 * timer for the monitors) rather than a blocking loop, because it waits on several fds at
 * once and the monitors must tick while the wire is quiet. Frames keep their virtio-net
 * header both ways, so GSO frames and partial checksums cross the bond whole.
 *
 *   BondThread     the thread's state and its handlers (host → wire, wire → host, the timer,
 *                  the manager's requests)
 *   PortBondIo     BondIo over the real sockets and devices, for BondCore
 *   BondApi        the manager's requests (thread-rpc.ts), each with its typed answer
 */

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { BondEvent, BondEventFields, BondEventKind } from '../bond/bond-events.js';
import { BondCore, MAX_SLAVES, RX_DELIVER, type BondIo, type SlaveConfig } from '../bond/bond-core.js';
import { readLinkSpeed } from '../bond/link-speed.js';
import type { BondOptions } from '../bond/options.js';
import { lnlbError, serializeError, type SerializedError } from '../errors.js';
import { formatMac } from '../net/ethernet.js';
import { parseProcIgmp, parseProcIgmp6 } from '../net/igmp.js';
import { parseIPv4 } from '../net/ipv4.js';
import { parseIPv6 } from '../net/ipv6.js';
import { copyWithTag } from '../net/vlan.js';
import * as port from '../port/native.js';
import { lowerDatapathThread, nameOwnThread, ownThreadId } from './thread-priority.js';
import { serve } from './thread-rpc.js';

export interface BondThreadData {
  name: string;
  options: BondOptions;
  tapFd: number;
  mac: Uint8Array;
  vnetHdrLen: number;
  version: string;
  /** The thread's end of its request port (BondApi, thread-rpc.ts), moved to it. */
  requests: MessagePort;
}

export interface BondSlaveHandoff extends SlaveConfig {
  fd: number;
}

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

/** What the bond thread answers (thread-rpc.ts); a failure comes back as the LnlbError it threw, code kept. */
export interface BondApi {
  enslave(slave: BondSlaveHandoff, adoptMac: boolean): { slot: number };
  release(name: string): { released: string };
  status(): BondThreadStatus;
  /** Stops the thread's I/O; the thread ends once the answer is sent. */
  stop(): { stopped: true };
}

export type BondToMain = { type: 'ready'; tid: number } | ({ type: 'event' } & BondEvent) | { type: 'error'; error: SerializedError };

/** Frames taken from one fd per wake-up, so one busy side cannot starve the other. */
const BATCH = 64;
const TICK_MS = 10;
/** Room for a GSO frame of 64 KiB with its headers. */
const TAP_FRAME_BYTES = 10 + 65_536 + 256;
const RX_BYTES = 1 << 20;
/** The bond's addresses are read again at most this often (getifaddrs is a netlink dump, ~50 µs): an address added is in use for ARP probes, peer notifications and alb within a quarter second. */
const ADDRESS_REFRESH_MS = 250;
/**
 * How often the bond device's promiscuity is read, to pass it on to the slaves (the driver is
 * told at once; a TAP tells nobody): the monitor's period, miimon, or this without one.
 */
const PROMISC_CHECK_MS = 100;

interface SlavePort {
  name: string;
  slot: number;
  fd: number;
  watcher: port.Watcher | undefined;
  /** A send-only socket holding promiscuous membership while the bond's TAP is promiscuous. */
  promiscFd: number;
}

function post(message: BondToMain): void {
  parentPort?.postMessage(message);
}

function postEvent<K extends BondEventKind>(kind: K, fields: BondEventFields[K]): void {
  post({ type: 'event', kind, fields } as { type: 'event' } & BondEvent);
}

/** BondIo over the bond's real slaves, devices and /proc. */
class PortBondIo implements BondIo {
  readonly #name: string;
  readonly #slaves: readonly (SlavePort | undefined)[];
  /** The send socket of each slot, -1 when the slot is free: one load per frame sent. */
  readonly #fdBySlot: Int32Array;
  #addresses: number[] = [];
  #addresses6: Uint8Array[] = [];
  #addressesAt = Number.NEGATIVE_INFINITY;

  constructor(name: string, slaves: readonly (SlavePort | undefined)[], fdBySlot: Int32Array) {
    this.#name = name;
    this.#slaves = slaves;
    this.#fdBySlot = fdBySlot;
  }

  send(slot: number, buf: Uint8Array, off: number, len: number): boolean {
    const fd = this.#fdBySlot[slot]!;
    if (fd < 0) return false;
    try {
      return port.send(fd, buf, off, len) > 0;
    } catch {
      // ENETDOWN / ENXIO while the link is going: the monitor takes the slave out shortly.
      return false;
    }
  }

  carrier(slot: number): boolean {
    const slave = this.#slaves[slot];
    if (slave === undefined) return false;
    try {
      return port.ifInfo(slave.name).running;
    } catch {
      return false;
    }
  }

  linkSpeed(slot: number): { speed: number; fullDuplex: boolean | undefined } {
    const slave = this.#slaves[slot];
    return slave === undefined ? { speed: 0, fullDuplex: undefined } : readLinkSpeed(slave.name);
  }

  setSlaveMac(slot: number, mac: Uint8Array): void {
    const slave = this.#slaves[slot];
    if (slave !== undefined) this.#setMac(slave.name, mac);
  }

  setBondMac(mac: Uint8Array): void {
    this.#setMac(this.#name, mac);
  }

  #setMac(device: string, mac: Uint8Array): void {
    try {
      port.ifSetMac(device, mac);
    } catch (err) {
      postEvent('mac-failed', { slave: device, error: (err as Error).message });
    }
  }

  bondAddresses(): readonly number[] {
    this.#refreshAddresses();
    return this.#addresses;
  }

  bondAddresses6(): readonly Uint8Array[] {
    this.#refreshAddresses();
    return this.#addresses6;
  }

  #refreshAddresses(): void {
    const now = performance.now();
    if (now - this.#addressesAt < ADDRESS_REFRESH_MS) return;
    this.#addressesAt = now;
    const all = networkInterfaces()[this.#name] ?? [];
    // A multicast address on the bond (ip address add ... autojoin) is a group joined, not an address to announce.
    this.#addresses = all.filter((a) => a.family === 'IPv4').map((a) => parseIPv4(a.address)).filter((ip) => ip >>> 28 !== 0xe);
    this.#addresses6 = all.filter((a) => a.family === 'IPv6').map((a) => parseIPv6(a.address.split('%')[0]!));
  }

  bondGroups(): { v4: readonly number[]; v6: readonly Uint8Array[] } {
    // Read only after a failover (resend_igmp): this thread's network namespace is the bond's.
    const read = (path: string): string => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return '';
      }
    };
    return { v4: parseProcIgmp(read('/proc/net/igmp'), this.#name), v6: parseProcIgmp6(read('/proc/net/igmp6'), this.#name) };
  }

  event<K extends BondEventKind>(kind: K, fields: BondEventFields[K]): void {
    postEvent(kind, fields);
  }
}

class BondThread {
  readonly #data: BondThreadData;
  readonly #slaves: (SlavePort | undefined)[] = new Array<SlavePort | undefined>(MAX_SLAVES).fill(undefined);
  readonly #fdBySlot = new Int32Array(MAX_SLAVES).fill(-1);
  readonly #core: BondCore;
  readonly #promiscCheckMs: number;
  #tapWriteDrops = 0;
  #vlanFramesIn = 0;
  #lastPromiscCheck = 0;
  #timer: NodeJS.Timeout | undefined;
  #tapWatcher: port.Watcher | undefined;

  // Host → wire.
  readonly #txBuf = new Uint8Array(TAP_FRAME_BYTES);
  // Wire → host: one buffer for every slave (one slave is read at a time).
  readonly #rxBuf = new Uint8Array(RX_BYTES);
  readonly #meta = new Uint32Array(BATCH * port.META_WORDS);
  readonly #offsets = new Uint32Array(BATCH);
  readonly #lengths = new Uint32Array(BATCH);
  // A tagged frame goes to the host with its tag put back (the kernel took it off into the
  // packet's auxdata): the host's VLAN devices on the bond (bond0.100) need it.
  readonly #tagged = new Uint8Array(RX_BYTES);
  readonly #one = Uint32Array.of(0);
  readonly #oneLength = new Uint32Array(1);

  constructor(data: BondThreadData) {
    this.#data = data;
    this.#promiscCheckMs = data.options.miimon > 0 ? data.options.miimon : PROMISC_CHECK_MS;
    const io = new PortBondIo(data.name, this.#slaves, this.#fdBySlot);
    this.#core = new BondCore({ name: data.name, options: data.options, mac: data.mac, vnetHdrLen: data.vnetHdrLen, version: data.version }, io);
  }

  start(): void {
    this.#tapWatcher = port.watch(this.#data.tapFd, () => this.#fromHost());
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    const api: BondApi = {
      enslave: (slave, adoptMac) => this.#enslave(slave, adoptMac),
      release: (name) => {
        this.#release(name);
        return { released: name };
      },
      status: () => this.#status(),
      stop: () => {
        const stopped = this.#stop();
        // After comlink has posted the answer (a promise callback, before this turn ends).
        setImmediate(() => {
          this.#data.requests.close();
          parentPort?.close();
        });
        return stopped;
      },
    };
    serve(api, this.#data.requests);
    post({ type: 'ready', tid: ownThreadId() });
  }

  #fromHost(): void {
    const now = performance.now();
    const tapFd = this.#data.tapFd;
    for (let i = 0; i < BATCH; i++) {
      const n = port.recv(tapFd, this.#txBuf, 0, this.#txBuf.length);
      if (n <= 0) break;
      this.#core.transmit(this.#txBuf, 0, n, now);
    }
  }

  #fromSlave(slave: SlavePort): void {
    const now = performance.now();
    const core = this.#core;
    const tapFd = this.#data.tapFd;
    const rxBuf = this.#rxBuf;
    const meta = this.#meta;
    const offsets = this.#offsets;
    const lengths = this.#lengths;
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
        if (deliver > 0) this.#tapWriteDrops += deliver - port.writeBatch(tapFd, rxBuf, offsets, lengths, deliver);
        deliver = 0;
        this.#oneLength[0] = copyWithTag(rxBuf, off, len, this.#tagged, flags >>> 16, this.#data.vnetHdrLen);
        if (this.#oneLength[0]! > 0) this.#tapWriteDrops += 1 - port.writeBatch(tapFd, this.#tagged, this.#one, this.#oneLength, 1);
        this.#vlanFramesIn++;
        continue;
      }
      offsets[deliver] = off;
      lengths[deliver] = len;
      deliver++;
    }
    if (deliver > 0) this.#tapWriteDrops += deliver - port.writeBatch(tapFd, rxBuf, offsets, lengths, deliver);
  }

  #tick(): void {
    const now = performance.now();
    if (now - this.#lastPromiscCheck >= this.#promiscCheckMs) {
      this.#lastPromiscCheck = now;
      this.#syncPromiscuous();
    }
    this.#core.tick(now);
  }

  #syncPromiscuous(): void {
    let promisc = false;
    try {
      promisc = port.ifInfo(this.#data.name).promisc;
    } catch {
      return;
    }
    if (promisc === this.#core.promiscuous) return;
    this.#core.promiscuous = promisc;
    for (const slave of this.#slaves) if (slave !== undefined) this.#setSlavePromisc(slave, promisc);
  }

  #setSlavePromisc(slave: SlavePort, on: boolean): void {
    if (on && slave.promiscFd < 0) {
      try {
        slave.promiscFd = port.packetOpen(slave.name, { protocol: 0, promisc: true, vnetHdr: false, ignoreOutgoing: true });
      } catch (err) {
        postEvent('promisc-failed', { slave: slave.name, error: (err as Error).message });
      }
    } else if (!on && slave.promiscFd >= 0) {
      port.close(slave.promiscFd);
      slave.promiscFd = -1;
    }
  }

  #enslave(handoff: BondSlaveHandoff, adoptMac: boolean): { slot: number } {
    const core = this.#core;
    if (adoptMac) core.adoptMac(handoff.mac);
    const now = performance.now();
    if (core.slaveCount >= MAX_SLAVES) throw lnlbError('LNLB_ERR_BOND_SLAVE', `${handoff.name}: ${this.#data.name} has ${MAX_SLAVES} slaves already, lnlb's limit: release one first`);
    // The socket is read before the core knows the slave only if the slot is set first.
    const slot = core.addSlave(handoff, now);
    const slave: SlavePort = { name: handoff.name, slot, fd: handoff.fd, promiscFd: -1, watcher: undefined };
    slave.watcher = port.watch(handoff.fd, () => this.#fromSlave(slave));
    this.#slaves[slot] = slave;
    this.#fdBySlot[slot] = handoff.fd;
    if (core.promiscuous) this.#setSlavePromisc(slave, true);
    // LACPDUs and gratuitous ARPs the new slave triggers go out now, not at the next tick.
    core.tick(now);
    return { slot };
  }

  #release(name: string): void {
    const slot = this.#core.slotOf(name);
    if (slot < 0) return;
    this.#core.removeSlave(name, performance.now());
    const slave = this.#slaves[slot];
    if (slave !== undefined) {
      slave.watcher?.stop();
      this.#setSlavePromisc(slave, false);
    }
    this.#slaves[slot] = undefined;
    this.#fdBySlot[slot] = -1;
  }

  #status(): BondThreadStatus {
    const core = this.#core;
    return {
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
      tapWriteDrops: this.#tapWriteDrops,
      vlanFramesIn: this.#vlanFramesIn,
    };
  }

  #stop(): { stopped: true } {
    clearInterval(this.#timer);
    for (const name of this.#core.slaveNames()) this.#release(name);
    this.#tapWatcher?.stop();
    return { stopped: true };
  }
}

// Imported on the main thread (a test does; bond-manager.ts did, for readLinkSpeed, now in
// bond/link-speed.ts), the thread's body must not run there: it named lnlbd's main thread
// lnlb-bond and lowered its priority to the datapath's.
if (!isMainThread) {
  try {
    nameOwnThread('lnlb-bond');
    lowerDatapathThread();
    new BondThread(workerData as BondThreadData).start();
  } catch (err) {
    post({ type: 'error', error: serializeError(err, 'bond thread') });
  }
}
