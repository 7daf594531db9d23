/**
 * One table of daemon options (the bonding driver's bond_options.c habit): each option is
 * declared once with its flag, default, allowed range and parser. The command line reads
 * them through this table, and so will the config file and the admin socket, so they
 * cannot disagree.
 */

import { lnlbError } from '../errors.js';
import { ELECTIONS, type ElectionName } from '../cluster/election.js';
import { parseIPv4 } from '../net/ipv4.js';
import { CLUSTER_MAC_FORMS, parseClusterVip } from '../net/vip.js';
import { MAX_VLAN_ID } from '../net/bpf.js';
import { isNodeName, NODE_NAME_MAX } from '../net/cluster-message.js';
import { compileRules } from '../cluster/port-rules.js';
import { parseHandlerSpec, resolveHandlerSpecs, type HandlerSpec } from '../handlers/loader.js';
import { checkBondSpecs, parseBondSpec, type BondSpec } from './bond-spec.js';
import { DEFAULT_WEIGHT_MODE, parseWeightMode, WEIGHT_MODES, type WeightMode } from './weight-source.js';
import { MAX_ACTORS } from '../workers/dispatcher-core.js';
import { HEALTH_CHECK_FORMS, parseHealthChecks, type HealthCheckSpec } from '../health/check-spec.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonOptions {
  /** The first cluster interface; both or neither (a daemon may start empty and take `addif`). */
  bind: string | undefined;
  vip: string | undefined;
  /** Interface name, or a pattern with %d for the lowest free number. */
  name: string;
  runDir: string;
  workers: number;
  heartbeatMs: number;
  deadAfterMs: number;
  /** The scheduling priority (nice) lnlbd gives every thread of its process at start. */
  nice: number;
  logLevel: LogLevel;
  election: ElectionName;
  weightMode: WeightMode;
  /** The name this node announces to the others (status, conntrack, logs, events); undefined: the host name. */
  nodeName: string | undefined;
  /** Shared key for the authenticated control plane (required by a cluster interface unless `insecureNoAuth`). */
  keyFile: string | undefined;
  /** `--insecure-no-auth`: a cluster interface without a key (plain LNLB messages, so any host on the LAN can take it over). Labs only. */
  insecureNoAuth: boolean;
  /** Seconds: a control message sealed further from this node's clock is refused (STALE/FUTURE). */
  clockTolerance: number;
  macMode: MacMode;
  /** --vlan: the 802.1Q VLAN id on a trunk; 0: untagged. */
  vlan: number;
  /** Flows one node can track, all actors together (tables are fixed-size shared memory). */
  tableEntries: number;
  /** Receive ring of the data socket: TPACKET_V2 (frames one by one) or V3 (blocks, timer). */
  rxRing: RxRing;
  /** Slots of the data socket's TPACKET_V2 ring (`--rx-ring v2`), one frame each. */
  rxRingFrames: number;
  /** 256 KiB blocks of the data socket's TPACKET_V3 ring (`--rx-ring v3`). */
  rxRingBlocks: number;
  /** KiB of each dispatcher → actor ring (a power of two). */
  actorRingKib: number;
  controlRingKib: number;
  /** Seconds: a tracked flow idle this long is forgotten (LNLB's default tracker: 1800 s). */
  idleTimeout: number;
  /** Seconds: an established TCP connection idle this long is forgotten. */
  tcpIdleTimeout: number;
  /** Seconds: a UDP flow idle this long is forgotten. */
  udpIdleTimeout: number;
  /** `--rule` values (checked; compiled again by every thread that applies them). */
  rule: string[];
  /** Handlers by protocol: the built-ins with the operator's `--handler` over them. */
  handler: HandlerSpec[];
  /** Bonds created at start, in order, before the first cluster interface (`--bond`, checked). */
  bond: BondSpec[];
  /** `--metrics`: where to serve Prometheus metrics (GET /metrics); undefined: no metrics endpoint. */
  metrics: { host: string; port: number } | undefined;
  /** `--health-check`: checks that must all pass for this node to take part (none: always). createNode may add functions. */
  healthCheck: HealthCheckSpec[];
  /** Milliseconds between two rounds of health checks. */
  healthIntervalMs: number;
  /** Milliseconds a health check may take; undefined: the interval. */
  healthTimeoutMs: number | undefined;
  /** Failures in a row that make a healthy check unhealthy. */
  healthFall: number;
  /** Successes in a row that make an unhealthy check healthy again. */
  healthRise: number;
  /** The config file the other options were read from (`--config`, or /etc/lnlb/lnlb.conf when it exists); undefined: none. */
  config: string | undefined;
}

