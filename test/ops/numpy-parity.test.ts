// Regressions found against NumPy (float64): zero-row batches through flatten, rewrites that
// changed a result's shape or dtype, variance with ddof > n, float floor division, and the NumPy
// refusals (reshape with an ambiguous -1, repeated reduction axes). Expected values are written out
// here (checked against NumPy 2.4 when the tests were written); every device present runs them.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice, runOn } from '../helpers/devices.js';
import { assertAllClose } from '../helpers/allclose.js';

const f64 = (shape: number[], values?: readonly number[]): NDArray => {
  const a = new NDArray('float64', shape);
  if (values) a.data.set(values);
  return a;
};
const isOpError = (name: string, re: RegExp) => (e: Error) => e.name === name && re.test(e.message);

forEachDevice('NumPy parity', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = runOn(device);

  it('flatten keeps a zero-size leading axis: (0, 2, 3) -> (0, 6), and a zero-row batch goes through dot', () => {
    const x = T.tensor3('x', 'float64');
    const w = T.matrix('w', 'float64');
    const flat2 = T.flatten(x, 2);
    const [f2, f1, y] = run([x, w], [flat2, T.flatten(x), T.dot(flat2, w)], f64([0, 2, 3]), f64([6, 4]));
    assert.deepEqual([f2!.shape, f1!.shape, y!.shape], [[0, 6], [0], [0, 4]]);
    // A zero inside the trailing axes: (2, 0, 3) -> (2, 0); and one in the leading axes only.
    const [g2, g3] = run([x], [T.flatten(x, 2), T.flatten(x, 3)], f64([2, 0, 3]));
    assert.deepEqual([g2!.shape, g3!.shape], [[2, 0], [2, 0, 3]]);
    const [h2] = run([x], [T.flatten(x, 2)], f64([2, 3, 0]));
    assert.deepEqual(h2!.shape, [2, 0]);
  });

  it('reshape refuses -1 for a size-0 array when the other dims multiply to 0 (NumPy: -1 is ambiguous)', () => {
    const x = T.tensor3('x', 'float64');
    const f = T.fn({ inputs: [x], outputs: T.reshape(x, [0, -1]), device });
    assert.throws(() => f(f64([0, 2, 3])), isOpError('OpRuntimeError', /reshape: cannot reshape array of size 0 into \(0, -1\): -1 is ambiguous/));
    // -1 next to non-zero dims is still inferred for size-0 arrays, as in NumPy.
    const [a, b] = run([x], [T.reshape(x, [-1]), T.reshape(x, [3, -1])], f64([0, 2, 3]));
    assert.deepEqual([a!.shape, b!.shape], [[0], [3, 0]]);
  });

  it('pow(x, 2) with a broadcasting exponent keeps the broadcast shape (rewritten or not)', () => {
    const x = T.vector('x', 'float64');
    const p = T.pow(x, [[2]]);
    assert.deepEqual(p.broadcastable, [true, false]);
    for (const rewrite of [true, false]) {
      const got = T.fn({ inputs: [x], outputs: p, device, optimize: { rewrite } })([1, 2, 3]) as NDArray;
      assertAllClose(got, [[1, 4, 9]], tol, `rewrite ${rewrite}`);
    }
  });

  it('pow of an integer tensor by a float 2 stays float (the square rewrite would make it int32)', () => {
    const i = T.vector('i', 'int32');
    const p = T.pow(i, T.constant(2, { dtype: 'float64' }));
    assert.equal(p.dtype, 'float64');
    const got = run([i], [p], [3, -4])[0]!;
    assert.equal(got.dtype, 'float64');
    assertAllClose(got, [9, 16], tol);
  });

  it('neg(neg(b)) of a bool tensor is int32, as neg(b) is (the double-negation rewrite kept bool)', () => {
    const b = T.vector('b', 'bool');
    const nn = T.neg(T.neg(b));
    assert.equal(nn.dtype, 'int32');
    for (const rewrite of [true, false]) {
      const got = T.fn({ inputs: [b], outputs: nn, device, optimize: { rewrite } })([true, false]) as NDArray;
      assert.equal(got.dtype, 'int32', `rewrite ${rewrite}`);
      assert.deepEqual(Array.from(got.data), [1, 0]);
    }
    // neg(neg(x)) of a float is still simplified away.
    const x = T.vector('x', 'float64');
    const graph = T.fn({ inputs: [x], outputs: T.neg(T.neg(x)), device }).graph();
    assert.doesNotMatch(graph, /neg/);
  });

  it('variance and std with ddof >= n divide by max(n - ddof, 0): inf (NaN for zero deviations), as NumPy', () => {
    const x = T.vector('x', 'float64');
    const m = T.matrix('m', 'float64');
    const [v4, s4, v3, flat, rows] = run([x, m], [
      T.variance(x, null, false, 4), T.std(x, null, false, 4), T.variance(x, null, false, 3),
      T.variance(T.constant([3, 3, 3], { dtype: 'float64' }), null, false, 4), T.variance(m, 1, false, 3),
    ], [1, 2, 4], [[1, 2], [5, 5]]);
    assertAllClose(v4!, Infinity, tol);
    assertAllClose(s4!, Infinity, tol);
    assertAllClose(v3!, Infinity, tol);
    assertAllClose(flat!, NaN, tol);
    assertAllClose(rows!, [Infinity, NaN], tol);
    // ddof below n is unchanged: var([1, 2, 4], ddof=1) = 7/3.
    assertAllClose(run([x], [T.variance(x, null, false, 1)], [1, 2, 4])[0]!, 7 / 3, tol);
  });

  it('float intDiv is NumPy floor_divide (consistent with mod: a = intDiv(a, b) * b + mod(a, b))', () => {
    const a = T.vector('a', 'float64');
    const b = T.vector('b', 'float64');
    const av = [7.5, 1.0, -7.5, -1.0, 0.0, 3.0, Infinity, 5.0, -5.0, 0.3, 7, -7];
    const bv = [0.1, 0.1, 0.1, Infinity, -3.0, 0.0, 2.0, -Infinity, Infinity, 0.1, 2, 2];
    const [q, r] = run([a, b], [T.intDiv(a, b), T.mod(a, b)], av, bv);
    // numpy.floor_divide and numpy.mod of the same arrays
    assertAllClose(q!, [74, 9, -75, -1, -0, Infinity, NaN, -1, -1, 2, 3, -4], { rtol: 0, atol: 0 });
    const numpyMod = [0.09999999999999959, 0.09999999999999995, 4.163336342344337e-16, Infinity, -0, NaN, NaN, -Infinity, Infinity, 0.09999999999999998, 1, 1];
    assertAllClose(r!, numpyMod, { rtol: 1e-12, atol: 1e-15 });
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(q!.data[i]! * bv[i]! + r!.data[i]! - av[i]!) < 1e-12, `identity at ${i}`);
    // A scalar divisor and float32 inputs (computed as the reference does, then rounded).
    const x = T.vector('x', 'float64');
    assertAllClose(run([x], [T.intDiv(x, 0.1)], [7.5, 1.0])[0]!, [74, 9], { rtol: 0, atol: 0 });
    const x32 = T.vector('x32', 'float32');
    assertAllClose(run([x32], [T.intDiv(x32, T.constant(0.1, { dtype: 'float32' }))], [7.5, 1.0])[0]!, [74, 9], { rtol: 0, atol: 0 });
    // Integer floor division is unchanged (x // 0 gives 0, as NumPy for integers).
    const i = T.vector('i', 'int32');
    const j = T.vector('j', 'int32');
    assert.deepEqual(Array.from(run([i, j], [T.intDiv(i, j)], [7, -7, 7, 5], [2, 2, -2, 0])[0]!.data), [3, -4, -4, 0]);
  });

  it('reductions refuse a repeated axis, also spelled negatively (NumPy: duplicate value in axis)', () => {
    const m = T.matrix('m', 'float64');
    assert.throws(() => T.sum(m, [0, 0]), /sum: axes \[0,0\] repeat an axis/);
    assert.throws(() => T.mean(m, [1, -1]), /mean: axes \[1,-1\] repeat an axis/);
    assert.throws(() => T.variance(m, [0, -2]), /var: axes \[0,-2\] repeat an axis/);
    assert.throws(() => T.max(m, [0, 0]), /max: axes \[0,0\] repeat an axis/);
    // Distinct axes in any order are fine.
    assertAllClose(run([m], [T.sum(m, [1, 0])], [[1, 2], [3, 4]])[0]!, 10, tol);
  });
});
