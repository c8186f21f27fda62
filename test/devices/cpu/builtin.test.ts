// The device registry and the runtime's device resolution: 'cpu' specs build CPU devices (in
// workers too), 'cuda' without a GPU is refused clearly, and N CPU workers equal one device on the
// whole batch.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../../src/index.js';
import { T } from '../../../src/index.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import { createDevice } from '../../../src/devices/create.js';
import { registerBuiltinDevices } from '../../../src/devices/builtin.js';
import { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { cudaAvailable } from '../../../src/devices/cuda/ffi/driver.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';

after(async () => { await synk.close(); });

it("createDevice({ kind: 'cpu' }) gives the CPU device, with the fallback when forced", async () => {
  await registerBuiltinDevices();
  const d = await createDevice({ kind: 'cpu', forceFallback: true });
  assert.ok(d instanceof CpuDevice);
  assert.equal(d.kind, 'cpu');
  assert.match(d.name, /WebAssembly/);
  assert.match((d as CpuDevice).notice, /fallback/);
});

it("fork({ devices: 'cuda' }) without a usable GPU is refused, naming the reason", async (t) => {
  await registerBuiltinDevices();
  if (cudaAvailable().ok) { t.skip('this machine has a CUDA device'); return; }
  await assert.rejects(synk.fork({ devices: 'cuda' }), /no usable CUDA device here/);
  assert.equal(synk.isForked(), false);
});

it("fork({ n: 2, devices: 'cpu' }): two CPU workers equal one device on the whole batch", async () => {
  await registerBuiltinDevices();
  const w1 = T.shared(randomArray([8, 16], 1, { dtype: 'float32' }), { name: 'w1' });
  const w2 = T.shared(randomArray([16, 4], 2, { dtype: 'float32' }), { name: 'w2' });
  const x = T.matrix('x');
  const y = T.mean(T.dot(T.tanh(T.dot(x, w1)), w2), 0);
  const f = synk.fn({ inputs: [x], outputs: y });
  const X = randomArray([37, 8], 3, { dtype: 'float32' });
  const one = T.fn({ inputs: [x], outputs: y, device: new CpuDevice({ notice: false }) })(X) as NDArray;
  assert.equal(await synk.fork({ n: 2, devices: 'cpu' }), 2);
  try {
    const got = (await f(synk.data(X))) as NDArray;
    assertAllClose(got, one, { rtol: 1e-5, atol: 1e-6 });
  } finally {
    await synk.close();
  }
});
