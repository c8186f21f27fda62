// conv2d and its two gradients on bfloat16 operands with float32 sums: the steps the 'bf16' precision
// policy marked (float32 only); the lowering table's conv entries are the ones at the end of this file,
// which send every other step to conv.ts.
// - cuDNN (device made with cudnn: true, and cuDNN takes the problem): both operands are rounded into
//   bfloat16 copies, cuDNN convolves bfloat16 tensors with float accumulation and writes its result in
//   bfloat16 (the legacy API's bfloat16 configuration has one type for x, w and y), which is widened into
//   the float32 output: one more rounding of the result, as under torch.autocast.
// - otherwise im2col + the bfloat16 tensor-core GEMM (cublasGemmEx, CUDA_R_16BF operands, CUBLAS_COMPUTE_32F,
//   a float32 result): images are unfolded in float32 as in conv.ts and each chunk's column buffer is then
//   rounded to bfloat16; the filters and the output gradient are rounded once per step.
import { convGeometry, type Conv2dAttrs } from '../../../ops/conv.js';
import type { ProgramStep } from '../../../compile/program.js';
import { gemm } from './gemm.js';
import { col2imKernel, sumImagesKernel } from '../codegen/conv.js';
import { fromBf16Kernel, toBf16Kernel } from '../codegen/misc.js';
import type { CudaArray } from '../cuda-array.js';
import { convolveWithCudnn, cudnnChoiceOf } from './conv-cudnn.js';
import {
  asDtype, checkGradShape, compile, fillZero, geometryArgs, im2col, lowerConv2d, lowerConv2dFilterGrad, lowerConv2dInputGrad, planOf, releaseTemps,
  type Compiled, type GemmBase, type Level, type Plan,
} from './conv.js';
import { BF16_BYTES, bf16Copy, bf16Temp, roundIntoBf16, widenBf16 } from './bf16.js';
import { i32, i64, ptr, type LowerContext, type Lowering, type Runner, type RunState } from './types.js';

const F32_BYTES = 4;

interface Bf16Kernels extends Compiled {
  readonly toBf16: string;
  readonly fromBf16: string;
}

function kernels(lc: LowerContext, k: Compiled): Bf16Kernels {
  return { ...k, toBf16: toBf16Kernel(lc.mb), fromBf16: fromBf16Kernel(lc.mb) };
}

/** Offsets a device pointer by `elements` of `bytes` each. */
const at = (p: bigint, elements: number, bytes: number): bigint => p + BigInt(elements) * BigInt(bytes);

/**
 * The bfloat16 GEMM `base` (a and b bfloat16, c float32) over two batch levels: `outer` by a loop, `inner` as
 * one strided-batched call per step; the larger level is the inner one.
 */
function gemmBf16(s: RunState, base: GemmBase, x: Level, y: Level): void {
  const [inner, outer] = x.count >= y.count ? [x, y] : [y, x];
  for (let o = 0; o < outer.count; o++) {
    gemm(s, {
      ...base, dtype: 'bfloat16', outDtype: 'float32',
      a: at(base.a, o * outer.a, BF16_BYTES), b: at(base.b, o * outer.b, BF16_BYTES), c: at(base.c, o * outer.c, F32_BYTES),
      ...(inner.count > 1 ? { batch: { strideA: inner.a, strideB: inner.b, strideC: inner.c, batchCount: inner.count } } : {}),
    });
  }
}

/**
 * The bfloat16 column matrix of images b0..b0+nb-1: for a direct (1x1) convolution the bfloat16 copy of x
 * itself (xb), else x unfolded into `col` (float32) and rounded into `colb`.
 */
function bf16Columns(s: RunState, k: Bf16Kernels, p: Plan, x: CudaArray, xb: CudaArray | null, col: CudaArray | null, colb: CudaArray | null,
  b0: number, nb: number): bigint {
  if (!col || !colb) return at(xb!.ptr, b0 * p.rows * p.P, BF16_BYTES);
  im2col(s, k.im2col, col, x, p, b0, nb);
  roundIntoBf16(s, k.toBf16, colb.ptr, col.ptr, nb * p.rows * p.P);
  return colb.ptr;
}

/** A cuDNN convolution on bfloat16 copies, widened into `out`; false (nothing left enqueued but the copies) when cuDNN declines. */
function viaCudnn(s: RunState, k: Bf16Kernels, run: (result: CudaArray) => boolean, out: CudaArray): boolean {
  const result = bf16Temp(s, out.size);
  const done = run(result);
  if (done) widenBf16(s, k.fromBf16, out, result);
  result.release();
  return done;
}

