/**
 * A handler that throws must not take a thread down, and must not flood the log either: each
 * distinct cause (handler, method, message) is reported once; the frames are counted by the
 * caller. Causes are bounded: past MAX_CAUSES new ones are only counted.
 */

import type { InterfaceInfo, ProtocolHandler } from '../handlers/handler.js';

export const MAX_CAUSES = 64;

export interface HandlerErrorReport {
  handler: string;
  method: string;
  message: string;
}

export class HandlerErrorLog {
  readonly #seen = new Set<string>();
  readonly #report: (report: HandlerErrorReport) => void;
  /** Errors not reported because MAX_CAUSES causes were already (each occurrence counts). */
  unreportedCauses = 0;

  constructor(report: (report: HandlerErrorReport) => void) {
    this.#report = report;
  }

  /** Off the hot path: only runs when a handler has thrown. */
  record(handler: string, method: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const cause = `${handler}\u0000${method}\u0000${message}`;
    if (this.#seen.has(cause)) return;
    if (this.#seen.size >= MAX_CAUSES) {
      this.unreportedCauses++;
      return;
    }
    this.#seen.add(cause);
    this.#report({ handler, method, message });
  }
}

/** Runs every handler's interfaceCreated or interfaceDeleted hook in this thread; one that throws is reported, the others still run. */
export function runInterfaceHook(handlers: readonly ProtocolHandler[], hook: 'interfaceCreated' | 'interfaceDeleted', info: InterfaceInfo, errors: HandlerErrorLog): void {
  for (const handler of handlers) {
    try {
      handler[hook]?.(info);
    } catch (err) {
      errors.record(handler.name, hook, err);
    }
  }
}
