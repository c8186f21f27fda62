// Matrix products as cuBLASLt problems: which row-major GEMMs cuBLASLt takes here, their column-major
// description (layouts, transposes, compute type, pointer alignments), the plan made once per problem
// (descriptors and the heuristic's algorithm under a workspace limit) and the call. The row-major mapping
// is cuBLAS's (rowMajorToColumnMajor: operands swapped, C^T = op(B)^T op(A)^T), so both libraries see the
// same column-major product. The CudaContext keeps the plans (BlasLibraries) and destroys them with it.
// Only the matmul itself needs a GPU: descriptors and heuristics are host calls.
import {
  CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_OP_N, CUDA_R_16BF, CUDA_R_32F, rowMajorToColumnMajor, type RowMajorGemmSpec,
} from './ffi/cublas.js';
import {
  CUBLASLT_EPILOGUE, CUBLASLT_MATMUL_DESC, CUBLASLT_MATMUL_PREF, CUBLASLT_MATRIX_LAYOUT, type CublasLt,
} from './ffi/cublaslt.js';
import type { CublasLtHandle, CublasLtMatmulDesc, CublasLtMatrixLayout, CUstream, DevicePtr } from './ffi/types.js';

/** One column-major matrix as a cuBLASLt layout describes it. */
export interface LtMatrix {
  /** cudaDataType_t: CUDA_R_32F or CUDA_R_16BF. */
  readonly type: number;
  readonly rows: number;
  readonly cols: number;
  /** Elements between consecutive columns. */
  readonly ld: number;
  /** Elements between consecutive matrices of a batch (0 without one). */
  readonly stride: number;
}

/** One product as cuBLASLt sees it: D = alpha op(A) op(B) + beta C, D in place of C, op(A) m x k, op(B) k x n, C m x n. */
export interface LtProblem {
  readonly computeType: number;
  /** cudaDataType_t of alpha and beta (CUDA_R_32F for every compute type used here). */
  readonly scaleType: number;
  /** CUBLAS_OP_N or CUBLAS_OP_T of A and of B. */
  readonly transa: number;
  readonly transb: number;
  readonly a: LtMatrix;
  readonly b: LtMatrix;
  readonly c: LtMatrix;
  /** Matrices in the batch (1: none). */
  readonly batch: number;
  /** The alignment in bytes (a power of two, at most 256) that A's, B's and C's pointers and batch offsets share. */
  readonly alignA: number;
  readonly alignB: number;
  readonly alignC: number;
  /** cublasLtEpilogue_t (CUBLASLT_EPILOGUE.DEFAULT: none). */
  readonly epilogue: number;
}

/** What changes between calls of one planned problem. */
export interface LtOperands {
  readonly a: DevicePtr;
  readonly b: DevicePtr;
  readonly c: DevicePtr;
  readonly alpha: number;
  readonly beta: number;
}

/** What cuBLASLt needs to run one problem, made once and kept. */
export interface LtPlan {
  readonly key: string;
  readonly problem: LtProblem;
  readonly desc: CublasLtMatmulDesc;
  readonly layouts: { readonly a: CublasLtMatrixLayout; readonly b: CublasLtMatrixLayout; readonly c: CublasLtMatrixLayout };
  /** The heuristic's 64-byte cublasLtMatmulAlgo_t. */
  readonly algo: Buffer;
  /** The workspace the algorithm needs (at most the limit the plan was made under). */
  readonly workspaceBytes: number;
}

/** The largest alignment cuBLASLt's heuristic asks about (its default minimum). */
const MAX_ALIGNMENT = 256;

const bytesOf = (type: number): number => (type === CUDA_R_16BF ? 2 : 4);

/** The alignment in bytes (power of two, at most 256) of a pointer and of every batch offset from it. */
export function alignmentOf(ptr: DevicePtr, strideBytes: number): number {
  const v = ptr | BigInt(strideBytes);
  if (v === 0n) return MAX_ALIGNMENT;
  const low = Number(v & -v);
  return Math.min(low, MAX_ALIGNMENT);
}

