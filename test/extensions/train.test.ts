// makeTrainFunction on 3 workers: every optimizer equals single-device training on the same batches
// (uneven rows, a rank with no rows, numSlices, batchS), parameters stay identical on every rank,
// controller-side changes reach every rank, batch-norm running statistics are row-weighted means.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { splitPoints } from '../../src/parallel/split.js';
import { assertAllClose } from '../helpers/allclose.js';
import { pathCountsForTesting } from '../../src/parallel/runtime.js';

const N = 3;
const ROWS = 10;
const data = X.makeBlobs({ rows: ROWS, features: 5, classes: 3, seed: 4 });
const X64 = data.x.astype('float64');

function rowsOf(a: NDArray, idx: readonly number[]): NDArray {
  const w = a.size / a.shape[0]!;
  const out = new NDArray(a.dtype, [idx.length, ...a.shape.slice(1)]);
  idx.forEach((r, i) => out.data.set(a.data.subarray(r * w, (r + 1) * w), i * w));
  return out;
}

/** A 5-4-3 tanh network; two builds with the same seed start from the same values. */
/** Every rank's copy of each parameter (gathered) equals the reference's. */
async function assertEveryRankEquals(params: readonly T.SharedVariable[], want: readonly T.SharedVariable[]): Promise<void> {
  const all = (await synk.gather(params)) as NDArray[];
  all.forEach((stacked, i) => {
    const w = want[i]!.getValue();
    for (let rank = 0; rank < N; rank++) assertAllClose(
      new NDArray('float64', w.shape, stacked.data.slice(rank * w.size, (rank + 1) * w.size) as Float64Array),
      w,
      { rtol: 1e-9, atol: 1e-12 },
      `param ${i} rank ${rank}`,
    );
  });
}

function model(dtype: 'float64' | 'float32' = 'float64', seed = 1) {
  const x = T.matrix('x', dtype);
  const y = T.vector('y', 'int32');
  const l1 = X.dense(5, 4, { rng: new X.Rng(seed), dtype, activation: 'tanh' });
  const l2 = X.dense(4, 3, { rng: new X.Rng(seed + 1), dtype });
  const logits = l2.apply(l1.apply(x));
  return { x, y, params: [...l1.params, ...l2.params], loss: X.crossEntropy(logits, y) };
}

/** Batch norm (momentum 0.5) under a 5-3 dense head, in train mode: its running statistics travel in the flat vector. */
function batchNormModel() {
  const x = T.matrix('x', 'float64');
  const y = T.vector('y', 'int32');
  const bn = X.batchNorm(5, { dtype: 'float64', momentum: 0.5 });
  const head = X.dense(5, 3, { dtype: 'float64', seed: 2 });
  const mode = X.trainMode();
  return { x, y, bn, head, mode, loss: X.crossEntropy(head.apply(bn.apply(x, mode)), y) };
}

/** Single-device training with the same rule: the gradient of the whole batch, then the update. */
function baseline(rule: X.RuleName, hyper: Record<string, number>, dtype: 'float64' | 'float32' = 'float64') {
  const m = model(dtype);
  const opt = X.makeOptimizer(rule, m.params, { loss: m.loss }, hyper);
  const g = T.fn({ inputs: [m.x, m.y], outputs: m.loss, updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]) });
  const u = T.fn({ updates: opt.paramUpdates });
  return { m, opt, step: (xs: NDArray, ys: NDArray) => { const l = (g(xs, ys) as NDArray).item(); u(); return l; } };
}

const HYPER: Record<X.RuleName, Record<string, number>> = {
  sgd: { learningRate: 0.5 }, momentum: { learningRate: 0.3 }, nesterovMomentum: { learningRate: 0.3 }, adagrad: { learningRate: 0.3 },
  rmsprop: { learningRate: 0.05 }, adadelta: {}, adam: { learningRate: 0.05 }, adamax: {}, adamw: { learningRate: 0.05 },
};
// Uneven parts (7 rows: 2, 3, 2), a rank with no rows (2 rows), the whole set.
const BATCHES = [[6, 0, 3, 3, 1, 9, 2], [4, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 7, 5, 3, 1, 0, 2]];

