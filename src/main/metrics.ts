/**
 * Prometheus metrics (`lnlbd --metrics ADDR:PORT`): an HTTP server answering `GET /metrics` in
 * the Prometheus text format, over a registry of its own (never prom-client's global one).
 *
 * Nothing is counted here. Every value already exists in the daemon (the datapath's counter
 * rows and rings in shared memory, the control plane's tallies) and is read when Prometheus
 * scrapes, through each metric's `collect()`: no timer, nothing per frame. One scrape takes one
 * `Daemon.status()` (the same snapshot `lnlbctl status --json` shows), shared by every metric.
 *
 *   scrape → registry.metrics() → every metric's collect() ─┐ (all called in one pass)
 *                                 snapshot() ── status() ◄──┘ one call, shared, then dropped
 *
 * Every metric but the process ones has an `interface` label (the cluster interface, nlb0).
 * docs/metrics.md lists them all.
 */

import { readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { lnlbError } from '../errors.js';
import { AuthVerdict, authVerdictName } from '../net/auth.js';
import type { InterfaceStatusJson } from './admin-protocol.js';

/** Where the figures come from at scrape time (the daemon: `() => daemon.status()`). */
export type StatusSource = () => Promise<readonly InterfaceStatusJson[]> | readonly InterfaceStatusJson[];

export interface MetricsRegistryOptions {
  /** Add lnlb_process_* (CPU, memory, open fds, start time), read at scrape time. Default true. */
  processMetrics?: boolean;
}

export const METRICS_PATH = '/metrics';

type Labels = Record<string, string>;
/** One series of a metric: its labels (besides none) and its value. */
type Sample = readonly [Labels, number];
type Samples = (status: readonly InterfaceStatusJson[]) => Iterable<Sample>;

/** The control channel's rejected reasons that are authentication failures: `auth-<verdict>`. */
const AUTH_FAILURES: readonly string[] = Object.values(AuthVerdict)
  .filter((v): v is AuthVerdict => typeof v === 'number' && v !== AuthVerdict.OK)
  .map((v) => authVerdictName(v));
const AUTH_PREFIX = 'auth-';

/** A status `nodes` entry that is in the view (JOINING ones are not yet). */
const isMember = (status: string): boolean => status !== 'JOINING' && status !== 'DEAD';

function* perInterface(status: readonly InterfaceStatusJson[], value: (s: InterfaceStatusJson) => number | undefined): Iterable<Sample> {
  for (const s of status) {
    const v = value(s);
    if (v !== undefined) yield [{ interface: s.name }, v];
  }
}

function* byKey(status: readonly InterfaceStatusJson[], label: string, map: (s: InterfaceStatusJson) => Record<string, number> | undefined): Iterable<Sample> {
  for (const s of status) {
    for (const [key, value] of Object.entries(map(s) ?? {})) yield [{ interface: s.name, [label]: key }, value];
  }
}

type ActorFigures = NonNullable<InterfaceStatusJson['counters']['actors']>[number];

function* perActor(status: readonly InterfaceStatusJson[], value: (a: ActorFigures) => number): Iterable<Sample> {
  for (const s of status) {
    const actors = s.counters.actors ?? [];
    for (let index = 0; index < actors.length; index++) yield [{ interface: s.name, actor: String(index) }, value(actors[index]!)];
  }
}

/** Drops what cannot be a sample (a missing or non-finite figure); a counter is never negative. */
const usable = (value: number, isCounter: boolean): number | undefined => (Number.isFinite(value) ? (isCounter ? Math.max(0, value) : value) : undefined);

/**
 * A registry whose metrics read `source` when scraped. `source` is called once per scrape,
 * however many metrics there are; a failing source fails the scrape (HTTP 500), not the daemon.
 */
export function buildMetricsRegistry(source: StatusSource, options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  let pendingStatus: Promise<readonly InterfaceStatusJson[]> | undefined;
  // registry.metrics() calls every collect() in one synchronous pass: the first one starts the
  // status request, the others join it, and it is forgotten once it settles (the next scrape
  // asks again).
  const snapshot = (): Promise<readonly InterfaceStatusJson[]> =>
    (pendingStatus ??= Promise.resolve()
      .then(source)
      .finally(() => {
        pendingStatus = undefined;
      }));

  /*
   * Counters are prom-client Counters whose value is set at collect time by reset() + inc(total)
   * from the daemon's own monotonic totals (prom-client has no Counter.set). A Gauge could carry
   * the same number, but then the exposition would say `# TYPE ... gauge` for a value that only
   * grows: a counter type tells Prometheus (and OpenMetrics, and lint tools such as promtool)
   * that rate()/increase() apply and that a drop to zero is a restart. reset() also forgets the
   * series of an interface that was removed, so nothing stale is exported.
   */
  /** Sets a metric from this scrape's status: reset (drops removed interfaces), then each sample. */
  const fill = async (metric: { reset(): void }, samples: Samples, monotonic: boolean, put: (labels: Labels, value: number) => void): Promise<void> => {
    const status = await snapshot();
    metric.reset();
    for (const [labels, value] of samples(status)) {
      const v = usable(value, monotonic);
      if (v !== undefined) put(labels, v);
    }
  };
  const counter = (name: string, help: string, labelNames: readonly string[], samples: Samples): void => {
    new Counter({ name, help, labelNames, registers: [registry], collect() { return fill(this, samples, true, (labels, v) => this.inc(labels, v)); } });
  };
  const gauge = (name: string, help: string, labelNames: readonly string[], samples: Samples): void => {
    new Gauge({ name, help, labelNames, registers: [registry], collect() { return fill(this, samples, false, (labels, v) => this.set(labels, v)); } });
  };

  const IF = ['interface'];
  const ACTOR = ['interface', 'actor'];

  // --- datapath, per interface
  counter('lnlb_frames_seen_total', 'Frames the dispatcher read from the bound device, before any verdict.', IF, (st) => perInterface(st, (s) => s.counters.framesSeen));
  counter('lnlb_ipv6_frames_total', 'Of the frames seen: IPv6 frames for the IPv6 cluster IP.', IF, (st) => perInterface(st, (s) => s.counters.framesIPv6));
  counter('lnlb_frames_accepted_total', 'Frames this node took: written to the cluster interface (TAP) for its own stack.', IF, (st) => perInterface(st, (s) => s.counters.framesAccepted));
  counter('lnlb_frames_dropped_total', 'Frames not taken, by reason (otherNode: another node serves the client; ringFull/holdFull: a queue overflowed; ...).', ['interface', 'reason'], (st) =>
    byKey(st, 'reason', (s) => s.counters.framesDropped),
  );
  counter('lnlb_kernel_drops_total', 'Frames the kernel dropped before the dispatcher read them (the packet socket ring was full).', IF, (st) => perInterface(st, (s) => s.counters.kernelDrops));
  counter('lnlb_kernel_filter_swaps_total', 'Programs attached to the data socket\'s kernel filter (a new set of buckets passes).', IF, (st) => perInterface(st, (s) => s.counters.kernelFilter?.swaps));
  counter('lnlb_kernel_filter_failures_total', 'Kernel filter programs the kernel refused (the plain filter went on: every frame passes).', IF, (st) => perInterface(st, (s) => s.counters.kernelFilter?.failures));
  gauge('lnlb_kernel_filter_pass_buckets', 'Buckets of 1024 the data socket\'s kernel filter passes (1024: every frame to the cluster MAC).', IF, (st) => perInterface(st, (s) => s.counters.kernelFilter?.passBuckets));
  counter('lnlb_weight_announcements_seen_total', 'Heartbeats announcing a weight that the datapath saw among the clients\' frames (--workers 1): it switches to the new weight at that frame, as every node does.', IF, (st) => perInterface(st, (s) => s.counters.weightAnnouncements?.seen));
  counter('lnlb_flows_held_for_announcement_total', 'New flows held after a weight announced in the data stream until the control plane had read it too.', IF, (st) => perInterface(st, (s) => s.counters.weightAnnouncements?.heldFlows));
  counter('lnlb_arp_replies_total', 'ARP replies sent for the cluster IP.', IF, (st) => perInterface(st, (s) => s.counters.arpReplies));
  counter('lnlb_ndp_advertisements_total', 'Neighbour advertisements sent for the IPv6 cluster IP (answers to neighbour solicitations).', IF, (st) => perInterface(st, (s) => s.counters.ndpAdvertisements));
  gauge('lnlb_tracked_entries', 'Flows in the tracking tables now, all actors and handlers together.', IF, (st) => perInterface(st, (s) => s.counters.trackedEntries));
  counter('lnlb_tracking_evictions_total', 'Tracked flows evicted to make room because a table was full (see --table-entries).', IF, (st) => perInterface(st, (s) => s.counters.evictions));

  // --- datapath, per actor thread
  counter('lnlb_actor_frames_total', 'Frames an actor thread decided (its load: the frames the dispatcher queued to it).', ACTOR, (st) => perActor(st, (a) => a.framesIn));
  counter('lnlb_actor_accepted_total', 'Frames an actor thread wrote to the cluster interface.', ACTOR, (st) => perActor(st, (a) => a.accepted));
  gauge('lnlb_actor_tracked_entries', "Flows in an actor's shard of the tracking tables now.", ACTOR, (st) => perActor(st, (a) => a.trackedEntries));
  counter('lnlb_actor_held_total', 'Frames of new flows an actor held while a view change was pending (decided when it is applied).', ACTOR, (st) => perActor(st, (a) => a.held));
  gauge('lnlb_queue_depth_bytes', 'Bytes waiting in the dispatcher-to-actor ring when scraped.', ACTOR, (st) => perActor(st, (a) => a.ringBytesUsed));
  gauge('lnlb_queue_capacity_bytes', 'Size of the dispatcher-to-actor ring in bytes.', ACTOR, (st) => perActor(st, (a) => a.ringBytesCapacity));
  counter('lnlb_queue_overflows_total', 'Frames dropped because a queue was full: queue="ring" the dispatcher-to-actor ring, queue="hold" the hold queue of a pending view change.', [...ACTOR, 'queue'], function* (st) {
    for (const [labels, value] of perActor(st, (a) => a.ringOverflows)) yield [{ ...labels, queue: 'ring' }, value];
    for (const [labels, value] of perActor(st, (a) => a.holdOverflows)) yield [{ ...labels, queue: 'hold' }, value];
  });

  // --- membership and control plane
  gauge('lnlb_converged', '1 when the view is settled and the node takes its share of clients, else 0.', IF, (st) => perInterface(st, (s) => (s.converged ? 1 : 0)));
  gauge('lnlb_interface_failed', '1 when a handler stopped returning and the watchdog took the interface out of the cluster until lnlbd restarts (status: failed), else 0.', IF, (st) =>
    perInterface(st, (s) => (s.state === 'failed' ? 1 : 0)),
  );
  gauge('lnlb_held', '1 when this node may not serve because it hears peers it cannot authenticate (state held), else 0.', IF, (st) => perInterface(st, (s) => (s.heldBy === undefined ? 0 : 1)));
  gauge('lnlb_control_unauthenticated_peers', 'Hosts whose control frames for this cluster failed authentication (another key, or none) in the last --dead-after-ms, by verdict.', ['interface', 'verdict'], function* (st) {
    for (const s of st) {
      for (const verdict of ['BAD_MAC', 'UNSIGNED', 'UNEXPECTED_SIGNATURE']) yield [{ interface: s.name, verdict }, (s.unauthenticatedPeers ?? []).filter((p) => p.verdict === verdict).length];
    }
  });
  gauge('lnlb_cluster_members', 'Nodes in the view (this one included; joining nodes not yet).', IF, (st) => perInterface(st, (s) => s.nodes.filter((n) => isMember(n.status)).length));
  gauge('lnlb_buckets_owned', '--election bucket: buckets of 1024 this node owns in the table the members agree on.', IF, function* (st) {
    for (const s of st) if (s.buckets !== undefined) yield [{ interface: s.name }, s.buckets.owned];
  });
  gauge('lnlb_buckets_agreed', '--election bucket: 1 when every member announces the same bucket table as this node, else 0.', IF, function* (st) {
    for (const s of st) if (s.buckets !== undefined) yield [{ interface: s.name }, s.buckets.agreed ? 1 : 0];
  });
  counter('lnlb_buckets_fallbacks_total', '--election bucket: times the members still disagreed on the bucket table in a settled view and every node took the canonical one.', IF, function* (st) {
    for (const s of st) if (s.buckets !== undefined) yield [{ interface: s.name }, s.buckets.fallbacks];
  });
  counter('lnlb_convergence_rounds_total', 'Convergence rounds completed.', IF, (st) => perInterface(st, (s) => s.counters.rounds));
  counter('lnlb_convergence_resets_total', 'Times this node found itself stalled past --dead-after-ms, forgot its state and rejoined.', IF, (st) => perInterface(st, (s) => s.counters.resets));
  gauge('lnlb_control_stall_max_seconds', "The longest time the control thread's timer fired late (the thread was not scheduled or was blocked); not counted as the members' silence.", IF, (st) => perInterface(st, (s) => (s.counters.stallMaxMs ?? 0) / 1000));
  counter('lnlb_control_stall_seconds_total', "Time the control thread's timers fired late, summed (stalls longer than an eighth of --dead-after-ms).", IF, (st) => perInterface(st, (s) => (s.counters.stallTotalMs ?? 0) / 1000));
  counter('lnlb_node_deaths_total', 'Nodes this node removed from the view, by reason (missed-heartbeats, left, restarted, self-reset).', ['interface', 'reason'], (st) => byKey(st, 'reason', (s) => s.counters.deaths));
  counter('lnlb_node_table_full_total', 'Nodes refused because the node table was full.', IF, (st) => perInterface(st, (s) => s.counters.nodeTableFull));
  counter('lnlb_control_messages_received_total', 'Control messages accepted, by type (HEARTBEAT, JOIN, ...).', ['interface', 'type'], (st) => byKey(st, 'type', (s) => s.counters.control.received));
  counter('lnlb_control_messages_sent_total', 'Control messages sent, by type.', ['interface', 'type'], (st) => byKey(st, 'type', (s) => s.counters.control.sent));
  counter('lnlb_control_messages_rejected_total', 'Control frames refused, by reason (auth-BAD_MAC, BAD_CRC, other-cluster, fragment-..., send-dropped, ...).', ['interface', 'reason'], (st) =>
    byKey(st, 'reason', (s) => s.counters.control.rejected),
  );
  gauge('lnlb_control_insecure', '1 when the interface runs without a key on the operator\'s word (--insecure-no-auth): any host on the LAN can take the cluster over; else 0.', IF, (st) => perInterface(st, (s) => (s.insecure ? 1 : 0)));
  counter('lnlb_state_transfers_total', 'Tracking-state transfers to and from newcomers, by what (transfersStarted, transfersAcknowledged, transfersAbandoned, transfersRefusedFull, nacksReceived, fragmentsResent; transfersReceived, requestsSent, fragmentsAsked, messagesAskedWhole, sendersDied, sendersUnresponsive, noStateNeeded).', ['interface', 'what'], (st) =>
    byKey(st, 'what', (s) => s.counters.control.stateTransfer),
  );
  counter('lnlb_control_overflows_total', 'Bounded control-plane state that overflowed, by what (unauthenticatedPeersEvicted, unauthenticatedPeersNotTracked, logLinesSuppressed, stateSendsSkipped, socketDrops).', ['interface', 'what'], (st) =>
    byKey(st, 'what', (s) => s.counters.control.overflow),
  );
  counter('lnlb_control_auth_failures_total', 'Control messages that failed authentication, by verdict (UNSIGNED, UNEXPECTED_SIGNATURE, BAD_MAC, REPLAYED, STALE, FUTURE, MALFORMED); also counted in lnlb_control_messages_rejected_total as auth-<verdict>.', ['interface', 'reason'], function* (st) {
    for (const s of st) {
      const rejected = s.counters.control.rejected;
      for (const verdict of AUTH_FAILURES) yield [{ interface: s.name, reason: verdict }, rejected[AUTH_PREFIX + verdict] ?? 0];
    }
  });

  // --- health checks (--health-check), per interface and check
  const CHECK = ['interface', 'check'];
  const perCheck = function* (st: readonly InterfaceStatusJson[], value: (c: NonNullable<InterfaceStatusJson['health']>['checks'][number]) => number): Iterable<Sample> {
    for (const s of st) for (const c of s.health?.checks ?? []) yield [{ interface: s.name, check: c.check }, value(c)];
  };
  gauge('lnlb_health_healthy', 'Health checks (--health-check): 1 when every check passes, 0 when one fails (the node left the cluster, or serves as the last member), absent without checks.', IF, (st) =>
    perInterface(st, (s) => (s.health === undefined ? undefined : s.health.state === 'unhealthy' ? 0 : 1)),
  );
  gauge('lnlb_health_serving', 'With health checks: 1 when the node takes part in the cluster as far as its health goes (healthy, or unhealthy but the last member left), 0 when it left because unhealthy.', IF, (st) =>
    perInterface(st, (s) => (s.health === undefined ? undefined : s.health.serving === 'out' ? 0 : 1)),
  );
  gauge('lnlb_health_check_up', 'One health check: 1 healthy, 0 unhealthy (after --health-fall failures in a row), absent before its first result.', CHECK, (st) =>
    perCheck(st, (c) => (c.state === 'healthy' ? 1 : c.state === 'unhealthy' ? 0 : Number.NaN)), // NaN: no sample (usable)
  );
  counter('lnlb_health_checks_total', 'Health check runs.', CHECK, (st) => perCheck(st, (c) => c.run));
  counter('lnlb_health_check_failures_total', 'Health check runs that failed (connection refused, a bad status, a non-zero exit, the timeout).', CHECK, (st) => perCheck(st, (c) => c.failed));
  counter('lnlb_health_check_transitions_total', 'Times a health check changed state (unknown, healthy, unhealthy).', CHECK, (st) => perCheck(st, (c) => c.transitions));
  counter('lnlb_health_transitions_total', "Times the node's health changed state (unknown, healthy, unhealthy).", IF, (st) => perInterface(st, (s) => s.health?.transitions));

  if (options.processMetrics ?? true) addProcessMetrics(registry);
  return registry;
}

/**
 * A few process figures, read at scrape time. Not prom-client's collectDefaultMetrics: that one
 * also keeps an event-loop delay histogram sampling every 10 ms and a GC observer running
 * between scrapes, which is more than a datapath daemon should pay for.
 */
function addProcessMetrics(registry: Registry): void {
  const registers = [registry];
  new Counter({
    name: 'lnlb_process_cpu_seconds_total',
    help: 'CPU time of the whole process (every thread), user and system, in seconds.',
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
  new Gauge({
    name: 'lnlb_process_resident_memory_bytes',
    help: 'Resident set size in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'lnlb_process_heap_used_bytes',
    help: "The main thread's V8 heap in use, in bytes.",
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Gauge({
    name: 'lnlb_process_open_fds',
    help: 'Open file descriptors.',
    registers,
    collect() {
      try {
        this.set(readdirSync('/proc/self/fd').length);
      } catch {
        this.reset(); // no /proc: no sample
      }
    },
  });
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  new Gauge({
    name: 'lnlb_process_start_time_seconds',
    help: 'Start time of the process since the Unix epoch, in seconds.',
    registers,
    collect() {
      this.set(startSeconds);
    },
  });
}

/** `host:port` as written in a URL (`[::]:9750` for IPv6). */
export function formatListenAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The HTTP side: `GET /metrics` (HEAD too), 404 for any other path, 405 for another method. */
export class MetricsServer {
  readonly #server: Server;
  readonly #registry: Registry;
  /** Where it listens, `10.0.0.1:9750` (the real port when 0 was asked for). */
  readonly address: string;

  private constructor(server: Server, registry: Registry, address: string) {
    this.#server = server;
    this.#registry = registry;
    this.address = address;
  }

  /** Listens on `at`; an address in use (or not of this host) is LNLB_ERR_METRICS_LISTEN naming --metrics. */
  static listen(at: { host: string; port: number }, registry: Registry, onError?: (err: Error) => void): Promise<MetricsServer> {
    const asked = formatListenAddress(at.host, at.port);
    return new Promise((resolve, reject) => {
      let metrics: MetricsServer | undefined;
      const server = createServer((req, res) => {
        if (metrics === undefined) res.writeHead(503).end();
        else metrics.#handle(req, res);
      });
      const failed = (err: NodeJS.ErrnoException): void => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'the port is in use (another lnlbd, or another exporter?)'
            : err.code === 'EADDRNOTAVAIL'
              ? 'the address is not one of this host\'s'
              : err.code === 'EACCES'
                ? 'permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)'
                : err.message;
        reject(lnlbError('LNLB_ERR_METRICS_LISTEN', `--metrics ${asked}: cannot listen: ${why}${err.code === undefined ? '' : ` (${err.code})`}`, { cause: err, ...(err.code === undefined ? {} : { errno: err.code }) }));
      };
      server.once('error', failed);
      server.listen({ host: at.host, port: at.port, exclusive: true }, () => {
        server.off('error', failed);
        server.on('error', (err) => onError?.(err));
        const bound = server.address();
        const port = typeof bound === 'object' && bound !== null ? bound.port : at.port;
        metrics = new MetricsServer(server, registry, formatListenAddress(at.host, port));
        resolve(metrics);
      });
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== METRICS_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`not found: lnlbd serves ${METRICS_PATH} only\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    this.#registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': this.#registry.contentType, 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    )
      // The scraper went away between the two (headers cannot be written): nothing to answer.
      .catch(() => res.destroy());
  }

  /** Stops listening and closes every connection (a scraper's kept-alive one included). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
