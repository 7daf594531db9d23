/**
 * Who took each new source: every node records the owner it elected for each source it saw
 * (the default handler tracks every source), so from each node's `lnlbctl conntrack --json` a
 * source no node holds as its own was taken by none, one that two hold by two. What a user
 * checks after a weight change: no client was served twice, none dropped for good.
 */
import type { ClusterLab } from '../lab/cluster.js';

export interface SourceOwners {
  /** Sources no node holds as its own / two or more do / some node never saw. */
  byNone: number;
  byTwo: number;
  unseen: number;
}

/** The `count` sources from `base` (an IPv4 address as a number) up, over `nodes`' tracking tables. */
export async function sourceOwners(lab: ClusterLab, nodes: readonly string[], base: number, count: number): Promise<SourceOwners> {
  const mine = new Map<number, number>();
  const seen = new Map<number, number>();
  for (const node of nodes) {
    const r = await lab.ctl(node, ['conntrack', 'nlb0', '--json', '--limit', '1000000'], 30_000);
    if (r.code !== 0) throw new Error(`conntrack on ${node}: ${r.stderr}`);
    for (const e of (JSON.parse(r.stdout) as { entries: { source: string; self: boolean }[] }).entries) {
      const [a, b, c, d] = e.source.split('.').map(Number);
      const ip = (((a! << 24) | (b! << 16) | (c! << 8) | d!) >>> 0) - base;
      if (!(ip >= 0 && ip < count)) continue;
      seen.set(ip, (seen.get(ip) ?? 0) + 1);
      if (e.self) mine.set(ip, (mine.get(ip) ?? 0) + 1);
    }
  }
  const owners: SourceOwners = { byNone: 0, byTwo: 0, unseen: 0 };
  for (let i = 0; i < count; i++) {
    if ((seen.get(i) ?? 0) < nodes.length) owners.unseen++;
    const holders = mine.get(i) ?? 0;
    if (holders === 0) owners.byNone++;
    else if (holders > 1) owners.byTwo++;
  }
  return owners;
}
