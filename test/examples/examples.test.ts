// Runs every compiled example (dist/examples/*.js) as its own process on 2 workers and checks that it
// exits with 0: each example asserts its results against the single-device function itself.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../examples/', import.meta.url));
const EXPECTED = ['batch-s.js', 'batch.js', 'data.js', 'intro.js', 'logistic-regression.js', 'main-job.js', 'num-slices.js', 'shared-variables.js'];
/** Extra arguments per example (the main job runs at CI size). */
const QUICK = ['--quick'];
const ARGS: Record<string, string[]> = {
  'main-job.js': QUICK, 'main-train.js': QUICK, 'train-mnist-mlp.js': QUICK, 'train-mnist-batchs.js': QUICK,
  'train-mnist-cnn.js': QUICK, 'train-resnet.js': QUICK,
};
// Helper modules start with '_' and are not examples.
const found = readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('_')).sort();

function run(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [dir + file, ...(ARGS[file] ?? [])], {
      timeout: 60_000,
      env: { ...process.env, SYNK_WORKERS: '2' },
      maxBuffer: 16 * 2 ** 20,
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr: `${stderr}${error !== null && error.killed ? '\n(killed: over the 60 s limit)' : ''}` });
    });
  });
}

describe('examples', () => {
  test('every expected example was compiled', () => {
    for (const name of EXPECTED) assert.ok(found.includes(name), `dist/examples/${name} is missing`);
  });

  for (const file of found) {
    test(`${file} exits with 0`, async () => {
      const { code, stdout, stderr } = await run(file);
      assert.equal(code, 0, `${file} exited with ${code}\n--- stdout (end) ---\n${stdout.slice(-2000)}\n--- stderr ---\n${stderr.slice(-4000)}`);
      assert.match(stdout, /: OK\s*$/, `${file} did not print its closing OK line`);
    });
  }
});
