/**
 * The health checks' I/O edge: one run of one check, bounded by its timeout, as an outcome.
 * Never throws: whatever goes wrong is a failed outcome whose detail says what.
 *
 *   tcp       connect() succeeds (then closed at once)
 *   http      GET PATH answers 2xx/3xx, or exactly the expected status; the body is discarded
 *   exec      /bin/sh -c COMMAND exits 0; at the timeout its whole process group gets SIGKILL
 *   function  the promise resolves true; false, a throw or the timeout fail (its signal aborts)
 */

import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheckSpec } from './check-spec.js';
import type { CheckOutcome } from './health-state.js';

/** An exec check's stderr kept for the detail (its tail), and what stdout may fill before it is ignored. */
const STDERR_KEEP = 200;

const since = (start: number): number => performance.now() - start;
const errText = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? (err instanceof Error ? err.message : String(err));
};

export function runCheck(spec: HealthCheckSpec, timeoutMs: number): Promise<CheckOutcome> {
  switch (spec.kind) {
    case 'tcp':
      return tcpCheck(spec.host, spec.port, timeoutMs);
    case 'http':
      return httpCheck(spec.host, spec.port, spec.path, spec.expectStatus, timeoutMs);
    case 'exec':
      return execCheck(spec.command, timeoutMs);
    case 'function':
      return functionCheck(spec.fn, timeoutMs);
  }
}

/** Settles once: the first of the check's own end and the timeout wins. */
function bounded(timeoutMs: number, run: (done: (ok: boolean, detail: string) => void) => () => void): Promise<CheckOutcome> {
  const start = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let cleanup: () => void = () => undefined;
    const done = (ok: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup();
      resolve({ ok, detail, ms: since(start) });
    };
    const timer = setTimeout(() => done(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    cleanup = run(done);
    if (settled) cleanup();
  });
}

export function tcpCheck(host: string, port: number, timeoutMs: number): Promise<CheckOutcome> {
  const start = performance.now();
  return bounded(timeoutMs, (done) => {
    const socket = connect({ host, port });
    socket.once('connect', () => done(true, `connected in ${Math.round(since(start))} ms`));
    socket.once('error', (err) => done(false, `connect ${errText(err)}`));
    return () => socket.destroy();
  });
}

export function httpCheck(host: string, port: number, path: string, expectStatus: number | undefined, timeoutMs: number): Promise<CheckOutcome> {
  const start = performance.now();
  return bounded(timeoutMs, (done) => {
    // No agent: a fresh connection each time, as a client would open one (a kept-alive socket
    // would say nothing about whether new connections are accepted).
    const req = request({ host, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'lnlb-health-check', connection: 'close' } }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume(); // the body is not read, only drained
      const ok = expectStatus === undefined ? status >= 200 && status < 400 : status === expectStatus;
      done(ok, `${status} in ${Math.round(since(start))} ms${ok ? '' : ` (expected ${expectStatus ?? '2xx or 3xx'})`}`);
    });
    req.once('error', (err) => done(false, `GET ${errText(err)}`));
    req.end();
    return () => req.destroy();
  });
}

export function execCheck(command: string, timeoutMs: number): Promise<CheckOutcome> {
  return bounded(timeoutMs, (done) => {
    // Its own process group (detached), so that the timeout kills what the shell started too.
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    child.once('error', (err) => done(false, `cannot run /bin/sh: ${errText(err)}`));
    child.once('close', (code, signal) => {
      const why = stderr.trim().split('\n').pop() ?? '';
      if (code === 0) done(true, 'exit 0');
      else done(false, `${signal === null ? `exit ${code}` : `killed by ${signal}`}${why === '' ? '' : `: ${why}`}`);
    });
    return () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    };
  });
}

export function functionCheck(fn: (signal: AbortSignal) => Promise<boolean> | boolean, timeoutMs: number): Promise<CheckOutcome> {
  return bounded(timeoutMs, (done) => {
    const controller = new AbortController();
    Promise.resolve()
      .then(() => fn(controller.signal))
      .then(
        (result) => done(result === true, result === true ? 'true' : `returned ${String(result)}`),
        (err: unknown) => done(false, `threw: ${err instanceof Error ? err.message : String(err)}`),
      );
    return () => controller.abort();
  });
}
