// Gradient rules of matmul, the neural-network ops (softmax, row-wise picks, convolution, pooling)
// and the random draws (disconnected).
import { isFloat } from '../tensor/dtype.js';
import type { Variable } from '../tensor/variable.js';
import { applyOp } from '../ops/apply.js';
import type { Conv2dAttrs } from '../ops/conv.js';
import type { linalgOps } from '../ops/linalg.js';
import type { nnOps } from '../ops/nn.js';
import type { randomOps } from '../ops/random.js';
import * as B from '../build/build.js';
import { subtensor } from '../build/build-shape.js';
import { featureCount, perFeature } from '../build/build-nn.js';
import type { BatchNormTrainAttrs } from '../ops/batchnorm.js';
import type { GradRule, GradRules } from './rule-types.js';

type NnOpName = keyof typeof linalgOps | keyof typeof nnOps | keyof typeof randomOps;

function mm(a: Variable, b: Variable, transA: boolean, transB: boolean): Variable {
  return applyOp('matmul', [a, b], { transA, transB });
}

const conv = (x: Variable, w: Variable, attrs: Conv2dAttrs) => applyOp('conv2d', [x, w], attrs);
const inputGrad = (gy: Variable, w: Variable, xLike: Variable, attrs: Conv2dAttrs) => applyOp('conv2dInputGrad', [gy, w, xLike], attrs);
const filterGrad = (x: Variable, gy: Variable, wLike: Variable, attrs: Conv2dAttrs) => applyOp('conv2dFilterGrad', [x, gy, wLike], attrs);

const floatOrNull = (v: Variable, g: Variable) => (isFloat(v.dtype) ? g : null);


/**
 * bnTrain's gradient is batch norm's whole backward pass (bnGradInput includes the path through the
 * statistics), which is right only when its stats are bnStats of the same x: other statistics
 * would need their own gradient, so any other graph is refused rather than differentiated wrongly.
 */
const bnTrainGrad: GradRule<BatchNormTrainAttrs> = (ctx) => {
  const [x, stats, gamma] = ctx.inputs as [Variable, Variable, Variable, Variable];
  // A fused relu (made by the compiler, after differentiation) is not differentiated here.
  if (ctx.attrs.relu === true) throw new TypeError('grad: bnTrain with a fused relu is a compiled form; differentiate the graph before compiling');
  if (stats.owner?.op !== 'bnStats' || stats.owner.inputs[0] !== x) {
    throw new TypeError(`grad: bnTrain's statistics must be bnStats of its own input (as batchNormTrain builds them), got ${stats.label()}`
      + `${stats.owner ? ` from ${stats.owner.op}` : ''}`);
  }
  const eps = { epsilon: ctx.attrs.epsilon };
  const gstats = applyOp('bnGradStats', [x, stats, ctx.gOut], eps);
  const gx = applyOp('bnGradInput', [x, stats, gamma, ctx.gOut, gstats], eps);
  return [gx, null, subtensor(gstats, [1]), subtensor(gstats, [0])];
};

/** Gradients of the batch mean and biased variance themselves (other uses of the statistics than bnTrain's). */
const bnStatsGrad: GradRule<unknown> = (ctx) => {
  const x = ctx.inputs[0]!;
  const n = featureCount(x);
  const mean = perFeature(subtensor(ctx.output, [0]), x.ndim);
  const gMean = perFeature(subtensor(ctx.gOut, [0]), x.ndim);
  const gVar = perFeature(subtensor(ctx.gOut, [1]), x.ndim);
  // d mean / dx = 1/N; d var / dx = 2 (x - mean) / N.
  return [B.div(B.add(gMean, B.mul(B.mul(gVar, 2), B.sub(x, mean))), n)];
};

// Draws are disconnected: no gradient to the state, the parameters or the shape.
const draw: GradRule<unknown> = (ctx) => ctx.inputs.map(() => null);

