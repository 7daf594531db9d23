/**
 * Who took each new source: every node records the owner it elected for each source it saw
 * (the default handler tracks every source), so from each node's `lnlbctl conntrack --json` a
 * source no node holds as its own was taken by none, one that two hold by two. What a user
 * checks after a weight change: no client was served twice, none dropped for good.
 */
import { adminRequest } from '../src/main/admin-client.js';
import type { ClusterLab } from '../lab/cluster.js';

/** What `lnlbctl conntrack --json` prints: the admin socket's answer as it is. */
interface Conntrack {
  entries: { source: string; self: boolean }[];
}

/** The real CLI on each node (a Node process each: for a few nodes). */
export function viaLnlbctl(lab: ClusterLab): (node: string) => Promise<Conntrack> {
  return async (node) => {
    const r = await lab.ctl(node, ['conntrack', 'nlb0', '--json', '--limit', '1000000'], 30_000);
    if (r.code !== 0) throw new Error(`conntrack on ${node}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Conntrack;
  };
}

/** What lnlbctl sends, straight to each daemon's admin socket: 64 Node processes would load the 2 cores the daemons share. */
export function viaAdminSocket(lab: ClusterLab): (node: string) => Promise<Conntrack> {
  return async (node) => (await adminRequest(lab.runDir(node), 'conntrack', { interface: 'nlb0', limit: 1_000_000 }, 30_000)) as Conntrack;
}

export interface SourceOwners {
  /** Sources no node holds as its own / two or more do / some node never saw. */
  byNone: number;
  byTwo: number;
  unseen: number;
}

/** The `count` sources from `base` (an IPv4 address as a number) up, over `nodes`' tracking tables read with `read`. */
export async function sourceOwners(read: (node: string) => Promise<Conntrack>, nodes: readonly string[], base: number, count: number): Promise<SourceOwners> {
  const mine = new Map<number, number>();
  const seen = new Map<number, number>();
  for (const node of nodes) {
    for (const e of (await read(node)).entries) {
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
