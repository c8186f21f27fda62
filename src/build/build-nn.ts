// Neural-network builders: softmax / logSoftmax, cross-entropies, conv2d and 2-d pooling, plus
// the method forms x.softmax() and x.logSoftmax().
import { Variable, asVariable } from '../tensor/variable.js';
import { isFloat, isInteger } from '../tensor/dtype.js';
import * as B from './build.js';
import type { TensorLike } from './build.js';
import { applyOp } from '../ops/apply.js';
import type { Conv2dAttrs } from '../ops/conv.js';
import type { AvgPoolAttrs, PoolAttrs } from '../ops/pool.js';

function axisOf(op: string, x: Variable, axis: number): number {
  if (!Number.isInteger(axis) || axis < -x.ndim || axis >= x.ndim) throw new TypeError(`${op}: axis ${axis} is out of range for ${x.label()} (ndim ${x.ndim})`);
  return axis < 0 ? axis + x.ndim : axis;
}

/** exp(x) / sum(exp(x)) along `axis` (default: the last), computed stably (max-shifted). */
export function softmax(x: TensorLike, axis = -1): Variable {
  const v = asVariable(x, 'softmax: x');
  return applyOp('softmax', [v], { axis: axisOf('softmax', v, axis) });
}

/** log(softmax(x)) along `axis`, computed stably as x - max - log(sum(exp(x - max))). */
export function logSoftmax(x: TensorLike, axis = -1): Variable {
  const v = asVariable(x, 'logSoftmax: x');
  return applyOp('logSoftmax', [v], { axis: axisOf('logSoftmax', v, axis) });
}

/**
 * Theano's categorical_crossentropy(coding_dist, true_dist): per-row losses (a vector for a matrix of
 * probabilities). `trueDist` is either integer class indices (one per row, ndim one less than
 * `codingDist`): -log(coding[i, t_i]); or a one-hot / probability matrix like `codingDist`:
 * -sum(true * log(coding), last axis). `codingDist` must hold probabilities (e.g. softmax output);
 * no clipping is applied, so a probability of exactly 0 for the target gives Inf. Training should
 * prefer crossentropyFromLogits, which is stable.
 */
export function categoricalCrossentropy(codingDist: TensorLike, trueDist: TensorLike): Variable {
  const p = asVariable(codingDist, 'categoricalCrossentropy: codingDist');
  const t = asVariable(trueDist, 'categoricalCrossentropy: trueDist', p.dtype);
  return B.neg(pickTargets('categoricalCrossentropy', p, t, B.log));
}

/**
 * Cross-entropy of softmax(logits) against `targets` (integer classes or one-hot / probabilities),
 * per row, computed through logSoftmax so it stays finite for large logits.
 */
export function crossentropyFromLogits(logits: TensorLike, targets: TensorLike): Variable {
  const z = asVariable(logits, 'crossentropyFromLogits: logits');
  const t = asVariable(targets, 'crossentropyFromLogits: targets', z.dtype);
  return B.neg(pickTargets('crossentropyFromLogits', z, t, (v) => logSoftmax(v, -1)));
}

/** sum(t * logp(x), last axis) for distribution targets, logp(x)[..., t] for integer targets. */
function pickTargets(op: string, x: Variable, t: Variable, logp: (x: Variable) => Variable): Variable {
  if (x.ndim < 1 || !isFloat(x.dtype)) throw new TypeError(`${op}: the predictions must be a float tensor with ndim >= 1, got ${x.label()}`);
  if (isInteger(t.dtype)) {
    if (t.ndim !== x.ndim - 1) throw new TypeError(`${op}: integer targets need ndim ${x.ndim - 1} (one class per row of ${x.label()}), got ${t.label()}`);
    return applyOp('takeRowwise', [logp(x), t], {});
  }
  if (t.ndim !== x.ndim)
    throw new TypeError(`${op}: distribution targets need the predictions' ndim ${x.ndim}, got ${t.label()} (integer class targets must be int32 or uint8)`);
  return B.sum(B.mul(t, logp(x)), -1);
}

/**
 * Theano's binary_crossentropy, elementwise: -(target·log(output) + (1 - target)·log(1 - output)).
 * `output` holds probabilities; it is not clipped, so outputs of exactly 0 or 1 give Inf (or NaN
 * where the target is 0 or 1 too). Prefer binaryCrossentropyFromLogits for training.
 */
export function binaryCrossentropy(output: TensorLike, target: TensorLike): Variable {
  const o = asVariable(output, 'binaryCrossentropy: output');
  const t = asVariable(target, 'binaryCrossentropy: target', o.dtype);
  return B.neg(B.add(B.mul(t, B.log(o)), B.mul(B.sub(1, t), B.log(B.sub(1, o)))));
}

/** binaryCrossentropy(sigmoid(logits), target) computed stably: softplus(x) - x·target. */
export function binaryCrossentropyFromLogits(logits: TensorLike, target: TensorLike): Variable {
  const z = asVariable(logits, 'binaryCrossentropyFromLogits: logits');
  const t = asVariable(target, 'binaryCrossentropyFromLogits: target', z.dtype);
  return B.sub(B.softplus(z), B.mul(z, t));
}

// ---- convolution and pooling -------------------------------------------------------------------

/** One number for both spatial axes, or [height, width]. */
export type IntPair = number | readonly [number, number];

/** Options of {@link conv2d}: stride, padding, dilation (each a number or [h, w]) and groups. */
export interface Conv2dOptions {
  stride?: IntPair;
  /** Zero padding per side: a number, [h, w], 'valid' (0) or 'same' (stride 1 only; output size = input size). */
  padding?: IntPair | 'valid' | 'same';
  dilation?: IntPair;
  groups?: number;
}

