// The column split of the shared-state step (src/parallel/shared-split.ts, src/extensions/column-split.ts):
// every rank publishes its rows of A and G·rows and computes its shard of dW = Σ Aᵀ·G over all ranks.
// Checked two ways: the ranks of a plan in this thread against the row split on the same numbers
// (fast-check over shapes, uneven and empty row blocks, every rule, both dtypes, SIMD and JavaScript
// kernels); and makeTrainFunction on CPU workers with the split forced on and off against the float64
// reference device on the whole batch, for the nine rules, uneven rows, an empty rank, index lists,
// batchS, numSlices, a failed step, and a product over other rows than the batch's (falls back).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { FUSED_RULES, type FusedRuleName } from '../../src/parallel/fused-rules.js';
import { CONTROL, SharedStep, type SharedStepPlan } from '../../src/parallel/shared-step.js';
import { SharedStepStorage } from '../../src/parallel/shared-layout.js';
import type { SplitLayer } from '../../src/parallel/shared-split.js';
import { simdSupported } from '../../src/parallel/fused-simd.js';
import { selectGemm } from '../../src/devices/cpu/gemm.js';
import { checkColumnSplit } from '../../src/extensions/column-split.js';
import { assertAllClose, rng } from '../helpers/allclose.js';

const RULES = Object.keys(FUSED_RULES) as FusedRuleName[];
const HYPER: Record<FusedRuleName, Record<string, number>> = {
  sgd: { learningRate: 0.5 }, momentum: { learningRate: 0.3 }, nesterovMomentum: { learningRate: 0.3 }, adagrad: { learningRate: 0.3 },
  rmsprop: { learningRate: 0.05 }, adadelta: {}, adam: { learningRate: 0.05 }, adamax: {}, adamw: { learningRate: 0.05 },
};
const HYPER_VALUES: Record<FusedRuleName, number[]> = {
  sgd: [0.5], momentum: [0.3, 0.9], nesterovMomentum: [0.3, 0.9], adagrad: [0.3, 1e-6], rmsprop: [0.05, 0.9, 1e-6], adadelta: [1, 0.95, 1e-6],
  adam: [0.05, 0.9, 0.999, 1e-8], adamax: [0.002, 0.9, 0.999, 1e-8], adamw: [0.05, 0.9, 0.999, 1e-8, 0.01],
};

interface Case {
  rule: FusedRuleName;
  dtype: 'float32' | 'float64';
  kernels: 'fast' | 'off';
  /** Sizes of the flat vector's parameters in order; a [in, out] entry is a split weight. */
  params: (number | [number, number])[];
  /** Rows per rank (0: a rank with no rows). */
  rows: number[];
  seed: number;
}

/**
 * One step of the case's plan with the ranks in this thread, by the row split (each rank's flat
 * vector holds its own dW = Aᵀ·G·n) or by the column split (its A and G·n): returns values, state, slot 0.
 */
