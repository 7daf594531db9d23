/**
 * The lab's HTTP server: answers every request with `{"node":"<name>","client":"<source ip>"}`,
 * so a client learns which cluster node served it and the node confirms it saw the real source.
 *
 *   node dist/lab/http-echo-server.js --name node2 --host 10.0.0.100 --port 80
 *
 * `GET /stream?lines=N&everyMs=M` instead streams N lines `<i> <name>\n` (i = 1..N), one every M
 * ms, then ends the response: one long-lived connection whose every line says which node wrote
 * it (defaults 100 lines, every 50 ms; at most 100 000 lines, every 1..60 000 ms).
 *
 * It is started before the daemon has put the VIP on its TAP, and Node has no IP_FREEBIND, so
 * it retries the bind while the address does not exist yet. Prints `listening on HOST:PORT`.
 */
import { createServer, type ServerResponse } from 'node:http';
import { BIND_GIVE_UP_MS as GIVE_UP_MS, BIND_RETRY_MS as RETRY_MS, parseServerArgs } from './server-args.js';

const { name, host, port } = parseServerArgs('http-echo-server', 80);

/** A whole number in [min, max] from a query parameter, or `fallback` when it is absent or not one. */
function intParam(params: URLSearchParams, key: string, fallback: number, min: number, max: number): number {
  const raw = params.get(key);
  if (raw === null || !/^\d+$/.test(raw)) return fallback;
  return Math.min(max, Math.max(min, Number(raw)));
}

function stream(params: URLSearchParams, response: ServerResponse): void {
  const lines = intParam(params, 'lines', 100, 1, 100_000);
  const everyMs = intParam(params, 'everyMs', 50, 1, 60_000);
  response.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
  let sent = 0;
  const timer = setInterval(() => {
    sent += 1;
    response.write(`${sent} ${name}\n`);
    if (sent >= lines) {
      clearInterval(timer);
      response.end();
    }
  }, everyMs);
  // The client went away: stop writing into a closed socket.
  response.on('close', () => clearInterval(timer));
}

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://lab');
  if (url.pathname === '/stream') {
    stream(url.searchParams, response);
    return;
  }
  const body = `${JSON.stringify({ node: name, client: request.socket.remoteAddress ?? '' })}\n`;
  // One request per connection: each curl is a fresh flow, as the tests mean it to be.
  response.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
  response.end(body);
});

const startedAt = Date.now();
server.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EADDRNOTAVAIL' && Date.now() - startedAt < GIVE_UP_MS) {
    setTimeout(() => server.listen(port, host), RETRY_MS);
    return;
  }
  console.error(`http-echo-server ${name}: ${error.message}`);
  process.exit(1);
});
server.on('listening', () => console.log(`listening on ${host}:${port}`));
server.listen(port, host);

// Nothing to flush: answer the lab's SIGTERM with a clean exit code.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
