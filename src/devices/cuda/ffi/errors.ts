// Typed errors for the CUDA libraries. Every binding turns a nonzero status into one of
// these through its own check(), which names the C call and carries the library's own
// name and message for the code.

/** The CUDA libraries with bindings; the `library` of a {@link CudaError}. */
export type CudaLibrary = 'cuda' | 'nvrtc' | 'cublas' | 'cublasLt' | 'nccl' | 'cudnn';

/** What a library says about one of its status codes. */
export interface StatusDescription {
  /** e.g. 'CUDA_ERROR_OUT_OF_MEMORY', 'CUBLAS_STATUS_ALLOC_FAILED', 'ncclInvalidUsage'. */
  readonly name: string;
  /** The library's sentence for the code (may equal the name when it has none). */
  readonly message: string;
}

/** A CUDA library call returned a nonzero status. */
export class CudaError extends Error {
  override readonly name: string = 'CudaError';
  constructor(
    readonly library: CudaLibrary,
    /** The C function, e.g. 'cuMemAlloc_v2'. */
    readonly call: string,
    /** The numeric status it returned. */
    readonly code: number,
    /** The library's name for the status, e.g. 'CUDA_ERROR_INVALID_VALUE'. */
    readonly status: string,
    /** The library's message for the status. */
    readonly description: string,
    /** Extra context, e.g. the requested size of an allocation. */
    detail?: string,
  ) {
    super(`${call} failed: ${status} (${code}): ${description}${detail ? ` [${detail}]` : ''}`);
  }
}

/** CUDA_ERROR_OUT_OF_MEMORY (2) from the driver, or CUBLAS_STATUS_ALLOC_FAILED (3) from cuBLAS or cuBLASLt. */
export class CudaOutOfMemoryError extends CudaError {
  override readonly name: string = 'CudaOutOfMemoryError';
}

/** NVRTC rejected a program; `log` is the compiler's own output. */
export class CudaCompileError extends Error {
  override readonly name: string = 'CudaCompileError';
  constructor(
    /** The program name given to nvrtcCreateProgram. */
    readonly programName: string,
    /** The nvrtcResult of nvrtcCompileProgram (6 = NVRTC_ERROR_COMPILATION). */
    readonly code: number,
    readonly status: string,
    /** The compile log (errors and warnings). */
    readonly log: string,
    /** The options the program was compiled with. */
    readonly options: readonly string[],
  ) {
    super(`NVRTC could not compile ${programName}: ${status} (${code})\n${log.trim()}\noptions: ${options.join(' ')}`);
  }
}

/** One place find-library looked, and why it did not serve. */
export interface LibraryAttempt {
  /** An absolute path, or a bare soname handed to the system loader. */
  readonly path: string;
  readonly reason: string;
}

/** None of the candidate files of a shared library could be loaded. */
export class CudaLibraryNotFoundError extends Error {
  override readonly name: string = 'CudaLibraryNotFoundError';
  constructor(
    /** e.g. 'libnvrtc (NVRTC runtime compiler)'. */
    readonly library: string,
    /** The file names tried, newest first. */
    readonly sonames: readonly string[],
    /** The directories searched, in order. */
    readonly searched: readonly string[],
    /** Files that existed but failed to load, and the loader's own attempts. */
    readonly attempts: readonly LibraryAttempt[],
    readonly hint: string,
  ) {
    const lines = [
      `${library} was not found.`,
      `  file names tried: ${sonames.join(', ')}`,
      `  directories searched: ${searched.length ? searched.join(', ') : '(none)'}`,
      ...attempts.map((a) => `  ${a.path}: ${a.reason}`),
      `  ${hint}`,
    ];
    super(lines.join('\n'));
  }
}

/** A library was found and loaded, but its version is older than the binding supports. */
export class CudaLibraryVersionError extends Error {
  override readonly name: string = 'CudaLibraryVersionError';
  constructor(
    /** e.g. 'libcudnn (cuDNN 9)'. */
    readonly library: string,
    /** The file it was loaded from. */
    readonly path: string,
    /** The version it reports, e.g. '8.9.7'. */
    readonly found: string,
    /** The oldest version supported, e.g. '9.0.0'. */
    readonly required: string,
  ) {
    super(`${library} at ${path} is version ${found}; synkhronos needs ${required} or newer. Install a newer one, or point the device's path option at it.`);
  }
}

export const CUDA_ERROR_OUT_OF_MEMORY = 2;
export const CUBLAS_STATUS_ALLOC_FAILED = 3;
/** cuBLAS / cuBLASLt: no implementation for the configuration asked for. */
export const CUBLAS_STATUS_NOT_SUPPORTED = 15;

