// Reductions over batch norm's axes (0, 2, 3 of NCHW) on a real GPU (skipped, saying why, without one):
// with rows enough they run in two passes (rows of H x W, then columns over the batch) instead of a
// transposing copy, so each is checked against the float64 reference here, on shapes that take the two
// passes and on shapes that still transpose; the plan itself is checked in codegen.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import { planReduce } from '../../../src/devices/cuda/lower/reduce.js';
import { gpu } from '../../helpers/gpu.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';

const oracle = new T.ReferenceDevice({ float64: true });
const REDUCTIONS = ['sum', 'mean', 'max', 'min', 'prod', 'all', 'any'] as const;

test('sum, mean, max, min, prod, all and any over axes (0, 2, 3) equal the reference, in two passes and transposed', (t) => {
  const device = gpu(t);
  if (!device) return;
  const sms = device.context.multiprocessors;
  for (const shape of [[8, 48, 5, 7], [2, 3, 4, 5], [4, 96, 1, 9]]) {
    const two = planReduce(shape, [0, 2, 3], true, sms).kind === 'twoStage';
    t.diagnostic(`${shape.join('x')}: ${two ? 'two passes' : 'transposed'}`);
    const x = T.tensor4('x', 'float32');
    const value = randomArray(shape, shape[1]!, { dtype: 'float32' });
    // prod of many values leaves float32's range: take it of values near 1.
    const near1 = T.add(1, T.mul(0.01, x));
    for (const op of REDUCTIONS) {
      for (const keepdims of [false, true]) {
        const input = op === 'prod' ? near1 : op === 'all' || op === 'any' ? T.gt(x, 0.9) : x;
        const y = (T[op] as (v: T.Variable, axes: number[], keepdims: boolean) => T.Variable)(input, [0, 2, 3], keepdims);
        const got = T.fn({ inputs: [x], outputs: y, device })(value) as NDArray;
        const want = T.fn({ inputs: [x], outputs: y, device: oracle })(value) as NDArray;
        assert.deepEqual(got.shape, want.shape, `${op} keepdims ${keepdims}`);
        assertAllClose(got, want, { rtol: 1e-5, atol: 1e-5 }, `${op} over (0, 2, 3) of ${shape.join('x')}, keepdims ${keepdims}`);
      }
    }
  }
  assert.equal(planReduce([8, 48, 5, 7], [0, 2, 3], true, sms).kind, 'twoStage', 'the first shape takes the two passes');
});

test('the gradient of a per-channel bias (sumToLike over 0, 2, 3) equals the reference', (t) => {
  const device = gpu(t);
  if (!device) return;
  const x = T.tensor4('x', 'float32');
  const b = T.vector('b', 'float32');
  const y = T.add(x, T.dimshuffle(b, ['x', 0, 'x', 'x']));
  const cost = T.sum(T.mul(y, y));
  const outputs = T.grad(cost, [b]);
  const xv = randomArray([16, 64, 6, 6], 5, { dtype: 'float32' });
  const bv = randomArray([64], 6, { dtype: 'float32' });
  const got = T.fn({ inputs: [x, b], outputs, device })(xv, bv) as NDArray[];
  const want = T.fn({ inputs: [x, b], outputs, device: oracle })(xv, bv) as NDArray[];
  assertAllClose(got[0]!, want[0]!, { rtol: 1e-4, atol: 1e-3 });
});
