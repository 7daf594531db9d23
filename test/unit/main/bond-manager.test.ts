import test from 'ava';
import { parseSavedSlaves } from '../../../src/main/bond-manager.js';

test('bond-slaves.json: entries of the shape lnlb writes are kept', (t) => {
  const { slaves, ignored } = parseSavedSlaves(JSON.stringify({ 'eth1.100': { bond: 'bond0', mac: '52:54:00:12:34:56', set: '02:11:22:33:44:55', up: false } }));
  t.deepEqual(ignored, []);
  t.deepEqual(slaves.get('eth1.100'), { bond: 'bond0', mac: '52:54:00:12:34:56', set: '02:11:22:33:44:55', up: false });
});

test('bond-slaves.json: bad names, multicast or zero MACs, missing fields and other shapes are ignored, each named', (t) => {
  const good = { bond: 'bond0', mac: '52:54:00:12:34:56', set: '02:11:22:33:44:55', up: true };
  const { slaves, ignored } = parseSavedSlaves(
    JSON.stringify({
      '../x': good,
      'a very long device name': good,
      eth2: { ...good, mac: '01:00:5e:00:00:01' },
      eth3: { ...good, set: 'ff:ff:ff:ff:ff:ff' },
      eth4: { ...good, mac: '00:00:00:00:00:00' },
      eth5: { ...good, bond: 'bond/0' },
      eth6: { bond: 'bond0', mac: '52:54:00:12:34:56', up: true }, // older lnlb: no record of the MAC it set
      eth7: { ...good, up: 'yes' },
      eth8: 'x',
      eth9: good,
    }),
  );
  t.deepEqual([...slaves.keys()], ['eth9']);
  t.is(ignored.length, 9);
  t.regex(ignored.join('\n'), /"\.\.\/x": not a device name/);
  t.regex(ignored.join('\n'), /eth2: not a unicast MAC/);
  t.regex(ignored.join('\n'), /eth6: not a unicast MAC/);
  t.regex(ignored.join('\n'), /eth7: not an entry lnlb writes/);
});

test('bond-slaves.json that is not a JSON object is ignored whole', (t) => {
  t.deepEqual(parseSavedSlaves('[1]').ignored, ['the file is not a JSON object']);
  t.deepEqual(parseSavedSlaves('{').ignored, ['the file is not JSON']);
});
