// conv2d (stride, padding incl. 'same'/'valid', dilation, groups) and its two gradient ops, max and
// average pooling with their gradients: against direct summation written here; gradients by finite
// differences; build-time and run-time errors.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { forEachDevice } from '../helpers/devices.js';
import { assertAllClose, randomArray } from '../helpers/allclose.js';
import { verifyGrad } from '../helpers/gradcheck.js';
import { convColumnLimit } from '../../src/devices/cuda/lower/conv.js';

const f32 = (shape: number[], seed: number) => randomArray(shape, seed, { dtype: 'float32' });
const f64 = (shape: number[], seed: number) => randomArray(shape, seed);
const sym = (a: NDArray, name: string) => T.tensor({ dtype: a.dtype, ndim: a.ndim, name });
const isFloatArray = (a: NDArray) => a.dtype === 'float32' || a.dtype === 'float64';

interface ConvCase { title: string; x: number[]; w: number[]; opts: T.Conv2dOptions; pad: [number, number, number, number] }

/** Direct summation: out[n,o,i,j] = sum x(n, group(o)·Cg + c, i·sh - top + p·dh, j·sw - left + q·dw) · w[o,c,p,q], zero outside x. */
function naiveConv(x: NDArray, w: NDArray, o: T.Conv2dOptions, pad: readonly number[]): NDArray {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, Cg, KH, KW] = w.shape as [number, number, number, number];
  const two = (v: number | readonly [number, number] | undefined) => (v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v);
  const [sh, sw] = two(o.stride), [dh, dw] = two(o.dilation);
  const [pt, pb, pl, pr] = pad as [number, number, number, number];
  const G = o.groups ?? 1;
  const OH = Math.floor((H + pt + pb - dh * (KH - 1) - 1) / sh!) + 1;
  const OW = Math.floor((W + pl + pr - dw * (KW - 1) - 1) / sw!) + 1;
  const X = (n: number, c: number, h: number, v: number) => (h < 0 || h >= H || v < 0 || v >= W ? 0 : x.data[((n * C + c) * H + h) * W + v]!);
  const out = new NDArray('float64', [N, O, OH, OW]);
  let k = 0;
  for (let n = 0; n < N; n++) for (let f = 0; f < O; f++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    let s = 0;
    const group = Math.floor(f / (O / G));
    for (let c = 0; c < Cg; c++) for (let p = 0; p < KH; p++) for (let q = 0; q < KW; q++) {
      s += X(n, group * Cg + c, i * sh! - pt + p * dh!, j * sw! - pl + q * dw!) * w.data[((f * Cg + c) * KH + p) * KW + q]!;
    }
    out.data[k++] = s;
  }
  return out;
}

/** d/dv sum(naiveConv(...) * gy) for v = x or w, one basis vector at a time (independent of the grad ops). */
function naiveConvGrad(which: 'x' | 'w', x: NDArray, w: NDArray, gy: NDArray, c: ConvCase): NDArray {
  const v = which === 'x' ? x : w;
  const out = new NDArray('float64', v.shape);
  for (let i = 0; i < v.size; i++) {
    const e = new NDArray('float64', v.shape);
    e.data[i] = 1;
    const y = which === 'x' ? naiveConv(e, w, c.opts, c.pad) : naiveConv(x, e, c.opts, c.pad);
    let s = 0;
    for (let k = 0; k < y.size; k++) s += y.data[k]! * gy.data[k]!;
    out.data[i] = s;
  }
  return out;
}

