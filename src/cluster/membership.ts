/**
 * Cluster membership and LNLB's convergence rounds (reference/lnlb.md, "Node table and
 * convergence"), as a state machine. Pure: messages and the time come in, decisions (frames to
 * send, view changes, deaths, state transfers) go out through `drainActions()`. The daemon
 * drives it from the control socket and one timer; the simulator from a fake wire and clock.
 *
 * Node table: sorted by MAC, so every node numbers the members alike; each entry has a status
 *   JOINING          known (JOIN, WELCOME or a heartbeat from an unknown MAC), not yet in the view
 *   WAITING_HEARTBEAT  a round is running and its heartbeat has not arrived
 *   ASKED_RETRASM    the round timed out once and it was asked to retransmit
 *   OK               heard in this round
 *   DEAD             removed (kept only in the action that reports it)
 *
 * Phases (`phase`; `#enter` is the one way into each and sets every field the phase owns, so
 * leave, rejoin, a self-reset or a round's end can leave no flag or timer of another behind):
 *   STOPPED ──start/rejoin──► JOINING ──(JOINs out)──► FIRST_ROUND or AWAITING_STATE ──► IDLE ⇄ CONVERGING
 *   STOPPED          takes no part: before `start`, after `stop` or `leave` (frames and ticks ignored).
 *   JOINING          sends `joinCount` JOINs `joinIntervalMs` apart (a new incarnation after a
 *                    rejoin or a reset); members answer WELCOME with their weights. The first round
 *                    starts when the JOINs are out, not sooner (a HEARTBEAT heard does not start it).
 *   FIRST_ROUND      the newcomer's first round (as CONVERGING below); completing it completes
 *                    the join: `accepting` from then on.
 *   AWAITING_STATE   the first round when a member that has joined exists at its start and the
 *                    tracking state has not arrived: it cannot complete until `stateReceived`
 *                    (state loaded, or no member left to send it), however long that takes, since
 *                    a newcomer that served without it would claim existing clients. The state
 *                    loaded while still JOINING makes the first round a FIRST_ROUND.
 *   IDLE             a member between rounds; the next round starts a heartbeat after the last
 *                    started (half of one when a weight is in flight), or when a HEARTBEAT
 *                    arrives (aligns the nodes' rounds), never within half a heartbeat of the last.
 *   CONVERGING       a member's round (below).
 *   Any of the last two ──stall longer than dead-after──► JOINING (self-reset, below).
 *   Any ──stop/leave──► STOPPED.
 *
 * Round (one at a time; FIRST_ROUND, AWAITING_STATE, CONVERGING):
 *   entry: lock own weight; every other member WAITING_HEARTBEAT, JOINING ones too (and if
 *     this is the first member of the table and has completed its own join, send them our
 *     tracking state); broadcast HEARTBEAT(weight); arm the round timeout.
 *   running: HEARTBEAT/RETRASM → sender OK with its weight.
 *     half the death timeout in, then every 32nd of it: a member not heard in this round →
 *     ASKRETRASM (unicast), ASKED_RETRASM; one silent for the whole death timeout (counted
 *     from the round's start at the earliest, plus the time this node's own ticks came late,
 *     at most half of it) → DEAD.
 *     every member OK (and, in AWAITING_STATE, the state in) → complete: weights applied, the
 *     view (election table) rebuilt only if membership or weights changed, then IDLE.
 *
 * Beyond LNLB:
 * - A round that changes nothing changes nothing: the view is republished, and new flows are
 *   held (`changePending`), only while a round is known to change the view (a newcomer, a new
 *   weight, a missing heartbeat). Routine rounds never hold up new clients.
 * - LNLB never starts a round less than a second after the last; that caps failover at seconds.
 *   Here the guard is half a heartbeat interval, which still stops received heartbeats from
 *   triggering a storm of rounds.
 * - Every message carries the sender's incarnation (random per start): a known MAC with a new
 *   incarnation restarted with an empty table, so its old self is removed first.
 * - A node whose own clock jumped by more than the death timeout between two ticks (SIGSTOP,
 *   a VM pause) has been declared dead by the others: it resets itself (forgets every member,
 *   asks the driver to clear its tracking state, rejoins with a new incarnation) rather than
 *   keep serving clients the others re-homed meanwhile.
 */

import { MessageType } from '../net/cluster-message.js';
import { MAX_MEMBERS } from './election.js';

import { NodeStatus } from './node-status.js';

export { NodeStatus };

/** Where this node is in its own life as a member (see the header; `#enter` sets each one up). */
export const MembershipPhase = {
  /** Not taking part: before `start`, after `stop` or `leave`. */
  STOPPED: 'STOPPED',
  /** JOINs going out, WELCOMEs coming back; the first round starts when the JOINs are out. */
  JOINING: 'JOINING',
  /** The newcomer's first round is running; completing it completes the join. */
  FIRST_ROUND: 'FIRST_ROUND',
  /** The first round, held open until the tracking state is loaded too. */
  AWAITING_STATE: 'AWAITING_STATE',
  /** A member, between rounds. */
  IDLE: 'IDLE',
  /** A member's round is running. */
  CONVERGING: 'CONVERGING',
} as const;
export type MembershipPhase = (typeof MembershipPhase)[keyof typeof MembershipPhase];

