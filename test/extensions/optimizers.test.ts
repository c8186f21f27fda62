// Every optimizer against an independent float64 JavaScript implementation of Lasagne's rules (and
// PyTorch's AdamW) over several steps; the flat gradient layout; hyper-parameters as shared
// scalars; bad input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';

type H = Record<string, number>;
type Slots = Record<string, number[]>;
type Step = (p: number[], g: number[], s: Slots, h: H, t: number) => number[];

const zeros = (n: number) => new Array<number>(n).fill(0);
const slot = (s: Slots, k: string, n: number) => (s[k] ??= zeros(n));

/** The update rules written out elementwise, straight from lasagne/updates.py and torch.optim.AdamW. */
const RULES: Record<X.RuleName, { hyper: H; step: Step }> = {
  sgd: { hyper: { learningRate: 0.1 }, step: (p, g, _s, h) => p.map((x, i) => x - h['learningRate']! * g[i]!) },
  momentum: {
    hyper: { learningRate: 0.1, momentum: 0.8 },
    step: (p, g, s, h) => {
      const v = slot(s, 'v', p.length);
      return p.map((x, i) => { v[i] = h['momentum']! * v[i]! - h['learningRate']! * g[i]!; return x + v[i]!; });
    },
  },
  nesterovMomentum: {
    hyper: { learningRate: 0.1, momentum: 0.8 },
    step: (p, g, s, h) => {
      const v = slot(s, 'v', p.length);
      return p.map((x, i) => {
        const xv = h['momentum']! * v[i]! - h['learningRate']! * g[i]!;
        v[i] = xv;
        return x + h['momentum']! * xv - h['learningRate']! * g[i]!;
      });
    },
  },
  adagrad: {
    hyper: { learningRate: 0.5, epsilon: 1e-6 },
    step: (p, g, s, h) => {
      const a = slot(s, 'a', p.length);
      return p.map((x, i) => { a[i]! += g[i]! ** 2; return x - h['learningRate']! * g[i]! / Math.sqrt(a[i]! + h['epsilon']!); });
    },
  },
  rmsprop: {
    hyper: { learningRate: 0.05, rho: 0.9, epsilon: 1e-6 },
    step: (p, g, s, h) => {
      const a = slot(s, 'a', p.length);
      return p.map((x, i) => {
        a[i] = h['rho']! * a[i]! + (1 - h['rho']!) * g[i]! ** 2;
        return x - h['learningRate']! * g[i]! / Math.sqrt(a[i]! + h['epsilon']!);
      });
    },
  },
  adadelta: {
    hyper: { learningRate: 1, rho: 0.95, epsilon: 1e-6 },
    step: (p, g, s, h) => {
      const a = slot(s, 'a', p.length), d = slot(s, 'd', p.length);
      return p.map((x, i) => {
        a[i] = h['rho']! * a[i]! + (1 - h['rho']!) * g[i]! ** 2;
        const u = g[i]! * Math.sqrt(d[i]! + h['epsilon']!) / Math.sqrt(a[i]! + h['epsilon']!);
        d[i] = h['rho']! * d[i]! + (1 - h['rho']!) * u * u;
        return x - h['learningRate']! * u;
      });
    },
  },
  adam: {
    hyper: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    step: (p, g, s, h, t) => {
      const m = slot(s, 'm', p.length), v = slot(s, 'v', p.length);
      const a = h['learningRate']! * Math.sqrt(1 - h['beta2']! ** t) / (1 - h['beta1']! ** t);
      return p.map((x, i) => {
        m[i] = h['beta1']! * m[i]! + (1 - h['beta1']!) * g[i]!;
        v[i] = h['beta2']! * v[i]! + (1 - h['beta2']!) * g[i]! ** 2;
        return x - a * m[i]! / (Math.sqrt(v[i]!) + h['epsilon']!);
      });
    },
  },
  adamax: {
    hyper: { learningRate: 0.02, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    step: (p, g, s, h, t) => {
      const m = slot(s, 'm', p.length), u = slot(s, 'u', p.length);
      const a = h['learningRate']! / (1 - h['beta1']! ** t);
      return p.map((x, i) => {
        m[i] = h['beta1']! * m[i]! + (1 - h['beta1']!) * g[i]!;
        u[i] = Math.max(h['beta2']! * u[i]!, Math.abs(g[i]!));
        return x - a * m[i]! / (u[i]! + h['epsilon']!);
      });
    },
  },
  adamw: {
    hyper: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1 },
    step: (p, g, s, h, t) => {
      const m = slot(s, 'm', p.length), v = slot(s, 'v', p.length);
      const lr = h['learningRate']!;
      return p.map((x, i) => {
        const decayed = x * (1 - lr * h['weightDecay']!);
        m[i] = h['beta1']! * m[i]! + (1 - h['beta1']!) * g[i]!;
        v[i] = h['beta2']! * v[i]! + (1 - h['beta2']!) * g[i]! ** 2;
        const mHat = m[i]! / (1 - h['beta1']! ** t), vHat = v[i]! / (1 - h['beta2']! ** t);
        return decayed - lr * mHat / (Math.sqrt(vHat) + h['epsilon']!);
      });
    },
  },
};

