import test from 'ava';
import { IPF_FRAGMENT, IPF_HAS_PORTS, IPF_MF, IPPROTO_TCP, IPPROTO_UDP } from '../../../src/net/ipv4.js';
import {
  createIPv6Result,
  formatIPv6,
  IP6R_DST,
  IP6R_EXTENSIONS,
  IP6R_FLAGS,
  IP6R_FRAG_ID,
  IP6R_FRAG_OFFSET,
  IP6R_L4_OFFSET,
  IP6R_PROTOCOL,
  IP6R_SRC,
  IP6R_SRC_PORT,
  IP6R_DST_PORT,
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_ESP,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMPV6,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPv6Parse,
  MAX_EXTENSION_HEADERS,
  parseIPv6,
  readIPv6,
  type IPv6ParseCode,
} from '../../../src/net/ipv6.js';
import { CLIENT_IP6, ipv4Frame, ipv6Frame, VIP6, type Frame6Spec } from '../../fixtures/frames.js';

interface Case {
  description: string;
  spec: Frame6Spec;
  code: IPv6ParseCode;
  /** When OK: the upper layer, its offset after the IPv6 header, flags and ports. */
  protocol?: number;
  l4After?: number;
  flags?: number;
  ports?: [number, number];
  fragOffset?: number;
  extensions?: number;
}

const ETH = 14;
const IP6 = 40;
const hopByHop = { type: IPPROTO_HOPOPTS, length: 8 };
const destination = { type: IPPROTO_DSTOPTS, length: 16 };
const routing = { type: IPPROTO_ROUTING, length: 24 };

