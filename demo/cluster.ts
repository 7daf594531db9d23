/**
 * `sudo npm run demo`: three lnlbd nodes share 10.0.0.100 with nothing in front of them.
 * Builds the namespace lab, shows which node serves each of 24 clients, kills one node with
 * SIGKILL, times the failover, shows who moved, and removes the lab (also on Ctrl-C or error).
 */
import { performance } from 'node:perf_hooks';
import { ClusterLab, LAB_DAEMON_TIMING, VIP, type Served } from '../lab/cluster.js';
import { sweepStale } from '../lab/netns.js';
import { ensureSystemTools } from '../lab/system-tools.js';
import { isLnlbError } from '../src/errors.js';

const NODES = 3;
const CLIENTS = 24;
const VICTIM = 'node2';

if (process.getuid?.() !== 0) {
  console.error('npm run demo builds network namespaces and needs root: run sudo npm run demo');
  process.exit(1);
}
// ping and curl make the figures below: the demo installs them (as root) or stops here.
const missingTools = ensureSystemTools('demo');
if (missingTools !== undefined) {
  console.error(missingTools);
  process.exit(1);
}

// After Ctrl-C the lab tears itself down (netns.ts) while main() is still running into the
// failures that causes; nothing it prints then would mean anything.
let interrupted = false;
function say(...parts: unknown[]): void {
  if (!interrupted) console.log(...parts);
}

const startedAt = performance.now();
function step(text: string): void {
  say(`\n[${((performance.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${text}`);
}

function nodeOf(served: Served | undefined): string {
  return served !== undefined && 'node' in served ? served.node : 'no answer';
}

function printHistogram(assignment: Map<string, string>, nodes: readonly string[]): void {
  for (const node of [...nodes, 'no answer']) {
    const count = [...assignment.values()].filter((n) => n === node).length;
    if (count > 0 || node !== 'no answer') say(`  ${node.padEnd(9)} ${'█'.repeat(count).padEnd(CLIENTS)} ${count}`);
  }
}

function printTable(before: Map<string, string>, after?: Map<string, string>): void {
  // Two clients per line keeps 24 rows on one screen.
  const cells = [...before].map(([client, node]) => {
    const now = after?.get(client);
    if (now === undefined) return `${client.padEnd(12)} ${node.padEnd(9)}`;
    const mark = now !== node ? `moved from ${node}` : '';
    return `${client.padEnd(12)} ${now.padEnd(9)} ${mark.padEnd(17)}`;
  });
  const header = after === undefined ? `${'client'.padEnd(12)} ${'served by'.padEnd(9)}` : `${'client'.padEnd(12)} ${'served by'.padEnd(9)} ${''.padEnd(17)}`;
  say(`  ${header}    ${header}`);
  for (let i = 0; i < cells.length; i += 2) say(`  ${cells[i]}    ${cells[i + 1] ?? ''}`);
}

async function whoServesWhom(cluster: ClusterLab): Promise<Map<string, string>> {
  const survey = await cluster.survey(cluster.clientIps);
  return new Map(cluster.clientIps.map((client) => [client, nodeOf(survey.get(client))]));
}

async function main(): Promise<void> {
  await sweepStale();
  step(`Building the lab: a bridge, ${NODES} nodes (10.0.0.1-${NODES}), one client with ${CLIENTS} addresses (10.0.0.101-${100 + CLIENTS})`);
  const cluster = await ClusterLab.create({ nodes: NODES, clientAddresses: CLIENTS });
  // The lab removes itself on SIGINT (netns.ts); this says so and silences the rest.
  process.once('SIGINT', () => {
    console.log('\ninterrupted: removing the lab');
    interrupted = true;
  });
  try {
    step(`Starting lnlbd on ${cluster.nodes.join(', ')}: VIP ${VIP} on eth0, ${LAB_DAEMON_TIMING.join(' ')}, --key-file ${cluster.keyFile}`);
    say('  (a key made for this run with lnlbctl genkey, the same file for every node; removed with the lab)');
    for (const node of cluster.nodes) cluster.startDaemon(node);
    const convergedMs = await cluster.waitConverged(cluster.nodes, 20_000);
    say(`  converged after ${convergedMs.toFixed(0)} ms`);
    for (const node of cluster.nodes) await cluster.startHttpServer(node);
    say(`  an HTTP server on every node answers on ${VIP}:80 with its own name`);

    step('lnlbctl status on node1');
    say((await cluster.statusText('node1')).trimEnd().replace(/^/gm, '  '));

    step(`curl http://${VIP}/ from each client address`);
    const before = await whoServesWhom(cluster);
    printTable(before);
    say();
    printHistogram(before, cluster.nodes);

    const orphans = [...before].filter(([, node]) => node === VICTIM).map(([client]) => client);
    const survivors = cluster.nodes.filter((node) => node !== VICTIM);
    step(`kill -9 lnlbd on ${VICTIM} (it served ${orphans.length} clients); waiting until survivors answer them`);
    const killedAtEpoch = Date.now();
    const killedAt = performance.now();
    const ticker = process.stdout.isTTY
      ? setInterval(() => process.stdout.write(`\r  waiting ${((performance.now() - killedAt) / 1000).toFixed(1)} s`), 100)
      : undefined;
    let icmp: Awaited<ReturnType<ClusterLab['waitPingAnswered']>>;
    let takeover: Awaited<ReturnType<ClusterLab['waitServedBy']>>;
    try {
      await cluster.killDaemon(VICTIM, 'SIGKILL');
      [icmp, takeover] = await Promise.all([
        cluster.waitPingAnswered(orphans, VIP, killedAtEpoch, 15_000),
        cluster.waitServedBy(orphans, survivors, killedAt, 15_000),
      ]);
    } finally {
      if (ticker !== undefined) {
        clearInterval(ticker);
        process.stdout.write('\r\x1b[K');
      }
    }
    if (takeover.unanswered.length > 0) say(`  still unanswered after 15 s: ${takeover.unanswered.join(', ')}`);
    say(`  failover: every client of ${VICTIM} gets ping replies again ${(icmp.worstMs / 1000).toFixed(2)} s after SIGKILL,`);
    say(`            and its HTTP requests are answered by a survivor after ${(takeover.worstMs / 1000).toFixed(2)} s`);
    await cluster.waitConverged(survivors, 10_000);
    say(`  ${survivors.join(' and ')} list each other only, ${((performance.now() - killedAt) / 1000).toFixed(2)} s after SIGKILL`);

    step('curl again from each client address');
    const after = await whoServesWhom(cluster);
    printTable(before, after);
    say();
    printHistogram(after, cluster.nodes);
    const moved = [...before].filter(([client, node]) => after.get(client) !== node);
    const movedElsewhere = moved.filter(([, node]) => node !== VICTIM).length;
    say(`\n  ${moved.length} clients moved (${moved.length - movedElsewhere} from ${VICTIM}, ${movedElsewhere} from a survivor); ${CLIENTS - moved.length} kept their node.`);
  } catch (error) {
    if (interrupted) return;
    console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
    // A tool that did not run says all there is to say; the daemons' logs would only distract.
    if (!(isLnlbError(error) && error.code === 'LNLB_ERR_LAB_TOOL')) console.error(cluster.logTails(10));
    process.exitCode = 1;
  } finally {
    step('Removing the lab');
    await cluster.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
