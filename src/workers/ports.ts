/**
 * The I/O boundary of the datapath (katran's BaseBpfAdapter habit): the dispatcher and the
 * actors talk to these interfaces, never to the addon. The native implementations wrap the
 * AF_PACKET ring and the TAP; tests and the in-memory benchmark use the memory ones.
 */

import * as port from '../port/native.js';

/** Where frames come from (the wire). */
export interface FrameSource {
  /**
   * Where the frames of the last read are: meta offsets index `bytes` (the kernel's ring
   * itself for the native source), or `spill` for a frame flagged META_SPILLED. Frames may
   * start at any byte offset.
   */
  readonly bytes: Uint8Array;
  readonly spill: Uint8Array;
  /**
   * Describes up to `maxFrames` frames (each starting with the virtio-net header when the
   * port has one) without copying them: row i of `meta` (4 u32) is [offset, length, length on
   * the wire, pkttype | META_TRUNCATED | META_SPILLED]. They stay valid until the next read.
   * Waits up to `timeoutMs` when nothing is ready. Returns the count. With `stamps` (at least
   * maxFrames long), stamps[i] is when frame i reached this host (epoch ms; NaN: not known).
   */
  read(meta: Uint32Array, maxFrames: number, timeoutMs: number, stamps?: Float64Array): number;
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

export { META_SPILLED, META_TRUNCATED, META_WORDS } from '../port/native.js';
import { META_VLAN, META_WORDS, SPILL_BYTES } from '../port/native.js';

/**
 * The data socket's ring, read in place: a frame is never copied to be looked at, and a kept
 * one goes to the TAP (or an actor's ring) from the kernel's own pages.
 */
export class PacketRingSource implements FrameSource {
  readonly #fd: number;
  readonly bytes: Uint8Array;
  readonly spill = new Uint8Array(SPILL_BYTES);

  constructor(fd: number) {
    this.#fd = fd;
    this.bytes = new Uint8Array(port.ringView(fd));
  }

  read(meta: Uint32Array, maxFrames: number, timeoutMs: number, stamps?: Float64Array): number {
    return port.ringReadInPlace(this.#fd, meta, maxFrames, timeoutMs, this.spill, stamps);
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

/**
 * Frames replayed from memory, round-robin over a fixed set, for tests and the replay
 * benchmark: each read lays a batch out in `bytes` as the kernel's V2 ring does, every frame
 * 2 bytes past a word (a reader that assumes aligned frames fails here too).
 */
export class MemoryFrameSource implements FrameSource {
  readonly #frames: Uint8Array[];
  #next = 0;
  /** Frames still to deliver; Infinity replays forever. */
  remaining: number;
  readonly sent: Uint8Array[] = [];
  readonly bytes: Uint8Array;
  readonly spill = new Uint8Array(0);
  /** The 802.1Q TCI each frame came with (by index into `frames`), as the kernel reports it beside the frame; undefined: untagged. */
  readonly tags: (number | undefined)[] = [];
  /** When each frame (by index into `frames`) reached the host, epoch ms; undefined: not known (NaN). */
  readonly times: (number | undefined)[] = [];

  constructor(frames: Uint8Array[], total = frames.length, bufferBytes = 1 << 20) {
    this.#frames = frames;
    this.remaining = total;
    this.bytes = new Uint8Array(bufferBytes);
  }

  read(meta: Uint32Array, maxFrames: number, _timeoutMs = 0, stamps?: Float64Array): number {
    let count = 0;
    let at = 2;
    const dst = this.bytes;
    while (count < maxFrames && this.remaining > 0 && this.#frames.length > 0) {
      const frame = this.#frames[this.#next]!;
      if (at + frame.length > dst.length) break;
      dst.set(frame, at);
      const row = count * META_WORDS;
      meta[row] = at;
      meta[row + 1] = frame.length;
      meta[row + 2] = frame.length;
      const tag = this.tags[this.#next];
      meta[row + 3] = tag === undefined ? 0 : (META_VLAN | (tag << 16)) >>> 0;
      if (stamps !== undefined) stamps[count] = this.times[this.#next] ?? Number.NaN;
      at = ((at + frame.length + 7) & ~7) + 2;
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
