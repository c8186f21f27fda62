// The training job: an MLP on real MNIST, data-parallel on every device found (all CPU cores, or all
// GPUs), with a progress bar, per-epoch loss, accuracy and samples per second, and an SVG chart of
// loss and accuracy written to a file. The recipe is the original's: each worker computes the
// gradient of its rows into one flat vector, one all-reduce, the same Adam update on every worker.
// Run: npm run build && node dist/examples/main-train.js [--quick] [--epochs 5] [--help]
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Option } from 'commander';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { plural } from '../src/extensions/plural.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { exampleCommand, numberIn, parseOptions, positiveInt, positiveNumber, quickOption, workersOption } from './_cli.js';
import { DEVICE_KINDS, cpuWorkersFor, defaultWorkers, epochBatches, epochProgress, makeValidator, pct, stepInfo } from './_train-common.js';

const QUICK = { epochs: 2, trainRows: 6000, testRows: 2000 };
const program = exampleCommand('main-train',
  'Trains an MLP (784-H-H-10, ReLU, Adam) on real MNIST data-parallel on every device found; prints per-epoch loss, accuracy and samples/s '
  + 'and writes an SVG chart.')
  .option('--epochs <n>', 'passes over the training set', positiveInt('--epochs'), 5)
  .option('--batch <n>', 'rows per step over all workers', positiveInt('--batch'), 128)
  .addOption(workersOption('SYNK_WORKERS, else one per GPU, or on CPUs one per 512 rows of the batch, up to half the cores'))
  .addOption(new Option('--devices <kind>', "worker devices ('auto': every GPU, else every core)").choices(DEVICE_KINDS).default('auto'))
  .option('--hidden <n>', 'hidden units per layer', positiveInt('--hidden'), 256)
  .option('--lr <x>', 'Adam learning rate', positiveNumber('--lr'), 1e-3)
  .option('--train-rows <n>', 'use the first n of the 60000 training images', positiveInt('--train-rows'), 60000)
  .option('--test-rows <n>', 'use the first n of the 10000 test images', positiveInt('--test-rows'), 10000)
  .option('--chart <file>', 'where to write the SVG chart of loss and accuracy (default mnist-training.svg; with --quick in the temporary folder)')
  .option('--target <x>', 'test accuracy the run must reach (default 0.97; 0.88 with --quick)', numberIn('--target', 0, 1))
  .option('--seed <n>', 'seed of the weights and the shuffles', positiveInt('--seed'), 1)
  .addOption(quickOption(QUICK));
interface Options {
  epochs: number; batch: number; workers?: number; devices: string; hidden: number; lr: number;
  trainRows: number; testRows: number; chart?: string; target?: number; seed: number; quick: boolean;
}
const o = parseOptions<Options>(program, QUICK);
const target = o.target ?? (o.quick ? 0.88 : 0.97);

const train = X.loadMnist('train', { limit: o.trainRows });
const test = X.loadMnist('test', { limit: o.testRows });
await registerBuiltinDevices();
const devices = o.devices as (typeof DEVICE_KINDS)[number];
// GPUs: one worker each. CPU cores: as many workers as the batch keeps busy (cpuWorkersFor).
const onCpu = devices === 'cpu' || devices === 'reference' || (devices === 'auto' && (await synk.devices()).auto !== 'cuda');
const workers = o.workers ?? (process.env['SYNK_WORKERS'] ? defaultWorkers() : onCpu ? cpuWorkersFor(o.batch) : undefined);
const n = await synk.fork({ devices, ...(workers !== undefined ? { n: workers } : {}) });
console.log(`MNIST: ${train.x.shape[0]} training and ${test.x.shape[0]} test images in shared memory`);
console.log(`${plural(n, 'worker')} ('${devices}' on a machine with ${plural(os.availableParallelism(), 'core')}); `
  + `MLP 784-${o.hidden}-${o.hidden}-10, Adam lr ${o.lr}, `
  + `batch ${o.batch}, ${plural(o.epochs, 'epoch')}`);

