import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import * as T from '../../src/tensor.js';
import { forEachDevice } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

forEachDevice('compiled functions', (device, c) => {
  test('single output, output list, no outputs', () => {
    const x = T.vector('x');
    const y = T.vector('y');
    const one = T.fn({ inputs: [x, y], outputs: x.add(y), device });
    const r = one([1, 2], [3, 4]);
    assert.ok(r instanceof T.NDArray);
    assert.deepEqual(r.toArray(), [4, 6]);
    const many = T.fn({ inputs: [x, y], outputs: [x.mul(y), x.sub(y).sum()], device });
    const [p, s] = many([1, 2], [3, 4]) as T.NDArray[];
    assert.deepEqual(p!.toArray(), [3, 8]);
    assert.equal(s!.item(), -4);
    assert.deepEqual(s!.shape, []);
    const none = T.fn({ inputs: [x], outputs: [], device });
    assert.deepEqual(none([1]), []);
  });

  test('updates are computed from old values, then applied together', () => {
    const a = T.shared([1, 2], { name: 'a' });
    const b = T.shared([10, 20], { name: 'b' });
    const f = T.fn({ inputs: [], outputs: a.add(b), updates: [[a, b], [b, a]], device });
    assert.deepEqual((f() as T.NDArray).toArray(), [11, 22]);
    assert.deepEqual(a.getValue().toArray(), [10, 20]);
    assert.deepEqual(b.getValue().toArray(), [1, 2]);
    f();
    assert.deepEqual(a.getValue().toArray(), [1, 2]);
  });

  test('an update whose expression does not read its variable', () => {
    const m = T.shared([0, 0], { name: 'm' });
    const x = T.matrix('x');
    const f = T.fn({ inputs: [x], outputs: [], updates: [[m, T.mean(x, 0)]], device });
    f([[1, 2], [3, 4]]);
    assert.deepEqual(m.getValue().toArray(), [2, 3]);
  });

  test('givens replace variables, including minibatch slicing with a symbolic index', () => {
    const data = T.shared([[1, 2], [3, 4], [5, 6], [7, 8]], { name: 'data' });
    const x = T.matrix('x');
    const w = T.vector('w');
    const cost = x.sum(1).mul(w.sum());
    const f = T.fn({ inputs: [w], outputs: cost, givens: [[x, data]], device });
    assertAllClose(f([1, 1]) as T.NDArray, [6, 14, 22, 30]);
  });

  test('missing inputs and bad specs fail at build time with clear messages', () => {
    const x = T.vector('x');
    const y = T.vector('y');
    assert.throws(() => T.fn({ inputs: [x], outputs: x.add(y), device }), /needs input 'y'/);
    assert.throws(() => T.fn({ inputs: [x.add(1)], outputs: x, device }), /must be a free variable/);
    const s = T.shared([1, 2]);
    assert.throws(() => T.fn({ inputs: [x], outputs: x, updates: [[s, T.matrix()]], device }), /expected ndim 1/);
    assert.throws(() => T.fn({ inputs: [x], outputs: x, updates: [[s, x], [s, x]], device }), /updated twice/);
  });

  test('calls check arity, dtype (down-casts refused), ndim and broadcasting, naming the input', () => {
    const x = T.vector('x');
    const n = T.vector('n', 'int32');
    const f = T.fn({ inputs: [x, n], outputs: x.add(n), device });
    // @ts-expect-error the arity is part of the type; a plain-JS caller still gets a clear error
    assert.throws(() => f([1, 2]), /expected 2 input\(s\) \(x, n\), got 1/);
    assert.throws(() => f(new Float64Array([1, 2]), [1, 2]), /input 0 'x': expected dtype float32.*got float64/);
    assert.deepEqual((f(new Int32Array([1, 2]), new Uint8Array([1, 1])) as T.NDArray).toArray(), [2, 3]);
    assert.throws(() => f([[1, 2]], [1, 2]), /input 0 'x': expected ndim 1/);
    assert.throws(() => f([1, 2, 3], [1, 2]), /do not broadcast.*input 0 'x', input 1 'n'/);
  });

  test('typed arrays with a shape and NDArray inputs are accepted', () => {
    const m = T.matrix('m');
    const f = T.fn({ inputs: [m], outputs: m.sum(0), device });
    assert.deepEqual((f({ data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }) as T.NDArray).toArray(), [5, 7, 9]);
    assert.deepEqual((f(T.NDArray.from([[1], [2]])) as T.NDArray).toArray(), [3]);
  });

  test('a failed call changes no shared variable', () => {
    const s = T.shared([1, 2, 3]);
    const x = T.vector('x');
    const f = T.fn({ inputs: [x], outputs: x.add(s), updates: [[s, s.add(x)]], device });
    assert.throws(() => f([1, 2]));
    assert.deepEqual(s.getValue().toArray(), [1, 2, 3]);
  });

  test('the printed graph shows a fused chain and a folded constant', () => {
    const x = T.matrix('x');
    const k = T.constant(2).mul(3); // folds to 6
    const f = T.fn({ inputs: [x], outputs: x.mul(k).tanh().add(1).exp(), device });
    const g = f.graph();
    assert.match(g, /constant %\d+ = 6/);
    assert.match(g, /fused \{mul\(\$0,\$1\); tanh\(\$3\); add\(\$4,\$2\); exp\(\$5\)\}\(%\d+\(x\), %\d+, %\d+\)/);
    assert.match(g, /constant folding: folded 1/);
    const v = f([[0.5]]) as T.NDArray;
    assertAllClose(v, [[Math.exp(Math.tanh(3) + 1)]], { rtol: c.rtol });
  });

  test('common subexpressions and canonicalisation', () => {
    const x = T.vector('x');
    const f = T.fn({ inputs: [x], outputs: [x.exp().add(x.exp()), x.mul(1).add(0).neg().neg()], device, optimize: { fuse: false } });
    const g = f.graph();
    assert.equal(g.match(/= exp/g)?.length, 1, g);
    assert.match(g, /canonicalisation/);
    const [a, b] = f([0, 1]) as T.NDArray[];
    assertAllClose(a!, [2, 2 * Math.E], { rtol: c.rtol });
    assert.deepEqual(b!.toArray(), [0, 1]);
  });

  test('setValue enforces ndim and dtype and leaves the value unchanged on error', () => {
    const s = T.shared([[1, 2]], { name: 'w' });
    assert.throws(() => s.setValue([1, 2]), /expected ndim 2/);
    assert.throws(() => s.setValue(new Float64Array([1, 2])), /expected ndim 2|expected dtype float32/);
    assert.throws(() => s.setValue(T.NDArray.from([[1, 2]], { dtype: 'float64' })), /expected dtype float32/);
    assert.deepEqual(s.getValue().toArray(), [[1, 2]]);
    s.setValue(T.NDArray.from([[3, 4]], { dtype: 'int32' }));
    assert.deepEqual(s.getValue().toArray(), [[3, 4]]);
    assert.equal(s.getValue().dtype, 'float32');
  });
});

