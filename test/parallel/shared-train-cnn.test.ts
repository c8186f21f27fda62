// The MNIST-style CNN (conv 5x5 'same' + ReLU + 2x2 max pool, twice, then a dense head) trained
// with makeTrainFunction on 3 CPU workers (the shared-state step: the CPU device's wide-grid
// convolutions, WebAssembly pooling and bias passes on every rank) equals float64 training of the
// same network on the reference device, one device on the whole batch, over uneven batches.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

const REF = new T.ReferenceDevice();

/** conv5x5(4)-relu-pool-conv5x5(6)-relu-pool-dense(3) on 1x12x12 images; two builds with one seed start equal. */
function cnn(dtype: 'float32' | 'float64') {
  const rng = new X.Rng(11);
  const net = X.sequential(
    X.conv2dLayer(1, 4, 5, { padding: 2, activation: 'relu', rng: rng.fork(), dtype }), X.maxPool(2),
    X.conv2dLayer(4, 6, 5, { padding: 2, activation: 'relu', rng: rng.fork(), dtype }), X.maxPool(2),
    X.flatten(), X.dense(6 * 3 * 3, 3, { rng: rng.fork(), dtype }),
  );
  const x = T.tensor4('x', dtype);
  const y = T.vector('y', 'int32');
  return { x, y, params: net.params, loss: X.crossEntropy(net.apply(x), y) };
}

function rowsOf(a: NDArray, idx: readonly number[]): NDArray {
  const w = a.size / a.shape[0]!;
  const out = new NDArray(a.dtype, [idx.length, ...a.shape.slice(1)]);
  idx.forEach((r, i) => out.data.set(a.data.subarray(r * w, (r + 1) * w), i * w));
  return out;
}

describe('the CNN step on 3 CPU workers', () => {
  before(async () => { await synk.fork({ n: 3, devices: 'cpu' }); });
  after(async () => { await synk.close(); });

  it('float32 on CPU workers equals the float64 reference on one device (Adam, uneven batches)', async () => {
    const images = randomArray([14, 1, 12, 12], 3, { dtype: 'float32', lo: 0, hi: 1 });
    const labels = NDArray.from(Array.from({ length: 14 }, (_, i) => (i * 7) % 3), { dtype: 'int32', shape: [14] });
    const m = cnn('float32');
    const ref = cnn('float64');
    const train = X.makeTrainFunction(m.loss, m.params, [m.x, m.y], 'adam', { learningRate: 0.01 });
    const opt = X.makeOptimizer('adam', ref.params, { loss: ref.loss }, { learningRate: 0.01 });
    const g = T.fn({
      inputs: [ref.x, ref.y], outputs: ref.loss, updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]), device: REF,
    });
    const u = T.fn({ updates: opt.paramUpdates, device: REF });
    const xs = synk.data(images);
    const ys = synk.data(labels);
    // 7 rows (3, 2, 2 over the ranks), the whole set, 4 rows.
    const batches = [[13, 0, 5, 2, 9, 11, 4], Array.from({ length: 14 }, (_, i) => i), [1, 3, 6, 8]];
    for (const [k, batch] of batches.entries()) {
      const loss = await train(xs, ys, { batch });
      const want = (g(rowsOf(images, batch).astype('float64'), rowsOf(labels, batch)) as NDArray).item();
      u();
      assert.ok(Math.abs(loss - want) < 1e-4, `step ${k}: loss ${loss} vs ${want}`);
    }
    assert.ok(train.timings() !== null, 'the shared-state step ran');
    m.params.forEach((p, i) => assertAllClose(p.getValue().astype('float64'), ref.params[i]!.getValue(), { rtol: 1e-3, atol: 1e-4 }, `param ${i}`));
  });
});