/** cublas_api.h, cublasStatus_t (CUDA 12 and 13). Used when cublasGetStatusName is absent. */
export const CUBLAS_STATUS_NAMES: Readonly<Record<number, string>> = {
  0: 'CUBLAS_STATUS_SUCCESS',
  1: 'CUBLAS_STATUS_NOT_INITIALIZED',
  3: 'CUBLAS_STATUS_ALLOC_FAILED',
  7: 'CUBLAS_STATUS_INVALID_VALUE',
  8: 'CUBLAS_STATUS_ARCH_MISMATCH',
  11: 'CUBLAS_STATUS_MAPPING_ERROR',
  13: 'CUBLAS_STATUS_EXECUTION_FAILED',
  14: 'CUBLAS_STATUS_INTERNAL_ERROR',
  15: 'CUBLAS_STATUS_NOT_SUPPORTED',
  16: 'CUBLAS_STATUS_LICENSE_ERROR',
};

/** nccl.h, ncclResult_t. ncclGetErrorString gives the sentence; this gives the name. */
export const NCCL_RESULT_NAMES: Readonly<Record<number, string>> = {
  0: 'ncclSuccess',
  1: 'ncclUnhandledCudaError',
  2: 'ncclSystemError',
  3: 'ncclInternalError',
  4: 'ncclInvalidArgument',
  5: 'ncclInvalidUsage',
  6: 'ncclRemoteError',
  7: 'ncclInProgress',
  8: 'ncclTimeout',
};

/**
 * cudnn_graph.h, cudnnStatus_t of cuDNN 9 (the codes were renumbered into categories in 9.0: 1xxx
 * initialisation, 2xxx bad parameter, 3xxx not supported, 4xxx internal, 5xxx execution). Source: the
 * Clang.jl translation of the cuDNN 9 headers in JuliaGPU/CUDA.jl, lib/cudnn/src/libcudnn.jl (commit
 * fd1008df), `@cenum cudnnStatus_t`. cudnnGetErrorString gives the sentence; this gives the name.
 */
export const CUDNN_STATUS_NAMES: Readonly<Record<number, string>> = {
  0: 'CUDNN_STATUS_SUCCESS',
  1001: 'CUDNN_STATUS_NOT_INITIALIZED',
  1002: 'CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH',
  1004: 'CUDNN_STATUS_DEPRECATED',
  1008: 'CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED',
  2000: 'CUDNN_STATUS_BAD_PARAM',
  2001: 'CUDNN_STATUS_INVALID_VALUE',
  2002: 'CUDNN_STATUS_BAD_PARAM_NULL_POINTER',
  2003: 'CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER',
  2005: 'CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND',
  2006: 'CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT',
  2007: 'CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH',
  2008: 'CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH',
  3000: 'CUDNN_STATUS_NOT_SUPPORTED',
  3002: 'CUDNN_STATUS_NOT_SUPPORTED_SHAPE',
  3003: 'CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE',
  3004: 'CUDNN_STATUS_NOT_SUPPORTED_LAYOUT',
  3007: 'CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH',
  3009: 'CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE',
  4000: 'CUDNN_STATUS_INTERNAL_ERROR',
  4003: 'CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED',
  4004: 'CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED',
  5000: 'CUDNN_STATUS_EXECUTION_FAILED',
  5001: 'CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER',
  5002: 'CUDNN_STATUS_EXECUTION_FAILED_CUBLAS',
  5003: 'CUDNN_STATUS_EXECUTION_FAILED_CUDART',
};
/** CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED (cuDNN 9's CUDNN_STATUS_ALLOC_FAILED is 4003, host memory). */
export const CUDNN_STATUS_DEVICE_ALLOCATION_FAILED = 4004;

/** Whether a status of a library means the device ran out of memory. */
export function isOutOfMemory(library: CudaLibrary, code: number): boolean {
  const blas = library === 'cublas' || library === 'cublasLt';
  return (library === 'cuda' && code === CUDA_ERROR_OUT_OF_MEMORY) || (blas && code === CUBLAS_STATUS_ALLOC_FAILED) ||
    (library === 'cudnn' && code === CUDNN_STATUS_DEVICE_ALLOCATION_FAILED);
}

/** Builds the typed error for a nonzero status (without throwing it). */
export function statusError(
  library: CudaLibrary,
  describe: (code: number) => StatusDescription,
  call: string,
  code: number,
  detail?: string,
): CudaError {
  let d: StatusDescription;
  try {
    d = describe(code);
  } catch {
    d = { name: `status ${code}`, message: 'the library gave no description' };
  }
  const ErrorType = isOutOfMemory(library, code) ? CudaOutOfMemoryError : CudaError;
  return new ErrorType(library, call, code, d.name, d.message, detail);
}

/**
 * The one check() shape: returns when `code` is 0, otherwise throws the typed error.
 * Each binding wraps this with its own library name and describer.
 */
export function check(
  library: CudaLibrary,
  describe: (code: number) => StatusDescription,
  call: string,
  code: unknown,
  detail?: string,
): void {
  if (code === 0) return;
  const numeric = typeof code === 'number' ? code : Number(code);
  throw statusError(library, describe, call, numeric, detail);
}