export function lowerConv2dBf16(lc: LowerContext, step: ProgramStep, compiled: Compiled): Runner {
  const k = kernels(lc, compiled);
  const attrs = step.attrs as Conv2dAttrs;
  const cudnn = cudnnChoiceOf(lc);
  return (s, st) => {
    const x0 = s.dev(st.inputs[0]!);
    const w0 = s.dev(st.inputs[1]!);
    const g = convGeometry('conv2d', x0.shape, w0.shape, attrs);
    const out = s.alloc('float32', [g.n, g.cout, g.oh, g.ow]);
    if (out.size === 0) return { dev: out };
    const p = planOf(g, attrs, 'float32');
    if (p.K === 0) {
      fillZero(s, k.fill, out);
      return { dev: out };
    }
    const x = asDtype(s, x0, 'float32', k.casts[0]!);
    const w = asDtype(s, w0, 'float32', k.casts[1]!);
    const wb = bf16Copy(s, k.toBf16, w.arr);
    const xb = cudnn || p.direct ? bf16Copy(s, k.toBf16, x.arr) : null;
    const byCudnn = cudnn && viaCudnn(s, k, (y) => convolveWithCudnn(s, cudnn, 'forward', g, attrs, 'bfloat16', { x: xb!.ptr, w: wb.ptr, y: y.ptr }), out);
    if (!byCudnn) {
      const col = p.direct ? null : s.temp('float32', [p.chunk * p.rows * p.P]);
      const colb = p.direct ? null : bf16Temp(s, p.chunk * p.rows * p.P);
      for (let b0 = 0; b0 < g.n; b0 += p.chunk) {
        const nb = Math.min(p.chunk, g.n - b0);
        const colPtr = bf16Columns(s, k, p, x.arr, xb, col, colb, b0, nb);
        gemmBf16(s, { m: g.og, n: p.P, k: p.K, a: wb.ptr, b: colPtr, c: at(out.ptr, b0 * g.cout * p.P, F32_BYTES) },
          { count: nb, a: 0, b: p.rows * p.P, c: g.cout * p.P }, { count: p.groups, a: g.og * p.K, b: p.K * p.P, c: g.og * p.P });
      }
      col?.release();
      colb?.release();
    }
    wb.release();
    xb?.release();
    releaseTemps(x, w);
    return { dev: out };
  };
}

/** Inputs (gy, w, xLike): dX = col2im(Wᵀ · dY) with bfloat16 W and dY. */
export function lowerConv2dInputGradBf16(lc: LowerContext, step: ProgramStep, compiled: Compiled): Runner {
  const k = kernels(lc, compiled);
  const attrs = step.attrs as Conv2dAttrs;
  const col2im = col2imKernel(lc.mb, 'float32');
  const cudnn = cudnnChoiceOf(lc);
  return (s, st) => {
    const xShape = s.shape(st.inputs[2]!);
    const gy0 = s.dev(st.inputs[0]!);
    const w0 = s.dev(st.inputs[1]!);
    const g = convGeometry('conv2dInputGrad', xShape, w0.shape, attrs);
    checkGradShape('conv2dInputGrad', g, gy0.shape);
    const out = s.alloc('float32', xShape);
    if (out.size === 0) return { dev: out };
    const p = planOf(g, attrs, 'float32');
    if (g.og === 0) {
      fillZero(s, k.fill, out);
      return { dev: out };
    }
    const gy = asDtype(s, gy0, 'float32', k.casts[0]!);
    const w = asDtype(s, w0, 'float32', k.casts[1]!);
    const gyb = bf16Copy(s, k.toBf16, gy.arr);
    const wb = bf16Copy(s, k.toBf16, w.arr);
    const byCudnn = cudnn
      && viaCudnn(s, k, (dx) => convolveWithCudnn(s, cudnn, 'backwardData', g, attrs, 'bfloat16', { x: dx.ptr, w: wb.ptr, y: gyb.ptr }), out);
    if (!byCudnn) {
      const col = p.direct ? null : s.temp('float32', [p.chunk * p.rows * p.P]);
      const image = g.cin * g.h * g.w;
      for (let b0 = 0; b0 < g.n; b0 += p.chunk) {
        const nb = Math.min(p.chunk, g.n - b0);
        const colPtr = col ? col.ptr : at(out.ptr, b0 * image, F32_BYTES);
        gemmBf16(s, { m: p.K, n: p.P, k: g.og, transA: true, a: wb.ptr, b: at(gyb.ptr, b0 * g.cout * p.P, BF16_BYTES), c: colPtr },
          { count: nb, a: 0, b: g.cout * p.P, c: p.rows * p.P }, { count: p.groups, a: g.og * p.K, b: g.og * p.P, c: p.K * p.P });
        if (col) {
          const total = nb * image;
          s.launch(col2im, s.ctx.gridFor(total), 256, [ptr(at(out.ptr, b0 * image, F32_BYTES)), ptr(col), i64(total), ...geometryArgs(g)]);
        }
      }
      col?.release();
    }
    gyb.release();
    wb.release();
    releaseTemps(gy, w);
    return { dev: out };
  };
}

