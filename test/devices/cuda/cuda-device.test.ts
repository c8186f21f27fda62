// The CUDA device on a real GPU (every test skips, saying why, where none is usable): transfers,
// generated kernels against the float64 reference at sizes that take the split and transposed
// paths, cuBLAS matmuls (TF32 too), the allocator's steady state, the disk kernel cache across
// processes, conv2d, shared-variable updates and clear errors.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { cudaAvailable } from '../../../src/devices/cuda/ffi/driver.js';
import { CudaOutOfMemoryError } from '../../../src/devices/cuda/ffi/errors.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';
import { CudaArray } from '../../../src/devices/cuda/cuda-array.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';

import { gpu, cudaFound as found } from '../../helpers/gpu.js';

const oracle = new T.ReferenceDevice({ float64: true });

/** Runs the same graph on the GPU and on the float64 oracle and compares (relative norm error too). */
function compare(dev: CudaDevice, inputs: T.Variable[], outputs: T.Variable[], values: NDArray[], rtol = 1e-4, atol = 1e-5): NDArray[] {
  const got = T.fn({ inputs, outputs, device: dev })(...values) as NDArray[];
  const want = T.fn({ inputs, outputs, device: oracle })(...values) as NDArray[];
  got.forEach((g, i) => assertAllClose(g, want[i]!, { rtol, atol }, `output ${i}`));
  return got;
}

const f32 = (shape: number[], seed: number, lo = -1, hi = 1) => randomArray(shape, seed, { dtype: 'float32', lo, hi });

test('upload and download every dtype, empty arrays, and arrays larger than the staging buffers', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  t.diagnostic(`${dev.name} (${dev.arch})`);
  for (const a of [
    NDArray.from([[1.5, -2], [NaN, Infinity]], { dtype: 'float32' }), NDArray.from([1, 2, 3], { dtype: 'float64' }),
    NDArray.from([-7, 2 ** 31 - 1], { dtype: 'int32' }), NDArray.from([0, 255], { dtype: 'uint8' }), NDArray.from([true, false]),
    new NDArray('float32', [0, 3]), f32([5_000_001], 1),
  ]) {
    const d = dev.upload(a);
    assert.ok(d instanceof CudaArray && d.shape.join() === a.shape.join());
    const back = dev.download(d);
    assert.equal(back.dtype, a.dtype);
    assert.deepEqual([...back.data], [...a.data]);
    dev.free(d);
  }
  const sab = new Float32Array(new SharedArrayBuffer(4 * 3_000_000)).map((_, i) => i % 1000);
  dev.registerHost(sab);
  const d = dev.upload(new NDArray('float32', [sab.length], sab));
  assert.deepEqual(dev.download(d).data.subarray(0, 5), Float32Array.from([0, 1, 2, 3, 4]));
  dev.unregisterHost(sab);
});

test('fused broadcasting chains, integer and bool ops against the float64 reference', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const x = T.tensor({ dtype: 'float32', ndim: 3, name: 'x' });
  const w = T.vector('w');
  const b = T.tensor({ dtype: 'float32', ndim: 3, name: 'b' });
  const y = T.tanh(T.add(T.mul(x, w), b)).mul(2).sub(T.sigmoid(x)).maximum(T.neg(T.softplus(b)));
  compare(dev, [x, w, b], [y, T.exp(x).add(1), T.where(T.gt(x, 0), x, T.mul(b, 3))], [f32([3, 70, 130], 2), f32([130], 3), f32([3, 1, 130], 4)]);
  compare(dev, [x, w, b], [y], [f32([2, 1, 1], 5), f32([1], 6), f32([1, 1, 1], 7)]);
  const i = T.tensor({ dtype: 'int32', ndim: 1, name: 'i' });
  const u = T.tensor({ dtype: 'uint8', ndim: 1, name: 'u' });
  const ints = NDArray.from([-7, 0, 5, 9, -3, 2 ** 30], { dtype: 'int32' });
  const bytes = NDArray.from([3, 0, 2, 250, 7, 1], { dtype: 'uint8' });
  compare(
    dev,
    [i, u],
    [T.mod(i, 4), T.intDiv(i, 3), T.mul(u, u), T.eq(T.cast(i, 'uint8'), u), T.and(T.gt(i, 0), T.lt(u, 5)), T.cast(T.div(i, 2), 'int32')],
    [ints, bytes],
    0,
    0,
  );
});

