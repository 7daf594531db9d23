import test from 'ava';
import { chooseActive, type CandidateSlave } from '../../../src/bond/active-backup.js';
import { ArpMonitor, type ArpLinkChange, type ArpMonitorConfig, type ArpProbe } from '../../../src/bond/arp-monitor.js';
import { LinkState } from '../../../src/bond/link-monitor.js';
import type { ArpValidate } from '../../../src/bond/options.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST } from '../../../src/net/arp.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';

const I = 100;
const T1 = parseIPv4('192.0.2.1');
const T2 = parseIPv4('192.0.2.2');
const BOND = parseIPv4('192.0.2.100');
const STRANGER = parseIPv4('192.0.2.77');

function config(over: Partial<ArpMonitorConfig> = {}): ArpMonitorConfig {
  return { intervalMs: I, targets: [T1], validate: 'none', allTargets: 'any', missedMax: 2, activeBackup: false, ...over };
}

interface BenchOptions extends Partial<ArpMonitorConfig> {
  slaves?: number;
  /** Whether the target answers the probe for `target` sent on `slave` at tick `tick`. */
  answers?: (slave: number, target: number, tick: number) => boolean;
  /** Whether the switch floods a broadcast request sent on one slave to the others. */
  floods?: boolean;
  /** Whether the port takes the frames given to it on `slave` (frameSent reported). */
  sends?: (slave: number, tick: number) => boolean;
}

/**
 * The runtime and the wire on a fake clock: slaves enslaved at 0, one interval per step, the
 * caller's order (tick, apply, choose the active slave, probe, send), probes delivered 1 ms
 * later. Active-backup chooses with active-backup.ts, as bond-core does.
 */
class Bench {
  readonly mon: ArpMonitor;
  readonly probes: ArpProbe[] = [];
  /** [tick, slave, up] for every link change. */
  readonly events: [number, number, boolean][] = [];
  /** The slaves probed at each tick (index = tick). */
  readonly probed: number[][] = [[]];
  readonly carrier: boolean[];
  active = -1;
  tickNo = 0;
  now = 0;

  constructor(readonly o: BenchOptions = {}) {
    this.mon = new ArpMonitor(config(o));
    const n = o.slaves ?? 2;
    this.carrier = new Array<boolean>(n).fill(true);
    for (let s = 0; s < n; s++) this.mon.addSlave(s, true, 0);
    this.#choose();
  }

  get ab(): boolean {
    return this.o.activeBackup === true;
  }

  step(): void {
    this.tickNo++;
    this.now = this.tickNo * I;
    this.#record(this.mon.tick(this.now));
    this.#choose();
    this.#record(this.mon.probe(this.now, this.probes));
    this.probed[this.tickNo] = this.probes.map((p) => p.slave);
    const at = this.now + 1;
    for (const { slave, target } of this.probes) {
      if (this.o.sends !== undefined && !this.o.sends(slave, this.tickNo)) continue;
      this.mon.frameSent(slave, this.now);
      if (this.o.floods !== false) {
        for (let other = 0; other < this.carrier.length; other++) {
          if (other === slave || !this.carrier[other]) continue;
          this.mon.frameReceived(other, at);
          this.mon.arpReceived(other, ARP_OP_REQUEST, BOND, target, BOND, at);
        }
      }
      if (this.o.answers === undefined || this.o.answers(slave, target, this.tickNo)) {
        this.mon.frameReceived(slave, at);
        this.mon.arpReceived(slave, ARP_OP_REPLY, target, BOND, BOND, at);
      }
    }
  }

  run(ticks: number): this {
    for (let i = 0; i < ticks; i++) this.step();
    return this;
  }

  /** Runs until tick `last` inclusive. */
  until(last: number): this {
    while (this.tickNo < last) this.step();
    return this;
  }

  setCarrier(slave: number, carrier: boolean): void {
    this.carrier[slave] = carrier;
    this.mon.carrierChanged(slave, carrier);
  }

  #record(changes: ArpLinkChange[]): void {
    for (const c of changes) this.events.push([this.tickNo, c.slave, c.up]);
  }

  #choose(): void {
    if (!this.ab) return;
    const candidates: CandidateSlave[] = this.carrier.map((_, s) => ({ link: { state: this.mon.isUp(s) ? LinkState.UP : LinkState.DOWN, delay: 0, failures: 0 }, speed: 1000, duplex: 1 }));
    this.active = chooseActive(candidates, this.active, -1, 'always');
    this.mon.setActive(this.active, this.now);
  }
}

