// Scalar functions the CPU device substitutes for an op's JavaScript template when the step's
// result is float32 and the template's own function is needlessly slow for that precision.
//
// tanh32: Math.tanh costs ~20 ns in V8 (fdlibm through expm1) and dominates any chain that uses it;
// this rational function x·P(x²)/Q(x²) (degrees 4/4, fitted here by iteratively reweighted least
// squares, Lawson's method, on [0, 9] for relative error) costs ~3 ns. Its relative error against
// Math.tanh is below 3.1e-8 everywhere (checked on a dense grid in test/devices/cpu/fast-math.test.ts),
// under half a float32 ulp, so a float32 result is the correctly rounded tanh or its neighbour.
// |x| >= 9 gives ±1 (tanh(9) rounds to 1 in float32); NaN and -0 are kept.

import type { ElementwiseOpName } from '../../ops/elementwise.js';

const P0 = 0.9999999794422687, P1 = 0.13381025638979352, P2 = 0.003495588126032509, P3 = 2.0609084095855705e-5, P4 = 1.3354671840604126e-8;
const Q1 = 0.4671434123178922, Q2 = 0.02587698218374736, Q3 = 0.0003285634865397391, Q4 = 7.776560633152019e-7;
/** tanh32's coefficients, for the WebAssembly version (wasm-tanh.ts): P0..P4 and Q1..Q4 (Q0 = 1). */
export const FAST_TANH_P: readonly number[] = [P0, P1, P2, P3, P4];
export const FAST_TANH_Q: readonly number[] = [Q1, Q2, Q3, Q4];

export function tanh32(x: number): number {
  if (!(x > -9 && x < 9)) return x !== x ? x : x > 0 ? 1 : -1;
  const z = x * x;
  return (x * (P0 + z * (P1 + z * (P2 + z * (P3 + z * P4))))) / (1 + z * (Q1 + z * (Q2 + z * (Q3 + z * Q4))));
}

/**
 * relu without a data-dependent branch: v·[v > 0] + 0, with NaN and -Inf (whose product is NaN)
 * sorted out by a branch that is almost never taken. Same values as the reference (including +0
 * for negatives and -0, NaN for NaN); the usual ternary costs ~4 ns per element on mixed-sign data
 * through branch mispredictions, this ~1.
 */
export function relu(v: number): number {
  const r = v * +(v > 0) + 0;
  return r === r ? r : v !== v ? v : 0;
}

/** Helpers a generated kernel reaches as `F.name`. */
export const FAST_MATH = { tanh32, relu } as const;

/**
 * Templates replacing an op's JS_TEMPLATES entry for any dtype (integer results still use an op's
 * integer template first): the same values, computed without unpredictable branches.
 */
export const BRANCHLESS_TEMPLATES: Readonly<Partial<Record<ElementwiseOpName, (args: readonly string[]) => string>>> = {
  relu: (a) => `F.relu(${a[0]})`,
  eq: (a) => `+(${a[0]} === ${a[1]})`,
  neq: (a) => `+(${a[0]} !== ${a[1]})`,
  lt: (a) => `+(${a[0]} < ${a[1]})`,
  le: (a) => `+(${a[0]} <= ${a[1]})`,
  gt: (a) => `+(${a[0]} > ${a[1]})`,
  ge: (a) => `+(${a[0]} >= ${a[1]})`,
  not: (a) => `+(${a[0]} === 0)`,
};

/** Ops whose bool results are already 0 or 1 (no cast needed when the step's dtype is bool). */
export const ZERO_ONE_OPS: ReadonlySet<ElementwiseOpName> = new Set<ElementwiseOpName>(['eq', 'neq', 'lt', 'le', 'gt', 'ge', 'not', 'and', 'or', 'xor']);

/** Templates replacing an op's JS_TEMPLATES entry for float32 results. */
export const FLOAT32_TEMPLATES: Readonly<Partial<Record<ElementwiseOpName, (args: readonly string[]) => string>>> = {
  tanh: (a) => `F.tanh32(${a[0]})`,
};
