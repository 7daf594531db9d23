/**
 * One cluster on this host, the owner of its parts, each a module of its own (as the Linux
 * bonding driver is laid out):
 *
 *   cluster-auth.ts      the cluster key; the repeated warning without one
 *   cluster-device.ts    sysctls, the TAP with the VIP, the data socket and its ring, IGMP
 *   cluster-threads.ts   the datapath and control-plane threads, requests to the control plane
 *   participation.ts     stop, start, suspend, resume, drain, health out, failure; the state word
 *   weight-announcer.ts  the weight this node announces, measured each heartbeat
 *   tracked-flows.ts     conntrack, the drain's count, state saved for and loaded from others
 *   cluster-status.ts    `lnlbctl status`, assembled from all of the above
 *   cluster-events.ts    what the interface tells its owner (ClusterEvents)
 *
 * This class wires them together: it starts them in order, relays the control plane's events
 * to the part they concern, answers the admin socket, and tears everything down.
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { lnlbError, type LnlbError } from '../errors.js';
import { compileRules, type RuleSet } from '../cluster/port-rules.js';
import { deriveElectionKey } from '../cluster/hash.js';
import { formatMac } from '../net/ethernet.js';
import { clusterMacFor, parseClusterVip, tapMacFor, type ClusterVip } from '../net/vip.js';
import { defaultNodeName } from '../net/cluster-message.js';
import { watchdogLimitMs } from '../workers/watchdog.js';
import type { ControlEvent } from '../workers/messages.js';
import type { DrainResult, InterfaceState, InterfaceStatusJson, RawJson } from './admin-protocol.js';
import type { Logger } from './logger.js';
import type { InterfaceOptions } from './options.js';
import type { DrainOptions } from './drain.js';
import type { SysctlGuard } from './sysctl.js';
import type { WeightSource } from './weight-source.js';
import { createHealthMonitor, presenceView, type HealthMonitor } from './health-monitor.js';
import { warnInsecureNoAuth } from './cluster-auth.js';
import { handlerSetups, LNLBD_BINDING_NAMES, preflightInterface, type BindingNames, type InterfacePreflight } from './interface-preflight.js';
import { ClusterDevice, VNET_HDR } from './cluster-device.js';
import { membershipEvent, type ClusterEvents } from './cluster-events.js';
import { ClusterThreads } from './cluster-threads.js';
import { assembleStatus } from './cluster-status.js';
import { Participation, shownState } from './participation.js';
import { BucketHandoverWork } from './bucket-handovers.js';
import { TrackedFlows } from './tracked-flows.js';
import { WeightAnnouncer } from './weight-announcer.js';

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
  readonly #vip: ClusterVip;
  readonly #clusterMac: Uint8Array;
  readonly #tapMac: Uint8Array;
  readonly #rules: RuleSet;
  readonly #device: ClusterDevice;
  readonly #threads: ClusterThreads;
  readonly #participation: Participation;
  readonly #weight: WeightAnnouncer;
  readonly #flows: TrackedFlows;
  readonly #handovers: BucketHandoverWork;
  #ownMac: Uint8Array = new Uint8Array(6);
  /** --insecure-no-auth: repeats the error line every INSECURE_REPEAT_MS. */
  #insecureTimer: NodeJS.Timeout | undefined;
  /** --health-check: the monitor, which takes the node out (LEAVE) while unhealthy. */
  #health: HealthMonitor | undefined;

  /** `options` carries this interface's bind, vip and name; `sysctl` is the daemon's, shared. */
  constructor(options: InterfaceOptions, sysctl: SysctlGuard, log: Logger, fatal: (err: LnlbError) => void) {
    this.#opts = options;
    this.#log = log;
    this.#vip = parseClusterVip(options.vip);
    // The TAP always carries the unicast form: an interface cannot have a multicast address.
    this.#tapMac = tapMacFor(this.#vip);
    this.#clusterMac = clusterMacFor(this.#vip, options.macMode);
    this.#rules = compileRules(options.rule);
    this.#device = new ClusterDevice(options, this.#vip, sysctl, log, { tap: this.#tapMac, cluster: this.#clusterMac });
    this.#threads = new ClusterThreads(fatal);
    this.#weight = new WeightAnnouncer(options.name, options.weightMode, log);
    this.#flows = new TrackedFlows(options.name, this.#threads, handlerSetups(options), log);
    this.#handovers = new BucketHandoverWork(this.#threads, log);
    this.#participation = new Participation(
      options.name,
      {
        post: (message) => this.#threads.post(message),
        weight: (force) => this.#weight.current(force),
        emitState: (state) => this.events.emit('state', { state }),
        activeOwnedFlows: (idleSeconds) => this.#flows.activeOwned(formatMac(this.#ownMac), idleSeconds),
      },
      log,
    );
  }

  /** Where the weight comes from (--weight-mode). */
  get weights(): WeightSource {
    return this.#weight.source;
  }

  /** The datapath threads' kernel ids (none before start). */
  get datapathThreadIds(): readonly number[] {
    return this.#threads.datapath?.threadIds ?? [];
  }

  /**
   * `checked`: what preflightInterface found, if the owner ran it already (before the bonds,
   * lnlbd); else it runs first here. Either way a key file, a device, a VIP or a handler
   * refused leaves the host as it was: no TAP, no sysctl, no thread.
   */
  async start(checked?: InterfacePreflight, names: BindingNames = LNLBD_BINDING_NAMES): Promise<void> {
    const o = this.#opts;
    const { key, handlers, setups } = checked ?? (await preflightInterface(o, this.#vip, this.#log, names));
    const bound = this.#device.open();
    this.#ownMac = bound.ownMac;
    const multicast = o.macMode === 'multicast';
    const datapath = await this.#threads.startDatapath({
      dataFd: this.#device.dataFd,
      tapFd: this.#device.tapFd,
      vnetHdr: VNET_HDR,
      actors: o.workers,
      vip: this.#vip.v4,
      vip6: this.#vip.v6,
      vlan: o.vlan,
      egressFd: this.#device.egressFd,
      clusterMac: this.#clusterMac,
      ownMac: this.#ownMac,
      tapMac: multicast ? this.#tapMac : undefined,
      election: o.election,
      // Keyed with the cluster key: every node of the cluster hashes alike, a LAN host cannot aim.
      electionKey: key === undefined ? undefined : deriveElectionKey(key),
      tableEntries: o.tableEntries,
      ringBytes: o.actorRingKib * 1024,
      handlers: setups,
      checkedHandlers: handlers,
      rules: o.rule,
      interfaceName: o.name,
      onLinkDown: () => this.#log.warn({ event: 'link-down', bind: o.bind }, `${o.bind} went down: no frames until it is back`),
      onKernelFilterFailed: (message) =>
        this.#log.error({ event: 'kernel-filter-failed', bind: o.bind }, `the kernel refused the data socket's bucket filter (${message}): every frame passes to userspace instead, which decides as without a filter (logged once; lnlb_kernel_filter_failures_total counts them)`),
      onHandlerError: (r) =>
        this.#log.error({ event: 'handler-error', handler: r.handler, method: r.method }, `handler ${r.handler} threw in ${r.method}: ${r.message} (the frame was dropped and counted; logged once per cause)`),
      watchdogLimitMs: watchdogLimitMs(o.deadAfterMs),
      onStuck: (report) => this.#participation.fail(report),
    });
    await this.#threads.startControl(
      {
        role: 'control',
        dataFd: this.#device.dataFd,
        dev: o.bind,
        ownMac: this.#ownMac,
        clusterMac: this.#clusterMac,
        clusterIp: this.#vip.id,
        multicast,
        vlan: o.vlan,
        mtu: bound.mtu,
        ringBytes: o.controlRingKib * 1024,
        key: key === undefined ? undefined : new Uint8Array(key),
        heartbeatMs: o.heartbeatMs,
        clockToleranceMs: o.clockTolerance * 1000,
        deadAfterMs: o.deadAfterMs,
        incarnation: randomBytes(4).readUInt32BE(0),
        weight: this.#weight.current(true),
        nodeName: this.nodeName,
        address: this.#device.bindAddressU32(),
        view: datapath.viewMemory,
        actorRings: datapath.ringMemories,
        ...(datapath.drainingMemory === undefined ? {} : { draining: datapath.drainingMemory }),
        rules: { digest: this.#rules.digest, params: Array.from(this.#rules.params) },
        election: o.election,
      },
      (event) => this.#onControlEvent(event),
    );
    if (key === undefined) {
      this.#insecureTimer = warnInsecureNoAuth(this.#log);
    } else {
      this.#log.info({ event: 'control-plane', authenticated: true }, 'control plane authenticated (HMAC-SHA256, replay window)');
    }
    this.#weight.start(o.heartbeatMs, () => this.#participation.announcesWeight, (weight) => this.#threads.post({ type: 'weight', weight }));
    if (multicast) await this.#device.joinMulticastGroup();
    this.#startHealthChecks();
    this.#log.info({ vip: o.vip, bind: o.bind, clusterMac: formatMac(this.#clusterMac), macMode: o.macMode, rxRing: o.rxRing, workers: o.workers }, 'cluster interface up');
  }

  /** The name this node announces: --node-name, or the host name. */
  get nodeName(): string {
    return this.#opts.nodeName ?? defaultNodeName(hostname());
  }

  /** The control plane's events (its answers to requests went to the asker), each to the part it concerns. */
  #onControlEvent(event: ControlEvent): void {
    switch (event.type) {
      case 'log': {
        this.#log[event.level](event.fields, event.msg);
        const typed = membershipEvent(event.fields);
        // Untyped view: the name and payload were paired by membershipEvent's type.
        if (typed !== undefined) (this.events as EventEmitter).emit(typed.name, typed.payload);
        break;
      }
      case 'node-died':
        this.#threads.datapath?.nodeDied(event.id);
        break;
      case 'reset':
        this.#threads.datapath?.resetTracking();
        break;
      case 'save-state':
        this.#flows.sendTo(event.to, event.owners);
        break;
      case 'state':
        this.#flows.receive(event);
        break;
      case 'hand-over':
        this.#handovers.handOver(event);
        break;
      case 'handover':
        this.#handovers.receive(event);
        break;
      default:
        break;
    }
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
          const plane = await this.#threads.controlStatus();
          return plane === undefined ? undefined : presenceView(plane, formatMac(this.#ownMac));
        },
        setHealthOut: (out) => this.#participation.setHealthOut(out),
        operatorOut: () => this.#participation.operatorOut,
      },
      this.#log,
      (event) => this.events.emit('health', event),
    );
    this.#health?.start();
  }

  /** `lnlbctl stop`: LEAVE now; the others take every client, connections to this node break. */
  stopCluster(): { state: InterfaceState } {
    return this.#participation.stop();
  }

  /** `lnlbctl start`: join again after a stop; ends a drain (new flows come back). */
  startCluster(): { state: InterfaceState } {
    return this.#participation.start();
  }

  /** `lnlbctl suspend`: stop, and refuse `start` until `resume` (Windows NLB's suspend). */
  suspend(): { state: InterfaceState } {
    return this.#participation.suspend();
  }

  /** `lnlbctl resume`: `start` is allowed again; as in Windows NLB, the node stays stopped until it. */
  resume(): { state: InterfaceState } {
    return this.#participation.resume();
  }

  /** drainstop without waiting (`lnlbctl drainstop --no-wait`): a failure goes to the log, nobody awaits it. */
  drainInBackground(options: DrainOptions = {}): void {
    this.#participation.drainInBackground(options);
  }

  /** `lnlbctl drainstop`: no new flows, then a stop once this node's flows are quiet (participation.ts). */
  drainstop(options: DrainOptions = {}): Promise<DrainResult> {
    return this.#participation.drainstop(options);
  }

  /** `lnlbctl weight_mode`: where the weight comes from; takes effect at the next round. */
  setWeightMode(mode: string): { mode: string; weight: number } {
    const result = this.#weight.setMode(mode);
    if (this.#participation.announcesWeight) this.#threads.post({ type: 'weight', weight: result.weight });
    return result;
  }

  /** `lnlbctl set_weight`: a capacity, fixed mode only (LNLB's rule for its manual mode); takes effect at the next round. */
  setManualWeight(text: string): { weight: number } {
    const weight = this.#weight.setManual(text);
    if (this.#participation.announcesWeight) this.#threads.post({ type: 'weight', weight });
    return { weight };
  }

  /** `lnlbctl resync`: broadcasts this node's tracking state; every other node reloads from it. */
  resync(): Promise<{ entries: number; bytes: number; fragments: number; handedTo?: number }> {
    return this.#opts.election === 'bucket' ? this.#resyncBuckets() : this.#flows.resync();
  }

  /**
   * --election bucket: each node tracks only its own buckets' flows, so a resync does not
   * replace the others' tables with this one's: it hands every flow this node tracks in a
   * bucket it does not own to that bucket's owner again (cluster/bucket-handover.ts handAll).
   */
  async #resyncBuckets(): Promise<{ entries: number; bytes: number; fragments: number; handedTo: number }> {
    const answer = await this.#threads.resyncBuckets(10_000);
    if (answer === undefined) throw lnlbError('LNLB_ERR_WORKER_FAILED', 'the control plane did not answer the resync');
    // The plan's event reached this thread before the answer: its scan is the last one.
    const scan = answer.buckets === 0 ? { entries: 0, bytes: 0, targets: 0 } : await this.#handovers.lastScan;
    return { entries: scan.entries, bytes: scan.bytes, fragments: 0, handedTo: scan.targets };
  }

  /** `lnlbctl conntrack`: every tracked flow of every handler, at most `limit` (tracked-flows.ts). */
  conntrack(limit: number): Promise<RawJson> {
    return this.#flows.conntrack(limit, formatMac(this.#ownMac));
  }

  async status(): Promise<InterfaceStatusJson> {
    const o = this.#opts;
    const plane = await this.#threads.controlStatus();
    const datapath = this.#threads.datapath;
    const p = this.#participation;
    return assembleStatus({
      name: o.name,
      vip: this.#vip.text,
      vlan: o.vlan,
      bind: o.bind,
      clusterMac: this.#clusterMac,
      workers: o.workers,
      insecure: o.insecureNoAuth,
      weightMode: this.#weight.source.mode,
      state: shownState(p, plane),
      failed: p.failed,
      suspended: p.suspended,
      health: this.#health?.status(),
      rules: this.#rules,
      handlerSetups: handlerSetups(o),
      handlerNames: datapath?.handlers.map((h) => h.name) ?? [],
      plane,
      counters: datapath?.readCounters(),
      handlerCounters: datapath?.readHandlerCounters() ?? [],
      actorCounters: datapath?.readActorCounters() ?? [],
      drainingBuckets: datapath?.drainingBuckets() ?? 0,
    });
  }

  /**
   * For a process that is exiting without stop() (src/main/restore-at-exit.ts): the VIP off
   * the TAP and the threads told to stop, synchronously, so that the daemon may restore the
   * sysctls next and the process ends at once. Throws what failed, after trying both.
   */
  haltNow(): void {
    try {
      this.#device.removeVipNow();
    } finally {
      this.#threads.haltNow();
    }
  }

  /** Leaves the cluster, stops the threads, removes the TAP and restores the sysctls. */
  async stop(): Promise<void> {
    if (this.#participation.stopped) return;
    this.#participation.beginStop();
    this.#health?.stop();
    this.#weight.stop();
    if (this.#insecureTimer) clearInterval(this.#insecureTimer);
    this.#device.leaveMulticastGroup();
    await this.#threads.stop();
    await this.#flows.close();
    this.#device.close();
  }
}