/**
 * The cuBLASLt problem and operands of a row-major GEMM, or null where cuBLAS keeps it: float64 (cuBLAS's
 * DGEMM), an empty product (the lowerings fill or skip those), and batches with a broadcast operand
 * (batch stride 0, which cuBLAS's strided-batched GEMMs take and cuBLASLt's documentation does not promise).
 */
export function ltProblem(spec: RowMajorGemmSpec): { problem: LtProblem; operands: LtOperands } | null {
  if (spec.dtype === 'float64') return null;
  if (spec.m === 0 || spec.n === 0 || spec.k === 0) return null;
  const batch = spec.batch?.batchCount ?? 1;
  if (batch < 1 || (batch > 1 && (Number(spec.batch!.strideA) === 0 || Number(spec.batch!.strideB) === 0))) return null;
  const g = rowMajorToColumnMajor(spec);
  const inType = spec.dtype === 'bfloat16' ? CUDA_R_16BF : CUDA_R_32F;
  const outType = spec.dtype === 'bfloat16' && spec.outDtype === 'bfloat16' ? CUDA_R_16BF : CUDA_R_32F;
  // The operands were swapped (cuBLAS's A is the row-major B), and so are their batch strides.
  const [strideA, strideB, strideC] = batch > 1 ? [Number(spec.batch!.strideB), Number(spec.batch!.strideA), Number(spec.batch!.strideC)] : [0, 0, 0];
  const n = g.transa === CUBLAS_OP_N;
  const a: LtMatrix = { type: inType, rows: n ? g.m : g.k, cols: n ? g.k : g.m, ld: g.lda, stride: strideA };
  const bn = g.transb === CUBLAS_OP_N;
  const b: LtMatrix = { type: inType, rows: bn ? g.k : g.n, cols: bn ? g.n : g.k, ld: g.ldb, stride: strideB };
  const c: LtMatrix = { type: outType, rows: g.m, cols: g.n, ld: g.ldc, stride: strideC };
  const problem: LtProblem = {
    computeType: spec.dtype === 'float32' && spec.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
    scaleType: CUDA_R_32F,
    transa: g.transa,
    transb: g.transb,
    a, b, c, batch,
    alignA: alignmentOf(g.a, strideA * bytesOf(inType)),
    alignB: alignmentOf(g.b, strideB * bytesOf(inType)),
    alignC: alignmentOf(g.c, strideC * bytesOf(outType)),
    epilogue: CUBLASLT_EPILOGUE.DEFAULT,
  };
  return { problem, operands: { a: g.a, b: g.b, c: g.c, alpha: g.alpha, beta: g.beta } };
}

/** The cache key of a problem under a workspace limit (everything the plan's descriptors and algorithm depend on). */
export function ltPlanKey(p: LtProblem, workspaceLimit: number): string {
  const m = (x: LtMatrix) => `${x.type}:${x.rows}x${x.cols}/${x.ld}/${x.stride}`;
  return [p.computeType, p.scaleType, p.transa, p.transb, m(p.a), m(p.b), m(p.c), p.batch, p.alignA, p.alignB, p.alignC, p.epilogue,
    workspaceLimit].join(',');
}

function safely(f: () => void): void {
  try { f(); } catch { /* cleanup after an error: the first error is the one reported */ }
}

function layoutOf(lib: CublasLt, x: LtMatrix, batch: number): CublasLtMatrixLayout {
  const layout = lib.layout(x.type, x.rows, x.cols, x.ld);
  if (batch > 1) {
    try {
      lib.setLayout(layout, CUBLASLT_MATRIX_LAYOUT.BATCH_COUNT, Int32Array.of(batch));
      lib.setLayout(layout, CUBLASLT_MATRIX_LAYOUT.STRIDED_BATCH_OFFSET, BigInt64Array.of(BigInt(x.stride)));
    } catch (e) {
      safely(() => lib.destroyLayout(layout));
      throw e;
    }
  }
  return layout;
}

/** Destroys a plan's descriptors (those present: a partly made set is freed too). */
export function destroyLtDescriptors(lib: CublasLt, d: { desc?: CublasLtMatmulDesc; layouts?: Partial<LtPlan['layouts']> }): void {
  if (d.desc) lib.destroyMatmulDesc(d.desc);
  for (const l of [d.layouts?.a, d.layouts?.b, d.layouts?.c]) if (l) lib.destroyLayout(l);
}

