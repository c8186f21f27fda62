// cuBLAS (libcublas.so.13 / .12) through koffi: handles, streams, math mode and GEMM in
// float32, float64 and bfloat16 (fp32 accumulate). cuBLAS is column-major; rowMajorGemm()
// maps this project's row-major matrices onto it (see rowMajorToColumnMajor).
//
// Matrix arguments are device pointers (bigint, declared as CUdeviceptr: ABI-identical to
// `const float *` on x86-64 and aarch64). alpha/beta are host scalars: the default
// CUBLAS_POINTER_MODE_HOST reads them from a one-element typed array during the call.
import { CUBLAS_STATUS_NAMES, check, type StatusDescription } from './errors.js';
import { CUBLAS_LIBRARY, cachedLoader, type FindLibraryOptions } from './find-library.js';
import { bindAll, bindOptional, registerCudaTypes, type CublasHandle, type CUstream, type DevicePtr, type KoffiFunction, type KoffiLib } from './types.js';

// cublas_api.h / library_types.h (checked against the CUDA 13.0 headers).
export const CUBLAS_OP_N = 0;
export const CUBLAS_OP_T = 1;
export const CUBLAS_DEFAULT_MATH = 0;
export const CUBLAS_PEDANTIC_MATH = 2;
export const CUBLAS_TF32_TENSOR_OP_MATH = 3;
export const CUDA_R_32F = 0;
export const CUDA_R_64F = 1;
export const CUDA_R_16F = 2;
export const CUDA_R_16BF = 14;
export const CUBLAS_COMPUTE_16F = 64;
export const CUBLAS_COMPUTE_32F = 68;
export const CUBLAS_COMPUTE_32F_PEDANTIC = 69;
export const CUBLAS_COMPUTE_64F = 70;
export const CUBLAS_COMPUTE_64F_PEDANTIC = 71;
export const CUBLAS_COMPUTE_32I = 72;
export const CUBLAS_COMPUTE_32I_PEDANTIC = 73;
export const CUBLAS_COMPUTE_32F_FAST_16F = 74;
export const CUBLAS_COMPUTE_32F_FAST_16BF = 75;
export const CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
export const CUBLAS_GEMM_DEFAULT = -1;

const GEMM = 'int transa, int transb, int m, int n, int k';
const STRIDED_TAIL = 'int64_t strideC, int batchCount';

/** Every cuBLAS function bound. Device matrices are CUdeviceptr; alpha/beta are host pointers. */
export const CUBLAS_SIGNATURES = {
  cublasCreate: 'int cublasCreate_v2(_Out_ cublasHandle_t *handle)',
  cublasDestroy: 'int cublasDestroy_v2(cublasHandle_t handle)',
  cublasGetVersion: 'int cublasGetVersion_v2(cublasHandle_t handle, _Out_ int *version)',
  cublasSetStream: 'int cublasSetStream_v2(cublasHandle_t handle, CUstream streamId)',
  cublasSetMathMode: 'int cublasSetMathMode(cublasHandle_t handle, int mode)',
  // cublas_api.h (cuBLAS 11.3 and later): cublas_v2.h maps cublasSetWorkspace onto this symbol.
  cublasSetWorkspace: 'int cublasSetWorkspace_v2(cublasHandle_t handle, CUdeviceptr workspace, size_t workspaceSizeInBytes)',
  cublasSgemm: `int cublasSgemm_v2(cublasHandle_t handle, ${GEMM}, const float *alpha, CUdeviceptr A, int lda, ` +
    'CUdeviceptr B, int ldb, const float *beta, CUdeviceptr C, int ldc)',
  cublasDgemm: `int cublasDgemm_v2(cublasHandle_t handle, ${GEMM}, const double *alpha, CUdeviceptr A, int lda, ` +
    'CUdeviceptr B, int ldb, const double *beta, CUdeviceptr C, int ldc)',
  cublasSgemmStridedBatched: `int cublasSgemmStridedBatched(cublasHandle_t handle, ${GEMM}, const float *alpha, ` +
    `CUdeviceptr A, int lda, int64_t strideA, CUdeviceptr B, int ldb, int64_t strideB, const float *beta, CUdeviceptr C, int ldc, ${STRIDED_TAIL})`,
  cublasDgemmStridedBatched: `int cublasDgemmStridedBatched(cublasHandle_t handle, ${GEMM}, const double *alpha, ` +
    `CUdeviceptr A, int lda, int64_t strideA, CUdeviceptr B, int ldb, int64_t strideB, const double *beta, CUdeviceptr C, int ldc, ${STRIDED_TAIL})`,
  cublasGemmEx: `int cublasGemmEx(cublasHandle_t handle, ${GEMM}, const void *alpha, CUdeviceptr A, int Atype, int lda, ` +
    'CUdeviceptr B, int Btype, int ldb, const void *beta, CUdeviceptr C, int Ctype, int ldc, int computeType, int algo)',
  cublasGemmStridedBatchedEx: `int cublasGemmStridedBatchedEx(cublasHandle_t handle, ${GEMM}, const void *alpha, ` +
    'CUdeviceptr A, int Atype, int lda, int64_t strideA, CUdeviceptr B, int Btype, int ldb, int64_t strideB, ' +
    `const void *beta, CUdeviceptr C, int Ctype, int ldc, ${STRIDED_TAIL}, int computeType, int algo)`,
} as const;

