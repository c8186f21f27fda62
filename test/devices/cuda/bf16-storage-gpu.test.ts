// Activations held in bfloat16 on a real GPU (the storage plan of the 'bf16' policy,
// src/devices/cuda/lower/storage-plan.ts): a ResNet-style block and its gradients on the CUDA device,
// with cuDNN and with im2col, against the float64 reference device under the same policy (operands of
// the products rounded, float64 sums, activations not rounded). Each stored activation adds one
// bfloat16 rounding (2^-9 relative), so the error band is a few times that; the distance from the
// device's own float32-activation run (SYNK_BFLOAT_ACTIVATIONS=0's path, through lowerProgram's option)
// shows the activations really were rounded. Skips, saying why, without a GPU.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';
import { cudaFound } from '../../helpers/gpu.js';
import { resnetStyleBlock } from '../../helpers/resnet-block.js';
import { randomArray, relNormError } from '../../helpers/allclose.js';

const oracle = new T.ReferenceDevice({ float64: true });
const devices: CudaDevice[] = [];

function device(t: TestContext, cudnn: boolean, bf16Activations: boolean): CudaDevice | null {
  if (!cudaFound.ok) {
    t.skip(`no usable CUDA device: ${cudaFound.reason.split('\n')[0]}`);
    return null;
  }
  const dev = new CudaDevice({ cudnn, bf16Activations });
  devices.push(dev);
  const support = dev.supportsPrecision('bf16');
  if (support !== true) {
    t.skip(support);
    return null;
  }
  if (cudnn && !dev.cudnn) {
    t.skip('cuDNN 9 was not found (see the warning for every place looked)');
    return null;
  }
  return dev;
}

function block() {
  const { inputs, r } = resnetStyleBlock();
  const out = T.mean(r, [2, 3]);
  // A loss of every activation, weighted at random: a loss of the pooled values alone gives batch norm's
  // input gradient a mean that cancels almost exactly (measured: 9% relative error from cuDNN's bfloat16
  // output rounding alone, float32 activations), which would test the conditioning, not the storage.
  const loss = T.sum(T.mul(r, T.constant(randomArray([4, 16, 6, 6], 5, { dtype: 'float32' }))));
  return { inputs, outputs: [out, ...T.grad(loss, inputs)] };
}

/** Scales near 1.5, so that no feature's normalised values vanish. */
function gammaValues(): NDArray {
  const g = randomArray([16], 4, { dtype: 'float32' });
  for (let i = 0; i < g.size; i++) g.data[i] = 1.5 + 0.5 * g.data[i]!;
  return g;
}

const values = (): NDArray[] => [
  randomArray([4, 16, 12, 12], 1, { dtype: 'float32' }), randomArray([16, 16, 3, 3], 2, { dtype: 'float32' }),
  randomArray([16, 16, 3, 3], 3, { dtype: 'float32' }), gammaValues(),
  randomArray([16], 6, { dtype: 'float32' }),
];

/**
 * Bands of the relative error against the rounded oracle: the forward output, and the gradients. Batch norm's
 * backward pass cancels (a feature's gradient minus its mean and its projection on the normalised values), so
 * a rounding of the activations shows up larger in the gradients: measured on the H200, cuDNN's own bfloat16
 * output rounding with float32 activations already gives 2.8-4.3% here, and bfloat16 activations 3.5-8.2%
 * (the same on both paths), against 6e-4 for the forward output. An indexing or storage mistake gives O(1).
 */
const FORWARD_BAND = 2e-3;
const BAND = 0.15;
const ROUNDED = 2e-4;

for (const cudnn of [true, false]) {
  test(`a ResNet-style block with activations in bfloat16, ${cudnn ? 'cuDNN' : 'im2col'}: outputs and gradients against the reference`, (t) => {
    const dev = device(t, cudnn, true);
    const plain = device(t, cudnn, false);
    if (!dev || !plain) return;
    const spec = block();
    const args = values();
    const got = T.fn({ ...spec, precision: 'bf16', device: dev })(...args) as NDArray[];
    const f32 = T.fn({ ...spec, precision: 'bf16', device: plain })(...args) as NDArray[];
    const want = T.fn({ ...spec, precision: 'bf16', device: oracle })(...args) as NDArray[];
    const errors = got.map((g, k) => {
      assert.equal(g.dtype, 'float32', `output ${k} is float32`);
      assert.ok(g.data.every(Number.isFinite), `output ${k} is finite`);
      const err = relNormError(g, want[k]!);
      t.diagnostic(`output ${k}: error ${err.toExponential(2)} (float32 activations ${relNormError(f32[k]!, want[k]!).toExponential(2)}), `
        + `from the float32-activation run ${relNormError(g, f32[k]!).toExponential(2)}`);
      return err;
    });
    errors.forEach((err, k) => {
      const band = k === 0 ? FORWARD_BAND : BAND;
      assert.ok(err <= band, `output ${k}: relative error ${err.toExponential(2)} above ${band}`);
    });
    const moved = got.map((g, k) => relNormError(g, f32[k]!));
    const shown = moved.map((m) => m.toExponential(1)).join(', ');
    assert.ok(Math.max(...moved) >= ROUNDED, `bfloat16 activations changed nothing (${shown}): were they held in bfloat16?`);
  });
}

after(() => { for (const d of devices) d.close(); });