/**
 * Default ring sizes, measured (bench/throughput.ts, 3 nodes sharing one core, floods of 64 and
 * 1500 B, two runs each; bench/memory.ts for what they cost): with 4096 v2 slots every run lost
 * frames in the ring, with 8192 both runs (744 and 3,131 frames at 90k and 176k frames/s), with
 * 16384 one run of two (at 325k frames/s), with 32768 none. The ring's pages are resident from
 * the start (16384 slots: 32 MiB, the C reference's ring; 32768: 64 MiB, a third of an idle
 * daemon's RSS before), and once the kernel keeps only this node's share of a cluster of N,
 * 16384 slots hold what 16384 × N held before. 1500 B floods at 290–360k frames/s lose frames at
 * any size on that machine (3 nodes each reading every frame at 1.2–1.3 µs need more than the
 * core they share: a ring only postpones the loss), 16384 more than 32768 did (79k–154k against
 * 37k in 1.5 s); the C reference, at 0.3 µs, loses none. v3: the same 32 MiB. The actor rings are shared
 * memory touched only by traffic: 8 MiB each, below which 1500 B floods fill them (ringFull).
 *
 * Measured again once the dispatcher read frames in place and was the actor itself
 * (--workers 1, the default), with slots that fit the MTU (1600 bytes at 1500, not 2048):
 * 8192 slots (12.8 MiB) kept an idle daemon at 100 MiB RSS, but a node of one lost 0.8% of
 * a 3 s 1500 B flood (700k frames/s) where the C reference, at half the cost per frame, lost
 * none, and a burst of 20,000 new flows at line rate (the protocol test's join under state
 * loss) lost half of them in the ring once in four CI runs. 16384 slots (25.6 MiB) lost none
 * in the full throughput bench at any N (3 runs each): they stay the default, and an idle
 * daemon pays 12.8 MiB of RSS for them.
 */
export const DEFAULT_RX_RING_FRAMES = 16384;
export const DEFAULT_RX_RING_BLOCKS = 128;
export const DEFAULT_ACTOR_RING_KIB = 8192;
/**
 * The control socket's receive ring (TPACKET_V2, a slot of 2 KiB per frame at an MTU up to
 * 1958, resident from the start). What control traffic needs: heartbeats are a few frames a
 * round; a state transfer or a handover comes in bursts of 256 fragments (control-channel.ts,
 * FRAGMENT_BURST) with a pause between them (a missed fragment is asked for again); a flood of
 * forged frames is read 64 at a time, and genuine heartbeats queue behind it. Measured with
 * bench control-flood (3 nodes, hb 100 ms, two 5 s floods of forged frames, quick runs): 8 MiB
 * (4096 slots, the size before) kept the fewest heartbeats a node received at 1.03x an idle
 * period's at 192k/162k forged frames/s, 4 MiB at 1.00x (144k/147k/s), 2 MiB lost a third of
 * them (0.66x at 170k/179k/s; no false death in any). 4 MiB it is: 4 MiB less of an idle
 * daemon's RSS.
 */
export const DEFAULT_CONTROL_RING_KIB = 4096;

export const MAC_MODES = ['unicast', 'multicast'] as const;
export type MacMode = (typeof MAC_MODES)[number];

export const RX_RINGS = ['v2', 'v3'] as const;
export type RxRing = (typeof RX_RINGS)[number];

interface OptionSpec<K extends keyof DaemonOptions> {
  key: K;
  flag: string;
  description: string;
  /** undefined: required (unless `optional`). */
  default: DaemonOptions[K] | undefined;
  optional?: boolean;
  /** A switch without a value on the command line (`--insecure-no-auth`); `true`/`false` in the config file. */
  boolean?: boolean;
  /** May be given more than once: `parse` gets every value. */
  repeatable?: boolean;
  /** Applied on SIGHUP (a config file reload) without a restart; src/main/reload.ts. */
  live?: boolean;
  /** A number without a default (createNode takes it as a number; those with a default say so by it). */
  numeric?: boolean;
  parse(raw: string, flag: string): DaemonOptions[K];
}

