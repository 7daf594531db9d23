import test from 'ava';
import { ETH_P_ARP } from '../../../src/net/ethernet.js';
import {
  IPF_DF,
  IPF_FRAGMENT,
  IPF_HAS_PORTS,
  IPF_MF,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPR_CODE,
  IPR_DST,
  IPR_DST_PORT,
  IPR_FLAGS,
  IPR_FRAG_OFFSET,
  IPR_HEADER_LENGTH,
  IPR_IP_OFFSET,
  IPR_L4_OFFSET,
  IPR_PROTOCOL,
  IPR_SRC,
  IPR_SRC_PORT,
  IPR_TOTAL_LENGTH,
  IPv4Parse,
  createIPv4Result,
  formatIPv4,
  ipv4Checksum,
  parseIPv4,
  readIPv4,
  writeIPv4Header,
} from '../../../src/net/ipv4.js';
import { prng } from '../shm/fixtures/prng.js';
import { CLIENT_IP, VIP, ipv4Frame } from '../../fixtures/frames.js';

test('parseIPv4 reads dotted quads as u32', (t) => {
  t.is(parseIPv4('10.0.0.100'), 0x0a000064);
  t.is(parseIPv4('0.0.0.0'), 0);
  t.is(parseIPv4('255.255.255.255'), 0xffffffff);
  t.is(parseIPv4('192.168.1.2'), 0xc0a80102);
});

test('parseIPv4 rejects bad input with a clear message', (t) => {
  const cases: Array<[string, string]> = [
    ['10.0.0.256', 'octet 4 is 256'],
    ['10.0.0', '3 parts'],
    ['10.0.0.1.2', '5 parts'],
    ['10.0.0.x', "'x'"],
    ['10.0..1', "octet 3 ''"],
    ['10.0.0.01', 'leading zero'],
    ['10.0.0.-1', "'-1'"],
    [' 10.0.0.1', "' 10'"],
    ['1000.0.0.1', "'1000'"],
    ['', '1 parts'],
  ];
  for (const [s, why] of cases) {
    const err = t.throws(() => parseIPv4(s), { instanceOf: RangeError }, s);
    t.true(err?.message.includes(`'${s}'`) && err.message.includes(why), err?.message);
  }
});

test('formatIPv4 round-trips with parseIPv4', (t) => {
  const rnd = prng(1);
  for (let i = 0; i < 1000; i++) {
    const n = Math.floor(rnd() * 2 ** 32);
    t.is(parseIPv4(formatIPv4(n)), n);
  }
  t.is(formatIPv4(0xc0a80001), '192.168.0.1');
});

test('ipv4Checksum matches a known header and verifies to zero', (t) => {
  // The classic example header 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
  const h = Uint8Array.from([0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]);
  t.is(ipv4Checksum(h, 0, 20), 0xb861);
  h[10] = 0xb8;
  h[11] = 0x61;
  t.is(ipv4Checksum(h, 0, 20), 0);
  h[15] = h[15]! ^ 1;
  t.not(ipv4Checksum(h, 0, 20), 0);
  t.is(ipv4Checksum(Uint8Array.from([0x01, 0x02, 0x03]), 0, 3), ~(0x0102 + 0x0300) & 0xffff, 'odd length pads with zero');
  const buf = new Uint8Array(40);
  writeIPv4Header(buf, 10, { src: CLIENT_IP, dst: VIP, protocol: IPPROTO_UDP, totalLength: 28 });
  t.is(ipv4Checksum(buf, 10, 20), 0, 'writeIPv4Header fills in a valid checksum');
});

interface Case {
  description: string;
  frame: () => Uint8Array;
  lead?: number;
  len?: (f: Uint8Array) => number;
  code: number;
  fields?: Partial<Record<number, number>>;
}

