// The cluster protocol with real daemons in namespaces: a newcomer receives the tracking state
// and no existing client moves, also when the switch drops 30% of the state's fragments; SIGTERM sends LEAVE; a paused node comes back without double
// ownership; a node with the wrong key is kept out; sub-second failover at --heartbeat-ms 100.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ClusterLab, VIP } from '../../lab/cluster.js';
import { formatIPv4, parseIPv4 } from '../../src/net/ipv4.js';
import { sweepStale, tail, waitExit } from '../../lab/netns.js';
import { lnlbctl, owners, servedBy, serving, withLab as withLabOf } from './fixtures/lab-scenarios.js';

const SOURCES = 24;
let keyDir = '';

test.before(async () => {
  await sweepStale();
  keyDir = mkdtempSync(join(tmpdir(), 'lnlb-keys-'));
});

test.after.always(() => {
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

function withLab(nodes: number, body: (lab: ClusterLab) => Promise<void>): Promise<void> {
  return withLabOf(nodes, SOURCES, body);
}

test.serial('a newcomer receives the tracking state and no existing client moves', async (t) => {
  await withLab(3, async (lab) => {
    lab.startDaemon('node1');
    lab.startDaemon('node2');
    await lab.waitConverged(['node1', 'node2'], 20_000);
    for (const node of ['node1', 'node2']) await lab.startHttpServer(node);
    const before = owners(await lab.survey(lab.clientIps));
    t.true([...before.values()].every((n) => n === 'node1' || n === 'node2'), JSON.stringify([...before]));
    const joinedAt = performance.now();
    const newcomer = lab.startDaemon('node3');
    await lab.waitConverged(lab.nodes, 20_000);
    t.log(`node3 converged ${Math.round(performance.now() - joinedAt)} ms after start`);
    await lab.startHttpServer('node3');
    const loaded = await lab.lab.waitForLog(newcomer, /"event":"state-loaded"/, 5000); // one state per handler: the default one here
    const entries = Number(/"entries":(\d+)/.exec(loaded.split('\n').find((l) => l.includes('state-loaded')) ?? '')?.[1] ?? -1);
    t.true(entries >= SOURCES, `node3 loaded ${entries} tracked flows`);
    const after = owners(await lab.survey(lab.clientIps));
    t.deepEqual(after, before, 'every existing client is still served by the same node');
  });
});

/** Sends one UDP frame from each of `--count` sources (the bench's generator): that many tracked flows. */
const GENERATOR = fileURLToPath(new URL('../../bench/generator.js', import.meta.url));
const TRACKED_FLOWS = 20_000;
/**
 * The flows are sent in bursts of this many (one generator run each): what this test checks is
 * the state transfer, and 20,000 new flows in one line-rate burst can overflow a node's receive
 * ring (--workers 1 decides each new flow where it reads it, with no actor ring behind).
 */
const FLOW_BURST = 4000;
const FRAGMENT_LOSS_PERCENT = 30;
/** Clients with a connection open across the join, and its length in 50 ms lines. */
const STREAMS = 16;
const STREAM_LINES = 160;

function logField(line: string, name: string): number {
  return Number(new RegExp(`"${name}":(\\d+)`).exec(line)?.[1] ?? Number.NaN);
}

test.serial(`a newcomer under ${FRAGMENT_LOSS_PERCENT}% loss of the state's fragments asks again for what it lacks: every tracked flow loaded before it serves, no existing client moves or is answered twice`, async (t) => {
  await withLab(3, async (lab) => {
    lab.startDaemon('node1');
    lab.startDaemon('node2');
    await lab.waitConverged(['node1', 'node2'], 20_000);
    for (const node of ['node1', 'node2']) await lab.startHttpServer(node);
    for (let at = 0; at < TRACKED_FLOWS; at += FLOW_BURST) {
      const base = formatIPv4((parseIPv4('10.64.0.0') + at) >>> 0);
      const flows = await lab.lab.exec('client', [process.execPath, GENERATOR, '--count', String(Math.min(FLOW_BURST, TRACKED_FLOWS - at)), '--base', base], { timeoutMs: 60_000 });
      t.is(flows.code, 0, flows.stderr);
    }
    const before = owners(await lab.survey(lab.clientIps));
    t.true([...before.values()].every((n) => n === 'node1' || n === 'node2'), JSON.stringify([...before]));
    // Long-lived connections across the join: a node that claimed one without the state would reset it.
    const streamed = lab.clientIps.slice(0, STREAMS);
    const streams = streamed.map((source) => lab.curlFrom(source, `http://${VIP}/stream?lines=${STREAM_LINES}&everyMs=50`, { maxTimeS: 30 }));
    await sleep(300);
    const dropped = await lab.dropStateFragments(FRAGMENT_LOSS_PERCENT);
    const joinedAt = performance.now();
    const newcomer = lab.startDaemon('node3');
    await lab.waitConverged(lab.nodes, 30_000);
    const convergedMs = performance.now() - joinedAt;
    const received = await lab.lab.waitForLog(newcomer, /"event":"state-received"/, 5000);
    const loaded = await lab.lab.waitForLog(newcomer, /"event":"state-loaded"/, 5000);
    const lost = await dropped();
    const log = tail(newcomer.logFile, 2000).split('\n');
    const receivedAt = log.findIndex((l) => l.includes('"event":"state-received"'));
    const servingAt = log.findIndex((l) => l.includes('"event":"view"'));
    t.true(receivedAt >= 0 && servingAt > receivedAt, 'the state was complete before its first view (it serves from its first view)');
    t.true(lost > 0, `the switch dropped ${lost} state fragments`);
    t.true(logField(received, 'fragmentsAsked') > 0, received);
    t.true(logField(loaded, 'entries') >= TRACKED_FLOWS, `node3 loaded ${logField(loaded, 'entries')} tracked flows`);
    t.log(
      `${FRAGMENT_LOSS_PERCENT}% loss: ${logField(received, 'fragments')} fragments in the state, ${lost} dropped by the switch (resends included), ${logField(received, 'fragmentsAsked')} asked again in ${logField(received, 'requests')} requests; complete ${logField(received, 'ms')} ms after joining; node3 converged ${Math.round(convergedMs)} ms after start`,
    );
    const bodies = await Promise.all(streams);
    t.true(convergedMs < STREAM_LINES * 50 - 1000, `node3 converged (${Math.round(convergedMs)} ms) while the streams were open`);
    bodies.forEach((body, i) => {
      const lines = body.ok ? body.body.trim().split('\n') : [];
      t.is(lines.length, STREAM_LINES, `${streamed[i]!}: the long connection finished whole: ${JSON.stringify(body).slice(0, 200)}`);
      t.true(lines.every((line, k) => line === `${k + 1} ${before.get(streamed[i]!)!}`), `${streamed[i]!}: every line from its node, ${before.get(streamed[i]!)!}`);
    });
    await lab.startHttpServer('node3');
    const after = owners(await lab.survey(lab.clientIps));
    t.deepEqual(after, before, 'every existing client is still served by the same node');
    for (const source of lab.clientIps.slice(0, 8)) {
      const ping = await lab.pingFrom(source, VIP, 3);
      t.is(ping.duplicates, 0, `${source}: answered by two nodes`);
      t.is(ping.received, 3, `${source}: ${ping.output}`);
    }
  });
});

test.serial('SIGTERM sends LEAVE: the others drop the node at once and take its clients', async (t) => {
  await withLab(3, async (lab) => {
    const before = await serving(lab);
    const orphans = servedBy(before, 'node2');
    const daemon = lab.daemon('node2')!;
    const since = performance.now();
    daemon.kill('SIGTERM');
    const takeover = await lab.waitServedBy(orphans, ['node1', 'node3'], since, 5000);
    t.true(await waitExit(daemon, 5000), 'node2 exits on SIGTERM');
    t.deepEqual(takeover.unanswered, []);
    t.log(`after LEAVE: ${orphans.length} clients answered by survivors within ${Math.round(takeover.worstMs)} ms`);
    // A LEAVE needs no timeout: well under --dead-after-ms (1000 ms here).
    t.true(takeover.worstMs < 900, `took ${Math.round(takeover.worstMs)} ms`);
    const status = await lab.status('node1');
    t.is(status.interfaces[0]!.nodes.length, 2);
  });
});

test.serial('a paused node comes back without double ownership: it resets, rejoins, and takes only what the new view gives it', async (t) => {
  await withLab(3, async (lab) => {
    const before = await serving(lab);
    const orphans = servedBy(before, 'node2');
    const daemon = lab.daemon('node2')!;
    process.kill(daemon.pid!, 'SIGSTOP');
    const since = performance.now();
    const takeover = await lab.waitServedBy(orphans, ['node1', 'node3'], since, 8000);
    t.deepEqual(takeover.unanswered, []);
    const moved = owners(await lab.survey(lab.clientIps));
    process.kill(daemon.pid!, 'SIGCONT');
    await lab.lab.waitForLog(daemon, /"event":"reset"/, 5000);
    await lab.waitConverged(lab.nodes, 20_000);
    const after = owners(await lab.survey(lab.clientIps));
    t.deepEqual(after, moved, 'clients re-homed while node2 was paused stay where they are');
    for (const source of orphans.slice(0, 6)) {
      const ping = await lab.pingFrom(source, VIP, 3);
      t.is(ping.duplicates, 0, `${source}: duplicate echo replies`);
      t.is(ping.received, 3, `${source}: ${ping.output}`);
    }
  });
});

test.serial('a node with the wrong key is kept out and its messages are counted as forged', async (t) => {
  const good = join(keyDir, 'good.key');
  const bad = join(keyDir, 'bad.key');
  writeFileSync(good, 'correct horse battery staple 0123456789', { mode: 0o600 });
  writeFileSync(bad, 'another secret entirely, also long enough', { mode: 0o600 });
  await withLab(3, async (lab) => {
    lab.startDaemon('node1', ['--key-file', good]);
    lab.startDaemon('node2', ['--key-file', good]);
    const intruder = lab.startDaemon('node3', ['--key-file', bad]);
    await lab.waitConverged(['node1', 'node2'], 20_000);
    await lab.lab.waitForLog(intruder, /control plane authenticated/, 5000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const status = (await lab.status('node1')).interfaces[0]!;
    t.is(status.nodes.length, 2, JSON.stringify(status.nodes));
    t.true((status.counters.control.rejected['auth-BAD_MAC'] ?? 0) > 0, JSON.stringify(status.counters.control.rejected));
    t.regex(tail(intruder.logFile), /control plane authenticated/);
  });
});

test.serial('--heartbeat-ms 100: a killed node\'s clients are answered by the survivors within 500 ms', async (t) => {
  await withLab(3, async (lab) => {
    const fast = ['--heartbeat-ms', '100', '--dead-after-ms', '300'];
    const before = await serving(lab, fast);
    const orphans = servedBy(before, 'node2');
    t.true(orphans.length > 0);
    const sinceEpoch = Date.now();
    const daemon = lab.daemon('node2')!;
    daemon.kill('SIGKILL');
    const pings = await lab.waitPingAnswered(orphans, VIP, sinceEpoch, 5000);
    await waitExit(daemon, 2000);
    t.log(`failover at --heartbeat-ms 100: first echo reply after ${Math.round(pings.worstMs)} ms (worst of ${orphans.length} sources)`);
    t.deepEqual(pings.unanswered, []);
    t.true(pings.worstMs < 500, `worst ${Math.round(pings.worstMs)} ms`);
    for (const node of ['node1', 'node3']) {
      const nodes = (await lab.status(node)).interfaces[0]!.nodes;
      t.is(nodes.length, 2, `${node} lists ${nodes.length} nodes`);
    }
  });
});

test.serial('lnlbctl resync: every node reloads the sender\'s tracking state, and no client moves', async (t) => {
  await withLab(3, async (lab) => {
    const before = await serving(lab);
    const ctl = await lnlbctl(lab, 'node1', ['resync', 'nlb0', '--json']);
    t.is(ctl.code, 0, ctl.stderr);
    const sent = JSON.parse(ctl.stdout) as { entries: number };
    t.true(sent.entries >= SOURCES, `sent ${sent.entries}`);
    for (const node of ['node2', 'node3']) {
      const daemon = lab.daemon(node)!;
      await lab.lab.waitForLog(daemon, /"event":"resync-loaded"/, 5000);
      await new Promise((resolve) => setTimeout(resolve, 200)); // every shard's line
      const loaded = tail(daemon.logFile, 200)
        .split('\n')
        .filter((l) => l.includes('"event":"resync-loaded"'))
        .reduce((sum, l) => sum + Number(/"entries":(\d+)/.exec(l)?.[1] ?? 0), 0);
      t.is(loaded, sent.entries, `${node} loaded ${loaded} of ${sent.entries}`);
    }
    t.deepEqual(owners(await lab.survey(lab.clientIps)), before);
  });
});

test.serial('two clusters in one daemon: addif prints the new interface, both VIPs are balanced, delif removes only one', async (t) => {
  const VIP2 = '10.0.0.200';
  await withLab(2, async (lab) => {
    for (const node of lab.nodes) lab.startDaemon(node);
    await lab.waitConverged(lab.nodes, 20_000);
    const ctl = (node: string, args: string[]) => lnlbctl(lab, node, args);
    const broken = await ctl('node1', ['addif', VIP2, 'eth0', '--handler', 'icmp=./no-such-handler.js']);
    t.is(broken.code, 1);
    t.regex(broken.stderr, /cannot load handler module \S*no-such-handler\.js/, 'a handler given to addif is checked, its path taken from lnlbctl\'s directory');
    for (const node of lab.nodes) {
      // The second cluster with its own handlers and port rules.
      const added = await ctl(node, ['addif', VIP2, 'eth0', '--handler', 'tcp=tcp', '--rule', '80/tcp=multiple,affinity=none']);
      t.is(added.code, 0, added.stderr);
      t.is(added.stdout.trim(), 'nlb1', 'LNLB prints the new interface: the lowest free nlb%d');
    }
    const nlb1 = (await lab.status('node1')).interfaces.find((i) => i.name === 'nlb1')!;
    t.deepEqual(nlb1.rules, ['default=multiple,affinity=single', '80/tcp=multiple,affinity=none']);
    t.deepEqual(nlb1.handlers.map((h) => `${h.protocol}=${h.name}`), ['0=default', '6=tcp']);
    t.deepEqual((await lab.status('node1')).interfaces.find((i) => i.name === 'nlb0')!.rules, ['default=multiple,affinity=single'], 'the first cluster keeps the daemon\'s');
    const again = await ctl('node1', ['addif', VIP2, 'eth0']);
    t.is(again.code, 1);
    t.regex(again.stderr, /10\.0\.0\.200 is served already by nlb1/);
    const badIp = await ctl('node1', ['addif', '10.0.0.300', 'eth0']);
    t.not(badIp.code, 0);
    t.regex(badIp.stderr, /expected an IPv4 or IPv6 address/);
    // Both interfaces converge on both nodes.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const statuses = await Promise.all(lab.nodes.map((n) => lab.status(n)));
      const ok = statuses.every((s) => s.interfaces.length === 2 && s.interfaces.every((i) => i.converged && i.nodes.length === 2));
      if (ok) break;
      if (Date.now() > deadline) t.fail(`not converged: ${JSON.stringify(statuses)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const node of lab.nodes) {
      await lab.startHttpServer(node);
      await lab.startHttpServer(node, 80, VIP2);
    }
    const serve = async (vip: string): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (const source of lab.clientIps.slice(0, 12)) {
        const r = await lab.curlFrom(source, `http://${vip}/`, { maxTimeS: 3 });
        out.set(source, r.ok ? (JSON.parse(r.body) as { node: string }).node : `unanswered: ${r.error}`);
      }
      return out;
    };
    const first = await serve(VIP);
    const second = await serve(VIP2);
    t.true([...first.values()].every((n) => n.startsWith('node')), JSON.stringify([...first]));
    t.true([...second.values()].every((n) => n.startsWith('node')), JSON.stringify([...second]));
    for (const node of lab.nodes) {
      const removed = await ctl(node, ['delif', 'nlb1']);
      t.is(removed.code, 0, removed.stderr);
      t.not((await lab.lab.exec(node, ['ip', 'link', 'show', 'nlb1'])).code, 0, 'nlb1 is gone');
      t.is((await lab.lab.exec(node, ['sysctl', '-n', 'net.ipv4.conf.eth0.arp_ignore'])).stdout.trim(), '1', 'nlb0 still needs arp_ignore');
    }
    const unknown = await ctl('node1', ['delif', 'nlb7']);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /no cluster interface "nlb7": this daemon serves nlb0/);
    t.deepEqual(await serve(VIP), first, 'the remaining cluster is untouched');
    const gone = await lab.curlFrom(lab.clientIps[0]!, `http://${VIP2}/`, { maxTimeS: 2 });
    t.false(gone.ok, 'nobody serves the removed VIP');
  });
});

test.serial('a flooded datapath never gets a live node declared dead (--heartbeat-ms 100 --dead-after-ms 300)', async (t) => {
  const generator = new URL('../../bench/generator.js', import.meta.url).pathname;
  await withLab(3, async (lab) => {
    const fast = ['--heartbeat-ms', '100', '--dead-after-ms', '300'];
    for (const node of lab.nodes) lab.startDaemon(node, fast);
    await lab.waitConverged(lab.nodes, 20_000);
    const roundsBefore = (await lab.status('node1')).interfaces[0]!.counters.rounds;
    const flood = await lab.lab.exec('client', [process.execPath, generator, '--seconds', '4', '--bytes', '60', '--sources', '4096'], { timeoutMs: 30_000 });
    t.is(flood.code, 0, flood.stderr);
    const { sent } = JSON.parse(flood.stdout) as { sent: number };
    t.log(`flooded ${sent} frames in 4 s at every node`);
    for (const node of lab.nodes) {
      const iface = (await lab.status(node)).interfaces[0]!;
      t.is(iface.nodes.length, 3, `${node}: ${JSON.stringify(iface.nodes)}`);
      t.true(iface.counters.framesSeen > sent / 10, `${node} saw ${iface.counters.framesSeen} frames`);
      t.notRegex(tail(lab.daemon(node)!.logFile, 500), /"event":"node-died"|"event":"reset"/, `${node} declared a death or reset`);
    }
    const rounds = (await lab.status('node1')).interfaces[0]!.counters.rounds - roundsBefore;
    t.true(rounds >= 25, `only ${rounds} rounds completed in 4 s of flood`);
  });
});

test.serial('multicast MAC mode: the cluster MAC is 01:00:5e:7f:a:b (the VIP\'s first octets), clients are spread and stick, TCP works, IGMP joined', async (t) => {
  await withLab(3, async (lab) => {
    for (const node of lab.nodes) lab.startDaemon(node, ['--mac-mode', 'multicast']);
    await lab.waitConverged(lab.nodes, 20_000);
    for (const node of lab.nodes) await lab.startHttpServer(node);
    const status = (await lab.status('node1')).interfaces[0]!;
    t.is(status.clusterMac, '01:00:5e:7f:0a:00');
    const first = owners(await lab.survey(lab.clientIps));
    const second = owners(await lab.survey(lab.clientIps));
    t.true([...first.values()].every((n) => n.startsWith('node')), JSON.stringify([...first]));
    t.deepEqual(second, first, 'each source sticks to its node');
    t.true(new Set(first.values()).size >= 2, 'spread over the nodes');
    const arp = await lab.lab.exec('client', ['ip', 'neigh', 'show', VIP]);
    t.regex(arp.stdout, /lladdr 01:00:5e:7f:0a:00/, 'clients learned the multicast cluster MAC by ARP');
    const groups = await lab.lab.exec('node1', ['ip', 'maddress', 'show', 'dev', 'eth0']);
    t.regex(groups.stdout, /239\.255\.10\.0/, 'the IGMP group is joined on the bound device');
    for (const source of lab.clientIps.slice(0, 4)) {
      const ping = await lab.pingFrom(source, VIP, 2);
      t.is(ping.duplicates, 0);
      t.is(ping.received, 2);
    }
  });
});

test.serial('lnlbctl conntrack lists every client with the node that serves it; --idle-timeout forgets idle clients', async (t) => {
  await withLab(3, async (lab) => {
    const before = await serving(lab, ['--idle-timeout', '3']);
    const macOf = new Map(lab.nodes.map((n) => [lab.lab.host(n).mac.toLowerCase(), n]));
    const listed = await lnlbctl(lab, 'node1', ['conntrack', 'nlb0', '--json']);
    t.is(listed.code, 0, listed.stderr);
    const table = JSON.parse(listed.stdout) as { total: number; entries: { source: string; node: string; idleSeconds: number }[] };
    const bySource = new Map(table.entries.map((e) => [e.source, macOf.get(e.node.toLowerCase())]));
    for (const [source, node] of before) t.is(bySource.get(source), node, `${source}`);
    const human = await lnlbctl(lab, 'node2', ['conntrack', 'nlb0']);
    t.regex(human.stdout, /^HANDLER\s+FLOW\s+NODE\s+NAME\s+ADDRESS\s+EXPIRES IN$/m);
    t.regex(human.stdout, /^default\s+10\.0\.\d+\.\d+\s+\S+\s+node[13]\s+10\.0\.0\.\d+\s+[0-3]s$/m, 'idle timeout 3 s; the owner by name and address');
    t.regex(human.stdout, /^default\s+10\.0\.\d+\.\d+\s+\S+\s+node2\s+10\.0\.0\.\d+\s+[0-3]s\s+\(this node\)$/m, 'this node marked');
    t.regex(human.stdout, new RegExp(`^${SOURCES} tracked$`, 'm'), 'every node records every assignment');
    const bad = await lnlbctl(lab, 'node1', ['conntrack', 'nlb9']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /no cluster interface "nlb9"/);
    await new Promise((resolve) => setTimeout(resolve, 5500)); // idle past --idle-timeout 3 and a sweep
    const laterOut = (await lnlbctl(lab, 'node1', ['conntrack', 'nlb0', '--json'])).stdout;
    const later = JSON.parse(laterOut) as { total: number };
    t.is(later.total, 0, 'idle clients are forgotten');
  });
});
