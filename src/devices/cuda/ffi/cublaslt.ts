// cuBLASLt (libcublasLt.so.13 / .12) through koffi: a handle, matmul descriptors, matrix layouts,
// preferences, the algorithm heuristic and cublasLtMatmul. cuBLASLt is column-major like cuBLAS; the
// row-major mapping and the plans made from these calls live in ../lt-plans.ts.
//
// Every constant below is from cublasLt.h (read in the CUDA 12.6 toolkit's copy; NVIDIA keeps these
// enum values fixed across releases, and CUDA 13's cuBLASLt takes the same ones): the enum named beside
// each. Matrix and workspace arguments are device pointers (CUdeviceptr, ABI-identical to `void *`, see
// types.ts); alpha/beta are host scalars of the descriptor's scale type (CUBLASLT_POINTER_MODE_HOST, the default).
import { CUBLAS_STATUS_NAMES, CUBLAS_STATUS_NOT_SUPPORTED, check, type StatusDescription } from './errors.js';
import { CUBLASLT_LIBRARY, cachedLoader, type FindLibraryOptions } from './find-library.js';
import {
  bindAll, bindOptional, registerCudaTypes, toNumber, type CublasLtHandle, type CublasLtMatmulDesc, type CublasLtMatmulPreference,
  type CublasLtMatrixLayout, type CUstream, type DevicePtr, type KoffiFunction, type KoffiLib,
} from './types.js';

/** cublasLtMatmulDescAttributes_t. */
export const CUBLASLT_MATMUL_DESC = {
  TRANSA: 3, // int32_t (cublasOperation_t)
  TRANSB: 4, // int32_t
  EPILOGUE: 7, // uint32_t (cublasLtEpilogue_t)
  BIAS_POINTER: 8, // const void * (bias) or void * (bias gradient)
  BIAS_BATCH_STRIDE: 10, // int64_t
  EPILOGUE_AUX_POINTER: 11, // void *: the ReLU bit mask (RELU_AUX*, DRELU*)
  EPILOGUE_AUX_LD: 12, // int64_t: the mask's leading dimension in bits, a multiple of 128
  BIAS_DATA_TYPE: 26, // int32_t (cudaDataType), default: the output's type
} as const;

/** cublasLtMatrixLayoutAttribute_t (TYPE, ROWS, COLS and LD are given at creation). */
export const CUBLASLT_MATRIX_LAYOUT = {
  BATCH_COUNT: 5, // int32_t, default 1
  STRIDED_BATCH_OFFSET: 6, // int64_t, elements between consecutive matrices
} as const;

/** cublasLtMatmulPreferenceAttributes_t. */
export const CUBLASLT_MATMUL_PREF = {
  MAX_WORKSPACE_BYTES: 1, // uint64_t, default 0: no workspace
  MIN_ALIGNMENT_A_BYTES: 5, // uint32_t, default 256
  MIN_ALIGNMENT_B_BYTES: 6,
  MIN_ALIGNMENT_C_BYTES: 7,
  MIN_ALIGNMENT_D_BYTES: 8,
} as const;

/** cublasLtEpilogue_t. */
export const CUBLASLT_EPILOGUE = {
  DEFAULT: 1,
  RELU: 2,
  BIAS: 4,
  RELU_BIAS: 6,
  RELU_AUX: 130,
  RELU_AUX_BIAS: 134,
  DRELU: 136,
  DRELU_BGRAD: 152,
  BGRADA: 256,
  BGRADB: 512,
} as const;

/**
 * cublasLtMatmulHeuristicResult_t: { cublasLtMatmulAlgo_t algo (uint64_t data[8]); size_t workspaceSize;
 * cublasStatus_t state; float wavesCount; int reserved[4]; }: algo @0, workspaceSize @64, state @72,
 * wavesCount @76, 96 bytes in all.
 */
export const CUBLASLT_HEURISTIC_RESULT_BYTES = 96;
/** Bytes of cublasLtMatmulAlgo_t, the head of a heuristic result. */
export const CUBLASLT_ALGO_BYTES = 64;

/** One answer of cublasLtMatmulAlgoGetHeuristic. */
export interface CublasLtHeuristic {
  /** The 64-byte algorithm, as cublasLtMatmul takes it (a copy: it outlives the results array). */
  readonly algo: Buffer;
  readonly workspaceBytes: number;
  /** 0 (CUBLAS_STATUS_SUCCESS) when the algorithm can run the problem. */
  readonly state: number;
  /** Device utilisation estimate (1: one full wave). */
  readonly waves: number;
}

const L = 'cublasLtMatrixLayout_t';

