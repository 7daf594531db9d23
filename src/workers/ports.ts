/**
 * The I/O boundary of the datapath (katran's BaseBpfAdapter habit): the dispatcher and the
 * actors talk to these interfaces, never to the addon. The native implementations wrap the
 * AF_PACKET ring and the TAP; tests and the in-memory benchmark use the memory ones.
 */

import * as port from '../port/native.js';

/** Where frames come from (the wire). */
export interface FrameSource {
  /**
   * Copies up to `maxFrames` frames into `dst` from `dstOffset` (each 8-byte aligned, each
   * starting with the virtio-net header when the port has one). Row i of `meta` (4 u32) is
   * [offset in dst, length, length on the wire, pkttype | 0x100 if truncated]. Waits up to
   * `timeoutMs` when nothing is ready. Returns the count.
   */
  read(dst: Uint8Array, dstOffset: number, dstEnd: number, meta: Uint32Array, maxFrames: number, timeoutMs: number): number;
  /** Sends one frame on the wire (with its virtio-net header when the port has one); 0 if dropped. */
  send(buf: Uint8Array, offset: number, length: number): number;
  /** Frames the kernel dropped because we did not read fast enough, since the start. */
  kernelDrops(): number;
}

/** Where accepted frames go (the TAP facing the host stack). */
export interface FrameSink {
  /** Writes frames buf[offsets[i] .. +lengths[i]); returns how many were written. */
  writeBatch(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
}

export { META_TRUNCATED, META_WORDS } from '../port/native.js';
import { META_WORDS } from '../port/native.js';

export class PacketRingSource implements FrameSource {
  readonly #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  read(dst: Uint8Array, dstOffset: number, dstEnd: number, meta: Uint32Array, maxFrames: number, timeoutMs: number): number {
    return port.ringRead(this.#fd, dst, dstOffset, dstEnd, meta, maxFrames, timeoutMs);
  }

  send(buf: Uint8Array, offset: number, length: number): number {
    return port.send(this.#fd, buf, offset, length);
  }

  kernelDrops(): number {
    return port.ringStats(this.#fd).drops;
  }
}

export class TapSink implements FrameSink {
  readonly #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  writeBatch(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    return count === 0 ? 0 : port.writeBatch(this.#fd, buf, offsets, lengths, count);
  }
}

/** Frames replayed from memory, round-robin over a fixed set, for tests and the replay benchmark. */
export class MemoryFrameSource implements FrameSource {
  readonly #frames: Uint8Array[];
  #next = 0;
  /** Frames still to deliver; Infinity replays forever. */
  remaining: number;
  readonly sent: Uint8Array[] = [];

  constructor(frames: Uint8Array[], total = frames.length) {
    this.#frames = frames;
    this.remaining = total;
  }

  read(dst: Uint8Array, dstOffset: number, dstEnd: number, meta: Uint32Array, maxFrames: number): number {
    let count = 0;
    let at = dstOffset;
    while (count < maxFrames && this.remaining > 0 && this.#frames.length > 0) {
      const frame = this.#frames[this.#next]!;
      if (at + frame.length > dstEnd) break;
      dst.set(frame, at);
      const row = count * META_WORDS;
      meta[row] = at;
      meta[row + 1] = frame.length;
      meta[row + 2] = frame.length;
      meta[row + 3] = 0;
      at = (at + frame.length + 7) & ~7;
      count++;
      this.remaining--;
      this.#next = this.#next + 1 === this.#frames.length ? 0 : this.#next + 1;
    }
    return count;
  }

  send(buf: Uint8Array, offset: number, length: number): number {
    this.sent.push(buf.slice(offset, offset + length));
    return length;
  }

  kernelDrops(): number {
    return 0;
  }
}

/** Counts (and optionally keeps) what would have been written to the TAP. */
export class MemoryFrameSink implements FrameSink {
  written = 0;
  readonly frames: Uint8Array[] = [];
  readonly #keep: boolean;

  constructor(keep = true) {
    this.#keep = keep;
  }

  writeBatch(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (this.#keep) {
      for (let i = 0; i < count; i++) this.frames.push(buf.slice(offsets[i]!, offsets[i]! + lengths[i]!));
    }
    this.written += count;
    return count;
  }
}
