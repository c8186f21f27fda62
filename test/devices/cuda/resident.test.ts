// Shared variables on the GPU: updates computed by a CUDA function stay on the device (only the
// outputs cross the bus per call), the host copy is refreshed when read, setValue replaces the
// device copy, aliasing updates (a <- b, b <- a) stay correct, and row selection for batchS runs on
// the device. Skipped, saying why, where no CUDA device is usable.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { cudaAvailable } from '../../../src/devices/cuda/ffi/driver.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';
import type { DeviceArray } from '../../../src/devices/device.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';

import { gpu } from '../../helpers/gpu.js';

/** Counts the device-to-host copies a device makes. */
function countDownloads(dev: CudaDevice): { readonly count: number; restore(): void } {
  const original = dev.download.bind(dev);
  const counter = { count: 0, restore: () => { dev.download = original; } };
  dev.download = (v: DeviceArray) => { counter.count++; return original(v); };
  return counter;
}

test('updates stay on the GPU: one download per call (the output), the value comes back when read', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const init = randomArray([64, 8], 1, { dtype: 'float32' });
  const w = T.shared(init.copy(), { name: 'w' });
  const wRef = T.shared(init.copy(), { name: 'wRef' });
  const x = T.matrix('x');
  const lossOf = (p: T.SharedVariable) => T.mean(T.square(T.tanh(T.dot(x, p))));
  const stepOf = (p: T.SharedVariable, device?: CudaDevice) => T.fn({
    inputs: [x], outputs: lossOf(p), updates: [[p, T.sub(p, T.mul(T.grad(lossOf(p), [p])[0]!, 0.5))]], ...(device ? { device } : {}),
  });
  const step = stepOf(w, dev);
  const ref = stepOf(wRef);
  const data = randomArray([32, 64], 2, { dtype: 'float32' });
  const downloads = countDownloads(dev);
  try {
    for (let k = 0; k < 6; k++) assertAllClose(step(data) as NDArray, ref(data) as NDArray, { rtol: 1e-4, atol: 1e-6 }, `loss ${k}`);
    assert.equal(downloads.count, 6, 'only the loss came back, once per call');
    assert.ok(w.deviceCopies.has(dev), 'the GPU copy is the current one');
    assertAllClose(w.getValue(), wRef.getValue(), { rtol: 1e-4, atol: 1e-6 }, 'the value read after six GPU-resident updates');
    assert.equal(downloads.count, 7, 'reading the value downloaded it once');
    w.getValue();
    assert.equal(downloads.count, 7, 'a second read uses the refreshed host copy');
  } finally {
    downloads.restore();
  }
  // setValue replaces the GPU copy: the next call computes from the new value.
  w.setValue(init);
  wRef.setValue(init);
  assertAllClose(step(data) as NDArray, ref(data) as NDArray, { rtol: 1e-4, atol: 1e-6 }, 'loss after setValue');
  assertAllClose(w.getValue(), wRef.getValue(), { rtol: 1e-4, atol: 1e-6 });
});

test('aliasing updates (a <- b, b <- a + 1) and a failed call leave the GPU copies correct', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const a = T.shared(Float32Array.from([1, 2, 3]), { name: 'a' });
  const b = T.shared(Float32Array.from([10, 20, 30]), { name: 'b' });
  const i = T.scalar('i', 'int32');
  const swap = T.fn({ inputs: [i], outputs: T.take(a, i), updates: [[a, b], [b, T.add(a, 1)]], device: dev });
  let ha = [1, 2, 3];
  let hb = [10, 20, 30];
  for (let k = 0; k < 3; k++) {
    swap(0);
    [ha, hb] = [hb, ha.map((v) => v + 1)];
  }
  assert.throws(() => swap(7), /out of range/);
  assertAllClose(a.getValue(), ha, { rtol: 0, atol: 0 }, 'a');
  assertAllClose(b.getValue(), hb, { rtol: 0, atol: 0 }, 'b');
});

test('rows of a device array for batchS: ranges, index lists, empty selections, bounds', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const host = randomArray([50, 3, 2], 3, { dtype: 'float32' });
  const onGpu = dev.upload(host);
  const rowsOf = (idx: readonly number[]) => {
    const out = new NDArray('float32', [idx.length, 3, 2]);
    idx.forEach((r, k) => out.data.set(host.data.subarray(r * 6, (r + 1) * 6), k * 6));
    return out;
  };
  const range = dev.takeRows(onGpu, { start: 7, stop: 19 });
  assertAllClose(dev.download(range), rowsOf(Array.from({ length: 12 }, (_, k) => 7 + k)), { rtol: 0, atol: 0 }, 'range');
  const list = dev.takeRows(onGpu, Int32Array.from([49, 0, 3, 3, 12]));
  assertAllClose(dev.download(list), rowsOf([49, 0, 3, 3, 12]), { rtol: 0, atol: 0 }, 'index list');
  assert.deepEqual(dev.takeRows(onGpu, { start: 5, stop: 5 }).shape, [0, 3, 2]);
  assert.deepEqual(dev.takeRows(onGpu, new Int32Array(0)).shape, [0, 3, 2]);
  assert.throws(() => dev.takeRows(onGpu, { start: 40, stop: 51 }, 'batchS of s'), /batchS of s: rows 40\.\.51 are outside 0\.\.50/);
  assert.throws(() => dev.takeRows(onGpu, Int32Array.from([0, 50]), 'batchS of s'), /row index 50 \(position 1\) is outside 0\.\.49/);
  for (const v of [onGpu, range, list]) dev.free(v);
});