const Phase = MembershipPhase;

/** Phases in which a round runs (heartbeats expected, silent members asked, deaths declared). */
const ROUND_RUNS: Readonly<Record<MembershipPhase, boolean>> = {
  STOPPED: false,
  JOINING: false,
  FIRST_ROUND: true,
  AWAITING_STATE: true,
  IDLE: false,
  CONVERGING: true,
};

export interface MemberNode {
  /** Local to this node, stable while the node stays a member; tracking entries store it. Never 0. */
  readonly id: number;
  readonly mac: string;
  /** 48-bit MAC as a number: the sort key of the table. */
  readonly macKey: number;
  /** The weight in the published view (applied when a round completes). */
  weight: number;
  /** The weight its last heartbeat announced (applied at the end of the *next* round). */
  announcedWeight: number;
  /** The weight this round applies when it completes: what was announced before it started. */
  pendingWeight: number;
  status: NodeStatus;
  lastHeardAt: number;
  /** When it was last asked to retransmit (or probed): later than lastHeardAt, its silence runs on its own clock, not from a round's start. */
  askedAt: number;
  /** When it was first asked since it was last heard: it is asked for half a death timeout at least before it is declared dead. */
  firstAskedAt: number;
  readonly self: boolean;
  /** Random per start of the node's daemon: tells a restart from a repeated JOIN. 0 = not known yet. */
  incarnation: number;
  /** It says (FLAG_JOINED) it has completed its own join and serves: it can hand out state. */
  joined: boolean;
}

/** What a control message says besides its type, decoded by the control channel. */
export interface ControlInfo {
  /** HEARTBEAT/RETRASM: the sender's weight; 0 otherwise. */
  weight: number;
  /** The sender's per-start random number; 0 when the message has none. */
  incarnation: number;
  /** The sender has completed its own join. */
  joined: boolean;
  /** ASKRETRASM: a probe of a member already heard (answer in kind); RETRASM: the answer to one. */
  probe?: boolean;
}

const NO_INFO: ControlInfo = { weight: 0, incarnation: 0, joined: false };

export type DeathReason = 'missed-heartbeats' | 'left' | 'restarted' | 'self-reset';

export type MembershipAction =
  | { kind: 'send'; type: MessageType; to: 'cluster' | string; weight?: number; incarnation: number; joined: boolean; wake?: boolean; probe?: boolean }
  | { kind: 'view-changed' }
  | { kind: 'node-joined'; node: MemberNode }
  | { kind: 'node-died'; node: MemberNode; reason: DeathReason; silentMs: number }
  | { kind: 'send-state'; to: string }
  | { kind: 'round-completed'; durationMs: number; changedView: boolean }
  | { kind: 'reset'; stalledMs: number };

export interface MembershipOptions {
  selfMac: string;
  heartbeatMs: number;
  /**
   * A member that misses a round's heartbeat is asked to retransmit half of this into the
   * round, and again every 32nd of it, until it answers or has been silent (no authenticated
   * frame of any kind) this long, counted from the round's start at the earliest: then dead.
   */
  deadAfterMs: number;
  /** JOINs sent at start-up, `joinIntervalMs` apart (LNLB sends several, with a pause). */
  joinCount?: number;
  joinIntervalMs?: number;
  weight?: number;
  incarnation?: number;
  /** A new incarnation after a self-reset. */
  nextIncarnation?: (previous: number) => number;
}

export function macToKey(mac: string): number {
  return Number.parseInt(mac.replaceAll(':', ''), 16);
}

const isMember = (n: MemberNode): boolean => n.status !== NodeStatus.JOINING;

const NO_ACTIONS: readonly MembershipAction[] = Object.freeze([]);

export class Membership {
  readonly #opts: Required<MembershipOptions>;
  /** Sorted by macKey. Small (≤ MAX_MEMBERS): arrays beat maps here. */
  #nodes: MemberNode[] = [];
  #actions: MembershipAction[] = [];
  #nextId = 1;
  #incarnation: number;
  #weight: number;
  #lastTickAt = Number.NaN;
  /** Changed only by `#enter`, which sets up every field the phase owns. */
  #phase: MembershipPhase = Phase.STOPPED;

  // Owned by JOINING (set on entry; the JOINs are a counter of their own, since a tick that
  // came late may send the last of them after the first round has started, as it always did).
  #joinsLeft = 0;
  #nextJoinAt = 0;
  /** The tracking state arrived before the first round started: that round need not wait for it. */
  #stateArrivedEarly = false;

