/**
 * The latency benchmark's client: from one source address, `--warmup` then `--count`
 * sequential UDP request/response pairs to TARGET:PORT (the next request leaves when the reply
 * to the previous one is in), each timed with process.hrtime.bigint(). Prints one JSON line:
 * { count, lost, wrongSource, p50Us, p99Us, p999Us, minUs, maxUs, meanUs }.
 *
 *   node dist/bench/udp-rtt.js --source 10.0.0.101 --target 10.0.0.100 --port 7007 --count 20000
 *   node dist/bench/udp-rtt.js --source 10.0.0.101 --target 10.0.0.100 --who   (prints the server's name)
 *
 * A reply from any other address than TARGET counts as wrong (a server replying from its own
 * address for the VIP), a request unanswered within --timeout-ms as lost; both are left out of
 * the percentiles and counted.
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    source: { type: 'string' },
    target: { type: 'string' },
    port: { type: 'string', default: '7007' },
    count: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '200' },
    size: { type: 'string', default: '64' },
    'timeout-ms': { type: 'string', default: '1000' },
    who: { type: 'boolean', default: false },
  },
});
if (values.source === undefined || values.target === undefined) {
  console.error('usage: udp-rtt --source IP --target IP [--port P] [--count N] [--warmup N] [--size BYTES] [--timeout-ms MS] [--who]');
  process.exit(2);
}
const target = values.target;
const port = Number(values.port);
const count = Number(values.count);
const warmup = Number(values.warmup);
const timeoutMs = Number(values['timeout-ms']);
const payload = Buffer.alloc(Math.max(8, Number(values.size)));

const socket = createSocket('udp4');
await new Promise<void>((resolve, reject) => {
  socket.once('error', reject);
  socket.bind(0, values.source, () => resolve());
});

if (values.who) {
  // Up to 5 tries: the first may wait for ARP.
  for (let attempt = 0; attempt < 5; attempt++) {
    const reply = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.once('message', (message) => {
        clearTimeout(timer);
        resolve(message.toString());
      });
      socket.send('who', port, target);
    });
    if (reply !== undefined) {
      console.log(reply);
      socket.close();
      process.exit(0);
    }
  }
  console.error(`udp-rtt: no answer to "who" from ${target}:${port}`);
  process.exit(1);
}

const total = warmup + count;
const samples = new Float64Array(count);
let measured = 0;
let lost = 0;
let wrongSource = 0;
let seq = 0;
let sentAt = 0n;
let timer: NodeJS.Timeout | undefined;

const done = new Promise<void>((resolve) => {
  const sendNext = (): void => {
    if (seq === total) {
      resolve();
      return;
    }
    seq += 1;
    payload.writeUInt32BE(seq, 0);
    timer = setTimeout(() => {
      if (seq > warmup) lost += 1;
      sendNext();
    }, timeoutMs);
    sentAt = process.hrtime.bigint();
    socket.send(payload, port, target);
  };
  socket.on('message', (message, from) => {
    const at = process.hrtime.bigint();
    if (message.length < 4 || message.readUInt32BE(0) !== seq) return; // late: already counted lost
    if (from.address !== target) {
      wrongSource += 1;
      return; // the timer counts it lost as well
    }
    clearTimeout(timer);
    if (seq > warmup) samples[measured++] = Number(at - sentAt) / 1000;
    sendNext();
  });
  sendNext();
});
await done;
socket.close();

const sorted = samples.subarray(0, measured).sort();
const at = (q: number): number => (measured === 0 ? Number.NaN : (sorted[Math.min(measured - 1, Math.max(0, Math.ceil(q * measured) - 1))] ?? Number.NaN));
let sum = 0;
for (const v of sorted) sum += v;
console.log(
  JSON.stringify({
    count: measured,
    lost,
    wrongSource,
    p50Us: at(0.5),
    p99Us: at(0.99),
    p999Us: at(0.999),
    minUs: sorted[0] ?? Number.NaN,
    maxUs: sorted[measured - 1] ?? Number.NaN,
    meanUs: measured === 0 ? Number.NaN : sum / measured,
  }),
);
