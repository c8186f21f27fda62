// conv2d and both gradients through cuDNN on a real GPU, against the float64 oracle, over strides, padding,
// dilation, groups (depthwise too), 1x1, float64 and TF32; and the fallbacks. Every test skips, saying why,
// where no GPU or no cuDNN 9 is usable. The op suites run with cuDNN (the default) and with SYNK_CUDNN=0.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';
import { CudaLibraryNotFoundError } from '../../../src/devices/cuda/ffi/errors.js';
import { cudaFound } from '../../helpers/gpu.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';

const oracle = new T.ReferenceDevice({ float64: true });
const devices = new Map<string, CudaDevice>();

function cudnnDevice(t: TestContext, precision: 'highest' | 'high' = 'highest'): CudaDevice | null {
  if (!cudaFound.ok) {
    t.skip(`no usable CUDA device: ${cudaFound.reason.split('\n')[0]}`);
    return null;
  }
  let dev = devices.get(precision);
  if (!dev) {
    dev = new CudaDevice({ cudnn: true, matmulPrecision: precision });
    devices.set(precision, dev);
  }
  if (!dev.cudnn) {
    t.skip('cuDNN 9 was not found (see the warning for every place looked)');
    return null;
  }
  return dev;
}

interface Case {
  readonly name: string; readonly x: number[]; readonly w: number[];
  readonly options: T.Conv2dOptions; readonly dtype?: 'float32' | 'float64';
}
const CASES: Case[] = [
  { name: '3x3 pad 1', x: [4, 8, 14, 14], w: [16, 8, 3, 3], options: { padding: 1 } },
  { name: 'stride 2, pad (1, 2)', x: [2, 4, 15, 13], w: [6, 4, 3, 3], options: { stride: 2, padding: [1, 2] } },
  { name: 'dilation 2', x: [2, 3, 16, 16], w: [5, 3, 3, 3], options: { dilation: 2, padding: 2 } },
  { name: 'groups 2', x: [2, 8, 10, 10], w: [6, 4, 3, 3], options: { groups: 2, padding: 1 } },
  { name: 'depthwise', x: [2, 6, 9, 9], w: [6, 1, 3, 3], options: { groups: 6, padding: 1 } },
  { name: '1x1', x: [3, 16, 7, 7], w: [32, 16, 1, 1], options: {} },
  { name: "'same' 3x3", x: [2, 3, 8, 8], w: [4, 3, 3, 3], options: { padding: 'same' } },
  { name: '7x7 stride 2 pad 3 (ResNet stem)', x: [2, 3, 32, 32], w: [8, 3, 7, 7], options: { stride: 2, padding: 3 } },
  { name: 'float64', x: [2, 4, 9, 9], w: [6, 4, 3, 3], options: { padding: 1 }, dtype: 'float64' },
];

function graph(c: Case) {
  const dtype = c.dtype ?? 'float32';
  const x = T.tensor4('x', dtype);
  const w = T.tensor4('w', dtype);
  const r = T.tensor4('r', dtype);
  const y = T.conv2d(x, w, c.options);
  const [gx, gw] = T.grad(T.sum(T.mul(y, r)), [x, w]);
  const values = (outShape: readonly number[]) => [
    randomArray(c.x, 1, { dtype }), randomArray(c.w, 2, { dtype }), randomArray([...outShape], 3, { dtype }),
  ];
  return { inputs: [x, w, r], outputs: [y, gx!, gw!], values, dtype };
}

for (const c of CASES) {
  test(`cuDNN conv2d and gradients: ${c.name}`, (t) => {
    const dev = cudnnDevice(t);
    if (!dev) return;
    const g = graph(c);
    const shape = (T.fn({ inputs: g.inputs.slice(0, 2), outputs: T.conv2d(g.inputs[0]!, g.inputs[1]!, c.options), device: oracle })(
      ...g.values([1, 1, 1, 1]).slice(0, 2)) as NDArray).shape;
    const values = g.values(shape);
    const before = dev.context.cudnnPlanCount;
    const got = T.fn({ inputs: g.inputs, outputs: g.outputs, device: dev })(...values) as NDArray[];
    const want = T.fn({ inputs: g.inputs, outputs: g.outputs, device: oracle })(...values) as NDArray[];
    const tol = g.dtype === 'float64' ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-4 };
    got.forEach((v, i) => assertAllClose(v, want[i]!, tol, `${c.name}: output ${i}`));
    assert.equal(dev.context.cudnnPlanCount - before, 3, 'forward, data and filter gradients were planned by cuDNN');
  });
}

