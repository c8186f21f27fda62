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
