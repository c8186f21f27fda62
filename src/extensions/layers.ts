// Building blocks for models: small modules over shared-variable parameters, composable by hand or
// with sequential(). Each module's math is also exported as a pure function of symbolic parameters
// (denseForward, conv2dForward, batchNormTrain, ...) so gradients can be checked directly.
//
//   const mode = trainMode();                 // training: batch statistics, dropout on
//   const logits = net.apply(x, mode);        // mode.updates collects running-statistic updates
//   makeTrainFunction(loss, net.params, [x, y], 'adam', { updates: mode.updates });
import { NDArray, describe } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';
import { SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { dot } from '../build/build-linalg.js';
import { subtensor } from '../build/build-shape.js';
import {
  conv2d,
  crossentropyFromLogits as crossentropyFromLogitsOf,
  maxPool2d,
  avgPool2d,
  batchNormApply,
  batchNormStats,
  featureCount,
  perFeature,
  type Conv2dOptions,
  type IntPair,
  type Pool2dOptions,
} from '../build/build-nn.js';
import { randomStreams, type RandomStreams } from '../build/random-streams.js';
import { Rng, initializers, type InitName, type Initializer } from './init.js';

/** Whether a graph is built for training, and the state updates the modules ask for. */
export interface Mode {
  readonly training: boolean;
  readonly updates: [SharedVariable, Variable][];
}
/**
 * A fresh training {@link Mode}: dropout active, batch norm on batch statistics (its running-statistics updates
 * collect in `updates`).
 */
export const trainMode = (): Mode => ({ training: true, updates: [] });
/** A fresh inference {@link Mode}: dropout off, batch norm on its running statistics. */
export const evalMode = (): Mode => ({ training: false, updates: [] });

/** A layer or network: its parameters and state, and `apply` to build its output graph. */
export interface Module {
  /** Trainable parameters. */
  readonly params: readonly SharedVariable[];
  /** Non-trained state (running statistics), saved with the parameters. */
  readonly states: readonly SharedVariable[];
  /** The output for input `x`, built in `mode` (default {@link evalMode}). */
  apply(x: Variable, mode?: Mode): Variable;
}

/** The built-in activations by name. */
export type ActivationName = 'relu' | 'tanh' | 'sigmoid' | 'softplus' | 'identity';
/** An activation: a built-in name or any function of a variable. */
export type Activation = ActivationName | ((x: Variable) => Variable);

function activate(x: Variable, a: Activation | undefined): Variable {
  if (a === undefined || a === 'identity') return x;
  if (typeof a === 'function') return a(x);
  switch (a) {
    case 'relu':
      return B.relu(x);
    case 'tanh':
      return B.tanh(x);
    case 'sigmoid':
      return B.sigmoid(x);
    case 'softplus':
      return B.softplus(x);
    default:
      throw new TypeError(`activation: unknown ${JSON.stringify(a satisfies never)}; expected relu, tanh, sigmoid, softplus, identity or a function`);
  }
}

const counters = new Map<string, number>();
function autoName(kind: string, given: string | undefined): string {
  if (given !== undefined) return given;
  const k = counters.get(kind) ?? 0;
  counters.set(kind, k + 1);
  return `${kind}${k}`;
}

function positiveInt(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${describe(v)}`);
  return v;
}

/**
 * How parameters are named after their layer's prefix: 'synk' (default: `conv0.W`, `conv0.b`, `bn0.gamma`, `bn0.beta`,
 * `bn0.runningMean`, `bn0.runningVar`) or 'torch' (PyTorch's state_dict keys: `.weight`, `.bias`, `.running_mean`,
 * `.running_var`), so a safetensors file can be exchanged with a PyTorch model of the same names.
 */
export type ParamNaming = 'synk' | 'torch';

function suffixes(naming: ParamNaming | undefined, what: string) {
  if (naming === undefined || naming === 'synk') return { weight: 'W', bias: 'b', gamma: 'gamma', beta: 'beta', mean: 'runningMean', var: 'runningVar' };
  if (naming === 'torch') return { weight: 'weight', bias: 'bias', gamma: 'weight', beta: 'bias', mean: 'running_mean', var: 'running_var' };
  throw new TypeError(`${what}: naming must be 'synk' or 'torch', got ${describe(naming)}`);
}

/** Options shared by the layers with parameters. */
export interface ParamOptions {
  /** Prefix of the parameter names (default: kind + counter, e.g. dense0). */
  name?: string;
  /** Generator of the initial weights (or a seed for a fresh one). */
  rng?: Rng;
  seed?: number;
  dtype?: DType;
}

function weight(shape: number[], init: InitName | Initializer, o: ParamOptions, name: string): SharedVariable {
  const f = typeof init === 'function' ? init : initializers[init];
  if (!f) throw new TypeError(`init: unknown initializer ${JSON.stringify(init)}; expected ${Object.keys(initializers).join(', ')} or a function`);
  const value = f(shape, { rng: o.rng ?? new Rng(o.seed ?? 0), dtype: o.dtype ?? 'float32' });
  return new SharedVariable(value, { name });
}

const constantParam = (shape: number[], value: number, dtype: DType | undefined, name: string) =>
  new SharedVariable(NDArray.full(shape, value, dtype ?? 'float32'), { name });

// ---- dense -----------------------------------------------------------------------------------

/** x·W + b. */
export function denseForward(x: Variable, W: Variable, b?: Variable): Variable {
  const y = dot(x, W);
  return b ? B.add(y, b) : y;
}

/**
 * Options of {@link dense}: the activation (default identity), whether there is a bias (default true) and the weight
 * initialiser (default glorotUniform).
 */
export interface DenseOptions extends ParamOptions {
  activation?: Activation;
  bias?: boolean;
  init?: InitName | Initializer;
}

/** A fully connected layer: activation(x·W + b), W of shape (nIn, nOut); made by {@link dense}. */
export class Dense implements Module {
  readonly W: SharedVariable;
  readonly b: SharedVariable | null;
  readonly params: readonly SharedVariable[];
  readonly states: readonly SharedVariable[] = [];
  constructor(
    readonly nIn: number,
    readonly nOut: number,
    readonly options: DenseOptions = {},
  ) {
    positiveInt('dense: nIn', nIn);
    positiveInt('dense: nOut', nOut);
    const name = autoName('dense', options.name);
    this.W = weight([nIn, nOut], options.init ?? 'glorotUniform', options, `${name}.W`);
    this.b = options.bias === false ? null : constantParam([nOut], 0, options.dtype, `${name}.b`);
    this.params = this.b ? [this.W, this.b] : [this.W];
  }
  apply(x: Variable): Variable {
    if (x.ndim !== 2) throw new TypeError(`dense: expected a matrix (rows, ${this.nIn}), got ${x.label()}; flatten it first`);
    return activate(denseForward(x, this.W, this.b ?? undefined), this.options.activation);
  }
}
/**
 * A fully connected layer from `nIn` to `nOut` features (a {@link Dense}).
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * import * as X from 'synkhronos/extensions';
 * const net = X.sequential(X.dense(4, 8, { activation: 'relu', seed: 1 }), X.dense(8, 2));
 * const x = T.matrix('x');
 * const f = T.fn({ inputs: [x], outputs: net.apply(x) });
 * console.log((f([[1, 2, 3, 4]]) as T.NDArray).shape, net.params.map((p) => p.name)); // [1, 2], dense0.W ...
 * ```
 */
export const dense = (nIn: number, nOut: number, options?: DenseOptions): Dense => new Dense(nIn, nOut, options);

// ---- conv2d ----------------------------------------------------------------------------------

/** conv2d(x, W) + b per output channel. */
export function conv2dForward(x: Variable, W: Variable, b?: Variable, options: Conv2dOptions = {}): Variable {
  const y = conv2d(x, W, options);
  return b ? B.add(y, B.dimshuffle(b, ['x', 0, 'x', 'x'])) : y;
}

/**
 * Options of {@link conv2dLayer}: those of {@link conv2d} plus the activation (default identity), bias (default true)
 * and weight initialiser (default heNormal).
 */
export interface Conv2dLayerOptions extends ParamOptions, Conv2dOptions {
  /** Suffixes of the parameter names (default 'synk'; see {@link ParamNaming}). */
  naming?: ParamNaming;
  activation?: Activation;
  bias?: boolean;
  init?: InitName | Initializer;
}

/**
 * A 2-d convolution layer over NCHW input: activation(conv2d(x, W) + b), W of shape (out, in / groups, kh, kw);
 * made by {@link conv2dLayer}.
 */
export class Conv2dLayer implements Module {
  readonly W: SharedVariable;
  readonly b: SharedVariable | null;
  readonly params: readonly SharedVariable[];
  readonly states: readonly SharedVariable[] = [];
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: IntPair,
    readonly options: Conv2dLayerOptions = {},
  ) {
    positiveInt('conv2dLayer: inChannels', inChannels);
    positiveInt('conv2dLayer: outChannels', outChannels);
    const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
    positiveInt('conv2dLayer: kernel height', kh);
    positiveInt('conv2dLayer: kernel width', kw);
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0) throw new RangeError(`conv2dLayer: inChannels ${inChannels} is not divisible by groups ${groups}`);
    const name = autoName('conv', options.name);
    const sfx = suffixes(options.naming, 'conv2dLayer');
    this.W = weight([outChannels, inChannels / groups, kh, kw], options.init ?? 'heNormal', options, `${name}.${sfx.weight}`);
    this.b = options.bias === false ? null : constantParam([outChannels], 0, options.dtype, `${name}.${sfx.bias}`);
    this.params = this.b ? [this.W, this.b] : [this.W];
  }
  apply(x: Variable): Variable {
    if (x.ndim !== 4) throw new TypeError(`conv2dLayer: expected (N, ${this.inChannels}, H, W), got ${x.label()}`);
    const { stride, padding, dilation, groups } = this.options;
    const conv: Conv2dOptions = {
      ...(stride !== undefined ? { stride } : {}),
      ...(padding !== undefined ? { padding } : {}),
      ...(dilation !== undefined ? { dilation } : {}),
      ...(groups !== undefined ? { groups } : {}),
    };
    return activate(conv2dForward(x, this.W, this.b ?? undefined, conv), this.options.activation);
  }
}
/** A 2-d convolution layer (a {@link Conv2dLayer}) with a `kernel` of one size or [h, w]. */
export const conv2dLayer = (inChannels: number, outChannels: number, kernel: IntPair, options?: Conv2dLayerOptions): Conv2dLayer =>
  new Conv2dLayer(inChannels, outChannels, kernel, options);

