/**
 * The daemon's end of the admin socket. A client that sends garbage gets an error line and is
 * disconnected; the server keeps serving everyone else.
 */

import { chmodSync, existsSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { isLnlbError, lnlbError } from '../errors.js';
import {
  ADMIN_MAX_LINE,
  ADMIN_PROTOCOL_VERSION,
  ADMIN_SOCKET_NAME,
  type AdminRequest,
  type AdminResponse,
} from './admin-protocol.js';

export type AdminCommandHandler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

function isRequest(value: unknown): value is AdminRequest {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r['v'] === 'number' && typeof r['id'] === 'number' && typeof r['cmd'] === 'string';
}

/** True when something answers on the socket: another daemon owns this run directory. */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export class AdminServer {
  readonly path: string;
  readonly #commands = new Map<string, AdminCommandHandler>();
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(runDir: string) {
    this.path = join(runDir, ADMIN_SOCKET_NAME);
  }

  register(cmd: string, handler: AdminCommandHandler): void {
    this.#commands.set(cmd, handler);
  }

  async listen(): Promise<void> {
    if (existsSync(this.path)) {
      if (await socketIsLive(this.path)) {
        throw lnlbError('LNLB_ERR_RUN_DIR_BUSY', `another lnlbd is serving ${this.path}: stop it, or give this daemon its own --run-dir`);
      }
      rmSync(this.path, { force: true }); // left by a daemon that was killed
    }
    const server = createServer((socket) => this.#serve(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600); // root-only: the admin socket changes the cluster
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      if (pending.length > ADMIN_MAX_LINE && !pending.includes('\n')) {
        this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: 'request line too long' } });
        socket.end();
        return;
      }
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() !== '') void this.#handleLine(socket, line);
      }
    });
  }

  async #handleLine(socket: Socket, line: string): Promise<void> {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: 'request is not JSON' } });
      socket.end();
      return;
    }
    if (!isRequest(request)) {
      this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: 'request needs numeric v and id and a string cmd' } });
      socket.end();
      return;
    }
    const { id } = request;
    if (request.v !== ADMIN_PROTOCOL_VERSION) {
      this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: `protocol version ${request.v} not supported (this lnlbd speaks ${ADMIN_PROTOCOL_VERSION}): use the lnlbctl of the same release` } });
      return;
    }
    const handler = this.#commands.get(request.cmd);
    if (!handler) {
      this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: `unknown command ${JSON.stringify(request.cmd)}` } });
      return;
    }
    try {
      const result = await handler(request.args ?? {});
      this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id, ok: true, result });
    } catch (err) {
      const code = isLnlbError(err) ? err.code : 'LNLB_ERR_CTL_PROTOCOL';
      this.#reply(socket, { v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: { code, message: (err as Error).message } });
    }
  }

  #reply(socket: Socket, response: AdminResponse): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
  }
}
