/**
 * The daemon's end of the admin socket. A client that sends garbage gets an error line and is
 * disconnected; the server keeps serving everyone else. Every connection is bounded: at most
 * ADMIN_MAX_IN_FLIGHT requests run at once (further ones wait, and the socket is not read
 * meanwhile); nothing more is read while a reply cannot be written (a client that never reads
 * holds a handful of replies, not one per request it sent); a request line is at most
 * ADMIN_MAX_LINE; a connection with no request in progress and no complete request for the
 * idle timeout is closed. lnlbctl opens one connection per request (`status --watch` too), so
 * only a long request (drainstop --wait) keeps a connection, and a request in progress is
 * never timed out.
 */

import { chmodSync, existsSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { lnlbError, serializeError } from '../errors.js';
import {
  ADMIN_MAX_LINE,
  ADMIN_PROTOCOL_VERSION,
  ADMIN_SOCKET_NAME,
  RawJson,
  type AdminRequest,
  type AdminResponse,
} from './admin-protocol.js';

/** Requests run at once on one connection; further pipelined ones wait for a slot. */
export const ADMIN_MAX_IN_FLIGHT = 16;
/** A connection without a request for this long is closed. */
export const ADMIN_IDLE_TIMEOUT_MS = 60_000;

export interface AdminServerLimits {
  idleTimeoutMs?: number;
  maxInFlight?: number;
}

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
  readonly #idleTimeoutMs: number;
  readonly #maxInFlight: number;
  /** Connections closed (idle, line too long), and times reading paused (all slots busy, a reply not written). */
  readonly stats = { idleClosed: 0, oversizeClosed: 0, pausedForSlots: 0, pausedForWrite: 0 };

  constructor(runDir: string, limits: AdminServerLimits = {}) {
    this.path = join(runDir, ADMIN_SOCKET_NAME);
    this.#idleTimeoutMs = limits.idleTimeoutMs ?? ADMIN_IDLE_TIMEOUT_MS;
    this.#maxInFlight = limits.maxInFlight ?? ADMIN_MAX_IN_FLIGHT;
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
    /** Complete lines read but not started (a slot or the client's reading is awaited). */
    const waiting: string[] = [];
    let partial = '';
    let inFlight = 0;
    /** The last write did not fit: nothing new starts and nothing is read until 'drain'. */
    let writeBlocked = false;
    /** A protocol error ended the conversation: the rest of what the client sent is ignored. */
    let ending = false;
    let idleTimer: NodeJS.Timeout | undefined;

    const reply = (response: AdminResponse): void => {
      if (socket.destroyed || socket.writableEnded) return;
      let fits: boolean;
      if (response.ok && response.result instanceof RawJson) {
        // The result is JSON text already: the response around it, without parsing it back.
        const { result, ...head } = response;
        socket.write(`${JSON.stringify(head).slice(0, -1)},"result":`);
        socket.write(result.bytes);
        fits = socket.write('}\n');
      } else {
        fits = socket.write(`${JSON.stringify(response)}\n`);
      }
      if (!fits) {
        writeBlocked = true;
        this.stats.pausedForWrite++;
        pump();
      }
    };
    const fail = (message: string): void => {
      reply({ v: ADMIN_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message } });
      ending = true;
      waiting.length = 0;
      socket.end();
    };
    // Idle: no request in progress and none waiting. The clock starts when the connection
    // becomes idle and only a complete request stops it: a partial line is no activity.
    const armIdle = (): void => {
      if (inFlight > 0 || waiting.length > 0 || ending) {
        clearTimeout(idleTimer);
        idleTimer = undefined;
        return;
      }
      if (idleTimer !== undefined) return;
      idleTimer = setTimeout(() => {
        idleTimer = undefined;
        this.stats.idleClosed++;
        // A client that does not read would keep an ended socket (and its unread replies) open.
        if (socket.writableLength > 0) socket.destroy();
        else fail(`no request for ${Math.round(this.#idleTimeoutMs / 1000)} s: connection closed`);
      }, this.#idleTimeoutMs);
      idleTimer.unref();
    };
    const pump = (): void => {
      while (!ending && !writeBlocked && inFlight < this.#maxInFlight && waiting.length > 0) {
        const line = waiting.shift()!;
        inFlight++;
        this.#handleLine(line, reply, fail)
          .catch((err: unknown) => reply({ v: ADMIN_PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: `internal error: ${(err as Error).message}` } }))
          .finally(() => {
            inFlight--;
            pump();
          });
      }
      if (waiting.length > 0 && !ending && !writeBlocked) this.stats.pausedForSlots++;
      // Read more only when every line read so far has started and replies can be written.
      if (waiting.length === 0 && !writeBlocked) socket.resume();
      else socket.pause();
      armIdle();
    };

    socket.on('close', () => {
      clearTimeout(idleTimer);
      this.#sockets.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    socket.on('drain', () => {
      writeBlocked = false;
      pump();
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (ending) return;
      partial += chunk;
      let newline: number;
      while ((newline = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        if (line.length > ADMIN_MAX_LINE) {
          this.stats.oversizeClosed++;
          fail(`request line longer than ${ADMIN_MAX_LINE} bytes`);
          return;
        }
        if (line.trim() !== '') waiting.push(line);
      }
      if (partial.length > ADMIN_MAX_LINE) {
        this.stats.oversizeClosed++;
        fail(`request line longer than ${ADMIN_MAX_LINE} bytes`);
        return;
      }
      pump();
    });
    armIdle();
  }

  async #handleLine(line: string, reply: (response: AdminResponse) => void, fail: (message: string) => void): Promise<void> {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      fail('request is not JSON');
      return;
    }
    if (!isRequest(request)) {
      fail('request needs numeric v and id and a string cmd');
      return;
    }
    const { id } = request;
    if (request.v !== ADMIN_PROTOCOL_VERSION) {
      reply({ v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: `protocol version ${request.v} not supported (this lnlbd speaks ${ADMIN_PROTOCOL_VERSION}): use the lnlbctl of the same release` } });
      return;
    }
    const handler = this.#commands.get(request.cmd);
    if (!handler) {
      reply({ v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: { code: 'LNLB_ERR_CTL_PROTOCOL', message: `unknown command ${JSON.stringify(request.cmd)}` } });
      return;
    }
    try {
      const result = await handler(request.args ?? {});
      reply({ v: ADMIN_PROTOCOL_VERSION, id, ok: true, result });
    } catch (err) {
      // The error as the thread or module raised it: its code reaches lnlbctl --json.
      const error = serializeError(err);
      reply({ v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: { ...error, code: error.code ?? 'LNLB_ERR_CTL_PROTOCOL' } });
    }
  }
}