// Loss sum(a·w² + b·w) over two parameters of different shapes: gradient 2a·w + b, known exactly.
const A = [randomArray([2, 3], 1, { lo: 0.5, hi: 2 }), randomArray([4], 2, { lo: 0.5, hi: 2 })];
const Bc = [randomArray([2, 3], 3), randomArray([4], 4)];
const P0 = [randomArray([2, 3], 5), randomArray([4], 6)];

function setup(dtype: 'float64' | 'float32' = 'float64') {
  const params = P0.map((p, i) => T.shared(p.astype(dtype), { name: `w${i}` }));
  const loss = params.map((w, i) => T.sum(T.add(
    T.mul(T.constant(A[i]!.astype(dtype)), T.square(w)),
    T.mul(T.constant(Bc[i]!.astype(dtype)), w),
  ))).reduce((a, b) => T.add(a, b));
  return { params, loss };
}

/** The single-device path: gradient function writes the flat vector, update function applies it. */
function localStepper(opt: X.Optimizer) {
  const g = T.fn({ updates: opt.gradUpdates.map(([s, e]) => [s, e] as [T.SharedVariable, T.Variable]) });
  const u = T.fn({ updates: opt.paramUpdates });
  return () => { g(); u(); };
}

describe('optimizers: several steps equal an independent implementation of the rule', () => {
  for (const [name, { hyper, step }] of Object.entries(RULES) as [X.RuleName, { hyper: H; step: Step }][]) {
    it(name, () => {
      const { params, loss } = setup();
      const opt = X.optimizers[name](params, { loss, ...hyper } as never) as X.Optimizer;
      const run = localStepper(opt);
      let p = P0.map((a) => Array.from(a.data));
      const slots: Slots[] = [{}, {}];
      for (let t = 1; t <= 4; t++) {
        const grads = p.map((w, k) => w.map((x, i) => 2 * A[k]!.data[i]! * x + Bc[k]!.data[i]!));
        p = p.map((w, k) => step(w, grads[k]!, slots[k]!, hyper, t));
        run();
        params.forEach((w, k) => assertAllClose(
          w.getValue(),
          NDArray.from(p[k]!, { dtype: 'float64' }).reshape(P0[k]!.shape),
          { rtol: 1e-10, atol: 1e-12 },
          `${name} step ${t} param ${k}`,
        ));
      }
    });
  }
});

