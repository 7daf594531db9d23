/** Human output of `lnlbctl status`: aligned tables. */

import type { StatusJson } from './admin-protocol.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n');
}

export function formatStatus(status: StatusJson): string {
  const out: string[] = [];
  for (const iface of status.interfaces) {
    out.push(`${iface.name}: vip ${iface.vip} on ${iface.bind}, cluster MAC ${iface.clusterMac}, ${iface.state}, weight from ${iface.weightMode}, ${iface.workers} worker(s), control plane ${iface.authenticated ? 'authenticated' : 'NOT authenticated'}`);
    const rows = [['NODE', 'STATUS', 'WEIGHT', 'RULES', '']];
    for (const node of iface.nodes) {
      const rules = node.self || node.rulesMatch === undefined ? (node.self ? 'same' : '?') : node.rulesMatch ? 'same' : `DIFFERENT (${node.rulesDigest})`;
      rows.push([node.mac, node.status, String(node.weight), rules, node.self ? '(this node)' : '']);
    }
    out.push(table(rows).replace(/^/gm, '  '));
    out.push(`  port rules (digest ${iface.rulesDigest}): ${iface.rules.join('  ')}`);
    if (iface.rulesMismatch.length > 0) out.push(`  WARNING: ${iface.rulesMismatch.join(', ')} run other port rules: give every node the same --rule flags`);
    out.push(`  handlers: ${iface.handlers.map((h) => `${h.protocol}=${h.name} (idle ${h.idleTimeoutSeconds}s${Object.entries(h.counters).filter(([, n]) => n > 0).map(([k, n]) => `, ${k} ${n}`).join('')})`).join('  ')}`);
    const c = iface.counters;
    const drops = Object.entries(c.framesDropped)
      .filter(([, n]) => n > 0)
      .map(([why, n]) => `${why} ${n}`)
      .join(', ');
    out.push(`  rounds ${c.rounds}${c.resets > 0 ? `, self-resets ${c.resets}` : ''}`);
    out.push(`  frames: seen ${c.framesSeen}, accepted ${c.framesAccepted}, tracked sources ${c.trackedEntries}, ARP replies ${c.arpReplies}, kernel drops ${c.kernelDrops}`);
    if (drops) out.push(`  dropped: ${drops}`);
    const rejected = Object.entries(c.control.rejected).map(([why, n]) => `${why} ${n}`).join(', ');
    if (rejected) out.push(`  control messages rejected: ${rejected}`);
  }
  return `${out.join('\n')}\n`;
}
