import test from 'ava';
import { BUCKET_COUNT, bucketOf } from '../../../src/cluster/buckets.js';
import { deriveElectionKey, electionHash, ipv6Identity, keyedElectionHash } from '../../../src/cluster/hash.js';
import { sourceIpHandler } from '../../../src/handlers/default.js';
import type { ProtocolHandler } from '../../../src/handlers/handler.js';
import { tcpHandler } from '../../../src/handlers/tcp.js';
import { udpHandler } from '../../../src/handlers/udp.js';
import { BPF_ACCEPT, BPF_MAXINSNS, runBpf, validateBpf } from '../../../src/net/bpf.js';
import { LnlbElection } from '../../../src/cluster/election.js';
import { bucketFilter, MAX_OPAQUE_PROTOCOLS, type BucketFilterSpec, type FilterAffinity } from '../../../src/net/bucket-filter.js';
import { ETH_P_ARP, ETH_P_LNLB, parseMac } from '../../../src/net/ethernet.js';
import { readU32 } from '../../../src/net/bytes.js';
import { IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ICMPV6 } from '../../../src/net/ipv6.js';
import { parsedFrameOf } from '../handlers/fixtures/frames.js';
import { prng } from '../shm/fixtures/prng.js';
import { arpRequestFrame, CLIENT_IP6, ipv4Frame, ipv6Frame, neighborSolicitationFrame, rawFrame, VIP, VIP6 } from '../../fixtures/frames.js';

const CLUSTER_MAC = parseMac('02:00:0a:00:00:64');
const KEY = deriveElectionKey(new Uint8Array(32).fill(5));
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_GRE = 47;

/** Every other bucket, in a pattern no tree shortcut covers: bucket b passes when mix says so. */
function someBuckets(seed: number): Uint32Array {
  const random = prng(seed);
  const pass = new Uint32Array(BUCKET_COUNT >> 5);
  for (let b = 0; b < BUCKET_COUNT; b++) if (random() < 0.37) pass[b >> 5]! |= 1 << (b & 31);
  // Whole groups too, both ways: the lookup has shortcuts for them.
  pass[3] = 0;
  pass[4] = 0xffffffff;
  return pass;
}

const passes = (pass: Uint32Array, bucket: number): boolean => ((pass[bucket >> 5]! >>> (bucket & 31)) & 1) === 1;

/**
 * What the node decides without a filter, from the product's own code: the frame parsed as the
 * dispatcher parses it, keyed by the built-in handler, the rule's election input (actor-core),
 * hashed as the actor hashes it.
 */
function expectedBucket(frame: Uint8Array, affinity: FilterAffinity, key: Uint32Array | undefined): number {
  const parsed = parsedFrameOf(frame, key);
  const protocol = parsed.protocol;
  const handler: ProtocolHandler = protocol === IPPROTO_TCP ? tcpHandler : protocol === IPPROTO_UDP ? udpHandler : sourceIpHandler;
  const out = new Uint32Array(3);
  handler.affinityKey(parsed, out);
  // The network: the source /24, or an IPv6 source's /64 (dispatcher-core.ts).
  const network = parsed.family === 6 ? ipv6Identity(key, readU32(frame, 22), readU32(frame, 26), 0, 0) : (parsed.src & 0xffffff00) >>> 0;
  const input = affinity === 'single' ? parsed.src : affinity === 'none' ? out[0]! : network;
  const hi = affinity === 'none' ? out[1]! : 0;
  return bucketOf(key === undefined ? electionHash(input, hi) : keyedElectionHash(key[0]!, key[1]!, input, hi));
}

function spec(affinity: FilterAffinity, key: Uint32Array | undefined, pass: Uint32Array, opaqueProtocols?: number[]): BucketFilterSpec {
  return { clusterMac: CLUSTER_MAC, vip: VIP, vip6: VIP6, electionKey: key, affinity, owned: { kind: 'buckets', pass }, ...(opaqueProtocols ? { opaqueProtocols } : {}) };
}

