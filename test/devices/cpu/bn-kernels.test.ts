// The CPU device's float32 batch-norm kernels (src/devices/cpu/bn-kernels.ts, wasm-bn.ts) against the
// float64 reference device: shapes that take several chunks of runs (the last one shorter, a chunk
// starting in the middle of the features), runs whose length is not a multiple of four, relu fused
// (NaN kept, negatives to +0), and a feature away from zero. (The statistics are float32 outputs, so
// a feature whose deviations are far below its mean's float32 rounding cannot be normalised exactly on any device.)
// The paths that stay on the reference perform (float64, a device without SIMD) and its shape error too.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { batchNormTrain } from '../../../src/extensions/layers.js';
import { randomArray } from '../../helpers/allclose.js';
import { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { checkAgainstOracle, errorOf, forEachCpuDevice } from './cpu-cases.js';

const EPS = 1e-5;

function graph(shape: number[], relu: boolean) {
  const x = T.tensor({ dtype: 'float32', ndim: shape.length, name: 'x' });
  const gamma = T.vector('gamma', 'float32');
  const beta = T.vector('beta', 'float32');
  const gy = T.tensor({ dtype: 'float32', ndim: shape.length, name: 'gy' });
  const { y, mean, variance } = batchNormTrain(x, gamma, beta, EPS);
  const out = relu ? T.relu(y) : y;
  const [gx, gGamma, gBeta] = T.grad(T.sum(T.mul(out, gy)), [x, gamma, beta]);
  return { inputs: [x, gamma, beta, gy], outputs: [out, mean, variance, gx!, gGamma!, gBeta!] };
}

function args(shape: number[], seed: number): NDArray[] {
  const c = shape[1]!;
  const x = randomArray(shape, seed, { dtype: 'float32', lo: -2, hi: 3 });
  // Feature 1 sits away from zero (its mean is about 50 times its deviation from it).
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  for (let n = 0; n < shape[0]!; n++) for (let k = 0; k < inner; k++) x.data[(n * c + 1) * inner + k] = 50 + x.data[(n * c + 1) * inner + k]!;
  return [x, randomArray([c], seed + 1, { dtype: 'float32', lo: 0.5, hi: 1.5 }), randomArray([c], seed + 2, { dtype: 'float32' }),
    randomArray(shape, seed + 3, { dtype: 'float32' })];
}

forEachCpuDevice('float32 batch norm kernels', (device) => {
  const tol = { rtol: 2e-4, atol: 2e-4 };
  for (const [shape, relu] of [[[4, 16, 57, 61], false], [[3, 5, 7, 7], true], [[2, 7, 3, 5], false], [[6, 3, 2], true], [[64, 12], false]] as const) {
    it(`${shape.join('x')}${relu ? ' with relu' : ''}: output, statistics and gradients equal the float64 reference`, () => {
      const { inputs, outputs } = graph([...shape], relu);
      checkAgainstOracle(device, inputs, outputs, args([...shape], shape.length), tol, shape.join('x'));
    });
  }

  it('relu keeps NaN and gives +0 for negatives and -0', () => {
    const { inputs, outputs } = graph([2, 2, 3, 3], true);
    const [x, gamma, beta, gy] = args([2, 2, 3, 3], 5);
    x!.data[4] = NaN; // feature 0's statistics and every output of it become NaN
    const got = T.fn({ inputs, outputs: [outputs[0]!], device })(x!, gamma!, beta!, gy!) as NDArray[];
    const y = got[0]!.data;
    for (let i = 0; i < 9; i++) assert.ok(Number.isNaN(y[i]!) && Number.isNaN(y[18 + i]!), `feature 0, position ${i}: ${y[i]}`);
    for (let i = 9; i < 18; i++) assert.ok(y[i]! >= 0 && !Object.is(y[i], -0), `feature 1, position ${i}: ${y[i]}`);
  });
});

it('float64 operands and a device without SIMD take the reference perform, with the same results', () => {
  const shape = [3, 5, 7, 7];
  const { inputs, outputs } = graph(shape, true);
  const device = new CpuDevice({ simd: false, notice: false });
  checkAgainstOracle(device, inputs, outputs, args(shape, 9), { rtol: 2e-4, atol: 2e-4 }, 'without SIMD');
  const x64 = T.tensor({ dtype: 'float64', ndim: 4, name: 'x' });
  const [g64, b64] = [T.vector('gamma', 'float64'), T.vector('beta', 'float64')];
  const { y, mean, variance } = batchNormTrain(x64, g64, b64, EPS);
  const [gx] = T.grad(T.sum(T.mul(y, y)), [x64]);
  const values = args(shape, 11).slice(0, 3).map((a) => NDArray.from(Array.from(a.data), { dtype: 'float64', shape: a.shape }));
  checkAgainstOracle(new CpuDevice({ notice: false }), [x64, g64, b64], [y, mean, variance, gx!], values, { rtol: 1e-12, atol: 1e-12 }, 'float64');
});

it('a gamma of the wrong length gets the reference\'s error naming it', () => {
  const { inputs, outputs } = graph([2, 4, 3, 3], false);
  const [x, , beta, gy] = args([2, 4, 3, 3], 13);
  const f = T.fn({ inputs, outputs: [outputs[0]!], device: new CpuDevice({ notice: false }) });
  const e = errorOf(() => f(x!, randomArray([3], 1, { dtype: 'float32' }), beta!, gy!));
  assert.match(String(e?.message), /bnTrain: gamma has shape \(3,\), expected \(4,\)/);
});
