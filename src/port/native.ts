/**
 * Typed access to the native port addon (native/, one source file per concern: tap.cc,
 * packet-socket.cc, packet-ring.cc, ifctl.cc, io.cc, watch.cc, ...): TAP devices, AF_PACKET
 * sockets with a TPACKET_V2 or TPACKET_V3 receive ring, link ioctls. Every call is synchronous; fds are
 * non-blocking and close-on-exec, and may be used from any thread of the process (open on
 * the main thread, read in a worker).
 *
 * Errors from the kernel come back as LnlbError with a code, the errno name and a message
 * that says what to do; argument mistakes (wrong types, ranges) stay TypeError/RangeError.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lnlbError, type ErrorCode, type LnlbError } from '../errors.js';

/** EtherType value that binds a socket to every protocol. */
export const ETH_P_ALL = 3;
/** Bytes of the virtio-net header before each frame on a vnetHdr socket or TAP. */
export const VNET_HDR_LEN = 10;
/** Words of `meta` per frame written by {@link ringRead}. */
export const META_WORDS = 4;
/** Flag in meta word 3: the frame was cut to fit the ring (copied less than its wire length). */
export const META_TRUNCATED = 0x100;
/** Flag in meta word 3 (ringReadInPlace): the frame is in the spill buffer (a whole GSO frame), not the ring. */
export const META_SPILLED = 0x200;
/**
 * Flag in meta word 3: the frame came with an 802.1Q tag, which the kernel removed before the
 * socket saw it (it always does); the tag's TCI (priority, DEI, VLAN id) is `word3 >>> 16`.
 */
export const META_VLAN = 0x400;
/** The VLAN id of a frame's meta word 3, or -1 when it came untagged. */
export function metaVlanId(word3: number): number {
  return (word3 & META_VLAN) === 0 ? -1 : (word3 >>> 16) & 0xfff;
}
/** A spill buffer that holds any GSO frame (64 KiB) with its Ethernet and virtio-net headers. */
export const SPILL_BYTES = (64 << 10) + 64;
/** Packet types found in the low byte of meta word 3 (linux/if_packet.h). */
export const PacketType = {
  HOST: 0,
  BROADCAST: 1,
  MULTICAST: 2,
  OTHERHOST: 3,
  OUTGOING: 4,
} as const;
/**
 * TPACKET_V3 defaults: 1 MiB blocks hold GSO frames of 64 KiB with room to spare; 32 of them
 * absorb ~20 ms at line rate on this class of machine; 1 ms bounds the latency a lone
 * frame waits for its partly filled block to be handed over.
 */
export const DEFAULT_RING: Readonly<RingV3Options> = { version: 3, blockSize: 1 << 20, blockCount: 32, retireTimeoutMs: 1 };
/**
 * Bytes of a TPACKET_V2 slot in front of the frame's network header: tpacket2_hdr and
 * sockaddr_ll (52 bytes) plus a MAC header of up to 28 bytes, aligned to 16 (80), plus the
 * virtio-net header (10) when the socket has one. A frame whose IP packet (≤ the MTU) is
 * longer than frameSize minus this goes through the copy path (see RingV2Options).
 */
export function v2SlotOverhead(vnetHdr: boolean): number {
  return 80 + (vnetHdr ? VNET_HDR_LEN : 0);
}
/**
 * TPACKET_V2 defaults for a caller that names no size: 2048-byte slots take a 1514-byte frame
 * whole (76 + 1514 = 1590 bytes used with the vnet header; any MTU up to 1958 fits), 32 to a
 * 64 KiB block; 32768 slots (64 MiB): ~100 ms of a stalled reader at 330k frames/s. lnlbd
 * passes its own slot size (v2FrameSize) and count, --rx-ring-frames (default 8192: the
 * measurement is in main/options.ts). A busy wire is read every 500 µs (holdOffUs): 75–80%
 * of V3's rate on a 64-byte flood instead of 40%.
 */
export const DEFAULT_RING_V2: Readonly<RingV2Options> = { version: 2, frameSize: 2048, frameCount: 32768, copyQueueBytes: 8 << 20, holdOffUs: 500 };
/**
 * The smallest slot that holds a whole frame of a device with this MTU: the kernel wants a
 * multiple of 16 (TPACKET_ALIGNMENT), not a power of two, so an MTU of 1500 takes 1600 bytes
 * (40 to a 64 KiB block), not 2048: the ring's resident memory is a fifth smaller.
 */