/** A repeatable option's values travel as one string, NUL-separated (no flag value holds a NUL). */
export const REPEAT_SEPARATOR = '\u0000';
const values = (raw: string): string[] => (raw === '' ? [] : raw.split(REPEAT_SEPARATOR));

function badFlag(flag: string, message: string): never {
  throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${flag}: ${message}`);
}

function integer(min: number, max: number) {
  return (raw: string, flag: string): number => {
    if (!(min < 0 ? /^-?\d+$/ : /^\d+$/).test(raw)) badFlag(flag, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) badFlag(flag, `expected a whole number from ${min} to ${max}, got ${n}`);
    return n;
  };
}

function powerOfTwo(min: number, max: number) {
  const whole = integer(min, max);
  return (raw: string, flag: string): number => {
    const n = whole(raw, flag);
    if ((n & (n - 1)) !== 0) badFlag(flag, `expected a power of two from ${min} to ${max}, got ${n}`);
    return n;
  };
}

/** A switch's raw value: the command line gives `true`; the config file and createNode `true` or `false`. */
function yesNo(raw: string, flag: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  badFlag(flag, `expected true or false, got ${JSON.stringify(raw)}`);
}

function ifName(raw: string, flag: string): string {
  // IFNAMSIZ is 16 with the NUL; '/', ':' and spaces are refused by the kernel.
  if (raw.length === 0 || raw.length > 15 || /[\s/:]/.test(raw)) badFlag(flag, `expected a device name of 1 to 15 characters, got ${JSON.stringify(raw)}`);
  return raw;
}

/**
 * `ADDR:PORT` to listen on: an IPv4 address (0.0.0.0 for all) or `[::]` (all, IPv6 and IPv4),
 * and a port from 1 to 65535.
 */
function parseListenAddress(raw: string, flag: string): { host: string; port: number } {
  const expected = `expected <IPv4 address>:<port> or [::]:<port> such as 127.0.0.1:9750, got ${JSON.stringify(raw)}`;
  const match = /^(\[::\]|[0-9.]+):(\d{1,5})$/.exec(raw);
  if (match === null) badFlag(flag, expected);
  const host = match[1] === '[::]' ? '::' : match[1]!;
  if (host !== '::') {
    try {
      parseIPv4(host);
    } catch {
      badFlag(flag, expected);
    }
  }
  const port = Number(match[2]);
  if (port < 1 || port > 65535) badFlag(flag, `the port must be from 1 to 65535, got ${port}`);
  return { host, port };
}

/** Where the docs, the packaged lnlb.conf and the messages put the cluster key. */
export const DEFAULT_KEY_PATH = '/etc/lnlb/cluster.key';

/** How the key and the opt-out are spelled where a cluster interface is asked for (lnlbd, addif, createNode), for messages. */
export interface AuthOptionNames {
  key: string;
  insecure: string;
}

/** lnlbd's flags and config file. */
export const LNLBD_AUTH_NAMES: AuthOptionNames = { key: '--key-file PATH (key-file = PATH in the config file)', insecure: '--insecure-no-auth' };
/** A cluster interface the daemon is asked for, by its flags or by `lnlbctl addif`. */
export const DAEMON_AUTH_NAMES: AuthOptionNames = { key: '--key-file PATH (to lnlbd, as key-file in its config file, or to lnlbctl addif)', insecure: '--insecure-no-auth' };

const KEY_AND_INSECURE = 'cannot be given with --insecure-no-auth: give the key (authenticated) or the opt-out (labs only), not both';

/** The refusal of a cluster interface without a key: what to give, and how to make a key. */
export function keyMissingMessage(names: AuthOptionNames): string {
  return (
    `a cluster interface needs a key, or any host on this LAN can take the cluster over: give ${names.key}, the same file on every node; ` +
    `make one with \`lnlbctl genkey ${DEFAULT_KEY_PATH}\` and copy it to every node (for a lab only, ${names.insecure} runs without a key)`
  );
}

