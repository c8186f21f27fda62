// Fast reductions over every axis combination, softmax / logSoftmax along every axis, and the
// fused cross-entropy (takeRowwise of logSoftmax) against the float64 oracle; NaN/Inf, empty axes,
// integer and bool inputs; errors worded as on the reference device.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { describeFunction } from '../../../src/run/function.js';
import { ReferenceDevice } from '../../../src/devices/reference/reference-device.js';
import { rewriteForCpu } from '../../../src/devices/cpu/peephole.js';
import { reduceToAccumulators } from '../../../src/devices/cpu/reductions.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle, checkExact, errorOf, forEachCpuDevice } from './cpu-cases.js';

const f32 = (shape: number[], seed: number, lo = -2, hi = 2) => randomArray(shape, seed, { dtype: 'float32', lo, hi });
const AXES: (number[] | undefined)[] = [undefined, [0], [1], [2], [0, 1], [0, 2], [1, 2], [-1], [0, 1, 2]];

forEachCpuDevice('fast reductions and softmax', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };

  it('sum, mean, prod, max, min over every axis set, with and without keepdims', () => {
    const x = T.tensor3('x');
    const xv = f32([3, 4, 5], 1, 0.5, 1.5);
    xv.data[7] = -3;
    for (const axes of AXES) for (const keepdims of [false, true]) {
      const outs = [T.sum(x, axes, keepdims), T.mean(x, axes, keepdims), T.prod(x, axes, keepdims), T.max(x, axes, keepdims), T.min(x, axes, keepdims)];
      checkAgainstOracle(device, [x], outs, [xv], tol, `axes ${JSON.stringify(axes)} keepdims ${keepdims}`);
    }
  });

  it('size-1 and empty axes; NaN and Inf propagate', () => {
    const x = T.tensor3('x');
    checkAgainstOracle(device, [x], [T.sum(x, [1]), T.mean(x, [0, 2]), T.max(x, [2])], [f32([4, 1, 3], 2)], tol, 'size-1');
    checkAgainstOracle(device, [x], [T.sum(x, [1]), T.mean(x, [1]), T.prod(x, [1]), T.sum(x, [0])], [f32([2, 0, 3], 3)], tol, 'empty reduced axis');
    const xv = f32([2, 3, 4], 4);
    xv.data[5] = NaN; xv.data[14] = Infinity; xv.data[20] = -Infinity;
    checkAgainstOracle(device, [x], [T.sum(x, [2]), T.max(x, [1]), T.min(x, [0, 1]), T.mean(x)], [xv], tol, 'NaN/Inf');
  });

  it('integer and bool inputs: sums are int32, means float, max keeps the dtype', () => {
    const i = T.matrix('i', 'int32'), b = T.matrix('b', 'bool');
    const iv = randomArray([3, 5], 1, { dtype: 'int32', lo: -1000, hi: 1000 });
    const bv = NDArray.from([[true, false, true], [true, true, false]]);
    const outs = checkExact(device, [i, b], [T.sum(i, [0]), T.max(i, [1]), T.mean(i, [1]), T.sum(b, [1]), T.max(b, [0])], [iv, bv], 'ints');
    assert.deepEqual(outs.map((o) => o.dtype), ['int32', 'int32', 'float32', 'int32', 'bool']);
  });

  it('max of an empty axis is the reference error', () => {
    const x = T.matrix('x');
    const mine = errorOf(() => T.fn({ inputs: [x], outputs: T.max(x, [1]), device })(f32([2, 0], 1)));
    const ref = errorOf(() => T.fn({ inputs: [x], outputs: T.max(x, [1]), device: new ReferenceDevice() })(f32([2, 0], 1)));
    assert.ok(mine && ref);
    assert.equal(mine.message, ref.message);
  });

  it('softmax and logSoftmax along every axis, with -Inf, +Inf and NaN slices', () => {
    const x = T.tensor3('x');
    const xv = f32([3, 4, 5], 5, -20, 20);
    for (let k = 0; k < 5; k++) xv.data[k] = -Infinity; // a whole -Inf row on axis 2
    xv.data[9] = Infinity;
    xv.data[47] = NaN;
    for (const axis of [0, 1, 2, -1]) {
      checkAgainstOracle(device, [x], [T.softmax(x, axis), T.logSoftmax(x, axis)], [xv], tol, `axis ${axis}`);
    }
  });

  it('cross-entropy from logits runs as one fused pick and equals the oracle', () => {
    const z = T.matrix('z'), t = T.vector('t', 'int32');
    const loss = T.crossentropyFromLogits(z, t);
    const program = describeFunction({ inputs: [z, t], outputs: loss }).program;
    const rewritten = rewriteForCpu(program, program.outputs);
    assert.ok(!rewritten.some((s) => s.op === 'logSoftmax'), 'logSoftmax folded into the pick');
    const zv = f32([6, 5], 6, -30, 30);
    zv.data[3] = NaN;
    const tv = NDArray.from([0, 4, 2, 2, 1, 3], { dtype: 'int32' });
    checkAgainstOracle(device, [z, t], [loss, T.mean(loss)], [zv, tv], tol, 'xent');
    // Kept when the log-probabilities are also an output.
    const both = describeFunction({ inputs: [z, t], outputs: [loss, T.logSoftmax(z)] }).program;
    assert.ok(rewriteForCpu(both, both.outputs).some((s) => s.op === 'logSoftmax'));
    checkAgainstOracle(device, [z, t], [loss, T.logSoftmax(z)], [zv, tv], tol, 'xent with logSoftmax output');
    // Its gradient (softmax - onehot) on the device.
    const g = T.grad(T.mean(loss), z);
    checkAgainstOracle(device, [z, t], [g], [zv, tv], tol, 'xent grad');
  });

  it('an out-of-range class is the reference error', () => {
    const z = T.matrix('z'), t = T.vector('t', 'int32');
    const loss = T.crossentropyFromLogits(z, t);
    const args = [f32([2, 3], 1), NDArray.from([0, 3], { dtype: 'int32' })] as const;
    const mine = errorOf(() => T.fn({ inputs: [z, t], outputs: loss, device })(...args));
    const ref = errorOf(() => T.fn({ inputs: [z, t], outputs: loss, device: new ReferenceDevice() })(...args));
    assert.ok(mine && ref);
    assert.equal(mine.message, ref.message);
    assert.match(mine.message, /out of range/);
  });
});

it('reduceToAccumulators walks merged axis groups in input order', () => {
  const a = NDArray.from([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], { dtype: 'float64' });
  const acc = new Float64Array(4);
  reduceToAccumulators('sum', a, [1], acc);
  assert.deepEqual(Array.from(acc), [4, 6, 12, 14]);
  const acc2 = new Float64Array(2);
  reduceToAccumulators('max', a, [0, 2], acc2);
  assert.deepEqual(Array.from(acc2), [6, 8]);
});
