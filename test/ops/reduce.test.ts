// Reductions: every op over one, several, all, negative and no axes, with and without keepdims,
// against a plain JS grouping written here; empty axes, NaN/Inf, integer dtypes, errors, and
// gradients by finite differences.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice } from '../helpers/devices.js';
import { randomArray, rng } from '../helpers/allclose.js';
import { assertClose, checkGrad } from './elementwise-cases.js';

type Axis = number | number[] | undefined;
type Red = (x: T.Variable, axis: Axis, keepdims: boolean) => T.Variable;

/** Groups the elements of `a` by their index outside `axis` (row-major inside), then applies fn. */
function reduceExpect(a: NDArray, axis: Axis, keepdims: boolean, fn: (v: number[]) => number): NDArray {
  const nd = a.ndim;
  const axes = axis === undefined ? [...Array(nd).keys()] : (typeof axis === 'number' ? [axis] : axis).map((x) => (x < 0 ? x + nd : x));
  const outShape = a.shape.flatMap((d, i) => (axes.includes(i) ? (keepdims ? [1] : []) : [d]));
  const kept = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups: number[][] = Array.from({ length: kept.reduce((x, y) => x * y, 1) }, () => []);
  const idx = new Array<number>(nd).fill(0);
  for (let i = 0; i < a.size; i++) {
    let rest = i;
    for (let ax = nd - 1; ax >= 0; ax--) { idx[ax] = rest % a.shape[ax]!; rest = Math.floor(rest / a.shape[ax]!); }
    let k = 0;
    for (let ax = 0; ax < nd; ax++) k = k * kept[ax]! + (axes.includes(ax) ? 0 : idx[ax]!);
    groups[k]!.push(a.data[i]!);
  }
  return new NDArray('float64', outShape, Float64Array.from(groups.map(fn)));
}

const sum = (v: number[]) => v.reduce((s, x) => s + x, 0);
const mean = (v: number[]) => sum(v) / v.length;
const variance = (ddof: number) => (v: number[]) => { const m = mean(v); return sum(v.map((x) => (x - m) ** 2)) / (v.length - ddof); };
const extreme = (pick: (a: number, b: number) => boolean) => (v: number[]) =>
  v.some((x) => Number.isNaN(x)) ? NaN : v.reduce((b, x) => (pick(x, b) ? x : b));
const argExtreme = (pick: (a: number, b: number) => boolean) => (v: number[]) => {
  const nan = v.findIndex((x) => Number.isNaN(x));
  if (nan >= 0) return nan;
  let best = 0;
  v.forEach((x, i) => { if (pick(x, v[best]!)) best = i; });
  return best;
};
const lse = (v: number[]) => {
  if (v.length === 0) return -Infinity;
  if (v.some((x) => Number.isNaN(x))) return NaN;
  const m = Math.max(...v);
  return Number.isFinite(m) ? m + Math.log(sum(v.map((x) => Math.exp(x - m)))) : m;
};

const REDUCE: Record<string, { f: Red; expect: (v: number[]) => number; dtype: T.DType; arg?: boolean }> = {
  sum: { f: (x, a, k) => T.sum(x, a, k), expect: sum, dtype: 'float32' },
  mean: { f: (x, a, k) => T.mean(x, a, k), expect: mean, dtype: 'float32' },
  prod: { f: (x, a, k) => T.prod(x, a, k), expect: (v) => v.reduce((p, x) => p * x, 1), dtype: 'float32' },
  max: { f: (x, a, k) => T.max(x, a, k), expect: extreme((a, b) => a > b), dtype: 'float32' },
  min: { f: (x, a, k) => T.min(x, a, k), expect: extreme((a, b) => a < b), dtype: 'float32' },
  var: { f: (x, a, k) => x.var(a, k), expect: variance(0), dtype: 'float32' },
  varDdof1: { f: (x, a, k) => T.variance(x, a, k, 1), expect: variance(1), dtype: 'float32' },
  std: { f: (x, a, k) => x.std(a, k), expect: (v) => Math.sqrt(variance(0)(v)), dtype: 'float32' },
  all: { f: (x, a, k) => T.all(x, a, k), expect: (v) => (v.every((x) => x !== 0) ? 1 : 0), dtype: 'bool' },
  any: { f: (x, a, k) => x.any(a, k), expect: (v) => (v.some((x) => x !== 0) ? 1 : 0), dtype: 'bool' },
  logsumexp: { f: (x, a, k) => T.logsumexp(x, a, k), expect: lse, dtype: 'float32' },
  argmax: { f: (x, a, k) => T.argmax(x, a, k), expect: argExtreme((a, b) => a > b), dtype: 'int32', arg: true },
  argmin: { f: (x, a, k) => x.argmin(a, k), expect: argExtreme((a, b) => a < b), dtype: 'int32', arg: true },
};

