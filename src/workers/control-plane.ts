/**
 * The control plane of one cluster interface, run on its own thread (control-thread.ts) so
 * that nothing else can delay a heartbeat or a round timeout: not the main thread's logging
 * (a blocked stdout pipe), not its admin socket, not a garbage collection of its heap.
 *
 * It owns the control socket, the membership state machine and its single timer, publishes
 * the view straight into shared memory (the actors read it lock-free), and hands tracking
 * state to newcomers. What the main thread must act on or log goes out as typed events.
 */

import { actorForKey } from '../cluster/hash.js';
import { Membership, NodeStatus, type MembershipAction } from '../cluster/membership.js';
import { loadTrackerState, saveTrackerState } from '../handlers/tracker-state.js';
import { formatMac, parseMac } from '../net/ethernet.js';
import { ByteRing } from '../shm/byte-ring.js';
import { TrackingTable } from '../shm/tracking-table.js';
import { createPublishedView, VIEW_FLAG_CHANGE_PENDING, ViewWriter } from '../shm/view.js';
import { ControlChannel } from './control-channel.js';
import type { ControlData, ControlEvent, ControlStatus, LogLevel } from './messages.js';

/** The tracking tables' clock: u32 seconds, the same as the actors'. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * What `status` shows: every round briefly sets every member WAITING_HEARTBEAT, which is noise
 * to an operator; a member still waited for at the round timeout (ASKED_RETRASM) is news.
 */
function displayStatus(status: NodeStatus): string {
  return status === NodeStatus.WAITING_HEARTBEAT ? NodeStatus.OK : status;
}

export class ControlPlane {
  readonly #membership: Membership;
  readonly #channel: ControlChannel;
  readonly #viewWriter: ViewWriter;
  readonly #view = createPublishedView();
  readonly #rings: ByteRing[];
  readonly #tables: TrackingTable[];
  readonly #emit: (event: ControlEvent) => void;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastLoggedView = '';

