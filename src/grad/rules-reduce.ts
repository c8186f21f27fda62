// Gradient rules of the reductions: the output gradient is broadcast back over the reduced axes
// (and scaled, masked or weighted as each reduction needs).
import { isFloat, type DType } from '../tensor/dtype.js';
import type { Variable } from '../tensor/variable.js';
import type { ReduceAttrs, reduceOps } from '../ops/reduce.js';
import * as B from '../build/build.js';
import type { GradContext, GradRule, GradRules } from './rule-types.js';

/** g reshaped so it broadcasts against the input (reduced axes restored as size 1), then broadcast to it. */
export function expandReducedGrad(g: Variable, x: Variable, attrs: ReduceAttrs): Variable {
  const gk = attrs.keepdims ? g : B.expandDims(g, attrs.axes);
  return B.broadcastLike(gk, x);
}

function countOf(x: Variable, axes: readonly number[], dtype: DType): Variable {
  let n: Variable | number = 1;
  for (const a of axes) n = B.mul(n, B.shapeOf(x)[a]!);
  return B.cast(n as Variable | number, dtype);
}

const floatGrad = (f: (ctx: GradContext<ReduceAttrs>) => Variable): GradRule<ReduceAttrs> => (ctx) =>
  [isFloat(ctx.inputs[0]!.dtype) ? f(ctx) : null];

/** Reduction with the gradient flowing to the positions equal to the result (max/min). */
function extremumGrad(ctx: GradContext<ReduceAttrs>): Variable {
  const x = ctx.inputs[0]!;
  const outB = expandReducedGrad(ctx.output, x, ctx.attrs);
  const mask = B.cast(B.eq(x, outB), ctx.gOut.dtype);
  return B.mul(expandReducedGrad(ctx.gOut, x, ctx.attrs), mask);
}

const disconnected = () => [null];

/** The reductions' gradient rules; boolean and arg reductions are disconnected. */
export const reduceGradRules: GradRules<keyof typeof reduceOps> = {
  sum: floatGrad((ctx) => expandReducedGrad(ctx.gOut, ctx.inputs[0]!, ctx.attrs)),
  prod: floatGrad((ctx) => {
    // d prod / d x_i = prod / x_i (inputs containing exact zeros get NaN/Inf here, as Theano's default).
    const x = ctx.inputs[0]!;
    return B.div(B.mul(expandReducedGrad(ctx.gOut, x, ctx.attrs), expandReducedGrad(ctx.output, x, ctx.attrs)), x);
  }),
  mean: floatGrad((ctx) => {
    const x = ctx.inputs[0]!;
    return B.div(expandReducedGrad(ctx.gOut, x, ctx.attrs), countOf(x, ctx.attrs.axes, ctx.gOut.dtype));
  }),
  max: floatGrad(extremumGrad),
  min: floatGrad(extremumGrad),
  all: disconnected,
  any: disconnected,
  argmax: disconnected,
  argmin: disconnected,
  var: (ctx) => {
    const x = ctx.inputs[0]!;
    if (!isFloat(x.dtype)) return [null];
    const keep = { axes: ctx.attrs.axes, keepdims: true };
    const centered = B.sub(x, B.mean(x, keep.axes, true));
    const n = B.maximum(B.sub(countOf(x, ctx.attrs.axes, ctx.gOut.dtype), ctx.attrs.ddof), 0);
    return [B.div(B.mul(B.mul(expandReducedGrad(ctx.gOut, x, ctx.attrs), centered), 2), n)];
  },
  logsumexp: (ctx) => {
    const x = ctx.inputs[0]!;
    if (!isFloat(x.dtype)) return [null];
    const lse = expandReducedGrad(ctx.output, x, ctx.attrs);
    return [B.mul(expandReducedGrad(ctx.gOut, x, ctx.attrs), B.exp(B.sub(x, lse)))];
  },
};
