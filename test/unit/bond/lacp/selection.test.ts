import test from 'ava';
import { LACP_STATE_ACTIVITY, LACP_STATE_AGGREGATION, type LacpPortInfo } from '../../../../src/bond/lacp/lacpdu.js';
import { Selected, createAggregator, isIndividual, runSelection, type AdSelect, type Aggregator, type SelectionPort } from '../../../../src/bond/lacp/selection.js';

const AGG = LACP_STATE_ACTIVITY | LACP_STATE_AGGREGATION;
const SWITCH_1 = 0x0011_2233_4401;
const SWITCH_2 = 0x0011_2233_4402;

interface TestPort extends SelectionPort {
  partner: LacpPortInfo;
  enabled: boolean;
  detached: boolean;
  attached: boolean;
  speedMbps: number;
  actorKey: number;
}

function port(portNumber: number, partnerSystem: number, partnerKey = 1, extra: Partial<TestPort> = {}): TestPort {
  return {
    portNumber,
    actorKey: 9,
    actorState: AGG,
    partner: { systemPriority: 32768, system: partnerSystem, key: partnerKey, portPriority: 32768, port: portNumber, state: AGG },
    enabled: true,
    speedMbps: 1000,
    detached: true,
    attached: false,
    selected: Selected.UNSELECTED,
    aggregator: 0,
    ...extra,
  };
}

function aggregators(n: number): Aggregator[] {
  return Array.from({ length: n }, (_, i) => createAggregator(i + 1));
}

function run(ports: TestPort[], aggs: Aggregator[], adSelect: AdSelect = 'stable', minLinks = 0): Aggregator | undefined {
  return runSelection(ports, aggs, { adSelect, minLinks });
}

test('ports with the same actor key and the same partner system and key share an aggregator', (t) => {
  const ports = [port(1, SWITCH_1), port(2, SWITCH_1), port(3, SWITCH_1, 2), port(4, SWITCH_2)];
  const aggs = aggregators(4);
  const active = run(ports, aggs);
  t.deepEqual(ports.map((p) => p.aggregator), [1, 1, 2, 3]);
  t.is(active?.id, 1); // the most bandwidth (2 ports)
  t.deepEqual(ports.map((p) => p.selected), [Selected.SELECTED, Selected.SELECTED, Selected.STANDBY, Selected.STANDBY]);
  t.is(aggs[0]!.ports, 2);
  t.is(aggs[0]!.bandwidthMbps, 2000);
});

test('another actor key (another speed) is another aggregator', (t) => {
  const ports = [port(1, SWITCH_1), port(2, SWITCH_1, 1, { actorKey: 15, speedMbps: 10_000 })];
  run(ports, aggregators(2));
  t.not(ports[0]!.aggregator, ports[1]!.aggregator);
});

test('individual ports (no partner, or either end not aggregatable) are alone in their aggregator', (t) => {
  const defaulted = port(1, 0, 1, { partner: { systemPriority: 65535, system: 0, key: 1, portPriority: 255, port: 1, state: LACP_STATE_ACTIVITY } });
  const notAggregatable = port(2, SWITCH_1, 1, { actorState: LACP_STATE_ACTIVITY });
  const alsoDefaulted = port(3, 0, 1, { partner: { ...defaulted.partner } });
  t.true(isIndividual(defaulted));
  t.true(isIndividual(notAggregatable));
  const ports = [defaulted, notAggregatable, alsoDefaulted];
  run(ports, aggregators(3));
  t.deepEqual(ports.map((p) => p.aggregator), [1, 2, 3]);
});

test('min_links: an aggregator with fewer link-up ports is not eligible', (t) => {
  const ports = [port(1, SWITCH_1), port(2, SWITCH_1, 1, { enabled: false })];
  const aggs = aggregators(2);
  t.is(run(ports, aggs, 'stable', 2), undefined);
  t.is(ports[0]!.selected, Selected.STANDBY);
  t.is(ports[1]!.selected, Selected.UNSELECTED, 'a link-down port is not selected');
  ports[1]!.enabled = true;
  t.is(run(ports, aggs, 'stable', 2)?.id, 1);
  t.deepEqual(ports.map((p) => p.selected), [Selected.SELECTED, Selected.SELECTED]);
});

test('count prefers ports, bandwidth prefers Mb/s, ties go to the lowest aggregator ID', (t) => {
  const make = (): TestPort[] => [port(1, SWITCH_1), port(2, SWITCH_1), port(3, SWITCH_2, 1, { actorKey: 15, speedMbps: 10_000 })];
  t.is(run(make(), aggregators(3), 'count')?.id, 1);
  t.is(run(make(), aggregators(3), 'bandwidth')?.id, 2);
  t.is(run([port(1, SWITCH_1), port(2, SWITCH_2)], aggregators(2), 'bandwidth')?.id, 1);
});

test('stable keeps an aggregator that has attached ports; bandwidth does not', (t) => {
  for (const policy of ['stable', 'bandwidth'] as const) {
    const ports = [port(1, SWITCH_1)];
    const aggs = aggregators(3);
    t.is(run(ports, aggs, policy)?.id, 1);
    Object.assign(ports[0]!, { detached: false, attached: true });
    ports.push(port(2, SWITCH_2), port(3, SWITCH_2));
    const active = run(ports, aggs, policy);
    t.is(active?.id, policy === 'stable' ? 1 : 2, policy);
  }
});

test('stable still switches away from an aggregator without a partner', (t) => {
  const lone = port(1, 0, 1, { partner: { systemPriority: 65535, system: 0, key: 1, portPriority: 255, port: 1, state: LACP_STATE_ACTIVITY } });
  const ports = [lone];
  const aggs = aggregators(2);
  run(ports, aggs);
  Object.assign(lone, { detached: false, attached: true });
  ports.push(port(2, SWITCH_1));
  t.is(run(ports, aggs)?.id, 2);
});

test('an unselected port keeps its aggregator until its Mux has detached it', (t) => {
  const p = port(1, SWITCH_1);
  const aggs = aggregators(2);
  run([p], aggs);
  t.is(p.aggregator, 1);
  Object.assign(p, { detached: false, attached: true });
  // A new partner: update_Selected made it UNSELECTED; the Mux has not detached it yet.
  p.partner.system = SWITCH_2;
  p.selected = Selected.UNSELECTED;
  const other = port(2, SWITCH_2);
  run([p, other], aggs);
  t.is(p.aggregator, 1, 'still held');
  t.is(other.aggregator, 2, 'aggregator 1 is not free while port 1 holds it');
  Object.assign(p, { detached: true, attached: false });
  run([p, other], aggs);
  t.is(p.aggregator, 2, 'detached: it joins the aggregator of its new partner');
  t.is(aggs[0]!.ports, 0);
});
