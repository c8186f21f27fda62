// The CUDA lowerings of conv2d (and its gradients), pooling (and its gradients) and incTake, run
// on the CPU on machines without a GPU: the generated kernels are compiled with the host C++
// compiler through a shim (every kernel is a grid-stride loop, so a few emulated threads, run one
// after the other in reverse order, cover the whole grid),
// cuBLAS is replaced by a naive column-major GEMM with the same arguments, and the runners see a
// RunState over host memory. This checks the kernels' index arithmetic, the GEMM plans (operand
// order, transposes, leading dimensions, batch strides, beta) and the run-time checks against
// the reference device; only the real GPU's parallelism, NVRTC and cuBLAS are left to the GPU tests.
// (The emulator itself: test/helpers/cuda-emulator.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { applyOp } from '../../../src/ops/apply.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';
import { convColumnLimit } from '../../../src/devices/cuda/lower/conv.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';
import { HOST_CXX } from '../../helpers/cuda-host.js';
import { buildHost, runOnHost } from '../../helpers/cuda-emulator.js';

const CXX = HOST_CXX;

interface Case { name: string; inputs: T.Variable[]; outputs: T.Variable[]; values: NDArray[]; before?: () => void; after?: () => void }

const sym = (a: NDArray, name: string) => T.tensor({ dtype: a.dtype, ndim: a.ndim, name });
const two = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

function convCases(): Case[] {
  const out: Case[] = [];
  const geometries: [
    string,
    number[],
    number[],
    { stride?: number | [number, number]; padding?: [number, number] | 'same'; dilation?: number | [number, number]; groups?: number },
  ][] = [
    ['groups 3, 5 images', [5, 6, 5, 4], [9, 2, 3, 2], { groups: 3, padding: [1, 0], dilation: [2, 1] }],
    ['groups 4, 2 images, stride', [2, 8, 5, 6], [8, 2, 3, 3], { groups: 4, stride: [2, 1], padding: [1, 1] }],
    ["'same', even kernel", [2, 3, 4, 5], [2, 3, 2, 2], { padding: 'same' }],
    ['1x1, groups 2 (no column buffer)', [3, 4, 3, 5], [6, 2, 1, 1], { groups: 2 }],
    ['1x1 stride 2', [2, 4, 5, 5], [3, 4, 1, 1], { stride: 2 }],
    ['kernel larger than the input, padded', [1, 1, 2, 2], [1, 1, 3, 3], { padding: [1, 1] }],
  ];
  let seed = 100;
  for (const dtype of ['float32', 'float64'] as const) {
    for (const chunked of [false, true]) {
      for (const [title, xs, ws, o] of geometries) {
        const attrs = { stride: two(o.stride ?? 1), padding: o.padding ?? [0, 0], dilation: two(o.dilation ?? 1), groups: o.groups ?? 1 };
        const x = randomArray(xs, seed++, { dtype }), w = randomArray(ws, seed++, { dtype });
        const y = T.fn({ inputs: [], outputs: T.conv2d(T.constant(x), T.constant(w), attrs) })() as NDArray;
        const gy = randomArray(y.shape, seed++, { dtype });
        const xv = sym(x, 'x'), wv = sym(w, 'w'), gv = sym(gy, 'gy');
        const limit = convColumnLimit.bytes;
        out.push({
          name: `conv2d ${dtype}${chunked ? ' one image per chunk' : ''}: ${title}`,
          inputs: [xv, wv, gv],
          outputs: [applyOp('conv2d', [xv, wv], attrs), applyOp('conv2dInputGrad', [gv, wv, xv], attrs), applyOp('conv2dFilterGrad', [xv, gv, wv], attrs)],
          values: [x, w, gy],
          ...(chunked ? { before: () => { convColumnLimit.bytes = 1; }, after: () => { convColumnLimit.bytes = limit; } } : {}),
        });
      }
    }
  }
  return out;
}

