/**
 * Port rules, as Windows NLB offers them: a destination port range and a protocol map to a
 * filtering mode. Pure: text in, a rule set out; the dispatcher and the actors only read the
 * compiled tables.
 *
 *   --rule <ports>[/<tcp|udp|both>]=<mode>[,affinity=<none|single|network>][,share=<0..100>][,priority=<1..32>]
 *   --rule default=<mode>[,...]          the rule for traffic outside every rule (and non-TCP/UDP)
 *
 *   ports: 80 · 8000-8099 · * (all)
 *   multiple  balanced over the members (election by the rule's affinity); `share` is this
 *             node's load share for the rule (Windows' "load weight"; default: equal, i.e. only
 *             the node's own dynamic weight counts; 0: this node takes none of the rule's new
 *             clients while another member takes some)
 *   single    every new client of the rule goes to one node: the lowest `priority` among the
 *             members (Windows' "handling priority"); the next takes over when it dies. A node
 *             without a priority ranks after every node with one, in MAC order.
 *   disabled  dropped by every node
 *   affinity  which part of a client one election decides: `none` the handler's key (source
 *             IP + source port for tcp/udp), `single` the source IP (default), `network` the
 *             source /24. Only meaningful for `multiple`.
 *
 * Rule 0 is the default rule (multiple, affinity single, unless `--rule default=...` says
 * otherwise); rules 1..n are the operator's in port order. Every node must have the same rules:
 * `digest` covers the ranges, protocols, modes and affinities (not the per-node share and
 * priority), nodes announce it in every membership message, and a node with a different digest
 * is reported.
 */

import { crc32 } from 'node:zlib';
import { lnlbError } from '../errors.js';

export const RULE_MODES = ['multiple', 'single', 'disabled'] as const;
export type RuleMode = (typeof RULE_MODES)[number];
export const AFFINITIES = ['none', 'single', 'network'] as const;
export type Affinity = (typeof AFFINITIES)[number];
export const RULE_PROTOCOLS = ['tcp', 'udp', 'both'] as const;
export type RuleProtocol = (typeof RULE_PROTOCOLS)[number];

/** Windows NLB's limit; also what fits the published view. */
export const MAX_PORT_RULES = 32;
/** Rule slots: the default rule and MAX_PORT_RULES. */
export const MAX_RULE_SLOTS = MAX_PORT_RULES + 1;
export const MAX_PRIORITY = 32;
/** A per-node rule parameter word: share in bits 0-7 (SHARE_EQUAL: not given), priority in 8-15 (0: not given). */
export const SHARE_EQUAL = 0xff;
export const PRIORITY_NONE = 0;
export const RULE_PARAMS_UNKNOWN = SHARE_EQUAL | (PRIORITY_NONE << 8);

/** Numeric codes the datapath keeps in typed arrays. */
export const RuleModeCode = { multiple: 0, single: 1, disabled: 2 } as const satisfies Record<RuleMode, number>;
export const AffinityCode = { none: 0, single: 1, network: 2 } as const satisfies Record<Affinity, number>;

export interface PortRule {
  /** Inclusive range; the default rule has 0..65535 and protocol 'both'. */
  first: number;
  last: number;
  protocol: RuleProtocol;
  mode: RuleMode;
  affinity: Affinity;
  /** This node's share (0..100), undefined: equal. */
  share: number | undefined;
  /** This node's handling priority (1..32, lower wins), undefined: none given. */
  priority: number | undefined;
  /** What the operator wrote (or "default"). */
  text: string;
}

export interface RuleSet {
  /** rules[0] is the default rule; then the operator's rules in port order. */
  readonly rules: readonly PortRule[];
  /** crc32 of the canonical rule text (ranges, protocols, modes, affinities). */
  readonly digest: number;
  /** Rule index by destination port, for TCP and for UDP (0: the default rule). */
  readonly tcpRuleByPort: Uint8Array;
  readonly udpRuleByPort: Uint8Array;
  /** RuleModeCode / AffinityCode per rule index. */
  readonly modes: Uint8Array;
  readonly affinities: Uint8Array;
  /** This node's parameter word per rule index (share | priority << 8). */
  readonly params: Uint16Array;
}

function bad(flag: string, text: string, why: string): never {
  throw lnlbError('LNLB_ERR_CLI_BAD_FLAG', `${flag}: ${JSON.stringify(text)}: ${why}`);
}

const DEFAULT_RULE: PortRule = { first: 0, last: 65535, protocol: 'both', mode: 'multiple', affinity: 'single', share: undefined, priority: undefined, text: 'default=multiple' };

