// An MLP on real MNIST, data-parallel on every core (the original's train_mnist_cpu_data): the
// training set lives once in shared memory (synk.data) and every step passes a shuffled list of row
// indices as `batch`; each worker gathers its own rows. Validation passes the whole test set with
// numSlices to bound memory. Target: >= 97% test accuracy at full size.
// Run: npm run build && node dist/examples/train-mnist-mlp.js [--quick] [--help]
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { plural } from '../src/extensions/plural.js';
import { positiveInt, numberIn } from './_cli.js';
import { epochBatches, epochProgress, finish, makeValidator, parseDemoOptions, pct, seconds, startWorkers, stepInfo, mnistData } from './_train-common.js';

const o = parseDemoOptions('train-mnist-mlp', 'MLP 784-H-H-10 (ReLU) on MNIST with Adam; data in shared memory, shuffled batch index lists.',
  { epochs: 5, batch: 128, lr: 1e-3, seed: 1, trainRows: 60000, testRows: 10000, slices: 4 },
  { epochs: 2, trainRows: 6000, testRows: 2000 },
  (c) => c.option('--hidden <n>', 'hidden units per layer', positiveInt('--hidden'), 256)
    .option('--target <x>', 'test accuracy to reach (default 0.97, quick 0.88)', numberIn('--target', 0, 1)));
const hidden = o['hidden'] as number;
const target = (o['target'] as number | undefined) ?? (o.quick ? 0.88 : 0.97);

const train = X.loadMnist('train', { limit: o.trainRows });
const test = X.loadMnist('test', { limit: o.testRows });
console.log(`MNIST: ${train.x.shape[0]} training and ${test.x.shape[0]} test images`);
const n = await startWorkers(o);
console.log(`${plural(n, 'worker')} (${o.devices}); MLP 784-${hidden}-${hidden}-10, Adam lr ${o.lr}, batch ${o.batch}, ${plural(o.epochs, 'epoch')}`);

// The model: layers over shared variables; each worker keeps its own copy of them.
const rng = new X.Rng(o.seed);
const net = X.sequential(
  X.dense(784, hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dense(hidden, hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dense(hidden, 10, { rng: rng.fork() }),
);
const x = T.matrix('x');
const y = T.vector('y', 'int32');
const logits = net.apply(x, X.trainMode());
const trainStep = X.makeTrainFunction(X.crossEntropy(logits, y), net.params, [x, y], 'adam', { learningRate: o.lr, outputs: [[X.accuracy(logits, y), 'avg']] });
const validate = makeValidator(net.apply(x, X.evalMode()), [x, y], y);

const { xs, ys, xt, yt } = mnistData(train, test);

let accuracy = 0;
const t0 = performance.now();
for (let epoch = 1; epoch <= o.epochs; epoch++) {
  const te = performance.now();
  let lossSum = 0, accSum = 0, steps = 0, samples = 0;
  const batches = epochBatches(rng, train.x.shape[0]!, o.batch);
  const progress = epochProgress(epoch, o.epochs, batches.length);
  for (const batch of batches) {
    const { loss, outputs } = await trainStep.step(xs, ys, { batch });
    lossSum += loss;
    accSum += outputs[0]!.item();
    steps++;
    samples += batch.length;
    progress.update(steps, stepInfo(lossSum / steps, samples, te));
  }
  progress.stop();
  const trainSeconds = seconds(te);
  const v = await validate([xt, yt], o.slices);
  accuracy = v.accuracy;
  console.log(`epoch ${epoch}: train loss ${(lossSum / steps).toFixed(4)}, train accuracy ${pct(accSum / steps)}, test loss ${v.loss.toFixed(4)}, `
    + `test accuracy ${pct(v.accuracy)}, ${trainSeconds.toFixed(1)} s (${Math.round(train.x.shape[0]! / trainSeconds)} samples/s)`);
}
console.log(`trained in ${seconds(t0).toFixed(1)} s`);
await synk.close();
finish('train-mnist-mlp', accuracy, target);
