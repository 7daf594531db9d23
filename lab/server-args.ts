/**
 * What the lab's echo servers share: their command line (--name, --host, --port) and how long
 * they keep retrying a bind to the VIP before the daemon has put it on its TAP.
 */
import { parseArgs } from 'node:util';

export const BIND_RETRY_MS = 100;
export const BIND_GIVE_UP_MS = 120_000;

export interface ServerArgs {
  name: string;
  host: string;
  port: number;
}

/** Parses `--name NAME --host ADDRESS [--port PORT]`; exits 2 with a usage line when incomplete. */
export function parseServerArgs(program: string, defaultPort: number): ServerArgs {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string', default: String(defaultPort) },
    },
  });
  if (values.name === undefined || values.host === undefined) {
    console.error(`usage: ${program} --name NAME --host ADDRESS [--port PORT]`);
    process.exit(2);
  }
  return { name: values.name, host: values.host, port: Number(values.port) };
}
