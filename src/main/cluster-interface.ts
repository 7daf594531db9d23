/**
 * One cluster on this host: the TAP carrying the VIP, the sysctls that let replies leave by
 * the normal route, the data socket and datapath threads, and the control-plane thread
 * (membership, rounds, state transfer). This class sets them up, relays between them, logs,
 * answers the admin socket, and tears everything down.
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { lnlbError, reviveError, serializeError, type LnlbError } from '../errors.js';
import { loadKeyFile } from '../net/auth.js';
import { dataFilter } from '../net/bpf.js';
import { createSocket, type Socket } from 'node:dgram';
import { hostname, networkInterfaces } from 'node:os';
import { compileRules, describeRule, type RuleSet } from '../cluster/port-rules.js';
import { DRAINING_WEIGHT } from '../cluster/election.js';
import { deriveElectionKey } from '../cluster/hash.js';
import type { HandlerSpec } from '../handlers/loader.js';
import { encodeTrackerState, SNAPSHOT_WORDS, visitEntries } from '../handlers/tracker-state.js';
import { clusterMacMulticast, clusterMacUnicast, formatMac, parseMac } from '../net/ethernet.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { defaultNodeName } from '../net/cluster-message.js';
import * as port from '../port/native.js';
import { Datapath, type StuckReport } from '../workers/datapath.js';
import { watchdogLimitMs } from '../workers/watchdog.js';
import type { ControlData, ControlEvent, ControlStatus, HandlerSetup, MainToControl } from '../workers/messages.js';
import type { ConntrackJson, DrainResult, InterfaceState, InterfaceStatusJson } from './admin-protocol.js';
import type { Logger } from './logger.js';
import { checkClusterAuth, DAEMON_AUTH_NAMES, type InterfaceOptions, type RxRing } from './options.js';
import { DEFAULT_DRAIN_IDLE_SECONDS, type DrainOptions } from './drain.js';
import { SysctlGuard, type SysctlChange } from './sysctl.js';
import { ipv4Sysctl } from './sysctl-keys.js';
import { IDLE_WEIGHT, WeightSource } from './weight-source.js';
import { memberState } from './node-state.js';
import { createHealthMonitor, presenceView, type HealthEvent, type HealthMonitor } from './health-monitor.js';
import { workerExecArgv } from '../workers/exec-argv.js';

/**
 * A measured weight (loadavg, freemem) is announced only when it moved by this fraction: every
 * new weight makes a round change the view, and such a round holds new flows for its length.
 */
const WEIGHT_HYSTERESIS = 0.05;
/**
 * ...and at most once in this many heartbeats: while a new weight is applied, the new flows
 * it moves to another node wait (see Membership's weightsInFlight), so a load average
 * drifting across the hysteresis must not do it every few rounds. Set by hand (set_weight,
 * weight_mode) it applies at once.
 */
const WEIGHT_MIN_INTERVAL_HEARTBEATS = 10;

const VNET_HDR = true;

/** The tracking tables' clock: u32 seconds, the same as the actors'. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Bytes of the data socket's V2 receive ring: 32768 slots of 2048 bytes at MTU 1500. */
const RX_RING_V2_BYTES = 64 << 20;

/**
 * The data socket's receive ring (--rx-ring).
 *
 * v2, the default: each frame is readable the moment the kernel has written it (a request
 * through the VIP: p50 ~120 µs instead of ~1000 µs). Slots hold a whole frame of the device's
 * MTU (2048 bytes up to MTU 1958); GSO frames come whole through the socket's queue. A slot
 * takes a frame of any size, so 32768 slots (64 MiB) hold 32768 frames: ~100 ms of a stalled
 * reader at 330k frames/s, the most this class of machine delivers to one socket (with 16384
 * slots, bench/throughput.ts lost frames in the ring in 4 runs of 5: its three nodes share
 * one core; V3 packs 64-byte frames ~1600 to a 256 KiB block, 200k in 32 MiB). On a busy wire
 * the reader sleeps 500 µs between batches rather than be woken for each frame: a 64-byte
 * flood then reaches ~75–80% of v3's rate, 1514-byte frames ~96%.
 *
 * v3: the kernel hands frames over in blocks, when a block is full or 1 ms after it was
 * opened, so a lone frame waits up to 1 ms; cheapest at the highest rates. The ring holds
 * about blockCount × 1 ms of a stalled reader at low load: 128 blocks ride out 128 ms, and
 * 256 KiB still holds several 64 KiB GSO frames.
 */
export function rxRingOptions(rxRing: RxRing, mtu: number): port.RingOpenOptions {
  if (rxRing === 'v3') return { version: 3, blockSize: 256 << 10, blockCount: 128, retireTimeoutMs: 1 };
  const frameSize = port.v2FrameSize(mtu, VNET_HDR);
  return { version: 2, frameSize, frameCount: Math.max(4096, RX_RING_V2_BYTES / frameSize), copyQueueBytes: 8 << 20, holdOffUs: 500 };
}

/**
 * --insecure-no-auth: said as an error now and every `everyMs` (a minute), so that nobody runs
 * it unaware; returns the timer (unref'd) to clear on stop.
 */