export function v2FrameSize(mtu: number, vnetHdr: boolean): number {
  return (v2SlotOverhead(vnetHdr) + mtu + 15) & ~15;
}

export interface TapOptions {
  /** IFF_VNET_HDR: every read and write carries a 10-byte virtio-net header first. */
  vnetHdr: boolean;
}

export interface TapHandle {
  fd: number;
  /** The name the kernel gave the device (the one asked for, or tapN for ''). */
  name: string;
}

export interface IfInfo {
  index: number;
  /** A fresh copy (its own ArrayBuffer). */
  mac: Uint8Array<ArrayBuffer>;
  mtu: number;
  up: boolean;
  /** Up with carrier (IFF_RUNNING). */
  running: boolean;
  promisc: boolean;
  /** The link type, ARPHRD_* (linux/if_arp.h): {@link ARPHRD_ETHER} for Ethernet, veth, TAP, bonds and VLANs. */
  type: number;
  /** The loopback device (IFF_LOOPBACK). */
  loopback: boolean;
}

/** ARPHRD_ETHER: a device that carries Ethernet frames, with a MAC of its own. */
export const ARPHRD_ETHER = 1;

/** An address of a device of this host (this network namespace), as {@link hostAddresses} lists them. */
export interface HostAddress {
  device: string;
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  address: Uint8Array;
}

export interface PacketOptions {
  /** EtherType in host order to bind to; {@link ETH_P_ALL} for every frame, 0 for send-only. */
  protocol: number;
  /** Promiscuous membership, dropped by the kernel when the socket closes. */
  promisc: boolean;
  /** Multicast MAC address to join (PACKET_MR_MULTICAST). */
  multicast?: Uint8Array;
  /** Classic BPF program, 4 words per instruction: code, jt, jf, k. */
  filter?: Uint32Array;
  /** PACKET_VNET_HDR: frames carry a 10-byte virtio-net header first (read and write). */
  vnetHdr: boolean;
  /** PACKET_IGNORE_OUTGOING: do not see frames this host sends on the device. */
  ignoreOutgoing: boolean;
  /** Receive buffer in bytes (only matters without a ring). */
  rcvBuf?: number;
}

/**
 * TPACKET_V3: frames packed into blocks, each block handed over when full or when its timer
 * fires. Cheapest per frame at high rates, but a lone frame waits up to retireTimeoutMs
 * (at least 1 ms) before the reader sees it.
 */
export interface RingV3Options {
  version: 3;
  /** Bytes per block, a multiple of the page size; must exceed the largest frame. */
  blockSize: number;
  blockCount: number;
  /** A partly filled block is handed over after this many milliseconds. */
  retireTimeoutMs: number;
}

/**
 * TPACKET_V2: fixed slots, each handed over the moment the kernel filled it (no timer: a
 * lone frame is readable at once). A frame larger than a slot (GSO frames of up to 64 KiB)
 * is also queued whole on the socket's receive queue, and ringRead takes it from there; its
 * slot holds only a truncated copy.
 */
export interface RingV2Options {
  version: 2;
  /** Bytes per slot, a multiple of 16, from 256; the frame gets frameSize - {@link v2SlotOverhead}. */
  frameSize: number;
  /** Slots; rounded up to fill whole blocks (64 KiB or one frame, whichever is larger). */
  frameCount: number;
  /**
   * Receive-queue bytes (SO_RCVBUF; the kernel doubles it) for frames larger than a slot;
   * beyond it they arrive truncated (META_TRUNCATED). 0: no copy path, always truncated.
   */
  copyQueueBytes: number;
  /**
   * Interrupt moderation: when a reader that read 8 frames or more since it last waited (less
   * than 1 ms ago) finds the ring empty, it sleeps this long instead of being woken by the
   * kernel for every frame; a reader on a quiet wire is woken by the very next frame. 0:
   * always woken at once (no frame ever held, but on a busy wire the wake-ups cost the
   * kernel more than half of its rate).
   */
  holdOffUs: number;
}

export type RingOptions = RingV2Options | RingV3Options;

