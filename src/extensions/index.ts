// `import * as X from 'synkhronos/extensions'`: training on top of the data-parallel runtime:
// optimizers over one flat gradient, makeTrainFunction, layers, initialisation, safetensors, data sets.
import '../tensor/methods.js';

export * from './optimizers.js';
export { FlatLayout, type FlatEntry } from './flat-gradient.js';
export { makeTrainFunction, type TrainFunction, type TrainOptions, type TrainCallOptions, type TrainStep } from './train.js';
export * from './init.js';
export * from './layers.js';
export * from './safetensors.js';
export * from './datasets/idx.js';
export * from './datasets/mnist.js';
export * from './datasets/synthetic.js';
export * from './svg-chart.js';
export * from './plural.js';
export * from './progress.js';