// ---------------------------------------------------------------------------------------------
// Load-balance variant

test('load-balance: every slave with carrier is probed for every target each tick; answered slaves stay up', (t) => {
  const bench = new Bench({ slaves: 3, targets: [T1, T2], validate: 'all', floods: false }).run(20);
  t.deepEqual(bench.events, []);
  t.deepEqual(bench.probed[20], [0, 0, 1, 1, 2, 2]);
  t.deepEqual(bench.probes.slice(0, 2), [
    { slave: 0, target: T1 },
    { slave: 0, target: T2 },
  ]);
  for (const s of [0, 1, 2]) t.true(bench.mon.isUp(s));
  bench.setCarrier(1, false);
  bench.step();
  t.deepEqual(bench.probed[21], [0, 0, 2, 2], 'a slave without carrier is not probed');
});

for (const missedMax of [1, 2, 3]) {
  test(`load-balance, arp_missed_max ${missedMax}: answers stop after tick 10 → down on tick ${10 + missedMax + 1}, exactly`, (t) => {
    const bench = new Bench({ validate: 'all', missedMax, floods: false, answers: (slave, _target, tick) => slave !== 0 || tick <= 10 });
    bench.until(10 + missedMax);
    t.true(bench.mon.isUp(0), 'not before');
    t.is(bench.mon.slaveInfo(0)!.missed, missedMax - 1);
    bench.step();
    // With arp_missed_max 1 the start values (last_tx an interval and 1 ms back) leave no slack
    // for a first tick a whole interval after enslaving: written off on tick 1, back on tick 2,
    // as in the driver. Only the loss after tick 10 matters here.
    t.deepEqual(
      bench.events.filter(([tick]) => tick > 2),
      [[10 + missedMax + 1, 0, false]],
    );
    t.is(bench.mon.slaveInfo(0)!.missed, missedMax);
    t.is(bench.mon.slaveInfo(0)!.failures, missedMax === 1 ? 2 : 1);
    t.true(bench.mon.isUp(1), 'the other slave is not affected');
  });
}

test('load-balance: a slave that is down comes up on the first tick after a validated receive', (t) => {
  const bench = new Bench({ validate: 'all', floods: false, answers: (slave, _target, tick) => slave !== 0 || tick <= 5 || tick >= 12 });
  bench.run(20);
  t.deepEqual(bench.events, [
    [8, 0, false],
    [13, 0, true],
  ]);
  t.like(bench.mon.slaveInfo(0), { up: true, link: LinkState.UP, failures: 1, missed: 0, lastTx: 2000, lastRx: 2001 });
});

test('load-balance: a slave is up only while it both sends and receives (trans_start and last_rx)', (t) => {
  // Slave 1 keeps receiving (validate none: any frame) but its port takes nothing.
  const bench = new Bench({ sends: (slave, tick) => slave !== 1 || tick >= 10 });
  bench.run(15);
  // Enslaved with last_tx one interval and 1 ms back: the window of 2.5 intervals closes at 149 ms.
  t.deepEqual(bench.events, [
    [2, 1, false],
    [11, 1, true],
  ]);
});

test('load-balance, arp_validate none: any frame counts, the flooded requests of the other slaves too', (t) => {
  const bench = new Bench({ answers: (slave) => slave !== 0 });
  bench.run(20);
  t.deepEqual(bench.events, [], 'the target never answers slave 0, yet frames keep arriving on it');
  const strict = new Bench({ validate: 'all', answers: (slave) => slave !== 0 }).run(20);
  t.deepEqual(strict.events, [[2, 0, false]], 'with arp_validate all they do not: never answered, slave 0 is down once its start values run out');
});

