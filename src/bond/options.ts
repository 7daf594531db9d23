/**
 * The bonding options: the bond_options.c of lnlb. One table, `BOND_OPTIONS`, declares every
 * option once with its default, what it accepts, the modes it applies to and its parser, and
 * how the status file shows it; `lnlbctl bond create bond0 mode=802.3ad miimon=100 ...`, the
 * config file and the admin socket all go through `parseBondOptions`, so they cannot disagree.
 *
 * Names, values, numbers and ranges are the driver's (drivers/net/bonding/bond_options.c,
 * Documentation/networking/bonding.rst): option keys are the driver's option names, so the
 * words, this table, sysfs and the kernel documentation all say the same thing. Enumerated
 * values are accepted by name or by the driver's number (`mode=4`, `xmit_hash_policy=1`).
 *
 * Cross-option rules (`resolveBondOptions`), as the driver has them unless said otherwise:
 * - an option given in a mode it does not apply to is refused where the driver refuses it
 *   (packets_per_slave outside balance-rr; primary outside active-backup/tlb/alb;
 *   tlb_dynamic_lb outside tlb/alb; lacp_rate, lacp_active, ad_actor_sys_prio,
 *   ad_user_port_key, ad_actor_system outside 802.3ad) and, beyond the driver, for ad_select
 *   and min_links outside 802.3ad (the driver accepts them there and ignores them); where
 *   the driver accepts and ignores and a mistake is unlikely to hurt (xmit_hash_policy,
 *   primary_reselect, fail_over_mac, lp_interval in modes that do not use them) it is a warning;
 * - miimon and arp_interval exclude each other (refused when both are given, as the driver's
 *   netlink interface does; its sysfs lets the later one switch the other off);
 * - updelay, downdelay and peer_notif_delay count in miimon ticks: a value that is not a
 *   multiple of miimon is rounded down with a warning, and a non-zero one without the MII
 *   monitor is refused;
 * - arp_validate needs arp_interval (as the driver's module parameters);
 * - arp_interval needs at least one arp_ip_target (lnlb refuses; the driver's module
 *   parameters switch the ARP monitor off with a warning, its netlink runs a monitor that can
 *   only fail);
 * - arp_ip_target: at most 16, no duplicates, not 0.0.0.0/8 or 255.255.255.255.
 * Warnings come back as data (`BondOptionWarning`), for lnlbctl to print and the daemon to log.
 *
 * Where lnlb chooses differently from the driver, on purpose:
 * - the ARP monitor (arp_interval, arp_ip_target, arp_validate, arp_all_targets,
 *   arp_missed_max) is allowed in 802.3ad, balance-tlb and balance-alb, where the driver
 *   refuses it: carrier-only monitoring misses failures beyond the switch, and users asked;
 * - miimon defaults to 100 ms when no ARP monitor is given, as the reference and
 *   bonding.rst state (the driver's own default is 0, and it forces 100 only when it enters
 *   802.3ad/tlb/alb). A demanding user wants failures detected without asking; an explicit
 *   miimon=0 without arp_interval is honoured with the driver's warning that link failures
 *   will go unnoticed;
 * - an option given twice is refused (the driver lets the later one win), except
 *   arp_ip_target, whose lists add up;
 * - use_carrier accepts only 1 (on): lnlb reads the link's carrier, and the driver too has
 *   made the MII/ethtool alternative obsolete (it accepts only 1 since then);
 * - xmit_hash_policy encap2+3, encap3+4 and vlan+srcmac are known and refused as not yet
 *   supported (see xmit-hash.ts); coupled_control, ns_ip6_target and max_bonds likewise.
 */
import { lnlbError } from '../errors.js';
import { formatMac, isMulticastMac, parseMac } from '../net/ethernet.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { XMIT_POLICY_LAYER2, XMIT_POLICY_LAYER23, XMIT_POLICY_LAYER34, type XmitPolicyNumber } from './xmit-hash.js';
import { editDistance } from '../edit-distance.js';

// ---------------------------------------------------------------------------------------------
// Value tables (the driver's names and numbers)

export const BOND_MODES = [
  { name: 'balance-rr', value: 0, description: 'load balancing (round-robin)' },
  { name: 'active-backup', value: 1, description: 'fault-tolerance (active-backup)' },
  { name: 'balance-xor', value: 2, description: 'load balancing (xor)' },
  { name: 'broadcast', value: 3, description: 'fault-tolerance (broadcast)' },
  { name: '802.3ad', value: 4, description: 'IEEE 802.3ad Dynamic link aggregation' },
  { name: 'balance-tlb', value: 5, description: 'transmit load balancing' },
  { name: 'balance-alb', value: 6, description: 'adaptive load balancing' },
] as const;
export type BondMode = (typeof BOND_MODES)[number]['name'];

