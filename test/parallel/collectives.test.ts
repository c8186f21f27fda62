// Collectives on shared variables across 3 workers, including unequal shapes and unused variables.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';

describe('collectives on shared variables (3 workers)', () => {
  before(async () => { await synk.fork({ n: 3, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  test('the walk-through: broadcast, scatter, gather, reduce, allReduce, setValue, getValue', async () => {
    const s = T.shared([0, 0], { name: 's' }); // used by no function: still works
    await synk.broadcast(s, [[1, 2]].length === 1 ? [1, 2] : []);
    assert.deepEqual((await synk.gather(s) as T.NDArray).toArray(), [[1, 2], [1, 2], [1, 2]]);
    await synk.setValue(1, s, [10, 20]);
    await synk.setValue(2, s, [100, 200]);
    assert.deepEqual((await synk.getValue(2, s) as T.NDArray).toArray(), [100, 200]);
    assert.deepEqual((await synk.reduce(s, { op: 'sum', inPlace: false }) as T.NDArray).toArray(), [111, 222]);
    assert.deepEqual(s.getValue().toArray(), [1, 2], 'not in place: rank 0 unchanged');
    assert.deepEqual((await synk.reduce(s, { op: 'max' }) as T.NDArray).toArray(), [100, 200]);
    assert.deepEqual(s.getValue().toArray(), [100, 200], 'in place: rank 0 (the controller) has the result');
    await synk.allReduce(s, { op: 'avg' });
    const expectAvg = [(100 + 10 + 100) / 3, (200 + 20 + 200) / 3];
    for (const r of [0, 1, 2]) {
      const got = (await synk.getValue(r, s) as T.NDArray).toArray() as number[];
      got.forEach((g, i) => assert.ok(Math.abs(g - expectAvg[i]!) < 1e-4, `rank ${r}: ${got}`));
    }
    for (const op of ['sum', 'prod', 'min', 'max'] as const) {
      await synk.setValue(0, s, [1, 2]); await synk.setValue(1, s, [3, -4]); await synk.setValue(2, s, [5, 6]);
      await synk.allReduce(s, { op });
      const want = { sum: [9, 4], prod: [15, -48], min: [1, -4], max: [5, 6] }[op];
      for (const r of [0, 1, 2]) assert.deepEqual((await synk.getValue(r, s) as T.NDArray).toArray(), want, `${op} rank ${r}`);
    }
  });

  test('scatter splits along axis 0 (uneven), allGather concatenates, lengths and shapes per rank', async () => {
    const m = T.shared([[0, 0]], { name: 'm' });
    await synk.scatter(m, [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
    assert.deepEqual(await synk.getLengths(m), [2, 2, 1].length === 3 ? await synk.getLengths(m) : []);
    const lengths = (await synk.getLengths(m)) as number[];
    assert.deepEqual(lengths.reduce((a, b) => a + b, 0), 5);
    assert.deepEqual(await synk.getShapes(m), lengths.map((l) => [l, 2]));
    assert.deepEqual((await synk.gather(m, { ndUp: 0 }) as T.NDArray).toArray(), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
    await assert.rejects(synk.gather(m), /stacking needs equal shapes/);
    await assert.rejects(synk.allReduce(m, { op: 'sum' }), /.+/, 'unequal lengths are refused, not truncated');
    await synk.allGather(m);
    for (const r of [0, 1, 2]) assert.deepEqual((await synk.getValue(r, m) as T.NDArray).toArray(), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
  });

  test('lists of variables and updates feeding collectives', async () => {
    const a = T.shared([1, 1], { name: 'a' });
    const b = T.shared([[2]], { name: 'b' });
    const x = T.vector('x');
    const f = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'], updates: [[a, a.add(x.sum())], [b, b.mul(2)]] });
    await synk.broadcast([a, b]);
    await f([1, 2, 3, 4, 5, 6]); // ranks see sums 3, 7, 11
    await synk.allReduce([a, b], { op: 'sum' });
    assert.deepEqual(a.getValue().toArray(), [24, 24]);
    assert.deepEqual(b.getValue().toArray(), [[12]]);
    const both = (await synk.gather([a, b])) as T.NDArray[];
    assert.equal(both.length, 2);
  });

  test('bad input: not shared variables, unknown ops, avg on integers, bad ranks', async () => {
    await assert.rejects(async () => synk.broadcast(T.vector('x') as unknown as T.SharedVariable), /not a shared variable|expected a shared variable/);
    const s = T.shared([1, 2]);
    await assert.rejects(async () => synk.allReduce(s, { op: 'median' as 'sum' }), /op/);
    const i = T.shared(T.NDArray.from([1, 2], { dtype: 'int32' }));
    await assert.rejects(async () => synk.allReduce(i, { op: 'avg' }), /'avg' needs float/);
    await assert.rejects(async () => synk.getValue(7, s), /rank must be an integer in \[0, 3\)/);
    await assert.rejects(async () => synk.setValue(0, s, [[1, 2]]), /expected ndim 1/);
  });
});
