/**
 * The I/O boundary of the control plane, as ports.ts is the datapath's: the control channel
 * talks to a ControlSocket (frames in and out) and the control plane to a ControlClock (time
 * and timers), never to the addon or to the global timers. The daemon uses the AF_PACKET
 * socket and the system clock; tests, the simulator and the fuzz benchmark use the memory
 * wire and the manual clock below, so they drive the real ControlPlane → ControlChannel →
 * ControlAuthenticator → Reassembler → Membership stack without root and deterministically.
 */

import { isLnlbError } from '../errors.js';
import { controlDoorbellFilter, controlFilter, DOORBELL_SNAP, runBpf, withVlanGuard } from '../net/bpf.js';
import { ETH_HLEN, ETH_P_LNLB, macEquals } from '../net/ethernet.js';
import { insertVlanTag, VLAN_HLEN } from '../net/vlan.js';
import * as port from '../port/native.js';

/** One control socket: whole Ethernet frames (destination MAC first). */
export interface ControlSocket {
  open(): void;
  close(): void;
  /** Sends frame[0, length); false when it was dropped (socket closed, buffer full). */
  send(frame: Uint8Array, length: number): boolean;
  /** Copies the next received frame into `buf` and returns its length; -1 when none is waiting. */
  recv(buf: Uint8Array): number;
  /**
   * When the frame the last `recv` returned reached this host (wall-clock ms: the kernel's
   * receive time), or NaN when not known. A node reading quietly reads a heartbeat up to an
   * interval after it came: its sender was heard then, not at the read.
   */
  receivedAt(): number;
  /** `cb` runs when frames may be waiting (level: it runs again while any are left unread). */
  onReadable(cb: () => void): void;
  /**
   * Whether `onReadable` is called for every frame (true after open). Off, it is called only
   * for frames that are not HEARTBEATs (the doorbell: bpf.ts controlDoorbellFilter), and the
   * heartbeats wait until read: a settled control plane reads them when its own timer wakes
   * it (control-plane.ts, quiet reading). Returns false, still watching, when frames were
   * already waiting: the caller reads them first.
   */
  setWatching(on: boolean): boolean;
  /** Frames the socket dropped because they were not read in time, since open(). */
  droppedFrames(): number;
}

export type TimerHandle = unknown;

/** Time as the control plane sees it. */
export interface ControlClock {
  /** Monotonic milliseconds (timers, rounds, expiry). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (authentication sequences, replay tolerance). */
  wallNow(): number;
  /** The wall clock to the microsecond, the clock of the sockets' receive times (`receivedAt`). */
  preciseWallNow(): number;
  setTimer(cb: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /** Runs `cb` after what is already due (timers, I/O): how a long job yields. */
  defer(cb: () => void): void;
}

/** The process's clocks and libuv's timers. */
export const systemClock: ControlClock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  preciseWallNow: () => port.realtimeMs(),
  setTimer: (cb, ms) => setTimeout(cb, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  defer: (cb) => void setImmediate(cb),
};

/** The control socket's receive buffer: a state transfer arrives as a burst of fragments. */
const CONTROL_RCVBUF = 8 << 20;
/** The ring's bytes by default (--control-ring-kib: options.ts says why this size): 2048 slots of 2 KiB. */
export const DEFAULT_CONTROL_RING_BYTES = 4 << 20;
/** Fewest ring slots, whatever the size given and the slot size (a jumbo MTU's slots are larger). */
const MIN_RING_SLOTS = 128;
/** Frames taken from the ring per read, and the bytes they are copied into (64 KiB + 18 at least). */
const RING_BATCH = 64;
const RING_READ_BYTES = 256 << 10;
/** The doorbell's receive buffer: the kernel's least (a few frames); it only has to say "something came". */
const DOORBELL_RCVBUF = 1;

export interface PacketControlSocketOptions {
  dev: string;
  ownMac: Uint8Array;
  clusterMac: Uint8Array;
  multicast: boolean;
  /** --vlan: the trunk VLAN the control frames travel on (tagged on send; the filters pass only it); 0: untagged. */
  vlan?: number;
  /** The link MTU: the ring's slot size. */
  mtu: number;
  /** The receive ring's bytes (TPACKET_V2 slots of one frame each); default DEFAULT_CONTROL_RING_BYTES. */
  ringBytes?: number;
}

/** Slots of `frameSize` bytes in a ring of `ringBytes` (at least MIN_RING_SLOTS). */
export function controlRingSlots(ringBytes: number, frameSize: number): number {
  return Math.max(MIN_RING_SLOTS, Math.floor(ringBytes / frameSize));
}

/**
 * The control plane's own AF_PACKET socket (LNLB's EtherType, a kernel filter for frames to
 * the cluster MAC or to us), so a data flood cannot starve heartbeats. Read through a
 * TPACKET_V2 ring, 64 frames per call (one system call per batch, not per frame: under a
 * flood of forged frames the reader keeps up longer, and fewer genuine heartbeats are
 * dropped), woken by libuv (uv_poll) on the first frame of a quiet wire.
 */
export class PacketControlSocket implements ControlSocket {
  readonly #o: PacketControlSocketOptions;
  #fd = -1;
  #watch: { stop(): void } | undefined;
  /** The doorbell socket (frames but heartbeats), watched while the control socket is not. */
  #bellFd = -1;
  #bellWatch: { stop(): void } | undefined;
  readonly #bellScratch = new Uint8Array(DOORBELL_SNAP);
  #onReadable: () => void = () => {};
  readonly #batch = new Uint8Array(RING_READ_BYTES);
  readonly #meta = new Uint32Array(RING_BATCH * port.META_WORDS);
  readonly #stamps = new Float64Array(RING_BATCH);
  /** --vlan: a frame to send, with room for its tag. */
  readonly #tagged: Uint8Array;
  #count = 0;
  #next = 0;

