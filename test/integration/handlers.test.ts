// Protocol handlers and port rules with real daemons in namespaces and real clients, as a user
// checks them: a TCP connection tracked by --handler tcp=tcp outlives a join and a death; UDP
// flows tracked by --handler udp=udp stick; single / multiple / disabled port rules; differing
// rules reported; a broken --handler module refused at start (a method that never returns, a
// world-writable module too); the example ICMP handler at work; a handler that stops returning
// on one node's actor makes that node leave, and the other serves every client.
// Each test builds its own lab and removes it, failing or not.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ClusterLab, LAB_DAEMON_TIMING, VIP, type ClusterLabOptions } from '../../lab/cluster.js';
import { hasExited, sweepStale, tail, waitExit, type LabProcess } from '../../lab/netns.js';
import { watchdogLimitMs } from '../../src/workers/watchdog.js';
import type { ConntrackJson } from '../../src/main/admin-protocol.js';
import { udpFlows } from './fixtures/udp-flows.js';

// This file runs as dist/test/integration/handlers.test.js; the repository root is three levels up.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LNLBD = join(REPO_ROOT, 'bin', 'lnlbd');
const UDP_ECHO_SERVER = fileURLToPath(new URL('../../lab/udp-echo-server.js', import.meta.url));
const UDP_PORT = 7007;

/** Processes a test starts itself (beside the lab's daemons and HTTP servers), for the log tails. */
const extraProcesses = new WeakMap<ClusterLab, LabProcess[]>();

test.before(async () => {
  await sweepStale();
});

async function withLab(options: ClusterLabOptions, body: (lab: ClusterLab) => Promise<void>): Promise<void> {
  const lab = await ClusterLab.create(options);
  extraProcesses.set(lab, []);
  try {
    await body(lab);
  } catch (error) {
    console.error(lab.logTails());
    for (const p of extraProcesses.get(lab) ?? []) console.error(`--- ${p.host}: ${p.logFile}\n${tail(p.logFile, 20)}`);
    throw error;
  } finally {
    await lab.cleanup();
  }
}

function spawnTracked(lab: ClusterLab, host: string, argv: string[], logName: string): LabProcess {
  const child = lab.lab.spawn(host, argv, { logName, cwd: REPO_ROOT });
  extraProcesses.get(lab)?.push(child);
  return child;
}

/** lnlbctl in a node's namespace, against that node's daemon. */
function lnlbctl(lab: ClusterLab, node: string, args: string[]) {
  return lab.lab.exec(node, [process.execPath, 'bin/lnlbctl', '--run-dir', lab.runDir(node), ...args], { timeoutMs: 10_000, cwd: REPO_ROOT });
}

