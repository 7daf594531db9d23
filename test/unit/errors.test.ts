import test from 'ava';
import { readFileSync } from 'node:fs';
import { ErrorCodes, lnlbError, LnlbError, reviveError, serializeError } from '../../src/errors.js';

test('every error code is documented in docs/errors.md', (t) => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const undocumented = Object.keys(ErrorCodes).filter((code) => !doc.includes(`\`${code}\``));
  t.deepEqual(undocumented, []);
});

test('codes follow LNLB_ERR_<AREA>_<WHAT>', (t) => {
  for (const code of Object.keys(ErrorCodes)) t.regex(code, /^LNLB_ERR_[A-Z]+_[A-Z_]+$/);
});

test('the factory keeps code, message and cause', (t) => {
  const cause = new Error('EPERM');
  const err = lnlbError('LNLB_ERR_PRIV_MISSING', 'lnlbd needs CAP_NET_ADMIN', { cause, errno: 'EPERM' });
  t.true(err instanceof LnlbError);
  t.is(err.code, 'LNLB_ERR_PRIV_MISSING');
  t.is(err.errno, 'EPERM');
  t.is(err.cause, cause);
});

test('serializeError/reviveError carry code, message, errno and cause across a structured clone', (t) => {
  const original = lnlbError('LNLB_ERR_PORT_IO', 'ringRead on eth0 failed: check the link', { cause: new Error('ENXIO: no such device'), errno: 'ENXIO' });
  // What postMessage does to it: structured clone, which drops an Error's class and code.
  const crossed = structuredClone(serializeError(original, 'dispatcher'));
  const revived = reviveError(crossed);
  t.true(revived instanceof LnlbError);
  t.is(revived.code, 'LNLB_ERR_PORT_IO');
  t.is(revived.message, 'dispatcher: ringRead on eth0 failed: check the link');
  t.is(revived.errno, 'ENXIO');
  t.is((revived.cause as Error).message, 'ENXIO: no such device');
  // The clone of the Error itself loses the code: why the pair exists.
  t.is((structuredClone(original) as { code?: string }).code, undefined);
});

test('an error without a known code is revived with the receiver\'s fallback; a system error keeps its errno', (t) => {
  const plain = reviveError(structuredClone(serializeError(new RangeError('slot out of range'), 'bond thread')), 'LNLB_ERR_WORKER_FAILED');
  t.is(plain.code, 'LNLB_ERR_WORKER_FAILED');
  t.is(plain.message, 'bond thread: slot out of range');
  t.is(plain.errno, undefined);
  const system = Object.assign(new Error('EACCES: permission denied, open /run/lnlb/x'), { code: 'EACCES', errno: -13 });
  const revived = reviveError(serializeError(system), 'LNLB_ERR_SYS_SYSCTL');
  t.is(revived.code, 'LNLB_ERR_SYS_SYSCTL');
  t.is(revived.errno, 'EACCES');
  // A code this build does not know (a newer thread or daemon), and a bare string, still revive.
  t.is(reviveError({ code: 'LNLB_ERR_FUTURE_THING', message: 'x' }, 'LNLB_ERR_CTL_PROTOCOL').code, 'LNLB_ERR_CTL_PROTOCOL');
  t.is(reviveError('bond thread: gone').message, 'bond thread: gone');
  t.is(serializeError('a thrown string').message, 'a thrown string');
});
