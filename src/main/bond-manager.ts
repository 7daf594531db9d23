/**
 * The daemon's bonds: `lnlbctl bond create/enslave/release/show/destroy`. Each bond is a TAP
 * facing the host stack and a worker thread that moves frames between it and the slaves'
 * AF_PACKET sockets (src/workers/bond-thread.ts). This side does the device bookkeeping the
 * driver does in bond_enslave/__bond_release_one: saves each slave's MAC, state and sysctls,
 * and gives them back on release, destroy and daemon stop.
 *
 * A slave's own IP stack must not see the bond's traffic (the driver's rx_handler takes every
 * frame before it): with the bond's MAC on it, the slave would otherwise answer ARP for the
 * bond's address and take its packets. lnlb turns that off with sysctls on the slave, which
 * need no extra tool and are restored like every other sysctl: no IPv6 (disable_ipv6), no ARP
 * answers (arp_ignore 8) and a strict reverse-path filter (rp_filter 1: the route back to any
 * sender is the bond, never the slave, so its packets are dropped on the slave).
 */

import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { formatBondOptions, resolveBondOptions, type BondOptions } from '../bond/options.js';
import { formatBondStatus, type BondStatusView } from '../bond/status-file.js';
import { lnlbError, reviveError, serializeError } from '../errors.js';
import { formatMac, isMulticastMac, macEquals, macToNumber, parseMac } from '../net/ethernet.js';
import * as port from '../port/native.js';
import type { BondEvent } from '../bond/bond-events.js';
import type { BondApi, BondThreadData, BondToMain } from '../workers/bond-thread.js';
import { connect, lateError, withDeadline, type Remote } from '../workers/thread-rpc.js';
import { readLinkSpeed } from '../bond/link-speed.js';
import type { Logger } from './logger.js';
import { isDeviceName } from './device-name.js';
import type { HostState } from './host-state.js';
import { parseStateObject, readStateFile, writeStateFile } from './state-file.js';
import type { SysctlGuard } from './sysctl.js';
import { ipv4Sysctl, ipv6Sysctl, sysctlPath } from './sysctl-keys.js';
import { THREAD_START_LIMIT_MS, workerExecArgv } from '../workers/exec-argv.js';

/** Per-slave counters and state beyond the status file's fields. */
export interface BondSlaveJson {
  name: string;
  /** Carries traffic now: the active slave, a distributing 802.3ad port, any usable slave in rr/xor/broadcast/tlb/alb. */
  role: 'active' | 'backup';
  linkState: 'UP' | 'FAIL' | 'DOWN' | 'BACK';
  mac: string;
  permanentMac: string;
  txFrames: number;
  rxFrames: number;
  /** 802.3ad: the port's actor and partner state bits, as the driver shows them. */
  actorState?: number;
  partnerState?: number;
}

export interface BondJson {
  name: string;
  mac: string;
  /** The options as `key=value` words (formatBondOptions). */
  options: string[];
  status: BondStatusView;
  slaves: BondSlaveJson[];
  counters: Record<string, number>;
}

export interface BondCreateResult {
  name: string;
  options: string[];
  /** Options accepted but without effect, one sentence each. */
  warnings: string[];
}

/** Devices changed by a bond, saved to the run directory so that a daemon killed with -9 is undone by the next one. */
export const SLAVES_FILE = 'bond-slaves.json';
/** More slaves than a daemon ever has; a larger file is not lnlb's. */
const MAX_SAVED_SLAVES = 1024;

export interface SavedSlave {
  bond: string;
  /** The slave's own MAC, to give back. */
  mac: string;
  /** The MAC lnlb put on it (the bond's, or a random local one): it is restored only while it still carries this. */
  set: string;
  up: boolean;
}

/** A unicast, non-zero MAC in text form, as lnlb saves them. */
function isUnicastMacText(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const mac = parseMac(value);
    return !isMulticastMac(mac) && macToNumber(mac) !== 0;
  } catch {
    return false;
  }
}

/**
 * The entries of a saved bond-slaves.json that have the shape lnlb writes (valid device and
 * bond names, unicast MACs, a boolean state), and one line per entry refused. Pure.
 */
