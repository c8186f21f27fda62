// conv2d and its two gradients on bfloat16 operands with float32 sums: the steps the 'bf16' precision
// policy marked (float32 only); the lowering table's conv entries are the ones at the end of this file,
// which send every other step to conv.ts.
// - cuDNN (device made with cudnn: true, and cuDNN takes the problem): operands the storage plan holds in
//   bfloat16 (activations and their gradients) are read as they are, others (filters, the input images)
//   are rounded into bfloat16 copies; cuDNN convolves bfloat16 tensors with float accumulation and writes
//   bfloat16 (the legacy API's bfloat16 configuration has one type for x, w and y): straight into the
//   output when the plan holds it in bfloat16, else widened into float32 (the filter gradient), as under
//   torch.autocast.
// - otherwise im2col + the bfloat16 tensor-core GEMM (cublasGemmEx, CUDA_R_16BF operands, CUBLAS_COMPUTE_32F,
//   a float32 result): operands are taken in float32 (widened when held in bfloat16), images unfolded in
//   float32 as in conv.ts and each chunk's column buffer then rounded to bfloat16; the filters and the
//   output gradient are rounded once per step. The float32 result is converted to the planned storage by
//   the executable.
import { convGeometry, type Conv2dAttrs, type ConvGeometry } from '../../../ops/conv.js';
import type { ProgramStep } from '../../../compile/program.js';
import { gemm } from './gemm.js';
import { col2imKernel, sumImagesKernel } from '../codegen/conv.js';
import { fromBf16Kernel, toBf16Kernel } from '../codegen/misc.js';
import type { CudaArray } from '../cuda-array.js';
import { convolveWithCudnn, cudnnChoiceOf, type CudnnChoice, type ConvPointers } from './conv-cudnn.js';
import { cudnnUnsupported } from '../cudnn-conv.js';
import type { CudnnConvDirection } from '../ffi/cudnn.js';
import type { Storage } from '../storage.js';
import { sizeOf } from '../../../tensor/ndarray.js';
import {
  asDtype, checkGradShape, compile, fillZero, geometryArgs, im2col, lowerConv2d, lowerConv2dFilterGrad, lowerConv2dInputGrad, planOf, releaseTemps,
  type Compiled, type GemmBase, type Level, type Plan,
} from './conv.js';
import { BF16_BYTES, bf16Copy, bf16Temp, roundIntoBf16, widenBf16 } from './bf16.js';
import { i32, i64, ptr, type LowerContext, type Lowering, type Runner, type RunState, type Value } from './types.js';

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

/** Operand `slot` in bfloat16 for cuDNN: the value itself when the storage plan holds it so, else a rounded copy. */
function bf16Operand(s: RunState, k: Bf16Kernels, slot: number, cast: string | null): { arr: CudaArray; temp: boolean } {
  const a = s.dev(slot);
  if (a.storage === 'bfloat16') return { arr: a, temp: false };
  const x = asDtype(s, a, 'float32', cast);
  const copy = bf16Copy(s, k.toBf16, x.arr);
  releaseTemps(x);
  return { arr: copy, temp: true };
}

/** Operand `slot` in float32 for the im2col path: widened when held in bfloat16, cast from another dtype. */
function f32Operand(s: RunState, slot: number, cast: string | null): { arr: CudaArray; temp: boolean } {
  const a = s.dev(slot);
  return a.storage === 'bfloat16' ? s.float32(slot) : asDtype(s, a, 'float32', cast);
}

/** A convolution's zero result (no products to sum), in float32 (the executable converts it to the planned storage). */
function zeros(s: RunState, k: Bf16Kernels, shape: readonly number[]): Value {
  const out = s.alloc('float32', shape);
  if (out.size > 0) fillZero(s, k.fill, out);
  return { dev: out };
}

interface CudnnCall {
  readonly choice: CudnnChoice;
  readonly direction: CudnnConvDirection;
  readonly g: ConvGeometry;
  readonly attrs: Conv2dAttrs;
  /** The two operand slots (each read in bfloat16) and their dtype casts. */
  readonly operands: readonly [number, number];
  /** How the result is held: written by cuDNN straight into a bfloat16 array, or widened into float32. */
  readonly held: Storage;
  readonly shape: readonly number[];
  /** cuDNN's (x, w, y) pointers from the operands' and the result's. */
  readonly pointers: (a: bigint, b: bigint, result: bigint) => ConvPointers;
}

