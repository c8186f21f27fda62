// Building blocks: finite-difference gradient checks of every block (inputs and parameters),
// batch-norm statistics against a hand computation, dropout, pooling wrappers, initialisers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { verifyGrad } from '../helpers/gradcheck.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

/** d cost / d shared, symbolic against central differences, for shared float64 parameters. */
function checkSharedGrads(cost: T.Variable, shareds: readonly T.SharedVariable[], inputs: readonly T.Variable[], values: readonly NDArray[], eps = 1e-6): void {
  const grads = T.fn({ inputs: [...inputs], outputs: T.grad(cost, [...shareds]) })(...values) as NDArray[];
  const f = T.fn({ inputs: [...inputs], outputs: cost });
  shareds.forEach((s, k) => {
    const v0 = s.getValue();
    for (let i = 0; i < v0.size; i++) {
      const at = (d: number) => { const v = v0.copy(); v.data[i]! += d; s.setValue(v); return (f(...values) as NDArray).item(); };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      s.setValue(v0);
      const analytic = grads[k]!.data[i]!;
      assert.ok(Math.abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.abs(numeric), `${s.name} element ${i}: symbolic ${analytic}, finite difference ${numeric}`);
    }
  });
}

/** A fixed random projection of the output, so every element matters. */
const project = (y: T.Variable, shape: readonly number[], seed = 9) => T.sum(T.mul(y, T.constant(randomArray(shape, seed))));

describe('layers: gradients by finite differences', () => {
  it('dense: x·W + b (with tanh)', () => {
    verifyGrad((x, W, b) => T.tanh(X.denseForward(x!, W!, b!)), [randomArray([3, 4], 1), randomArray([4, 2], 2), randomArray([2], 3)]);
  });

  it('conv2d layer: strided, padded, with bias', () => {
    verifyGrad(
      (x, W, b) => X.conv2dForward(x!, W!, b!, { stride: 2, padding: 1 }),
      [randomArray([2, 2, 5, 5], 4), randomArray([3, 2, 3, 3], 5), randomArray([3], 6)],
    );
  });

  it('batch norm, training mode, 2-d and 4-d', () => {
    verifyGrad((x, g, b) => X.batchNormTrain(x!, g!, b!).y, [randomArray([5, 3], 7), randomArray([3], 8, { lo: 0.5, hi: 1.5 }), randomArray([3], 9)]);
    verifyGrad((x, g, b) => X.batchNormTrain(x!, g!, b!).y, [randomArray([2, 2, 3, 3], 10), randomArray([2], 11, { lo: 0.5, hi: 1.5 }), randomArray([2], 12)]);
  });

  it('batch norm, inference mode', () => {
    verifyGrad(
      (x, g, b, m, v) => X.batchNormInference(x!, g!, b!, m!, v!),
      [randomArray([2, 3, 2, 2], 13), randomArray([3], 14), randomArray([3], 15), randomArray([3], 16), randomArray([3], 17, { lo: 0.5, hi: 2 })],
    );
  });

  it('max and avg pooling modules', () => {
    verifyGrad((x) => X.maxPool(2).apply(x!), [randomArray([1, 2, 4, 4], 18)]);
    verifyGrad((x) => X.avgPool(3, { stride: 2, padding: 1 }).apply(x!), [randomArray([1, 2, 5, 5], 19)]);
    verifyGrad((x) => X.globalAvgPool().apply(x!), [randomArray([2, 3, 2, 2], 20)]);
  });

  it('residual block with projection (train mode): input and every parameter', () => {
    const block = X.residualBlock(2, 3, { stride: 2, dtype: 'float64', seed: 3 });
    verifyGrad((x) => block.apply(x!, X.trainMode()), [randomArray([2, 2, 4, 4], 21)]);
    const x = T.tensor4('x', 'float64');
    const cost = project(block.apply(x, X.trainMode()), [2, 3, 2, 2]);
    assert.equal(block.params.length, 9, '3 convolutions (no bias) and 3 batch norms (gamma, beta)');
    checkSharedGrads(cost, block.params, [x], [randomArray([2, 2, 4, 4], 22)]);
  });

  it('identity residual block and a sequential MLP: every parameter', () => {
    const block = X.residualBlock(2, 2, { dtype: 'float64', seed: 4 });
    assert.equal(block.shortcut, null);
    const x = T.tensor4('x', 'float64');
    checkSharedGrads(project(block.apply(x, X.trainMode()), [2, 2, 3, 3]), block.params, [x], [randomArray([2, 2, 3, 3], 23)]);
    const net = X.sequential(
      X.flatten(),
      X.dense(18, 4, { dtype: 'float64', activation: 'relu', seed: 1 }),
      X.batchNorm(4, { dtype: 'float64' }),
      X.dense(4, 3, { dtype: 'float64', seed: 2 }),
    );
    assert.equal(net.params.length, 6);
    assert.equal(net.states.length, 2);
    checkSharedGrads(project(net.apply(x, X.trainMode()), [2, 3]), net.params, [x], [randomArray([2, 2, 3, 3], 24)]);
  });
});

