// float32 matrix-product precision on the CUDA device ('highest' float32, 'high' TF32, 'medium'
// bfloat16 operands with float32 sums), named as torch.set_float32_matmul_precision: each mode's
// error against the float64 oracle must sit in its own band, so a mode that is silently ignored
// fails. Option checking runs everywhere; the GPU parts skip, saying why, without a usable GPU.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../../src/index.js';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { cudaAvailable } from '../../../src/devices/cuda/ffi/driver.js';
import { CudaDevice, type MatmulPrecision } from '../../../src/devices/cuda/cuda-device.js';
import { randomArray } from '../../helpers/allclose.js';

const found = cudaAvailable();
const oracle = new T.ReferenceDevice({ float64: true });

function relNormError(got: NDArray, want: NDArray): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.size; i++) {
    num += (got.data[i]! - want.data[i]!) ** 2;
    den += want.data[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

test('fork refuses an unknown matmulPrecision, naming the option', async () => {
  await assert.rejects(
    synk.fork({ n: 1, devices: 'cpu', matmulPrecision: 'low' as never }),
    /fork: matmulPrecision must be 'highest', 'high' or 'medium', got "low"/,
  );
  assert.equal(synk.isForked?.() ?? false, false);
});

const FP32: [number, number] = [0, 2e-6];
const TF32: [number, number] = [2e-5, 2e-3]; // 10-bit mantissa
const BF16: [number, number] = [6e-4, 1e-2]; // 7-bit mantissa
/** Bands per mode, for matmul and conv2d ('medium' changes matmul only, as in PyTorch). */
const BANDS: Record<MatmulPrecision, { matmul: [number, number]; conv2d: [number, number] }> = {
  highest: { matmul: FP32, conv2d: FP32 },
  high: { matmul: TF32, conv2d: TF32 },
  medium: { matmul: BF16, conv2d: TF32 },
};

test('matmul and conv2d error per precision mode sits in its band', (t: TestContext) => {
  if (!found.ok) {
    t.skip(`no usable CUDA device: ${found.reason.split('\n')[0]}`);
    return;
  }
  assert.throws(() => new CudaDevice({ matmulPrecision: 'fast' as never }), /matmulPrecision must be one of highest, high, medium, got "fast"/);
  const x = T.matrix('x');
  const y = T.matrix('y');
  const img = T.tensor({ dtype: 'float32', ndim: 4, name: 'img' });
  const flt = T.tensor({ dtype: 'float32', ndim: 4, name: 'flt' });
  const X = randomArray([256, 512], 1, { dtype: 'float32' });
  const Y = randomArray([512, 384], 2, { dtype: 'float32' });
  const I = randomArray([4, 16, 12, 12], 3, { dtype: 'float32' });
  const F = randomArray([8, 16, 3, 3], 4, { dtype: 'float32' });
  const wantMm = T.fn({ inputs: [x, y], outputs: T.dot(x, y), device: oracle })(X, Y) as NDArray;
  const wantConv = T.fn({ inputs: [img, flt], outputs: T.conv2d(img, flt), device: oracle })(I, F) as NDArray;
  for (const mode of ['highest', 'high', 'medium'] as const) {
    // im2col + cuBLAS: there TF32 is used whenever allowed. cuDNN may pick an exact algorithm under TF32 (it did
    // for this shape), so its error is only bounded above: the cuDNN suite (cudnn-gpu.test.ts) checks that.
    const dev = new CudaDevice({ matmulPrecision: mode, cudnn: false });
    try {
      const mm = relNormError(T.fn({ inputs: [x, y], outputs: T.dot(x, y), device: dev })(X, Y) as NDArray, wantMm);
      const conv = relNormError(T.fn({ inputs: [img, flt], outputs: T.conv2d(img, flt), device: dev })(I, F) as NDArray, wantConv);
      t.diagnostic(`${mode}: matmul relative error ${mm.toExponential(2)}, conv2d ${conv.toExponential(2)}`);
      for (const [what, err] of [['matmul', mm], ['conv2d', conv]] as const) {
        const [lo, hi] = BANDS[mode][what];
        assert.ok(err >= lo && err <= hi, `${mode} ${what}: relative error ${err.toExponential(2)} outside [${lo}, ${hi}]`);
      }
    } finally {
      dev.close();
    }
  }
});
