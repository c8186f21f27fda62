// Gradients of every differentiable elementwise op against central finite differences (float64),
// with inputs kept away from kinks and jumps, and with broadcasting so the sum back to each
// input's shape is checked too.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { checkGrad } from './elementwise-cases.js';
import { randomArray, rng } from '../helpers/allclose.js';

type Un = (x: T.TensorLike) => T.Variable;
type Bin = (a: T.TensorLike, b: T.TensorLike) => T.Variable;
const un = (name: string): Un => (T as unknown as Record<string, Un>)[name]!;
const bin = (name: string): Bin => (T as unknown as Record<string, Bin>)[name]!;

const uniform = (shape: number[], seed: number, lo: number, hi: number) => randomArray(shape, seed, { lo, hi });
/** |x| in [lo, hi] with random signs: away from the kink at 0. */
function awayFromZero(shape: number[], seed: number, lo = 0.2, hi = 1.5): NDArray {
  const a = uniform(shape, seed, lo, hi);
  const r = rng(seed + 1000);
  for (let i = 0; i < a.size; i++) if (r() < 0.5) a.data[i] = -a.data[i]!;
  return a;
}
/** n + [0.2, 0.3] for integers n in [-3, 3]: away from integers and halves (floor, ceil, round, mod). */
function offGrid(shape: number[], seed: number): NDArray {
  const a = uniform(shape, seed, 0.2, 0.3);
  const r = rng(seed + 2000);
  for (let i = 0; i < a.size; i++) a.data[i]! += Math.floor(r() * 7) - 3;
  return a;
}

describe('elementwise gradients (finite differences, float64)', () => {
  const shape = [3, 4];
  const unaryInputs: Record<string, () => NDArray> = {
    neg: () => uniform(shape, 1, -1.5, 1.5), exp: () => uniform(shape, 2, -1.5, 1.5), expm1: () => uniform(shape, 3, -1.5, 1.5),
    log: () => uniform(shape, 4, 0.5, 2), log1p: () => uniform(shape, 5, -0.5, 2), sqrt: () => uniform(shape, 6, 0.5, 2),
    square: () => uniform(shape, 7, -1.5, 1.5), reciprocal: () => awayFromZero(shape, 8, 0.5, 2), sin: () => uniform(shape, 9, -3, 3),
    cos: () => uniform(shape, 10, -3, 3), tanh: () => uniform(shape, 11, -1.5, 1.5), sigmoid: () => uniform(shape, 12, -3, 3),
    softplus: () => uniform(shape, 13, -3, 3), erf: () => uniform(shape, 14, -1.5, 1.5), abs: () => awayFromZero(shape, 15),
    relu: () => awayFromZero(shape, 16), sign: () => awayFromZero(shape, 17), floor: () => offGrid(shape, 18),
    ceil: () => offGrid(shape, 19), round: () => offGrid(shape, 20),
  };
  for (const [name, input] of Object.entries(unaryInputs)) {
    it(name, () => checkGrad((x) => un(name)(x), [input()]));
  }

  const pairs: [number[], number[]][] = [[[3, 1], [1, 4]], [[2, 3], [2, 3]], [[], [2, 3]], [[3], [2, 3]]];
  const binaryInputs: Record<string, (sa: number[], sb: number[]) => [NDArray, NDArray]> = {
    add: (sa, sb) => [uniform(sa, 21, -1.5, 1.5), uniform(sb, 22, -1.5, 1.5)],
    sub: (sa, sb) => [uniform(sa, 23, -1.5, 1.5), uniform(sb, 24, -1.5, 1.5)],
    mul: (sa, sb) => [uniform(sa, 25, -1.5, 1.5), uniform(sb, 26, -1.5, 1.5)],
    div: (sa, sb) => [uniform(sa, 27, -1.5, 1.5), awayFromZero(sb, 28, 0.5, 2)],
    pow: (sa, sb) => [uniform(sa, 29, 0.5, 2), uniform(sb, 30, -2, 2)],
    maximum: (sa, sb) => [uniform(sa, 31, -1.5, 1.5), uniform(sb, 32, -1.5, 1.5)],
    minimum: (sa, sb) => [uniform(sa, 33, -1.5, 1.5), uniform(sb, 34, -1.5, 1.5)],
  };
  for (const [name, inputs] of Object.entries(binaryInputs)) {
    it(`${name} with broadcasting`, () => {
      for (const [sa, sb] of pairs) checkGrad((a, b) => bin(name)(a!, b!), inputs(sa, sb));
    });
  }

  it('intDiv and mod away from their jumps', () => {
    const b = awayFromZero([2, 3], 35, 0.5, 2);
    const q = offGrid([2, 3], 36);
    const a = new NDArray('float64', [2, 3], q.data.map((v, i) => v * b.data[i]!));
    checkGrad((x, y) => T.intDiv(x!, y!), [a, b]);
    checkGrad((x, y) => T.mod(x!, y!), [a, b]);
    checkGrad((x) => T.mod(x!, 0.75), [uniform([5], 37, 0.1, 0.6)]);
  });

  it('where: gradient flows to the chosen branch only, with broadcasting', () => {
    const cond = T.constant([[true, false, true], [false, false, true]]);
    checkGrad((a, b) => T.where(cond, a!, b!), [uniform([2, 3], 38, -1, 1), uniform([3], 39, -1, 1)]);
    checkGrad((a) => T.where(T.gt(a!, 0), T.square(a!), T.neg(a!)), [awayFromZero([4, 2], 40)]);
  });

  it('clip: gradient to x inside the bounds, to lo below and to hi above', () => {
    const x = NDArray.from([-2, -0.7, 0.1, 0.4, 1.3, 2.5], { dtype: 'float64' });
    checkGrad((v) => T.clip(v!, -1, 1), [x]);
    checkGrad((v, lo, hi) => T.clip(v!, lo!, hi!), [x, NDArray.from([-1.2, -1, -0.5, -0.5, 0, 0], { dtype: 'float64' }), NDArray.scalar(1, 'float64')]);
  });

  it('cast between float dtypes passes the gradient through', () => {
    checkGrad((x) => T.cast(x, 'float32'), [uniform([4], 41, -2, 2)], { eps: 1e-2, rtol: 1e-3, atol: 1e-4 });
    checkGrad((x) => T.mul(T.cast(T.cast(x, 'float32'), 'float64'), x), [uniform([4], 42, -2, 2)], { eps: 1e-2, rtol: 1e-3, atol: 1e-4 });
  });

  it('ops with no gradient (comparisons, logical) leave the graph disconnected', () => {
    const x = T.vector('x', 'float64');
    const cost = T.sum(T.mul(T.cast(T.lt(x, 0), 'float64'), 3));
    assert.throws(() => T.grad(cost, x), /does not depend/);
    const g = T.grad(T.sum(T.add(T.cast(T.and(T.gt(x, 0), T.lt(x, 1)), 'float64'), x)), x);
    assert.deepEqual((T.fn({ inputs: [x], outputs: g })([0.5, 2]) as NDArray).toArray(), [1, 1]);
  });
});
