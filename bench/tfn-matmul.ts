// T.fn on a 512x512 float32 matmul: the reference interpreter against the default device (issue #11's before/after).
import * as T from '../src/tensor.js';

const a = T.matrix('a');
const b = T.matrix('b');
const A = new T.NDArray('float32', [512, 512]);
for (let i = 0; i < A.size; i++) A.data[i] = Math.sin(i);
for (const device of [new T.ReferenceDevice(), T.defaultDevice()]) {
  const f = T.fn({ inputs: [a, b], outputs: T.dot(a, b), device });
  f(A, A);
  const n = device.kind === 'reference' ? 3 : 100;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f(A, A);
  console.log(`T.fn 512x512 matmul on ${device.name}: ${((performance.now() - t0) / n).toFixed(2)} ms (median of ${n} calls would be similar; mean shown)`);
}
