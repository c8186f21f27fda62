// The main job (`npm start`): a data-parallel evaluation of a 2-layer network over a generated data
// set in shared memory, in minibatches, on every core, then on one worker; prints the time, the
// speedup and checks that both runs (and the single-device function on one minibatch) agree.
// Run: npm run demo:eval -- --help     or     node dist/examples/main-job.js --quick
import assert from 'node:assert/strict';
import os from 'node:os';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { plural, pluralWord } from '../src/extensions/plural.js';
import { startProgress } from '../src/extensions/progress.js';
import { rng } from './_common.js';
import { exampleCommand, parseOptions, positiveInt, quickOption } from './_cli.js';

interface Options { rows: number; features: number; hidden: number; classes: number; batch: number; workers: number; seed: number; quick: boolean }

const QUICK = { rows: 4096, features: 64, hidden: 32, batch: 512 };
const program = exampleCommand('main-job',
  'Evaluates mean(softplus(tanh(X W1 + b1) W2 + b2)) over the rows of a generated data set, with the predicted class of every row '
    + '(gathered) and the count of each class (summed), in minibatches on N workers and then on 1 worker; prints the speedup.')
  .option('--rows <n>', 'rows of the data set', positiveInt('--rows'), 65536)
  .option('--features <n>', 'columns of the data set (inputs of the network)', positiveInt('--features'), 512)
  .option('--hidden <n>', 'hidden units', positiveInt('--hidden'), 64)
  .option('--classes <n>', 'output classes', positiveInt('--classes'), 10)
  .option('--batch <n>', 'rows per minibatch (one data-parallel call each)', positiveInt('--batch'), 4096)
  .option('--workers <n>', 'workers of the parallel run (by default one per available core)', positiveInt('--workers'), os.availableParallelism())
  .option('--seed <n>', 'seed of the generated data and weights', positiveInt('--seed'), 1)
  .addOption(quickOption(QUICK));
const opts = parseOptions<Options>(program, QUICK);
const { rows, features, hidden, classes, workers, seed } = opts;
const batch = Math.min(opts.batch, rows);
const fmt = (x: number, digits = 2): string => x.toFixed(digits);
const rate = (r: number, s: number): string => Math.round(r / s).toLocaleString('en-US');

/** Uniform numbers in [-scale, scale), written straight into `out`. */
function fill(out: Float32Array | Float64Array | Int32Array | Uint8Array, seedValue: number, scale: number): void {
  const r = rng(seedValue);
  for (let i = 0; i < out.length; i++) out[i] = scale * (2 * r() - 1);
}

const cores = os.availableParallelism();
console.log(`main job: ${rows.toLocaleString('en-US')} x ${features} float32 ${pluralWord(rows, 'row')}, `
  + `network ${features} -> ${hidden} (tanh) -> ${plural(classes, 'class', 'classes')}, `
  + `minibatches of ${plural(batch, 'row')}`);
console.log(`this machine: ${plural(cores, 'available core')}; parallel run on ${plural(workers, 'worker')}${workers > 1 ? ', then on 1 worker' : ''}`);

// The data set, generated straight into shared memory (workers read it there, without copies).
let t0 = performance.now();
const X = synk.data({ dtype: 'float32', shape: [rows, features] }, { name: 'X' });
fill(X.array.data, seed, 1);
console.log(`generated the data set in shared memory: ${fmt(rows * features * 4 / 2 ** 20, 1)} MiB in ${fmt((performance.now() - t0) / 1000)} s`);

// The network's weights are shared variables: each worker holds its own copy.
const init = (shape: number[], s: number, scale: number): T.NDArray => { const a = new T.NDArray('float32', shape); fill(a.data, s, scale); return a; };
const w1 = T.shared(init([features, hidden], seed + 1, Math.sqrt(3 / features)), { name: 'W1' });
const b1 = T.shared(init([hidden], seed + 2, 0.1), { name: 'b1' });
const w2 = T.shared(init([hidden, classes], seed + 3, Math.sqrt(3 / hidden)), { name: 'W2' });
const b2 = T.shared(init([classes], seed + 4, 0.1), { name: 'b2' });
const x = T.matrix('x');
const logits = x.dot(w1).add(b1).tanh().dot(w2).add(b2);
const predicted = logits.argmax(1);
const f = synk.fn({
  inputs: [x],
  outputs: [[logits.softplus().mean(0), 'avg'], [predicted, 'gather'], [T.oneHot(predicted, classes).sum(0), 'sum']],
  name: 'mlp',
});

interface RunResult {
  workers: number;
  seconds: number;
  forkSeconds: number;
  loss: Float64Array;
  predictions: Int32Array;
  counts: Float64Array;
  firstBatchLoss: T.NDArray;
}

/** Evaluates f over every row in minibatches on `n` workers, with a progress bar. */
async function evaluate(n: number): Promise<RunResult> {
  const label = plural(n, 'worker');
  const forkStart = performance.now();
  await synk.fork({ n });
  const forkSeconds = (performance.now() - forkStart) / 1000;
  try {
    await f(X, { batch: Math.min(rows, 4 * n) }); // warm-up: distributes and compiles f on every worker
    const loss = new Float64Array(classes);
    const counts = new Float64Array(classes);
    const predictions = new Int32Array(rows);
    let firstBatchLoss: T.NDArray | undefined;
    const bar = startProgress({ label, total: rows, unit: 'rows' });
    const start = performance.now();
    for (let lo = 0; lo < rows; lo += batch) {
      const hi = Math.min(lo + batch, rows);
      const [l, p, c] = (await f(X, { batch: { start: lo, stop: hi } })) as T.NDArray[];
      firstBatchLoss ??= l!;
      l!.data.forEach((v, k) => { loss[k] = loss[k]! + v * (hi - lo); });
      predictions.set(p!.data, lo);
      c!.data.forEach((v, k) => { counts[k] = counts[k]! + v; });
      bar.update(hi, `${rate(hi, (performance.now() - start) / 1000)} rows/s`);
    }
    const seconds = (performance.now() - start) / 1000;
    bar.stop();
    for (let k = 0; k < classes; k++) loss[k] = loss[k]! / rows;
    return { workers: n, seconds, forkSeconds, loss, predictions, counts, firstBatchLoss: firstBatchLoss! };
  } finally {
    await synk.close();
  }
}