/** The convolution through cuDNN on bfloat16 tensors with float accumulation, or null (nothing left behind) when cuDNN declines. */
function viaCudnn(s: RunState, k: Bf16Kernels, st: ProgramStep, c: CudnnCall): CudaArray | null {
  if (cudnnUnsupported(c.g, c.attrs, 'bfloat16') !== null) return null;
  const a = bf16Operand(s, k, st.inputs[c.operands[0]]!, k.casts[c.operands[0]] ?? null);
  const b = bf16Operand(s, k, st.inputs[c.operands[1]]!, k.casts[c.operands[1]] ?? null);
  const direct = c.held === 'bfloat16';
  const out = s.alloc('float32', c.shape, direct ? 'bfloat16' : 'float32');
  const result = direct ? out : bf16Temp(s, out.size);
  const done = convolveWithCudnn(s, c.choice, c.direction, c.g, c.attrs, 'bfloat16', c.pointers(a.arr.ptr, b.arr.ptr, result.ptr));
  if (done && !direct) widenBf16(s, k.fromBf16, out, result);
  if (!direct) result.release();
  releaseTemps(a, b);
  if (done) return out;
  out.release();
  return null;
}

export function lowerConv2dBf16(lc: LowerContext, step: ProgramStep, compiled: Compiled): Runner {
  const k = kernels(lc, compiled);
  const attrs = step.attrs as Conv2dAttrs;
  const cudnn = cudnnChoiceOf(lc);
  const held = lc.slotStorage(step.output);
  return (s, st) => {
    const g = convGeometry('conv2d', s.shape(st.inputs[0]!), s.shape(st.inputs[1]!), attrs);
    const shape = [g.n, g.cout, g.oh, g.ow];
    const p = planOf(g, attrs, 'float32');
    if (sizeOf(shape) === 0 || p.K === 0) return zeros(s, k, shape);
    const byCudnn = cudnn && viaCudnn(s, k, st, {
      choice: cudnn, direction: 'forward', g, attrs, operands: [0, 1], held, shape, pointers: (x, w, y) => ({ x, w, y }),
    });
    if (byCudnn) return { dev: byCudnn };
    const x = f32Operand(s, st.inputs[0]!, k.casts[0]!);
    const w = f32Operand(s, st.inputs[1]!, k.casts[1]!);
    const out = s.alloc('float32', shape);
    const wb = bf16Copy(s, k.toBf16, w.arr);
    const xb = p.direct ? bf16Copy(s, k.toBf16, x.arr) : null;
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
  const held = lc.slotStorage(step.output);
  return (s, st) => {
    const xShape = s.shape(st.inputs[2]!);
    const g = convGeometry('conv2dInputGrad', xShape, s.shape(st.inputs[1]!), attrs);
    checkGradShape('conv2dInputGrad', g, s.shape(st.inputs[0]!));
    if (sizeOf(xShape) === 0 || g.og === 0) return zeros(s, k, xShape);
    const p = planOf(g, attrs, 'float32');
    const byCudnn = cudnn && viaCudnn(s, k, st, {
      choice: cudnn, direction: 'backwardData', g, attrs, operands: [0, 1], held, shape: xShape, pointers: (y, w, x) => ({ x, w, y }),
    });
    if (byCudnn) return { dev: byCudnn };
    const gy = f32Operand(s, st.inputs[0]!, k.casts[0]!);
    const w = f32Operand(s, st.inputs[1]!, k.casts[1]!);
    const out = s.alloc('float32', xShape);
    const gyb = bf16Copy(s, k.toBf16, gy.arr);
    const wb = bf16Copy(s, k.toBf16, w.arr);
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
  const held = lc.slotStorage(step.output);
  return (s, st) => {
    const wShape = s.shape(st.inputs[2]!);
    const g = convGeometry('conv2dFilterGrad', s.shape(st.inputs[0]!), wShape, attrs);
    checkGradShape('conv2dFilterGrad', g, s.shape(st.inputs[1]!));
    if (sizeOf(wShape) === 0 || g.n === 0) return zeros(s, k, wShape);
    const p = planOf(g, attrs, 'float32');
    const byCudnn = cudnn && viaCudnn(s, k, st, {
      choice: cudnn, direction: 'backwardFilter', g, attrs, operands: [0, 1], held, shape: wShape, pointers: (x, y, w) => ({ x, w, y }),
    });
    if (byCudnn) return { dev: byCudnn };
    const x = f32Operand(s, st.inputs[0]!, k.casts[0]!);
    const gy = f32Operand(s, st.inputs[1]!, k.casts[1]!);
    const out = s.alloc('float32', wShape);
    const gyb = bf16Copy(s, k.toBf16, gy.arr);
    const xb = p.direct ? bf16Copy(s, k.toBf16, x.arr) : null;
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
