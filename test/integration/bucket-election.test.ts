// --election bucket with real daemons: a newcomer joins, a member leaves, a second cluster is
// added with addif. Each time every client is answered by one node, no existing client moves,
// and every node ends on one agreed table (lnlbctl status) sharing the 1024 buckets by weight.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import type { ClusterLab } from '../../lab/cluster.js';
import { sweepStale, waitExit } from '../../lab/netns.js';
import { lnlbctl, owners, servedBy, serving, withLab } from './fixtures/lab-scenarios.js';

const SOURCES = 24;
// A fixed weight: each node's share of the buckets is then exactly a third (or a half).
const BUCKETS = ['--election', 'bucket', '--weight-mode', 'fixed'];

test.before(async () => {
  await sweepStale();
});

/** Each node's bucket table as its status tells it, once every node agrees on one (at most 10 s). */
async function agreedTables(lab: ClusterLab, nodes: readonly string[], iface = 'nlb0'): Promise<{ digest: string; owned: number[] }> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const tables = await Promise.all(nodes.map(async (node) => (await lab.status(node)).interfaces.find((i) => i.name === iface)?.buckets));
    if (tables.every((b) => b?.agreed === true && b.digest === tables[0]?.digest)) return { digest: tables[0]!.digest, owned: tables.map((b) => b!.owned) };
    if (performance.now() > deadline) throw new Error(`no agreed bucket table on ${iface}: ${JSON.stringify(tables)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test.serial('a newcomer joins: no existing client moves, every node agrees on one table, the newcomer owns a third of it', async (t) => {
  await withLab(3, SOURCES, async (lab) => {
    for (const node of ['node1', 'node2']) lab.startDaemon(node, BUCKETS);
    await lab.waitConverged(['node1', 'node2'], 20_000);
    for (const node of ['node1', 'node2']) await lab.startHttpServer(node);
    t.deepEqual((await agreedTables(lab, ['node1', 'node2'])).owned, [512, 512]);
    const before = owners(await lab.survey(lab.clientIps));
    t.true([...before.values()].every((n) => n === 'node1' || n === 'node2'), JSON.stringify([...before]));
    lab.startDaemon('node3', BUCKETS);
    await lab.waitConverged(lab.nodes, 20_000);
    await lab.startHttpServer('node3');
    const table = await agreedTables(lab, lab.nodes);
    t.deepEqual([...table.owned].sort(), [341, 341, 342]);
    t.deepEqual(owners(await lab.survey(lab.clientIps)), before, 'every existing client is still served by the same node');
    // The old owners handed the flows of the moved buckets over, acknowledged; the newcomer
    // released its gained buckets on their word, not on a timeout, and tracks only its share.
    const [s1, s2, s3] = await Promise.all(lab.nodes.map(async (node) => (await lab.status(node)).interfaces[0]!.buckets!));
    t.true(s1!.handovers['messagesAcknowledged']! + s2!.handovers['messagesAcknowledged']! >= 1, JSON.stringify([s1!.handovers, s2!.handovers]));
    t.is(s3!.pending, 0);
    t.is(s3!.handovers['releaseTimeouts'], 0);
    t.true(s1!.draining + s2!.draining >= 1, 'the old owners drain the buckets that moved with their clients in them');
    // lnlbctl resync under bucket: the flows of the draining buckets go to their owners again; nothing moves.
    const drainer = s1!.draining >= 1 ? 'node1' : 'node2';
    const resync = await lnlbctl(lab, drainer, ['resync', 'nlb0', '--json']);
    t.is(resync.code, 0, resync.stderr);
    const handed = JSON.parse(resync.stdout) as { entries: number; handedTo: number };
    t.true(handed.entries >= 1 && handed.handedTo >= 1, resync.stdout);
    t.deepEqual(owners(await lab.survey(lab.clientIps)), before, 'still no client moved');
  });
});

test.serial('SIGTERM: the leaver\'s clients are answered by the others at once, whose tables agree and split its buckets', async (t) => {
  await withLab(3, SOURCES, async (lab) => {
    const before = await serving(lab, BUCKETS);
    await agreedTables(lab, lab.nodes);
    const orphans = servedBy(before, 'node2');
    const daemon = lab.daemon('node2')!;
    const since = performance.now();
    daemon.kill('SIGTERM');
    const takeover = await lab.waitServedBy(orphans, ['node1', 'node3'], since, 5000);
    t.true(await waitExit(daemon, 5000));
    t.deepEqual(takeover.unanswered, []);
    t.true(takeover.worstMs < 900, `took ${Math.round(takeover.worstMs)} ms`);
    t.deepEqual((await agreedTables(lab, ['node1', 'node3'])).owned, [512, 512]);
    const after = owners(await lab.survey(lab.clientIps));
    for (const [source, node] of before) if (node !== 'node2') t.is(after.get(source), node, `${source} stays with ${node}`);
  });
});

test.serial('a second cluster added with addif on two nodes: both VIPs answered, each table agreed', async (t) => {
  const VIP2 = '10.0.0.200';
  await withLab(2, SOURCES, async (lab) => {
    await serving(lab, BUCKETS);
    for (const node of lab.nodes) {
      const added = await lnlbctl(lab, node, ['addif', VIP2, 'eth0']);
      t.is(added.code, 0, added.stderr);
      await lab.startHttpServer(node, 80, VIP2);
    }
    await agreedTables(lab, lab.nodes, 'nlb1');
    for (const source of lab.clientIps.slice(0, 12)) {
      const r = await lab.curlFrom(source, `http://${VIP2}/`, { maxTimeS: 3 });
      t.true(r.ok, `${source}: ${r.ok ? '' : r.error}`);
    }
  });
});
