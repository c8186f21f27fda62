// Linear algebra: dot (NumPy semantics, every 1-d/2-d case and N-d), batched matmul with
// broadcast batch axes, transA/transB, outer; against naive loops written here; shape errors;
// gradients by finite differences, and second-order gradients of dot.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray, sizeOf } from '../../src/tensor/ndarray.js';
import { applyOp } from '../../src/ops/apply.js';
import { forEachDevice } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

const f32 = (shape: number[], seed: number) => randomArray(shape, seed, { dtype: 'float32' });
const f64 = (shape: number[], seed: number) => randomArray(shape, seed);
const sym = (a: NDArray, name: string) => T.tensor({ dtype: a.dtype, ndim: a.ndim, name });

/** NumPy's dot, by definition: out[p..., q..., m] = sum_k a[p..., k] * b[q..., k, m]. */
function npDot(a: NDArray, b: NDArray): NDArray {
  if (a.ndim === 0 || b.ndim === 0) {
    const [s, t] = a.ndim === 0 ? [a.data[0]!, b] : [b.data[0]!, a];
    return new NDArray('float64', t.shape, Float64Array.from(t.data, (v) => v * s));
  }
  const K = a.shape[a.ndim - 1]!;
  const P = sizeOf(a.shape.slice(0, -1));
  const M = b.ndim === 1 ? 1 : b.shape[b.ndim - 1]!;
  const Q = b.ndim === 1 ? 1 : sizeOf(b.shape.slice(0, -2));
  const shape = [...a.shape.slice(0, -1), ...(b.ndim === 1 ? [] : [...b.shape.slice(0, -2), M])];
  const out = new NDArray('float64', shape);
  for (let p = 0; p < P; p++) for (let q = 0; q < Q; q++) for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a.data[p * K + k]! * b.data[(q * K + k) * M + m]!;
    out.data[(p * Q + q) * M + m] = s;
  }
  return out;
}

/** Swaps the last two axes (written out directly). */
function swapLast(a: NDArray): NDArray {
  const r = a.shape[a.ndim - 2]!, c = a.shape[a.ndim - 1]!;
  const out = new NDArray(a.dtype, [...a.shape.slice(0, -2), c, r]);
  for (let t = 0; t < a.size / (r * c || 1); t++) {
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out.data[t * r * c + j * r + i] = a.data[t * r * c + i * c + j]!;
  }
  return out;
}

/** NumPy's matmul for ndim >= 2 operands: batch axes broadcast, right-aligned. */
function npMatmul(a: NDArray, b: NDArray): NDArray {
  const m = a.shape[a.ndim - 2]!, k = a.shape[a.ndim - 1]!, n = b.shape[b.ndim - 1]!;
  const ab = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  const nd = Math.max(ab.length, bb.length);
  const pad = (s: number[]) => [...new Array<number>(nd - s.length).fill(1), ...s];
  const pa = pad(ab), pb = pad(bb);
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const out = new NDArray('float64', [...batch, m, n]);
  for (let t = 0; t < sizeOf(batch); t++) {
    let rest = t, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let ax = nd - 1; ax >= 0; ax--) {
      const idx = rest % batch[ax]!;
      rest = Math.floor(rest / batch[ax]!);
      ia += (pa[ax] === 1 ? 0 : idx) * sa; sa *= pa[ax]!;
      ib += (pb[ax] === 1 ? 0 : idx) * sb; sb *= pb[ax]!;
    }
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a.data[ia * m * k + i * k + p]! * b.data[ib * k * n + p * n + j]!;
      out.data[t * m * n + i * n + j] = s;
    }
  }
  return out;
}

