// The README's quick start on a machine that lacks a system tool: the demo either installs it or
// stops at once with one line naming it and the command that installs it, and a tool that fails
// as it runs makes the demo say so: never a failover figure from a ping that did not run.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listNamespaces, sweepStale } from '../../lab/netns.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEMO = join(REPO_ROOT, 'dist', 'demo', 'cluster.js');
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const scratch = mkdtempSync(join(tmpdir(), 'lnlb-quickstart-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

/** A directory standing for the system's PATH with every program in it except `without`. */
function pathWithout(without: string): string {
  const dir = join(scratch, `no-${without}`);
  mkdirSync(dir, { recursive: true });
  for (const system of SYSTEM_DIRS) {
    if (!existsSync(system)) continue;
    for (const name of readdirSync(system)) {
      if (name !== without && !existsSync(join(dir, name))) symlinkSync(join(system, name), join(dir, name));
    }
  }
  return dir;
}

function runDemo(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [DEMO], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

test('without ping in PATH the demo stops at once with one line naming it and the install command', async (t) => {
  const path = pathWithout('ping');
  const r = await runDemo({ ...process.env, PATH: path, LNLB_INSTALL: 'never' }, 60_000);
  t.is(r.code, 1, r.stdout + r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0] ?? '', /^demo needs ping \(iputils-ping\), not found in PATH: install them with `sudo scripts\/install-system-deps\.sh`/);
  t.notRegex(r.stdout, /failover/);
  t.notRegex(r.stdout, /Building the lab/, 'it stopped before building anything');
  t.true(r.ms < 10_000, `it stopped at once (${Math.round(r.ms)} ms)`);
});

test('a ping that fails as it runs makes the demo say so, and no failover time is printed', async (t) => {
  await sweepStale();
  const before = new Set(await listNamespaces());
  const bin = join(scratch, 'failing-ping');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'ping'), '#!/bin/sh\necho "ping: stand-in that fails" >&2\nexit 2\n');
  chmodSync(join(bin, 'ping'), 0o755);
  const r = await runDemo({ ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, 120_000);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stderr, /demo failed: ping did not run \(exit 2: ping: stand-in that fails\); nothing it would have measured is known/);
  t.notRegex(r.stdout, /gets ping replies again/);
  t.notRegex(r.stdout, /failover: /);
  t.regex(r.stdout, /Removing the lab/);
  const left = (await listNamespaces()).filter((ns) => !before.has(ns));
  t.deepEqual(left, [], 'the demo removed its namespaces');
});
