// matmul through cuBLAS or cuBLASLt (lower/gemm.ts; float32 with optional TF32, float64; batched as one strided-batched
// GEMM, or one GEMM when a shared right operand lets the batch fold into the rows), and
// softmax / logSoftmax kernels.
import { shapeToString, sizeOf } from '../../../tensor/ndarray.js';
import type { DType } from '../../../tensor/dtype.js';
import { OpRuntimeError } from '../../../ops/op.js';
import { broadcastShapes, broadcastStrides } from '../../../ops/broadcast.js';
import type { MatmulAttrs } from '../../../ops/linalg.js';
import { gemm } from './gemm.js';
import { copyKernel, fillKernel, softmaxKernels, toBf16Kernel } from '../codegen/misc.js';
import type { CudaArray } from '../cuda-array.js';
import { gatherStrided } from './layout.js';
import { f64, i32, i64, ptr, type Lowering, type RunState } from './types.js';
import { hostFallback } from './host.js';
import { bf16Copy } from './bf16.js';

function opDims(s: readonly number[], trans: boolean): [number, number] {
  const r = s[s.length - 2]!;
  const c = s[s.length - 1]!;
  return trans ? [c, r] : [r, c];
}

/** An operand laid out as [...batch, rows, cols] (copied, and cast, when it is broadcast or of another dtype). */
function operand(s: RunState, x: CudaArray, batch: readonly number[], dtype: DType, kernel: string | null): { arr: CudaArray; stride: number; temp: boolean } {
  const own = x.shape.slice(0, -2);
  const mat = x.shape.slice(-2);
  const matSize = sizeOf(mat);
  const fullBatch = own.length === batch.length && own.every((d, i) => d === batch[i]);
  if (x.dtype === dtype && (sizeOf(own) === 1 || fullBatch)) return { arr: x, stride: sizeOf(own) === 1 ? 0 : matSize, temp: false };
  if (!kernel) throw new Error('internal: matmul operand copy was not compiled');
  const shape = [...batch, ...mat];
  const arr = gatherStrided(s, kernel, x, dtype, shape, 0, broadcastStrides(x.shape, shape));
  return { arr, stride: matSize, temp: true };
}

export const lowerMatmul: Lowering = (lc, step) => {
  const dt = lc.slotDtype(step.output);
  if (dt !== 'float32' && dt !== 'float64') return hostFallback(lc, step);
  const ndim = lc.slotNdim(step.output);
  const [aSlot, bSlot] = step.inputs as [number, number];
  const copyA = copyKernel(lc.mb, lc.slotDtype(aSlot), dt, ndim);
  const copyB = copyKernel(lc.mb, lc.slotDtype(bSlot), dt, ndim);
  const fill = fillKernel(lc.mb, dt);
  const toBf16 = dt === 'float32' ? toBf16Kernel(lc.mb) : null;
  const { transA, transB, precision } = step.attrs as MatmulAttrs;
  // bfloat16 operands: asked for by the step (the 'bf16' policy) or by the device (matmulPrecision 'medium').
  const stepBf16 = precision === 'bf16';
  return (s, st) => {
    const aShape = s.shape(st.inputs[0]!);
    const bShape = s.shape(st.inputs[1]!);
    const [m, k] = opDims(aShape, transA);
    const [k2, n] = opDims(bShape, transB);
    const shapes = `${shapeToString(aShape)}${transA ? 'ᵀ' : ''} and ${shapeToString(bShape)}${transB ? 'ᵀ' : ''}`;
    if (k !== k2) throw new OpRuntimeError('matmul', `inner dimensions differ: ${shapes} (${k} vs ${k2})`);
    let batch: number[];
    try {
      batch = broadcastShapes('matmul', [aShape.slice(0, -2), bShape.slice(0, -2)]);
    } catch {
      throw new OpRuntimeError('matmul', `batch axes of ${shapes} do not broadcast`);
    }
    const out = s.alloc(dt, [...batch, m, n]);
    if (out.size === 0) return { dev: out };
    if (k === 0) {
      s.launch(fill, s.ctx.gridFor(out.size), 256, [ptr(out), i64(out.size), f64(0)]);
      return { dev: out };
    }
    const a = operand(s, s.dev(st.inputs[0]!), batch, dt, copyA);
    const b = operand(s, s.dev(st.inputs[1]!), batch, dt, copyB);
    const nb = sizeOf(batch);
    const tf32 = s.tf32 && dt === 'float32';
    // 'medium' precision or the 'bf16' policy: the operands are rounded to bfloat16 copies and multiplied by the
    // bfloat16 tensor-core GEMM with float32 accumulation and a float32 result (cuBLAS's
    // FAST_16BF compute mode on float32 data measured no faster than TF32, and as accurate).
    const half = (s.bf16 || stepBf16) && toBf16 !== null ? [bf16Copy(s, toBf16, a.arr), bf16Copy(s, toBf16, b.arr)] as const : null;
    const pa = half ? half[0].ptr : a.arr.ptr;
    const pb = half ? half[1].ptr : b.arr.ptr;
    const types = half ? { dtype: 'bfloat16' as const, outDtype: 'float32' as const } : { dtype: dt, tf32 };
    if (nb > 1 && b.stride === 0 && !transA && a.stride !== 0) {
      gemm(s, { m: m * nb, n, k, a: pa, b: pb, c: out.ptr, transA, transB, ...types });
    } else {
      gemm(s, {
        m, n, k, a: pa, b: pb, c: out.ptr, transA, transB, ...types,
        ...(nb > 1 ? { batch: { strideA: a.stride, strideB: b.stride, strideC: m * n, batchCount: nb } } : {}),
      });
    }
    if (half) for (const h of half) h.release();
    if (a.temp) a.arr.release();
    if (b.temp) b.arr.release();
    return { dev: out };
  };
};

export const lowerSoftmax: Lowering = (lc, step) => {
  const { axis } = step.attrs as { axis: number };
  const k = softmaxKernels(lc.mb, lc.slotDtype(step.inputs[0]!), lc.slotDtype(step.output), step.op === 'logSoftmax');
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const out = s.alloc(lc.slotDtype(step.output), x.shape);
    if (out.size === 0) return { dev: out };
    const outer = sizeOf(x.shape.slice(0, axis));
    const n = x.shape[axis]!;
    const inner = sizeOf(x.shape.slice(axis + 1));
    const sms = s.ctx.multiprocessors;
    if (inner === 1) {
      const G = n <= 128 ? 32 : 256;
      const grid = Math.max(1, Math.min(Math.ceil(outer / (256 / G)), sms * 32));
      s.launch(k.rows, grid, 256, [ptr(x), ptr(out), i64(outer), i64(n), i32(G)]);
    } else {
      s.launch(k.cols, s.ctx.gridFor(outer * inner), 256, [ptr(x), ptr(out), i64(outer), i64(n), i64(inner)]);
    }
    return { dev: out };
  };
};
