/** Structured logs (pino): one JSON line per event on stdout. */

import { pino, symbols, type Logger } from 'pino';
import type { LogLevel } from './options.js';

export type { Logger };

/**
 * The daemon's root logger. pino's children copy the level when they are made, so a level set
 * later on the root (SIGHUP) would not reach the interfaces' loggers: every child made through
 * this root is remembered (weakly) and `setLogLevel` sets them all.
 */
export function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}): Logger {
  const family = new Set<WeakRef<Logger>>();
  const root = pino({
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Called for every child, grandchildren too (children inherit it).
    onChild: (child) => {
      families.set(child as unknown as Logger, family);
      family.add(new WeakRef(child as unknown as Logger));
    },
  });
  families.set(root, family);
  family.add(new WeakRef(root));
  return root;
}

const families = new WeakMap<Logger, Set<WeakRef<Logger>>>();

/** Sets the level of `logger` and of every logger made from the same root. */
export function setLogLevel(logger: Logger, level: LogLevel): void {
  const family = families.get(logger);
  if (family === undefined) {
    logger.level = level;
    return;
  }
  for (const ref of family) {
    const member = ref.deref();
    if (member === undefined) family.delete(ref);
    else member.level = level;
  }
}

/**
 * Writes out now what `logger` holds. For process 'exit', where no asynchronous write completes:
 * pino's default stream (sonic-boom on stdout) writes asynchronously, and its own flush at exit
 * may have run already. A logger of another kind (a transport in a worker thread) is left as it is.
 */
export function flushLoggerSync(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, unknown>)[symbols.streamSym] as { flushSync?: () => void } | undefined;
  try {
    stream?.flushSync?.();
  } catch {
    // Not ready, or closed already: nothing more can be written.
  }
}
