// Shape family: concatenate, stack, alloc, zeros, ones, arange, oneHot, repeat, tile, against plain JS
// loops and hand-computed values; gradients by finite differences; build- and run-time errors.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice, runOn } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

const range = (n: number): number[] => [...Array(n).keys()];
/** A 3-d nested array from a function of the index. */
const build3 = (s: readonly number[], f: (i: number, j: number, k: number) => number) =>
  range(s[0]!).map((i) => range(s[1]!).map((j) => range(s[2]!).map((k) => f(i, j, k))));

forEachDevice('shape ops', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = runOn(device);

  it('concatenate along every axis, negative axes, empty parts, dtype promotion', () => {
    const [x, y, z] = [T.tensor3('x'), T.tensor3('y'), T.tensor3('z')];
    const a = randomArray([2, 3, 2], 1, { dtype: 'float32' });
    const b = randomArray([2, 1, 2], 2, { dtype: 'float32' });
    const e = NDArray.from(new Float32Array(0), { shape: [2, 0, 2] });
    const [c1, cNeg] = run([x, y, z], [T.concatenate([x, y, z], 1), T.concatenate([x, x], -1)], a, b, e);
    assertAllClose(c1!, build3([2, 4, 2], (i, j, k) => (j < 3 ? a.get(i, j, k) : b.get(i, j - 3, k))), tol);
    assertAllClose(cNeg!, build3([2, 3, 4], (i, j, k) => a.get(i, j, k % 2)), tol);
    const [c0] = run([x, y], [T.concatenate([x, y], 0)], a, a);
    assertAllClose(c0!, build3([4, 3, 2], (i, j, k) => a.get(i % 2, j, k)), tol);
    const iv = T.vector('iv', 'int32');
    const fv = T.vector('fv');
    const mixed = T.concatenate([iv, fv, [7]]);
    assert.equal(mixed.dtype, 'float32');
    assertAllClose(run([iv, fv], [mixed], [1, 2], [0.5, NaN])[0]!, [1, 2, 0.5, NaN, 7], tol);
    assert.equal(T.concatenate([iv, iv]).dtype, 'int32');
  });

  it('concatenate: broadcastable flags and errors', () => {
    const row = T.tensor({ broadcastable: [true, false] });
    assert.deepEqual(T.concatenate([row, row], 1).broadcastable, [true, false]);
    assert.deepEqual(T.concatenate([row, row], 0).broadcastable, [false, false]);
    assert.deepEqual(T.concatenate([row], 0).broadcastable, [true, false]);
    const [m, v] = [T.matrix('m'), T.vector('v')];
    assert.throws(() => T.concatenate([m, v]), (e: Error) => e.name === 'OpTypeError' && /concatenate: all inputs must have the same ndim/.test(e.message));
    assert.throws(() => T.concatenate([T.scalar('s'), T.scalar('t')]), /zero-dimensional tensors cannot be concatenated/);
    assert.throws(() => T.concatenate([m, m], 2), /axis 2 is out of range for ndim 2/);
    assert.throws(() => T.concatenate([]), /non-empty array/);
    const m2 = T.matrix('m2');
    const f = T.fn({ inputs: [m, m2], outputs: T.concatenate([m, m2], 1), device });
    assert.throws(
      () => f([[1, 2]], [[1], [2]]),
      (e: Error) => e.name === 'OpRuntimeError' && /shapes \(1, 2\), \(2, 1\) differ outside axis 1/.test(e.message),
    );
  });

  it('stack on a new axis (0, middle, last, negative)', () => {
    const [x, y] = [T.matrix('x'), T.matrix('y')];
    const a = randomArray([2, 3], 3, { dtype: 'float32' });
    const b = randomArray([2, 3], 4, { dtype: 'float32' });
    const pickAB = (w: number, i: number, j: number) => (w === 0 ? a : b).get(i, j);
    const [s0, s1, s2, sn] = run([x, y], [T.stack([x, y]), T.stack([x, y], 1), T.stack([x, y], 2), T.stack([x, y], -1)], a, b);
    assertAllClose(s0!, build3([2, 2, 3], (w, i, j) => pickAB(w, i, j)), tol);
    assertAllClose(s1!, build3([2, 2, 3], (i, w, j) => pickAB(w, i, j)), tol);
    assertAllClose(s2!, build3([2, 3, 2], (i, j, w) => pickAB(w, i, j)), tol);
    assertAllClose(sn!, s2!, tol);
    const s = T.scalar('s');
    assertAllClose(run([s], [T.stack([s, 2, s])], 5)[0]!, [5, 2, 5], tol);
    assert.throws(() => T.stack([x, T.vector('v')]), (e: Error) => e.name === 'OpTypeError' && /stack: all inputs must have the same ndim/.test(e.message));
    assert.throws(() => T.stack([x, y], 3), /axis 3 is out of range/);
    assert.throws(() => run([x, y], [T.stack([x, y])], a, randomArray([3, 2], 5, { dtype: 'float32' })), /differ outside axis 0/);
  });

  it('alloc broadcasts a value to a shape of numbers and symbolic dims', () => {
    const v = T.vector('v');
    const m = T.matrix('m');
    const av = randomArray([3], 6, { dtype: 'float32' });
    const am = randomArray([2, 1], 7, { dtype: 'float32' });
    const [r1, r2, r3, r4] = run([v, m], [T.alloc(1.5, 2, 3), T.alloc(v, 2, 3), T.alloc(m, [m.shape[0]!, 4]), T.alloc(v, 0, 3)], av, am);
    assertAllClose(r1!, [[1.5, 1.5, 1.5], [1.5, 1.5, 1.5]]);
    assertAllClose(r2!, [0, 1].map(() => range(3).map((j) => av.get(j))), tol);
    assertAllClose(r3!, [0, 1].map((i) => range(4).map(() => am.get(i, 0))), tol);
    assert.deepEqual(r4!.shape, [0, 3]);
    assert.deepEqual(T.alloc(0, 1, 3).broadcastable, [true, false]);
    assert.throws(
      () => T.alloc(m, 3),
      (e: Error) => e.name === 'OpTypeError' && /alloc: the value has ndim 2, more than the 1 requested dimensions/.test(e.message),
    );
    assert.throws(() => T.alloc(0, 2.5), /must be an integer/);
    assert.throws(
      () => run([v], [T.alloc(v, 2, 4)], av),
      (e: Error) => e.name === 'OpRuntimeError' && /cannot broadcast a value of shape \(3,\) to \(2, 4\)/.test(e.message),
    );
  });

  it('zeros and ones: dtypes, symbolic shapes, empty axes', () => {
    const x = T.matrix('x');
    const n = T.scalar('n', 'int32');
    const [z, o, zi, e] = run([x, n], [T.zeros(x.shape), T.ones([n, 2], 'int32'), T.zeros(3, 'uint8'), T.ones([0, n])], [[1, 2, 3]], 2);
    assertAllClose(z!, [[0, 0, 0]]);
    assert.equal(z!.dtype, 'float32');
    assert.deepEqual(o!.toArray(), [[1, 1], [1, 1]]);
    assert.equal(o!.dtype, 'int32');
    assert.deepEqual(zi!.toArray(), [0, 0, 0]);
    assert.equal(zi!.dtype, 'uint8');
    assert.deepEqual(e!.shape, [0, 2]);
    assert.throws(() => T.zeros([2, -1]), /dimension 1 is negative/);
    assert.throws(() => T.zeros([T.scalar('f')]), /must be an integer scalar/);
  });

  it('arange: stop only, start/stop/step, negative and float steps, symbolic bounds, empty', () => {
    const n = T.scalar('n', 'int32');
    const outs = run([n], [
      T.arange(5), T.arange(2, 8, 3), T.arange(5, 1, -2), T.arange(0, 1, 0.25), T.arange(n), T.arange(1, n, 2), T.arange(3, 1),
      T.arange(4, 'float64'), T.arange(-3, n, null, 'float32'),
    ], 6);
    const want = [[0, 1, 2, 3, 4], [2, 5], [5, 3], [0, 0.25, 0.5, 0.75], range(6), [1, 3, 5], [], [0, 1, 2, 3], [-3, -2, -1, 0, 1, 2, 3, 4, 5]];
    want.forEach((w, k) => assert.deepEqual(Array.from(outs[k]!.data), w, `case ${k}`));
    assert.deepEqual(outs.map((o) => o.dtype), ['int32', 'int32', 'int32', 'float32', 'int32', 'int32', 'int32', 'float64', 'float32']);
    assert.deepEqual(T.arange(3, 4).broadcastable, [true]);
    assert.throws(() => T.arange(0, 5, 0), (e: Error) => e.name === 'OpTypeError' && /arange: step cannot be zero/.test(e.message));
    assert.throws(() => T.arange(T.scalar('f')), /start|stop/);
    const f = T.fn({ inputs: [n], outputs: T.arange(0, 5, n), device });
    assert.throws(() => f(0), (e: Error) => e.name === 'OpRuntimeError' && /step is zero/.test(e.message));
  });

  it('oneHot: vector and matrix indices, symbolic n, dtypes, errors', () => {
    const v = T.vector('v', 'int32');
    const m = T.matrix('m', 'int32');
    const n = T.scalar('n', 'int32');
    const [a, b, e] = run([v, m, n], [T.oneHot(v, 4), T.oneHot(m, n, 'int32'), T.oneHot(T.arange(0), 3)], [2, 0, 3], [[1], [0]], 2);
    assert.deepEqual(a!.toArray(), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]);
    assert.equal(a!.dtype, 'float32');
    assert.deepEqual(b!.toArray(), [[[0, 1]], [[1, 0]]]);
    assert.equal(b!.dtype, 'int32');
    assert.deepEqual(e!.shape, [0, 3]);
    assert.deepEqual(T.oneHot([1, 2], 3).toString().includes('float32 matrix'), true);
    assert.throws(() => T.oneHot(T.vector('f'), 3), (e2: Error) => e2.name === 'OpTypeError' && /indices must be an integer tensor/.test(e2.message));
    const f = T.fn({ inputs: [v], outputs: T.oneHot(v, 3), device });
    assert.throws(() => f([0, 3]), (e2: Error) => e2.name === 'OpRuntimeError' && /index 3 \(at position 1\) is out of range for n = 3/.test(e2.message));
    assert.throws(() => f([-1]), /index -1/);
  });

  it('repeat along an axis, a negative axis, the flattened array, zero times', () => {
    const x = T.matrix('x');
    const a = NDArray.from([[1, 2, 3], [4, NaN, Infinity]], { dtype: 'float32' });
    const [r0, r1, rf, rz] = run([x], [x.repeat(2, 0), T.repeat(x, 3, -1), x.repeat(2), x.repeat(0, 1)], a);
    assertAllClose(r0!, [[1, 2, 3], [1, 2, 3], [4, NaN, Infinity], [4, NaN, Infinity]]);
    assertAllClose(r1!, [[1, 1, 1, 2, 2, 2, 3, 3, 3], [4, 4, 4, NaN, NaN, NaN, Infinity, Infinity, Infinity]]);
    assertAllClose(rf!, [1, 1, 2, 2, 3, 3, 4, 4, NaN, NaN, Infinity, Infinity]);
    assert.deepEqual(rz!.shape, [2, 0]);
    assert.throws(() => x.repeat(-1, 0), (e: Error) => e.name === 'OpTypeError' && /repeats must be a non-negative integer/.test(e.message));
    assert.throws(() => x.repeat(2, 2), /axis 2 is out of range for ndim 2/);
    assert.deepEqual(T.tensor({ broadcastable: [true, false] }).repeat(1, 0).broadcastable, [true, false]);
    assert.deepEqual(T.tensor({ broadcastable: [true, false] }).repeat(2, 0).broadcastable, [false, false]);
  });

  it('tile with reps shorter than, equal to and longer than ndim', () => {
    const x = T.matrix('x');
    const a = randomArray([2, 3], 8, { dtype: 'float32' });
    const [t1, t2, t3, t0] = run([x], [x.tile([2, 2]), T.tile(x, 2), x.tile([2, 1, 3]), x.tile([0, 1])], a);
    assertAllClose(t1!, range(4).map((i) => range(6).map((j) => a.get(i % 2, j % 3))), tol);
    assertAllClose(t2!, range(2).map((i) => range(6).map((j) => a.get(i, j % 3))), tol);
    assertAllClose(t3!, build3([2, 2, 9], (_w, i, j) => a.get(i, j % 3)), tol);
    assert.deepEqual(t0!.shape, [0, 3]);
    assert.throws(() => x.tile([-1, 1]), (e: Error) => e.name === 'OpTypeError' && /reps must be non-negative integers/.test(e.message));
  });

  it('gradients: concatenate and stack split the gradient back', () => {
    verifyGrad((a, b, c2) => T.concatenate([a, b, c2], 1), [randomArray([2, 3], 9), randomArray([2, 1], 10), randomArray([2, 2], 11)]);
    verifyGrad((a, b) => T.concatenate([T.square(a), b], -1), [randomArray([3], 12), randomArray([2], 13)]);
    verifyGrad((a, b) => T.stack([a, T.mul(a, b), b], 1), [randomArray([2, 2], 14), randomArray([2, 2], 15)]);
    verifyGrad((a) => T.concatenate([a, T.cast(T.arange(2), 'float64')]), [randomArray([3], 16)]);
  });

  it('gradients: alloc sums back, repeat sums groups, tile sums tiles', () => {
    verifyGrad((v) => T.alloc(v, 2, 3), [randomArray([3], 17)]);
    verifyGrad((v) => T.alloc(v, 4, 2, 3), [randomArray([2, 1], 18)]);
    verifyGrad((s) => T.alloc(s, 2, 2), [randomArray([], 19)]);
    verifyGrad((x) => T.repeat(x, 3, 1), [randomArray([2, 3], 20)]);
    verifyGrad((x) => x.repeat(2, 0), [randomArray([3, 2], 21)]);
    verifyGrad((x) => x.repeat(2), [randomArray([2, 2], 22)]);
    verifyGrad((x) => x.tile([2, 3]), [randomArray([2, 2], 23)]);
    verifyGrad((x) => x.tile([3, 1, 2]), [randomArray([2, 3], 24)]);
    const x = T.matrix('x', 'float64');
    const g = T.fn({ inputs: [x], outputs: T.grad(T.sum(x.tile([2, 3])), x), device })([[1, 2], [3, 4]]) as NDArray;
    assertAllClose(g, [[6, 6], [6, 6]]);
  });
});
