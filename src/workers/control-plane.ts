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
import { createPublishedView, VIEW_FLAG_CHANGE_PENDING, VIEW_FLAG_WEIGHTS_PENDING, VIEW_MAX_RULE_SLOTS, ViewWriter } from '../shm/view.js';
import { RULE_PARAMS_UNKNOWN } from '../cluster/port-rules.js';
import { DRAINING_WEIGHT } from '../cluster/election.js';
import { ControlChannel, STATE_LAST, STATE_PROTOCOL_MASK } from './control-channel.js';
import { PacketControlSocket, systemClock, type ControlClock, type ControlSocket, type TimerHandle } from './control-socket.js';
import type { ControlData, ControlEvent, ControlStatus, LogLevel } from './messages.js';

/**
 * What `status` shows: every round briefly sets every member WAITING_HEARTBEAT, which is noise
 * to an operator; a member still waited for at the round timeout (ASKED_RETRASM) is news.
 */
function displayStatus(status: NodeStatus): string {
  return status === NodeStatus.WAITING_HEARTBEAT ? NodeStatus.OK : status;
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');
const weightText = (weight: number): string => (weight === DRAINING_WEIGHT ? 'draining' : String(weight));

/** The plane's I/O: the daemon's defaults are the AF_PACKET socket and the system clock. */
export interface ControlPlaneIo {
  socket?: ControlSocket;
  clock?: ControlClock;
}

export class ControlPlane {
  readonly #membership: Membership;
  readonly #channel: ControlChannel;
  readonly #viewWriter: ViewWriter;
  readonly #view = createPublishedView();
  readonly #rings: ByteRing[];
  readonly #emit: (event: ControlEvent) => void;
  readonly #clock: ControlClock;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #lastLoggedView = '';
  /** Nodes declared dead, by reason (every reason listed from the start, for the metrics). */
  readonly #deaths: Record<Extract<MembershipAction, { kind: 'node-died' }>['reason'], number> = { 'missed-heartbeats': 0, left: 0, restarted: 0, 'self-reset': 0 };
  /** Each member's weight in the last published view, to log who changed it. */
  readonly #lastWeights = new Map<string, number>();
  readonly #rules: ControlData['rules'];
  readonly #heartbeatMs: number;
  /** What each node announced of its port rules (by MAC): digest and per-slot parameters. */
  readonly #nodeRules = new Map<string, { digest: number; params: number[] }>();
  /** Nodes already logged as having other rules, with the digest logged. */
  readonly #mismatchLogged = new Map<string, number>();

  constructor(data: ControlData, emit: (event: ControlEvent) => void, io: ControlPlaneIo = {}) {
    this.#emit = emit;
    const clock = io.clock ?? systemClock;
    this.#clock = clock;
    this.#rules = data.rules;
    this.#heartbeatMs = data.heartbeatMs;
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
      socket: io.socket ?? new PacketControlSocket({ dev: data.dev, ownMac: data.ownMac, clusterMac: data.clusterMac, multicast: data.multicast }),
      clock,
      ownMac: data.ownMac,
      clusterMac: data.clusterMac,
      clusterIp: data.clusterIp,
      mtu: data.mtu,
      key: data.key,
      rules: data.rules,
      onMessage: (type, srcMac, info) => {
        const rulesChanged = this.#noteRules(srcMac);
        membership.receive(type, srcMac, clock.now(), info);
        this.#drive();
        if (rulesChanged && membership.members.some((n) => n.mac === srcMac)) this.#publishView();
      },
      onState: (srcMac, flags, state) => this.#loadState(srcMac, flags, state),
    });
  }

  start(): void {
    this.#publishView(); // not accepting until the first round completes
    this.#channel.open();
    this.#membership.start(this.#clock.now());
    this.#drive();
  }

  /** Sends LEAVE (the others re-home our clients at once) and closes the socket. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#membership.stop();
    this.#carryOut(this.#membership.drainActions());
    this.#channel.close();
  }

  setWeight(weight: number): void {
    this.#membership.setWeight(weight);
    this.#drive(); // a hold may start now: the actors must see it
  }

  /** `lnlbctl stop`: LEAVE, accept nothing, forget the tables (the others re-home our clients). */
  leave(): void {
    if (this.#stopped) return;
    this.#membership.leave();
    this.#carryOut(this.#membership.drainActions());
    this.#emit({ type: 'reset' });
    this.#lastLoggedView = '';
    this.#lastWeights.clear();
    this.#log('info', { event: 'left-cluster' }, 'left the cluster (LEAVE sent): accepting nothing until lnlbctl start');
  }

  /** `lnlbctl start` after a stop: JOIN again; accepting once the first round completes. */
  rejoin(): void {
    if (this.#stopped) return;
    this.#membership.rejoin(this.#clock.now());
    this.#log('info', { event: 'rejoining' }, 'joining the cluster again');
    this.#drive();
  }

  status(): ControlStatus {
    const m = this.#membership;
    return {
      accepting: m.accepting,
      changePending: m.changePending,
      nodes: m.nodes.map((n) => {
        const rules = n.self ? this.#rules : this.#nodeRules.get(n.mac);
        return { mac: n.mac, status: displayStatus(n.status), weight: n.weight, self: n.self, rulesDigest: rules?.digest, rulesMatch: rules === undefined ? undefined : rules.digest === this.#rules.digest };
      }),
      control: this.#channel.counters,
      nodeTableFull: m.tableFull,
      rounds: m.roundsCompleted,
      resets: m.resets,
      deaths: { ...this.#deaths },
      authenticated: this.#channel.authenticated,
    };
  }

  /**
   * Records the rules block of the message just received; true when this node's announced
   * rules changed. A node with other rules is reported (logged once per digest, shown by
   * status), never merged: each node keeps applying its own rules.
   */
  #noteRules(srcMac: string): boolean {
    const r = this.#channel.received;
    if (r.ruleSlots < 0) return false;
    const before = this.#nodeRules.get(srcMac);
    const params = Array.from(r.ruleParams.subarray(0, r.ruleSlots));
    if (before !== undefined && before.digest === r.rulesDigest && before.params.length === params.length && before.params.every((p, i) => p === params[i])) return false;
    this.#nodeRules.set(srcMac, { digest: r.rulesDigest, params });
    if (r.rulesDigest !== this.#rules.digest && this.#mismatchLogged.get(srcMac) !== r.rulesDigest) {
      this.#mismatchLogged.set(srcMac, r.rulesDigest);
      this.#log(
        'error',
        { event: 'rules-mismatch', node: srcMac, theirs: hex(r.rulesDigest), ours: hex(this.#rules.digest) },
        `node ${srcMac} has other port rules (digest ${hex(r.rulesDigest)}, ours ${hex(this.#rules.digest)}): give every node the same --rule flags; until then each node applies its own`,
      );
    } else if (r.rulesDigest === this.#rules.digest && this.#mismatchLogged.delete(srcMac)) {
      this.#log('info', { event: 'rules-match', node: srcMac }, `node ${srcMac} now has the same port rules`);
    }
    return true;
  }

  /**
   * One line per departure, with its reason: `left` (its LEAVE), `died` (silent: how many
   * heartbeats it missed), `restarted` (a new incarnation of the same MAC), `self-reset`.
   */
  #logDeath(mac: string, id: number, reason: string, silentMs: number): void {
    this.#lastWeights.delete(mac);
    const silent = Math.round(silentMs);
    if (reason === 'left') {
      this.#log('info', { event: 'node-left', node: mac, id, reason }, `node ${mac} left the cluster`);
      return;
    }
    const missed = Math.max(1, Math.floor(silentMs / this.#heartbeatMs));
    const why = reason === 'missed-heartbeats' ? `missed ${missed} heartbeats (silent for ${silent} ms)` : reason === 'restarted' ? 'restarted (new incarnation): its old self is removed' : 'forgotten by our own reset';
    this.#log('warn', { event: 'node-died', node: mac, id, reason, silentMs: silent, missedHeartbeats: missed }, `node ${mac} died: ${why}`);
  }

  #log(level: LogLevel, fields: Record<string, unknown>, msg: string): void {
    this.#emit({ type: 'log', level, fields, msg });
  }

  /** Runs due timers, carries out the membership's actions and sleeps until its next deadline. */
  #drive(): void {
    if (this.#stopped) return;
    const membership = this.#membership;
    const clock = this.#clock;
    membership.tick(clock.now());
    this.#carryOut(membership.drainActions());
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    const delay = Math.max(1, Math.ceil(membership.nextDeadline() - clock.now()));
    this.#timer = clock.setTimer(() => this.#drive(), delay);
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
          this.#deaths[action.reason]++;
          this.#logDeath(action.node.mac, action.node.id, action.reason, action.silentMs);
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
    view.flags = membership.holdsAllNewFlows ? VIEW_FLAG_CHANGE_PENDING : membership.weightsPending ? VIEW_FLAG_WEIGHTS_PENDING : 0;
    view.selfId = membership.self?.id ?? 0;
    view.nodeCount = nodes.length;
    const slots = this.#rules.params.length;
    view.ruleSlots = slots;
    nodes.forEach((node, i) => {
      view.ids[i] = node.id;
      view.weights[i] = node.weight;
      view.nextWeights[i] = node.announcedWeight;
      view.statuses[i] = 1;
      view.macs.set(parseMac(node.mac), i * 6);
      // Parameters count only from a node with the same rules: another rule set's slot k is
      // another rule. Unknown: equal share, no priority.
      const rules = node.self ? this.#rules : this.#nodeRules.get(node.mac);
      const same = rules !== undefined && rules.digest === this.#rules.digest && rules.params.length === slots;
      for (let k = 0; k < slots; k++) view.ruleParams[i * VIEW_MAX_RULE_SLOTS + k] = same ? rules.params[k]! : RULE_PARAMS_UNKNOWN;
    });
    this.#viewWriter.publish(view);
    // Idle actors sleep on their rings: wake them so held frames are decided now.
    for (const ring of this.#rings) ring.wakeConsumer();
    const members = nodes.map((n) => `${n.mac}/${n.weight}`).join(' ');
    if (membership.accepting && !membership.changePending && members !== this.#lastLoggedView) {
      this.#lastLoggedView = members;
      for (const n of nodes) {
        const before = this.#lastWeights.get(n.mac);
        this.#lastWeights.set(n.mac, n.weight);
        if (before !== undefined && before !== n.weight) {
          this.#log('info', { event: 'node-weight', node: n.mac, self: n.self, from: before, to: n.weight }, `node ${n.mac}${n.self ? ' (this node)' : ''} weight ${weightText(before)} → ${weightText(n.weight)}`);
        }
      }
      this.#log('info', { event: 'view', nodes: nodes.map((n) => n.mac), weights: nodes.map((n) => n.weight) }, `converged: ${nodes.length} node(s)`);
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

  /** The main thread saved the shards: send every handler's state (fragments, paced) to `to`, the last one marked. */
  async sendSavedState(to: 'cluster' | string, states: { protocol: number; state: Uint8Array; entries: number }[]): Promise<{ fragments: number; error?: string }> {
    const started = this.#clock.now();
    try {
      let fragments = 0;
      let entries = 0;
      let bytes = 0;
      for (let i = 0; i < states.length; i++) {
        const { protocol, state } = states[i]!;
        fragments += await this.#channel.sendState(to, (protocol & STATE_PROTOCOL_MASK) | (i === states.length - 1 ? STATE_LAST : 0), state);
        entries += states[i]!.entries;
        bytes += state.length;
      }
      this.#log(
        'info',
        { event: to === 'cluster' ? 'resync-sent' : 'state-sent', to, entries, bytes, handlers: states.length, fragments, ms: Math.round(this.#clock.now() - started) },
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
  #loadState(srcMac: string, flags: number, state: Uint8Array): void {
    const membership = this.#membership;
    const ownerIds = Object.fromEntries(membership.nodes.map((n) => [n.mac, n.id]));
    this.#emit({ type: 'state', from: srcMac, protocol: flags & STATE_PROTOCOL_MASK, last: (flags & STATE_LAST) !== 0, state, ownerIds, newcomer: !membership.accepting });
  }

  /** The newcomer's state is in its tables (or was refused): the first round may complete. */
  stateLoaded(): void {
    this.#membership.stateReceived();
    this.#drive();
  }
}
