import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDUCE_OPS, assertReduceOp, combineInto, finishAvg, isReduceOp, reduceOpCode, reduceOpFromCode } from '../../src/comm/reduce-ops.js';

test('reduce op names and codes', () => {
  assert.deepEqual([...REDUCE_OPS], ['sum', 'avg', 'prod', 'max', 'min']);
  for (const op of REDUCE_OPS) {
    assert.ok(isReduceOp(op));
    assert.equal(reduceOpFromCode(reduceOpCode(op)), op);
  }
  assert.equal(isReduceOp('mean'), false);
  assert.equal(reduceOpFromCode(0), undefined);
});

test('assertReduceOp: unknown ops and avg on integers or bool are refused clearly', () => {
  assert.equal(assertReduceOp('max', 'op', 'int32'), 'max');
  assert.equal(assertReduceOp('avg', 'op', 'float32'), 'avg');
  assert.throws(() => assertReduceOp('mean', 'allReduce options.op'), /allReduce options.op: expected a reduce op \(sum, avg, prod, max, min\), got "mean"/);
  assert.throws(() => assertReduceOp(undefined, 'op'), /got undefined/);
  assert.throws(() => assertReduceOp('avg', 'op', 'int32'), /op: 'avg' needs a float dtype \(float32 or float64\), got int32/);
  assert.throws(() => assertReduceOp('avg', 'op', 'uint8'), /got uint8/);
  assert.throws(() => assertReduceOp('avg', 'op', 'bool'), /got bool/);
});

test('combineInto: sum, prod, max, min over floats, with a range', () => {
  const acc = new Float64Array([1, 2, 3, 4]);
  combineInto('sum', acc, new Float64Array([10, 20, 30, 40]));
  assert.deepEqual(Array.from(acc), [11, 22, 33, 44]);
  combineInto('prod', acc, new Float64Array([2, 2, 2, 2]), { start: 1, end: 3 });
  assert.deepEqual(Array.from(acc), [11, 44, 66, 44]);
  combineInto('max', acc, new Float64Array([12, 0, 70, -1]));
  assert.deepEqual(Array.from(acc), [12, 44, 70, 44]);
  combineInto('min', acc, new Float64Array([0, 50, 80, -1]));
  assert.deepEqual(Array.from(acc), [0, 44, 70, -1]);
  combineInto('avg', acc, new Float64Array([1, 1, 1, 1]));
  finishAvg(acc, 2);
  assert.deepEqual(Array.from(acc), [0.5, 22.5, 35.5, 0]);
  assert.throws(() => combineInto('sum', acc, new Float64Array(2)), /combineInto: range \[0, 4\) does not fit/);
  assert.throws(() => finishAvg(acc, 0), /count must be positive/);
});

test('combineInto: NaN propagates through max and min like NumPy', () => {
  const acc = new Float32Array([Number.NaN, 1, Number.NaN, 5]);
  combineInto('max', acc, new Float32Array([1, Number.NaN, Number.NaN, 2]));
  assert.ok(Number.isNaN(acc[0]!) && Number.isNaN(acc[1]!) && Number.isNaN(acc[2]!));
  assert.equal(acc[3], 5);
  const m = new Float64Array([Number.NaN, 1, 3]);
  combineInto('min', m, new Float64Array([0, Number.NaN, 2]));
  assert.ok(Number.isNaN(m[0]!) && Number.isNaN(m[1]!));
  assert.equal(m[2], 2);
});

test('combineInto: integer arithmetic wraps, float32 rounds on store', () => {
  const i = new Int32Array([2 ** 31 - 1, -5]);
  combineInto('sum', i, new Int32Array([1, 2]));
  assert.deepEqual(Array.from(i), [-(2 ** 31), -3]);
  const u = new Uint8Array([250, 3]);
  combineInto('sum', u, new Uint8Array([10, 4]));
  assert.deepEqual(Array.from(u), [4, 7]);
  const f = new Float32Array([0.1]);
  combineInto('sum', f, new Float32Array([0.2]));
  assert.equal(f[0], Math.fround(Math.fround(0.1) + Math.fround(0.2)));
});

test('combineInto: bool is logical or (sum, max) and logical and (prod, min)', () => {
  for (const [op, want] of [['sum', [0, 1, 1, 1]], ['max', [0, 1, 1, 1]], ['prod', [0, 0, 0, 1]], ['min', [0, 0, 0, 1]]] as const) {
    const acc = new Uint8Array([0, 0, 1, 1]);
    combineInto(op, acc, new Uint8Array([0, 1, 0, 1]), { dtype: 'bool' });
    assert.deepEqual(Array.from(acc), want, op);
  }
});