type CublasFunctions = { [K in keyof typeof CUBLAS_SIGNATURES]: KoffiFunction };

/** One column-major GEMM, exactly as cuBLAS takes it: C = alpha * op(A) * op(B) + beta * C. */
export interface GemmArgs {
  readonly transa: number;
  readonly transb: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly alpha: number;
  readonly a: DevicePtr;
  readonly lda: number;
  readonly b: DevicePtr;
  readonly ldb: number;
  readonly beta: number;
  readonly c: DevicePtr;
  readonly ldc: number;
}
/** Strides in elements between consecutive matrices of a batch. */
export interface StridedBatch {
  readonly strideA: number | bigint;
  readonly strideB: number | bigint;
  readonly strideC: number | bigint;
  readonly batchCount: number;
}
export interface GemmExTypes {
  readonly aType: number;
  readonly bType: number;
  readonly cType: number;
  readonly computeType: number;
  readonly algo?: number;
}

/** alpha/beta are read in the compute type's scalar type (cublasGemmEx documentation). */
function scalars(computeType: number, alpha: number, beta: number): [ArrayBufferView, ArrayBufferView] {
  switch (computeType) {
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
      return [Float64Array.of(alpha), Float64Array.of(beta)];
    case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC:
      return [Int32Array.of(alpha), Int32Array.of(beta)];
    case CUBLAS_COMPUTE_16F:
      throw new RangeError('CUBLAS_COMPUTE_16F takes half-precision alpha/beta; not supported by this binding');
    default:
      return [Float32Array.of(alpha), Float32Array.of(beta)];
  }
}

export class Cublas {
  private readonly fn: CublasFunctions;
  private readonly statusName: KoffiFunction | null;
  private readonly statusString: KoffiFunction | null;

  constructor(lib: KoffiLib, readonly path: string) {
    registerCudaTypes();
    this.fn = bindAll(lib, path, CUBLAS_SIGNATURES);
    // Added in cuBLAS 11.4; older libraries fall back to CUBLAS_STATUS_NAMES.
    this.statusName = bindOptional(lib, 'const char *cublasGetStatusName(int status)');
    this.statusString = bindOptional(lib, 'const char *cublasGetStatusString(int status)');
  }

  describe(code: number): StatusDescription {
    const name = (this.statusName?.(code) as string | null | undefined) ?? CUBLAS_STATUS_NAMES[code] ?? `cublasStatus_t ${code}`;
    const message = (this.statusString?.(code) as string | null | undefined) ?? name;
    return { name, message };
  }
  check(call: string, code: unknown, detail?: string): void {
    check('cublas', (c) => this.describe(c), call, code, detail);
  }

