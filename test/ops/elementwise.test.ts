// Elementwise ops, forward: every op against a plain JS expectation written here, broadcasting,
// size-1 and empty axes, NaN/Inf, dtype rules (incl. weakly typed numbers), build and run errors.
// Gradients are in elementwise-grad.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice } from '../helpers/devices.js';
import { randomArray } from '../helpers/allclose.js';
import { assertClose, bshape, expectMap, ERF_KNOWN, erfSeries, roundHalfEven, UNARY, BINARY, type Fn1, type Fn2 } from './elementwise-cases.js';

type Un = (x: T.TensorLike) => T.Variable;
type Bin = (a: T.TensorLike, b: T.TensorLike) => T.Variable;
const un = (name: string): Un => (T as unknown as Record<string, Un>)[name]!;
const bin = (name: string): Bin => (T as unknown as Record<string, Bin>)[name]!;
const f32 = (values: readonly number[], shape: readonly number[] = [values.length]) => NDArray.from(values, { dtype: 'float32', shape });
const exact = { rtol: 0, atol: 0 };

/** k/2 for integers k in [-4, 4]: float values with frequent ties, for comparisons. */
function halves(shape: readonly number[], seed: number): NDArray {
  const a = randomArray(shape, seed, { dtype: 'int32', lo: -4, hi: 5 });
  return NDArray.from(Array.from(a.data, (v) => v / 2), { dtype: 'float32', shape });
}