// ---- batch normalisation -----------------------------------------------------------------------

/** The axes statistics are taken over: all but the feature axis (1). */
export function normAxes(ndim: number): number[] {
  if (ndim < 2) throw new TypeError(`batchNorm: expected at least 2 axes (rows, features, ...), got ndim ${ndim}`);
  return [0, ...Array.from({ length: ndim - 2 }, (_, i) => i + 2)];
}

/**
 * Training-mode batch norm: normalised with the batch's mean and (biased) variance. Two ops
 * (batchNormStats, batchNormApply), each a pass or two over x on fast devices, with batch norm's
 * whole backward pass as their gradient (src/ops/batchnorm.ts).
 */
export function batchNormTrain(
  x: Variable,
  gamma: Variable,
  beta: Variable,
  epsilon = 1e-5,
): { y: Variable; mean: Variable; variance: Variable; count: Variable } {
  normAxes(x.ndim); // refuses ndim < 2 with the layer's message
  const stats = batchNormStats(x);
  return { y: batchNormApply(x, stats, gamma, beta, epsilon), mean: subtensor(stats, [0]), variance: subtensor(stats, [1]), count: featureCount(x) };
}

/** Inference-mode batch norm: normalised with given (running) statistics. */
export function batchNormInference(x: Variable, gamma: Variable, beta: Variable, mean: Variable, variance: Variable, epsilon = 1e-5): Variable {
  const scale = B.mul(gamma, B.reciprocal(B.sqrt(B.add(variance, epsilon))));
  const shift = B.sub(beta, B.mul(mean, scale));
  return B.add(B.mul(x, perFeature(scale, x.ndim)), perFeature(shift, x.ndim));
}