/** Every cuBLASLt function bound (cublasLt.h). */
export const CUBLASLT_SIGNATURES = {
  cublasLtGetVersion: 'size_t cublasLtGetVersion(void)',
  cublasLtCreate: 'int cublasLtCreate(_Out_ cublasLtHandle_t *lightHandle)',
  cublasLtDestroy: 'int cublasLtDestroy(cublasLtHandle_t lightHandle)',
  cublasLtMatmulDescCreate: 'int cublasLtMatmulDescCreate(_Out_ cublasLtMatmulDesc_t *matmulDesc, int computeType, int scaleType)',
  cublasLtMatmulDescDestroy: 'int cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc)',
  cublasLtMatmulDescSetAttribute: 'int cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc, int attr, const void *buf, size_t sizeInBytes)',
  cublasLtMatrixLayoutCreate: `int cublasLtMatrixLayoutCreate(_Out_ ${L} *matLayout, int type, uint64_t rows, uint64_t cols, int64_t ld)`,
  cublasLtMatrixLayoutDestroy: `int cublasLtMatrixLayoutDestroy(${L} matLayout)`,
  cublasLtMatrixLayoutSetAttribute: `int cublasLtMatrixLayoutSetAttribute(${L} matLayout, int attr, const void *buf, size_t sizeInBytes)`,
  cublasLtMatmulPreferenceCreate: 'int cublasLtMatmulPreferenceCreate(_Out_ cublasLtMatmulPreference_t *pref)',
  cublasLtMatmulPreferenceDestroy: 'int cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)',
  cublasLtMatmulPreferenceSetAttribute:
    'int cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref, int attr, const void *buf, size_t sizeInBytes)',
  cublasLtMatmulAlgoGetHeuristic: `int cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, ` +
    `${L} Adesc, ${L} Bdesc, ${L} Cdesc, ${L} Ddesc, cublasLtMatmulPreference_t preference, int requestedAlgoCount, ` +
    'void *heuristicResultsArray, _Out_ int *returnAlgoCount)',
  cublasLtMatmul: 'int cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc, const void *alpha, ' +
    `CUdeviceptr A, ${L} Adesc, CUdeviceptr B, ${L} Bdesc, const void *beta, CUdeviceptr C, ${L} Cdesc, CUdeviceptr D, ${L} Ddesc, ` +
    'const void *algo, CUdeviceptr workspace, size_t workspaceSizeInBytes, CUstream stream)',
} as const;

type CublasLtFunctions = { [K in keyof typeof CUBLASLT_SIGNATURES]: KoffiFunction };

/** The device buffers and host scalars of one cublasLtMatmul (D = alpha op(A) op(B) + beta C, C and D one matrix here). */
export interface CublasLtCall {
  readonly desc: CublasLtMatmulDesc;
  readonly a: DevicePtr;
  readonly aLayout: CublasLtMatrixLayout;
  readonly b: DevicePtr;
  readonly bLayout: CublasLtMatrixLayout;
  readonly c: DevicePtr;
  readonly cLayout: CublasLtMatrixLayout;
  /** alpha and beta in the descriptor's scale type (Float32Array for CUDA_R_32F). */
  readonly alpha: ArrayBufferView;
  readonly beta: ArrayBufferView;
  /** The 64-byte cublasLtMatmulAlgo_t from a heuristic. */
  readonly algo: Buffer;
  readonly workspace: DevicePtr;
  readonly workspaceBytes: number;
  readonly stream: CUstream | null;
}

export class CublasLt {
  private readonly fn: CublasLtFunctions;
  private readonly statusName: KoffiFunction | null;
  private readonly statusString: KoffiFunction | null;

  constructor(lib: KoffiLib, readonly path: string) {
    registerCudaTypes();
    this.fn = bindAll(lib, path, CUBLASLT_SIGNATURES);
    this.statusName = bindOptional(lib, 'const char *cublasLtGetStatusName(int status)');
    this.statusString = bindOptional(lib, 'const char *cublasLtGetStatusString(int status)');
  }

  describe(code: number): StatusDescription {
    const name = (this.statusName?.(code) as string | null | undefined) ?? CUBLAS_STATUS_NAMES[code] ?? `cublasStatus_t ${code}`;
    const message = (this.statusString?.(code) as string | null | undefined) ?? name;
    return { name, message };
  }
  check(call: string, code: unknown, detail?: string): void {
    check('cublasLt', (c) => this.describe(c), call, code, detail);
  }

  /** cublasLtGetVersion(): MAJOR * 10000 + MINOR * 100 + PATCH from cuBLAS 12 on (e.g. 130001). */
  version(): number { return toNumber(this.fn.cublasLtGetVersion()); }

  /** Needs a current CUDA context on the calling thread. */
  create(): CublasLtHandle {
    const out: [CublasLtHandle | null] = [null];
    this.check('cublasLtCreate', this.fn.cublasLtCreate(out));
    return out[0] as CublasLtHandle;
  }
  destroy(handle: CublasLtHandle): void { this.check('cublasLtDestroy', this.fn.cublasLtDestroy(handle)); }

