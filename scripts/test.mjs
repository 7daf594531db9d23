#!/usr/bin/env node
// Runs the ava suites and ends with one line `N passed, N failed, N skipped`, the summary CI
// reads. Unit tests run anywhere; the network-namespace tests need root and run one file at a
// time (they build real namespaces and real daemons on a 2-core machine).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureTools } from './system-deps.mjs';

const mode = process.argv[2] ?? 'all';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function runAva(files, extra) {
  return new Promise((resolve) => {
    const args = ['node_modules/ava/entrypoints/cli.mjs', '--tap', ...extra, ...files];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const totals = { passed: 0, failed: 0, skipped: 0 };
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      buffered += chunk.toString('utf8');
    });
    child.on('close', (code) => {
      for (const line of buffered.split('\n')) {
        const m = /^# (pass|fail|skip|todo)\s+(\d+)/.exec(line);
        if (!m) continue;
        const n = Number(m[2]);
        if (m[1] === 'pass') totals.passed += n;
        else if (m[1] === 'fail') totals.failed += n;
        else totals.skipped += n;
      }
      // A crash or a timeout before any summary still has to count as a failure.
      if (code !== 0 && totals.failed === 0) totals.failed = 1;
      resolve(totals);
    });
  });
}

const sum = { passed: 0, failed: 0, skipped: 0 };
function add(t) { sum.passed += t.passed; sum.failed += t.failed; sum.skipped += t.skipped; }

if (!existsSync('dist/test')) {
  console.error('dist/test is missing: run `npm run build` first (npm test does it for you).');
  process.exit(1);
}
// The namespace tests run ping, curl, nc, nft, iperf3, tshark: installed here as root, or the
// run stops at once naming them (no test may pass or fail on a tool that is not there).
const stop = mode === 'all' && isRoot ? ensureTools('test') : undefined;
if (stop !== undefined) {
  console.error(stop);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
add(await runAva(['dist/test/unit/**/*.test.js'], []));
let notRoot = false;
if (mode === 'all') {
  if (isRoot) {
    add(await runAva(['dist/test/integration/**/*.test.js'], ['--concurrency', '1', '--serial']));
  } else {
    notRoot = true;
    console.error('\nThe network-namespace tests did not run: they need root (CAP_NET_ADMIN and CAP_SYS_ADMIN to');
    console.error('create namespaces, veth links and TAP devices). Run `sudo npm test`, or `npm run test:unit`');
    console.error('for the part that runs anywhere.');
  }
}
console.log(`${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped`);
process.exit(sum.failed > 0 || notRoot ? 1 : 0);