/**
 * Authenticated unless the operator says otherwise: a cluster interface needs a key file or the
 * explicit opt-out (LNLB_ERR_AUTH_KEY_MISSING, before anything is created). Pure; the key file
 * itself is read by loadKeyFile.
 */
export function checkClusterAuth(options: Pick<DaemonOptions, 'keyFile' | 'insecureNoAuth'>, names: AuthOptionNames): void {
  if (options.keyFile !== undefined && options.insecureNoAuth) badFlag('--key-file', KEY_AND_INSECURE);
  if (options.keyFile === undefined && !options.insecureNoAuth) throw lnlbError('LNLB_ERR_AUTH_KEY_MISSING', keyMissingMessage(names));
}

export const DAEMON_OPTIONS = [
  { key: 'bind', flag: '--bind <dev>', description: 'the real device the cluster listens on (e.g. eth0)', default: undefined, optional: true, parse: ifName },
  {
    key: 'vip',
    flag: '--vip <ip>',
    description: 'the cluster IP shared by all nodes: IPv4, IPv6, or one of each comma-separated (dual stack: 10.0.0.100,fd00:10::100)',
    default: undefined,
    optional: true,
    parse: (raw: string, flag: string) => {
      try {
        return parseClusterVip(raw).text;
      } catch (err) {
        return badFlag(flag, `expected an IPv4 or IPv6 address such as 10.0.0.100 or fd00:10::100 (dual stack: one of each, comma-separated), got ${JSON.stringify(raw)}: ${(err as Error).message}`);
      }
    },
  },
  { key: 'name', flag: '--name <ifname>', description: 'the cluster interface (TAP) to create; %d takes the lowest free number', default: 'nlb%d', parse: ifName },
  { key: 'runDir', flag: '--run-dir <dir>', description: 'directory of the admin socket and state files', default: '/run/lnlb', parse: (raw: string, flag: string) => (raw === '' ? badFlag(flag, 'expected a directory') : raw) },
  { key: 'workers', flag: '--workers <n>', description: `actors, each owning a shard of the tracking tables: 1 is the dispatcher thread itself (no hand-off between threads), N ≥ 2 are threads of their own behind it; at most ${MAX_ACTORS}`, default: 1, parse: integer(1, MAX_ACTORS) },
  // 100/700: a killed node's clients are answered elsewhere in under a second (LNLB's 1000/5000
  // took about 5 s), and a forged flood on a loaded machine, which stalls control threads for up
  // to 400 ms, declares no live node dead (bench control-flood, bench failover).
  { key: 'heartbeatMs', flag: '--heartbeat-ms <ms>', description: 'interval between heartbeats', default: 100, parse: integer(10, 60_000) },
  { key: 'deadAfterMs', flag: '--dead-after-ms <ms>', description: 'a node silent this long is dead', default: 700, parse: integer(20, 600_000) },
  {
    key: 'nice',
    flag: '--nice <n>',
    description: "scheduling priority of lnlbd's threads, -20 (first) to 19: a busy machine must not make heartbeats late, and the control thread waits on V8's shared GC threads, so all of them; the datapath threads run 10 steps below it (a flood of frames must not queue a heartbeat)",
    default: -20,
    parse: integer(-20, 19),
  },
  {
    key: 'logLevel',
    flag: '--log-level <level>',
    description: `log level: ${LOG_LEVELS.join(', ')}`,
    default: 'info',
    live: true,
    parse: (raw: string, flag: string) => ((LOG_LEVELS as readonly string[]).includes(raw) ? (raw as LogLevel) : badFlag(flag, `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`)),
  },
  {
    key: 'election',
    flag: '--election <rule>',
    description: `who gets a new client: rendezvous (weighted consistent hash: a join or a death moves only the clients it must) or lnlb (the original's mod-sum walk)`,
    default: 'rendezvous',
    parse: (raw: string, flag: string) => ((ELECTIONS as readonly string[]).includes(raw) ? (raw as ElectionName) : badFlag(flag, `expected one of ${ELECTIONS.join(', ')}, got ${JSON.stringify(raw)}`)),
  },
  {
    key: 'weightMode',
    flag: '--weight-mode <mode>',
    description: `where this node's weight comes from: a capacity, a higher weight gets more new clients (${WEIGHT_MODES.join(', ')}: measured load turned into capacity, 100 = idle; fixed: lnlbctl set_weight)`,
    default: DEFAULT_WEIGHT_MODE,
    live: true,
    // The one parser of a weight mode, also lnlbctl weight_mode's: the same words, the same codes.
    parse: (raw: string, flag: string) => parseWeightMode(raw, flag),
  },
  {
    key: 'nodeName',
    flag: '--node-name <name>',
    description: `the name this node announces to the others, shown by lnlbctl status and conntrack, logs and events beside its MAC (default: the host name); 1..${NODE_NAME_MAX} letters, digits, '.', '_' or '-'`,
    default: undefined,
    optional: true,
    parse: (raw: string, flag: string) => (isNodeName(raw) ? raw : badFlag(flag, `expected 1 to ${NODE_NAME_MAX} letters, digits, '.', '_' or '-', got ${JSON.stringify(raw)}`)),
  },
  {
    key: 'macMode',
    flag: '--mac-mode <mode>',
    description: `cluster MAC, for a VIP a.b.c.d: unicast ${CLUSTER_MAC_FORMS.unicast} (switches flood it) or multicast ${CLUSTER_MAC_FORMS.multicast} (from the VIP's first two octets, joined by IGMP, for switches that must not flood; an IPv6 VIP alone: ${CLUSTER_MAC_FORMS.multicastIPv6}, joined by MLD)`,
    default: 'unicast',
    parse: (raw: string, flag: string) => ((MAC_MODES as readonly string[]).includes(raw) ? (raw as MacMode) : badFlag(flag, `expected one of ${MAC_MODES.join(', ')}, got ${JSON.stringify(raw)}`)),
  },
  {
    key: 'vlan',
    flag: '--vlan <id>',
    description:
      'the 802.1Q VLAN the cluster serves when --bind is a trunk: only frames tagged with it are read (the kernel filter checks the tag), and everything lnlb and the host send on the cluster interface leaves tagged with it (route the VLAN\'s clients through the cluster interface); 0, the default, reads untagged frames only (a VLAN device such as eth0.100 is untagged)',
    default: 0,
    parse: integer(0, MAX_VLAN_ID),
  },
  {
    key: 'tableEntries',
    flag: '--table-entries <n>',
    description: 'flows this node can track (shared-memory tables of fixed size; the oldest are evicted, and counted, beyond it)',
    default: 1 << 20,
    parse: integer(1024, 1 << 26),
  },
  {
    key: 'rxRing',
    flag: '--rx-ring <version>',
    description:
      'receive ring of the data socket: v2 (TPACKET_V2: each frame readable at once; frames larger than a slot, such as GSO, through the socket queue) or v3 (TPACKET_V3: frames in blocks handed over when full or after 1 ms, which adds up to 1 ms to a lone request)',
    default: 'v2',
    parse: (raw: string, flag: string) => ((RX_RINGS as readonly string[]).includes(raw) ? (raw as RxRing) : badFlag(flag, `expected one of ${RX_RINGS.join(', ')}, got ${JSON.stringify(raw)}`)),
  },
  // Sizes measured with bench/throughput.ts (floods of 64 and 1500 B into 3 nodes) and
  // bench/memory.ts (what each costs in RSS): see cluster-device.ts.
  {
    key: 'rxRingFrames',
    flag: '--rx-ring-frames <n>',
    description: `slots of the data socket's receive ring with --rx-ring v2, one frame each (the MTU plus 90 bytes of headers, rounded up to 16: 1600 bytes at an MTU of 1500, so the default takes ${(DEFAULT_RX_RING_FRAMES * 1600) / (1 << 20)} MiB there, resident from the start): how many frames a reader that falls behind (a GC pause, a busy core) can miss before the kernel drops them`,
    default: DEFAULT_RX_RING_FRAMES,
    parse: integer(512, 1 << 18),
  },
  {
    key: 'rxRingBlocks',
    flag: '--rx-ring-blocks <n>',
    description: `blocks of 256 KiB of the data socket's receive ring with --rx-ring v3 (the default takes ${DEFAULT_RX_RING_BLOCKS / 4} MiB, resident from the start)`,
    default: DEFAULT_RX_RING_BLOCKS,
    parse: integer(4, 4096),
  },
  {
    key: 'actorRingKib',
    flag: '--actor-ring-kib <KiB>',
    description: 'KiB of each ring from the dispatcher thread to an actor thread, a power of two (shared memory, resident once a flood has filled it): frames an actor that falls behind can owe before the dispatcher drops them (counted as ringFull)',
    default: DEFAULT_ACTOR_RING_KIB,
    parse: powerOfTwo(64, 1 << 20),
  },
  {
    key: 'controlRingKib',
    flag: '--control-ring-kib <KiB>',
    description:
      "KiB of the control socket's receive ring, a power of two (one slot of 2 KiB per frame at an MTU up to 1958, resident from the start): control frames the control thread can owe (a state transfer's bursts, a flood of forged frames) before the kernel drops them (counted: lnlb_control_overflows_total{what=\"socketDrops\"})",
    default: DEFAULT_CONTROL_RING_KIB,
    parse: powerOfTwo(256, 1 << 16),
  },
  {
    key: 'idleTimeout',
    flag: '--idle-timeout <s>',
    description: 'a tracked client idle this long is forgotten and elected anew on its next frame',
    default: 1800,
    parse: integer(1, 30 * 86400),
  },
  {
    key: 'keyFile',
    flag: '--key-file <path>',
    description:
      'shared secret that authenticates every control message, the same file on every node (mode 600, owned by the daemon\'s user or root); make one with `lnlbctl genkey PATH`. A cluster interface without it (or --insecure-no-auth) is refused',
    default: undefined,
    optional: true,
    parse: (raw: string, flag: string) => (raw === '' ? badFlag(flag, 'expected a file path') : raw),
  },
  {
    key: 'insecureNoAuth',
    flag: '--insecure-no-auth',
    description:
      'run cluster interfaces WITHOUT a key (plain LNLB messages): any host on the LAN can take the cluster over. For labs only; logged as an error every minute and shown by lnlbctl status',
    default: false,
    boolean: true,
    parse: yesNo,
  },
  {
    key: 'clockTolerance',
    flag: '--clock-tolerance <s>',
    description:
      'a control message sealed more than this many seconds before or after this node\'s clock is refused (a captured frame replayed later, or a peer whose clock is off: sync clocks with NTP)',
    default: 60,
    parse: integer(1, 86400),
  },
  {
    key: 'tcpIdleTimeout',
    flag: '--tcp-idle-timeout <s>',
    description: 'an established TCP connection idle this long is forgotten (after FIN or RST: 10 s); longer than the 7200 s keepalive, so kept-alive connections stay',
    default: 7440,
    parse: integer(1, 30 * 86400),
  },
  {
    key: 'udpIdleTimeout',
    flag: '--udp-idle-timeout <s>',
    description: 'a UDP flow idle this long is forgotten',
    default: 120,
    parse: integer(1, 30 * 86400),
  },
  {
    key: 'rule',
    flag: '--rule <rule>',
    description:
      'a port rule, repeatable: <ports>[/tcp|udp|both]=multiple[,affinity=none|single|network][,share=0..100] | =single[,priority=1..32] | =disabled; default=<mode>,... for the rest (e.g. --rule 443/tcp=multiple,affinity=none --rule 22/tcp=single,priority=1)',
    default: [],
    repeatable: true,
    parse: (raw: string, flag: string) => {
      const rules = values(raw);
      compileRules(rules, flag); // every rule checked here, with its text in the message
      return rules;
    },
  },
  {
    key: 'handler',
    flag: '--handler <proto=module>',
    description:
      "a protocol handler, repeatable: <proto>=<default|tcp|udp|path to an ESM module>; without it every protocol has LNLB's default handler (a client sticks to its node); tcp=tcp tracks each connection, udp=udp each flow",
    default: resolveHandlerSpecs([]),
    repeatable: true,
    parse: (raw: string, flag: string) => resolveHandlerSpecs(values(raw).map((v) => parseHandlerSpec(v, flag))),
  },
  {
    key: 'bond',
    flag: '--bond <spec>',
    description:
      'a bond to create at start, before the cluster interface, repeatable: "<name> [option=value ...] [slaves=dev1,dev2]" with the Linux bonding driver\'s options (e.g. --bond "bond0 mode=802.3ad miimon=100 lacp_rate=fast slaves=eth1,eth2" --bind bond0; see docs/bonding.md)',
    default: [],
    repeatable: true,
    parse: (raw: string, flag: string) => checkBondSpecs(values(raw).map((v) => parseBondSpec(v, flag)), flag),
  },
  {
    key: 'metrics',
    flag: '--metrics <addr:port>',
    description: 'serve Prometheus metrics over HTTP at http://<addr:port>/metrics (e.g. 10.0.0.1:9750; 0.0.0.0 or [::] for every address); see docs/metrics.md',
    default: undefined,
    optional: true,
    parse: parseListenAddress,
  },
  {
    key: 'healthCheck',
    flag: '--health-check <url>',
    description: `a health check, repeatable, all must pass: ${HEALTH_CHECK_FORMS} (2xx/3xx, or the status after #); an unhealthy node leaves the cluster (the others take its clients) and rejoins when healthy; see docs/health.md`,
    default: [],
    repeatable: true,
    parse: (raw: string, flag: string) => parseHealthChecks(values(raw), flag),
  },
  { key: 'healthIntervalMs', flag: '--health-interval-ms <ms>', description: 'interval between two rounds of health checks', default: 1000, parse: integer(10, 3_600_000) },
  {
    key: 'healthTimeoutMs',
    flag: '--health-timeout-ms <ms>',
    description: 'a health check not done in this time fails (an exec check is killed); at most the interval (default: the interval)',
    default: undefined,
    optional: true,
    numeric: true,
    parse: integer(1, 3_600_000),
  },
  { key: 'healthFall', flag: '--health-fall <n>', description: 'failures in a row that make a healthy check unhealthy', default: 3, parse: integer(1, 100) },
  { key: 'healthRise', flag: '--health-rise <n>', description: 'successes in a row that make an unhealthy check healthy again', default: 2, parse: integer(1, 100) },
  {
    key: 'config',
    flag: '--config <path>',
    description: 'a file of these options, one `key = value` a line (key: the flag without --); flags given here win over it (default: /etc/lnlb/lnlb.conf if it exists; see docs/config.md)',
    default: undefined,
    optional: true,
    parse: (raw: string, flag: string) => (raw === '' ? badFlag(flag, 'expected a file path') : raw),
  },
] as const satisfies readonly OptionSpec<keyof DaemonOptions>[];