const cases: Case[] = [
  { description: 'TCP, no extension header', spec: { protocol: IPPROTO_TCP, sport: 40001, dport: 443 }, code: IPv6Parse.OK, protocol: IPPROTO_TCP, l4After: 0, flags: IPF_HAS_PORTS, ports: [40001, 443], extensions: 0 },
  { description: 'UDP, no extension header', spec: { protocol: IPPROTO_UDP, l4Length: 8, sport: 5353, dport: 53 }, code: IPv6Parse.OK, protocol: IPPROTO_UDP, l4After: 0, flags: IPF_HAS_PORTS, ports: [5353, 53] },
  { description: 'ICMPv6 echo: no ports', spec: { protocol: IPPROTO_ICMPV6, l4Length: 8 }, code: IPv6Parse.OK, protocol: IPPROTO_ICMPV6, l4After: 0, flags: 0, ports: [0, 0] },
  {
    description: 'Hop-by-Hop, Destination Options, Routing, then UDP: the walk reaches the ports',
    spec: { extensions: [hopByHop, destination, routing], protocol: IPPROTO_UDP, l4Length: 8, sport: 1, dport: 2 },
    code: IPv6Parse.OK,
    protocol: IPPROTO_UDP,
    l4After: 8 + 16 + 24,
    flags: IPF_HAS_PORTS,
    ports: [1, 2],
    extensions: 3,
  },
  { description: 'AH (length in 4-byte units) then TCP', spec: { extensions: [{ type: IPPROTO_AH, length: 24 }], protocol: IPPROTO_TCP }, code: IPv6Parse.OK, protocol: IPPROTO_TCP, l4After: 24, flags: IPF_HAS_PORTS, ports: [40000, 80] },
  {
    description: 'the first fragment of a UDP datagram: fragment flags, and the ports',
    spec: { extensions: [{ type: IPPROTO_FRAGMENT, more: true, id: 77 }], protocol: IPPROTO_UDP, l4Length: 8, sport: 9, dport: 10 },
    code: IPv6Parse.OK,
    protocol: IPPROTO_UDP,
    l4After: 8,
    flags: IPF_FRAGMENT | IPF_MF | IPF_HAS_PORTS,
    ports: [9, 10],
    fragOffset: 0,
  },
  {
    description: 'a later fragment: the walk stops at the Fragment header (what follows is data), no ports',
    spec: { extensions: [destination, { type: IPPROTO_FRAGMENT, fragOffset: 1448, more: true }], protocol: IPPROTO_UDP, l4Length: 8 },
    code: IPv6Parse.OK,
    protocol: IPPROTO_UDP,
    l4After: 16 + 8,
    flags: IPF_FRAGMENT | IPF_MF,
    ports: [0, 0],
    fragOffset: 1448,
  },
  { description: 'the last fragment (More Fragments clear)', spec: { extensions: [{ type: IPPROTO_FRAGMENT, fragOffset: 2896 }], protocol: IPPROTO_TCP }, code: IPv6Parse.OK, flags: IPF_FRAGMENT, fragOffset: 2896 },
  { description: 'ESP: the upper layer as far as the walk goes', spec: { protocol: IPPROTO_ESP, l4Length: 16 }, code: IPv6Parse.OK, protocol: IPPROTO_ESP, flags: 0 },
  { description: 'No Next Header after Destination Options', spec: { extensions: [destination], protocol: IPPROTO_NONE, l4Length: 0 }, code: IPv6Parse.OK, protocol: IPPROTO_NONE, l4After: 16 },
  { description: 'Ethernet padding after the payload is allowed', spec: { protocol: IPPROTO_ICMPV6, l4Length: 4 }, code: IPv6Parse.OK, protocol: IPPROTO_ICMPV6 },
  { description: `${MAX_EXTENSION_HEADERS} extension headers: still walked`, spec: { extensions: Array.from({ length: MAX_EXTENSION_HEADERS }, () => destination) }, code: IPv6Parse.OK, extensions: MAX_EXTENSION_HEADERS },
  { description: `${MAX_EXTENSION_HEADERS + 1} extension headers: malformed (a bounded walk)`, spec: { extensions: Array.from({ length: MAX_EXTENSION_HEADERS + 1 }, () => destination) }, code: IPv6Parse.BAD_EXTENSION },
  { description: 'Hop-by-Hop anywhere but first: malformed', spec: { extensions: [destination, hopByHop] }, code: IPv6Parse.BAD_EXTENSION },
  { description: 'an extension header longer than the payload: malformed', spec: { extensions: [routing], l4Length: 0, payloadLength: 16 }, code: IPv6Parse.BAD_EXTENSION },
  { description: 'a Fragment header cut short: malformed', spec: { extensions: [{ type: IPPROTO_FRAGMENT }], l4Length: 0, payloadLength: 4 }, code: IPv6Parse.BAD_EXTENSION },
  { description: 'a TCP first fragment too short for the ports', spec: { protocol: IPPROTO_TCP, l4Length: 2 }, code: IPv6Parse.TRUNCATED_L4 },
  { description: 'payload length past the frame', spec: { payloadLength: 400 }, code: IPv6Parse.BAD_PAYLOAD_LENGTH },
  { description: 'payload length 0 (a jumbogram: no Ethernet carries one)', spec: { payloadLength: 0 }, code: IPv6Parse.BAD_PAYLOAD_LENGTH },
  { description: 'cut inside the fixed header', spec: { truncateTo: ETH + 39 }, code: IPv6Parse.TOO_SHORT },
  { description: 'cut inside the Ethernet header', spec: { truncateTo: 13 }, code: IPv6Parse.TOO_SHORT_L2 },
];

for (const c of cases) {
  test(`readIPv6: ${c.description}`, (t) => {
    const frame = ipv6Frame(c.spec);
    const out = createIPv6Result();
    const code = readIPv6(frame, 0, frame.length, out);
    t.is(code, c.code, `code ${code}`);
    if (c.code !== IPv6Parse.OK) return;
    if (c.protocol !== undefined) t.is(out[IP6R_PROTOCOL], c.protocol);
    if (c.l4After !== undefined) t.is(out[IP6R_L4_OFFSET], ETH + IP6 + c.l4After);
    if (c.flags !== undefined) t.is(out[IP6R_FLAGS], c.flags);
    if (c.ports !== undefined) t.deepEqual([out[IP6R_SRC_PORT], out[IP6R_DST_PORT]], c.ports);
    if (c.fragOffset !== undefined) t.is(out[IP6R_FRAG_OFFSET], c.fragOffset);
    if (c.extensions !== undefined) t.is(out[IP6R_EXTENSIONS], c.extensions);
    const words = (at: number): number[] => [0, 1, 2, 3].map((w) => out[at + w]!);
    const bytesToWords = (b: Uint8Array): number[] => [0, 1, 2, 3].map((w) => ((b[4 * w]! << 24) | (b[4 * w + 1]! << 16) | (b[4 * w + 2]! << 8) | b[4 * w + 3]!) >>> 0);
    t.deepEqual(words(IP6R_SRC), bytesToWords(CLIENT_IP6));
    t.deepEqual(words(IP6R_DST), bytesToWords(VIP6));
  });
}

