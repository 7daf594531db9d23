import test from 'ava';
import { INSECURE_LOG_LINE, INSECURE_REPEAT_MS, warnInsecureNoAuth } from '../../../src/main/cluster-auth.js';

test('--insecure-no-auth is said as an error at once and again every interval (a minute by default), until the timer is cleared', async (t) => {
  t.is(INSECURE_REPEAT_MS, 60_000);
  t.true(INSECURE_LOG_LINE.startsWith('AUTH OFF (--insecure-no-auth): control plane NOT authenticated, any host on this LAN can take this cluster over'));
  const lines: { fields: unknown; message: string }[] = [];
  const log = { error: (fields: unknown, message: string) => void lines.push({ fields, message }) };
  const timer = warnInsecureNoAuth(log as unknown as Parameters<typeof warnInsecureNoAuth>[0], 20);
  t.is(lines.length, 1, 'at start, before any interval');
  t.deepEqual(lines[0], { fields: { event: 'insecure-no-auth', authenticated: false, insecure: true }, message: INSECURE_LOG_LINE });
  await new Promise((resolve) => setTimeout(resolve, 150));
  clearInterval(timer);
  const said = lines.length;
  t.true(said >= 3, `said ${said} times in 150 ms at a 20 ms interval`);
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(lines.length, said, 'nothing after the timer is cleared (the interface stopped)');
});
