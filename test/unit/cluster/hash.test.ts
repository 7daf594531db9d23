/**
 * The election hash: keyed with the cluster key (HalfSipHash-1-3 under an HKDF-derived 64-bit
 * key), the same on every node with the same key; unkeyed without one, as before. The actor
 * hash: seeded per process.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { RendezvousElection, LnlbElection, type Election } from '../../../src/cluster/election.js';
import { actorForKey, deriveElectionKey, electionHash, halfSipHash16, halfSipHash8, ipv6Identity, keyedIdentityHash, isIPv6Identity, keyedElectionHash } from '../../../src/cluster/hash.js';

const MACS = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 3];
const SOURCES = 60_000;
const source = (i: number): number => (0x0a000000 + i * 7919) >>> 0;

function node(kind: 'rendezvous' | 'lnlb'): Election {
  const e = kind === 'lnlb' ? new LnlbElection() : new RendezvousElection();
  e.rebuild({ count: 3, ids: [1, 2, 3], weights: [1, 1, 1], macs: MACS });
  return e;
}

/** The owner of every source as one node computes it, with the key it derived from `clusterKey` (undefined: none). */
function owners(kind: 'rendezvous' | 'lnlb', clusterKey: Uint8Array | undefined): Int8Array {
  const election = node(kind);
  const key = clusterKey === undefined ? undefined : deriveElectionKey(clusterKey);
  const out = new Int8Array(SOURCES);
  for (let i = 0; i < SOURCES; i++) {
    const h = key === undefined ? electionHash(source(i), 0) : keyedElectionHash(key[0]!, key[1]!, source(i), 0);
    out[i] = election.electOwner(h);
  }
  return out;
}

function shares(o: Int8Array): number[] {
  const counts = [0, 0, 0];
  for (const owner of o) counts[owner - 1]!++;
  return counts.map((c) => c / o.length);
}

test('HalfSipHash matches the reference implementation (HalfSipHash-2-4, 8-byte message, key 00..07)', (t) => {
  // vectors_hsip32[8] of the SipHash reference code: message 00 01 .. 07, output d0 b8 84 8f (little-endian).
  t.is(halfSipHash8(0x03020100, 0x07060504, 0x03020100, 0x07060504, 2, 4), 0x8f84b8d0);
});

test('the 16-byte HalfSipHash of IPv6 identities matches the reference implementation (HalfSipHash-2-4, message 00..0f, key 00..07)', (t) => {
  // vectors_hsip32[16] of the SipHash reference code: output d9 b5 ac 84 (little-endian).
  t.is(halfSipHash16(0x03020100, 0x07060504, 0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c, 2, 4), 0x84acb5d9);
});

test('an IPv6 identity lies in 224.0.0.0/3, keyed: another key gives another identity, the same key the same on every node', (t) => {
  const key = deriveElectionKey(randomBytes(32));
  const other = deriveElectionKey(randomBytes(32));
  const words = new Uint32Array(randomBytes(16 * 2000).buffer);
  let differs = 0;
  const seen = new Set<number>();
  for (let i = 0; i < words.length; i += 4) {
    const [a, b, c, d] = [words[i]!, words[i + 1]!, words[i + 2]!, words[i + 3]!];
    const id = ipv6Identity(key, a, b, c, d);
    t.true(isIPv6Identity(id) && id >>> 0 === id, `${id.toString(16)} in 224.0.0.0/3`);
    t.is(ipv6Identity(Uint32Array.from(key), a, b, c, d), id);
    if (ipv6Identity(other, a, b, c, d) !== id) differs++;
    t.true(isIPv6Identity(ipv6Identity(undefined, a, b, c, d)));
    seen.add(id);
  }
  t.true(differs > 1990, 'the key changes the identity');
  t.true(seen.size > 1990, 'identities spread (2000 random addresses, 29 bits)');
  // No IPv4 client address is an identity: 0.0.0.0/1 to 223.255.255.255 are not.
  t.false(isIPv6Identity(0x0a000001));
  t.false(isIPv6Identity(0xdfffffff));
  t.true(isIPv6Identity(0xe0000000));
});

test('the identity\'s unrolled HalfSipHash-1-3 is HalfSipHash-1-3 of 16 bytes', (t) => {
  const words = new Uint32Array(randomBytes(4 * 6 * 2000).buffer);
  for (let i = 0; i < words.length; i += 6) {
    const w = Array.from(words.subarray(i, i + 6));
    if (keyedIdentityHash(w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!) !== halfSipHash16(w[0]!, w[1]!, w[2]!, w[3]!, w[4]!, w[5]!, 1, 3)) return t.fail(`differs for ${w.join(', ')}`);
  }
  t.pass();
});

