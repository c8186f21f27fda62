// Neural-network ops: softmax / logSoftmax (stability, axes, NaN/Inf), the cross-entropies
// (integer and one-hot targets), against formulas written here; gradients by finite differences.
// Convolution and pooling are in nn-conv.test.ts.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

const f32 = (shape: number[], seed: number, lo = -1, hi = 1) => randomArray(shape, seed, { dtype: 'float32', lo, hi });
const f64 = (shape: number[], seed: number, lo = -1, hi = 1) => randomArray(shape, seed, { lo, hi });
const sym = (a: NDArray, name: string) => T.tensor({ dtype: a.dtype, ndim: a.ndim, name });
const ints = (values: number[]) => NDArray.from(values, { dtype: 'int32' });

/** Softmax along `axis` by the textbook formula in float64 (inputs small enough not to overflow). */
function naiveSoftmax(a: NDArray, axis: number, log = false): NDArray {
  const out = new NDArray('float64', a.shape);
  const n = a.shape[axis]!;
  const inner = a.shape.slice(axis + 1).reduce((x, y) => x * y, 1);
  const outer = a.size / (n * inner || 1);
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += Math.exp(a.data[(o * n + k) * inner + i]!);
    for (let k = 0; k < n; k++) {
      const at = (o * n + k) * inner + i;
      out.data[at] = log ? a.data[at]! - Math.log(s) : Math.exp(a.data[at]!) / s;
    }
  }
  return out;
}

