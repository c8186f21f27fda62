// Max and average pooling and their gradient ops (incl. the gradient of the max-pool gradient)
// against the float64 oracle: overlapping and padded windows, ties, NaN, integer inputs.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import type { Pool2dOptions } from '../../../src/build/build-nn.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle, checkExact, forEachCpuDevice } from './cpu-cases.js';
import { maxPool2x2F32, maxPool2x2GradF32 } from '../../../src/devices/cpu/wasm-pool.js';

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
    // The WebAssembly 2x2 kernels: planes in several blocks (41 planes of 28x28 a block), odd sizes.
    ['2x2 over 60 planes of 28x28', [3, 20, 28, 28], { kernel: 2 }],
    ['2x2, odd height and width', [2, 3, 7, 9], { kernel: 2 }],
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

  it('2x2 float32: the first maximum wins (-0 before +0), NaN anywhere in the window wins, the gradient goes there', () => {
    const x = T.tensor4('x');
    const xv = NDArray.from([-0, 0, 1, 1, 0, -0, 2, NaN, -5, -6, 3, 3, -7, -8, 3, 4], { dtype: 'float32', shape: [1, 1, 4, 4] });
    const gy = NDArray.from([1, 2, 3, 4], { dtype: 'float32', shape: [1, 1, 2, 2] });
    const g = T.tensor4('g');
    const [y, gx] = T.fn({ inputs: [x, g], outputs: [T.maxPool2d(x, { kernel: 2 }), T.grad(T.sum(T.mul(T.maxPool2d(x, { kernel: 2 }), g)), x)], device })(
      xv, gy) as NDArray[];
    assert.ok(Object.is(y!.data[0], -0), `window 0 (-0, +0, +0, -0) pools to -0, got ${y!.data[0]}`);
    assert.ok(Number.isNaN(y!.data[1]!), 'window 1 holds a NaN');
    assert.deepEqual(Array.from(y!.data.subarray(2)), [-5, 4]);
    // Window 0: position (0,0); window 1: the NaN at (1,3); window 2: -5 at (2,0); window 3: 4 at (3,3).
    const want = new Array<number>(16).fill(0);
    want[0] = 1; want[7] = 2; want[8] = 3; want[15] = 4;
    assert.deepEqual(Array.from(gx!.data), want);
  });

  it('integer inputs pool exactly', () => {
    const x = T.tensor4('x', 'int32');
    const xv = randomArray([1, 2, 6, 6], 3, { dtype: 'int32', lo: -100, hi: 100 });
    checkExact(device, [x], [T.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), T.avgPool2d(x, { kernel: 2 })], [xv], 'int32');
  });
});

/** The first maximum of each 2x2 window by the reference's rule (first NaN wins), written out by hand: y and the routed gradient. */
function pool2x2ByHand(x: Float32Array, gy: Float32Array, planes: number, h: number, w: number): { y: Float32Array; gx: Float32Array } {
  const oh = h >> 1, ow = w >> 1;
  const y = new Float32Array(planes * oh * ow), gx = new Float32Array(planes * h * w);
  for (let p = 0, o = 0; p < planes; p++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++, o++) {
        const at = [0, 1, w, w + 1].map((d) => p * h * w + 2 * i * w + 2 * j + d);
        let best = at[0]!;
        for (const a of at.slice(1)) {
          if (Number.isNaN(x[best]!)) break;
          if (Number.isNaN(x[a]!) || x[a]! > x[best]!) best = a;
        }
        y[o] = x[best]!;
        gx[best] = gy[o]!;
      }
    }
  }
  return { y, gx };
}

it('2x2 pooling in WebAssembly, SIMD and scalar: the same bits as the rule written out (ties, signed zeros, NaN; rows of 4 to 13 windows)', () => {
  for (const [h, w] of [[8, 8], [6, 10], [7, 13], [4, 26], [9, 27], [2, 9]] as const) {
    const planes = 5;
    const x = new Float32Array(planes * h * w);
    const pick = [-0, 0, 1, 1, -1, 2, NaN, -Infinity, 0.5, 2];
    for (let i = 0; i < x.length; i++) x[i] = pick[(i * 7 + (i >> 3) * 3) % pick.length]!;
    const gy = Float32Array.from({ length: planes * (h >> 1) * (w >> 1) }, (_, i) => i + 1);
    const want = pool2x2ByHand(x, gy, planes, h, w);
    for (const simd of [true, false]) {
      const y = new Float32Array(want.y.length).fill(99), gx = new Float32Array(want.gx.length).fill(99);
      maxPool2x2F32(x, y, planes, h, w, simd);
      maxPool2x2GradF32(x, gy, gx, planes, h, w, simd);
      const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => Object.is(v, b[i]));
      assert.ok(same(y, want.y), `${h}x${w} ${simd ? 'SIMD' : 'scalar'}: pooled ${Array.from(y).join(' ')} want ${Array.from(want.y).join(' ')}`);
      assert.ok(same(gx, want.gx), `${h}x${w} ${simd ? 'SIMD' : 'scalar'}: gradient differs`);
    }
  }
});
