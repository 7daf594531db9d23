/**
 * One cluster on this host: the TAP carrying the VIP, the sysctls that let replies leave by
 * the normal route, the data socket and datapath threads, the control channel and the
 * membership that drives the published view.
 */

import { randomBytes } from 'node:crypto';
import { Membership, NodeStatus, type MembershipAction } from '../cluster/membership.js';
import { lnlbError } from '../errors.js';
import { actorForKey } from '../cluster/hash.js';
import { loadTrackerState, saveTrackerState } from '../handlers/tracker-state.js';
import { loadKeyFile } from '../net/auth.js';
import { dataFilter } from '../net/bpf.js';
import { TrackingTable } from '../shm/tracking-table.js';
import { clusterMacUnicast, formatMac, parseMac } from '../net/ethernet.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import * as port from '../port/native.js';
import { createPublishedView, VIEW_FLAG_CHANGE_PENDING } from '../shm/view.js';
import { Datapath } from '../workers/datapath.js';
import type { InterfaceStatusJson } from './admin-protocol.js';
import { ControlChannel } from './control-channel.js';
import type { Logger } from './logger.js';
import type { DaemonOptions } from './options.js';
import { SysctlGuard, type SysctlChange } from './sysctl.js';
import { WeightSource } from './weight-source.js';

/**
 * A measured weight (loadavg, freemem) is announced only when it moved by this fraction: every
 * new weight makes a round change the view, and such a round holds new flows for its length.
 */
const WEIGHT_HYSTERESIS = 0.05;

const VNET_HDR = true;

/** The tracking tables' clock: u32 seconds, the same on the actors' side. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * What `status` shows: every round briefly sets every member WAITING_HEARTBEAT, which is noise
 * to an operator; a member still waited for at the round timeout (ASKED_RETRASM) is news.
 */
function displayStatus(status: NodeStatus): string {
  return status === NodeStatus.WAITING_HEARTBEAT ? NodeStatus.OK : status;
}

export class ClusterInterface {
  readonly #opts: DaemonOptions;
  readonly #log: Logger;
  readonly #sysctl: SysctlGuard;
  readonly #vip: number;
  readonly #clusterMac: Uint8Array;
  #ownMac = new Uint8Array(6);
  #tapFd = -1;
  #dataFd = -1;
  #datapath: Datapath | undefined;
  #control: ControlChannel | undefined;
  #membership: Membership | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #view = createPublishedView();
  #stopped = false;
  #lastLoggedView = '';
  readonly weights: WeightSource;
  #announcedWeight = 0;
  #fatal: (message: string) => void;

  constructor(options: DaemonOptions, log: Logger, fatal: (message: string) => void) {
    this.#opts = options;
    this.#log = log;
    this.#fatal = fatal;
    this.#sysctl = new SysctlGuard(options.runDir);
    this.#vip = parseIPv4(options.vip);
    this.#clusterMac = clusterMacUnicast(this.#vip);
    this.weights = new WeightSource(options.name, options.weightMode);
  }