const convCases: ConvCase[] = [
  { title: 'basic, batch 2', x: [2, 1, 4, 4], w: [2, 1, 3, 3], opts: {}, pad: [0, 0, 0, 0] },
  { title: 'stride 2', x: [1, 2, 5, 5], w: [2, 2, 3, 3], opts: { stride: 2 }, pad: [0, 0, 0, 0] },
  { title: 'padding 1', x: [1, 1, 4, 4], w: [1, 1, 3, 3], opts: { padding: 1 }, pad: [1, 1, 1, 1] },
  { title: 'dilation 2', x: [1, 1, 5, 5], w: [1, 1, 2, 2], opts: { dilation: 2 }, pad: [0, 0, 0, 0] },
  { title: 'groups 2', x: [1, 2, 4, 4], w: [4, 1, 2, 2], opts: { groups: 2 }, pad: [0, 0, 0, 0] },
  { title: "'same', even kernel (extra padding at the end)", x: [1, 1, 4, 4], w: [1, 1, 2, 2], opts: { padding: 'same' }, pad: [0, 1, 0, 1] },
  { title: "'same' with dilation 2", x: [1, 1, 5, 5], w: [1, 1, 3, 3], opts: { padding: 'same', dilation: 2 }, pad: [2, 2, 2, 2] },
  { title: "'valid'", x: [1, 1, 4, 5], w: [1, 1, 2, 3], opts: { padding: 'valid' }, pad: [0, 0, 0, 0] },
  {
    title: 'per-axis stride/padding/dilation',
    x: [1, 2, 5, 5],
    w: [2, 2, 2, 2],
    opts: { stride: [2, 1], padding: [1, 0], dilation: [1, 2] },
    pad: [1, 1, 0, 0],
  },
  { title: 'stride 2 + padding 1 + groups 2', x: [1, 2, 5, 5], w: [2, 1, 3, 3], opts: { stride: 2, padding: 1, groups: 2 }, pad: [1, 1, 1, 1] },
];

interface PoolCase { title: string; x: number[]; kernel: T.IntPair; stride?: T.IntPair; padding?: T.IntPair }
const poolCases: PoolCase[] = [
  { title: 'kernel 2 (stride = kernel)', x: [2, 1, 4, 4], kernel: 2 },
  { title: 'kernel 3, stride 1, padding 1 (overlapping)', x: [1, 2, 4, 4], kernel: 3, stride: 1, padding: 1 },
  { title: 'rectangular kernel and stride', x: [1, 1, 5, 5], kernel: [2, 3], stride: [1, 2] },
  { title: '3-d input, odd size (floor)', x: [3, 5, 5], kernel: 2, stride: 2 },
  { title: '2-d input, padding', x: [4, 5], kernel: 2, stride: 2, padding: 1 },
];

/** Windows of the last two axes: each a list of flat indices of the non-padding elements. */
function windowsOf(shape: number[], c: PoolCase): { out: number[]; wins: number[][] } {
  const two = (v: T.IntPair | undefined, d: [number, number]): [number, number] => (v === undefined ? d : typeof v === 'number' ? [v, v] : [v[0], v[1]]);
  const k = two(c.kernel, [1, 1]), s = two(c.stride, k), p = two(c.padding, [0, 0]);
  const H = shape[shape.length - 2]!, W = shape[shape.length - 1]!;
  const lead = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const OH = Math.floor((H + 2 * p[0] - k[0]) / s[0]) + 1, OW = Math.floor((W + 2 * p[1] - k[1]) / s[1]) + 1;
  const wins: number[][] = [];
  for (let l = 0; l < lead; l++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const win: number[] = [];
    for (let a = 0; a < k[0]; a++) for (let b = 0; b < k[1]; b++) {
      const h = i * s[0] - p[0] + a, v = j * s[1] - p[1] + b;
      if (h >= 0 && h < H && v >= 0 && v < W) win.push((l * H + h) * W + v);
    }
    wins.push(win);
  }
  return { out: [...shape.slice(0, -2), OH, OW], wins };
}

const oracle = new T.ReferenceDevice({ float64: true });

/** Values k/4 with k in [-8, 8]: many ties inside pooling windows (exact in float32). */
function ties(shape: number[], seed: number): NDArray {
  const a = randomArray(shape, seed, { dtype: 'int32', lo: -8, hi: 9 });
  return NDArray.from(Array.from(a.data, (v) => v / 4), { dtype: 'float32', shape });
}

