/**
 * The lab's UDP echo server: answers every datagram with `<name> <the datagram's bytes>`, so a
 * client learns which cluster node answered each datagram it sent (a sequence number in the
 * datagram comes back beside the node's name).
 *
 *   node dist/lab/udp-echo-server.js --name node2 --host 10.0.0.100 --port 7007
 *
 * Bound to the VIP, so replies leave from the VIP (Node has no IP_PKTINFO: a socket on 0.0.0.0
 * would answer from the node's own address). It is started before the daemon has put the VIP on
 * its TAP, so a bind that finds no such address is retried. Prints `listening on HOST:PORT`.
 * (bench/udp-echo.ts is the latency benchmark's: it echoes the bytes alone.)
 */
import { createSocket } from 'node:dgram';
import { BIND_GIVE_UP_MS as GIVE_UP_MS, BIND_RETRY_MS as RETRY_MS, parseServerArgs } from './server-args.js';

const values = parseServerArgs('udp-echo-server', 7007);
const prefix = Buffer.from(`${values.name} `);
const { host, port } = values;
const startedAt = Date.now();

function bind(): void {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.once('error', (error: NodeJS.ErrnoException) => {
    socket.close();
    if (error.code === 'EADDRNOTAVAIL' && Date.now() - startedAt < GIVE_UP_MS) {
      setTimeout(bind, RETRY_MS);
      return;
    }
    console.error(`udp-echo-server ${values.name}: bind ${host}:${port}: ${error.message}`);
    process.exit(1);
  });
  socket.bind(port, host, () => {
    socket.removeAllListeners('error');
    socket.on('error', (error) => console.error(`udp-echo-server ${values.name}: ${error.message}`));
    socket.on('message', (message, from) => socket.send(Buffer.concat([prefix, message]), from.port, from.address));
    console.log(`listening on ${host}:${port}`);
  });
}
bind();

// Nothing to flush: answer the lab's SIGTERM with a clean exit code.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
