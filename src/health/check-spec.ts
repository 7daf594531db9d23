/**
 * What a health check is (`--health-check URL`, keepalived's TCP_CHECK, HTTP_GET and
 * MISC_CHECK): parsed and checked here, pure, before anything runs.
 *
 *   tcp://HOST:PORT              a TCP connect succeeds
 *   http://HOST[:PORT]/PATH      GET answers 2xx or 3xx
 *   http://HOST[:PORT]/PATH#204  GET answers exactly this status (the fragment, never sent)
 *   exec:COMMAND                 `/bin/sh -c COMMAND` exits 0 (killed at the timeout)
 *
 * HOST is an IPv4 address, a name, or [IPv6]. createNode also takes a function returning a
 * promise of boolean (kind `function`), which has no URL.
 */

import { lnlbError } from '../errors.js';

/** A check an embedding service runs itself: resolves true when healthy; a throw or false is a failure. */
export type HealthCheckFunction = (signal: AbortSignal) => Promise<boolean> | boolean;

export type HealthCheckSpec =
  | { kind: 'tcp'; label: string; host: string; port: number }
  | { kind: 'http'; label: string; host: string; port: number; path: string; expectStatus: number | undefined }
  | { kind: 'exec'; label: string; command: string }
  | { kind: 'function'; label: string; fn: HealthCheckFunction };

/** The forms, for messages. */
export const HEALTH_CHECK_FORMS = 'tcp://HOST:PORT, http://HOST[:PORT]/PATH[#STATUS] or exec:COMMAND';

function bad(flag: string, raw: string, why: string): never {
  throw lnlbError('LNLB_ERR_HEALTH_BAD_CHECK', `${flag}: ${JSON.stringify(raw)}: ${why} (expected ${HEALTH_CHECK_FORMS}, e.g. http://127.0.0.1:8080/healthz)`);
}

/** `[::1]` → `::1` (node:net wants it bare). */
const bareHost = (hostname: string): string => (hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname);

/** One `--health-check` value; LNLB_ERR_HEALTH_BAD_CHECK naming `flag` and the value otherwise. */
export function parseHealthCheck(raw: string, flag = '--health-check'): HealthCheckSpec {
  const text = raw.trim();
  if (text.startsWith('exec:')) {
    const command = text.slice('exec:'.length).trim();
    if (command === '') bad(flag, raw, 'exec: needs a command, e.g. exec:/usr/local/bin/check-db');
    return { kind: 'exec', label: `exec:${command}`, command };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) bad(flag, raw, 'no kind of check (tcp://, http:// or exec:)');
  if (scheme !== 'tcp' && scheme !== 'http') {
    bad(flag, raw, scheme === 'https' ? 'https is not checked (no certificate to trust): check the port with tcp://, or run curl with exec:' : `unknown kind of check ${JSON.stringify(`${scheme}:`)}`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    bad(flag, raw, 'not a URL');
  }
  const host = bareHost(url.hostname);
  if (host === '') bad(flag, raw, 'no host');
  if (url.username !== '' || url.password !== '') bad(flag, raw, 'a user or password is not supported');
  if (scheme === 'tcp') {
    if (url.port === '') bad(flag, raw, 'tcp:// needs a port (tcp://HOST:PORT)');
    if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') bad(flag, raw, 'tcp:// takes only HOST:PORT');
    const port = Number(url.port);
    if (port < 1 || port > 65535) bad(flag, raw, `the port must be from 1 to 65535, got ${port}`);
    return { kind: 'tcp', label: `tcp://${url.host}`, host, port };
  }
  const port = url.port === '' ? 80 : Number(url.port);
  if (port < 1 || port > 65535) bad(flag, raw, `the port must be from 1 to 65535, got ${port}`);
  let expectStatus: number | undefined;
  if (url.hash !== '') {
    const status = url.hash.slice(1);
    if (!/^[1-5]\d\d$/.test(status)) bad(flag, raw, `the expected status after # must be an HTTP status from 100 to 599, got ${JSON.stringify(status)}`);
    expectStatus = Number(status);
  }
  const path = `${url.pathname === '' ? '/' : url.pathname}${url.search}`;
  return { kind: 'http', label: `http://${url.hostname}:${port}${path}${expectStatus === undefined ? '' : `#${expectStatus}`}`, host, port, path, expectStatus };
}

/** Every check of a repeatable option, each parsed; an empty list is no check. */
export function parseHealthChecks(values: readonly string[], flag = '--health-check'): HealthCheckSpec[] {
  return values.map((v) => parseHealthCheck(v, flag));
}