/** Builds validated options from raw strings (flag values, config keys); checks cross-option rules. */
export function resolveDaemonOptions(raw: Partial<Record<keyof DaemonOptions, string | undefined>>): DaemonOptions {
  const out: Record<string, unknown> = {};
  for (const spec of DAEMON_OPTIONS) {
    const flagName = spec.flag.split(' ')[0]!;
    const value = raw[spec.key];
    if (value === undefined) {
      if (spec.default === undefined && !('optional' in spec && spec.optional)) badFlag(flagName, 'is required');
      out[spec.key] = spec.default;
    } else {
      out[spec.key] = spec.parse(value, flagName);
    }
  }
  const options = out as unknown as DaemonOptions;
  if ((options.bind === undefined) !== (options.vip === undefined)) {
    badFlag(options.bind === undefined ? '--bind' : '--vip', `is required with ${options.bind === undefined ? '--vip' : '--bind'} (or give neither, and add clusters with lnlbctl addif)`);
  }
  if (options.deadAfterMs <= options.heartbeatMs) {
    badFlag('--dead-after-ms', `must be longer than --heartbeat-ms (${options.heartbeatMs}); 3 to 5 heartbeats is usual`);
  }
  if (options.keyFile !== undefined && options.insecureNoAuth) badFlag('--key-file', KEY_AND_INSECURE);
  if (options.healthTimeoutMs !== undefined && options.healthTimeoutMs > options.healthIntervalMs) {
    badFlag('--health-timeout-ms', `must be at most --health-interval-ms (${options.healthIntervalMs}): a check still running when the next is due`);
  }
  if (options.vlan !== 0 && options.macMode === 'multicast') badFlag('--vlan', 'a cluster on a trunk VLAN runs in unicast MAC mode (--mac-mode unicast): its host sends through the cluster interface, whose MAC must be the cluster MAC');
  if (options.name === options.bind) badFlag('--name', `the cluster interface cannot have the bound device's name (${options.bind})`);
  for (const bond of options.bond) {
    if (options.name === bond.name) badFlag('--name', `the cluster interface cannot have the name of the bond ${bond.name} (--bond)`);
    if (options.bind !== undefined && bond.slaves.includes(options.bind)) {
      badFlag('--bind', `${options.bind} is a slave of ${bond.name} (--bond): bind the cluster to the bond (--bind ${bond.name})`);
    }
  }
  // Last: a cluster interface needs a key (or the explicit opt-out); a daemon with only bonds, or
  // empty and waiting for addif, does not.
  if (options.bind !== undefined) checkClusterAuth(options, LNLBD_AUTH_NAMES);
  return options;
}

