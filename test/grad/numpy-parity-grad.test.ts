// Gradient regressions: setSubtensor on a take with repeated indices (only the write the forward
// pass keeps receives gradient), the exponent gradient of pow at a zero base (0, its limit, where
// the exponent is positive) and variance with ddof >= n. Expectations are written out here.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice, runOn } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

const i32 = (values: number[], shape?: number[]) => NDArray.from(values, { dtype: 'int32', ...(shape ? { shape } : {}) });

forEachDevice('gradients against NumPy semantics', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = runOn(device);

  it('setSubtensor on a take with repeated indices: only the last write of each position gets gradient', () => {
    const x = T.vector('x', 'float64');
    const y = T.vector('y', 'float64');
    const z = T.setSubtensor(x.take([1, 1]), y);
    const [gy, gx, zv] = run([x, y], [...T.grad(T.sum(T.mul(z, [0, 10, 0])), [y, x]), z], [1, 2, 3], [4, 5]);
    assertAllClose(zv!, [1, 5, 3], tol); // the forward pass keeps the last write
    assertAllClose(gy!, [0, 10], tol);
    assertAllClose(gx!, [0, 0, 0], tol);
    // A negative index naming the same position as a positive one (-2 is 1 for size 3).
    const w = T.vector('w', 'float64');
    const z2 = T.setSubtensor(x.take([-2, 2, 1, 0]), w);
    const [gw] = run([x, w], [T.grad(T.sum(T.mul(z2, [1, 10, 100])), w)], [1, 2, 3], [4, 5, 6, 7]);
    assertAllClose(gw!, [0, 100, 10, 1], tol);
  });

  it('setSubtensor with repeated indices along an inner axis, 2-d indices and a broadcast y', () => {
    const m = T.matrix('m', 'float64');
    const y = T.matrix('y', 'float64');
    const p = [[1, 2, 3], [4, 5, 6]];
    // Columns [0, 2, 0] of a 2x3 matrix set from a 2x3 y: column 0 is written twice, the second write wins.
    const z = T.setSubtensor(m.take([0, 2, 0], 1), y);
    const [gy] = run([m, y], [T.grad(T.sum(T.mul(z, p)), y)], [[0, 0, 0], [0, 0, 0]], [[9, 9, 9], [9, 9, 9]]);
    assertAllClose(gy!, [[0, 3, 1], [0, 6, 4]], tol);
    // A scalar y broadcast to the region: its gradient sums the surviving writes only (positions 0 and 2, once each).
    const s = T.scalar('s', 'float64');
    const zs = T.setSubtensor(m.take(T.constant(i32([0, 2, 0, 2], [2, 2])), 1), s);
    const [gs] = run([m, s], [T.grad(T.sum(T.mul(zs, p)), s)], [[0, 0, 0], [0, 0, 0]], 1);
    assertAllClose(gs!, 1 + 3 + 4 + 6, tol);
    // Finite differences agree (a loser's value does not change the cost).
    verifyGrad((a, b) => T.setSubtensor(a.take(T.constant(i32([1, 0, 1])), 0), b), [randomArray([2, 3], 5), randomArray([3, 3], 6)]);
  });

  it('incSubtensor with repeated indices still sends every write its gradient', () => {
    const x = T.vector('x', 'float64');
    const y = T.vector('y', 'float64');
    const z = T.incSubtensor(x.take([1, 1]), y);
    const [gy] = run([x, y], [T.grad(T.sum(T.mul(z, [0, 10, 0])), y)], [1, 2, 3], [4, 5]);
    assertAllClose(gy!, [10, 10], tol);
  });

  it('d pow(x, y) / dy at x = 0 is 0 for y > 0 (its limit), and x^y log x elsewhere', () => {
    const x = T.vector('x', 'float64');
    const y = T.vector('y', 'float64');
    const [gy, gx] = run([x, y], T.grad(T.sum(T.pow(x, y)), [y, x]), [0, 0, 2, 3, 0], [2, 0.5, 1, -1, 1]);
    assertAllClose(gy!, [0, 0, 2 * Math.log(2), Math.log(3) / 3, 0], tol);
    assertAllClose(gx!, [0, Infinity, 1, -1 / 9, 1], tol);
    // At a zero exponent the one-sided derivative is unbounded, as before (not smoothed over).
    const [g0] = run([x, y], [T.grad(T.sum(T.pow(x, y)), y)], [0], [0]);
    assert.equal(g0!.data[0], -Infinity);
  });

  it('the variance gradient with ddof >= n divides by max(n - ddof, 0) like the forward pass', () => {
    const x = T.vector('x', 'float64');
    const [g] = run([x], [T.grad(T.variance(x, null, false, 4), x)], [1, 2, 4]);
    // 2 (x - mean) / 0: the signs of the deviations (mean 7/3)
    assertAllClose(g!, [-Infinity, -Infinity, Infinity], tol);
  });
});