/** Inputs (x, gy, wLike): dW = sum over images of dY · colᵀ, with bfloat16 dY and columns, per-image partials summed in float32. */
export function lowerConv2dFilterGradBf16(lc: LowerContext, step: ProgramStep, compiled: Compiled): Runner {
  const k = kernels(lc, compiled);
  const attrs = step.attrs as Conv2dAttrs;
  const sumImages = sumImagesKernel(lc.mb, 'float32');
  const cudnn = cudnnChoiceOf(lc);
  return (s, st) => {
    const wShape = s.shape(st.inputs[2]!);
    const x0 = s.dev(st.inputs[0]!);
    const gy0 = s.dev(st.inputs[1]!);
    const g = convGeometry('conv2dFilterGrad', x0.shape, wShape, attrs);
    checkGradShape('conv2dFilterGrad', g, gy0.shape);
    const out = s.alloc('float32', wShape);
    if (out.size === 0) return { dev: out };
    if (g.n === 0) {
      fillZero(s, k.fill, out);
      return { dev: out };
    }
    const p = planOf(g, attrs, 'float32');
    const x = asDtype(s, x0, 'float32', k.casts[0]!);
    const gy = asDtype(s, gy0, 'float32', k.casts[1]!);
    const gyb = bf16Copy(s, k.toBf16, gy.arr);
    const xb = cudnn || p.direct ? bf16Copy(s, k.toBf16, x.arr) : null;
    const byCudnn = cudnn
      && viaCudnn(s, k, (dw) => convolveWithCudnn(s, cudnn, 'backwardFilter', g, attrs, 'bfloat16', { x: xb!.ptr, w: dw.ptr, y: gyb.ptr }), out);
    if (!byCudnn) {
      const col = p.direct ? null : s.temp('float32', [p.chunk * p.rows * p.P]);
      const colb = p.direct ? null : bf16Temp(s, p.chunk * p.rows * p.P);
      const groups: Level = { count: p.groups, a: g.og * p.P, b: p.K * p.P, c: g.og * p.K };
      const len = g.cout * p.K;
      const partial = s.temp('float32', [p.chunk * len]);
      for (let b0 = 0; b0 < g.n; b0 += p.chunk) {
        const nb = Math.min(p.chunk, g.n - b0);
        const colPtr = bf16Columns(s, k, p, x.arr, xb, col, colb, b0, nb);
        gemmBf16(s, { m: g.og, n: p.K, k: p.P, transB: true, a: at(gyb.ptr, b0 * g.cout * p.P, BF16_BYTES), b: colPtr, c: partial.ptr },
          groups, { count: nb, a: g.cout * p.P, b: p.rows * p.P, c: len });
        s.launch(sumImages, s.ctx.gridFor(len), 256, [ptr(out), ptr(partial), i64(nb), i64(len), i32(b0 === 0 ? 0 : 1)]);
      }
      partial.release();
      col?.release();
      colb?.release();
    }
    gyb.release();
    xb?.release();
    releaseTemps(x, gy);
    return { dev: out };
  };
}

/** The lowering of a conv step: the bfloat16 one for a float32 step marked precision 'bf16', else conv.ts's. */
function dispatch(unfolds: boolean, bf16: (lc: LowerContext, step: ProgramStep, k: Compiled) => Runner, other: Lowering): Lowering {
  return (lc, step) => {
    const k = (step.attrs as Conv2dAttrs).precision === 'bf16' ? compile(lc, step, unfolds) : null;
    return k && k.dt === 'float32' ? bf16(lc, step, k) : other(lc, step);
  };
}

/** conv2d, conv2dInputGrad and conv2dFilterGrad as the lowering table takes them. */
export const lowerConv2dStep = dispatch(true, lowerConv2dBf16, lowerConv2d);
export const lowerConv2dInputGradStep = dispatch(false, lowerConv2dInputGradBf16, lowerConv2dInputGrad);
export const lowerConv2dFilterGradStep = dispatch(true, lowerConv2dFilterGradBf16, lowerConv2dFilterGrad);
