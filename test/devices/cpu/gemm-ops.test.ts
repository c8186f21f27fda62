// matmul (every transpose case, batched, broadcast batches, mixed dtypes, empty) and conv2d with
// its two gradient ops (stride, padding, dilation, groups, 'same', the 1x1 direct path) through
// GEMM, against the float64 oracle; errors worded as on the reference device.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { ReferenceDevice } from '../../../src/devices/reference/reference-device.js';
import type { Conv2dOptions } from '../../../src/build/build-nn.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle, checkExact, errorOf, forEachCpuDevice } from './cpu-cases.js';

const arr = (shape: number[], seed: number, dtype: 'float32' | 'float64' = 'float32') => randomArray(shape, seed, { dtype });
const t = (ndim: number, name: string, dtype: T.DType = 'float32') => T.tensor({ dtype, ndim, name });

forEachCpuDevice('matmul through GEMM', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };

  it('2-d: all four transpose combinations', () => {
    const [m, k, n] = [5, 7, 3];
    for (const transA of [false, true]) for (const transB of [false, true]) {
      const a = T.matrix('a'), b = T.matrix('b');
      const y = T.matmul(a, b, { transA, transB });
      checkAgainstOracle(device, [a, b], [y], [arr(transA ? [k, m] : [m, k], 1), arr(transB ? [n, k] : [k, n], 2)], tol, `transA ${transA} transB ${transB}`);
    }
  });

  it('batched, with broadcast batch axes, in every transpose case', () => {
    const [m, k, n] = [4, 6, 5];
    const cases: [number[], number[]][] = [[[2, 3], []], [[2, 3], [3]], [[2, 1], [4]], [[], [3]], [[3], [2, 1]], [[1], [1]]];
    for (const [ba, bb] of cases) for (const transA of [false, true]) for (const transB of [false, true]) {
      const a = t(ba.length + 2, 'a'), b = t(bb.length + 2, 'b');
      const y = T.matmul(a, b, { transA, transB });
      const as = [...ba, ...(transA ? [k, m] : [m, k])], bs = [...bb, ...(transB ? [n, k] : [k, n])];
      checkAgainstOracle(device, [a, b], [y], [arr(as, 3), arr(bs, 4)], tol, `batch ${JSON.stringify([ba, bb])} ${transA} ${transB}`);
    }
  });

  it('dot in every NumPy case, float64, mixed float32/float64, larger sizes', () => {
    const v = T.vector('v'), m = T.matrix('m'), a3 = T.tensor3('a3'), b3 = T.tensor3('b3');
    checkAgainstOracle(device, [v, m, a3, b3], [T.dot(v, m), T.dot(m, v), T.dot(v, v), T.dot(a3, m), T.dot(m, b3), T.dot(a3, b3)],
      [arr([4], 1), arr([4, 4], 2), arr([2, 3, 4], 3), arr([3, 4, 2], 4)], tol, 'dot');
    const x = T.matrix('x', 'float64'), y = T.matrix('y');
    checkAgainstOracle(device, [x, y], [T.dot(x, y), T.dot(y, x)], [arr([33, 40], 5, 'float64'), arr([40, 33], 6)], tol, 'mixed');
    const p = T.matrix('p'), q = T.matrix('q');
    checkAgainstOracle(device, [p, q], [T.dot(p, q)], [arr([70, 130], 7), arr([130, 65], 8)], tol, 'larger');
  });

  it('empty operands and k = 0 give zeros; integer matmul is exact', () => {
    const a = T.matrix('a'), b = T.matrix('b');
    const [r] = checkAgainstOracle(device, [a, b], [T.matmul(a, b)], [arr([3, 0], 1), arr([0, 4], 2)], tol, 'k = 0');
    assert.deepEqual(Array.from(r!.data), new Array(12).fill(0));
    checkAgainstOracle(device, [a, b], [T.matmul(a, b)], [arr([0, 3], 1), arr([3, 4], 2)], tol, 'm = 0');
    const i = T.matrix('i', 'int32'), j = T.matrix('j', 'int32');
    const iv = randomArray([3, 4], 1, { dtype: 'int32', lo: -50, hi: 50 }), jv = randomArray([4, 2], 2, { dtype: 'int32', lo: -50, hi: 50 });
    checkExact(device, [i, j], [T.matmul(i, j)], [iv, jv], 'int32');
  });

  it('shape errors read as on the reference device', () => {
    const a = T.matrix('a'), b = T.matrix('b');
    const args = [arr([2, 3], 1), arr([4, 2], 2)] as const;
    const mine = errorOf(() => T.fn({ inputs: [a, b], outputs: T.matmul(a, b), device })(...args));
    const ref = errorOf(() => T.fn({ inputs: [a, b], outputs: T.matmul(a, b), device: new ReferenceDevice() })(...args));
    assert.ok(mine && ref);
    assert.equal(mine.message, ref.message);
    assert.match(mine.message, /inner dimensions differ/);
  });
});