test('arp_all_targets all: every target must answer; any: one is enough', (t) => {
  const onlyT1 = (_slave: number, target: number, tick: number): boolean => target === T1 || tick >= 10;
  const all = new Bench({ targets: [T1, T2], validate: 'all', allTargets: 'all', floods: false, answers: onlyT1 }).run(15);
  t.deepEqual(all.events, [
    [2, 0, false],
    [2, 1, false],
    [11, 0, true],
    [11, 1, true],
  ]);
  const any = new Bench({ targets: [T1, T2], validate: 'all', allTargets: 'any', floods: false, answers: onlyT1 }).run(15);
  t.deepEqual(any.events, []);
  const unvalidated = new Bench({ targets: [T1, T2], validate: 'none', allTargets: 'all', floods: false, answers: onlyT1 }).run(15);
  t.deepEqual(unvalidated.events, [], 'without validation there is no per-target proof: any frame counts, as documented');
});

// ---------------------------------------------------------------------------------------------
// What counts as a receive: arp_validate by role

type Kind = 'frame' | 'arp' | 'validated';
const KINDS: readonly Kind[] = ['frame', 'arp', 'validated'];

/** For each arp_validate: which receives count on the active slave and on a backup (frame, any ARP, validated ARP). */
const VALIDATE_TABLE: readonly { validate: ArpValidate; active: readonly Kind[]; backup: readonly Kind[] }[] = [
  { validate: 'none', active: ['frame', 'arp', 'validated'], backup: ['frame', 'arp', 'validated'] },
  { validate: 'active', active: ['validated'], backup: ['frame', 'arp', 'validated'] },
  { validate: 'backup', active: ['frame', 'arp', 'validated'], backup: ['validated'] },
  { validate: 'all', active: ['validated'], backup: ['validated'] },
  { validate: 'filter', active: ['arp', 'validated'], backup: ['arp', 'validated'] },
  { validate: 'filter_active', active: ['validated'], backup: ['arp', 'validated'] },
  { validate: 'filter_backup', active: ['arp', 'validated'], backup: ['validated'] },
];

/** Whether one receive of `kind` on slave 0 (the active one) or 1 (a backup) moves its receive time. */
function counts(validate: ArpValidate, activeBackup: boolean, role: 'active' | 'backup', kind: Kind): boolean {
  const mon = new ArpMonitor(config({ validate, activeBackup }));
  mon.addSlave(0, true, 0);
  mon.addSlave(1, true, 0);
  mon.setActive(0, 0);
  // The active slave has had an answer since it became active, so backups may trust its requests.
  mon.frameReceived(0, 10);
  mon.arpReceived(0, ARP_OP_REPLY, T1, BOND, BOND, 10);
  const slave = role === 'active' ? 0 : 1;
  const before = mon.slaveInfo(slave)!.lastRx;
  mon.frameReceived(slave, 50);
  if (kind === 'arp') mon.arpReceived(slave, ARP_OP_REPLY, STRANGER, BOND, BOND, 50);
  if (kind === 'validated') {
    // An active slave is answered by a target; a backup sees the active slave's request.
    if (activeBackup && role === 'backup') mon.arpReceived(slave, ARP_OP_REQUEST, BOND, T1, BOND, 50);
    else mon.arpReceived(slave, ARP_OP_REPLY, T1, BOND, BOND, 50);
  }
  return mon.slaveInfo(slave)!.lastRx !== before;
}

for (const row of VALIDATE_TABLE) {
  test(`arp_validate ${row.validate}: active counts ${row.active.join(', ')}; backup counts ${row.backup.join(', ')}`, (t) => {
    for (const kind of KINDS) {
      t.is(counts(row.validate, true, 'active', kind), row.active.includes(kind), `active-backup, active slave, ${kind}`);
      t.is(counts(row.validate, true, 'backup', kind), row.backup.includes(kind), `active-backup, backup slave, ${kind}`);
      // The load-balance variant keeps every slave active, as the driver does.
      t.is(counts(row.validate, false, 'backup', kind), row.active.includes(kind), `load-balance, ${kind}`);
    }
  });
}

test('a validated ARP must come from a target and be addressed to the bond (0.0.0.0 when it has no address)', (t) => {
  const mon = new ArpMonitor(config({ validate: 'all', targets: [T1, T2] }));
  mon.addSlave(0, true, 0);
  const rx = (sender: number, target: number, bondIp: number, now: number): number => {
    mon.arpReceived(0, ARP_OP_REPLY, sender, target, bondIp, now);
    return mon.slaveInfo(0)!.lastRx;
  };
  t.is(rx(STRANGER, BOND, BOND, 10), -101, 'not from a target');
  t.is(rx(T1, STRANGER, BOND, 20), -101, 'not to the bond');
  t.is(rx(0, BOND, BOND, 30), -101, 'from 0.0.0.0');
  t.is(rx(T2, BOND, BOND, 40), 40);
  t.is(rx(T1, 0, 0, 50), 50, 'a bond without an address probes from 0.0.0.0 and is answered there');
  t.is(rx(T1, BOND, 0, 60), 50);
});

