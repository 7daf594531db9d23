import test from 'ava';
import { chooseDeviceName, DEVICE_NAME_TRIES } from '../../../src/main/daemon.js';

test('nlb%d: the lowest number that neither this daemon, the kernel nor another daemon (the claim) has', (t) => {
  const kernel = new Set(['nlb0', 'nlb2']);
  const claimedByOthers = new Set(['nlb1']);
  const asked: string[] = [];
  const name = chooseDeviceName('nlb%d', (n) => kernel.has(n), (n) => {
    asked.push(n);
    return !claimedByOthers.has(n);
  });
  t.is(name, 'nlb3');
  t.deepEqual(asked, ['nlb1', 'nlb3'], 'names the kernel has are not even claimed');
});

test('a plain name: itself when free, nothing when taken', (t) => {
  t.is(chooseDeviceName('lb', () => false, () => true), 'lb');
  t.is(chooseDeviceName('lb', (n) => n === 'lb', () => true), undefined);
  t.is(chooseDeviceName('lb', () => false, () => false), undefined);
});

test(`nlb%d gives up after ${DEVICE_NAME_TRIES} names`, (t) => {
  let tries = 0;
  t.is(chooseDeviceName('nlb%d', () => {
    tries++;
    return true;
  }, () => true), undefined);
  t.is(tries, DEVICE_NAME_TRIES);
});
