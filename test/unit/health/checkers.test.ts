import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseHealthCheck } from '../../../src/health/check-spec.js';
import { execCheck, functionCheck, runCheck } from '../../../src/health/checkers.js';

async function listen<S extends Server | HttpServer>(server: S): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}
const close = (server: Server | HttpServer): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

test('tcp: a listening port passes; the same port closed fails with the errno', async (t) => {
  const server = createServer((socket) => socket.destroy());
  const port = await listen(server);
  const up = await runCheck(parseHealthCheck(`tcp://127.0.0.1:${port}`), 1000);
  t.true(up.ok, up.detail);
  t.regex(up.detail, /^connected in \d+ ms$/);
  await close(server);
  const down = await runCheck(parseHealthCheck(`tcp://127.0.0.1:${port}`), 1000);
  t.deepEqual([down.ok, down.detail], [false, 'connect ECONNREFUSED']);
});

test('http: 2xx and 3xx pass, 4xx and 5xx fail; #STATUS wants exactly that one; the path and query reach the server', async (t) => {
  const paths: string[] = [];
  const server = createHttpServer((req, res) => {
    paths.push(req.url ?? '');
    const status = Number(/^\/(\d{3})/.exec(req.url ?? '')?.[1] ?? 200);
    res.writeHead(status, status === 302 ? { location: '/elsewhere' } : {}).end('body');
  });
  const port = await listen(server);
  const check = async (path: string): Promise<[boolean, string]> => {
    const o = await runCheck(parseHealthCheck(`http://127.0.0.1:${port}${path}`), 1000);
    return [o.ok, o.detail.replace(/ in \d+ ms/, '')];
  };
  t.deepEqual(await check('/200?deep=1'), [true, '200']);
  t.deepEqual(await check('/302'), [true, '302']);
  t.deepEqual(await check('/404'), [false, '404 (expected 2xx or 3xx)']);
  t.deepEqual(await check('/503'), [false, '503 (expected 2xx or 3xx)']);
  t.deepEqual(await check('/204#204'), [true, '204']);
  t.deepEqual(await check('/200#204'), [false, '200 (expected 204)']);
  t.deepEqual(await check('/503#503'), [true, '503']);
  t.deepEqual(paths.slice(0, 2), ['/200?deep=1', '/302']);
  await close(server);
  t.deepEqual(await check('/'), [false, 'GET ECONNREFUSED']);
});

test('http: a server that accepts but never answers fails at the timeout', async (t) => {
  const server = createHttpServer(() => undefined); // never answers
  const port = await listen(server);
  const started = performance.now();
  const o = await runCheck(parseHealthCheck(`http://127.0.0.1:${port}/`), 150);
  t.deepEqual([o.ok, o.detail], [false, 'timeout after 150 ms']);
  t.true(performance.now() - started < 1000);
  server.closeAllConnections();
  await close(server);
});

test('exec: exit 0 passes; another status fails with the last line of stderr', async (t) => {
  t.deepEqual(await execCheck('true', 2000).then((o) => [o.ok, o.detail]), [true, 'exit 0']);
  t.deepEqual(await execCheck('echo starting >&2; echo "database down" >&2; exit 3', 2000).then((o) => [o.ok, o.detail]), [false, 'exit 3: database down']);
  t.deepEqual(await execCheck('/nonexistent/check', 2000).then((o) => o.ok), false);
});

test('exec: at the timeout the command and what it started are killed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-health-'));
  try {
    const pidFile = join(dir, 'pid');
    const o = await execCheck(`sleep 30 & echo $! > ${pidFile}; wait`, 300);
    t.deepEqual([o.ok, o.detail], [false, 'timeout after 300 ms']);
    t.true(existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await sleep(100);
    // Gone, or a zombie waiting for an init that may not reap (a container's): not running.
    const state = existsSync(`/proc/${pid}/stat`) ? (/\) (\w) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?') : 'gone';
    t.true(state === 'gone' || state === 'Z', `the background sleep was killed with its shell (state ${state})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('function: true passes; false, a throw and the timeout fail; the signal is aborted at the timeout', async (t) => {
  t.deepEqual(await functionCheck(async () => true, 500).then((o) => [o.ok, o.detail]), [true, 'true']);
  t.deepEqual(await functionCheck(() => false, 500).then((o) => [o.ok, o.detail]), [false, 'returned false']);
  t.deepEqual(
    await functionCheck(async () => {
      throw new Error('pool exhausted');
    }, 500).then((o) => [o.ok, o.detail]),
    [false, 'threw: pool exhausted'],
  );
  let aborted = false;
  const o = await functionCheck((signal) => new Promise<boolean>(() => signal.addEventListener('abort', () => (aborted = true))), 100);
  t.deepEqual([o.ok, o.detail], [false, 'timeout after 100 ms']);
  t.true(aborted);
});