test('a backup trusts the active slave\'s requests only once the active one has been answered since it became active', (t) => {
  const mon = new ArpMonitor(config({ validate: 'all', activeBackup: true }));
  mon.addSlave(0, true, 0);
  mon.addSlave(1, true, 0);
  mon.setActive(0, 5);
  mon.arpReceived(1, ARP_OP_REQUEST, BOND, T1, BOND, 6);
  t.is(mon.slaveInfo(1)!.lastRx, -101);
  mon.arpReceived(0, ARP_OP_REPLY, T1, BOND, BOND, 7);
  mon.arpReceived(1, ARP_OP_REQUEST, BOND, T1, BOND, 8);
  t.is(mon.slaveInfo(1)!.lastRx, 8);
});

// ---------------------------------------------------------------------------------------------
// Active-backup variant

test('active-backup: probes go only on the active slave', (t) => {
  const bench = new Bench({ slaves: 3, activeBackup: true, validate: 'all', targets: [T1, T2] }).run(10);
  t.deepEqual(bench.events, []);
  t.is(bench.active, 0);
  for (let tick = 1; tick <= 10; tick++) t.deepEqual(bench.probed[tick], [0, 0]);
  t.is(bench.mon.probingSlave(), -1);
});

test('active-backup, arp_validate all: the active slave stops getting replies → down after arp_missed_max ticks; the backup, seeing its requests, stays up and takes over', (t) => {
  // The target's replies to slave 0 are lost from tick 11; its broadcasts still reach slave 1.
  const bench = new Bench({ activeBackup: true, validate: 'all', answers: (slave, _target, tick) => slave !== 0 || tick <= 10 });
  bench.until(12);
  t.true(bench.mon.isUp(0), 'not before');
  bench.step();
  t.deepEqual(bench.events, [[13, 0, false]], 'tick 10 + arp_missed_max + 1');
  t.true(bench.mon.isUp(1), 'the backup stays up');
  t.is(bench.active, 1, 'and becomes the active slave');
  t.deepEqual(bench.probed[13], [1], 'probed in the same tick, after the failover');
  bench.run(10);
  // Slave 0, now a backup, counts slave 1's requests once slave 1 has been answered as the
  // active slave (tick 13's reply): seen at tick 14, up on tick 15. It is not made active again.
  t.deepEqual(bench.events, [
    [13, 0, false],
    [15, 0, true],
  ]);
  t.is(bench.active, 1);
  t.like(bench.mon.slaveInfo(1), { up: true, failures: 0 });
});

test('active-backup: a backup that stops receiving goes down one tick later than the active slave would (arp_missed_max + 1)', (t) => {
  // No floods: slave 1 lives on frames only (arp_validate none); they stop after tick 10.
  const mon = new ArpMonitor(config({ activeBackup: true }));
  mon.addSlave(0, true, 0);
  mon.addSlave(1, true, 0);
  mon.setActive(0, 0);
  const probes: ArpProbe[] = [];
  const downs: number[] = [];
  for (let tick = 1; tick <= 20; tick++) {
    const now = tick * I;
    for (const c of mon.tick(now)) if (!c.up) downs.push(tick);
    mon.probe(now, probes);
    mon.frameSent(0, now);
    mon.frameReceived(0, now + 1);
    if (tick <= 10) mon.frameReceived(1, now + 1);
  }
  t.deepEqual(downs, [14]);
  t.true(mon.isUp(0));
});

test('active-backup: slaves enslaved or made active get 2.5 intervals of grace', (t) => {
  // Nobody ever answers: the active slave and the backup are written off at tick 3 (300 ms > 250 ms).
  const bench = new Bench({ activeBackup: true, validate: 'all', answers: () => false }).until(2);
  t.deepEqual(bench.events, []);
  bench.step();
  t.deepEqual(bench.events, [
    [3, 0, false],
    [3, 1, false],
  ]);
});

