// Training-mode batch normalisation as four ops, so that fast devices run it in a few passes over
// the activation instead of the dozen elementwise ops, materialised broadcasts and reductions that
// its composition takes (and the full-size intermediates the backward pass then keeps alive). The
// feature axis is 1; statistics are taken over every other axis (PyTorch's BatchNorm1d/2d/3d):
//   bnStats(x)                          -> [2, C]: the batch mean and the biased variance
//   bnTrain(x, stats, gamma, beta)      -> (x - mean) / sqrt(var + eps) * gamma + beta (then relu, with attrs.relu)
//   bnGradStats(x, stats, gy)           -> [2, C]: sum(gy) and sum(gy * xhat), the gradients of beta and gamma
//   bnGradInput(x, stats, gamma, gy, g) -> gamma / sqrt(var + eps) * (gy - (g[0] + xhat * g[1]) / N)
// where xhat = (x - mean) / sqrt(var + eps) and N the count per feature. bnGradInput is the whole
// gradient of x when stats = bnStats(x) (its path through the statistics included), as cuDNN's and
// PyTorch's batch-norm backward are; the gradient rule checks that the graph has that form.
// The reference performs accumulate in double, a run of inner elements at a time, in row-major order.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { isFloat } from '../tensor/dtype.js';
import { OpRuntimeError, OpTypeError, type OpDef } from './op.js';

export type BatchNormAttrs = { readonly epsilon: number };
/** bnTrain's attributes: with `relu`, relu is applied to the result (the compiler fuses relu(bnTrain(...)) so). */
export type BatchNormTrainAttrs = BatchNormAttrs & { readonly relu?: boolean };
type NoAttrs = Record<string, never>;

/** The layout of a batch-norm operand: `outer` blocks of C features of `inner` elements each (NCHW: N, C, H*W). */
export interface FeatureLayout { readonly outer: number; readonly features: number; readonly inner: number; readonly count: number }

export function featureLayout(op: string, shape: readonly number[]): FeatureLayout {
  if (shape.length < 2) throw new OpRuntimeError(op, `expected at least 2 axes (rows, features, ...), got shape ${shapeToString(shape)}`);
  const outer = shape[0]!;
  const features = shape[1]!;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  return { outer, features, inner, count: outer * inner };
}

function checkFloat(op: string, inputs: readonly TensorType[], arity: number): void {
  if (inputs.length !== arity) throw new OpTypeError(op, inputs, `expects ${arity} inputs, got ${inputs.length}`);
  for (const t of inputs) if (!isFloat(t.dtype)) throw new OpTypeError(op, inputs, `inputs must be float, got ${t.dtype}`);
  if (inputs[0]!.ndim < 2) throw new OpTypeError(op, inputs, 'normalises over every axis but 1, so the input needs ndim >= 2');
}

function checkEpsilon(op: string, inputs: readonly TensorType[], a: BatchNormAttrs): void {
  if (typeof a.epsilon !== 'number' || !(a.epsilon >= 0) || !Number.isFinite(a.epsilon))
    throw new OpTypeError(op, inputs, `epsilon must be a finite number >= 0, got ${JSON.stringify(a.epsilon)}`);
}

/** Refuses an operand whose shape is not `want`. */
function sameShape(op: string, what: string, got: readonly number[], want: readonly number[]): void {
  if (got.length !== want.length || got.some((d, i) => d !== want[i]))
    throw new OpRuntimeError(op, `${what} has shape ${shapeToString(got)}, expected ${shapeToString(want)}`);
}

type Named = readonly (readonly [string, readonly number[]])[];

/**
 * Checks a batch-norm op's operands against x's shape (the reference's and every device's check):
 * `pairs` are [2, C] (stats, gstats), `vectors` [C], `like` shaped as x. Returns x's layout.
 */
export function checkOperands(op: string, xShape: readonly number[], pairs: Named, vectors: Named, like: Named = []): FeatureLayout {
  const g = featureLayout(op, xShape);
  for (const [what, shape] of pairs) sameShape(op, what, shape, [2, g.features]);
  for (const [what, shape] of vectors) sameShape(op, what, shape, [g.features]);
  for (const [what, shape] of like) sameShape(op, what, shape, xShape);
  return g;
}

/**
 * Calls row(base, c) for every run of `inner` consecutive elements of feature c (base: the first's
 * index), in row-major order: the loops inside stay plain array loops (this is also the CPU kernel).
 */
function forEachRun(g: FeatureLayout, row: (base: number, c: number) => void): void {
  for (let n = 0; n < g.outer; n++) for (let c = 0; c < g.features; c++) row((n * g.features + c) * g.inner, c);
}

/** 1 / sqrt(var + eps) per feature. */
function invStds(stats: NDArray, features: number, eps: number): Float64Array {
  const r = new Float64Array(features);
  for (let c = 0; c < features; c++) r[c] = 1 / Math.sqrt(stats.data[features + c]! + eps);
  return r;
}

/** relu as the elementwise op computes it: NaN stays NaN, -0 and negatives give +0. */
const relu = (v: number): number => (v > 0 ? v : v === v ? 0 : v);

