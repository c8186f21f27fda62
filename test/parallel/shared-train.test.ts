// The shared-state training step (makeTrainFunction on CPU workers): one copy of the parameters in
// shared memory for every rank, the fused rules against their symbolic versions, the per-rank
// access rules, and a failed step that changes nothing; the WebAssembly SIMD kernels against the
// JavaScript ones (bit for bit in float64 arithmetic, within float32 rounding in float32).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { FUSED_RULES, type FusedRuleName } from '../../src/parallel/fused-rules.js';
import { CONTROL, SharedStep, shardOf, type SharedStepPlan } from '../../src/parallel/shared-step.js';
import { commitSharedState } from '../../src/parallel/shared-state.js';
import { SimdKernels, allocateSharedMemory, ensureMemoryBytes, simdSupported, type SimdLayout } from '../../src/parallel/fused-simd.js';
import { SharedStepStorage } from '../../src/parallel/shared-layout.js';
import { setSharedStepKernels } from '../../src/parallel/shared-train.js';
import { assertAllClose, rng } from '../helpers/allclose.js';

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

  // The SIMD kernels on the same flow: float64 bit-level close like the JS kernel; float32 layouts within float32 rounding.
  for (const layout of ['f64', 'f32-exact', 'f32'] as const) {
    it(`SIMD ${layout}: every rule's kernel follows the symbolic rule over several steps`, { skip: !simdSupported() }, () => {
      for (const rule of Object.keys(FUSED_RULES) as FusedRuleName[]) {
        const data = X.makeBlobs({ rows: 12, features: 6, classes: 3, seed: 3 });
        const sym = model(5, 'float64');
        const opt = X.makeOptimizer(rule, sym.params, { loss: sym.loss }, HYPER[rule]);
        const g = T.fn({ inputs: [sym.x, sym.y], updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]), device: REF });
        const u = T.fn({ updates: opt.paramUpdates, device: REF });
        const flatOf = (vs: readonly T.SharedVariable[]) => vs.flatMap((v) => [...v.getValue().data]);
        const n = flatOf(sym.params).length;
        const View = layout === 'f64' ? Float64Array : Float32Array;
        const b = View.BYTES_PER_ELEMENT;
        const nState = FUSED_RULES[rule].state.length;
        // p, the state vectors, then the gradient, 1 KiB apart (n < 100 here)
        const memory = allocateSharedMemory(65536)!;
        const at = (k: number) => k * 1024;
        const view = (k: number) => new View(memory.buffer as unknown as ArrayBuffer, at(k), n);
        view(0).set(flatOf(sym.params));
        const kernels = new SimdKernels(memory, rule, layout);
        const hyper = FUSED_RULES[rule].hyper.map((h) => opt.hyper[h]!.getValue().item());
        for (let t = 1; t <= 4; t++) {
          g(data.x.astype('float64'), data.y);
          const flat = opt.flatGrad.getValue().data as Float64Array;
          view(1 + nState).set(flat.subarray(0, n));
          kernels.prepare(hyper, t, 1 / flat[flat.length - 1]!);
          kernels.update(at(0), at(1 + nState), Array.from({ length: nState }, (_, k) => at(1 + k)), 0, n);
          u();
          const got = new NDArray('float64', [n], Float64Array.from(view(0)));
          const want = new NDArray('float64', [n], Float64Array.from(flatOf(sym.params)));
          assertAllClose(got, want, layout === 'f64' ? { rtol: 1e-12, atol: 1e-14 } : { rtol: 2e-5, atol: 2e-6 }, `${rule} step ${t}`);
        }
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

const HYPER_VALUES: Record<FusedRuleName, number[]> = {
  sgd: [0.5], momentum: [0.3, 0.9], nesterovMomentum: [0.3, 0.9], adagrad: [0.3, 1e-6], rmsprop: [0.05, 0.9, 1e-6], adadelta: [1, 0.95, 1e-6],
  adam: [0.05, 0.9, 0.999, 1e-8], adamax: [0.002, 0.9, 0.999, 1e-8], adamw: [0.05, 0.9, 0.999, 1e-8, 0.01],
};

/** A plan as a training function lays it out (one memory with SIMD kernels, or separate buffers); its ranks run in this thread. */
function standalonePlan(rule: FusedRuleName, dtype: 'float32' | 'float64', size: number, paramEnd: number, weightIndex: number, simd: SimdLayout | null) {
  const mode = simd === null ? 'off' : simd === 'f32-exact' ? 'exact' : 'fast';
  const plan = new SharedStepStorage(rule, dtype, paramEnd, weightIndex, mode).planFor(1, size);
  assert.equal(plan.simd, simd);
  return plan;
}

/** Runs one shared step of `plan` with every rank in this thread on seeded data; returns [values, state..., reduced]. */
function runStandalone(plan: SharedStepPlan, seed: number, step: number): Float64Array[] {
  const random = rng(seed);
  const ranks = Array.from({ length: plan.size }, (_, r) => new SharedStep(plan, r));
  const values = ranks[0]!.slot(0).constructor === Float32Array ? Float32Array : Float64Array;
  const control = new Float64Array(plan.control);
  HYPER_VALUES[plan.rule as FusedRuleName].forEach((h, i) => (control[CONTROL.hyper + i] = h));
  control[CONTROL.step] = step;
  const p = new values(plan.values as unknown as ArrayBuffer, plan.valuesAt, plan.weightIndex);
  const state = plan.state.map((s, k) => new values(s as unknown as ArrayBuffer, plan.stateAt[k]!, plan.paramEnd));
  for (let i = 0; i < p.length; i++) p[i] = random() * 2 - 1;
  for (const s of state) for (let i = 0; i < s.length; i++) s[i] = random();
  ranks.forEach((rank, r) => {
    const flat = new values(plan.length).map(() => random() * 4 - 2);
    flat[plan.weightIndex] = r === 1 ? 0 : 3 + r; // rank 1 had no rows
    rank.contribute(flat);
  });
  for (const rank of ranks) rank.reduceAndUpdate(0);
  return [p, ...state, ranks[0]!.slot(0)].map((a) => Float64Array.from(a));
}

describe('shared step: WebAssembly SIMD kernels against the JavaScript kernels', { skip: !simdSupported() }, () => {
  const cases: [number, number, number][] = [[1, 5, 5], [2, 37, 40], [3, 16, 16], [5, 1003, 1010], [16, 9000, 9003], [4, 20000, 20000]];
  for (const rule of Object.keys(FUSED_RULES) as FusedRuleName[]) {
    it(`${rule}: float64 and exact float32 SIMD equal the JavaScript kernels bit for bit; fast float32 within float32 rounding`, () => {
      cases.forEach(([size, paramEnd, weightIndex], j) => {
        for (const [dtype, layout] of [['float64', 'f64'], ['float32', 'f32-exact'], ['float32', 'f32']] as const) {
          const js = runStandalone(standalonePlan(rule, dtype, size, paramEnd, weightIndex, null), 100 + j, 1 + j);
          const simd = runStandalone(standalonePlan(rule, dtype, size, paramEnd, weightIndex, layout), 100 + j, 1 + j);
          const what = `${rule} ${layout} size ${size} params ${paramEnd}`;
          js.forEach((want, k) => {
            const tol = layout === 'f32' && k < js.length - 1 ? { rtol: 1e-5, atol: 1e-6 } : { rtol: 0, atol: 0 }; // the sum is exact in every layout
            assertAllClose(new NDArray('float64', [want.length], simd[k]!), new NDArray('float64', [want.length], want), tol, `${what} array ${k}`);
          });
        }
      });
    });
  }

  it('the plan of a training function puts parameters, state and arena in one shared memory', () => {
    const plan = standalonePlan('adam', 'float32', 2, 10, 12, 'f32');
    assert.ok(plan.memory && plan.values === plan.arena && plan.state.every((s) => s === plan.values));
    assert.equal(new SharedStep(plan, 0).usesSimd, true);
    assert.equal(new SharedStep(standalonePlan('adam', 'float32', 2, 10, 12, null), 0).usesSimd, false);
    // A memory never grows past 4 GiB: a fork whose arena would not fit gets its own buffer and the JS kernels.
    const memory = plan.memory;
    assert.equal(ensureMemoryBytes(memory, 2 ** 32 + 64), false);
    assert.equal(ensureMemoryBytes(memory, memory.buffer.byteLength + 1), true);
    assert.equal(memory.buffer.byteLength % 65536, 0);
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
    assert.equal(train.timings()!.simd, simdSupported(), 'the ranks sum and update with the SIMD kernels where the engine has them');
    // Every rank's own clock of the last step: it began after the controller's call did and took some time.
    const ranks = train.timings()!.ranks;
    assert.equal(ranks.length, 3);
    for (const [r, t] of ranks.entries()) {
      assert.ok(t.startMs >= 0 && t.startMs < 10_000, `rank ${r} started ${t.startMs} ms after the call`);
      assert.ok(t.gradientMs > 0 && t.waitMs >= 0, `rank ${r}: gradient ${t.gradientMs} ms, wait ${t.waitMs} ms`);
    }
    assert.equal(ranks[0]!.gradientMs, train.timings()!.gradientMs, 'rank 0 is the one the summary reports');
    m.params.forEach((p, i) => assertAllClose(p.getValue().astype('float64'), ref.params[i]!.getValue(), { rtol: 1e-4, atol: 1e-5 }, `param ${i}`));
    // Every rank reads the same memory, so every rank's value is the controller's.
    for (let rank = 0; rank < 3; rank++) {
      const got = (await synk.getValue(rank, m.params[0]!)) as NDArray;
      assertAllClose(got, m.params[0]!.getValue(), { rtol: 0, atol: 0 }, `rank ${rank}`);
    }
    assert.equal(train.optimizer.slots[0]!.getValue().item(), 5, 'the step counter counts the steps');
  });

  it('on workers, exact SIMD kernels give the JS kernels\' values bit for bit (float32 and float64), fast ones within float32 rounding', async () => {
    const data = X.makeBlobs({ rows: 30, features: 6, classes: 3, seed: 5 });
    const trainWith = async (mode: 'fast' | 'exact' | 'off', dtype: 'float32' | 'float64', rule: 'adam' | 'momentum') => {
      const previous = setSharedStepKernels(mode);
      try {
        const m = model(13, dtype);
        const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], rule, { learningRate: 0.02 });
        for (let k = 0; k < 4; k++) await train(data.x.astype(dtype), data.y);
        assert.equal(train.timings()!.simd, mode !== 'off' && simdSupported(), `${mode} ${dtype}: kernels`);
        return [...m.params, ...train.optimizer.slots].map((v) => v.getValue().astype('float64'));
      } finally {
        setSharedStepKernels(previous);
      }
    };
    for (const rule of ['adam', 'momentum'] as const) {
      for (const dtype of ['float32', 'float64'] as const) {
        const js = await trainWith('off', dtype, rule);
        const exact = await trainWith(dtype === 'float64' ? 'fast' : 'exact', dtype, rule);
        js.forEach((want, i) => assertAllClose(exact[i]!, want, { rtol: 0, atol: 0 }, `${rule} ${dtype} value ${i}`));
      }
      const js = await trainWith('off', 'float32', rule);
      const fast = await trainWith('fast', 'float32', rule);
      js.forEach((want, i) => assertAllClose(fast[i]!, want, { rtol: 1e-4, atol: 1e-6 }, `${rule} fast float32 value ${i}`));
    }
    assert.throws(() => setSharedStepKernels('simd' as 'fast'), /expected 'fast', 'exact' or 'off'/);
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

