/**
 * The daemon: a set of cluster interfaces (LNLB's `addif`/`delif`), each with its own VIP,
 * TAP, datapath and control plane, sharing the run directory, the sysctl bookkeeping and the
 * admin socket.
 *
 * Other daemons may run on the same host (each with its own run directory): every device this
 * one uses (bound devices, its TAPs, bonds and their slaves) is claimed host-wide
 * (src/main/host-state.ts), and names such as `nlb%d` are chosen against the kernel's devices.
 */

import { EventEmitter } from 'node:events';
import { isLnlbError, lnlbError, type LnlbError } from '../errors.js';
import { parseClusterVip, sharedAddress } from '../net/vip.js';
import type { InterfaceStatusJson } from './admin-protocol.js';
import { BondManager } from './bond-manager.js';
import { ClusterInterface } from './cluster-interface.js';
import type { Logger } from './logger.js';
import type { DaemonOptions, InterfaceOptions, InterfaceOverrides } from './options.js';
import * as port from '../port/native.js';
import { HostState } from './host-state.js';
import { SysctlGuard } from './sysctl.js';
import { checkBinding, LNLBD_BINDING_NAMES, preflightInterface, type BindingNames, type InterfacePreflight } from './interface-preflight.js';

export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #log: Logger;
  readonly #sysctl: SysctlGuard;
  readonly #host: HostState;
  readonly #interfaces = new Map<string, ClusterInterface>();
  /** Names being created: reserved, so two concurrent addif cannot pick the same one. */
  readonly #reserved = new Set<string>();
  /** An interface failed (a thread died): the error keeps the code the thread raised. */
  readonly #onFatal: (err: LnlbError) => void;
  /** The host's bonds (`lnlbctl bond ...`); a cluster interface may bind to one. */
  readonly bonds: BondManager;
  /** `added`: an interface is up (at start or by addif); its owner may listen to its events. */
  readonly events = new EventEmitter<{ added: [ClusterInterface] }>();

  constructor(options: DaemonOptions, log: Logger, onFatal: (err: LnlbError) => void) {
    this.#opts = options;
    this.#log = log;
    this.#onFatal = onFatal;
    this.#host = new HostState({ runDir: options.runDir });
    this.#sysctl = new SysctlGuard(this.#host);
    const recovered = this.#sysctl.recover(options.runDir);
    if (recovered.restored.length > 0) {
      log.warn({ event: 'sysctl-recovered', keys: recovered.restored }, 'an lnlbd that died did not restore these sysctls: they are back to the originals it saved');
    }
    if (recovered.leftAlone.length > 0) {
      log.warn({ event: 'sysctl-recovered', keys: recovered.leftAlone }, 'an lnlbd that died left these sysctls, changed since by someone else: left as they are');
    }
    for (const why of recovered.ignored) log.warn({ event: 'sysctl-state-ignored' }, `ignored saved sysctl state: ${why}; nothing of it was written`);
    this.bonds = new BondManager(this.#sysctl, this.#host, log.child({ component: 'bond' }), options.runDir, (device) => this.#deviceUser(device));
  }

  /** What in this daemon uses a device, other than a bond: a cluster interface (its TAP or its bound device). */
  #deviceUser(device: string): string | undefined {
    for (const c of this.#interfaces.values()) {
      if (c.name === device) return `cluster interface ${c.name}`;
      if (c.bind === device) return `cluster interface ${c.name} (bound to it)`;
    }
    if (this.#reserved.has(device)) return 'a cluster interface being created';
    return undefined;
  }

  get interfaces(): ClusterInterface[] {
    return [...this.#interfaces.values()];
  }

  /** Every datapath thread's kernel id: each interface's dispatcher and actors, each bond's thread. */
  datapathThreadIds(): number[] {
    return [...this.interfaces.flatMap((c) => c.datapathThreadIds), ...this.bonds.threadIds()];
  }

  /**
   * LNLB's addif: a new cluster interface for `vip` on `bind`; returns its name. Everything
   * that can be refused without touching the host is checked first (interface-preflight.ts:
   * the key file, the device, the VIP, the handlers; refusals name the arguments as `names`
   * says), unless `checked` brings what lnlbd found before it created its bonds (the device
   * and the VIP are looked at again: a bond exists only now).
   */
  async addInterface(vip: string, bind: string, name: string = this.#opts.name, overrides: InterfaceOverrides = {}, start: { names?: BindingNames; checked?: InterfacePreflight } = {}): Promise<string> {
    const vipValue = parseClusterVip(vip);
    for (const existing of this.#interfaces.values()) {
      const shared = sharedAddress(parseClusterVip(existing.vip), vipValue);
      if (shared !== undefined) {
        throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${shared} is served already by ${existing.name}: one interface per cluster IP`);
      }
    }
    if (name === bind) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `the cluster interface cannot take the bound device's name (${bind})`);
    const requested: InterfaceOptions = { ...this.#opts, ...overrides, vip, bind, name };
    if (requested.vlan !== 0 && requested.macMode === 'multicast') {
      throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', '--vlan: a cluster on a trunk VLAN runs in unicast MAC mode: its host sends through the cluster interface, whose MAC must be the cluster MAC');
    }
    const names = start.names ?? LNLBD_BINDING_NAMES;
    let checked = start.checked;
    if (checked === undefined) checked = await preflightInterface(requested, vipValue, this.#log, names);
    else checkBinding(vipValue, bind, names);
    const chosen = this.#chooseName(name); // claimed host-wide
    try {
      this.#host.claimDevice(bind, bindOwner(chosen)); // refused when another lnlbd on this host uses it
    } catch (err) {
      this.#host.releaseDevice(chosen, 'cluster interface');
      throw err;
    }
    this.#reserved.add(chosen);
    const options: InterfaceOptions = { ...requested, name: chosen };
    const log = this.#log.child({ interface: chosen });
    const cluster = new ClusterInterface(options, this.#sysctl, log, (err) => {
      log.fatal({ event: 'interface-failed', code: err.code }, err.message);
      this.#onFatal(lnlbError(err.code, `${chosen}: ${err.message}`, { cause: err, ...(err.errno === undefined ? {} : { errno: err.errno }) }));
    });
    try {
      await cluster.start(checked, names);
    } catch (err) {
      await cluster.stop().catch(() => undefined);
      this.#releaseDevices(chosen, bind);
      throw err;
    } finally {
      this.#reserved.delete(chosen);
    }
    this.#interfaces.set(chosen, cluster);
    this.events.emit('added', cluster);
    return chosen;
  }

  /** LNLB's delif: leaves the cluster (LEAVE), removes the TAP, restores what only it held. */
  async removeInterface(name: string): Promise<void> {
    const cluster = this.get(name);
    this.#interfaces.delete(name);
    try {
      await cluster.stop();
    } finally {
      this.#releaseDevices(cluster.name, cluster.bind);
    }
  }

  /** The TAP `name` and its bound device are no longer this interface's. */
  #releaseDevices(name: string, bind: string): void {
    this.#host.releaseDevice(name, 'cluster interface');
    this.#host.releaseDevice(bind, bindOwner(name));
  }

  get(name: unknown): ClusterInterface {
    const cluster = typeof name === 'string' ? this.#interfaces.get(name) : undefined;
    if (!cluster) {
      const known = [...this.#interfaces.keys()];
      throw lnlbError(
        'LNLB_ERR_CTL_NO_INTERFACE',
        `no cluster interface ${JSON.stringify(name)}: ${known.length === 0 ? 'this daemon serves none (add one with lnlbctl addif <vip> <dev>)' : `this daemon serves ${known.join(', ')}`}`,
      );
    }
    return cluster;
  }

  async status(): Promise<InterfaceStatusJson[]> {
    return Promise.all(this.interfaces.map((c) => c.status()));
  }

  /** Stops every interface (each sends LEAVE), then restores any sysctl left. */
  async stop(): Promise<void> {
    const all = this.interfaces;
    this.#interfaces.clear();
    const results = await Promise.allSettled(all.map((c) => c.stop()));
    // Bonds after the interfaces: a cluster interface may be bound to one.
    results.push(...(await Promise.allSettled([this.bonds.stopAll()])));
    for (const c of all) this.#releaseDevices(c.name, c.bind);
    const failures = this.#sysctl.restoreAll();
    this.#host.close();
    for (const failure of failures) this.#log.error({ event: 'sysctl-restore-failed' }, failure);
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0 || failures.length > 0) {
      throw lnlbError('LNLB_ERR_SYS_SYSCTL', `stopping left ${failed.length} interface(s) and ${failures.length} sysctl(s) not cleanly restored`);
    }
  }

  /**
   * The part of stop() that can be done synchronously, for a process that ends without stop()
   * (an embedded node's host exits: src/main/restore-at-exit.ts), in this order: each
   * interface's VIP off its TAP and its threads told to stop (not waited for: the process is
   * ending, and the kernel removes the TAPs with it), the bond slaves' MACs and states, every
   * sysctl this daemon holds (the last holder on the host writes the original), its device
   * claims. No LEAVE is waited for. Returns what could not be restored; throws nothing.
   */
  restoreHostNow(): string[] {
    const failures: string[] = [];
    const attempt = (what: () => string[]): void => {
      try {
        failures.push(...what());
      } catch (err) {
        failures.push((err as Error).message);
      }
    };
    // The VIP first: arp_ignore restored while it is still on the TAP would let the host answer ARP for it.
    for (const c of this.interfaces) attempt(() => (c.haltNow(), []));
    attempt(() => this.bonds.restoreSlavesNow());
    attempt(() => this.#sysctl.restoreAll());
    attempt(() => (this.#host.close(), []));
    return failures;
  }

  /**
   * `nlb%d`: the lowest number free in this daemon, in the kernel (this network namespace)
   * and among the names other daemons on the host have claimed; a plain name must be free the
   * same way. The name returned is claimed host-wide ('cluster interface').
   */
  #chooseName(pattern: string): string {
    const result = chooseDeviceName(pattern, (n) => this.#interfaces.has(n) || this.#reserved.has(n) || this.bonds.has(n) || port.deviceExists(n), (n) => {
      try {
        this.#host.claimDevice(n, 'cluster interface');
        return true;
      } catch (err) {
        if (isLnlbError(err) && err.code === 'LNLB_ERR_DEV_IN_USE') return false; // another daemon is creating it right now
        throw err;
      }
    });
    if (result === undefined) {
      throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', pattern.includes('%d') ? `no free name for ${pattern} (${DEVICE_NAME_TRIES} tried)` : `a device named ${pattern} exists already (ip link show ${pattern}): pick another --name`);
    }
    return result;
  }
}

/** What holds a bound device in the host-wide claims: one owner per cluster interface (several may bind one device). */
function bindOwner(clusterName: string): string {
  return `cluster interface ${clusterName} (bound to it)`;
}

/** How many numbers `%d` tries. */
export const DEVICE_NAME_TRIES = 1000;

/**
 * The first name of `pattern` (`nlb%d`: nlb0, nlb1, ...; a plain name: only itself) that is not
 * `taken` and that `claim` gets. Pure but for what the two callbacks do.
 */
export function chooseDeviceName(pattern: string, taken: (name: string) => boolean, claim: (name: string) => boolean): string | undefined {
  const tries = pattern.includes('%d') ? DEVICE_NAME_TRIES : 1;
  for (let i = 0; i < tries; i++) {
    const name = pattern.replace('%d', String(i));
    if (!taken(name) && claim(name)) return name;
  }
  return undefined;
}