const rng = new X.Rng(o.seed);
const net = X.sequential(
  X.dense(784, o.hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dense(o.hidden, o.hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dense(o.hidden, 10, { rng: rng.fork() }),
);
const x = T.matrix('x');
const y = T.vector('y', 'int32');
const logits = net.apply(x, X.trainMode());
const step = X.makeTrainFunction(X.crossEntropy(logits, y), net.params, [x, y], 'adam', { learningRate: o.lr, outputs: [[X.accuracy(logits, y), 'avg']] });
const validate = makeValidator(net.apply(x, X.evalMode()), [x, y], y);
const xs = synk.data(train.x, { name: 'images' });
const ys = synk.data(train.y, { name: 'labels' });
const xt = synk.data(test.x, { name: 'test images' });
const yt = synk.data(test.y, { name: 'test labels' });

const history = { trainLoss: [] as number[], testLoss: [] as number[], trainAcc: [] as number[], testAcc: [] as number[], rate: [] as number[] };
const rows = train.x.shape[0]!;
const t0 = performance.now();
for (let epoch = 1; epoch <= o.epochs; epoch++) {
  const batches = epochBatches(rng, rows, o.batch);
  const bar = epochProgress(epoch, o.epochs, batches.length);
  const te = performance.now();
  let lossSum = 0, accSum = 0, seen = 0;
  for (const [k, batch] of batches.entries()) {
    const r = await step.step(xs, ys, { batch });
    lossSum += r.loss * batch.length;
    accSum += r.outputs[0]!.item() * batch.length;
    seen += batch.length;
    bar.update(k + 1, stepInfo(lossSum / seen, seen, te));
  }
  bar.stop();
  const secs = (performance.now() - te) / 1000;
  const v = await validate([xt, yt], 4);
  history.trainLoss.push(lossSum / seen); history.trainAcc.push(accSum / seen);
  history.testLoss.push(v.loss); history.testAcc.push(v.accuracy); history.rate.push(seen / secs);
  console.log(`epoch ${epoch}: train loss ${(lossSum / seen).toFixed(4)}, train accuracy ${pct(accSum / seen)}, test loss ${v.loss.toFixed(4)}, `
    + `test accuracy ${pct(v.accuracy)}, ${Math.round(seen / secs)} samples/s (${secs.toFixed(1)} s)`);
}
const total = (performance.now() - t0) / 1000;
await synk.close();

const chart = resolve(o.chart ?? (o.quick ? join(os.tmpdir(), 'mnist-training-quick.svg') : 'mnist-training.svg'));
X.writeLineChart(chart, [
  { title: 'loss', yLabel: 'mean cross-entropy', series: [{ name: 'train', values: history.trainLoss }, { name: 'test', values: history.testLoss }] },
  {
    title: 'accuracy', yLabel: 'images classified correctly', percent: true,
    series: [{ name: 'train', values: history.trainAcc }, { name: 'test', values: history.testAcc }],
  },
], {
  title: `MLP on MNIST, ${plural(n, 'worker')}, batch ${o.batch}: ${pct(history.testAcc.at(-1) ?? 0)} test accuracy in ${total.toFixed(0)} s`,
  xLabel: 'epoch',
});
console.log(`wrote ${chart}`);
const final = history.testAcc.at(-1) ?? 0;
const meanRate = Math.round(history.rate.reduce((a, b) => a + b, 0) / history.rate.length);
console.log(`trained ${plural(o.epochs, 'epoch')} in ${total.toFixed(1)} s, mean ${meanRate} samples/s`);
if (final < target) {
  console.error(`main-train: test accuracy ${pct(final)} is below the target ${pct(target)}`);
  process.exitCode = 1;
} else {
  console.log(`main-train: test accuracy ${pct(final)} >= target ${pct(target)}: OK`);
}