export const XMIT_HASH_POLICIES = [
  { name: 'layer2', value: XMIT_POLICY_LAYER2 },
  { name: 'layer3+4', value: XMIT_POLICY_LAYER34 },
  { name: 'layer2+3', value: XMIT_POLICY_LAYER23 },
] as const;
export type XmitHashPolicy = (typeof XMIT_HASH_POLICIES)[number]['name'];
/** The driver's other policies: recognised, so that the refusal says why. */
const XMIT_HASH_POLICIES_NOT_SUPPORTED = [
  { name: 'encap2+3', value: 3 },
  { name: 'encap3+4', value: 4 },
  { name: 'vlan+srcmac', value: 5 },
] as const;

export const ARP_VALIDATE = [
  { name: 'none', value: 0 },
  { name: 'active', value: 1 },
  { name: 'backup', value: 2 },
  { name: 'all', value: 3 },
  { name: 'filter', value: 4 },
  { name: 'filter_active', value: 5 },
  { name: 'filter_backup', value: 6 },
] as const;
export type ArpValidate = (typeof ARP_VALIDATE)[number]['name'];

export const ARP_ALL_TARGETS = [
  { name: 'any', value: 0 },
  { name: 'all', value: 1 },
] as const;
export type ArpAllTargets = (typeof ARP_ALL_TARGETS)[number]['name'];

export const PRIMARY_RESELECT = [
  { name: 'always', value: 0 },
  { name: 'better', value: 1 },
  { name: 'failure', value: 2 },
] as const;
export type PrimaryReselect = (typeof PRIMARY_RESELECT)[number]['name'];

export const FAIL_OVER_MAC = [
  { name: 'none', value: 0 },
  { name: 'active', value: 1 },
  { name: 'follow', value: 2 },
] as const;
export type FailOverMac = (typeof FAIL_OVER_MAC)[number]['name'];

export const LACP_RATES = [
  { name: 'slow', value: 0 },
  { name: 'fast', value: 1 },
] as const;
export type LacpRate = (typeof LACP_RATES)[number]['name'];

export const AD_SELECT = [
  { name: 'stable', value: 0 },
  { name: 'bandwidth', value: 1 },
  { name: 'count', value: 2 },
] as const;
export type AdSelect = (typeof AD_SELECT)[number]['name'];

const ON_OFF = [
  { name: 'off', value: 0 },
  { name: 'on', value: 1 },
] as const;

interface Choice {
  readonly name: string;
  readonly value: number;
}

/** The driver's INT_MAX, the upper bound of its millisecond options (also Node's longest timer). */
const INT_MAX = 2147483647;
/** BOND_MAX_ARP_TARGETS. */
export const MAX_ARP_TARGETS = 16;
/** miimon when neither miimon nor arp_interval is given (BOND_DEFAULT_MIIMON). */
export const DEFAULT_MIIMON = 100;

const ALL_MODES: readonly BondMode[] = BOND_MODES.map((m) => m.name);
const USES_PRIMARY: readonly BondMode[] = ['active-backup', 'balance-tlb', 'balance-alb'];
const LB_MODES: readonly BondMode[] = ['balance-tlb', 'balance-alb'];
const AD: readonly BondMode[] = ['802.3ad'];

// ---------------------------------------------------------------------------------------------
// The options

/**
 * A bond's options. Delays are in milliseconds, already multiples of miimon. Keys are the
 * driver's option names.
 */
export interface BondOptions {
  mode: BondMode;
  /** MII (carrier) monitor interval, ms; 0: off. */
  miimon: number;
  updelay: number;
  downdelay: number;
  peer_notif_delay: number;
  /** Always true: the link state is the carrier. */
  use_carrier: boolean;
  /** ARP monitor interval, ms; 0: off. */
  arp_interval: number;
  /** Dotted quads, in the order given. */
  arp_ip_target: readonly string[];
  arp_validate: ArpValidate;
  arp_all_targets: ArpAllTargets;
  arp_missed_max: number;
  /** The preferred slave's device name; undefined: none. */
  primary: string | undefined;
  primary_reselect: PrimaryReselect;
  fail_over_mac: FailOverMac;
  /** Peer notifications (gratuitous ARP, unsolicited NA) after a failover; also `num_unsol_na`. */
  num_grat_arp: number;
  resend_igmp: number;
  all_slaves_active: boolean;
  xmit_hash_policy: XmitHashPolicy;
  packets_per_slave: number;
  tlb_dynamic_lb: boolean;
  /** Seconds between learning packets (tlb/alb). */
  lp_interval: number;
  lacp_rate: LacpRate;
  lacp_active: boolean;
  ad_select: AdSelect;
  ad_actor_sys_prio: number;
  ad_user_port_key: number;
  /** The LACP system MAC (aa:bb:cc:dd:ee:ff); undefined: the bond's own MAC. */
  ad_actor_system: string | undefined;
  min_links: number;
}

