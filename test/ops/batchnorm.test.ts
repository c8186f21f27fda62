// Training-mode batch norm's ops (bnStats, bnTrain and their gradient ops) on every device, against
// the textbook formulas written here in float64 (statistics per feature over every axis but 1;
// backward dx = gamma/sigma (gy - mean(gy) - xhat mean(gy xhat))), and the gradients of the
// reference by finite differences, including a loss that also uses the statistics themselves.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { batchNormApply, batchNormStats } from '../../src/build/build-nn.js';
import { batchNormTrain } from '../../src/extensions/layers.js';
import { forEachDevice } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

const EPS = 1e-5;
const SHAPES: number[][] = [[5, 3], [2, 3, 4, 5], [3, 2, 1, 1], [1, 4, 3], [4, 1, 2, 3]];

interface Naive { mean: number[]; variance: number[]; y: NDArray; gx: NDArray; gGamma: number[]; gBeta: number[] }

/** The forward and backward of batch norm, element by element in float64, for output gradient gy. */
function naive(x: NDArray, gamma: NDArray, beta: NDArray, gy: NDArray): Naive {
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const at = (i: number, f: number, k: number) => (i * c + f) * inner + k;
  const count = n * inner;
  const mean: number[] = [], variance: number[] = [], gGamma: number[] = [], gBeta: number[] = [];
  const y = new NDArray('float64', x.shape), gx = new NDArray('float64', x.shape);
  for (let f = 0; f < c; f++) {
    const cells: number[] = [];
    for (let i = 0; i < n; i++) for (let k = 0; k < inner; k++) cells.push(at(i, f, k));
    const m = cells.reduce((s, j) => s + x.data[j]!, 0) / count;
    const v = cells.reduce((s, j) => s + (x.data[j]! - m) ** 2, 0) / count;
    const sigma = Math.sqrt(v + EPS);
    const xhat = (j: number) => (x.data[j]! - m) / sigma;
    for (const j of cells) y.data[j] = xhat(j) * gamma.data[f]! + beta.data[f]!;
    const meanGy = cells.reduce((s, j) => s + gy.data[j]!, 0) / count;
    const meanGyXhat = cells.reduce((s, j) => s + gy.data[j]! * xhat(j), 0) / count;
    for (const j of cells) gx.data[j] = (gamma.data[f]! / sigma) * (gy.data[j]! - meanGy - xhat(j) * meanGyXhat);
    mean.push(m);
    variance.push(v);
    gBeta.push(meanGy * count);
    gGamma.push(meanGyXhat * count);
  }
  return { mean, variance, y, gx, gGamma, gBeta };
}

