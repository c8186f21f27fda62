// The shared-state training step (makeTrainFunction on CPU workers): one copy of the parameters in
// shared memory for every rank, the fused rules against their symbolic versions, the per-rank
// access rules, and a failed step that changes nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { FUSED_RULES, type FusedRuleName } from '../../src/parallel/fused-rules.js';
import { shardOf } from '../../src/parallel/shared-step.js';
import { commitSharedState } from '../../src/parallel/shared-state.js';
import { assertAllClose } from '../helpers/allclose.js';

const REF = new T.ReferenceDevice();
const HYPER: Record<FusedRuleName, Record<string, number>> = {
  sgd: { learningRate: 0.5 }, momentum: { learningRate: 0.3 }, nesterovMomentum: { learningRate: 0.3 }, adagrad: { learningRate: 0.3 },
  rmsprop: { learningRate: 0.05 }, adadelta: {}, adam: { learningRate: 0.05 }, adamax: {}, adamw: { learningRate: 0.05 },
};

function model(seed: number, dtype: 'float32' | 'float64') {
  const x = T.matrix('x', dtype);
  const y = T.vector('y', 'int32');
  const l1 = X.dense(6, 5, { rng: new X.Rng(seed), dtype, activation: 'relu' });
  const l2 = X.dense(5, 3, { rng: new X.Rng(seed + 1), dtype });
  return { x, y, params: [...l1.params, ...l2.params], loss: X.crossEntropy(l2.apply(l1.apply(x)), y) };
}

describe('fused optimizer kernels', () => {
  for (const rule of Object.keys(FUSED_RULES) as FusedRuleName[]) {
    it(`${rule}: the fused kernel equals the symbolic rule over several steps (float64, reference device)`, () => {
      const data = X.makeBlobs({ rows: 12, features: 6, classes: 3, seed: 3 });
      const xs = data.x.astype('float64');
      const sym = model(5, 'float64');
      const opt = X.makeOptimizer(rule, sym.params, { loss: sym.loss }, HYPER[rule]);
      const g = T.fn({ inputs: [sym.x, sym.y], updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]), device: REF });
      const u = T.fn({ updates: opt.paramUpdates, device: REF });
      // The fused kernel on a flat copy of the same parameters, fed the same reduced flat gradient.
      const kernel = FUSED_RULES[rule];
      const flatOf = (vs: readonly T.SharedVariable[]) => Float64Array.from(vs.flatMap((v) => [...v.getValue().data]));
      const p = flatOf(sym.params);
      const state = kernel.state.map(() => new Float64Array(p.length));
      const hyper = kernel.hyper.map((h) => opt.hyper[h]!.getValue().item());
      for (let t = 1; t <= 4; t++) {
        g(xs, data.y);
        const flat = opt.flatGrad.getValue().data as Float64Array;
        const rows = flat[flat.length - 1]!;
        kernel.update(p, flat, 1 / rows, state, 0, p.length, hyper, t);
        u();
        assertAllClose(
          new NDArray('float64', [p.length], p),
          new NDArray('float64', [p.length], flatOf(sym.params)),
          { rtol: 1e-12, atol: 1e-14 },
          `${rule} step ${t}`,
        );
      }
    });
  }

  it('shards cover [0, length) in order, cut at multiples of 16 elements', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 64 }), (length, size) => {
      let at = 0;
      for (let r = 0; r < size; r++) {
        const [lo, hi] = shardOf(length, size, r);
        assert.equal(lo, at);
        assert.ok(hi >= lo);
        if (r < size - 1) assert.equal(hi % 16 === 0 || hi === length, true);
        at = hi;
      }
      assert.equal(at, length);
    }));
  });
});

