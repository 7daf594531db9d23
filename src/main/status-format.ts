/** Human output of `lnlbctl status`: aligned tables. */

import type { InterfaceStatusJson, StatusJson } from './admin-protocol.js';
import type { HealthStatusJson } from './health-monitor.js';
import { STATUS_NAMES, weightText } from './node-state.js';
/** Interface states in which this node takes no part in the elections. */
const OUT_OF_CLUSTER: ReadonlySet<string> = new Set(['stopped', 'suspended', 'stopping', 'failed', 'unhealthy']);
const sum = (values: Record<string, number>): number => Object.values(values).reduce((a, b) => a + b, 0);

/** Per-second rates between two samples of one interface (`lnlbctl status --watch`, `top`). */
export interface InterfaceRates {
  seen: number;
  accepted: number;
  dropped: number;
  controlIn: number;
  controlOut: number;
}

export function interfaceRates(before: InterfaceStatusJson, after: InterfaceStatusJson, seconds: number): InterfaceRates {
  const per = (a: number, b: number): number => (seconds > 0 ? Math.max(0, b - a) / seconds : 0);
  const c0 = before.counters;
  const c1 = after.counters;
  return {
    seen: per(c0.framesSeen, c1.framesSeen),
    accepted: per(c0.framesAccepted, c1.framesAccepted),
    dropped: per(sum(c0.framesDropped), sum(c1.framesDropped)),
    controlIn: per(sum(c0.control.received), sum(c1.control.received)),
    controlOut: per(sum(c0.control.sent), sum(c1.control.sent)),
  };
}

/** The header's last words: an interface without a key says so in capitals, and why. */
function authText(iface: InterfaceStatusJson): string {
  if (iface.insecure) return 'AUTH OFF (--insecure-no-auth): any host on this LAN can take this cluster over';
  return `control plane ${iface.authenticated ? 'authenticated' : 'NOT authenticated'}`;
}

const rate = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n');
}

const SERVING_TEXT: Record<HealthStatusJson['serving'], string> = {
  in: 'taking part',
  out: 'OUT of the cluster (left: the other members serve its clients; rejoins when healthy)',
  'last-resort': 'still serving: the only member left (last resort), leaves once another member is there',
};

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The health checks: one line for the node, one row per check with its last result. */
export function healthLines(h: HealthStatusJson): string[] {
  const lines = [`  health: ${h.state} for ${seconds(h.sinceMs)}, ${SERVING_TEXT[h.serving]}; every ${h.intervalMs} ms, timeout ${h.timeoutMs} ms, fall ${h.fall}, rise ${h.rise}`];
  const rows = [['CHECK', 'STATE', 'LAST RESULT', 'RUN', 'FAILED']];
  for (const c of h.checks) {
    const last = c.last === undefined ? 'not run yet' : `${c.last.ok ? 'ok' : 'FAILED'}: ${c.last.detail}, ${seconds(c.last.agoMs)} ago${c.failuresInARow > 1 ? ` (${c.failuresInARow} failures in a row)` : ''}`;
    rows.push([c.check, c.state, last, String(c.run), String(c.failed)]);
  }
  lines.push(table(rows).replace(/^/gm, '    '));
  return lines;
}

