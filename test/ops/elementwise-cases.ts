// Independent expectations for the elementwise suites: plain JS (Math.*) per op, NumPy's
// broadcasting written out by hand, and a high-precision erf.
import { NDArray } from '../../src/tensor/ndarray.js';
import type { DType } from '../../src/tensor/dtype.js';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { assertAllClose, type CloseOptions } from '../helpers/allclose.js';
import { verifyGrad, type GradCheckOptions } from '../helpers/gradcheck.js';

export type Fn1 = (a: number) => number;
export type Fn2 = (a: number, b: number) => number;

/**
 * assertAllClose, but also failing where the result is NaN and the expectation is not (the shared
 * helper's |a - e| > tol test is false for NaN, so it lets a NaN result pass).
 */
export function assertClose(actual: NDArray, expected: NDArray | unknown, options: CloseOptions = {}, message = ''): void {
  const exp = expected instanceof NDArray ? expected : NDArray.from(expected, { dtype: 'float64' });
  for (let i = 0; i < Math.min(actual.size, exp.size); i++) {
    if (Number.isNaN(actual.data[i]!) && !Number.isNaN(exp.data[i]!)) throw new Error(`${message} element ${i}: got NaN, expected ${exp.data[i]}`);
  }
  assertAllClose(actual, exp, options, message);
}

/**
 * verifyGrad, after checking the symbolic gradient is finite (verifyGrad's comparison lets a NaN
 * gradient pass: |NaN - numeric| > tol is false).
 */
export function checkGrad(f: (...xs: T.Variable[]) => T.Variable, inputs: readonly NDArray[], options: GradCheckOptions = {}): void {
  const vars = inputs.map((a) => T.tensor({ dtype: 'float64', ndim: a.ndim }));
  const grads = T.grad(T.sum(T.cast(f(...vars), 'float64')), vars);
  const values = T.fn({ inputs: vars, outputs: grads, device: new T.ReferenceDevice() })(...inputs) as NDArray[];
  values.forEach((g, k) => assert.ok(g.data.every((v) => Number.isFinite(v)), `gradient ${k} has non-finite values: ${g.toString()}`));
  verifyGrad(f, inputs, options);
}

/** NumPy's broadcast shape (right-aligned; size 1 stretches). */
export function bshape(shapes: readonly (readonly number[])[]): number[] {
  const ndim = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let ax = 0; ax < ndim; ax++) {
    const sizes = shapes.map((s) => s[ax - (ndim - s.length)] ?? 1);
    const big = sizes.filter((d) => d !== 1);
    if (new Set(big).size > 1) throw new Error(`test: shapes do not broadcast: ${JSON.stringify(shapes)}`);
    out.push(big[0] ?? 1);
  }
  return out;
}

/** fn applied elementwise with broadcasting, in float64. */
export function expectMap(inputs: readonly NDArray[], fn: (...v: number[]) => number): NDArray {
  const shape = bshape(inputs.map((a) => a.shape));
  const out = new NDArray('float64', shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.size; i++) {
    let rest = i;
    for (let ax = shape.length - 1; ax >= 0; ax--) { idx[ax] = rest % shape[ax]!; rest = Math.floor(rest / shape[ax]!); }
    const args = inputs.map((a) => {
      let flat = 0;
      const off = shape.length - a.ndim;
      for (let ax = 0; ax < a.ndim; ax++) flat = flat * a.shape[ax]! + (a.shape[ax] === 1 ? 0 : idx[ax + off]!);
      return a.data[flat]!;
    });
    out.data[i] = fn(...args);
  }
  return out;
}

