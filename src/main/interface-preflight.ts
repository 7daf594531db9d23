/**
 * What a cluster interface checks before it changes anything on the host: the things a user
 * gets wrong, each refused with one line naming the flag, while no TAP, sysctl, socket or bond
 * of it exists yet. A missing key file is then reported as a missing key file, whatever state
 * the host's devices are in, and a refused start leaves the host as it was.
 *
 *   key file       exists, a regular file, mode 600, its owner (cluster-auth.ts, net/auth.ts)
 *   bound device   exists, and is an Ethernet device with a MAC of its own: not the loopback
 *                  (no other host reaches it; its MAC is all zero), not a tunnel
 *   VIP            not an address of this host, on any device, up or down: lnlbd puts the VIP
 *                  on its own TAP, and a host that owns it already answers for it itself
 *   handlers       each module's self-test in a thread of its own, then loaded (datapath.ts)
 *
 * The checks of the device and the VIP are pure (boundDeviceProblem, hostAddressHolding) over
 * what the kernel says (port.ifInfo, port.hostAddresses).
 */

import { lnlbError } from '../errors.js';
import type { ProtocolHandler } from '../handlers/handler.js';
import type { HandlerSpec } from '../handlers/loader.js';
import { formatMac } from '../net/ethernet.js';
import { formatIPv4 } from '../net/ipv4.js';
import { formatIPv6 } from '../net/ipv6.js';
import type { ClusterVip } from '../net/vip.js';
import * as port from '../port/native.js';
import { checkHandlers } from '../workers/datapath.js';
import type { HandlerSetup } from '../workers/messages.js';
import { loadClusterKey } from './cluster-auth.js';
import type { Logger } from './logger.js';
import type { InterfaceOptions } from './options.js';

/** How the caller names the bound device and the VIP in its refusals. */
export interface BindingNames {
  bind: string;
  vip: string;
}

/** lnlbd's flags (and its config file's keys, which the flags name). */
export const LNLBD_BINDING_NAMES: BindingNames = { bind: '--bind', vip: '--vip' };
/** `lnlbctl addif <cluster ip> <dev>`: the names interfaceArguments gives them. */
export const ADDIF_BINDING_NAMES: BindingNames = { bind: '<dev>', vip: '<cluster ip>' };
/** createNode's options, as its other refusals name them. */
export const CREATE_NODE_BINDING_NAMES: BindingNames = { bind: 'bind (--bind)', vip: 'vip (--vip)' };

/** What the checks found and the start uses: no file is read twice. */
export interface InterfacePreflight {
  /** The cluster key; undefined with --insecure-no-auth. */
  key: Buffer | undefined;
  /** The handlers, self-tested and loaded, in the order of `setups`. */
  handlers: ProtocolHandler[];
  setups: HandlerSetup[];
}

/** Each handler with the idle timeout of its own flag (tcp, udp) or --idle-timeout. Pure. */
export function handlerSetups(o: Pick<InterfaceOptions, 'handler' | 'idleTimeout' | 'tcpIdleTimeout' | 'udpIdleTimeout'>): HandlerSetup[] {
  const idle = (spec: HandlerSpec): number => (spec.module === 'builtin:tcp' ? o.tcpIdleTimeout : spec.module === 'builtin:udp' ? o.udpIdleTimeout : o.idleTimeout);
  return o.handler.map((spec) => ({ spec, idleTimeoutSeconds: idle(spec) }));
}

/** Why `device` cannot carry a cluster, from what the kernel says of it; undefined when it can. Pure. */
export function boundDeviceProblem(device: string, info: Pick<port.IfInfo, 'type' | 'loopback' | 'mac'>, flag: string): string | undefined {
  const lan = 'bind the device on the LAN where the clients and the other nodes are (e.g. eth0, a bond, a VLAN device)';
  if (info.loopback) return `${flag} ${device}: ${device} is the loopback device: no other host can reach a cluster on it, and its MAC is 00:00:00:00:00:00; ${lan}`;
  if (info.type !== port.ARPHRD_ETHER) return `${flag} ${device}: ${device} is not an Ethernet device (link type ${info.type}): a cluster shares a MAC address on an Ethernet LAN; ${lan}`;
  if (info.mac.every((b) => b === 0)) return `${flag} ${device}: ${device} has no MAC address (${formatMac(info.mac)}): the other nodes tell this one apart by its MAC; ${lan}`;
  return undefined;
}

/** The host's address equal to one of the VIP's (the first found), or undefined. Pure. */
export function hostAddressHolding(vip: Pick<ClusterVip, 'v4' | 'v6'>, addresses: readonly port.HostAddress[]): { address: string; device: string } | undefined {
  for (const a of addresses) {
    if (a.family === 4 && vip.v4 !== 0 && a.address.length === 4 && ((a.address[0]! << 24) | (a.address[1]! << 16) | (a.address[2]! << 8) | a.address[3]!) >>> 0 === vip.v4) {
      return { address: formatIPv4(vip.v4), device: a.device };
    }
    if (a.family === 6 && vip.v6 !== undefined && a.address.length === 16 && a.address.every((b, i) => b === vip.v6![i])) return { address: formatIPv6(vip.v6), device: a.device };
  }
  return undefined;
}

function refuse(message: string): never {
  throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', message);
}

/**
 * The bound device and the VIP, as the kernel sees them now (LNLB_ERR_DEV_NOT_FOUND for a
 * device that does not exist, LNLB_ERR_CLI_BAD_FLAG naming the flag for one that cannot
 * carry a cluster or a VIP the host owns). `bondMadeLater`: the device is a bond this start
 * creates (`--bond`), checked when it exists.
 */
export function checkBinding(vip: ClusterVip, bind: string, names: BindingNames, bondMadeLater = false): void {
  if (!bondMadeLater) {
    const problem = boundDeviceProblem(bind, port.ifInfo(bind), names.bind); // LNLB_ERR_DEV_NOT_FOUND naming it
    if (problem !== undefined) refuse(problem);
  }
  const held = hostAddressHolding(vip, port.hostAddresses());
  if (held !== undefined) {
    refuse(
      `${names.vip} ${held.address}: ${held.address} is an address of this host already (on ${held.device}): the cluster IP must be one no host owns (lnlbd puts it on its own cluster interface, and a host that owns it answers for it itself); pick a free address of ${bind}'s subnet, or remove it (ip addr del ${held.address} dev ${held.device})`,
    );
  }
}

/**
 * Every check of an interface about to be started, in order of cost: the key file, the
 * device and the VIP, then the handler modules (a thread each). Nothing on the host changes.
 */
export async function preflightInterface(o: InterfaceOptions, vip: ClusterVip, log: Logger, names: BindingNames, bondMadeLater = false): Promise<InterfacePreflight> {
  const key = loadClusterKey(o, log);
  checkBinding(vip, o.bind, names, bondMadeLater);
  const setups = handlerSetups(o);
  const handlers = await checkHandlers(setups, o.election);
  return { key, handlers, setups };
}
