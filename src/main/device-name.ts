/**
 * Device names read back from state files are checked before they become part of a /proc/sys
 * path, a lock file's name or an ioctl: the kernel's rule as src/main/bond-spec.ts has it (1 to
 * 15 bytes, no '/', ':', '%' or white space, not `.` or `..`), and no control characters. A dot
 * is fine (VLANs: `eth0.100`); a slash never is.
 */

import { deviceNameProblem as nameProblem } from './bond-spec.js';

/** Why `name` cannot be a device name, or undefined when it can. */
export function deviceNameProblem(name: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(name)) return `expected a device name without control characters, got ${JSON.stringify(name)}`;
  return nameProblem(name);
}

export function isDeviceName(value: unknown): value is string {
  return typeof value === 'string' && deviceNameProblem(value) === undefined;
}
