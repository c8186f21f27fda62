// The data-parallel API's boundary: bad arguments to synk.fn, to its calls and to the collectives
// are refused on the controller with a message naming the argument, and a refused one changes nothing.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { pieceOf, relativeRows, splitPoints } from '../../src/parallel/split.js';
import type { NamedInputs } from '../../src/parallel/function.js';

describe('the data-parallel API refuses bad input (2 workers)', () => {
  before(async () => { await synk.fork({ n: 2, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  const x = T.matrix('x');
  const X = T.NDArray.from([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14]], { dtype: 'float32' });
  const total = (rows: readonly number[]) => rows.reduce((s, r) => s + X.data[2 * r]! + X.data[2 * r + 1]!, 0);
  const sum = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });

  test('numSlices: more slices than rows is a RangeError on the controller (1e9 used to abort the process)', async () => {
    await assert.rejects(sum(X, { numSlices: 1e9 }), /numSlices: 1000000000 slices for 7 rows .*at most one slice per row/);
    await assert.rejects(sum(X, { numSlices: 1e5, batch: 3 }), /numSlices: 100000 slices for 3 rows/);
    const table = T.shared(X, { name: 'table' });
    const viaS = synk.fn({ outputs: [table.sum(), 'sum'], sliceableShareds: [table] });
    await assert.rejects(viaS({ batchS: [0, 1], numSlices: 3 }), /numSlices: 3 slices for 2 rows selected by batchS/);
    // As many slices as rows: every row its own slice, same result.
    assert.equal(((await sum(X, { numSlices: 7 })) as T.NDArray).item(), total([0, 1, 2, 3, 4, 5, 6]));
    assert.equal(((await viaS({ batchS: [0, 1], numSlices: 2 })) as T.NDArray).item(), 2 * total([0, 1]));
  });

  test('pieceOf and relativeRows cost O(1) per piece and agree with splitPoints', () => {
    const t0 = Date.now();
    // Before: each call built all 1e9 + 1 split points (a fatal invalid-size error).
    assert.deepEqual(pieceOf({ kind: 'range', start: 3, stop: 10 }, 1e9, 999_999_999), { kind: 'range', start: 10, stop: 10 });
    assert.deepEqual(relativeRows({ kind: 'range', start: 0, stop: 5 }, 1e9, 5e8), { kind: 'range', start: 3, stop: 3 });
    for (let k = 0; k < 100_000; k++) pieceOf({ kind: 'range', start: 0, stop: 100_000 }, 100_000, k);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    for (const [length, parts] of [[7, 3], [0, 4], [5, 5], [100, 7], [3, 8]] as const) {
      const p = splitPoints(length, parts);
      const list = { kind: 'list' as const, indices: Int32Array.from({ length }, (_, i) => 10 * i) };
      for (let k = 0; k < parts; k++) {
        assert.deepEqual(pieceOf({ kind: 'range', start: 2, stop: 2 + length }, parts, k), { kind: 'range', start: 2 + p[k]!, stop: 2 + p[k + 1]! });
        assert.deepEqual(Array.from((pieceOf(list, parts, k) as { indices: Int32Array }).indices), Array.from(list.indices.subarray(p[k]!, p[k + 1]!)));
      }
    }
  });

  test('a refused synk.fn (name a function or a Symbol) leaves nothing that breaks later calls, close or fork', async () => {
    assert.throws(() => synk.fn({ inputs: [x], outputs: x.sum(), name: (() => 1) as unknown as string }), /synk.fn: name must be a string, got function/);
    assert.throws(() => synk.fn({ inputs: [x], outputs: x.sum(), name: Symbol('f') as unknown as string }), /synk.fn: name must be a string, got symbol/);
    // Before: the refused-too-late function sat in the registry and every distribute failed with DataCloneError.
    assert.equal(((await sum(X)) as T.NDArray).item(), total([0, 1, 2, 3, 4, 5, 6]));
    const late = synk.fn({ inputs: [x], outputs: [x.max(), 'max'] });
    assert.equal(((await late(X)) as T.NDArray).item(), 14);
    await synk.close();
    await synk.fork({ n: 2, devices: 'reference' });
    assert.equal(((await late(X)) as T.NDArray).item(), 14);
  });

  test('every synk.fn option is checked at construction, naming it', () => {
    const spec = (extra: Record<string, unknown>) => ({ inputs: [x], outputs: x.sum(), ...extra }) as unknown as synk.SynkFnSpec;
    for (const key of ['inputs', 'updates', 'givens', 'bcastInputs', 'sliceableShareds']) {
      assert.throws(() => synk.fn(spec({ [key]: 5 })), new RegExp(`synk.fn: ${key} must be a list`), key);
    }
    assert.throws(() => synk.fn(spec({ outputs: 5 })), /synk.fn: outputs must be a variable, \[variable, op\] or a list of them, got number 5/);
    assert.throws(() => synk.fn(spec({ output: x.sum() })), /synk.fn: unknown option 'output'; known options are inputs, bcastInputs, outputs/);
    assert.throws(() => synk.fn(spec({ bcastInputs: [x.sum()] })), /synk.fn: bcastInputs\[0\] .* must be a free variable/);
    assert.throws(() => synk.fn(spec({ givens: [x] })), /synk.fn: givens\[0\] must be \[variable, replacement\]/);
    assert.throws(() => synk.fn(spec({ updates: [[T.shared(1), 2, 'median']] })), /synk.fn: updates\[0\] has op string median/);
    assert.throws(() => synk.fn(spec({ sliceableShareds: [x] })), /sliceableShareds\[0\] must be a shared variable/);
    assert.throws(() => synk.fn(null as unknown as synk.SynkFnSpec), /synk.fn: expected an options object/);
  });

  test('broadcast of a list checks every value before changing any (controller and rank 0 keep theirs)', async () => {
    const w = T.shared([1, 2, 3], { name: 'w' });
    const wb = T.shared(T.NDArray.zeros([1, 2]), { name: 'wb', broadcastable: [true, false] });
    await synk.broadcast([w, wb]);
    await assert.rejects(synk.broadcast([w, wb], [[9, 9, 9], [[1, 2], [3, 4]]]), /broadcast values\[1\]: axis 0 of wb.* broadcastable/);
    assert.deepEqual(w.getValue().toArray(), [1, 2, 3]);
    assert.deepEqual(((await synk.getValue(0, w)) as T.NDArray).toArray(), [1, 2, 3]);
    await assert.rejects(synk.scatter([w, wb], [[9, 9, 9], 'no' as unknown as number]), /scatter values\[1\]/);
    await assert.rejects(synk.broadcast([w, w], [[1, 1, 1], [2, 2, 2]]), /item 1 is the same shared variable as item 0/);
    assert.deepEqual(w.getValue().toArray(), [1, 2, 3]);
  });

  test('collectives cast values by the one rule: up-casts implicit, down-casts and inexact integers need forceCast', async () => {
    const w = T.shared([0, 0, 0], { name: 'w32' }); // float32
    await assert.rejects(synk.setValue(1, w, Float64Array.of(1, 2, 3)),
      /setValue values\[0\]: expected dtype float32 .*got float64; down-casts need forceCast/);
    await assert.rejects(synk.broadcast(w, Float64Array.of(1, 2, 3)), /broadcast values\[0\]: expected dtype float32/);
    await assert.rejects(synk.scatter(T.shared([[0]]), new Float64Array(2).fill(0)), /scatter values\[0\]: expected dtype float32/);
    await synk.setValue(1, w, Float64Array.of(1, 2, 3.5), { forceCast: true });
    assert.deepEqual(((await synk.getValue(1, w)) as T.NDArray).toArray(), [1, 2, 3.5]);
    const i = T.shared(T.NDArray.from([0, 0], { dtype: 'int32' }), { name: 'i' });
    await assert.rejects(synk.broadcast(i, [1.5, 2]), /element 0 \(1.5\) is not exactly representable as int32/);
    await assert.rejects(synk.broadcast(i, Float32Array.of(1, 2)), /expected dtype int32/);
    assert.deepEqual(i.getValue().toArray(), [0, 0]);
    await synk.broadcast(i, Uint8Array.of(3, 4)); // an up-cast
    const got = (await synk.getValue(1, i)) as T.NDArray;
    assert.equal(got.dtype, 'int32');
    assert.deepEqual(got.toArray(), [3, 4]);
    await synk.setValue(0, i, [7.9, 8], { forceCast: true });
    assert.deepEqual(((await synk.getValue(0, i)) as T.NDArray).toArray(), [7, 8]);
    await assert.rejects(synk.setValue(0, i, [1, 2], { forceCast: 'yes' } as unknown as { forceCast: boolean }),
      /setValue options.forceCast: expected a boolean/);
    await assert.rejects(synk.broadcast(i, [1, 2], { force: true } as unknown as { forceCast: boolean }),
      /broadcast options: unknown option 'force'; known options are forceCast/);
  });

  test('index lists of other types are refused, not read as "all rows"', async () => {
    await assert.rejects(sum(X, { batch: Uint32Array.of(5, 1) as unknown as Int32Array }),
      /batch: expected an integer, \{ start, stop \}, a number\[\] or an Int32Array .*got a Uint32Array/);
    await assert.rejects(sum(X, { batch: new ArrayBuffer(8) as unknown as Int32Array }), /batch: expected .*ArrayBuffer/);
    await assert.rejects(sum(X, { batch: new Map() as unknown as Int32Array }), /batch: expected .*Map/);
    await assert.rejects(sum(X, { batch: { start: 1, end: 3 } as unknown as { start: number } }), /batch: unknown key 'end'/);
    const E = synk.data(T.NDArray.zeros([3, 2]));
    assert.throws(() => E.set(new ArrayBuffer(8) as unknown as number, 7), /Data.set index: expected a row index/);
    assert.throws(() => E.get(Float64Array.of(0) as unknown as number), /Data.get index: expected a row index/);
    assert.deepEqual(Array.from(E.array.data), [0, 0, 0, 0, 0, 0]);
    // The documented kinds still select what they say.
    assert.equal(((await sum(X, { batch: Int32Array.of(5, 1) })) as T.NDArray).item(), total([5, 1]));
    assert.equal(((await sum(X, { batch: [6, 6] })) as T.NDArray).item(), total([6, 6]));
    assert.equal(((await sum(X, { batch: { start: 5 } })) as T.NDArray).item(), total([5, 6]));
    assert.equal(((await sum(X, { batch: 2 })) as T.NDArray).item(), total([0, 1]));
  });

  test('bad entries and options name the argument instead of failing deep inside', async () => {
    await assert.rejects(sum(X, { batch: [Symbol('r')] as unknown as number[] }), /batch: entry 0 must be an integer row index, got symbol/);
    await assert.rejects(sum(X, { batch: [0, 1n] as unknown as number[] }), /batch: entry 1 must be an integer row index, got bigint 1/);
    // eslint-disable-next-line no-sparse-arrays
    await assert.rejects(sum(X, { batch: [0, , 2] as unknown as number[] }), /batch: entry 1 must be an integer row index, got undefined/);
    const two = synk.fn({ inputs: [x], outputs: [[x.sum(), 'sum'], [x.max(), 'max']] });
    // eslint-disable-next-line no-sparse-arrays
    await assert.rejects(two(X, { outputSubset: [0, , 1] as unknown as number[] }),
      /outputSubset: expected a list of distinct output indices in \[0, 2\), got \[0, undefined, 1\]/);
    await assert.rejects(two(X, { outputSubset: [1, 1] }), /outputSubset/);
    const w = T.shared([1, 2], { name: 'wn' });
    for (const [name, call] of [
      ['gather', () => synk.gather(w, null as unknown as {})],
      ['reduce', () => synk.reduce(w, null as unknown as {})],
      ['allReduce', () => synk.allReduce(w, null as unknown as {})],
      ['gather', () => synk.gather(w, 'str' as unknown as {})],
      ['reduce', () => synk.reduce(w, 7 as unknown as {})],
    ] as const) await assert.rejects(call(), new RegExp(`${name} options: expected an options object`), name);
    await assert.rejects(synk.gather(w, { ndUp: 2 as 1 }), /gather options.ndUp: expected 0 or 1, got number 2/);
    await assert.rejects(synk.gather(w, { nd: 0 } as unknown as {}), /gather options: unknown option 'nd'; known options are ndUp/);
    await assert.rejects(synk.reduce(w, { op: 'sum', inPlace: 'no' } as unknown as {}), /reduce options.inPlace: expected a boolean/);
    await assert.rejects(synk.allReduce(w, { op: 'sum', inplace: true } as unknown as {}), /allReduce options: unknown option 'inplace'/);
    assert.throws(() => sum.buildInputs(Infinity), /buildInputs input 0 'x': expected ndim 2, got shape \(\)/);
    assert.throws(() => sum.buildInputs(X, X), /buildInputs: the function has 1 input\(s\) \(x\), got 2/);
    assert.throws(() => sum.buildInputs('rows' as unknown as number), /buildInputs input 0 'x': expected a synk.data\(\), an NDArray/);
  });

  test('the trailing options object: unknown keys are refused listing the known ones; inputs by name and { data, shape } still work', async () => {
    await assert.rejects(sum(X, { btach: 2 } as unknown as synk.CallOptions),
      /unknown option 'btach' in the last argument; known options are batch, batchS, numSlices, outputSubset/);
    await assert.rejects(sum({ btach: 2 } as unknown as NamedInputs), /unknown option 'btach'.*\(to pass inputs by name, use x\)/);
    await assert.rejects(sum({ x: X, numSlices: 2 } as unknown as NamedInputs),
      /unknown input name\(s\) numSlices; inputs are x \(options go in a second argument\)/);
    assert.equal(((await sum({ x: X }, { numSlices: 2 })) as T.NDArray).item(), total([0, 1, 2, 3, 4, 5, 6]));
    assert.equal(((await sum({ data: X.data, shape: [7, 2] }, { batch: 2 })) as T.NDArray).item(), total([0, 1]));
    // An input may be called like an option: the object naming every input is the inputs.
    const batch = T.matrix('batch');
    const g = synk.fn({ inputs: [batch], outputs: [batch.sum(), 'sum'] });
    assert.equal(((await g({ batch: X })) as T.NDArray).item(), total([0, 1, 2, 3, 4, 5, 6]));
    assert.equal(((await g(X, { batch: 1 })) as T.NDArray).item(), total([0]));
  });

  test('call inputs follow the one cast rule (inexact values into an integer input are refused)', async () => {
    const k = T.matrix('k', 'int32');
    const f = synk.fn({ inputs: [k], outputs: [k.sum(), 'sum'] });
    await assert.rejects(f([[1.5, 2]]), /input 0 'k': element 0 \(1.5\) is not exactly representable as int32/);
    await assert.rejects(f(Float32Array.of(1, 2)), /input 0 'k': expected dtype int32 .*down-casts are refused \(convert it first/);
    assert.equal(((await f([[1, 2], [3, 4]])) as T.NDArray).item(), 10);
  });
});
