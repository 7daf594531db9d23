/**
 * Requests from the main thread to the others (the actors, the control plane, the bonds), on
 * comlink: each thread exposes one typed API object on a MessagePort of its own, the main
 * thread calls it through `Remote<Api>`. What comlink gives us: request ids, the pending map,
 * answers matched to their calls, thrown errors sent back, buffers moved by `transfer`.
 * What stays ours:
 * - errors keep their LNLB code across the boundary (the 'throw' handler below);
 * - a deadline per call (`withDeadline`): comlink waits forever, a thread may be stuck;
 * - the datapath threads never yield to their event loop (they sleep in Atomics.wait or in
 *   poll(2)), so their end of the port is read with receiveMessageOnPort between batches
 *   (`PolledEndpoint`), and the caller's end rings them awake after each post (`wakingEndpoint`).
 *
 * Broadcasts (a node died, a reset, stop) and events to the main thread (logs, views, errors)
 * stay plain messages on parentPort: they have no answer, and comlink adds nothing there.
 * Frames never go through here: they travel on the shared-memory rings.
 */

import { expose, transfer, transferHandlers, wrap, type Endpoint, type Remote } from 'comlink';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { isErrorCode, lnlbError, reviveError, serializeError, type ErrorCode, type LnlbError, type SerializedError } from '../errors.js';

export { expose, transfer, type Remote };

type Listener = Parameters<Endpoint['addEventListener']>[1];
type Transferable = NonNullable<Parameters<Endpoint['postMessage']>[1]>[number];

/** What a thrown LnlbError becomes on the wire: its serializeError form, revived with its code. */
interface CodedThrow {
  lnlbError: SerializedError;
}

/**
 * comlink's own handler sends a thrown Error as { message, name, stack } and throws a plain
 * Error on the caller's side: the code (LNLB_ERR_BOND_SLAVE, ...) would be lost. Errors with
 * an LNLB code go as serializeError's form and come back as LnlbError; anything else goes
 * through comlink's handler unchanged. Installed once per thread, by importing this module;
 * comlink's handler table is per module instance, so a host service's own comlink sees errors
 * with codes come back as LnlbError too, and every other error exactly as before.
 */
function installCodedErrors(): void {
  const base = transferHandlers.get('throw');
  if (base === undefined || (base as { lnlb?: boolean }).lnlb === true) return;
  transferHandlers.set('throw', {
    lnlb: true,
    canHandle: (value: unknown): value is unknown => base.canHandle(value),
    serialize(thrown: unknown): [unknown, Transferable[]] {
      const value = (thrown as { value?: unknown }).value;
      const code = (value as { code?: unknown } | null | undefined)?.code;
      if (value instanceof Error && isErrorCode(code)) return [{ lnlbError: serializeError(value) } satisfies CodedThrow, []];
      return base.serialize(thrown);
    },
    deserialize(wire: unknown): unknown {
      if (typeof wire === 'object' && wire !== null && 'lnlbError' in wire) throw reviveError((wire as CodedThrow).lnlbError, 'LNLB_ERR_WORKER_FAILED');
      return base.deserialize(wire);
    },
  } as typeof base);
}
installCodedErrors();

/**
 * The thread's end of its request port when the thread never returns to its event loop:
 * `poll()` takes every queued request and hands it to comlink (which runs the API method at
 * once, between two batches, on the thread that owns the shard). comlink posts the answer
 * from a promise callback: the caller awaits `settle()` after a poll that took any.
 */
export class PolledEndpoint implements Endpoint {
  readonly #port: MessagePort;
  readonly #listeners = new Set<Listener>();

  constructor(port: MessagePort) {
    this.#port = port;
  }

  postMessage(message: unknown, transferList?: Transferable[]): void {
    this.#port.postMessage(message, transferList as never);
  }

  addEventListener(_type: string, listener: Listener): void {
    this.#listeners.add(listener);
  }

  removeEventListener(_type: string, listener: Listener): void {
    this.#listeners.delete(listener);
  }

  /** Hands every queued request to comlink; true when there was one (then await settle()). */
  poll(): boolean {
    let any = false;
    for (let m = receiveMessageOnPort(this.#port); m !== undefined; m = receiveMessageOnPort(this.#port)) {
      any = true;
      const event = { data: m.message } as MessageEvent;
      for (const listener of this.#listeners) {
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      }
    }
    return any;
  }

  /**
   * Lets comlink post its answers: one turn of the event loop, after which every promise
   * callback queued by the requests has run. Only after a poll that took a request: the frame
   * path never pays for it.
   */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  close(): void {
    this.#port.close();
  }
}

/**
 * A MessagePort as comlink's Endpoint, for a thread that reads it by events (comlink's own
 * node-adapter does the same; its CommonJS build has no typed default export under NodeNext).
 */
function portEndpoint(port: MessagePort): Endpoint {
  const wrapped = new Map<Listener, (data: unknown) => void>();
  return {
    postMessage: (message: unknown, transferList?: Transferable[]) => port.postMessage(message, transferList as never),
    addEventListener(_type: string, listener: Listener) {
      const onMessage = (data: unknown): void => {
        const event = { data } as MessageEvent;
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      wrapped.set(listener, onMessage);
      port.on('message', onMessage);
    },
    removeEventListener(_type: string, listener: Listener) {
      const onMessage = wrapped.get(listener);
      if (onMessage === undefined) return;
      port.off('message', onMessage);
      wrapped.delete(listener);
    },
  };
}

/** The caller's end of a thread's request port, for a thread that reads it by events. */
export function connect<Api>(port: MessagePort): Remote<Api> {
  return wrap<Api>(portEndpoint(port));
}

/** The caller's end for a polled thread: every request is followed by `wake()` (a doorbell, a poll interrupted). */
export function connectWaking<Api>(port: MessagePort, wake: () => void): Remote<Api> {
  const endpoint = portEndpoint(port);
  return wrap<Api>({
    addEventListener: endpoint.addEventListener.bind(endpoint),
    removeEventListener: endpoint.removeEventListener.bind(endpoint),
    postMessage(message: unknown, transferList?: Transferable[]): void {
      endpoint.postMessage(message, transferList);
      wake();
    },
  });
}

/** A thread's end of an event-driven request port: `api`'s methods answer the main thread. */
export function serve<Api extends object>(api: Api, port: MessagePort): void {
  expose(api, portEndpoint(port));
}

/**
 * `call` within `ms`, or the error `late()` makes (a request comlink would wait for forever).
 * The timer never keeps the process alive by itself.
 */
export function withDeadline<T>(call: Promise<T>, ms: number, late: () => LnlbError): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(late()), ms);
    timer.unref();
    call.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The usual late error: `what` did not answer within `ms`. */
export function lateError(code: ErrorCode, what: string, ms: number): () => LnlbError {
  return () => lnlbError(code, `${what} did not answer within ${ms} ms`);
}