  constructor(data: ControlData, emit: (event: ControlEvent) => void) {
    this.#emit = emit;
    this.#viewWriter = new ViewWriter(data.view);
    this.#rings = data.actorRings.map((sab) => new ByteRing(sab));
    this.#tables = data.trackers.map((sab) => new TrackingTable(sab));
    this.#membership = new Membership({
      selfMac: formatMac(data.ownMac),
      heartbeatMs: data.heartbeatMs,
      deadAfterMs: data.deadAfterMs,
      incarnation: data.incarnation,
      weight: data.weight,
    });
    const membership = this.#membership;
    this.#channel = new ControlChannel({
      dev: data.dev,
      ownMac: data.ownMac,
      clusterMac: data.clusterMac,
      clusterIp: data.clusterIp,
      multicast: data.multicast,
      mtu: data.mtu,
      ...(data.key === undefined ? {} : { key: data.key }),
      onMessage: (type, srcMac, info) => {
        membership.receive(type, srcMac, performance.now(), info);
        this.#drive();
      },
      onState: (srcMac, handlerIndex, state) => this.#loadState(srcMac, handlerIndex, state),
    });
  }

  start(): void {
    this.#publishView(); // not accepting until the first round completes
    this.#channel.open();
    this.#membership.start(performance.now());
    this.#drive();
  }

  /** Sends LEAVE (the others re-home our clients at once) and closes the socket. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#membership.stop();
    this.#carryOut(this.#membership.drainActions());
    this.#channel.close();
  }

  setWeight(weight: number): void {
    this.#membership.setWeight(weight);
  }

  status(): ControlStatus {
    const m = this.#membership;
    return {
      accepting: m.accepting,
      changePending: m.changePending,
      nodes: m.nodes.map((n) => ({ mac: n.mac, status: displayStatus(n.status), weight: n.weight, self: n.self })),
      control: this.#channel.counters,
      nodeTableFull: m.tableFull,
      rounds: m.roundsCompleted,
      resets: m.resets,
      authenticated: this.#channel.authenticated,
    };
  }

  #log(level: LogLevel, fields: Record<string, unknown>, msg: string): void {
    this.#emit({ type: 'log', level, fields, msg });
  }

  /** Runs due timers, carries out the membership's actions and sleeps until its next deadline. */
  #drive(): void {
    if (this.#stopped) return;
    const membership = this.#membership;
    membership.tick(performance.now());
    this.#carryOut(membership.drainActions());
    if (this.#timer) clearTimeout(this.#timer);
    const delay = Math.max(1, Math.ceil(membership.nextDeadline() - performance.now()));
    this.#timer = setTimeout(() => this.#drive(), delay);
  }

  #carryOut(actions: MembershipAction[]): void {
    let viewChanged = false;
    for (const action of actions) {
      switch (action.kind) {
        case 'send':
          this.#channel.send(action.type, action.to, action.weight, action.incarnation, action.joined);
          break;
        case 'view-changed':
          viewChanged = true;
          break;
        case 'node-joined':
          this.#log('info', { event: 'node-joined', node: action.node.mac, id: action.node.id }, `node ${action.node.mac} joined`);
          break;
        case 'node-died':
          this.#log(
            'warn',
            { event: 'node-died', node: action.node.mac, id: action.node.id, reason: action.reason, silentMs: Math.round(action.silentMs) },
            action.reason === 'missed-heartbeats' ? `node ${action.node.mac} died: silent for ${Math.round(action.silentMs)} ms` : `node ${action.node.mac} ${action.reason}`,
          );
          break;
        case 'reset':
          this.#log(
            'error',
            { event: 'reset', stalledMs: Math.round(action.stalledMs) },
            `this node was stalled for ${Math.round(action.stalledMs)} ms, longer than --dead-after-ms: the others have re-homed its clients; forgetting its state and rejoining`,
          );
          break;
        case 'round-completed':
          if (action.changedView) this.#log('debug', { event: 'round', durationMs: Math.round(action.durationMs) }, 'convergence round changed the view');
          break;
        case 'send-state':
          void this.#sendState(action.to);
          break;
      }
    }
    // Publish first: the new view alone re-homes a dead node's clients; the purge only frees memory.
    if (viewChanged) this.#publishView();
    for (const action of actions) {
      if (action.kind === 'node-died') this.#emit({ type: 'node-died', id: action.node.id });
      else if (action.kind === 'reset') this.#emit({ type: 'reset' });
    }
  }

  #publishView(): void {
    const membership = this.#membership;
    const view = this.#view;
    const nodes = membership.members;
    view.accepting = membership.accepting;
    view.flags = membership.changePending ? VIEW_FLAG_CHANGE_PENDING : 0;
    view.selfId = membership.self?.id ?? 0;
    view.nodeCount = nodes.length;
    nodes.forEach((node, i) => {
      view.ids[i] = node.id;
      view.weights[i] = node.weight;
      view.statuses[i] = 1;
      view.macs.set(parseMac(node.mac), i * 6);
    });
    this.#viewWriter.publish(view);
    // Idle actors sleep on their rings: wake them so held frames are decided now.
    for (const ring of this.#rings) ring.wakeConsumer();
    const members = nodes.map((n) => `${n.mac}/${n.weight}`).join(' ');
    if (membership.accepting && !membership.changePending && members !== this.#lastLoggedView) {
      this.#lastLoggedView = members;
      this.#log('info', { event: 'view', nodes: nodes.map((n) => n.mac) }, `view: ${nodes.length} node(s)`);
    }
  }

  /**
   * LNLB: the first member hands its tracking state to a newcomer (CONNTRACK). Saved while the
   * actors keep running: a best-effort snapshot (an entry inserted meanwhile may be missed;
   * every node records every assignment, so the newcomer learns it from that flow's next frame).
   */
  async #sendState(to: string): Promise<void> {
    const started = performance.now();
    const macById = new Map(this.#membership.nodes.map((n) => [n.id, parseMac(n.mac)]));
    const stats = { saved: 0, skippedUnknownOwner: 0 };
    try {
      const state = saveTrackerState(this.#tables, nowSeconds(), (id) => macById.get(id), stats);
      const fragments = await this.#channel.sendState(to, 0, state);
      this.#log(
        'info',
        { event: 'state-sent', to, entries: stats.saved, bytes: state.length, fragments, ms: Math.round(performance.now() - started) },
        `sent ${stats.saved} tracked flows to newcomer ${to}`,
      );
    } catch (err) {
      this.#log('error', { event: 'state-send-failed', to }, (err as Error).message);
    }
  }

  /** `lnlbctl resync`: this node's tracking state to every node (LNLB's resync). */
  async resync(): Promise<{ entries: number; bytes: number; fragments: number; error?: string }> {
    const macById = new Map(this.#membership.nodes.map((n) => [n.id, parseMac(n.mac)]));
    const stats = { saved: 0, skippedUnknownOwner: 0 };
    try {
      const state = saveTrackerState(this.#tables, nowSeconds(), (id) => macById.get(id), stats);
      const fragments = await this.#channel.sendState('cluster', 0, state);
      this.#log('info', { event: 'resync-sent', entries: stats.saved, bytes: state.length, fragments }, `resync: sent ${stats.saved} tracked flows to every node`);
      return { entries: stats.saved, bytes: state.length, fragments };
    } catch (err) {
      return { entries: 0, bytes: 0, fragments: 0, error: (err as Error).message };
    }
  }

  /**
   * A tracking state arrived. A newcomer loads it here, before its first round completes,
   * while its actors touch nothing (they accept nothing and skip housekeeping until then). A
   * node that has joined (a resync) hands it to its actors, each loading its own shard, as
   * only an actor may write its shard while it serves.
   */
  #loadState(srcMac: string, handlerIndex: number, state: Uint8Array): void {
    const membership = this.#membership;
    const idByMac = new Map(membership.nodes.map((n) => [n.mac, n.id]));
    if (handlerIndex !== 0) {
      this.#log('warn', { event: 'state-ignored', from: srcMac, handlerIndex }, `tracking state for unknown handler ${handlerIndex} ignored`);
      return;
    }
    if (membership.accepting) {
      this.#emit({ type: 'state', from: srcMac, state, ownerIds: Object.fromEntries(idByMac) });
      return;
    }
    const tables = this.#tables;
    try {
      const started = performance.now();
      const result = loadTrackerState(state, tables, {
        nowSeconds: nowSeconds(),
        ownerId: (mac) => idByMac.get(formatMac(mac)),
        shardOf: (keyLo, keyHi) => actorForKey(keyLo, keyHi, tables.length),
      });
      this.#log(
        'info',
        { event: 'state-loaded', from: srcMac, entries: result.loaded, skipped: result.skippedUnknownOwner, clockShift: result.clockShiftSeconds, ms: Math.round(performance.now() - started) },
        `loaded ${result.loaded} tracked flows from ${srcMac}`,
      );
    } catch (err) {
      this.#log('error', { event: 'state-refused', from: srcMac }, (err as Error).message);
    }
    membership.stateReceived();
    this.#drive();
  }
}