forEachDevice('linalg ops', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = (inputs: T.Variable[], out: T.Variable, ...args: NDArray[]) => T.fn({ inputs, outputs: out, device })(...args) as NDArray;

  const dotCases: [string, number[], number[]][] = [
    ['vector . vector', [5], [5]],
    ['matrix . vector', [3, 4], [4]],
    ['vector . matrix', [4], [4, 3]],
    ['matrix . matrix', [3, 4], [4, 2]],
    ['scalar . matrix', [], [2, 3]],
    ['matrix . scalar', [2, 3], []],
    ['size-1 axes', [1, 4], [4, 1]],
    ['empty inner axis (zeros)', [3, 0], [0, 2]],
    ['empty rows', [0, 4], [4, 2]],
    ['tensor3 . matrix', [2, 3, 4], [4, 5]],
    ['tensor3 . vector', [2, 3, 4], [4]],
    ['vector . tensor3', [4], [2, 4, 3]],
    ['tensor3 . tensor3 (NumPy dot, not matmul)', [2, 3, 4], [5, 4, 2]],
    ['tensor3 . tensor3 with an empty contracted axis', [2, 3, 0], [2, 0, 2]],
  ];
  for (const [title, sa, sb] of dotCases) {
    it(`dot: ${title} ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => {
      const a = f32(sa, 1), b = f32(sb, 2);
      const x = sym(a, 'a'), y = sym(b, 'b');
      const got = run([x, y], T.dot(x, y), a, b);
      assertAllClose(got, npDot(a, b), tol);
      assert.equal(got.dtype, 'float32');
      assertAllClose(run([x, y], x.dot(y), a, b), npDot(a, b), tol, 'method form');
    });
  }

  it('dot of int32 operands is exact integer arithmetic', () => {
    const a = NDArray.from([[1, 2], [3, 4]], { dtype: 'int32' }), b = NDArray.from([5, -6], { dtype: 'int32' });
    const x = sym(a, 'a'), y = sym(b, 'b');
    const r = run([x, y], T.dot(x, y), a, b);
    assert.equal(r.dtype, 'int32');
    assert.deepEqual(r.toArray(), [-7, -9]);
  });

  it('dot propagates NaN and Inf as NumPy (Inf * 0 = NaN)', () => {
    const a = NDArray.from([[1, NaN], [2, 3], [Infinity, 1]], { dtype: 'float32' });
    const b = NDArray.from([[0, 2], [1, 1]], { dtype: 'float32' });
    const x = sym(a, 'a'), y = sym(b, 'b');
    assertAllClose(run([x, y], T.dot(x, y), a, b), [[NaN, NaN], [3, 7], [NaN, Infinity]]);
  });

  it('dot with a number wraps it as a scalar', () => {
    const a = f32([2, 2], 3);
    const x = sym(a, 'a');
    assertAllClose(run([x], T.dot(x, 2), a), npDot(a, NDArray.scalar(2, 'float64')), tol);
  });

  const batched: [string, number[], number[]][] = [
    ['equal batch', [2, 3, 4], [2, 4, 5]],
    ['size-1 batch broadcasts', [1, 3, 4], [2, 4, 5]],
    ['matrix against a batch', [3, 4], [2, 4, 5]],
    ['rank-4 broadcast', [2, 1, 3, 4], [3, 4, 2]],
    ['empty batch', [0, 3, 4], [0, 4, 2]],
  ];
  for (const [title, sa, sb] of batched) {
    it(`matmul: ${title} ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, () => {
      const a = f32(sa, 4), b = f32(sb, 5);
      const x = sym(a, 'a'), y = sym(b, 'b');
      assertAllClose(run([x, y], T.matmul(x, y), a, b), npMatmul(a, b), tol);
    });
  }

  it('matmul with 1-d operands drops the added axis (NumPy)', () => {
    const a = f32([4], 6), b = f32([2, 4, 3], 7), m = f32([2, 3, 4], 8);
    const x = sym(a, 'a'), y = sym(b, 'b'), z = sym(m, 'm');
    const got = run([x, y], T.matmul(x, y), a, b);
    assertAllClose(got, npMatmul(a.reshape([1, 4]), b).reshape([2, 3]), tol);
    assertAllClose(run([z, x], T.matmul(z, x), m, a), npMatmul(m, a.reshape([4, 1])).reshape([2, 3]), tol);
  });

  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`matmul transA=${transA} transB=${transB} (batched too)`, () => {
        const a0 = f32([2, 3, 4], 9), b0 = f32([2, 4, 5], 10);
        const a = transA ? swapLast(a0) : a0, b = transB ? swapLast(b0) : b0;
        const x = sym(a, 'a'), y = sym(b, 'b');
        assertAllClose(run([x, y], T.matmul(x, y, { transA, transB }), a, b), npMatmul(a0, b0), tol);
        const am = f32([3, 4], 11), bm = f32([4, 2], 12);
        const xa = transA ? swapLast(am) : am, xb = transB ? swapLast(bm) : bm;
        const u = sym(xa, 'u'), v = sym(xb, 'v');
        assertAllClose(run([u, v], u.matmul(v, { transA, transB }), xa, xb), npMatmul(am, bm), tol);
      });
    }
  }

  it('outer product of vectors (other shapes flattened)', () => {
    const a = f32([3], 13), b = f32([2, 2], 14);
    const x = sym(a, 'a'), y = sym(b, 'b');
    const got = run([x, y], T.outer(x, y), a, b);
    const want = new NDArray('float64', [3, 4]);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) want.data[i * 4 + j] = a.data[i]! * b.data[j]!;
    assertAllClose(got, want, tol);
  });

  it('build-time errors name the op and the types', () => {
    assert.throws(() => T.matmul(T.scalar('s'), T.matrix('m')), /matmul: operands must have ndim >= 1.*s: float32 scalar/);
    assert.throws(() => T.matmul(T.vector('v'), T.matrix('m'), { transA: true }), /transA\/transB need a matrix/);
    assert.throws(() => applyOp('matmul', [T.vector('v'), T.matrix('m')], { transA: false, transB: false }),
      (e: Error) => e.name === 'OpTypeError' && /matmul: both operands need ndim >= 2 .*\(inputs: float32 vector, float32 matrix\)/.test(e.message));
  });

  const mismatches: [string, number[], number[], RegExp][] = [
    ['vector . vector', [3], [4], /matmul: inner dimensions differ: \(1, 3\) and \(4, 1\)/],
    ['matrix . matrix', [2, 3], [4, 5], /inner dimensions differ: \(2, 3\) and \(4, 5\) \(3 vs 4\)/],
    ['matrix . vector', [2, 3], [2], /inner dimensions differ: \(2, 3\) and \(2, 1\)/],
    ['batch axes', [2, 3, 4], [3, 4, 5], /batch axes of \(2, 3, 4\) and \(3, 4, 5\) do not broadcast/],
  ];
  for (const [title, sa, sb, re] of mismatches) {
    it(`run-time shape error: ${title}`, () => {
      const a = f32(sa, 1), b = f32(sb, 2);
      const x = sym(a, 'a'), y = sym(b, 'b');
      const op = sa.length === 3 ? T.matmul(x, y) : T.dot(x, y);
      assert.throws(() => run([x, y], op, a, b), (e: Error) => e.name === 'OpRuntimeError' && re.test(e.message));
    });
  }
});

