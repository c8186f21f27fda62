// T.grad: argument errors, disconnected inputs, integer and comparison outputs, accumulation over
// several uses, gradients of gradients (Hessian-vector products against finite differences of the
// first-gradient function), and gradients with respect to shared variables.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice } from '../helpers/devices.js';
import { randomArray } from '../helpers/allclose.js';
import { assertClose, checkGrad } from '../ops/elementwise-cases.js';

const f64 = (values: number[] | number[][]) => NDArray.from(values, { dtype: 'float64' });

/** x + s * v, elementwise (float64). */
function axpy(x: NDArray, s: number, v: NDArray): NDArray {
  return new NDArray('float64', x.shape, x.data.map((a, i) => a + s * v.data[i]!));
}

describe('T.grad argument errors', () => {
  const x = T.vector('x', 'float64');
  it('refuses non-scalar, integer and non-symbolic costs', () => {
    assert.throws(() => T.grad(T.exp(x), x), /grad: cost must be a scalar, got float64 vector; reduce it first/);
    assert.throws(() => T.grad(T.sum(T.cast(x, 'int32')), x), /grad: cost must be a float scalar, got int32 scalar/);
    assert.throws(() => T.grad(T.any(x), x), /must be a float scalar, got bool scalar/);
    assert.throws(() => T.grad(3 as unknown as T.Variable, x), /cost must be a symbolic variable/);
  });
  it('refuses constants, integer variables and non-variables as wrt', () => {
    const cost = T.sum(x);
    assert.throws(() => T.grad(cost, T.constant([1, 2])), /wrt\[0\] is a constant/);
    assert.throws(() => T.grad(cost, [x, T.vector('i', 'int32')]), /wrt\[1\] \(i: int32 vector\) is not a float variable/);
    assert.throws(() => T.grad(cost, [x, 'y' as unknown as T.Variable]), /wrt\[1\] must be a symbolic variable/);
  });
  it('raises for a disconnected wrt, naming it; { disconnected: "zero" } gives zeros', () => {
    const y = T.matrix('y', 'float64');
    const s = T.shared(f64([1, 2, 3]), { name: 'w' });
    const cost = T.sum(T.square(x));
    assert.throws(() => T.grad(cost, [x, y]), /grad: the cost does not depend on wrt\[1\] \(variable y: float64 matrix\); pass \{ disconnected: 'zero' \}/);
    assert.throws(() => T.grad(cost, s), /does not depend on wrt\[0\] \(shared variable w: float64 vector\)/);
    const [gx, gy, gs] = T.grad(cost, [x, y, s], { disconnected: 'zero' });
    const out = T.fn({ inputs: [x, y], outputs: [gx!, gy!, gs!] })([1, -2], [[1, 2, 3], [4, 5, 6]]) as NDArray[];
    assert.deepEqual(out.map((o) => o.toArray()), [[2, -4], [[0, 0, 0], [0, 0, 0]], [0, 0, 0]]);
  });
  it('a single wrt gives a single gradient, a list gives a list; gradients keep the dtype and pattern of wrt', () => {
    const f = T.vector('f');
    assert.ok(T.grad(T.sum(f), f) instanceof T.Variable);
    assert.equal(T.grad(T.sum(f), [f]).length, 1);
    assert.equal(T.grad(T.sum(T.cast(f, 'float64')), f).dtype, 'float32');
    const b = T.tensor({ broadcastable: [true, false], dtype: 'float64' });
    assert.deepEqual(T.grad(T.sum(T.mul(b, T.matrix('m', 'float64'))), b).broadcastable, [true, false]);
  });
});

