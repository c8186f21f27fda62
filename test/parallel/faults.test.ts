// Fault handling: errors inside workers, dead workers, bounded waits, close and fork again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { terminateWorkerForTesting } from '../../src/parallel/runtime.js';

test('an error inside one worker rejects with its rank and message; nothing changes; the next call works', async () => {
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    const x = T.matrix('x');
    const s = T.shared([5], { name: 's' });
    // 3 rows split 2 + 1: reshaping rows into pairs fails only on rank 1 (1 row).
    const f = synk.fn({ inputs: [x], outputs: [x.reshape([2, -1]).sum(), 'sum'], updates: [[s, s.add(1)]] });
    await assert.rejects(f([[1], [2], [3]]), (e: Error) => /rank 1/.test(e.message) && /cannot reshape/.test(e.message) && e.stack !== undefined);
    assert.deepEqual(s.getValue().toArray(), [5]);
    assert.deepEqual((await synk.getValue(0, s) as T.NDArray).toArray(), [5], 'rank 0 did not apply its update');
    assert.deepEqual(((await f([[1], [2], [3], [4]])) as T.NDArray).toArray(), 10);
    assert.deepEqual(s.getValue().toArray(), [6]);
  } finally {
    await synk.close();
  }
});

test('bad input is refused before any worker runs and changes nothing', async () => {
  const x = T.matrix('x');
  const n = T.vector('n', 'int32');
  const table = T.shared([[1, 2]]);
  const f = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  const g = synk.fn({ inputs: [x], outputs: x.sum(1).mean(), sliceableShareds: [table] });
  await assert.rejects(f([[1]]), /no workers are running/);
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    await assert.rejects(f(), /expected 1 input/);
    await assert.rejects(f([[1]], [[2]]), /expected 1 input/);
    await assert.rejects(f(new Float64Array(4)), /expected dtype float32.*down-casts are refused|expected ndim 2/);
    await assert.rejects(f(T.NDArray.from([[1, 2]], { dtype: 'float64' })), /input 0 'x': expected dtype float32/);
    await assert.rejects(f([1, 2]), /input 0 'x': expected ndim 2/);
    await assert.rejects(f([[1], [2]], { batch: 3 }), /batch: an integer n .* \[0, 2\]/);
    await assert.rejects(f([[1], [2]], { batch: [0, 5] }), /index 5 .* out of range/);
    await assert.rejects(f([[1], [2]], { batch: 'all' as unknown as number }), /batch: expected/);
    await assert.rejects(f([[1], [2]], { batchS: [0] }), /no sliceableShareds/);
    await assert.rejects(g([[1]], { batchS: [[0], [0], [0]] }), /one selection per rank needs 2/);
    await assert.rejects(f([[1], [2]], { numSlices: 0 }), /numSlices/);
    await assert.rejects(f([[1], [2]], { numSlices: 1.5 }), /numSlices/);
    const h = synk.fn({ bcastInputs: [x], outputs: [x.sum(), 'sum'] });
    await assert.rejects(h([[1]], { numSlices: 2 }), /nothing|needs scattered/);
    await assert.rejects(f([[1], [2]], { outputSubset: [3] }), /outputSubset/);
  } finally {
    await synk.close();
  }
  assert.throws(() => synk.fn({ inputs: [x], outputs: [x.sum(), 'median' as 'sum'] }), /reduce op "median"/);
  assert.throws(() => synk.fn({ inputs: [n], outputs: n.sum() }), /not a float, so 'avg' does not apply/);
  assert.throws(() => synk.fn({ inputs: [T.scalar('s')], outputs: x.sum() }), /cannot be scattered/);
});

test('a worker that dies rejects calls within 2 s naming the rank; close works; fork starts afresh', async () => {
  const x = T.matrix('x');
  const slow = synk.fn({ inputs: [x], outputs: [x.dimshuffle(1, 0).sum(), 'sum'] });
  await synk.fork({ n: 2, devices: 'reference' });
  const big = new T.NDArray('float32', [4000, 400]).astype('float32');
  const pending = slow(big, { numSlices: 200 });
  await new Promise((r) => setTimeout(r, 30));
  const t0 = Date.now();
  await terminateWorkerForTesting(1);
  await assert.rejects(pending, /rank 1/);
  assert.ok(Date.now() - t0 < 2000, `rejected after ${Date.now() - t0} ms`);
  await assert.rejects(slow(big), /rank 1|closed|died|failed/);
  await synk.close();
  await synk.close();
  await assert.rejects(slow(big), /no workers are running/);
  assert.equal(await synk.fork({ n: 2, devices: 'reference' }), 2);
  assert.equal(((await slow([[1, 2], [3, 4]])) as T.NDArray).item(), 10);
  await synk.close();
});

test('fork twice without close is refused; bad fork options are refused', async () => {
  await synk.fork({ n: 1, devices: 'reference' });
  await assert.rejects(synk.fork({ n: 1 }), /already running/);
  await synk.close();
  await assert.rejects(synk.fork({ n: 0 }), /positive integer/);
  await assert.rejects(synk.fork({ devices: 'tpu' as 'cpu' }), /devices must be/);
});