// ---- gradients (float64, reference device) ------------------------------------------------------

const gradCases: [string, number[], number[]][] = [
  ['vector . vector', [4], [4]], ['matrix . vector', [3, 4], [4]], ['vector . matrix', [4], [4, 2]],
  ['matrix . matrix', [3, 4], [4, 2]], ['scalar . matrix', [], [2, 3]], ['tensor3 . tensor3', [2, 2, 3], [2, 3, 2]],
];
for (const [title, sa, sb] of gradCases) {
  it(`grad of dot: ${title}`, () => verifyGrad((a, b) => T.dot(a!, b!), [f64(sa, 21), f64(sb, 22)]));
}

it('grad of matmul with every transA/transB and broadcast batch axes', () => {
  for (const transA of [false, true]) for (const transB of [false, true]) {
    const sa = transA ? [2, 4, 3] : [2, 3, 4];
    const sb = transB ? [1, 2, 4] : [1, 4, 2];
    verifyGrad((a, b) => T.matmul(a!, b!, { transA, transB }), [f64(sa, 23), f64(sb, 24)]);
  }
  verifyGrad((a, b) => T.matmul(a!, b!), [f64([3, 4], 25), f64([2, 4, 2], 26)]);
});

it('grad of outer', () => verifyGrad((a, b) => T.outer(a!, b!), [f64([3], 27), f64([4], 28)]));

it('second-order: grad of sum(grad(cost, W)^2) w.r.t. W matches finite differences of the first-order gradient', () => {
  const x = T.constant(f64([3, 4], 29));
  // f(W) = sum(g(W)^2), g = d/dW sum(tanh(x . W)); verifyGrad differentiates f numerically, i.e. the gradient function.
  verifyGrad((W) => T.sum(T.square(T.grad(T.sum(T.tanh(T.dot(x, W!))), W!))), [f64([4, 2], 30)]);
  // Vector cases: d/dv of |d/dv tanh(u . v) * (M . v)|^2 combinations.
  const u = T.constant(f64([4], 31)), M = T.constant(f64([2, 4], 32));
  verifyGrad((v) => T.sum(T.square(T.grad(T.mul(T.tanh(T.dot(u, v!)), T.sum(T.dot(M, v!))), v!))), [f64([4], 33)]);
  // Both operands variable, transposed product, second order with respect to both.
  verifyGrad((a, b) => {
    const cost = T.sum(T.sin(T.matmul(a!, b!, { transB: true })));
    const [ga, gb] = T.grad(cost, [a!, b!]);
    return T.add(T.sum(T.square(ga!)), T.sum(T.mul(gb!, gb!)));
  }, [f64([2, 3], 34), f64([2, 3], 35)]);
});
