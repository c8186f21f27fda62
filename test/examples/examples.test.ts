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
/** The convolutional demos take about 25 s each on 2 idle cores; a loaded machine (other test files) may take several times that. */
const SLOW: Record<string, number> = { 'train-mnist-cnn.js': 180_000, 'train-resnet.js': 180_000 };
// Helper modules start with '_' and are not examples.
const found = readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('_')).sort();

function run(file: string, args = ARGS[file] ?? [], timeout = SLOW[file] ?? 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [dir + file, ...args], {
      timeout,
      env: { ...process.env, SYNK_WORKERS: '2' },
      maxBuffer: 16 * 2 ** 20,
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr: `${stderr}${error !== null && error.killed ? `\n(killed: over the ${timeout / 1000} s limit)` : ''}` });
    });
  });
}

// The command line is parsed before any data is loaded or worker started, so these runs take well
// under a second each; the unknown-flag checks cover each way an example builds its command line
// (the small examples, a plain one, the training demos, the two main jobs).
const FLAG_CHECKS = ['intro.js', 'logistic-regression.js', 'train-mnist-cnn.js', 'main-job.js', 'main-train.js'];

describe('example command lines', () => {
  for (const file of found) {
    test(`${file} --help prints its usage and exits with 0`, async () => {
      const { code, stdout, stderr } = await run(file, ['--help'], 20_000);
      assert.equal(code, 0, `${file} --help exited with ${code}: ${stderr}`);
      assert.match(stdout, new RegExp(`^Usage: ${file.replace(/\.js$/, '')} \\[options\\]`), `${file} --help: ${stdout.slice(0, 300)}`);
      assert.match(stdout, /--help\s+display help/);
      assert.doesNotMatch(stdout, /forked|MNIST:|epoch 1/, 'nothing ran');
    });
  }

  for (const file of FLAG_CHECKS) {
    test(`${file} refuses an unknown flag, naming it`, async () => {
      const { code, stdout, stderr } = await run(file, ['--no-such-flag'], 20_000);
      assert.notEqual(code, 0, `${file} accepted --no-such-flag`);
      assert.match(stderr, /error: unknown option '--no-such-flag'/);
      assert.match(stderr, /--help for the options/);
      assert.equal(stdout, '', 'nothing ran');
    });
  }

  test('bad values and stray arguments are refused with the flag and the value', async () => {
    const cases: [string, string[], RegExp][] = [
      ['intro.js', ['--workers', '0'], /--workers must be a positive integer, got "0"/],
      ['intro.js', ['extra'], /too many arguments/],
      ['main-train.js', ['--devices', 'gpu'], /'--devices <kind>' argument 'gpu' is invalid\. Allowed choices are cpu, auto, cuda, reference/],
      ['train-mnist-cnn.js', ['--channels', '16'], /--channels must be 2 comma-separated positive integers, got "16"/],
      ['main-job.js', ['--epochs', '2'], /unknown option '--epochs'/],
    ];
    await Promise.all(cases.map(async ([file, args, message]) => {
      const { code, stderr } = await run(file, args, 20_000);
      assert.notEqual(code, 0, `${file} ${args.join(' ')} was accepted`);
      assert.match(stderr, message, `${file} ${args.join(' ')}: ${stderr}`);
    }));
  });
});

describe('examples', () => {
  test('every expected example was compiled', () => {
    for (const name of EXPECTED) assert.ok(found.includes(name), `dist/examples/${name} is missing`);
  });

  for (const file of found) {
    test(`${file} exits with 0`, async () => {
      const { code, stdout, stderr } = await run(file);
      assert.equal(code, 0, `${file} exited with ${code}\n--- stdout (end) ---\n${stdout.slice(-2000)}\n--- stderr ---\n${stderr.slice(-4000)}`);
      assert.match(stdout, /: OK\s*$/, `${file} did not print its closing OK line`);
      // stdout is a pipe here: progress must come as plain lines, never a redrawn bar.
      assert.doesNotMatch(stdout, /\x1b\[/, `${file} wrote terminal control sequences without a terminal`);
      assert.doesNotMatch(stdout, /\b1 (workers|epochs|rows|steps)\b/, `${file}: a plural after 1`);
    });
  }

  test('intro.js --workers 1 runs on one worker and says so in the singular', async () => {
    const { code, stdout, stderr } = await run('intro.js', ['--workers', '1']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^forked 1 worker$/m);
    assert.match(stdout, /on 1 worker:/);
    assert.doesNotMatch(stdout, /\b1 workers\b/);
  });
});