  // Owned by the rounds (FIRST_ROUND, AWAITING_STATE, CONVERGING): set when a round starts,
  // cleared when it ends. `#roundStartedAt` outlives the round: the storm guard and the
  // round-completed duration read it; JOINING clears it (a new incarnation has had no round).
  #roundStartedAt = Number.NEGATIVE_INFINITY;
  /** When the round next asks its silent members to retransmit, or declares one dead. */
  #roundCheckAt = Number.POSITIVE_INFINITY;
  /** Time this round's ticks came late (our thread starved or blocked): nobody's silence. */
  #deafMs = 0;
  /** The last stalls (when the late tick came, and how late), whatever the round. */
  readonly #stalls: { at: number; ms: number }[] = [];
  #roundChangesView = false;
  /** This round changes who is a member (a join, a likely death), not only weights. */
  #roundChangesMembership = false;
  /**
   * When the next round starts: in JOINING the first round, once the JOINs are out and the
   * WELCOMEs back (a HEARTBEAT does not start it sooner); in IDLE the next heartbeat's round
   * (a HEARTBEAT received starts it sooner, the storm guard permitting).
   */
  #nextRoundAt = Number.POSITIVE_INFINITY;

  /** The last `nextDeadline()` the driver was given: a tick later than it found us stalled. */
  #promisedTickAt = Number.NaN;
  /**
   * A member announced a second weight before the first was applied here: nodes may pass
   * through the middle one at different moments, so no key's owner is certain until it settles.
   */
  #weightsAmbiguous = false;
  #lockedWeight = 1;
  /** changePending and holdsAllNewFlows as last published (a change of either is a view change for the actors). */
  #publishedPending = 0;

  /** Nodes refused because the table was full; counted for the status. */
  tableFull = 0;
  roundsCompleted = 0;
  resets = 0;
  /** Ticks that came later than promised (the driver's thread did not run): the longest, and all of them. */
  stallMaxMs = 0;
  stallTotalMs = 0;