forEachDevice('batch norm ops', (device, c) => {
  const tol = { rtol: Math.max(c.rtol, 1e-4), atol: Math.max(c.atol, 1e-5) };
  for (const shape of SHAPES) {
    it(`statistics, output and the three gradients of ${JSON.stringify(shape)} equal the formulas`, () => {
      const xs = randomArray(shape, 11, { dtype: 'float32', lo: -2, hi: 3 });
      const gs = randomArray([shape[1]!], 12, { dtype: 'float32', lo: 0.5, hi: 1.5 });
      const bs = randomArray([shape[1]!], 13, { dtype: 'float32' });
      const gys = randomArray(shape, 14, { dtype: 'float32' });
      const x = T.tensor({ dtype: 'float32', ndim: shape.length, name: 'x' });
      const gamma = T.vector('gamma', 'float32');
      const beta = T.vector('beta', 'float32');
      const gy = T.tensor({ dtype: 'float32', ndim: shape.length, name: 'gy' });
      const { y, mean, variance } = batchNormTrain(x, gamma, beta, EPS);
      const cost = T.sum(T.mul(y, gy));
      const [gx, gGamma, gBeta] = T.grad(cost, [x, gamma, beta]);
      const f = T.fn({ inputs: [x, gamma, beta, gy], outputs: [y, mean, variance, gx!, gGamma!, gBeta!], device });
      const got = f(xs, gs, bs, gys) as NDArray[];
      const want = naive(xs, gs, bs, gys);
      assertAllClose(got[0]!, want.y, tol, 'y');
      assertAllClose(got[1]!, want.mean, tol, 'mean');
      assertAllClose(got[2]!, want.variance, tol, 'variance');
      assertAllClose(got[3]!, want.gx, tol, 'gradient of x');
      assertAllClose(got[4]!, want.gGamma, tol, 'gradient of gamma');
      assertAllClose(got[5]!, want.gBeta, tol, 'gradient of beta');
    });
  }

  it('relu after batch norm runs as one fused step, with its gradient through the mask', () => {
    const shape = [3, 4, 2, 5];
    const xs = randomArray(shape, 31, { dtype: 'float32', lo: -2, hi: 2 });
    const gs = randomArray([4], 32, { dtype: 'float32', lo: 0.5, hi: 1.5 });
    const bs = randomArray([4], 33, { dtype: 'float32', lo: -0.5, hi: 0.5 });
    const gys = randomArray(shape, 34, { dtype: 'float32' });
    const x = T.tensor4('x', 'float32');
    const gamma = T.vector('gamma', 'float32');
    const beta = T.vector('beta', 'float32');
    const gy = T.tensor4('gy', 'float32');
    const r = T.relu(batchNormTrain(x, gamma, beta, EPS).y);
    const [gx, gGamma] = T.grad(T.sum(T.mul(r, gy)), [x, gamma]);
    const f = T.fn({ inputs: [x, gamma, beta, gy], outputs: [r, gx!, gGamma!], device });
    const steps = f.compiled.description.program.steps;
    assert.deepEqual(steps.filter((st) => st.op === 'bnTrain').map((st) => st.attrs['relu']), [true], 'one bnTrain, relu fused');
    assert.equal(steps.filter((st) => st.op === 'relu').length, 0, 'no relu step left');
    const [got, gotGx, gotGamma] = f(xs, gs, bs, gys) as NDArray[];
    // The formulas with relu's mask applied to gy (relu(y) > 0 exactly where y > 0).
    const plain = naive(xs, gs, bs, gys);
    const masked = new NDArray('float32', shape);
    for (let i = 0; i < masked.size; i++) masked.data[i] = plain.y.data[i]! > 0 ? gys.data[i]! : 0;
    const want = naive(xs, gs, bs, masked);
    const relu = new NDArray('float64', shape, want.y.data.map((v) => Math.max(v, 0)));
    assertAllClose(got!, relu, tol, 'relu(y)');
    assertAllClose(gotGx!, want.gx, tol, 'gradient of x');
    assertAllClose(gotGamma!, want.gGamma, tol, 'gradient of gamma');
  });

  it('a feature whose values are all equal normalises to beta, with a finite gradient', () => {
    const xs = new NDArray('float32', [4, 2]);
    for (let i = 0; i < 4; i++) { xs.data[2 * i] = 3; xs.data[2 * i + 1] = i; }
    const x = T.matrix('x', 'float32');
    const gamma = T.vector('gamma', 'float32');
    const beta = T.vector('beta', 'float32');
    const { y } = batchNormTrain(x, gamma, beta, EPS);
    const [gx] = T.grad(T.sum(T.mul(y, y)), [x]);
    const [out, g] = T.fn({ inputs: [x, gamma, beta], outputs: [y, gx!], device })(xs, NDArray.from([2, 1], { dtype: 'float32' }),
      NDArray.from([0.5, 0], { dtype: 'float32' })) as NDArray[];
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(out!.data[2 * i]! - 0.5) < 1e-6, `y[${i}, 0] = ${out!.data[2 * i]}`);
    assert.ok([...g!.data].every(Number.isFinite), 'finite gradient');
  });
});

it('finite differences: the gradient of x, gamma and beta, with the loss also using the mean and variance', () => {
  for (const shape of [[4, 3], [2, 2, 3, 2]]) {
    const xs = randomArray(shape, 21, { lo: -1, hi: 2 });
    const gs = randomArray([shape[1]!], 22, { lo: 0.5, hi: 1.5 });
    const bs = randomArray([shape[1]!], 23);
    verifyGrad((x, g, b) => {
      const { y, mean, variance } = batchNormTrain(x, g, b, EPS);
      return T.add(T.sum(T.mul(y, y)), T.add(T.sum(T.mul(mean, 3)), T.sum(T.mul(variance, -2))));
    }, [xs, gs, bs], { rtol: 1e-4, atol: 1e-6 });
  }
});

it('bad input: ndim, statistics shape, epsilon, dtype, and statistics of another input for the gradient', () => {
  const x = T.matrix('x', 'float32');
  const gamma = T.vector('gamma', 'float32');
  const beta = T.vector('beta', 'float32');
  assert.throws(() => batchNormStats(T.vector('v', 'float32')), /ndim >= 2/);
  assert.throws(() => batchNormStats(T.matrix('i', 'int32')), /must be float/);
  assert.throws(() => batchNormApply(x, batchNormStats(x), gamma, beta, -1), /epsilon must be a finite number >= 0/);
  const other = T.matrix('other', 'float32');
  const y = batchNormApply(x, batchNormStats(other), gamma, beta, EPS);
  assert.throws(() => T.grad(T.sum(y), [x]), /bnTrain's statistics must be bnStats of its own input/);
  const f = T.fn({ inputs: [x, gamma, beta], outputs: batchNormApply(x, batchNormStats(x), gamma, beta, EPS) });
  assert.throws(() => f(new NDArray('float32', [3, 2]), new NDArray('float32', [3]), new NDArray('float32', [2])), /gamma has shape \(3,\), expected \(2,\)/);
  const [gx] = T.grad(T.sum(batchNormApply(x, batchNormStats(x), gamma, beta, EPS)), [x]);
  assert.throws(() => T.grad(T.sum(gx!), [x]), /bnGrad/);
});
