// Contiguous slices as views on a real GPU (every test skips, saying why, where none is usable): rows, row
// ranges and symbolic rows of an intermediate matrix equal the reference device's, as do the slices that stay
// copies (a column, rows not 256-byte aligned, rows of a shared variable); and a shared variable set to a
// reshape of another keeps a buffer of its own, so a replayed CUDA graph's write-back changes only it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';
import { gpu } from '../../helpers/gpu.js';

test('contiguous slices (views) and strided or unaligned ones (copies) equal the reference device', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const ref = new T.ReferenceDevice();
  const wide = randomArray([4, 64], 1, { dtype: 'float32' });
  const narrow = randomArray([4, 3], 2, { dtype: 'float32' });
  const build = (device: T.Device) => {
    const q = T.shared(wide, { name: 'q' });
    const r = T.shared(narrow, { name: 'r' });
    const i = T.scalar('i', 'int32');
    // Slices of an intermediate (views where contiguous and aligned) and of the shared variables themselves (copies).
    const m = T.mul(q, 2);
    const outputs = [
      T.subtensor(m, [1]), T.subtensor(m, [[1, 3]]), T.subtensor(m, [i]), T.mul(T.subtensor(m, [-1]), 2),
      T.subtensor(m, [null, 5]), T.subtensor(T.mul(r, 2), [1]), T.subtensor(T.subtensor(m, [[2, 4]]), [1]), T.subtensor(q, [1]),
    ];
    return T.fn({ inputs: [i], outputs, device });
  };
  const ours = build(dev);
  const want = build(ref);
  for (const i of [0, 2, -3]) {
    const a = ours(NDArray.scalar(i, 'int32')) as NDArray[];
    const b = want(NDArray.scalar(i, 'int32')) as NDArray[];
    a.forEach((x, k) => assertAllClose(x, b[k]!, { rtol: 0, atol: 0 }, `output ${k}, i = ${i}`));
  }
  assert.throws(() => ours(NDArray.scalar(4, 'int32')), /index 4 is out of range for axis 0 of size 4/);
});

test('a shared variable set to a reshape of another is not written back into the other by a graph replay', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const q0 = randomArray([2, 64], 3, { dtype: 'float32' });
  const q = T.shared(q0, { name: 'q' });
  const p = T.shared(new NDArray('float32', [128]), { name: 'p' });
  const takeAll = T.fn({ inputs: [], outputs: [], updates: [[p, T.reshape(q, [128])]], device: dev });
  const step = T.fn({ inputs: [], outputs: [], updates: [[p, T.mul(p, 2)], [q, T.add(q, 1)]], device: dev });
  let pHost = new Float64Array(128);
  const qHost = Float64Array.from(q0.data);
  const runStep = () => {
    step();
    pHost = pHost.map((v) => v * 2);
    for (let k = 0; k < qHost.length; k++) qHost[k]! += 1;
  };
  runStep();
  runStep(); // captured as a graph from the second call
  takeAll(); // p <- a reshape of q: the update result is copied into a buffer of p's own (executable.ts ownUpdateResults)
  pHost = qHost.slice();
  for (let k = 0; k < 3; k++) runStep();
  assertAllClose(p.getValue(), NDArray.from(Array.from(pHost), { dtype: 'float64' }), { rtol: 1e-6, atol: 1e-5 }, 'p');
  assertAllClose(q.getValue(), NDArray.from(Array.from(qHost), { dtype: 'float64' }).reshape([2, 64]), { rtol: 1e-6, atol: 1e-5 }, 'q');
});