const AXES: Axis[] = [0, 1, 2, -1, -2, [0, 2], [-1, 0], [1, 2], [0, 1, 2], undefined];
const ARG_AXES: Axis[] = [0, 1, 2, -1, -3, undefined];

/** Random float32 values with some exact zeros (for all/any) and no ties. */
function input(shape: number[], seed: number): NDArray {
  const a = randomArray(shape, seed, { dtype: 'float32', lo: -2, hi: 2 });
  const r = rng(seed);
  for (let i = 0; i < a.size; i++) if (r() < 0.15) a.data[i] = 0;
  return a;
}

forEachDevice('reductions', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = (inputs: T.Variable[], outputs: T.Variable | T.Variable[], ...args: T.ArrayInput[]) => T.fn({ inputs, outputs, device })(...args);

  for (const [name, { f, expect, dtype, arg }] of Object.entries(REDUCE)) {
    it(`${name} over one, several, negative and all axes, with keepdims`, () => {
      const x = T.tensor3('x');
      const a = input([2, 3, 4], 3);
      for (const axis of arg ? ARG_AXES : AXES) {
        for (const keepdims of [false, true]) {
          const y = f(x, axis, keepdims);
          assert.equal(y.dtype, dtype, `${name} dtype`);
          const want = reduceExpect(a, axis, keepdims, expect);
          const got = run([x], y, a) as NDArray;
          assert.equal(y.ndim, want.ndim, `${name} ndim`);
          assertClose(got, want, dtype === 'float32' ? tol : { rtol: 0, atol: 0 }, `${name} axis ${JSON.stringify(axis)} keepdims ${keepdims}`);
        }
      }
    });
  }

  it('reducing over no axes returns the input (NumPy axis=())', () => {
    const x = T.matrix('x');
    const a = input([2, 3], 4);
    const outs = run([x], [T.sum(x, []), T.max(x, []), T.mean(x, [], true), T.prod(x, [])], a) as NDArray[];
    for (const o of outs) assertClose(o, a, { rtol: 0, atol: 0 });
  });

  it('empty axes: sum 0, prod 1, mean/var NaN, all true, any false, logsumexp -inf; max/argmax raise', () => {
    const x = T.matrix('x');
    const e = NDArray.zeros([0, 3]);
    const outs = run(
      [x],
      [T.sum(x, 0), T.prod(x, 0), T.mean(x, 0), T.variance(x, 0), T.all(x, 0), T.any(x, 0), T.logsumexp(x, 0), T.sum(x), T.max(x, 1), T.sum(x, 1, true)],
      e,
    ) as NDArray[];
    const want = [[0, 0, 0], [1, 1, 1], [NaN, NaN, NaN], [NaN, NaN, NaN], [1, 1, 1], [0, 0, 0], [-Infinity, -Infinity, -Infinity], 0];
    want.forEach((w, k) => assertClose(outs[k]!, w, { rtol: 0, atol: 0 }, `output ${k}`));
    assert.deepEqual(outs[8]!.shape, [0], 'max over a non-empty axis of an empty array');
    assert.deepEqual(outs[9]!.shape, [0, 1]);
    assert.throws(() => run([x], T.max(x, 0), e), (err: Error) => /^max: zero-size reduction/.test(err.message) && /input 0 'x'/.test(err.message));
    assert.throws(() => run([x], T.min(x), e), /min: zero-size reduction/);
    assert.throws(() => run([x], T.argmax(x, 0), e), /argmax: attempt to get the arg of an empty sequence/);
    assert.throws(() => run([x], T.argmin(x), e), /argmin: attempt to get the arg of an empty sequence/);
  });

  it('NaN and Inf propagate', () => {
    const x = T.matrix('x');
    const a = NDArray.from([[1, NaN, 3], [Infinity, 2, -Infinity], [-Infinity, -Infinity, 0]], { dtype: 'float32' });
    for (const [name, { f, expect, dtype }] of Object.entries(REDUCE)) {
      const got = run([x], f(x, 1, false), a) as NDArray;
      assertClose(got, reduceExpect(a, 1, false, expect), dtype === 'float32' ? tol : { rtol: 0, atol: 0 }, name);
    }
    assertClose(run([x], T.argmax(x, 1), a) as NDArray, [1, 0, 2], { rtol: 0, atol: 0 }, 'argmax picks the first NaN');
    assertClose(run([x], T.all(x, 1), NDArray.from([[NaN, 1]], { dtype: 'float32' })) as NDArray, [1], { rtol: 0, atol: 0 }, 'NaN is true');
  });

  it('logsumexp is stable for large and infinite values', () => {
    const x = T.matrix('x');
    const a = NDArray.from([[1000, 1000, -Infinity], [-1000, -1000, -1000], [-Infinity, -Infinity, -Infinity], [Infinity, 1, 2]], { dtype: 'float32' });
    assertClose(run([x], T.logsumexp(x, 1), a) as NDArray, [1000 + Math.log(2), -1000 + Math.log(3), -Infinity, Infinity], tol);
    assertClose(run([x], T.logsumexp(x, -1, true), a) as NDArray, [[1000 + Math.log(2)], [-1000 + Math.log(3)], [-Infinity], [Infinity]], tol);
  });

  it('integer dtypes: sum/prod/max stay integer, mean/var/std/logsumexp give floats', () => {
    const i = T.matrix('i', 'int32');
    const b = T.vector('b', 'bool');
    const u = T.vector('u', 'uint8');
    const ys = [T.sum(i, 0), T.prod(i, 1), T.max(i), T.min(i, 1), T.argmax(i, 1), T.mean(i, 0), T.variance(i), T.std(i, 1), T.logsumexp(i, 0)];
    assert.deepEqual(ys.map((y) => y.dtype), ['int32', 'int32', 'int32', 'int32', 'int32', 'float32', 'float32', 'float32', 'float32']);
    assert.equal(T.sum(b).dtype, 'int32');
    assert.equal(T.sum(u).dtype, 'int32');
    assert.equal(T.max(u).dtype, 'uint8');
    assert.equal(T.mean(T.matrix('d', 'float64')).dtype, 'float64');
    const iv = [[1, -2, 3], [4, 5, -6]];
    const outs = run([i], ys, iv) as NDArray[];
    const flat = iv.flat();
    const want: unknown[] = [[5, 3, -3], [-6, -120], 5, [-2, -6], [2, 1], [2.5, 1.5, -1.5], variance(0)(flat), [
      variance(0)([1, -2, 3]),
      variance(0)([4, 5, -6]),
    ].map(Math.sqrt),
      [0, 1, 2].map((k) => lse([iv[0]![k]!, iv[1]![k]!]))];
    want.forEach((w, k) => assertClose(outs[k]!, w, tol, `output ${k}`));
    assert.deepEqual(Array.from((run([b], T.sum(b), [true, true, false]) as NDArray).data), [2]);
    assert.deepEqual(Array.from((run([u], T.sum(u), [200, 100]) as NDArray).data), [300], 'uint8 sums into int32 without wrapping');
  });

  it('bad axes fail at build time naming the op', () => {
    const x = T.tensor3('x');
    assert.throws(() => T.sum(x, 3), /sum: axis 3 is out of range for x: float32 tensor3 \(ndim 3\)/);
    assert.throws(() => T.mean(x, [-4]), /mean: axis -4 is out of range/);
    assert.throws(() => T.argmax(x, [0, 1]), (e: Error) => e.name === 'OpTypeError' && /argmax: takes one axis or all axes/.test(e.message));
    assert.throws(() => T.max(x, 1.5), /axis 1.5 is out of range/);
  });
});