function pair(op: string, what: string, v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((d) => typeof d === 'number')) return [v[0] as number, v[1] as number];
  throw new TypeError(`${op}: ${what} must be a number or [h, w], got ${JSON.stringify(v)}`);
}

function convAttrs(op: string, o: Conv2dOptions): Conv2dAttrs {
  const p = o.padding ?? 0;
  return {
    stride: pair(op, 'stride', o.stride ?? 1),
    padding: p === 'same' ? 'same' : p === 'valid' ? [0, 0] : pair(op, 'padding', p),
    dilation: pair(op, 'dilation', o.dilation ?? 1),
    groups: o.groups ?? 1,
  };
}

/**
 * 2-d convolution (cross-correlation, as in every deep-learning library) of `input` (N, C, H, W)
 * with `filters` (O, C / groups, KH, KW), giving (N, O, OH, OW) with
 * OH = floor((H + 2·padding - dilation·(KH - 1) - 1) / stride) + 1.
 */
export function conv2d(input: TensorLike, filters: TensorLike, options: Conv2dOptions = {}): Variable {
  const x = asVariable(input, 'conv2d: input');
  const w = asVariable(filters, 'conv2d: filters');
  return applyOp('conv2d', [x, w], convAttrs('conv2d', options));
}

/** The gradient of conv2d with respect to its input, given the output gradient (inputLike gives the input's shape). */
export function conv2dInputGrad(outputGrad: Variable, filters: Variable, inputLike: Variable, options: Conv2dOptions = {}): Variable {
  return applyOp('conv2dInputGrad', [outputGrad, filters, inputLike], convAttrs('conv2dInputGrad', options));
}

/** The gradient of conv2d with respect to its filters, given the output gradient (filtersLike gives the filters' shape). */
export function conv2dFilterGrad(input: Variable, outputGrad: Variable, filtersLike: Variable, options: Conv2dOptions = {}): Variable {
  return applyOp('conv2dFilterGrad', [input, outputGrad, filtersLike], convAttrs('conv2dFilterGrad', options));
}

/** Options of {@link maxPool2d} and {@link avgPool2d}. */
export interface Pool2dOptions {
  kernel: IntPair;
  /** Default: the kernel (non-overlapping windows). */
  stride?: IntPair;
  /** Implicit padding per side, less than the kernel (ignored by max; zeros for average). */
  padding?: IntPair;
}

function poolAttrs(op: string, o: Pool2dOptions): PoolAttrs {
  if (typeof o !== 'object' || o === null || o.kernel === undefined) throw new TypeError(`${op}: options need a kernel size, e.g. { kernel: 2 }`);
  const kernel = pair(op, 'kernel', o.kernel);
  return { kernel, stride: o.stride === undefined ? kernel : pair(op, 'stride', o.stride), padding: pair(op, 'padding', o.padding ?? 0) };
}

/** Max over each window of the last two axes; the gradient goes to the first maximum of each window. */
export function maxPool2d(x: TensorLike, options: Pool2dOptions): Variable {
  const v = asVariable(x, 'maxPool2d: x');
  return applyOp('maxPool2d', [v], poolAttrs('maxPool2d', options));
}

/** Average over each window of the last two axes (padding counted as zeros unless countIncludePad is false). */
export function avgPool2d(x: TensorLike, options: Pool2dOptions & { countIncludePad?: boolean }): Variable {
  const v = asVariable(x, 'avgPool2d: x');
  const attrs: AvgPoolAttrs = { ...poolAttrs('avgPool2d', options), countIncludePad: options.countIncludePad ?? true };
  return applyOp('avgPool2d', [v], attrs);
}

declare module '../tensor/variable.js' {
  interface Variable {
    /** Stable softmax along `axis` (default -1). */
    softmax(axis?: number): Variable;
    /** Stable log-softmax along `axis` (default -1). */
    logSoftmax(axis?: number): Variable;
  }
}

Object.assign(Variable.prototype, {
  softmax(this: Variable, axis?: number) {
    return softmax(this, axis);
  },
  logSoftmax(this: Variable, axis?: number) {
    return logSoftmax(this, axis);
  },
});

/** A per-feature vector (one value per entry of axis 1) shaped to broadcast over an ndim-axis operand. */
export function perFeature(v: Variable, ndim: number): Variable {
  return B.dimshuffle(v, Array.from({ length: ndim }, (_, i) => (i === 1 ? 0 : 'x')));
}

/** The elements per feature of x (the product of every axis but 1), in x's dtype. */
export function featureCount(x: Variable): Variable {
  const shape = B.shapeOf(x);
  return B.cast(shape.filter((_, i) => i !== 1).reduce((p: Variable, d) => B.mul(p, d)), x.dtype);
}

/** Batch mean and biased variance of x over every axis but 1, as a [2, features] tensor (see src/ops/batchnorm.ts). */
export function batchNormStats(x: TensorLike): Variable {
  return applyOp('bnStats', [asVariable(x, 'batchNormStats: x')], {});
}

/** x normalised with `stats` = batchNormStats(x), scaled by gamma and shifted by beta (one value per feature each). */
export function batchNormApply(x: Variable, stats: Variable, gamma: TensorLike, beta: TensorLike, epsilon: number): Variable {
  return applyOp('bnTrain', [x, stats, asVariable(gamma, 'batchNormApply: gamma'), asVariable(beta, 'batchNormApply: beta')], { epsilon });
}
