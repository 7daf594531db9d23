/**
 * The control plane of one cluster interface, run on its own thread (control-thread.ts) so
 * that nothing else can delay a heartbeat or a round timeout: not the main thread's logging
 * (a blocked stdout pipe), not its admin socket, not a garbage collection of its heap.
 *
 * It owns the control socket, the membership state machine and its single timer, publishes
 * the view straight into shared memory (the actors read it lock-free), and runs the tracking
 * state transfers (cluster/state-transfer.ts): as a member it keeps a newcomer's transfer until
 * acknowledged and resends what it asks for; as a newcomer it asks its sender for what it lacks,
 * and hands the whole state on in order. What the main thread must act on or log goes out as
 * typed events.
 *
 * It also decides whether this node may serve (cluster/admission.ts): it listens for two
 * heartbeats after every start, announcing the draining weight and accepting nothing, and
 * stays so while it hears peers it cannot authenticate that outnumber or outrank its own
 * group. Once it served, nothing unauthenticated stops it.
 */

import { admission, UnauthenticatedPeers, VERDICT_MEANING, type AdmissionDecision, type UnauthenticatedPeer, type UnauthenticatedVerdict } from '../cluster/admission.js';
import { Membership, MembershipPhase, NodeStatus, type MembershipAction, type MemberNode } from '../cluster/membership.js';
import { formatMac, parseMac } from '../net/ethernet.js';
import { formatIPv4 } from '../net/ipv4.js';
import { LogLimiter, TokenBucket } from '../net/rate-limit.js';
import { ByteRing } from '../shm/byte-ring.js';
import { DrainingBuckets } from '../shm/draining-buckets.js';
import { createPublishedView, type PublishedView, VIEW_BUCKETS_CURRENT, VIEW_BUCKETS_NEXT, VIEW_BUCKETS_PASS, VIEW_BUCKETS_PENDING, VIEW_FLAG_CHANGE_PENDING, VIEW_FLAG_WEIGHTS_PENDING, VIEW_MAX_RULE_SLOTS, ViewWriter } from '../shm/view.js';
import { RULE_PARAMS_UNKNOWN } from '../cluster/port-rules.js';
import { DRAINING_WEIGHT, MAX_MEMBERS } from '../cluster/election.js';
import { BucketLedger } from '../cluster/bucket-ledger.js';
import { decodeBucketTable, encodeBucketTable, macKey, type BucketMembers, type BucketTable } from '../cluster/buckets.js';
import { BUCKET_MASK_WORDS, BucketHandovers, maskCount, NO_TARGET, type HandoverAction, type HandoverPlan } from '../cluster/bucket-handover.js';
import { MessageType } from '../net/cluster-message.js';
import { HANDOVER_PROTOCOL } from '../net/handover-message.js';
import type { MessageFragments } from '../net/reassembly.js';
import { decodeStateAck, encodeStateAck, transferCount } from '../net/state-transfer-message.js';
import { stateOwnerMacs } from '../handlers/tracker-state.js';
import { ControlChannel, type ControlChannelOptions, READ_BATCH, STATE_LAST, STATE_PROTOCOL_MASK } from './control-channel.js';
import { ControlStateTransfers } from './control-state-transfer.js';
import { hmacSha256, ringWake } from '../port/native.js';
import { PacketControlSocket, systemClock, type ControlClock, type ControlSocket, type TimerHandle } from './control-socket.js';
import type { BucketsStatus, ControlData, FailoverTimeline, ControlEvent, ControlStatus, LogLevel, UnauthenticatedPeerStatus } from './messages.js';

/**
 * What `status` shows: every round briefly sets every member WAITING_HEARTBEAT, which is noise
 * to an operator; a member still waited for at the round timeout (ASKED_RETRASM) is news.
 */