/** A random source in 2001:db8::/32, two in three of them in one of a few /64s (so the network affinity has networks to keep together). */
function randomSource6(random: () => number): Uint8Array {
  const address = new Uint8Array(16);
  address.set([0x20, 0x01, 0x0d, 0xb8]);
  for (let i = 4; i < 16; i++) address[i] = Math.floor(random() * 256);
  if (random() < 0.67) address.fill(0, 4, 7);
  return address;
}

for (const keyed of [true, false]) {
  for (const affinity of ['single', 'network', 'none'] as const) {
    test(`${keyed ? 'keyed' : 'unkeyed'}, affinity ${affinity}, IPv6: the kernel's verdict is the bucket the actor would elect, over 3000 frames; extension headers it does not walk pass`, (t) => {
      const key = keyed ? KEY : undefined;
      const pass = someBuckets(affinity.length + (keyed ? 200 : 50));
      const program = bucketFilter(spec(affinity, key, pass));
      t.is(validateBpf(program), null);
      t.true(program.length / 4 <= BPF_MAXINSNS);
      const random = prng(17 + affinity.length);
      let accepted = 0;
      let walkedPassed = 0;
      for (let i = 0; i < 3000; i++) {
        const protocol = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6][i % 3]!;
        const fragment = i % 17 === 0;
        const hopByHop = i % 19 === 0;
        const frame = ipv6Frame({
          ipSrc: randomSource6(random),
          protocol,
          sport: 1024 + Math.floor(random() * 60000),
          dport: [80, 443, 53][i % 3]!,
          extensions: [...(hopByHop ? [{ type: IPPROTO_HOPOPTS }] : []), ...(fragment ? [{ type: IPPROTO_FRAGMENT, more: true }] : [])],
          l4Length: i % 13 === 0 ? 6 : 20, // too short for TCP's key: the handler keys by source alone
        });
        const verdict = runBpf(program, frame, frame.length);
        if (verdict !== 0) accepted++;
        if (hopByHop && affinity === 'none') {
          // Ports behind an extension header: userspace walks the chain and decides.
          t.is(verdict, BPF_ACCEPT, `frame ${i}: a hop-by-hop header passes under affinity none`);
          walkedPassed++;
          continue;
        }
        const want = passes(pass, expectedBucket(frame, affinity, key));
        if ((verdict !== 0) !== want) {
          t.fail(`frame ${i} (protocol ${protocol}${fragment ? ', fragment' : ''}${hopByHop ? ', hop-by-hop' : ''}): filter ${verdict !== 0 ? 'passes' : 'drops'} it, the actor's bucket ${want ? 'passes' : 'does not'}`);
          return;
        }
      }
      t.log(`${program.length / 4} instructions; ${accepted} of 3000 frames passed`);
      t.true(accepted > 600 && accepted < 2400);
      if (affinity === 'none') t.true(walkedPassed > 100);
    });
  }
}

test('IPv6: solicitations for the VIP pass whatever the buckets; other groups, other addresses and other MACs do not; a bad version passes (userspace counts it)', (t) => {
  const program = bucketFilter(spec('single', KEY, new Uint32Array(BUCKET_COUNT >> 5)));
  const solicitation = neighborSolicitationFrame();
  t.is(runBpf(program, solicitation, solicitation.length), BPF_ACCEPT);
  const forOther = neighborSolicitationFrame({ target: CLIENT_IP6 });
  t.is(runBpf(program, forOther, forOther.length), 0, 'a solicitation for another address (its own group)');
  const notVip = ipv6Frame({ ipDst: CLIENT_IP6 });
  t.is(runBpf(program, notVip, notVip.length), 0);
  const otherMac = ipv6Frame({ dst: parseMac('02:00:00:00:00:01') });
  t.is(runBpf(program, otherMac, otherMac.length), 0);
  const badVersion = ipv6Frame();
  badVersion[14] = 0x45;
  t.is(runBpf(program, badVersion, badVersion.length), BPF_ACCEPT);
  const mine = ipv6Frame();
  t.is(runBpf(program, mine, mine.length), 0, 'no bucket passes');
  const noV6 = bucketFilter({ ...spec('single', KEY, new Uint32Array(BUCKET_COUNT >> 5).fill(0xffffffff)), vip6: undefined });
  t.is(runBpf(noV6, mine, mine.length), 0, 'without an IPv6 VIP, no IPv6 frame passes');
  t.is(runBpf(noV6, solicitation, solicitation.length), 0);
});

