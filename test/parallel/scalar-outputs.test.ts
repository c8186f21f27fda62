// Scalar outputs combined by the controller (scalar-outputs.ts): every op and dtype against an
// oracle written here (the shared-memory reduction's arithmetic: rank order, the dtype's rounding,
// identities for ranks without rows), and end to end against one device on the whole batch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { Accumulator } from '../../src/parallel/accumulate.js';
import { combinePartials, createPartials, scalarPlan, writePartials } from '../../src/parallel/scalar-outputs.js';
import type { FunctionSpec } from '../../src/parallel/protocol.js';
import { assertAllClose } from '../helpers/allclose.js';

type Op = 'sum' | 'prod' | 'max' | 'min' | 'avg';
type Dt = 'float32' | 'float64' | 'int32';
const round: Record<Dt, (x: number) => number> = { float32: Math.fround, float64: (x) => x, int32: (x) => x | 0 };
const identity = (op: Op): number => (op === 'prod' ? 1 : op === 'max' ? -Infinity : op === 'min' ? Infinity : 0);

function oracle(op: Op, dtype: Dt, parts: readonly ({ v: number; rows: number } | null)[]): number {
  if (op === 'avg') {
    let sum = 0;
    let rows = 0;
    for (const p of parts) if (p) { sum += round[dtype](p.v) * p.rows; rows += p.rows; }
    return round[dtype](sum / rows);
  }
  const id = dtype === 'int32' ? (op === 'max' ? -2147483648 : op === 'min' ? 2147483647 : identity(op)) : identity(op);
  const vals = parts.map((p) => (p ? round[dtype](p.v) : id));
  let acc = vals[0]!;
  for (const v of vals.slice(1)) {
    const next = op === 'sum' ? acc + v : op === 'prod' ? acc * v : op === 'max' ? Math.max(acc, v) : Math.min(acc, v);
    acc = round[dtype](next);
  }
  return acc;
}

describe('scalar outputs combined by the controller', () => {
  it('equals the oracle for every op and dtype, ranks without rows included', () => {
    const part = fc.option(fc.record({ v: fc.integer({ min: -100, max: 100 }).map((k) => k / 4), rows: fc.integer({ min: 1, max: 9 }) }), { nil: null });
    fc.assert(fc.property(
      fc.constantFrom<Op>('sum', 'prod', 'max', 'min', 'avg'), fc.constantFrom<Dt>('float32', 'float64', 'int32'),
      fc.array(part, { minLength: 2, maxLength: 6 }).filter((ps) => ps.some((p) => p !== null)),
      (op, dtype, parts) => {
        const int = dtype === 'int32';
        const given = parts.map((p) => (p && int ? { v: Math.trunc(p.v), rows: p.rows } : p));
        const partials = createPartials(given.length);
        given.forEach((p, rank) => {
          const acc = new Accumulator(op, 'output 0');
          if (p) acc.add(new T.NDArray(dtype, [], new (dtype === 'float32' ? Float32Array : dtype === 'float64' ? Float64Array : Int32Array)([p.v])), p.rows);
          writePartials(partials, rank, [acc]);
        });
        const [got] = combinePartials(partials, given.length, [op]);
        assert.equal(got!.dtype, dtype);
        assert.deepEqual(got!.shape, []);
        assert.equal(got!.item(), oracle(op, dtype, given), `${op} ${dtype} ${JSON.stringify(given)}`);
      },
    ), { seed: 20261203, numRuns: 400 });
  });

  it('refuses an output no rank computed, as the collective path does', () => {
    const partials = createPartials(3);
    for (let r = 0; r < 3; r++) writePartials(partials, r, [new Accumulator('sum', 'output 0')]);
    assert.throws(() => combinePartials(partials, 3, ['sum']), /output 0: no rank computed it \(every rank had zero rows\)/);
  });

  it('is chosen only for scalar outputs with combining ops, more than one rank and no updates', () => {
    const x = T.matrix('x');
    const w = T.shared(T.NDArray.full([2], 1, 'float64'), { name: 'w' });
    type Ops = FunctionSpec['outputOps'];
    const spec = (outputs: T.Variable[], ops: Ops, updateOps: FunctionSpec['updateOps'] = [], updates?: [T.SharedVariable, T.Variable][]) => {
      const f = T.fn({ inputs: [x], outputs, ...(updates ? { updates } : {}) });
      return { id: 1, description: f.describe(), nScattered: 1, nBroadcast: 0, sliceableIds: [], outputOps: ops, updateOps } satisfies FunctionSpec;
    };
    assert.deepEqual(scalarPlan(spec([x.sum(), x.max()], ['sum', 'max']), null, 2), ['sum', 'max']);
    assert.equal(scalarPlan(spec([x.sum()], ['sum']), null, 1), null);
    assert.equal(scalarPlan(spec([x.sum(0)], ['sum']), null, 2), null, 'a vector output');
    assert.equal(scalarPlan(spec([x.sum()], ['none']), null, 2), null);
    assert.equal(scalarPlan(spec([x.sum()], ['sum'], ['sum'], [[w, w.mul(2)]]), null, 2), null, 'a call with updates');
    assert.deepEqual(scalarPlan(spec([x.sum(0), x.sum()], ['sum', 'sum']), [1], 2), ['sum'], 'a subset of scalars');
  });
});

describe('scalar outputs end to end', () => {
  before(async () => { await synk.fork({ n: 3, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  it('every combining op equals one device on the whole batch, with ranks that have no rows', async () => {
    const x = T.matrix('x', 'float64');
    const rowSums = x.sum(1);
    const f = synk.fn({
      inputs: [x],
      outputs: [[x.sum(), 'sum'], [rowSums.max(), 'max'], [rowSums.min(), 'min'], [rowSums.mean(), 'avg'], [x.mean().add(1), 'prod']],
    });
    for (const rows of [2, 3, 7]) {
      const X = new T.NDArray('float64', [rows, 3], Float64Array.from({ length: rows * 3 }, (_, i) => Math.sin(i + 1)));
      const got = (await f(X)) as T.NDArray[];
      const sums = Array.from({ length: rows }, (_, r) => X.data[3 * r]! + X.data[3 * r + 1]! + X.data[3 * r + 2]!);
      const total = sums.reduce((a, b) => a + b, 0);
      // 'prod' multiplies each rank's (mean of its rows + 1): rows split as the runtime splits them.
      const cuts = [0, 1, 2, 3].map((k) => Math.round((rows * k) / 3));
      const prod = [0, 1, 2].map((k) => sums.slice(cuts[k]!, cuts[k + 1]!)).filter((s) => s.length > 0)
        .reduce((p, s) => p * (s.reduce((a, b) => a + b, 0) / (3 * s.length) + 1), 1);
      const expected = [total, Math.max(...sums), Math.min(...sums), total / rows, prod];
      got.forEach((g, i) => assertAllClose(g, new T.NDArray('float64', [], Float64Array.of(expected[i]!)), { rtol: 1e-12 }, `${rows} rows, output ${i}`));
    }
  });
});
