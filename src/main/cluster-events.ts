/**
 * What a cluster interface tells its owner (the daemon's log, the library's events), and how
 * the control plane's structured log lines become those typed events. Pure: a log line's
 * fields in, an event (or none) out.
 */

import type { InterfaceState } from './admin-protocol.js';
import type { HealthEvent } from './health-monitor.js';

/**
 * `node` is a MAC; `name` and `address` are what that node announced (--node-name or its host
 * name, and the IPv4 of its device), absent when it announced none (an LNLB node, an earlier
 * lnlb).
 */
export interface ClusterEvents {
  /** A node appeared (JOIN, WELCOME or its heartbeat); it enters the view with the next round. */
  joined: [{ node: string; name?: string; address?: string; id: number }];
  /** A node sent LEAVE (lnlbctl stop, delif, its daemon stopping). */
  left: [{ node: string; name?: string; address?: string }];
  /** A node was removed for silence (missed heartbeats), a restart or our own reset. */
  died: [{ node: string; name?: string; address?: string; reason: string; missedHeartbeats: number; silentMs: number }];
  /** A round settled a new view: these members (MACs, and their names in the same order: '' if none), with these weights, decide every new flow. */
  converged: [{ nodes: string[]; names: string[]; weights: number[] }];
  /** A member's weight changed in the view (DRAINING_WEIGHT: it drains). */
  weight: [{ node: string; name?: string; address?: string; self: boolean; from: number; to: number }];
  /** This interface's own state changed (stop, start, drain, suspend, resume; out or back in for its health). */
  state: [{ state: InterfaceState }];
  /** The health checks changed state, or what the node does about it (left, rejoined, stays as the last resort). */
  health: [HealthEvent];
}

/** The events the control plane's log lines carry (the others come from this thread). */
type MembershipEventName = 'joined' | 'left' | 'died' | 'converged' | 'weight';

/** One membership event, its name beside its payload, ready for `events.emit(name, payload)`. */
export type MembershipEvent = { [K in MembershipEventName]: { name: K; payload: ClusterEvents[K][0] } }[MembershipEventName];

/** The typed event a control-plane log line stands for (by its `event` field), or undefined. */
export function membershipEvent(f: Record<string, unknown>): MembershipEvent | undefined {
  const node = typeof f['node'] === 'string' ? f['node'] : '';
  const num = (key: string): number => (typeof f[key] === 'number' ? (f[key] as number) : 0);
  const who = { node, ...(typeof f['name'] === 'string' ? { name: f['name'] } : {}), ...(typeof f['address'] === 'string' ? { address: f['address'] } : {}) };
  switch (f['event']) {
    case 'node-joined':
      return { name: 'joined', payload: { ...who, id: num('id') } };
    case 'node-left':
      return { name: 'left', payload: who };
    case 'node-died':
      return { name: 'died', payload: { ...who, reason: String(f['reason']), missedHeartbeats: num('missedHeartbeats'), silentMs: num('silentMs') } };
    case 'view':
      return { name: 'converged', payload: { nodes: (f['nodes'] as string[] | undefined) ?? [], names: (f['names'] as string[] | undefined) ?? [], weights: (f['weights'] as number[] | undefined) ?? [] } };
    case 'node-weight':
      return { name: 'weight', payload: { ...who, self: f['self'] === true, from: num('from'), to: num('to') } };
    default:
      return undefined;
  }
}