describe('reduction gradients (finite differences, float64)', () => {
  const x = randomArray([2, 3, 4], 50, { lo: -1.5, hi: 1.5 });
  const awayFromZero = new NDArray('float64', [2, 3, 4], x.data.map((v) => (v < 0 ? v - 0.3 : v + 0.3)));
  const axes: Axis[] = [undefined, 0, -1, [0, 2], [1, 2]];
  const grads: Record<string, [Red, NDArray]> = {
    sum: [(v, a, k) => T.sum(v, a, k), x], mean: [(v, a, k) => T.mean(v, a, k), x], prod: [(v, a, k) => T.prod(v, a, k), awayFromZero],
    max: [(v, a, k) => T.max(v, a, k), x], min: [(v, a, k) => T.min(v, a, k), x], var: [(v, a, k) => T.variance(v, a, k), x],
    varDdof1: [(v, a, k) => T.variance(v, a, k, 1), x], std: [(v, a, k) => T.std(v, a, k), x], logsumexp: [(v, a, k) => T.logsumexp(v, a, k), x],
  };
  for (const [name, [f, value]] of Object.entries(grads)) {
    it(name, () => {
      for (const axis of axes) for (const keepdims of [false, true]) checkGrad((v) => f(v!, axis, keepdims), [value]);
    });
  }

  it('through a chain of reductions and elementwise ops', () => {
    checkGrad((v) => T.sum(T.mul(T.max(v, 1, true), T.tanh(T.mean(v, [0, 2], true)))), [x]);
    checkGrad((v) => T.logsumexp(T.sub(v, T.mean(v, -1, true)), 1), [x]);
  });
});