/** Options of {@link batchNorm}: the running-statistics momentum (default 0.1), epsilon (default 1e-5), name, naming and dtype. */
export interface BatchNormOptions {
  name?: string;
  /** Suffixes of the parameter names (default 'synk'; see {@link ParamNaming}). */
  naming?: ParamNaming;
  momentum?: number;
  epsilon?: number;
  dtype?: DType;
}

/**
 * Batch normalisation over every axis but 1 (PyTorch's BatchNorm1d/2d): training mode uses the
 * batch's statistics and asks (through mode.updates) for running = (1 − m)·running + m·batch, the
 * variance unbiased (n/(n − 1)); inference mode uses the running statistics. In data-parallel
 * training each rank normalises with its own rows; makeTrainFunction averages the running
 * statistics over ranks (weighted by rows) so they stay equal everywhere.
 */
export class BatchNorm implements Module {
  readonly gamma: SharedVariable;
  readonly beta: SharedVariable;
  readonly runningMean: SharedVariable;
  readonly runningVar: SharedVariable;
  readonly params: readonly SharedVariable[];
  readonly states: readonly SharedVariable[];
  readonly momentum: number;
  readonly epsilon: number;
  constructor(
    readonly features: number,
    options: BatchNormOptions = {},
  ) {
    positiveInt('batchNorm: features', features);
    this.momentum = options.momentum ?? 0.1;
    this.epsilon = options.epsilon ?? 1e-5;
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new RangeError(`batchNorm: momentum must be in [0, 1], got ${this.momentum}`);
    if (!(this.epsilon >= 0)) throw new RangeError(`batchNorm: epsilon must be >= 0, got ${this.epsilon}`);
    const name = autoName('bn', options.name);
    const sfx = suffixes(options.naming, 'batchNorm');
    this.gamma = constantParam([features], 1, options.dtype, `${name}.${sfx.gamma}`);
    this.beta = constantParam([features], 0, options.dtype, `${name}.${sfx.beta}`);
    this.runningMean = constantParam([features], 0, options.dtype, `${name}.${sfx.mean}`);
    this.runningVar = constantParam([features], 1, options.dtype, `${name}.${sfx.var}`);
    this.params = [this.gamma, this.beta];
    this.states = [this.runningMean, this.runningVar];
  }
  apply(x: Variable, mode: Mode = evalMode()): Variable {
    if (!mode.training) return batchNormInference(x, this.gamma, this.beta, this.runningMean, this.runningVar, this.epsilon);
    const { y, mean, variance, count } = batchNormTrain(x, this.gamma, this.beta, this.epsilon);
    const m = this.momentum;
    const unbiased = B.mul(variance, B.div(count, B.maximum(B.sub(count, 1), 1)));
    mode.updates.push(
      [this.runningMean, B.add(B.mul(1 - m, this.runningMean), B.mul(m, mean))],
      [this.runningVar, B.add(B.mul(1 - m, this.runningVar), B.mul(m, unbiased))],
    );
    return y;
  }
}
/** A batch normalisation layer over `features` channels (a {@link BatchNorm}). */
export const batchNorm = (features: number, options?: BatchNormOptions): BatchNorm => new BatchNorm(features, options);

