// N-worker results equal the single-device result, for every reduce op, batch mode and slicing.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { splitPoints } from '../../src/parallel/split.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

const N = 3;
const ROWS = 7; // uneven over 3 ranks: 2, 3, 2

describe('synk.fn on 3 workers', () => {
  before(async () => { await synk.fork({ n: N, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  const x = T.matrix('x');
  const v = T.vector('v');
  const rowSums = x.sum(1).mul(v.sum());
  const X = randomArray([ROWS, 4], 11, { dtype: 'float32', lo: 0.5, hi: 1.5 });
  const V = T.NDArray.from([1, 2], { dtype: 'float32' });
  const f = synk.fn({
    inputs: [x], bcastInputs: [v],
    outputs: [
      [rowSums.mean(), 'avg'],
      [rowSums.sum(), 'sum'],
      [rowSums.prod(), 'prod'],
      [rowSums.max(), 'max'],
      [rowSums.min(), 'min'],
      [rowSums, 'gather'],
      [rowSums.mean(), 'none'],
    ],
  });

  function expectFor(rows: T.NDArray, noneRows: T.NDArray): T.NDArray[] {
    const local = f.local(rows, V) as T.NDArray[];
    const localNone = f.local(noneRows, V) as T.NDArray[];
    return [...local.slice(0, 6), localNone[6]!];
  }

  function rowsOf(a: T.NDArray, idx: readonly number[]): T.NDArray {
    const w = a.shape[1]!;
    const out = new T.NDArray(a.dtype, [idx.length, w]);
    idx.forEach((r, i) => out.data.set(a.data.subarray(r * w, (r + 1) * w), i * w));
    return out;
  }

  test('every output op equals one device on the whole batch (uneven parts)', async () => {
    const got = (await f(X, V)) as T.NDArray[];
    const p = splitPoints(ROWS, N);
    const expected = expectFor(X, rowsOf(X, [...Array(p[1]).keys()]));
    got.forEach((g, i) => assertAllClose(g, expected[i]!, { rtol: 1e-5 }, `output ${i}`));
  });

  test('batch: first n rows, a range, an index list (shuffle) and an Int32Array', async () => {
    const cases: [synk.SynkFn extends never ? never : unknown, number[]][] = [
      [5, [0, 1, 2, 3, 4]],
      [{ start: 2, stop: 7 }, [2, 3, 4, 5, 6]],
      [[6, 0, 3, 3, 1], [6, 0, 3, 3, 1]],
      [Int32Array.from([5, 4, 2, 1]), [5, 4, 2, 1]],
    ];
    for (const [batch, idx] of cases) {
      const got = (await f(X, V, { batch: batch as number })) as T.NDArray[];
      const p = splitPoints(idx.length, N);
      const expected = expectFor(rowsOf(X, idx), rowsOf(X, idx.slice(0, p[1])));
      got.forEach((g, i) => assertAllClose(g, expected[i]!, { rtol: 1e-5 }, `batch ${JSON.stringify(batch)} output ${i}`));
    }
  });

  test('minibatch Data is indexed from 0', async () => {
    const mb = synk.data(rowsOf(X, [0, 1, 2, 3]), { minibatch: true });
    const got = (await f(mb, V, { batch: { start: 3, stop: 7 } })) as T.NDArray[];
    const expected = f.local(rowsOf(X, [0, 1, 2, 3]), V) as T.NDArray[];
    assertAllClose(got[0]!, expected[0]!, { rtol: 1e-5 });
    assertAllClose(got[5]!, expected[5]!, { rtol: 1e-5 });
  });

  test('numSlices gives the same outputs; updates accumulate by their op from the original values', async () => {
    for (const k of [1, 2, 3]) {
      const got = (await f(X, V, { numSlices: k })) as T.NDArray[];
      const expected = f.local(X, V) as T.NDArray[];
      got.slice(0, 6).forEach((g, i) => assertAllClose(g, expected[i]!, { rtol: 1e-5 }, `k=${k} output ${i}`));
    }
    const counter = T.shared(0, { name: 'counter' });
    const seen = T.shared(0, { name: 'seen' });
    const g = synk.fn({
      inputs: [x],
      outputs: [[x.shape[0]!.cast('float32'), 'sum']],
      updates: [[counter, counter.add(x.sum()), 'sum'], [seen, seen.add(x.shape[0]!.cast('float32')), 'sum']],
    });
    const [rows] = (await g(X, { numSlices: 2 })) as T.NDArray[];
    assert.equal(rows!.item(), ROWS);
    // Rank 0 saw its 2 rows in 2 slices of 1 row: each slice's update starts from 0, sums accumulate.
    assert.equal(seen.getValue().item(), splitPoints(ROWS, N)[1]);
    const lengths = (await synk.getValue(1, seen)) as T.NDArray;
    assert.equal(lengths.item(), splitPoints(ROWS, N)[2]! - splitPoints(ROWS, N)[1]!);
  });

  test('outputSubset computes only the listed outputs', async () => {
    const got = (await f(X, V, { outputSubset: [3, 1] })) as T.NDArray[];
    const expected = f.local(X, V) as T.NDArray[];
    assert.equal(got.length, 2);
    assertAllClose(got[0]!, expected[3]!, { rtol: 1e-5 });
    assertAllClose(got[1]!, expected[1]!, { rtol: 1e-5 });
  });

  test('inputs by name, plain arrays copied into shared memory, buildInputs', async () => {
    const byName = (await f({ x: X, v: [1, 2] })) as T.NDArray[];
    const expected = f.local(X, V) as T.NDArray[];
    assertAllClose(byName[1]!, expected[1]!, { rtol: 1e-5 });
    const [dx, dv] = f.buildInputs(X, V);
    assert.ok(dx instanceof synk.Data && dv instanceof synk.Data);
    const viaData = (await f(dx!, dv!)) as T.NDArray[];
    assertAllClose(viaData[1]!, expected[1]!, { rtol: 1e-5 });
  });

  test('batchS selects rows of sliceable shareds resident on each rank', async () => {
    const table = T.shared(randomArray([6, 2], 3, { dtype: 'float32' }), { name: 'table' });
    const h = synk.fn({ outputs: [table.sum(1), 'gather'], sliceableShareds: [table] });
    const full = randomArray([9, 2], 4, { dtype: 'float32' });
    await synk.scatter(table, full); // each rank holds 3 rows
    const all = (await h()) as T.NDArray;
    assertAllClose(all, T.NDArray.from(Array.from({ length: 9 }, (_, r) => full.data[2 * r]! + full.data[2 * r + 1]!)), { rtol: 1e-6 });
    const picked = (await h({ batchS: [2, 0] })) as T.NDArray;
    const expect = [2, 0, 5, 3, 8, 6].map((r) => full.data[2 * r]! + full.data[2 * r + 1]!);
    assertAllClose(picked, expect, { rtol: 1e-6 });
    const perRank = (await h({ batchS: [{ start: 0, stop: 1 }, [2], { start: 1, stop: 3 }] })) as T.NDArray;
    assertAllClose(perRank, [0, 5, 7, 8].map((r) => full.data[2 * r]! + full.data[2 * r + 1]!), { rtol: 1e-6 });
    const sliced = (await h({ batchS: { start: 0, stop: 3 }, numSlices: 3 })) as T.NDArray;
    assertAllClose(sliced, all, { rtol: 1e-6 });
  });

  test('batchS with a rank of no rows, and batch and batchS index lists in one call', async () => {
    const table = T.shared(randomArray([6, 2], 5, { dtype: 'float32' }), { name: 'table2' });
    const full = randomArray([9, 2], 6, { dtype: 'float32' });
    await synk.scatter(table, full); // each rank holds 3 rows: global rows 3r .. 3r + 2
    const rowSum = (r: number) => full.data[2 * r]! + full.data[2 * r + 1]!;
    const avg = synk.fn({ outputs: [[table.sum(1).mean(), 'avg'], [table.sum(1), 'gather']], sliceableShareds: [table] });
    const [mean, rows] = (await avg({ batchS: [{ start: 0, stop: 2 }, { start: 0, stop: 0 }, [1]] })) as T.NDArray[];
    const picked = [0, 1, 7].map(rowSum);
    assertAllClose(mean!, picked.reduce((a, b) => a + b, 0) / 3, { rtol: 1e-5 });
    assertAllClose(rows!, picked, { rtol: 1e-6 });
    const both = synk.fn({ inputs: [x], outputs: [[x.sum().add(table.sum()), 'sum']], sliceableShareds: [table] });
    const batch = [6, 0, 3, 5, 1];
    const [got] = await both(X, { batch, batchS: [2, 0] });
    let expected = 0;
    for (const r of batch) for (let c = 0; c < 4; c++) expected += X.data[4 * r + c]!;
    for (let rank = 0; rank < N; rank++) for (const local of [2, 0]) expected += rowSum(3 * rank + local);
    assertAllClose(got!, expected, { rtol: 1e-5 });
  });

  test('Data reallocated between calls reaches the workers (fast path resends its handle)', async () => {
    const d = synk.data(rowsOf(X, [0, 1, 2]));
    const sumAll = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
    const total = (a: T.NDArray) => Array.from(a.data).reduce((p, q) => p + q, 0);
    assertAllClose((await sumAll(d)) as T.NDArray, total(rowsOf(X, [0, 1, 2])), { rtol: 1e-5 });
    d.setValue(X); // larger: reallocates
    assertAllClose((await sumAll(d)) as T.NDArray, total(X), { rtol: 1e-5 });
    d.set(0, [100, 100, 100, 100]); // in place: same buffer
    assertAllClose((await sumAll(d)) as T.NDArray, total(X) - total(rowsOf(X, [0])) + 400, { rtol: 1e-5 });
  });

  test('updated shared values are read from rank 0 only when asked', async () => {
    const acc = T.shared([0, 0, 0, 0], { name: 'acc' });
    const g = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'], updates: [[acc, acc.add(x.sum(0))]] });
    const rank0Rows = rowsOf(X, [...Array(splitPoints(ROWS, N)[1]).keys()]);
    await g(X);
    const pending = g(X);
    const before = acc.getValue(); // read before the call reaches the workers: the first call's result
    await pending;
    assertAllClose(
      before,
      Array.from({ length: 4 }, (_, j) => Array.from({ length: rank0Rows.shape[0]! }, (_, r) => rank0Rows.data[r * 4 + j]!).reduce((a, b) => a + b, 0)),
      { rtol: 1e-5 },
    );
    const expected = Array.from(
      { length: 4 },
      (_, j) => 2 * Array.from({ length: rank0Rows.shape[0]! }, (_, r) => rank0Rows.data[r * 4 + j]!).reduce((a, b) => a + b, 0),
    );
    assertAllClose(acc.getValue(), expected, { rtol: 1e-5 });
    assertAllClose((await synk.getValue(0, acc)) as T.NDArray, expected, { rtol: 1e-5 });
  });

  test('functions built after fork are distributed on first use; distribute() is idempotent', async () => {
    const late = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
    await synk.distribute();
    await synk.distribute();
    assertAllClose((await late(X)) as T.NDArray, Array.from(X.data).reduce((a, b) => a + b, 0), { rtol: 1e-5 });
  });
});
