/**
 * Minimal cluster membership: the node table and who is alive. Pure: messages and the time
 * come in, decisions (frames to send, view changes, deaths) go out through `drainActions()`.
 * The daemon feeds it from the control socket and a periodic tick; the simulator feeds it from
 * a fake wire and a fake clock.
 *
 * What it implements of LNLB (reference/lnlb.md, "Node table and convergence"):
 * - the table sorted by MAC, so every node numbers the members alike;
 * - JOIN sent several times at start-up; JOIN from an unknown MAC adds it and is answered
 *   with a broadcast WELCOME; WELCOME or HEARTBEAT from an unknown MAC adds it;
 * - HEARTBEAT(weight) every heartbeat interval; any heartbeat sets the sender OK with its
 *   weight;
 * - a node not heard from for `deadAfterMs` is DEAD: handlers are told, it is removed;
 * - LEAVE removes the sender at once;
 * - until the first round completes (the join phase: JOINs sent and answers collected) the
 *   node accepts nothing.
 * The full convergence rounds (ASKRETRASM/RETRASM, locked weights, queueing) build on this.
 */

import { MessageType } from '../net/cluster-message.js';
import { MAX_MEMBERS } from './election.js';

export const NodeStatus = {
  OK: 'OK',
  DEAD: 'DEAD',
} as const;
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

export interface MemberNode {
  /** Stable for as long as the node stays a member; tracking entries store it. Never 0. */
  readonly id: number;
  readonly mac: string;
  /** 48-bit MAC as a number: the sort key of the table. */
  readonly macKey: number;
  weight: number;
  status: NodeStatus;
  lastHeardAt: number;
  readonly self: boolean;
  /** Random per start of the node's daemon: tells a restart from a repeated JOIN. */
  incarnation: number;
}

export type DeathReason = 'heartbeat-timeout' | 'left' | 'restarted';

export type MembershipAction =
  | { kind: 'send'; type: MessageType; to: 'cluster' | string; weight?: number; incarnation?: number }
  | { kind: 'view-changed' }
  | { kind: 'node-joined'; node: MemberNode }
  | { kind: 'node-died'; node: MemberNode; reason: DeathReason; silentMs: number };

export interface MembershipOptions {
  selfMac: string;
  heartbeatMs: number;
  deadAfterMs: number;
  /** JOINs sent at start-up, `joinIntervalMs` apart (LNLB sends several, with a pause). */
  joinCount?: number;
  joinIntervalMs?: number;
  weight?: number;
  /** Sent in JOIN; a JOIN with another incarnation from a known MAC is a restart. */
  incarnation?: number;
}

export function macToKey(mac: string): number {
  return Number.parseInt(mac.replaceAll(':', ''), 16);
}

export class Membership {
  readonly #opts: Required<MembershipOptions>;
  /** Sorted by macKey. Small (≤ MAX_MEMBERS): arrays beat maps here. */
  #nodes: MemberNode[] = [];
  #actions: MembershipAction[] = [];
  #nextId = 1;
  #joinsLeft: number;
  #nextJoinAt = 0;
  #nextHeartbeatAt = 0;
  #firstRoundDoneAt = Number.POSITIVE_INFINITY;
  #accepting = false;
  #started = false;
  /** Frames from nodes beyond MAX_MEMBERS are refused; counted for the status. */
  tableFull = 0;

  constructor(options: MembershipOptions) {
    this.#opts = {
      joinCount: 3,
      joinIntervalMs: Math.max(20, Math.min(100, Math.floor(options.heartbeatMs / 4))),
      weight: 1,
      incarnation: 0,
      ...options,
    };
    this.#joinsLeft = this.#opts.joinCount;
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  get nodes(): readonly MemberNode[] {
    return this.#nodes;
  }

  get self(): MemberNode | undefined {
    return this.#nodes.find((n) => n.self);
  }