test('the election\'s unrolled HalfSipHash-1-3 is HalfSipHash-1-3', (t) => {
  const words = new Uint32Array(randomBytes(4 * 4 * 2000).buffer);
  for (let i = 0; i < words.length; i += 4) {
    const [k0, k1, lo, hi] = [words[i]!, words[i + 1]!, words[i + 2]!, words[i + 3]!];
    if (keyedElectionHash(k0, k1, lo, hi) !== halfSipHash8(k0, k1, lo, hi, 1, 3)) return t.fail(`differs for ${[k0, k1, lo, hi].join(', ')}`);
  }
  t.pass();
});

test('two nodes with the same cluster key agree on every owner', (t) => {
  const clusterKey = randomBytes(32);
  for (const kind of ['rendezvous', 'lnlb'] as const) {
    // Each node reads its own copy of the key file and derives the election key itself.
    const a = owners(kind, new Uint8Array(clusterKey));
    const b = owners(kind, new Uint8Array(Buffer.from(clusterKey)));
    let differ = 0;
    for (let i = 0; i < SOURCES; i++) if (a[i] !== b[i]) differ++;
    t.is(differ, 0, kind);
    for (const share of shares(a)) t.true(Math.abs(share - 1 / 3) < 0.02, `${kind}: share ${share}`);
  }
});

test('another key gives another distribution, as even', (t) => {
  const a = owners('rendezvous', randomBytes(32));
  const b = owners('rendezvous', randomBytes(32));
  let differ = 0;
  for (let i = 0; i < SOURCES; i++) if (a[i] !== b[i]) differ++;
  // Independent draws over 3 members: 2/3 of the owners differ.
  t.true(Math.abs(differ / SOURCES - 2 / 3) < 0.02, `${differ} of ${SOURCES} differ`);
  for (const share of shares(b)) t.true(Math.abs(share - 1 / 3) < 0.02, `share ${share}`);
});

test('sources precomputed onto one node with the unkeyed hash are spread by the keyed one', (t) => {
  // What an attacker does without the key: pick the sources the public hash gives node 1.
  const unkeyed = owners('rendezvous', undefined);
  const keyed = owners('rendezvous', randomBytes(32));
  let aimed = 0;
  let landed = 0;
  for (let i = 0; i < SOURCES; i++) {
    if (unkeyed[i] !== 1) continue;
    aimed++;
    if (keyed[i] === 1) landed++;
  }
  t.true(Math.abs(landed / aimed - 1 / 3) < 0.03, `${landed} of ${aimed} aimed sources reach node 1`);
});

test('without a key the election hash is the unkeyed one lnlb always used', (t) => {
  const inputs: [number, number][] = [[0, 0], [0x0a000001, 0], [0x0a000002, 0], [0xc0a80164, 0x1f90], [0xffffffff, 0xffffffff]];
  // Values of the unkeyed hash before the keyed one existed: clusters without a key keep electing alike.
  t.deepEqual(inputs.map(([lo, hi]) => electionHash(lo, hi)), [2856213345, 70692167, 2289891454, 2114252240, 478346618]);
  t.deepEqual(inputs.map(([lo, hi]) => actorForKey(lo, hi, 4, 0)), [3, 2, 1, 2, 0]);
});

test('the election key is derived alike from the same cluster key and differs with it', (t) => {
  const k = randomBytes(32);
  t.deepEqual(deriveElectionKey(k), deriveElectionKey(Buffer.from(k)));
  t.is(deriveElectionKey(k).length, 2);
  const other = Buffer.from(k);
  other[31]! ^= 1;
  t.notDeepEqual(deriveElectionKey(k), deriveElectionKey(other));
});

test('the actor seed moves keys between actors independently; each seed spreads evenly', (t) => {
  const actors = 4;
  const a = randomBytes(4).readUInt32LE(0);
  const b = (a ^ 0x80000001) >>> 0;
  const counts = new Array<number>(actors).fill(0);
  let same = 0;
  for (let i = 0; i < SOURCES; i++) {
    const x = actorForKey(source(i), 0, actors, a);
    counts[x]!++;
    if (x === actorForKey(source(i), 0, actors, b)) same++;
  }
  t.true(Math.abs(same / SOURCES - 1 / actors) < 0.02, `${same} of ${SOURCES} on the same actor under two seeds`);
  for (const c of counts) t.true(Math.abs(c / SOURCES - 1 / actors) < 0.02, `actor share ${c / SOURCES}`);
});