function runCase(c: Case, split: boolean, gemm: boolean): Float64Array[] {
  const random = rng(c.seed);
  const layers: SplitLayer[] = [];
  let paramEnd = 0;
  for (const p of c.params) {
    if (Array.isArray(p)) layers.push({ offset: paramEnd, inDim: p[0], outDim: p[1] });
    paramEnd += Array.isArray(p) ? p[0] * p[1] : p;
  }
  const weightIndex = paramEnd + 3; // three averaged state elements after the parameters
  const size = c.rows.length;
  const stride = Math.max(...c.rows);
  const storage = new SharedStepStorage(c.rule, c.dtype, paramEnd, weightIndex, c.kernels);
  const plan: SharedStepPlan = split ? storage.planFor(1, size, layers, stride + 2) : storage.planFor(1, size);
  const blas = gemm ? selectGemm().blas : null;
  const ranks = c.rows.map((_, r) => new SharedStep(plan, r, blas));
  const View = c.dtype === 'float32' ? Float32Array : Float64Array;
  const control = new Float64Array(plan.control);
  HYPER_VALUES[c.rule].forEach((h, i) => (control[CONTROL.hyper + i] = h));
  control[CONTROL.step] = 2;
  control[CONTROL.splitMask] = split ? 2 ** layers.length - 1 : 0;
  control[CONTROL.splitStride] = split ? stride : 0;
  const p = new View(plan.values as unknown as ArrayBuffer, plan.valuesAt, plan.weightIndex);
  const state = plan.state.map((s, k) => new View(s as unknown as ArrayBuffer, plan.stateAt[k]!, plan.paramEnd));
  for (let i = 0; i < p.length; i++) p[i] = random() * 2 - 1;
  for (const s of state) for (let i = 0; i < s.length; i++) s[i] = random();
  ranks.forEach((rank, r) => {
    const n = c.rows[r]!;
    // The same numbers either way: the other parts, then each weight's operands (G already times n).
    const other = Array.from({ length: weightIndex - layers.reduce((a, l) => a + l.inDim * l.outDim, 0) }, () => random() * 4 - 2);
    const draw = (length: number) => Array.from({ length }, () => random() - 0.5);
    const ops = layers.map((l) => ({ a: draw(n * l.inDim), g: draw(n * l.outDim) }));
    if (n === 0) return rank.contribute(null);
    const parts: number[] = [];
    let o = 0;
    let at = 0;
    layers.forEach((l, k) => {
      parts.push(...other.slice(o, o + l.offset - at));
      o += l.offset - at;
      if (!split) {
        for (let i = 0; i < l.inDim; i++) {
          for (let j = 0; j < l.outDim; j++) {
            let sum = 0;
            for (let q = 0; q < n; q++) sum += ops[k]!.a[q * l.inDim + i]! * ops[k]!.g[q * l.outDim + j]!;
            parts.push(sum);
          }
        }
      }
      at = l.offset + l.inDim * l.outDim;
    });
    parts.push(...other.slice(o), n);
    if (split) layers.forEach((_, k) => parts.push(n, ...ops[k]!.a, ...ops[k]!.g));
    rank.contribute(View.from(parts));
  });
  for (const rank of ranks) rank.reduceAndUpdate(0);
  return [p, ...state, ranks[0]!.slot(0)].map((a) => Float64Array.from(a));
}

const arbCase: fc.Arbitrary<Case> = fc.record({
  rule: fc.constantFrom(...RULES),
  dtype: fc.constantFrom('float32' as const, 'float64' as const),
  kernels: fc.constantFrom(...(simdSupported() ? ['fast' as const, 'off' as const] : ['off' as const])),
  params: fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.tuple(fc.integer({ min: 1, max: 37 }), fc.integer({ min: 1, max: 45 }))),
    { minLength: 1, maxLength: 5 }).filter((ps) => ps.some(Array.isArray)),
  rows: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 5 }).filter((rs) => rs.some((r) => r > 0)),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

describe('column split: the ranks of a plan in this thread against the row split', () => {
  it('equals the row split for every rule, both dtypes, uneven and empty row blocks, shards that cut weight rows (BLAS and plain loops)', () => {
    fc.assert(fc.property(arbCase, fc.boolean(), (c, gemm) => {
      const rowSplit = runCase(c, false, gemm);
      const colSplit = runCase(c, true, gemm);
      const tol = c.dtype === 'float32' ? { rtol: 2e-4, atol: 2e-5 } : { rtol: 1e-10, atol: 1e-12 };
      rowSplit.forEach((want, k) => assertAllClose(new NDArray('float64', [want.length], colSplit[k]!), new NDArray('float64', [want.length], want), tol,
        `${JSON.stringify(c)} array ${k}`));
    }), { numRuns: 60 });
  });

  it('refuses operands with more rows than the step\'s blocks, and a flat vector of the wrong length, before the barrier', () => {
    const storage = new SharedStepStorage('sgd', 'float64', 6, 6, 'off');
    const plan = storage.planFor(1, 2, [{ offset: 0, inDim: 2, outDim: 3 }], 4);
    const rank = new SharedStep(plan, 0, null);
    const control = new Float64Array(plan.control);
    control[CONTROL.splitMask] = 1;
    control[CONTROL.splitStride] = 1;
    // [weight count] then [K = 2, A (2 x 2), G (2 x 3)]: two rows in a block of one.
    assert.throws(() => rank.contribute(Float64Array.from([1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6])), /column split of weight 0: 2 operand rows, at most 1/);
    assert.throws(() => rank.contribute(Float64Array.from([1, 1, 1, 2])), /column-split flat gradient has 4 elements/);
    control[CONTROL.splitStride] = 5;
    assert.throws(() => rank.contribute(Float64Array.from([1])), /5 rows per rank, the plan holds 4/);
    if (process.env['SYNK_COLUMN_SPLIT'] === undefined) assert.equal(checkColumnSplit(undefined, 'x'), 'auto');
    assert.throws(() => checkColumnSplit('yes', 'makeTrainFunction'), /makeTrainFunction: columnSplit must be 'auto', 'on' or 'off', got "yes"/);
  });
});

