// The `batch` call option (the original's demo_4): select rows of the whole data set before the
// scatter: the first n rows, a range, or a list of row indices (shuffling); each worker gathers its
// own rows from shared memory. Run: node dist/examples/batch.js
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { assertClose, many, randint, randn, rng, rowsOf, sliceRows } from './_common.js';
import { parseWorkers } from './_cli.js';
import { plural } from '../src/extensions/plural.js';

/** What `batch` accepts (the call options' batch). */
type Batch = number | { start?: number; stop?: number } | readonly number[] | Int32Array;

const workers = parseWorkers('batch',
  "The call option 'batch': rows of a data set in shared memory selected before the scatter (first n, a range, an index list, shuffled minibatches).");
const n = await synk.fork({ n: workers });
try {
  console.log(`forked ${plural(n, 'worker')}`);
  const x = T.matrix('x');
  const y = T.matrix('y');
  const z = T.mean(x.dot(y), 0);
  // The mean is reduced by 'avg' (weighted by rows); the per-row products are gathered in batch order.
  const f = synk.fn({ inputs: [x], bcastInputs: [y], outputs: [z, [x.dot(y), 'gather']] });

  const xDat = randn([1000, 10], 1, 0.01);
  const yDat = randn([10, 5], 2);
  const [xSynk, ySynk] = f.buildInputs(xDat, yDat);

  const check = async (what: string, batch: Batch, rows: T.NDArray): Promise<void> => {
    const got = many(await f(xSynk!, ySynk!, { batch }));
    const want = many(f.local(rows, yDat));
    assertClose(got[0]!, want[0]!, `${what}: mean`);
    assertClose(got[1]!, want[1]!, `${what}: gathered rows`);
    console.log(`batch ${what}: ${rows.shape[0]} rows, equals the single-device result on those rows`);
  };

  await check('100 (the first 100 rows)', 100, sliceRows(xDat, 0, 100));
  await check('{ start: 10, stop: 100 }', { start: 10, stop: 100 }, sliceRows(xDat, 10, 100));
  await check('{ start: 100, stop: 1000 }', { start: 100, stop: 1000 }, sliceRows(xDat, 100, 1000));
  await check('{ start: 995 } (to the end; uneven over the workers)', { start: 995 }, sliceRows(xDat, 995, 1000));
  const list = randint(999, 100, 3); // random rows, repeats allowed
  await check('[100 random indices]', list, rowsOf(xDat, list));

  // A shuffled epoch: a permutation of all rows, in minibatches of 128 (Int32Array selections).
  const perm = Int32Array.from({ length: 1000 }, (_, i) => i);
  const r = rng(4);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  let weighted = new Float64Array(5);
  for (let start = 0; start < perm.length; start += 128) {
    const idx = perm.subarray(start, Math.min(start + 128, perm.length));
    const got = many(await f(xSynk!, ySynk!, { batch: idx }));
    const want = many(f.local(rowsOf(xDat, [...idx]), yDat));
    assertClose(got[0]!, want[0]!, `shuffled minibatch at ${start}: mean`);
    assertClose(got[1]!, want[1]!, `shuffled minibatch at ${start}: gathered rows in shuffled order`);
    weighted = weighted.map((w, k) => w + got[0]!.data[k]! * idx.length);
  }
  const epochMean = T.NDArray.from(Array.from(weighted, (w) => w / 1000));
  assertClose(epochMean, many(f.local(xDat, yDat))[0]!, 'epoch mean over shuffled minibatches', { rtol: 1e-4 });
  console.log('a shuffled epoch in 8 minibatches of up to 128 rows (Int32Array batches) equals the single-device results');
  console.log('\nbatch: OK');
} finally {
  await synk.close();
}
