// Shared variables and their collectives (the original's example_1 and demo_3): every worker holds
// its own copy of each shared variable; updates apply locally; collectives move values explicitly.
// Every printed value is also asserted. Run: node dist/examples/shared-variables.js
import assert from 'node:assert/strict';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { assertClose, concatRows, one, randn, show, sliceRows } from './_common.js';
import { parseWorkers } from './_cli.js';
import { plural } from '../src/extensions/plural.js';

const workers = parseWorkers('shared-variables',
  'Shared variables and their collectives: local updates, gather, reduce, broadcast, scatter, allReduce, allGather, setValue and getValue.');
const n = await synk.fork({ n: workers });
try {
  console.log(`forked ${plural(n, 'worker')}`);
  const step = (what: string, value: T.NDArray | string): void => console.log(`\n${what}:\n  ${typeof value === 'string' ? value : show(value)}`);

  // --- Part 1 (example_1): a function whose only effect is an update of s. ---
  const sInit = T.NDArray.from([1, 1], { dtype: 'float32' });
  const x = T.matrix('x');
  const s = T.shared(sInit, { name: 's' });
  const f = synk.fn({ inputs: [x], updates: [[s, T.sum(x.mul(s), 0)]] });
  // Rows [1, 1], [2, 2], ..., [2n, 2n]: each worker gets two consecutive rows.
  const rows = Array.from({ length: 2 * n }, (_, i) => [i + 1, i + 1]);
  const xDat = synk.data(T.NDArray.from(rows, { dtype: 'float32' }));
  const total = n * (2 * n + 1); // 1 + 2 + ... + 2n
  const perRank = Array.from({ length: n }, (_, r) => 4 * r + 3); // (2r + 1) + (2r + 2)

  step('s initial', s.getValue());
  assertClose(s.getValue(), [1, 1], 's initial');

  f.local(xDat.array); // the plain function on the controller: s = sum over all rows
  step('s after a single-device call (f.local)', s.getValue());
  assertClose(s.getValue(), [total, total], 's after f.local');

  s.setValue(sInit);
  await f(xDat);
  step('local s (rank 0) after reset and a data-parallel call', s.getValue());
  assertClose(s.getValue(), [3, 3], 'rank 0 s after f');

  let gathered = one(await synk.gather(s, { ndUp: 1 }));
  step('gathered s (one row per rank)', gathered);
  assertClose(gathered, perRank.map((v) => [v, v]), 'gather after f');

  const reduced = one(await synk.reduce(s, { op: 'sum' }));
  step('local s after in-place reduce (sum)', s.getValue());
  assertClose(reduced, [total, total], 'reduce result');
  assertClose(s.getValue(), [total, total], 'rank 0 s after in-place reduce');

  gathered = one(await synk.gather(s, { ndUp: 1 }));
  step('gathered s after reduce (only rank 0 changed)', gathered);
  assertClose(gathered, perRank.map((v, r) => (r === 0 ? [total, total] : [v, v])), 'gather after reduce');

  await synk.broadcast(s, sInit);
  await f(xDat);
  await synk.allReduce(s, { op: 'sum' });
  gathered = one(await synk.gather(s, { ndUp: 1 }));
  step('gathered s after broadcast of the initial value, a call, and allReduce (sum)', gathered);
  assertClose(gathered, perRank.map(() => [total, total]), 'gather after allReduce');

  // --- Part 2 (demo_3): shared variables as data resident on each worker. ---
  const sX = T.shared(T.NDArray.full([100, 4], 1, 'float32'), { name: 's_x' });
  const sY = T.shared(T.NDArray.zeros([4, 5], 'float32'), { name: 's_y' });
  const sUnused = T.shared(T.NDArray.zeros([5, 5], 'float32'), { name: 's_unused' });
  const z = T.mean(sX.dot(sY), 0);
  const g = synk.fn({ sliceableShareds: [sX], outputs: z });
  await synk.distribute();

  const lengths = await synk.getLengths(sX);
  step('lengths of s_x on each rank', JSON.stringify(lengths));
  assert.deepEqual(lengths, new Array(n).fill(100));
  step('shapes of s_x on each rank', JSON.stringify(await synk.getShapes(sX)));

  const xData = randn([8 * n, 4], 11);
  const yData = randn([4, 5], 12);
  await synk.scatter(sX, xData);
  await synk.broadcast(sY, yData);
  const shapes = await synk.getShapes(sX);
  step('shapes of s_x after scatter', JSON.stringify(shapes));
  assert.deepEqual(shapes, new Array(n).fill([8, 4]));
  assertClose(one(await synk.gather(sX, { ndUp: 0 })), xData, 'scatter then gather (ndUp 0)');
  console.log('  scatter-gather equivalence: OK');
  const onRank1 = one(await synk.getValue(n > 1 ? 1 : 0, sX));
  step(`value of s_x on rank ${n > 1 ? 1 : 0} (its 8 rows)`, onRank1);
  const rank1 = n > 1 ? 1 : 0;
  assertClose(onRank1, sliceRows(xData, 8 * rank1, 8 * rank1 + 8), 'getValue of s_x');
  const ys = one(await synk.gather(sY)); // [n, 4, 5]
  for (let r = 0; r < n; r++) assertClose(rowOf(ys, r), yData, `s_y on rank ${r}`);
  console.log('  s_y equals the broadcast value on every rank: OK');

  const xm = T.matrix('x');
  const ym = T.matrix('y');
  const plain = T.fn({ inputs: [xm, ym], outputs: T.mean(xm.dot(ym), 0) });
  const expected = one(plain(xData, yData));
  const r1 = one(await g());
  step('mean(s_x . s_y, axis 0) over the resident rows', r1);
  assertClose(r1, expected, 'g() vs single device');
  assertClose(one(await g({ numSlices: 2 })), expected, 'g({ numSlices: 2 }) vs single device');
  console.log('  equals the single-device result, also with numSlices 2: OK');

  const xValues = one(await synk.gather(sX, { ndUp: 1 })); // [n, 8, 4]
  await synk.allReduce(sX); // op 'avg' by default
  const avg = new T.NDArray('float32', [8, 4]);
  for (let r = 0; r < n; r++) for (let i = 0; i < 32; i++) avg.data[i] = avg.data[i]! + xValues.data[r * 32 + i]! / n;
  const after = one(await synk.gather(sX, { ndUp: 1 }));
  for (let r = 0; r < n; r++) assertClose(rowOf(after, r), avg, `s_x on rank ${r} after allReduce avg`);
  step(`s_x on rank ${n - 1} after allReduce (avg), first row`, rowOf(one(await synk.getValue(n - 1, sX)), 0));

  const lastRank = n - 1;
  const ownPart = rowOf(xValues, lastRank);
  await synk.setValue(lastRank, sX, ownPart);
  const reset = one(await synk.getValue(lastRank, sX));
  step(`s_x on rank ${lastRank} reset to its earlier value with setValue, first row`, rowOf(reset, 0));
  assertClose(reset, ownPart, 'setValue / getValue');

  await synk.allGather(sX);
  const allShapes = await synk.getShapes(sX);
  step('shapes of s_x after allGather', JSON.stringify(allShapes));
  assert.deepEqual(allShapes, new Array(n).fill([8 * n, 4]));
  const wantAll = concatRows(Array.from({ length: n }, (_, r) => (r === lastRank ? ownPart : avg)));
  for (let r = 0; r < n; r++) assertClose(one(await synk.getValue(r, sX)), wantAll, `s_x on rank ${r} after allGather`);

  // A shared variable used by no function: collectives work on it too (the original could not).
  await synk.broadcast(sUnused, T.NDArray.full([5, 5], 2, 'float32'));
  await synk.allReduce(sUnused, { op: 'sum' });
  const unused = one(await synk.getValue(lastRank, sUnused));
  step(`s_unused (used by no function) on rank ${lastRank} after broadcast of 2s and allReduce (sum), first row`, rowOf(unused, 0));
  assertClose(unused, T.NDArray.full([5, 5], 2 * n, 'float32'), 's_unused');
  console.log('\nshared variables: OK');
} finally {
  await synk.close();
}

/** a[r]: the r-th entry along axis 0, copied. */
function rowOf(a: T.NDArray, r: number): T.NDArray {
  const m = a.size / a.shape[0]!;
  return T.NDArray.from(a.data.slice(r * m, (r + 1) * m), { shape: a.shape.slice(1) });
}
