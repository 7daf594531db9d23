import test from 'ava';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { adminRequest } from '../../../src/main/admin-client.js';
import { ADMIN_MAX_LINE } from '../../../src/main/admin-protocol.js';
import { ADMIN_MAX_IN_FLIGHT, AdminServer } from '../../../src/main/admin-server.js';
import { LnlbError, lnlbError } from '../../../src/errors.js';

function rawExchange(path: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\n')) {
        socket.destroy();
        resolve(data.trim());
      }
    });
    socket.on('error', reject);
  });
}

test('answers commands, survives garbage, and is root-only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-admin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = new AdminServer(dir);
  server.register('status', () => ({ interfaces: [] }));
  server.register('boom', () => {
    throw new Error('it broke');
  });
  await server.listen();
  t.teardown(() => server.close());
  t.is(statSync(server.path).mode & 0o777, 0o600);

  t.deepEqual(await adminRequest(dir, 'status'), { interfaces: [] });
  const garbage = JSON.parse(await rawExchange(server.path, 'not json at all\n')) as { ok: boolean; error: { code: string } };
  t.false(garbage.ok);
  t.is(garbage.error.code, 'LNLB_ERR_CTL_PROTOCOL');
  const wrongVersion = JSON.parse(await rawExchange(server.path, '{"v":99,"id":3,"cmd":"status"}\n')) as { ok: boolean; error: { message: string } };
  t.false(wrongVersion.ok);
  t.regex(wrongVersion.error.message, /protocol version 99/);
  await t.throwsAsync(adminRequest(dir, 'nope'), { message: /unknown command "nope"/ });
  await t.throwsAsync(adminRequest(dir, 'boom'), { message: /it broke/ });
  // Still serving after all that.
  t.deepEqual(await adminRequest(dir, 'status'), { interfaces: [] });
});

test('a second daemon on the same run directory is refused; a stale socket is replaced', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-admin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = new AdminServer(dir);
  await first.listen();
  const second = new AdminServer(dir);
  const err = await t.throwsAsync(second.listen(), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_RUN_DIR_BUSY');
  await first.close();
  const third = new AdminServer(dir);
  await third.listen();
  await third.close();
});

test('lnlbctl with no daemon says to start one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-admin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const err = await t.throwsAsync(adminRequest(dir, 'status'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_CTL_NO_DAEMON');
  t.regex(err?.message ?? '', /start it with lnlbd/);
});

/** Heap and buffers together: where unread replies live (strings on the heap, Buffers outside). */
function memoryBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A status reply of realistic weight: a daemon with several interfaces, actors and handlers (~100 KB of JSON). */
function bigStatus(): unknown {
  return { interfaces: Array.from({ length: 40 }, (_, i) => ({ name: `nlb${i}`, counters: Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`counter${k}`, k * 1000 + i])) })) };
}

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lnlb-admin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function connected(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

test.serial('1000 pipelined status from a client that never reads: memory stays bounded, others are served', async (t) => {
  const dir = tempDir(t);
  const server = new AdminServer(dir);
  let answered = 0;
  server.register('status', () => {
    answered++;
    return bigStatus();
  });
  await server.listen();
  t.teardown(() => server.close());
  const replyBytes = JSON.stringify(bigStatus()).length;

  const before = memoryBytes();
  const flooder = await connected(server.path);
  flooder.pause(); // never reads
  flooder.write(Array.from({ length: 1000 }, (_, i) => `{"v":1,"id":${i + 1},"cmd":"status"}\n`).join(''));
  // Let the server do all it will: it stops once the socket's buffers are full.
  let last = -1;
  while (answered !== last) {
    last = answered;
    await sleep(200);
  }
  const grown = memoryBytes() - before;
  t.log(`replies of ${Math.round(replyBytes / 1024)} KB: ${answered} of 1000 answered while the client does not read, memory +${(grown / 1048576).toFixed(1)} MB (unbounded: ~${Math.round((1000 * replyBytes) / 1048576)} MB of replies)`);
  t.true(server.stats.pausedForWrite > 0, 'reading paused on a full socket');
  t.true(answered < 100, `${answered} requests served to a client that reads nothing`);
  t.true(grown < 24 * 1048576, `memory grew ${grown} bytes`);

  // Another client is served at once.
  const started = performance.now();
  t.truthy(await adminRequest(dir, 'status', {}, 2000));
  t.true(performance.now() - started < 1000);

  // Once the flooder reads, every one of its requests is answered, in full.
  const ids = new Set<number>();
  await new Promise<void>((resolve) => {
    let buffered = '';
    flooder.setEncoding('utf8');
    flooder.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        ids.add((JSON.parse(buffered.slice(0, nl)) as { id: number }).id);
        buffered = buffered.slice(nl + 1);
      }
      if (ids.size === 1000) resolve();
    });
    flooder.resume();
  });
  flooder.destroy();
  t.is(ids.size, 1000);
});