export function warnInsecureNoAuth(log: Pick<Logger, 'error'>, everyMs: number = INSECURE_REPEAT_MS): NodeJS.Timeout {
  const say = (): void => log.error({ event: 'insecure-no-auth', authenticated: false, insecure: true }, INSECURE_LOG_LINE);
  say();
  const timer = setInterval(say, everyMs);
  timer.unref();
  return timer;
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');

function describeKey(handler: { describeKey?(keyLo: number, keyHi: number): string }, keyLo: number, keyHi: number): string {
  try {
    return handler.describeKey?.(keyLo, keyHi) ?? formatIPv4(keyLo);
  } catch {
    return formatIPv4(keyLo);
  }
}

/**
 * What a cluster interface tells its owner (the daemon's log, the library's events). `node` is
 * a MAC; `name` and `address` are what that node announced (--node-name or its host name, and
 * the IPv4 of its device), absent when it announced none (an LNLB node, an earlier lnlb).
 */
export interface ClusterEvents {
  /** A node appeared (JOIN, WELCOME or its heartbeat); it enters the view with the next round. */
  joined: [{ node: string; name?: string; address?: string; id: number }];
  /** A node sent LEAVE (lnlbctl stop, delif, its daemon stopping). */
  left: [{ node: string; name?: string; address?: string }];
  /** A node was removed for silence (missed heartbeats), a restart or our own reset. */
  died: [{ node: string; name?: string; address?: string; reason: string; missedHeartbeats: number; silentMs: number }];
  /** A round settled a new view: these members (MACs, and their names in the same order: '' if none), with these weights, decide every new flow. */
  converged: [{ nodes: string[]; names: string[]; weights: number[] }];
  /** A member's weight changed in the view (DRAINING_WEIGHT: it drains). */
  weight: [{ node: string; name?: string; address?: string; self: boolean; from: number; to: number }];
  /** This interface's own state changed (stop, start, drain, suspend, resume; out or back in for its health). */
  state: [{ state: InterfaceState }];
  /** The health checks changed state, or what the node does about it (left, rejoined, stays as the last resort). */
  health: [HealthEvent];
}

const DRAIN_POLL_MS = 500;

/** How often --insecure-no-auth is said again in the log, as an error. */
export const INSECURE_REPEAT_MS = 60_000;
/** The log line (and, shortened, the status header) of an interface running without a key. */
export const INSECURE_LOG_LINE =
  'AUTH OFF (--insecure-no-auth): control plane NOT authenticated, any host on this LAN can take this cluster over (send LEAVE, fake members, replace tracking state); for labs only: give every node the same --key-file (lnlbctl genkey)';

export class ClusterInterface {
  /** Membership and state events (see ClusterEvents). */
  readonly events = new EventEmitter<ClusterEvents>();

  get name(): string {
    return this.#opts.name;
  }

  get vip(): string {
    return this.#opts.vip;
  }

  get bind(): string {
    return this.#opts.bind;
  }

  readonly #opts: InterfaceOptions;
  readonly #log: Logger;
  readonly #sysctl: SysctlGuard;
  readonly #vip: number;
  readonly #clusterMac: Uint8Array;
  readonly #tapMac: Uint8Array;
  readonly #rules: RuleSet;
  /** State loads run one after another (a transfer is several handlers' states). */
  #loading: Promise<void> = Promise.resolve();
  #igmp: Socket | undefined;
  #ownMac = new Uint8Array(6);
  #tapFd = -1;
  #dataFd = -1;
  #datapath: Datapath | undefined;
  #control: Worker | undefined;
  #weightTimer: NodeJS.Timeout | undefined;
  /** --insecure-no-auth: repeats the error line every INSECURE_REPEAT_MS. */
  #insecureTimer: NodeJS.Timeout | undefined;
  #requests = 0;
  readonly #waiters = new Map<number, (event: ControlEvent) => void>();
  #stopped = false;
  readonly weights: WeightSource;
  #announcedWeight = 0;
  /** When the measured weight last changed (performance.now()). */
  #weightChangedAt = 0;
  #fatal: (err: LnlbError) => void;
  /** Operator state: taking part, draining (no new flows), or stopped (LEAVE sent). */
  #mode: 'running' | 'draining' | 'stopped' = 'running';
  /** `lnlbctl suspend`: stopped, and `start` refused until `resume`. */
  #suspended = false;
  /** The drain in progress: bumped to cancel it (start, stop, suspend). */
  #drainGeneration = 0;
  #drainStartedAt = 0;
  /** Set by the watchdog (`handler X stuck in actor k`): out of the cluster until lnlbd restarts. */
  #failed: string | undefined;
  /** --health-check: the monitor, and whether it has taken the node out (LEAVE sent for it). */
  #health: HealthMonitor | undefined;
  #healthOut = false;

  /** `options` carries this interface's bind, vip and name; `sysctl` is the daemon's, shared. */
  constructor(options: InterfaceOptions, sysctl: SysctlGuard, log: Logger, fatal: (err: LnlbError) => void) {
    this.#opts = options;
    this.#log = log;
    this.#fatal = fatal;
    this.#sysctl = sysctl;
    this.#vip = parseIPv4(options.vip);
    // The TAP always carries the unicast form: an interface cannot have a multicast address.
    this.#tapMac = clusterMacUnicast(this.#vip);
    this.#clusterMac = options.macMode === 'multicast' ? clusterMacMulticast(this.#vip) : this.#tapMac;
    this.weights = new WeightSource(options.name, options.weightMode);
    this.#rules = compileRules(options.rule);
  }

  /**
   * The control-plane key (LNLB_ERR_AUTH_KEY_MISSING without one, unless --insecure-no-auth;
   * loadKeyFile's refusals for a bad file); a key that loads but looks guessable is logged.
   * undefined: --insecure-no-auth, plain LNLB messages.
   */
  #loadKey(): Buffer | undefined {
    const o = this.#opts;
    checkClusterAuth(o, DAEMON_AUTH_NAMES);
    if (o.keyFile === undefined) return undefined;
    return loadKeyFile(o.keyFile, { warn: (message) => this.#log.warn({ event: 'key-file-weak', keyFile: o.keyFile }, message) });
  }

  /** Each handler with the idle timeout of its own flag (tcp, udp) or --idle-timeout. */
  #handlerSetups(): HandlerSetup[] {
    const o = this.#opts;
    const idle = (spec: HandlerSpec): number => (spec.module === 'builtin:tcp' ? o.tcpIdleTimeout : spec.module === 'builtin:udp' ? o.udpIdleTimeout : o.idleTimeout);
    return o.handler.map((spec) => ({ spec, idleTimeoutSeconds: idle(spec) }));
  }

  async start(): Promise<void> {
    const o = this.#opts;
    // The key first: no key (and no --insecure-no-auth), or a key file refused, leaves the host
    // as it was: no TAP, no sysctl, no thread.
    const key = this.#loadKey();
    const info = port.ifInfo(o.bind); // throws LNLB_ERR_DEV_NOT_FOUND naming the device
    this.#ownMac = info.mac;
    if (!info.up) this.#log.warn({ bind: o.bind }, `${o.bind} is down: nothing will arrive until it is up`);
    // arp_ignore=1: the host does not answer ARP for the VIP on the real device (we do, with the
    // cluster MAC). arp_announce=2: the host's own ARP requests use the device's address, never
    // the VIP, or clients would learn "VIP is at my real MAC" and balancing silently breaks.
    this.#sysctl.apply(o.name, [
      { key: ipv4Sysctl(o.bind, 'arp_ignore'), value: '1', restore: true },
      { key: ipv4Sysctl(o.bind, 'arp_announce'), value: '2', restore: true },
      // Multicast mode: the real device joins the cluster MAC, so its host stack would take
      // every client frame (PACKET_MULTICAST, and the VIP is local) and answer ICMP and UDP
      // itself, on every node. Frames reach the VIP only through our TAP.
      ...(o.macMode === 'multicast' ? [{ key: ipv4Sysctl(o.bind, 'drop_unicast_in_l2_multicast'), value: '1', restore: true }] : []),
    ]);
    const tap = port.tapOpen(o.name, { vnetHdr: VNET_HDR });
    this.#tapFd = tap.fd;
    port.ifSetMac(o.name, this.#tapMac);
    const tapSysctls: SysctlChange[] = [
      // Frames from clients arrive on the TAP but replies leave by the real device: the strict
      // reverse-path filter would drop them. The TAP vanishes with us, so nothing to restore.
      { key: ipv4Sysctl(o.name, 'rp_filter'), value: '2', restore: false },
    ];
    this.#sysctl.apply(o.name, tapSysctls);
    port.ifSetIPv4(o.name, o.vip, 32);
    port.ifSetUp(o.name, true);

    const multicast = o.macMode === 'multicast';
    this.#dataFd = port.packetOpen(o.bind, {
      protocol: port.ETH_P_ALL,
      // Unicast mode: the cluster MAC is nobody's, only promiscuous mode passes it up.
      // Multicast mode: a membership of the cluster MAC is enough.
      promisc: !multicast,
      ...(multicast ? { multicast: this.#clusterMac } : {}),
      filter: dataFilter(this.#clusterMac),
      vnetHdr: VNET_HDR,
      ignoreOutgoing: true,
    });
    port.ringOpen(this.#dataFd, rxRingOptions(o.rxRing, info.mtu));
    const datapath = await Datapath.start({
      dataFd: this.#dataFd,
      tapFd: this.#tapFd,
      vnetHdr: VNET_HDR,
      actors: o.workers,
      vip: this.#vip,
      clusterMac: this.#clusterMac,
      ownMac: this.#ownMac,
      tapMac: multicast ? this.#tapMac : undefined,
      election: o.election,
      // Keyed with the cluster key: every node of the cluster hashes alike, a LAN host cannot aim.
      electionKey: key === undefined ? undefined : deriveElectionKey(key),
      tableEntries: o.tableEntries,
      handlers: this.#handlerSetups(),
      rules: o.rule,
      interfaceName: o.name,
      onError: (err) => this.#fatal(err),
      onLinkDown: () => this.#log.warn({ event: 'link-down', bind: o.bind }, `${o.bind} went down: no frames until it is back`),
      onHandlerError: (r) =>
        this.#log.error({ event: 'handler-error', handler: r.handler, method: r.method }, `handler ${r.handler} threw in ${r.method}: ${r.message} (the frame was dropped and counted; logged once per cause)`),
      watchdogLimitMs: watchdogLimitMs(o.deadAfterMs),
      onStuck: (report) => this.#datapathStuck(report),
    });
    this.#datapath = datapath;

    const controlData: ControlData = {
      role: 'control',
      dev: o.bind,
      ownMac: this.#ownMac,
      clusterMac: this.#clusterMac,
      clusterIp: this.#vip,
      multicast,
      mtu: info.mtu,
      key: key === undefined ? undefined : new Uint8Array(key),
      heartbeatMs: o.heartbeatMs,
      clockToleranceMs: o.clockTolerance * 1000,
      deadAfterMs: o.deadAfterMs,
      incarnation: randomBytes(4).readUInt32BE(0),
      weight: this.#currentWeight(true),
      nodeName: this.nodeName,
      address: this.#bindAddress(),
      view: datapath.viewMemory,
      actorRings: datapath.ringMemories,
      rules: { digest: this.#rules.digest, params: Array.from(this.#rules.params) },
    };
    const control = new Worker(new URL('../workers/control-thread.js', import.meta.url), { execArgv: workerExecArgv(), workerData: controlData, name: 'lnlb-control' });
    this.#control = control;
    control.on('message', (event: ControlEvent) => this.#onControlEvent(event));
    control.on('error', (err) => this.#fatal(reviveError(serializeError(err, 'control plane'), 'LNLB_ERR_WORKER_FAILED')));
    control.on('exit', (code) => {
      if (!this.#stopped) this.#fatal(lnlbError('LNLB_ERR_WORKER_FAILED', `the control-plane thread exited unexpectedly (code ${code})`));
    });
    await new Promise<void>((resolve, reject) => {
      const onReady = (event: ControlEvent): void => {
        if (event.type === 'ready') resolve();
        else if (event.type === 'error') reject(reviveError(event.error, 'LNLB_ERR_WORKER_FAILED'));
        else return;
        control.off('message', onReady);
      };
      control.on('message', onReady);
    });
    if (key === undefined) {
      this.#insecureTimer = warnInsecureNoAuth(this.#log);
    } else {
      this.#log.info({ event: 'control-plane', authenticated: true }, 'control plane authenticated (HMAC-SHA256, replay window)');
    }
    // The weight is measured here (reading /proc may block a little) and handed over when it moves.
    this.#weightTimer = setInterval(() => {
      if (this.#mode !== 'running' || this.#healthOut) return; // a drain announces DRAINING_WEIGHT; a node out (stopped, unhealthy) nothing
      if (performance.now() - this.#weightChangedAt < WEIGHT_MIN_INTERVAL_HEARTBEATS * o.heartbeatMs) return;
      const before = this.#announcedWeight;
      const weight = this.#currentWeight(false);
      if (weight !== before) {
        this.#weightChangedAt = performance.now();
        this.#postControl({ type: 'weight', weight });
      }
    }, o.heartbeatMs);
    this.#weightTimer.unref();
    if (multicast) this.#igmp = await this.#joinIgmpGroup();
    this.#startHealthChecks();
    this.#log.info({ vip: o.vip, bind: o.bind, clusterMac: formatMac(this.#clusterMac), macMode: o.macMode, rxRing: o.rxRing, workers: o.workers }, 'cluster interface up');
  }

  /** The name this node announces: --node-name, or the host name. */
  get nodeName(): string {
    return this.#opts.nodeName ?? defaultNodeName(hostname());
  }

  /** The IPv4 of the bound device as a u32 (its first), 0 when it has none: announced beside the name. */
  #bindAddress(): number {
    const address = networkInterfaces()[this.#opts.bind]?.find((a) => a.family === 'IPv4')?.address;
    return address === undefined ? 0 : parseIPv4(address);
  }

  /**
   * Multicast mode: join the IPv4 group whose MAC is the cluster MAC (LNLB's 01:00:5e:7f:a:b
   * from the VIP's first two octets a.b; 239.255.a.b maps to it), so the kernel sends IGMP
   * reports and snooping switches forward the cluster's frames to this port (the original
   * LNLB's multicast mode had no IGMP).
   */
  async #joinIgmpGroup(): Promise<Socket | undefined> {
    const o = this.#opts;
    const group = `239.255.${this.#clusterMac[4]}.${this.#clusterMac[5]}`;
    const address = networkInterfaces()[o.bind]?.find((a) => a.family === 'IPv4')?.address;
    if (address === undefined) {
      this.#log.warn({ event: 'igmp', group }, `${o.bind} has no IPv4 address: no IGMP join for ${group}; switches with IGMP snooping may not forward the cluster's frames`);
      return undefined;
    }
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => resolve());
    });
    socket.addMembership(group, address);
    socket.unref();
    this.#log.info({ event: 'igmp', group, address }, `joined ${group} on ${o.bind} (IGMP)`);
    return socket;
  }

  #postControl(message: MainToControl): void {
    this.#control?.postMessage(message);
  }

  #onControlEvent(event: ControlEvent): void {
    switch (event.type) {
      case 'log':
        this.#log[event.level](event.fields, event.msg);
        this.#emitMembership(event.fields);
        break;
      case 'node-died':
        this.#datapath?.nodeDied(event.id);
        break;
      case 'reset':
        this.#datapath?.resetTracking();
        break;
      case 'status':
      case 'resynced': {
        const waiter = this.#waiters.get(event.requestId);
        this.#waiters.delete(event.requestId);
        waiter?.(event);
        break;
      }
      case 'owners':
        this.#waiters.get(event.requestId)?.(event);
        this.#waiters.delete(event.requestId);
        break;
      case 'save-state':
        this.#saveStates(event.owners)
          .then((states) => this.#postControl({ type: 'send-state', to: event.to, states }))
          .catch((err: unknown) => this.#log.error({ event: 'state-save-failed', to: event.to }, err instanceof Error ? err.message : String(err)));
        break;
      case 'state': {
        const e = event;
        this.#loading = this.#loading
          .then(() => this.#loadState(e.from, e.protocol, e.state, e.ownerIds, e.newcomer))
          .finally(() => {
            // A newcomer's first round waits for the last handler's state (loaded or refused).
            if (e.newcomer && e.last) this.#postControl({ type: 'state-loaded' });
          })
          // Caught here: a rejected link would be unhandled, and would skip every later state.
          .catch((err: unknown) => this.#log.error({ event: 'state-refused', from: e.from, err }, `tracking state from ${e.from}: ${err instanceof Error ? err.message : String(err)}`));
        break;
      }
      case 'error':
        this.#fatal(reviveError(event.error, 'LNLB_ERR_WORKER_FAILED'));
        break;
      default:
        break;
    }
  }

  /** The control plane's structured log lines, as typed events. */
  #emitMembership(f: Record<string, unknown>): void {
    const node = typeof f['node'] === 'string' ? f['node'] : '';
    const num = (key: string): number => (typeof f[key] === 'number' ? (f[key] as number) : 0);
    const who = { node, ...(typeof f['name'] === 'string' ? { name: f['name'] } : {}), ...(typeof f['address'] === 'string' ? { address: f['address'] } : {}) };
    switch (f['event']) {
      case 'node-joined':
        this.events.emit('joined', { ...who, id: num('id') });
        break;
      case 'node-left':
        this.events.emit('left', who);
        break;
      case 'node-died':
        this.events.emit('died', { ...who, reason: String(f['reason']), missedHeartbeats: num('missedHeartbeats'), silentMs: num('silentMs') });
        break;
      case 'view':
        this.events.emit('converged', { nodes: (f['nodes'] as string[] | undefined) ?? [], names: (f['names'] as string[] | undefined) ?? [], weights: (f['weights'] as number[] | undefined) ?? [] });
        break;
      case 'node-weight':
        this.events.emit('weight', { ...who, self: f['self'] === true, from: num('from'), to: num('to') });
        break;
      default:
        break;
    }
  }

  #setMode(mode: 'running' | 'draining' | 'stopped'): void {
    this.#mode = mode;
    this.events.emit('state', { state: this.#mode === 'stopped' && this.#suspended ? 'suspended' : this.#healthOut && this.#mode !== 'stopped' ? 'unhealthy' : this.#mode === 'running' ? 'converging' : this.#mode });
  }

  /**
   * The watchdog found a datapath thread stuck (a handler that does not return) and terminated
   * it. Its share of the clients would be black-holed while heartbeats go on, so the node
   * leaves as `lnlbctl stop` does (the others take every client at once) and stays out: the
   * thread cannot be resumed, only a restart brings the interface back.
   */
  #datapathStuck(report: StuckReport): void {
    if (this.#stopped || this.#failed !== undefined) return;
    const h = report.handler;
    this.#failed = h === undefined ? `${report.thread} stopped taking frames` : `handler ${h.name} stuck in ${report.thread}`;
    this.#drainGeneration++;
    if (this.#mode !== 'stopped' && !this.#healthOut) this.#postControl({ type: 'leave' });
    this.#mode = 'stopped';
    this.#log.error(
      { event: 'handler-stuck', handler: h?.name ?? null, protocol: h?.protocol ?? null, method: h?.method ?? null, thread: report.thread, stalledMs: report.stalledMs },
      `${h === undefined ? `${report.thread} made no progress with frames waiting` : `handler ${h.name} (protocol ${h.protocol}) stuck in ${report.thread}: ${h.method} has not returned`} for ${report.stalledMs} ms; this node left the cluster (LEAVE sent: the other nodes take its clients) and stays out, the thread was stopped; fix the handler, then restart lnlbd`,
    );
    this.events.emit('state', { state: 'failed' });
  }

  /**
   * --health-check: a monitor that takes the node out (LEAVE) while unhealthy and back in
   * (rejoin) when healthy. The operator's stop and the health checks each keep the node out on
   * their own: a recovery does not undo a stop, and a start does not undo an unhealthy check.
   */
  #startHealthChecks(): void {
    this.#health = createHealthMonitor(
      this.#opts,
      {
        view: async () => {
          const plane = await this.#controlStatus();
          return plane === undefined ? undefined : presenceView(plane, formatMac(this.#ownMac));
        },
        setHealthOut: (out) => this.#setHealthOut(out),
        operatorOut: () => this.#mode === 'stopped' || this.#failed !== undefined || this.#stopped,
      },
      this.#log,
      (event) => this.events.emit('health', event),
    );
    this.#health?.start();
  }

  /** The health checks take the node out (LEAVE) or let it back (rejoin), unless the operator keeps it out. */
  #setHealthOut(out: boolean): void {
    if (out === this.#healthOut || this.#stopped) return;
    this.#healthOut = out;
    const operatorOut = this.#mode === 'stopped' || this.#failed !== undefined;
    if (!operatorOut) {
      if (out) {
        this.#postControl({ type: 'leave' });
      } else {
        // A draining node keeps announcing DRAINING_WEIGHT (the control plane holds it).
        if (this.#mode === 'running') this.#postControl({ type: 'weight', weight: this.#currentWeight(true) });
        this.#postControl({ type: 'rejoin' });
      }
    }
    this.events.emit('state', { state: this.#state(false) });
  }

  /** `lnlbctl stop`: LEAVE now; the others take every client, connections to this node break. */
  stopCluster(): { state: InterfaceState } {
    this.#drainGeneration++;
    if (this.#failed !== undefined) return { state: 'failed' }; // out already, LEAVE sent
    if (this.#mode !== 'stopped') {
      if (!this.#healthOut) this.#postControl({ type: 'leave' }); // else out already, LEAVE sent
      this.#setMode('stopped');
    }
    return { state: this.#suspended ? 'suspended' : 'stopped' };
  }

  /** `lnlbctl start`: join again after a stop; ends a drain (new flows come back). */
  startCluster(): { state: InterfaceState } {
    if (this.#failed !== undefined) {
      throw lnlbError('LNLB_ERR_HANDLER_STUCK', `${this.name} failed: ${this.#failed}; it cannot serve again as it is: fix the handler, then restart lnlbd (or lnlbctl delif and addif ${this.name})`);
    }
    if (this.#suspended) throw lnlbError('LNLB_ERR_CTL_SUSPENDED', `${this.name} is suspended: lnlbctl resume ${this.name} first, then start`);
    this.#drainGeneration++;
    if (this.#mode === 'stopped') {
      this.#postControl({ type: 'weight', weight: this.#currentWeight(true) });
      // Unhealthy: it stays out, and joins once its checks pass.
      if (!this.#healthOut) this.#postControl({ type: 'rejoin' });
    } else if (this.#mode === 'draining') {
      this.#postControl({ type: 'weight', weight: this.#currentWeight(true) });
    }
    this.#setMode('running');
    return { state: this.#healthOut ? 'unhealthy' : 'converging' };
  }

  /** `lnlbctl suspend`: stop, and refuse `start` until `resume` (Windows NLB's suspend). */
  suspend(): { state: InterfaceState } {
    this.#suspended = true;
    if (this.#mode === 'stopped') this.#setMode('stopped');
    return this.stopCluster();
  }

  /** `lnlbctl resume`: `start` is allowed again; as in Windows NLB, the node stays stopped until it. */
  resume(): { state: InterfaceState } {
    this.#suspended = false;
    this.#setMode(this.#mode);
    if (this.#failed !== undefined) return { state: 'failed' };
    return { state: this.#mode === 'stopped' ? 'stopped' : this.#healthOut ? 'unhealthy' : this.#mode === 'draining' ? 'draining' : 'converged' };
  }

  /** drainstop without waiting (`lnlbctl drainstop --no-wait`): a failure goes to the log, nobody awaits it. */
  drainInBackground(options: DrainOptions = {}): void {
    this.drainstop(options).catch((err: unknown) => this.#log.error({ event: 'drain-failed', err }, `drainstop: ${err instanceof Error ? err.message : String(err)}`));
  }

  /**
   * `lnlbctl drainstop`: no new flows (the node announces DRAINING_WEIGHT, so every node's
   * election leaves it out, while the flows it tracks stay with it), then, once none of them
   * has been seen for `idleSeconds` (a closed TCP connection counts at once) or the timeout
   * passes, a stop. Resolves when stopped, or when a start or stop ends the drain first.
   */
  async drainstop(options: DrainOptions = {}): Promise<DrainResult> {
    if (this.#mode === 'stopped') return { state: this.#suspended ? 'suspended' : 'stopped', drained: true, remainingFlows: 0, ms: 0 };
    const idle = options.idleSeconds ?? DEFAULT_DRAIN_IDLE_SECONDS;
    const generation = ++this.#drainGeneration;
    if (this.#mode !== 'draining') {
      this.#drainStartedAt = performance.now();
      this.#postControl({ type: 'weight', weight: DRAINING_WEIGHT });
      this.#setMode('draining');
      this.#log.info({ event: 'drain', idleSeconds: idle, timeoutSeconds: options.timeoutSeconds ?? null }, `draining: no new clients; stopping when this node's last flow has been quiet ${idle} s${options.timeoutSeconds === undefined ? '' : ` or after ${options.timeoutSeconds} s`}`);
    }
    const started = this.#drainStartedAt;
    const deadline = options.timeoutSeconds === undefined ? Number.POSITIVE_INFINITY : performance.now() + options.timeoutSeconds * 1000;
    let remaining = await this.#activeOwnedFlows(idle);
    while (remaining > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      if (generation !== this.#drainGeneration || this.#stopped) {
        return { state: this.#mode === 'running' ? 'converged' : this.#mode, drained: false, remainingFlows: remaining, ms: Math.round(performance.now() - started), cancelled: true };
      }
      remaining = await this.#activeOwnedFlows(idle);
    }
    const ms = Math.round(performance.now() - started);
    this.#log.info({ event: 'drained', remainingFlows: remaining, ms }, remaining === 0 ? `drained in ${ms} ms: stopping` : `drain timeout after ${ms} ms with ${remaining} flow(s) still active: stopping`);
    this.stopCluster();
    return { state: 'stopped', drained: remaining === 0, remainingFlows: remaining, ms };
  }

  /** Flows this node owns that were seen within the last `idleSeconds`. */
  async #activeOwnedFlows(idleSeconds: number): Promise<number> {
    const datapath = this.#datapath;
    if (datapath === undefined) return 0;
    const owners = await this.#askControl((requestId) => ({ type: 'owners', requestId }), 5000);
    if (owners?.type !== 'owners') return Number.POSITIVE_INFINITY; // no answer: not known to be drained
    const self = formatMac(this.#ownMac);
    const selfIds = new Set(Object.entries(owners.owners).filter(([, mac]) => mac === self).map(([id]) => Number(id)));
    const now = nowSeconds();
    let active = 0;
    for (const shards of await datapath.list(1 << 22, now)) {
      for (const shard of shards) {
        const e = shard.entries;
        for (let k = 0; k + SNAPSHOT_WORDS <= e.length; k += SNAPSHOT_WORDS) {
          // Whole seconds on both sides: a flow seen 0.1 s ago may read as 1 s old, so "quiet
          // for idleSeconds" means more than idleSeconds whole seconds since its last frame.
          if (selfIds.has(e[k + 2]!) && ((now - e[k + 3]!) | 0) <= idleSeconds) active++;
        }
      }
    }
    return active;
  }

  /** The weight to announce: re-read each heartbeat, changed only past the hysteresis (or when set by hand). */
  #currentWeight(force: boolean): number {
    let weight: number;
    try {
      weight = this.weights.read();
    } catch (err) {
      this.#log.warn({ event: 'weight-read-failed' }, (err as Error).message);
      // Unreadable from the start: an idle node's weight, neither more nor less than its share.
      return this.#announcedWeight || IDLE_WEIGHT;
    }
    const last = this.#announcedWeight;
    if (force || last === 0 || this.weights.mode === 'fixed' || Math.abs(weight - last) >= last * WEIGHT_HYSTERESIS) {
      if (last !== 0 && weight !== last) this.#log.info({ event: 'weight', from: last, to: weight, mode: this.weights.mode }, `weight ${last} → ${weight}`);
      this.#announcedWeight = weight;
    }
    return this.#announcedWeight;
  }

  /** `lnlbctl weight_mode`: where the weight comes from; takes effect at the next round. */
  setWeightMode(mode: string): { mode: string; weight: number } {
    this.weights.setMode(mode);
    const weight = this.#currentWeight(true);
    if (this.#mode === 'running' && !this.#healthOut) this.#postControl({ type: 'weight', weight });
    return { mode: this.weights.mode, weight };
  }

  /** `lnlbctl set_weight`: a capacity, fixed mode only (LNLB's rule for its manual mode); takes effect at the next round. */
  setManualWeight(text: string): { weight: number } {
    const weight = this.weights.setManual(text);
    this.#announcedWeight = weight;
    if (this.#mode === 'running' && !this.#healthOut) this.#postControl({ type: 'weight', weight });
    return { weight };
  }

  /** One request to the control thread and its answer (undefined if it does not come in time). */
  #askControl(message: (requestId: number) => MainToControl, timeoutMs: number): Promise<ControlEvent | undefined> {
    const control = this.#control;
    if (!control || this.#stopped) return Promise.resolve(undefined);
    const requestId = ++this.#requests;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(requestId);
        resolve(undefined);
      }, timeoutMs);
      this.#waiters.set(requestId, (event) => {
        clearTimeout(timer);
        resolve(event);
      });
      this.#postControl(message(requestId));
    });
  }

  async #controlStatus(): Promise<ControlStatus | undefined> {
    const answer = await this.#askControl((requestId) => ({ type: 'status', requestId }), 2000);
    return answer?.type === 'status' ? answer.status : undefined;
  }

  /** `lnlbctl resync`: broadcasts this node's tracking state; every other node reloads from it. */
  async resync(): Promise<{ entries: number; bytes: number; fragments: number }> {
    const owners = await this.#askControl((requestId) => ({ type: 'owners', requestId }), 5000);
    if (owners?.type !== 'owners') throw lnlbError('LNLB_ERR_WORKER_FAILED', 'the control plane did not answer');
    const states = await this.#saveStates(owners.owners);
    const answer = await this.#askControl((requestId) => ({ type: 'send-state', to: 'cluster', states, requestId }), 60_000);
    if (answer?.type !== 'resynced') throw lnlbError('LNLB_ERR_WORKER_FAILED', 'the control plane did not finish the resync within 60 s');
    if (answer.error !== undefined) throw lnlbError('LNLB_ERR_WORKER_FAILED', `resync failed: ${answer.error}`);
    return { entries: states.reduce((n, s) => n + s.entries, 0), bytes: states.reduce((n, s) => n + s.state.length, 0), fragments: answer.fragments };
  }

  /**
   * `lnlbctl conntrack`: every tracked flow of every handler (key → owning node, idle
   * seconds), each actor listing its own shard between two batches, at most `limit` in all.
   */
  async conntrack(limit: number): Promise<ConntrackJson> {
    const datapath = this.#datapath;
    const owners = await this.#askControl((requestId) => ({ type: 'owners', requestId }), 5000);
    const macs = owners?.type === 'owners' ? owners.owners : {};
    // Names and addresses as the members announced them; this node by its own MAC.
    const members = new Map((await this.#controlStatus())?.nodes.map((n) => [n.mac, n]) ?? []);
    const self = formatMac(this.#ownMac);
    const now = nowSeconds();
    const entries: ConntrackJson['entries'] = [];
    let total = 0;
    if (datapath !== undefined) {
      const listings = await datapath.list(limit, now);
      const setups = this.#handlerSetups();
      listings.forEach((shards, h) => {
        const handler = datapath.handlers[h]!;
        const idle = setups[h]?.idleTimeoutSeconds ?? 0;
        for (const shard of shards) {
          total += shard.total;
          const e = shard.entries;
          for (let k = 0; k + SNAPSHOT_WORDS <= e.length; k += SNAPSHOT_WORDS) {
            const keyLo = e[k]!;
            const keyHi = e[k + 1]!;
            const owner = e[k + 2]!;
            const mac = macs[owner];
            const member = mac === undefined ? undefined : members.get(mac);
            entries.push({
              handler: handler.name,
              source: formatIPv4(keyLo),
              ...(keyHi === 0 ? {} : { key: keyHi }),
              flow: describeKey(handler, keyLo, keyHi),
              node: mac ?? `id ${owner} (gone)`,
              ...(member === undefined || member.name === '' ? {} : { nodeName: member.name }),
              ...(member === undefined || member.address === '' ? {} : { nodeAddress: member.address }),
              self: mac === self,
              idleSeconds: Math.max(0, (now - e[k + 3]!) | 0),
              expiresInSeconds: Math.max(0, idle - ((now - e[k + 3]!) | 0)),
            });
          }
        }
      });
    }
    entries.sort((a, b) => a.idleSeconds - b.idleSeconds || a.source.localeCompare(b.source));
    return { interface: this.#opts.name, total, entries: entries.slice(0, limit) };
  }

  /**
   * Every handler's state, from a snapshot each actor takes of its own shard between two
   * batches (consistent per shard), serialised here, off the actors' and the control plane's
   * threads.
   */
  async #saveStates(owners: Record<number, string>): Promise<{ protocol: number; state: Uint8Array; entries: number }[]> {
    const datapath = this.#datapath;
    if (datapath === undefined) return [];
    const macs = new Map(Object.entries(owners).map(([id, mac]) => [Number(id), parseMac(mac)]));
    const snapshots = await datapath.snapshot();
    const now = nowSeconds();
    return snapshots.map((shards, h) => {
      const stats = { saved: 0, skippedUnknownOwner: 0 };
      const room = shards.reduce((n, s) => n + s.length / SNAPSHOT_WORDS, 0);
      const state = encodeTrackerState((visit) => visitEntries(shards, visit), room, now, (id) => macs.get(id), stats);
      return { protocol: datapath.handlers[h]!.protocol, state, entries: stats.saved };
    });
  }

  /** A handler's state from another node: every actor loads its shard, all or nothing. */
  async #loadState(from: string, protocol: number, state: Uint8Array, ownerIds: Record<string, number>, newcomer: boolean): Promise<void> {
    const datapath = this.#datapath;
    if (datapath === undefined) return;
    const index = datapath.handlers.findIndex((h) => h.protocol === protocol);
    if (index < 0) {
      this.#log.warn({ event: 'state-ignored', from, protocol }, `tracking state for protocol ${protocol} from ${from} ignored: no handler for it here (are the --handler flags the same on every node?)`);
      return;
    }
    const handler = datapath.handlers[index]!;
    const started = performance.now();
    try {
      const result = await datapath.loadState(from, index, state, ownerIds);
      if (result.refused !== undefined) {
        this.#log.error({ event: 'state-refused', from, handler: handler.name }, `${result.refused} (every shard rolled back)`);
        return;
      }
      this.#log.info(
        { event: newcomer ? 'state-loaded' : 'resync-loaded', from, handler: handler.name, entries: result.loaded, skipped: result.skipped, clockShift: result.clockShift, ms: Math.round(performance.now() - started) },
        `loaded ${result.loaded} tracked ${handler.name} flows from ${from}`,
      );
    } catch (err) {
      this.#log.error({ event: 'state-refused', from, handler: handler.name }, (err as Error).message);
    }
  }

  async status(): Promise<InterfaceStatusJson> {
    const o = this.#opts;
    const plane = await this.#controlStatus();
    const counters = this.#datapath?.readCounters();
    const handlerCounters = this.#datapath?.readHandlerCounters() ?? [];
    const state: InterfaceState = plane?.heldBy !== undefined && this.#mode === 'running' && !this.#stopped ? 'held' : this.#state(plane?.accepting === true && plane.changePending !== true);
    return {
      name: o.name,
      vip: formatIPv4(this.#vip),
      bind: o.bind,
      clusterMac: formatMac(this.#clusterMac),
      converged: plane?.accepting ?? false,
      state,
      ...(this.#failed === undefined ? {} : { failed: this.#failed }),
      suspended: this.#suspended,
      ...(this.#health === undefined ? {} : { health: this.#health.status() }),
      weightMode: this.weights.mode,
      workers: o.workers,
      authenticated: plane?.authenticated ?? false,
      insecure: o.insecureNoAuth,
      unauthenticatedPeers: plane?.unauthenticatedPeers ?? [],
      ...(plane?.heldBy === undefined ? {} : { heldBy: plane.heldBy }),
      nodes: (plane?.nodes ?? []).map((n) => ({
        mac: n.mac,
        ...(n.name === '' ? {} : { name: n.name }),
        ...(n.address === '' ? {} : { address: n.address }),
        // This node's row says what the header says (one state); the others', what we see of them.
        state: n.self ? state : memberState(n.status, n.weight, n.joined),
        status: n.status,
        weight: n.weight,
        self: n.self,
        ...(n.rulesDigest === undefined ? {} : { rulesDigest: hex(n.rulesDigest), rulesMatch: n.rulesMatch ?? false }),
      })),
      rules: this.#rules.rules.map((rule, i) => describeRule(rule, i)),
      rulesDigest: hex(this.#rules.digest),
      rulesMismatch: (plane?.nodes ?? []).filter((n) => n.rulesMatch === false).map((n) => n.mac),
      handlers: this.#handlerSetups().map((setup, h) => ({
        protocol: setup.spec.protocol,
        name: this.#datapath?.handlers[h]?.name ?? setup.spec.label,
        module: setup.spec.label,
        idleTimeoutSeconds: setup.idleTimeoutSeconds,
        counters: handlerCounters[h] ?? {},
      })),
      counters: {
        framesSeen: counters?.framesSeen ?? 0,
        framesAccepted: counters?.framesAccepted ?? 0,
        framesDropped: counters?.dropped ?? {},
        arpReplies: counters?.arpReplies ?? 0,
        trackedEntries: counters?.trackedEntries ?? 0,
        kernelDrops: counters?.kernelDrops ?? 0,
        control: plane?.control ?? { received: {}, sent: {}, rejected: {} },
        nodeTableFull: plane?.nodeTableFull ?? 0,
        rounds: plane?.rounds ?? 0,
        resets: plane?.resets ?? 0,
        ...(plane?.lastFailover === undefined ? {} : { lastFailover: plane.lastFailover }),
        stallMaxMs: plane?.stallMaxMs ?? 0,
        stallTotalMs: plane?.stallTotalMs ?? 0,
        evictions: counters?.evictions ?? 0,
        deaths: plane?.deaths ?? {},
        actors: this.#datapath?.readActorCounters() ?? [],
      },
    };
  }

  #state(settled: boolean): InterfaceState {
    if (this.#stopped) return 'stopping';
    if (this.#failed !== undefined) return 'failed';
    if (this.#mode === 'stopped') return this.#suspended ? 'suspended' : 'stopped';
    if (this.#healthOut) return 'unhealthy';
    if (this.#mode === 'draining') return 'draining';
    return settled ? 'converged' : 'converging';
  }

  /** Leaves the cluster, stops the threads, removes the TAP and restores the sysctls. */
  async stop(): Promise<void> {
    const o = this.#opts;
    if (this.#stopped) return;
    this.#stopped = true;
    this.#drainGeneration++;
    this.events.emit('state', { state: 'stopping' });
    this.#health?.stop();
    if (this.#weightTimer) clearInterval(this.#weightTimer);
    if (this.#insecureTimer) clearInterval(this.#insecureTimer);
    this.#igmp?.close();
    const control = this.#control;
    if (control) {
      // LEAVE first: the others re-home our clients at once, while we still tear down.
      const stopped = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        control.on('message', (event: ControlEvent) => {
          if (event.type === 'stopped') {
            clearTimeout(timer);
            resolve();
          }
        });
        control.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.#postControl({ type: 'stop' });
      await stopped;
      await control.terminate();
    }
    await this.#datapath?.stop();
    if (this.#dataFd >= 0) port.close(this.#dataFd);
    if (this.#tapFd >= 0) port.close(this.#tapFd); // a non-persistent TAP disappears with its fd
    this.#dataFd = this.#tapFd = -1;
    const failures = this.#sysctl.release(o.name);
    for (const failure of failures) this.#log.error({ event: 'sysctl-restore-failed' }, failure);
    if (failures.length > 0) throw lnlbError('LNLB_ERR_SYS_SYSCTL', `could not restore ${failures.length} sysctl(s)`);
  }
}
