// koffi type declarations shared by every CUDA binding, plus the TypeScript shapes of
// the opaque handles the libraries hand out.
//
// koffi type names are process-global and checked: an External made as a `CUstream` is
// refused by a parameter declared with another pointer type. So the driver, cuBLAS and
// NCCL bindings all declare their stream parameters with this one `CUstream` type, and the
// types are registered once, on first use (never at import time).
import koffi from 'koffi';

declare const handleBrand: unique symbol;
/** An opaque pointer handed out by a CUDA library (a koffi External underneath). */
export type Handle<Kind extends string> = { readonly [handleBrand]: Kind };

export type CUcontext = Handle<'CUcontext'>;
export type CUmodule = Handle<'CUmodule'>;
export type CUfunction = Handle<'CUfunction'>;
/** A CUDA stream; the same value serves the driver, cuBLAS (cudaStream_t) and NCCL. */
export type CUstream = Handle<'CUstream'>;
export type CUevent = Handle<'CUevent'>;
export type CUgraph = Handle<'CUgraph'>;
export type CUgraphExec = Handle<'CUgraphExec'>;
/** Page-locked host memory from cuMemAllocHost. */
export type HostPointer = Handle<'HostPointer'>;
export type NvrtcProgram = Handle<'NvrtcProgram'>;
export type CublasHandle = Handle<'CublasHandle'>;
/** A cuBLASLt context (cublasLtHandle_t). */
export type CublasLtHandle = Handle<'CublasLtHandle'>;
/** cublasLtMatmulDesc_t: the operation (compute and scale types, transposes, epilogue). */
export type CublasLtMatmulDesc = Handle<'CublasLtMatmulDesc'>;
/** cublasLtMatrixLayout_t: one matrix's type, rows, columns, leading dimension and batch. */
export type CublasLtMatrixLayout = Handle<'CublasLtMatrixLayout'>;
/** cublasLtMatmulPreference_t: what the heuristic may choose (workspace, alignments). */
export type CublasLtMatmulPreference = Handle<'CublasLtMatmulPreference'>;
export type NcclComm = Handle<'NcclComm'>;
/** A cuDNN context (cudnnHandle_t). */
export type CudnnHandle = Handle<'CudnnHandle'>;
/** cudnnTensorDescriptor_t. */
export type CudnnTensorDescriptor = Handle<'CudnnTensorDescriptor'>;
/** cudnnFilterDescriptor_t. */
export type CudnnFilterDescriptor = Handle<'CudnnFilterDescriptor'>;
/** cudnnConvolutionDescriptor_t. */
export type CudnnConvolutionDescriptor = Handle<'CudnnConvolutionDescriptor'>;

/** A device address (CUdeviceptr, a 64-bit integer). */
export type DevicePtr = bigint;
/** A CUdevice ordinal handle (a C int). */
export type CUdevice = number;

let registered = false;

/** Registers the koffi types once. Every binding calls this before declaring functions. */
export function registerCudaTypes(): void {
  if (registered) return;
  // Device pointers are integers in the driver API. cuBLAS and NCCL declare theirs as
  // `void *`; on x86-64 (System V) and aarch64 a pointer and a uint64 travel in the same
  // integer register or stack slot, so those parameters are declared as CUdeviceptr too.
  koffi.alias('CUdeviceptr', 'uint64_t');
  koffi.pointer('CUcontext', koffi.opaque('CUctx_st'));
  koffi.pointer('CUmodule', koffi.opaque('CUmod_st'));
  koffi.pointer('CUfunction', koffi.opaque('CUfunc_st'));
  koffi.pointer('CUstream', koffi.opaque('CUstream_st'));
  koffi.pointer('CUevent', koffi.opaque('CUevent_st'));
  koffi.pointer('CUgraph', koffi.opaque('CUgraph_st'));
  koffi.pointer('CUgraphExec', koffi.opaque('CUgraphExec_st'));
  koffi.pointer('nvrtcProgram', koffi.opaque('_nvrtcProgram'));
  koffi.pointer('cublasHandle_t', koffi.opaque('cublasContext'));
  koffi.pointer('cublasLtHandle_t', koffi.opaque('cublasLtContext'));
  koffi.pointer('cublasLtMatmulDesc_t', koffi.opaque('cublasLtMatmulDescOpaque_t'));
  koffi.pointer('cublasLtMatrixLayout_t', koffi.opaque('cublasLtMatrixLayoutOpaque_t'));
  koffi.pointer('cublasLtMatmulPreference_t', koffi.opaque('cublasLtMatmulPreferenceOpaque_t'));
  koffi.pointer('ncclComm_t', koffi.opaque('ncclComm'));
  koffi.pointer('cudnnHandle_t', koffi.opaque('cudnnContext'));
  koffi.pointer('cudnnTensorDescriptor_t', koffi.opaque('cudnnTensorStruct'));
  koffi.pointer('cudnnFilterDescriptor_t', koffi.opaque('cudnnFilterStruct'));
  koffi.pointer('cudnnConvolutionDescriptor_t', koffi.opaque('cudnnConvolutionStruct'));
  // typedef struct { char internal[128]; } ncclUniqueId; passed BY VALUE to
  // ncclCommInitRank. uint8_t has char's size and alignment, and unlike char it converts
  // from and to a Uint8Array instead of a string.
  koffi.struct('ncclUniqueId', { internal: koffi.array('uint8_t', 128, 'Typed') });
  registered = true;
}

/** The koffi function object type (its call signature is untyped by nature). */
export type KoffiFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;
export type KoffiLib = ReturnType<typeof koffi.load>;

/**
 * Declares every function of a signature table. A table entry is one C prototype in
 * koffi's syntax, or several alternatives (tried in order: e.g. a `_v2` symbol first and
 * the older name second). Throws naming the first symbol the library lacks.
 */
export function bindAll<T extends Record<string, string | readonly string[]>>(
  lib: KoffiLib,
  libraryPath: string,
  table: T,
): { [K in keyof T]: KoffiFunction } {
  const out: Partial<Record<keyof T, KoffiFunction>> = {};
  for (const key of Object.keys(table) as (keyof T)[]) {
    const entry = table[key];
    const alternatives: readonly string[] = typeof entry === 'string' ? [entry] : (entry as readonly string[]);
    const errors: string[] = [];
    for (const prototype of alternatives) {
      try {
        out[key] = lib.func(prototype);
        break;
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (out[key] === undefined) {
      throw new Error(`${libraryPath} lacks ${String(key)} (${errors.join('; ')}); the library is too old or not the expected one`);
    }
  }
  return out as { [K in keyof T]: KoffiFunction };
}

/** Declares one function if the library has it (for symbols newer than the oldest supported version). */
export function bindOptional(lib: KoffiLib, prototype: string): KoffiFunction | null {
  try {
    return lib.func(prototype);
  } catch {
    return null;
  }
}

/** The exported C symbol named in a koffi prototype, e.g. 'cuMemAlloc_v2'. */
export function symbolOf(prototype: string): string {
  const m = /([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(prototype);
  if (!m || m[1] === undefined) throw new Error(`no function name in prototype: ${prototype}`);
  return m[1];
}

/** Normalizes a 64-bit integer that koffi returned as a number (small) or a bigint (large). */
export function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(value);
  throw new TypeError(`expected a 64-bit integer from the library, got ${typeof value}`);
}

/** Normalizes a size_t result to a number (sizes of memory stay far below 2^53). */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new TypeError(`expected an integer from the library, got ${typeof value}`);
}