/** What ringOpen takes: a version (3 when left out, as before V2 existed) and any of its options. */
export type RingOpenOptions = (Partial<Omit<RingV3Options, 'version'>> & { version?: 3 }) | (Partial<Omit<RingV2Options, 'version'>> & { version: 2 });

/** Totals since ringOpen (the kernel's counters reset on each read; these do not). */
export interface RingStats {
  /** Frames the filter accepted, including dropped ones (kernel semantics). */
  packets: number;
  /** Frames lost because the ring was full. */
  drops: number;
  /** Times the queue froze because the ring was full. */
  freezes: number;
}

export interface Watcher {
  /** Stops watching; call before close(fd). */
  stop(): void;
  /** Lets the event loop exit while the watch is active. */
  unref(): void;
  ref(): void;
}

/** Shape of the .node module; the exported functions below add types and error mapping. */
export interface NativeAddon {
  tapOpen(name: string, opts: TapOptions): TapHandle;
  ifInfo(name: string): IfInfo;
  hostAddresses(): HostAddress[];
  notify(socketPath: string, message: string): boolean;
  ifSetMac(name: string, mac: Uint8Array): void;
  ifSetUp(name: string, up: boolean): void;
  ifSetMtu(name: string, mtu: number): void;
  ifSetIPv4(name: string, addr: string, prefixLen: number): void;
  ifClearIPv4(name: string): void;
  ifAddIPv6(name: string, addr: string, prefixLen: number): void;
  packetOpen(dev: string, opts: PacketOptions): number;
  attachFilter(fd: number, program: Uint32Array): void;
  ringOpen(fd: number, opts: RingOptions): void;
  ringRead(fd: number, dst: Uint8Array, dstOffset: number, dstEnd: number, meta: Uint32Array, maxFrames: number, timeoutMs: number, stamps?: Float64Array): number;
  ringReadInPlace(fd: number, meta: Uint32Array, maxFrames: number, timeoutMs: number, spill: Uint8Array, stamps?: Float64Array): number;
  realtimeMs(): number;
  ringView(fd: number): ArrayBuffer;
  ringStats(fd: number): RingStats;
  ringWake(fd: number): void;
  send(fd: number, buf: Uint8Array, offset: number, length: number): number;
  writeBatch(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  recv(fd: number, buf: Uint8Array, offset: number, maxLength: number): number;
  watch(fd: number, onReadable: () => void): Watcher;
  pollIn(fd: number, timeoutMs: number): boolean;
  close(fd: number): void;
  flock(fd: number, exclusive: boolean, nonBlocking: boolean): boolean;
  hmacSha256Prepare(key: Uint8Array, state: Uint8Array): void;
  hmacSha256Tag(work: Uint8Array, frame: Uint8Array, from: number, to: number, outLen: number): void;
  hmacSha256Implementation(set?: 'auto' | 'portable'): 'sha-ni' | 'portable';
}

// ---------------------------------------------------------------------------------------
// Loading

let loaded: NativeAddon | undefined;

/** The repository root: the nearest folder above this file holding binding.gyp. */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp')) && existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Where node-gyp builds the addon target `name` (binding.gyp): build/Release/NAME.node under the package root. */
export function builtAddonPath(name: string): string {
  const relative = join('build', 'Release', `${name}.node`);
  const root = packageRoot();
  return root === undefined ? relative : join(root, relative);
}

/** Where the port addon is expected (build/Release/lnlb_port.node under the package root). */
export function addonPath(): string {
  return builtAddonPath('lnlb_port');
}

/**
 * Loads a .node file, or throws LNLB_ERR_PORT_ADDON whose message ends with `remedy` (what
 * builds it); the lab addon (lab/native.ts) loads through here too.
 */
export function loadNativeModule<T>(file: string, remedy: string): T {
  if (!existsSync(file)) {
    throw lnlbError('LNLB_ERR_PORT_ADDON', `native addon ${file} is missing: ${remedy}`);
  }
  try {
    return createRequire(import.meta.url)(file) as T;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw lnlbError('LNLB_ERR_PORT_ADDON', `native addon ${file} failed to load (${why}): ${remedy}`, { cause });
  }
}

/** Loads the port addon from a file; exported so the missing-addon message can be tested. */
export function loadAddonFrom(file: string): NativeAddon {
  return loadNativeModule<NativeAddon>(file, 'run npm ci (it builds the addon)');
}

/** Loaded on first use, so importing this module never fails on a machine without the addon. */
function addon(): NativeAddon {
  if (loaded === undefined) loaded = loadAddonFrom(addonPath());
  return loaded;
}

/** True when the addon loads (lets callers and tests skip instead of failing). */
export function addonAvailable(): boolean {
  try {
    addon();
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Errors

/** Calls of the lab addon (lab/native.ts), whose errors are mapped here too. */
export type LabOp = 'sendBurst' | 'netnsEnter' | 'notifyListen' | 'notifyRecv';

/** Names of the addon calls, as given to {@link toPortError}. */
export type PortOp = keyof NativeAddon | LabOp;

/** What the addon attaches to a failed system call. */
export interface NativeErrorInfo {
  /** errno name: EPERM, ENODEV, ... */
  errno: string;
  /** The failing call, e.g. 'ioctl(TUNSETIFF)'. */
  syscall: string;
  /** Device name or namespace path when the call was about one. */
  device?: string;
  message?: string;
}

const CAP_NET_ADMIN_WHAT: Partial<Record<PortOp, string>> = {
  ifSetMac: 'set the MAC address of',
  ifSetUp: 'change the state of',
  ifSetMtu: 'set the MTU of',
  ifSetIPv4: 'set an IPv4 address on',
  ifClearIPv4: 'remove the IPv4 address of',
  ifAddIPv6: 'add an IPv6 address to',
};

/**
 * Turns a failed native call into an LnlbError whose message says what to do. Pure: the
 * unit tests drive it with made-up errno values.
 */
export function toPortError(op: PortOp, info: NativeErrorInfo, cause?: unknown): LnlbError {
  const { errno, syscall } = info;
  const dev = info.device ?? '';
  const detail = info.message ?? `${syscall}: ${errno}`;
  const make = (code: ErrorCode, message: string): LnlbError => lnlbError(code, message, { cause, errno });
  if (op === 'flock') {
    // Lock files are ours (src/main/host-state.ts): a failure is a bug or an exhausted kernel, not the user's input.
    const why = errno === 'ENOLCK' ? ': the kernel is out of lock records; free some (fewer processes holding locks) and retry' : errno === 'EBADF' ? ': the lock file was closed' : '';
    return make('LNLB_ERR_PORT_IO', `flock failed (${errno})${why}`);
  }
  const setupCode: ErrorCode = op === 'tapOpen' || op === 'netnsEnter' || op in CAP_NET_ADMIN_WHAT ? 'LNLB_ERR_DEV_SETUP' : 'LNLB_ERR_PORT_IO';

  if (errno === 'EPERM' || errno === 'EACCES') {
    if (op === 'tapOpen') {
      // EACCES comes from open() when /dev/net/tun is root-only (mode 0600, the default).
      const access = syscall === 'open(/dev/net/tun)' ? ' (and read-write access to /dev/net/tun)' : '';
      return make('LNLB_ERR_PRIV_MISSING', `${errno}: lnlbd needs CAP_NET_ADMIN to create tap ${dev}${access}`);
    }
    if (op === 'packetOpen') return make('LNLB_ERR_PRIV_MISSING', `${errno}: AF_PACKET socket on ${dev} needs CAP_NET_RAW`);
    const what = CAP_NET_ADMIN_WHAT[op];
    if (what !== undefined) return make('LNLB_ERR_PRIV_MISSING', `${errno}: lnlbd needs CAP_NET_ADMIN to ${what} ${dev}`);
    if (op === 'netnsEnter') return make('LNLB_ERR_PRIV_MISSING', `${errno}: entering network namespace ${dev} needs CAP_SYS_ADMIN`);
    return make('LNLB_ERR_PRIV_MISSING', `${errno}: ${op} was refused (${detail}): run as root or grant CAP_NET_ADMIN and CAP_NET_RAW`);
  }
  if (op === 'tapOpen' && syscall === 'open(/dev/net/tun)' && (errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ENXIO')) {
    return make('LNLB_ERR_DEV_SETUP', '/dev/net/tun missing: load the tun module (modprobe tun)');
  }
  if (errno === 'ENAMETOOLONG') {
    const bytes = Buffer.byteLength(dev);
    if (op === 'tapOpen') {
      return make('LNLB_ERR_DEV_SETUP', `interface name ${dev} is ${bytes} bytes, Linux allows at most 15: pick a shorter name`);
    }
    return make('LNLB_ERR_DEV_NOT_FOUND', `no such device ${dev} (interface names are at most 15 bytes)`);
  }
  if (op === 'tapOpen' && errno === 'EBUSY') {
    return make('LNLB_ERR_DEV_SETUP', `device ${dev} exists already (EBUSY): another process holds it; stop it or pick another name`);
  }
  if (op === 'tapOpen' && errno === 'EINVAL' && syscall === 'ioctl(TUNSETIFF)') {
    return make('LNLB_ERR_DEV_SETUP', `device ${dev} exists already and is not a TAP, or the name is invalid (EINVAL): pick another name`);
  }
  if (op === 'netnsEnter' && errno === 'ENOENT') {
    return make('LNLB_ERR_DEV_SETUP', `no network namespace at ${dev} (ENOENT): create it first (ip netns add)`);
  }
  if ((errno === 'ENODEV' || errno === 'ENXIO') && dev !== '') {
    return make('LNLB_ERR_DEV_NOT_FOUND', `no such device ${dev}`);
  }
  if (errno === 'ENETDOWN') {
    return make('LNLB_ERR_PORT_IO', `the device is down or gone (ENETDOWN in ${syscall}): bring it up (ip link set DEV up); reading resumes then`);
  }
  if (errno === 'EMFILE' || errno === 'ENFILE') {
    return make('LNLB_ERR_PORT_IO', `too many open files (${errno} in ${syscall}): raise the limit (ulimit -n, LimitNOFILE=)`);
  }
  if (errno === 'ENOMEM' && op === 'ringOpen') {
    return make('LNLB_ERR_PORT_IO', `no memory for the receive ring (ENOMEM in ${syscall}): lower blockCount or blockSize (V3), frameCount or frameSize (V2)`);
  }
  if (errno === 'EBADFD' && (op === 'ringRead' || op === 'ringReadInPlace' || op === 'ringView' || op === 'ringStats')) {
    return make('LNLB_ERR_PORT_IO', `${op}: the socket has no receive ring (EBADFD): call ringOpen first, and do not use the fd after close`);
  }
  if (errno === 'EBUSY' && op === 'ringOpen') {
    return make('LNLB_ERR_PORT_IO', 'ringOpen: the socket has a receive ring already (EBUSY): open it once per socket');
  }
  if (errno === 'EBADF' || errno === 'EBADFD') {
    return make('LNLB_ERR_PORT_IO', `${op}: ${detail}: the port was closed or never opened`);
  }
  if (errno === 'ENOPROTOOPT' && syscall.includes('PACKET_IGNORE_OUTGOING')) {
    return make('LNLB_ERR_PORT_IO', 'PACKET_IGNORE_OUTGOING needs Linux 4.20 or newer: upgrade the kernel');
  }
  if (errno === 'EINVAL' && syscall.includes('SO_ATTACH_FILTER')) {
    return make('LNLB_ERR_PORT_IO', `the kernel rejected the BPF filter${dev === '' ? '' : ` for ${dev}`} (EINVAL): check the program`);
  }
  if (errno === 'EMSGSIZE') {
    return make('LNLB_ERR_PORT_IO', `frame larger than the device MTU (EMSGSIZE in ${syscall}): raise the MTU or send smaller frames`);
  }
  return make(setupCode, `${op} failed: ${detail}`);
}

function isNativeErrorInfo(value: unknown): value is Error & NativeErrorInfo {
  return value instanceof Error && typeof (value as Partial<NativeErrorInfo>).errno === 'string' && typeof (value as Partial<NativeErrorInfo>).syscall === 'string';
}

/** System-call failures become LnlbError; argument errors (TypeError, RangeError) pass. */
export function rethrowPortError(op: PortOp, error: unknown): never {
  if (isNativeErrorInfo(error)) {
    throw toPortError(op, { errno: error.errno, syscall: error.syscall, device: error.device, message: error.message }, error);
  }
  throw error;
}

// ---------------------------------------------------------------------------------------
// API. Each function is a thin try/catch: no closure per call on the hot paths.

/** Creates a non-persistent TAP (IFF_TAP|IFF_NO_PI): it disappears when its fd closes. */
export function tapOpen(name: string, opts: TapOptions = { vnetHdr: false }): TapHandle {
  try {
    return addon().tapOpen(name, opts);
  } catch (error) {
    return rethrowPortError('tapOpen', error);
  }
}

/** Index, MAC, MTU and flags of a device; needs no privilege. */
export function ifInfo(name: string): IfInfo {
  try {
    return addon().ifInfo(name);
  } catch (error) {
    return rethrowPortError('ifInfo', error);
  }
}

/**
 * Every IPv4 and IPv6 address of every device in this network namespace, up or down (an
 * rtnetlink dump: os.networkInterfaces() leaves out devices without carrier). Needs no privilege.
 */
export function hostAddresses(): HostAddress[] {
  try {
    return addon().hostAddresses();
  } catch (error) {
    return rethrowPortError('hostAddresses', error);
  }
}

/**
 * Sends `message` (`READY=1`, `STATUS=...`: sd_notify(3)) as one datagram to the unix socket
 * `socketPath` ($NOTIFY_SOCKET: a path, or `@name` in the abstract namespace). Never waits:
 * false when the socket's queue is full and the message was dropped.
 */
export function notify(socketPath: string, message: string): boolean {
  try {
    return addon().notify(socketPath, message);
  } catch (error) {
    return rethrowPortError('notify', error);
  }
}

/** Whether a device of this name exists in this process's network namespace. */
export function deviceExists(name: string): boolean {
  try {
    ifInfo(name);
    return true;
  } catch (err) {
    if (err instanceof Error && (err as Partial<LnlbError>).code === 'LNLB_ERR_DEV_NOT_FOUND') return false;
    throw err;
  }
}

export function ifSetMac(name: string, mac: Uint8Array): void {
  try {
    addon().ifSetMac(name, mac);
  } catch (error) {
    rethrowPortError('ifSetMac', error);
  }
}

export function ifSetUp(name: string, up: boolean): void {
  try {
    addon().ifSetUp(name, up);
  } catch (error) {
    rethrowPortError('ifSetUp', error);
  }
}

export function ifSetMtu(name: string, mtu: number): void {
  try {
    addon().ifSetMtu(name, mtu);
  } catch (error) {
    rethrowPortError('ifSetMtu', error);
  }
}

/** Sets the primary IPv4 address and netmask (SIOCSIFADDR + SIOCSIFNETMASK). */
export function ifSetIPv4(name: string, addr: string, prefixLen: number): void {
  try {
    addon().ifSetIPv4(name, addr, prefixLen);
  } catch (error) {
    rethrowPortError('ifSetIPv4', error);
  }
}

/** Removes the primary IPv4 address (SIOCSIFADDR 0.0.0.0, as `ifconfig DEV 0.0.0.0`). */
export function ifClearIPv4(name: string): void {
  try {
    addon().ifClearIPv4(name);
  } catch (error) {
    rethrowPortError('ifClearIPv4', error);
  }
}

/** Adds an IPv6 address (rtnetlink, without duplicate address detection: usable at once). */
export function ifAddIPv6(name: string, addr: string, prefixLen: number): void {
  try {
    addon().ifAddIPv6(name, addr, prefixLen);
  } catch (error) {
    rethrowPortError('ifAddIPv6', error);
  }
}

/** Opens an AF_PACKET socket bound to `dev`, filter attached before any frame can arrive. */
export function packetOpen(dev: string, opts: PacketOptions): number {
  try {
    return addon().packetOpen(dev, opts);
  } catch (error) {
    return rethrowPortError('packetOpen', error);
  }
}

/**
 * Replaces a packet socket's classic BPF filter with `program` (words as bpf.ts assembles
 * them) in one step: the kernel swaps the program atomically, so no frame passes unfiltered
 * and none is judged by half of each. Frames already in the ring stay there.
 */
export function attachFilter(fd: number, program: Uint32Array): void {
  try {
    addon().attachFilter(fd, program);
  } catch (error) {
    rethrowPortError('attachFilter', error);
  }
}

/**
 * Adds a receive ring to a packet socket (before any ringRead): TPACKET_V3 unless
 * `version: 2`; options left out take {@link DEFAULT_RING} or {@link DEFAULT_RING_V2}.
 */
export function ringOpen(fd: number, opts: RingOpenOptions = {}): void {
  try {
    addon().ringOpen(fd, opts.version === 2 ? { ...DEFAULT_RING_V2, ...opts } : { ...DEFAULT_RING, ...opts, version: 3 });
  } catch (error) {
    rethrowPortError('ringOpen', error);
  }
}

/**
 * Copies up to maxFrames frames from the ring into dst[dstOffset, dstEnd), each start
 * 8-aligned, and fills meta[4i..4i+3] = [offset, copied length (incl. vnet header), wire
 * length, pkttype | META_TRUNCATED | META_VLAN with the TCI in bits 16-31]. Waits up to timeoutMs when nothing is ready. Returns
 * the count; 0 on timeout, and 0 at once when the next frame does not fit the window (give
 * it at least 64 KiB + 18 bytes to always make progress). A link that went down is reported
 * once, as an LnlbError with errno ENETDOWN; reading goes on when it is back. With `stamps`,
 * stamps[i] is when the kernel received frame i (epoch ms, the ring header's timestamp), and
 * at most stamps.length frames are read.
 */
export function ringRead(
  fd: number,
  dst: Uint8Array,
  dstOffset: number,
  dstEnd: number,
  meta: Uint32Array,
  maxFrames: number,
  timeoutMs: number,
  stamps?: Float64Array,
): number {
  try {
    return (loaded ?? addon()).ringRead(fd, dst, dstOffset, dstEnd, meta, maxFrames, timeoutMs, stamps);
  } catch (error) {
    return rethrowPortError('ringRead', error);
  }
}

/**
 * ringRead without the copy: the frames stay where the kernel put them, in the ring that
 * {@link ringView} shows, and meta row i gives [offset in that view, length, length on the
 * wire, pkttype | META_TRUNCATED | META_SPILLED | META_VLAN and its TCI]. They stay ours until the next call on this
 * ring, which gives them back to the kernel first: read, decide and write a batch before
 * asking for the next. A whole GSO frame too large for its slot (V2) is read into `spill`
 * (at offset 0, META_SPILLED; at most one per batch; SPILL_BYTES always holds it). Frames
 * may start at any byte offset (a V2 slot puts them 2 bytes past a word). Blocking, hold-off,
 * ringWake, ENETDOWN and `stamps` are ringRead's.
 */
export function ringReadInPlace(fd: number, meta: Uint32Array, maxFrames: number, timeoutMs: number, spill: Uint8Array, stamps?: Float64Array): number {
  try {
    return (loaded ?? addon()).ringReadInPlace(fd, meta, maxFrames, timeoutMs, spill, stamps);
  } catch (error) {
    return rethrowPortError('ringReadInPlace', error);
  }
}

/**
 * The wall clock (CLOCK_REALTIME, epoch ms) to the nanosecond, the clock of the rings' receive
 * times: Date.now()'s whole milliseconds cannot place an event of this process between two
 * frames the kernel received.
 */
export function realtimeMs(): number {
  return (loaded ?? addon()).realtimeMs();
}

/** The whole receive ring of `fd` as an ArrayBuffer (the kernel's pages, not a copy), for ringReadInPlace's offsets. */
export function ringView(fd: number): ArrayBuffer {
  try {
    return addon().ringView(fd);
  } catch (error) {
    return rethrowPortError('ringView', error);
  }
}

/**
 * Makes a ringRead blocked on `fd` return now (from any thread of the process), or the next
 * one return at once: the reader has something to do besides frames (a new filter to attach).
 */
export function ringWake(fd: number): void {
  try {
    addon().ringWake(fd);
  } catch (error) {
    rethrowPortError('ringWake', error);
  }
}

export function ringStats(fd: number): RingStats {
  try {
    return addon().ringStats(fd);
  } catch (error) {
    return rethrowPortError('ringStats', error);
  }
}

/** Writes one frame; returns 0 when the queue is full (EAGAIN/ENOBUFS): count it as dropped. */
export function send(fd: number, buf: Uint8Array, offset: number, length: number): number {
  try {
    return (loaded ?? addon()).send(fd, buf, offset, length);
  } catch (error) {
    return rethrowPortError('send', error);
  }
}

/**
 * One write() per frame (into a TAP: each write is one frame with its vnet header).
 * Returns how many went out; frames refused with EAGAIN/ENOBUFS/EIO/EINVAL are skipped.
 */
export function writeBatch(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
  try {
    return (loaded ?? addon()).writeBatch(fd, buf, offsets, lengths, count);
  } catch (error) {
    return rethrowPortError('writeBatch', error);
  }
}

/** Reads one frame without blocking; -1 when nothing is queued. */
export function recv(fd: number, buf: Uint8Array, offset: number, maxLength: number): number {
  try {
    return (loaded ?? addon()).recv(fd, buf, offset, maxLength);
  } catch (error) {
    return rethrowPortError('recv', error);
  }
}

/** Calls onReadable on this thread's event loop whenever fd is readable. */
export function watch(fd: number, onReadable: () => void): Watcher {
  try {
    return addon().watch(fd, onReadable);
  } catch (error) {
    return rethrowPortError('watch', error);
  }
}

/** Blocks up to timeoutMs for fd to become readable (or to report an error). */
export function pollIn(fd: number, timeoutMs: number): boolean {
  try {
    return addon().pollIn(fd, timeoutMs);
  } catch (error) {
    return rethrowPortError('pollIn', error);
  }
}

/** Unmaps the ring if any and closes the fd (a TAP disappears, memberships are dropped). */
export function close(fd: number): void {
  try {
    addon().close(fd);
  } catch (error) {
    rethrowPortError('close', error);
  }
}

/**
 * flock(2) on `fd` (a file opened with fs.openSync): an exclusive or shared advisory lock on
 * its open file description, released when the last fd of it closes, also when the process
 * dies. Returns false when `nonBlocking` and another open file holds a conflicting lock (two
 * opens of one file in this process conflict as two processes do); waits otherwise.
 */
export function flock(fd: number, exclusive: boolean, nonBlocking: boolean): boolean {
  try {
    return addon().flock(fd, exclusive, nonBlocking);
  } catch (error) {
    return rethrowPortError('flock', error);
  }
}

/** The native HMAC's work area (native/hmac.h): prepared state, the two MACs, the tag. */
const HMAC_STATE_BYTES = 64;
const HMAC_MACS_AT = 64;
const HMAC_TAG_AT = 76;
const HMAC_WORK_BYTES = 108;

/**
 * HMAC-SHA256 under `key`, in native code, for the control plane (src/net/auth.ts takes it as
 * its `macFactory`): the key's pads are hashed once here; each tag then writes the first
 * `out.length` (at most 32) bytes of HMAC(dst[0..6) · src[0..6) · frame[from, to)) into `out`,
 * allocating nothing: 0.17× the time of node:crypto's createHmac per message with the CPU's SHA extensions, 0.39× with the portable compression (bench auth-mac).
 */
export function hmacSha256(key: Uint8Array): (frame: Uint8Array, from: number, to: number, srcMac: Uint8Array, dstMac: Uint8Array, out: Uint8Array) => void {
  const native = addon();
  const work = new Uint8Array(HMAC_WORK_BYTES);
  native.hmacSha256Prepare(key, work.subarray(0, HMAC_STATE_BYTES));
  const tag = work.subarray(HMAC_TAG_AT);
  return (frame, from, to, srcMac, dstMac, out) => {
    if (out.length > 32 || srcMac.length < 6 || dstMac.length < 6) throw new RangeError('hmacSha256: 6-byte MACs and a tag of at most 32 bytes');
    for (let i = 0; i < 6; i++) {
      work[HMAC_MACS_AT + i] = dstMac[i]!;
      work[HMAC_MACS_AT + 6 + i] = srcMac[i]!;
    }
    native.hmacSha256Tag(work, frame, from, to, out.length);
    for (let i = 0; i < out.length; i++) out[i] = tag[i]!;
  };
}

/**
 * Which SHA-256 compression the native HMAC runs: `sha-ni` (the CPU's SHA extensions) when the
 * CPU has them, else `portable`. `set` 'portable' forces the C one (tests check both), 'auto'
 * goes back to the CPU's choice.
 */
export function hmacSha256Implementation(set?: 'auto' | 'portable'): 'sha-ni' | 'portable' {
  return set === undefined ? addon().hmacSha256Implementation() : addon().hmacSha256Implementation(set);
}
