import test from 'ava';
import { LnlbError } from '../../../src/errors.js';
import { parseHealthCheck } from '../../../src/health/check-spec.js';
import { parseConfigFile } from '../../../src/main/config-file.js';
import { resolveDaemonOptions } from '../../../src/main/options.js';
import { REPEAT_SEPARATOR } from '../../../src/main/options.js';

test('tcp://HOST:PORT: IPv4, a name or [IPv6], and a port', (t) => {
  t.deepEqual(parseHealthCheck('tcp://127.0.0.1:5432'), { kind: 'tcp', label: 'tcp://127.0.0.1:5432', host: '127.0.0.1', port: 5432 });
  t.like(parseHealthCheck('tcp://db.internal:5432'), { host: 'db.internal', port: 5432 });
  t.like(parseHealthCheck('tcp://[::1]:6379'), { host: '::1', port: 6379, label: 'tcp://[::1]:6379' });
  t.like(parseHealthCheck('TCP://127.0.0.1:1/'), { kind: 'tcp', port: 1 });
});

test('http://HOST[:PORT]/PATH: port 80 by default, the query kept, an expected status after #', (t) => {
  t.deepEqual(parseHealthCheck('http://10.0.0.100/'), { kind: 'http', label: 'http://10.0.0.100:80/', host: '10.0.0.100', port: 80, path: '/', expectStatus: undefined });
  t.like(parseHealthCheck('http://127.0.0.1:8080/healthz?deep=1'), { port: 8080, path: '/healthz?deep=1', label: 'http://127.0.0.1:8080/healthz?deep=1' });
  t.like(parseHealthCheck('http://127.0.0.1:8080'), { path: '/' });
  t.like(parseHealthCheck('http://127.0.0.1:8080/ready#204'), { path: '/ready', expectStatus: 204, label: 'http://127.0.0.1:8080/ready#204' });
});

test('exec:COMMAND: the rest of the value, spaces included', (t) => {
  t.deepEqual(parseHealthCheck('exec:pg_isready -h 127.0.0.1 -q'), { kind: 'exec', label: 'exec:pg_isready -h 127.0.0.1 -q', command: 'pg_isready -h 127.0.0.1 -q' });
});

test('a bad check is LNLB_ERR_HEALTH_BAD_CHECK naming the flag, the value and what is wrong', (t) => {
  const cases: [string, RegExp][] = [
    ['127.0.0.1:80', /no kind of check/],
    ['ftp://h:21', /unknown kind of check "ftp:"/],
    ['https://h/', /https is not checked/],
    ['tcp://h', /tcp:\/\/ needs a port/],
    ['tcp://h:80/path', /takes only HOST:PORT/],
    ['tcp://h:0', /from 1 to 65535, got 0/],
    ['tcp://h:70000', /not a URL/],
    ['http://h/#999', /from 100 to 599, got "999"/],
    ['http://h/#ok', /got "ok"/],
    ['http://user:pw@h/', /user or password/],
    ['exec:', /needs a command/],
    ['exec:   ', /needs a command/],
    ['http://', /not a URL|no host/],
  ];
  for (const [raw, why] of cases) {
    const err = t.throws(() => parseHealthCheck(raw), { instanceOf: LnlbError }, raw);
    t.is(err?.code, 'LNLB_ERR_HEALTH_BAD_CHECK', raw);
    t.true(err?.message.startsWith(`--health-check: ${JSON.stringify(raw)}: `), err?.message);
    t.regex(err?.message ?? '', why, raw);
    t.regex(err?.message ?? '', /expected tcp:\/\/HOST:PORT, http:\/\/HOST\[:PORT\]\/PATH\[#STATUS\] or exec:COMMAND/);
  }
});

test('the options: repeatable checks, defaults 1000 ms / the interval / fall 3 / rise 2, the timeout at most the interval', (t) => {
  const base = { bind: 'eth0', vip: '10.0.0.100', keyFile: '/k' };
  const o = resolveDaemonOptions({ ...base, healthCheck: ['tcp://127.0.0.1:22', 'exec:true'].join(REPEAT_SEPARATOR) });
  t.deepEqual(o.healthCheck.map((c) => c.label), ['tcp://127.0.0.1:22', 'exec:true']);
  t.like(o, { healthIntervalMs: 1000, healthTimeoutMs: undefined, healthFall: 3, healthRise: 2 });
  t.deepEqual(resolveDaemonOptions(base).healthCheck, []);
  const err = t.throws(() => resolveDaemonOptions({ ...base, healthIntervalMs: '100', healthTimeoutMs: '200' }), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CLI_BAD_FLAG');
  t.regex(err?.message ?? '', /^--health-timeout-ms: must be at most --health-interval-ms \(100\)/);
  for (const [key, value] of [['healthFall', '0'], ['healthRise', '101'], ['healthIntervalMs', '5']] as const) {
    t.throws(() => resolveDaemonOptions({ ...base, [key]: value }), { code: 'LNLB_ERR_CLI_BAD_FLAG' }, key);
  }
});

test('in the config file: health-check lines accumulate; a "#" without a space before it is the expected status, not a comment; a bad one names file and line', (t) => {
  const raw = parseConfigFile('health-check = http://127.0.0.1/ready#204   # the app\nhealth-check = tcp://127.0.0.1:5432\nhealth-fall = 2\n', '/etc/lnlb/lnlb.conf');
  const o = resolveDaemonOptions({ ...raw, bind: 'eth0', vip: '10.0.0.100', keyFile: '/k' });
  t.deepEqual(o.healthCheck.map((c) => c.label), ['http://127.0.0.1:80/ready#204', 'tcp://127.0.0.1:5432']);
  t.is(o.healthFall, 2);
  const err = t.throws(() => parseConfigFile('\nhealth-check = tcp://x\n', '/etc/lnlb/lnlb.conf'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_HEALTH_BAD_CHECK');
  t.regex(err?.message ?? '', /^\/etc\/lnlb\/lnlb\.conf:2: --health-check: "tcp:\/\/x": tcp:\/\/ needs a port/);
});