/** The linear-algebra, neural-network and random ops' gradient rules. */
export const nnGradRules: GradRules<NnOpName> = {
  matmul: (ctx) => {
    const [a, b] = ctx.inputs as [Variable, Variable];
    const g = ctx.gOut;
    const { transA, transB } = ctx.attrs;
    const isF = (v: Variable) => v.dtype === 'float32' || v.dtype === 'float64';
    // C = op(A) op(B):  d op(A) = g op(B)ᵀ,  d op(B) = op(A)ᵀ g.
    const gA = transA ? mm(b, g, transB, true) : mm(g, b, false, !transB);
    const gB = transB ? mm(g, a, true, transA) : mm(a, g, !transA, false);
    // Batch axes that were broadcast are summed back; free for plain matrices.
    const fit = (gx: Variable, x: Variable) => (x.ndim === 2 && gx.ndim === 2 ? B.rebroadcastLike(gx, x) : B.sumToLike(gx, x));
    return [isF(a) ? fit(gA, a) : null, isF(b) ? fit(gB, b) : null];
  },
  softmax: (ctx) => {
    const x = ctx.inputs[0]!;
    if (!isFloat(x.dtype)) return [null];
    const y = ctx.output;
    const gy = B.mul(ctx.gOut, y);
    return [B.sub(gy, B.mul(y, B.sum(gy, ctx.attrs.axis, true)))];
  },
  logSoftmax: (ctx) => {
    const x = ctx.inputs[0]!;
    if (!isFloat(x.dtype)) return [null];
    const g = ctx.gOut;
    return [B.sub(g, B.mul(B.exp(ctx.output), B.sum(g, ctx.attrs.axis, true)))];
  },
  takeRowwise: (ctx): (Variable | null)[] => [applyOp('scatterRowwise', [ctx.gOut, ctx.inputs[1]!, ctx.inputs[0]!], {}), null],
  scatterRowwise: (ctx): (Variable | null)[] => [applyOp('takeRowwise', [ctx.gOut, ctx.inputs[1]!], {}), null, null],
  conv2d: (ctx) => {
    const [x, w] = ctx.inputs as [Variable, Variable];
    return [inputGrad(ctx.gOut, w, x, ctx.attrs), filterGrad(x, ctx.gOut, w, ctx.attrs)];
  },
  conv2dInputGrad: (ctx) => {
    const [gy, w] = ctx.inputs as [Variable, Variable, Variable];
    const G = ctx.gOut;
    return [conv(G, w, ctx.attrs), filterGrad(G, gy, w, ctx.attrs), null];
  },
  conv2dFilterGrad: (ctx) => {
    const [x, gy] = ctx.inputs as [Variable, Variable, Variable];
    const G = ctx.gOut;
    return [inputGrad(gy, G, x, ctx.attrs), conv(x, G, ctx.attrs), null];
  },
  maxPool2d: (ctx) => [floatOrNull(ctx.inputs[0]!, applyOp('maxPool2dGrad', [ctx.inputs[0]!, ctx.gOut], ctx.attrs))],
  maxPool2dGrad: (ctx) => [null, floatOrNull(ctx.inputs[1]!, applyOp('maxPool2dGradGrad', [ctx.inputs[0]!, ctx.gOut], ctx.attrs))],
  maxPool2dGradGrad: (ctx) => [null, floatOrNull(ctx.inputs[1]!, applyOp('maxPool2dGrad', [ctx.inputs[0]!, ctx.gOut], ctx.attrs))],
  avgPool2d: (ctx) => [floatOrNull(ctx.inputs[0]!, applyOp('avgPool2dGrad', [ctx.gOut, ctx.inputs[0]!], ctx.attrs))],
  avgPool2dGrad: (ctx) => [floatOrNull(ctx.inputs[0]!, applyOp('avgPool2d', [ctx.gOut], ctx.attrs)), null],
  bnStats: bnStatsGrad,
  bnTrain: bnTrainGrad,
  // Second-order gradients through batch norm are not built: grad refuses them with the op's name.
  bnGradStats: null,
  bnGradInput: null,
  randomUniform: draw,
  randomNormal: draw,
  randomBernoulli: draw,
  randomAdvance: () => [null],
};