/** The class counts of a run must be the histogram of its gathered predictions. */
function checkCounts(r: RunResult): void {
  const hist = new Float64Array(classes);
  for (const p of r.predictions) hist[p] = hist[p]! + 1;
  assert.deepEqual([...r.counts], [...hist], `${plural(r.workers, 'worker')}: summed class counts equal the histogram of the gathered predictions`);
}

/** Largest relative difference between two vectors (against the larger magnitude, at least 1e-6). */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1e-6, Math.abs(a[i]!), Math.abs(b[i]!)));
  return worst;
}

const results: RunResult[] = [];
results.push(await evaluate(workers));
if (workers > 1) results.push(await evaluate(1));
results.forEach(checkCounts);

// The single-device function on the controller, on the first minibatch, checks the arithmetic.
t0 = performance.now();
const first = X.get({ start: 0, stop: batch });
const [localLoss, localPred] = f.local(first) as T.NDArray[];
const localSeconds = (performance.now() - t0) / 1000;
const par = results[0]!;
let localMismatch = 0;
for (let i = 0; i < batch; i++) if (localPred!.data[i] !== par.predictions[i]) localMismatch++;
assert.ok(localMismatch <= Math.max(1, batch * 1e-3), `first minibatch: ${localMismatch} predictions differ from the single-device function`);
const localLossDiff = maxRelDiff(par.firstBatchLoss.data, localLoss!.data);
assert.ok(localLossDiff < 1e-4, `first minibatch: loss differs from the single-device function by ${localLossDiff}`);

console.log('\nsummary');
const mean = (v: Float64Array): number => v.reduce((s, a) => s + a, 0) / v.length;
console.log(`  result                mean softplus(logits) ${fmt(mean(par.loss), 6)}; class counts ${[...par.counts].join(' ')}`);
for (const r of results) {
  console.log(`  ${plural(r.workers, 'worker').padEnd(22)}${fmt(r.seconds).padStart(7)} s  ${rate(rows, r.seconds).padStart(9)} rows/s  (fork ` +
    `${fmt(r.forkSeconds)} s, not counted)`);
}
if (results.length === 2) {
  const one = results[1]!;
  const speedup = one.seconds / par.seconds;
  console.log(`  speedup               ${fmt(speedup)}x on ${plural(workers, 'worker')} over 1 worker (parallel efficiency ` +
    `${Math.round((100 * speedup) / workers)}%)`);
  let mismatch = 0;
  for (let i = 0; i < rows; i++) if (par.predictions[i] !== one.predictions[i]) mismatch++;
  const lossDiff = maxRelDiff(par.loss, one.loss);
  const countDiff = par.counts.reduce((s, c, k) => s + Math.abs(c - one.counts[k]!), 0);
  // Float32 arithmetic in another order may flip an argmax at a near-tie; anything more is an error.
  assert.ok(lossDiff < 1e-4, `the ${workers}-worker and 1-worker losses differ by ${lossDiff} (relative)`);
  assert.ok(mismatch <= Math.max(1, rows * 1e-3), `${mismatch} of ${rows} predictions differ between ${workers} workers and 1 worker`);
  assert.ok(countDiff <= 2 * mismatch, 'class counts differ by more than the differing predictions explain');
  const predictionAgreement = mismatch === 0 ? `identical on all ${rows.toLocaleString('en-US')} ${pluralWord(rows, 'row')}`
    : `differ on ${plural(mismatch, 'row')} (allowed up to 0.1%: an argmax may flip at a float32 near-tie)`;
  console.log(`  results agree         loss max relative difference ${lossDiff.toExponential(1)}; predictions ${predictionAgreement}; `
    + `class counts ${countDiff === 0 ? 'identical' : `differ by ${countDiff}`}`);
  const load = os.loadavg()[0]!;
  if (speedup < 0.75 * workers) {
    const callMs = (1000 * par.seconds) / Math.ceil(rows / batch);
    const causes = [`the 1-minute load average is ${fmt(load)} on ${plural(cores, 'core')} (this job's own workers count for up to ${workers})`];
    if (workers > cores) causes.push(`${plural(workers, 'worker')} share ${plural(cores, 'core')}`);
    if (callMs < 20) causes.push(`each minibatch call takes only ${fmt(callMs, 1)} ms, so the fixed cost per call weighs (try a larger --batch)`);
    console.log(`  note                  speedup below ${fmt(0.75 * workers, 1)}x; ${causes.join('; ')}`);
  }
} else {
  console.log('  speedup               not measured: the parallel run had 1 worker (use --workers n with n > 1)');
}
const localAgreement = localMismatch === 0 ? 'predictions identical'
  : `${plural(localMismatch, 'prediction')} ${localMismatch === 1 ? 'differs' : 'differ'} (allowed up to 0.1%)`;
console.log(`  single-device check   first minibatch (${plural(batch, 'row')}) on the controller in ${fmt(localSeconds)} s: `
  + `loss within ${localLossDiff.toExponential(1)}, ${localAgreement}`);
console.log('main job: OK');
