// Theano's verify_grad: symbolic gradients against central finite differences, in float64.
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';
import { rng } from './allclose.js';

export interface GradCheckOptions { eps?: number; rtol?: number; atol?: number; seed?: number }

/**
 * Checks d(sum(f(x...) * P))/dx against finite differences, P a fixed random projection so every
 * output element matters. `inputs` are float64 arrays; f receives float64 symbolic variables.
 */
export function verifyGrad(f: (...xs: T.Variable[]) => T.Variable, inputs: readonly NDArray[], options: GradCheckOptions = {}): void {
  const { eps = 1e-6, rtol = 1e-4, atol = 1e-6, seed = 7 } = options;
  const device = new ReferenceDevice();
  const vars = inputs.map((a, i) => T.tensor({ dtype: 'float64', ndim: a.ndim, name: `x${i}` }));
  const out = f(...vars);
  const probe = T.fn({ inputs: vars, outputs: out, device });
  const outValue = probe(...inputs) as NDArray;
  const r = rng(seed);
  const projection = new NDArray('float64', outValue.shape);
  for (let i = 0; i < projection.size; i++) projection.data[i] = 0.5 + r();
  const cost = T.sum(T.mul(T.cast(out, 'float64'), T.constant(projection)));
  const grads = T.grad(cost, vars);
  const costFn = T.fn({ inputs: vars, outputs: cost, device });
  const gradFn = T.fn({ inputs: vars, outputs: grads, device });
  const symbolic = gradFn(...inputs) as NDArray[];
  inputs.forEach((x, k) => {
    const g = symbolic[k]!;
    assert.deepEqual([...g.shape], [...x.shape], `gradient ${k} shape`);
    for (let i = 0; i < x.size; i++) {
      const plus = x.copy(); plus.data[i]! += eps;
      const minus = x.copy(); minus.data[i]! -= eps;
      const args = (v: NDArray) => inputs.map((a, j) => (j === k ? v : a));
      const fp = (costFn(...args(plus)) as NDArray).item();
      const fm = (costFn(...args(minus)) as NDArray).item();
      const numeric = (fp - fm) / (2 * eps);
      const analytic = g.data[i]!;
      if (!(Math.abs(numeric - analytic) <= atol + rtol * Math.abs(numeric))) {
        assert.fail(`gradient of input ${k} element ${i}: symbolic ${analytic}, finite difference ${numeric}`);
      }
    }
  });
}