describe('shared-state training step on 3 CPU workers', () => {
  before(async () => { await synk.fork({ n: 3, devices: 'cpu' }); });
  after(async () => { await synk.close(); });

  it('float32 on CPU workers equals the float64 reference on one device, and every rank views one copy', async () => {
    const data = X.makeBlobs({ rows: 40, features: 6, classes: 3, seed: 2 });
    const m = model(7, 'float32');
    const ref = model(7, 'float64');
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { learningRate: 0.01 });
    const opt = X.makeOptimizer('adam', ref.params, { loss: ref.loss }, { learningRate: 0.01 });
    const g = T.fn({
      inputs: [ref.x, ref.y],
      outputs: ref.loss,
      updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]),
      device: REF,
    });
    const u = T.fn({ updates: opt.paramUpdates, device: REF });
    const xs = synk.data(data.x);
    const ys = synk.data(data.y);
    for (let k = 0; k < 5; k++) {
      const loss = await train(xs, ys);
      const want = (g(data.x.astype('float64'), data.y) as NDArray).item();
      u();
      assert.ok(Math.abs(loss - want) < 1e-4, `step ${k}: loss ${loss} vs ${want}`);
    }
    assert.ok(train.timings() !== null, 'the shared-state step ran');
    m.params.forEach((p, i) => assertAllClose(p.getValue().astype('float64'), ref.params[i]!.getValue(), { rtol: 1e-4, atol: 1e-5 }, `param ${i}`));
    // Every rank reads the same memory, so every rank's value is the controller's.
    for (let rank = 0; rank < 3; rank++) {
      const got = (await synk.getValue(rank, m.params[0]!)) as NDArray;
      assertAllClose(got, m.params[0]!.getValue(), { rtol: 0, atol: 0 }, `rank ${rank}`);
    }
    assert.equal(train.optimizer.slots[0]!.getValue().item(), 5, 'the step counter counts the steps');
  });

  it('per-rank writes of a parameter held in shared memory are refused with a clear error; controller values reach every rank', async () => {
    const data = X.makeBlobs({ rows: 9, features: 6, classes: 3, seed: 1 });
    const m = model(3, 'float32');
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', { learningRate: 0.1 });
    await train(data.x, data.y);
    const p = m.params[0]!;
    const value = p.getValue();
    await assert.rejects(synk.setValue(1, p, value), /setValue\(rank 1\): .* is held in shared memory by makeTrainFunction/);
    await assert.rejects(synk.scatter(p, value), /scatter: .* held in shared memory/);
    await assert.rejects(synk.allReduce(p), /allReduce: .* held in shared memory/);
    await assert.rejects(train.updateFn(), /held in shared memory/);
    // setValue on the controller, then a step: every rank starts from the new value.
    const zeros = new NDArray('float32', value.shape);
    p.setValue(zeros);
    await synk.broadcast(p);
    for (let rank = 0; rank < 3; rank++) assertAllClose((await synk.getValue(rank, p)) as NDArray, zeros, { rtol: 0, atol: 0 }, `rank ${rank}`);
    // The training step's layout is fixed: a value of another shape is refused when it would go into the shared memory.
    p.setValue(new NDArray('float32', [2, 2]));
    assert.throws(() => commitSharedState(p), /cannot replace it/);
    p.setValue(zeros);
  });

  it('a step that fails on one rank (a label out of range) changes no parameter, state or counter', async () => {
    const data = X.makeBlobs({ rows: 12, features: 6, classes: 3, seed: 4 });
    const m = model(11, 'float32');
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { learningRate: 0.01 });
    await train(data.x, data.y);
    const before = [...m.params, ...train.optimizer.slots].map((s) => s.getValue());
    const bad = data.y.copy();
    bad.data[11] = 7; // only the last rank's rows hold the bad label
    await assert.rejects(train(data.x, bad), /rank 2/);
    [...m.params, ...train.optimizer.slots].forEach((s, i) => assertAllClose(s.getValue(), before[i]!, { rtol: 0, atol: 0 }, `value ${i}`));
    const loss = await train(data.x, data.y);
    assert.ok(Number.isFinite(loss), 'the runtime recovered');
    assert.equal(train.optimizer.slots[0]!.getValue().item(), 2);
  });
});