/** What one cluster interface runs with: the daemon's options and its own device, VIP and name. */
export type InterfaceOptions = Omit<DaemonOptions, 'bind' | 'vip'> & { bind: string; vip: string };

/** What `addif` may set for its interface over the daemon's options. */
export type InterfaceOverrides = Partial<Pick<DaemonOptions, 'rule' | 'handler' | 'keyFile' | 'insecureNoAuth' | 'vlan'>>;

/**
 * Checks `addif` arguments the way the flags are checked (same messages, same table). A key
 * file (an absolute path: the daemon runs elsewhere) or `insecureNoAuth` replaces the daemon's
 * choice for this interface; both is refused.
 */
export function interfaceArguments(raw: { vip: unknown; bind: unknown; name?: unknown; rule?: unknown; handler?: unknown; keyFile?: unknown; insecureNoAuth?: unknown; vlan?: unknown }): {
  vip: string;
  bind: string;
  name: string | undefined;
  overrides: InterfaceOverrides;
} {
  const spec = (key: 'vip' | 'bind' | 'name' | 'keyFile') => DAEMON_OPTIONS.find((o) => o.key === key)!;
  const text = (v: unknown, what: string): string => {
    if (typeof v !== 'string') badFlag(what, 'is required');
    return v;
  };
  const list = (v: unknown, what: string): string | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) badFlag(what, 'expected a list of strings');
    return v.length === 0 ? undefined : v.join(REPEAT_SEPARATOR);
  };
  const rule = list(raw.rule, '--rule');
  const handler = list(raw.handler, '--handler');
  const overrides: InterfaceOverrides = {};
  if (rule !== undefined) overrides.rule = DAEMON_OPTIONS.find((o) => o.key === 'rule')!.parse(rule, '--rule') as string[];
  if (handler !== undefined) overrides.handler = DAEMON_OPTIONS.find((o) => o.key === 'handler')!.parse(handler, '--handler') as HandlerSpec[];
  if (raw.insecureNoAuth !== undefined && typeof raw.insecureNoAuth !== 'boolean') badFlag('--insecure-no-auth', 'expected true or false');
  if (raw.vlan !== undefined) overrides.vlan = DAEMON_OPTIONS.find((o) => o.key === 'vlan')!.parse(String(raw.vlan), '--vlan') as number;
  if (raw.keyFile !== undefined) {
    if (raw.insecureNoAuth === true) badFlag('--key-file', KEY_AND_INSECURE);
    if (typeof raw.keyFile !== 'string') badFlag('--key-file', 'expected a file path');
    overrides.keyFile = spec('keyFile').parse(raw.keyFile, '--key-file') as string;
    overrides.insecureNoAuth = false;
  } else if (raw.insecureNoAuth === true) {
    overrides.keyFile = undefined;
    overrides.insecureNoAuth = true;
  }
  return {
    vip: spec('vip').parse(text(raw.vip, '<cluster ip>'), '<cluster ip>') as string,
    bind: spec('bind').parse(text(raw.bind, '<dev>'), '<dev>') as string,
    name: raw.name === undefined ? undefined : (spec('name').parse(text(raw.name, '<name>'), '<name>') as string),
    overrides,
  };
}