forEachDevice('nn ops: softmax and cross-entropy', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = (inputs: T.Variable[], out: T.Variable, ...args: NDArray[]) => T.fn({ inputs, outputs: out, device })(...args) as NDArray;

  const axisCases: [number[], number][] = [[[3, 5], -1], [[3, 5], 0], [[2, 3, 4], 1], [[2, 3, 4], -3], [[4], 0], [[3, 1], -1], [[1, 4], 0]];
  for (const [shape, axis] of axisCases) {
    it(`softmax and logSoftmax of ${JSON.stringify(shape)} along axis ${axis}`, () => {
      const a = f32(shape, 1, -3, 3);
      const x = sym(a, 'x');
      const pos = axis < 0 ? axis + shape.length : axis;
      assertAllClose(run([x], T.softmax(x, axis), a), naiveSoftmax(a, pos), tol);
      assertAllClose(run([x], T.logSoftmax(x, axis), a), naiveSoftmax(a, pos, true), tol);
      assertAllClose(run([x], x.softmax(axis), a), naiveSoftmax(a, pos), tol, 'method');
    });
  }

  it('softmax and logSoftmax are stable for large inputs (max-shifted)', () => {
    const a = NDArray.from([[1000, 1001, 1002], [-1000, -1001, -1002]], { dtype: 'float32' });
    const x = sym(a, 'x');
    const ref = naiveSoftmax(NDArray.from([[0, 1, 2], [0, -1, -2]], { dtype: 'float64' }), 1);
    assertAllClose(run([x], T.softmax(x), a), ref, tol);
    const lref = naiveSoftmax(NDArray.from([[0, 1, 2], [0, -1, -2]], { dtype: 'float64' }), 1, true);
    assertAllClose(run([x], T.logSoftmax(x), a), lref, tol);
  });

  it('softmax: NaN and Inf as the naive formula (NumPy/SciPy), empty axes', () => {
    const a = NDArray.from([[NaN, 1, 2], [Infinity, 1, 2], [-Infinity, 0, 0], [-Infinity, -Infinity, -Infinity]], { dtype: 'float32' });
    const x = sym(a, 'x');
    assertAllClose(run([x], T.softmax(x), a), [[NaN, NaN, NaN], [NaN, 0, 0], [0, 0.5, 0.5], [NaN, NaN, NaN]]);
    assertAllClose(run([x], T.logSoftmax(x), a), [[NaN, NaN, NaN], [NaN, -Infinity, -Infinity], [-Infinity, -Math.LN2, -Math.LN2], [NaN, NaN, NaN]], tol);
    const e = new NDArray('float32', [2, 0]);
    assert.deepEqual([...run([x], T.softmax(x), e).shape], [2, 0]);
    assert.deepEqual([...run([x], T.logSoftmax(x, 0), e).shape], [2, 0]);
  });

  it('categoricalCrossentropy with integer targets and with one-hot / soft targets', () => {
    const p = naiveSoftmax(f64([4, 3], 2), 1);
    const probs = new NDArray('float32', [4, 3], Float32Array.from(p.data));
    const t = ints([2, 0, 1, 1]);
    const pv = sym(probs, 'p'), tv = sym(t, 't');
    const want = [0, 1, 2, 3].map((i) => -Math.log(probs.data[i * 3 + t.data[i]!]!));
    assertAllClose(run([pv, tv], T.categoricalCrossentropy(pv, tv), probs, t), want, tol);
    const soft = NDArray.from([[0, 0, 1], [1, 0, 0], [0.25, 0.5, 0.25], [0, 1, 0]], { dtype: 'float32' });
    const sv = sym(soft, 's');
    const wantSoft = [0, 1, 2, 3].map((i) => -[0, 1, 2].reduce((s, k) => s + soft.data[i * 3 + k]! * Math.log(probs.data[i * 3 + k]!), 0));
    assertAllClose(run([pv, sv], T.categoricalCrossentropy(pv, sv), probs, soft), wantSoft, tol);
  });

  it('crossentropyFromLogits equals -log softmax at the target, and stays finite for huge logits', () => {
    const z = f32([4, 3], 3, -2, 2);
    const t = ints([1, 2, 0, 2]);
    const zv = sym(z, 'z'), tv = sym(t, 't');
    const ls = naiveSoftmax(z, 1, true);
    assertAllClose(run([zv, tv], T.crossentropyFromLogits(zv, tv), z, t), [0, 1, 2, 3].map((i) => -ls.data[i * 3 + t.data[i]!]!), tol);
    const onehot = NDArray.from([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]], { dtype: 'float32' });
    const ov = sym(onehot, 'o');
    assertAllClose(run([zv, ov], T.crossentropyFromLogits(zv, ov), z, onehot), [0, 1, 2, 3].map((i) => -ls.data[i * 3 + t.data[i]!]!), tol);
    const big = NDArray.from([[1000, 0], [0, 1000]], { dtype: 'float32' });
    assertAllClose(run([zv, tv], T.crossentropyFromLogits(zv, tv), big, ints([0, 0])), [0, 1000], tol);
  });

  it('binaryCrossentropy follows Theano\'s formula; the logits form is stable', () => {
    const o = f32([2, 3], 4, 0.05, 0.95), t = f32([2, 3], 5, 0, 1);
    const ov = sym(o, 'o'), tv = sym(t, 't');
    const want = new NDArray('float64', [2, 3], Float64Array.from(o.data, (p, i) => -(t.data[i]! * Math.log(p) + (1 - t.data[i]!) * Math.log(1 - p))));
    assertAllClose(run([ov, tv], T.binaryCrossentropy(ov, tv), o, t), want, tol);
    const z = f32([2, 3], 6, -4, 4);
    const zv = sym(z, 'z');
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const wantL = new NDArray(
      'float64',
      [2, 3],
      Float64Array.from(z.data, (x, i) => -(t.data[i]! * Math.log(sig(x)) + (1 - t.data[i]!) * Math.log(1 - sig(x)))),
    );
    assertAllClose(run([zv, tv], T.binaryCrossentropyFromLogits(zv, tv), z, t), wantL, tol);
    const huge = NDArray.from([100, -100, 100], { dtype: 'float32' });
    const tt = NDArray.from([0, 1, 1], { dtype: 'float32' });
    const hv = sym(huge, 'h'), ttv = sym(tt, 'tt');
    assertAllClose(run([hv, ttv], T.binaryCrossentropyFromLogits(hv, ttv), huge, tt), [100, 100, 0], tol);
    // Clip-free, as documented: a probability of exactly 1 against target 0 gives Inf.
    assertAllClose(run([hv, ttv], T.binaryCrossentropy(hv, ttv), NDArray.from([1, 0.5, 1], { dtype: 'float32' }), tt), [Infinity, Math.LN2, NaN]);
  });

  it('errors: build-time types and run-time target ranges', () => {
    assert.throws(() => T.softmax(T.matrix('x'), 2), /softmax: axis 2 is out of range for x: float32 matrix/);
    assert.throws(() => T.softmax(T.scalar('s')), /axis -1 is out of range/);
    assert.throws(() => T.categoricalCrossentropy(T.matrix('p'), T.matrix('t', 'int32')), /integer targets need ndim 1.*t: int32 matrix/);
    assert.throws(() => T.crossentropyFromLogits(T.matrix('z'), T.vector('t')), /distribution targets need the predictions' ndim 2, got t: float32 vector/);
    const p = T.matrix('p'), t = T.vector('t', 'int32');
    const f = T.fn({ inputs: [p, t], outputs: T.categoricalCrossentropy(p, t), device });
    assert.throws(
      () => f(f32([2, 3], 1, 0.1, 0.9), ints([0, 3])),
      (e: Error) => e.name === 'OpRuntimeError' && /index 3 is out of range for 3 classes \(values of shape \(2, 3\)\)/.test(e.message),
    );
    assert.throws(
      () => f(f32([2, 3], 1, 0.1, 0.9), ints([0, 1, 2])),
      (e: Error) => e.name === 'OpRuntimeError' && /indices of shape \(3,\) do not match the rows of \(2, 3\)/.test(e.message),
    );
  });
});

