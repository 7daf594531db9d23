// The lab addon (traffic generator, netns entry) is built beside the port addon in a checkout,
// maps its failures as the port's calls do, and stays out of the npm package.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LnlbError } from '../../../src/errors.js';
import * as lab from '../../../lab/native.js';
import * as port from '../../../src/port/native.js';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

test('the lab addon is built beside the port addon, and a missing one says how to build it', (t) => {
  t.is(lab.labAddonPath().replace(/lnlb_lab\.node$/, ''), port.addonPath().replace(/lnlb_port\.node$/, ''));
  const err = t.throws(() => lab.loadLabAddonFrom('/nonexistent/build/Release/lnlb_lab.node'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_PORT_ADDON');
  t.regex(err?.message ?? '', /git checkout of lnlb .*the npm package does not include it/);
});

test('netnsEnter on a missing namespace says to create it; the thread stays where it was', (t) => {
  const before = readlinkSync('/proc/thread-self/ns/net');
  const err = t.throws(() => lab.netnsEnter('/nonexistent/netns/lnlb-unit'), { instanceOf: LnlbError });
  t.is(err?.code, 'LNLB_ERR_DEV_SETUP');
  t.is(err?.errno, 'ENOENT');
  t.regex(err?.message ?? '', /create it first \(ip netns add\)/);
  t.is(readlinkSync('/proc/thread-self/ns/net'), before);
});

test('sendBurst refuses a frame too short for its IPv4 header before writing anything', (t) => {
  const frame = new Uint8Array(30);
  t.throws(() => lab.sendBurst(-1, frame, 0, frame.length, 1, { ipv4Offset: 14, sourceCount: 1 }), { instanceOf: RangeError, message: /ipv4Offset \+ 20 exceeds the frame/ });
});

test('the npm package holds the port addon sources and binding.gyp, not the lab addon or any build', (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const needed of ['binding.gyp', 'native/addon.cc', 'native/packet-ring.cc', 'native/tap.cc', 'native/hmac.cc']) t.true(files.includes(needed), needed);
  t.deepEqual(
    files.filter((f) => f.startsWith('native/lab/') || f.startsWith('build/') || f.endsWith('.node')),
    [],
  );
});
