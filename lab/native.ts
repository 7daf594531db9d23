/**
 * Typed access to the lab addon (native/lab/, binding.gyp's lnlb_lab target): a traffic
 * generator and netns entry, which only the benchmarks, the lab and the tests use. lnlbd never
 * loads it, and the npm package ships neither its sources nor its build: it exists in a git
 * checkout after npm ci (or npm run build).
 *
 * Errors from the kernel come back as LnlbError, mapped as the port's are (src/port/native.ts).
 */
import { builtAddonPath, loadNativeModule, rethrowPortError } from '../src/port/native.js';

export interface SendBurstOptions {
  /** Offset of the IPv4 header inside the frame. */
  ipv4Offset: number;
  /** Frame k gets source address low 16 bits + (k % sourceCount). */
  sourceCount: number;
}

/** Shape of the .node module; the exported functions below add types and error mapping. */
export interface LabAddon {
  sendBurst(fd: number, buf: Uint8Array, offset: number, length: number, count: number, opts: SendBurstOptions): number;
  netnsEnter(path: string): void;
  notifyListen(path: string): number;
  notifyRecv(fd: number): { pid: number; message: string } | null;
}

let loaded: LabAddon | undefined;

/** Where the lab addon is expected (build/Release/lnlb_lab.node under the package root). */
export function labAddonPath(): string {
  return builtAddonPath('lnlb_lab');
}

/** Loads the lab addon from a file; exported so the missing-addon message can be tested. */
export function loadLabAddonFrom(file: string): LabAddon {
  return loadNativeModule<LabAddon>(file, 'run npm ci in a git checkout of lnlb (it builds the lab addon; the npm package does not include it)');
}

/** Loaded on first use, so importing this module never fails where the addon is absent. */
function addon(): LabAddon {
  if (loaded === undefined) loaded = loadLabAddonFrom(labAddonPath());
  return loaded;
}

/** Benchmark generator: count copies of a frame with walking IPv4 sources; sends them all. */
export function sendBurst(fd: number, buf: Uint8Array, offset: number, length: number, count: number, opts: SendBurstOptions): number {
  try {
    return addon().sendBurst(fd, buf, offset, length, count, opts);
  } catch (error) {
    return rethrowPortError('sendBurst', error);
  }
}

/**
 * Moves the calling thread into the network namespace at `path` (/run/netns/NAME,
 * /proc/PID/ns/net). Only this thread moves; sockets and TAPs opened afterwards live
 * there, open fds keep their namespace. Needs CAP_SYS_ADMIN.
 */
export function netnsEnter(path: string): void {
  try {
    addon().netnsEnter(path);
  } catch (error) {
    rethrowPortError('netnsEnter', error);
  }
}

/**
 * The service manager's end of sd_notify: a unix datagram socket bound to `path` (`@name`: the
 * abstract namespace), non-blocking; read it with port.recv (one datagram a read, -1 when none
 * waits) and close it with port.close.
 */
export function notifyListen(path: string): number {
  try {
    return addon().notifyListen(path);
  } catch (error) {
    return rethrowPortError('notifyListen', error);
  }
}

/** The next datagram on a notifyListen socket with the pid that sent it; null when none waits. */
export function notifyRecv(fd: number): { pid: number; message: string } | null {
  try {
    return addon().notifyRecv(fd);
  } catch (error) {
    return rethrowPortError('notifyRecv', error);
  }
}