// ---- gradients (float64, reference device) ------------------------------------------------------

it('grad of softmax and logSoftmax along several axes', () => {
  for (const axis of [-1, 0, 1]) {
    verifyGrad((x) => T.softmax(x!, axis), [f64([3, 4], 11, -2, 2)]);
    verifyGrad((x) => T.logSoftmax(x!, axis), [f64([3, 4], 12, -2, 2)]);
  }
  verifyGrad((x) => T.softmax(x!, 1), [f64([2, 3, 2], 13, -2, 2)]);
});

it('grad of the cross-entropies (integer and distribution targets)', () => {
  const t = T.constant(ints([2, 0, 1]));
  const soft = T.constant(naiveSoftmax(f64([3, 4], 14), 1));
  verifyGrad((z) => T.crossentropyFromLogits(z!, t), [f64([3, 3], 15, -2, 2)]);
  verifyGrad((z) => T.crossentropyFromLogits(z!, soft), [f64([3, 4], 16, -2, 2)]);
  verifyGrad((z) => T.categoricalCrossentropy(T.softmax(z!), t), [f64([3, 3], 17, -2, 2)]);
  verifyGrad((p, q) => T.categoricalCrossentropy(p!, q!), [f64([3, 4], 18, 0.1, 0.9), f64([3, 4], 19, 0, 1)]);
  verifyGrad((o, y) => T.binaryCrossentropy(o!, y!), [f64([2, 3], 20, 0.1, 0.9), f64([2, 3], 21, 0, 1)]);
  verifyGrad((z, y) => T.binaryCrossentropyFromLogits(z!, y!), [f64([2, 3], 22, -3, 3), f64([2, 3], 23, 0, 1)]);
});

it('second-order: gradients of crossentropyFromLogits through softmax', () => {
  const t = T.constant(ints([1, 0]));
  verifyGrad((z) => T.sum(T.square(T.grad(T.sum(T.crossentropyFromLogits(z!, t)), z!))), [f64([2, 3], 24, -2, 2)]);
  verifyGrad((z) => T.sum(T.square(T.grad(T.sum(T.mul(T.softmax(z!), T.constant(f64([2, 3], 25)))), z!))), [f64([2, 3], 26, -2, 2)]);
});