/** `rates`: by interface name, from the previous sample (watch mode); absent: no rates line. */
export function formatStatus(status: StatusJson, rates?: ReadonlyMap<string, InterfaceRates>): string {
  const out: string[] = [];
  if (status.interfaces.length === 0) out.push('no cluster interface: add one with lnlbctl addif <vip> <dev>');
  for (const iface of status.interfaces) {
    out.push(`${iface.name}: vip ${iface.vip} on ${iface.bind}, cluster MAC ${iface.clusterMac}, ${iface.state === 'failed' ? `failed: ${iface.failed ?? 'see the log'}` : iface.state}${iface.suspended && iface.state !== 'suspended' ? ' (suspended)' : ''}, weight from ${iface.weightMode}, ${iface.workers} worker(s), ${authText(iface)}`);
    // One state in words per row; this node's is the header's (node-state.ts).
    const rows = [['NODE', 'NAME', 'ADDRESS', 'STATE', 'WEIGHT', 'RULES', '']];
    for (const node of iface.nodes) {
      const rules = node.self || node.rulesMatch === undefined ? (node.self ? 'same' : '?') : node.rulesMatch ? 'same' : `DIFFERENT (${node.rulesDigest})`;
      const state = node.state ?? STATUS_NAMES[node.status] ?? node.status;
      // Out of the cluster, this node announces no weight: its last one would read as a share.
      const out = node.self && OUT_OF_CLUSTER.has(iface.state);
      rows.push([node.mac, node.name ?? '-', node.address ?? '-', state, out ? '-' : weightText(node.weight), rules, node.self ? '(this node)' : '']);
    }
    out.push(table(rows).replace(/^/gm, '  '));
    if (iface.health !== undefined) out.push(...healthLines(iface.health));
    if (iface.state === 'held') out.push('  HELD: not serving: peers on this LAN that this node cannot authenticate (below): give every node the same --key-file');
    for (const p of iface.unauthenticatedPeers) {
      const meaning = p.verdict === 'BAD_MAC' ? 'a different key' : p.verdict === 'UNSIGNED' ? 'no key' : p.verdict === 'UNEXPECTED_SIGNATURE' ? 'it has a key, this node none' : p.verdict;
      out.push(`  unauthenticated peer ${p.mac}: ${p.verdict} (${meaning})${p.claimsJoined ? ', says it serves' : ''}, last heard ${p.lastSeenMs} ms ago`);
    }
    const b = iface.buckets;
    if (b !== undefined) {
      out.push(
        b.digest === ''
          ? '  buckets: no table yet (a newcomer waits for the members\' one, with the tracking state)'
          : `  buckets: ${b.owned} of 1024 owned, table ${b.digest} (${b.source}, ${b.agreed ? 'every member agrees' : 'not every member agrees yet'}), the last change moved ${b.lastMoves}${b.fallbacks > 0 ? `, fell back to the canonical table ${b.fallbacks} time(s)` : ''}; ${b.draining} draining, ${b.pending} waiting for handovers`,
      );
    }
    out.push(`  port rules (digest ${iface.rulesDigest}): ${iface.rules.join('  ')}`);
    if (iface.rulesMismatch.length > 0) out.push(`  WARNING: ${iface.rulesMismatch.join(', ')} run other port rules: give every node the same --rule flags`);
    out.push(`  handlers: ${iface.handlers.map((h) => `${h.protocol}=${h.name} (idle ${h.idleTimeoutSeconds}s${Object.entries(h.counters).filter(([, n]) => n > 0).map(([k, n]) => `, ${k} ${n}`).join('')})`).join('  ')}`);
    const c = iface.counters;
    const drops = Object.entries(c.framesDropped)
      .filter(([, n]) => n > 0)
      .map(([why, n]) => `${why} ${n}`)
      .join(', ');
    out.push(`  rounds ${c.rounds}${c.resets > 0 ? `, self-resets ${c.resets}` : ''}${(c.stallMaxMs ?? 0) > 0 ? `, control thread stalled up to ${c.stallMaxMs} ms (${c.stallTotalMs ?? 0} ms in all; not counted as members' silence)` : ''}`);
    out.push(`  frames: seen ${c.framesSeen}${c.framesIPv6 > 0 ? ` (IPv6 ${c.framesIPv6})` : ''}, accepted ${c.framesAccepted}, tracked sources ${c.trackedEntries}, ARP replies ${c.arpReplies}${c.ndpAdvertisements > 0 ? `, neighbour advertisements ${c.ndpAdvertisements}` : ''}, kernel drops ${c.kernelDrops}`);
    if (drops) out.push(`  dropped: ${drops}`);
    if (c.vlan !== undefined) out.push(`  VLAN ${c.vlan.id} (trunk): host frames sent tagged ${c.vlan.egressFrames}${c.vlan.egressDrops > 0 ? `, refused ${c.vlan.egressDrops}` : ''}, neighbour answers to the host ${c.vlan.neighbourToHost}`);
    const f = c.kernelFilter;
    if (f !== undefined) {
      out.push(`  kernel filter: ${f.program === 'buckets' ? `${f.passBuckets} of 1024 buckets pass` : 'plain'} (${f.why}), swapped ${f.swaps} time(s)${f.failures > 0 ? `, REFUSED ${f.failures} time(s) by the kernel` : ''}`);
    }
    const r = rates?.get(iface.name);
    if (r !== undefined) out.push(`  per second: seen ${rate(r.seen)}, accepted ${rate(r.accepted)}, dropped ${rate(r.dropped)}, control in ${rate(r.controlIn)} / out ${rate(r.controlOut)}`);
    const rejected = Object.entries(c.control.rejected).map(([why, n]) => `${why} ${n}`).join(', ');
    if (rejected) out.push(`  control messages rejected: ${rejected}`);
  }
  return `${out.join('\n')}\n`;
}
