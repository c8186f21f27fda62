// The CPU device's structural kernels (structural-kernels.ts): concatenate by block copies,
// subtensor as a view of a contiguous block (a copy when it is a result), takeRowwise,
// scatterRowwise, fillLike and shapeI into pooled outputs: the same values as the reference on
// every device case, the reference's errors, and no array made outside the pool.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { describeFunction } from '../../../src/run/function.js';
import { ReferenceDevice } from '../../../src/devices/reference/reference-device.js';
import type { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { contiguousRange } from '../../../src/devices/cpu/structural-kernels.js';
import { planOf } from '../../../src/ops/indexing.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkExact, errorOf, forEachCpuDevice } from './cpu-cases.js';

const f32 = (shape: number[], seed: number): NDArray => randomArray(shape, seed, { dtype: 'float32' });

forEachCpuDevice('structural kernels', (device) => {
  const cpu = device as CpuDevice;

  it('concatenate along each axis, with empty parts and up-cast parts', () => {
    const [a, b] = [T.tensor({ dtype: 'float32', ndim: 3, name: 'a' }), T.tensor({ dtype: 'float32', ndim: 3, name: 'b' })];
    for (const axis of [0, 1, 2]) {
      const sa = [2, 3, 4], sb = [2, 3, 4];
      sb[axis] = axis === 1 ? 0 : 5;
      checkExact(device, [a, b], [T.concatenate([a, b, a], axis)], [f32(sa, axis), f32(sb, axis + 5)], `axis ${axis}`);
    }
    const i = T.vector('i', 'int32'), u = T.vector('u', 'uint8'), x = T.vector('x', 'float64'), p = T.vector('p', 'bool');
    checkExact(device, [i, x], [T.concatenate([i, x])], [NDArray.from([1, -2147483648], { dtype: 'int32' }), randomArray([3], 1)], 'int32 into float64');
    const [iv, uv] = [NDArray.from([7, 2147483647], { dtype: 'int32' }), NDArray.from([255, 0], { dtype: 'uint8' })];
    checkExact(device, [i, u], [T.concatenate([u, i])], [iv, uv], 'uint8 into int32');
    checkExact(device, [p, u], [T.concatenate([p, p]), T.concatenate([u, u])], [NDArray.from([true, false]), uv], 'bool');
    const err = (d: T.Device) => errorOf(() => T.fn({ inputs: [a, b], outputs: T.concatenate([a, b], 0), device: d })(f32([2, 3, 4], 1), f32([2, 4, 4], 2)));
    assert.equal(err(device)?.message, err(new ReferenceDevice())?.message);
  });

  it('subtensor: contiguous blocks, steps, negative steps, indices and symbolic bounds', () => {
    const x = T.tensor({ dtype: 'float32', ndim: 3, name: 'x' });
    const k = T.scalar('k', 'int32');
    const xv = f32([4, 5, 6], 1);
    const cases: T.Variable[] = [
      T.subtensor(x, [[1, 3]]), T.subtensor(x, [2, [1, 4]]), T.subtensor(x, [2, 3, [1, 5]]), T.subtensor(x, [1, null, [0, 6, 2]]),
      T.subtensor(x, [[null, null, -1]]), T.subtensor(x, [[0, 4, 2], 1]), T.subtensor(x, [-1, -2, -3]), T.subtensor(x, [[k, 4]]),
      T.subtensor(x, [[3, 1]]), T.mul(T.subtensor(T.exp(x), [1, [1, 3]]), 2),
    ];
    checkExact(device, [x, k], cases, [xv, NDArray.scalar(2, 'int32')], 'subtensor');
    const err = (d: T.Device) => errorOf(() => T.fn({ inputs: [x], outputs: T.subtensor(x, [7]), device: d })(xv));
    assert.equal(err(device)?.message, err(new ReferenceDevice())?.message);
  });

  it('a contiguous subtensor of an intermediate is a view; one returned to the caller is a copy', () => {
    const x = T.matrix('x');
    const y = T.mul(T.subtensor(T.exp(x), [[1, 3]]), 2);
    const exe = cpu.compile(describeFunction({ inputs: [x], outputs: [y] }).program);
    exe.run([f32([4, 8], 1)]);
    // exp's buffer is the only pooled one and the slice is no array of its own.
    assert.equal(exe.stats().poolAllocations, 1);
    assert.equal(exe.stats().untrackedAllocations, 0);
    const s = T.subtensor(T.exp(x), [[1, 3]]);
    const f = T.fn({ inputs: [x], outputs: [s], device });
    const [r1] = f(f32([4, 8], 2)) as NDArray[];
    assert.equal(r1!.data.length, 16, 'the result owns just its elements');
    const keep = Array.from(r1!.data);
    f(f32([4, 8], 3));
    assert.deepEqual(Array.from(r1!.data), keep);
  });

  it('takeRowwise, scatterRowwise, fillLike and shapeI into pooled outputs, no untracked arrays', () => {
    const z = T.matrix('z');
    const t = T.vector('t', 'int32');
    const picked = T.crossentropyFromLogits(z, t);
    const outs = [...T.grad(T.sum(picked), [z]), T.mul(T.fillLike(z, 3), z), T.cast(T.shapeOf(z)[1]!, 'float32')];
    const tv = NDArray.from([2, 0, 4], { dtype: 'int32' });
    checkExact(device, [z, t], outs, [f32([3, 5], 1), tv], 'rowwise');
    const exe = cpu.compile(describeFunction({ inputs: [z, t], outputs: outs }).program);
    exe.run([f32([3, 5], 1), tv]);
    assert.equal(exe.stats().untrackedAllocations, 0);
    const bad = NDArray.from([2, 5, 0], { dtype: 'int32' });
    const err = (d: T.Device) => errorOf(() => T.fn({ inputs: [z, t], outputs: outs, device: d })(f32([3, 5], 1), bad));
    assert.equal(err(device)?.message, err(new ReferenceDevice())?.message);
  });
});

it('contiguousRange finds one block or none', () => {
  const range = (shape: number[], entries: Parameters<typeof planOf>[2]) => contiguousRange(shape, planOf('subtensor', shape, entries, []));
  assert.deepEqual(range([4, 5], [{ kind: 'slice', start: 1, stop: 3, step: null }]), { start: 5, size: 10 });
  assert.deepEqual(range([4, 5], [{ kind: 'index', index: 2 }, { kind: 'slice', start: 1, stop: 4, step: null }]), { start: 11, size: 3 });
  assert.equal(range([4, 5], [{ kind: 'slice', start: null, stop: null, step: null }, { kind: 'slice', start: 1, stop: 4, step: null }]), null);
  assert.equal(range([4, 5], [{ kind: 'slice', start: 0, stop: 4, step: 2 }]), null);
  assert.deepEqual(range([4, 5], [{ kind: 'slice', start: 3, stop: 0, step: -1 }, { kind: 'index', index: 0 }]), null);
  assert.deepEqual(range([4, 5], [{ kind: 'slice', start: 2, stop: 3, step: -1 }]), { start: 0, size: 0 });
});
