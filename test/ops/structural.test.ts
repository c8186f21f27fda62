// The structural ops written with the core (src/ops/structural.ts, src/build/build.ts): reshape with
// -1 and symbolic dims, flatten, dimshuffle, transpose / .T, expandDims, squeeze, shapes, addBroadcast,
// zerosLike / onesLike. Expectations are plain JS loops over the flat row-major data.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice, runOn } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';

const range = (n: number): number[] => [...Array(n).keys()];
const flat = (a: NDArray): number[] => Array.from(a.data);
const isOpError = (name: string, re: RegExp) => (e: Error) => e.name === name && re.test(e.message);

forEachDevice('structural ops', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const run = runOn(device);

  it('reshape keeps row-major order; -1 is inferred; dims may be symbolic', () => {
    const x = T.tensor3('x');
    const n = T.scalar('n', 'int32');
    const a = randomArray([2, 3, 4], 1, { dtype: 'float32' });
    const outs = run([x, n], [x.reshape([4, -1]), x.reshape([-1]), T.reshape(x, [x.shape[0]!, -1]), x.reshape([n, 3, -1]), x.reshape([2, 3, 4, 1])], a, 1);
    assert.deepEqual(outs.map((o) => o.shape), [[4, 6], [24], [2, 12], [1, 3, 8], [2, 3, 4, 1]]);
    for (const o of outs) assert.deepEqual(flat(o), flat(a));
    const one = T.matrix('one');
    assert.deepEqual(run([one], [one.reshape([])], [[5]])[0]!.shape, []);
    const e = T.matrix('e');
    assert.deepEqual(run([e], [e.reshape([3, -1])], NDArray.from(new Float32Array(0), { shape: [0, 3] }))[0]!.shape, [3, 0]);
    assert.deepEqual(x.reshape([1, -1, 1]).broadcastable, [true, false, true]);
  });

  it('reshape errors at build and run time', () => {
    const x = T.matrix('x');
    assert.throws(() => x.reshape([-1, -1]), isOpError('OpTypeError', /reshape: at most one dimension may be -1/));
    assert.throws(() => x.reshape([-3, 2]), /reshape: bad dimension -3/);
    assert.throws(() => x.reshape([1.5]), /dimension 0 must be an integer/);
    assert.throws(() => x.reshape([T.scalar('f')]), /must be an integer scalar/);
    const f = T.fn({ inputs: [x], outputs: x.reshape([4, -1]), device });
    assert.throws(() => f([[1, 2, 3], [4, 5, 6]]), isOpError('OpRuntimeError', /cannot reshape array of shape \(2, 3\) \(size 6\) into \(4, -1\)/));
  });

  it('flatten to 1 or more axes, also of a scalar', () => {
    const x = T.tensor3('x');
    const s = T.scalar('s');
    const a = randomArray([2, 3, 4], 2, { dtype: 'float32' });
    const [f1, f2, f3] = run([x], [x.flatten(), T.flatten(x, 2), x.flatten(3)], a);
    assert.deepEqual([f1!.shape, f2!.shape, f3!.shape], [[24], [2, 12], [2, 3, 4]]);
    for (const o of [f1!, f2!, f3!]) assert.deepEqual(flat(o), flat(a));
    assert.deepEqual(run([s], [s.flatten()], 7)[0]!.toArray(), [7]);
    assert.throws(() => x.flatten(0), /flatten: ndim must be in \[1, 3\], got 0/);
    assert.throws(() => x.flatten(4), /got 4/);
  });

  it('dimshuffle permutes, inserts broadcastable axes and drops broadcastable ones', () => {
    const x = T.matrix('x');
    const a = randomArray([2, 3], 3, { dtype: 'float32' });
    const row = T.tensor({ broadcastable: [true, false], name: 'row' });
    const [p, ins, drop] = run([x, row], [x.dimshuffle(1, 0), x.dimshuffle('x', 0, 'x', 1), row.dimshuffle(1, 'x')], a, [[1, 2, 3]]);
    assertAllClose(p!, range(3).map((j) => range(2).map((i) => a.get(i, j))), tol);
    assert.deepEqual(ins!.shape, [1, 2, 1, 3]);
    assert.deepEqual(flat(ins!), flat(a));
    assert.deepEqual(drop!.toArray(), [[1], [2], [3]]);
    assert.deepEqual(x.dimshuffle('x', 0, 'x', 1).broadcastable, [true, false, true, false]);
    assert.deepEqual(row.dimshuffle(1, 'x').broadcastable, [false, true]);
    assert.equal(x.dimshuffle(0, 1), x);
    assert.throws(() => x.dimshuffle(1), isOpError('OpTypeError', /axis 0 is dropped by pattern \[1\] but is not broadcastable/));
    assert.throws(() => x.dimshuffle(0, 0), /repeats an axis/);
    assert.throws(() => x.dimshuffle(0, 2), /axis 2 in pattern \[0,2\] is out of range for ndim 2/);
  });

  it('transpose and .T: all axes reversed by default, explicit and negative permutations', () => {
    const x = T.tensor3('x');
    const m = T.matrix('m');
    const v = T.vector('v');
    const a = randomArray([2, 3, 4], 4, { dtype: 'float32' });
    const b = randomArray([2, 3], 5, { dtype: 'float32' });
    const [tx, tp, tn, tm] = run([x, m], [x.transpose(), T.transpose(x, [1, 0, 2]), x.transpose([-1, 0, 1]), m.T], a, b);
    const at = (o: NDArray, f: (i: number, j: number, k: number) => number) => {
      for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) assert.equal(f(i, j, k), a.get(i, j, k));
      return o;
    };
    assert.deepEqual([tx!.shape, tp!.shape, tn!.shape], [[4, 3, 2], [3, 2, 4], [4, 2, 3]]);
    at(tx!, (i, j, k) => tx!.get(k, j, i));
    at(tp!, (i, j, k) => tp!.get(j, i, k));
    at(tn!, (i, j, k) => tn!.get(k, i, j));
    assertAllClose(tm!, range(3).map((j) => range(2).map((i) => b.get(i, j))), tol);
    assert.equal(v.T, v);
    assert.throws(() => x.transpose([0, 0, 1]), /transpose: axes \[0,0,1\] is not a permutation of 3 axes/);
    assert.throws(() => x.transpose([0, 1]), /not a permutation/);
  });

  it('expandDims inserts size-1 axes at positions of the result', () => {
    const x = T.matrix('x');
    const a = randomArray([2, 3], 6, { dtype: 'float32' });
    const outs = run([x], [x.expandDims(0), T.expandDims(x, -1), x.expandDims([0, 2]), x.expandDims([-1, 1])], a);
    assert.deepEqual(outs.map((o) => o.shape), [[1, 2, 3], [2, 3, 1], [1, 2, 1, 3], [2, 1, 3, 1]]);
    for (const o of outs) assert.deepEqual(flat(o), flat(a));
    assert.deepEqual(x.expandDims([0, 2]).broadcastable, [true, false, true, false]);
  });

  it('expandDims rejects out-of-range and repeated axes, naming expandDims', () => {
    const x = T.matrix('x');
    assert.throws(() => x.expandDims(3), /expandDims.*axis 3/);
    assert.throws(() => x.expandDims(-4), /expandDims.*axis -4/);
    assert.throws(() => x.expandDims([0, 0]), /expandDims.*repeat/);
  });

  it('squeeze drops broadcastable axes, or named axes checked to be size 1 at run time', () => {
    const x = T.tensor({ broadcastable: [true, false, true], name: 'x' });
    const m = T.matrix('m');
    const [all, named, neg] = run([x, m], [x.squeeze(), m.squeeze(0), T.squeeze(m, -1)], [[[1], [2]]], [[4]]);
    assert.deepEqual(all!.toArray(), [1, 2]);
    assert.deepEqual(named!.toArray(), [4]);
    assert.deepEqual(neg!.toArray(), [4]);
    assert.deepEqual(x.squeeze(2).broadcastable, [true, false]);
    const f = T.fn({ inputs: [m], outputs: m.squeeze(0), device });
    assert.throws(() => f([[1, 2], [3, 4]]), isOpError('OpRuntimeError', /axis 0 was marked broadcastable but has size 2/));
  });

  it('shapeOf / x.shape[i] are int32 scalars usable in arithmetic', () => {
    const x = T.tensor3('x');
    const s = T.scalar('s');
    const e = NDArray.from(new Float32Array(0), { shape: [2, 3, 0] });
    const outs = run([x], [x.shape[0]!, x.shape[1]!, x.shape[2]!, T.mul(x.shape[0]!, x.shape[1]!), T.shapeOf(x)[1]!], e);
    assert.deepEqual(outs.map((o) => o.item()), [2, 3, 0, 6, 3]);
    assert.deepEqual(outs.map((o) => [o.dtype, o.ndim]), outs.map(() => ['int32', 0]));
    assert.deepEqual(s.shape, []);
  });

  it('addBroadcast is checked at run time; bad axes are build-time errors', () => {
    const m = T.matrix('m');
    const b = T.addBroadcast(m, [0]);
    assert.deepEqual(b.broadcastable, [true, false]);
    assert.equal(T.addBroadcast(b, [0]), b);
    const f = T.fn({ inputs: [m], outputs: T.add(b, 1), device });
    assert.deepEqual((f([[1, 2]]) as NDArray).toArray(), [[2, 3]]);
    assert.throws(() => f([[1, 2], [3, 4]]), isOpError('OpRuntimeError', /rebroadcast: axis 0 was marked broadcastable but has size 2/));
    assert.throws(() => T.addBroadcast(m, [2]), (e: Error) => e instanceof TypeError && /axis 2 (is )?out of range/.test(e.message));
  });

  it('addBroadcast accepts negative axes like NumPy', () => {
    assert.deepEqual(T.addBroadcast(T.matrix('m'), [-1]).broadcastable, [false, true]);
  });

  it('zerosLike / onesLike keep shape and pattern, optionally change dtype', () => {
    const x = T.matrix('x');
    const row = T.tensor({ broadcastable: [true, false] });
    const [z, o, oi] = run([x], [T.zerosLike(x), T.onesLike(x), T.onesLike(x, 'int32')], [[NaN, Infinity, 3]]);
    assert.deepEqual(z!.toArray(), [[0, 0, 0]]);
    assert.deepEqual(o!.toArray(), [[1, 1, 1]]);
    assert.deepEqual([z!.dtype, oi!.dtype], ['float32', 'int32']);
    assert.deepEqual(T.zerosLike(row).broadcastable, [true, false]);
    // A fill is disconnected from x: only the other term contributes.
    const g = T.fn({ inputs: [x], outputs: T.grad(T.sum(T.add(T.mul(T.onesLike(x), 3), x)), x), device })([[1, 2]]) as NDArray;
    assert.deepEqual(g.toArray(), [[1, 1]]);
  });

  it('gradients of every structural op match finite differences', () => {
    const a = randomArray([2, 3, 4], 7);
    verifyGrad((x) => x.reshape([4, -1]), [a]);
    verifyGrad((x) => T.reshape(x, [x.shape[2]!, -1]), [a]);
    verifyGrad((x) => T.mul(x.flatten(2), x.flatten(2)), [a]);
    verifyGrad((x) => x.dimshuffle(2, 'x', 0, 1), [a]);
    verifyGrad((x) => x.transpose([1, 0, 2]), [a]);
    verifyGrad((x) => x.T, [randomArray([3, 2], 8)]);
    verifyGrad((x) => x.expandDims([0, -1]), [randomArray([3], 9)]);
    verifyGrad((x) => T.addBroadcast(x, [0]).dimshuffle(1), [randomArray([1, 3], 10)]);
    verifyGrad((x) => T.mul(x.squeeze(1), 2), [randomArray([3, 1], 11)]);
    verifyGrad((x) => T.add(x, T.addBroadcast(x.sum(1, true), [1])), [randomArray([2, 3], 12)]);
  });
});