forEachDevice('nn ops: conv2d and pooling', (device, dc) => {
  const tol = { rtol: dc.rtol, atol: dc.atol };
  const run = (inputs: T.Variable[], out: T.Variable, ...args: NDArray[]) => T.fn({ inputs, outputs: out, device })(...args) as NDArray;
  /** The outputs on this device against the float64 oracle. */
  const againstOracle = (inputs: T.Variable[], outputs: T.Variable[], values: NDArray[], what: string) => {
    const got = T.fn({ inputs, outputs, device })(...values) as NDArray[];
    const want = T.fn({ inputs, outputs, device: oracle })(...values) as NDArray[];
    got.forEach((g, i) => assertAllClose(g, want[i]!, isFloatArray(g) ? tol : { rtol: 0, atol: 0 }, `${what} output ${i}`));
  };

  for (const c of convCases) {
    it(`conv2d: ${c.title}`, () => {
      const x = f32(c.x, 1), w = f32(c.w, 2);
      const xv = sym(x, 'x'), wv = sym(w, 'w');
      const want = naiveConv(x, w, c.opts, c.pad);
      assertAllClose(run([xv, wv], T.conv2d(xv, wv, c.opts), x, w), want, tol);
      // The two gradient ops against d/dx and d/dw of sum(conv * gy) computed from the naive conv.
      const gy = f32(want.shape as number[], 3), gv = sym(gy, 'gy');
      assertAllClose(run([gv, wv, xv], T.conv2dInputGrad(gv, wv, xv, c.opts), gy, w, x), naiveConvGrad('x', x, w, gy, c), tol, 'input grad');
      assertAllClose(run([xv, gv, wv], T.conv2dFilterGrad(xv, gv, wv, c.opts), x, gy, w), naiveConvGrad('w', x, w, gy, c), tol, 'filter grad');
    });
  }

  for (const c of poolCases) {
    it(`maxPool2d and avgPool2d: ${c.title}`, () => {
      const x = f32(c.x, 4);
      const xv = sym(x, 'x');
      const { out, wins } = windowsOf(c.x, c);
      const opts = { kernel: c.kernel, ...(c.stride !== undefined ? { stride: c.stride } : {}), ...(c.padding !== undefined ? { padding: c.padding } : {}) };
      const max = new NDArray('float64', out, Float64Array.from(wins, (w) => Math.max(...w.map((i) => x.data[i]!))));
      assertAllClose(run([xv], T.maxPool2d(xv, opts), x), max, tol);
      const k = typeof c.kernel === 'number' ? c.kernel * c.kernel : c.kernel[0] * c.kernel[1];
      const sums = wins.map((w) => w.reduce((s, i) => s + x.data[i]!, 0));
      assertAllClose(run([xv], T.avgPool2d(xv, opts), x), new NDArray('float64', out, Float64Array.from(sums, (s) => s / k)), tol);
      const excl = new NDArray('float64', out, Float64Array.from(sums, (s, i) => s / wins[i]!.length));
      assertAllClose(run([xv], T.avgPool2d(xv, { ...opts, countIncludePad: false }), x), excl, tol);
    });
  }

  it('maxPool2d: NaN propagates; ties and NaN route the gradient to the first position', () => {
    const x = NDArray.from([[[[1, 1], [1, 1]], [[1, NaN], [NaN, 2]]]], { dtype: 'float32' });
    const xv = sym(x, 'x');
    const y = T.maxPool2d(xv, { kernel: 2 });
    assertAllClose(run([xv], y, x), [[[[1]], [[NaN]]]]);
    assertAllClose(run([xv], T.grad(T.sum(T.mul(y, 3)), xv), x), [[[[3, 0], [0, 0]], [[0, 3], [0, 0]]]]);
  });

  // Batches larger or smaller than the group count (the CUDA device batches its GEMMs over the
  // larger), 1x1 filters (no im2col), depthwise, float64 and mixed precision, through T.grad.
  const gradCases: [string, number[], number[], T.Conv2dOptions, 'float32' | 'float64'][] = [
    ['5 images, 3 groups, padding and dilation per axis', [5, 6, 7, 6], [9, 2, 3, 2], { groups: 3, padding: [1, 0], dilation: [2, 1] }, 'float32'],
    ['2 images, 4 groups, stride per axis', [2, 8, 6, 7], [8, 2, 3, 3], { groups: 4, stride: [2, 1], padding: 1 }, 'float32'],
    ["'same' with dilation 2, float64", [3, 3, 6, 5], [4, 3, 2, 3], { padding: 'same', dilation: 2 }, 'float64'],
    ['1x1 filters, groups 2', [4, 4, 5, 5], [6, 2, 1, 1], { groups: 2 }, 'float32'],
    ['1x1 filters, stride 2 and padding 1', [3, 2, 7, 7], [3, 2, 1, 1], { stride: 2, padding: 1 }, 'float32'],
    ["depthwise 'same', float64", [2, 4, 4, 4], [4, 1, 3, 3], { groups: 4, padding: 'same' }, 'float64'],
  ];
  for (const [title, xs, ws, opts, dtype] of gradCases) {
    it(`conv2d and its gradients (T.grad) against the float64 oracle: ${title}`, () => {
      const x = randomArray(xs, 31, { dtype }), w = randomArray(ws, 32, { dtype });
      const xv = sym(x, 'x'), wv = sym(w, 'w');
      const y = T.conv2d(xv, wv, opts);
      const r = T.constant(randomArray([1, ws[0]!, 1, 1], 33, { dtype }));
      const [gx, gw] = T.grad(T.sum(T.mul(T.square(y), r)), [xv, wv]);
      againstOracle([xv, wv], [y, gx!, gw!], [x, w], title);
    });
  }

  it('conv2d with float32 input and float64 filters (cast to float64), and its gradients', () => {
    const x = f32([2, 2, 5, 5], 34), w = f64([3, 2, 3, 3], 35);
    const xv = sym(x, 'x'), wv = sym(w, 'w');
    const y = T.conv2d(xv, wv, { padding: 1 });
    const [gx, gw] = T.grad(T.sum(T.square(y)), [xv, wv]);
    againstOracle([xv, wv], [y, gx!, gw!], [x, w], 'mixed');
  });

  it('conv2d and its gradients in several column-buffer chunks (the CUDA device bounds its im2col buffer)', () => {
    const saved = convColumnLimit.bytes;
    convColumnLimit.bytes = 1; // one image per chunk (only the CUDA device reads this limit)
    try {
      const x = f32([3, 4, 6, 5], 36), w = f32([6, 2, 3, 3], 37);
      const xv = sym(x, 'x'), wv = sym(w, 'w');
      const y = T.conv2d(xv, wv, { groups: 2, stride: [1, 2], padding: 1 });
      const [gx, gw] = T.grad(T.sum(T.square(y)), [xv, wv]);
      againstOracle([xv, wv], [y, gx!, gw!], [x, w], 'chunked');
    } finally {
      convColumnLimit.bytes = saved;
    }
  });

  const poolGradCases: [string, number[], T.Pool2dOptions][] = [
    ['2x2', [2, 3, 6, 8], { kernel: 2 }],
    ['3x3 stride 2 padding 1 (overlapping)', [2, 2, 7, 6], { kernel: 3, stride: 2, padding: 1 }],
    ['3x2 stride 1 (heavily overlapping)', [1, 2, 5, 5], { kernel: [3, 2], stride: 1 }],
    ['4x3 stride 1 padding 3x2', [2, 1, 6, 7], { kernel: [4, 3], stride: 1, padding: [3, 2] }],
    ['ragged edges, 3-d', [3, 7, 5], { kernel: 2, stride: 3 }],
    ['matrix input', [5, 4], { kernel: [2, 1] }],
  ];
  for (const [title, shape, options] of poolGradCases) {
    it(`pooling, its gradients and the gradient of the max-pool gradient against the float64 oracle: ${title}`, () => {
      const x = T.tensor({ ndim: shape.length, name: 'x' });
      const xv = ties(shape, shape.length);
      xv.data[1] = NaN;
      const ym = T.maxPool2d(x, options);
      const ya = T.avgPool2d(x, options);
      const yz = T.avgPool2d(x, { ...options, countIncludePad: false });
      const g = T.grad(T.add(T.sum(T.mul(ym, ym)), T.add(T.sum(T.exp(ya)), T.sum(T.square(yz)))), x);
      const gg = T.grad(T.sum(T.mul(T.grad(T.sum(T.mul(ym, ym)), x), x)), x);
      const noNaN = ties(shape, shape.length + 1);
      const ym2 = T.maxPool2d(x, options);
      const gMax = T.grad(T.sum(T.mul(ym2, T.constant(randomArray(run([x], ym2, noNaN).shape as number[], 38, { dtype: 'float32' })))), x);
      againstOracle([x], [ym, ya, yz, g, gg], [xv], title);
      againstOracle([x], [gMax], [noNaN], `${title} (no NaN)`);
    });
  }

  it('pooling of integer inputs: max keeps the dtype, average gives float32', () => {
    const x = T.tensor({ dtype: 'int32', ndim: 4, name: 'x' });
    const xv = randomArray([2, 3, 5, 5], 39, { dtype: 'int32', lo: -50, hi: 50 });
    const opts = { kernel: 3, stride: 2, padding: 1 };
    againstOracle([x], [T.maxPool2d(x, opts), T.avgPool2d(x, opts), T.avgPool2d(x, { ...opts, countIncludePad: false })], [xv], 'int32');
  });

  it('errors: build-time type rules and run-time shapes', () => {
    const isType = (re: RegExp) => (e: Error) => e.name === 'OpTypeError' && re.test(e.message);
    const isRun = (re: RegExp) => (e: Error) => e.name === 'OpRuntimeError' && re.test(e.message);
    assert.throws(() => T.conv2d(T.matrix('x'), T.tensor4('w')), isType(/conv2d: every operand must be 4-d .*\(inputs: float32 matrix, float32 tensor4\)/));
    assert.throws(() => T.conv2d(T.tensor4('x', 'int32'), T.tensor4('w')), isType(/operands must be float32 or float64/));
    assert.throws(() => T.conv2d(T.tensor4('x'), T.tensor4('w'), { stride: 2, padding: 'same' }), isType(/padding 'same' needs stride 1, got 2x2/));
    assert.throws(() => T.conv2d(T.tensor4('x'), T.tensor4('w'), { stride: 0 }), isType(/stride must be two integers >= 1/));
    const oneChannel = T.tensor({ broadcastable: [false, true, false, false], name: 'x' });
    assert.throws(
      () => T.conv2d(oneChannel, T.tensor4('w'), { groups: 2 }),
      isType(/groups 2 does not divide the input's 1 channel .*float32 tensor4\(-B--\)/),
    );
    assert.throws(() => T.maxPool2d(T.tensor4('x'), { kernel: 2, padding: 2 }), isType(/padding must be two integers >= 0 and less than the kernel 2x2/));
    assert.throws(
      () => T.avgPool2d(T.tensor({ broadcastable: [false, false, true, false] }), { kernel: 2 }),
      isType(/output size is not positive: a size-1 axis with kernel 2/),
    );
    assert.throws(() => T.maxPool2d(T.vector('v'), { kernel: 2 }), isType(/input needs ndim >= 2/));
    assert.throws(() => T.maxPool2d(T.tensor4('x'), {} as T.Pool2dOptions), /maxPool2d: options need a kernel size/);

    const x = T.tensor4('x'), w = T.tensor4('w');
    const conv = (o: T.Conv2dOptions) => T.fn({ inputs: [x, w], outputs: T.conv2d(x, w, o), device });
    assert.throws(() => conv({})(f32([1, 3, 4, 4], 1), f32([2, 2, 3, 3], 2)),
      isRun(/conv2d: filters expect 2 channels per group, input has 3 channels in 1 group\(s\) \(input \(1, 3, 4, 4\), filters \(2, 2, 3, 3\)\)/));
    assert.throws(
      () => conv({ groups: 2 })(f32([1, 3, 4, 4], 1), f32([2, 1, 3, 3], 2)),
      isRun(/groups 2 must divide the input channels and the filter count \(input \(1, 3, 4, 4\)/),
    );
    assert.throws(
      () => conv({})(f32([1, 1, 2, 2], 1), f32([1, 1, 3, 3], 2)),
      isRun(/output size 0x0 is not positive \(input \(1, 1, 2, 2\), filters \(1, 1, 3, 3\), stride 1x1/),
    );
    const pool = T.fn({ inputs: [x], outputs: T.maxPool2d(x, { kernel: 3 }), device });
    assert.throws(() => pool(f32([1, 1, 2, 5], 1)), isRun(/maxPool2d: output size 0x1 is not positive \(input \(1, 1, 2, 5\), kernel 3x3/));
    const gyv = T.tensor4('gy');
    const inGrad = T.fn({ inputs: [gyv, w, x], outputs: T.conv2dInputGrad(gyv, w, x), device });
    assert.throws(() => inGrad(f32([1, 2, 3, 2], 1), f32([2, 1, 3, 3], 2), f32([1, 1, 4, 4], 3)),
      isRun(/conv2dInputGrad: output gradient has shape \(1, 2, 3, 2\), the convolution gives \(1, 2, 2, 2\)/));
    const fGrad = T.fn({ inputs: [x, gyv, w], outputs: T.conv2dFilterGrad(x, gyv, w), device });
    assert.throws(() => fGrad(f32([1, 1, 4, 4], 1), f32([1, 2, 3, 2], 2), f32([2, 1, 3, 3], 3)),
      isRun(/conv2dFilterGrad: output gradient has shape \(1, 2, 3, 2\), the convolution gives \(1, 2, 2, 2\)/));
    const avg = T.fn({ inputs: [x], outputs: T.avgPool2d(x, { kernel: 3 }), device });
    assert.throws(() => avg(f32([1, 1, 2, 5], 1)), isRun(/avgPool2d: output size 0x1 is not positive/));
  });
});

// ---- gradients (float64, reference device) ------------------------------------------------------

for (const c of convCases) {
  it(`grad of conv2d: ${c.title}`, () => verifyGrad((x, w) => T.conv2d(x!, w!, c.opts), [f64(c.x, 11), f64(c.w, 12)]));
}

it('grads of the conv gradient ops themselves (first order: they are differentiable too)', () => {
  for (const c of [convCases[1]!, convCases[9]!, convCases[5]!]) {
    const x = f64(c.x, 13), w = f64(c.w, 14);
    const gy = naiveConv(x, w, c.opts, c.pad);
    const xc = T.constant(x), wc = T.constant(w);
    verifyGrad((g, f) => T.conv2dInputGrad(g!, f!, xc, c.opts), [f64(gy.shape as number[], 15), w]);
    verifyGrad((a, g) => T.conv2dFilterGrad(a!, g!, wc, c.opts), [x, f64(gy.shape as number[], 16)]);
  }
});

for (const c of poolCases) {
  it(`grad of maxPool2d and avgPool2d: ${c.title}`, () => {
    const opts = { kernel: c.kernel, ...(c.stride !== undefined ? { stride: c.stride } : {}), ...(c.padding !== undefined ? { padding: c.padding } : {}) };
    const x = f64(c.x, 17);
    verifyGrad((v) => T.maxPool2d(v!, opts), [x]);
    verifyGrad((v) => T.avgPool2d(v!, opts), [x]);
    verifyGrad((v) => T.avgPool2d(v!, { ...opts, countIncludePad: false }), [x]);
  });
}

it('second-order through pooling: the gradient ops are differentiable in the output gradient', () => {
  const x = T.shared(f64([1, 2, 4, 4], 18));
  const opts = { kernel: 3, stride: 1, padding: 1 };
  verifyGrad((gy) => T.grad(T.sum(T.mul(T.maxPool2d(x, opts), gy!)), x), [f64([1, 2, 4, 4], 19)]);
  verifyGrad((gy) => T.grad(T.sum(T.mul(T.avgPool2d(x, { ...opts, countIncludePad: false }), gy!)), x), [f64([1, 2, 4, 4], 20)]);
});