forEachDevice('gradients', (device) => {
  const tol = { rtol: 1e-6, atol: 1e-8 };
  const run = (inputs: T.Variable[], outputs: T.Variable | T.Variable[], ...args: T.ArrayInput[]) => T.fn({ inputs, outputs, device })(...args);

  it('integer and comparison results are disconnected; only float paths carry gradient', () => {
    const x = T.vector('x', 'float64');
    for (const cut of [
      T.cast(T.gt(x, 0), 'float64'),
      T.cast(T.cast(x, 'int32'), 'float64'),
      T.cast(T.argmax(x), 'float64'),
      T.cast(T.eq(T.max(x), x), 'float64'),
    ]) {
      assert.throws(() => T.grad(T.sum(cut), x), /does not depend/);
    }
    // relu written by hand: the mask is disconnected, so the gradient is the mask itself
    const g = T.grad(T.sum(T.mul(x, T.cast(T.gt(x, 0), 'float64'))), x);
    assert.deepEqual((run([x], g, [-1, 2, 0.5, -3]) as NDArray).toArray(), [0, 1, 1, 0]);
    // integer intermediate mixed with a float path
    const h = T.grad(T.sum(T.mul(T.cast(x, 'int32'), x)), x);
    assert.deepEqual((run([x], h, [1.5, -2.7]) as NDArray).toArray(), [1, -2]);
  });

  it('accumulates the gradient of a variable used several times, including through broadcasting', () => {
    const x = T.vector('x', 'float64');
    const xv = f64([0.3, -1.2, 2]);
    const g1 = T.grad(T.sum(T.add(T.add(T.mul(x, x), T.sin(x)), x)), x);
    assertClose(run([x], g1, xv) as NDArray, Array.from(xv.data, (a) => 2 * a + Math.cos(a) + 1), tol);
    // sum_ij x_i x_j = (sum x)^2, gradient 2 sum(x) for every element
    const outer = T.mul(T.dimshuffle(x, [0, 'x']), T.dimshuffle(x, ['x', 0]));
    const total = Array.from(xv.data).reduce((s, a) => s + a, 0);
    assertClose(run([x], T.grad(T.sum(outer), x), xv) as NDArray, [2 * total, 2 * total, 2 * total], tol);
    // the same subexpression reused down two paths, one through a reduction
    const y = T.tanh(x);
    const g3 = T.grad(T.add(T.sum(T.mul(y, 3)), T.mean(T.square(y))), x);
    const n = xv.size;
    assertClose(run([x], g3, xv) as NDArray, Array.from(xv.data, (a) => (3 + (2 * Math.tanh(a)) / n) * (1 - Math.tanh(a) ** 2)), tol);
  });

  it('the gradient with respect to an intermediate variable', () => {
    const x = T.vector('x', 'float64');
    const y = T.tanh(x);
    const g = T.grad(T.sum(T.square(y)), y);
    assertClose(run([x], g, [0.5, -1]) as NDArray, [2 * Math.tanh(0.5), 2 * Math.tanh(-1)], tol);
  });

  it('second derivative of sum(tanh(x)^3): Hessian-vector product vs finite differences of the gradient', () => {
    const x = T.vector('x', 'float64');
    const v = T.vector('v', 'float64');
    const g = T.grad(T.sum(T.pow(T.tanh(x), 3)), x);
    const hv = T.grad(T.sum(T.mul(g, v)), x);
    const gradFn = T.fn({ inputs: [x], outputs: g, device });
    const hvFn = T.fn({ inputs: [x, v], outputs: hv, device });
    const xv = randomArray([6], 11, { lo: -1.5, hi: 1.5 });
    const vv = randomArray([6], 12);
    const eps = 1e-5;
    const gp = gradFn(axpy(xv, eps, vv)) as NDArray, gm = gradFn(axpy(xv, -eps, vv)) as NDArray;
    const fd = new NDArray('float64', [6], gp.data.map((a, i) => (a - gm.data[i]!) / (2 * eps)));
    const got = hvFn(xv, vv) as NDArray;
    assertClose(got, fd, { rtol: 1e-6, atol: 1e-8 });
    // and the closed form: d2/dx2 tanh^3 = (6t - 12t^3)(1 - t^2), the Hessian being diagonal
    assertClose(got, Array.from(xv.data, (a, i) => { const t = Math.tanh(a); return (6 * t - 12 * t ** 3) * (1 - t * t) * vv.data[i]!; }), tol);
  });

  it('Hessian-vector products through reductions: logsumexp, var, max, prod', () => {
    const x = T.matrix('x', 'float64');
    const v = T.matrix('v', 'float64');
    const costs: [string, (x: T.Variable) => T.Variable][] = [
      ['logsumexp', (a) => T.sum(T.logsumexp(a, 1))],
      ['var', (a) => T.sum(T.variance(a, 0, false, 1))],
      ['std', (a) => T.sum(T.std(a, [0, 1], true))],
      ['max', (a) => T.sum(T.square(T.max(a, -1)))],
      ['prod', (a) => T.prod(a)],
      ['mean', (a) => T.square(T.mean(T.exp(a)))],
    ];
    const xv = randomArray([3, 4], 21, { lo: 0.3, hi: 1.5 });
    const vv = randomArray([3, 4], 22);
    for (const [name, cost] of costs) {
      const g = T.grad(cost(x), x);
      const gradFn = T.fn({ inputs: [x], outputs: g, device });
      const hv = T.fn({ inputs: [x, v], outputs: T.grad(T.sum(T.mul(g, v)), x), device })(xv, vv) as NDArray;
      const eps = 1e-5;
      const gp = gradFn(axpy(xv, eps, vv)) as NDArray, gm = gradFn(axpy(xv, -eps, vv)) as NDArray;
      assertClose(hv, new NDArray('float64', [3, 4], gp.data.map((a, i) => (a - gm.data[i]!) / (2 * eps))), { rtol: 1e-5, atol: 1e-7 }, name);
    }
    // logsumexp's Hessian in closed form: diag(s) - s s^T per row, s = softmax
    const hvL = T.fn({ inputs: [x, v], outputs: T.grad(T.sum(T.mul(T.grad(T.sum(T.logsumexp(x, 1)), x), v)), x), device })(xv, vv) as NDArray;
    const want = new NDArray('float64', [3, 4]);
    for (let r = 0; r < 3; r++) {
      const row = [0, 1, 2, 3].map((k) => Math.exp(xv.data[r * 4 + k]!));
      const z = row.reduce((s, a) => s + a, 0);
      const s = row.map((a) => a / z);
      const sv = s.reduce((acc, si, k) => acc + si * vv.data[r * 4 + k]!, 0);
      for (let k = 0; k < 4; k++) want.data[r * 4 + k] = s[k]! * (vv.data[r * 4 + k]! - sv);
    }
    assertClose(hvL, want, tol);
  });

  it('third derivative of sum(tanh(x)) vs finite differences of the second', () => {
    const x = T.vector('x', 'float64');
    const g1 = T.grad(T.sum(T.tanh(x)), x);
    const g2 = T.grad(T.sum(g1), x);
    const g3 = T.grad(T.sum(g2), x);
    const [d2, d3] = run([x], [g2, g3], [0.3, -0.8, 1.1]) as NDArray[];
    const t = (a: number) => Math.tanh(a);
    assertClose(d2!, [0.3, -0.8, 1.1].map((a) => -2 * t(a) * (1 - t(a) ** 2)), tol);
    assertClose(d3!, [0.3, -0.8, 1.1].map((a) => (1 - t(a) ** 2) * (6 * t(a) ** 2 - 2)), tol);
  });

  it('gradients with respect to shared variables, and a descent step through updates', () => {
    const w = T.shared(f64([0.5, -0.3, 0.8]), { name: 'w' });
    const b = T.shared(0.1, { name: 'b', dtype: 'float64' });
    const x = T.matrix('x', 'float64');
    const y = T.vector('y', 'float64');
    const pred = T.sigmoid(T.add(T.sum(T.mul(x, w), 1), b));
    const cost = T.mean(T.square(T.sub(pred, y)));
    const [gw, gb] = T.grad(cost, [w, b]);
    assert.equal(gw!.dtype, 'float64');
    assert.equal(gb!.ndim, 0);
    const xv = f64([[1, 2, -1], [0.5, -0.5, 2], [-1, 1, 1]]), yv = f64([1, 0, 1]);
    const costFn = T.fn({ inputs: [x, y], outputs: cost, device });
    const [gwv, gbv] = run([x, y], [gw!, gb!], xv, yv) as NDArray[];
    const eps = 1e-6;
    const w0 = w.getValue();
    const fd = Array.from(w0.data, (_, i) => {
      const p = w0.copy(); p.data[i]! += eps; w.setValue(p);
      const cp = (costFn(xv, yv) as NDArray).item();
      const m = w0.copy(); m.data[i]! -= eps; w.setValue(m);
      const cm = (costFn(xv, yv) as NDArray).item();
      return (cp - cm) / (2 * eps);
    });
    w.setValue(w0);
    assertClose(gwv!, fd, { rtol: 1e-5, atol: 1e-9 });
    b.setValue(0.1 + eps); const bp = (costFn(xv, yv) as NDArray).item();
    b.setValue(0.1 - eps); const bm = (costFn(xv, yv) as NDArray).item();
    b.setValue(0.1);
    assertClose(gbv!, (bp - bm) / (2 * eps), { rtol: 1e-5, atol: 1e-9 });
    const step = T.fn({ inputs: [x, y], outputs: cost, updates: [[w, T.sub(w, T.mul(gw!, 0.5))], [b, T.sub(b, T.mul(gb!, 0.5))]], device });
    const before = (step(xv, yv) as NDArray).item();
    assertClose(w.getValue(), Array.from(w0.data, (a, i) => a - 0.5 * gwv!.data[i]!), tol, 'update applied');
    const losses = [before];
    for (let k = 0; k < 20; k++) losses.push((step(xv, yv) as NDArray).item());
    assert.ok(losses.every((l, k) => k === 0 || l < losses[k - 1]!), `gradient descent decreases the cost: ${losses.join(', ')}`);
  });
});