  constructor(options: MembershipOptions) {
    this.#opts = {
      joinCount: 3,
      joinIntervalMs: Math.max(10, Math.min(100, Math.floor(options.heartbeatMs / 4))),
      weight: 1,
      incarnation: 1,
      nextIncarnation: (previous: number) => (previous + 1) >>> 0 || 1,
      ...options,
    };
    this.#incarnation = this.#opts.incarnation;
    this.#weight = this.#opts.weight;
  }

  /** Where this node is: STOPPED, JOINING, FIRST_ROUND, AWAITING_STATE, IDLE or CONVERGING. */
  get phase(): MembershipPhase {
    return this.#phase;
  }

  /** Own join complete: the first round completed (LNLB: "has completed its own join"), and not stopped since. */
  get #joined(): boolean {
    return this.#phase === Phase.IDLE || this.#phase === Phase.CONVERGING;
  }

  get #roundRunning(): boolean {
    return ROUND_RUNS[this.#phase];
  }

  get accepting(): boolean {
    return this.#joined;
  }

  /** A round is running that will change the view: new flows should wait for it. */
  get changePending(): boolean {
    return (this.#roundRunning && this.#roundChangesView) || this.#weightsInFlight();
  }

  /**
   * Every new flow must wait: the members change (a join, a likely death), a weight changed
   * twice in flight, or two members' weights are in flight (`#weightsInFlightFrom`). Otherwise
   * a pending change is of one member's weight alone, and the view publishes the weights it
   * goes to (each member's announced weight): a new flow whose owner is the same under both
   * sets of weights is decided at once, by every node alike whichever set it holds; only the
   * flows the new weight moves wait (see `weightsPending`).
   */
  get holdsAllNewFlows(): boolean {
    if (this.membersChanging) return true;
    const inFlight = this.#weightsInFlightFrom();
    return inFlight >= 2 || (inFlight === 1 && this.#weightsAmbiguous);
  }

  /**
   * How many members have a weight announced and not yet applied here. Two or more hold every
   * new flow: a node applies, at the end of a round, the weights it had heard of when the round
   * started, so one that had heard of one of them when another had heard of both passes through
   * weights no other node holds, and decides flows by them that the others decide otherwise
   * (the decisions property under 150 ms of jitter: 1 to 2 seeds in 200 had a source decided
   * two ways, 0 in 400 since). On one host whose load average sets every node's weight, every
   * node announces at once.
   */
  #weightsInFlightFrom(): number {
    if (!this.#joined) return 0;
    let count = 0;
    for (const node of this.#nodes) if (isMember(node) && node.announcedWeight !== node.weight) count++;
    return count;
  }

  /** A running round changes who is a member (a join, a likely death): every new flow waits, whenever it came. */
  get membersChanging(): boolean {
    return this.#roundRunning && this.#roundChangesMembership;
  }

  /** Weights alone are changing: only the flows whose owner they move wait. */
  get weightsPending(): boolean {
    return this.changePending && !this.holdsAllNewFlows;
  }

  /**
   * A weight is announced and not yet applied (by us, or by a node we heard). Nodes apply it
   * at the end of the round after the one that announced it; when the nodes' rounds are not
   * aligned (a death's timeouts, a late RETRASM, a round held back by the storm guard) they
   * apply it at different moments, and for that moment would elect new flows differently:
   * two nodes would take one SYN, or none. So from the announcement until the weight is
   * applied here, new flows whose owner the new weight moves wait (weightsPending; all of
   * them when a second weight is in flight, holdsAllNewFlows); the others are decided at once,
   * alike by every node whichever weights it holds. The applying round starts half a
   * heartbeat after the announcing one, not a whole one.
   */
  #weightsInFlight(): boolean {
    return this.#weightsInFlightFrom() > 0;
  }

  /** Publishes the view when the holding of new flows starts or ends outside a round's edges. */
  #syncPending(): void {
    if (this.#weightsAmbiguous && !this.#weightsInFlight()) this.#weightsAmbiguous = false;
    const pending = (this.changePending ? 1 : 0) | (this.holdsAllNewFlows ? 2 : 0);
    if (pending !== this.#publishedPending) {
      this.#publishedPending = pending;
      this.#viewChanged();
    }
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  get nodes(): readonly MemberNode[] {
    return this.#nodes;
  }

  /** The members of the published view, in table order. */
  get members(): MemberNode[] {
    return this.#nodes.filter(isMember);
  }

  get self(): MemberNode | undefined {
    return this.#nodes.find((n) => n.self);
  }

  drainActions(): readonly MembershipAction[] {
    const out = this.#actions;
    if (out.length === 0) return NO_ACTIONS; // most heartbeats: nothing allocated
    this.#actions = [];
    return out;
  }

  /** The weight this node announces from its next round on (LNLB locks it per round). */
  setWeight(weight: number): void {
    this.#weight = weight;
    this.#syncPending();
  }

  /** The node adds itself and starts the join phase. */
  start(now: number): void {
    if (this.#phase !== Phase.STOPPED) return;
    this.#lastTickAt = now;
    this.#add(this.#opts.selfMac, this.#weight, now, true, NodeStatus.OK);
    this.#enter(Phase.JOINING, now);
    this.tick(now);
  }

  /** Sends LEAVE so the others remove this node at once rather than after a timeout. */
  stop(): void {
    if (this.#phase === Phase.STOPPED) return;
    this.#send(MessageType.LEAVE, 'cluster'); // says whether we had joined: before the phase goes
    this.#enter(Phase.STOPPED, this.#lastTickAt);
  }

  /**
   * `lnlbctl stop`: sends LEAVE, forgets the other members (they remove this node at once and
   * re-home its clients) and stops taking part until `rejoin`. Nothing is reported as dead:
   * it is this node that left.
   */
  leave(): void {
    if (this.#phase === Phase.STOPPED) return;
    this.stop();
    for (const node of [...this.#nodes]) if (!node.self) this.#nodes.splice(this.#nodes.indexOf(node), 1);
    this.#publishedPending = 0;
    this.#viewChanged();
  }

  /** `lnlbctl start` after `stop`: joins again as a new incarnation, as a newcomer does. */
  rejoin(now: number): void {
    if (this.#phase !== Phase.STOPPED) return;
    this.#lastTickAt = now;
    this.#incarnation = this.#opts.nextIncarnation(this.#incarnation);
    this.self!.incarnation = this.#incarnation;
    this.#enter(Phase.JOINING, now);
    this.#viewChanged();
    this.tick(now);
  }

  /** The tracking state arrived and is loaded (or there is none to wait for: no member that has joined is left). */
  stateReceived(): void {
    if (this.#phase === Phase.JOINING) this.#stateArrivedEarly = true;
    else if (this.#phase === Phase.AWAITING_STATE) this.#enter(Phase.FIRST_ROUND, this.#lastTickAt); // the round goes on
  }

  /** When the running round started; NaN between rounds. */
  get roundStartedAt(): number {
    return this.#roundRunning ? this.#roundStartedAt : Number.NaN;
  }

  /**
   * The first round waits for the tracking state: the driver gets it (cluster/state-transfer.ts).
   * No timeout here: it waits until the driver says the state is in, or that no member is left
   * to send it (`stateReceived`), since a newcomer that served without it would claim existing
   * clients.
   */
  get awaitingState(): boolean {
    return this.#phase === Phase.AWAITING_STATE;
  }

  /**
   * A decoded control message from `srcMac` (already checked for cluster IP, CRC and key),
   * handled at `now`. `heardAt` (default `now`) is when it reached
   * this host, which is earlier when it waited to be read (a settled node reads heartbeats on
   * its own timer): its sender's silence counts from then. (A death is still counted from the
   * round's start at the earliest, and a settled node's rounds start on its own timer: that
   * bound, not the read, is what can put a death up to a heartbeat later.)
   */
  receive(type: MessageType, srcMac: string, now: number, info: ControlInfo = NO_INFO, heardAt = now): void {
    this.#receive(type, srcMac, now, info, heardAt);
    this.#syncPending();
  }

  #receive(type: MessageType, srcMac: string, now: number, info: ControlInfo, heardAt: number): void {
    const { weight, incarnation } = info;
    if (this.#phase === Phase.STOPPED || srcMac === this.#opts.selfMac) return;
    let node = this.#find(srcMac);
    if (type === MessageType.LEAVE) {
      if (node) this.#remove(node, 'left', now);
      this.#checkRoundComplete(now);
      return;
    }
    if (node && incarnation !== 0 && node.incarnation !== 0 && node.incarnation !== incarnation) {
      // The same MAC started again with an empty table: a new member; its old self's entries
      // must go, or its clients would stay pinned to a node that forgot them.
      this.#remove(node, 'restarted', now);
      node = undefined;
    }
    if (!node) {
      // LNLB: JOIN, WELCOME or a heartbeat from an unknown MAC adds it. It enters the view
      // through a round, like every change.
      node = this.#add(srcMac, weight > 0 ? weight : 1, now, false, NodeStatus.JOINING);
      if (!node) return;
    }
    if (node.incarnation === 0) node.incarnation = incarnation;
    // Never earlier than heard before: frames are read in the order they came.
    node.lastHeardAt = Math.max(node.lastHeardAt, heardAt);
    node.joined = info.joined;
    switch (type) {
      case MessageType.JOIN:
        // Our weight as every member's view has it: the newcomer starts from the same view.
        this.#send(MessageType.WELCOME, 'cluster', this.self!.weight);
        break;
      case MessageType.WELCOME:
        // A newcomer takes the members' weights as they stand in everyone's view.
        if (!this.#joined && weight > 0) node.weight = node.announcedWeight = node.pendingWeight = weight;
        break;
      case MessageType.ASKRETRASM:
        // It is alive (lastHeardAt, above), but the round still needs its HEARTBEAT or RETRASM:
        // they carry the weight it locked, which every node must know before the next round.
        this.#send(MessageType.RETRASM, srcMac, this.#lockedWeight, false, info.probe === true);
        break;
      case MessageType.HEARTBEAT:
      case MessageType.RETRASM:
        if (type === MessageType.HEARTBEAT && !this.#roundRunning) this.#startRound(now);
        // A RETRASM stands for a heartbeat only in a round that asked for it, and never when it
        // answers a probe (`#probeHeard`): alive, nothing more (the weight it carries may be of
        // another round than this one).
        if (type === MessageType.RETRASM && (info.probe === true || (this.#roundRunning && node.status !== NodeStatus.ASKED_RETRASM))) break;
        this.#heard(node, weight);
        this.#checkRoundComplete(now);
        break;
      default:
        break;
    }
  }

  /** Advances timers: JOIN repeats, round start and timeouts, the stall check. */
  tick(now: number): void {
    this.#tick(now);
    this.#syncPending();
  }

  #tick(now: number): void {
    if (this.#phase === Phase.STOPPED) {
      // Nothing to do, but `nextDeadline` counts from the last tick: a frozen one asked the
      // driver to tick again at once, every millisecond, for as long as the node stayed out.
      this.#lastTickAt = now;
      return;
    }
    const stalled = now - this.#lastTickAt;
    this.#lastTickAt = now;
    // Late for the tick we asked for: frames that came meanwhile were not read (or the socket
    // dropped them), so those milliseconds are not the members' silence but ours. Measured
    // under a forged flood on two shared cores: control threads starved for 400-600 ms.
    // A timer a few ms late is the norm under load, and a thread late because it was busy
    // reading frames was listening: only a stall of an eighth of the death timeout counts, and
    // a round is lengthened by at most half of it (a machine loaded for good must still
    // declare real deaths; an unbounded credit held a loaded cluster's rounds open for seconds).
    const late = now - this.#promisedTickAt;
    this.#promisedTickAt = Number.NaN;
    if (late > this.#opts.deadAfterMs / 8) {
      this.#deafMs = Math.min(this.#deafMs + late, this.#opts.deadAfterMs / 2);
      // The last few, for the members whose silence spans rounds (#deadAtAsked).
      if (this.#stalls.length >= 8) this.#stalls.shift();
      this.#stalls.push({ at: now, ms: late });
      this.stallTotalMs += late;
      if (late > this.stallMaxMs) this.stallMaxMs = late;
    }
    if (stalled > this.#opts.deadAfterMs && this.#joined) {
      this.#reset(now, stalled);
      return;
    }
    if (this.#joinsLeft > 0 && now >= this.#nextJoinAt) {
      this.#joinsLeft--;
      this.#nextJoinAt = now + this.#opts.joinIntervalMs;
      this.#send(MessageType.JOIN, 'cluster', this.#weight);
    }
    if (!this.#roundRunning && now >= this.#nextRoundAt) this.#startRound(now);
    if (this.#roundRunning && now >= this.#roundCheckAt) this.#checkSilentMembers(now);
    this.#checkRoundComplete(now);
  }

  /** The next time `tick` has something to do: a driver sleeps exactly that long. */
  nextDeadline(): number {
    let t = this.#roundRunning ? this.#roundCheckAt : this.#nextRoundAt;
    if (this.#joinsLeft > 0) t = Math.min(t, this.#nextJoinAt);
    // Tick at least every half death timeout, so a stall is measured against a recent tick.
    t = Math.min(t, this.#lastTickAt + this.#opts.deadAfterMs / 2);
    // A deadline already past (a round that ran longer than a heartbeat leaves the next round's
    // start behind) asks for a tick now: late is counted from now, not from that deadline (it
    // counted a 300 ms stall after every round a death held open).
    this.#promisedTickAt = Math.max(t, this.#lastTickAt);
    return t;
  }

  get #firstAskMs(): number {
    return this.#opts.deadAfterMs / 2;
  }

  get #askIntervalMs(): number {
    return this.#opts.deadAfterMs / 32;
  }

  /**
   * The one way into a phase: sets every field the phase owns, so that no path (leave, rejoin,
   * a self-reset, a round's end) can leave a flag or a timer of another phase behind. Actions
   * (frames, view changes) stay with the callers.
   */
  #enter(phase: MembershipPhase, now: number): void {
    const roundWasRunning = this.#roundRunning;
    this.#phase = phase;
    switch (phase) {
      case Phase.STOPPED:
        this.#joinsLeft = 0;
        this.#stateArrivedEarly = false;
        this.#endRound();
        this.#nextRoundAt = Number.POSITIVE_INFINITY;
        this.#weightsAmbiguous = false; // no weight is in flight for a node that takes no part
        break;
      case Phase.JOINING:
        this.#joinsLeft = this.#opts.joinCount;
        this.#nextJoinAt = now;
        this.#stateArrivedEarly = false;
        this.#endRound();
        this.#roundStartedAt = Number.NEGATIVE_INFINITY; // a new incarnation: no storm to guard against
        // A tick promised while stopped (or before a reset) measures no stall of this incarnation:
        // a rejoin after 5 s out counted a 4.8 s stall.
        this.#promisedTickAt = Number.NaN;
        // The first round starts once the JOINs are out and the WELCOMEs back.
        this.#nextRoundAt = now + this.#opts.joinCount * this.#opts.joinIntervalMs;
        this.#weightsAmbiguous = false;
        break;
      case Phase.FIRST_ROUND:
      case Phase.AWAITING_STATE:
      case Phase.CONVERGING:
        if (roundWasRunning) break; // AWAITING_STATE → FIRST_ROUND: the state is in, the same round goes on
        this.#roundStartedAt = now;
        this.#deafMs = 0;
        this.#roundCheckAt = now + this.#firstAskMs;
        this.#nextRoundAt = now + this.#opts.heartbeatMs;
        this.#roundChangesView = false;
        this.#roundChangesMembership = false;
        break;
      case Phase.IDLE:
        this.#endRound();
        // A weight announced in this round is applied by the next: start it as soon as the storm
        // guard allows rather than a heartbeat later, since new flows are held until then.
        if (this.#weightsInFlight()) this.#nextRoundAt = Math.min(this.#nextRoundAt, Math.max(now, this.#roundStartedAt + this.#opts.heartbeatMs / 2));
        break;
    }
  }

  /** Clears what only a running round uses. */
  #endRound(): void {
    this.#roundCheckAt = Number.POSITIVE_INFINITY;
    this.#roundChangesView = false;
    this.#roundChangesMembership = false;
  }

  #startRound(now: number): void {
    if (this.#phase !== Phase.IDLE && this.#phase !== Phase.JOINING) return;
    if (this.#phase === Phase.JOINING && now < this.#nextRoundAt) return; // still sending JOINs
    if (now - this.#roundStartedAt < this.#opts.heartbeatMs / 2) return; // no storm of rounds
    // A newcomer among nodes that have joined waits for the tracking state, however long it
    // takes while a member that can send it lives. Nodes starting together (none has joined)
    // have no state to wait for.
    if (this.#joined) this.#enter(Phase.CONVERGING, now);
    else if (!this.#stateArrivedEarly && this.#nodes.some((n) => !n.self && n.joined)) this.#enter(Phase.AWAITING_STATE, now);
    else this.#enter(Phase.FIRST_ROUND, now);
    // Every node applies at the end of this round the weights announced *before* it started,
    // so all nodes know at the start that the round changes the view and hold new flows from
    // the start. (A weight learned during the round would be applied by a node that had it
    // and not by one whose copy of the heartbeat was still on the wire.)
    let changes = !this.#joined;
    let membershipChanges = !this.#joined;
    for (const node of this.#nodes) {
      node.pendingWeight = node.announcedWeight;
      if (node.pendingWeight !== node.weight) changes = true;
    }
    this.#lockedWeight = this.#weight;
    const self = this.self!;
    this.#noteAnnounced(self, this.#lockedWeight);
    self.announcedWeight = this.#lockedWeight;
    self.status = NodeStatus.OK;
    const joining: MemberNode[] = [];
    for (const node of this.#nodes) {
      if (node.self) continue;
      if (node.status === NodeStatus.JOINING) {
        joining.push(node);
        membershipChanges = true;
      }
      node.status = NodeStatus.WAITING_HEARTBEAT;
    }
    // LNLB: the first member of the table that has completed its own join hands its tracking
    // state to the newcomers, so their first decisions agree with everyone's tables.
    if (joining.length > 0 && this.#joined && this.#nodes.find((n) => !joining.includes(n)) === self) {
      for (const node of joining) this.#actions.push({ kind: 'send-state', to: node.mac });
    }
    // A member asked in the last round and silent since is asked on at once, on its own clock.
    for (const node of this.#nodes) {
      if (!node.self && node.status === NodeStatus.WAITING_HEARTBEAT && node.askedAt > node.lastHeardAt) {
        this.#roundCheckAt = Math.min(this.#roundCheckAt, now + this.#askIntervalMs);
        membershipChanges = true;
      }
    }
    this.#setChangesView(changes || membershipChanges, membershipChanges);
    // A weight announced and not applied yet: the heartbeat rings every member's doorbell
    // (FLAG_WAKE), so they all hold the flows it moves from the same moment, not from their
    // next quiet read a heartbeat apart.
    this.#send(MessageType.HEARTBEAT, 'cluster', this.#lockedWeight, this.#lockedWeight !== self.weight);
  }

  /** A second weight announced before the first is applied makes the owner of no key certain. */
  #noteAnnounced(node: MemberNode, weight: number): void {
    if (isMember(node) && node.announcedWeight !== node.weight && weight !== node.announcedWeight) this.#weightsAmbiguous = true;
  }

  #heard(node: MemberNode, weight: number): void {
    if (weight > 0) {
      this.#noteAnnounced(node, weight);
      node.announcedWeight = weight;
    }
    // Known only since this round started: it enters the view through the next round.
    if (!this.#roundRunning || node.status === NodeStatus.JOINING) return;
    if (node.status === NodeStatus.ASKED_RETRASM) this.#setChangesView(true, true);
    node.status = NodeStatus.OK;
  }

  /**
   * LNLB declares a member dead when one retransmit request goes unanswered: two frames lost of
   * three (its heartbeat, our request or its answer) kill a live node, and a flood that makes
   * the kernel drop a fifth of the control frames did so several times a minute (bench
   * control-flood; the simulator at 18% loss: 626 false deaths in 30 node-minutes). Here death
   * is silence: no authenticated frame of any kind for `deadAfterMs` since the round started
   * (or since it was last heard, if later), and from half of that on the silent member is
   * asked again every 32nd of it: 16 requests, of which one answer is enough. Failover takes
   * as long as before. The first request is no earlier than LNLB's: a RETRASM carries the
   * weight the member locked for its *current* round, and learning that early over a jittery
   * wire made nodes apply a weight one round apart (the jitter properties below caught it).
   * Time this node itself was not running (its ticks came late) is not counted as silence.
   */
  #checkSilentMembers(now: number): void {
    let next = now + this.#askIntervalMs;
    for (const node of [...this.#nodes]) {
      if (node.status === NodeStatus.OK && !node.self) {
        next = Math.min(next, this.#probeHeard(node, now));
        continue;
      }
      if (node.status !== NodeStatus.WAITING_HEARTBEAT && node.status !== NodeStatus.ASKED_RETRASM) continue;
      // Silent since it was asked in an earlier round (a probe while another member held that
      // round open): counted from its last frame, not again from this round's start.
      const deadAt = this.#asked(node) ? this.#deadAtAsked(node) : Math.max(node.lastHeardAt, this.#roundStartedAt) + this.#opts.deadAfterMs + this.#deafMs;
      if (now >= deadAt) {
        this.#remove(node, 'missed-heartbeats', now);
        continue;
      }
      node.status = NodeStatus.ASKED_RETRASM;
      this.#noteAsked(node, now);
      this.#setChangesView(true, true); // a death is likely: hold new flows until it is settled
      this.#send(MessageType.ASKRETRASM, node.mac);
      next = Math.min(next, deadAt);
    }
    this.#roundCheckAt = next;
  }

  /**
   * A member heard in this round, while the round is held open (by another member's silence):
   * its silence is counted from its last frame and it is asked as a missing one is. Without
   * this, a member killed just after its heartbeat, in a round another dead member held open
   * for the whole death timeout, got a second timeout from the next round's start: N/8 nodes
   * killed at once took 1.4-1.7 s to fail over, one alone 0.7-1 s. A live member answers
   * (RETRASM); its weight is not taken from that answer (see `#receive`). Returns when to look
   * at it again.
   */
  #probeHeard(node: MemberNode, now: number): number {
    const askAt = node.lastHeardAt + this.#firstAskMs;
    if (now < askAt) return askAt;
    if (this.#asked(node) && now >= this.#deadAtAsked(node)) {
      this.#remove(node, 'missed-heartbeats', now);
      return Number.POSITIVE_INFINITY;
    }
    this.#setChangesView(true, true); // a death is likely: hold new flows until it is settled
    this.#noteAsked(node, now);
    this.#send(MessageType.ASKRETRASM, node.mac, undefined, false, true);
    return Math.min(now + this.#askIntervalMs, this.#deadAtAsked(node));
  }

  /** Asked since it was last heard. */
  #asked(node: MemberNode): boolean {
    return node.askedAt > node.lastHeardAt;
  }

  #noteAsked(node: MemberNode, now: number): void {
    if (!this.#asked(node)) node.firstAskedAt = now;
    node.askedAt = now;
  }

  /**
   * An asked member is dead once silent for the death timeout and asked for half of it at
   * least (16 requests, one answer enough: what a lossy wire needs), not counting the time this
   * node itself stalled meanwhile.
   */
  #deadAtAsked(node: MemberNode): number {
    return Math.max(node.lastHeardAt + this.#opts.deadAfterMs, node.firstAskedAt + this.#firstAskMs) + Math.max(this.#deafMs, this.#stalledSince(node.lastHeardAt));
  }

  /** This node's own stalls (its ticks came late) since `since`, at most half a death timeout. */
  #stalledSince(since: number): number {
    let ms = 0;
    for (const stall of this.#stalls) if (stall.at > since) ms += stall.ms;
    return Math.min(ms, this.#opts.deadAfterMs / 2);
  }

  #checkRoundComplete(now: number): void {
    if (!this.#roundRunning) return;
    if (this.#nodes.some((n) => n.status === NodeStatus.WAITING_HEARTBEAT || n.status === NodeStatus.ASKED_RETRASM)) return;
    if (this.#phase === Phase.AWAITING_STATE) return; // a newcomer waits for the state
    let changed = this.#roundChangesView;
    for (const node of this.#nodes) {
      if (node.status === NodeStatus.JOINING) continue; // arrived during the round: next one
      if (node.weight !== node.pendingWeight) {
        node.weight = node.pendingWeight;
        changed = true;
      }
    }
    const firstRound = !this.#joined;
    this.#enter(Phase.IDLE, now);
    this.roundsCompleted++;
    this.#actions.push({ kind: 'round-completed', durationMs: now - this.#roundStartedAt, changedView: changed || firstRound });
    // `changed` includes a pending change, whose end actors must see too.
    if (changed || firstRound) this.#viewChanged();
  }

  #setChangesView(changes: boolean, membership = false): void {
    if (membership && !this.#roundChangesMembership) {
      this.#roundChangesMembership = true;
      this.#viewChanged();
    }
    if (changes && !this.#roundChangesView) {
      this.#roundChangesView = true;
      this.#viewChanged();
    }
  }

  #reset(now: number, stalledMs: number): void {
    this.resets++;
    this.#actions.push({ kind: 'reset', stalledMs });
    for (const node of [...this.#nodes]) if (!node.self) this.#remove(node, 'self-reset', now);
    this.#incarnation = this.#opts.nextIncarnation(this.#incarnation);
    const self = this.self!;
    self.incarnation = this.#incarnation;
    this.#enter(Phase.JOINING, now);
    this.#viewChanged();
  }

  #send(type: MessageType, to: 'cluster' | string, weight?: number, wake = false, probe = false): void {
    // One object per frame sent, of one shape (no spread): the heartbeat path allocates no more.
    const action: Extract<MembershipAction, { kind: 'send' }> = { kind: 'send', type, to, incarnation: this.#incarnation, joined: this.#joined };
    if (weight !== undefined) action.weight = weight;
    if (wake) action.wake = true;
    if (probe) action.probe = true;
    this.#actions.push(action);
  }

  #find(mac: string): MemberNode | undefined {
    return this.#nodes.find((n) => n.mac === mac);
  }

  #add(mac: string, weight: number, now: number, self: boolean, status: NodeStatus): MemberNode | undefined {
    if (this.#nodes.length >= MAX_MEMBERS) {
      this.tableFull++;
      return undefined;
    }
    const node: MemberNode = {
      id: this.#nextId,
      mac,
      macKey: macToKey(mac),
      weight,
      announcedWeight: weight,
      pendingWeight: weight,
      status,
      lastHeardAt: now,
      askedAt: Number.NEGATIVE_INFINITY,
      firstAskedAt: Number.NEGATIVE_INFINITY,
      self,
      incarnation: self ? this.#incarnation : 0,
      joined: false,
    };
    // Ids are not reused within a run (65535 joins before a wrap), so a stale tracking entry
    // cannot be mistaken for a newcomer's.
    this.#nextId = this.#nextId >= 0xffff ? 1 : this.#nextId + 1;
    const at = this.#nodes.findIndex((n) => n.macKey > node.macKey);
    if (at < 0) this.#nodes.push(node);
    else this.#nodes.splice(at, 0, node);
    if (!self) this.#actions.push({ kind: 'node-joined', node });
    return node;
  }

  #remove(node: MemberNode, reason: DeathReason, now: number): void {
    const at = this.#nodes.indexOf(node);
    if (at < 0) return;
    this.#nodes.splice(at, 1);
    const wasMember = isMember(node);
    node.status = NodeStatus.DEAD;
    this.#actions.push({ kind: 'node-died', node, reason, silentMs: now - node.lastHeardAt });
    if (wasMember) this.#viewChanged();
  }

  #viewChanged(): void {
    const last = this.#actions[this.#actions.length - 1];
    if (last?.kind !== 'view-changed') this.#actions.push({ kind: 'view-changed' });
  }
}