  drainActions(): MembershipAction[] {
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  /** The node adds itself and starts the join phase. */
  start(now: number): void {
    if (this.#started) return;
    this.#started = true;
    this.#add(this.#opts.selfMac, this.#opts.weight, now, true);
    this.#nextJoinAt = now;
    this.#nextHeartbeatAt = now;
    // Every live member heartbeats once per interval; after the JOINs and one full interval
    // plus a margin, a newcomer has heard from every live node that will answer.
    const joinPhase = (this.#opts.joinCount - 1) * this.#opts.joinIntervalMs;
    this.#firstRoundDoneAt = now + Math.max(joinPhase, this.#opts.heartbeatMs) + this.#opts.joinIntervalMs;
    this.tick(now);
  }

  /** Sends LEAVE so the others remove this node at once rather than after a timeout. */
  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    this.#accepting = false;
    this.#actions.push({ kind: 'send', type: MessageType.LEAVE, to: 'cluster' });
  }

  /** A decoded control message from `srcMac` (already checked for cluster IP and CRC). */
  /**
   * `incarnation` is the sender's per-start random number (0 when the message has none): a
   * message of a new incarnation from a known MAC means that node restarted.
   */
  receive(type: MessageType, srcMac: string, weight: number, now: number, incarnation = 0): void {
    if (!this.#started || srcMac === this.#opts.selfMac) return;
    let node = this.#find(srcMac);
    switch (type) {
      case MessageType.JOIN:
      case MessageType.WELCOME:
      case MessageType.HEARTBEAT:
      case MessageType.RETRASM:
        if (node && incarnation !== 0 && node.incarnation !== 0 && node.incarnation !== incarnation) {
          // The same MAC started again with an empty table: it is a new member, and the old
          // one's entries must go (or its clients would stay pinned to a node that forgot them).
          this.#remove(node, 'restarted', now);
          node = undefined;
        }
        if (!node) node = this.#add(srcMac, weight > 0 ? weight : 1, now, false);
        if (!node) return;
        if (node.incarnation === 0) node.incarnation = incarnation;
        node.lastHeardAt = now;
        if (type === MessageType.JOIN) {
          this.#actions.push({ kind: 'send', type: MessageType.WELCOME, to: 'cluster', incarnation: this.#opts.incarnation });
          break;
        }
        if (weight > 0 && node.weight !== weight) {
          node.weight = weight;
          this.#viewChanged();
        }
        break;
      case MessageType.LEAVE:
        if (node) this.#remove(node, 'left', now);
        break;
      default:
        break;
    }
  }

  /** Advances timers: JOIN repeats, heartbeats, deaths, the end of the join phase. */
  tick(now: number): void {
    if (!this.#started) return;
    if (this.#joinsLeft > 0 && now >= this.#nextJoinAt) {
      this.#joinsLeft--;
      this.#nextJoinAt = now + this.#opts.joinIntervalMs;
      this.#actions.push({ kind: 'send', type: MessageType.JOIN, to: 'cluster', incarnation: this.#opts.incarnation });
    }
    if (now >= this.#nextHeartbeatAt) {
      this.#nextHeartbeatAt = now + this.#opts.heartbeatMs;
      this.#actions.push({ kind: 'send', type: MessageType.HEARTBEAT, to: 'cluster', weight: this.#opts.weight, incarnation: this.#opts.incarnation });
    }
    for (const node of [...this.#nodes]) {
      if (node.self) continue;
      const silent = now - node.lastHeardAt;
      if (silent > this.#opts.deadAfterMs) this.#remove(node, 'heartbeat-timeout', now);
    }
    if (!this.#accepting && now >= this.#firstRoundDoneAt) {
      this.#accepting = true;
      this.#viewChanged();
    }
  }

  /** The next time `tick` has something to do: lets a driver sleep exactly that long. */
  nextDeadline(): number {
    let t = Math.min(this.#nextHeartbeatAt, this.#joinsLeft > 0 ? this.#nextJoinAt : Infinity);
    if (!this.#accepting) t = Math.min(t, this.#firstRoundDoneAt);
    for (const node of this.#nodes) {
      if (!node.self) t = Math.min(t, node.lastHeardAt + this.#opts.deadAfterMs + 1);
    }
    return t;
  }

  #find(mac: string): MemberNode | undefined {
    return this.#nodes.find((n) => n.mac === mac);
  }

  #add(mac: string, weight: number, now: number, self: boolean): MemberNode | undefined {
    if (this.#nodes.length >= MAX_MEMBERS) {
      this.tableFull++;
      return undefined;
    }
    const node: MemberNode = {
      id: this.#nextId,
      mac,
      macKey: macToKey(mac),
      weight,
      status: NodeStatus.OK,
      lastHeardAt: now,
      self,
      incarnation: self ? this.#opts.incarnation : 0,
    };
    // Ids are never reused within a run (65535 joins before a wrap), so a stale tracking entry
    // can never be mistaken for a newcomer's.
    this.#nextId = this.#nextId >= 0xffff ? 1 : this.#nextId + 1;
    const at = this.#nodes.findIndex((n) => n.macKey > node.macKey);
    if (at < 0) this.#nodes.push(node);
    else this.#nodes.splice(at, 0, node);
    if (!self) this.#actions.push({ kind: 'node-joined', node });
    this.#viewChanged();
    return node;
  }

  #remove(node: MemberNode, reason: DeathReason, now: number): void {
    const at = this.#nodes.indexOf(node);
    if (at < 0) return;
    this.#nodes.splice(at, 1);
    node.status = NodeStatus.DEAD;
    this.#actions.push({ kind: 'node-died', node, reason, silentMs: now - node.lastHeardAt });
    this.#viewChanged();
  }

  #viewChanged(): void {
    const last = this.#actions[this.#actions.length - 1];
    if (last?.kind !== 'view-changed') this.#actions.push({ kind: 'view-changed' });
  }
}