/**
 * Makes the plan of a problem: the matmul descriptor (compute type, transposes, epilogue), the three layouts
 * (C's serves D), and the heuristic's best algorithm within `workspaceLimit` bytes for the problem's pointer
 * alignments. Returns null, with nothing left allocated, when cuBLASLt has no algorithm for it (cuBLAS runs it then).
 */
export function planLtMatmul(lib: CublasLt, handle: CublasLtHandle, p: LtProblem, workspaceLimit: number): LtPlan | null {
  const made: { desc?: CublasLtMatmulDesc; layouts: { a?: CublasLtMatrixLayout; b?: CublasLtMatrixLayout; c?: CublasLtMatrixLayout } } = { layouts: {} };
  const pref = lib.preference();
  try {
    const desc = made.desc = lib.matmulDesc(p.computeType, p.scaleType);
    lib.setMatmulDesc(desc, CUBLASLT_MATMUL_DESC.TRANSA, Int32Array.of(p.transa));
    lib.setMatmulDesc(desc, CUBLASLT_MATMUL_DESC.TRANSB, Int32Array.of(p.transb));
    if (p.epilogue !== CUBLASLT_EPILOGUE.DEFAULT) lib.setMatmulDesc(desc, CUBLASLT_MATMUL_DESC.EPILOGUE, Uint32Array.of(p.epilogue));
    const layouts = { a: made.layouts.a = layoutOf(lib, p.a, p.batch), b: made.layouts.b = layoutOf(lib, p.b, p.batch),
      c: made.layouts.c = layoutOf(lib, p.c, p.batch) };
    lib.setPreference(pref, CUBLASLT_MATMUL_PREF.MAX_WORKSPACE_BYTES, BigUint64Array.of(BigInt(workspaceLimit)));
    lib.setPreference(pref, CUBLASLT_MATMUL_PREF.MIN_ALIGNMENT_A_BYTES, Uint32Array.of(p.alignA));
    lib.setPreference(pref, CUBLASLT_MATMUL_PREF.MIN_ALIGNMENT_B_BYTES, Uint32Array.of(p.alignB));
    lib.setPreference(pref, CUBLASLT_MATMUL_PREF.MIN_ALIGNMENT_C_BYTES, Uint32Array.of(p.alignC));
    lib.setPreference(pref, CUBLASLT_MATMUL_PREF.MIN_ALIGNMENT_D_BYTES, Uint32Array.of(p.alignC));
    const best = lib.heuristic(handle, desc, layouts, pref, 1).find((h) => h.state === 0 && h.workspaceBytes <= workspaceLimit);
    if (!best) {
      destroyLtDescriptors(lib, made);
      return null;
    }
    return { key: ltPlanKey(p, workspaceLimit), problem: p, desc, layouts, algo: best.algo, workspaceBytes: best.workspaceBytes };
  } catch (e) {
    safely(() => destroyLtDescriptors(lib, made));
    throw e;
  } finally {
    safely(() => lib.destroyPreference(pref));
  }
}

/** The device memory an Lt matmul may use: the context's cuBLAS workspace (0 bytes: none). */
export interface LtWorkspace {
  readonly ptr: DevicePtr;
  readonly bytes: number;
}

/** Enqueues a planned matmul on `stream`. */
export function runLtMatmul(lib: CublasLt, handle: CublasLtHandle, plan: LtPlan, o: LtOperands, workspace: LtWorkspace, stream: CUstream | null): void {
  const p = plan.problem;
  lib.matmul(handle, {
    desc: plan.desc, a: o.a, aLayout: plan.layouts.a, b: o.b, bLayout: plan.layouts.b, c: o.c, cLayout: plan.layouts.c,
    alpha: Float32Array.of(o.alpha), beta: Float32Array.of(o.beta), algo: plan.algo, workspace: workspace.ptr, workspaceBytes: workspace.bytes, stream,
  }, `m=${p.c.rows} n=${p.c.cols} k=${p.transa === CUBLAS_OP_N ? p.a.cols : p.a.rows} batch=${p.batch} op=${p.transa}${p.transb}`);
}