  /** A matmul descriptor (cublasComputeType_t, cudaDataType_t of alpha/beta). */
  matmulDesc(computeType: number, scaleType: number): CublasLtMatmulDesc {
    const out: [CublasLtMatmulDesc | null] = [null];
    this.check('cublasLtMatmulDescCreate', this.fn.cublasLtMatmulDescCreate(out, computeType, scaleType), `compute ${computeType} scale ${scaleType}`);
    return out[0] as CublasLtMatmulDesc;
  }
  /** Sets a descriptor attribute from its bytes (an Int32Array, BigInt64Array, ... of the attribute's C type). */
  setMatmulDesc(desc: CublasLtMatmulDesc, attr: number, value: ArrayBufferView): void {
    this.check('cublasLtMatmulDescSetAttribute', this.fn.cublasLtMatmulDescSetAttribute(desc, attr, value, value.byteLength), `attribute ${attr}`);
  }
  destroyMatmulDesc(desc: CublasLtMatmulDesc): void { this.check('cublasLtMatmulDescDestroy', this.fn.cublasLtMatmulDescDestroy(desc)); }

  /** A column-major matrix layout of cudaDataType_t `type`. */
  layout(type: number, rows: number, cols: number, ld: number): CublasLtMatrixLayout {
    const out: [CublasLtMatrixLayout | null] = [null];
    this.check('cublasLtMatrixLayoutCreate', this.fn.cublasLtMatrixLayoutCreate(out, type, rows, cols, ld), `${rows}x${cols} ld ${ld} type ${type}`);
    return out[0] as CublasLtMatrixLayout;
  }
  setLayout(layout: CublasLtMatrixLayout, attr: number, value: ArrayBufferView): void {
    this.check('cublasLtMatrixLayoutSetAttribute', this.fn.cublasLtMatrixLayoutSetAttribute(layout, attr, value, value.byteLength), `attribute ${attr}`);
  }
  destroyLayout(layout: CublasLtMatrixLayout): void { this.check('cublasLtMatrixLayoutDestroy', this.fn.cublasLtMatrixLayoutDestroy(layout)); }

  preference(): CublasLtMatmulPreference {
    const out: [CublasLtMatmulPreference | null] = [null];
    this.check('cublasLtMatmulPreferenceCreate', this.fn.cublasLtMatmulPreferenceCreate(out));
    return out[0] as CublasLtMatmulPreference;
  }
  setPreference(pref: CublasLtMatmulPreference, attr: number, value: ArrayBufferView): void {
    this.check('cublasLtMatmulPreferenceSetAttribute', this.fn.cublasLtMatmulPreferenceSetAttribute(pref, attr, value, value.byteLength),
      `attribute ${attr}`);
  }
  destroyPreference(pref: CublasLtMatmulPreference): void {
    this.check('cublasLtMatmulPreferenceDestroy', this.fn.cublasLtMatmulPreferenceDestroy(pref));
  }

  /**
   * The heuristic's algorithms for a problem, best first (at most `requested`; a host call). An empty list when
   * cuBLASLt has none for it (CUBLAS_STATUS_NOT_SUPPORTED); other failures throw.
   */
  heuristic(handle: CublasLtHandle, desc: CublasLtMatmulDesc, layouts: { a: CublasLtMatrixLayout; b: CublasLtMatrixLayout; c: CublasLtMatrixLayout },
    pref: CublasLtMatmulPreference, requested = 1): CublasLtHeuristic[] {
    const buf = Buffer.alloc(requested * CUBLASLT_HEURISTIC_RESULT_BYTES);
    const returned: [number] = [0];
    const code = this.fn.cublasLtMatmulAlgoGetHeuristic(handle, desc, layouts.a, layouts.b, layouts.c, layouts.c, pref, requested, buf, returned);
    if (code === CUBLAS_STATUS_NOT_SUPPORTED) return [];
    this.check('cublasLtMatmulAlgoGetHeuristic', code);
    return decodeHeuristics(buf, Math.min(Math.max(returned[0], 0), requested));
  }

  /** Enqueues one matmul on `stream` (D written in place of C). */
  matmul(handle: CublasLtHandle, c: CublasLtCall, detail?: string): void {
    this.check('cublasLtMatmul', this.fn.cublasLtMatmul(handle, c.desc, c.alpha, c.a, c.aLayout, c.b, c.bLayout, c.beta, c.c, c.cLayout, c.c,
      c.cLayout, c.algo, c.workspace, c.workspaceBytes, c.stream), detail);
  }
}

/** Reads `count` cublasLtMatmulHeuristicResult_t entries (layout in {@link CUBLASLT_HEURISTIC_RESULT_BYTES}). */
export function decodeHeuristics(buf: Buffer, count: number): CublasLtHeuristic[] {
  const out: CublasLtHeuristic[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * CUBLASLT_HEURISTIC_RESULT_BYTES;
    out.push({
      algo: Buffer.from(buf.subarray(o, o + CUBLASLT_ALGO_BYTES)), workspaceBytes: Number(buf.readBigUInt64LE(o + 64)),
      state: buf.readInt32LE(o + 72), waves: buf.readFloatLE(o + 76),
    });
  }
  return out;
}

/** Loads libcublasLt once per distinct options. Throws CudaLibraryNotFoundError when absent. */
export const loadCublasLt: (options?: FindLibraryOptions) => CublasLt = cachedLoader(CUBLASLT_LIBRARY, ({ lib, path }) => new CublasLt(lib, path));