export type BondOptionName = keyof BondOptions;

/** What the status file needs beyond the options. */
export interface BondStatusContext {
  /** The bond's MAC: the 802.3ad system address when ad_actor_system is not set. */
  bondMac?: string;
}

export interface BondOptionSpec<K extends BondOptionName> {
  readonly name: K;
  /** Other names the driver accepts for the same option. */
  readonly aliases?: readonly string[];
  readonly description: string;
  /** The default (miimon: see `bondOptionDefault`, 0 when the ARP monitor is on). */
  readonly default: BondOptions[K];
  /** What the option takes, in the words of the error messages. */
  readonly accepted: string;
  /** The modes in which the option does something. */
  readonly modes: readonly BondMode[];
  /** Given in another mode: refused, or accepted with a warning that it has no effect. */
  readonly otherModes: 'refuse' | 'warn';
  /** Parses the text after `name=`; throws LNLB_ERR_BOND_OPTION naming the option. */
  parse(raw: string, name: string): BondOptions[K];
  /** The value as a word takes it back (`parse(format(v))` gives v). */
  format(value: BondOptions[K]): string;
  /** Its line in the status file (/proc/net/bonding/bondX) when that shows it for these options. */
  status?(o: BondOptions, ctx: BondStatusContext): string | undefined;
}

type BondOptionTable = { readonly [K in BondOptionName]: BondOptionSpec<K> };

function bad(name: string, message: string): never {
  throw lnlbError('LNLB_ERR_BOND_OPTION', `${name}: ${message}`);
}

function listChoices(table: readonly Choice[]): string {
  return table.map((c) => `${c.name} (${c.value})`).join(', ');
}

function choiceValue(table: readonly Choice[], name: string): number {
  return table.find((c) => c.name === name)!.value;
}

/** A value from `table`, by name or by number; `what` completes `"x" is not ...`. */
function choice<C extends Choice>(table: readonly C[], what: string, notSupported: readonly Choice[] = []) {
  return {
    accepted: `one of ${listChoices(table)}`,
    parse(raw: string, name: string): C['name'] {
      const found = table.find((c) => c.name === raw || (/^\d+$/.test(raw) && c.value === Number(raw)));
      if (found) return found.name;
      const known = notSupported.find((c) => c.name === raw || (/^\d+$/.test(raw) && c.value === Number(raw)));
      if (known) bad(name, `${known.name} (${known.value}) is not supported by lnlb yet; use one of ${listChoices(table)}`);
      return bad(name, `${JSON.stringify(raw)} is not ${what}; use one of ${listChoices(table)}`);
    },
    format: (v: C['name']): string => v,
  };
}

/** off/on, also 0/1; printed as the driver's sysfs and iproute2 print it (`numbers`: 0/1). */
function onOff(numbers: boolean) {
  const c = choice(ON_OFF, 'on or off');
  return {
    accepted: c.accepted,
    parse: (raw: string, name: string): boolean => c.parse(raw, name) === 'on',
    format: (v: boolean): string => (numbers ? (v ? '1' : '0') : v ? 'on' : 'off'),
  };
}

/** A whole number in [min, max]; `unit` ('milliseconds', 'seconds') goes into the message. */
function integer(min: number, max: number, unit?: string) {
  const accepted = `a whole number${unit === undefined ? '' : ` of ${unit}`} from ${min} to ${max}`;
  return {
    accepted,
    parse(raw: string, name: string): number {
      if (!/^\d{1,10}$/.test(raw)) bad(name, `expected ${accepted}, got ${JSON.stringify(raw)}`);
      const n = Number(raw);
      if (n < min || n > max) bad(name, `expected ${accepted}, got ${n}`);
      return n;
    },
    format: (v: number): string => String(v),
  };
}

const ARP_TARGETS_ACCEPTED = `up to ${MAX_ARP_TARGETS} IPv4 addresses such as 10.0.0.1, separated by commas`;

/** One word's arp_ip_target list: dotted quads, no duplicates, none unusable, at most 16. */
function checkArpTargets(targets: readonly string[], name: string): void {
  if (targets.length > MAX_ARP_TARGETS) bad(name, `${targets.length} targets given; expected ${ARP_TARGETS_ACCEPTED}`);
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t)) bad(name, `${t} is given twice; expected ${ARP_TARGETS_ACCEPTED}`);
    seen.add(t);
  }
}

