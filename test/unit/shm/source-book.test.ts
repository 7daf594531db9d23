import test from 'ava';
import { formatIPv6, parseIPv6 } from '../../../src/net/ipv6.js';
import { readU32 } from '../../../src/net/bytes.js';
import { SourceBook } from '../../../src/shm/source-book.js';

const words = (text: string): [number, number, number, number] => {
  const b = parseIPv6(text);
  return [readU32(b, 0), readU32(b, 4), readU32(b, 8), readU32(b, 12)];
};

test('the address behind an identity, from another view of the same memory; a newer source in the slot replaces it, and the older one is then unknown', (t) => {
  const memory = SourceBook.allocate(16);
  const writer = new SourceBook(memory);
  const reader = new SourceBook(memory);
  const out = new Uint8Array(16);
  writer.record(0xe0000003, ...words('fd00:10::101'));
  t.true(reader.lookup(0xe0000003, out));
  t.is(formatIPv6(out), 'fd00:10::101');
  t.false(reader.lookup(0xe0000004, out), 'never recorded');
  writer.record(0xe0000013, ...words('fd00:10::202')); // the same slot of 16
  t.true(reader.lookup(0xe0000013, out));
  t.is(formatIPv6(out), 'fd00:10::202');
  t.false(reader.lookup(0xe0000003, out), 'replaced: unknown, not the other address');
  t.throws(() => SourceBook.allocate(12), { message: /power of two/ });
});
