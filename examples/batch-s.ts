// The `batchS` call option (the original's demo_5): data scattered once into a sliceable shared
// variable stays resident on each worker; batchS selects rows of it on every worker, with one
// selection for all workers or one per worker, also combined with numSlices.
// Run: node dist/examples/batch-s.js
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { assertClose, concatRows, many, one, randint, randn, rowsOf, sliceRows } from './_common.js';
import { parseWorkers } from './_cli.js';
import { plural } from '../src/extensions/plural.js';

const workers = parseWorkers('batch-s',
  "The call option 'batchS': rows selected from data resident on each worker, with one selection for all workers or one per worker, also with numSlices.");
const n = await synk.fork({ n: workers });
try {
  console.log(`forked ${plural(n, 'worker')}`);
  const DAT = 200; // rows resident on each worker

  const sX = T.shared(new T.NDArray('float32', [DAT, 10]), { name: 's_x' });
  const sY = T.shared(new T.NDArray('float32', [10, 5]), { name: 's_y' });
  const prod = sX.dot(sY);
  const f = synk.fn({ outputs: [[T.sum(prod, 0), 'sum'], [prod, 'gather']], sliceableShareds: [sX] });

  const xDat = randn([DAT * n, 10], 1, 0.01);
  const yDat = randn([10, 5], 2);
  await synk.scatter(sX, xDat); // worker r holds rows [r * DAT, (r + 1) * DAT)
  await synk.broadcast(sY, yDat);
  console.log(`scattered ${DAT * n} rows: ${DAT} resident on each worker`);

  // The single-device function to check the math.
  const x = T.matrix('x');
  const y = T.matrix('y');
  const plain = T.fn({ inputs: [x, y], outputs: [T.sum(x.dot(y), 0), x.dot(y)] });
  /** The rows that selections pick on each worker, concatenated in rank order. */
  const picked = (perRank: (r: number) => number[]): T.NDArray =>
    concatRows(Array.from({ length: n }, (_, r) => rowsOf(xDat, perRank(r).map((i) => r * DAT + i))));
  const range = (start: number, stop: number): number[] => Array.from({ length: stop - start }, (_, i) => start + i);

  const slice1 = { start: 100, stop: 200 };
  const list2 = randint(DAT, 100, 3);
  const slices3 = Array.from({ length: n }, (_, r) => ({ start: r, stop: 100 + r }));
  const lists4 = Array.from({ length: n }, (_, r) => randint(DAT, 100, 10 + r));
  const cases: [string, synk.CallOptions['batchS'], T.NDArray][] = [
    ['one range for all workers { start: 100, stop: 200 }', slice1, picked(() => range(100, 200))],
    ['one index list for all workers', list2, picked(() => list2)],
    ['one range per worker', slices3, picked((r) => range(r, 100 + r))],
    ['one index list per worker', lists4, picked((r) => lists4[r]!)],
    ['an Int32Array for all workers', Int32Array.from([199, 0, 50, 7]), picked(() => [199, 0, 50, 7])],
  ];

  const all = many(await f());
  assertClose(all[0]!, many(plain(xDat, yDat))[0]!, 'no batchS: every resident row', { rtol: 1e-4 });
  assertClose(all[1]!, many(plain(xDat, yDat))[1]!, 'no batchS: gathered rows');
  console.log('without batchS every resident row is used: equals the single-device result');

  for (const numSlices of [1, 4]) {
    for (const [what, batchS, rows] of cases) {
      const got = many(await f({ batchS, numSlices }));
      const want = many(plain(rows, yDat));
      assertClose(got[0]!, want[0]!, `${what}, numSlices ${numSlices}: sum`, { rtol: 1e-4, atol: 1e-5 });
      assertClose(got[1]!, want[1]!, `${what}, numSlices ${numSlices}: gathered rows`);
      console.log(`batchS ${what}${numSlices > 1 ? `, numSlices ${numSlices}` : ''}: ${rows.shape[0]} rows, equals the single-device result`);
    }
  }

  // batch (on scattered inputs, before the scatter) and batchS (on resident rows) can be combined.
  const w = T.matrix('w');
  const g = synk.fn({ inputs: [w], outputs: [[T.sum(w.dot(sX.T), 0), 'gather']], sliceableShareds: [sX] });
  const wDat = randn([4 * n, 10], 4);
  const got = one(await g(wDat, { batchS: { start: 0, stop: 3 } }));
  const want = concatRows(Array.from({ length: n }, (_, r) => {
    const mine = sliceRows(wDat, 4 * r, 4 * r + 4);
    const resident = sliceRows(xDat, r * DAT, r * DAT + 3);
    const h = T.fn({ inputs: [x, y], outputs: T.sum(x.dot(y.T), 0) });
    return one(h(mine, resident));
  }));
  assertClose(got, want, 'scattered input with batchS on resident rows', { rtol: 1e-4, atol: 1e-6 });
  console.log('a scattered input together with batchS on the resident rows: equals the per-worker single-device results');
  console.log('\nbatchS: OK');
} finally {
  await synk.close();
}