  /** Needs a current CUDA context on the calling thread. */
  create(): CublasHandle {
    const out: [CublasHandle | null] = [null];
    this.check('cublasCreate_v2', this.fn.cublasCreate(out));
    return out[0] as CublasHandle;
  }
  destroy(handle: CublasHandle): void { this.check('cublasDestroy_v2', this.fn.cublasDestroy(handle)); }
  version(handle: CublasHandle): number {
    const out: [number] = [0];
    this.check('cublasGetVersion_v2', this.fn.cublasGetVersion(handle, out));
    return out[0];
  }
  setStream(handle: CublasHandle, stream: CUstream | null): void { this.check('cublasSetStream_v2', this.fn.cublasSetStream(handle, stream)); }
  /**
   * Makes every later call of the handle (on its current stream) use `bytes` of device memory at `ptr` as its
   * workspace, instead of the pool cuBLAS allocates itself, which it cannot grow inside a CUDA graph capture.
   * cublasSetStream resets the workspace to that pool, so this is called after it. `ptr` must be 256-byte aligned.
   */
  setWorkspace(handle: CublasHandle, ptr: DevicePtr, bytes: number): void {
    this.check('cublasSetWorkspace_v2', this.fn.cublasSetWorkspace(handle, ptr, bytes), `${bytes} bytes`);
  }
  /** CUBLAS_DEFAULT_MATH (0) or CUBLAS_TF32_TENSOR_OP_MATH (3), possibly OR-ed with flags. */
  setMathMode(handle: CublasHandle, mode: number): void { this.check('cublasSetMathMode', this.fn.cublasSetMathMode(handle, mode)); }

  sgemm(handle: CublasHandle, g: GemmArgs): void {
    this.check('cublasSgemm_v2', this.fn.cublasSgemm(handle, g.transa, g.transb, g.m, g.n, g.k, Float32Array.of(g.alpha),
      g.a, g.lda, g.b, g.ldb, Float32Array.of(g.beta), g.c, g.ldc), shape(g));
  }
  dgemm(handle: CublasHandle, g: GemmArgs): void {
    this.check('cublasDgemm_v2', this.fn.cublasDgemm(handle, g.transa, g.transb, g.m, g.n, g.k, Float64Array.of(g.alpha),
      g.a, g.lda, g.b, g.ldb, Float64Array.of(g.beta), g.c, g.ldc), shape(g));
  }
  sgemmStridedBatched(handle: CublasHandle, g: GemmArgs & StridedBatch): void {
    this.check('cublasSgemmStridedBatched', this.fn.cublasSgemmStridedBatched(handle, g.transa, g.transb, g.m, g.n, g.k,
      Float32Array.of(g.alpha), g.a, g.lda, g.strideA, g.b, g.ldb, g.strideB, Float32Array.of(g.beta), g.c, g.ldc, g.strideC,
      g.batchCount), shape(g));
  }
  dgemmStridedBatched(handle: CublasHandle, g: GemmArgs & StridedBatch): void {
    this.check('cublasDgemmStridedBatched', this.fn.cublasDgemmStridedBatched(handle, g.transa, g.transb, g.m, g.n, g.k,
      Float64Array.of(g.alpha), g.a, g.lda, g.strideA, g.b, g.ldb, g.strideB, Float64Array.of(g.beta), g.c, g.ldc, g.strideC,
      g.batchCount), shape(g));
  }
  gemmEx(handle: CublasHandle, g: GemmArgs & GemmExTypes): void {
    const [alpha, beta] = scalars(g.computeType, g.alpha, g.beta);
    this.check('cublasGemmEx', this.fn.cublasGemmEx(handle, g.transa, g.transb, g.m, g.n, g.k, alpha, g.a, g.aType, g.lda,
      g.b, g.bType, g.ldb, beta, g.c, g.cType, g.ldc, g.computeType, g.algo ?? CUBLAS_GEMM_DEFAULT), shape(g));
  }
  gemmStridedBatchedEx(handle: CublasHandle, g: GemmArgs & GemmExTypes & StridedBatch): void {
    const [alpha, beta] = scalars(g.computeType, g.alpha, g.beta);
    this.check('cublasGemmStridedBatchedEx', this.fn.cublasGemmStridedBatchedEx(handle, g.transa, g.transb, g.m, g.n, g.k,
      alpha, g.a, g.aType, g.lda, g.strideA, g.b, g.bType, g.ldb, g.strideB, beta, g.c, g.cType, g.ldc, g.strideC,
      g.batchCount, g.computeType, g.algo ?? CUBLAS_GEMM_DEFAULT), shape(g));
  }
}