  async start(): Promise<void> {
    const o = this.#opts;
    const info = port.ifInfo(o.bind); // throws LNLB_ERR_DEV_NOT_FOUND naming the device
    this.#ownMac = info.mac;
    if (!info.up) this.#log.warn({ bind: o.bind }, `${o.bind} is down: nothing will arrive until it is up`);
    if (this.#sysctl.inherited.length > 0) {
      this.#log.warn({ keys: this.#sysctl.inherited }, 'a previous lnlbd did not restore these sysctls; restoring the originals it saved on exit');
    }
    // arp_ignore=1: the host does not answer ARP for the VIP on the real device (we do, with the
    // cluster MAC). arp_announce=2: the host's own ARP requests use the device's address, never
    // the VIP, or clients would learn "VIP is at my real MAC" and balancing silently breaks.
    this.#sysctl.apply([
      { key: `net.ipv4.conf.${o.bind}.arp_ignore`, value: '1', restore: true },
      { key: `net.ipv4.conf.${o.bind}.arp_announce`, value: '2', restore: true },
    ]);
    const tap = port.tapOpen(o.name, { vnetHdr: VNET_HDR });
    this.#tapFd = tap.fd;
    port.ifSetMac(o.name, this.#clusterMac);
    const tapSysctls: SysctlChange[] = [
      // Frames from clients arrive on the TAP but replies leave by the real device: the strict
      // reverse-path filter would drop them. The TAP vanishes with us, so nothing to restore.
      { key: `net.ipv4.conf.${o.name}.rp_filter`, value: '2', restore: false },
    ];
    this.#sysctl.apply(tapSysctls);
    port.ifSetIPv4(o.name, o.vip, 32);
    port.ifSetUp(o.name, true);

    this.#dataFd = port.packetOpen(o.bind, {
      protocol: port.ETH_P_ALL,
      promisc: true,
      filter: dataFilter(this.#clusterMac),
      vnetHdr: VNET_HDR,
      ignoreOutgoing: true,
    });
    // At low load each block is handed over after retireTimeoutMs, so the ring holds about
    // blockCount × 1 ms of a stalled reader: 128 blocks ride out a 128 ms pause. 256 KiB still
    // holds several 64 KiB GSO frames.
    port.ringOpen(this.#dataFd, { blockSize: 256 << 10, blockCount: 128, retireTimeoutMs: 1 });
    this.#datapath = await Datapath.start({
      dataFd: this.#dataFd,
      tapFd: this.#tapFd,
      vnetHdr: VNET_HDR,
      actors: o.workers,
      vip: this.#vip,
      clusterMac: this.#clusterMac,
      ownMac: this.#ownMac,
      election: o.election,
      onError: (message) => this.#fatal(message),
      onLinkDown: () => this.#log.warn({ event: 'link-down', bind: o.bind }, `${o.bind} went down: no frames until it is back`),
    });

    const membership = new Membership({
      selfMac: formatMac(this.#ownMac),
      heartbeatMs: o.heartbeatMs,
      deadAfterMs: o.deadAfterMs,
      incarnation: randomBytes(4).readUInt32BE(0),
      weight: this.#currentWeight(true),
    });
    this.#membership = membership;
    this.#publishView(); // generation 1: not accepting until the first round completes
    const key = o.keyFile === undefined ? undefined : loadKeyFile(o.keyFile); // no key: plain LNLB messages
    this.#control = new ControlChannel({
      dev: o.bind,
      ownMac: this.#ownMac,
      clusterMac: this.#clusterMac,
      clusterIp: this.#vip,
      mtu: info.mtu,
      ...(key === undefined ? {} : { key }),
      onMessage: (type, srcMac, msg) => {
        membership.receive(type, srcMac, performance.now(), msg);
        this.#drive();
      },
      onState: (srcMac, handlerIndex, data) => this.#loadState(srcMac, handlerIndex, data),
    });
    this.#control.open();
    if (key === undefined) {
      this.#log.warn(
        { event: 'control-plane', authenticated: false },
        'control plane NOT authenticated: any host on this LAN can send LEAVE or tracking state for this cluster; give every node the same --key-file',
      );
    } else {
      this.#log.info({ event: 'control-plane', authenticated: true }, 'control plane authenticated (HMAC-SHA256, replay window)');
    }
    membership.start(performance.now());
    this.#drive();
    this.#log.info({ vip: o.vip, bind: o.bind, clusterMac: formatMac(this.#clusterMac), workers: o.workers }, 'cluster interface up');
  }

  /** Runs due timers, carries out the membership's actions and sleeps until its next deadline. */
  #drive(): void {
    const membership = this.#membership;
    if (!membership || this.#stopped) return;
    membership.setWeight(this.#currentWeight(false));
    membership.tick(performance.now());
    this.#carryOut(membership.drainActions());
    if (this.#timer) clearTimeout(this.#timer);
    const delay = Math.max(1, Math.ceil(membership.nextDeadline() - performance.now()));
    this.#timer = setTimeout(() => this.#drive(), delay);
  }

  #carryOut(actions: MembershipAction[]): void {
    let viewChanged = false;
    for (const action of actions) {
      switch (action.kind) {
        case 'send':
          this.#control?.send(action.type, action.to, action.weight, action.incarnation, action.joined);
          break;
        case 'view-changed':
          viewChanged = true;
          break;
        case 'node-joined':
          this.#log.info({ event: 'node-joined', node: action.node.mac, id: action.node.id }, `node ${action.node.mac} joined`);
          break;
        case 'reset':
          this.#log.error(
            { event: 'reset', stalledMs: Math.round(action.stalledMs) },
            `this node was stalled for ${Math.round(action.stalledMs)} ms, longer than --dead-after-ms: the others have re-homed its clients; forgetting its state and rejoining`,
          );
          this.#datapath?.resetTracking();
          break;
        case 'round-completed':
          if (action.changedView) this.#log.debug({ event: 'round', durationMs: Math.round(action.durationMs) }, 'convergence round changed the view');
          break;
        case 'send-state':
          this.#sendState(action.to);
          break;
        case 'node-died':
          this.#log.warn(
            { event: 'node-died', node: action.node.mac, id: action.node.id, reason: action.reason, silentMs: Math.round(action.silentMs) },
            action.reason !== 'missed-heartbeats' ? `node ${action.node.mac} ${action.reason}` : `node ${action.node.mac} died: silent for ${Math.round(action.silentMs)} ms`,
          );
          break;
      }
    }
    // Publish before purging: the new view alone already re-homes the dead node's clients.
    if (viewChanged) this.#publishView();
    for (const action of actions) {
      if (action.kind === 'node-died') this.#datapath?.nodeDied(action.node.id);
    }
  }

  /** The tables of the actors' shards, attached from the main thread (for state transfer). */
  #tables(): TrackingTable[] {
    return (this.#datapath?.trackerMemories ?? []).map((memory) => new TrackingTable(memory));
  }

  /**
   * LNLB: the first member hands its tracking state to a newcomer (CONNTRACK). Saved from the
   * main thread while the actors keep running: a best-effort snapshot (an entry the actors
   * insert meanwhile may be missed; every node records every assignment, so the newcomer
   * learns it from the next frame of that flow anyway).
   */
  #sendState(to: string): void {
    const membership = this.#membership;
    const control = this.#control;
    if (!membership || !control) return;
    const started = performance.now();
    const macById = new Map(membership.nodes.map((n) => [n.id, parseMac(n.mac)]));
    const stats = { saved: 0, skippedUnknownOwner: 0 };
    const state = saveTrackerState(this.#tables(), nowSeconds(), (id) => macById.get(id), stats);
    control
      .sendState(to, 0, state)
      .then((fragments) => {
        this.#log.info(
          { event: 'state-sent', to, entries: stats.saved, bytes: state.length, fragments, ms: Math.round(performance.now() - started) },
          `sent ${stats.saved} tracked flows to newcomer ${to}`,
        );
      })
      .catch((err: Error) => this.#log.error({ event: 'state-send-failed', to }, err.message));
  }

  /**
   * A tracking state arrived. A newcomer loads it before its first round completes, while its
   * actors touch nothing (they accept nothing and skip housekeeping until then); afterwards
   * (a resync) it is refused here and counted.
   */
  #loadState(srcMac: string, handlerIndex: number, data: Uint8Array): void {
    const membership = this.#membership;
    if (!membership) return;
    if (membership.accepting || handlerIndex !== 0) {
      this.#log.warn({ event: 'state-ignored', from: srcMac, handlerIndex }, 'tracking state ignored: this node has joined already');
      return;
    }
    const tables = this.#tables();
    const idByMac = new Map(membership.nodes.map((n) => [n.mac, n.id]));
    try {
      const started = performance.now();
      const result = loadTrackerState(data, tables, {
        nowSeconds: nowSeconds(),
        ownerId: (mac) => idByMac.get(formatMac(mac)),
        shardOf: (keyLo, keyHi) => actorForKey(keyLo, keyHi, tables.length),
      });
      this.#log.info(
        { event: 'state-loaded', from: srcMac, entries: result.loaded, skipped: result.skippedUnknownOwner, clockShift: result.clockShiftSeconds, ms: Math.round(performance.now() - started) },
        `loaded ${result.loaded} tracked flows from ${srcMac}`,
      );
    } catch (err) {
      this.#log.error({ event: 'state-refused', from: srcMac }, (err as Error).message);
    }
    membership.stateReceived();
    this.#drive();
  }

  /** The weight to announce: re-read each heartbeat, changed only past the hysteresis (or when set by hand). */
  #currentWeight(force: boolean): number {
    let weight: number;
    try {
      weight = this.weights.read();
    } catch (err) {
      this.#log.warn({ event: 'weight-read-failed' }, (err as Error).message);
      return this.#announcedWeight || 1;
    }
    const last = this.#announcedWeight;
    if (force || last === 0 || this.weights.mode === 'manual' || Math.abs(weight - last) >= last * WEIGHT_HYSTERESIS) {
      if (last !== 0 && weight !== last) this.#log.info({ event: 'weight', from: last, to: weight, mode: this.weights.mode }, `weight ${last} → ${weight}`);
      this.#announcedWeight = weight;
    }
    return this.#announcedWeight;
  }

  /** `lnlbctl weight_mode`: where the weight comes from; takes effect at the next round. */
  setWeightMode(mode: string): { mode: string; weight: number } {
    this.weights.setMode(mode);
    const weight = this.#currentWeight(true);
    this.#membership?.setWeight(weight);
    return { mode: this.weights.mode, weight };
  }

  /** `lnlbctl set_weight`: manual mode only (LNLB's rule); takes effect at the next round. */
  setManualWeight(text: string): { weight: number } {
    const weight = this.weights.setManual(text);
    this.#announcedWeight = weight;
    this.#membership?.setWeight(weight);
    return { weight };
  }

  #publishView(): void {
    const membership = this.#membership;
    if (!membership || !this.#datapath) return;
    const view = this.#view;
    const nodes = membership.members;
    view.accepting = membership.accepting;
    view.flags = membership.changePending ? VIEW_FLAG_CHANGE_PENDING : 0;
    view.selfId = membership.self?.id ?? 0;
    view.nodeCount = nodes.length;
    nodes.forEach((node, i) => {
      view.ids[i] = node.id;
      view.weights[i] = node.weight;
      view.statuses[i] = 1;
      view.macs.set(node.mac.split(':').map((h) => Number.parseInt(h, 16)), i * 6);
    });
    this.#datapath.publishView(view);
    const members = nodes.map((n) => `${n.mac}/${n.weight}`).join(' ');
    if (membership.accepting && !membership.changePending && members !== this.#lastLoggedView) {
      this.#lastLoggedView = members;
      this.#log.info({ event: 'view', nodes: nodes.map((n) => n.mac) }, `view: ${nodes.length} node(s)`);
    }
  }

  status(): InterfaceStatusJson {
    const o = this.#opts;
    const nodes = this.#membership?.nodes ?? [];
    const counters = this.#datapath?.readCounters();
    return {
      name: o.name,
      vip: formatIPv4(this.#vip),
      bind: o.bind,
      clusterMac: formatMac(this.#clusterMac),
      converged: this.#membership?.accepting ?? false,
      state: this.#stopped ? 'stopping' : this.#membership?.accepting ? 'converged' : 'converging',
      weightMode: this.weights.mode,
      workers: o.workers,
      nodes: nodes.map((n) => ({ mac: n.mac, status: displayStatus(n.status), weight: n.weight, self: n.self })),
      counters: {
        framesSeen: counters?.framesSeen ?? 0,
        framesAccepted: counters?.framesAccepted ?? 0,
        framesDropped: counters?.dropped ?? {},
        arpReplies: counters?.arpReplies ?? 0,
        trackedEntries: counters?.trackedEntries ?? 0,
        kernelDrops: counters?.kernelDrops ?? 0,
        control: this.#control?.counters ?? { received: {}, sent: {}, rejected: {} },
        nodeTableFull: this.#membership?.tableFull ?? 0,
      },
    };
  }

  /** Leaves the cluster, stops the threads, removes the TAP and restores the sysctls. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#membership) {
      this.#membership.stop();
      this.#carryOut(this.#membership.drainActions()); // LEAVE: the others re-home our clients at once
    }
    this.#control?.close();
    await this.#datapath?.stop();
    if (this.#dataFd >= 0) port.close(this.#dataFd);
    if (this.#tapFd >= 0) port.close(this.#tapFd); // a non-persistent TAP disappears with its fd
    this.#dataFd = this.#tapFd = -1;
    const failures = this.#sysctl.restoreAll();
    for (const failure of failures) this.#log.error({ event: 'sysctl-restore-failed' }, failure);
    if (failures.length > 0) throw lnlbError('LNLB_ERR_SYS_SYSCTL', `could not restore ${failures.length} sysctl(s)`);
  }
}