describe('makeTrainFunction on 3 workers', () => {
  before(async () => { await synk.fork({ n: N, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  for (const rule of Object.keys(HYPER) as X.RuleName[]) {
    it(`${rule}: N ranks equal one device on the same batches (uneven, empty rank)`, async () => {
      const m = model();
      const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], rule, HYPER[rule]);
      const ref = baseline(rule, HYPER[rule]!);
      const xs = synk.data(X64);
      const ys = synk.data(data.y);
      for (const [k, batch] of BATCHES.entries()) {
        const loss = await train(xs, ys, { batch });
        const want = ref.step(rowsOf(X64, batch), rowsOf(data.y, batch));
        assert.ok(Math.abs(loss - want) < 1e-9, `${rule} step ${k}: loss ${loss} vs ${want}`);
        m.params.forEach((p, i) => assertAllClose(p.getValue(), ref.m.params[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `${rule} step ${k} param ${i}`));
      }
    });
  }

  it('a rule given as a function (here: a custom rule built with buildOptimizer) trains the same way', async () => {
    const halfStep = (params: readonly T.SharedVariable[], source: X.GradSource) => X.buildOptimizer('sgd', params, source, {}, ({ params: ps, grads }) =>
      ps.map((p, i): X.UpdatePair => [p, T.sub(p, T.mul(0.25, grads[i]!))]));
    const m = model();
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], halfStep);
    const ref = baseline('sgd', { learningRate: 0.25 });
    for (const batch of BATCHES) {
      await train(X64, data.y, { batch });
      ref.step(rowsOf(X64, batch), rowsOf(data.y, batch));
    }
    m.params.forEach((p, i) => assertAllClose(p.getValue(), ref.m.params[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `param ${i}`));
    assert.throws(() => X.makeTrainFunction(m.loss, m.params, [m.x, m.y], halfStep, { learningRate: 1 }), /hyper-parameters go into the rule function/);
  });

  it('numSlices accumulates the gradient: the same as one slice and as one device', async () => {
    const m = model();
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { learningRate: 0.05 });
    const ref = baseline('adam', { learningRate: 0.05 });
    for (const k of [3, 2, 4]) {
      const loss = await train(X64, data.y, { numSlices: k });
      const want = ref.step(X64, data.y);
      assert.ok(Math.abs(loss - want) < 1e-9, `numSlices ${k}: loss ${loss} vs ${want}`);
      m.params.forEach((p, i) => assertAllClose(p.getValue(), ref.m.params[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `numSlices ${k} param ${i}`));
    }
  });

  it('parameters stay identical on every rank after many float32 steps', async () => {
    const m = model('float32', 7);
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { learningRate: 0.02 });
    const xs = synk.data(data.x);
    const r = new X.Rng(3);
    let first = 0, last = 0;
    for (let s = 0; s < 40; s++) {
      const batch = Array.from(r.permutation(ROWS).subarray(0, 5 + (s % 5)));
      last = await train(xs, data.y, { batch });
      if (s === 0) first = last;
    }
    assert.ok(last < first, `loss fell (${first} -> ${last})`);
    const all = (await synk.gather(m.params)) as NDArray[];
    all.forEach((stacked, i) => {
      const size = stacked.size / N;
      for (let rank = 1; rank < N; rank++) {
        for (let j = 0; j < size; j++) assert.equal(stacked.data[rank * size + j], stacked.data[j], `param ${i} differs on rank ${rank}`);
      }
      assert.deepEqual(Array.from(stacked.data.subarray(0, size)), Array.from(m.params[i]!.getValue().data), 'the controller holds rank 0 values');
    });
  });

  it('batchS over data scattered once equals one device on the selected rows', async () => {
    const m = model();
    const xs = T.shared(new NDArray('float64', [0, 5]), { name: 'Xs' });
    const ys = T.shared(new NDArray('int32', [0]), { name: 'Ys' });
    const loss = X.crossEntropy(rebuild(m, xs), ys);
    const train = X.makeTrainFunction(loss, m.params, [], 'momentum', { learningRate: 0.3, sliceableShareds: [xs, ys] });
    const ref = baseline('momentum', { learningRate: 0.3 });
    const data9 = { x: rowsOf(X64, [0, 1, 2, 3, 4, 5, 6, 7, 8]), y: rowsOf(data.y, [0, 1, 2, 3, 4, 5, 6, 7, 8]) };
    await synk.scatter([xs, ys], [data9.x, data9.y]);
    const cases: [unknown, number[]][] = [[{ start: 0, stop: 2 }, [0, 1, 3, 4, 6, 7]], [[2, 0], [2, 0, 5, 3, 8, 6]], [[[0, 1, 2], [1], []], [0, 1, 2, 4]]];
    for (const [batchS, rows] of cases) {
      const got = await train({ batchS });
      const want = ref.step(rowsOf(data9.x, rows), rowsOf(data9.y, rows));
      assert.ok(Math.abs(got - want) < 1e-9, `batchS ${JSON.stringify(batchS)}: loss ${got} vs ${want}`);
      m.params.forEach((p, i) => assertAllClose(
        p.getValue(),
        ref.m.params[i]!.getValue(),
        { rtol: 1e-9, atol: 1e-12 },
        `batchS ${JSON.stringify(batchS)} param ${i}`,
      ));
    }
  });

  it('controller-side changes (a learning-rate schedule, loaded parameters) reach every rank', async () => {
    const m = model();
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', { learningRate: 0.5 });
    const ref = baseline('sgd', { learningRate: 0.5 });
    for (const lr of [0.5, 0.1, 0.02]) {
      train.optimizer.setHyper('learningRate', lr);
      ref.opt.setHyper('learningRate', lr);
      await train(X64, data.y, { batch: BATCHES[0]! });
      ref.step(rowsOf(X64, BATCHES[0]!), rowsOf(data.y, BATCHES[0]!));
    }
    const loaded = NDArray.full(m.params[0]!.getValue().shape, 0.1, 'float64');
    m.params[0]!.setValue(loaded);
    ref.m.params[0]!.setValue(loaded);
    await train(X64, data.y);
    ref.step(X64, data.y);
    await assertEveryRankEquals(m.params, ref.m.params);
  });

  it('a new train function\'s first step broadcasts nothing the workers just received; later controller changes still reach every rank', async () => {
    const m = model();
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], (ps, source) => X.makeOptimizer('momentum', ps, source, HYPER.momentum));
    const ref = baseline('momentum', HYPER.momentum);
    const before = pathCountsForTesting();
    await train(X64, data.y, { batch: BATCHES[0]! });
    ref.step(rowsOf(X64, BATCHES[0]!), rowsOf(data.y, BATCHES[0]!));
    // Three calls: the gradient and the update through the control block, the all-reduce as a message; no broadcast.
    assert.equal(pathCountsForTesting().messages - before.messages, 1, 'messages of the first step');
    const loaded = NDArray.full(m.params[2]!.getValue().shape, -0.2, 'float64');
    m.params[2]!.setValue(loaded);
    ref.m.params[2]!.setValue(loaded);
    await train(X64, data.y);
    ref.step(X64, data.y);
    await assertEveryRankEquals(m.params, ref.m.params);
  });

  it('batch-norm running statistics: the row-weighted mean over ranks of each rank\'s update, equal everywhere', async () => {
    const { x, y, bn, head, mode, loss } = batchNormModel();
    const train = X.makeTrainFunction(loss, [...bn.params, ...head.params], [x, y], 'sgd', { learningRate: 0.1, updates: mode.updates });
    const batch = BATCHES[0]!; // 7 rows: 2, 3, 2 per rank
    await train(X64, data.y, { batch });
    const p = splitPoints(batch.length, N);
    const wantMean = new Float64Array(5), wantVar = new Float64Array(5);
    for (let r = 0; r < N; r++) {
      const rows = batch.slice(p[r], p[r + 1]);
      for (let j = 0; j < 5; j++) {
        const v = rows.map((i) => X64.data[i * 5 + j]!);
        const mu = v.reduce((a, b) => a + b, 0) / v.length;
        const unbiased = v.reduce((a, b) => a + (b - mu) ** 2, 0) / Math.max(1, v.length - 1);
        wantMean[j]! += (0.5 * 0 + 0.5 * mu) * v.length / batch.length;
        wantVar[j]! += (0.5 * 1 + 0.5 * unbiased) * v.length / batch.length;
      }
    }
    const [means, vars] = (await synk.gather([bn.runningMean, bn.runningVar])) as NDArray[];
    for (let r = 0; r < N; r++) {
      assertAllClose(
        new NDArray('float64', [5], means!.data.slice(r * 5, r * 5 + 5) as Float64Array),
        wantMean,
        { rtol: 1e-10, atol: 1e-12 },
        `running mean on rank ${r}`,
      );
      assertAllClose(
        new NDArray('float64', [5], vars!.data.slice(r * 5, r * 5 + 5) as Float64Array),
        wantVar,
        { rtol: 1e-10, atol: 1e-12 },
        `running var on rank ${r}`,
      );
    }
  });

  it('a residual CNN with batch norm and dropout learns generated images (numSlices, 3 ranks); validation with numSlices equals one device', async () => {
    const set = X.makeImages({ rows: 96, size: 8, classes: 3, seed: 5, shift: 1, noise: 0.1 });
    const x = T.tensor4('x');
    const y = T.vector('y', 'int32');
    const rng = new X.Rng(2);
    const net = X.sequential(X.conv2dLayer(1, 4, 3, { padding: 1, rng: rng.fork() }), X.residualBlock(4, 6, { stride: 2, rng: rng.fork() }),
      X.globalAvgPool(), X.dropout(0.2, { seed: 3 }), X.dense(6, 3, { rng: rng.fork() }));
    const mode = X.trainMode();
    const logits = net.apply(x, mode);
    const train = X.makeTrainFunction(X.crossEntropy(logits, y), net.params, [x, y], 'adam', { learningRate: 0.03, updates: mode.updates });
    const xs = synk.data(set.x);
    const ys = synk.data(set.y);
    let first = 0, last = 0;
    for (let s = 0; s < 25; s++) {
      last = await train(xs, ys, { batch: Array.from(rng.permutation(96).subarray(0, 32)), numSlices: 2 });
      if (s === 0) first = last;
    }
    assert.ok(last < 0.7 * first, `loss fell (${first} -> ${last})`);
    const evalLogits = net.apply(x, X.evalMode());
    const validate = synk.fn({ inputs: [x, y], outputs: [[X.correctCount(evalLogits, y), 'sum']] });
    const correct = ((await validate(xs, ys, { numSlices: 3 })) as NDArray[])[0]!.item();
    const local = (T.fn({ inputs: [x, y], outputs: X.correctCount(evalLogits, y) })(set.x, set.y) as NDArray).item();
    assert.equal(correct, local);
    assert.ok(correct / 96 > 0.6, `accuracy ${correct / 96}`);
    const states = (await synk.gather(net.states)) as NDArray[];
    for (const st of states) {
      const size = st.size / N;
      for (let r = 1; r < N; r++) for (let j = 0; j < size; j++) assert.equal(st.data[r * size + j], st.data[j], 'running statistics equal on every rank');
    }
  });

  it('bad input: mismatched params, non-scalar loss, learning rate, empty batch, unknown options', async () => {
    const m = model();
    const other = T.shared(NDArray.from([1, 2], { dtype: 'float64' }), { name: 'other' });
    assert.throws(() => X.makeTrainFunction(m.loss, [...m.params, other], [m.x, m.y], 'sgd', { learningRate: 1 }), /does not depend on wrt\[4\]/);
    assert.throws(
      () => X.makeTrainFunction(m.loss, [m.params[0]!, T.shared(NDArray.from([1], { dtype: 'float32' }))], [m.x, m.y], 'sgd', { learningRate: 1 }),
      /mix dtypes/,
    );
    assert.throws(() => X.makeTrainFunction(T.mul(m.x, 2), m.params, [m.x, m.y], 'sgd', { learningRate: 1 }), /loss must be a scalar, got x?.*ndim 2/);
    assert.throws(() => X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { learningRate: 0 }), /learningRate must be a positive number, got 0/);
    assert.throws(() => X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', { learningRate: -1 }), /learningRate must be a positive number, got -1/);
    assert.throws(() => X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', {}), /sgd: learningRate is required/);
    assert.throws(() => X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adamm' as X.RuleName), /unknown rule "adamm"/);
    assert.throws(() => X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', { learningRate: 1, batchSize: 'x' }), /option batchSize is not known/);
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', { learningRate: 1 });
    await assert.rejects(train(X64, data.y, { batch: [] }), /the batch is empty/);
  });
});

/** The model's logits rebuilt on another input (for batchS: the sliceable shared holds the rows). */
function rebuild(m: ReturnType<typeof model>, input: T.Variable): T.Variable {
  const [W1, b1, W2, b2] = m.params as [T.SharedVariable, T.SharedVariable, T.SharedVariable, T.SharedVariable];
  return X.denseForward(T.tanh(X.denseForward(input, W1, b1)), W2, b2);
}

// One rank (a GPU worker, or a rule given as a function on CPU workers): gradient and update run as
// one program from the gradients themselves, no flat vector; it must equal the flat-vector recipe.
describe('makeTrainFunction on 1 worker: one program per step', () => {
  before(async () => { await synk.fork({ n: 1, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  for (const rule of Object.keys(HYPER) as X.RuleName[]) {
    it(`${rule}: one program equals gradient, flat vector and update on one device`, async () => {
      const m = model();
      const asFunction = (ps: readonly T.SharedVariable[], source: X.GradSource) => X.makeOptimizer(rule, ps, source, HYPER[rule]);
      const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], asFunction, { outputs: [[T.mean(T.cast(m.y, 'float64')), 'avg']] });
      const ref = baseline(rule, HYPER[rule]!);
      for (const [k, batch] of BATCHES.entries()) {
        const { loss, outputs } = await train.step(X64, data.y, { batch });
        const want = ref.step(rowsOf(X64, batch), rowsOf(data.y, batch));
        assert.ok(Math.abs(loss - want) < 1e-9, `${rule} step ${k}: loss ${loss} vs ${want}`);
        const meanLabel = batch.reduce((s, r) => s + data.y.data[r]!, 0) / batch.length;
        assert.ok(Math.abs(outputs[0]!.item() - meanLabel) < 1e-9, `${rule} step ${k}: extra output`);
        m.params.forEach((p, i) => assertAllClose(p.getValue(), ref.m.params[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `${rule} step ${k} param ${i}`));
      }
      // The flat vector was never written: the step ran as the one program.
      assert.ok(train.optimizer.flatGrad.getValue().data.every((v) => v === 0), `${rule}: the flat gradient stayed unused`);
      train.optimizer.slots.forEach((s, i) => assertAllClose(s.getValue(), ref.opt.slots[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `${rule} slot ${i}`));
    });
  }

  it('steps over batchS go through the control block alone; a controller change goes with the next step and is used', async () => {
    const m = model();
    const xs = T.shared(new NDArray('float64', [0, 5]), { name: 'Xs1' });
    const ys = T.shared(new NDArray('int32', [0]), { name: 'Ys1' });
    const loss = X.crossEntropy(rebuild(m, xs), ys);
    const adam = (ps: readonly T.SharedVariable[], source: X.GradSource) => X.makeOptimizer('adam', ps, source, HYPER.adam);
    const train = X.makeTrainFunction(loss, m.params, [], adam, { sliceableShareds: [xs, ys] });
    const ref = baseline('adam', HYPER.adam);
    await synk.scatter([xs, ys], [X64, data.y]);
    const check = (what: string) => m.params.forEach((p, i) => assertAllClose(
      p.getValue(), ref.m.params[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `${what} param ${i}`,
    ));
    const before = pathCountsForTesting();
    for (const batch of BATCHES) {
      const got = await train({ batchS: batch });
      const want = ref.step(rowsOf(X64, batch), rowsOf(data.y, batch));
      assert.ok(Math.abs(got - want) < 1e-9, `batchS ${JSON.stringify(batch)}: loss ${got} vs ${want}`);
    }
    const after = pathCountsForTesting();
    assert.equal(after.messages - before.messages, 0, 'no step went as messages');
    assert.equal(after.fast - before.fast, BATCHES.length, 'one control-block call per step');
    check('after the batchS steps');
    const loaded = NDArray.full(m.params[0]!.getValue().shape, 0.05, 'float64');
    m.params[0]!.setValue(loaded);
    ref.m.params[0]!.setValue(loaded);
    train.optimizer.setHyper('learningRate', 0.01);
    ref.opt.setHyper('learningRate', 0.01);
    const got = await train({ batchS: BATCHES[1]! });
    const want = ref.step(rowsOf(X64, BATCHES[1]!), rowsOf(data.y, BATCHES[1]!));
    assert.ok(Math.abs(got - want) < 1e-9, `after the controller's changes: loss ${got} vs ${want}`);
    check('after the controller\'s changes');
  });

  it('numSlices > 1 keeps the flat recipe (it accumulates the gradient) and equals one device', async () => {
    const m = model();
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], (ps, source) => X.makeOptimizer('adam', ps, source, HYPER.adam));
    const ref = baseline('adam', HYPER.adam);
    for (const batch of BATCHES) {
      await train(X64, data.y, { batch, numSlices: 2 });
      ref.step(rowsOf(X64, batch), rowsOf(data.y, batch));
    }
    m.params.forEach((p, i) => assertAllClose(p.getValue(), ref.m.params[i]!.getValue(), { rtol: 1e-9, atol: 1e-12 }, `param ${i}`));
  });

  it('batch-norm running statistics: one rank\'s update of its whole batch', async () => {
    const { x, y, bn, head, mode, loss } = batchNormModel();
    const sgd = (ps: readonly T.SharedVariable[], source: X.GradSource) => X.makeOptimizer('sgd', ps, source, { learningRate: 0.1 });
    const train = X.makeTrainFunction(loss, [...bn.params, ...head.params], [x, y], sgd, { updates: mode.updates });
    const batch = BATCHES[0]!;
    await train(X64, data.y, { batch });
    for (let j = 0; j < 5; j++) {
      const v = batch.map((i) => X64.data[i * 5 + j]!);
      const mu = v.reduce((a, b) => a + b, 0) / v.length;
      const unbiased = v.reduce((a, b) => a + (b - mu) ** 2, 0) / (v.length - 1);
      assert.ok(Math.abs(bn.runningMean.getValue().data[j]! - 0.5 * mu) < 1e-12, `running mean ${j}`);
      assert.ok(Math.abs(bn.runningVar.getValue().data[j]! - (0.5 + 0.5 * unbiased)) < 1e-12, `running var ${j}`);
    }
  });

  it('a failed step (a label out of range) rejects and changes no parameter or state', async () => {
    const m = model();
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], (ps, source) => X.makeOptimizer('adam', ps, source, HYPER.adam));
    await train(X64, data.y);
    const before = [...m.params, ...train.optimizer.slots].map((s) => s.getValue());
    const bad = data.y.copy();
    bad.data[3] = 7;
    await assert.rejects(train(X64, bad), /7|label|index|range/i);
    [...m.params, ...train.optimizer.slots].forEach((s, i) => assertAllClose(s.getValue(), before[i]!, { rtol: 0, atol: 0 }, `state ${i} unchanged`));
    assert.ok(Number.isFinite(await train(X64, data.y)), 'the next step runs');
  });
});
