// The controller reads shared values that rank 0 changed lazily, through the results arena, in
// pieces: a value larger than one piece (64 MiB) comes back whole and exact, and close() reads
// what is still unread before the workers go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';

test('a 96 MiB shared value updated on the workers is read back whole, in pieces', async () => {
  const n = 24 * 2 ** 20; // float32 elements: 96 MiB, two pieces
  const init = new T.NDArray('float32', [n / 1024, 1024]);
  for (let i = 0; i < n; i += 4099) init.data[i] = i % 1000;
  const big = T.shared(init, { name: 'big' });
  await synk.fork({ n: 2, devices: 'cpu' });
  try {
    const bump = synk.fn({ outputs: [[big.sum(), 'sum']], updates: [[big, big.add(1)]] });
    await bump();
    const got = big.getValue({ borrow: true });
    assert.deepEqual(got.shape, [n / 1024, 1024]);
    for (let i = 0; i < n; i += 4099) assert.equal(got.data[i], (i % 1000) + 1, `element ${i}`);
    assert.equal(got.data[n - 1], 1, 'the last element (second piece)');
    await bump();
  } finally {
    await synk.close(); // reads the second update back before the workers go
  }
  assert.equal(big.getValue({ borrow: true }).data[4099], (4099 % 1000) + 2);
  assert.equal(big.getValue({ borrow: true }).data[n - 1], 2);
});

test('one worker keeps the buffer a message made for it, never the controller\'s own shared memory', async () => {
  // A value the controller holds in a SharedArrayBuffer travels as that memory (no copy): the worker
  // must copy it, or its in-place updates would write the controller's array.
  const own = new T.NDArray('float32', [4], new Float32Array(new SharedArrayBuffer(16)).fill(1));
  const w = T.shared(new T.NDArray('float32', [4]), { name: 'wShared' });
  w.setValue(own, { borrow: true });
  const v = T.shared(T.NDArray.full([4], 5, 'float32'), { name: 'vCopied' }); // copied into a fresh buffer, which the worker keeps
  await synk.fork({ n: 1, devices: 'cpu' });
  try {
    const twice = synk.fn({ outputs: [[w.sum().add(v.sum()), 'sum']], updates: [[w, w.mul(2)], [v, v.mul(3)]] });
    await synk.distribute();
    // Written behind the variable's back after the worker got its value: the worker's copy must not see it.
    own.data.fill(100);
    const [first] = await twice();
    assert.equal(first!.item(), 4 * 1 + 4 * 5, 'the worker computed with the value it was sent');
    own.data.fill(1);
    for (let i = 0; i < 2; i++) await twice();
    assert.deepEqual(Array.from(own.data), [1, 1, 1, 1], 'the controller\'s shared memory is untouched');
    assert.deepEqual(Array.from(w.getValue().data), [8, 8, 8, 8]);
    assert.deepEqual(Array.from(v.getValue().data), [135, 135, 135, 135]);
    v.setValue(T.NDArray.full([4], 1, 'float32')); // reaches rank 0 with the next call, in a buffer of its own
    const [sum] = await twice();
    assert.equal(sum!.item(), 4 * 8 + 4);
    assert.deepEqual(Array.from(v.getValue().data), [3, 3, 3, 3]);
  } finally {
    await synk.close();
  }
});
