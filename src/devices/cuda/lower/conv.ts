// conv2d and its two gradients on the GPU as im2col + cuBLAS GEMM (no cuDNN needed).
// With K = cg·KH·KW rows of the column buffer per group and P = OH·OW output positions:
// - forward:      y[b, g]  (og x P) = W[g] (og x K) · col[b, g] (K x P)
// - filter grad:  dW[g]    (og x K) = sum over b of dY[b, g] (og x P) · col[b, g]ᵀ   (beta = 1 after the first image)
// - input grad:   col[b, g] (K x P) = W[g]ᵀ · dY[b, g], then col2im (a deterministic gather) into dX.
// Images are processed in chunks whose column buffer stays under convColumnLimit; within a chunk one
// strided-batched GEMM covers the images (W shared, stride 0) or the groups, whichever is more,
// looping over the other. A 1x1 convolution with stride 1 and no padding needs no column buffer:
// the input itself is the column matrix (and for the input gradient the GEMM writes dX directly).
// float32 (TF32 when the device was created with tf32) and float64; operands of mixed precision are cast to
// the output dtype first. Bad shapes throw the reference's OpRuntimeError (via convGeometry).
// On a device with cuDNN (the default where cuDNN 9 is found), each of the three runs
// through cuDNN instead where cuDNN takes the problem (conv-cudnn.ts), after the same checks and casts.
// A float32 step marked precision 'bf16' (the precision policy) runs on bfloat16 operands instead (conv-bf16.ts).
import { shapeToString } from '../../../tensor/ndarray.js';
import { bytesPerElement, type DType } from '../../../tensor/dtype.js';
import { OpRuntimeError } from '../../../ops/op.js';
import type { ProgramStep } from '../../../compile/program.js';
import { convGeometry, type Conv2dAttrs, type ConvGeometry } from '../../../ops/conv.js';
import type { RowMajorGemmSpec } from '../ffi/cublas.js';
import { gemm } from './gemm.js';
import { col2imKernel, im2colKernel, sumImagesKernel } from '../codegen/conv.js';
import { copyKernel, fillKernel } from '../codegen/misc.js';
import type { CudaArray } from '../cuda-array.js';
import type { KernelArg } from '../ffi/kernel-params.js';
import { stridedCopy } from './layout.js';
import { convolveWithCudnn, cudnnChoiceOf } from './conv-cudnn.js';
import { hostFallback } from './host.js';
import { f64, i32, i64, ptr, type LowerContext, type Lowering, type RunState } from './types.js';

/**
 * Upper bound on the column buffer of one chunk of images (a single image may exceed it).
 * Mutable so tests can force several chunks with small inputs.
 */
export const convColumnLimit = { bytes: 256 * 2 ** 20 };

export type FloatDType = 'float32' | 'float64';

/** An operand in the output dtype: the input itself, or a cast copy (a temporary). */
export function asDtype(s: RunState, x: CudaArray, dt: FloatDType, cast: string | null): { arr: CudaArray; temp: boolean } {
  if (x.dtype === dt) return { arr: x, temp: false };
  if (!cast) throw new Error('internal: conv operand cast was not compiled');
  const out = s.temp(dt, x.shape);
  stridedCopy(s, cast, out, x, [x.size], 0, [1], 0, [1]);
  return { arr: out, temp: true };
}

/** Releases the cast copies among a step's operands. */
export function releaseTemps(...operands: { arr: CudaArray; temp: boolean }[]): void {
  for (const o of operands) if (o.temp) o.arr.release();
}

/** One step of a batch level: the count and the element strides of A, B and C between steps. */
export interface Level { readonly count: number; readonly a: number; readonly b: number; readonly c: number }

export type GemmBase = Omit<RowMajorGemmSpec, 'dtype' | 'tf32' | 'batch'>;

/**
 * The GEMM `base` repeated over two batch levels: `outer` by a loop,
 * `inner` as one strided-batched call per step.
 */
