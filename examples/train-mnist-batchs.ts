// The same MLP on real MNIST with the data scattered ONCE to the workers (the original's
// train_mnist_gpu_data): the training and test sets become shared variables, each worker holding its
// own part; every step selects rows of each worker's part with `batchS` (one shuffled index list per
// worker), so no data moves during training. Validation runs over each worker's part of the test set
// with numSlices. Target: >= 97% test accuracy at full size.
// Run: npm run build && node dist/examples/train-mnist-batchs.js [--quick] [--help]
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { plural } from '../src/extensions/plural.js';
import { numberIn, positiveInt } from './_cli.js';
import { epochProgress, finish, makeValidator, parseDemoOptions, pct, seconds, startWorkers, stepInfo } from './_train-common.js';

const o = parseDemoOptions('train-mnist-batchs', 'MLP 784-H-H-10 (ReLU) on MNIST with Adam; data scattered once to the workers, rows chosen with batchS.',
  { epochs: 5, batch: 128, lr: 1e-3, seed: 2, trainRows: 60000, testRows: 10000, slices: 4 },
  { epochs: 2, trainRows: 6000, testRows: 2000 },
  (c) => c.option('--hidden <n>', 'hidden units per layer', positiveInt('--hidden'), 256)
    .option('--target <x>', 'test accuracy to reach (default 0.97, quick 0.88)', numberIn('--target', 0, 1)));
const hidden = o['hidden'] as number;
const target = (o['target'] as number | undefined) ?? (o.quick ? 0.88 : 0.97);

const train = X.loadMnist('train', { limit: o.trainRows });
const test = X.loadMnist('test', { limit: o.testRows });
const n = await startWorkers(o);
console.log(`MNIST: ${train.x.shape[0]} training and ${test.x.shape[0]} test images, scattered over ${plural(n, 'worker')} (${o.devices})`);

// Sliceable shared variables: after the scatter each worker holds only its rows.
const xs = T.shared(new T.NDArray('float32', [0, 784]), { name: 'trainImages' });
const ys = T.shared(new T.NDArray('int32', [0]), { name: 'trainLabels' });
const xt = T.shared(new T.NDArray('float32', [0, 784]), { name: 'testImages' });
const yt = T.shared(new T.NDArray('int32', [0]), { name: 'testLabels' });
const t0 = performance.now();
await synk.scatter([xs, ys, xt, yt], [train.x, train.y, test.x, test.y]);
const parts = (await synk.getLengths(xs)) as number[];
console.log(`scattered in ${seconds(t0).toFixed(2)} s; rows per worker: ${parts.join(', ')}`);

const rng = new X.Rng(o.seed);
const net = X.sequential(
  X.dense(784, hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dense(hidden, hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dense(hidden, 10, { rng: rng.fork() }),
);
// The graph reads the shared variables directly; batchS replaces them by the selected rows.
const logits = net.apply(xs, X.trainMode());
const trainStep = X.makeTrainFunction(X.crossEntropy(logits, ys), net.params, [], 'adam', { learningRate: o.lr, sliceableShareds: [xs, ys] });
const validate = makeValidator(net.apply(xt, X.evalMode()), [], yt, { sliceableShareds: [xt, yt] });

// Per worker: a shuffled order of its own rows each epoch, cut into batches of batch / n rows.
const perWorker = Math.max(1, Math.round(o.batch / n));
const steps = Math.ceil(Math.max(...parts) / perWorker);
let accuracy = 0;
for (let epoch = 1; epoch <= o.epochs; epoch++) {
  const te = performance.now();
  const orders = parts.map((len) => rng.permutation(len));
  let lossSum = 0, samples = 0;
  const progress = epochProgress(epoch, o.epochs, steps);
  for (let s = 0; s < steps; s++) {
    const batchS = orders.map((p) => p.subarray(s * perWorker, Math.min(p.length, (s + 1) * perWorker)));
    lossSum += await trainStep({ batchS });
    samples += batchS.reduce((sum, rows) => sum + rows.length, 0);
    progress.update(s + 1, stepInfo(lossSum / (s + 1), samples, te));
  }
  progress.stop();
  const trainSeconds = seconds(te);
  const v = await validate([], o.slices);
  accuracy = v.accuracy;
  console.log(`epoch ${epoch}: train loss ${(lossSum / steps).toFixed(4)}, test loss ${v.loss.toFixed(4)}, test accuracy ${pct(v.accuracy)}, `
    + `${trainSeconds.toFixed(1)} s (${Math.round(train.x.shape[0]! / trainSeconds)} samples/s)`);
}
await synk.close();
finish('train-mnist-batchs', accuracy, target);