function parseArpTargets(raw: string, name: string): string[] {
  const out = raw.split(',').map((t) => {
    let n: number;
    try {
      n = parseIPv4(t);
    } catch {
      return bad(name, `${JSON.stringify(t)} is not an IPv4 address; expected ${ARP_TARGETS_ACCEPTED}`);
    }
    // bond_is_ip_target_ok: no limited broadcast, nothing in 0.0.0.0/8.
    if (n === 0xffffffff || n >>> 24 === 0) bad(name, `${t} cannot be probed (0.0.0.0/8 and 255.255.255.255 are refused); expected ${ARP_TARGETS_ACCEPTED}`);
    return formatIPv4(n);
  });
  checkArpTargets(out, name);
  return out;
}

const DEVICE_ACCEPTED = "a device name of 1 to 15 characters (no '/', ':' or spaces)";

function parseDevice(raw: string, name: string): string {
  // IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and white space in names.
  if (raw.length === 0 || raw.length > 15 || /[\s/:]/.test(raw) || raw === '.' || raw === '..') {
    bad(name, `expected ${DEVICE_ACCEPTED}, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

const SYSTEM_MAC_ACCEPTED = "a unicast MAC address such as 02:00:00:00:00:01 (00:00:00:00:00:00: the bond's own)";

function parseSystemMac(raw: string, name: string): string | undefined {
  let mac: Uint8Array;
  try {
    mac = parseMac(raw);
  } catch {
    return bad(name, `${JSON.stringify(raw)} is not a MAC address; expected ${SYSTEM_MAC_ACCEPTED}`);
  }
  if (isMulticastMac(mac)) bad(name, `${formatMac(mac)} is a multicast address; expected ${SYSTEM_MAC_ACCEPTED}`);
  return mac.every((b) => b === 0) ? undefined : formatMac(mac);
}

const modeNumber = (mode: BondMode): number => choiceValue(BOND_MODES, mode);
const modeLabel = (mode: BondMode): string => `${mode} (${modeNumber(mode)})`;

/** The driver's bond_mode_uses_xmit_hash: the modes that pick slaves by `xmit_hash_policy`. */
export function usesXmitHash(o: Pick<BondOptions, 'mode' | 'tlb_dynamic_lb'>): boolean {
  return o.mode === 'balance-xor' || o.mode === '802.3ad' || (LB_MODES.includes(o.mode) && !o.tlb_dynamic_lb);
}

/** The driver's bond_uses_primary: modes with one current active slave that `primary` steers. */
export function usesPrimary(mode: BondMode): boolean {
  return USES_PRIMARY.includes(mode);
}

const ms = integer(0, INT_MAX, 'milliseconds');

export const BOND_OPTIONS: BondOptionTable = {
  mode: {
    name: 'mode',
    description: 'how frames are spread over the slaves and which slaves are used',
    default: 'balance-rr',
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...choice(BOND_MODES, 'a bonding mode'),
    status: (o) => {
      const fom = o.mode === 'active-backup' && o.fail_over_mac !== 'none' ? ` (fail_over_mac ${o.fail_over_mac})` : '';
      return `Bonding Mode: ${bondModeDescription(o.mode)}${fom}`;
    },
  },
  miimon: {
    name: 'miimon',
    description: "interval of the MII monitor, which reads each slave's carrier (0: off)",
    default: DEFAULT_MIIMON,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...ms,
    status: (o) => `MII Polling Interval (ms): ${o.miimon}`,
  },
  updelay: {
    name: 'updelay',
    description: 'how long a carrier must be back before the slave is used again (a multiple of miimon)',
    default: 0,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...ms,
    status: (o) => `Up Delay (ms): ${o.updelay}`,
  },
  downdelay: {
    name: 'downdelay',
    description: 'how long a carrier must be gone before the slave is dropped (a multiple of miimon)',
    default: 0,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...ms,
    status: (o) => `Down Delay (ms): ${o.downdelay}`,
  },
  peer_notif_delay: {
    name: 'peer_notif_delay',
    description: 'delay between the peer notifications sent after a failover (a multiple of miimon)',
    default: 0,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...ms,
    status: (o) => `Peer Notification Delay (ms): ${o.peer_notif_delay}`,
  },
  use_carrier: {
    name: 'use_carrier',
    description: "obsolete: the link state is always the device's carrier; only 1 (on) is accepted",
    default: true,
    modes: ALL_MODES,
    otherModes: 'refuse',
    accepted: 'on (1)',
    parse(raw, name) {
      if (raw === 'on' || raw === '1') return true;
      if (raw === 'off' || raw === '0') {
        bad(name, `${raw} is not supported: lnlb always reads the carrier (the MII/ethtool alternative is obsolete, in the driver too); use on (1) or leave use_carrier out`);
      }
      return bad(name, `${JSON.stringify(raw)} is not accepted; use on (1) or leave use_carrier out`);
    },
    format: () => '1',
  },
  arp_interval: {
    name: 'arp_interval',
    description: 'interval of the ARP monitor, which probes arp_ip_target through each slave (0: off; excludes miimon)',
    default: 0,
    modes: ALL_MODES, // the driver: not in 802.3ad, balance-tlb, balance-alb
    otherModes: 'refuse',
    ...ms,
    status: (o) => (o.arp_interval > 0 ? `ARP Polling Interval (ms): ${o.arp_interval}` : undefined),
  },
  arp_ip_target: {
    name: 'arp_ip_target',
    description: `the addresses the ARP monitor probes, up to ${MAX_ARP_TARGETS}`,
    default: [],
    modes: ALL_MODES,
    otherModes: 'refuse',
    accepted: ARP_TARGETS_ACCEPTED,
    parse: parseArpTargets,
    format: (v) => v.join(','),
    status: (o) => (o.arp_interval > 0 ? `ARP IP target/s (n.n.n.n form): ${o.arp_ip_target.join(', ')}` : undefined),
  },
  arp_validate: {
    name: 'arp_validate',
    description: 'which ARP replies (and, with filter, which other frames) count as proof that a slave is up',
    default: 'none',
    modes: ALL_MODES, // the driver: not in 802.3ad, balance-tlb, balance-alb
    otherModes: 'refuse',
    ...choice(ARP_VALIDATE, 'an ARP validation'),
  },
  arp_all_targets: {
    name: 'arp_all_targets',
    description: 'a slave is up when any (or all) of the ARP targets answer',
    default: 'any',
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...choice(ARP_ALL_TARGETS, 'an arp_all_targets value'),
  },
  arp_missed_max: {
    name: 'arp_missed_max',
    description: 'ARP monitor intervals without an answer before a slave is down',
    default: 2,
    modes: ALL_MODES, // the driver: not in 802.3ad, balance-tlb, balance-alb
    otherModes: 'refuse',
    ...integer(1, 255),
    status: (o) => (o.arp_interval > 0 ? `ARP Missed Max: ${o.arp_missed_max}` : undefined),
  },
  primary: {
    name: 'primary',
    description: 'the slave used whenever it is up',
    default: undefined,
    modes: USES_PRIMARY,
    otherModes: 'refuse',
    accepted: DEVICE_ACCEPTED,
    parse: parseDevice,
    format: (v) => v ?? '',
    // The driver prints the primary once it is enslaved, "None" before; the status file's
    // writer knows the slaves and may print "None" instead.
    status: (o) =>
      usesPrimary(o.mode) ? `Primary Slave: ${o.primary === undefined ? 'None' : `${o.primary} (primary_reselect ${o.primary_reselect})`}` : undefined,
  },
  primary_reselect: {
    name: 'primary_reselect',
    description: 'when the primary takes over again once it is back: always, if better (speed, duplex), or only on failure of the active slave',
    default: 'always',
    modes: USES_PRIMARY,
    otherModes: 'warn',
    ...choice(PRIMARY_RESELECT, 'a primary_reselect policy'),
  },
  fail_over_mac: {
    name: 'fail_over_mac',
    description: "active-backup: every slave takes the bond's MAC (none), the bond takes the active slave's (active), or the new active slave takes the old one's (follow)",
    default: 'none',
    modes: ['active-backup'],
    otherModes: 'warn',
    ...choice(FAIL_OVER_MAC, 'a fail_over_mac policy'),
  },
  num_grat_arp: {
    name: 'num_grat_arp',
    aliases: ['num_unsol_na'],
    description: 'peer notifications (gratuitous ARP and unsolicited IPv6 NA) sent after a failover',
    default: 1,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...integer(0, 255),
  },
  resend_igmp: {
    name: 'resend_igmp',
    description: 'IGMP membership reports sent after a failover',
    default: 1,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...integer(0, 255),
  },
  all_slaves_active: {
    name: 'all_slaves_active',
    description: 'deliver duplicate frames received on inactive slaves (1) or drop them (0)',
    default: false,
    modes: ALL_MODES,
    otherModes: 'refuse',
    ...onOff(true),
  },
  xmit_hash_policy: {
    name: 'xmit_hash_policy',
    description: 'what picks the slave of a frame in balance-xor, 802.3ad and tlb/alb without tlb_dynamic_lb',
    default: 'layer2',
    modes: ['balance-xor', '802.3ad', 'balance-tlb', 'balance-alb'],
    otherModes: 'warn',
    ...choice(XMIT_HASH_POLICIES, 'a transmit hash policy', XMIT_HASH_POLICIES_NOT_SUPPORTED),
    status: (o) => (usesXmitHash(o) ? `Transmit Hash Policy: ${o.xmit_hash_policy} (${choiceValue(XMIT_HASH_POLICIES, o.xmit_hash_policy)})` : undefined),
  },
  packets_per_slave: {
    name: 'packets_per_slave',
    description: 'balance-rr: frames sent on a slave before moving to the next (0: a random slave each frame)',
    default: 1,
    modes: ['balance-rr'],
    otherModes: 'refuse',
    ...integer(0, 65535),
  },
  tlb_dynamic_lb: {
    name: 'tlb_dynamic_lb',
    description: 'tlb/alb: rebalance flows by load (1) or place them by xmit_hash_policy (0)',
    default: true,
    modes: LB_MODES,
    otherModes: 'refuse',
    ...onOff(true),
  },
  lp_interval: {
    name: 'lp_interval',
    description: "tlb/alb: seconds between the learning packets sent to each slave's switch",
    default: 1,
    modes: LB_MODES,
    otherModes: 'warn',
    ...integer(1, INT_MAX, 'seconds'),
  },
  lacp_rate: {
    name: 'lacp_rate',
    description: 'the LACPDU rate asked of the partner: slow (every 30 s) or fast (every 1 s)',
    default: 'slow',
    modes: AD,
    otherModes: 'refuse',
    ...choice(LACP_RATES, 'a LACP rate'),
    status: (o) => (o.mode === '802.3ad' ? `LACP rate: ${o.lacp_rate}` : undefined),
  },
  lacp_active: {
    name: 'lacp_active',
    description: 'send LACPDUs periodically (on) or only answer a partner that speaks (off)',
    default: true,
    modes: AD,
    otherModes: 'refuse',
    ...onOff(false),
    status: (o) => (o.mode === '802.3ad' ? `LACP active: ${o.lacp_active ? 'on' : 'off'}` : undefined),
  },
  ad_select: {
    name: 'ad_select',
    description: 'which aggregator is active: stable, the most bandwidth, or the most ports',
    default: 'stable',
    modes: AD, // the driver accepts it in any mode and ignores it outside 802.3ad
    otherModes: 'refuse',
    ...choice(AD_SELECT, 'an aggregator selection policy'),
    status: (o) => (o.mode === '802.3ad' ? `Aggregator selection policy (ad_select): ${o.ad_select}` : undefined),
  },
  ad_actor_sys_prio: {
    name: 'ad_actor_sys_prio',
    description: 'the LACP system priority',
    default: 65535,
    modes: AD,
    otherModes: 'refuse',
    ...integer(1, 65535),
    status: (o) => (o.mode === '802.3ad' ? `System priority: ${o.ad_actor_sys_prio}` : undefined),
  },
  ad_user_port_key: {
    name: 'ad_user_port_key',
    description: 'the user part (upper 10 bits) of the LACP port key',
    default: 0,
    modes: AD,
    otherModes: 'refuse',
    ...integer(0, 1023),
  },
  ad_actor_system: {
    name: 'ad_actor_system',
    description: "the LACP system MAC (default: the bond's own)",
    default: undefined,
    modes: AD,
    otherModes: 'refuse',
    accepted: SYSTEM_MAC_ACCEPTED,
    parse: parseSystemMac,
    format: (v) => v ?? '00:00:00:00:00:00',
    status: (o, ctx) => {
      const mac = o.ad_actor_system ?? ctx.bondMac;
      return o.mode === '802.3ad' && mac !== undefined ? `System MAC address: ${mac}` : undefined;
    },
  },
  min_links: {
    name: 'min_links',
    description: 'slaves that must be up in the active aggregator before the bond has carrier',
    default: 0,
    modes: AD, // the driver accepts it in any mode and ignores it outside 802.3ad
    otherModes: 'refuse',
    ...integer(0, INT_MAX),
    status: (o) => (o.mode === '802.3ad' ? `Min links: ${o.min_links}` : undefined),
  },
};

/** Every option, in table order (the order `formatBondOptions` writes them in). */
export const BOND_OPTION_NAMES = Object.keys(BOND_OPTIONS) as BondOptionName[];

/** Names the driver has that lnlb does not take (yet), with the reason given to the user. */
const NOT_SUPPORTED: Readonly<Record<string, string>> = {
  coupled_control: 'is not supported by lnlb yet (802.3ad collecting and distributing are always coupled here)',
  ns_ip6_target: 'is not supported by lnlb yet (the ARP monitor probes IPv4 arp_ip_target only)',
  max_bonds: 'is a module parameter of the driver; create each bond with its own lnlbctl bond create',
};

/** Maps a typed key (name or alias) to its option. */
const BY_KEY: ReadonlyMap<string, BondOptionName> = new Map(
  BOND_OPTION_NAMES.flatMap((name) => [name, ...(BOND_OPTIONS[name].aliases ?? [])].map((k) => [k, name] as const)),
);

// ---------------------------------------------------------------------------------------------
// Defaults, parsing, formatting

/** The default of an option for these options (miimon: 100, or 0 when the ARP monitor is on). */
export function bondOptionDefault<K extends BondOptionName>(name: K, o: Pick<BondOptions, 'arp_interval'>): BondOptions[K] {
  if (name === 'miimon') return (o.arp_interval > 0 ? 0 : DEFAULT_MIIMON) as BondOptions[K];
  return BOND_OPTIONS[name].default;
}

/** A bond with every option at its default. */
export function defaultBondOptions(): BondOptions {
  const o: Record<string, unknown> = {};
  for (const name of BOND_OPTION_NAMES) o[name] = BOND_OPTIONS[name].default;
  return o as unknown as BondOptions;
}

export interface BondOptionWarning {
  option: BondOptionName;
  message: string;
}

function unknownOption(key: string): never {
  const norm = key.toLowerCase().replace(/-/g, '_');
  const known = [...BY_KEY.keys(), ...Object.keys(NOT_SUPPORTED)];
  let best = known.includes(norm) ? norm : undefined;
  if (best === undefined) {
    let bestDistance = Infinity;
    for (const k of known) {
      const d = editDistance(norm, k);
      if (d < bestDistance) [best, bestDistance] = [k, d];
    }
    if (bestDistance > Math.max(1, Math.floor(norm.length / 4))) {
      best = norm.length >= 4 ? known.find((k) => k.startsWith(norm) || norm.startsWith(k)) : undefined;
    }
  }
  const hint = best !== undefined ? ` (did you mean ${JSON.stringify(best)}?)` : `; the options are ${BOND_OPTION_NAMES.join(', ')}`;
  throw lnlbError('LNLB_ERR_BOND_OPTION', `unknown option ${JSON.stringify(key)}${hint}`);
}

function setOption<K extends BondOptionName>(o: BondOptions, name: K, raw: string, key: string): void {
  o[name] = BOND_OPTIONS[name].parse(raw, key);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

const modeList = (modes: readonly BondMode[]): string =>
  `${modes.length === 1 ? 'mode' : 'modes'} ${modes.map(modeLabel).join(', ')}`;

/**
 * Parses `key=value` words (`mode=802.3ad miimon=100 lacp_rate=fast`) into checked options,
 * with the warnings the driver would log. Throws LNLB_ERR_BOND_OPTION naming the option and
 * what it accepts.
 */
export function resolveBondOptions(words: readonly string[]): { options: BondOptions; warnings: BondOptionWarning[] } {
  const o = defaultBondOptions();
  /** Option → the key it was given as (its name or an alias). */
  const given = new Map<BondOptionName, string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      const name = BY_KEY.get(word);
      if (name !== undefined) bad(word, `expected ${word}=<value>, the value ${BOND_OPTIONS[name].accepted}`);
      const isMode = BOND_MODES.some((m) => m.name === word || String(m.value) === word);
      throw lnlbError(
        'LNLB_ERR_BOND_OPTION',
        `expected key=value words such as mode=active-backup or miimon=100, got ${JSON.stringify(word)}${isMode ? ` (did you mean mode=${word}?)` : ''}`,
      );
    }
    const key = word.slice(0, eq);
    const raw = word.slice(eq + 1);
    if (NOT_SUPPORTED[key] !== undefined) bad(key, NOT_SUPPORTED[key]);
    const name = BY_KEY.get(key) ?? unknownOption(key);
    const before = given.get(name);
    if (name === 'arp_ip_target') {
      const all = [...o.arp_ip_target, ...parseArpTargets(raw, key)];
      checkArpTargets(all, key);
      o.arp_ip_target = all;
    } else {
      if (before === key) bad(key, `given twice; give it once, the value ${BOND_OPTIONS[name].accepted}`);
      if (before !== undefined) bad(key, `is another name of ${before}, given already; give one of them once, the value ${BOND_OPTIONS[name].accepted}`);
      setOption(o, name, raw, key);
    }
    given.set(name, key);
  }

  const warnings: BondOptionWarning[] = [];
  const warn = (option: BondOptionName, message: string): void => {
    warnings.push({ option, message: `${given.get(option) ?? option}: ${message}` });
  };
  const keyOf = (name: BondOptionName): string => given.get(name) ?? name;

  // Options given in a mode they do not apply to.
  for (const [name, key] of given) {
    const spec = BOND_OPTIONS[name];
    if (spec.modes.includes(o.mode)) continue;
    const why = `only for ${modeList(spec.modes)}, not ${modeLabel(o.mode)}`;
    if (spec.otherModes === 'refuse') bad(key, `${why}; leave ${key} out or choose one of those modes`);
    warn(name, `has no effect: ${why}`);
  }
  if (given.has('xmit_hash_policy') && LB_MODES.includes(o.mode) && o.tlb_dynamic_lb) {
    warn('xmit_hash_policy', `has no effect in ${modeLabel(o.mode)} with tlb_dynamic_lb=1 (flows are placed by load); give tlb_dynamic_lb=0 to place them by hash`);
  }
  if (given.has('primary_reselect') && usesPrimary(o.mode) && o.primary === undefined) {
    warn('primary_reselect', 'has no effect without primary');
  }

  // Link monitors.
  if (o.arp_interval > 0 && given.has('miimon') && o.miimon > 0) {
    bad('arp_interval', `cannot be used with miimon=${o.miimon}: the ARP and MII monitors exclude each other; keep one (miimon: carrier, arp_interval with arp_ip_target: reachability)`);
  }
  if (!given.has('miimon')) o.miimon = bondOptionDefault('miimon', o);
  if (o.arp_interval > 0 && o.arp_ip_target.length === 0) {
    bad('arp_interval', `needs at least one arp_ip_target (${ARP_TARGETS_ACCEPTED})`);
  }
  if (o.arp_interval === 0) {
    if (given.has('arp_validate') && o.arp_validate !== 'none') {
      bad(keyOf('arp_validate'), 'needs the ARP monitor: give arp_interval=<ms> with arp_ip_target, or leave arp_validate out');
    }
    for (const name of ['arp_ip_target', 'arp_all_targets', 'arp_missed_max'] as const) {
      if (given.has(name)) warn(name, 'has no effect without arp_interval (the ARP monitor is off)');
    }
  }
  if (o.miimon === 0 && o.arp_interval === 0) {
    warn('miimon', 'no link monitoring: with miimon=0 and no arp_interval a failed link is never detected; give miimon=100, or arp_interval with arp_ip_target');
  }
  for (const name of ['updelay', 'downdelay', 'peer_notif_delay'] as const) {
    const v = o[name];
    if (v === 0) continue;
    if (o.miimon === 0) {
      bad(keyOf(name), `counts in MII monitor ticks, but miimon is 0${o.arp_interval > 0 ? ' (the ARP monitor is on)' : ''}; leave ${keyOf(name)} out or use the MII monitor`);
    }
    const rounded = v - (v % o.miimon);
    if (rounded !== v) {
      warn(name, `${v} is not a multiple of miimon (${o.miimon}); rounded down to ${rounded} ms`);
      o[name] = rounded;
    }
  }
  return { options: o, warnings };
}

/** `resolveBondOptions` without the warnings. */
export function parseBondOptions(words: readonly string[]): BondOptions {
  return resolveBondOptions(words).options;
}

/** An option's value as a `key=value` word writes it (`layer3+4`, `100`, `10.0.0.1,10.0.0.2`). */
export function bondOptionValue<K extends BondOptionName>(o: BondOptions, name: K): string {
  return BOND_OPTIONS[name].format(o[name]);
}

/**
 * The options as `key=value` words: the mode, then every option that is not at its default,
 * in table order. `parseBondOptions(formatBondOptions(o))` gives `o` back.
 */
export function formatBondOptions(o: BondOptions): string[] {
  const words = [`mode=${o.mode}`];
  for (const name of BOND_OPTION_NAMES) {
    if (name === 'mode' || sameValue(o[name], bondOptionDefault(name, o))) continue;
    words.push(`${name}=${bondOptionValue(o, name)}`);
  }
  return words;
}

/** "fault-tolerance (active-backup)", as the status file's Bonding Mode line says it. */
export function bondModeDescription(mode: BondMode): string {
  return BOND_MODES.find((m) => m.name === mode)!.description;
}

/** The driver's number of a transmit hash policy (xmit-hash.ts takes it). */
export function xmitPolicyNumber(policy: XmitHashPolicy): XmitPolicyNumber {
  return choiceValue(XMIT_HASH_POLICIES, policy) as XmitPolicyNumber;
}

/**
 * The status file's line for one option (`Transmit Hash Policy: layer3+4 (1)`,
 * `MII Polling Interval (ms): 100`), or undefined when the file does not show it for these
 * options (no ARP lines without the ARP monitor, no 802.3ad lines in other modes, and no line
 * at all for options only sysfs shows).
 */
export function bondStatusLine(o: BondOptions, name: BondOptionName, ctx: BondStatusContext = {}): string | undefined {
  return BOND_OPTIONS[name].status?.(o, ctx);
}