  constructor(options: PacketControlSocketOptions) {
    this.#o = options;
    // A control frame is at most the MTU with its Ethernet header (control-channel.ts fragments to it).
    this.#tagged = new Uint8Array((options.vlan ?? 0) === 0 ? 0 : options.mtu + ETH_HLEN + VLAN_HLEN);
  }

  open(): void {
    const vlan = this.#o.vlan ?? 0;
    const socketOptions = {
      // On a trunk, all frames: the kernel clears a frame's VLAN tag before it hands it to
      // sockets bound to its EtherType (net/core/dev.c, when no VLAN device takes it), so only a
      // socket bound to every protocol still sees which VLAN it came on; the filter checks both.
      protocol: vlan === 0 ? ETH_P_LNLB : port.ETH_P_ALL,
      // Control frames go to the cluster MAC, which is not ours: the NIC must pass them up
      // (promiscuous for the unicast form, a membership for the multicast one).
      promisc: !this.#o.multicast,
      ...(this.#o.multicast ? { multicast: this.#o.clusterMac } : {}),
      vnetHdr: false,
      ignoreOutgoing: true,
    };
    this.#fd = port.packetOpen(this.#o.dev, { ...socketOptions, filter: withVlanGuard(controlFilter(this.#o.ownMac, this.#o.clusterMac), vlan), rcvBuf: CONTROL_RCVBUF });
    this.#bellFd = port.packetOpen(this.#o.dev, { ...socketOptions, filter: withVlanGuard(controlDoorbellFilter(this.#o.ownMac, this.#o.clusterMac), vlan), rcvBuf: DOORBELL_RCVBUF });
    const frameSize = port.v2FrameSize(this.#o.mtu, false);
    const frameCount = controlRingSlots(this.#o.ringBytes ?? DEFAULT_CONTROL_RING_BYTES, frameSize);
    port.ringOpen(this.#fd, { version: 2, frameSize, frameCount, copyQueueBytes: 1 << 20, holdOffUs: 0 });
    this.setWatching(true);
  }

  setWatching(on: boolean): boolean {
    if (this.#fd < 0) return on;
    if (on) {
      this.#bellWatch?.stop();
      this.#bellWatch = undefined;
      if (this.#watch === undefined) this.#watchSocket();
      return true;
    }
    if (this.#watch === undefined) return false;
    // The bell first, emptied of what rang while the socket was watched; then a look at the
    // ring: a frame that came before the bell was armed is seen here, one after rings it.
    this.#drainBell();
    if (this.#bellWatch === undefined) this.#watchBell();
    if (port.pollIn(this.#fd, 0)) return true;
    this.#watch.stop();
    this.#watch = undefined;
    return false;
  }

  #watchSocket(): void {
    this.#watch = port.watch(this.#fd, () => this.#onReadable());
  }

  #watchBell(): void {
    this.#bellWatch = port.watch(this.#bellFd, () => {
      this.#drainBell();
      this.#onReadable();
    });
  }

  /** Empties the doorbell (its frames only ring it: the control socket has them, in order). */
  #drainBell(): void {
    try {
      while (port.recv(this.#bellFd, this.#bellScratch, 0, DOORBELL_SNAP) >= 0);
    } catch (err) {
      // The link went down (the watch took the report; a read may still meet it once).
      if (!isLnlbError(err) || err.errno !== 'ENETDOWN') throw err;
    }
  }

  close(): void {
    this.#watch?.stop();
    this.#watch = undefined;
    this.#bellWatch?.stop();
    this.#bellWatch = undefined;
    if (this.#fd >= 0) port.close(this.#fd);
    if (this.#bellFd >= 0) port.close(this.#bellFd);
    this.#fd = -1;
    this.#bellFd = -1;
  }

  send(frame: Uint8Array, length: number): boolean {
    if (this.#fd < 0) return false;
    const vlan = this.#o.vlan ?? 0;
    if (vlan === 0) return port.send(this.#fd, frame, 0, length) > 0;
    // On a trunk the frame leaves tagged: the kernel sends a packet socket's bytes as they are.
    const tagged = this.#tagged;
    tagged.set(frame.subarray(0, length));
    return port.send(this.#fd, tagged, 0, insertVlanTag(tagged, 0, length, vlan)) > 0;
  }

  recv(buf: Uint8Array): number {
    if (this.#fd < 0) return -1;
    if (this.#next >= this.#count) {
      this.#next = 0;
      this.#count = 0;
      try {
        this.#count = port.ringRead(this.#fd, this.#batch, 0, this.#batch.length, this.#meta, RING_BATCH, 0, this.#stamps);
      } catch (err) {
        // The link went down (reported once; the datapath says so): nothing to read until it is back.
        if (isLnlbError(err) && err.errno === 'ENETDOWN') return -1;
        throw err;
      }
      if (this.#count === 0) return -1;
    }
    const row = this.#next++ * port.META_WORDS;
    const off = this.#meta[row]!;
    const len = Math.min(this.#meta[row + 1]!, buf.length);
    buf.set(this.#batch.subarray(off, off + len));
    return len;
  }

  onReadable(cb: () => void): void {
    this.#onReadable = cb;
  }

  receivedAt(): number {
    return this.#next > 0 ? this.#stamps[this.#next - 1]! : Number.NaN;
  }

  droppedFrames(): number {
    return this.#fd < 0 ? 0 : port.ringStats(this.#fd).drops;
  }
}

// ---------------------------------------------------------------------------------------
// In memory: a manual clock and a wire, for tests, the simulator and the fuzz benchmark.

interface PendingTimer {
  at: number;
  seq: number;
  cb: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. Timers run in (time, creation) order; `defer`
 * callbacks are timers due now. `advance` runs everything due up to `now + ms`, setting
 * `now` to each timer's time as it runs it. Promise continuations (the channel's paced state
 * transfer) run in microtasks: `run` lets them in between timers.
 */
export class ManualClock implements ControlClock {
  #now: number;
  /** Wall clock minus monotonic clock; a test moves the wall clock alone with `stepWall`. */
  #wallOffset: number;
  /** A binary min-heap by (at, seq): a flood on the memory wire is many timers. */
  readonly #heap: PendingTimer[] = [];
  #seq = 0;

  constructor(start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#wallOffset = wallStart - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  preciseWallNow(): number {
    return this.wallNow();
  }

  /** The wall clock jumps (NTP step, an operator's `date -s`); the monotonic one does not. */
  stepWall(deltaMs: number): void {
    this.#wallOffset += deltaMs;
  }

  setTimer(cb: () => void, ms: number): TimerHandle {
    const t: PendingTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, cb, cancelled: false };
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(t, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = t;
    return t;
  }

  /** Cancelled timers stay in the heap, skipped when they come up. */
  clearTimer(handle: TimerHandle): void {
    const t = handle as PendingTimer | undefined;
    if (t !== undefined) t.cancelled = true;
  }

  defer(cb: () => void): void {
    this.setTimer(cb, 0);
  }

  /** Timers waiting (cancelled ones included until they come up). */
  get pending(): number {
    return this.#heap.length;
  }

  #pop(until: number): PendingTimer | undefined {
    const h = this.#heap;
    for (;;) {
      const top = h[0];
      if (top === undefined || top.at > until) return undefined;
      const last = h.pop()!;
      if (h.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= h.length) break;
          const r = l + 1;
          const c = r < h.length && before(h[r]!, h[l]!) ? r : l;
          if (!before(h[c]!, last)) break;
          h[i] = h[c]!;
          i = c;
        }
        h[i] = last;
      }
      if (!top.cancelled) return top;
    }
  }

  /** Runs every timer due up to now + ms (synchronously; microtasks wait until the caller yields). */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (let t = this.#pop(until); t !== undefined; t = this.#pop(until)) {
      this.#now = Math.max(this.#now, t.at);
      t.cb();
    }
    this.#now = until;
  }

  /** As advance, with the microtask queue drained after every timer (paced sends progress). */
  async run(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await drainMicrotasks();
      const t = this.#pop(until);
      if (t === undefined) break;
      this.#now = Math.max(this.#now, t.at);
      t.cb();
    }
    this.#now = until;
  }
}

function before(a: PendingTimer, b: PendingTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

async function drainMicrotasks(): Promise<void> {
  // A few turns of the microtask queue: an awaited promise chain settles within them.
  for (let i = 0; i < 4; i++) await Promise.resolve();
}

export interface MemoryWireOptions {
  /** Delivery delay, ms (default 0.1: after the sender's current job). */
  delayMs?: number;
  /** Bytes a socket holds unread before it drops (the kernel's receive buffer). Default 8 MiB. */
  rcvBufBytes?: number;
}

/** What a wire observer sees: every frame sent, with the sender's MAC. */
export type WireTap = (frame: Uint8Array, from: MemoryControlSocket | undefined) => void;

/**
 * One Ethernet segment in memory. Every frame sent is delivered, after `delayMs` on the
 * clock, to every other open socket whose filter takes it (destination = the cluster MAC or
 * the socket's own MAC, as the kernel filter of the real socket). `inject` puts a frame on
 * the wire from outside any node (an adversary); `filter` may drop or rewrite frames in
 * flight (loss, partitions).
 */
export class MemoryControlWire {
  readonly #clock: ControlClock;
  readonly #delayMs: number;
  readonly #rcvBufBytes: number;
  readonly sockets: MemoryControlSocket[] = [];
  /** Frames every socket dropped because its receive buffer was full. */
  drops = 0;
  framesSent = 0;
  taps: WireTap[] = [];
  /** Returns false to lose the frame on its way to `to`. */
  filter: ((frame: Uint8Array, from: MemoryControlSocket | undefined, to: MemoryControlSocket) => boolean) | undefined;

  constructor(clock: ControlClock, options: MemoryWireOptions = {}) {
    this.#clock = clock;
    this.#delayMs = options.delayMs ?? 0.1;
    this.#rcvBufBytes = options.rcvBufBytes ?? CONTROL_RCVBUF;
  }

  /** @internal The wire's wall clock: when a socket received a frame. */
  wallNow(): number {
    return this.#clock.wallNow();
  }

  /** A socket for a node with MAC `ownMac` in a cluster whose MAC is `clusterMac`. */
  socket(ownMac: Uint8Array, clusterMac: Uint8Array): MemoryControlSocket {
    const s = new MemoryControlSocket(this, ownMac, clusterMac, this.#rcvBufBytes);
    this.sockets.push(s);
    return s;
  }

  /** A frame from a host that is no node (its source MAC is whatever the frame says). */
  inject(frame: Uint8Array, length = frame.length): void {
    this.transmit(undefined, frame, length);
  }

  /** @internal Called by a socket's send. */
  transmit(from: MemoryControlSocket | undefined, frame: Uint8Array, length: number): void {
    const copy = frame.slice(0, length);
    this.framesSent++;
    for (const tap of this.taps) tap(copy, from);
    for (const to of this.sockets) {
      if (to === from || !to.isOpen || !to.accepts(copy)) continue;
      if (this.filter && !this.filter(copy, from, to)) continue;
      this.#clock.setTimer(() => to.deliver(copy), this.#delayMs);
    }
  }
}

export class MemoryControlSocket implements ControlSocket {
  readonly #wire: MemoryControlWire;
  readonly ownMac: Uint8Array;
  readonly #clusterMac: Uint8Array;
  readonly #rcvBufBytes: number;
  readonly #queue: Uint8Array[] = [];
  /** When each queued frame was delivered (the wire clock's wall time), and the last one read's. */
  readonly #times: number[] = [];
  #lastReceivedAt = Number.NaN;
  #head = 0;
  #queuedBytes = 0;
  #open = false;
  #watching = true;
  readonly #doorbell: Uint32Array;
  #onReadable: () => void = () => {};
  /** Frames dropped because the receive buffer was full. */
  drops = 0;
  sent = 0;
  /** Times `onReadable` was called: for each frame while watched, for each doorbell frame while not. */
  readableCalls = 0;
  /** Sees each frame as it is read (the wire's own frame object, as its taps saw it sent). */
  onRead: ((frame: Uint8Array) => void) | undefined;

  constructor(wire: MemoryControlWire, ownMac: Uint8Array, clusterMac: Uint8Array, rcvBufBytes: number) {
    this.#wire = wire;
    this.ownMac = ownMac.slice(0, 6);
    this.#clusterMac = clusterMac.slice(0, 6);
    this.#rcvBufBytes = rcvBufBytes;
    this.#doorbell = controlDoorbellFilter(this.ownMac, this.#clusterMac);
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Frames waiting to be read. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** The kernel filter's rule: to the cluster MAC or to us. */
  accepts(frame: Uint8Array): boolean {
    return frame.length >= 14 && (macEquals(frame, 0, this.#clusterMac, 0) || macEquals(frame, 0, this.ownMac, 0));
  }

  open(): void {
    this.#open = true;
    this.#watching = true;
  }

  /** Resuming with frames waiting calls `onReadable` once, as a level-triggered poll would. */
  setWatching(on: boolean): boolean {
    if (!on && this.queued > 0) {
      this.#watching = true;
      return true;
    }
    const resumed = on && !this.#watching;
    this.#watching = on;
    if (resumed && this.queued > 0) this.#onReadable();
    return on;
  }

  get watching(): boolean {
    return this.#watching;
  }

  close(): void {
    this.#open = false;
    this.#queue.length = 0;
    this.#times.length = 0;
    this.#head = 0;
    this.#queuedBytes = 0;
  }

  send(frame: Uint8Array, length: number): boolean {
    if (!this.#open) return false;
    this.sent++;
    this.#wire.transmit(this, frame, length);
    return true;
  }

  recv(buf: Uint8Array): number {
    if (this.#head >= this.#queue.length) return -1;
    const frame = this.#queue[this.#head]!;
    this.#lastReceivedAt = this.#times[this.#head]!;
    this.#queue[this.#head++] = EMPTY;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#times.splice(0, this.#head);
      this.#head = 0;
    }
    this.#queuedBytes -= frame.length;
    this.onRead?.(frame);
    const n = Math.min(frame.length, buf.length);
    buf.set(frame.subarray(0, n));
    return n;
  }

  onReadable(cb: () => void): void {
    this.#onReadable = cb;
  }

  receivedAt(): number {
    return this.#lastReceivedAt;
  }

  droppedFrames(): number {
    return this.drops;
  }

  /** @internal The wire hands a frame over. */
  deliver(frame: Uint8Array): void {
    if (!this.#open) return;
    if (this.#queuedBytes + frame.length > this.#rcvBufBytes) {
      this.drops++;
      this.#wire.drops++;
      return;
    }
    this.#queue.push(frame);
    this.#times.push(this.#wire.wallNow());
    this.#queuedBytes += frame.length;
    // Not watched: the doorbell's filter, as the kernel would run it, says whether it rings.
    if (this.#watching || runBpf(this.#doorbell, frame, frame.length) > 0) {
      this.readableCalls++;
      this.#onReadable();
    }
  }
}

const EMPTY = new Uint8Array(0);
