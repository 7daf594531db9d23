/**
 * An HTTP service that is its own load balancer: every host runs this same program, each
 * joins the cluster of the VIP in-process (`createNode` from 'lnlb'), and each answers the
 * clients the cluster gives it. No lnlbd, no balancer in front.
 *
 *   node dist/examples/http-service/server.js --bind eth0 --vip 10.0.0.100 --key-file FILE [--port 80]
 *        [--name NODE] [--run-dir DIR] [--heartbeat-ms MS] [--dead-after-ms MS]
 *        [--insecure-no-auth] [--metrics ADDR:PORT] [--drain-timeout S] [--drain-idle S] [--admin-socket]
 *        [--maintenance-file PATH] [--health-interval-ms MS]
 *
 * Every answer is JSON: `{ "node": NAME, "view": [members], "state": STATE }`, the members as
 * this node's status lists them. Membership events are printed one JSON line each. SIGTERM or
 * SIGINT drains (no new clients; the current ones finish, up to --drain-timeout seconds),
 * then closes the node (LEAVE, the TAP removed, the sysctls restored) and exits 0. When the
 * HTTP port cannot be had (in use, privileged), it says so on stderr, closes the node and
 * exits 1.
 *
 * With --maintenance-file, a health check of the service's own (a function, createNode's
 * `healthCheck`): while that file exists the node is unhealthy and leaves the cluster (the
 * other hosts take its clients), and it joins again once the file is gone (docs/health.md).
 */
import { access } from 'node:fs/promises';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createNode, isLnlbError, type LnlbNode, type LnlbNodeEvents, type LnlbNodeOptions } from 'lnlb';

const USAGE =
  'usage: server --bind DEV --vip IP --key-file FILE [--port N] [--name NODE] [--run-dir DIR] [--heartbeat-ms MS] [--dead-after-ms MS] [--insecure-no-auth] [--metrics ADDR:PORT] [--drain-timeout S] [--drain-idle S] [--admin-socket] [--maintenance-file PATH] [--health-interval-ms MS]';

const { values } = parseArgs({
  options: {
    bind: { type: 'string' },
    vip: { type: 'string' },
    port: { type: 'string', default: '80' },
    name: { type: 'string', default: hostname() },
    'run-dir': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'dead-after-ms': { type: 'string' },
    'key-file': { type: 'string' },
    'insecure-no-auth': { type: 'boolean', default: false },
    metrics: { type: 'string' },
    'drain-timeout': { type: 'string', default: '30' },
    'drain-idle': { type: 'string' },
    'admin-socket': { type: 'boolean', default: false },
    'maintenance-file': { type: 'string' },
    'health-interval-ms': { type: 'string' },
  },
});
if (values.bind === undefined || values.vip === undefined) {
  console.error(USAGE);
  process.exit(2);
}
const port = Number(values.port);
const drainTimeout = Number(values['drain-timeout']);
const drainIdle = values['drain-idle'] === undefined ? undefined : Number(values['drain-idle']);

const maintenanceFile = values['maintenance-file'];
/** Healthy unless the maintenance file exists: `touch` it to take this host out, `rm` it to bring it back. */
async function notInMaintenance(): Promise<boolean> {
  if (maintenanceFile === undefined) return true;
  return access(maintenanceFile).then(
    () => false,
    () => true,
  );
}

/** One JSON line on stdout: what the service saw, for people and for log collectors. */
function print(event: string, fields: object): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), event, ...fields }));
}

const options: LnlbNodeOptions = {
  bind: values.bind,
  vip: values.vip,
  // Numbers as given: createNode checks them as lnlbd checks its flags, naming the option.
  ...(values['heartbeat-ms'] === undefined ? {} : { heartbeatMs: Number(values['heartbeat-ms']) }),
  ...(values['dead-after-ms'] === undefined ? {} : { deadAfterMs: Number(values['dead-after-ms']) }),
  runDir: values['run-dir'],
  // The name the other nodes show beside this one's MAC (status, conntrack, their events); default: the host name.
  ...(values.name === hostname() ? {} : { nodeName: values.name }),
  // The cluster key (lnlbctl genkey FILE, the same file on every host); createNode refuses to
  // run without one unless told so (insecureNoAuth: labs only).
  keyFile: values['key-file'],
  ...(values['insecure-no-auth'] ? { insecureNoAuth: true } : {}),
  metrics: values.metrics,
  adminSocket: values['admin-socket'],
  ...(maintenanceFile === undefined ? {} : { healthCheck: notInMaintenance }),
  ...(values['health-interval-ms'] === undefined ? {} : { healthIntervalMs: Number(values['health-interval-ms']) }),
};

