import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Data, data, dataView, gatherRows } from '../../src/parallel/data.js';
import { NDArray } from '../../src/tensor/ndarray.js';

function snapshot(d: Data): unknown {
  return { shape: d.shape, dtype: d.dtype, alloc: d.allocSize, version: d.version, length: d.length, values: Array.from(d.array.data) };
}

/** Runs `fn`, expects it to throw an error matching `pattern`, and checks `d` did not change. */
function rejectsUnchanged(d: Data, fn: () => unknown, pattern: RegExp): void {
  const before = snapshot(d);
  assert.throws(fn, pattern);
  assert.deepEqual(snapshot(d), before);
}

const m23 = (): Data => data([[1, 2, 3], [4, 5, 6]], { name: 'm' });

test('data() from nested arrays, typed arrays, NDArrays and { dtype, shape }', () => {
  const d = m23();
  assert.ok(d instanceof Data);
  assert.equal(d.dtype, 'float32');
  assert.deepEqual(d.shape, [2, 3]);
  assert.equal(d.length, 2);
  assert.equal(d.size, 6);
  assert.equal(d.ndim, 2);
  assert.equal(d.allocSize, 6);
  assert.equal(d.name, 'm');
  assert.equal(d.minibatch, false);
  assert.ok(d.array.data.buffer instanceof SharedArrayBuffer);
  assert.deepEqual(d.array.toArray(), [[1, 2, 3], [4, 5, 6]]);

  const f64 = data(new Float64Array([1.5, 2.5]), { minibatch: true });
  assert.equal(f64.dtype, 'float64');
  assert.equal(f64.minibatch, true);
  assert.equal(data(NDArray.from([[1, 2]], { dtype: 'int32' })).dtype, 'int32');
  assert.equal(data([true, false]).dtype, 'bool');

  const z = data({ dtype: 'int32', shape: [4, 2] }, { oversize: 1.5 });
  assert.deepEqual(z.shape, [4, 2]);
  assert.equal(z.allocSize, 12);
  assert.deepEqual(Array.from(z.array.data), new Array(8).fill(0));

  const s = data(3.5);
  assert.deepEqual(s.shape, []);
  assert.equal(s.length, 1);
  assert.equal(s.array.item(), 3.5);

  assert.equal(data([1, 2], { dtype: 'int32' }).dtype, 'int32');
  const copy = data(d);
  assert.deepEqual(copy.array.toArray(), d.array.toArray());
  assert.notEqual(copy.handle().buffer, d.handle().buffer);
  const ids = new Set([m23().id, m23().id]);
  assert.equal(ids.size, 2);
});

test('data() casting: up-casts implicit, down-casts only with forceCast', () => {
  assert.equal(data(new Float32Array([1]), { dtype: 'float64' }).dtype, 'float64');
  assert.equal(data(new Int32Array([1]), { dtype: 'float32' }).dtype, 'float32');
  assert.throws(
    () => data(new Float64Array([1.5]), { dtype: 'float32' }),
    /data value: expected dtype float32 \(or one that up-casts to it\), got float64; down-casts need forceCast/,
  );
  assert.equal(data(new Float64Array([1.5]), { dtype: 'float32', forceCast: true }).array.item(), 1.5);
  assert.throws(() => data([1.5], { dtype: 'int32' }), /element 0 \(1.5\) is not exactly representable as int32/);
  assert.deepEqual(Array.from(data([1.7, -2.2], { dtype: 'int32', forceCast: true }).array.data), [1, -2]);
  assert.throws(() => data([300], { dtype: 'uint8' }), /not exactly representable as uint8/);
  assert.throws(() => data([2], { dtype: 'bool' }), /not exactly representable as bool/);
});

test('data() bad arguments name the argument, the expectation and what came', () => {
  assert.throws(() => data('x'), /data value: expected a number, nested array, typed array or NDArray, got string x/);
  assert.throws(() => data([[1, 2], [3]]), /data value: ragged/);
  assert.throws(() => data([1], { oversize: 3 }), /data options.oversize: expected a number in \[1, 2\], got number 3/);
  assert.throws(() => data([1], { oversize: 0.5 }), /oversize/);
  assert.throws(() => data([1], { minibatch: 1 as unknown as boolean }), /data options.minibatch: expected a boolean, got number 1/);
  assert.throws(() => data([1], { name: 5 as unknown as string }), /data options.name: expected a string/);
  assert.throws(() => data([1], { dtype: 'float16' as 'float32' }), /data options.dtype: expected a dtype/);
  assert.throws(() => data([1], { minibtach: true } as unknown as { minibatch: boolean }), /unknown option 'minibtach'/);
  assert.throws(() => data([1], 5 as unknown as {}), /data options: expected an options object, got number 5/);
  assert.throws(() => data({ dtype: 'float32', shape: [2, -1] }), /data value.shape: expected a shape/);
  assert.throws(() => data({ dtype: 'int64', shape: [2] }), /data value.dtype: expected a dtype/);
  assert.throws(() => data({ dtype: 'int32', shape: [2] }, { dtype: 'float32' }), /contradicts value.dtype int32/);
});

