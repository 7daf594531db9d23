/**
 * `lnlbctl bond show` in the layout of `/proc/net/bonding/<bond>` (the format users grep and
 * scripts parse), from a plain status object: pure, so the daemon fills it and tests check
 * the text. Lines and their order follow the driver's bond_info_show_master / _slave.
 */

import { BOND_MODES } from './options.js';

const MODE_ACTIVE_BACKUP = 1;
const MODE_XOR = 2;
const MODE_8023AD = 4;
const MODE_TLB = 5;
const MODE_ALB = 6;

export interface SlaveStatusView {
  name: string;
  /** 'up', 'down', 'going down', 'going back'. */
  miiStatus: string;
  /** Mb/s, or undefined when the device does not say. */
  speed: number | undefined;
  duplex: 'full' | 'half' | undefined;
  linkFailures: number;
  permanentMac: string;
  queueId: number;
  /** 802.3ad: the aggregator this port is in, and why it is not distributing (lnlb's addition). */
  aggregatorId?: number;
  notDistributingBecause?: string;
  /** 802.3ad: the port's churn machines and the actor and partner information, as the driver's status file shows them. */
  lacp?: LacpPortView;
}

/** One side of a port's LACP information (the driver's "details actor/partner lacp pdu"). */
export interface LacpPartyView {
  systemPriority: number;
  systemMac: string;
  /** The actor's operational key, or the partner's. */
  key: number;
  portPriority: number;
  portNumber: number;
  /** LACP_STATE_* bits. */
  portState: number;
}

export interface LacpPortView {
  /** 'none', 'monitoring' or 'churned', as the driver words them. */
  actorChurnState: string;
  partnerChurnState: string;
  actorChurnedCount: number;
  partnerChurnedCount: number;
  actor: LacpPartyView;
  partner: LacpPartyView;
}

export interface AggregatorView {
  id: number;
  ports: number;
  actorKey: number;
  partnerKey: number;
  partnerMac: string;
}

export interface BondStatusView {
  version: string;
  /** 0..6. */
  mode: number;
  primary: string | undefined;
  /** primary_reselect, shown with the primary. */
  primaryReselect: string;
  active: string | undefined;
  miiStatus: 'up' | 'down';
  miimonMs: number;
  updelayMs: number;
  downdelayMs: number;
  peerNotifyDelayMs: number;
  /** e.g. { name: 'layer3+4', value: 1 }. */
  xmitHashPolicy: { name: string; value: number };
  arp?: { intervalMs: number; missedMax: number; targets: string[] };
  ad?: {
    lacpActive: boolean;
    lacpRate: 'slow' | 'fast';
    minLinks: number;
    adSelect: string;
    systemPriority: number;
    systemMac: string;
    active: AggregatorView | undefined;
  };
  slaves: SlaveStatusView[];
}

/** The driver's lines for one side of a port (bond_info_show_slave), indented four spaces. */
function party(p: LacpPartyView, keyName: string): string[] {
  return [`    system priority: ${p.systemPriority}`, `    system mac address: ${p.systemMac}`, `    ${keyName}: ${p.key}`, `    port priority: ${p.portPriority}`, `    port number: ${p.portNumber}`, `    port state: ${p.portState}`];
}

export function formatBondStatus(s: BondStatusView): string {
  const out: string[] = [`Ethernet Channel Bonding Driver: ${s.version}`, '', `Bonding Mode: ${BOND_MODES.find((m) => m.value === s.mode)?.description ?? `unknown (${s.mode})`}`];
  if (s.mode === MODE_XOR || s.mode === MODE_8023AD) out.push(`Transmit Hash Policy: ${s.xmitHashPolicy.name} (${s.xmitHashPolicy.value})`);
  if (s.mode === MODE_ACTIVE_BACKUP || s.mode === MODE_TLB || s.mode === MODE_ALB) {
    out.push(`Primary Slave: ${s.primary === undefined ? 'None' : `${s.primary} (primary_reselect ${s.primaryReselect})`}`);
    out.push(`Currently Active Slave: ${s.active ?? 'None'}`);
  }
  out.push(
    `MII Status: ${s.miiStatus}`,
    `MII Polling Interval (ms): ${s.miimonMs}`,
    `Up Delay (ms): ${s.updelayMs}`,
    `Down Delay (ms): ${s.downdelayMs}`,
    `Peer Notification Delay (ms): ${s.peerNotifyDelayMs}`,
  );
  if (s.arp !== undefined && s.arp.intervalMs > 0) {
    out.push(`ARP Polling Interval (ms): ${s.arp.intervalMs}`, `ARP Missed Max: ${s.arp.missedMax}`, `ARP IP target/s (n.n.n.n form): ${s.arp.targets.join(',')}`);
  }
  if (s.mode === MODE_8023AD && s.ad !== undefined) {
    const ad = s.ad;
    out.push('', '802.3ad info', `LACP active: ${ad.lacpActive ? 'on' : 'off'}`, `LACP rate: ${ad.lacpRate}`, `Min links: ${ad.minLinks}`, `Aggregator selection policy (ad_select): ${ad.adSelect}`);
    out.push(`System priority: ${ad.systemPriority}`, `System MAC address: ${ad.systemMac}`);
    if (ad.active === undefined) {
      out.push('bond has no active aggregator');
    } else {
      out.push(
        'Active Aggregator Info:',
        `\tAggregator ID: ${ad.active.id}`,
        `\tNumber of ports: ${ad.active.ports}`,
        `\tActor Key: ${ad.active.actorKey}`,
        `\tPartner Key: ${ad.active.partnerKey}`,
        `\tPartner Mac Address: ${ad.active.partnerMac}`,
      );
    }
  }
  for (const slave of s.slaves) {
    out.push(
      '',
      `Slave Interface: ${slave.name}`,
      `MII Status: ${slave.miiStatus}`,
      `Speed: ${slave.speed === undefined ? 'Unknown' : `${slave.speed} Mbps`}`,
      `Duplex: ${slave.duplex ?? 'Unknown'}`,
      `Link Failure Count: ${slave.linkFailures}`,
      `Permanent HW addr: ${slave.permanentMac}`,
      `Slave queue ID: ${slave.queueId}`,
    );
    if (s.mode === MODE_8023AD && slave.aggregatorId !== undefined) out.push(`Aggregator ID: ${slave.aggregatorId}`);
    const lacp = slave.lacp;
    if (s.mode === MODE_8023AD && lacp !== undefined) {
      out.push(
        `Actor Churn State: ${lacp.actorChurnState}`,
        `Partner Churn State: ${lacp.partnerChurnState}`,
        `Actor Churned Count: ${lacp.actorChurnedCount}`,
        `Partner Churned Count: ${lacp.partnerChurnedCount}`,
        'details actor lacp pdu:',
        ...party(lacp.actor, 'port key'),
        'details partner lacp pdu:',
        ...party(lacp.partner, 'oper key'),
      );
    }
    if (slave.notDistributingBecause !== undefined) out.push(`Not distributing: ${slave.notDistributingBecause}`);
  }
  return `${out.join('\n')}\n`;
}