for (const keyed of [true, false]) {
  for (const affinity of ['single', 'network', 'none'] as const) {
    test(`${keyed ? 'keyed' : 'unkeyed'}, affinity ${affinity}: the kernel's verdict is the bucket the actor would elect, over 3000 frames`, (t) => {
      const key = keyed ? KEY : undefined;
      const pass = someBuckets(affinity.length + (keyed ? 100 : 0));
      const program = bucketFilter(spec(affinity, key, pass));
      t.is(validateBpf(program), null);
      t.true(program.length / 4 <= BPF_MAXINSNS);
      const random = prng(7 + affinity.length);
      let accepted = 0;
      for (let i = 0; i < 3000; i++) {
        const protocol = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP][i % 3]!;
        const fragment = i % 17 === 0;
        const frame = ipv4Frame({
          ipSrc: (0x0a000000 + Math.floor(random() * 0xffffff)) >>> 0,
          protocol,
          sport: 1024 + Math.floor(random() * 60000),
          dport: [80, 443, 53][i % 3]!,
          options: i % 11 === 0 ? 8 : 0,
          ...(fragment ? { flags: 1, fragOffset: i % 2 } : {}), // MF, or a later fragment
          l4Length: i % 13 === 0 ? 6 : 20, // too short for TCP's key: the handler keys by source alone
        });
        const want = passes(pass, expectedBucket(frame, affinity, key));
        const verdict = runBpf(program, frame, frame.length);
        if (verdict !== 0) accepted++;
        if ((verdict !== 0) !== want) {
          t.fail(`frame ${i} (protocol ${protocol}${fragment ? ', fragment' : ''}): filter ${verdict !== 0 ? 'passes' : 'drops'} it, the actor's bucket ${want ? 'passes' : 'does not'}`);
          return;
        }
      }
      t.log(`${program.length / 4} instructions; ${accepted} of 3000 frames passed`);
      t.true(accepted > 600 && accepted < 2400);
    });
  }
}

test('what the filter does not decide by bucket: ARP requests for the VIP pass, other ARP, control frames and other MACs or addresses do not, malformed IPv4 passes (userspace counts it)', (t) => {
  const program = bucketFilter(spec('single', KEY, new Uint32Array(BUCKET_COUNT >> 5)));
  const forVip = arpRequestFrame({ targetIp: VIP });
  t.is(runBpf(program, forVip, forVip.length), BPF_ACCEPT);
  const forOther = arpRequestFrame({ targetIp: (VIP + 1) >>> 0 });
  t.is(runBpf(program, forOther, forOther.length), 0, 'a request for another address (a node asking for a client)');
  const reply = arpRequestFrame({ targetIp: VIP });
  reply[21] = 2;
  t.is(runBpf(program, reply, reply.length), 0, 'a reply');
  t.is(runBpf(program, rawFrame(parseMac('ff:ff:ff:ff:ff:ff'), ETH_P_ARP, 60), 60), 0, 'no opcode');
  t.is(runBpf(program, rawFrame(CLUSTER_MAC, ETH_P_LNLB, 60), 60), 0);
  const other = ipv4Frame({ dst: parseMac('02:00:00:00:00:01') });
  t.is(runBpf(program, other, other.length), 0);
  const notVip = ipv4Frame({ ipDst: (VIP + 1) >>> 0 });
  t.is(runBpf(program, notVip, notVip.length), 0);
  const badVersion = ipv4Frame();
  badVersion[14] = 0x65;
  t.is(runBpf(program, badVersion, badVersion.length), BPF_ACCEPT);
  const shortHeader = ipv4Frame();
  shortHeader[14] = 0x44;
  t.is(runBpf(program, shortHeader, shortHeader.length), BPF_ACCEPT);
  // No bucket passes: a well-formed frame for the VIP is dropped.
  const mine = ipv4Frame();
  t.is(runBpf(program, mine, mine.length), 0);
});

