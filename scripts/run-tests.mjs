// Runs every compiled test file with Node's own test runner (Node 20 has no glob
// support in `node --test`, so the files are listed here).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (entry.endsWith('.test.js')) found.push(path);
  }
  return found;
}

const filter = process.argv[2];
const files = findTests('dist/test').filter((f) => !filter || f.includes(filter)).sort();
if (files.length === 0) {
  console.error('no test files found under dist/test' + (filter ? ` matching ${filter}` : ''));
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
