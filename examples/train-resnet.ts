// ResNet on MNIST (the original's headline demo was ResNet-50 on 8 GPUs): by default torchvision's
// ResNet-18 (X.resnet18: 8 basic blocks in 4 layers, batch norm, global average pooling, fc) with the
// small stem for 28x28 images (one 3x3 convolution, no max pool) at a reduced width (layers of 8, 16,
// 32, 64 channels; --width 64 is torchvision's, 11.2 M parameters); --model small is the earlier
// 3-block network (stem, three residual blocks, --widths). Batch norm trains on each worker's
// rows; its running statistics are averaged over the workers through the flat gradient vector, so
// the inference-mode validation (whole test set, numSlices) sees the same model on every worker.
// Real MNIST by default, or generated images with --synthetic.
// Run: npm run build && node dist/examples/train-resnet.js [--quick] [--synthetic] [--help]
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import * as X from '../src/extensions/index.js';
import { plural } from '../src/extensions/plural.js';
import { Option } from 'commander';
import { numberIn, positiveInt, positiveIntList, positiveNumber } from './_cli.js';
import { epochBatches, epochProgress, finish, makeValidator, parseDemoOptions, pct, seconds, startWorkers, stepInfo, mnistData } from './_train-common.js';

const o = parseDemoOptions(
  'train-resnet',
  'ResNet-18 (small stem, reduced width) or a 3-block ResNet-style CNN on MNIST-shaped images with Adam.',
  { epochs: 1, batch: 64, lr: 2e-3, seed: 4, trainRows: 60000, testRows: 10000, slices: 4 },
  { epochs: 2, batch: 32, lr: 5e-3, trainRows: 2000, testRows: 500 },
  (c) => c.addOption(new Option('--model <name>', "'resnet18' (X.resnet18, small stem) or 'small' (stem and 3 residual blocks)")
    .choices(['resnet18', 'small']).default('resnet18'))
    .option('--width <n>', 'resnet18: channels of its first layer (default 8, quick 4; torchvision 64)', positiveInt('--width'))
    .option('--widths <a,b,c>', 'small: channels of the three stages', positiveIntList('--widths', 3), [8, 16, 32])
    .option('--decay <x>', 'learning-rate factor per epoch (a schedule through setHyper)', positiveNumber('--decay'), 0.5)
    .option('--synthetic', 'generated images instead of MNIST', false)
    .option('--target <x>', 'test accuracy to reach (default 0.98, quick 0.75)', numberIn('--target', 0, 1)));
const widths = o['widths'] as [number, number, number];
const target = (o['target'] as number | undefined) ?? (o.quick ? 0.75 : 0.98);

const synthetic = o['synthetic'] === true;
const train = synthetic ? X.makeImages({ rows: Math.min(o.trainRows, 20000), seed: 1 }) : X.loadMnist('train', { limit: o.trainRows, layout: 'image' });
const test = synthetic ? X.makeImages({ rows: Math.min(o.testRows, 4000), seed: 2 }) : X.loadMnist('test', { limit: o.testRows, layout: 'image' });
const n = await startWorkers(o);
console.log(`${synthetic ? 'generated images' : 'MNIST'}: ${train.x.shape[0]} training and ${test.x.shape[0]} test images; ${plural(n, 'worker')} ` +
  `(${o.devices})`);

const rng = new X.Rng(o.seed);
const [w1, w2, w3] = widths;
const width = (o['width'] as number | undefined) ?? (o.quick ? 4 : 8);
const resnet18 = o['model'] === 'resnet18';
const net: X.Module = resnet18
  ? X.resnet18({ numClasses: 10, inChannels: 1, stem: 'small', width, rng: rng.fork() })
  : X.sequential(
    X.conv2dLayer(1, w1, 3, { padding: 1, bias: false, rng: rng.fork(), name: 'stem' }), X.batchNorm(w1, { name: 'stem.bn' }), X.activation('relu'),
    X.residualBlock(w1, w1, { rng: rng.fork() }),
    X.residualBlock(w1, w2, { stride: 2, rng: rng.fork() }),
    X.residualBlock(w2, w3, { stride: 2, rng: rng.fork() }),
    X.globalAvgPool(),
    X.dense(w3, 10, { rng: rng.fork(), name: 'head' }),
  );
console.log(`${resnet18 ? `ResNet-18 (small stem, layers ${[1, 2, 4, 8].map((k) => k * width).join('-')})` : `ResNet widths ${widths.join('-')}`}: `
  + `${net.params.length} parameter tensors, ` +
  `${net.params.reduce((s, p) => s + p.getValue({ borrow: true }).size, 0)} weights, `
  + `${net.states.length} running statistics; Adam lr ${o.lr}, batch ${o.batch}, ${plural(o.epochs, 'epoch')}`);

const x = T.tensor4('x');
const y = T.vector('y', 'int32');
const mode = X.trainMode();
const logits = net.apply(x, mode);
// mode.updates holds the running-statistic updates of every batch norm: averaged over the workers.
const trainStep = X.makeTrainFunction(X.crossEntropy(logits, y), net.params, [x, y], 'adam', { learningRate: o.lr, updates: mode.updates });
const validate = makeValidator(net.apply(x, X.evalMode()), [x, y], y);

const { xs, ys, xt, yt } = mnistData(train, test);

let accuracy = 0;
const t0 = performance.now();
for (let epoch = 1; epoch <= o.epochs; epoch++) {
  // The schedule changes the shared learning rate; nothing is rebuilt, every worker gets the value.
  trainStep.optimizer.setHyper('learningRate', o.lr * (o['decay'] as number) ** (epoch - 1));
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
  console.log(`epoch ${epoch} (lr ${trainStep.hyper['learningRate']!.getValue().item().toPrecision(2)}): train loss ` +
    `${(lossSum / batches.length).toFixed(4)}, test loss ${v.loss.toFixed(4)}, test accuracy ${pct(v.accuracy)}, `
    + `${trainSeconds.toFixed(1)} s (${Math.round(train.x.shape[0]! / trainSeconds)} samples/s)`);
}
// The running statistics are equal on every worker (averaged through the flat vector).
const stats = (await synk.gather(net.states[0]!)) as T.NDArray;
const size = stats.size / n;
for (let r = 1; r < n; r++) {
  for (let i = 0; i < size; i++) if (stats.data[r * size + i] !== stats.data[i]) throw new Error(`running mean differs on worker ${r}`);
}
console.log(`trained in ${seconds(t0).toFixed(1)} s; batch-norm running statistics equal on ${n === 1 ? 'the only worker' : `all ${n} workers`}`);
await synk.close();
finish('train-resnet', accuracy, target);