export function parseSavedSlaves(text: string): { slaves: Map<string, SavedSlave>; ignored: string[] } {
  const slaves = new Map<string, SavedSlave>();
  const ignored: string[] = [];
  const parsed = parseStateObject(text);
  if ('why' in parsed) return { slaves, ignored: [parsed.why] };
  for (const [dev, raw] of Object.entries(parsed.object)) {
    if (slaves.size >= MAX_SAVED_SLAVES) {
      ignored.push(`more than ${MAX_SAVED_SLAVES} entries: the rest`);
      break;
    }
    const e = raw as Partial<Record<keyof SavedSlave, unknown>> | null;
    if (!isDeviceName(dev)) ignored.push(`${JSON.stringify(dev).slice(0, 40)}: not a device name`);
    else if (typeof e !== 'object' || e === null || !isDeviceName(e.bond) || typeof e.up !== 'boolean') ignored.push(`${dev}: not an entry lnlb writes`);
    else if (!isUnicastMacText(e.mac) || !isUnicastMacText(e.set)) ignored.push(`${dev}: not a unicast MAC`);
    else slaves.set(dev, { bond: e.bond, mac: e.mac, set: e.set, up: e.up });
  }
  return { slaves, ignored };
}

interface SlaveRecord extends SavedSlave {
  name: string;
  fd: number;
}

const VERSION = ((): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return `lnlb ${pkg.version ?? 'unknown'}`;
  } catch {
    return 'lnlb';
  }
})();

/** Where each bond's status file is, under the run directory, and how often it is checked. */
export const STATUS_DIR = 'bonding';
const STATUS_FILE_MS = 1000;

class Bond {
  readonly name: string;
  readonly options: BondOptions;
  readonly tapFd: number;
  readonly worker: Worker;
  /** The bond thread's kernel id (lnlbd sets its priority). */
  readonly threadId: number;
  readonly slaves = new Map<string, SlaveRecord>();
  /** Our end of the thread's request port, and its API there (thread-rpc.ts). */
  readonly #requests: MessagePort;
  readonly #api: Remote<BondApi>;
  #failed: string | undefined;

  constructor(name: string, options: BondOptions, tapFd: number, worker: Worker, requests: MessagePort, log: Logger, threadId: number) {
    this.name = name;
    this.threadId = threadId;
    this.options = options;
    this.tapFd = tapFd;
    this.worker = worker;
    this.#requests = requests;
    this.#api = connect<BondApi>(requests);
    worker.on('message', (msg: BondToMain) => {
      if (msg.type === 'event') {
        log.info({ event: `bond-${msg.kind}`, bond: name, ...msg.fields }, describeEvent(name, msg));
      } else if (msg.type === 'error') {
        const err = reviveError(msg.error, 'LNLB_ERR_WORKER_FAILED');
        this.#failed = err.message;
        log.error({ event: 'bond-failed', bond: name, code: err.code }, err.message);
      }
    });
    worker.on('error', (thrown) => {
      const err = reviveError(serializeError(thrown, 'bond thread'), 'LNLB_ERR_WORKER_FAILED');
      this.#failed = err.message;
      log.error({ event: 'bond-failed', bond: name, code: err.code }, err.message);
      // Nothing will answer now: the calls waiting end at their deadlines, and none starts.
      this.#requests.close();
    });
  }

