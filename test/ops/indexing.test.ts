// Indexing family: slicing (x.get / x.slice / T.subtensor), take / integer-array indexing, and
// setSubtensor / incSubtensor on both, against hand-computed index lists and plain JS loops.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice, runOn } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

/** a[...] with, per axis, a number (drops the axis) or an explicit list of positions. */
function pick(a: NDArray, axes: readonly (number | readonly number[])[]): NDArray {
  const lists = a.shape.map((_, i) => axes[i] ?? [...Array(a.shape[i]).keys()]);
  const shape = lists.filter((l): l is readonly number[] => typeof l !== 'number').map((l) => l.length);
  const out: number[] = [];
  const walk = (axis: number, idx: number[]): void => {
    if (axis === a.ndim) { out.push(a.get(...idx)); return; }
    const l = lists[axis]!;
    for (const i of typeof l === 'number' ? [l] : l) walk(axis + 1, [...idx, i]);
  };
  walk(0, []);
  return new NDArray('float64', shape, Float64Array.from(out));
}

const range = (n: number): number[] => [...Array(n).keys()];
const i32 = (v: number | number[] | number[][]) => T.constant(v, { dtype: 'int32' });

// Python slices of a length-7 axis and the positions they select (checked against CPython).
const SLICES: [T.SliceSpec, number[]][] = [
  [[1, 5, 2], [1, 3]],
  [[null, null, -1], [6, 5, 4, 3, 2, 1, 0]],
  [[-2], [5, 6]],
  [[5, 1, -2], [5, 3]],
  [[-100, 100], range(7)],
  [[10], []],
  [[null, -8, -1], [6, 5, 4, 3, 2, 1, 0]],
  [[3, 3], []],
  [[null, null, 3], [0, 3, 6]],
  [[-1, -4, -1], [6, 5, 4]],
  [[6, 0, -3], [6, 3]],
  [[2, -2], [2, 3, 4]],
  [{ start: 4 }, [4, 5, 6]],
  [{ stop: -5, step: 1 }, [0, 1]],
  [{ step: -2 }, [6, 4, 2, 0]],
  [[], range(7)],
];

