import test from 'ava';
import { CAP_NET_ADMIN, CAP_NET_RAW, effectiveCapabilities, missingCapabilities } from '../../../src/main/capabilities.js';

test('reads CapEff and names the missing capabilities', (t) => {
  const onlyRaw = effectiveCapabilities('Name:\tnode\nCapEff:\t0000000000002000\n');
  t.deepEqual(missingCapabilities([CAP_NET_ADMIN, CAP_NET_RAW], onlyRaw), ['CAP_NET_ADMIN']);
  const root = effectiveCapabilities('CapEff:\t000001ffffffffff\n');
  t.deepEqual(missingCapabilities([CAP_NET_ADMIN, CAP_NET_RAW], root), []);
  t.deepEqual(missingCapabilities([CAP_NET_ADMIN, CAP_NET_RAW], 0n), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
});
