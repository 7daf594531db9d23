/**
 * What a bond reports to the operator, by kind, with the fields of each: the bond core and its
 * 802.3ad part raise them through BondIo.event, the bond thread forwards them, and the manager
 * (main/bond-manager.ts) logs them in the driver's words. Typed per kind, so a field read on
 * the main thread is one the thread wrote.
 */

export interface BondEventFields {
  enslaved: { slave: string; link: string };
  released: { slave: string };
  /** The link monitor (miimon, or `monitor: 'arp'`) moved a slave; `delayLeftMs` when it came up before updelay ran out. */
  link: { slave: string; change: string; state: string; failures: number; monitor?: 'arp'; delayLeftMs?: number };
  /** The active slave changed (undefined: none left). */
  active: { slave: string | undefined; previous: string | undefined };
  /** 802.3ad: a port started or stopped distributing, the active aggregator changed, a churn machine fired. */
  lacp: { port?: number; change: string; aggregator?: number; previous?: number };
  'mac-failed': { slave: string; error: string };
  'promisc-failed': { slave: string; error: string };
}

export type BondEventKind = keyof BondEventFields;

/** One event: its kind and that kind's fields. */
export type BondEvent = { [K in BondEventKind]: { kind: K; fields: BondEventFields[K] } }[BondEventKind];