export const batchNormOps: Record<'bnStats', OpDef<NoAttrs>> & Record<'bnTrain', OpDef<BatchNormTrainAttrs>>
  & Record<'bnGradStats' | 'bnGradInput', OpDef<BatchNormAttrs>> = {
  bnStats: {
    name: 'bnStats',
    inferType: (inputs) => {
      checkFloat('bnStats', inputs, 1);
      return new TensorType(inputs[0]!.dtype, [false, inputs[0]!.broadcastable[1]!]);
    },
    perform(inputs, _attrs, out) {
      const x = inputs[0]!;
      const g = featureLayout('bnStats', x.shape);
      const xd = x.data;
      const sum = new Float64Array(g.features);
      forEachRun(g, (base, c) => {
        let t = 0;
        for (let k = base; k < base + g.inner; k++) t += xd[k]!;
        sum[c]! += t;
      });
      const mean = sum.map((s) => s / g.count);
      const sq = new Float64Array(g.features);
      forEachRun(g, (base, c) => {
        const m = mean[c]!;
        let t = 0;
        for (let k = base; k < base + g.inner; k++) t += (xd[k]! - m) * (xd[k]! - m);
        sq[c]! += t;
      });
      const res = new NDArray(out.dtype, [2, g.features]);
      for (let c = 0; c < g.features; c++) {
        res.data[c] = g.count > 0 ? mean[c]! : NaN;
        res.data[g.features + c] = g.count > 0 ? sq[c]! / g.count : NaN;
      }
      return res;
    },
  },

  /** Inputs (x, stats, gamma, beta). */
  bnTrain: {
    name: 'bnTrain',
    inferType: (inputs, attrs) => {
      checkFloat('bnTrain', inputs, 4);
      checkEpsilon('bnTrain', inputs, attrs);
      if (attrs.relu !== undefined && typeof attrs.relu !== 'boolean')
        throw new OpTypeError('bnTrain', inputs, `relu must be a boolean, got ${JSON.stringify(attrs.relu)}`);
      return new TensorType(inputs[0]!.dtype, inputs[0]!.broadcastable);
    },
    perform(inputs, attrs, out) {
      const [x, stats, gamma, beta] = inputs as [NDArray, NDArray, NDArray, NDArray];
      const g = checkOperands('bnTrain', x.shape, [['stats', stats.shape]], [['gamma', gamma.shape], ['beta', beta.shape]]);
      const res = new NDArray(out.dtype, x.shape);
      const r = invStds(stats, g.features, attrs.epsilon);
      const [xd, yd] = [x.data, res.data];
      forEachRun(g, (base, c) => {
        const m = stats.data[c]!, scale = r[c]! * gamma.data[c]!, shift = beta.data[c]!;
        for (let k = base; k < base + g.inner; k++) yd[k] = (xd[k]! - m) * scale + shift;
      });
      if (attrs.relu === true) for (let k = 0; k < yd.length; k++) yd[k] = relu(yd[k]!);
      return res;
    },
  },

  /** Inputs (x, stats, gy): [sum(gy), sum(gy * xhat)] per feature. */
  bnGradStats: {
    name: 'bnGradStats',
    inferType: (inputs, attrs) => {
      checkFloat('bnGradStats', inputs, 3);
      checkEpsilon('bnGradStats', inputs, attrs);
      return new TensorType(inputs[2]!.dtype, [false, inputs[0]!.broadcastable[1]!]);
    },
    perform(inputs, attrs, out) {
      const [x, stats, gy] = inputs as [NDArray, NDArray, NDArray];
      const g = checkOperands('bnGradStats', x.shape, [['stats', stats.shape]], [], [['gy', gy.shape]]);
      const sums = new Float64Array(2 * g.features);
      const r = invStds(stats, g.features, attrs.epsilon);
      const [xd, gd] = [x.data, gy.data];
      forEachRun(g, (base, c) => {
        const m = stats.data[c]!;
        let a = 0, b = 0;
        for (let k = base; k < base + g.inner; k++) { a += gd[k]!; b += gd[k]! * (xd[k]! - m); }
        sums[c]! += a;
        sums[g.features + c]! += b * r[c]!;
      });
      const res = new NDArray(out.dtype, [2, g.features]);
      res.data.set(sums);
      return res;
    },
  },

  /** Inputs (x, stats, gamma, gy, gstats): the gradient of x through bnTrain and bnStats together. */
  bnGradInput: {
    name: 'bnGradInput',
    inferType: (inputs, attrs) => {
      checkFloat('bnGradInput', inputs, 5);
      checkEpsilon('bnGradInput', inputs, attrs);
      return new TensorType(inputs[3]!.dtype, inputs[0]!.broadcastable);
    },
    perform(inputs, attrs, out) {
      const [x, stats, gamma, gy, gs] = inputs as [NDArray, NDArray, NDArray, NDArray, NDArray];
      const g = checkOperands('bnGradInput', x.shape, [['stats', stats.shape], ['gstats', gs.shape]], [['gamma', gamma.shape]], [['gy', gy.shape]]);
      const res = new NDArray(out.dtype, x.shape);
      const r = invStds(stats, g.features, attrs.epsilon);
      const [xd, gd, dd] = [x.data, gy.data, res.data];
      forEachRun(g, (base, c) => {
        const m = stats.data[c]!, rc = r[c]!, scale = gamma.data[c]! * rc;
        const g0 = gs.data[c]! / g.count, g1 = gs.data[g.features + c]! / g.count;
        for (let k = base; k < base + g.inner; k++) dd[k] = scale * (gd[k]! - g0 - (xd[k]! - m) * rc * g1);
      });
      return res;
    },
  },
};