  /**
   * A request to the bond thread (BondApi): its typed answer, or the LnlbError it threw with its
   * code (lnlbctl --json shows LNLB_ERR_BOND_SLAVE, not a bare text).
   */
  request<T>(what: string, call: (api: Remote<BondApi>) => Promise<T>, timeoutMs = 5000): Promise<T> {
    if (this.#failed !== undefined) return Promise.reject(lnlbError('LNLB_ERR_WORKER_FAILED', `bond ${this.name} thread failed: ${this.#failed}: destroy the bond (lnlbctl bond destroy ${this.name}) and create it again`));
    return withDeadline(call(this.#api), timeoutMs, lateError('LNLB_ERR_WORKER_FAILED', `bond ${this.name} thread (${what})`, timeoutMs));
  }

  /** After the thread has stopped. */
  close(): void {
    this.#requests.close();
  }
}

function describeEvent(bond: string, e: BondEvent): string {
  switch (e.kind) {
    case 'link':
      return `${bond}: link status of ${e.fields.slave}: ${e.fields.state} (${e.fields.change})`;
    case 'active':
      return e.fields.slave === undefined ? `${bond}: now running without any active interface!` : `${bond}: making interface ${e.fields.slave} the new active one`;
    case 'enslaved':
      return `${bond}: enslaved ${e.fields.slave} (link ${e.fields.link})`;
    case 'released':
      return `${bond}: released ${e.fields.slave}`;
    case 'lacp':
      return `${bond}: 802.3ad ${e.fields.port === undefined ? '' : `port ${e.fields.port} `}${e.fields.change}`;
    case 'mac-failed':
      return `${bond}: could not set the MAC of ${e.fields.slave}: ${e.fields.error}`;
    case 'promisc-failed':
      return `${bond}: could not make ${e.fields.slave} promiscuous: ${e.fields.error}`;
  }
}

export class BondManager {
  readonly #log: Logger;
  readonly #sysctl: SysctlGuard;
  readonly #runDir: string;
  /** Each bond's status file (#startStatusFile). */
  readonly #statusFiles = new Map<string, { timer: NodeJS.Timeout; refresh: () => Promise<void>; path: string }>();
  readonly #host: HostState;
  readonly #bonds = new Map<string, Bond>();
  readonly #creating = new Set<string>();
  /** Names the daemon uses for other things (cluster TAPs, their bound devices) → what holds them. */
  readonly #deviceUser: (name: string) => string | undefined;

  constructor(sysctl: SysctlGuard, host: HostState, log: Logger, runDir: string, deviceUser: (name: string) => string | undefined = () => undefined) {
    this.#sysctl = sysctl;
    this.#host = host;
    this.#log = log;
    this.#runDir = runDir;
    this.#deviceUser = deviceUser;
    this.#restoreCrashedSlaves();
  }

  /** The bond threads' kernel ids. */
  threadIds(): number[] {
    return [...this.#bonds.values()].map((b) => b.threadId);
  }

  names(): string[] {
    return [...this.#bonds.keys()];
  }

  has(name: string): boolean {
    return this.#bonds.has(name);
  }

  /** The bond holding `device` as a slave, if any. */
  bondOf(device: string): string | undefined {
    for (const bond of this.#bonds.values()) if (bond.slaves.has(device)) return bond.name;
    return undefined;
  }

  /** Creates the TAP `name`, up, with no slaves, and its thread. */
  async create(name: string, optionWords: readonly string[]): Promise<BondCreateResult> {
    if (this.#bonds.has(name) || this.#creating.has(name)) throw lnlbError('LNLB_ERR_CTL_NO_BOND', `bond ${name} exists already`);
    const { options, warnings } = resolveBondOptions(optionWords);
    const user = this.#deviceUser(name);
    if (user !== undefined) throw lnlbError('LNLB_ERR_CTL_NO_BOND', `${name} is in use by ${user}: pick another name for the bond`);
    if (port.deviceExists(name)) throw lnlbError('LNLB_ERR_CTL_NO_BOND', `a device named ${name} exists already: pick another name for the bond`);
    this.#host.claimDevice(name, `bond ${name}`); // another lnlbd on this host may be creating it
    this.#creating.add(name);
    let tapFd = -1;
    try {
      const tap = port.tapOpen(name, { vnetHdr: true });
      tapFd = tap.fd;
      port.ifSetUp(name, true);
      const { port1, port2 } = new MessageChannel();
      const data: BondThreadData = { name, options, tapFd, mac: port.ifInfo(name).mac, vnetHdrLen: port.VNET_HDR_LEN, version: VERSION, requests: port2 };
      const worker = new Worker(new URL('../workers/bond-thread.js', import.meta.url), { execArgv: workerExecArgv(), workerData: data, transferList: [port2], name: `lnlb-bond-${name}` });
      const tid = await waitReady(worker).catch((err: unknown) => {
        port1.close();
        throw err;
      });
      const bond = new Bond(name, options, tapFd, worker, port1, this.#log, tid);
      this.#bonds.set(name, bond);
      this.#startStatusFile(bond);
      this.#log.info({ event: 'bond-created', bond: name, options: optionWords }, `${name}: created (${options.mode})`);
      for (const w of warnings) this.#log.warn({ event: 'bond-option-warning', bond: name }, w.message);
      return { name, options: formatBondOptions(options), warnings: warnings.map((w) => w.message) };
    } catch (err) {
      if (tapFd >= 0) port.close(tapFd);
      this.#host.releaseDevice(name, `bond ${name}`);
      throw err;
    } finally {
      this.#creating.delete(name);
    }
  }

  /** Enslaves each device in order; on the first refusal nothing of this call stays enslaved. */
  async enslave(bondName: string, devices: readonly string[]): Promise<{ bond: string; enslaved: string[] }> {
    const bond = this.#get(bondName);
    const seen = new Set<string>();
    for (const dev of devices) {
      if (seen.has(dev)) throw lnlbError('LNLB_ERR_BOND_SLAVE', `${dev} is named twice`);
      seen.add(dev);
      this.#checkEnslavable(bond, dev);
    }
    const done: string[] = [];
    try {
      for (const dev of devices) {
        await this.#enslaveOne(bond, dev);
        done.push(dev);
      }
    } catch (err) {
      for (const dev of done.reverse()) await this.#releaseOne(bond, dev).catch(() => undefined);
      throw err;
    }
    await this.#statusFiles.get(bond.name)?.refresh();
    return { bond: bond.name, enslaved: done };
  }

  #checkEnslavable(bond: Bond, dev: string): void {
    if (dev === bond.name) throw lnlbError('LNLB_ERR_BOND_SLAVE', `${dev} is the bond itself: a bond cannot enslave itself`);
    if (this.#bonds.has(dev)) throw lnlbError('LNLB_ERR_BOND_SLAVE', `${dev} is a bond: lnlb does not stack bonds`);
    const holder = this.bondOf(dev);
    if (holder !== undefined) throw lnlbError('LNLB_ERR_BOND_SLAVE', holder === bond.name ? `${dev} is already a slave of ${holder}` : `${dev} is already a slave of ${holder}: release it there first`);
    const user = this.#deviceUser(dev);
    if (user !== undefined) throw lnlbError('LNLB_ERR_BOND_SLAVE', `${dev} is in use by ${user}: a device the daemon uses cannot be a slave`);
    if (!port.deviceExists(dev)) throw lnlbError('LNLB_ERR_BOND_SLAVE', `no such device ${dev}`);
  }

  async #enslaveOne(bond: Bond, dev: string): Promise<void> {
    const info = port.ifInfo(dev);
    const owner = `${bond.name}/${dev}`;
    const record: SlaveRecord = { name: dev, bond: bond.name, mac: formatMac(info.mac), set: formatMac(info.mac), up: info.up, fd: -1 };
    const status = await bond.request('status', (api) => api.status());
    const first = status.slaves.length === 0;
    const bondMac: Uint8Array = first ? info.mac : parseMac(status.mac);
    const takesBondMac = !(bond.options.mode === 'balance-tlb' || bond.options.mode === 'balance-alb' || (bond.options.mode === 'active-backup' && bond.options.fail_over_mac !== 'none'));
    let slaveMac: Uint8Array = info.mac;
    if (takesBondMac) slaveMac = bondMac;
    else if (!first && status.slaves.some((s) => macEquals(parseMac(s.mac), 0, info.mac, 0) || macEquals(bondMac, 0, info.mac, 0))) slaveMac = randomLocalMac();
    record.set = formatMac(slaveMac);
    this.#host.claimDevice(dev, owner); // refused (LNLB_ERR_DEV_IN_USE) when another lnlbd uses it
    bond.slaves.set(dev, record);
    this.#saveSlaves();
    try {
      this.#sysctl.apply(owner, [
        { key: ipv6Sysctl(dev, 'disable_ipv6'), value: '1', restore: true },
        { key: ipv4Sysctl(dev, 'arp_ignore'), value: '8', restore: true },
        { key: ipv4Sysctl(dev, 'rp_filter'), value: '1', restore: true },
      ].filter((c) => c.key.family !== 'ipv6' || existsSync(sysctlPath(c.key)))); // no IPv6 on the host: nothing to turn off
      if (first) port.ifSetMac(bond.name, bondMac);
      if (!macEquals(slaveMac, 0, info.mac, 0)) port.ifSetMac(dev, slaveMac);
      if (!info.up) port.ifSetUp(dev, true);
      const fd = port.packetOpen(dev, { protocol: port.ETH_P_ALL, promisc: false, vnetHdr: true, ignoreOutgoing: true });
      record.fd = fd;
      port.ringOpen(fd, { version: 2, frameSize: port.v2FrameSize(info.mtu, true), frameCount: 4096, copyQueueBytes: 8 << 20, holdOffUs: 0 });
      const after = port.ifInfo(dev);
      const { speed, fullDuplex } = readLinkSpeed(dev);
      const slave = { name: dev, fd, permanentMac: info.mac, mac: slaveMac, carrier: after.running, speed, fullDuplex };
      await bond.request('enslave', (api) => api.enslave(slave, first));
      this.#log.info({ event: 'bond-enslaved', bond: bond.name, slave: dev }, `${bond.name}: enslaved ${dev}`);
    } catch (err) {
      await this.#undoSlave(bond, record);
      throw err;
    }
  }

  /** Gives each device back with its MAC, state and sysctls restored. */
  async release(bondName: string, devices: readonly string[]): Promise<{ bond: string; released: string[] }> {
    const bond = this.#get(bondName);
    for (const dev of devices) {
      if (!bond.slaves.has(dev)) {
        const holder = this.bondOf(dev);
        throw lnlbError('LNLB_ERR_BOND_SLAVE', `${dev} is not a slave of ${bond.name}${holder === undefined ? '' : ` (it is one of ${holder})`}: its slaves are ${[...bond.slaves.keys()].join(', ') || 'none'}`);
      }
    }
    for (const dev of devices) await this.#releaseOne(bond, dev);
    await this.#statusFiles.get(bond.name)?.refresh();
    return { bond: bond.name, released: [...devices] };
  }

  async #releaseOne(bond: Bond, dev: string): Promise<void> {
    const record = bond.slaves.get(dev);
    if (record === undefined) return;
    await bond.request('release', (api) => api.release(dev)).catch((err: Error) => this.#log.warn({ bond: bond.name, slave: dev }, err.message));
    await this.#undoSlave(bond, record);
    this.#log.info({ event: 'bond-released', bond: bond.name, slave: dev }, `${bond.name}: released ${dev}`);
  }

  /** Puts a device back as it was found: socket closed, MAC, up/down, sysctls. */
  async #undoSlave(bond: Bond, record: SlaveRecord): Promise<void> {
    if (record.fd >= 0) port.close(record.fd);
    record.fd = -1;
    const problems: string[] = [];
    try {
      if (port.deviceExists(record.name)) {
        port.ifSetMac(record.name, parseMac(record.mac));
        if (!record.up) port.ifSetUp(record.name, false);
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
    problems.push(...this.#sysctl.release(`${bond.name}/${record.name}`));
    bond.slaves.delete(record.name);
    this.#saveSlaves();
    this.#host.releaseDevice(record.name, `${bond.name}/${record.name}`);
    for (const p of problems) this.#log.error({ event: 'bond-restore-failed', bond: bond.name, slave: record.name }, p);
  }

  /** The status in the layout of /proc/net/bonding/<bond>, and the same as JSON. */
  async show(bondName: string): Promise<{ text: string; json: BondJson }> {
    const bond = this.#get(bondName);
    const s = await bond.request('status', (api) => api.status());
    const json: BondJson = {
      name: bond.name,
      mac: s.mac,
      options: formatBondOptions(bond.options),
      status: s.status,
      slaves: s.slaves.map((x) => ({
        name: x.name,
        role: x.carries ? 'active' : 'backup',
        linkState: x.linkState as BondSlaveJson['linkState'],
        mac: x.mac,
        permanentMac: bond.slaves.get(x.name)?.mac ?? x.mac,
        txFrames: x.txFrames,
        rxFrames: x.rxFrames,
        ...(x.actorState === undefined ? {} : { actorState: x.actorState }),
        ...(x.partnerState === undefined ? {} : { partnerState: x.partnerState }),
      })),
      counters: { ...s.counters, tapWriteDrops: s.tapWriteDrops, vlanFramesIn: s.vlanFramesIn },
    };
    return { text: formatBondStatus(s.status), json };
  }

  /** Releases every slave, stops the thread and removes the TAP. */
  async destroy(bondName: string): Promise<void> {
    const bond = this.#get(bondName);
    const user = this.#deviceUser(bond.name);
    if (user !== undefined) throw lnlbError('LNLB_ERR_CTL_BAD_ARGUMENT', `${bond.name} is in use by ${user}: remove that first (lnlbctl delif)`);
    await this.#destroy(bond);
  }

  async #destroy(bond: Bond): Promise<void> {
    this.#stopStatusFile(bond.name);
    for (const dev of [...bond.slaves.keys()]) await this.#releaseOne(bond, dev);
    await bond.request('stop', (api) => api.stop()).catch(() => undefined);
    bond.close();
    await bond.worker.terminate();
    port.close(bond.tapFd);
    this.#bonds.delete(bond.name);
    this.#host.releaseDevice(bond.name, `bond ${bond.name}`);
    this.#log.info({ event: 'bond-destroyed', bond: bond.name }, `${bond.name}: destroyed`);
  }

  /**
   * `<run dir>/bonding/<bond>`: the bond's status in the layout of /proc/net/bonding/<bond>
   * (which a userspace bond cannot have), for the scripts and monitoring that read that file.
   * Checked every STATUS_FILE_MS and rewritten (atomically) when it changed; removed with the bond.
   */
  #startStatusFile(bond: Bond): void {
    const dir = join(this.#runDir, STATUS_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, bond.name);
    let written = '';
    const refresh = async (): Promise<void> => {
      try {
        const s = await bond.request('status', (api) => api.status());
        const text = formatBondStatus(s.status);
        if (text === written || !this.#statusFiles.has(bond.name)) return;
        writeStateFile(path, text);
        written = text;
      } catch {
        // The bond is going (or its thread failed: show says so): its file goes with it.
      }
    };
    const timer = setInterval(() => void refresh(), STATUS_FILE_MS);
    timer.unref();
    this.#statusFiles.set(bond.name, { timer, refresh, path });
    void refresh();
  }

  #stopStatusFile(name: string): void {
    const file = this.#statusFiles.get(name);
    if (file === undefined) return;
    clearInterval(file.timer);
    this.#statusFiles.delete(name);
    rmSync(file.path, { force: true });
  }

  /** Daemon stop: destroys every bond (after the cluster interfaces bound to them stopped). */
  async stopAll(): Promise<void> {
    const failures: string[] = [];
    for (const bond of [...this.#bonds.values()]) {
      await this.#destroy(bond).catch((err: Error) => failures.push(`${bond.name}: ${err.message}`));
    }
    // The status files' directory, empty now: a stopped daemon leaves nothing of its bonds.
    try {
      rmdirSync(join(this.#runDir, STATUS_DIR));
    } catch {
      // Never made (no bond), or something else is in it: left.
    }
    if (failures.length > 0) throw lnlbError('LNLB_ERR_DEV_SETUP', `stopping bonds: ${failures.join('; ')}`);
  }

  /**
   * For a process that is ending without stopAll (an embedded node's host exits: see
   * src/main/restore-at-exit.ts): gives each slave its MAC and state back at once, without the
   * bond thread (it ends with the process, and the kernel removes the bond's TAP), and removes
   * the bonds' status files. The slaves' sysctls are the daemon's SysctlGuard's to restore.
   * Returns what could not be restored.
   */
  restoreSlavesNow(): string[] {
    const failures: string[] = [];
    for (const bond of this.#bonds.values()) {
      this.#stopStatusFile(bond.name); // it would show a bond that is gone
      for (const record of [...bond.slaves.values()]) {
        try {
          if (port.deviceExists(record.name)) {
            port.ifSetMac(record.name, parseMac(record.mac));
            if (!record.up) port.ifSetUp(record.name, false);
          }
          bond.slaves.delete(record.name);
        } catch (err) {
          failures.push(`${bond.name}: ${record.name}: ${(err as Error).message}`);
        }
      }
    }
    this.#saveSlaves(); // what could not be restored stays for the next start
    return failures;
  }

  #get(name: string): Bond {
    const bond = this.#bonds.get(name);
    if (bond === undefined) {
      const known = this.names();
      throw lnlbError('LNLB_ERR_CTL_NO_BOND', `no bond ${JSON.stringify(name)}: ${known.length === 0 ? 'this daemon has none (create one with lnlbctl bond create NAME mode=...)' : `this daemon has ${known.join(', ')}`}`);
    }
    return bond;
  }

  #saveSlaves(): void {
    const saved: Record<string, SavedSlave> = {};
    for (const bond of this.#bonds.values()) for (const r of bond.slaves.values()) saved[r.name] = { bond: r.bond, mac: r.mac, set: r.set, up: r.up };
    const file = join(this.#runDir, SLAVES_FILE);
    if (Object.keys(saved).length === 0) {
      rmSync(file, { force: true });
      return;
    }
    writeStateFile(file, JSON.stringify(saved));
  }

  /**
   * A daemon that died without releasing its slaves left their MACs changed: put them back.
   * Only entries of the shape lnlb writes, and only on a device that still carries the MAC
   * lnlb put on it and that no other lnlbd uses now: a planted entry cannot set the MAC of a
   * device lnlb never enslaved.
   */
  #restoreCrashedSlaves(): void {
    const file = join(this.#runDir, SLAVES_FILE);
    let text: string | undefined;
    try {
      text = readStateFile(file, 256 * 1024);
    } catch (err) {
      this.#log.error({ event: 'bond-state-ignored', file }, `${(err as Error).message}; no slave is restored from it`);
    }
    if (text === undefined) {
      rmSync(file, { force: true });
      return;
    }
    const { slaves, ignored } = parseSavedSlaves(text);
    for (const why of ignored) this.#log.warn({ event: 'bond-state-ignored', file }, `${file}: ignored ${why}`);
    for (const [dev, s] of slaves) {
      const skip = (why: string): void => this.#log.warn({ event: 'bond-state-ignored', file, slave: dev }, `${file}: ${dev} not restored: ${why}`);
      try {
        if (!port.deviceExists(dev)) continue;
        if (s.set === s.mac) continue; // lnlb did not change its MAC (tlb/alb): nothing to give back
        const current = port.ifInfo(dev).mac;
        if (!macEquals(current, 0, parseMac(s.set), 0)) {
          skip(`it carries ${formatMac(current)}, not ${s.set} which lnlb gave it`);
          continue;
        }
        try {
          this.#host.claimDevice(dev, 'restore');
        } catch (err) {
          skip((err as Error).message);
          continue;
        }
        try {
          port.ifSetMac(dev, parseMac(s.mac));
          if (!s.up) port.ifSetUp(dev, false);
        } finally {
          this.#host.releaseDevice(dev, 'restore');
        }
        this.#log.warn({ event: 'bond-slave-restored', slave: dev, bond: s.bond }, `${dev} was left enslaved to ${s.bond} by a previous lnlbd: its MAC ${s.mac} is restored`);
      } catch (err) {
        this.#log.error({ event: 'bond-restore-failed', slave: dev }, (err as Error).message);
      }
    }
    rmSync(file, { force: true });
  }
}


function randomLocalMac(): Uint8Array {
  const mac = randomBytes(6);
  mac[0] = (mac[0]! & 0xfe) | 0x02;
  return new Uint8Array(mac);
}

/** Resolves with the bond thread's kernel id once it is ready. */
function waitReady(worker: Worker): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(lnlbError('LNLB_ERR_WORKER_FAILED', `bond thread did not start within ${THREAD_START_LIMIT_MS / 1000} s`)), THREAD_START_LIMIT_MS);
    const onMessage = (msg: BondToMain): void => {
      if (msg.type === 'ready') {
        clearTimeout(timer);
        worker.off('message', onMessage);
        resolve(msg.tid);
      } else if (msg.type === 'error') {
        clearTimeout(timer);
        reject(reviveError(msg.error, 'LNLB_ERR_WORKER_FAILED'));
      }
    };
    worker.on('message', onMessage);
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(reviveError(serializeError(err, 'bond thread'), 'LNLB_ERR_WORKER_FAILED'));
    });
  });
}