forEachDevice('indexing ops', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = runOn(device);

  it('slices follow Python semantics (negative starts, stops and steps, clamping, empty results)', () => {
    const v = T.vector('v');
    const a = randomArray([7], 1, { dtype: 'float32' });
    const outs = run([v], SLICES.map(([s]) => v.get(s)), a);
    SLICES.forEach(([s, want], k) => assertAllClose(outs[k]!, pick(a, [want]), tol, `slice ${JSON.stringify(s)}`));
  });

  it('integers drop axes, slices keep them, missing trailing axes are whole; get, slice and subtensor agree', () => {
    const x = T.tensor3('x');
    const a = randomArray([4, 5, 3], 2, { dtype: 'float32' });
    const cases: [T.Variable, (number | number[])[]][] = [
      [x.get(1), [1]],
      [x.get(-1, [null, null, -1]), [3, [4, 3, 2, 1, 0]]],
      [x.slice([1, 3], 2), [[1, 2], 2]],
      [x.get(null, 0, -2), [range(4), 0, 1]],
      [T.subtensor(x, [{ start: -3, step: 2 }, [1, -1], 0]), [[1, 3], [1, 2, 3], 0]],
      [x.get(2, 4, 0), [2, 4, 0]],
      [x.get(), []],
    ];
    const outs = run([x], cases.map(([v]) => v), a);
    cases.forEach(([, axes], k) => assertAllClose(outs[k]!, pick(a, axes), tol, `case ${k}`));
    assert.deepEqual(outs[5]!.shape, []);
  });

  it('symbolic int32 indices and bounds, as in givens x[i*bs:(i+1)*bs]', () => {
    const x = T.matrix('x');
    const i = T.scalar('i', 'int32');
    const j = T.scalar('j', 'int32');
    const a = randomArray([6, 4], 3, { dtype: 'float32' });
    const outs = run([x, i, j], [x.get(i), x.get([i, j]), x.get(null, [j, null, T.neg(i)]), x.get(j, i)], a, 2, -1);
    assertAllClose(outs[0]!, pick(a, [2]), tol);
    assertAllClose(outs[1]!, pick(a, [[2, 3, 4]]), tol);
    assertAllClose(outs[2]!, pick(a, [range(6), [3, 1]]), tol);
    assertAllClose(outs[3]!, pick(a, [5, 2]), tol);

    const data = T.shared(a, { name: 'data' });
    const index = T.scalar('index', 'int32');
    const batch = T.matrix('batch');
    const bs = 2;
    const f = T.fn({ inputs: [index], outputs: T.sum(batch, 1), givens: [[batch, data.get([T.mul(index, bs), T.mul(T.add(index, 1), bs)])]], device });
    const rowSums = (r: number[]) => r.map((k) => range(4).reduce((s, q) => s + a.get(k, q), 0));
    assertAllClose(f(1) as NDArray, rowSums([2, 3]), tol);
    assertAllClose(f(2) as NDArray, rowSums([4, 5]), tol);
  });

  it('empty axes, NaN and Inf pass through unchanged', () => {
    const x = T.matrix('x');
    const empty = NDArray.from(new Float32Array(0), { shape: [0, 3] });
    const outs = run([x], [x.get([1, 3]), x.get(null, 1), x.get([null, null, -1])], empty);
    assert.deepEqual(outs.map((o) => o.shape), [[0, 3], [0], [0, 3]]);
    const a = NDArray.from([[NaN, Infinity], [-Infinity, 1]], { dtype: 'float32' });
    assertAllClose(run([x], [x.get(null, [null, null, -1])], a)[0]!, [[Infinity, NaN], [1, -Infinity]]);
  });

  it('broadcastable flags: whole slices keep them, other slices do not', () => {
    const x = T.tensor({ broadcastable: [true, false, true] });
    assert.deepEqual(x.get(null, [1]).broadcastable, [true, false, true]);
    assert.deepEqual(x.get([0, 1]).broadcastable, [false, false, true]);
    assert.deepEqual(x.get(0, null, 0).broadcastable, [false]);
  });

  it('build-time errors name the op and the rule', () => {
    const x = T.matrix('x');
    assert.throws(() => x.get(0, 0, 0), (e: Error) => e.name === 'OpTypeError' && /subtensor: too many indices: 3 entries for ndim 2/.test(e.message));
    assert.throws(() => x.get([0, 2, 0]), /slice step on axis 0 cannot be zero/);
    assert.throws(() => x.get(T.scalar('f')), /must be an int32 or uint8 scalar/);
    assert.throws(() => x.get(1.5), /not an integer/);
    assert.throws(() => x.get([0, 1, 2, 3] as unknown as T.SliceSpec), /expected \[start, stop, step\]/);
    assert.throws(() => T.tensor({ broadcastable: [true, false] }).get(2), /index 2 is out of range for broadcastable/);
  });

  it('run-time errors: out-of-range integers and a zero symbolic step', () => {
    const x = T.matrix('x');
    const i = T.scalar('i', 'int32');
    const f = T.fn({ inputs: [x, i], outputs: x.get(null, i), device });
    const a = randomArray([2, 3], 4, { dtype: 'float32' });
    assertAllClose(f(a, -3) as NDArray, pick(a, [range(2), 0]), tol);
    assert.throws(() => f(a, 3), (e: Error) => e.name === 'OpRuntimeError' && /index 3 is out of range for axis 1 of size 3/.test(e.message));
    assert.throws(() => f(a, -4), /index -4 is out of range/);
    const g = T.fn({ inputs: [x, i], outputs: x.get([null, null, i]), device });
    assert.throws(() => g(a, 0), /step on axis 0 is zero/);
  });

  it('take: integer arrays of any ndim on any axis, negative indices wrap, repeats allowed', () => {
    const x = T.tensor3('x');
    const idx = T.matrix('idx', 'int32');
    const a = randomArray([3, 4, 2], 5, { dtype: 'float32' });
    const ia = NDArray.from([[0, -1, 2], [3, 3, -4]], { dtype: 'int32' });
    const [t1, t0, tl, tf, tg] = run([x, idx], [x.take(idx, 1), T.take(x, [2, 0, 2], 0), x.take(i32([1, -2]), -1), x.take([0, 23]), x.get(null, idx)], a, ia);
    const wrap = (k: number, n: number) => (k < 0 ? k + n : k);
    const want = new NDArray('float64', [3, 2, 3, 2]);
    let o = 0;
    for (let p = 0; p < 3; p++) {
      for (let r = 0; r < 2; r++) for (let s = 0; s < 3; s++) for (let q = 0; q < 2; q++) want.data[o++] = a.get(p, wrap(ia.get(r, s), 4), q);
    }
    assertAllClose(t1!, want, tol);
    assertAllClose(tg!, want, tol);
    assertAllClose(t0!, pick(a, [[2, 0, 2]]), tol);
    assertAllClose(tl!, pick(a, [range(3), range(4), [1, 0]]), tol);
    assertAllClose(tf!, [a.data[0]!, a.data[23]!], tol);
    assert.deepEqual(x.take(idx, 1).broadcastable, [false, false, false, false]);
  });

  it('take: empty indices, errors at build and run time', () => {
    const x = T.matrix('x');
    const idx = T.vector('idx', 'int32');
    const f = T.fn({ inputs: [x, idx], outputs: x.take(idx, 0), device });
    const a = randomArray([3, 2], 6, { dtype: 'float32' });
    assert.deepEqual((f(a, new Int32Array(0)) as NDArray).shape, [0, 2]);
    assert.throws(
      () => f(a, [0, 7]),
      (e: Error) => e.name === 'OpRuntimeError' && /index 7 \(at position 1 of the indices\) is out of range for axis 0 of size 3/.test(e.message),
    );
    assert.throws(() => f(a, [-4]), /index -4/);
    assert.throws(() => x.take(T.vector('f'), 0), (e: Error) => e.name === 'OpTypeError' && /indices must be an integer tensor/.test(e.message));
    assert.throws(() => x.take([0], 2), /axis 2 is out of range for ndim 2/);
    assert.throws(() => T.take(T.scalar('s'), [0], 0), /out of range for ndim 0/);
    assert.throws(() => x.get([0, 1], idx), /integer-array entry may only be combined with whole axes/);
  });

  it('setSubtensor / incSubtensor on slices: y broadcasts to the region, x is unchanged', () => {
    const x = T.matrix('x');
    const y = T.vector('y');
    const a = randomArray([4, 3], 7, { dtype: 'float32' });
    const b = randomArray([3], 8, { dtype: 'float32' });
    const outs = run([x, y], [
      T.setSubtensor(x.get([1, 3]), y), T.incSubtensor(x.get([null, null, -2], 1), 10), T.setSubtensor(x.get(-1, 0), y.get(1)),
      T.incSubtensor(x.get(null, [5]), 1), x,
    ], a, b);
    const expect = (f: (r: number, q: number, v: number) => number) => range(4).map((r) => range(3).map((q) => f(r, q, a.get(r, q))));
    assertAllClose(outs[0]!, expect((r, q, v) => (r === 1 || r === 2 ? b.get(q) : v)), tol);
    assertAllClose(outs[1]!, expect((r, q, v) => (q === 1 && (r === 3 || r === 1) ? v + 10 : v)), tol);
    assertAllClose(outs[2]!, expect((r, q, v) => (r === 3 && q === 0 ? b.get(1) : v)), tol);
    assertAllClose(outs[3]!, a, tol);
    assertAllClose(outs[4]!, a, tol);
  });

  it('setSubtensor / incSubtensor on take: repeated indices accumulate, set keeps the last', () => {
    const x = T.matrix('x');
    const a = randomArray([3, 2], 9, { dtype: 'float32' });
    const idx = i32([0, 2, 0, -3]);
    const vals = NDArray.from([[1, 2], [3, 4], [5, 6], [7, 8]], { dtype: 'float32' });
    const [inc, set, incCol] = run(
      [x],
      [T.incSubtensor(x.take(idx, 0), T.constant(vals)), T.setSubtensor(x.take(idx, 0), T.constant(vals)), T.incSubtensor(x.take([1, 1], 1), 1)],
      a,
    );
    assertAllClose(inc!, [[a.get(0, 0) + 13, a.get(0, 1) + 16], [a.get(1, 0), a.get(1, 1)], [a.get(2, 0) + 3, a.get(2, 1) + 4]], tol);
    assertAllClose(set!, [[7, 8], [a.get(1, 0), a.get(1, 1)], [3, 4]], tol);
    assertAllClose(incCol!, range(3).map((r) => [a.get(r, 0), a.get(r, 1) + 2]), tol);
  });

  it('integer tensors: inc wraps like int32, set accepts up-casts', () => {
    const x = T.vector('x', 'int32');
    const [inc, set] = run([x], [T.incSubtensor(x.get([1]), 5), T.setSubtensor(x.take([1]), T.constant(true))], [1, 2, 3]);
    assert.deepEqual(inc!.toArray(), [1, 7, 8]);
    assert.equal(inc!.dtype, 'int32');
    assert.deepEqual(set!.toArray(), [1, 1, 3]);
  });

  it('setSubtensor / incSubtensor errors', () => {
    const x = T.matrix('x');
    assert.throws(() => T.setSubtensor(T.sum(x, 0), 1), /setSubtensor: the first argument must be the result of a slicing or take expression/);
    assert.throws(
      () => T.incSubtensor(x.get(0), T.matrix('m')),
      (e: Error) => e.name === 'OpTypeError' && /y has ndim 2, more than the selected region \(ndim 1\)/.test(e.message),
    );
    assert.throws(() => T.setSubtensor(T.vector('k', 'int32').get(0), T.scalar('f')), /cannot be stored into int32 without a down-cast/);
    const f = T.fn({ inputs: [x], outputs: T.setSubtensor(x.get([0, 2]), T.constant([1, 2, 3, 4])), device });
    assert.throws(
      () => f(randomArray([3, 3], 1, { dtype: 'float32' })),
      (e: Error) => e.name === 'OpRuntimeError' && /y of shape \(4,\) does not broadcast to the selected region of shape \(2, 3\)/.test(e.message),
    );
  });

  it('gradients of slicing (incl. negative steps and symbolic indices) match finite differences', () => {
    const a = randomArray([5, 4], 10);
    verifyGrad((x) => x.get([1, null, 2], [null, null, -1]), [a]);
    verifyGrad((x) => x.get(-1), [a]);
    verifyGrad((x) => x.get(i32(2), [i32(1), null]), [a]);
    verifyGrad((x) => T.mul(x.get([4, 0, -2]), x.get([0, 2])), [a]);
    // Gradient of a gradient: the gradient of incSubtensor.
    verifyGrad((x) => T.grad(T.sum(T.square(x.get([1, 3]))), x), [a]);
  });

  it('gradients of take scatter-add (repeats accumulate)', () => {
    const a = randomArray([3, 4], 11);
    verifyGrad((x) => T.take(x, i32([0, 2, 0, -1]), 1), [a]);
    verifyGrad((x) => x.take(i32([[2, 2], [0, 1]]), 0), [a]);
    const x = T.matrix('x', 'float64');
    const g = T.fn({ inputs: [x], outputs: T.grad(T.sum(x.take(i32([0, 0, 2]), 1)), x), device })(a) as NDArray;
    assertAllClose(g, range(3).map(() => [2, 0, 1, 0]));
  });

  it('incTake with many repeated indices (take gradients, inc and set on a take) against the float64 oracle', () => {
    const oracle = new T.ReferenceDevice({ float64: true });
    const same = (inputs: T.Variable[], outputs: T.Variable[], values: NDArray[], what: string, exact: boolean) => {
      const got = T.fn({ inputs, outputs, device })(...values) as NDArray[];
      const want = T.fn({ inputs, outputs, device: oracle })(...values) as NDArray[];
      got.forEach((g, i) => assertAllClose(g, want[i]!, exact ? { rtol: 0, atol: 0 } : tol, `${what} output ${i}`));
    };
    // An embedding table of 20 rows looked up 300 times (negative indices included): its gradient sums the repeats.
    const positions = randomArray([300], 21, { dtype: 'int32', lo: -20, hi: 20 });
    const emb = T.matrix('emb'), iv = T.tensor({ dtype: 'int32', ndim: 1, name: 'i' });
    const table = randomArray([20, 6], 22, { dtype: 'float32' });
    const rows = randomArray([300, 6], 23, { dtype: 'float32' });
    const up = T.matrix('up');
    const gEmb = T.grad(T.sum(T.mul(T.take(emb, iv, 0), up)), emb);
    same([emb, iv, up], [gEmb, T.incSubtensor(emb.take(iv, 0), up)], [table, positions, rows], 'float32 axis 0', false);
    // Setting through repeated indices keeps the last value written, as the sequential reference does.
    same([emb, iv, up], [T.setSubtensor(emb.take(iv, 0), up), T.setSubtensor(emb.take(iv, 0), T.constant(2))], [table, positions, rows], 'set', true);
    // float64, a middle axis, 2-d indices and y broadcast along the leading axis.
    const cube = T.tensor({ dtype: 'float64', ndim: 3, name: 'cube' }), i2 = T.tensor({ dtype: 'int32', ndim: 2, name: 'i2' });
    const yb = T.tensor({ dtype: 'float64', ndim: 3, name: 'yb' });
    same([cube, i2, yb], [T.incSubtensor(cube.take(i2, 1), yb), T.grad(T.sum(T.square(T.take(cube, i2, 1))), cube)],
      [randomArray([3, 5, 4], 24), randomArray([6, 7], 25, { dtype: 'int32', lo: -5, hi: 5 }), randomArray([6, 7, 4], 26)], 'float64 axis 1', false);
    // int32 accumulates exactly (and wraps like int32).
    const xi = T.vector('xi', 'int32'), yi = T.vector('yi', 'int32');
    same([xi, iv, yi], [T.incSubtensor(xi.take(iv), yi)],
      [
        NDArray.from([2 ** 31 - 5, 0, ...range(18)], { dtype: 'int32' }),
        positions,
        randomArray([300], 27, { dtype: 'int32', lo: -1000, hi: 1000 }),
      ], 'int32', true);
  });

  it('gradients of setSubtensor / incSubtensor with respect to x and y', () => {
    const a = randomArray([4, 3], 12);
    const row = randomArray([3], 13);
    const col = randomArray([2, 1], 14);
    verifyGrad((x, y) => T.setSubtensor(x.get([1, 3]), y), [a, row]);
    verifyGrad((x, y) => T.incSubtensor(x.get([null, null, -2]), y), [a, row]);
    verifyGrad((x, y) => T.setSubtensor(x.get([2, 0, -1], [1]), y), [a, col]);
    verifyGrad((x, y) => T.incSubtensor(x.take(i32([0, 3, 0]), 0), y), [a, row]);
    verifyGrad((x, y) => T.setSubtensor(x.take(i32([2, 0]), 1), y), [a, col.reshape([1, 2])]);
    verifyGrad((x, y) => T.square(T.incSubtensor(x.get(1, 2), T.sum(y))), [a, row]);
  });
});