function poolCases(): Case[] {
  const out: Case[] = [];
  const geometries: [number[], [number, number], [number, number], [number, number]][] = [
    [[2, 3, 6, 8], [2, 2], [2, 2], [0, 0]],
    [[2, 2, 7, 6], [3, 3], [2, 2], [1, 1]],
    [[2, 1, 6, 7], [4, 3], [1, 1], [3, 2]],
    [[3, 7, 5], [2, 2], [3, 3], [0, 0]],
    [[1, 0, 3], [2, 2], [1, 1], [1, 1]],
  ];
  let seed = 200;
  for (const dtype of ['float32', 'float64', 'int32'] as const) {
    for (const [shape, kernel, stride, padding] of geometries) {
      const attrs = { kernel, stride, padding };
      const ties = randomArray(shape, seed++, { dtype: 'int32', lo: -8, hi: 9 });
      const x = NDArray.from(Array.from(ties.data, (v) => (dtype === 'int32' ? v : v / 4)), { dtype, shape });
      if (dtype !== 'int32' && x.size > 7) { x.data[1] = NaN; x.data[7] = NaN; }
      const pooled = (T.fn({ inputs: [], outputs: T.maxPool2d(T.constant(x), { kernel, stride, padding }) })() as NDArray).shape;
      const gy = randomArray(
        pooled,
        seed++,
        { dtype: dtype === 'int32' ? 'float32' : dtype },
      ), g = randomArray(shape, seed++, { dtype: dtype === 'int32' ? 'float32' : dtype });
      const xv = sym(x, 'x'), gyv = sym(gy, 'gy'), gv = sym(g, 'g');
      out.push({
        name: `pooling ${dtype} ${JSON.stringify(attrs)} over ${JSON.stringify(shape)}`,
        inputs: [xv, gyv, gv],
        outputs: [
          applyOp('maxPool2d', [xv], attrs), applyOp(
            'avgPool2d',
            [xv],
            { ...attrs, countIncludePad: true },
          ), applyOp('avgPool2d', [xv], { ...attrs, countIncludePad: false }),
          applyOp('maxPool2dGrad', [xv, gyv], attrs), applyOp('maxPool2dGradGrad', [xv, gv], attrs),
          applyOp('avgPool2dGrad', [gyv, xv], { ...attrs, countIncludePad: true }), applyOp('avgPool2dGrad', [gyv, xv], { ...attrs, countIncludePad: false }),
        ],
        values: [x, gy, g],
      });
    }
  }
  return out;
}

function incTakeCases(): Case[] {
  const out: Case[] = [];
  const layouts: [number[], number[], number[], number][] = [
    [[5, 3], [0, 2, 0, -1, 2, 2], [6], 0],
    [[2, 5, 3], [4, 4, 0, 1, -5, 3], [2, 3], 1],
    [[2, 3, 4], [3, 3, 3], [3], 2],
    [[4, 2], [-2], [], 0],
    [[4, 2], [], [0], 0],
  ];
  let seed = 300;
  for (const dtype of ['float32', 'float64', 'int32', 'uint8'] as const) {
    for (const [xs, iv, is, axis] of layouts) {
      const region = [...xs.slice(0, axis), ...is, ...xs.slice(axis + 1)];
      const x = randomArray(xs, seed++, { dtype: dtype === 'uint8' ? 'int32' : dtype, lo: 0, hi: 50 }).astype(dtype);
      const idx = NDArray.from(iv, { dtype: 'int32' }).reshape(is);
      for (const yShape of [region, region.slice(1)]) {
        const y = randomArray(yShape, seed++, { dtype: dtype === 'uint8' ? 'int32' : dtype, lo: 0, hi: 50 }).astype(dtype);
        const xv = sym(x, 'x'), yv = sym(y, 'y'), iv2 = sym(idx, 'i');
        out.push({
          name: `incTake ${dtype} x ${JSON.stringify(xs)} indices ${JSON.stringify(iv)} on axis ${axis}, y ${JSON.stringify(yShape)}`,
          inputs: [xv, yv, iv2],
          outputs: [applyOp('incTake', [xv, yv, iv2], { axis, set: false }), applyOp('incTake', [xv, yv, iv2], { axis, set: true })],
          values: [x, y, idx],
        });
      }
    }
  }
  return out;
}