const cases: Case[] = [
  {
    description: 'TCP SYN to the VIP',
    frame: () => ipv4Frame({ sport: 40001, dport: 443 }),
    code: IPv4Parse.OK,
    fields: {
      [IPR_IP_OFFSET]: 14,
      [IPR_PROTOCOL]: IPPROTO_TCP,
      [IPR_SRC]: CLIENT_IP,
      [IPR_DST]: VIP,
      [IPR_TOTAL_LENGTH]: 40,
      [IPR_HEADER_LENGTH]: 20,
      [IPR_L4_OFFSET]: 34,
      [IPR_SRC_PORT]: 40001,
      [IPR_DST_PORT]: 443,
      [IPR_FLAGS]: IPF_HAS_PORTS,
      [IPR_FRAG_OFFSET]: 0,
    },
  },
  {
    description: 'UDP with DF, after a 10-byte virtio-net header',
    frame: () => ipv4Frame({ lead: 10, protocol: IPPROTO_UDP, l4Length: 8, sport: 53, dport: 5353, flags: IPF_DF }),
    lead: 10,
    code: IPv4Parse.OK,
    fields: { [IPR_IP_OFFSET]: 24, [IPR_L4_OFFSET]: 44, [IPR_SRC_PORT]: 53, [IPR_DST_PORT]: 5353, [IPR_FLAGS]: IPF_DF | IPF_HAS_PORTS },
  },
  {
    description: 'ICMP: no ports',
    frame: () => ipv4Frame({ protocol: IPPROTO_ICMP, l4Length: 8 }),
    code: IPv4Parse.OK,
    fields: { [IPR_PROTOCOL]: IPPROTO_ICMP, [IPR_FLAGS]: 0, [IPR_SRC_PORT]: 0, [IPR_DST_PORT]: 0 },
  },
  {
    description: 'IP options: L4 after IHL*4',
    frame: () => ipv4Frame({ options: 8, sport: 1234, dport: 80 }),
    code: IPv4Parse.OK,
    fields: { [IPR_HEADER_LENGTH]: 28, [IPR_L4_OFFSET]: 42, [IPR_SRC_PORT]: 1234, [IPR_DST_PORT]: 80 },
  },
  {
    description: 'first fragment (MF, offset 0) still has ports',
    frame: () => ipv4Frame({ protocol: IPPROTO_UDP, flags: IPF_MF, sport: 7, dport: 9 }),
    code: IPv4Parse.OK,
    fields: { [IPR_FLAGS]: IPF_MF | IPF_FRAGMENT | IPF_HAS_PORTS, [IPR_SRC_PORT]: 7, [IPR_DST_PORT]: 9 },
  },
  {
    description: 'later fragment: no ports',
    frame: () => ipv4Frame({ protocol: IPPROTO_UDP, fragOffset: 1480, sport: 7, dport: 9 }),
    code: IPv4Parse.OK,
    fields: { [IPR_FLAGS]: IPF_FRAGMENT, [IPR_FRAG_OFFSET]: 1480, [IPR_SRC_PORT]: 0, [IPR_DST_PORT]: 0 },
  },
  {
    description: 'Ethernet padding after a short datagram is fine',
    frame: () => ipv4Frame({ protocol: IPPROTO_UDP, l4Length: 8, padTo: 60 }),
    code: IPv4Parse.OK,
    fields: { [IPR_TOTAL_LENGTH]: 28 },
  },
  { description: 'shorter than an Ethernet header', frame: () => new Uint8Array(13), code: IPv4Parse.TOO_SHORT_L2 },
  { description: 'ARP is not IPv4', frame: () => ipv4Frame({ etherType: ETH_P_ARP }), code: IPv4Parse.NOT_IPV4 },
  { description: 'IPv4 header cut short', frame: () => ipv4Frame(), len: () => 14 + 19, code: IPv4Parse.TOO_SHORT },
  {
    description: 'version 6 in an IPv4 frame',
    frame: () => {
      const f = ipv4Frame();
      f[14] = 0x65;
      return f;
    },
    code: IPv4Parse.BAD_VERSION,
  },
  {
    description: 'IHL 4 (below the minimum)',
    frame: () => {
      const f = ipv4Frame();
      f[14] = 0x44;
      return f;
    },
    code: IPv4Parse.BAD_IHL,
  },
  {
    description: 'IHL 15 past the frame end',
    frame: () => {
      const f = ipv4Frame({ l4Length: 4 });
      f[14] = 0x4f;
      return f;
    },
    code: IPv4Parse.BAD_IHL,
  },
  {
    description: 'total length beyond the frame',
    frame: () => ipv4Frame(),
    len: (f) => f.length - 1,
    code: IPv4Parse.BAD_TOTAL_LENGTH,
  },
  {
    description: 'total length below the header length',
    frame: () => {
      const f = ipv4Frame();
      f[16] = 0;
      f[17] = 19;
      return f;
    },
    code: IPv4Parse.BAD_TOTAL_LENGTH,
  },
  {
    description: 'UDP first fragment too short for ports',
    frame: () => ipv4Frame({ protocol: IPPROTO_UDP, l4Length: 3 }),
    code: IPv4Parse.TRUNCATED_L4,
  },
];

for (const c of cases) {
  test(`readIPv4: ${c.description}`, (t) => {
    const f = c.frame();
    const lead = c.lead ?? 0;
    const out = createIPv4Result();
    const code: number = readIPv4(f, lead, (c.len ? c.len(f) : f.length) - lead, out);
    t.is(code, c.code);
    t.is(out[IPR_CODE], c.code);
    for (const [k, v] of Object.entries(c.fields ?? {})) t.is(out[Number(k)], v, `field ${k}`);
  });
}

test('readIPv4 never throws on random and mutated frames, and every verdict is a known code', (t) => {
  const rnd = prng(42);
  const out = createIPv4Result();
  const known = new Set<number>(Object.values(IPv4Parse));
  const seeds = cases.map((c) => c.frame());
  let ok = 0;
  for (let i = 0; i < 10_000; i++) {
    let f: Uint8Array;
    if (i % 2 === 0) {
      f = new Uint8Array(Math.floor(rnd() * 80));
      for (let j = 0; j < f.length; j++) f[j] = rnd() * 256;
      if (f.length > 14 && rnd() < 0.7) {
        f[12] = 0x08;
        f[13] = 0x00;
        if (rnd() < 0.7) f[14] = 0x40 | (rnd() * 16);
      }
    } else {
      const base = seeds[i % seeds.length]!;
      f = base.slice(0, Math.max(0, base.length - Math.floor(rnd() * 4)));
      const flips = 1 + Math.floor(rnd() * 3);
      for (let j = 0; j < flips && f.length > 0; j++) f[Math.floor(rnd() * f.length)] = rnd() * 256;
    }
    // Mostly the honest offset and length; sometimes bad ones (-1, past the end, negative).
    const off = rnd() < 0.9 ? 0 : Math.floor(rnd() * 3) - 1;
    const len = rnd() < 0.8 ? f.length - off : Math.floor(rnd() * (f.length + 4)) - 2;
    const code: number = readIPv4(f, off, len, out);
    t.true(known.has(code));
    if (code === IPv4Parse.OK) {
      ok++;
      t.true(out[IPR_L4_OFFSET]! <= f.length && out[IPR_IP_OFFSET]! + out[IPR_TOTAL_LENGTH]! <= f.length);
    }
  }
  t.true(ok > 100, `${ok} frames parsed OK`);
});
