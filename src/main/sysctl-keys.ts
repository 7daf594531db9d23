/**
 * The sysctls lnlb changes, as structured keys: every one is a per-device setting under
 * /proc/sys/net/ipv{4,6}/conf/<device>/<name>. A device name may hold dots (the VLAN
 * `eth0.100`), so the dotted form `net.ipv4.conf.eth0.100.arp_ignore` cannot be split on dots:
 * keys are kept as path parts and saved in the slash form (`net/ipv4/conf/eth0.100/arp_ignore`,
 * which sysctl(8) also takes).
 *
 * Only the names below are ever set by lnlb (src/main/cluster-device.ts on the bound
 * device and the TAP, src/main/bond-manager.ts on slaves), so a saved key with any other shape
 * (a planted `kernel.core_pattern`) is refused before anything is written.
 */

import { isDeviceName } from './device-name.js';

export const DEVICE_SYSCTL_NAMES = {
  ipv4: ['arp_ignore', 'arp_announce', 'rp_filter', 'drop_unicast_in_l2_multicast'],
  ipv6: ['disable_ipv6', 'drop_unicast_in_l2_multicast'],
} as const;

export type SysctlFamily = keyof typeof DEVICE_SYSCTL_NAMES;
export type DeviceSysctlName = (typeof DEVICE_SYSCTL_NAMES)[SysctlFamily][number];

export interface DeviceSysctl {
  family: SysctlFamily;
  device: string;
  name: DeviceSysctlName;
}

export function ipv4Sysctl(device: string, name: (typeof DEVICE_SYSCTL_NAMES)['ipv4'][number]): DeviceSysctl {
  return { family: 'ipv4', device, name };
}

export function ipv6Sysctl(device: string, name: (typeof DEVICE_SYSCTL_NAMES)['ipv6'][number]): DeviceSysctl {
  return { family: 'ipv6', device, name };
}

/** The slash form, unique per key: how it is saved, held and named in messages. */
export function sysctlKeyText(k: DeviceSysctl): string {
  return `net/${k.family}/conf/${k.device}/${k.name}`;
}

/** The file under /proc/sys (of the calling process's network namespace). */
export function sysctlPath(k: DeviceSysctl, root = '/proc/sys'): string {
  return `${root}/${sysctlKeyText(k)}`;
}

function isFamily(value: string): value is SysctlFamily {
  return value === 'ipv4' || value === 'ipv6';
}

function make(family: string, device: string, name: string): DeviceSysctl | undefined {
  if (!isFamily(family) || !isDeviceName(device)) return undefined;
  const names: readonly string[] = DEVICE_SYSCTL_NAMES[family];
  return names.includes(name) ? { family, device, name: name as DeviceSysctlName } : undefined;
}

/** A saved key in the slash form, if it is one lnlb sets; undefined for anything else. */
export function parseSysctlKey(text: string): DeviceSysctl | undefined {
  const m = /^net\/(ipv4|ipv6)\/conf\/([^/]+)\/([a-z0-9_]+)$/.exec(text);
  return m === null ? undefined : make(m[1]!, m[2]!, m[3]!);
}

/**
 * A key in the dotted form older lnlb versions saved (`net.ipv4.conf.<dev>.<name>`): the
 * device is everything between the fixed prefix and the last dot (the names have no dots).
 */
export function parseDottedSysctlKey(text: string): DeviceSysctl | undefined {
  const m = /^net\.(ipv4|ipv6)\.conf\.(.+)\.([a-z0-9_]+)$/.exec(text);
  return m === null ? undefined : make(m[1]!, m[2]!, m[3]!);
}

/**
 * A value of the form these sysctls hold: a small non-negative integer (they range over 0..8).
 * Anything else read back from a file is refused, never written.
 */
export function isSysctlValue(value: unknown): value is string {
  return typeof value === 'string' && /^(0|[1-9][0-9]{0,2})$/.test(value);
}