function rowwiseCases(): Case[] {
  const out: Case[] = [];
  let seed = 400;
  for (const dtype of ['float32', 'float64'] as const) {
    for (const [rows, classes] of [[7, 3], [1, 5], [0, 4]] as const) {
      const x = randomArray([rows, classes], seed++, { dtype });
      const t = NDArray.from(Array.from({ length: rows }, (_, r) => (r * 2 + 1) % classes), { dtype: 'int32' });
      const g = randomArray([rows], seed++, { dtype });
      const xv = sym(x, 'x'), tv = sym(t, 't'), gv = sym(g, 'g');
      out.push({
        name: `takeRowwise / scatterRowwise ${dtype} ${rows}x${classes} (indices checked on the device)`,
        inputs: [xv, tv, gv],
        outputs: [applyOp('takeRowwise', [xv, tv], {}), applyOp('scatterRowwise', [gv, tv, xv], {})],
        values: [x, t, g],
      });
    }
  }
  return out;
}

const CXX_SKIP = CXX === null ? 'no host C++ compiler (g++, c++ or clang++)' : false;
test('conv2d, pooling, incTake and per-row gather lowerings run on the CPU through the kernel shim and match the reference', { skip: CXX_SKIP }, () => {
  const cases = [...convCases(), ...poolCases(), ...incTakeCases(), ...rowwiseCases()];
  const programs = cases.map((c) => T.fn({ inputs: c.inputs, outputs: c.outputs }).compiled.description.program);
  const lowered = programs.map((p) => lowerProgram(p));
  const host = buildHost(lowered);
  const reference = new T.ReferenceDevice();
  cases.forEach((c, i) => {
    c.before?.();
    try {
      const got = runOnHost(host, programs[i]!, lowered[i]!, c.values);
      const want = T.fn({ inputs: c.inputs, outputs: c.outputs, device: reference })(...c.values) as NDArray[];
      got.forEach((g, k) => {
        assert.equal(g.dtype, want[k]!.dtype, `${c.name} output ${k} dtype`);
        assertAllClose(g, want[k]!, g.dtype === 'float32' ? { rtol: 1e-5, atol: 1e-5 } : { rtol: 1e-12, atol: 1e-12 }, `${c.name} output ${k}`);
      });
    } finally {
      c.after?.();
    }
  });
});

/** The conv cases' programs under the 'bf16' policy, and one matmul with broadcast batches and transposes. */
function bf16Cases(): Case[] {
  const f32 = { dtype: 'float32' } as const;
  const a = randomArray([2, 5, 7], 500, f32), b = randomArray([7, 6], 501, f32), c = randomArray([3, 7], 502, f32);
  const av = sym(a, 'a'), bv = sym(b, 'b'), cv = sym(c, 'c');
  const matmuls: Case = {
    name: 'matmul bfloat16: broadcast batch, transposed operands',
    inputs: [av, bv, cv],
    outputs: [T.matmul(av, bv), applyOp('matmul', [cv, av], { transA: false, transB: true }), applyOp('matmul', [bv, cv], { transA: true, transB: true })],
    values: [a, b, c],
  };
  return [...convCases().filter((k) => k.name.startsWith('conv2d float32')), matmuls].map((k) => ({ ...k, name: `${k.name} (precision bf16)` }));
}

test("the 'bf16' policy's conv2d, conv gradients and matmul lowerings (im2col + bfloat16 GEMM) match the reference's rounding", { skip: CXX_SKIP }, () => {
  const cases = bf16Cases();
  const programs = cases.map((c) => T.fn({ inputs: c.inputs, outputs: c.outputs, precision: 'bf16' }).compiled.description.program);
  for (const p of programs) assert.ok(p.steps.some((st) => st.attrs['precision'] === 'bf16'), 'the pass marked the products');
  const lowered = programs.map((p) => lowerProgram(p));
  const host = buildHost(lowered);
  const reference = new T.ReferenceDevice();
  let roundingShows = 0;
  cases.forEach((c, i) => {
    c.before?.();
    try {
      const got = runOnHost(host, programs[i]!, lowered[i]!, c.values);
      const want = T.fn({ inputs: c.inputs, outputs: c.outputs, device: reference, precision: 'bf16' })(...c.values) as NDArray[];
      const exact = T.fn({ inputs: c.inputs, outputs: c.outputs, device: reference })(...c.values) as NDArray[];
      got.forEach((g, k) => {
        assertAllClose(g, want[k]!, { rtol: 1e-5, atol: 1e-5 }, `${c.name} output ${k}`);
        const off = Array.from(g.data).some((v, e) => Math.abs(v - exact[k]!.data[e]!) > 1e-4 * (1 + Math.abs(exact[k]!.data[e]!)));
        if (off) roundingShows++;
      });
    } finally {
      c.after?.();
    }
  });
  // The operands really were rounded: most results differ from float32 products by far more than float32 rounding.
  assert.ok(roundingShows >= cases.length * 2, `only ${roundingShows} of ${cases.length * 3} outputs differ from the float32 products`);
});