describe('gradients of gradients by finite differences (verifyGrad of T.grad)', () => {
  const x = randomArray([2, 3], 31, { lo: 0.4, hi: 1.6 });
  const y = randomArray([2, 3], 32, { lo: -1.5, hi: 1.5 });
  const unary: [string, (a: T.Variable) => T.Variable][] = [
    ['exp', T.exp], ['log', T.log], ['sqrt', T.sqrt], ['tanh', T.tanh], ['sigmoid', T.sigmoid], ['softplus', T.softplus],
    ['erf', T.erf], ['sin', T.sin], ['cos', T.cos], ['reciprocal', T.reciprocal], ['expm1', T.expm1], ['log1p', T.log1p],
    ['abs * square', (a) => T.mul(T.abs(a), T.square(a))], ['relu^3', (a) => T.pow(T.relu(a), 3)],
  ];
  for (const [name, f] of unary) {
    it(name, () => checkGrad((a) => T.grad(T.sum(f(a!)), a!), [x]));
  }
  const binary: [string, (a: T.Variable, b: T.Variable) => T.Variable][] = [
    ['mul', T.mul], ['div', T.div], ['pow', T.pow], [
      'maximum',
      (a, b) => T.square(T.maximum(a, b)),
    ], ['where', (a, b) => T.where(T.gt(b, 0), T.exp(a), T.mul(a, b))],
    ['clip', (a, b) => T.square(T.clip(T.mul(a, b), -0.5, 0.5))],
  ];
  for (const [name, f] of binary) {
    it(`${name}: both second-order partials`, () => {
      checkGrad((a, b) => {
        const [ga, gb] = T.grad(T.sum(f(a!, b!)), [a!, b!]);
        return T.add(T.sum(T.mul(ga!, T.sin(b!))), T.sum(T.square(gb!)));
      }, [x, y]);
    });
  }
  it('reductions: sum, mean, prod, max, min, var, std, logsumexp with axes', () => {
    const reds: ((a: T.Variable) => T.Variable)[] = [
      (a) => T.sum(T.exp(a), 0), (a) => T.mean(T.square(a), 1, true), (a) => T.prod(a, -1), (a) => T.square(T.max(a, 0)),
      (a) => T.square(T.min(a)), (a) => T.variance(a, 1), (a) => T.std(a, 0, true, 1), (a) => T.logsumexp(a, [0, 1]),
    ];
    for (const r of reds) checkGrad((a) => T.grad(T.sum(T.square(r(a!))), a!), [x]);
  });
});