test('a function description round-trips through JSON into a worker thread with identical results', async () => {
  const x = T.matrix('x');
  const w = T.shared(randomArray([3, 2], 1, { dtype: 'float32' }), { name: 'w' });
  const b = T.shared([0.5, -0.5], { name: 'b' });
  const out = x.mul(2).sum(1, true).add(b).tanh();
  const f = T.fn({ inputs: [x], outputs: [out, T.grad(out.sum(), b)], updates: [[b, b.mul(0.9)]] });
  void w;
  const input = randomArray([4, 3], 2, { dtype: 'float32' });
  const json = JSON.stringify(f.describe());
  assert.ok(!/=>|function\s*\(/.test(json), 'no code in the description');
  const local = f(input) as T.NDArray[];
  const afterLocal = b.getValue();
  b.setValue([0.5, -0.5]);
  const worker = new Worker(
    new URL('../fixtures/run-description.js', import.meta.url),
    { workerData: { json, input: { data: Array.from(input.data), shape: input.shape } } },
  );
  const result = await new Promise<{ outputs: { data: number[] }[]; b: number[] }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  local.forEach((l, i) => assert.deepEqual(Array.from(l.data), result.outputs[i]!.data));
  assert.deepEqual(Array.from(afterLocal.data), result.b);
});
