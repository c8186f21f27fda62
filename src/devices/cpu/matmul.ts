// matmul through the GEMM engine (native BLAS or the WebAssembly fallback): one GEMM per matrix
// of the batch, reading the operands in place (offsets and leading dimensions, transposes by
// flag, no copies). When the second operand has no batch and the first is not transposed, the
// whole batch is one GEMM with m·batch rows. Integer products use the reference perform.
import { NDArray, sizeOf, stridesOf } from '../../tensor/ndarray.js';
import type { DType } from '../../tensor/dtype.js';
import { broadcastShapes } from '../../ops/broadcast.js';
import type { MatmulAttrs } from '../../ops/linalg.js';
import type { Blas, GemmArray, GemmDType } from './blas-types.js';
import { reference, type Kernel, type RunContext } from './kernel-types.js';

/** `a` with float dtype `dtype`: itself, or a converted copy in a scratch buffer. */
export function asFloat(a: NDArray, dtype: 'float32' | 'float64', rt: RunContext): GemmArray {
  if (a.dtype === dtype) return a.data as GemmArray;
  const buf = rt.scratch(dtype, a.size) as GemmArray;
  buf.set(a.data);
  return buf;
}

export function isGemmDtype(d: DType): d is 'float32' | 'float64' {
  return d === 'float32' || d === 'float64';
}

/**
 * Bytes of operands one call of the WebAssembly GEMM may copy into its memory. That engine copies
 * A, B and C in and replaces its memory after calls above 256 MiB (wasm memory never shrinks), so
 * larger products are split into blocks of rows: the memory is then allocated once and reused,
 * instead of being faulted in again on every call (which also serialises workers on page faults).
 */
const WASM_BLOCK_BYTES = 96 << 20;

/** blas.gemm, in blocks of rows of op(A) and C when the engine is the WebAssembly fallback. */
export function gemmRows(blas: Blas, dtype: GemmDType, transA: boolean, transB: boolean, m: number, n: number, k: number,
  A: GemmArray, aOff: number, lda: number, B: GemmArray, bOff: number, ldb: number, beta: number, C: GemmArray, cOff: number, ldc: number): void {
  const es = dtype === 'float32' ? 4 : 8;
  const perRow = (k + n) * es;
  const rows = blas.name === 'wasm-simd' ? Math.max(64, Math.floor((WASM_BLOCK_BYTES - k * n * es) / perRow)) : m;
  for (let i0 = 0; i0 < m; i0 += rows) {
    const mi = Math.min(rows, m - i0);
    blas.gemm(dtype, transA, transB, mi, n, k, 1, A, aOff + (transA ? i0 : i0 * lda), lda, B, bOff, ldb, beta, C, cOff + i0 * ldc, ldc);
  }
}

export const matmulKernel: Kernel<MatmulAttrs> = (step, cx) => {
  const dtype = step.outType.dtype;
  const ref = reference(step);
  if (!isGemmDtype(dtype)) return ref;
  const { transA, transB } = step.attrs;
  const blas = cx.blas;
  return (inputs, rt) => {
    const [a, b] = inputs as [NDArray, NDArray];
    if (a.ndim < 2 || b.ndim < 2) return ref(inputs);
    const ra = a.shape[a.ndim - 2]!, ca = a.shape[a.ndim - 1]!;
    const rb = b.shape[b.ndim - 2]!, cb = b.shape[b.ndim - 1]!;
    const [m, k] = transA ? [ca, ra] : [ra, ca];
    const [k2, n] = transB ? [cb, rb] : [rb, cb];
    if (k !== k2) return ref(inputs);
    const aBatch = a.shape.slice(0, -2);
    const bBatch = b.shape.slice(0, -2);
    let batch: number[];
    try {
      batch = broadcastShapes('matmul', [aBatch, bBatch]);
    } catch {
      return ref(inputs);
    }
    const res = rt.output(dtype, [...batch, m, n]);
    const C = res.data as GemmArray;
    if (res.size === 0) return res;
    if (k === 0) {
      C.fill(0);
      return res;
    }
    const A = asFloat(a, dtype, rt);
    const B = asFloat(b, dtype, rt);
    const lda = transA ? m : k;
    const ldb = transB ? k : n;
    const nb = sizeOf(batch);
    if (!transA && sizeOf(bBatch) === 1 && sizeOf(aBatch) === nb) {
      gemmRows(blas, dtype, false, transB, nb * m, n, k, A, 0, lda, B, 0, ldb, 0, C, 0, n);
      return res;
    }
    const aStr = stridesOf(aBatch).map((s, i) => (aBatch[i] === 1 ? 0 : s * m * k));
    const bStr = stridesOf(bBatch).map((s, i) => (bBatch[i] === 1 ? 0 : s * k * n));
    const bs = stridesOf(batch);
    const da = batch.length - aBatch.length;
    const db = batch.length - bBatch.length;
    for (let t = 0; t < nb; t++) {
      let aOff = 0;
      let bOff = 0;
      for (let ax = 0; ax < batch.length; ax++) {
        const idx = Math.floor(t / bs[ax]!) % batch[ax]!;
        if (ax >= da) aOff += idx * aStr[ax - da]!;
        if (ax >= db) bOff += idx * bStr[ax - db]!;
      }
      gemmRows(blas, dtype, transA, transB, m, n, k, A, aOff, lda, B, bOff, ldb, 0, C, t * m * n, n);
    }
    return res;
  };
};