test('readIPv6: the fragment identification is read; a frame that is not IPv6, or of another version, is refused', (t) => {
  const out = createIPv6Result();
  const fragment = ipv6Frame({ extensions: [{ type: IPPROTO_FRAGMENT, more: true, id: 0xdeadbeef }] });
  t.is(readIPv6(fragment, 0, fragment.length, out), IPv6Parse.OK);
  t.is(out[IP6R_FRAG_ID], 0xdeadbeef);
  const v4 = ipv4Frame();
  t.is(readIPv6(v4, 0, v4.length, out), IPv6Parse.NOT_IPV6);
  const v5 = ipv6Frame();
  v5[ETH] = 0x50;
  t.is(readIPv6(v5, 0, v5.length, out), IPv6Parse.BAD_VERSION);
  // A frame at an offset inside a larger buffer (the kernel's ring), and NaN bounds.
  const ring = new Uint8Array(2048);
  const frame = ipv6Frame({ protocol: IPPROTO_UDP, l4Length: 8, sport: 7, dport: 8, lead: 10 });
  ring.set(frame, 1002);
  t.is(readIPv6(ring, 1012, frame.length - 10, out), IPv6Parse.OK);
  t.deepEqual([out[IP6R_SRC_PORT], out[IP6R_DST_PORT]], [7, 8]);
  t.is(readIPv6(ring, Number.NaN, 100, out), IPv6Parse.TOO_SHORT_L2);
});

test('readIPv6 allocates nothing and never throws on random bytes', (t) => {
  const out = createIPv6Result();
  const buf = new Uint8Array(256);
  let seed = 12345;
  const codes = new Set<number>();
  for (let i = 0; i < 20_000; i++) {
    for (let j = 0; j < buf.length; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      buf[j] = seed >>> 24;
    }
    buf[12] = 0x86;
    buf[13] = 0xdd;
    buf[14] = 0x60 | (buf[14]! & 0x0f);
    buf[18] = 0;
    buf[19] = buf[19]! % 200;
    codes.add(readIPv6(buf, 0, buf.length, out));
  }
  t.true(codes.has(IPv6Parse.OK) && codes.has(IPv6Parse.BAD_EXTENSION), `codes seen: ${[...codes].join(', ')}`);
});

const texts: [string, string][] = [
  ['2001:db8::100', '2001:db8::100'],
  ['2001:0DB8:0000:0000:0000:0000:0000:0100', '2001:db8::100'],
  ['::', '::'],
  ['::1', '::1'],
  ['fe80::', 'fe80::'],
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
  ['::ffff:10.0.0.100', '::ffff:a00:64'],
  ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
];

for (const [text, canonical] of texts) {
  test(`parseIPv6/formatIPv6: ${text} reads and writes back as ${canonical} (RFC 5952)`, (t) => {
    const bytes = parseIPv6(text);
    t.is(bytes.length, 16);
    t.is(formatIPv6(bytes), canonical);
    t.deepEqual(parseIPv6(canonical), bytes);
  });
}

const badTexts: [string, RegExp][] = [
  ['2001:db8::1::2', /'::' appears more than once/],
  ['1:2:3:4:5:6:7:8:9', /9 groups instead of 8/],
  ['1:2:3:4:5:6:7', /7 groups instead of 8/],
  ['1:2:3:4:5:6:7:8::', /stands for no group/],
  ['2001:db8::g', /group 'g' is not 1 to 4 hex digits/],
  ['2001:db8::12345', /group '12345'/],
  ['fe80::1%eth0', /zone/],
  ['2001:db8::/64', /prefix length/],
  ['::ffff:10.0.0.256', /not a dotted quad/],
  ['10.0.0.1', /groups instead of 8/],
  ['', /0 groups instead of 8/],
];

for (const [text, why] of badTexts) {
  test(`parseIPv6 refuses '${text}' and says why`, (t) => {
    const err = t.throws(() => parseIPv6(text), { instanceOf: RangeError });
    t.regex(err?.message ?? '', why);
    t.regex(err?.message ?? '', /expected a form such as 2001:db8::100/);
  });
}