/** Parses one `--rule` value. */
export function parsePortRule(text: string, flag = '--rule'): PortRule {
  const eq = text.indexOf('=');
  if (eq < 0) bad(flag, text, 'expected <ports>[/<tcp|udp|both>]=<mode>[,affinity=..][,share=..][,priority=..], e.g. 80/tcp=multiple,affinity=none');
  const target = text.slice(0, eq).trim();
  const [modeText, ...params] = text.slice(eq + 1).split(',').map((p) => p.trim());
  let first = 0;
  let last = 65535;
  let protocol: RuleProtocol = 'both';
  if (target !== 'default') {
    const [ports, proto] = target.split('/');
    if (proto !== undefined) {
      if (!(RULE_PROTOCOLS as readonly string[]).includes(proto)) bad(flag, text, `protocol must be one of ${RULE_PROTOCOLS.join(', ')}, got ${JSON.stringify(proto)}`);
      protocol = proto as RuleProtocol;
    }
    if (ports !== '*') {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(ports ?? '');
      if (!m) bad(flag, text, `ports must be a port, a range like 8000-8099, or *; got ${JSON.stringify(ports)}`);
      first = Number(m[1]);
      last = m[2] === undefined ? first : Number(m[2]);
      if (first > 65535 || last > 65535 || first > last) bad(flag, text, `the port range ${ports} is not inside 0..65535 in increasing order`);
    }
  }
  if (!(RULE_MODES as readonly string[]).includes(modeText ?? '')) bad(flag, text, `the mode must be one of ${RULE_MODES.join(', ')}, got ${JSON.stringify(modeText)}`);
  const rule: PortRule = { first, last, protocol, mode: modeText as RuleMode, affinity: 'single', share: undefined, priority: undefined, text };
  let affinityGiven = false;
  for (const param of params) {
    const [key, value = ''] = param.split('=').map((p) => p.trim());
    if (key === 'affinity') {
      if (!(AFFINITIES as readonly string[]).includes(value)) bad(flag, text, `affinity must be one of ${AFFINITIES.join(', ')}, got ${JSON.stringify(value)}`);
      rule.affinity = value as Affinity;
      affinityGiven = true;
    } else if (key === 'share') {
      if (!/^\d{1,3}$/.test(value) || Number(value) > 100) bad(flag, text, `share must be a whole number from 0 to 100, got ${JSON.stringify(value)}`);
      rule.share = Number(value);
    } else if (key === 'priority') {
      if (!/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > MAX_PRIORITY) bad(flag, text, `priority must be a whole number from 1 to ${MAX_PRIORITY}, got ${JSON.stringify(value)}`);
      rule.priority = Number(value);
    } else {
      bad(flag, text, `unknown parameter ${JSON.stringify(key)}: expected affinity, share or priority`);
    }
  }
  if (rule.mode !== 'multiple' && (affinityGiven || rule.share !== undefined)) bad(flag, text, `affinity and share apply to mode multiple only`);
  if (rule.mode !== 'single' && rule.priority !== undefined) bad(flag, text, 'priority applies to mode single only');
  return rule;
}

const covers = (rule: PortRule, proto: 'tcp' | 'udp'): boolean => rule.protocol === 'both' || rule.protocol === proto;

/** Compiles `--rule` values into the rule set every thread uses. */
export function compileRules(texts: readonly string[], flag = '--rule'): RuleSet {
  let fallback = DEFAULT_RULE;
  const rules: PortRule[] = [];
  for (const text of texts) {
    const rule = parsePortRule(text, flag);
    if (text.trim().startsWith('default=')) {
      if (fallback !== DEFAULT_RULE) bad(flag, text, `a second default rule (the first was ${JSON.stringify(fallback.text)})`);
      fallback = rule;
    } else {
      rules.push(rule);
    }
  }
  if (rules.length > MAX_PORT_RULES) bad(flag, texts.at(-1) ?? '', `at most ${MAX_PORT_RULES} port rules, got ${rules.length}`);
  rules.sort((a, b) => a.first - b.first || a.protocol.localeCompare(b.protocol));
  const all = [fallback, ...rules];
  const tcpRuleByPort = new Uint8Array(65536);
  const udpRuleByPort = new Uint8Array(65536);
  const owner = { tcp: new Int16Array(65536).fill(-1), udp: new Int16Array(65536).fill(-1) };
  for (let r = 1; r < all.length; r++) {
    const rule = all[r]!;
    for (const proto of ['tcp', 'udp'] as const) {
      if (!covers(rule, proto)) continue;
      const byPort = proto === 'tcp' ? tcpRuleByPort : udpRuleByPort;
      for (let port = rule.first; port <= rule.last; port++) {
        const other = owner[proto][port]!;
        if (other >= 0) bad(flag, rule.text, `it overlaps ${JSON.stringify(all[other]!.text)} on ${proto} port ${port}; each port and protocol belongs to one rule`);
        owner[proto][port] = r;
        byPort[port] = r;
      }
    }
  }
  const modes = Uint8Array.from(all, (r) => RuleModeCode[r.mode]);
  const affinities = Uint8Array.from(all, (r) => AffinityCode[r.affinity]);
  const params = Uint16Array.from(all, (r) => (r.share ?? SHARE_EQUAL) | ((r.priority ?? PRIORITY_NONE) << 8));
  return { rules: all, digest: crc32(canonicalRules(all)) >>> 0, tcpRuleByPort, udpRuleByPort, modes, affinities, params };
}

/** What every node must agree on, one rule a line (per-node share and priority left out). */
export function canonicalRules(rules: readonly PortRule[]): string {
  return rules.map((r, i) => `${i === 0 ? 'default' : `${r.first}-${r.last}/${r.protocol}`}=${r.mode}${r.mode === 'multiple' ? `,affinity=${r.affinity}` : ''}`).join('\n');
}

/** A rule as `lnlbctl status` shows it. */
export function describeRule(rule: PortRule, index: number): string {
  const ports = index === 0 ? 'default' : rule.first === rule.last ? `${rule.first}/${rule.protocol}` : `${rule.first}-${rule.last}/${rule.protocol}`;
  const extra = rule.mode === 'multiple' ? `,affinity=${rule.affinity}${rule.share === undefined ? '' : `,share=${rule.share}`}` : rule.mode === 'single' && rule.priority !== undefined ? `,priority=${rule.priority}` : '';
  return `${ports}=${rule.mode}${extra}`;
}

/** Share of a parameter word (SHARE_EQUAL: not given). */
export const shareOf = (word: number): number => word & 0xff;
/** Priority of a parameter word (PRIORITY_NONE: not given). */
export const priorityOf = (word: number): number => (word >>> 8) & 0xff;