test('active-backup without an active slave: one candidate per tick, round the slaves with carrier, until one is answered', (t) => {
  // Nobody answers until tick 4, then the target answers slave 0 only.
  const bench = new Bench({ slaves: 3, activeBackup: true, validate: 'all', answers: (slave, _target, tick) => slave === 0 && tick >= 4 });
  bench.until(3);
  t.deepEqual(bench.events.map(([tick, , up]) => [tick, up]), [
    [3, false],
    [3, false],
    [3, false],
  ]);
  t.is(bench.active, -1);
  t.is(bench.mon.probingSlave(), 1, 'the rotation starts after the first slave');
  t.is(bench.mon.slaveInfo(1)!.link, LinkState.BACK);
  bench.until(6);
  t.deepEqual(bench.probed.slice(1, 7), [[0], [0], [1], [2], [0], [0]]);
  t.is(bench.mon.slaveInfo(1)!.link, LinkState.FAIL, 'a candidate without an answer');
  t.deepEqual(bench.events.slice(3), [[6, 0, true]], 'answered at tick 5, up at tick 6, the first after');
  t.is(bench.active, 0);
  t.is(bench.mon.probingSlave(), -1);
  t.deepEqual(bench.run(5).probed.slice(7), [[0], [0], [0], [0], [0]]);
});

test('active-backup rotation skips slaves without carrier and takes down one marked up without it', (t) => {
  const bench = new Bench({ slaves: 3, activeBackup: true, validate: 'all', answers: () => false }).until(3);
  bench.setCarrier(2, false);
  bench.until(8);
  t.deepEqual(bench.probed.slice(3, 9), [[1], [0], [1], [0], [1], [0]]);

  // A slave still marked up without carrier while there is no active slave (the driver's
  // "simultaneous failures"): the rotation takes it down.
  const mon = new ArpMonitor(config({ activeBackup: true }));
  mon.addSlave(0, true, 0);
  mon.addSlave(1, true, 0);
  mon.carrierChanged(0, false);
  const probes: ArpProbe[] = [];
  t.deepEqual(mon.probe(100, probes), [
    { slave: 0, up: false },
    { slave: 1, up: false },
  ], 'slave 0 for its carrier, slave 1 leaving UP for BACK as the candidate');
  t.deepEqual(probes, [{ slave: 1, target: T1 }]);
  t.like(mon.slaveInfo(0), { link: LinkState.DOWN, failures: 1 });
  t.like(mon.slaveInfo(1), { link: LinkState.BACK, failures: 0 });
});

test('removing the candidate or the active slave forgets it; slots are checked', (t) => {
  const mon = new ArpMonitor(config({ activeBackup: true }));
  mon.addSlave(3, false, 0);
  mon.addSlave(5, true, 0);
  t.false(mon.isUp(3), 'enslaved without carrier: down');
  t.true(mon.isUp(5));
  mon.probe(100, []);
  t.is(mon.probingSlave(), 5);
  mon.removeSlave(5);
  t.is(mon.probingSlave(), -1);
  t.is(mon.slaveInfo(5), undefined);
  mon.setActive(3, 200);
  mon.removeSlave(3);
  const probes: ArpProbe[] = [{ slave: 9, target: 9 }];
  t.deepEqual(mon.probe(300, probes), []);
  t.deepEqual(probes, [], 'no slaves: nothing to probe, and the list is emptied');
  t.throws(() => mon.addSlave(32, true, 0), { instanceOf: RangeError });
  mon.addSlave(0, true, 0);
  t.throws(() => mon.addSlave(0, true, 0), { instanceOf: RangeError });
  mon.frameReceived(31, 0);
  mon.arpReceived(31, ARP_OP_REPLY, T1, BOND, BOND, 0);
  mon.frameSent(31, 0);
  t.pass('frames on an unknown slave are ignored');
});

test('the configuration is checked', (t) => {
  t.throws(() => new ArpMonitor(config({ intervalMs: 0 })), { instanceOf: RangeError });
  t.throws(() => new ArpMonitor(config({ targets: [] })), { instanceOf: RangeError });
  t.throws(() => new ArpMonitor(config({ targets: new Array<number>(17).fill(T1) })), { instanceOf: RangeError });
  t.throws(() => new ArpMonitor(config({ missedMax: 0 })), { instanceOf: RangeError });
});
