/**
 * The control plane of one cluster interface, run on its own thread (control-thread.ts) so
 * that nothing else can delay a heartbeat or a round timeout: not the main thread's logging
 * (a blocked stdout pipe), not its admin socket, not a garbage collection of its heap.
 *
 * It owns the control socket, the membership state machine and its single timer, publishes
 * the view straight into shared memory (the actors read it lock-free), and hands tracking
 * state to newcomers. What the main thread must act on or log goes out as typed events.
 */

import { Membership, NodeStatus, type MembershipAction } from '../cluster/membership.js';
import { formatMac, parseMac } from '../net/ethernet.js';
import { ByteRing } from '../shm/byte-ring.js';
import { createPublishedView, VIEW_FLAG_CHANGE_PENDING, ViewWriter } from '../shm/view.js';
import { ControlChannel } from './control-channel.js';
import type { ControlData, ControlEvent, ControlStatus, LogLevel } from './messages.js';

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
  readonly #emit: (event: ControlEvent) => void;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastLoggedView = '';

  constructor(data: ControlData, emit: (event: ControlEvent) => void) {
    this.#emit = emit;
    this.#viewWriter = new ViewWriter(data.view);
    this.#rings = data.actorRings.map((sab) => new ByteRing(sab));
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
      key: data.key,
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
          this.#sendState(action.to);
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

  /** Who owns what, by local id, for whoever serialises the tables. */
  #owners(): Record<number, string> {
    return Object.fromEntries(this.#membership.nodes.map((n) => [n.id, n.mac]));
  }

  /**
   * LNLB: the first member hands its tracking state to a newcomer (CONNTRACK). Serialising a
   * million flows takes tens of milliseconds, which must never delay a heartbeat: the main
   * thread saves the tables and hands the bytes back (`sendSavedState`).
   */
  #sendState(to: string): void {
    this.#emit({ type: 'save-state', to, owners: this.#owners() });
  }

  /** The main thread saved the tables: send them (fragments, paced) to `to`. */
  async sendSavedState(to: 'cluster' | string, state: Uint8Array, entries: number): Promise<{ fragments: number; error?: string }> {
    const started = performance.now();
    try {
      const fragments = await this.#channel.sendState(to, 0, state);
      this.#log(
        'info',
        { event: to === 'cluster' ? 'resync-sent' : 'state-sent', to, entries, bytes: state.length, fragments, ms: Math.round(performance.now() - started) },
        to === 'cluster' ? `resync: sent ${entries} tracked flows to every node` : `sent ${entries} tracked flows to newcomer ${to}`,
      );
      return { fragments };
    } catch (err) {
      this.#log('error', { event: 'state-send-failed', to }, (err as Error).message);
      return { fragments: 0, error: (err as Error).message };
    }
  }

  /** `lnlbctl resync` starts on the main thread, which needs the owners to save the tables. */
  owners(): Record<number, string> {
    return this.#owners();
  }

  /**
   * A tracking state arrived. Loading a million flows takes a few hundred milliseconds, so it
   * happens off this thread: a newcomer's main thread loads it (its actors touch nothing before
   * the first round completes) and answers with `stateLoaded`; a joined node's actors each
   * load their own shard (a resync).
   */
  #loadState(srcMac: string, handlerIndex: number, state: Uint8Array): void {
    const membership = this.#membership;
    if (handlerIndex !== 0) {
      this.#log('warn', { event: 'state-ignored', from: srcMac, handlerIndex }, `tracking state for unknown handler ${handlerIndex} ignored`);
      return;
    }
    const ownerIds = Object.fromEntries(membership.nodes.map((n) => [n.mac, n.id]));
    this.#emit({ type: 'state', from: srcMac, state, ownerIds, newcomer: !membership.accepting });
  }

  /** The newcomer's state is in its tables (or was refused): the first round may complete. */
  stateLoaded(): void {
    this.#membership.stateReceived();
    this.#drive();
  }
}