function shape(g: GemmArgs): string {
  return `m=${g.m} n=${g.n} k=${g.k} lda=${g.lda} ldb=${g.ldb} ldc=${g.ldc} op=${g.transa}${g.transb}`;
}

/** Loads libcublas once per distinct options. Throws CudaLibraryNotFoundError when absent. */
export const loadCublas: (options?: FindLibraryOptions) => Cublas = cachedLoader(CUBLAS_LIBRARY, ({ lib, path }) => new Cublas(lib, path));

/**
 * A row-major GEMM: C[m,n] = alpha * op(A)[m,k] . op(B)[k,n] + beta * C, with every matrix
 * stored row by row (leading dimension = row stride in elements).
 */
export interface RowMajorGemmSpec {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly a: DevicePtr;
  readonly b: DevicePtr;
  readonly c: DevicePtr;
  /** A is stored as [k,m] and used transposed. */
  readonly transA?: boolean;
  readonly transB?: boolean;
  /** Row strides; defaults: the stored matrices' widths. */
  readonly lda?: number;
  readonly ldb?: number;
  readonly ldc?: number;
  readonly alpha?: number;
  readonly beta?: number;
  /** Element type of A and B; C is the same, except bfloat16 inputs write `outDtype`. */
  readonly dtype: 'float32' | 'float64' | 'bfloat16';
  readonly outDtype?: 'float32' | 'bfloat16';
  /** float32 only: let cuBLAS use TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32). */
  readonly tf32?: boolean;
  readonly batch?: StridedBatch;
}

/**
 * Maps a row-major product onto column-major cuBLAS. A row-major matrix with row stride ld
 * is, read column-major, its transpose with leading dimension ld. So instead of
 * C = op(A).op(B) compute C^T = op(B)^T . op(A)^T: swap the operands (B first), swap m
 * and n, keep each operand's own transpose flag and leading dimension. C^T laid out
 * column-major is exactly C row-major, so no copy or transpose kernel is needed.
 */
export function rowMajorToColumnMajor(spec: RowMajorGemmSpec): GemmArgs {
  const lda = spec.lda ?? (spec.transA ? spec.m : spec.k);
  const ldb = spec.ldb ?? (spec.transB ? spec.k : spec.n);
  const ldc = spec.ldc ?? spec.n;
  return {
    transa: spec.transB ? CUBLAS_OP_T : CUBLAS_OP_N,
    transb: spec.transA ? CUBLAS_OP_T : CUBLAS_OP_N,
    m: spec.n,
    n: spec.m,
    k: spec.k,
    alpha: spec.alpha ?? 1,
    a: spec.b,
    lda: ldb,
    b: spec.a,
    ldb: lda,
    beta: spec.beta ?? 0,
    c: spec.c,
    ldc,
  };
}

/** Runs a row-major GEMM (batched when spec.batch is given) through the right cuBLAS entry point. */
export function rowMajorGemm(cublas: Cublas, handle: CublasHandle, spec: RowMajorGemmSpec): void {
  const g = rowMajorToColumnMajor(spec);
  const batch = spec.batch
    ? { strideA: spec.batch.strideB, strideB: spec.batch.strideA, strideC: spec.batch.strideC, batchCount: spec.batch.batchCount }
    : null; // the operands were swapped, so their strides swap too
  if (spec.dtype === 'float64') {
    if (batch) cublas.dgemmStridedBatched(handle, { ...g, ...batch });
    else cublas.dgemm(handle, g);
    return;
  }
  if (spec.dtype === 'float32' && !spec.tf32) {
    if (batch) cublas.sgemmStridedBatched(handle, { ...g, ...batch });
    else cublas.sgemm(handle, g);
    return;
  }
  const inType = spec.dtype === 'bfloat16' ? CUDA_R_16BF : CUDA_R_32F;
  const types: GemmExTypes = {
    aType: inType,
    bType: inType,
    cType: spec.dtype === 'bfloat16' && spec.outDtype === 'bfloat16' ? CUDA_R_16BF : CUDA_R_32F,
    computeType: spec.tf32 && spec.dtype === 'float32' ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
  };
  if (batch) cublas.gemmStridedBatchedEx(handle, { ...g, ...types, ...batch });
  else cublas.gemmEx(handle, { ...g, ...types });
}