test('the lowerings throw the reference errors for bad shapes and indices', { skip: CXX === null ? 'no host C++ compiler' : false }, () => {
  const x = T.tensor4('x'), w = T.tensor4('w'), gy = T.tensor4('gy');
  const v = T.matrix('v'), i = T.tensor({ dtype: 'int32', ndim: 1, name: 'i' }), y = T.matrix('y'), gv = T.vector('g');
  const f32 = (shape: number[]) => randomArray(shape, 1, { dtype: 'float32' });
  const cases: [T.Variable[], T.Variable, NDArray[], RegExp][] = [
    [[x, w], T.conv2d(x, w), [f32([1, 3, 4, 4]), f32([2, 2, 3, 3])], /^conv2d: filters expect 2 channels per group, input has 3 channels/],
    [
      [gy, w, x],
      T.conv2dInputGrad(gy, w, x),
      [f32([1, 2, 3, 2]), f32([2, 1, 3, 3]), f32([1, 1, 4, 4])],
      /^conv2dInputGrad: output gradient has shape \(1, 2, 3, 2\), the convolution gives \(1, 2, 2, 2\)$/,
    ],
    [[x, gy, w], T.conv2dFilterGrad(x, gy, w), [f32([1, 1, 4, 4]), f32([1, 2, 3, 2]), f32([2, 1, 3, 3])], /^conv2dFilterGrad: output gradient has shape/],
    [
      [x],
      T.maxPool2d(x, { kernel: 3 }),
      [f32([1, 1, 2, 5])],
      /^maxPool2d: output size 0x1 is not positive \(input \(1, 1, 2, 5\), kernel 3x3, stride 3x3, padding 0x0\)$/,
    ],
    [
      [v, y, i],
      T.incSubtensor(v.take(i, 0), y),
      [f32([3, 2]), f32([2, 2]), NDArray.from([0, 3], { dtype: 'int32' })],
      /^incTake: index 3 \(at position 1 of the indices\) is out of range for axis 0 of size 3/,
    ],
    [
      [v, y, i],
      T.incSubtensor(v.take(i, 0), y),
      [f32([3, 2]), f32([3, 2]), NDArray.from([0, 1], { dtype: 'int32' })],
      /^incTake: y of shape \(3, 2\) does not broadcast to the selected region of shape \(2, 2\)/,
    ],
    [[v, i], applyOp('takeRowwise', [v, i], {}), [f32([3, 2]), NDArray.from([1, 2, 0], { dtype: 'int32' })],
      /^takeRowwise: index 2 is out of range for 2 classes \(values of shape \(3, 2\)\)$/],
    [[gv, i, v], applyOp('scatterRowwise', [gv, i, v], {}), [f32([3]), NDArray.from([-1, 0, 0], { dtype: 'int32' }), f32([3, 2])],
      /^scatterRowwise: index -1 is out of range for 2 classes/],
  ];
  const lowered = cases.map(([inputs, out]) => lowerProgram(T.fn({ inputs, outputs: out }).compiled.description.program));
  const host = buildHost(lowered);
  cases.forEach(([inputs, out, values, re], k) => {
    const program = T.fn({ inputs, outputs: out }).compiled.description.program;
    assert.throws(() => runOnHost(host, program, lowered[k]!, values), (e: Error) => e.name === 'OpRuntimeError' && re.test(e.message));
  });
});
