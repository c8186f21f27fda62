// The 'bf16' policy through the data-parallel API on 2 CPU workers: synk.fn's products are bfloat16
// products (against a float64 oracle on rounded operands), and a makeTrainFunction step under 'bf16'
// applies the gradient of bfloat16 products to float32 master weights, with float32 optimizer state.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { randomArray } from '../helpers/allclose.js';
import { bf16Oracle } from '../helpers/bf16.js';

/** float64 C = round(A)ᵀᵃ · round(B) for row-major matrices (A transposed when `ta`). */
function oracleMatmul(a: NDArray, b: NDArray, round: (v: number) => number, ta = false): Float64Array {
  const [r, c] = a.shape as [number, number];
  const [m, k] = ta ? [c, r] : [r, c];
  const n = b.shape[1]!;
  const at = (i: number, p: number) => (ta ? a.data[p * c + i]! : a.data[i * c + p]!);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += round(at(i, p)) * round(b.data[p * n + j]!);
    out[i * n + j] = s;
  }
  return out;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe("the 'bf16' policy on 2 CPU workers", () => {
  before(async () => { await synk.fork({ n: 2, devices: 'cpu' }); });
  after(async () => { await synk.close(); });

  const xs = randomArray([8, 40], 31, { dtype: 'float32' });
  const ys = randomArray([8, 3], 32, { dtype: 'float32' });
  const w0 = randomArray([40, 3], 33, { dtype: 'float32' });

  it('synk.fn multiplies bfloat16 operands on every worker; a bad precision is refused before anything registers', async () => {
    const x = T.matrix('x');
    const W = T.shared(w0.copy(), { name: 'W' });
    const f = synk.fn({ inputs: [x], outputs: [[T.dot(x, W), 'gather']], precision: 'bf16' });
    const [got] = (await f(xs)) as NDArray[];
    assert.ok(maxDiff(got!.data, oracleMatmul(xs, w0, bf16Oracle)) < 2e-6, 'equals the rounded oracle');
    assert.ok(maxDiff(got!.data, oracleMatmul(xs, w0, Math.fround)) > 1e-3, 'and not the float32 products');
    assert.throws(() => synk.fn({ inputs: [x], outputs: T.dot(x, W), precision: 'tf32' as never }),
      (e: unknown) => e instanceof RangeError && /^synk\.fn: precision must be 'fp32' or 'bf16', got "tf32"$/.test(e.message));
  });

  it('makeTrainFunction under bf16: sgd applies the bfloat16-product gradient to float32 master weights', async () => {
    const x = T.matrix('x');
    const y = T.matrix('y');
    const W = T.shared(w0.copy(), { name: 'W' });
    const loss = T.mean(T.square(T.dot(x, W).sub(y)));
    const lr = 0.25;
    const train = X.makeTrainFunction(loss, [W], [x, y], 'sgd', { learningRate: lr, precision: 'bf16' });
    await train(xs, ys);
    const w1 = W.getValue();
    assert.equal(w1.dtype, 'float32', 'the master weights stay float32');
    // Oracle: G = 2 (round(x)·round(W) - y) / 24, gradient round(x)ᵀ · round(G), in float64.
    const p = oracleMatmul(xs, w0, bf16Oracle);
    const G = NDArray.from(Array.from(p, (v, i) => (2 * (v - ys.data[i]!)) / ys.size), { dtype: 'float64' }).reshape([8, 3]);
    const grad = oracleMatmul(xs, G, bf16Oracle, true);
    const exactGrad = oracleMatmul(xs, NDArray.from(Array.from(oracleMatmul(xs, w0, Math.fround), (v, i) => (2 * (v - ys.data[i]!)) / ys.size),
      { dtype: 'float64' }).reshape([8, 3]), Math.fround, true);
    const stepGrad = Array.from(w1.data, (v, i) => (w0.data[i]! - v) / lr);
    const scale = Math.max(...grad.map(Math.abs));
    assert.ok(maxDiff(stepGrad, grad) < 2e-3 * scale, `step vs bf16 oracle ${maxDiff(stepGrad, grad) / scale}`);
    assert.ok(maxDiff(grad, exactGrad) > 2 * maxDiff(stepGrad, grad), 'the bfloat16 gradient is told apart from the float32 one');
  });

  it('makeTrainFunction under bf16 with adam: parameters and optimizer state are float32 and training lowers the loss', async () => {
    const x = T.matrix('x');
    const y = T.matrix('y');
    const W = T.shared(w0.copy(), { name: 'W' });
    const loss = T.mean(T.square(T.dot(x, W).sub(y)));
    const train = X.makeTrainFunction(loss, [W], [x, y], 'adam', { learningRate: 0.02, precision: 'bf16' });
    const first = await train(xs, ys);
    let last = first;
    for (let i = 0; i < 20; i++) last = await train(xs, ys);
    assert.ok(last < 0.5 * first, `loss ${first} -> ${last}`);
    assert.equal(W.getValue().dtype, 'float32');
    for (const s of train.optimizer.slots) assert.equal(s.dtype, 'float32', `optimizer state ${s.name ?? s.sharedId}`);
    assert.ok(train.gradFn.description.program.steps.some((s) => s.attrs['precision'] === 'bf16'), 'the gradient function runs bf16 products');
  });
});