test('.array is a view: writes show through, no copy', () => {
  const d = m23();
  d.array.data[0] = 42;
  assert.equal(d.array.data[0], 42);
  assert.equal(d.get(0).data[0], 42);
});

test('get: row, negative row, range, index list', () => {
  const d = m23();
  assert.deepEqual(d.get(1).toArray(), [4, 5, 6]);
  assert.deepEqual(d.get(-2).toArray(), [1, 2, 3]);
  assert.deepEqual(d.get({ start: 1 }).toArray(), [[4, 5, 6]]);
  assert.deepEqual(d.get({ start: 0, stop: 2 }).shape, [2, 3]);
  assert.deepEqual(d.get({ start: -1, stop: 2 }).toArray(), [[4, 5, 6]]);
  assert.deepEqual(d.get({ start: 1, stop: 1 }).shape, [0, 3]);
  assert.deepEqual(d.get({}).shape, [2, 3]);
  const g = d.get(new Int32Array([1, 0, 1]));
  assert.deepEqual(g.toArray(), [[4, 5, 6], [1, 2, 3], [4, 5, 6]]);
  g.data[0] = 99; // an index list gives a copy
  assert.equal(d.array.data[3], 4);
  assert.deepEqual(d.get([-1]).toArray(), [[4, 5, 6]]);
  const v = d.get({ start: 1, stop: 2 }); // a range is a view
  v.data[0] = 7;
  assert.equal(d.array.data[3], 7);
});

test('get: bad indices', () => {
  const d = m23();
  assert.throws(() => d.get(2), /Data.get index: row 2 is out of range for length 2/);
  assert.throws(() => d.get(-3), /out of range/);
  assert.throws(() => d.get(0.5), /Data.get index: expected an integer, got number 0.5/);
  assert.throws(() => d.get({ start: 0, stop: 3 }), /Data.get index.stop: 3 is out of range for length 2/);
  assert.throws(() => d.get({ start: 2, stop: 1 }), /stop 1 is before start 2/);
  assert.throws(() => d.get({ start: 'a' } as unknown as { start: number }), /Data.get index.start: expected an integer/);
  assert.throws(() => d.get({ begin: 0 } as unknown as { start: number }), /unknown key 'begin'/);
  assert.throws(() => d.get([0, 5]), /Data.get index\[1\]: row 5 is out of range/);
  assert.throws(() => d.get('0' as unknown as number), /expected a row index/);
  assert.throws(() => data(1).get(0), /a 0-d Data has no rows/);
});

test('set: row, range, index list, scalar fill, casting', () => {
  const d = m23();
  d.set(0, [7, 8, 9]);
  assert.deepEqual(d.get(0).toArray(), [7, 8, 9]);
  d.set({ start: 0, stop: 2 }, 0);
  assert.deepEqual(d.array.toArray(), [[0, 0, 0], [0, 0, 0]]);
  d.set([1, 0], [[1, 1, 1], [2, 2, 2]]);
  assert.deepEqual(d.array.toArray(), [[2, 2, 2], [1, 1, 1]]);
  d.set(new Int32Array([1]), 5);
  assert.deepEqual(d.get(1).toArray(), [5, 5, 5]);
  d.set(-1, new Float32Array([3, 2, 1]));
  assert.deepEqual(d.get(1).toArray(), [3, 2, 1]);
  d.set(0, new Int32Array([1, 2, 3])); // up-cast
  assert.deepEqual(d.get(0).toArray(), [1, 2, 3]);
  d.set(0, new Float64Array([1.5, 2, 3]), { forceCast: true });
  assert.deepEqual(d.get(0).toArray(), [1.5, 2, 3]);
  d.set({ start: 0, stop: 2 }, NDArray.from([[9, 9, 9], [8, 8, 8]]));
  assert.deepEqual(d.array.toArray(), [[9, 9, 9], [8, 8, 8]]);
  d.set({ start: 0, stop: 2 }, new Float32Array([1, 2, 3, 4, 5, 6])); // a flat typed array of the right size
  assert.deepEqual(d.array.toArray(), [[1, 2, 3], [4, 5, 6]]);
  d.set({ start: 1, stop: 2 }, d.get({ start: 0, stop: 1 })); // overlapping views of the same buffer
  assert.deepEqual(d.array.toArray(), [[1, 2, 3], [1, 2, 3]]);
});