test('affinity none: a protocol whose handler is not built in passes whatever its bucket (its key is the handler\'s own)', (t) => {
  const program = bucketFilter(spec('none', KEY, new Uint32Array(BUCKET_COUNT >> 5), [IPPROTO_GRE]));
  const gre = ipv4Frame({ protocol: IPPROTO_GRE });
  t.is(runBpf(program, gre, gre.length), BPF_ACCEPT);
  const icmp = ipv4Frame({ protocol: IPPROTO_ICMP });
  t.is(runBpf(program, icmp, icmp.length), 0);
  t.throws(() => bucketFilter(spec('none', KEY, new Uint32Array(32), Array.from({ length: MAX_OPAQUE_PROTOCOLS + 1 }, (_, i) => 100 + i))), { message: /at most 32 protocols/ });
});

test('every bucket and no bucket: all pass, none pass, and a malformed spec is refused', (t) => {
  const all = bucketFilter(spec('single', KEY, new Uint32Array(BUCKET_COUNT >> 5).fill(0xffffffff)));
  const none = bucketFilter(spec('single', KEY, new Uint32Array(BUCKET_COUNT >> 5)));
  const random = prng(3);
  for (let i = 0; i < 200; i++) {
    const frame = ipv4Frame({ ipSrc: (0x0a000000 + Math.floor(random() * 0xffffff)) >>> 0 });
    t.is(runBpf(all, frame, frame.length), BPF_ACCEPT);
    t.is(runBpf(none, frame, frame.length), 0);
  }
  t.throws(() => bucketFilter(spec('single', KEY, new Uint32Array(3))), { message: /owned buckets must be/ });
  t.throws(() => bucketFilter({ ...spec('single', KEY, new Uint32Array(32)), clusterMac: new Uint8Array(3) }), { message: /clusterMac/ });
});

test('fewer buckets work alike (the count is the mask\'s length), more than 1024 are refused', (t) => {
  const pass = new Uint32Array(4).fill(0x0f0f0f0f); // 128 buckets
  const program = bucketFilter(spec('single', KEY, pass));
  const random = prng(11);
  for (let i = 0; i < 300; i++) {
    const src = (0x0a000000 + Math.floor(random() * 0xffffff)) >>> 0;
    const frame = ipv4Frame({ ipSrc: src });
    const bucket = keyedElectionHash(KEY[0]!, KEY[1]!, src, 0) >>> 25;
    t.is(runBpf(program, frame, frame.length) !== 0, passes(pass, bucket), `source ${src}`);
  }
  t.throws(() => bucketFilter(spec('single', KEY, new Uint32Array(64))), { message: /1 to 32 words/ });
});

test('--election lnlb: a node\'s share of LNLB\'s walk (hash mod total in its range) passes exactly the keys the election gives it', (t) => {
  const election = new LnlbElection();
  const ids = [11, 12, 13];
  election.rebuild({ count: 3, ids, weights: [1, 2, 1] });
  const random = prng(21);
  const samples: { src: number; owner: number }[] = [];
  for (let i = 0; i < 2000; i++) {
    const src = (0x0a000000 + Math.floor(random() * 0xffffff)) >>> 0;
    samples.push({ src, owner: election.electOwner(keyedElectionHash(KEY[0]!, KEY[1]!, src, 0)) });
  }
  // The walk's ranges, from the election itself: member i owns [cumulative[i-1], cumulative[i]).
  const total = election.totalShares;
  let from = 0;
  for (const [i, id] of ids.entries()) {
    const to = election.cumulativeShares(i);
    const program = bucketFilter({ clusterMac: CLUSTER_MAC, vip: VIP, electionKey: KEY, affinity: 'single', owned: { kind: 'shares', total, ranges: [[from, to]] } });
    t.is(validateBpf(program), null);
    for (const { src, owner } of samples) {
      const frame = ipv4Frame({ ipSrc: src });
      t.is(runBpf(program, frame, frame.length) !== 0, owner === id, `source ${src}: node ${id}`);
    }
    from = to;
  }
  t.throws(() => bucketFilter({ clusterMac: CLUSTER_MAC, vip: VIP, electionKey: KEY, affinity: 'single', owned: { kind: 'shares', total: 100, ranges: [[50, 60], [10, 20]] } }), { message: /sorted, disjoint/ });
});