// ---- parameter-free modules ------------------------------------------------------------------

class Stateless implements Module {
  readonly params: readonly SharedVariable[] = [];
  readonly states: readonly SharedVariable[] = [];
  constructor(private readonly f: (x: Variable, mode: Mode) => Variable) {}
  apply(x: Variable, mode: Mode = evalMode()): Variable {
    return this.f(x, mode);
  }
}

/** A max-pooling layer (see {@link maxPool2d}). */
export const maxPool = (kernel: IntPair, options: Omit<Pool2dOptions, 'kernel'> = {}): Module => new Stateless((x) => maxPool2d(x, { ...options, kernel }));
/** An average-pooling layer (see {@link avgPool2d}). */
export const avgPool = (kernel: IntPair, options: Omit<Pool2dOptions, 'kernel'> & { countIncludePad?: boolean } = {}): Module =>
  new Stateless((x) => avgPool2d(x, { ...options, kernel }));
/** Mean over the spatial axes: (N, C, H, W) -> (N, C). */
export const globalAvgPool = (): Module => new Stateless((x) => B.mean(x, [2, 3]));
/** (N, ...) -> (N, product of the rest). */
export const flatten = (): Module => new Stateless((x) => B.flatten(x, 2));
/** A layer that only applies an activation. */
export const activation = (a: Activation): Module => new Stateless((x) => activate(x, a));

/** Inverted dropout: training zeroes each element with probability `rate` and scales the rest by 1/(1 − rate). */
export function dropoutForward(x: Variable, rate: number, streams: RandomStreams): Variable {
  if (rate === 0) return x;
  const keep = streams.bernoulli(B.shapeOf(x), { p: 1 - rate, dtype: x.dtype });
  return B.mul(B.mul(x, keep), 1 / (1 - rate));
}

/**
 * A dropout layer: in training mode each element is zeroed with probability `rate` and the rest scaled by 1/(1 - rate);
 * in inference mode it passes the input through. Draws come from `streams` or a fresh stream seeded with `seed`.
 */