/** erf by its Maclaurin series (|x| < 3, ~1e-14) or the asymptotic continued fraction beyond. */
export function erfSeries(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) >= 6) return Math.sign(x);
  if (Math.abs(x) >= 3) {
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz, fixed depth)
    const z = Math.abs(x);
    let f = z;
    for (let k = 60; k >= 1; k--) f = z + (k / 2) / f;
    const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
    return Math.sign(x) * (1 - erfc);
  }
  let term = x, sum = x;
  for (let n = 1; n < 100; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
    if (Math.abs(term) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** Published values of erf. */
export const ERF_KNOWN: readonly (readonly [number, number])[] = [
  [0, 0], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [1.5, 0.9661051464753108],
  [2, 0.9953222650189527], [3, 0.9999779095030014], [-1, -0.8427007929497149], [-0.5, -0.5204998778130465],
  [Infinity, 1], [-Infinity, -1],
];

/** NumPy's round: half to even, keeping the sign of zero. */
export function roundHalfEven(a: number): number {
  if (!Number.isFinite(a)) return a;
  const r = Math.floor(a);
  const d = a - r;
  const res = d < 0.5 ? r : d > 0.5 ? r + 1 : r % 2 === 0 ? r : r + 1;
  return res === 0 && (a < 0 || Object.is(a, -0)) ? -0 : res;
}

/** Unary ops: expectation, input range [lo, hi) for float32 tests, output dtype for float32 input. */
export const UNARY: Record<string, readonly [Fn1, number, number, DType]> = {
  neg: [(a) => -a, -2, 2, 'float32'],
  abs: [(a) => (a < 0 ? -a : a === 0 ? 0 : a), -2, 2, 'float32'],
  sign: [(a) => (a > 0 ? 1 : a < 0 ? -1 : a === 0 ? 0 : NaN), -2, 2, 'float32'],
  exp: [Math.exp, -2, 2, 'float32'],
  expm1: [Math.expm1, -1, 1, 'float32'],
  log: [Math.log, 0.1, 3, 'float32'],
  log1p: [Math.log1p, -0.5, 3, 'float32'],
  sqrt: [Math.sqrt, 0.1, 3, 'float32'],
  square: [(a) => a * a, -2, 2, 'float32'],
  reciprocal: [(a) => 1 / a, 0.5, 2, 'float32'],
  sin: [Math.sin, -3, 3, 'float32'],
  cos: [Math.cos, -3, 3, 'float32'],
  tanh: [Math.tanh, -2, 2, 'float32'],
  sigmoid: [(a) => 1 / (1 + Math.exp(-a)), -3, 3, 'float32'],
  softplus: [(a) => Math.log1p(Math.exp(a)), -3, 3, 'float32'],
  relu: [(a) => (Number.isNaN(a) ? NaN : Math.max(a, 0)), -2, 2, 'float32'],
  erf: [erfSeries, -2, 2, 'float32'],
  floor: [Math.floor, -3, 3, 'float32'],
  ceil: [Math.ceil, -3, 3, 'float32'],
  round: [roundHalfEven, -3, 3, 'float32'],
};

/** NumPy's power, including pow(1, anything) = 1 and pow(-1, +-inf) = 1 (C99). */
export function numpyPow(a: number, b: number): number {
  if (a === 1 || b === 0) return 1;
  if (a === -1 && (b === Infinity || b === -Infinity)) return 1;
  return Math.pow(a, b);
}

/** Binary float ops: expectation, ranges of a and b, output dtype for float32 inputs. */
export const BINARY: Record<string, readonly [Fn2, readonly [number, number], readonly [number, number], DType]> = {
  add: [(a, b) => a + b, [-2, 2], [-2, 2], 'float32'],
  sub: [(a, b) => a - b, [-2, 2], [-2, 2], 'float32'],
  mul: [(a, b) => a * b, [-2, 2], [-2, 2], 'float32'],
  div: [(a, b) => a / b, [-2, 2], [0.5, 2], 'float32'],
  intDiv: [(a, b) => Math.floor(a / b), [-3, 3], [0.5, 2], 'float32'],
  mod: [(a, b) => a - Math.floor(a / b) * b, [-3, 3], [0.5, 2], 'float32'],
  pow: [numpyPow, [0.5, 2], [-2, 2], 'float32'],
  maximum: [(a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a > b ? a : b), [-2, 2], [-2, 2], 'float32'],
  minimum: [(a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a < b ? a : b), [-2, 2], [-2, 2], 'float32'],
  eq: [(a, b) => (a === b ? 1 : 0), [0, 0], [0, 0], 'bool'],
  neq: [(a, b) => (a !== b ? 1 : 0), [0, 0], [0, 0], 'bool'],
  lt: [(a, b) => (a < b ? 1 : 0), [0, 0], [0, 0], 'bool'],
  le: [(a, b) => (a <= b ? 1 : 0), [0, 0], [0, 0], 'bool'],
  gt: [(a, b) => (a > b ? 1 : 0), [0, 0], [0, 0], 'bool'],
  ge: [(a, b) => (a >= b ? 1 : 0), [0, 0], [0, 0], 'bool'],
};
