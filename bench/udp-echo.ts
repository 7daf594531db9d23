/**
 * The latency benchmark's UDP echo server: answers every datagram with the same bytes, and the
 * datagram `who` with the node's name (so a client learns which node owns its source address).
 *
 *   node dist/bench/udp-echo.js --name node2 --port 7007 --host 10.0.0.100 --host 10.0.0.2
 *
 * One socket per --host (default 0.0.0.0). A socket bound to 0.0.0.0 replies from the address
 * the route to the client picks (the node's own one), not from the VIP the request was sent
 * to: Node has no IP_PKTINFO. So the benchmark binds the VIP and the node's address each.
 * The VIP appears on the daemon's TAP only once it is up, so a bind that finds no such address
 * is retried. Prints `listening on HOST:PORT, ...` once every socket is bound.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';

const RETRY_MS = 100;
const GIVE_UP_MS = 60_000;

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: '' },
    port: { type: 'string', default: '7007' },
    host: { type: 'string', multiple: true },
  },
});
const name = Buffer.from(values.name ?? '');
const port = Number(values.port);
const hosts = values.host ?? ['0.0.0.0'];
const WHO = Buffer.from('who');

function bind(host: string): Promise<Socket> {
  const startedAt = Date.now();
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = createSocket('udp4');
      socket.once('error', (error: NodeJS.ErrnoException) => {
        socket.close();
        if (error.code === 'EADDRNOTAVAIL' && Date.now() - startedAt < GIVE_UP_MS) setTimeout(attempt, RETRY_MS);
        else reject(new Error(`udp-echo: bind ${host}:${port}: ${error.message}`));
      });
      socket.bind(port, host, () => {
        socket.removeAllListeners('error');
        socket.on('error', (error) => console.error(`udp-echo ${host}: ${error.message}`));
        socket.on('message', (message, from) => {
          socket.send(message.equals(WHO) ? name : message, from.port, from.address);
        });
        resolve(socket);
      });
    };
    attempt();
  });
}

try {
  await Promise.all(hosts.map(bind));
  console.log(`listening on ${hosts.map((h) => `${h}:${port}`).join(', ')}`);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
