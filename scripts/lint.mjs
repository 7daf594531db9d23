#!/usr/bin/env node
// The project's own standing rules, checked after the type check (`npm run lint`):
// - one direction of imports: main → workers → handlers/cluster/bond/shm/net; net and shm import
//   nothing of ours but errors.ts; src/ (the package) imports nothing outside it (lab/, bench/, test/); the package entry (src/index.ts) re-exports main, cluster,
//   errors.ts and types of workers; examples use lnlb as its users do, by name ('lnlb', 'lnlb/handler'), never src/;
// - no `any` in our own code;
// - relative imports end in `.js` (ESM, NodeNext);
// - no focused or skipped tests left behind.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ALLOWED = {
  net: ['net', 'errors.ts'],
  shm: ['shm', 'errors.ts'],
  cluster: ['cluster', 'net', 'errors.ts'],
  handlers: ['handlers', 'shm', 'net', 'cluster', 'errors.ts'],
  port: ['port', 'errors.ts'],
  health: ['health', 'errors.ts'],
  bond: ['bond', 'net', 'errors.ts', 'edit-distance.ts'],
  workers: ['workers', 'handlers', 'shm', 'net', 'cluster', 'port', 'bond', 'errors.ts'],
  main: ['main', 'workers', 'handlers', 'shm', 'net', 'cluster', 'port', 'bond', 'health', 'errors.ts', 'edit-distance.ts'],
  'index.ts': ['main', 'workers', 'cluster', 'health', 'errors.ts'],
};

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

const problems = [];
for (const file of [...walk('src'), ...walk('lab'), ...walk('test'), ...walk('bench'), ...walk('demo'), ...walk('examples')]) {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const code = line.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''").replace(/\/\/.*$/, '');
    if (/(:\s*any\b(?!\s*\()|\bas any\b|<any>)/.test(code)) problems.push(`${where}: 'any' in our own code`);
    const imp = /from '(\.{1,2}\/[^']+)'/.exec(line);
    if (imp && !imp[1].endsWith('.js')) problems.push(`${where}: relative import '${imp[1]}' must end in .js`);
    if (file.startsWith('test') && /\b(test|it|describe)\.(only|skip|todo)\(|\.failing\(/.test(line)) {
      problems.push(`${where}: focused, skipped or failing-marked test`);
    }
    if (file.startsWith('examples/') && imp && relative('.', join(file, '..', imp[1])).startsWith('src/')) {
      problems.push(`${where}: examples import lnlb by its name ('lnlb', 'lnlb/handler'), not from src/`);
    }
    if (file.startsWith('src/') && imp) {
      const area = relative('src', file).split('/')[0];
      const target = relative('src', join(file, '..', imp[1])).split('/')[0].replace(/\.js$/, '.ts');
      if (target === '..') {
        problems.push(`${where}: src/ is the package; it must not import ${relative('.', join(file, '..', imp[1]))} (outside src/, not shipped)`);
        return;
      }
      const allowed = ALLOWED[area];
      if (allowed && !allowed.includes(target)) problems.push(`${where}: src/${area} must not import src/${target}`);
    }
  });
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(`\n${problems.length} problem(s)`);
  process.exit(1);
}
console.log('lint: imports, any, .only/.skip: clean');
