/**
 * One cluster on this host: the TAP carrying the VIP, the sysctls that let replies leave by
 * the normal route, the data socket and datapath threads, the control channel and the
 * membership that drives the published view.
 */

import { randomBytes } from 'node:crypto';
import { Membership, type MembershipAction } from '../cluster/membership.js';
import { lnlbError } from '../errors.js';
import { dataFilter } from '../net/bpf.js';
import { clusterMacUnicast, formatMac } from '../net/ethernet.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import * as port from '../port/native.js';
import { createPublishedView } from '../shm/view.js';
import { Datapath } from '../workers/datapath.js';
import type { InterfaceStatusJson } from './admin-protocol.js';
import { ControlChannel } from './control-channel.js';
import type { Logger } from './logger.js';
import type { DaemonOptions } from './options.js';
import { SysctlGuard, type SysctlChange } from './sysctl.js';

const VNET_HDR = true;

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
  #fatal: (message: string) => void;

  constructor(options: DaemonOptions, log: Logger, fatal: (message: string) => void) {
    this.#opts = options;
    this.#log = log;
    this.#fatal = fatal;
    this.#sysctl = new SysctlGuard(options.runDir);
    this.#vip = parseIPv4(options.vip);
    this.#clusterMac = clusterMacUnicast(this.#vip);
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
    });
    this.#membership = membership;
    this.#publishView(); // generation 1: not accepting until the first round completes
    this.#control = new ControlChannel({
      dev: o.bind,
      ownMac: this.#ownMac,
      clusterMac: this.#clusterMac,
      clusterIp: this.#vip,
      onMessage: (type, srcMac, weight, incarnation) => {
        membership.receive(type, srcMac, weight, performance.now(), incarnation);
        this.#drive();
      },
    });
    this.#control.open();
    membership.start(performance.now());
    this.#drive();
    this.#log.info({ vip: o.vip, bind: o.bind, clusterMac: formatMac(this.#clusterMac), workers: o.workers }, 'cluster interface up');
  }

  /** Runs due timers, carries out the membership's actions and sleeps until its next deadline. */
  #drive(): void {
    const membership = this.#membership;
    if (!membership || this.#stopped) return;
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
          this.#control?.send(action.type, action.to, action.weight, action.incarnation);
          break;
        case 'view-changed':
          viewChanged = true;
          break;
        case 'node-joined':
          this.#log.info({ event: 'node-joined', node: action.node.mac, id: action.node.id }, `node ${action.node.mac} joined`);
          break;
        case 'node-died':
          this.#log.warn(
            { event: 'node-died', node: action.node.mac, id: action.node.id, reason: action.reason, silentMs: Math.round(action.silentMs) },
            action.reason !== 'heartbeat-timeout' ? `node ${action.node.mac} ${action.reason}` : `node ${action.node.mac} died: silent for ${Math.round(action.silentMs)} ms`,
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

  #publishView(): void {
    const membership = this.#membership;
    if (!membership || !this.#datapath) return;
    const view = this.#view;
    const nodes = membership.nodes;
    view.accepting = membership.accepting;
    view.selfId = membership.self?.id ?? 0;
    view.nodeCount = nodes.length;
    nodes.forEach((node, i) => {
      view.ids[i] = node.id;
      view.weights[i] = node.weight;
      view.statuses[i] = 1;
      view.macs.set(node.mac.split(':').map((h) => Number.parseInt(h, 16)), i * 6);
    });
    this.#datapath.publishView(view);
    if (membership.accepting) {
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
      workers: o.workers,
      nodes: nodes.map((n) => ({ mac: n.mac, status: n.status, weight: n.weight, self: n.self })),
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