test('reductions: rows, columns, transposed patterns, long reductions split over the GPU', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const x = T.tensor({ dtype: 'float32', ndim: 3, name: 'x' });
  const outs = [
    T.sum(x, 2),
    T.mean(x, 0),
    T.max(x, [0, 2]),
    T.min(x, 1, true),
    T.argmax(x, 2),
    T.argmin(x, 0),
    x.var(1),
    T.logsumexp(x, [0, 1]),
    T.prod(T.add(x, 1.5), 0),
    T.all(T.gt(x, -0.9), 1),
    T.any(T.gt(x, 0.99), 2),
  ];
  compare(dev, [x], outs, [f32([7, 33, 300], 8)], 2e-4, 1e-4);
  compare(dev, [x], [T.sum(x), T.mean(x, 1), T.max(x, 2), T.argmax(x, 1)], [f32([2, 300_000, 3], 9)], 2e-4, 1e-4);
  compare(dev, [x], [T.sum(x, 2), T.mean(x, [0, 1])], [f32([1, 2, 1_000_000], 10)], 2e-4, 1e-4);
  compare(dev, [x], [T.sum(x, 1), T.mean(x, 1), T.max(x, 0)], [f32([4, 0, 3], 11)]);
  assert.throws(() => T.fn({ inputs: [x], outputs: T.argmax(x, 1), device: dev })(f32([4, 0, 3], 11)), /empty sequence/);
});

test('transposes, slices, set/inc of slices, concatenation, take and the row-wise pick', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const x = T.tensor({ dtype: 'float32', ndim: 3, name: 'x' });
  const m = T.matrix('m');
  const idx = T.tensor({ dtype: 'int32', ndim: 1, name: 'idx' });
  const outs = [
    T.dimshuffle(x, [2, 0, 1]), T.dimshuffle(x, [1, 'x', 0, 2]), x.get(1, [null, null, -2]), T.concatenate([x, T.mul(x, 2)], 1),
    T.take(x, idx, 1), T.softmax(m), T.logSoftmax(m), T.softmax(m, 0), T.incSubtensor(
      x.get(0, [1, 3]),
      T.constant(5, { dtype: 'float32' }),
    ), T.setSubtensor(x.get(null, 2), T.mul(m.get(0, [0, 4]), 2)),
  ];
  compare(dev, [x, m, idx], outs, [f32([3, 5, 4], 12), f32([6, 1000], 13, -30, 30), NDArray.from([4, -1, 0, 2], { dtype: 'int32' })]);
  assert.throws(
    () => T.fn({ inputs: [x, m, idx], outputs: T.take(x, idx, 1), device: dev })(f32([3, 5, 4], 1), f32([1, 1], 1), NDArray.from([5], { dtype: 'int32' })),
    /out of range/,
  );
});

test('matmul through cuBLAS: transposes, batches, broadcast batches, float64, TF32 within 3e-4', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const a = T.tensor({ dtype: 'float32', ndim: 3, name: 'a' });
  const b = T.matrix('b');
  const c = T.tensor({ dtype: 'float32', ndim: 3, name: 'c' });
  const mm = (p: T.Variable, q: T.Variable, tA: boolean, tB: boolean) => T.matmul(p, q, { transA: tA, transB: tB });
  compare(dev, [a, b, c], [mm(a, b, false, false), mm(a, c, false, true), mm(c, c, true, false), mm(b, b, true, false)],
    [f32([4, 33, 65], 14), f32([65, 33], 15), f32([4, 17, 65], 16)], 1e-4, 1e-4);
  const d = T.tensor({ dtype: 'float64', ndim: 4, name: 'd' });
  const e = T.tensor({ dtype: 'float64', ndim: 3, name: 'e' });
  compare(dev, [d, e], [T.matmul(d, e)], [randomArray([2, 1, 8, 9], 17), randomArray([3, 9, 5], 18)], 1e-12, 1e-12);
  const tf = new CudaDevice({ tf32: true });
  const x = T.matrix('x');
  const y = T.matrix('y');
  const xv = f32([512, 1024], 19);
  const yv = f32([1024, 256], 20);
  const got = T.fn({ inputs: [x, y], outputs: T.dot(x, y), device: tf })(xv, yv) as NDArray;
  const want = T.fn({ inputs: [x, y], outputs: T.dot(x, y), device: oracle })(xv, yv) as NDArray;
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.size; i++) { num += (got.data[i]! - want.data[i]!) ** 2; den += want.data[i]! ** 2; }
  const rel = Math.sqrt(num / den);
  t.diagnostic(`tf32 relative error ${rel.toExponential(2)}`);
  assert.ok(rel < 3e-3 && rel > 0, `tf32 relative error ${rel}`);
  tf.close();
});