test('set: bad arguments leave the Data unchanged', () => {
  const d = m23();
  rejectsUnchanged(d, () => d.set(0, [1, 2]), /Data.set value: expected shape \(3,\), got \(2,\)/);
  rejectsUnchanged(d, () => d.set(5, [1, 2, 3]), /Data.set index: row 5 is out of range/);
  rejectsUnchanged(
    d,
    () => d.set(0, new Float64Array([1, 2, 3])),
    /Data.set value: expected dtype float32 \(or one that up-casts to it\), got float64; down-casts need forceCast/,
  );
  rejectsUnchanged(d, () => d.set({ start: 0, stop: 2 }, [[1, 2, 3]]), /expected shape \(2, 3\), got \(1, 3\)/);
  rejectsUnchanged(d, () => d.set([0, 1], [[1, 2, 3], [4, 5, 'x' as unknown as number]]), /Data.set value: expected a number/);
  rejectsUnchanged(d, () => d.set(0, [1, 2, 3], { force: true } as unknown as { forceCast: boolean }), /Data.set options: unknown option 'force'/);
  const i = data([1, 2], { dtype: 'int32' });
  rejectsUnchanged(i, () => i.set(0, 1.5), /Data.set value: element 0 \(1.5\) is not exactly representable as int32/);
});

test('setValue: in place when it fits, reallocation (and version bump) when it does not', () => {
  const d = data({ dtype: 'float32', shape: [4, 2] }, { oversize: 1.5 });
  assert.equal(d.allocSize, 12);
  const v0 = d.version;
  const buffer0 = d.handle().buffer;
  d.setValue([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]);
  assert.equal(d.version, v0); // 12 elements fit the 12 reserved
  assert.equal(d.handle().buffer, buffer0);
  assert.deepEqual(d.shape, [6, 2]);
  d.setValue([[1, 2, 3]]); // another shape, same ndim
  assert.deepEqual(d.shape, [1, 3]);
  assert.equal(d.version, v0);
  d.setValue(new NDArray('float32', [7, 2]), { oversize: 2 });
  assert.equal(d.version, v0 + 1);
  assert.equal(d.allocSize, 28);
  assert.notEqual(d.handle().buffer, buffer0);
  d.setValue(new NDArray('float32', [20, 2])); // default: the creation oversize
  assert.equal(d.allocSize, 60);
  const v = data([1, 2, 3]);
  v.setValue(new Float64Array([0.5, 1.5]), { forceCast: true });
  assert.deepEqual(Array.from(v.array.data), [0.5, 1.5]);
  v.setValue([]);
  assert.equal(v.length, 0);
});