function gemmLevels(s: RunState, dt: FloatDType, base: GemmBase, outer: Level, inner: Level): void {
  const bytes = BigInt(bytesPerElement(dt));
  // 'medium' runs convolutions in TF32: its bfloat16 operands apply to matmul only (as PyTorch's
  // matmul precision setting leaves convolutions alone).
  const tf32 = (s.tf32 || s.bf16) && dt === 'float32';
  for (let o = 0; o < outer.count; o++) {
    gemm(s, {
      ...base, dtype: dt, tf32,
      a: base.a + BigInt(o * outer.a) * bytes,
      b: base.b + BigInt(o * outer.b) * bytes,
      c: base.c + BigInt(o * outer.c) * bytes,
      ...(inner.count > 1 ? { batch: { strideA: inner.a, strideB: inner.b, strideC: inner.c, batchCount: inner.count } } : {}),
    });
  }
}

/** One strided-batched GEMM over the larger of the two levels, looped over the smaller. */
function gemmBatched(s: RunState, dt: FloatDType, base: GemmBase, images: Level, groups: Level): void {
  const [inner, outer] = images.count >= groups.count ? [images, groups] : [groups, images];
  gemmLevels(s, dt, base, outer, inner);
}

export interface Plan {
  readonly g: ConvGeometry;
  readonly groups: number;
  /** Rows of the column buffer per group, and per image (all groups). */
  readonly K: number;
  readonly rows: number;
  readonly P: number;
  /** 1x1, stride 1, no padding: the image is its own column buffer. */
  readonly direct: boolean;
  /** Images per chunk. */
  readonly chunk: number;
}

export function planOf(g: ConvGeometry, attrs: Conv2dAttrs, dt: FloatDType): Plan {
  const K = g.cg * g.kh * g.kw;
  const rows = g.cin * g.kh * g.kw;
  const P = g.oh * g.ow;
  const direct = g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0;
  const perImage = rows * P * bytesPerElement(dt);
  const chunk = direct || perImage === 0 ? Math.max(1, g.n) : Math.max(1, Math.min(g.n, Math.floor(convColumnLimit.bytes / perImage)));
  return { g, groups: attrs.groups, K, rows, P, direct, chunk };
}

/** The kernel arguments after (out, in, total) of im2col and col2im. */
export function geometryArgs(g: ConvGeometry): KernelArg[] {
  return [g.cin, g.h, g.w, g.kh, g.kw, g.oh, g.ow, g.pt, g.pl, g.sh, g.sw, g.dh, g.dw].map(i32);
}

/** The column matrix of images b0..b0+nb-1: unfolded into col, or x itself for a direct (1x1) convolution. */
function columns(s: RunState, kernel: string, col: CudaArray | null, x: CudaArray, p: Plan, b0: number, nb: number): bigint {
  if (!col) return x.ptr + BigInt(b0 * p.rows * p.P * bytesPerElement(x.dtype));
  im2col(s, kernel, col, x, p, b0, nb);
  return col.ptr;
}

/** Unfolds images b0..b0+nb-1 of x into col. */
export function im2col(s: RunState, kernel: string, col: CudaArray, x: CudaArray, p: Plan, b0: number, nb: number): void {
  const g = p.g;
  const total = nb * p.rows * p.P;
  if (total === 0) return;
  const src = x.ptr + BigInt(b0 * g.cin * g.h * g.w * bytesPerElement(x.dtype));
  s.launch(kernel, s.ctx.gridFor(total), 256, [ptr(col), ptr(src), i64(total), ...geometryArgs(g)]);
}

export function checkGradShape(op: string, g: ConvGeometry, gy: readonly number[]): void {
  const want = [g.n, g.cout, g.oh, g.ow];
  if (gy.length !== 4 || gy.some((d, i) => d !== want[i])) {
    throw new OpRuntimeError(op, `output gradient has shape ${shapeToString(gy)}, the convolution gives ${shapeToString(want)}`);
  }
}

export interface Compiled {
  readonly dt: FloatDType;
  readonly casts: readonly (string | null)[];
  readonly fill: string;
  /** Only the forward and filter-gradient steps unfold images. */
  readonly im2col: string;
}