const REF = new T.ReferenceDevice();
const data = X.makeBlobs({ rows: 12, features: 6, classes: 3, seed: 4 });
const X64 = data.x.astype('float64');

function rowsOf(a: NDArray, idx: readonly number[]): NDArray {
  const w = a.size / a.shape[0]!;
  const out = new NDArray(a.dtype, [idx.length, ...a.shape.slice(1)]);
  idx.forEach((r, i) => out.data.set(a.data.subarray(r * w, (r + 1) * w), i * w));
  return out;
}

/** A 6-5-3 ReLU network on `x` and `y` (inputs, or sliceable shared variables for batchS). */
function model(dtype: 'float32' | 'float64', seed = 3, x: T.Variable = T.matrix('x', dtype), y: T.Variable = T.vector('y', 'int32')) {
  const l1 = X.dense(6, 5, { rng: new X.Rng(seed), dtype, activation: 'relu' });
  const l2 = X.dense(5, 3, { rng: new X.Rng(seed + 1), dtype });
  return { x, y, params: [...l1.params, ...l2.params], loss: X.crossEntropy(l2.apply(l1.apply(x)), y) };
}

/** One device on the whole batch, float64 on the reference device. */
function oracle(rule: FusedRuleName) {
  const m = model('float64');
  const opt = X.makeOptimizer(rule, m.params, { loss: m.loss }, HYPER[rule]);
  const g = T.fn({ inputs: [m.x, m.y], outputs: m.loss, updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]), device: REF });
  const u = T.fn({ updates: opt.paramUpdates, device: REF });
  return { m, step: (rows: readonly number[]) => { const l = (g(rowsOf(X64, rows), rowsOf(data.y, rows)) as NDArray).item(); u(); return l; } };
}

