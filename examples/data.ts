// Data interactions (the original's demo_2): a Data is an array in shared memory that workers read
// without copies. Creation, reading and writing rows, setValue (with oversize), setLength, setShape,
// freeMemory, casts, and minibatch Data in a data-parallel call. Run: node dist/examples/data.js
import assert from 'node:assert/strict';
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { assertClose, one, randn, show, sliceRows } from './_common.js';
import { parseWorkers } from './_cli.js';
import { plural } from '../src/extensions/plural.js';

const workers = parseWorkers('data',
  'Data, arrays in shared memory: reading and writing rows, setValue with oversize, setLength, setShape, freeMemory, casts, minibatch Data.');
const n = await synk.fork({ n: workers }); // Data may be made before or after fork
try {
  console.log(`forked ${plural(n, 'worker')}`);
  const xDat0 = randn([5, 4], 1);
  const xDat1 = randn([5, 4], 2);
  const xDat2 = randn([2000, 10], 3);
  const xDat3 = randn([2100, 10], 4);
  const xDat4 = randn([100, 8], 5);
  const xDat5 = randn([100, 8], 6, 1, 'float64');

  const x = synk.data(xDat0, { name: 'x' });
  console.log('\nsome information about x:');
  console.log(`  name ${x.name}, dtype ${x.dtype}, ndim ${x.ndim}, shape (${x.shape.join(', ')}), length ${x.length}, size ${x.size}, allocSize ` +
    `${x.allocSize}, minibatch ${x.minibatch}`);
  console.log(`  values (x.array, a view of shared memory): ${show(x.array)}`);
  assert.deepEqual([x.name, x.dtype, x.ndim, [...x.shape], x.length, x.size, x.allocSize, x.minibatch], ['x', 'float32', 2, [5, 4], 5, 20, 20, false]);
  assert.ok(x.array.data.buffer instanceof SharedArrayBuffer, 'x.array views a SharedArrayBuffer');
  assertClose(x.array, xDat0, 'x.array');

  // Reading and writing rows like an array.
  const rows = x.get({ start: 2, stop: 4 });
  console.log(`\nx.get({ start: 2, stop: 4 }): ${show(rows)}`);
  assertClose(rows, sliceRows(xDat0, 2, 4), 'rows 2..4');
  x.set(3, 0);
  console.log(`zeroed row 3: ${show(x.array)}`);
  assertClose(x.get(3), [0, 0, 0, 0], 'row 3 after x.set(3, 0)');
  assertClose(x.get(-1), sliceRows(xDat0, 4, 5).reshape([4]), 'x.get(-1) is the last row');
  x.set({ start: 0, stop: x.length }, xDat1);
  console.log(`new values (copied from xDat1): ${show(x.array)}`);
  assertClose(x.array, xDat1, 'x after set of all rows');
  assertClose(
    x.get([4, 0]),
    T.NDArray.from([...sliceRows(xDat1, 4, 5).data, ...sliceRows(xDat1, 0, 1).data], { shape: [2, 4] }),
    'x.get([4, 0]) (an index list gives a copy)',
  );

  // A larger value (same ndim) reallocates; oversize reserves room to grow.
  const v0 = x.version;
  x.setValue(xDat2, { oversize: 1.1 });
  console.log(`\nnew size (xDat2): ${x.size}; allocSize with oversize 1.1: ${x.allocSize}`);
  assert.equal(x.size, 20000);
  assert.equal(x.allocSize, 22000);
  assert.ok(x.version > v0, 'reallocated');
  assertClose(x.array, xDat2, 'x after setValue(xDat2)');

  // A value that fits in the allocation: no new memory.
  const v1 = x.version;
  x.setValue(xDat3);
  console.log(`new size (xDat3): ${x.size}, length ${x.length}; same allocSize ${x.allocSize}`);
  assert.deepEqual([x.size, x.length, x.allocSize, x.version], [21000, 2100, 22000, v1]);

  // Shorten without reallocating, then fill (e.g. straight from a function's output).
  x.setLength(xDat2.shape[0]!);
  x.set({ start: 0, stop: x.length }, xDat2);
  console.log(`new length (back to xDat2's): ${x.length}; allocSize ${x.allocSize}`);
  assert.deepEqual([x.length, x.allocSize, x.version], [2000, 22000, v1]);
  assertClose(x.array, xDat2, 'x after setLength and set');

  // Growing the length past the allocation reallocates and keeps the first rows; new rows are zero.
  x.setLength(2500);
  console.log(`setLength(2500): length ${x.length}, allocSize ${x.allocSize} (reallocated with the Data's own oversize, 1)`);
  assert.deepEqual([x.length, x.allocSize], [2500, 25000]);
  assertClose(x.get({ start: 0, stop: 2000 }), xDat2, 'first rows kept');
  assert.ok(x.get({ start: 2000 }).data.every((v) => v === 0), 'new rows are zero');

  // Another shape (same ndim) inside the allocation.
  x.setValue(xDat4);
  console.log(`\nnew shape (xDat4): (${x.shape.join(', ')}); allocSize unchanged: ${x.allocSize}`);
  assert.deepEqual([[...x.shape], x.allocSize], [[100, 8], 25000]);
  x.setShape([50, 16]);
  console.log(`setShape([50, 16]): shape (${x.shape.join(', ')}), elements keep their flat order`);
  assertClose(x.array, xDat4.reshape([50, 16]), 'x after setShape');
  x.setShape([100, 8]);
  assert.throws(() => x.setShape([800]), /ndim is fixed/);
  assert.throws(() => x.setValue(randn([8], 7)), /ndim is fixed/);
  console.log('the ndim is fixed: setShape([800]) and setValue of a vector are refused');

  // freeMemory shrinks the allocation; write the value again afterwards.
  x.freeMemory();
  console.log(`\nafter freeMemory: length ${x.length}, allocSize ${x.allocSize}`);
  assert.deepEqual([x.length, x.allocSize], [0, 0]);
  x.setValue(xDat4);
  console.log(`xDat4 again after freeMemory: allocSize ${x.allocSize} (the Data's own oversize, 1)`);
  assert.equal(x.allocSize, 800);

  // Casts: up-casts are implicit; a down-cast (float64 to float32) needs forceCast.
  assert.throws(() => x.setValue(xDat5), /forceCast/);
  x.setValue(xDat5, { forceCast: true });
  console.log(`\nxDat5 dtype forced from ${xDat5.dtype} to ${x.dtype}`);
  assertClose(x.array, xDat5, 'x after forced cast', { rtol: 1e-6 });
  const ints = synk.data(T.NDArray.from([[1, 2], [3, 4]], { dtype: 'int32' }));
  const up = synk.data(ints.array, { dtype: 'float64' });
  console.log(`an int32 Data up-cast into a new float64 Data: ${show(up.array)}`);
  assert.equal(up.dtype, 'float64');
  const zeros = synk.data({ dtype: 'float32', shape: [3, 2] });
  console.log(`synk.data({ dtype, shape }) makes zeros: ${show(zeros.array)}`);
  assert.ok(zeros.array.data.every((v) => v === 0));

  // Data in a data-parallel call; after a reallocation the workers read the new buffer.
  const xs = T.matrix('xs');
  const f = synk.fn({ inputs: [xs], outputs: [[xs.sum(1), 'gather'], [xs.sum(), 'sum']] });
  const [gathered, total] = (await f(x)) as T.NDArray[];
  const [lGathered, lTotal] = f.local(x.array) as T.NDArray[];
  assertClose(gathered!, lGathered!, 'row sums');
  assertClose(total!, lTotal!, 'total', { rtol: 1e-4 });
  x.setValue(xDat3);
  const [afterRealloc] = (await f(x)) as T.NDArray[];
  assertClose(afterRealloc!, one((f.local(xDat3) as T.NDArray[])[0]!), 'row sums after a reallocation');
  console.log(`\nf(x) on ${plural(n, 'worker')} equals f.local, also after setValue reallocated x: OK`);

  // minibatch Data holds one minibatch of a larger set: a call's batch indexes it from 0.
  const whole = randn([1000, 10], 8);
  const mb = synk.data({ dtype: 'float32', shape: [100, 10] }, { minibatch: true, name: 'minibatch' });
  let sum = 0;
  for (let start = 0; start < 1000; start += 100) {
    mb.set({ start: 0, stop: 100 }, sliceRows(whole, start, start + 100)); // e.g. loaded from disk
    const [, part] = (await f(mb, { batch: { start, stop: start + 100 } })) as T.NDArray[];
    sum += part!.item();
  }
  const expected = (f.local(whole) as T.NDArray[])[1]!.item();
  console.log(`sum over 10 minibatches through a minibatch Data: ${sum.toFixed(4)} (single device on the whole set: ${expected.toFixed(4)})`);
  assert.ok(Math.abs(sum - expected) <= 1e-4 * Math.max(1, Math.abs(expected)), 'minibatch sum');
  console.log('\ndata: OK');
} finally {
  await synk.close();
}
