// Exactly once through every change, with real daemons under --election bucket (each data
// socket carrying its kernel filter): 150 long-lived UDP flows from a real client, one datagram
// every 100 ms each, while a node joins, a weight triples, a node stops (SIGTERM: LEAVE) and
// a node is killed (SIGKILL). No datagram is ever answered twice; a flow changes node only
// when its node went away; and once the changes settle every flow is answered again.
import test from 'ava';
import { sweepStale } from '../../lab/netns.js';
import { lnlbctl, withLab } from './fixtures/lab-scenarios.js';
import { startUdpEcho, udpFlows, type UdpReply } from './fixtures/udp-flows.js';

const SOURCES = 150;
const UDP_PORT = 7008;
const EVERY_MS = 100;
const COUNT = 180; // 18 s of flows
const BUCKETS = ['--election', 'bucket', '--weight-mode', 'fixed'];

test.before(async () => {
  await sweepStale();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test.serial('a join, a weight change, a LEAVE and a kill under live UDP flows: no datagram answered twice, no flow moved unless its node went away, every flow answered again at the end', async (t) => {
  await withLab(4, SOURCES, async (lab) => {
    for (const node of ['node1', 'node2', 'node3']) lab.startDaemon(node, BUCKETS);
    await lab.waitConverged(['node1', 'node2', 'node3'], 20_000);
    await Promise.all(['node1', 'node2', 'node3'].map((node) => startUdpEcho(lab, node, UDP_PORT)));
    const flows = udpFlows(lab, { port: UDP_PORT, count: COUNT, everyMs: EVERY_MS, timeoutMs: 60_000 });
    const started = Date.now();
    /** The datagram being sent now (every source started within a few ms of the others). */
    const seqNow = (): number => Math.floor((Date.now() - started) / EVERY_MS);
    const events: { what: string; seq: number }[] = [];

    await sleep(2500);
    events.push({ what: 'node4 starts', seq: seqNow() });
    lab.startDaemon('node4', BUCKETS);
    await lab.waitConverged(lab.nodes, 20_000);
    await startUdpEcho(lab, 'node4', UDP_PORT);
    await sleep(2500);
    events.push({ what: 'node1 weight 100 → 300', seq: seqNow() });
    const weight = await lnlbctl(lab, 'node1', ['set_weight', 'nlb0', '300']);
    t.is(weight.code, 0, weight.stderr);
    await sleep(3000);
    events.push({ what: 'node3 SIGTERM', seq: seqNow() });
    await lab.killDaemon('node3', 'SIGTERM');
    await sleep(3000);
    events.push({ what: 'node2 SIGKILL', seq: seqNow() });
    await lab.killDaemon('node2', 'SIGKILL');
    const gone = new Set(['node2', 'node3']);
    const replies = await flows;
    t.log('events (datagram number when each began):', events.map((e) => `${e.what} @${e.seq}`).join('; '));

    const twice: string[] = [];
    const moved: string[] = [];
    const unansweredAtEnd: string[] = [];
    let answered = 0;
    const perNode: Record<string, number> = {};
    for (const [source, got] of replies) {
      answered += got.length;
      const seen = new Map<number, string>();
      for (const r of got) {
        if (seen.has(r.seq)) twice.push(`${source} #${r.seq}: ${seen.get(r.seq)} and ${r.node}`);
        seen.set(r.seq, r.node);
      }
      // The nodes that answered this flow, in order: a change only away from a node that went away.
      const order = [...got].sort((a, b) => a.seq - b.seq).reduce<UdpReply[]>((runs, r) => (runs.at(-1)?.node === r.node ? runs : [...runs, r]), []);
      for (let i = 1; i < order.length; i++) if (!gone.has(order[i - 1]!.node)) moved.push(`${source}: ${order[i - 1]!.node} → ${order[i]!.node} at #${order[i]!.seq}`);
      // The last second of datagrams: the changes have settled.
      const last = got.filter((r) => r.seq > COUNT - 10);
      if (last.length === 0) unansweredAtEnd.push(source);
      const final = order.at(-1)?.node ?? 'nobody';
      perNode[final] = (perNode[final] ?? 0) + 1;
    }
    const sent = SOURCES * COUNT;
    t.log(`answered ${answered} of ${sent} datagrams (${((100 * answered) / sent).toFixed(2)}%); flows per node at the end:`, perNode);
    t.deepEqual(twice, [], 'no datagram answered twice');
    t.deepEqual(moved, [], 'no flow left a node that stayed');
    t.deepEqual(unansweredAtEnd, [], 'every flow answered once the changes settled');
    t.true(answered / sent > 0.95, `${answered} of ${sent} answered`);
    t.true((perNode['node4'] ?? 0) > 0, 'the newcomer took flows');
  });
});