describe('layers: batch norm statistics by hand', () => {
  it('training output, running mean and unbiased running variance (4-d: over N, H, W)', () => {
    const bn = X.batchNorm(2, { dtype: 'float64', momentum: 0.3, epsilon: 1e-5 });
    bn.runningMean.setValue(NDArray.from([0.5, -1], { dtype: 'float64' }));
    const x = T.tensor4('x', 'float64');
    const mode = X.trainMode();
    const f = T.fn({ inputs: [x], outputs: bn.apply(x, mode), updates: mode.updates });
    const v = randomArray([3, 2, 2, 2], 30, { lo: -2, hi: 3 });
    const y = f(v) as NDArray;
    for (let c = 0; c < 2; c++) {
      const vals: number[] = [];
      for (let n = 0; n < 3; n++) for (let k = 0; k < 4; k++) vals.push(v.data[n * 8 + c * 4 + k]!);
      const mu = vals.reduce((a, b) => a + b) / 12;
      const biased = vals.reduce((a, b) => a + (b - mu) ** 2, 0) / 12;
      for (let n = 0; n < 3; n++) for (let k = 0; k < 4; k++) {
        const i = n * 8 + c * 4 + k;
        assert.ok(Math.abs(y.data[i]! - (v.data[i]! - mu) / Math.sqrt(biased + 1e-5)) < 1e-10, `output ${i}`);
      }
      assert.ok(Math.abs(bn.runningMean.getValue().data[c]! - (0.7 * [0.5, -1][c]! + 0.3 * mu)) < 1e-12, `running mean ${c}`);
      assert.ok(Math.abs(bn.runningVar.getValue().data[c]! - (0.7 * 1 + 0.3 * biased * 12 / 11)) < 1e-12, `running var ${c}`);
    }
  });

  it('inference mode uses the running statistics and changes nothing', () => {
    const bn = X.batchNorm(3, { dtype: 'float64' });
    bn.runningMean.setValue(NDArray.from([1, 2, 3], { dtype: 'float64' }));
    bn.runningVar.setValue(NDArray.from([4, 1, 0.25], { dtype: 'float64' }));
    bn.gamma.setValue(NDArray.from([2, 1, 1], { dtype: 'float64' }));
    const x = T.matrix('x', 'float64');
    const mode = X.evalMode();
    const y = T.fn({ inputs: [x], outputs: bn.apply(x, mode) })(NDArray.from([[3, 2, 2.5]], { dtype: 'float64' })) as NDArray;
    assert.equal(mode.updates.length, 0);
    assertAllClose(y, [[2 * 2 / Math.sqrt(4 + 1e-5), 0, -0.5 / Math.sqrt(0.25 + 1e-5)]], { rtol: 1e-12 });
  });
});

