/**
 * The daemon: a set of cluster interfaces (LNLB's `addif`/`delif`), each with its own VIP,
 * TAP, datapath and control plane, sharing the run directory, the sysctl bookkeeping and the
 * admin socket.
 */

import { lnlbError, type LnlbError } from '../errors.js';
import { parseIPv4 } from '../net/ipv4.js';
import type { InterfaceStatusJson } from './admin-protocol.js';
import { BondManager } from './bond-manager.js';
import { ClusterInterface } from './cluster-interface.js';
import type { Logger } from './logger.js';
import type { DaemonOptions, InterfaceOptions } from './options.js';
import { SysctlGuard } from './sysctl.js';

export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #log: Logger;
  readonly #sysctl: SysctlGuard;
  readonly #interfaces = new Map<string, ClusterInterface>();
  /** Names being created: reserved, so two concurrent addif cannot pick the same one. */
  readonly #reserved = new Set<string>();
  /** An interface failed (a thread died): the error keeps the code the thread raised. */
  readonly #onFatal: (err: LnlbError) => void;
  /** The host's bonds (`lnlbctl bond ...`); a cluster interface may bind to one. */
  readonly bonds: BondManager;

  constructor(options: DaemonOptions, log: Logger, onFatal: (err: LnlbError) => void) {
    this.#opts = options;
    this.#log = log;
    this.#onFatal = onFatal;
    this.#sysctl = new SysctlGuard(options.runDir);
    if (this.#sysctl.inherited.length > 0) {
      log.warn({ keys: this.#sysctl.inherited }, 'a previous lnlbd did not restore these sysctls; they will be restored to the originals it saved');
    }
    this.bonds = new BondManager(this.#sysctl, log.child({ component: 'bond' }), options.runDir, (device) => this.#deviceUser(device));
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

  /** LNLB's addif: a new cluster interface for `vip` on `bind`; returns its name. */
  async addInterface(vip: string, bind: string, name: string = this.#opts.name, overrides: Partial<Pick<InterfaceOptions, 'rule' | 'handler'>> = {}): Promise<string> {
    const vipValue = parseIPv4(vip);
    for (const existing of this.#interfaces.values()) {
      if (parseIPv4(existing.vip) === vipValue) {
        throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${vip} is served already by ${existing.name}: one interface per cluster IP`);
      }
    }
    const chosen = this.#chooseName(name);
    if (chosen === bind) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `the cluster interface cannot take the bound device's name (${bind})`);
    this.#reserved.add(chosen);
    const options: InterfaceOptions = { ...this.#opts, ...overrides, vip, bind, name: chosen };
    const log = this.#log.child({ interface: chosen });
    const cluster = new ClusterInterface(options, this.#sysctl, log, (err) => {
      log.fatal({ event: 'interface-failed', code: err.code }, err.message);
      this.#onFatal(lnlbError(err.code, `${chosen}: ${err.message}`, { cause: err, ...(err.errno === undefined ? {} : { errno: err.errno }) }));
    });
    try {
      await cluster.start();
    } catch (err) {
      await cluster.stop().catch(() => undefined);
      throw err;
    } finally {
      this.#reserved.delete(chosen);
    }
    this.#interfaces.set(chosen, cluster);
    return chosen;
  }

  /** LNLB's delif: leaves the cluster (LEAVE), removes the TAP, restores what only it held. */
  async removeInterface(name: string): Promise<void> {
    const cluster = this.get(name);
    this.#interfaces.delete(name);
    await cluster.stop();
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
    const failures = this.#sysctl.restoreAll();
    for (const failure of failures) this.#log.error({ event: 'sysctl-restore-failed' }, failure);
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0 || failures.length > 0) {
      throw lnlbError('LNLB_ERR_SYS_SYSCTL', `stopping left ${failed.length} interface(s) and ${failures.length} sysctl(s) not cleanly restored`);
    }
  }

  /** `nlb%d`: the lowest number not in use; a plain name must be free. */
  #chooseName(pattern: string): string {
    const taken = (n: string): boolean => this.#interfaces.has(n) || this.#reserved.has(n);
    if (!pattern.includes('%d')) {
      if (taken(pattern)) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${pattern} exists already`);
      return pattern;
    }
    for (let i = 0; i < 1000; i++) {
      const name = pattern.replace('%d', String(i));
      if (!taken(name)) return name;
    }
    throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `no free name for ${pattern}`);
  }
}