test('at most 16 requests run at once on a connection; the others wait and are all answered', async (t) => {
  const dir = tempDir(t);
  const server = new AdminServer(dir);
  let running = 0;
  let most = 0;
  server.register('slow', async () => {
    running++;
    most = Math.max(most, running);
    await sleep(20);
    running--;
    return { ok: true };
  });
  await server.listen();
  t.teardown(() => server.close());
  const socket = await connected(server.path);
  t.teardown(() => socket.destroy());
  socket.write(Array.from({ length: 100 }, (_, i) => `{"v":1,"id":${i + 1},"cmd":"slow"}\n`).join(''));
  let lines = 0;
  await new Promise<void>((resolve) => {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      lines += chunk.split('\n').length - 1;
      if (lines === 100) resolve();
    });
  });
  t.is(most, ADMIN_MAX_IN_FLIGHT);
  t.is(lines, 100);
});

test('an idle connection is closed after the timeout; one with a request in progress is not', async (t) => {
  const dir = tempDir(t);
  const server = new AdminServer(dir, { idleTimeoutMs: 300 });
  server.register('wait', async () => {
    await sleep(900);
    return { waited: true };
  });
  await server.listen();
  t.teardown(() => server.close());
  const closedAfter = async (socket: Socket): Promise<{ ms: number; text: string }> => {
    const started = performance.now();
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    await new Promise((resolve) => socket.once('close', resolve));
    return { ms: performance.now() - started, text };
  };
  // Silent, and trickling half a request: both idle (a partial line is no activity).
  const silent = await connected(server.path);
  const trickler = await connected(server.path);
  const trickle = setInterval(() => trickler.write('{'), 50);
  t.teardown(() => clearInterval(trickle));
  const [a, b] = await Promise.all([closedAfter(silent), closedAfter(trickler)]);
  clearInterval(trickle);
  for (const closed of [a, b]) {
    t.true(closed.ms >= 250 && closed.ms < 2000, `closed after ${closed.ms} ms`);
    t.regex(closed.text, /"code":"LNLB_ERR_CTL_PROTOCOL".*no request for/);
  }
  t.is(server.stats.idleClosed, 2);
  // A request that runs three times the timeout (drainstop --wait) is answered.
  t.deepEqual(await adminRequest(dir, 'wait', {}, 5000), { waited: true });
  t.is(server.stats.idleClosed, 2);
});

test('a request line over the cap gets an error and the connection is closed', async (t) => {
  const dir = tempDir(t);
  const server = new AdminServer(dir);
  server.register('status', () => ({}));
  await server.listen();
  t.teardown(() => server.close());
  const answer = JSON.parse(await rawExchange(server.path, `{"v":1,"id":1,"cmd":"status","args":{"x":"${'a'.repeat(ADMIN_MAX_LINE + 10)}"}}\n`)) as { ok: boolean; error: { code: string; message: string } };
  t.false(answer.ok);
  t.is(answer.error.code, 'LNLB_ERR_CTL_PROTOCOL');
  t.regex(answer.error.message, /longer than 65536 bytes/);
  t.is(server.stats.oversizeClosed, 1);
  t.deepEqual(await adminRequest(dir, 'status'), {});
});

test('an LnlbError from a command reaches the client with its code and errno', async (t) => {
  const dir = tempDir(t);
  const server = new AdminServer(dir);
  server.register('enslave', () => {
    throw lnlbError('LNLB_ERR_BOND_SLAVE', 'eth9: bond0 has 32 slaves already', { errno: 'ENOSPC' });
  });
  await server.listen();
  t.teardown(() => server.close());
  const err = await t.throwsAsync(adminRequest(dir, 'enslave'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_BOND_SLAVE');
  t.is(err?.errno, 'ENOSPC');
});