test('cuDNN under TF32 (matmulPrecision high) within TF32 tolerance', (t) => {
  const dev = cudnnDevice(t, 'high');
  if (!dev) return;
  const c = CASES[0]!;
  const g = graph(c);
  const values = g.values([4, 16, 14, 14]);
  const got = T.fn({ inputs: g.inputs, outputs: g.outputs, device: dev })(...values) as NDArray[];
  const want = T.fn({ inputs: g.inputs, outputs: g.outputs, device: oracle })(...values) as NDArray[];
  got.forEach((v, i) => assertAllClose(v, want[i]!, { rtol: 1e-2, atol: 1e-2 }, `output ${i}`));
});

test("asymmetric 'same' padding falls back to im2col with cuDNN on, and still agrees", (t) => {
  const dev = cudnnDevice(t);
  if (!dev) return;
  const c: Case = { name: 'same 2x2', x: [1, 2, 6, 6], w: [3, 2, 2, 2], options: { padding: 'same' } };
  const g = graph(c);
  const values = g.values([1, 3, 6, 6]);
  const before = dev.context.cudnnPlanCount;
  const got = T.fn({ inputs: g.inputs, outputs: g.outputs, device: dev })(...values) as NDArray[];
  const want = T.fn({ inputs: g.inputs, outputs: g.outputs, device: oracle })(...values) as NDArray[];
  got.forEach((v, i) => assertAllClose(v, want[i]!, { rtol: 1e-4, atol: 1e-4 }, `output ${i}`));
  assert.equal(dev.context.cudnnPlanCount, before, 'cuDNN was not planned for it');
});

test('bad conv shapes with cuDNN on: the same clear errors', (t) => {
  const dev = cudnnDevice(t);
  if (!dev) return;
  const x = T.tensor4('x', 'float32');
  const w = T.tensor4('w', 'float32');
  const f = T.fn({ inputs: [x, w], outputs: T.conv2d(x, w, { groups: 2 }), device: dev });
  assert.throws(() => f(randomArray([1, 4, 5, 5], 1, { dtype: 'float32' }), randomArray([4, 3, 3, 3], 2, { dtype: 'float32' })),
    /filters expect 3 channels per group/);
});

test('a cudnnPath that does not load is an error, not a silent fallback', (t) => {
  if (!cudaFound.ok) return t.skip(`no usable CUDA device: ${cudaFound.reason.split('\n')[0]}`);
  assert.throws(() => new CudaDevice({ cudnn: true, cudnnPath: '/no/such/libcudnn.so.9' }),
    (e: unknown) => e instanceof CudaLibraryNotFoundError && /\/no\/such\/libcudnn\.so\.9: no such file/.test(e.message));
  assert.throws(() => new CudaDevice({ cudnn: 'yes' as unknown as boolean }), /cudnn must be a boolean/);
});

test('cuDNN is the default where found; cudnn: false and another cudnnPath keep im2col or are refused', (t) => {
  const dev = cudnnDevice(t);
  if (!dev) return;
  const plain = new CudaDevice();
  const off = new CudaDevice({ cudnn: false });
  try {
    assert.equal(plain.cudnn, true, 'a device made without options uses the cuDNN that was found');
    assert.equal(off.cudnn, false);
    const x = T.tensor4('x', 'float32');
    const w = T.tensor4('w', 'float32');
    const before = off.context.cudnnPlanCount;
    const xv = randomArray([1, 2, 6, 6], 3, { dtype: 'float32' });
    const wv = randomArray([3, 2, 3, 3], 4, { dtype: 'float32' });
    const got = T.fn({ inputs: [x, w], outputs: T.conv2d(x, w), device: off })(xv, wv);
    const want = T.fn({ inputs: [x, w], outputs: T.conv2d(x, w), device: oracle })(xv, wv);
    assertAllClose(got, want, { rtol: 1e-4, atol: 1e-4 });
    assert.equal(off.context.cudnnPlanCount, before, 'cudnn: false planned no cuDNN convolution');
    const loaded = plain.context.loadCudnn().path;
    assert.throws(() => new CudaDevice({ cudnnPath: `${loaded}.copy-that-is-not-there` }), CudaLibraryNotFoundError);
  } finally {
    plain.close();
    off.close();
  }
});