// Uneven (7 rows over 3 ranks: 2, 3, 2), a rank with no rows (2 rows), everything, and an index list.
const BATCHES: number[][] = [[6, 0, 3, 3, 1, 9, 2], [4, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [11, 7, 5, 3, 1, 0, 2, 10]];

describe('column split on 3 CPU workers: split and unsplit against one device', () => {
  before(async () => { await synk.fork({ n: 3, devices: 'cpu' }); });
  after(async () => { await synk.close(); });

  for (const rule of RULES) {
    it(`${rule}: columnSplit 'on' and 'off' both equal the float64 reference on the whole batch (uneven rows, empty rank, index lists)`, async () => {
      const ref = oracle(rule);
      const runs = (['on', 'off'] as const).map((columnSplit) => {
        const m = model('float32');
        return { m, columnSplit, train: X.makeTrainFunction(m.loss, m.params, [m.x, m.y], rule, { ...HYPER[rule], columnSplit }) };
      });
      const xs = synk.data(data.x);
      const ys = synk.data(data.y);
      for (const [k, batch] of BATCHES.entries()) {
        const want = ref.step(batch);
        for (const { m, columnSplit, train } of runs) {
          const loss = await train(xs, ys, { batch });
          assert.ok(Math.abs(loss - want) < 1e-4, `${rule} ${columnSplit} step ${k}: loss ${loss} vs ${want}`);
          assert.equal(train.timings()!.columnSplit, columnSplit === 'on' ? 2 : 0, `${rule} ${columnSplit}: weights split`);
          m.params.forEach((p, i) => assertAllClose(p.getValue().astype('float64'), ref.m.params[i]!.getValue(), { rtol: 2e-4, atol: 2e-5 },
            `${rule} ${columnSplit} step ${k} param ${i}`));
        }
      }
    });
  }

  it('batchS and numSlices: the split where a step can (batchS), the row split with slices; both equal one device', async () => {
    const xs = T.shared(new NDArray('float32', [0, 6]), { name: 'Xs' });
    const ys = T.shared(new NDArray('int32', [0]), { name: 'Ys' });
    const m = model('float32', 3, xs, ys);
    const ref = oracle('adam');
    const x9 = rowsOf(data.x, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const y9 = rowsOf(data.y, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const train = X.makeTrainFunction(m.loss, m.params, [], 'adam', { ...HYPER.adam, sliceableShareds: [xs, ys], columnSplit: 'on' });
    await synk.scatter([xs, ys], [x9, y9]);
    const cases: [Record<string, unknown>, number[], number][] = [
      [{ batchS: { start: 0, stop: 2 } }, [0, 1, 3, 4, 6, 7], 2],
      [{ batchS: [[0, 1, 2], [1], []] }, [0, 1, 2, 4], 2],
      [{ batchS: { start: 0, stop: 3 }, numSlices: 2 }, [0, 1, 2, 3, 4, 5, 6, 7, 8], 0],
    ];
    for (const [call, rows, splitWeights] of cases) {
      const got = await train(call);
      const want = ref.step(rows);
      assert.ok(Math.abs(got - want) < 1e-4, `${JSON.stringify(call)}: loss ${got} vs ${want}`);
      assert.equal(train.timings()!.columnSplit, splitWeights, `${JSON.stringify(call)}: weights split`);
      m.params.forEach((p, i) => assertAllClose(p.getValue().astype('float64'), ref.m.params[i]!.getValue(), { rtol: 2e-4, atol: 2e-5 },
        `${JSON.stringify(call)} param ${i}`));
    }
  });

  it('a failed split step (a label out of range on one rank) changes nothing; the next one runs', async () => {
    const m = model('float32', 9);
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { ...HYPER.adam, columnSplit: 'on' });
    await train(data.x, data.y);
    const before = [...m.params, ...train.optimizer.slots].map((s) => s.getValue());
    const bad = data.y.copy();
    bad.data[11] = 7;
    await assert.rejects(train(data.x, bad), /rank 2/);
    [...m.params, ...train.optimizer.slots].forEach((s, i) => assertAllClose(s.getValue(), before[i]!, { rtol: 0, atol: 0 }, `value ${i}`));
    assert.ok(Number.isFinite(await train(data.x, data.y)));
    assert.equal(train.timings()!.columnSplit, 2);
  });

  it('a product over other rows than the batch\'s (a dense layer on [rows, 2, 3] inputs) falls back to the row split and equals one device', async () => {
    const build = (dtype: 'float32' | 'float64') => {
      const x = T.tensor({ dtype, ndim: 3, name: 'x3' });
      const y = T.vector('y', 'int32');
      const random = rng(5);
      const w = T.shared(new NDArray('float64', [3, 4], Float64Array.from({ length: 12 }, () => random() - 0.5)).astype(dtype), { name: 'w' });
      const l2 = X.dense(8, 3, { rng: new X.Rng(6), dtype });
      // x·w contracts the last axis: one product over rows·2 rows, so its gradient's operands have twice the batch's rows.
      const h = T.reshape(T.tanh(T.dot(x, w)), [T.shapeOf(x)[0]!, 8]);
      return { x, y, params: [w, ...l2.params], loss: X.crossEntropy(l2.apply(h), y) };
    };
    const m = build('float32');
    const r = build('float64');
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'sgd', { learningRate: 0.5, columnSplit: 'on' });
    const opt = X.makeOptimizer('sgd', r.params, { loss: r.loss }, { learningRate: 0.5 });
    const g = T.fn({ inputs: [r.x, r.y], outputs: r.loss, updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]), device: REF });
    const u = T.fn({ updates: opt.paramUpdates, device: REF });
    const x3 = new NDArray('float32', [12, 2, 3], data.x.data.slice(0, 72) as Float32Array);
    for (let k = 0; k < 2; k++) {
      const loss = await train(x3, data.y);
      const want = (g(x3.astype('float64'), data.y) as NDArray).item();
      u();
      assert.ok(Math.abs(loss - want) < 1e-4, `step ${k}: loss ${loss} vs ${want}`);
      assert.equal(train.timings()!.columnSplit, 0, 'the function no longer splits');
    }
    m.params.forEach((p, i) => assertAllClose(p.getValue().astype('float64'), r.params[i]!.getValue(), { rtol: 2e-4, atol: 2e-5 }, `param ${i}`));
  });
});