forEachDevice('elementwise ops', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const compile = (inputs: T.Variable[], outputs: T.Variable | T.Variable[]) => T.fn({ inputs, outputs, device });

  describe('unary ops on random float32 inputs, function and method forms', () => {
    for (const [name, [expect, lo, hi, outDtype]] of Object.entries(UNARY)) {
      it(name, () => {
        const x = T.matrix('x');
        const y = un(name)(x);
        assert.equal(y.dtype, outDtype);
        const viaMethod = (x as unknown as Record<string, () => T.Variable>)[name]!.call(x);
        const a = randomArray([3, 4], 1, { dtype: 'float32', lo, hi });
        const [r, m] = compile([x], [y, viaMethod])(a) as NDArray[];
        assertClose(r!, expectMap([a], expect as Fn1), tol, name);
        assertClose(m!, r!, exact, `${name} method`);
      });
    }
  });

  describe('binary ops over broadcasting shape pairs', () => {
    const pairs: [number[], number[]][] = [[[3, 1], [1, 4]], [[2, 3], [2, 3]], [[], [2, 3]], [[3], [2, 3]], [[2, 1, 3], [4, 1]]];
    for (const [name, [expect, [alo, ahi], [blo, bhi], outDtype]] of Object.entries(BINARY)) {
      it(name, () => {
        for (const [sa, sb] of pairs) {
          const a = T.tensor({ ndim: sa.length, name: 'a' });
          const b = T.tensor({ ndim: sb.length, name: 'b' });
          const y = bin(name)(a, b);
          assert.equal(y.dtype, outDtype, `${name} dtype`);
          const comparison = outDtype === 'bool';
          const av = comparison ? halves(sa, 2) : randomArray(sa, 2, { dtype: 'float32', lo: alo, hi: ahi });
          const bv = comparison ? halves(sb, 3) : randomArray(sb, 3, { dtype: 'float32', lo: blo, hi: bhi });
          const [r, m] = compile([a, b], [y, (a as unknown as Record<string, (o: T.Variable) => T.Variable>)[name]!.call(a, b)])(av, bv) as NDArray[];
          assert.deepEqual(r!.shape, bshape([sa, sb]), `${name} ${sa} with ${sb}`);
          assertClose(r!, expectMap([av, bv], expect as Fn2), comparison ? exact : tol, `${name} ${sa} with ${sb}`);
          assertClose(m!, r!, exact, `${name} method`);
        }
      });
    }
  });

  it('erf matches known values and a high-precision series', () => {
    const xs = ERF_KNOWN.map(([x]) => x);
    const x = T.vector('x', 'float64');
    const r = compile([x], T.erf(x))(NDArray.from(xs, { dtype: 'float64' })) as NDArray;
    assertClose(r, ERF_KNOWN.map(([, v]) => v), { rtol: 0, atol: 2e-7 });
    const grid = Array.from({ length: 61 }, (_, i) => -3 + i / 10);
    const g = compile([x], T.erf(x))(NDArray.from(grid, { dtype: 'float64' })) as NDArray;
    assertClose(g, grid.map(erfSeries), { rtol: 0, atol: 2e-7 });
  });

  it('round is half to even; floor and ceil of negatives', () => {
    const v = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, -0.6, 3.7];
    const x = T.vector('x');
    const [r, fl, ce] = compile([x], [T.round(x), T.floor(x), T.ceil(x)])(f32(v)) as NDArray[];
    assert.deepEqual(Array.from(r!.data), v.map((a) => roundHalfEven(Math.fround(a))));
    assert.deepEqual(Array.from(r!.data).slice(0, 6), [-2, -2, -0, 0, 2, 2]);
    assert.deepEqual(Array.from(fl!.data), v.map((a) => Math.floor(a)));
    assert.deepEqual(Array.from(ce!.data), v.map((a) => Math.ceil(a)));
  });

  it('NaN and Inf propagate through unary ops as in NumPy', () => {
    const v = [NaN, Infinity, -Infinity, 0, -0, -1];
    const x = T.vector('x');
    const names = Object.keys(UNARY);
    const outs = compile([x], names.map((n) => un(n)(x)))(f32(v)) as NDArray[];
    names.forEach((n, k) => {
      const expect = UNARY[n]![0] as Fn1;
      assertClose(outs[k]!, v.map((a) => expect(a)), tol, n);
    });
    // signed zeros where NumPy gives them
    const [rec, sq] = compile([x], [T.reciprocal(x), T.sqrt(x)])(f32([-0, 0])) as NDArray[];
    assert.deepEqual(Array.from(rec!.data), [-Infinity, Infinity]);
    assert.ok(Object.is(sq!.data[0], -0));
  });

  it('NaN and Inf in binary ops, comparisons, where and clip', () => {
    const a = T.vector('a'), b = T.vector('b');
    const av = f32([NaN, 1, Infinity, Infinity, 0, 1, -1, NaN, 0]);
    const bv = f32([1, NaN, -Infinity, Infinity, Infinity, 0, 0, NaN, 0]);
    const ops = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'neq', 'lt', 'le', 'gt', 'ge'];
    const outs = compile([a, b], ops.map((o) => bin(o)(a, b)))(av, bv) as NDArray[];
    ops.forEach((o, k) => assertClose(outs[k]!, expectMap([av, bv], BINARY[o]![0] as Fn2), exact, o));
    const [cl, wh] = compile([a], [T.clip(a, -1, 1), T.where(T.gt(a, 0), a, T.neg(a))])(av) as NDArray[];
    assertClose(cl!, [NaN, 1, 1, 1, 0, 1, -1, NaN, 0], exact, 'clip');
    assertClose(wh!, [NaN, 1, Infinity, Infinity, 0, 1, 1, NaN, 0], exact, 'where');
    // integer division and modulo by zero give 0 for ints (NumPy), inf/nan for floats
    const i = T.vector('i', 'int32'), j = T.vector('j', 'int32');
    const [idv, imd] = compile([i, j], [T.intDiv(i, j), T.mod(i, j)])([7, -7], [0, 0]) as NDArray[];
    assert.deepEqual(Array.from(idv!.data), [0, 0]);
    assert.deepEqual(Array.from(imd!.data), [0, 0]);
    const [fdv, fmd] = compile([a, b], [T.intDiv(a, b), T.mod(a, b)])(f32([1, -1, 0]), f32([0, 0, 0])) as NDArray[];
    assertClose(fdv!, [Infinity, -Infinity, NaN], exact, 'intDiv by 0');
    assertClose(fmd!, [NaN, NaN, NaN], exact, 'mod by 0');
  });

  it('pow follows C and NumPy on special values: pow(1, nan) = pow(-1, inf) = 1', () => {
    const a = T.vector('a'), b = T.vector('b');
    const av = f32([1, 1, -1, -1, NaN, 2]), bv = f32([NaN, Infinity, Infinity, -Infinity, 0, NaN]);
    assertClose(compile([a, b], T.pow(a, b))(av, bv) as NDArray, [1, 1, 1, 1, 1, NaN], exact);
  });

  it('size-1 and empty axes broadcast as in NumPy', () => {
    const cases: [number[], number[], number[]][] = [
      [[0, 3], [1, 3], [0, 3]], [[0, 3], [3], [0, 3]], [[2, 0], [2, 1], [2, 0]], [[1, 1], [0], [1, 0]],
      [[2, 1, 3], [1, 4, 1], [2, 4, 3]], [[1], [], [1]], [[0], [], [0]],
    ];
    for (const [sa, sb, want] of cases) {
      const a = T.tensor({ ndim: sa.length }), b = T.tensor({ ndim: sb.length });
      const av = randomArray(sa, 5, { dtype: 'float32' }), bv = randomArray(sb, 6, { dtype: 'float32' });
      const [s, e] = compile([a, b], [T.add(a, b), T.exp(T.mul(a, b))])(av, bv) as NDArray[];
      assert.deepEqual(s!.shape, want, `${sa} + ${sb}`);
      assertClose(s!, expectMap([av, bv], (x, y) => x + y), tol);
      assertClose(e!, expectMap([av, bv], (x, y) => Math.exp(x * y)), tol);
    }
    const x = T.vector('x');
    assert.deepEqual((compile([x], T.tanh(x))(f32([])) as NDArray).shape, [0]);
  });

  it('integer arithmetic stays integer; division gives floats; NumPy floor division and modulo', () => {
    const i = T.vector('i', 'int32'), j = T.vector('j', 'int32');
    const ops = [
      T.add(i, j),
      T.sub(i, j),
      T.mul(i, j),
      T.intDiv(i, j),
      T.mod(i, j),
      T.div(i, j),
      T.neg(i),
      T.abs(i),
      T.square(i),
      T.maximum(i, j),
      T.pow(i, T.abs(j)),
    ];
    assert.deepEqual(ops.map((v) => v.dtype), ['int32', 'int32', 'int32', 'int32', 'int32', 'float32', 'int32', 'int32', 'int32', 'int32', 'int32']);
    const iv = [-7, 7, -7, 7, 5, 0, 65537], jv = [2, -2, -2, 3, 1, 3, 1];
    const outs = compile([i, j], ops)(iv, jv) as NDArray[];
    const want = [
      iv.map((a, k) => a + jv[k]!), iv.map((a, k) => a - jv[k]!), iv.map((a, k) => a * jv[k]!),
      [-4, -4, 3, 2, 5, 0, 65537], [1, -1, -1, 1, 0, 0, 0], iv.map((a, k) => Math.fround(a / jv[k]!)),
      iv.map((a) => -a | 0), iv.map((a) => Math.abs(a)), [49, 49, 49, 49, 25, 0, 65537 * 65537 - 2 ** 32], iv.map((a, k) => Math.max(a, jv[k]!)),
      [49, 49, 49, 343, 5, 0, 65537],
    ];
    outs.forEach((o, k) => assert.deepEqual(Array.from(o.data), want[k], `op ${k}`));
    const [wrap] = compile([i, j], [T.add(i, j)])([2147483647], [1]) as NDArray[];
    assert.equal(wrap!.data[0], -2147483648, 'int32 addition wraps');
  });

  it('int32 products wrap exactly as in C and NumPy, even beyond 2^53', () => {
    const i = T.vector('i', 'int32');
    const [sq, pr] = compile([i], [T.square(i), T.mul(i, i)])([2147483647, -2147483647, 123456789]) as NDArray[];
    const want = [2147483647, -2147483647, 123456789].map((a) => Math.imul(a, a));
    assert.deepEqual(Array.from(sq!.data), want);
    assert.deepEqual(Array.from(pr!.data), want);
  });

  it('dtype rules: promotion, float results, comparisons give bool', () => {
    const v = (dtype: T.DType) => T.vector(undefined, dtype);
    const rules: [T.Variable, T.DType][] = [
      [T.add(v('int32'), v('int32')), 'int32'], [T.add(v('int32'), v('float32')), 'float32'], [T.add(v('float32'), v('float64')), 'float64'],
      [T.add(v('uint8'), v('int32')), 'int32'], [T.add(v('uint8'), v('uint8')), 'uint8'], [T.add(v('bool'), v('bool')), 'int32'],
      [T.div(v('int32'), v('int32')), 'float32'], [T.div(v('int32'), v('float64')), 'float64'], [T.exp(v('int32')), 'float32'],
      [T.sqrt(v('uint8')), 'float32'], [T.lt(v('float64'), v('int32')), 'bool'], [T.eq(v('bool'), v('bool')), 'bool'],
      [T.and(v('bool'), v('bool')), 'bool'], [T.or(v('int32'), v('uint8')), 'int32'], [T.not(v('uint8')), 'uint8'],
      [T.where(v('bool'), v('int32'), v('float64')), 'float64'], [T.where(v('float32'), v('int32'), v('int32')), 'int32'],
      [T.clip(v('int32'), 0, 5), 'int32'], [T.cast(v('float32'), 'uint8'), 'uint8'], [T.relu(v('int32')), 'int32'],
      [T.floor(v('float64')), 'float64'], [T.sigmoid(v('float64')), 'float64'],
    ];
    rules.forEach(([y, d], k) => assert.equal(y.dtype, d, `rule ${k}: ${y.owner?.op}`));
  });

  it('weakly typed JS numbers take the dtype of the variable beside them', () => {
    const i = T.vector('i', 'int32'), d = T.vector('d', 'float64'), u = T.vector('u', 'uint8'), f = T.vector('f');
    assert.equal(T.add(i, 2).dtype, 'int32');
    assert.equal(T.mul(3, i).dtype, 'int32');
    assert.equal(T.add(i, 2.5).dtype, 'float32');
    assert.equal(T.add(d, 2).dtype, 'float64');
    assert.equal(T.mul(f, 0.1).dtype, 'float32');
    assert.equal(T.add(u, 3).dtype, 'uint8');
    assert.equal(T.add(u, 300).dtype, 'int32');
    assert.equal(T.lt(i, 0.5).dtype, 'bool');
    const [a, b, e] = compile([i, d], [T.add(i, 2), T.mul(d, 0.1), T.add(i, 0.5)])([1, 2], [1, 3]) as NDArray[];
    assert.deepEqual(Array.from(a!.data), [3, 4]);
    assert.deepEqual(Array.from(b!.data), [0.1, 0.30000000000000004], 'a float64 variable keeps the number in float64');
    assert.deepEqual(Array.from(e!.data), [1.5, 2.5]);
  });

  it('bool arithmetic with a JS integer gives an integer (NumPy: bool * 2 is an int)', () => {
    assert.equal(T.mul(T.vector('b', 'bool'), 2).dtype, 'int32');
  });

  it('logical ops: bool truth tables, bitwise on integers, refuse floats', () => {
    const p = T.vector('p', 'bool'), q = T.vector('q', 'bool');
    const tf = [true, true, false, false], ft = [true, false, true, false];
    const outs = compile([p, q], [T.and(p, q), T.or(p, q), T.xor(p, q), T.not(p)])(tf, ft) as NDArray[];
    assert.deepEqual(
      outs.map((o) => o.toArray()),
      [[true, false, false, false], [true, true, true, false], [false, true, true, false], [false, false, true, true]],
    );
    const i = T.vector('i', 'int32'), j = T.vector('j', 'int32');
    const iv = [6, -1, 0, 12], jv = [3, 5, 7, 10];
    const [an, o, x] = compile([i, j], [T.and(i, j), T.or(i, j), T.xor(i, j)])(iv, jv) as NDArray[];
    assert.deepEqual(Array.from(an!.data), iv.map((a, k) => a & jv[k]!));
    assert.deepEqual(Array.from(o!.data), iv.map((a, k) => a | jv[k]!));
    assert.deepEqual(Array.from(x!.data), iv.map((a, k) => a ^ jv[k]!));
    for (const op of ['and', 'or', 'xor']) {
      assert.throws(
        () => bin(op)(T.vector('f'), i),
        (e: Error) => e.name === 'OpTypeError' && e.message.startsWith(`${op}:`)
          && /not floats/.test(e.message) && /float32 vector, int32 vector/.test(e.message),
      );
    }
    assert.throws(() => T.not(T.matrix('m', 'float64')), (e: Error) => e instanceof T.OpTypeError && /not: .*not floats.*float64 matrix/.test(e.message));
  });

  it('not on integers is bitwise, consistent with and/or/xor (De Morgan)', () => {
    const i = T.vector('i', 'int32'), j = T.vector('j', 'int32');
    const [l, r] = compile([i, j], [T.not(T.and(i, j)), T.or(T.not(i), T.not(j))])([6, -1, 0, 12], [3, 5, 7, 10]) as NDArray[];
    assert.deepEqual(Array.from(l!.data), Array.from(r!.data));
    assert.deepEqual(Array.from(l!.data), [6 & 3, -1 & 5, 0, 12 & 10].map((v) => ~v));
  });

  it('where, clip and cast', () => {
    const cnd = T.matrix('c', 'bool'), a = T.matrix('a'), b = T.vector('b');
    const cv = NDArray.from([[true, false, true], [false, false, true]]);
    const av = randomArray([2, 3], 8, { dtype: 'float32' }), bv = randomArray([3], 9, { dtype: 'float32' });
    const [w, cl, cl2] = compile([cnd, a, b], [T.where(cnd, a, b), T.clip(a, -0.5, b), T.clip(a, 0.5, -0.5)])(cv, av, bv) as NDArray[];
    assertClose(w!, expectMap([cv, av, bv], (x, y, z) => (x ? y! : z!)), exact, 'where');
    assertClose(cl!, expectMap([av, bv], (x, hi) => Math.min(Math.max(x, -0.5), hi)), exact, 'clip');
    assertClose(cl2!, expectMap([av], () => -0.5), exact, 'clip with lo > hi gives hi');
    const x = T.vector('x');
    const xv = f32([-2.7, -0.2, 0, 0.5, 1.99, 255.5]);
    const casts = compile([x], [T.cast(x, 'int32'), T.cast(x, 'uint8'), T.cast(x, 'bool'), T.cast(x, 'float64'), x.astype('int32')])(xv) as NDArray[];
    assert.deepEqual(casts.map((o) => o.dtype), ['int32', 'uint8', 'bool', 'float64', 'int32']);
    assert.deepEqual(Array.from(casts[0]!.data), [-2, 0, 0, 0, 1, 255], 'float to int truncates toward zero');
    assert.deepEqual(Array.from(casts[1]!.data).slice(2), [0, 0, 1, 255]);
    assert.deepEqual(Array.from(casts[2]!.data), [1, 1, 0, 1, 1, 1]);
    assert.deepEqual(Array.from(casts[3]!.data), Array.from(xv.data));
    assert.equal(T.cast(x, 'float32'), x, 'casting to the same dtype is the identity');
    assert.throws(() => T.cast(x, 'int64' as T.DType), /cast: dtype/);
  });

  it('casting NaN to bool gives true (NumPy: bool(nan) is True)', () => {
    const x = T.vector('x');
    assert.deepEqual((compile([x], T.cast(x, 'bool'))(f32([NaN])) as NDArray).toArray(), [true]);
  });

  it('shapes that do not broadcast fail at run time naming the op, the shapes and the inputs', () => {
    const a = T.matrix('a'), b = T.matrix('b');
    const f = compile([a, b], T.add(a, b));
    assert.throws(() => f(NDArray.zeros([3, 2]), NDArray.zeros([2, 3])),
      (e: Error) => /^add: shapes \(3, 2\), \(2, 3\) do not broadcast/.test(e.message) && /input 0 'a'/.test(e.message) && /input 1 'b'/.test(e.message));
    const g = compile([a, b], T.exp(T.mul(T.tanh(a), b)));
    assert.throws(
      () => g(NDArray.zeros([4, 1]), NDArray.zeros([2, 3])),
      (e: Error) => /\(4, 1\)/.test(e.message) && /\(2, 3\)/.test(e.message) && /do not broadcast/.test(e.message),
    );
    assert.throws(() => compile([a], T.where(a, a, T.vector('v')))(NDArray.zeros([2, 2])), /needs input 'v'/);
    assert.throws(() => compile([a, b], T.clip(a, b, 1))(NDArray.zeros([2, 2]), NDArray.zeros([3, 2])), /clip: shapes \(2, 2\), \(3, 2\)/);
  });
});
