import test from 'ava';
import { readFileSync } from 'node:fs';
import { ErrorCodes, lnlbError, LnlbError } from '../../src/errors.js';

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
