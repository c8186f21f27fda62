// CUDA graphs on a real GPU (every test skips, saying why, where none is usable): a training step
// replayed as a graph equals the same steps without graphs and the float64 oracle; a bad label
// inside a replay still raises the clear error and changes nothing; shared values set from outside
// are seen (the graph is captured again); programs that cannot be recorded keep running plainly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import * as X from '../../../src/extensions/index.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';
import type { CudaExecutable } from '../../../src/devices/cuda/executable.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';
import { gpu } from '../../helpers/gpu.js';

/** An MLP step with Adam as one program (the gradients straight into the update). */
function mlpStep(device: T.Device, dtype: 'float32' | 'float64', seed = 3) {
  const x = T.matrix('x', dtype);
  const y = T.vector('y', 'int32');
  const net = X.sequential(X.dense(6, 16, { activation: 'relu', rng: new X.Rng(seed), dtype }), X.dense(16, 4, { rng: new X.Rng(seed + 1), dtype }));
  const loss = X.crossEntropy(net.apply(x), y);
  const opt = X.makeOptimizer('adam', net.params, { loss }, { learningRate: 0.01 });
  const step = T.fn({ inputs: [x, y], outputs: loss, updates: opt.directUpdates!, device });
  return { step, params: net.params, opt };
}

const stateOf = (f: { compiled: { executables: Map<string, { exe: unknown }> } }): string =>
  ([...f.compiled.executables.values()][0]!.exe as CudaExecutable).graphState;

test('a training step replays as a CUDA graph and equals plain runs and the float64 oracle', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const plainDev = new CudaDevice({ graphs: false });
  try {
    const graphed = mlpStep(dev, 'float32');
    const plain = mlpStep(plainDev, 'float32');
    const oracle = mlpStep(new T.ReferenceDevice({ float64: true }), 'float64');
    for (let k = 0; k < 6; k++) {
      const xs = randomArray([8, 6], 10 + k, { dtype: 'float32' });
      const ys = NDArray.from(Array.from({ length: 8 }, (_, r) => (r * 3 + k) % 4), { dtype: 'int32' });
      const a = (graphed.step(xs, ys) as NDArray).item();
      const b = (plain.step(xs, ys) as NDArray).item();
      const c = (oracle.step(xs.astype('float64'), ys) as NDArray).item();
      assert.ok(Math.abs(a - b) < 1e-6, `step ${k}: graph ${a} vs plain ${b}`);
      assert.ok(Math.abs(a - c) < 1e-4, `step ${k}: graph ${a} vs oracle ${c}`);
    }
    assert.equal(stateOf(graphed.step as never), 'captured');
    assert.equal(stateOf(plain.step as never), 'plain');
    graphed.params.forEach((p, i) => assertAllClose(p.getValue(), plain.params[i]!.getValue(), { rtol: 1e-5, atol: 1e-6 }, `param ${i}`));
    graphed.opt.slots.forEach((s, i) => assertAllClose(s.getValue(), plain.opt.slots[i]!.getValue(), { rtol: 1e-5, atol: 1e-6 }, `slot ${i}`));

    // A bad label inside a replay: the clear error, and no parameter or state changes.
    const before = [...graphed.params, ...graphed.opt.slots].map((s) => s.getValue());
    const xs = randomArray([8, 6], 99, { dtype: 'float32' });
    const bad = NDArray.from([0, 1, 2, 3, 9, 1, 2, 3], { dtype: 'int32' });
    assert.throws(() => graphed.step(xs, bad), /index 9 is out of range for 4 classes/);
    [...graphed.params, ...graphed.opt.slots].forEach((s, i) => assertAllClose(s.getValue(), before[i]!, { rtol: 0, atol: 0 }, `state ${i} unchanged`));

    // A value set from outside reaches the next step (a new buffer: captured again).
    const w = graphed.params[0]!;
    w.setValue(new NDArray('float32', w.getValue().shape));
    plain.params[0]!.setValue(new NDArray('float32', w.getValue().shape));
    graphed.opt.resetState();
    plain.opt.resetState();
    for (let k = 0; k < 3; k++) {
      const xk = randomArray([8, 6], 50 + k, { dtype: 'float32' });
      const yk = NDArray.from([0, 1, 2, 3, 0, 1, 2, 3], { dtype: 'int32' });
      const a = (graphed.step(xk, yk) as NDArray).item();
      const b = (plain.step(xk, yk) as NDArray).item();
      assert.ok(Math.abs(a - b) < 1e-6, `after setValue, step ${k}: ${a} vs ${b}`);
    }
  } finally {
    plainDev.close();
  }
});

test('programs a graph cannot replay run plainly: random draws, outputs that are parameters', (t) => {
  const dev = gpu(t);
  if (!dev) return;
  const x = T.matrix('x');
  const p = T.shared(randomArray([3, 3], 1, { dtype: 'float32' }), { name: 'p' });
  // The output is the parameter's old value: a replay would read the written-back one.
  const f = T.fn({ inputs: [x], outputs: [p, T.sum(x)], updates: [[p, T.add(p, 1)]], device: dev });
  for (let k = 0; k < 4; k++) {
    const old = p.getValue();
    const [got] = f(randomArray([2, 3], k, { dtype: 'float32' })) as NDArray[];
    assertAllClose(got!, old, { rtol: 0, atol: 0 }, `call ${k}: the output is the value before the update`);
  }
  assert.equal(stateOf(f as never), 'plain');
  const streams = new T.RandomStreams(5);
  const g = T.fn({ inputs: [x], outputs: T.add(x, streams.uniform([2, 3])), device: dev });
  const draws = [0, 1, 2, 3].map(() => (g(new NDArray('float32', [2, 3])) as NDArray).data[0]);
  assert.equal(new Set(draws).size, 4, 'every call draws new numbers');
  assert.equal(stateOf(g as never), 'plain');
});