test('setValue: bad arguments leave the Data unchanged', () => {
  const d = m23();
  rejectsUnchanged(d, () => d.setValue([1, 2, 3]), /Data.setValue value: expected 2 dimensions \(the Data's ndim is fixed\), got shape \(3,\)/);
  rejectsUnchanged(d, () => d.setValue(new Float64Array([1])), /expected dtype float32 \(or one that up-casts to it\), got float64; down-casts need forceCast/);
  rejectsUnchanged(
    d,
    () => d.setValue([[1, 2, 3, 4, 5, 6, 7]], { oversize: 2.5 }),
    /Data.setValue options.oversize: expected a number in \[1, 2\], got number 2.5/,
  );
  rejectsUnchanged(d, () => d.setValue([[1]], { oversize: Number.NaN }), /oversize/);
  rejectsUnchanged(d, () => d.setValue({ dtype: 'float32', shape: [1, 1] }), /Data.setValue value: expected a number, nested array/);
  rejectsUnchanged(d, () => d.setValue([[1]], { forcecast: true } as unknown as { forceCast: boolean }), /unknown option 'forcecast'/);
  rejectsUnchanged(d, () => d.setValue([[1, null]] as unknown as number[][]), /Data.setValue value/);
});

test('setLength keeps leading rows, zeroes new ones, reallocates only beyond allocSize', () => {
  const d = data([[1, 2], [3, 4], [5, 6]], { oversize: 2 });
  assert.equal(d.allocSize, 12);
  d.setLength(1);
  assert.deepEqual(d.array.toArray(), [[1, 2]]);
  const v = d.version;
  d.setLength(4);
  assert.equal(d.version, v);
  assert.deepEqual(d.array.toArray(), [[1, 2], [0, 0], [0, 0], [0, 0]]);
  d.setLength(10);
  assert.equal(d.version, v + 1);
  assert.equal(d.allocSize, 40);
  assert.deepEqual(d.get(0).toArray(), [1, 2]);
  assert.deepEqual(d.get(9).toArray(), [0, 0]);
  rejectsUnchanged(d, () => d.setLength(-1), /Data.setLength length: expected an integer >= 0, got number -1/);
  rejectsUnchanged(d, () => d.setLength(1.5), /Data.setLength length/);
  rejectsUnchanged(d, () => d.setLength('2' as unknown as number), /Data.setLength length: expected an integer >= 0, got string 2/);
  assert.throws(() => data(1).setLength(2), /a 0-d Data has no rows/);
});

test('setShape keeps ndim and the flat order; reallocates only beyond allocSize', () => {
  const d = data([[1, 2, 3], [4, 5, 6]]);
  d.setShape([3, 2]);
  assert.deepEqual(d.array.toArray(), [[1, 2], [3, 4], [5, 6]]);
  d.setShape([1, 2]);
  const v = d.version;
  d.setShape([2, 3]);
  assert.equal(d.version, v);
  assert.deepEqual(d.array.toArray(), [[1, 2, 0], [0, 0, 0]]); // elements past the old size are zero
  d.setShape([2, 4]);
  assert.equal(d.version, v + 1);
  assert.deepEqual(d.get(0).toArray(), [1, 2, 0, 0]);
  rejectsUnchanged(d, () => d.setShape([8]), /Data.setShape shape: expected 2 dimensions \(the Data's ndim is fixed\), got \(8,\)/);
  rejectsUnchanged(d, () => d.setShape([2, -4]), /Data.setShape shape: expected a shape/);
  rejectsUnchanged(d, () => d.setShape('2x4' as unknown as number[]), /Data.setShape shape: expected a shape/);
});

test('freeMemory releases the buffer; the Data can be refilled', () => {
  const d = m23();
  const v = d.version;
  d.freeMemory();
  assert.equal(d.allocSize, 0);
  assert.equal(d.length, 0);
  assert.deepEqual(d.shape, [0, 3]);
  assert.equal(d.version, v + 1);
  assert.equal(d.handle().buffer.byteLength, 0);
  d.setValue([[1, 2, 3]]);
  assert.deepEqual(d.array.toArray(), [[1, 2, 3]]);
  const s = data(2);
  s.freeMemory();
  assert.equal(s.array.item(), 2);
});

test('handle, dataView and gatherRows: what workers see', () => {
  const d = data([[1, 2], [3, 4], [5, 6]], { name: 'x', minibatch: true });
  const h = d.handle();
  assert.deepEqual({ ...h, buffer: null }, { id: d.id, version: d.version, buffer: null, dtype: 'float32', shape: [3, 2], minibatch: true, name: 'x' });
  const cloned = structuredClone(h);
  assert.equal(cloned.buffer.byteLength, h.buffer.byteLength);
  const view = dataView(cloned);
  view.data[0] = 10; // shared memory: the controller sees it
  assert.equal(d.array.data[0], 10);
  assert.deepEqual(gatherRows(cloned, { start: 1, stop: 3 }).toArray(), [[3, 4], [5, 6]]);
  assert.deepEqual(gatherRows(cloned, new Int32Array([2, 0])).toArray(), [[5, 6], [10, 2]]);
  const out = new NDArray('float32', [1, 2]);
  assert.equal(gatherRows(cloned, new Int32Array([1]), out), out);
  assert.deepEqual(out.toArray(), [[3, 4]]);
  assert.throws(() => gatherRows(cloned, new Int32Array([3])), /gatherRows rows\[0\]: row 3 is out of range for length 3/);
  assert.throws(() => gatherRows(cloned, { start: 0, stop: 4 }), /gatherRows rows.stop: 4 is out of range/);
  assert.throws(() => gatherRows(cloned, new Int32Array([1]), new NDArray('float64', [1, 2])), /gatherRows out: expected an NDArray\(float32, \(1, 2\)\)/);
  assert.throws(() => dataView({ ...h, shape: [4, 2] }), /dataView handle: shape \(4, 2\) needs 32 bytes, the buffer has 24/);
  assert.throws(() => dataView({ ...h, buffer: new ArrayBuffer(24) as unknown as SharedArrayBuffer }), /dataView handle: expected a DataHandle/);
  assert.throws(() => dataView({ ...h, dtype: 'int8' as 'int32' }), /dataView handle.dtype: expected a dtype/);
  d.setLength(2); // a new length, same buffer: the old handle's buffer is still the one
  assert.equal(d.handle().buffer, h.buffer);
  assert.equal(d.handle().version, h.version);
  d.setLength(100);
  assert.equal(d.handle().version, h.version + 1);
});