/** The kernels a conv step needs (casts of its first two operands), or null when its dtype has no GPU path. */
export function compile(lc: LowerContext, step: ProgramStep, unfolds: boolean): Compiled | null {
  const dt = lc.slotDtype(step.output);
  if (dt !== 'float32' && dt !== 'float64') return null;
  const casts = [0, 1].map((i) => {
    const from: DType = lc.slotDtype(step.inputs[i]!);
    return from === dt ? null : copyKernel(lc.mb, from, dt, 1);
  });
  return { dt, casts, fill: fillKernel(lc.mb, dt), im2col: unfolds ? im2colKernel(lc.mb, dt, dt) : '' };
}

export function fillZero(s: RunState, fill: string, out: CudaArray): void {
  s.launch(fill, s.ctx.gridFor(out.size), 256, [ptr(out), i64(out.size), f64(0)]);
}

export const lowerConv2d: Lowering = (lc, step) => {
  const k = compile(lc, step, true);
  if (!k) return hostFallback(lc, step);
  const attrs = step.attrs as Conv2dAttrs;
  const { dt } = k;
  const cudnn = cudnnChoiceOf(lc);
  return (s, st) => {
    const x0 = s.dev(st.inputs[0]!);
    const w0 = s.dev(st.inputs[1]!);
    const g = convGeometry('conv2d', x0.shape, w0.shape, attrs);
    const out = s.alloc(dt, [g.n, g.cout, g.oh, g.ow]);
    if (out.size === 0) return { dev: out };
    const p = planOf(g, attrs, dt);
    if (p.K === 0) {
      fillZero(s, k.fill, out);
      return { dev: out };
    }
    const x = asDtype(s, x0, dt, k.casts[0]!);
    const w = asDtype(s, w0, dt, k.casts[1]!);
    if (cudnn && convolveWithCudnn(s, cudnn, 'forward', g, attrs, dt, { x: x.arr.ptr, w: w.arr.ptr, y: out.ptr })) {
      releaseTemps(x, w);
      return { dev: out };
    }
    const col = p.direct ? null : s.temp(dt, [p.chunk * p.rows * p.P]);
    const bytes = bytesPerElement(dt);
    for (let b0 = 0; b0 < g.n; b0 += p.chunk) {
      const nb = Math.min(p.chunk, g.n - b0);
      const colPtr = columns(s, k.im2col, col, x.arr, p, b0, nb);
      gemmBatched(s, dt, {
        m: g.og, n: p.P, k: p.K, a: w.arr.ptr, b: colPtr, c: out.ptr + BigInt(b0 * g.cout * p.P * bytes),
      }, { count: nb, a: 0, b: p.rows * p.P, c: g.cout * p.P }, { count: p.groups, a: g.og * p.K, b: p.K * p.P, c: g.og * p.P });
    }
    col?.release();
    if (x.temp) x.arr.release();
    if (w.temp) w.arr.release();
    return { dev: out };
  };
};

/** Inputs (gy, w, xLike): dX = col2im(Wᵀ · dY). */
export const lowerConv2dInputGrad: Lowering = (lc, step) => {
  const k = compile(lc, step, false);
  if (!k) return hostFallback(lc, step);
  const attrs = step.attrs as Conv2dAttrs;
  const { dt } = k;
  const col2im = col2imKernel(lc.mb, dt);
  const cudnn = cudnnChoiceOf(lc);
  return (s, st) => {
    const xShape = s.shape(st.inputs[2]!);
    const gy0 = s.dev(st.inputs[0]!);
    const w0 = s.dev(st.inputs[1]!);
    const g = convGeometry('conv2dInputGrad', xShape, w0.shape, attrs);
    checkGradShape('conv2dInputGrad', g, gy0.shape);
    const out = s.alloc(dt, xShape);
    if (out.size === 0) return { dev: out };
    const p = planOf(g, attrs, dt);
    if (g.og === 0) {
      fillZero(s, k.fill, out);
      return { dev: out };
    }
    const gy = asDtype(s, gy0, dt, k.casts[0]!);
    const w = asDtype(s, w0, dt, k.casts[1]!);
    if (cudnn && convolveWithCudnn(s, cudnn, 'backwardData', g, attrs, dt, { x: out.ptr, w: w.arr.ptr, y: gy.arr.ptr })) {
      releaseTemps(gy, w);
      return { dev: out };
    }
    const col = p.direct ? null : s.temp(dt, [p.chunk * p.rows * p.P]);
    const bytes = bytesPerElement(dt);
    const image = g.cin * g.h * g.w;
    for (let b0 = 0; b0 < g.n; b0 += p.chunk) {
      const nb = Math.min(p.chunk, g.n - b0);
      const colPtr = col ? col.ptr : out.ptr + BigInt(b0 * image * bytes);
      gemmBatched(s, dt, {
        m: p.K, n: p.P, k: g.og, transA: true, a: w.arr.ptr, b: gy.arr.ptr + BigInt(b0 * g.cout * p.P * bytes), c: colPtr,
      }, { count: nb, a: 0, b: g.cout * p.P, c: p.rows * p.P }, { count: p.groups, a: g.og * p.K, b: g.og * p.P, c: p.K * p.P });
      if (col) {
        const total = nb * image;
        const dst = out.ptr + BigInt(b0 * image * bytes);
        s.launch(col2im, s.ctx.gridFor(total), 256, [ptr(dst), ptr(col), i64(total), ...geometryArgs(g)]);
      }
    }
    col?.release();
    if (gy.temp) gy.arr.release();
    if (w.temp) w.arr.release();
    return { dev: out };
  };
};