async function conntrack(lab: ClusterLab, node: string): Promise<ConntrackJson> {
  const result = await lnlbctl(lab, node, ['conntrack', 'nlb0', '--json']);
  if (result.code !== 0) throw new Error(`lnlbctl conntrack on ${node}: exit ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as ConntrackJson;
}

/** Node name by the MAC the daemons know it by (its eth0). */
function nodesByMac(lab: ClusterLab): Map<string, string> {
  return new Map(lab.nodes.map((n) => [lab.lab.host(n).mac.toLowerCase(), n]));
}

/** One curl to the VIP from `source`: the node that answered, or the error. */
async function servedOn(lab: ClusterLab, source: string, port: number, options: { maxTimeS?: number; connectTimeoutS?: number } = {}): Promise<string> {
  const result = await lab.curlFrom(source, `http://${VIP}:${port}/`, { maxTimeS: options.maxTimeS ?? 3, connectTimeoutS: options.connectTimeoutS ?? 2 });
  if (!result.ok) return `unanswered (${result.error})`;
  try {
    return String((JSON.parse(result.body) as { node: unknown }).node);
  } catch {
    return `not JSON: ${result.body}`;
  }
}

function histogram(values: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

test.serial('--handler tcp=tcp: one long TCP connection flows on while a node joins and another is killed (node2 with two actor threads, --workers 2)', async (t) => {
  await withLab({ nodes: 3, clientAddresses: 1 }, async (lab) => {
    const args = ['--handler', 'tcp=tcp'];
    lab.startDaemon('node1', args);
    lab.startDaemon('node2', [...args, '--workers', '2']);
    await lab.waitConverged(['node1', 'node2'], 20_000);
    await Promise.all(['node1', 'node2'].map((node) => lab.startHttpServer(node)));

    // 200 lines, one every 50 ms: a 10 s connection; each line is "<n> <node>".
    const LINES = 200;
    const startedAt = performance.now();
    const source = lab.clientIps[0]!;
    const curl = spawnTracked(lab, 'client', ['curl', '--silent', '--show-error', '--no-buffer', '--interface', source, '--max-time', '30', `http://${VIP}/stream?lines=${LINES}&everyMs=50`], 'stream');
    const first = await lab.lab.waitForLog(curl, /^1 node\d+$/, 5000);
    const owner = first.split(' ')[1]!;
    const other = owner === 'node1' ? 'node2' : 'node1';
    t.log(`the stream is served by ${owner}`);

    await sleep(Math.max(0, 1000 - (performance.now() - startedAt)));
    lab.startDaemon('node3', args);
    await lab.waitConverged(lab.nodes, 20_000);
    await lab.startHttpServer('node3');
    t.log(`node3 joined and converged ${Math.round(performance.now() - startedAt)} ms into the stream`);

    await lab.killDaemon(other);
    const survivors = [owner, 'node3'];
    await lab.waitConverged(survivors, 10_000);
    const deathSeenMs = performance.now() - startedAt;
    t.log(`${other} killed (-9); the survivors agree on it ${Math.round(deathSeenMs)} ms into the stream`);
    t.false(hasExited(curl), 'the stream is still running after the join and the death (else this test proved nothing)');

    t.true(await waitExit(curl, 25_000), 'curl ends');
    const output = tail(curl.logFile, LINES + 10);
    t.is(curl.exitCode, 0, `curl exit ${curl.exitCode} (a reset or a cut stream): ${output.split('\n').slice(-3).join(' | ')}`);
    const lines = output.split('\n');
    const numbers = lines.map((line) => Number(/^(\d+) node\d+$/.exec(line)?.[1] ?? NaN));
    t.deepEqual(numbers, Array.from({ length: LINES }, (_, i) => i + 1), 'every line, in order, no gap');
    t.deepEqual(new Set(lines.map((line) => line.split(' ')[1])), new Set([owner]), 'every line from one node');
  });
});

const DEFAULT_HANDLER_URL = pathToFileURL(fileURLToPath(new URL('../../src/handlers/default.js', import.meta.url))).href;

/**
 * The source of a handler module for `protocol`: the default handler's tracking (source IP and
 * port rule) under `name`, whose isRelated never returns for every frame (`always`), for a UDP
 * datagram to port 9 (`port9`: affinityKey marks it with frame flag 1, so the self-test's
 * frame to port 80 passes), or never.
 */
function handlerModule(options: { name: string; protocol: number; loopOn: 'always' | 'port9' | 'never' }): string {
  return `import { sourceIpHandler, TableTracker } from ${JSON.stringify(DEFAULT_HANDLER_URL)};
const LOOP_ON = ${JSON.stringify(options.loopOn)};
class Tracker extends TableTracker {
  isRelated(keyLo, keyHi, flags, now) {
    if (LOOP_ON === 'always' || (LOOP_ON === 'port9' && flags === 1)) for (;;) {}
    return super.isRelated(keyLo, keyHi, flags, now);
  }
}
export default {
  ...sourceIpHandler,
  name: ${JSON.stringify(options.name)},
  protocol: ${options.protocol},
  affinityKey(frame, out) {
    sourceIpHandler.affinityKey(frame, out);
    const b = frame.bytes;
    out[2] = frame.firstFragment && frame.protocol === 17 && ((b[frame.l4 + 2] << 8) | b[frame.l4 + 3]) === 9 ? 1 : 0;
  },
  createTracker(options) {
    return new Tracker(options);
  },
};
`;
}

test.serial('--handler udp=udp: every UDP flow is answered by one node throughout, flows are spread, conntrack lists them (node3 with three actor threads, --workers 3)', async (t) => {
  const FLOWS = 8;
  const COUNT = 20;
  await withLab({ nodes: 3, clientAddresses: FLOWS }, async (lab) => {
    for (const node of lab.nodes) lab.startDaemon(node, ['--handler', 'udp=udp', ...(node === 'node3' ? ['--workers', '3'] : [])]);
    await lab.waitConverged(lab.nodes, 20_000);
    await Promise.all(
      lab.nodes.map(async (node) => {
        const server = spawnTracked(lab, node, [process.execPath, UDP_ECHO_SERVER, '--name', node, '--host', VIP, '--port', String(UDP_PORT)], 'udp-echo');
        await lab.lab.waitForLog(server, /^listening on /, 20_000);
      }),
    );
    const flows = lab.clientIps.map((ip, i) => `${ip}:${41000 + i}`);
    const replies = await udpFlows(lab, { port: UDP_PORT, count: COUNT, everyMs: 100, flows, timeoutMs: 20_000 });

    const ownerOf = new Map<string, string>();
    for (const flow of flows) {
      const got = replies.get(flow) ?? [];
      const nodes = new Set(got.map((r) => r.node));
      t.is(nodes.size, 1, `${flow} answered by ${[...nodes].join(', ') || 'nobody'}`);
      const seqs = got.map((r) => r.seq).sort((a, b) => a - b);
      t.deepEqual(seqs, Array.from({ length: COUNT }, (_, i) => i + 1), `${flow}: every datagram answered exactly once`);
      ownerOf.set(flow, [...nodes][0] ?? 'nobody');
    }
    t.log('flows per node:', histogram(ownerOf.values()));
    t.true(new Set(ownerOf.values()).size > 1, 'flows are spread over more than one node');

    const table = await conntrack(lab, 'node1');
    const byMac = nodesByMac(lab);
    for (const flow of flows) {
      const [ip, sport] = flow.split(':');
      const entry = table.entries.find((e) => e.handler === 'udp' && e.source === ip && e.key !== undefined && e.key >>> 16 === Number(sport) && (e.key & 0xffff) === UDP_PORT);
      t.truthy(entry, `conntrack on node1 lists ${flow}→${UDP_PORT} under handler udp: ${JSON.stringify(table.entries.filter((e) => e.source === ip))}`);
      if (entry !== undefined) t.is(byMac.get(entry.node.toLowerCase()), ownerOf.get(flow), `${flow}: conntrack's owner is the node that answered`);
    }
  });
});

test.serial('port rules: 22/tcp=single goes to the lowest priority and fails over to the next, 80 is balanced, 9999/tcp=disabled is dropped', async (t) => {
  const SOURCES = 12;
  await withLab({ nodes: 3, clientAddresses: SOURCES }, async (lab) => {
    const priority: Record<string, string> = { node1: '22/tcp=single', node2: '22/tcp=single,priority=1', node3: '22/tcp=single,priority=2' };
    for (const node of lab.nodes) lab.startDaemon(node, ['--rule', priority[node]!, '--rule', '9999/tcp=disabled']);
    await lab.waitConverged(lab.nodes, 20_000);
    await Promise.all(lab.nodes.flatMap((node) => [22, 80, 9999].map((port) => lab.startHttpServer(node, port))));

    // The rules as status shows them; priorities are per node and left out of the digest.
    const statuses = await Promise.all(lab.nodes.map((node) => lab.status(node)));
    for (const [i, status] of statuses.entries()) {
      const iface = status.interfaces[0]!;
      const node = lab.nodes[i]!;
      t.deepEqual(iface.rules, ['default=multiple,affinity=single', priority[node]!, '9999/tcp=disabled'], `${node}'s rules`);
      t.deepEqual(iface.rulesMismatch, [], `${node} sees no rules mismatch`);
      t.is(iface.rulesDigest, statuses[0]!.interfaces[0]!.rulesDigest, 'one digest for all nodes');
    }
    const human = await lab.statusText('node2');
    t.regex(human, /port rules \(digest [0-9a-f]+\): .*22\/tcp=single,priority=1.*9999\/tcp=disabled/);

    const sources = lab.clientIps;
    const port22 = await Promise.all(sources.map((source) => servedOn(lab, source, 22)));
    t.deepEqual(histogram(port22), { node2: SOURCES }, 'every client of port 22 is served by node2 (priority 1)');
    const port80 = await Promise.all(sources.map((source) => servedOn(lab, source, 80)));
    t.log('port 80 clients per node:', histogram(port80));
    t.true(port80.every((n) => n.startsWith('node')), JSON.stringify(port80));
    t.true(new Set(port80).size > 1, 'port 80 is balanced over more than one node');

    const before = await Promise.all(lab.nodes.map((node) => lab.status(node)));
    const port9999 = await Promise.all(sources.slice(0, 4).map((source) => lab.curlFrom(source, `http://${VIP}:9999/`, { maxTimeS: 2, connectTimeoutS: 1 })));
    for (const result of port9999) t.false(result.ok, `port 9999 answered: ${JSON.stringify(result)}`);
    const after = await Promise.all(lab.nodes.map((node) => lab.status(node)));
    for (const [i, node] of lab.nodes.entries()) {
      const dropsBefore = before[i]!.interfaces[0]!.counters.framesDropped;
      const drops = after[i]!.interfaces[0]!.counters.framesDropped;
      t.true((drops['disabledRule'] ?? 0) > (dropsBefore['disabledRule'] ?? 0), `${node}: framesDropped.disabledRule counts the SYNs to port 9999: ${JSON.stringify(drops)}`);
      t.is(after[i]!.interfaces[0]!.counters.framesAccepted - before[i]!.interfaces[0]!.counters.framesAccepted, 0, `${node} accepted none of the frames to port 9999`);
    }

    const killedAt = performance.now();
    await lab.killDaemon('node2');
    const moved = await Promise.all(
      sources.map(async (source) => {
        let last = '';
        while (performance.now() - killedAt < 8000) {
          last = await servedOn(lab, source, 22, { maxTimeS: 1, connectTimeoutS: 0.3 });
          if (last.startsWith('node')) return { node: last, afterMs: performance.now() - killedAt };
          await sleep(50);
        }
        return { node: last, afterMs: Infinity };
      }),
    );
    const worst = Math.max(...moved.map((m) => m.afterMs));
    t.log(`port 22 served again ${Math.round(worst)} ms after kill -9 of node2`);
    t.deepEqual(histogram(moved.map((m) => m.node)), { node3: SOURCES }, 'node3 (priority 2) takes over port 22, not node1 (no priority)');
    t.true(worst < 5000, `port 22 unanswered for ${Math.round(worst)} ms`);
  });
});

test.serial('different port rules are reported: rulesMismatch, nodes[].rulesMatch and a rules-mismatch log line', async (t) => {
  await withLab({ nodes: 2, clientAddresses: 1 }, async (lab) => {
    const node1 = lab.startDaemon('node1', ['--rule', '80/tcp=multiple,affinity=none']);
    lab.startDaemon('node2');
    await lab.waitConverged(lab.nodes, 20_000);
    const mac1 = lab.lab.host('node1').mac.toLowerCase();
    const mac2 = lab.lab.host('node2').mac.toLowerCase();
    let iface = (await lab.status('node1')).interfaces[0]!;
    const deadline = performance.now() + 5000;
    while (!iface.rulesMismatch.map((m) => m.toLowerCase()).includes(mac2) && performance.now() < deadline) {
      await sleep(100);
      iface = (await lab.status('node1')).interfaces[0]!;
    }
    t.deepEqual(iface.rulesMismatch.map((m) => m.toLowerCase()), [mac2], 'node1 reports node2');
    const entry = iface.nodes.find((n) => n.mac.toLowerCase() === mac2);
    t.is(entry?.rulesMatch, false, JSON.stringify(iface.nodes));
    t.not(entry?.rulesDigest, iface.rulesDigest);
    t.regex(await lab.statusText('node1'), /WARNING: .* run other port rules/);
    const other = (await lab.status('node2')).interfaces[0]!;
    t.deepEqual(other.rulesMismatch.map((m) => m.toLowerCase()), [mac1], 'and node2 reports node1');
    t.regex(tail(node1.logFile, 500), /"event":"rules-mismatch"/);
  });
});

test.serial('a broken --handler module is refused: non-zero exit, one stderr line naming the module and the problem, no TAP left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-handlers-'));
  try {
    const wrongVersion = join(dir, 'wrong-version.mjs');
    writeFileSync(
      wrongVersion,
      `export default {
  name: 'wrong-version', apiVersion: 99, protocol: 1,
  affinityKey(frame, out) { out[0] = frame.src; out[1] = 0; },
  trackerBytes() { return 8; },
  createTracker() { throw new Error('never called'); },
};
`,
    );
    const missing = join(dir, 'does-not-exist.js');
    const neverReturns = join(dir, 'never-returns.mjs');
    writeFileSync(neverReturns, handlerModule({ name: 'never-returns', protocol: 1, loopOn: 'always' }));
    const worldWritable = join(dir, 'world-writable.mjs');
    writeFileSync(worldWritable, handlerModule({ name: 'world-writable', protocol: 1, loopOn: 'never' }));
    chmodSync(worldWritable, 0o666);
    const cases = [
      // LNLB_ERR_HANDLER_INVALID, _LOAD and _UNSAFE: lnlbd prints the message, not the code.
      { module: wrongVersion, problem: /is not a valid lnlb protocol handler: it implements handler API version 99, this lnlb speaks version \d+/ },
      { module: missing, problem: /cannot load handler module .*: no such file/ },
      { module: neverReturns, problem: /is not a valid lnlb protocol handler: it did not return from isRelated within 2000 ms during its self-test/ },
      { module: worldWritable, problem: /refusing handler module .*: the file .* is writable by group and others \(mode 0666\).*; fix: chmod go-w / },
    ];
    await withLab({ nodes: 1, clientAddresses: 1 }, async (lab) => {
      for (const c of cases) {
        const argv = [process.execPath, LNLBD, '--bind', 'eth0', '--vip', VIP, '--run-dir', lab.runDir('node1'), ...LAB_DAEMON_TIMING, '--key-file', lab.keyFile, '--handler', `icmp=${c.module}`];
        const startedAt = performance.now();
        const run = await lab.lab.exec('node1', argv, { timeoutMs: 20_000, cwd: REPO_ROOT });
        t.log(`${c.module}: refused in ${Math.round(performance.now() - startedAt)} ms`);
        t.false(run.timedOut, `lnlbd with ${c.module} did not exit`);
        t.not(run.code, 0, `exit code for ${c.module}`);
        const lines = run.stderr.trimEnd().split('\n');
        t.is(lines.length, 1, `one stderr line: ${run.stderr}`);
        t.true(lines[0]!.includes(c.module), `names ${c.module}: ${lines[0]}`);
        t.regex(lines[0]!, c.problem);
        const links = await lab.lab.exec('node1', ['ip', '-o', 'link', 'show']);
        t.notRegex(links.stdout, /\bnlb\d+/, `no TAP left behind: ${links.stdout}`);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('the example icmp-echo handler: concurrent pings from one source are each answered exactly once, conntrack lists them', async (t) => {
  const SESSIONS = 6;
  const COUNT = 10;
  await withLab({ nodes: 3, clientAddresses: 1 }, async (lab) => {
    for (const node of lab.nodes) lab.startDaemon(node, ['--handler', 'icmp=./dist/examples/handlers/icmp-echo.js', '--rule', 'default=multiple,affinity=none']);
    await lab.waitConverged(lab.nodes, 20_000);
    const source = lab.clientIps[0]!;
    const pings = await Promise.all(Array.from({ length: SESSIONS }, () => lab.pingFrom(source, VIP, COUNT)));
    for (const [i, ping] of pings.entries()) {
      t.is(ping.transmitted, COUNT, `ping ${i}: ${ping.output}`);
      t.is(ping.received, COUNT, `ping ${i}: no loss: ${ping.output}`);
      t.is(ping.duplicates, 0, `ping ${i}: no duplicate: ${ping.output}`);
    }
    const table = await conntrack(lab, 'node1');
    const sessions = table.entries.filter((e) => e.handler === 'icmp-echo' && e.source === source);
    t.true(sessions.length >= SESSIONS, `conntrack lists ${sessions.length} icmp-echo sessions of ${source}: ${JSON.stringify(table.entries)}`);
    const byMac = nodesByMac(lab);
    t.true(sessions.every((e) => byMac.has(e.node.toLowerCase())), JSON.stringify(sessions));
    t.log('ping sessions per node:', histogram(sessions.map((e) => byMac.get(e.node.toLowerCase()) ?? e.node)));
    t.regex(sessions[0]?.flow ?? '', /echo id \d+/);
    const status = (await lab.status('node1')).interfaces[0]!;
    t.true(status.handlers.some((h) => h.protocol === 1 && h.name === 'icmp-echo'), JSON.stringify(status.handlers));
  });
});

test.serial('a handler that stops returning in one node\u2019s actor: that node leaves within the watchdog limit, names the handler, and the other node serves every client', async (t) => {
  const SOURCES = 16;
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-stuck-'));
  try {
    const keyFile = join(dir, 'cluster.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    // The same handler on both nodes, but only node1's copy loops on the trigger: every node's
    // actors see every frame (each records every assignment), so one module for both would
    // hang both nodes.
    const hanging = join(dir, 'port9-loop.mjs');
    writeFileSync(hanging, handlerModule({ name: 'port9-loop', protocol: 17, loopOn: 'port9' }));
    const benign = join(dir, 'port9-loop-benign.mjs');
    writeFileSync(benign, handlerModule({ name: 'port9-loop', protocol: 17, loopOn: 'never' }));
    const limitMs = watchdogLimitMs(Number(LAB_DAEMON_TIMING[3]));

    await withLab({ nodes: 2, clientAddresses: SOURCES }, async (lab) => {
      const node1 = lab.startDaemon('node1', ['--key-file', keyFile, '--handler', `udp=${hanging}`]);
      lab.startDaemon('node2', ['--key-file', keyFile, '--handler', `udp=${benign}`]);
      await lab.waitConverged(lab.nodes, 20_000);
      await Promise.all(lab.nodes.map((node) => lab.startHttpServer(node)));

      const before = await lab.survey(lab.clientIps);
      const servedBefore = [...before.values()].map((s) => ('node' in s ? s.node : `unanswered (${s.error})`));
      t.log('before the trigger, clients per node:', histogram(servedBefore));
      t.true(servedBefore.every((n) => n === 'node1' || n === 'node2'), JSON.stringify(servedBefore));
      t.true(servedBefore.includes('node1') && servedBefore.includes('node2'), 'traffic flows to both nodes');

      // The trigger: one UDP datagram to the VIP's port 9.
      const sentAt = performance.now();
      const send = `const s = require('node:dgram').createSocket('udp4'); s.bind(0, ${JSON.stringify(lab.clientIps[0])}, () => s.send('stuck?', 9, ${JSON.stringify(VIP)}, () => { console.log(Date.now()); s.close(); }));`;
      const sent = await lab.lab.exec('client', [process.execPath, '-e', send], { timeoutMs: 10_000 });
      t.is(sent.code, 0, sent.stderr);
      const sentEpochMs = Number(sent.stdout.trim());

      let failed: string | undefined;
      let failedAfterMs = Infinity;
      while (performance.now() - sentAt < limitMs + 8000) {
        const iface = (await lab.status('node1')).interfaces[0]!;
        if (iface.state === 'failed') {
          failedAfterMs = performance.now() - sentAt;
          failed = iface.failed;
          break;
        }
        await sleep(100);
      }
      t.log(`node1 failed ${Math.round(failedAfterMs)} ms after the trigger (watchdog limit ${limitMs} ms): ${failed}`);
      t.regex(failed ?? '', /^handler port9-loop stuck in actor \d$/, 'status names the handler and the actor');
      t.true(failedAfterMs < limitMs + 4000, `status said failed ${Math.round(failedAfterMs)} ms after the trigger (lnlbctl runs take a few hundred ms each)`);
      t.regex(await lab.statusText('node1'), /nlb0: .*, failed: handler port9-loop stuck in actor \d,/);

      // node1 sent LEAVE: node2 alone, at once (not after --dead-after-ms of silence: node1's heartbeats go on).
      await lab.waitConverged(['node2'], 5000);
      const after = await lab.survey(lab.clientIps);
      const servedAfter = [...after.values()].map((s) => ('node' in s ? s.node : `unanswered (${s.error})`));
      t.deepEqual(histogram(servedAfter), { node2: SOURCES }, 'every client is answered by node2');

      const log = tail(node1.logFile, 500);
      const line = log.split('\n').find((l) => l.includes('"event":"handler-stuck"')) ?? '';
      t.regex(line, /"handler":"port9-loop"/, `the log names the handler: ${line}`);
      t.regex(line, /"method":"isRelated"/);
      t.regex(line, /left the cluster \(LEAVE sent/);
      // The watchdog's verdict by the log's clock: the limit after the datagram, plus at most a look (500 ms) and a margin.
      const detectedMs = Date.parse(String((JSON.parse(line) as { time?: unknown }).time)) - sentEpochMs;
      t.log(`the log line came ${detectedMs} ms after the datagram was sent`);
      t.true(detectedMs >= limitMs - 300 && detectedMs <= limitMs + 1000, `detected ${detectedMs} ms after the trigger`);
      t.false(hasExited(node1), 'the daemon stays up, out of the cluster');

      const start = await lab.ctl('node1', ['start', 'nlb0']);
      t.not(start.code, 0, 'lnlbctl start is refused while failed');
      t.regex(start.stderr, /nlb0 failed: handler port9-loop stuck in actor \d; .*restart lnlbd/);

      // A stop still cleans up: the stuck thread is already gone, nothing waits for it.
      const stopAt = performance.now();
      await lab.killDaemon('node1', 'SIGTERM');
      t.log(`node1 stopped ${Math.round(performance.now() - stopAt)} ms after SIGTERM`);
      t.is(node1.exitCode, 0, tail(node1.logFile, 5));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
