/**
 * Which Linux capabilities this process has, read from /proc/self/status, so the daemon can
 * name the missing one before anything half-starts.
 */

import { readFileSync } from 'node:fs';

export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;

const NAMES: Record<number, string> = { [CAP_NET_ADMIN]: 'CAP_NET_ADMIN', [CAP_NET_RAW]: 'CAP_NET_RAW' };

export function effectiveCapabilities(statusText?: string): bigint {
  const text = statusText ?? readFileSync('/proc/self/status', 'utf8');
  const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return line ? BigInt(`0x${line[1]}`) : 0n;
}

/** Names of the capabilities in `needed` that `effective` lacks. */
export function missingCapabilities(needed: readonly number[], effective = effectiveCapabilities()): string[] {
  return needed.filter((cap) => (effective & (1n << BigInt(cap))) === 0n).map((cap) => NAMES[cap] ?? `capability ${cap}`);
}
