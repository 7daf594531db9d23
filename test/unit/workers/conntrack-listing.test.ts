import test from 'ava';
import { SNAPSHOT_WORDS, visitEntries } from '../../../src/handlers/tracker-state.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { activeOwnedFlows, conntrackListing, ipv6SourceNamer, ownerIdsOf, type ConntrackInputs } from '../../../src/workers/conntrack-listing.js';
import { sourceIpHandler } from '../../../src/handlers/default.js';
import { tcpHandler } from '../../../src/handlers/tcp.js';
import { readU32 } from '../../../src/net/bytes.js';
import { parseIPv6 } from '../../../src/net/ipv6.js';
import { SourceBook } from '../../../src/shm/source-book.js';
import type { ShardListing } from '../../../src/workers/messages.js';

const SELF = '02:00:00:00:00:01';
const OTHER = '02:00:00:00:00:02';
const NOW = 1_000_000;

/** One shard's listing from entries [source, keyHi, owner id, seconds since last seen]. */
function shard(total: number, rows: [string, number, number, number][]): ShardListing {
  const entries = new Uint32Array(rows.length * SNAPSHOT_WORDS);
  rows.forEach(([source, keyHi, owner, age], i) => entries.set([parseIPv4(source), keyHi, owner, NOW - age], i * SNAPSHOT_WORDS));
  return { total, entries };
}

function inputs(over: Partial<ConntrackInputs> = {}): ConntrackInputs {
  return {
    interfaceName: 'nlb0',
    // Handler 0: two actors' shards; handler 1: one, with a describeKey that throws for port 0.
    listings: [
      [shard(2, [['10.0.0.9', 0, 1, 30], ['10.0.0.5', 0, 2, 3]]), shard(1, [['10.0.0.7', 0, 9, 3]])],
      [shard(1, [['10.0.0.8', 443, 1, 0], ['10.0.0.6', 0, 1, 50]])],
    ],
    handlers: [
      { name: 'default' },
      {
        name: 'tcp',
        describeKey(keyLo: number, keyHi: number): string {
          if (keyHi === 0) throw new Error('no port');
          return `${keyLo}:${keyHi}`;
        },
      },
    ],
    idleTimeoutSeconds: [60, 40],
    owners: { 1: SELF, 2: OTHER },
    members: new Map([
      [SELF, { name: 'node1', address: '10.0.0.1' }],
      [OTHER, { name: '', address: '' }],
    ]),
    self: SELF,
    now: NOW,
    limit: 100,
    ...over,
  };
}

test('conntrack: most recently seen first, the owner by MAC and announced name, this node marked, a gone owner by its id', (t) => {
  const listing = conntrackListing(inputs());
  t.is(listing.interface, 'nlb0');
  t.is(listing.total, 4, "the actors' totals, not the rows listed");
  t.deepEqual(
    listing.entries.map((e) => [e.source, e.idleSeconds]),
    [['10.0.0.8', 0], ['10.0.0.5', 3], ['10.0.0.7', 3], ['10.0.0.9', 30], ['10.0.0.6', 50]],
    'by idle seconds, then source',
  );
  const [tcp, other, gone, , expired] = listing.entries;
  t.deepEqual(tcp, { handler: 'tcp', source: '10.0.0.8', key: 443, flow: `${parseIPv4('10.0.0.8')}:443`, node: SELF, nodeName: 'node1', nodeAddress: '10.0.0.1', self: true, idleSeconds: 0, expiresInSeconds: 40 });
  t.deepEqual(other, { handler: 'default', source: '10.0.0.5', flow: '10.0.0.5', node: OTHER, self: false, idleSeconds: 3, expiresInSeconds: 57 }, 'no name announced: none shown');
  t.like(gone, { node: 'id 9 (gone)', self: false });
  t.like(expired, { handler: 'tcp', flow: '10.0.0.6', expiresInSeconds: 0 }, 'describeKey threw: the source; past its timeout: 0, not negative');
});

test('conntrack names IPv6 sources by their address from the source book, bracketed before a port; one the book no longer holds by its identity', (t) => {
  const memory = SourceBook.allocate(16);
  const book = new SourceBook(memory);
  const known = 0xe0000021;
  const forgotten = 0xe0000042;
  const address = parseIPv6('fd00:10::101');
  book.record(known, readU32(address, 0), readU32(address, 4), readU32(address, 8), readU32(address, 12));
  const rows = (keyLo: number, keyHi: number, age: number): Uint32Array => Uint32Array.of(keyLo, keyHi, 1, NOW - age);
  const listing = conntrackListing(
    inputs({
      listings: [[{ total: 2, entries: Uint32Array.from([...rows(known, 0, 1), ...rows(forgotten, 0, 2)]) }], [{ total: 1, entries: rows(known, (40000 << 16) | 80, 0) }]],
      handlers: [sourceIpHandler, tcpHandler],
      ipv6Source: ipv6SourceNamer(book),
    }),
  );
  t.deepEqual(
    listing.entries.map((e) => [e.source, e.flow]),
    [
      ['fd00:10::101', '[fd00:10::101]:40000→80'],
      ['fd00:10::101', 'fd00:10::101'],
      ['ipv6#00000042', 'ipv6#00000042'],
    ],
  );
  t.is(ipv6SourceNamer(book)(parseIPv4('10.0.0.5'), '10.0.0.5'), undefined, 'an IPv4 source is left as it is');
});

test('conntrack: at most `limit` rows, the most recent', (t) => {
  const listing = conntrackListing(inputs({ limit: 2 }));
  t.is(listing.total, 4);
  t.deepEqual(listing.entries.map((e) => e.source), ['10.0.0.8', '10.0.0.5']);
  t.deepEqual(conntrackListing(inputs({ listings: [], handlers: [] })), { interface: 'nlb0', total: 0, entries: [] }, 'no datapath: nothing');
});

test("a drain counts this node's flows seen within idleSeconds whole seconds", (t) => {
  const { listings, owners } = inputs();
  const shards = (visit: Parameters<typeof visitEntries>[1]): void => visitEntries(listings.flat().map((l) => l.entries), visit);
  t.is(activeOwnedFlows(shards, ownerIdsOf(owners, SELF), NOW, 30), 2, '10.0.0.8 (0 s) and 10.0.0.9 (30 s); 10.0.0.6 (50 s) is quiet');
  t.is(activeOwnedFlows(shards, ownerIdsOf(owners, SELF), NOW, 29), 1);
  t.is(activeOwnedFlows(shards, ownerIdsOf(owners, OTHER), NOW, 60), 1);
  t.is(activeOwnedFlows(shards, ownerIdsOf({ 2: OTHER }, SELF), NOW, 60), 0, 'no owner id for this node: none of its own');
});