test('conv2d on the GPU, repeat, and shared-variable updates over several calls', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const img = T.tensor({ dtype: 'float32', ndim: 4, name: 'img' });
  const flt = T.tensor({ dtype: 'float32', ndim: 4, name: 'flt' });
  compare(dev, [img, flt], [T.relu(T.conv2d(img, flt)), T.repeat(img, 2, 1)], [f32([2, 3, 8, 8], 21), f32([4, 3, 3, 3], 22)]);
  const w = T.shared(NDArray.from([[0.5, -1], [2, 0]], { dtype: 'float32' }), { name: 'w' });
  const xin = T.matrix('xin');
  const loss = T.mean(T.square(T.dot(xin, w)));
  const [gw] = T.grad(loss, [w]);
  const step = T.fn({ inputs: [xin], outputs: loss, updates: [[w, T.sub(w, T.mul(gw!, 0.1))]], device: dev });
  const w2 = T.shared(w.getValue(), { name: 'w2' });
  const loss2 = T.mean(T.square(T.dot(xin, w2)));
  const ref = T.fn({ inputs: [xin], outputs: loss2, updates: [[w2, T.sub(w2, T.mul(T.grad(loss2, [w2])[0]!, 0.1))]] });
  const data = f32([16, 2], 23);
  for (let k = 0; k < 5; k++) assertAllClose(step(data) as NDArray, ref(data) as NDArray, { rtol: 1e-5, atol: 1e-6 }, `loss ${k}`);
  assertAllClose(w.getValue(), w2.getValue(), { rtol: 1e-5, atol: 1e-6 });
});

test('steady state: repeated calls allocate nothing new from the driver', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const x = T.matrix('x');
  const f = T.fn({ inputs: [x], outputs: [T.sum(T.tanh(T.dot(x, x.T)), 1), T.softmax(x)], device: dev });
  const v = f32([300, 300], 24);
  f(v);
  f(v);
  global.gc?.();
  const before = dev.stats().memory.driverAllocs;
  for (let k = 0; k < 20; k++) f(v);
  const after = dev.stats().memory;
  t.diagnostic(`driver allocations ${before} -> ${after.driverAllocs}; reused ${after.reused}; in use ${after.inUse} B, cached ${after.cached} B`);
  assert.ok(after.driverAllocs - before <= 2, `driver allocations grew from ${before} to ${after.driverAllocs}`);
});

test('a second process loads compiled kernels from the disk cache instead of calling NVRTC', (t) => {
  if (!gpu(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'synk-kcache-'));
  const child = fileURLToPath(new URL('./fixtures/cache-child.js', import.meta.url));
  const run = () => {
    const r = spawnSync(process.execPath, [child, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { compiled: number; fromDisk: number; ms: number };
  };
  const first = run();
  const second = run();
  t.diagnostic(`first start: ${first.compiled} compiled in ${first.ms.toFixed(0)} ms; second: ${second.fromDisk} from disk, ${second.ms.toFixed(0)} ms`);
  assert.ok(first.compiled > 0 && first.fromDisk === 0);
  assert.equal(second.compiled, 0);
  assert.equal(second.fromDisk, first.compiled);
});

test('clear errors: bad device index, out of memory, run-time shape errors; the device stays usable', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  assert.throws(() => new CudaDevice({ index: 999 }), /no device 999: this machine has \d+ CUDA device/);
  assert.throws(
    () => dev.context.alloc('float32', [2 ** 28, 1024]),
    (e: unknown) => e instanceof CudaOutOfMemoryError && /out of GPU memory allocating 1099511627776 bytes/.test(e.message),
  );
  const x = T.matrix('x');
  const y = T.matrix('y');
  const f = T.fn({ inputs: [x, y], outputs: T.add(x, y), device: dev });
  assert.throws(() => f(f32([2, 3], 1), f32([4, 3], 2)), /do not broadcast/);
  assert.throws(() => T.fn({ inputs: [x, y], outputs: T.dot(x, y), device: dev })(f32([2, 3], 1), f32([4, 3], 2)), /inner dimensions differ/);
  assertAllClose(f(f32([2, 3], 1), f32([1, 3], 2)) as NDArray, T.fn({ inputs: [x, y], outputs: T.add(x, y) })(f32([2, 3], 1), f32([1, 3], 2)) as NDArray);
});
