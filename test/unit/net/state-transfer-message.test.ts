import test from 'ava';
import {
  askedFragments,
  decodeStateAck,
  decodeStateNack,
  encodeStateAck,
  encodeStateNack,
  MAX_TRANSFER_MESSAGES,
  STATE_LAST,
  transferCount,
  transferFlags,
  transferIdOf,
  transferIndex,
} from '../../../src/net/state-transfer-message.js';
import { FLAG_AUTHENTICATED } from '../../../src/net/auth.js';
import { prng } from '../shm/fixtures/prng.js';

test('transfer flags: protocol, the last one marked, index and count; never the authentication bit', (t) => {
  for (let count = 1; count <= MAX_TRANSFER_MESSAGES; count += 9) {
    for (let index = 0; index < count; index++) {
      const flags = transferFlags(17, index, count);
      t.is(flags & 0xff, 17);
      t.is((flags & STATE_LAST) !== 0, index === count - 1);
      t.is(transferIndex(flags), index);
      t.is(transferCount(flags), count);
      t.is(flags & FLAG_AUTHENTICATED, 0);
      t.is(transferIdOf((0xffff_fffe + index) >>> 0, flags), 0xffff_fffe, 'ids wrap');
    }
  }
  t.throws(() => transferFlags(6, 0, MAX_TRANSFER_MESSAGES + 1), { instanceOf: RangeError });
  t.throws(() => transferFlags(6, 2, 2), { instanceOf: RangeError });
});

test('ACK: the transfer id, and nothing else', (t) => {
  t.is(decodeStateAck(encodeStateAck(0xdead_beef)), 0xdead_beef);
  t.is(decodeStateAck(new Uint8Array(5)), undefined);
});

test('NACK: whole messages and bitmaps of missing fragments round-trip; asked counts them', (t) => {
  const bitmap = new Uint8Array([0b1010_0000, 0b0000_0001]);
  const { data, asked } = encodeStateNack({ transferId: 42, entries: [{ index: 0 }, { index: 3, missing: { first: 100, bits: 16, bitmap } }] }, 1400, (i) => (i === 0 ? 7 : 0));
  t.is(asked, 7 + 3);
  const back = decodeStateNack(data)!;
  t.is(back.transferId, 42);
  t.is(back.entries.length, 2);
  t.deepEqual([...askedFragments(back.entries[0]!, 5)], [0, 1, 2, 3, 4]);
  t.deepEqual([...askedFragments(back.entries[1]!, 1000)], [100, 102, 115]);
  t.deepEqual([...askedFragments(back.entries[1]!, 110)], [100, 102], 'fragments past the message are not asked');
});

test('NACK: cut to the room it has, the first missing fragments first', (t) => {
  const bitmap = new Uint8Array(2000).fill(0xff);
  const { data, asked } = encodeStateNack({ transferId: 1, entries: [{ index: 0, missing: { first: 0, bits: 16_000, bitmap } }, { index: 1 }] }, 100);
  t.is(data.length, 100);
  const back = decodeStateNack(data)!;
  t.is(back.entries.length, 1, 'the second entry did not fit');
  t.is(asked, (100 - 5 - 6) * 8);
  t.is([...askedFragments(back.entries[0]!, 65_535)].length, asked);
});

test('NACK decoding: malformed data is refused, never thrown on (random and truncated)', (t) => {
  const rnd = prng(99);
  const good = encodeStateNack({ transferId: 5, entries: [{ index: 1, missing: { first: 3, bits: 9, bitmap: new Uint8Array([0xff, 0x80]) } }] }, 200).data;
  for (let cut = 0; cut < good.length; cut++) t.is(decodeStateNack(good.subarray(0, cut)), undefined, `cut at ${cut}`);
  const trailing = new Uint8Array(good.length + 1);
  trailing.set(good);
  t.is(decodeStateNack(trailing), undefined, 'bytes after the entries');
  for (let i = 0; i < 5000; i++) {
    const junk = new Uint8Array(Math.floor(rnd() * 64));
    for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(rnd() * 256);
    const r = decodeStateNack(junk);
    if (r !== undefined) for (const e of r.entries) for (const k of askedFragments(e, 100)) t.true(k >= 0 && k < 100);
  }
});
