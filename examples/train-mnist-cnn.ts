// A convolutional network on real MNIST, data-parallel: two 5x5 convolutions with max pooling, a
// dense layer with dropout (seeded random streams; each worker draws its own masks), Adam. The
// images live in shared memory as (n, 1, 28, 28); steps pass shuffled `batch` index lists;
// validation covers the whole test set with numSlices. Target: >= 98.5% test accuracy at full size.
// Run: npm run build && node dist/examples/train-mnist-cnn.js [--quick] [--help]
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { plural } from '../src/extensions/plural.js';
import { numberIn, positiveInt, positiveIntList } from './_cli.js';
import { epochBatches, epochProgress, finish, makeValidator, parseDemoOptions, pct, seconds, startWorkers, stepInfo, mnistData } from './_train-common.js';

const o = parseDemoOptions('train-mnist-cnn', 'CNN conv5x5(C1)-pool-conv5x5(C2)-pool-dense(H)-dropout-10 on MNIST with Adam.',
  { epochs: 3, batch: 128, lr: 1e-3, seed: 3, trainRows: 60000, testRows: 10000, slices: 4 },
  { epochs: 1, trainRows: 4000, testRows: 1000 },
  (c) => c.option('--channels <c1,c2>', 'channels of the two convolutions', positiveIntList('--channels', 2), [16, 32])
    .option('--hidden <n>', 'units of the dense layer', positiveInt('--hidden'), 128)
    .option('--dropout <p>', 'dropout rate before the output layer', numberIn('--dropout', 0, 0.95), 0.25)
    .option('--target <x>', 'test accuracy to reach (default 0.985, quick 0.85)', numberIn('--target', 0, 1)));
const [c1, c2] = o['channels'] as [number, number];
const hidden = o['hidden'] as number;
const target = (o['target'] as number | undefined) ?? (o.quick ? 0.85 : 0.985);

const train = X.loadMnist('train', { limit: o.trainRows, layout: 'image' });
const test = X.loadMnist('test', { limit: o.testRows, layout: 'image' });
const n = await startWorkers(o);
console.log(`MNIST: ${train.x.shape[0]} training and ${test.x.shape[0]} test images; ${plural(n, 'worker')} (${o.devices})`);
console.log(`CNN conv5x5(${c1})-pool-conv5x5(${c2})-pool-dense(${hidden})-dropout(${String(o['dropout'])})-10, Adam lr ${o.lr}, batch ${o.batch}, ` +
  `${plural(o.epochs, 'epoch')}`);

const rng = new X.Rng(o.seed);
const net = X.sequential(
  X.conv2dLayer(1, c1, 5, { padding: 2, activation: 'relu', rng: rng.fork() }), X.maxPool(2),
  X.conv2dLayer(c1, c2, 5, { padding: 2, activation: 'relu', rng: rng.fork() }), X.maxPool(2),
  X.flatten(), X.dense(c2 * 7 * 7, hidden, { activation: 'relu', init: 'heUniform', rng: rng.fork() }),
  X.dropout(o['dropout'] as number, { seed: o.seed }),
  X.dense(hidden, 10, { rng: rng.fork() }),
);
const x = T.tensor4('x');
const y = T.vector('y', 'int32');
const logits = net.apply(x, X.trainMode());
const trainStep = X.makeTrainFunction(X.crossEntropy(logits, y), net.params, [x, y], 'adam', { learningRate: o.lr });
const validate = makeValidator(net.apply(x, X.evalMode()), [x, y], y);

const { xs, ys, xt, yt } = mnistData(train, test);

let accuracy = 0;
const t0 = performance.now();
for (let epoch = 1; epoch <= o.epochs; epoch++) {
  const te = performance.now();
  const batches = epochBatches(rng, train.x.shape[0]!, o.batch);
  let lossSum = 0, samples = 0;
  const progress = epochProgress(epoch, o.epochs, batches.length);
  for (const [k, batch] of batches.entries()) {
    lossSum += await trainStep(xs, ys, { batch });
    samples += batch.length;
    progress.update(k + 1, stepInfo(lossSum / (k + 1), samples, te));
  }
  progress.stop();
  const trainSeconds = seconds(te);
  const v = await validate([xt, yt], o.slices);
  accuracy = v.accuracy;
  console.log(`epoch ${epoch}: train loss ${(lossSum / batches.length).toFixed(4)}, test loss ${v.loss.toFixed(4)}, test accuracy ${pct(v.accuracy)}, `
    + `${trainSeconds.toFixed(1)} s (${Math.round(train.x.shape[0]! / trainSeconds)} samples/s)`);
}
console.log(`trained in ${seconds(t0).toFixed(1)} s`);
await synk.close();
finish('train-mnist-cnn', accuracy, target);