export function dropout(rate: number, options: { streams?: RandomStreams; seed?: number } = {}): Module {
  if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw new RangeError(`dropout: rate must be in [0, 1), got ${describe(rate)}`);
  const streams = options.streams ?? randomStreams(options.seed ?? 0);
  return new Stateless((x, mode) => (mode.training ? dropoutForward(x, rate, streams) : x));
}

// ---- composition -----------------------------------------------------------------------------

/** Layers applied one after the other; its parameters and state are theirs, in order. Made by {@link sequential}. */
export class Sequential implements Module {
  readonly layers: readonly Module[];
  constructor(layers: readonly Module[]) {
    layers.forEach((l, i) => {
      if (typeof l?.apply !== 'function') throw new TypeError(`sequential: layer ${i} is not a module (no apply), got ${describe(l)}`);
    });
    this.layers = layers;
  }
  get params(): SharedVariable[] {
    return this.layers.flatMap((l) => l.params);
  }
  get states(): SharedVariable[] {
    return this.layers.flatMap((l) => l.states);
  }
  apply(x: Variable, mode: Mode = evalMode()): Variable {
    return this.layers.reduce((h, l) => l.apply(h, mode), x);
  }
}
/** Composes layers into a {@link Sequential}. */
export const sequential = (...layers: Module[]): Sequential => new Sequential(layers);

/** Options of {@link residualBlock}: the stride of the first convolution (default 1) and the batch norms' momentum. */
export interface ResidualOptions extends ParamOptions {
  stride?: number;
  momentum?: number;
}

/**
 * A ResNet basic block: relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)), the shortcut being
 * the identity, or a strided 1x1 convolution with batch norm when the shape changes.
 */
export class ResidualBlock implements Module {
  readonly main: Sequential;
  readonly shortcut: Sequential | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    options: ResidualOptions = {},
  ) {
    const stride = options.stride ?? 1;
    positiveInt('residualBlock: stride', stride);
    const name = autoName('res', options.name);
    const rng = options.rng ?? new Rng(options.seed ?? 0);
    const common = { bias: false, ...(options.dtype ? { dtype: options.dtype } : {}) };
    const bn = (n: number, k: string) =>
      batchNorm(n, {
        name: `${name}.${k}`,
        ...(options.momentum !== undefined ? { momentum: options.momentum } : {}),
        ...(options.dtype ? { dtype: options.dtype } : {}),
      });
    this.main = sequential(
      conv2dLayer(inChannels, outChannels, 3, { ...common, stride, padding: 1, rng: rng.fork(), name: `${name}.conv1` }),
      bn(outChannels, 'bn1'),
      activation('relu'),
      conv2dLayer(outChannels, outChannels, 3, { ...common, padding: 1, rng: rng.fork(), name: `${name}.conv2` }),
      bn(outChannels, 'bn2'),
    );
    this.shortcut =
      stride === 1 && inChannels === outChannels
        ? null
        : sequential(conv2dLayer(inChannels, outChannels, 1, { ...common, stride, rng: rng.fork(), name: `${name}.proj` }), bn(outChannels, 'bnProj'));
  }
  get params(): SharedVariable[] {
    return [...this.main.params, ...(this.shortcut?.params ?? [])];
  }
  get states(): SharedVariable[] {
    return [...this.main.states, ...(this.shortcut?.states ?? [])];
  }
  apply(x: Variable, mode: Mode = evalMode()): Variable {
    return B.relu(B.add(this.main.apply(x, mode), this.shortcut ? this.shortcut.apply(x, mode) : x));
  }
}
/** A ResNet basic block (a {@link ResidualBlock}) from `inChannels` to `outChannels`. */
export const residualBlock = (inChannels: number, outChannels: number, options?: ResidualOptions): ResidualBlock =>
  new ResidualBlock(inChannels, outChannels, options);

// ---- losses and metrics ----------------------------------------------------------------------

/** Mean cross-entropy of softmax(logits) against integer classes (or one-hot rows). */
export const crossEntropy = (logits: Variable, targets: Variable): Variable => B.mean(crossentropyFromLogitsOf(logits, targets));
/** Fraction of rows whose arg-max equals the integer class. */
export const accuracy = (logits: Variable, targets: Variable): Variable => B.mean(B.cast(B.eq(B.argmax(logits, -1), B.cast(targets, 'int32')), logits.dtype));
/** Number of correct rows (sum over ranks with op 'sum'). */
export const correctCount = (logits: Variable, targets: Variable): Variable =>
  B.sum(B.cast(B.eq(B.argmax(logits, -1), B.cast(targets, 'int32')), logits.dtype));