forEachCpuDevice('conv2d through im2col and GEMM', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const cases: [string, number[], number[], Conv2dOptions][] = [
    ['plain 3x3', [2, 3, 7, 6], [4, 3, 3, 3], {}],
    ['stride 2, padding 1', [2, 3, 8, 7], [5, 3, 3, 3], { stride: 2, padding: 1 }],
    ['dilation 2, padding [2, 1]', [1, 2, 9, 8], [3, 2, 3, 2], { dilation: 2, padding: [2, 1] }],
    ['groups 2', [2, 4, 6, 6], [6, 2, 3, 3], { groups: 2, padding: 1 }],
    ["'same' with an even kernel", [2, 3, 5, 6], [2, 3, 4, 2], { padding: 'same' }],
    ['1x1 (direct, no im2col)', [3, 4, 5, 5], [6, 4, 1, 1], {}],
    ['1x1 with groups', [2, 6, 3, 4], [4, 3, 1, 1], { groups: 2 }],
    ['stride larger than the kernel', [1, 2, 9, 9], [2, 2, 2, 2], { stride: 3 }],
    ['empty batch', [0, 3, 5, 5], [2, 3, 3, 3], {}],
  ];
  for (const [name, xs, ws, options] of cases) {
    it(`${name}: forward, input gradient and filter gradient`, () => {
      const x = T.tensor4('x'), w = T.tensor4('w');
      const y = T.conv2d(x, w, options);
      const g = T.tensor4('g');
      // The gradient ops, applied to an arbitrary output gradient g.
      const gx = T.conv2dInputGrad(g, w, x, options);
      const gw = T.conv2dFilterGrad(x, g, w, options);
      const xv = arr(xs, 1), wv = arr(ws, 2);
      const yShape = (T.fn({ inputs: [x, w], outputs: y, device: new ReferenceDevice() })(xv, wv) as NDArray).shape;
      checkAgainstOracle(device, [x, w, g], [y, gx, gw], [xv, wv, arr([...yShape], 3)], tol, name);
    });
  }

  it('T.grad of a convolutional loss, float64', () => {
    const x = T.tensor4('x', 'float64'), w = T.tensor4('w', 'float64');
    const loss = T.sum(T.tanh(T.conv2d(x, w, { stride: 2, padding: 1 })));
    const [gx, gw] = T.grad(loss, [x, w]);
    checkAgainstOracle(
      device,
      [x, w],
      [loss, gx!, gw!],
      [arr([2, 3, 6, 6], 4, 'float64'), arr([4, 3, 3, 3], 5, 'float64')],
      { rtol: 1e-10, atol: 1e-12 },
      'grad',
    );
  });

  it('bad shapes read as on the reference device', () => {
    const x = T.tensor4('x'), w = T.tensor4('w');
    const args = [arr([1, 3, 5, 5], 1), arr([2, 2, 3, 3], 2)] as const;
    const mine = errorOf(() => T.fn({ inputs: [x, w], outputs: T.conv2d(x, w), device })(...args));
    const ref = errorOf(() => T.fn({ inputs: [x, w], outputs: T.conv2d(x, w), device: new ReferenceDevice() })(...args));
    assert.ok(mine && ref);
    assert.equal(mine.message, ref.message);
  });
});
