import test from 'ava';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '../../../src/main/admin-client.js';
import { AdminServer } from '../../../src/main/admin-server.js';
import { LnlbError } from '../../../src/errors.js';

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