describe('layers: dropout', () => {
  it('zeroes about `rate` of the elements, scales the rest, and its gradient is the same mask', () => {
    const x = T.matrix('x');
    const drop = X.dropout(0.25, { seed: 5 });
    const y = drop.apply(x, X.trainMode());
    const f = T.fn({ inputs: [x], outputs: [y, T.grad(T.sum(y), x)] });
    const ones = NDArray.full([100, 100], 1);
    const [out, g] = f(ones) as NDArray[];
    let zeros = 0;
    for (let i = 0; i < out!.size; i++) {
      const v = out!.data[i]!;
      if (v === 0) zeros++;
      else assert.ok(Math.abs(v - 1 / 0.75) < 1e-6);
      assert.equal(g!.data[i], v, 'gradient equals the scaled mask');
    }
    assert.ok(Math.abs(zeros / 1e4 - 0.25) < 0.02, `dropped fraction ${zeros / 1e4}`);
    const [again] = f(ones) as NDArray[];
    assert.notDeepEqual(Array.from(again!.data), Array.from(out!.data), 'the next call draws a new mask');
  });

  it('is seeded (same seed, same masks) and is the identity in inference mode', () => {
    const masks = [5, 5, 6].map((seed) => {
      const x = T.vector('x');
      return Array.from((T.fn({ inputs: [x], outputs: X.dropout(0.5, { seed }).apply(x, X.trainMode()) })(NDArray.full([64], 1)) as NDArray).data);
    });
    assert.deepEqual(masks[0], masks[1]);
    assert.notDeepEqual(masks[0], masks[2]);
    const x = T.vector('x');
    assert.equal(X.dropout(0.5).apply(x, X.evalMode()), x);
    assert.throws(() => X.dropout(1), /rate must be in \[0, 1\)/);
  });
});

describe('layers: initialisation and construction', () => {
  const stats = (a: NDArray) => {
    let s = 0, q = 0, max = 0;
    for (const v of a.data) { s += v; q += v * v; max = Math.max(max, Math.abs(v)); }
    return { mean: s / a.size, std: Math.sqrt(q / a.size - (s / a.size) ** 2), max };
  };

  it('Glorot and He follow their scales, with Lasagne fans for matrices and filters', () => {
    assert.deepEqual(X.fans([300, 200]), { fanIn: 300, fanOut: 200 });
    assert.deepEqual(X.fans([16, 8, 3, 3]), { fanIn: 72, fanOut: 144 });
    const gu = stats(X.glorotUniform([300, 200], { seed: 1 }));
    const limit = Math.sqrt(6 / 500);
    assert.ok(gu.max <= limit && gu.max > 0.99 * limit && Math.abs(gu.std - limit / Math.sqrt(3)) < 0.01 * limit);
    const hn = stats(X.heNormal([64, 32, 3, 3], { seed: 2 }));
    assert.ok(Math.abs(hn.std - Math.sqrt(2 / 288)) < 0.03 * Math.sqrt(2 / 288) && Math.abs(hn.mean) < 0.01, `he normal std ${hn.std}`);
    const gn = stats(X.glorotNormal([400, 100], { seed: 3, gain: 2 }));
    assert.ok(Math.abs(gn.std - 2 * Math.sqrt(2 / 500)) < 0.03 * gn.std);
    const hu = stats(X.heUniform([500, 10], { seed: 4 }));
    assert.ok(hu.max <= Math.sqrt(6 / 500));
  });

  it('the same seed gives the same weights; layers take a generator', () => {
    assert.deepEqual(Array.from(X.glorotUniform([3, 4], { seed: 7 }).data), Array.from(X.glorotUniform([3, 4], { seed: 7 }).data));
    assert.notDeepEqual(Array.from(X.glorotUniform([3, 4], { seed: 7 }).data), Array.from(X.glorotUniform([3, 4], { seed: 8 }).data));
    const a = X.dense(3, 4, { rng: new X.Rng(1), name: 'a' });
    const b = X.dense(3, 4, { rng: new X.Rng(1), name: 'b' });
    assert.deepEqual(Array.from(a.W.getValue().data), Array.from(b.W.getValue().data));
    assert.equal(a.W.name, 'a.W');
    assert.deepEqual(Array.from(a.b!.getValue().data), [0, 0, 0, 0]);
    const c = X.conv2dLayer(4, 6, [3, 5], { groups: 2, bias: false });
    assert.deepEqual([...c.W.getValue().shape], [6, 2, 3, 5]);
    assert.equal(c.params.length, 1);
  });

  it('refuses bad sizes and inputs of the wrong rank', () => {
    assert.throws(() => X.dense(0, 3), /nIn must be a positive integer/);
    assert.throws(() => X.conv2dLayer(3, 4, 3, { groups: 2 }), /not divisible by groups/);
    assert.throws(() => X.dense(3, 4).apply(T.tensor4('x')), /expected a matrix/);
    assert.throws(() => X.batchNorm(3, { momentum: 2 }), /momentum must be in \[0, 1\]/);
    assert.throws(() => X.glorotUniform([3]), /at least 2 axes/);
  });
});
