// Gradient rules of the elementwise ops. Each rule gives the gradient per input before broadcasting
// is undone; broadcastRule sums it back to the input's shape and drops integer inputs.
import { isFloat } from '../tensor/dtype.js';
import type { Variable } from '../tensor/variable.js';
import { applyOp } from '../ops/apply.js';
import type { ElementwiseOpName } from '../ops/elementwise.js';
import * as B from '../build/build.js';
import type { GradContext, GradRule, GradRules } from './rule-types.js';

/** Sums a broadcast gradient back to the shape of `x` and casts it to x's dtype. */
export function reduceGradToInput(g: Variable, x: Variable): Variable {
  // Always reduce: a non-broadcastable axis may still have size 1 at run time (NumPy semantics);
  // sumToLike is free when the shapes already agree.
  let out = applyOp('sumToLike', [g, x], {});
  if (out.dtype !== x.dtype) out = applyOp('cast', [out], { dtype: x.dtype });
  return out;
}

/** A rule over the broadcast result, reduced back to each float input. */
function broadcastRule<A>(rule: GradRule<A>): GradRule<A> {
  return (ctx: GradContext<A>) => rule(ctx).map((g, i) => {
    const x = ctx.inputs[i]!;
    return g === null || !isFloat(x.dtype) ? null : reduceGradToInput(g, x);
  });
}

/** A rule written over (inputs, output, output gradient), the form most elementwise rules take. */
function pointwise<A>(rule: (x: Variable[], out: Variable, g: Variable) => (Variable | null)[]): GradRule<A> {
  return broadcastRule((ctx) => rule([...ctx.inputs], ctx.output, ctx.gOut));
}

const zero = pointwise((x) => [B.zerosLike(x[0]!)]);
const PI = Math.PI;

/** The elementwise ops' gradient rules; comparisons and logical ops are not differentiable. */
export const elementwiseGradRules: GradRules<ElementwiseOpName> = {
  neg: pointwise((_x, _o, g) => [B.neg(g)]),
  abs: pointwise((x, _o, g) => [B.mul(g, B.sign(x[0]!))]),
  sign: zero,
  exp: pointwise((_x, o, g) => [B.mul(g, o)]),
  expm1: pointwise((_x, o, g) => [B.mul(g, B.add(o, 1))]),
  log: pointwise((x, _o, g) => [B.div(g, x[0]!)]),
  log1p: pointwise((x, _o, g) => [B.div(g, B.add(x[0]!, 1))]),
  sqrt: pointwise((_x, o, g) => [B.div(B.mul(g, 0.5), o)]),
  square: pointwise((x, _o, g) => [B.mul(g, B.mul(x[0]!, 2))]),
  reciprocal: pointwise((_x, o, g) => [B.neg(B.mul(g, B.square(o)))]),
  sin: pointwise((x, _o, g) => [B.mul(g, B.cos(x[0]!))]),
  cos: pointwise((x, _o, g) => [B.neg(B.mul(g, B.sin(x[0]!)))]),
  tanh: pointwise((_x, o, g) => [B.mul(g, B.sub(1, B.square(o)))]),
  sigmoid: pointwise((_x, o, g) => [B.mul(g, B.mul(o, B.sub(1, o)))]),
  softplus: pointwise((x, _o, g) => [B.mul(g, B.sigmoid(x[0]!))]),
  // The mask from the output (relu(x) > 0 exactly when x > 0, NaN included): the backward pass then keeps
  // the activation the next layer reads anyway, not also the pre-activation (ResNet: conv, batch norm, relu).
  relu: pointwise((_x, o, g) => [B.mul(g, B.cast(B.gt(o, 0), g.dtype))]),
  erf: pointwise((x, _o, g) => [B.mul(g, B.mul(2 / Math.sqrt(PI), B.exp(B.neg(B.square(x[0]!)))))]),
  floor: zero,
  ceil: zero,
  round: zero,
  not: null,
  add: pointwise((_x, _o, g) => [g, g]),
  sub: pointwise((_x, _o, g) => [g, B.neg(g)]),
  mul: pointwise((x, _o, g) => [B.mul(g, x[1]!), B.mul(g, x[0]!)]),
  div: pointwise((x, _o, g) => [B.div(g, x[1]!), B.neg(B.div(B.mul(g, x[0]!), B.square(x[1]!)))]),
  intDiv: pointwise((x) => [B.zerosLike(x[0]!), B.zerosLike(x[1]!)]),
  mod: pointwise((x, _o, g) => [g, B.neg(B.mul(g, B.intDiv(x[0]!, x[1]!)))]),
  pow: pointwise((x, o, g) => [
    B.mul(g, B.mul(x[1]!, B.pow(x[0]!, B.sub(x[1]!, 1)))),
    // x^y log x is 0 * -inf at x = 0; for y > 0, x^y is 0 near there, so its limit 0 is the gradient.
    B.mul(g, B.where(B.and(B.eq(x[0]!, 0), B.gt(x[1]!, 0)), 0, B.mul(o, B.log(x[0]!)))),
  ]),
  maximum: pointwise((x, _o, g) => [
    B.mul(g, B.cast(B.ge(x[0]!, x[1]!), g.dtype)), B.mul(g, B.cast(B.lt(x[0]!, x[1]!), g.dtype)),
  ]),
  minimum: pointwise((x, _o, g) => [
    B.mul(g, B.cast(B.le(x[0]!, x[1]!), g.dtype)), B.mul(g, B.cast(B.gt(x[0]!, x[1]!), g.dtype)),
  ]),
  eq: null,
  neq: null,
  lt: null,
  le: null,
  gt: null,
  ge: null,
  and: null,
  or: null,
  xor: null,
  where: broadcastRule((ctx) => [null, B.where(ctx.inputs[0]!, ctx.gOut, 0), B.where(ctx.inputs[0]!, 0, ctx.gOut)]),
  clip: broadcastRule((ctx) => {
    const [x, lo, hi] = ctx.inputs as [Variable, Variable, Variable];
    const g = ctx.gOut;
    const inside = B.and(B.ge(x, lo), B.le(x, hi));
    return [B.where(inside, g, 0), B.where(B.lt(x, lo), g, 0), B.where(B.gt(x, hi), g, 0)];
  }),
  cast: broadcastRule((ctx) => [B.cast(ctx.gOut, ctx.inputs[0]!.dtype)]),
};
