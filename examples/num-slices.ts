// The `numSlices` call option (the original's demo_1 second half and its validation pattern): each
// worker runs its part in k pieces (to bound memory) and combines the pieces' outputs by their reduce
// ops before the workers reduce once. Updates are computed from the original values in every piece
// and combined by their own op. Run: node dist/examples/num-slices.js
import assert from 'node:assert/strict';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { assertClose, many, randn, sliceRows } from './_common.js';
import { parseWorkers } from './_cli.js';
import { plural } from '../src/extensions/plural.js';

const workers = parseWorkers('num-slices',
  "The call option 'numSlices': each worker runs its part in pieces to bound memory; outputs and updates combine by their reduce ops.");
const n = await synk.fork({ n: workers });
try {
  console.log(`forked ${plural(n, 'worker')}`);
  const ROWS = 60 * n; // 60 rows per worker
  const x = T.matrix('x');
  const y = T.matrix('y');
  const prod = x.dot(y);
  const f = synk.fn({
    inputs: [x], bcastInputs: [y],
    outputs: [T.mean(prod, 0), [T.sum(prod, 0), 'sum'], [T.prod(x, 0), 'prod'], [T.max(prod, 0), 'max'], [T.min(prod, 0), 'min'], [prod.sum(1), 'gather']],
  });
  const ops = ['avg', 'sum', 'prod', 'max', 'min', 'gather'];
  // Values near 1 keep the product of all rows finite.
  const xDat = randn([ROWS, 10], 1, 0.01);
  xDat.data.forEach((v, i) => { xDat.data[i] = 1 + v; });
  const yDat = randn([10, 5], 2);
  const [xSynk, ySynk] = f.buildInputs(xDat, yDat);
  const want = many(f.local(xDat, yDat));

  // Outputs: any number of slices, even ones that do not divide a worker's rows, give the same result.
  for (const numSlices of [1, 2, 7, 60]) {
    const got = many(await f(xSynk!, ySynk!, { numSlices }));
    got.forEach((g, i) => assertClose(g, want[i]!, `numSlices ${numSlices}, output ${i} (${ops[i]})`, { rtol: 1e-4, atol: 1e-6 }));
    console.log(`numSlices ${numSlices}: outputs reduced by ${ops.join(', ')} equal the single-device result`);
  }
  const sub = many(await f(xSynk!, ySynk!, { batch: { start: 5, stop: 50 }, numSlices: 4 }));
  const subWant = many(f.local(sliceRows(xDat, 5, 50), yDat));
  sub.forEach((g, i) => assertClose(g, subWant[i]!, `batch 5..50 with numSlices 4, output ${i}`, { rtol: 1e-4, atol: 1e-6 }));
  console.log('numSlices 4 on a batch of rows 5..50: equals the single-device result on those rows');

  // Updates with ops: each piece computes its update from the original value; pieces combine by op.
  // (Each update reads its own variable: running count, mean, max, min and product.)
  const count = T.shared(0, { name: 'count' });
  const mean = T.shared(new T.NDArray('float32', [10]), { name: 'mean' });
  const hi = T.shared(0, { name: 'hi' });
  const lo = T.shared(0, { name: 'lo' });
  const pr = T.shared(T.NDArray.full([10], 1, 'float32'), { name: 'pr' });
  const rows = x.shape[0]!.cast('float32');
  const u = synk.fn({
    inputs: [x],
    updates: [
      [count, count.add(rows), 'sum'],
      [mean, mean.add(T.mean(x, 0)), 'avg'],
      [hi, T.maximum(hi, T.max(x)), 'max'],
      [lo, T.minimum(lo, T.min(x)), 'min'],
      [pr, pr.mul(T.prod(x, 0)), 'prod'],
    ],
  });
  // The same statistics on one device, for the rows of one worker.
  const stats = T.fn({ inputs: [x], outputs: [rows, T.mean(x, 0), T.max(x), T.min(x), T.prod(x, 0)] });
  const shareds = [count, mean, hi, lo, pr];
  const per = ROWS / n; // an even split: worker r holds rows [r * per, (r + 1) * per)
  for (const numSlices of [1, 3, 7]) {
    await synk.broadcast(shareds, [0, new T.NDArray('float32', [10]), 0, 10, T.NDArray.full([10], 1, 'float32')]); // values near 1: lo starts above them
    await u(xSynk!, { numSlices });
    for (let r = 0; r < n; r++) {
      const values = many(await synk.getValue(r, shareds));
      const expected = many(stats(sliceRows(xDat, r * per, (r + 1) * per)));
      ['count (sum)', 'mean (avg)', 'hi (max)', 'lo (min)', 'pr (prod)'].forEach((what, i) => {
        assertClose(values[i]!, expected[i]!, `numSlices ${numSlices}, rank ${r}, update ${what}`, { rtol: 1e-4, atol: 1e-6 });
      });
    }
    console.log(`numSlices ${numSlices}: each worker's updates (count by sum, mean by avg, hi by max, lo by min, pr by prod) equal one device on that ` +
      `worker's rows`);
  }
  // Updates stay local: combine them explicitly with collectives.
  await synk.allReduce(count, { op: 'sum' });
  await synk.allReduce(mean, { op: 'avg' });
  assert.equal(count.getValue().item(), ROWS);
  assertClose(mean.getValue(), many(T.fn({ inputs: [x], outputs: T.mean(x, 0) })(xDat))[0]!, 'all-reduced mean', { rtol: 1e-4 });
  console.log(`after allReduce: count ${count.getValue().item()} (all rows) and the mean over all rows`);

  // Starting from a non-zero value, 'sum' adds the original once per piece: k * c + rows.
  await synk.broadcast(count, 1000);
  await u(xSynk!, { numSlices: 3 });
  const c0 = (many(await synk.getValue(0, count))[0]!).item();
  console.log(`count from 1000 with numSlices 3 on rank 0: ${c0} (= 3 * 1000 + ${per}: every piece starts from the original)`);
  assert.equal(c0, 3 * 1000 + per);
  console.log('\nnumSlices: OK');
} finally {
  await synk.close();
}