/**
 * Inputs (x, gy, wLike): dW = sum over images of dY · colᵀ. Per chunk, one strided-batched GEMM
 * writes every image's product into a partial buffer [nb, cout, K] (a loop of one GEMM per image
 * with beta = 1 measured 64 small GEMMs in a row), then one kernel sums the images in order.
 */
export const lowerConv2dFilterGrad: Lowering = (lc, step) => {
  const k = compile(lc, step, true);
  if (!k) return hostFallback(lc, step);
  const attrs = step.attrs as Conv2dAttrs;
  const { dt } = k;
  const sumImages = sumImagesKernel(lc.mb, dt);
  const cudnn = cudnnChoiceOf(lc);
  return (s, st) => {
    const wShape = s.shape(st.inputs[2]!);
    const x0 = s.dev(st.inputs[0]!);
    const gy0 = s.dev(st.inputs[1]!);
    const g = convGeometry('conv2dFilterGrad', x0.shape, wShape, attrs);
    checkGradShape('conv2dFilterGrad', g, gy0.shape);
    const out = s.alloc(dt, wShape);
    if (out.size === 0) return { dev: out };
    if (g.n === 0) {
      fillZero(s, k.fill, out);
      return { dev: out };
    }
    const p = planOf(g, attrs, dt);
    const x = asDtype(s, x0, dt, k.casts[0]!);
    const gy = asDtype(s, gy0, dt, k.casts[1]!);
    if (cudnn && convolveWithCudnn(s, cudnn, 'backwardFilter', g, attrs, dt, { x: x.arr.ptr, w: out.ptr, y: gy.arr.ptr })) {
      releaseTemps(x, gy);
      return { dev: out };
    }
    const col = p.direct ? null : s.temp(dt, [p.chunk * p.rows * p.P]);
    const bytes = bytesPerElement(dt);
    const groups: Level = { count: p.groups, a: g.og * p.P, b: p.K * p.P, c: g.og * p.K };
    const len = g.cout * p.K; // one image's share of dW
    const partial = s.temp(dt, [p.chunk * len]);
    for (let b0 = 0; b0 < g.n; b0 += p.chunk) {
      const nb = Math.min(p.chunk, g.n - b0);
      const colPtr = columns(s, k.im2col, col, x.arr, p, b0, nb);
      gemmLevels(s, dt, {
        m: g.og, n: p.K, k: p.P, transB: true, a: gy.arr.ptr + BigInt(b0 * g.cout * p.P * bytes), b: colPtr, c: partial.ptr,
      }, groups, { count: nb, a: g.cout * p.P, b: p.rows * p.P, c: len });
      s.launch(sumImages, s.ctx.gridFor(len), 256, [ptr(out), ptr(partial), i64(nb), i64(len), i32(b0 === 0 ? 0 : 1)]);
    }
    partial.release();
    col?.release();
    if (x.temp) x.arr.release();
    if (gy.temp) gy.arr.release();
    return { dev: out };
  };
};
