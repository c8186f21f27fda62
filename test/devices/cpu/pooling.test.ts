// Max and average pooling and their gradient ops (incl. the gradient of the max-pool gradient)
// against the float64 oracle: overlapping and padded windows, ties, NaN, integer inputs.
import { it } from 'node:test';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import type { Pool2dOptions } from '../../../src/build/build-nn.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle, checkExact, forEachCpuDevice } from './cpu-cases.js';

/** Values k/4 with k in [-8, 8]: many ties inside windows. */
function ties(shape: number[], seed: number): NDArray {
  const a = randomArray(shape, seed, { dtype: 'int32', lo: -8, hi: 9 });
  return NDArray.from(Array.from(a.data, (v) => v / 4), { dtype: 'float32', shape });
}

forEachCpuDevice('pooling', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };
  const cases: [string, number[], Pool2dOptions][] = [
    ['2x2', [2, 3, 6, 8], { kernel: 2 }],
    ['3x3 stride 2 padding 1 (overlapping)', [2, 2, 7, 6], { kernel: 3, stride: 2, padding: 1 }],
    ['3x2 stride 1 (heavily overlapping)', [1, 2, 5, 5], { kernel: [3, 2], stride: 1 }],
    ['ragged edges', [3, 7, 5], { kernel: 2, stride: 3 }],
    ['matrix input', [5, 4], { kernel: [2, 1] }],
  ];
  for (const [name, shape, options] of cases) {
    it(`${name}: forward, gradient and gradient of the gradient`, () => {
      const x = T.tensor({ ndim: shape.length, name: 'x' });
      const xv = ties(shape, shape.length);
      xv.data[1] = NaN;
      const ym = T.maxPool2d(x, options);
      const ya = T.avgPool2d(x, options);
      const yz = T.avgPool2d(x, { ...options, countIncludePad: false });
      const loss = T.add(T.sum(T.mul(ym, ym)), T.add(T.sum(T.exp(ya)), T.sum(T.square(yz))));
      const g = T.grad(loss, x);
      // Second order through maxPool2dGrad's own gradient (maxPool2dGradGrad).
      const gg = T.grad(T.sum(T.mul(T.grad(T.sum(T.mul(ym, ym)), x), x)), x);
      checkAgainstOracle(device, [x], [ym, ya, yz, g, gg], [xv], tol, name);
    });
  }

  it('integer inputs pool exactly', () => {
    const x = T.tensor4('x', 'int32');
    const xv = randomArray([1, 2, 6, 6], 3, { dtype: 'int32', lo: -100, hi: 100 });
    checkExact(device, [x], [T.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), T.avgPool2d(x, { kernel: 2 })], [xv], 'int32');
  });
});
