import test from 'ava';
import { formatBondStatus, type BondStatusView } from '../../../src/bond/status-file.js';

const base: BondStatusView = {
  version: 'lnlb 0.1.0',
  mode: 1,
  primary: undefined,
  primaryReselect: 'always',
  active: 'eth0',
  miiStatus: 'up',
  miimonMs: 100,
  updelayMs: 0,
  downdelayMs: 0,
  peerNotifyDelayMs: 0,
  xmitHashPolicy: { name: 'layer2', value: 0 },
  slaves: [{ name: 'eth0', miiStatus: 'up', speed: 1000, duplex: 'full', linkFailures: 0, permanentMac: '02:aa:00:00:00:01', queueId: 0 }],
};

test('active-backup: the driver\'s layout, line for line', (t) => {
  t.is(
    formatBondStatus(base),
    [
      'Ethernet Channel Bonding Driver: lnlb 0.1.0',
      '',
      'Bonding Mode: fault-tolerance (active-backup)',
      'Primary Slave: None',
      'Currently Active Slave: eth0',
      'MII Status: up',
      'MII Polling Interval (ms): 100',
      'Up Delay (ms): 0',
      'Down Delay (ms): 0',
      'Peer Notification Delay (ms): 0',
      '',
      'Slave Interface: eth0',
      'MII Status: up',
      'Speed: 1000 Mbps',
      'Duplex: full',
      'Link Failure Count: 0',
      'Permanent HW addr: 02:aa:00:00:00:01',
      'Slave queue ID: 0',
      '',
    ].join('\n'),
  );
});

test('802.3ad: hash policy, the 802.3ad info block, per-port aggregator and why a port is not distributing', (t) => {
  const text = formatBondStatus({
    ...base,
    mode: 4,
    active: undefined,
    xmitHashPolicy: { name: 'layer3+4', value: 1 },
    ad: { lacpActive: true, lacpRate: 'fast', minLinks: 0, adSelect: 'stable', systemPriority: 65535, systemMac: '02:aa:00:00:00:01', active: { id: 1, ports: 1, actorKey: 9, partnerKey: 9, partnerMac: '02:bb:00:00:00:01' } },
    slaves: [
      { ...base.slaves[0]!, aggregatorId: 1 },
      { name: 'eth1', miiStatus: 'up', speed: undefined, duplex: undefined, linkFailures: 2, permanentMac: '02:aa:00:00:00:02', queueId: 0, aggregatorId: 2, notDistributingBecause: 'partner not in sync' },
    ],
  });
  t.regex(text, /^Bonding Mode: IEEE 802\.3ad Dynamic link aggregation\nTransmit Hash Policy: layer3\+4 \(1\)\nMII Status: up$/m);
  t.notRegex(text, /Currently Active Slave/);
  t.regex(text, /^802\.3ad info\nLACP active: on\nLACP rate: fast\nMin links: 0\nAggregator selection policy \(ad_select\): stable$/m);
  t.regex(text, /^Active Aggregator Info:\n\tAggregator ID: 1\n\tNumber of ports: 1\n\tActor Key: 9\n\tPartner Key: 9\n\tPartner Mac Address: 02:bb:00:00:00:01$/m);
  t.regex(text, /^Slave Interface: eth1\nMII Status: up\nSpeed: Unknown\nDuplex: Unknown\nLink Failure Count: 2\n/m);
  t.regex(text, /^Aggregator ID: 2\nNot distributing: partner not in sync$/m);
});

test('802.3ad: each port\'s churn states and counts, then the actor\'s and the partner\'s LACP information, in the driver\'s words and order', (t) => {
  const lacp = {
    actorChurnState: 'none',
    partnerChurnState: 'churned',
    actorChurnedCount: 0,
    partnerChurnedCount: 1,
    actor: { systemPriority: 65535, systemMac: '02:aa:00:00:00:01', key: 9, portPriority: 255, portNumber: 1, portState: 63 },
    partner: { systemPriority: 32768, systemMac: '02:bb:00:00:00:01', key: 15, portPriority: 32768, portNumber: 7, portState: 61 },
  };
  const text = formatBondStatus({ ...base, mode: 4, active: undefined, slaves: [{ ...base.slaves[0]!, aggregatorId: 1, lacp }] });
  t.regex(
    text,
    new RegExp(
      [
        'Slave queue ID: 0',
        'Aggregator ID: 1',
        'Actor Churn State: none',
        'Partner Churn State: churned',
        'Actor Churned Count: 0',
        'Partner Churned Count: 1',
        'details actor lacp pdu:',
        '    system priority: 65535',
        '    system mac address: 02:aa:00:00:00:01',
        '    port key: 9',
        '    port priority: 255',
        '    port number: 1',
        '    port state: 63',
        'details partner lacp pdu:',
        '    system priority: 32768',
        '    system mac address: 02:bb:00:00:00:01',
        '    oper key: 15',
        '    port priority: 32768',
        '    port number: 7',
        '    port state: 61',
      ].join('\\n'),
    ),
  );
  t.notRegex(formatBondStatus({ ...base, slaves: [{ ...base.slaves[0]!, lacp }] }), /details actor/, 'only in 802.3ad');
});

test('the ARP monitor\'s lines when it runs', (t) => {
  const text = formatBondStatus({ ...base, miimonMs: 0, arp: { intervalMs: 200, missedMax: 2, targets: ['10.0.0.1', '10.0.0.2'] } });
  t.regex(text, /^ARP Polling Interval \(ms\): 200\nARP Missed Max: 2\nARP IP target\/s \(n\.n\.n\.n form\): 10\.0\.0\.1,10\.0\.0\.2$/m);
});
