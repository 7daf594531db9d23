/** lnlbctl's end of the admin socket: one request, one response. */

import { connect } from 'node:net';
import { join } from 'node:path';
import { isErrorCode, lnlbError, reviveError } from '../errors.js';
import { ADMIN_PROTOCOL_VERSION, ADMIN_SOCKET_NAME, type AdminResponse } from './admin-protocol.js';

export async function adminRequest(runDir: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
  const path = join(runDir, ADMIN_SOCKET_NAME);
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(lnlbError('LNLB_ERR_CTL_PROTOCOL', `lnlbd at ${path} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify({ v: ADMIN_PROTOCOL_VERSION, id: 1, cmd, args })}\n`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(lnlbError('LNLB_ERR_CTL_NO_DAEMON', `no lnlbd is running at ${runDir} (${err.code}): start it with lnlbd --bind DEV --vip IP, or pass the daemon's --run-dir`));
      } else if (err.code === 'EACCES') {
        reject(lnlbError('LNLB_ERR_PRIV_MISSING', `permission denied on ${path}: the admin socket is root-only, run lnlbctl as root`));
      } else {
        reject(lnlbError('LNLB_ERR_CTL_PROTOCOL', `admin socket ${path}: ${err.message}`));
      }
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      socket.end();
      let response: AdminResponse;
      try {
        response = JSON.parse(buffered.slice(0, newline)) as AdminResponse;
      } catch {
        reject(lnlbError('LNLB_ERR_CTL_PROTOCOL', 'lnlbd answered with something that is not JSON'));
        return;
      }
      if (response.ok) resolve(response.result);
      else if (isErrorCode(response.error.code)) reject(reviveError(response.error, 'LNLB_ERR_CTL_PROTOCOL'));
      else reject(lnlbError('LNLB_ERR_CTL_PROTOCOL', `${response.error.code}: ${response.error.message}`)); // a newer daemon's code
    });
  });
}