describe('optimizers: flat gradient, hyper-parameters, state', () => {
  it('one flat vector holds every gradient times the rows, then the row count', () => {
    const { params, loss } = setup();
    const opt = X.sgd(params, { loss, learningRate: 0.1, rows: 5 });
    assert.equal(opt.gradUpdates.length, 1);
    assert.equal(opt.flatGrad.getValue().size, 6 + 4 + 1);
    T.fn({ updates: [[opt.flatGrad, opt.gradUpdates[0]![1]]] })();
    const flat = opt.flatGrad.getValue();
    assert.equal(flat.data[10], 5);
    const { grads, rows } = opt.layout.split(flat);
    assert.equal(rows, 5);
    grads.forEach((g, k) => assertAllClose(
      g,
      NDArray.from(Array.from(P0[k]!.data, (x, i) => 2 * A[k]!.data[i]! * x + Bc[k]!.data[i]!), { dtype: 'float64' }).reshape(P0[k]!.shape),
      { rtol: 1e-12 },
    ));
  });

  it('a learning-rate schedule changes the shared scalar, without rebuilding', () => {
    const { params, loss } = setup();
    const opt = X.sgd(params, { loss, learningRate: 0.1 });
    const run = localStepper(opt);
    let p = Array.from(P0[1]!.data);
    for (const lr of [0.1, 0.01, 0.001]) {
      opt.setHyper('learningRate', lr);
      run();
      p = p.map((x, i) => x - lr * (2 * A[1]!.data[i]! * x + Bc[1]!.data[i]!));
      assertAllClose(params[1]!.getValue(), p, { rtol: 1e-12 }, `lr ${lr}`);
    }
  });

  it('setHyper refuses bad values; a shared scalar can be given as the learning rate', () => {
    const { params, loss } = setup();
    const lr = T.shared(0.5, { dtype: 'float64', name: 'lr' });
    const opt = X.sgd(params, { loss, learningRate: lr });
    assert.equal(opt.hyper.learningRate, lr);
    assert.throws(() => opt.setHyper('learningRate', -1), /learningRate must be a positive number, got -1/);
    const run = localStepper(opt);
    const p0 = params[1]!.getValue().data[0]!;
    lr.setValue(0.25);
    run();
    const g = 2 * A[1]!.data[0]! * p0 + Bc[1]!.data[0]!;
    assert.ok(Math.abs(params[1]!.getValue().data[0]! - (p0 - 0.25 * g)) < 1e-12);
  });

  it('resetState zeros the moments and the step counter', () => {
    const { params, loss } = setup();
    const opt = X.adam(params, { loss });
    localStepper(opt)();
    assert.ok(opt.slots.some((s) => s.getValue().data.some((v) => v !== 0)));
    opt.resetState();
    assert.ok(opt.slots.every((s) => s.getValue().data.every((v) => v === 0)));
  });

  it('stateUpdates travel in the flat vector and are set from it', () => {
    const { params, loss } = setup();
    const running = T.shared(NDArray.from([1, 2], { dtype: 'float64' }), { name: 'running' });
    const opt = X.sgd(params, { loss, learningRate: 0.1, rows: 4, stateUpdates: [[running, T.mul(running, 3)]] });
    localStepper(opt)();
    assertAllClose(running.getValue(), [3, 6]);
  });
});

describe('optimizers: bad input', () => {
  it('refuses a learning rate that is not positive, and a missing one where Lasagne requires it', () => {
    const { params, loss } = setup();
    assert.throws(() => X.adam(params, { loss, learningRate: 0 }), /adam: learningRate must be a positive number, got 0/);
    assert.throws(() => X.sgd(params, { loss, learningRate: -0.1 }), /sgd: learningRate must be a positive number/);
    assert.throws(() => X.momentum(params, { loss }), /momentum: learningRate is required/);
    assert.throws(() => X.adam(params, { loss, beta1: 1 }), /beta1 must be a number in \[0, 1\)/);
    assert.throws(() => X.adam(params, { loss, learningRate: T.shared(-1, { dtype: 'float64' }) }), /learningRate must be a positive number, got -1/);
  });

  it('refuses mismatched parameter and gradient lists, non-scalar losses and non-parameters', () => {
    const { params, loss } = setup();
    assert.throws(() => X.sgd(params, { grads: [params[0]!], learningRate: 1 }), /1 gradients given for 2 parameters/);
    assert.throws(() => X.sgd(params, { grads: [params[1]!, params[0]!], learningRate: 1 }), /grads\[0\].*does not match params\[0\]/);
    assert.throws(() => X.sgd(params, { loss: T.mul(params[1]!, 2), learningRate: 1 }), /loss must be a scalar/);
    assert.throws(() => X.sgd([], { loss, learningRate: 1 }), /params must be a non-empty array/);
    assert.throws(() => X.sgd([params[0]!, params[0]!], { loss, learningRate: 1 }), /listed twice/);
    assert.throws(() => X.sgd([T.matrix('m') as unknown as T.SharedVariable], { loss, learningRate: 1 }), /params\[0\] must be a shared variable/);
    assert.throws(() => X.sgd(params, { loss, learningRate: 1, lr: 2 } as never), /unknown option\(s\) lr/);
    assert.throws(() => X.sgd(params, { learningRate: 1 }), /exactly one of options.loss or options.grads/);
    const unrelated = T.shared(NDArray.from([1], { dtype: 'float64' }), { name: 'unrelated' });
    assert.throws(() => X.sgd([...params, unrelated], { loss, learningRate: 1 }), /does not depend on wrt\[2\]/);
  });
});
