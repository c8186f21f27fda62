// Memory of the data-parallel runtime: inputs of past calls are not kept, freed or reallocated Data
// give their memory back promptly (on the controller and on every worker), and sizes that cannot be
// allocated are refused naming the argument. RSS covers the workers (they are threads of this process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { heldDataCountForTesting } from '../../src/parallel/runtime.js';
import { MAX_HELD } from '../../src/parallel/worker-data.js';

const MB = 2 ** 20;

/** RSS once pending releases, collections and the background sweep had a moment. */
async function settledRss(ms = 400): Promise<number> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, ms));
  return process.memoryUsage().rss;
}

function filled(rows: number, value: number): T.NDArray {
  const a = new T.NDArray('float32', [rows, 1024]);
  a.data.fill(value);
  return a;
}

test('a shape too large for one array is refused naming the argument and the size', () => {
  const tooLarge = /^RangeError: data value.shape \(1000000000000,\): 1000000000000 float32 elements \(3\.6 TiB\) do not fit one array; at most \d+/;
  assert.throws(() => synk.data({ dtype: 'float32', shape: [1e12] }), tooLarge);
  const d = synk.data({ dtype: 'float64', shape: [2, 3] });
  assert.throws(() => d.setShape([1e6, 1e7]), /^RangeError: Data.setShape: 10000000000000 float64 elements \(72\.8 TiB\) do not fit one array/);
  assert.deepEqual(d.shape, [2, 3], 'a refused setShape changes nothing');
  assert.throws(() => d.setLength(2 ** 40), /Data.setLength: \d+ float64 elements .* do not fit one array/);
});

test('calls with fresh inputs do not keep them: the workers hold a bounded set of handles', async () => {
  const x = T.matrix('x');
  const f = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    const one = new T.NDArray('float32', [256, 256]); // 256 KiB per call
    one.data.fill(1);
    for (let i = 0; i < 50; i++) await f(one);
    const before = await settledRss();
    for (let i = 0; i < 1200; i++) {
      const value = (await f(i % 2 === 0 ? one : synk.data(one))) as T.NDArray;
      if (i % 400 === 0) assert.equal(value.item(), 65536);
    }
    const grown = (await settledRss()) - before;
    assert.ok(heldDataCountForTesting() <= MAX_HELD, `workers hold ${heldDataCountForTesting()} handles`);
    // Kept, 1200 inputs are 300 MiB; at most MAX_HELD (64 MiB) may wait for a collection.
    assert.ok(grown < 150 * MB, `RSS grew by ${(grown / MB).toFixed(0)} MiB over 1200 calls with fresh inputs`);
    // A Data used again after its handle was dropped is sent again (the call still works).
    const kept = synk.data(one);
    assert.equal(((await f(kept)) as T.NDArray).item(), 65536);
    for (let i = 0; i < MAX_HELD + 10; i++) await f(synk.data(new T.NDArray('float32', [2, 2])));
    assert.equal(((await f(kept)) as T.NDArray).item(), 65536);
  } finally {
    await synk.close();
  }
});

test('freeMemory and reallocations give the memory back promptly, on the controller and every worker', async () => {
  const x = T.matrix('x');
  const f = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    const rows = 64 * 1024; // 256 MiB of float32 per buffer
    await f(synk.data({ dtype: 'float32', shape: [4, 1024] }));
    const before = await settledRss();
    for (let round = 0; round < 4; round++) {
      const big = synk.data({ dtype: 'float32', shape: [rows, 1024] });
      big.array.data.fill(1);
      assert.equal(((await f(big, { batch: 2 })) as T.NDArray).item(), 2048);
      big.freeMemory();
    }
    const afterFree = (await settledRss()) - before;
    assert.ok(afterFree < 200 * MB, `RSS grew by ${(afterFree / MB).toFixed(0)} MiB after 4 rounds of a 256 MiB Data freed`);
    const grow = synk.data({ dtype: 'float32', shape: [2, 1024] });
    for (let round = 0; round < 3; round++) {
      const value = new T.NDArray('float32', [rows, 1024]);
      value.data.fill(1);
      grow.setValue(value); // reallocates: the old buffer must go, here and on the workers
      assert.equal(((await f(grow, { batch: 2 })) as T.NDArray).item(), 2048);
      grow.setValue(new T.NDArray('float32', [2, 1024]), { oversize: 1 });
      grow.freeMemory();
    }
    const afterSet = (await settledRss()) - before;
    assert.ok(afterSet < 300 * MB, `RSS grew by ${(afterSet / MB).toFixed(0)} MiB after 3 rounds of a 256 MiB setValue`);
  } finally {
    await synk.close();
  }
});

test('a shared variable replaced on the workers (broadcast, setValue) leaves no old values behind', async () => {
  const rows = 64 * 1024; // 256 MiB of float32
  const w = T.shared(new T.NDArray('float32', [1, 1024]), { name: 'w' });
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    await synk.broadcast(w, filled(2, 0));
    const before = await settledRss();
    for (let round = 1; round <= 3; round++) {
      await synk.broadcast(w, filled(rows, round));
      await synk.setValue(1, w, filled(rows, -round));
    }
    // Live: the controller's value and one per worker (768 MiB); each round made 1.25 GiB of garbage.
    const grown = (await settledRss(1500)) - before;
    assert.ok(grown < 1100 * MB, `RSS grew by ${(grown / MB).toFixed(0)} MiB; 768 MiB are live`);
    assert.equal(((await synk.getValue(1, w)) as T.NDArray).data[5], -3);
  } finally {
    await synk.close();
  }
});