function displayStatus(status: NodeStatus): string {
  return status === NodeStatus.WAITING_HEARTBEAT ? NodeStatus.OK : status;
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');
const weightText = (weight: number): string => (weight === DRAINING_WEIGHT ? 'draining' : String(weight));
const peerText = (p: UnauthenticatedPeer): string => `${p.mac}(${p.verdict}: ${VERDICT_MEANING[p.verdict]}${p.claimsJoined ? ', serving' : ''})`;

/** One line per key per this long, the next one saying how many were held back. */
const LOG_INTERVAL_MS = 10_000;
/** New unauthenticated peers taken into the table per second (a flood of spoofed MACs refreshes none). */
const NEW_PEERS_PER_SECOND = 50;
/** Lines about members coming and going (a flood of spoofed JOINs on an unkeyed cluster): per second, and burst. */
const MEMBER_LINES_PER_SECOND = 2;
const MEMBER_LINES_BURST = 20;
/** How long a node gone from the table is still heard past the strangers' budget (a restart takes seconds), and how many are. */
const GONE_REMEMBERED_MS = 60_000;
const GONE_MAX = 2 * MAX_MEMBERS;

/** The plane's I/O: the daemon's defaults are the AF_PACKET socket and the system clock. */
export interface ControlPlaneIo {
  socket?: ControlSocket;
  clock?: ControlClock;
  /** The control messages' MAC; default: the native HMAC-SHA256 (port.hmacSha256). */
  macFactory?: ControlChannelOptions['macFactory'];
}

/**
 * The IP protocol number a state transfer's bucket table travels under (255, IANA's reserved
 * one: no handler is registered for it).
 */
export const BUCKET_TABLE_PROTOCOL = 255;
const BUCKETS_SETTLE_HEARTBEATS = 4;
/** A handover unacknowledged for this many heartbeats is sent again, up to HANDOVER_MAX_RESENDS times. */
const HANDOVER_RESEND_HEARTBEATS = 3;
const HANDOVER_MAX_RESENDS = 10;
/** How long gained buckets wait for the members' handovers at most: 30 heartbeats, and never under 3 s. */
const HANDOVER_PENDING_TIMEOUT_HEARTBEATS = 30;
const HANDOVER_PENDING_TIMEOUT_MIN_MS = 3000;
/**
 * Quiet reading: once the cluster has been settled for this many heartbeats (same view, no
 * round changing it, no transfer, handover or listening period), the socket is no longer
 * watched and what arrived is read when the node's own timer wakes it (its next heartbeat, or
 * a death deadline). At 100 ms heartbeats in a cluster of three that is 10 wake-ups a second
 * instead of about 30, and each member's heartbeat read at most one interval late can only
 * make it look more recent: no death is declared sooner. Anything else (a JOIN, a LEAVE, an
 * unknown sender, a state or handover frame, a view change, a request from the main thread,
 * a full batch waiting) makes it watch the socket again at once.
 */
const QUIET_AFTER_HEARTBEATS = 2;
/**
 * Frames a settled node reads in a heartbeat interval, at most: its members' heartbeats (one
 * each a round) twice over, and a few more. More is a burst or a flood (forged heartbeats ring
 * no doorbell): read as it comes, or the ring would overflow between two reads.
 */
function quietFrameBudget(nodes: number): number {
  return 2 * nodes + 16;
}

/** Up to this many members a node reading quietly reads a round's heartbeats when the next round is due (#nextQuietRead). */
export const DUE_READS_MAX_MEMBERS = 32;

/** A member's weights with the times they were announced (ControlPlane #weightTimes). */
interface WeightTimes {
  announced: number;
  announcedAt: number;
  applied: number;
  previous: number;
  appliedSince: number;
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
  /** When the armed timer fires (clock ms), and the deadline the last drive set (later, when it moved on since). */
  #timerAt = Number.NaN;
  #deadline = Number.NaN;
  /** A frame of the batch being read asked for a drive: one runs when the batch is done. */
  #driveWanted = false;
  /** Since when the cluster has been settled (NaN: it is not); quiet reading starts QUIET_AFTER_HEARTBEATS later. */
  #settledSince = Number.NaN;
  /** Quiet reading ends at once when this is set (a frame or request that is not routine). */
  #eventful = false;
  /** Frames read in the current heartbeat interval (since #windowAt), and in the last whole one. */
  #windowAt = Number.NEGATIVE_INFINITY;
  #windowFrames = 0;
  #lastWindowFrames = 0;
  readonly #onTimerBound = (): void => this.#onTimer();
  #stopped = false;
  #lastLoggedView = '';
  /** Nodes declared dead, by reason (every reason listed from the start, for the metrics). */
  /** The last death for silence, as wall-clock ms: the failover's timeline in status (bench failover prints it). */
  #lastFailover: FailoverTimeline | undefined;
  readonly #deaths: Record<Extract<MembershipAction, { kind: 'node-died' }>['reason'], number> = { 'missed-heartbeats': 0, left: 0, restarted: 0, 'self-reset': 0 };
  /** Each member's weight in the last published view, to log who changed it. */
  readonly #lastWeights = new Map<string, number>();
  readonly #rules: ControlData['rules'];
  readonly #heartbeatMs: number;
  /** What each node in the table announced of itself (by MAC): name and IPv4 (u32), for status, logs and events. */
  readonly #identities = new Map<string, { name: string; address: number }>();
  /** This node's own. */
  readonly #selfIdentity: { name: string; address: number };
  /** What each node announced of its port rules (by MAC): digest and per-slot parameters. */
  readonly #nodeRules = new Map<string, { digest: number; params: number[] }>();
  /** Nodes already logged as having other rules, with the digest logged. */
  readonly #mismatchLogged = new Map<string, number>();
  readonly #deadAfterMs: number;
  /** The weight the main thread asks for (configured, measured, or DRAINING_WEIGHT for a drain). */
  #wantedWeight: number;
  /** The weight the membership announces: the wanted one once admitted, else DRAINING_WEIGHT. */
  #announcedWeight = DRAINING_WEIGHT;
  /** It served (published accepting) since its start, rejoin or reset: nothing holds it now. */
  #serving = false;
  /** The end of the listening period after a start, rejoin or reset. */
  #listenUntil = Number.POSITIVE_INFINITY;
  readonly #heldStates: { srcMac: string; flags: number; state: Uint8Array; until: number }[] = [];
  readonly #listenMs: number;
  #decision: AdmissionDecision = 'listening';
  #lastTickAt = Number.NaN;
  readonly #unauthenticated: UnauthenticatedPeers;
  readonly #newPeers = new TokenBucket(NEW_PEERS_PER_SECOND, 64);
  /** Peers refused a table entry by #newPeers. */
  #peersNotTracked = 0;
  readonly #logLimiter = new LogLimiter(LOG_INTERVAL_MS);
  readonly #memberLines = new TokenBucket(MEMBER_LINES_PER_SECOND, MEMBER_LINES_BURST);
  #memberLinesHeld = 0;
  /** Nodes gone from the table lately, by MAC key: until when a frame of theirs skips the strangers' budget. */
  readonly #gone = new Map<number, number>();
  /** Lines the log limiter held back, since the start. */
  #linesSuppressed = 0;
  /** The tracking-state transfers, as a member and as a newcomer. */
  readonly #transfers: ControlStateTransfers;
  /** --election bucket: the table the members agree on (cluster/bucket-ledger.ts). */
  readonly #ledger: BucketLedger | undefined;
  /** The members and weights the ledger last saw, as text: a new view when it changes. */
  #ledgerViewKey = '';
  /** --election bucket: the flows that move with the buckets (cluster/bucket-handover.ts). */
  readonly #handovers: BucketHandovers | undefined;
  /** The handover messages of the plan under way, by receiver MAC, kept for resends. */
  readonly #handoverOut = new Map<string, { id: number; message: MessageFragments }>();
  /** Buckets the plan under way moves away: the filter passes them until the plan's scan has counted what drains. */
  readonly #handingAway = new Uint32Array(BUCKET_MASK_WORDS);
  readonly #dataFd: number | undefined;
  /** The actors' draining buckets (heartbeats announce them), and the mask announced. */
  readonly #drainingMemory: DrainingBuckets | undefined;
  readonly #drainingMask = new Uint32Array(BUCKET_MASK_WORDS);
  /** A LEAVE is on its way (stop, lnlbctl stop): nothing is accepted until a rejoin. */
  #leaving = false;
  /** The pass mask last published (#wakeFilter). */
  #lastPassKey = '';
  /**
   * Per member, when its weights were announced (epoch ms, the sockets' receive clock): the
   * receive time of the HEARTBEAT that first carried its announced weight (this node's own:
   * when it went out), and the weight applied before the current one with the time that one
   * was announced. The view's pendingFrom and weight history (PublishedView) come from here.
   */
  readonly #weightTimes = new Map<string, WeightTimes>();
  /** The table under the pending weights, and for which weights (computed once per change). */
  #nextBuckets: { key: string; owners: Uint8Array | undefined } = { key: '', owners: undefined };

  constructor(data: ControlData, emit: (event: ControlEvent) => void, io: ControlPlaneIo = {}) {
    this.#emit = emit;
    const clock = io.clock ?? systemClock;
    this.#clock = clock;
    this.#rules = data.rules;
    this.#heartbeatMs = data.heartbeatMs;
    this.#deadAfterMs = data.deadAfterMs;
    this.#wantedWeight = data.weight;
    this.#selfIdentity = { name: data.nodeName, address: data.address };
    this.#listenMs = Math.min(data.deadAfterMs, 2 * data.heartbeatMs);
    this.#unauthenticated = new UnauthenticatedPeers(data.deadAfterMs);
    this.#viewWriter = new ViewWriter(data.view);
    this.#rings = data.actorRings.map((sab) => new ByteRing(sab));
    // Members see a view change within a heartbeat or so of each other (a death's detection,
    // a round's end): a view stable for BUCKETS_SETTLE_HEARTBEATS in which tables still
    // differ is a real disagreement, and everyone falls back to the canonical table.
    this.#dataFd = data.dataFd;
    this.#drainingMemory = data.draining === undefined ? undefined : new DrainingBuckets(data.draining);
    this.#ledger = data.election === 'bucket' ? new BucketLedger({ selfMac: data.ownMac, settleMs: BUCKETS_SETTLE_HEARTBEATS * data.heartbeatMs }) : undefined;
    this.#handovers =
      data.election === 'bucket'
        ? new BucketHandovers({
            selfMac: data.ownMac,
            resendMs: HANDOVER_RESEND_HEARTBEATS * data.heartbeatMs,
            maxResends: HANDOVER_MAX_RESENDS,
            pendingTimeoutMs: Math.max(HANDOVER_PENDING_TIMEOUT_MIN_MS, HANDOVER_PENDING_TIMEOUT_HEARTBEATS * data.heartbeatMs),
          })
        : undefined;
    this.#membership = new Membership({
      selfMac: formatMac(data.ownMac),
      heartbeatMs: data.heartbeatMs,
      deadAfterMs: data.deadAfterMs,
      incarnation: data.incarnation,
      // Draining until admitted: every node's election leaves a listening or held node out.
      weight: DRAINING_WEIGHT,
    });
    const membership = this.#membership;
    this.#channel = new ControlChannel({
      socket: io.socket ?? new PacketControlSocket({ dev: data.dev, ownMac: data.ownMac, clusterMac: data.clusterMac, multicast: data.multicast, vlan: data.vlan, mtu: data.mtu, ...(data.ringBytes === undefined ? {} : { ringBytes: data.ringBytes }) }),
      clock,
      ownMac: data.ownMac,
      clusterMac: data.clusterMac,
      clusterIp: data.clusterIp,
      mtu: data.mtu,
      key: data.key,
      ...(data.clockToleranceMs === undefined ? {} : { clockToleranceMs: data.clockToleranceMs }),
      macFactory: io.macFactory ?? hmacSha256,
      rules: data.rules,
      identity: this.#selfIdentity,
      onMessage: (type, srcMac, info) => {
        if (type !== MessageType.HEARTBEAT) this.#wake();
        const now = clock.now();
        membership.receive(type, srcMac, now, info, this.#heardAt(now));
        if (info.joined) this.#transfers.serves(srcMac);
        // Rules and names are kept only for the senders in the table (bounded, pruned as they go).
        const sender = this.#find(srcMac);
        const known = sender !== undefined;
        // The sender's weight announced by this frame: announced when it came. (This node's own,
        // put in flight by a round this frame started, counts from its heartbeat: #publishView.)
        if (known) this.#weightAnnounced(sender, this.#receivedAt());
        if (!known) this.#wake();
        if (known) this.#noteIdentity(srcMac);
        const rulesChanged = known && this.#noteRules(srcMac);
        const digest = this.#channel.received.bucketDigest;
        // The sender's MAC as bytes (the channel's, valid during this call): no array per heartbeat.
        const from = this.#channel.receivedFrom;
        const tableChanged = known && digest >= 0 && this.#ledgerHeard(from, digest, this.#channel.received.viewDigest);
        const received = this.#channel.received;
        if (known && received.handedDigest >= 0) {
          this.#handovers?.heardHanded(from, received.handedDigest);
          this.#handovers?.heardDraining(from, received.hasDraining ? received.draining : undefined);
        }
        if (rulesChanged || tableChanged) this.#wake();
        if ((rulesChanged || tableChanged) && membership.members.some((n) => n.mac === srcMac)) this.#publishView();
        this.#driveAfterRead();
      },
      onState: (srcMac, flags, messageId, fragmentTotal, state) => {
        this.#wake();
        if ((flags & STATE_PROTOCOL_MASK) === HANDOVER_PROTOCOL && transferCount(flags) === 0) {
          if (state !== undefined) this.#handoverArrived(srcMac, messageId, state);
          return;
        }
        this.#transfers.fragment(srcMac, flags, messageId, fragmentTotal, state);
      },
      onStateReply: (type, srcMac, data) => {
        this.#wake();
        if (type === MessageType.STATE_ACK && this.#handovers !== undefined) {
          const id = decodeStateAck(data);
          if (id !== undefined && this.#handovers.acknowledged(parseMac(srcMac), id, clock.now())) {
            this.#handoverOut.delete(srcMac);
            this.#driveAfterRead();
            return;
          }
        }
        this.#transfers.reply(type, srcMac, data);
      },
      isKnownSender: (key) => this.#findKey(key) !== undefined,
      wasMember: (key) => this.#wasMember(key),
      acceptsStateFrom: (key) => this.#acceptsStateFrom(key),
      onUnauthenticated: (key, verdict, claimsJoined) => {
        this.#wake();
        this.#unauthenticatedFrame(key, verdict, claimsJoined);
      },
      onReadDone: () => {
        if (this.#driveWanted || this.#channel.announcementsRead > 0) this.#drive();
      },
    });
    this.#transfers = new ControlStateTransfers(
      {
        membership,
        serving: () => this.#serving,
        log: (level, fields, msg) => this.#log(level, fields, msg),
        logLimited: (level, key, fields, msg) => this.#logLimited(level, key, fields, msg),
        // --election bucket: a newcomer is handed the table alone; the flows come with the buckets it gains.
        saveState: (to) => (this.#ledger === undefined ? this.#emit({ type: 'save-state', to, owners: this.#owners() }) : void this.sendSavedState(to, [])),
        loadState: (from, flags, state) => this.#loadState(from, flags, state),
        noStateNeeded: (now) => {
          membership.stateReceived();
          membership.tick(now);
          this.#carryOut(membership.drainActions());
        },
        drive: () => this.#driveAfterRead(),
      },
      this.#channel,
      clock,
      data.deadAfterMs,
      data.key !== undefined,
    );
  }

  start(): void {
    this.#publishView(); // not accepting until the first round completes
    this.#channel.open();
    const now = this.#clock.now();
    this.#listenUntil = now + this.#listenMs;
    this.#lastTickAt = now;
    this.#transfers.begin(now);
    this.#membership.start(now);
    this.#drive();
  }

  /** Sends LEAVE (the others re-home our clients at once) and closes the socket. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.NaN;
    this.#stopAccepting();
    this.#membership.stop();
    this.#carryOut(this.#membership.drainActions());
    this.#channel.close();
  }

  setWeight(weight: number): void {
    this.#wake();
    this.#wantedWeight = weight;
    this.#admit(this.#clock.now());
    this.#drive(); // a hold may start now: the actors must see it
  }

  /**
   * Before a LEAVE: the actors stop taking frames first. The others take this node's clients
   * the moment the LEAVE reaches them; a frame this node took after that would be answered twice.
   */
  #stopAccepting(): void {
    this.#leaving = true;
    this.#publishView();
  }

  /** `lnlbctl stop`: LEAVE, accept nothing, forget the tables (the others re-home our clients). */
  leave(): void {
    if (this.#stopped) return;
    this.#wake();
    this.#stopAccepting();
    this.#membership.leave();
    this.#carryOut(this.#membership.drainActions());
    this.#transfers.end(this.#clock.now());
    this.#emit({ type: 'reset' });
    this.#resetHandovers();
    this.#lastLoggedView = '';
    this.#lastWeights.clear();
    this.#pruneSenders();
    this.#serving = false;
    this.#listenUntil = Number.POSITIVE_INFINITY;
    this.#log('info', { event: 'left-cluster' }, 'left the cluster (LEAVE sent): accepting nothing until lnlbctl start');
  }

  /** `lnlbctl start` after a stop: JOIN again; accepting once the first round completes. */
  rejoin(): void {
    this.#wake();
    if (this.#stopped) return;
    this.#leaving = false;
    const now = this.#clock.now();
    this.#serving = false;
    this.#listenUntil = now + this.#listenMs;
    this.#lastTickAt = now;
    this.#admit(now); // the JOINs announce the draining weight
    this.#transfers.begin(now);
    this.#membership.rejoin(now);
    this.#log('info', { event: 'rejoining' }, 'joining the cluster again');
    this.#drive();
  }

  /**
   * This node's view carries the weight it wants to announce: not so between setWeight (the end
   * of the listening period, a measured weight, a drain) and the round that announces it, when
   * the membership itself has nothing pending yet. Until then the view is not settled: no
   * `converged` line, and status says converging.
   */
  #ownWeightApplied(): boolean {
    const self = this.#membership.self;
    return self === undefined || self.weight === this.#announcedWeight;
  }

  status(): ControlStatus {
    const m = this.#membership;
    const now = this.#clock.now();
    return {
      accepting: this.#view.accepting,
      changePending: m.changePending || !this.#ownWeightApplied(),
      nodes: m.nodes.map((n) => {
        const rules = n.self ? this.#rules : this.#nodeRules.get(n.mac);
        const identity = this.#identityOf(n.mac, n.self);
        return {
          mac: n.mac,
          name: identity?.name ?? '',
          address: identity === undefined || identity.address === 0 ? '' : formatIPv4(identity.address),
          status: displayStatus(n.status),
          joined: n.self ? this.#serving : n.joined,
          weight: n.weight,
          self: n.self,
          rulesDigest: rules?.digest,
          rulesMatch: rules === undefined ? undefined : rules.digest === this.#rules.digest,
        };
      }),
      control: {
        ...this.#channel.counters,
        overflow: {
          unauthenticatedPeersEvicted: this.#unauthenticated.evicted,
          unauthenticatedPeersNotTracked: this.#peersNotTracked,
          logLinesSuppressed: this.#linesSuppressed,
          stateSendsSkipped: this.#transfers.stateSendsSkipped,
          socketDrops: this.#channel.socketDrops,
        },
        stateTransfer: this.#transfers.counters,
      },
      nodeTableFull: m.tableFull,
      rounds: m.roundsCompleted,
      resets: m.resets,
      ...(this.#lastFailover === undefined ? {} : { lastFailover: { ...this.#lastFailover } }),
      stallMaxMs: Math.round(m.stallMaxMs),
      stallTotalMs: Math.round(m.stallTotalMs),
      deaths: { ...this.#deaths },
      authenticated: this.#channel.authenticated,
      unauthenticatedPeers: this.#currentUnauthenticated(now).map(
        (p): UnauthenticatedPeerStatus => ({ mac: p.mac, verdict: p.verdict, claimsJoined: p.claimsJoined, lastSeenMs: Math.round(now - p.lastSeenAt) }),
      ),
      heldBy: this.#decision === 'held' ? 'unauthenticated-peers' : undefined,
      ...(this.#ledger === undefined ? {} : { buckets: this.#bucketsStatus(this.#ledger) }),
    };
  }

  /** Sizes of everything kept per sender, for tests and the status: each is bounded. */
  get perSenderState(): { nodeRules: number; identities: number; mismatchLogged: number; lastWeights: number; unauthenticatedPeers: number; members: number; reassembling: number; logKeys: number; peersNotTracked: number } {
    return {
      nodeRules: this.#nodeRules.size,
      identities: this.#identities.size,
      mismatchLogged: this.#mismatchLogged.size,
      lastWeights: this.#lastWeights.size,
      unauthenticatedPeers: this.#unauthenticated.size,
      members: this.#membership.nodes.length,
      reassembling: this.#channel.reassembling.messages,
      logKeys: this.#logLimiter.size,
      peersNotTracked: this.#peersNotTracked,
    };
  }

  #find(mac: string): MemberNode | undefined {
    for (const n of this.#membership.nodes) if (n.mac === mac) return n;
    return undefined;
  }

  #findKey(macKey: number): MemberNode | undefined {
    for (const n of this.#membership.nodes) if (n.macKey === macKey) return n;
    return undefined;
  }

  /**
   * Tracking state replaces tables, so it is taken only from members: a newcomer (not yet
   * joined) from a node of its table that has joined (the first member sends it; its
   * WELCOME and heartbeats say it has joined), a joined node (a resync) from a member of
   * its view.
   */
  #acceptsStateFrom(macKey: number): boolean {
    const node = this.#findKey(macKey);
    if (node === undefined || node.self) return false;
    if (this.#membership.accepting) return node.status !== NodeStatus.JOINING;
    // A newcomer under --election bucket takes the members' handovers as well as its table.
    return this.#transfers.accepts(node.mac) || (this.#handovers !== undefined && node.joined);
  }

  /** A node left the table: a restart of it (same MAC) is heard whatever strangers send meanwhile (bounded, expiring). */
  #noteGone(macKey: number): void {
    const now = this.#clock.now();
    for (const [key, until] of this.#gone) if (until <= now) this.#gone.delete(key);
    if (this.#gone.size >= GONE_MAX) this.#gone.delete(this.#gone.keys().next().value!);
    this.#gone.delete(macKey);
    this.#gone.set(macKey, now + GONE_REMEMBERED_MS);
  }

  #wasMember(macKey: number): boolean {
    const until = this.#gone.get(macKey);
    return until !== undefined && until > this.#clock.now();
  }

  /** Keeps per-sender maps to the senders in the table. */
  #pruneSenders(): void {
    for (const mac of this.#identities.keys()) if (this.#find(mac) === undefined) this.#identities.delete(mac);
    for (const mac of this.#nodeRules.keys()) if (this.#find(mac) === undefined) this.#nodeRules.delete(mac);
    for (const mac of this.#mismatchLogged.keys()) if (this.#find(mac) === undefined) this.#mismatchLogged.delete(mac);
    for (const mac of this.#lastWeights.keys()) if (this.#find(mac) === undefined) this.#lastWeights.delete(mac);
  }

  #currentUnauthenticated(now: number): UnauthenticatedPeer[] {
    // A member's MAC in a forged frame does not make the member a stranger.
    return this.#unauthenticated.current(now, (key) => this.#findKey(key) !== undefined).sort((a, b) => a.macKey - b.macKey);
  }

  /** A frame for our cluster that we cannot authenticate, from `macKey`. */
  #unauthenticatedFrame(macKey: number, verdict: UnauthenticatedVerdict, claimsJoined: boolean): void {
    const now = this.#clock.now();
    const peers = this.#unauthenticated;
    // Known peers are refreshed for free; new ones (a flood of spoofed MACs) within a budget.
    if (!peers.has(macKey, now) && !this.#newPeers.take(now)) {
      this.#peersNotTracked++;
      return;
    }
    const added = peers.note(macKey, verdict, claimsJoined, now);
    if (added === undefined) return;
    if (this.#serving && this.#findKey(macKey) === undefined) {
      this.#logLimited(
        'warn',
        'unauthenticated-peer',
        { event: 'unauthenticated-peer', node: added.mac, verdict, claimsJoined },
        `peer ${peerText(added)} sends frames for this cluster that I cannot authenticate: it is not a member (this node keeps serving); give every node the same --key-file`,
      );
    }
    if (!this.#serving) this.#driveAfterRead(); // may hold this node now
  }

  /**
   * The admission rule (cluster/admission.ts): sets the announced weight (the wanted one, or
   * DRAINING_WEIGHT while listening or held) and says why when held.
   */
  #admit(now: number): void {
    const peers = this.#serving ? [] : this.#currentUnauthenticated(now);
    let group = 0;
    let verifiedServing = false;
    for (const n of this.#membership.nodes) {
      if (!n.self && now - n.lastHeardAt >= this.#deadAfterMs) continue;
      group++;
      if (!n.self && n.joined) verifiedServing = true;
    }
    const decision = admission({ serving: this.#serving, listening: now < this.#listenUntil, verifiedGroup: group, verifiedServing, peers });
    const before = this.#decision;
    this.#decision = decision;
    const weight = decision === 'serve' ? this.#wantedWeight : DRAINING_WEIGHT;
    if (weight !== this.#announcedWeight) {
      this.#announcedWeight = weight;
      this.#membership.setWeight(weight);
    }
    if (decision === 'held') {
      const claim = peers.some((p) => p.claimsJoined) ? 'some of them serve' : `my group of ${group} is not larger`;
      this.#logLimited(
        'error',
        'held',
        { event: 'held', reason: 'unauthenticated-peers', peers: peers.map((p) => ({ mac: p.mac, verdict: p.verdict, claimsJoined: p.claimsJoined })), group },
        `not serving: ${peers.length} peer(s) on this LAN that I cannot authenticate: ${peers.map(peerText).join(', ')}: give every node the same --key-file (${claim})`,
      );
    } else if (before === 'held') {
      this.#log('info', { event: 'admitted' }, 'no unauthenticated peer holds this node any more: serving');
    }
    if (decision !== before) this.#publishView();
  }

  #logLimited(level: LogLevel, key: string, fields: Record<string, unknown>, msg: string): void {
    const permit = this.#logLimiter.permit(key, this.#clock.now());
    if (!permit.write) {
      this.#linesSuppressed++;
      return;
    }
    this.#log(level, permit.suppressed > 0 ? { ...fields, suppressed: permit.suppressed } : fields, permit.suppressed > 0 ? `${msg} (${permit.suppressed} more like this in the last ${LOG_INTERVAL_MS / 1000} s)` : msg);
  }

  /**
   * Lines about members joining and dying: a burst is written, a flood (spoofed JOINs on an
   * unkeyed cluster) goes to debug and is summarised. The main thread still turns each into
   * its typed event (joined, left, died) for an embedding service.
   */
  #memberLine(level: LogLevel, fields: Record<string, unknown>, msg: string): void {
    if (!this.#memberLines.take(this.#clock.now())) {
      this.#memberLinesHeld++;
      this.#linesSuppressed++;
      this.#log('debug', fields, msg);
      return;
    }
    const held = this.#memberLinesHeld;
    this.#memberLinesHeld = 0;
    this.#log(level, held > 0 ? { ...fields, suppressed: held } : fields, held > 0 ? `${msg} (${held} lines about other nodes held back)` : msg);
  }

  /** Records the identity block of the message just received (a node may be renamed: the last one counts). */
  #noteIdentity(srcMac: string): void {
    const r = this.#channel.received;
    if (!r.hasIdentity) return;
    const before = this.#identities.get(srcMac);
    if (before !== undefined && before.name === r.identity.name && before.address === r.identity.address) return;
    this.#identities.set(srcMac, { name: r.identity.name, address: r.identity.address });
  }

  #identityOf(mac: string, self = false): { name: string; address: number } | undefined {
    return self ? this.#selfIdentity : this.#identities.get(mac);
  }

  /** Log fields naming a node: its name and address when it announced them. */
  #nodeFields(mac: string, self = false): { name?: string; address?: string } {
    const identity = this.#identityOf(mac, self);
    if (identity === undefined) return {};
    return { name: identity.name, ...(identity.address === 0 ? {} : { address: formatIPv4(identity.address) }) };
  }

  /** A node as a log line names it: `web2 (10.0.0.2, 02:00:..)`, or its MAC alone. */
  #nodeText(mac: string, self = false): string {
    const f = this.#nodeFields(mac, self);
    return f.name === undefined ? mac : `${f.name} (${f.address === undefined ? '' : `${f.address}, `}${mac})`;
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
    // Every heartbeat carries the block, nearly always unchanged: compared in place, copied only when new.
    if (before !== undefined && before.digest === r.rulesDigest && sameParams(before.params, r.ruleParams, r.ruleSlots)) return false;
    this.#nodeRules.set(srcMac, { digest: r.rulesDigest, params: Array.from(r.ruleParams.subarray(0, r.ruleSlots)) });
    if (r.rulesDigest !== this.#rules.digest && this.#mismatchLogged.get(srcMac) !== r.rulesDigest) {
      this.#mismatchLogged.set(srcMac, r.rulesDigest);
      this.#memberLine(
        'error',
        { event: 'rules-mismatch', node: srcMac, theirs: hex(r.rulesDigest), ours: hex(this.#rules.digest) },
        `node ${srcMac} has other port rules (digest ${hex(r.rulesDigest)}, ours ${hex(this.#rules.digest)}): give every node the same --rule flags; until then each node applies its own`,
      );
    } else if (r.rulesDigest === this.#rules.digest && this.#mismatchLogged.delete(srcMac)) {
      this.#memberLine('info', { event: 'rules-match', node: srcMac }, `node ${srcMac} now has the same port rules`);
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
      this.#memberLine('info', { event: 'node-left', node: mac, ...this.#nodeFields(mac), id, reason }, `node ${this.#nodeText(mac)} left the cluster`);
      return;
    }
    const missed = Math.max(1, Math.floor(silentMs / this.#heartbeatMs));
    const why = reason === 'missed-heartbeats' ? `missed ${missed} heartbeats (silent for ${silent} ms)` : reason === 'restarted' ? 'restarted (new incarnation): its old self is removed' : 'forgotten by our own reset';
    this.#memberLine('warn', { event: 'node-died', node: mac, ...this.#nodeFields(mac), id, reason, silentMs: silent, missedHeartbeats: missed }, `node ${this.#nodeText(mac)} died: ${why}`);
  }

  #log(level: LogLevel, fields: Record<string, unknown>, msg: string): void {
    this.#emit({ type: 'log', level, fields, msg });
  }

  /**
   * A deadline came: the frames already waiting first (a heartbeat may be among them), then what
   * is due. A timer armed for a deadline that moved later since (#arm keeps it) arms the next.
   */
  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Number.NaN;
    if (this.#stopped) return;
    if (this.#clock.now() < this.#deadline - 0.5) {
      this.#arm(this.#deadline);
      return;
    }
    // Quiet, all that waits (the members' heartbeats of an interval), up to the budget: more
    // (a burst, a flood) ends quiet reading in the drive below and is read as it comes.
    const budget = this.#channel.watching ? 0 : quietFrameBudget(this.#membership.nodes.length);
    for (let read = READ_BATCH; this.#channel.readWaiting() && read < budget; read += READ_BATCH) {
      // A whole batch was read: more may wait.
    }
    this.#drive();
  }

  /**
   * When the frame being handled reached this host, on the monotonic clock: its kernel receive
   * time moved by the wall clock's distance from it, kept within the last heartbeat (a settled
   * node reads once a heartbeat; a wall clock stepped forward meanwhile can make a live member
   * look at most one heartbeat older, which dead-after, always longer, absorbs) and not in
   * the future (a wall clock stepped back, or a frame with no time: `now`).
   */
  #heardAt(now: number): number {
    const receivedAt = this.#channel.receivedAt;
    if (!Number.isFinite(receivedAt)) return now;
    const waited = this.#clock.wallNow() - receivedAt;
    return now - Math.min(Math.max(waited, 0), this.#heartbeatMs);
  }

  /** `node` announces `node.announcedWeight`, heard at `at` (the first time only counts). */
  #weightAnnounced(node: MemberNode, at: number): WeightTimes {
    let times = this.#weightTimes.get(node.mac);
    if (times === undefined) {
      const inFlight = node.announcedWeight !== node.weight;
      times = { announced: node.announcedWeight, announcedAt: inFlight ? at : Number.NEGATIVE_INFINITY, applied: node.weight, previous: node.weight, appliedSince: Number.NEGATIVE_INFINITY };
      this.#weightTimes.set(node.mac, times);
    } else if (times.announced !== node.announcedWeight) {
      times.announced = node.announcedWeight;
      times.announcedAt = at;
    }
    return times;
  }

  /**
   * Fills the view's weight history (each member's previous weight and when its applied one
   * was announced) and returns when the weights in flight were announced (pendingFrom: the
   * earliest; -Infinity: none). A weight applied here that no heartbeat was heard announcing
   * (this node's own, or one whose heartbeats were lost) counts from now.
   */
  #weightHistory(nodes: readonly MemberNode[]): number {
    const view = this.#view;
    const now = this.#clock.preciseWallNow();
    let pendingFrom = Number.POSITIVE_INFINITY;
    nodes.forEach((node, i) => {
      const times = this.#weightAnnounced(node, now);
      if (times.applied !== node.weight) {
        times.previous = times.applied;
        times.applied = node.weight;
        times.appliedSince = times.announced === node.weight ? times.announcedAt : now;
      }
      if (node.announcedWeight !== node.weight) pendingFrom = Math.min(pendingFrom, times.announcedAt);
      view.previousWeights[i] = times.previous;
      view.weightSince[i] = times.appliedSince;
    });
    if (this.#weightTimes.size > nodes.length) for (const mac of this.#weightTimes.keys()) if (!nodes.some((n) => n.mac === mac)) this.#weightTimes.delete(mac);
    return pendingFrom === Number.POSITIVE_INFINITY ? Number.NEGATIVE_INFINITY : pendingFrom;
  }

  /** When the frame being handled reached this host, on the wall clock of the sockets' receive times (now, if not known). */
  #receivedAt(): number {
    const at = this.#channel.receivedAt;
    return Number.isFinite(at) ? at : this.#clock.preciseWallNow();
  }

  /** Something that is not routine happened: watch the socket again (quiet reading, above). */
  #wake(): void {
    this.#eventful = true;
    this.#settledSince = Number.NaN;
    this.#channel.setWatching(true);
  }

  /**
   * After a drive: whether the cluster is settled (quiet reading, above). Rounds run on every
   * heartbeat; one that changes nothing is routine.
   */
  #readQuietly(now: number, transfersDue: number): void {
    const membership = this.#membership;
    const phase = membership.phase;
    this.#windowFrames += this.#channel.takeFramesRead();
    if (now - this.#windowAt >= this.#heartbeatMs) {
      this.#lastWindowFrames = this.#windowFrames;
      this.#windowFrames = 0;
      this.#windowAt = now;
    }
    const budget = quietFrameBudget(membership.nodes.length);
    const settled =
      this.#windowFrames <= budget &&
      this.#lastWindowFrames <= budget &&
      !this.#eventful &&
      (phase === MembershipPhase.IDLE || phase === MembershipPhase.CONVERGING) &&
      !membership.changePending &&
      !membership.weightsPending &&
      this.#serving &&
      !this.#leaving &&
      this.#listenUntil <= now &&
      transfersDue === Number.POSITIVE_INFINITY &&
      (this.#handovers === undefined || (this.#handovers.nextDeadline() === Number.POSITIVE_INFINITY && this.#handovers.pendingCount === 0)) &&
      (this.#ledger === undefined || this.#ledger.agreed);
    this.#eventful = false;
    if (!settled) {
      this.#settledSince = Number.NaN;
      this.#channel.setWatching(true);
      return;
    }
    if (Number.isNaN(this.#settledSince)) this.#settledSince = now;
    if (now - this.#settledSince >= QUIET_AFTER_HEARTBEATS * this.#heartbeatMs) this.#channel.setWatching(false);
  }

  /**
   * Sleeps until `deadline`. A timer armed for then or earlier stays: clearing a Node timer
   * leaves libuv's armed for its time (that wake-up comes anyway), and a new one per drive
   * costs a timer object and a timer list per duration; the early one arms the rest.
   */
  #arm(deadline: number): void {
    this.#deadline = deadline;
    const clock = this.#clock;
    const ms = Math.max(1, Math.ceil(deadline - clock.now()));
    const at = clock.now() + ms;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= at) return;
      clock.clearTimer(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = clock.setTimer(this.#onTimerBound, ms);
  }

  /** A frame asks for a drive: at the end of the batch being read (one per wake-up, not one per frame), or now outside one. */
  #driveAfterRead(): void {
    if (this.#channel.reading) this.#driveWanted = true;
    else this.#drive();
  }

  #drive(): void {
    this.#driveWanted = false;
    if (this.#stopped) return;
    const membership = this.#membership;
    const clock = this.#clock;
    const now = clock.now();
    // A stall longer than the death timeout makes the membership reset and JOIN again:
    // announce the draining weight in those JOINs, as at any start.
    if (now - this.#lastTickAt > this.#deadAfterMs && membership.accepting) {
      this.#serving = false;
      this.#listenUntil = now + this.#listenMs;
    }
    this.#lastTickAt = now;
    this.#admit(now);
    membership.tick(now);
    if (this.#ledger !== undefined) {
      const fallbacks = this.#ledger.fallbacks;
      const agreed = this.#ledger.agreed;
      this.#ledger.tick(now);
      if (this.#ledger.fallbacks !== fallbacks) this.#logFallback(this.#ledger);
      // A fall-back, or agreement reached with nobody to hear from (a member alone): publish.
      if (this.#ledger.fallbacks !== fallbacks || this.#ledger.agreed !== agreed) this.#publishView();
    }
    this.#announceDraining(); // before the heartbeats below go out
    this.#carryOut(membership.drainActions());
    // The actors hold new flows after a weight announced in the data stream until the view reads
    // through it: the time moves on without a new view (a repeat or a forgery changes nothing else).
    if (this.#channel.takeAnnouncementsRead() > 0 && this.#view.readThrough !== this.#channel.readThrough) {
      this.#view.readThrough = this.#channel.readThrough;
      this.#viewWriter.storeReadThrough(this.#view.readThrough);
      this.#wakeActors();
    }
    this.#channel.expire(now);
    const transfersDue = this.#transfers.drive(now);
    this.#driveHandovers(now);
    const heldDue = this.#heldStates.length === 0 ? Number.POSITIVE_INFINITY : this.#releaseHeldStates(now);
    let deadline = Math.min(membership.nextDeadline(), transfersDue, heldDue, this.#handovers?.nextDeadline() ?? Number.POSITIVE_INFINITY);
    if (this.#listenUntil > now) deadline = Math.min(deadline, this.#listenUntil);
    this.#readQuietly(now, transfersDue);
    // Reading quietly, the timer is the only reader of heartbeats: at least one read a heartbeat
    // (a round waiting for one would otherwise wait for its timeout, and send none meanwhile).
    if (!this.#channel.watching) deadline = Math.min(deadline, this.#nextQuietRead(now));
    this.#arm(deadline);
  }

  /**
   * When a node reading quietly next reads: a heartbeat after now, and a round's heartbeats at
   * the latest when the next round is due (a heartbeat after it started); a round still
   * missing some then is read an eighth of a heartbeat apart until it completes. Read only a
   * heartbeat after the last read, a round missing a heartbeat that came just after that read
   * waited a whole heartbeat more, and so did the rounds waiting for this node's next one:
   * from 4 nodes on, rounds ran 4-7 a second, not 10. Past DUE_READS_MAX_MEMBERS members, once
   * a heartbeat: rounds at 10 a second are N² heartbeats, and 64 daemons on 2 cores reading
   * 40,000 a second between them were starved into false deaths while starting (1 start of 5).
   */
  #nextQuietRead(now: number): number {
    const startedAt = this.#membership.roundStartedAt;
    if (Number.isNaN(startedAt) || this.#membership.nodes.length > DUE_READS_MAX_MEMBERS) return now + this.#heartbeatMs;
    const due = startedAt + this.#heartbeatMs;
    return now >= due ? now + this.#heartbeatMs / 8 : Math.min(due, now + this.#heartbeatMs);
  }

  #carryOut(actions: readonly MembershipAction[]): void {
    let viewChanged = false;
    for (const action of actions) {
      switch (action.kind) {
        case 'send':
          // FLAG_JOINED says "serving": a listening or held node never holds another (admission.ts).
          this.#channel.send(action.type, action.to, action.weight, action.incarnation, action.joined && this.#serving, action.wake === true, action.probe === true);
          break;
        case 'view-changed':
          viewChanged = true;
          this.#wake();
          break;
        case 'node-joined':
          this.#wake();
          this.#memberLine('info', { event: 'node-joined', node: action.node.mac, ...this.#nodeFields(action.node.mac), id: action.node.id }, `node ${this.#nodeText(action.node.mac)} joined`);
          break;
        case 'node-died':
          this.#wake();
          this.#deaths[action.reason]++;
          if (action.reason === 'missed-heartbeats') {
            const declaredAt = this.#clock.wallNow();
            this.#lastFailover = { node: action.node.mac, lastHeardAt: declaredAt - action.silentMs, declaredAt, publishedAt: 0 };
          }
          this.#logDeath(action.node.mac, action.node.id, action.reason, action.silentMs);
          this.#transfers.drop(action.node.mac, 'gone');
          if (action.reason === 'missed-heartbeats') this.#transfers.senderDied(action.node.mac, action.silentMs);
          this.#noteGone(action.node.macKey);
          break;
        case 'reset':
          this.#wake();
          this.#heldStates.length = 0; // the state is sent again to the node that joins anew
          this.#transfers.begin(this.#clock.now());
          this.#transfers.dropAll();
          this.#serving = false;
          this.#listenUntil = this.#clock.now() + this.#listenMs;
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
          this.#wake();
          this.#transfers.send(action.to);
          break;
      }
    }
    // Publish first: the new view alone re-homes a dead node's clients; the purge only frees memory.
    if (viewChanged) this.#publishView();
    let died = false;
    for (const action of actions) {
      if (action.kind === 'node-died') {
        this.#emit({ type: 'node-died', id: action.node.id });
        died = true;
      } else if (action.kind === 'reset') {
        this.#emit({ type: 'reset' });
        this.#resetHandovers();
      }
    }
    if (died) this.#pruneSenders();
  }

  #publishView(): void {
    const membership = this.#membership;
    const view = this.#view;
    const nodes = membership.members;
    view.accepting = membership.accepting && this.#decision === 'serve' && !this.#leaving;
    if (view.accepting) this.#serving = true;
    this.#publishBuckets();
    // --election bucket: until every member announces this node's table, another node may
    // elect from another one (a newcomer's table, a fall-back on its way): new flows wait, as
    // while the members change, rather than be taken twice or by nobody.
    const tablesDiffer = this.#ledger !== undefined && view.accepting && !this.#ledger.agreed;
    view.flags = membership.holdsAllNewFlows || tablesDiffer ? VIEW_FLAG_CHANGE_PENDING : membership.weightsPending ? VIEW_FLAG_WEIGHTS_PENDING : 0;
    view.readThrough = this.#channel.readThrough;
    view.pendingFrom = membership.membersChanging || tablesDiffer ? Number.NEGATIVE_INFINITY : this.#weightHistory(nodes);
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
    this.#wakeFilter(view);
    if (this.#lastFailover?.publishedAt === 0) this.#lastFailover.publishedAt = this.#clock.wallNow();
    this.#wakeActors();
    const members = nodes.map((n) => `${n.mac}/${n.weight}`).join(' ');
    if (view.accepting && !membership.changePending && this.#ownWeightApplied() && members !== this.#lastLoggedView) {
      this.#lastLoggedView = members;
      for (const n of nodes) {
        const before = this.#lastWeights.get(n.mac);
        this.#lastWeights.set(n.mac, n.weight);
        if (before !== undefined && before !== n.weight) {
          this.#log('info', { event: 'node-weight', node: n.mac, ...this.#nodeFields(n.mac, n.self), self: n.self, from: before, to: n.weight }, `node ${this.#nodeText(n.mac, n.self)}${n.self ? ' (this node)' : ''} weight ${weightText(before)} → ${weightText(n.weight)}`);
        }
      }
      this.#log(
        'info',
        { event: 'view', nodes: nodes.map((n) => n.mac), names: nodes.map((n) => this.#identityOf(n.mac, n.self)?.name ?? ''), weights: nodes.map((n) => n.weight) },
        `converged: ${nodes.length} node(s)`,
      );
    }
  }

  /**
   * The data socket's kernel filter follows the view's bucket masks: when they change, its
   * reader (the dispatcher) is woken to swap the filter now, not after its next frame or poll
   * timeout (a node that gains buckets must not drop their frames meanwhile).
   */
  #wakeFilter(view: PublishedView): void {
    if (this.#ledger === undefined || this.#dataFd === undefined) return;
    const key = `${view.bucketTables & VIEW_BUCKETS_PASS}:${view.passBuckets.join(',')}`;
    if (key === this.#lastPassKey) return;
    this.#lastPassKey = key;
    this.#wakeReader();
  }

  /** Idle actors sleep on their rings: wake them so held frames are decided now. Under --workers 1 the actor is the data socket's reader, asleep in its poll. */
  #wakeActors(): void {
    for (const ring of this.#rings) ring.wakeConsumer();
    if (this.#rings.length === 0) this.#wakeReader();
  }

  #wakeReader(): void {
    if (this.#dataFd === undefined) return;
    try {
      ringWake(this.#dataFd);
    } catch {
      // The socket is closed (stopping): nobody to wake.
    }
  }

  /**
   * The members an election of new keys counts, as the actors' RuleElections does: the
   * draining ones left out, unless every member drains. `weightOf` picks the applied or the
   * announced weight.
   */
  #electedMembers(weightOf: (n: MemberNode) => number): BucketMembers & { key: string; selfIndex: number } {
    const nodes = this.#membership.members;
    // Draining by the same weights (the actors' next elections filter by the next weights).
    const draining = nodes.filter((n) => weightOf(n) === DRAINING_WEIGHT).length;
    const counted = draining === 0 || draining === nodes.length ? nodes : nodes.filter((n) => weightOf(n) !== DRAINING_WEIGHT);
    const weights = counted.map(weightOf);
    return {
      count: counted.length,
      weights,
      macs: counted.flatMap((n) => [...parseMac(n.mac)]),
      key: counted.map((n, i) => `${n.mac}/${weights[i]}`).join(' '),
      selfIndex: counted.findIndex((n) => n.self),
    };
  }

  /** --election bucket: tell the ledger of a new view, and publish its table (and the next one under pending weights) for the actors. */
  #publishBuckets(): void {
    const ledger = this.#ledger;
    const view = this.#view;
    if (ledger === undefined) {
      view.bucketTables = 0;
      return;
    }
    const members = this.#electedMembers((n) => n.weight);
    if (members.key !== this.#ledgerViewKey) {
      this.#ledgerViewKey = members.key;
      // Nobody serves yet, this node included: the cluster is forming, and every node takes the canonical table.
      const founding = !this.#serving && !this.#membership.members.some((n) => !n.self && n.joined);
      ledger.viewChanged(members, this.#clock.now(), founding, !this.#serving && this.#membership.awaitingState);
    }
    if (view.accepting && ledger.table === undefined) ledger.serveWithoutBase(this.#clock.now());
    this.#channel.announcedBucketDigest = ledger.digest;
    this.#channel.announcedViewDigest = ledger.viewDigest;
    const table = ledger.table;
    let tables = 0;
    // The kernel filter passes what this node owns now and under the pending weights (the
    // draining buckets are the actors' to add); while the tables differ, everything.
    const pass = view.passBuckets;
    pass.fill(0);
    if (table !== undefined) {
      view.bucketOwners.set(table.owners);
      tables |= VIEW_BUCKETS_CURRENT;
      addOwned(pass, table.owners, members.selfIndex);
    }
    if (this.#membership.weightsPending && table !== undefined) {
      const next = this.#electedMembers((n) => n.announcedWeight);
      if (next.key !== this.#nextBuckets.key) this.#nextBuckets = { key: next.key, owners: ledger.preview(next)?.owners };
      const owners = this.#nextBuckets.owners;
      if (owners !== undefined) {
        view.nextBucketOwners.set(owners);
        tables |= VIEW_BUCKETS_NEXT;
        addOwned(pass, owners, next.selfIndex);
      }
    }
    const handovers = this.#handovers;
    if (handovers !== undefined) {
      const now = this.#clock.now();
      handovers.membersChanged(
        this.#membership.members.map((n) => parseMac(n.mac)),
        now,
      );
      // Only a serving node adopts: a newcomer alone in its first view, before it is admitted,
      // would otherwise adopt a table in which it owns every bucket, and then gain none
      // (nothing pending) when the members hand it theirs: it would take their flows at once.
      if (table !== undefined && ledger.agreed && view.accepting) this.#adoptTable(handovers, table, ledger.digest, now);
      if (handovers.pendingCount > 0) {
        view.pendingBuckets.set(handovers.pending);
        tables |= VIEW_BUCKETS_PENDING;
      }
      for (let k = 0; k < pass.length; k++) pass[k] = (pass[k]! | this.#handingAway[k]!) >>> 0;
      this.#channel.announcedHandedDigest = handovers.handedDigest;
    }
    if (table !== undefined && ledger.agreed && this.#membership.accepting && !this.#membership.holdsAllNewFlows) tables |= VIEW_BUCKETS_PASS;
    view.bucketTables = tables;
  }

  /** The members agreed on `table`: what this node gains waits for the others' flows, what moved elsewhere is scanned and sent. */
  #adoptTable(handovers: BucketHandovers, table: BucketTable, digest: number, now: number): void {
    const plan = handovers.adopt(table, digest, now);
    this.#carryOutHandovers(handovers.tick(now)); // the view being published shows what they change
    if (plan !== undefined) this.#startHandover(plan);
  }

  /**
   * `lnlbctl resync` under --election bucket: hand every flow tracked in a bucket this node
   * does not own to that bucket's owner again. Returns the plan's size (0 buckets: nothing to do).
   */
  resyncBuckets(): { buckets: number; targets: number } {
    this.#wake();
    const plan = this.#handovers?.handAll(this.#clock.now());
    if (plan === undefined) return { buckets: 0, targets: 0 };
    this.#startHandover(plan);
    return { buckets: plan.moved, targets: plan.targets.length };
  }

  #startHandover(plan: HandoverPlan): void {
    this.#handoverOut.clear();
    this.#handingAway.fill(0);
    for (let b = 0; b < plan.targetOf.length; b++) if (plan.targetOf[b] !== NO_TARGET) this.#handingAway[b >>> 5] = (this.#handingAway[b >>> 5]! | (1 << (b & 31))) >>> 0;
    this.#emit({ type: 'hand-over', id: plan.id, digest: plan.digest, targetOf: plan.targetOf, targets: plan.targets.map((mac) => formatMac(mac)), owners: this.#owners() });
    this.#log('debug', { event: 'handover-planned', id: plan.id, buckets: plan.moved, targets: plan.targets.length }, `handover ${plan.id}: ${plan.moved} buckets moved to ${plan.targets.length} other node(s); scanning the flows tracked in them`);
  }

  /** The main thread scanned plan `id`: send each new owner its flows (kept until acknowledged). */
  handoverScanned(id: number, messages: { to: string; data: Uint8Array; entries: number }[], error: string | undefined): void {
    this.#wake();
    const handovers = this.#handovers;
    if (handovers === undefined) return;
    const now = this.#clock.now();
    if (error !== undefined) this.#log('error', { event: 'handover-scan-failed', id }, `handover ${id}: the flows could not be scanned (${error}); the new owners take the moved buckets without them`);
    if (!handovers.scanned(id, messages.map((m) => parseMac(m.to)), now)) return; // replaced by a newer plan
    for (const m of messages) {
      if (this.#find(m.to) === undefined) continue;
      const { messageId, message } = this.#channel.prepareHandover(m.data);
      this.#handoverOut.set(m.to, { id, message });
      handovers.sent(id, parseMac(m.to), messageId, now);
      void this.#channel.sendFragments(m.to, message);
      this.#log('debug', { event: 'handover-sent', id, to: m.to, entries: m.entries, bytes: m.data.length, fragments: message.total }, `handover ${id}: sent ${m.entries} tracked flows to ${m.to}`);
    }
    this.#drive();
  }

  /** A handover arrived (whole): the main thread adds it to the tables, then it is acknowledged. */
  #handoverArrived(from: string, messageId: number, data: Uint8Array): void {
    if (this.#handovers === undefined) return;
    const ownerIds = Object.fromEntries(this.#membership.nodes.map((n) => [n.mac, n.id]));
    this.#emit({ type: 'handover', from, messageId, data, ownerIds });
  }

  /** The handover from `from` is in the tables (or was refused, and says why in the log): acknowledge it. */
  handoverMerged(from: string, messageId: number, entries: number, error: string | undefined): void {
    this.#wake();
    this.#channel.sendStateReply(MessageType.STATE_ACK, from, encodeStateAck(messageId));
    if (error === undefined) this.#log('debug', { event: 'handover-received', from, entries }, `took ${entries} tracked flows from ${from} with the buckets that moved here`);
  }

  /**
   * What this node's heartbeats say it drains: its actors' draining buckets and those its
   * handover under way moves away. A node that gains a dead member's bucket holds it only if
   * some live member drains it (cluster/bucket-handover.ts).
   */
  #announceDraining(): void {
    if (this.#handovers === undefined) return;
    const mask = this.#drainingMask;
    mask.set(this.#handingAway);
    const buckets = this.#drainingMemory?.unionInto(mask) ?? maskCount(mask);
    this.#channel.announcedDraining = buckets > 0 ? mask : undefined;
  }

  #driveHandovers(now: number): void {
    const handovers = this.#handovers;
    if (handovers === undefined) return;
    if (this.#carryOutHandovers(handovers.tick(now))) this.#publishView();
  }

  /** Returns whether the view must be published again. */
  #carryOutHandovers(actions: HandoverAction[]): boolean {
    let publish = false;
    for (const a of actions) {
      switch (a.kind) {
        case 'resend': {
          const to = formatMac(a.to);
          const out = this.#handoverOut.get(to);
          if (out !== undefined && out.id === a.id) void this.#channel.sendFragments(to, out.message);
          this.#log('debug', { event: 'handover-resent', id: a.id, to, resends: a.resends }, `handover ${a.id}: no acknowledgement from ${to}, sent again (${a.resends})`);
          break;
        }
        case 'abandoned': {
          const to = formatMac(a.to);
          this.#handoverOut.delete(to);
          this.#log('warn', { event: 'handover-abandoned', id: a.id, to }, `handover ${a.id}: ${to} acknowledged none of ${HANDOVER_MAX_RESENDS + 1} sends; given up (it releases the buckets it gained after its own timeout)`);
          break;
        }
        case 'handed':
          this.#handingAway.fill(0);
          this.#handoverOut.clear();
          this.#channel.announcedHandedDigest = a.digest;
          publish = true;
          break;
        case 'released':
          this.#log('debug', { event: 'buckets-released', buckets: a.buckets, ms: Math.round(a.ms) }, `${a.buckets} buckets gained: every member has handed its flows in them over (${Math.round(a.ms)} ms)`);
          publish = true;
          break;
        case 'release-timeout': {
          const silent = a.silent.map((key) => this.#membership.members.find((n) => macKey(parseMac(n.mac), 0) === key)?.mac ?? key.toString(16));
          this.#log('warn', { event: 'buckets-release-timeout', buckets: a.buckets, ms: Math.round(a.ms), silent }, `${a.buckets} buckets gained: no handover word from ${silent.join(', ')} in ${Math.round(a.ms)} ms; taking their new flows now (a flow of theirs in those buckets may be taken twice)`);
          publish = true;
          break;
        }
      }
    }
    return publish;
  }

  #resetHandovers(): void {
    this.#handovers?.reset();
    this.#handoverOut.clear();
    this.#handingAway.fill(0);
  }

  #bucketsStatus(ledger: BucketLedger): BucketsStatus {
    const table = ledger.table;
    const index = this.#electedMembers((n) => n.weight).selfIndex;
    let owned = 0;
    if (table !== undefined) for (const o of table.owners) if (o === index) owned++;
    return {
      digest: table === undefined ? '' : ledger.digest.toString(16).padStart(8, '0'),
      agreed: ledger.agreed,
      source: ledger.source,
      owned,
      lastMoves: ledger.lastMoves,
      fallbacks: ledger.fallbacks,
      pending: this.#handovers?.pendingCount ?? 0,
      handed: (this.#handovers?.handedDigest ?? 0).toString(16).padStart(8, '0'),
      handovers: { ...(this.#handovers?.counters ?? {}) },
    };
  }

  /** A member's heartbeat carried its table digest; true when the view must be published again (a fall-back, or agreement reached). */
  #ledgerHeard(from: ArrayLike<number>, digest: number, viewDigest: number): boolean {
    const ledger = this.#ledger;
    if (ledger === undefined) return false;
    const fallbacks = ledger.fallbacks;
    const agreed = ledger.agreed;
    ledger.heard(from, digest, this.#clock.now(), viewDigest >= 0 ? viewDigest : undefined);
    if (ledger.fallbacks !== fallbacks) this.#logFallback(ledger);
    // Agreement reached (or lost): the actors stop (or start) holding new flows.
    return ledger.fallbacks !== fallbacks || ledger.agreed !== agreed;
  }

  #logFallback(ledger: BucketLedger): void {
    const d = ledger.lastDisagreement;
    const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
    const heard = Object.fromEntries((d?.heard ?? []).map(([key, digest]) => [key.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:'), hex(digest)]));
    this.#log('warn', { event: 'buckets-fallback', fallbacks: ledger.fallbacks, own: hex(d?.own ?? 0), heard }, 'the members\' bucket tables differed in a settled view: every node takes the canonical table of the view (more buckets move this once)');
  }

  /** Who owns what, by local id, for whoever serialises the tables. */
  #owners(): Record<number, string> {
    return Object.fromEntries(this.#membership.nodes.map((n) => [n.id, n.mac]));
  }

  /**
   * The main thread saved the shards: send every handler's state (fragments, paced) to `to` (a
   * newcomer, or 'cluster': a resync). A newcomer gets the agreed bucket table first (its base).
   */
  sendSavedState(to: 'cluster' | string, states: { protocol: number; state: Uint8Array; entries: number }[]): Promise<{ fragments: number; error?: string }> {
    this.#wake();
    const base = to === 'cluster' || (states.length === 0 && this.#ledger === undefined) ? undefined : this.#ledger?.baseForNewcomer();
    return this.#transfers.sendSaved(to, base === undefined ? states : [{ protocol: BUCKET_TABLE_PROTOCOL, state: encodeBucketTable(base), entries: 0 }, ...states]);
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
    // A state naming a member not heard from yet waits for it (its flows would be skipped as of
    // an unknown owner: a newcomer that heard the sender's JOIN before another member's lost
    // that member's flows); the ones after it wait too, in order.
    const held = this.#heldStates;
    if (held.length > 0 || this.#namesUnknownOwner(state)) {
      held.push({ srcMac, flags, state, until: this.#clock.now() + this.#deadAfterMs });
      if (held.length === 1) this.#log('debug', { event: 'state-held', from: srcMac }, `tracking state from ${srcMac} held until every owner it names is a member`);
      this.#driveAfterRead();
      return;
    }
    this.#loadStateNow(srcMac, flags, state);
  }

  /** Held states whose owners are all members now, or that waited a death timeout (an owner that silent is dead; its flows are skipped, counted). */
  #releaseHeldStates(now: number): number {
    const held = this.#heldStates;
    while (held.length > 0) {
      const first = held[0]!;
      if (first.until > now && this.#namesUnknownOwner(first.state)) return first.until;
      held.shift();
      this.#loadStateNow(first.srcMac, first.flags, first.state);
    }
    return Number.POSITIVE_INFINITY;
  }

  #namesUnknownOwner(state: Uint8Array): boolean {
    const owners = stateOwnerMacs(state);
    if (owners === undefined) return false;
    const members = this.#membership.nodes;
    return owners.some((mac) => !members.some((n) => n.mac === mac));
  }

  #loadStateNow(srcMac: string, flags: number, state: Uint8Array): void {
    if ((flags & STATE_PROTOCOL_MASK) === BUCKET_TABLE_PROTOCOL) {
      // The members' agreed bucket table, before the tracking state: this node's base.
      const base = decodeBucketTable(state);
      if (base !== undefined && this.#ledger !== undefined) {
        this.#ledger.receiveBase(base);
        this.#publishView();
      }
      // --election bucket hands a newcomer its table alone: that was the whole state.
      if ((flags & STATE_LAST) !== 0 && !this.#membership.accepting) this.stateLoaded();
      return;
    }
    const membership = this.#membership;
    const ownerIds = Object.fromEntries(membership.nodes.map((n) => [n.mac, n.id]));
    // Shared memory: it goes to the main thread and on to every actor without being copied
    // there (a million flows are 14 MB: copied into each actor, it held the main thread 16 ms).
    const shared = new Uint8Array(new SharedArrayBuffer(state.length));
    shared.set(state);
    this.#emit({ type: 'state', from: srcMac, protocol: flags & STATE_PROTOCOL_MASK, last: (flags & STATE_LAST) !== 0, state: shared, ownerIds, newcomer: !membership.accepting });
  }

  /** The newcomer's state is in its tables (or was refused): the first round may complete. */
  stateLoaded(): void {
    this.#wake();
    this.#membership.stateReceived();
    this.#drive();
  }
}

/** Sets the bits of the buckets `owners` gives to member `index` (-1: none). */
function addOwned(mask: Uint32Array, owners: Uint8Array, index: number): void {
  if (index < 0) return;
  for (let b = 0; b < owners.length; b++) if (owners[b] === index) mask[b >>> 5] = (mask[b >>> 5]! | (1 << (b & 31))) >>> 0;
}

/** The first `count` words of `announced` are `kept`. */
function sameParams(kept: readonly number[], announced: Uint16Array, count: number): boolean {
  if (kept.length !== count) return false;
  for (let i = 0; i < count; i++) if (kept[i] !== announced[i]) return false;
  return true;
}