let node: LnlbNode;
try {
  node = await createNode(options);
} catch (err) {
  // LNLB_ERR_CLI_BAD_FLAG (an option), LNLB_ERR_AUTH_KEY_MISSING (no --key-file), LNLB_ERR_PRIV_MISSING (not root), ...
  console.error(isLnlbError(err) ? `${err.code}: ${err.message}` : err);
  process.exit(isLnlbError(err) && (err.code === 'LNLB_ERR_CLI_BAD_FLAG' || err.code === 'LNLB_ERR_AUTH_KEY_MISSING') ? 2 : 1);
}

// The typed events: each payload is checked by the compiler against LnlbNodeEvents.
const events = ['joined', 'left', 'died', 'converged', 'weight', 'state', 'health'] as const satisfies readonly (keyof LnlbNodeEvents)[];
for (const event of events) node.on(event, (payload: object) => print(event, payload));
node.on('converged', ({ nodes }) => print('view', { members: nodes.length }));
node.on('error', (err) => {
  // The node failed and was closed already (left the cluster, restored the host): go too.
  print('error', { code: err.code, message: err.message });
  process.exit(1);
});

const server = createServer((request, response) => {
  node.status().then(
    (status) => {
      const view = status.nodes.map((n) => ({ mac: n.mac, name: n.name, address: n.address, state: n.state, weight: n.weight, self: n.self, status: n.status }));
      response.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      response.end(`${JSON.stringify({ node: values.name, view, state: status.state })}\n`);
    },
    (err: Error) => {
      response.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
      response.end(`${JSON.stringify({ node: values.name, error: err.message })}\n`);
    },
  );
  request.resume();
});
/** Why a listen failed, and what to do about it, for the few reasons that have a remedy. */
function listenProblem(err: NodeJS.ErrnoException): string {
  const address = `${values.vip}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${address}: the port is in use on this host (another service listens on port ${port}, of the VIP or of every address: \`ss -ltnp 'sport = :${port}'\` names it): stop it, or give this service another --port`;
    case 'EACCES':
      return `cannot listen on ${address}: port ${port} is privileged: run as root, grant CAP_NET_BIND_SERVICE, or give a --port above 1023`;
    default:
      return `cannot listen on ${address}: ${err.message}`;
  }
}

// The VIP is on this node's TAP once createNode has resolved: the bind cannot race it.
server.listen(port, values.vip, () => print('listening', { address: `${values.vip}:${port}`, interface: node.interfaceName, metrics: node.metricsAddress ?? null }));
// A listen that fails (the port taken, say) is the service's own failure: say why, close the
// node (it joined already: LEAVE, the TAP removed, the sysctls restored) and exit 1. Without
// this listener, the 'error' would be thrown as an uncaught exception; lnlb would still
// restore the host's sysctls as the process exits, but the cluster would only learn that the
// node is gone once it had been silent --dead-after-ms.
server.on('error', (err: NodeJS.ErrnoException) => {
  if (server.listening) {
    print('server-error', { code: err.code ?? null, message: err.message });
    return;
  }
  const message = listenProblem(err);
  console.error(`server: ${message}`);
  print('listen-failed', { code: err.code ?? null, message });
  void shutdown('listen-failed', { drain: false, exitCode: 1 });
});

let stopping = false;
/**
 * Drains (unless there is nothing to drain: the service never listened), closes the node and
 * exits with `exitCode` (1 when the stop itself failed).
 */
async function shutdown(reason: string, { drain = true, exitCode = 0 } = {}): Promise<void> {
  if (stopping) return;
  stopping = true;
  print('shutdown', { reason, ...(drain ? { drainTimeoutSeconds: drainTimeout } : {}) });
  let code = exitCode;
  try {
    if (drain) {
      // New clients go to the other nodes at once; ours finish (or the timeout ends them).
      const drained = await node.drain({ timeoutSeconds: drainTimeout, ...(drainIdle === undefined ? {} : { idleSeconds: drainIdle }) });
      print('drained', drained);
    }
    server.close();
    server.closeAllConnections();
    await node.close(); // LEAVE (sent by the drain already, if any); the TAP goes, the sysctls come back
    print('closed', {});
  } catch (err) {
    print('shutdown-failed', { message: (err as Error).message });
    code = 1;
  }
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
