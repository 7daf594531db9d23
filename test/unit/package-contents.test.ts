// What `npm pack` would publish: the product only (the daemon, the CLI, the library, the
// addon's sources, the docs, the unit file and the examples), never the tests, the
// network-namespace lab, the benchmarks, the demo or the build's own tools.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// This file runs as dist/test/unit/package-contents.test.js; the package root is three levels up.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What the tarball may hold, each with why. */
const PRODUCT: [RegExp, string][] = [
  [/^package\.json$|^README\.md$/, 'the manifest and the README'],
  [/^bin\/lnlb(d|ctl)$/, 'the two commands'],
  [/^dist\/src\/.+\.(js|d\.ts|js\.map)$/, 'the compiled library, daemon and threads'],
  [/^binding\.gyp$|^native\/[^/]+\.(cc|h)$/, "the port addon's sources (built at install)"],
  [/^docs\/[^/]+\.md$|^docs\/charts\/[^/]+\.svg$/, 'the documentation and the charts the README shows'],
  [/^packaging\/(lnlbd\.service|lnlb\.conf)$/, 'the systemd unit and the sample config'],
  [/^examples\/[^/]+\/[^/]+\.(ts|md)$/, 'the examples the docs point to'],
];

/** What must never ship, named so that a failure says what leaked. */
const NOT_PRODUCT: [RegExp, string][] = [
  [/^(dist\/)?test\//, 'tests'],
  [/^(dist\/)?lab\/|^(dist\/)?src\/lab\/|^native\/lab\//, 'the network-namespace lab'],
  [/^(dist\/)?bench\//, 'benchmarks'],
  [/^(dist\/)?demo\//, 'the demo'],
  [/^scripts\/|^\.ci\/|^tsconfig|^typedoc/, "the build's own tools"],
];

function packedFiles(): string[] {
  // --ignore-scripts: `prepare` would compile the whole project again.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[];
  return (pack?.files ?? []).map((f) => f.path).sort();
}

test('npm pack ships the product and nothing else: no tests, lab, benchmarks, demo or build tools', (t) => {
  const files = packedFiles();
  const leaked = files.flatMap((path) => NOT_PRODUCT.filter(([pattern]) => pattern.test(path)).map(([, what]) => `${path} (${what})`));
  t.deepEqual(leaked, [], 'not product');
  const unknown = files.filter((path) => !PRODUCT.some(([pattern]) => pattern.test(path)));
  t.deepEqual(unknown, [], 'files no rule of PRODUCT accounts for');
  const byRule = PRODUCT.map(([pattern, why]) => `${files.filter((p) => pattern.test(p)).length} ${why}`);
  t.log(`${files.length} files: ${byRule.join('; ')}`);
});

test('npm pack ships what lnlbd and the library need to run: the entry points, every thread and the addon sources', (t) => {
  const files = new Set(packedFiles());
  const needed = [
    'bin/lnlbd',
    'bin/lnlbctl',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/handlers/handler.js',
    'dist/src/main/lnlbd.js',
    'dist/src/workers/dispatcher.js',
    'dist/src/workers/actor.js',
    'dist/src/workers/control-thread.js',
    'dist/src/workers/bond-thread.js',
    'dist/src/workers/bulk-tasks.js',
    'binding.gyp',
    'native/addon.cc',
    'packaging/lnlbd.service',
  ];
  t.deepEqual(
    needed.filter((path) => !files.has(path)),
    [],
  );
});
