// cuDNN 9 (libcudnn.so.9) through koffi: a handle on the context's stream, NCHW tensor, filter and
// convolution descriptors, the _v7 algorithm heuristics, workspace sizes and the three convolutions.
//
// These are cuDNN's "legacy" (imperative) convolution entry points. cuDNN 9 splits the library into
// libcudnn_graph, libcudnn_ops, libcudnn_cnn, libcudnn_adv and engine libraries; the legacy
// convolution API lives on, deprecated but supported, in libcudnn_cnn (cudnn_cnn.h), and the shim
// libcudnn.so.9 exports every entry point and loads the sub-library on first use ("the older shim
// layer (libcudnn.so) and legacy libraries (libcudnn_cnn.so, ...) can still be directly used":
// https://docs.nvidia.com/deeplearning/cudnn/latest/api/overview.html; the cudnn_cnn Library page lists
// cudnnGetConvolutionForwardAlgorithm_v7, cudnnConvolutionForward, ... as deprecated in 9).
//
// Every constant below is taken from the cuDNN 9 headers as translated by Clang.jl in JuliaGPU/CUDA.jl,
// lib/cudnn/src/libcudnn.jl (generated from cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h; read at commit
// fd1008df7adde63bd46e078d075e6180c783f9cc), and agrees with a bindgen translation of cuDNN 9.22's
// headers: the `@cenum` named beside each one. The prototypes follow the same file's ccall signatures.
// Device buffers are CUdeviceptr (ABI-identical to `void *`, see types.ts); alpha/beta are host scalars,
// double for double data and float otherwise (cudnnConvolutionForward documentation).
import { CUDNN_STATUS_NAMES, CudaLibraryVersionError, check, type StatusDescription } from './errors.js';
import { CUDNN_LIBRARY, cachedLoader, type FindLibraryOptions } from './find-library.js';
import { CudnnBackend } from './cudnn-backend.js';
import {
  bindAll, bindOptional, registerCudaTypes, toNumber, type CudnnConvolutionDescriptor, type CudnnFilterDescriptor, type CudnnHandle,
  type CudnnTensorDescriptor, type CUstream, type DevicePtr, type KoffiFunction, type KoffiLib,
} from './types.js';

/** cudnnDataType_t (cudnn_graph.h): CUDNN_DATA_FLOAT = 0, CUDNN_DATA_DOUBLE = 1, CUDNN_DATA_HALF = 2, CUDNN_DATA_BFLOAT16 = 9. */
export const CUDNN_DATA_TYPE = { float32: 0, float64: 1, float16: 2, bfloat16: 9 } as const;
/** cudnnTensorFormat_t (cudnn_graph.h): CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NHWC (filters: KRSC). */
export const CUDNN_TENSOR_NCHW = 0;
export const CUDNN_TENSOR_NHWC = 1;
/** cudnnConvolutionMode_t (cudnn_graph.h): CUDNN_CROSS_CORRELATION, what deep-learning "convolution" means (no filter flip). */
export const CUDNN_CROSS_CORRELATION = 1;
/** cudnnMathType_t (cudnn_graph.h): CUDNN_DEFAULT_MATH. */
export const CUDNN_DEFAULT_MATH = 0;
/** cudnnMathType_t: CUDNN_TENSOR_OP_MATH (tensor cores permitted; TF32 for float data). */
export const CUDNN_TENSOR_OP_MATH = 1;
/** cudnnMathType_t: CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION. */
export const CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2;
/** cudnnMathType_t: CUDNN_FMA_MATH (FMA kernels only: no TF32 for float data). */
export const CUDNN_FMA_MATH = 3;
/** cudnnConvolutionFwdAlgo_t (cudnn_cnn.h): CUDNN_CONVOLUTION_FWD_ALGO_COUNT. */
export const CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8;
/** cudnnConvolutionBwdDataAlgo_t (cudnn_cnn.h): CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT. */
export const CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6;
/** cudnnConvolutionBwdFilterAlgo_t (cudnn_cnn.h): CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT. */
export const CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7;
/** The oldest cuDNN this binding takes (its status codes and version encoding are cuDNN 9's). */
export const CUDNN_MIN_VERSION = { major: 9, minor: 0, patch: 0 } as const;

/**
 * One entry of cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (cudnn_cnn.h; the three structs have
 * one layout): { int algo; int status; float time; size_t memory; int determinism; int mathType;
 * int reserved[3]; }, so on LP64: algo @0, status @4, time @8, memory @16, determinism @24,
 * mathType @28, 48 bytes in all (8-byte alignment from the size_t).
 */
export interface CudnnAlgoPerf {
  readonly algo: number;
  /** 0 when the algorithm supports the problem. */
  readonly status: number;
  /** Milliseconds; -1 from the heuristics (they do not time). */
  readonly time: number;
  /** Workspace bytes. */
  readonly memory: number;
  /** CUDNN_DETERMINISTIC (1) or CUDNN_NON_DETERMINISTIC (0). */
  readonly determinism: number;
  readonly mathType: number;
}
/** Bytes of one cudnnConvolution*AlgoPerf_t. */
export const CUDNN_ALGO_PERF_BYTES = 48;

const CONV = 'cudnnConvolutionDescriptor_t convDesc';
const OUT_ALGOS = 'int requestedAlgoCount, _Out_ int *returnedAlgoCount, void *perfResults';
const T = 'cudnnTensorDescriptor_t';
const F = 'cudnnFilterDescriptor_t';

/** Every cuDNN function bound (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h of cuDNN 9). */
export const CUDNN_SIGNATURES = {
  cudnnGetVersion: 'size_t cudnnGetVersion(void)',
  cudnnGetErrorString: 'const char *cudnnGetErrorString(int status)',
  cudnnCreate: 'int cudnnCreate(_Out_ cudnnHandle_t *handle)',
  cudnnDestroy: 'int cudnnDestroy(cudnnHandle_t handle)',
  cudnnSetStream: 'int cudnnSetStream(cudnnHandle_t handle, CUstream streamId)',
  cudnnCreateTensorDescriptor: `int cudnnCreateTensorDescriptor(_Out_ ${T} *tensorDesc)`,
  cudnnSetTensor4dDescriptorEx: `int cudnnSetTensor4dDescriptorEx(${T} tensorDesc, int dataType, int n, int c, int h, int w, ` +
    'int nStride, int cStride, int hStride, int wStride)',
  cudnnDestroyTensorDescriptor: `int cudnnDestroyTensorDescriptor(${T} tensorDesc)`,
  cudnnCreateFilterDescriptor: `int cudnnCreateFilterDescriptor(_Out_ ${F} *filterDesc)`,
  cudnnSetFilter4dDescriptor: `int cudnnSetFilter4dDescriptor(${F} filterDesc, int dataType, int format, int k, int c, int h, int w)`,
  cudnnDestroyFilterDescriptor: `int cudnnDestroyFilterDescriptor(${F} filterDesc)`,
  cudnnCreateConvolutionDescriptor: `int cudnnCreateConvolutionDescriptor(_Out_ cudnnConvolutionDescriptor_t *convDesc)`,
  cudnnSetConvolution2dDescriptor: `int cudnnSetConvolution2dDescriptor(${CONV}, int pad_h, int pad_w, int u, int v, ` +
    'int dilation_h, int dilation_w, int mode, int computeType)',
  cudnnSetConvolutionGroupCount: `int cudnnSetConvolutionGroupCount(${CONV}, int groupCount)`,
  cudnnSetConvolutionMathType: `int cudnnSetConvolutionMathType(${CONV}, int mathType)`,
  cudnnDestroyConvolutionDescriptor: `int cudnnDestroyConvolutionDescriptor(${CONV})`,
  cudnnGetConvolutionForwardAlgorithm_v7: `int cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, ${T} srcDesc, ` +
    `${F} filterDesc, ${CONV}, ${T} destDesc, ${OUT_ALGOS})`,
  cudnnGetConvolutionBackwardDataAlgorithm_v7: `int cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, ${F} filterDesc, ` +
    `${T} diffDesc, ${CONV}, ${T} gradDesc, ${OUT_ALGOS})`,
  cudnnGetConvolutionBackwardFilterAlgorithm_v7: `int cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, ${T} srcDesc, ` +
    `${T} diffDesc, ${CONV}, ${F} gradDesc, ${OUT_ALGOS})`,
  cudnnFindConvolutionForwardAlgorithm: `int cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, ${T} xDesc, ` +
    `${F} wDesc, ${CONV}, ${T} yDesc, ${OUT_ALGOS})`,
  cudnnFindConvolutionBackwardDataAlgorithm: `int cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, ${F} wDesc, ` +
    `${T} dyDesc, ${CONV}, ${T} dxDesc, ${OUT_ALGOS})`,
  cudnnFindConvolutionBackwardFilterAlgorithm: `int cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, ${T} xDesc, ` +
    `${T} dyDesc, ${CONV}, ${F} dwDesc, ${OUT_ALGOS})`,
  cudnnGetConvolutionForwardWorkspaceSize: `int cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, ${T} xDesc, ${F} wDesc, ` +
    `${CONV}, ${T} yDesc, int algo, _Out_ size_t *sizeInBytes)`,
  cudnnGetConvolutionBackwardDataWorkspaceSize: `int cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, ${F} wDesc, ` +
    `${T} dyDesc, ${CONV}, ${T} dxDesc, int algo, _Out_ size_t *sizeInBytes)`,
  cudnnGetConvolutionBackwardFilterWorkspaceSize: `int cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, ${T} xDesc, ` +
    `${T} dyDesc, ${CONV}, ${F} gradDesc, int algo, _Out_ size_t *sizeInBytes)`,
  cudnnConvolutionForward: `int cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha, ${T} xDesc, CUdeviceptr x, ` +
    `${F} wDesc, CUdeviceptr w, ${CONV}, int algo, CUdeviceptr workSpace, size_t workSpaceSizeInBytes, const void *beta, ` +
    `${T} yDesc, CUdeviceptr y)`,
  cudnnConvolutionBackwardData: `int cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha, ${F} wDesc, CUdeviceptr w, ` +
    `${T} dyDesc, CUdeviceptr dy, ${CONV}, int algo, CUdeviceptr workSpace, size_t workSpaceSizeInBytes, const void *beta, ` +
    `${T} dxDesc, CUdeviceptr dx)`,
  cudnnConvolutionBackwardFilter: `int cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha, ${T} xDesc, CUdeviceptr x, ` +
    `${T} dyDesc, CUdeviceptr dy, ${CONV}, int algo, CUdeviceptr workSpace, size_t workSpaceSizeInBytes, const void *beta, ` +
    `${F} dwDesc, CUdeviceptr dw)`,
} as const;

type CudnnFunctions = { [K in keyof typeof CUDNN_SIGNATURES]: KoffiFunction };

/** A cuDNN version number split up. */
export interface CudnnVersion { readonly major: number; readonly minor: number; readonly patch: number }

/**
 * Splits cudnnGetVersion()'s number: cuDNN 9 encodes MAJOR*10000 + MINOR*100 + PATCH (e.g. 91000 is
 * 9.10.0), cuDNN 8 and older MAJOR*1000 + MINOR*100 + PATCH (e.g. 8907 is 8.9.7).
 */
export function decodeCudnnVersion(code: number): CudnnVersion {
  if (code < 10000) return { major: Math.floor(code / 1000), minor: Math.floor((code % 1000) / 100), patch: code % 100 };
  return { major: Math.floor(code / 10000), minor: Math.floor((code % 10000) / 100), patch: code % 100 };
}

/** 'major.minor.patch'. */
export function formatCudnnVersion(v: CudnnVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** The three convolution directions of the legacy API. */
export type CudnnConvDirection = 'forward' | 'backwardData' | 'backwardFilter';

/** The descriptors of one convolution problem (x: input, w: filters, y: output). */
export interface CudnnConvDescriptors {
  readonly x: CudnnTensorDescriptor;
  readonly w: CudnnFilterDescriptor;
  readonly y: CudnnTensorDescriptor;
  readonly conv: CudnnConvolutionDescriptor;
}

/** The device buffers of one convolution call; which are read and which written depends on the direction. */
export interface CudnnConvBuffers {
  readonly x: DevicePtr;
  readonly w: DevicePtr;
  readonly y: DevicePtr;
  readonly workspace: DevicePtr;
  readonly workspaceBytes: number;
}

/** cuDNN's functions over one loaded libcudnn, with its version checked. */
export class Cudnn {
  private readonly fn: CudnnFunctions;
  private readonly lastError: KoffiFunction | null;
  /** The version of the loaded library. */
  readonly version: CudnnVersion;
  /** The backend (graph) API, or null when the library does not export it (convolutions then use the legacy API). */
  readonly backend: CudnnBackend | null;

  constructor(lib: KoffiLib, readonly path: string) {
    registerCudaTypes();
    // The version first: an old library may lack symbols, and "too old" is the better message.
    const getVersion = bindAll(lib, path, { v: CUDNN_SIGNATURES.cudnnGetVersion }).v;
    this.version = decodeCudnnVersion(toNumber(getVersion()));
    if (this.version.major < CUDNN_MIN_VERSION.major) {
      throw new CudaLibraryVersionError(CUDNN_LIBRARY.display, path, formatCudnnVersion(this.version), formatCudnnVersion(CUDNN_MIN_VERSION));
    }
    this.fn = bindAll(lib, path, CUDNN_SIGNATURES);
    this.lastError = bindOptional(lib, 'void cudnnGetLastErrorString(_Out_ char *message, size_t max_size)');
    let backend: CudnnBackend | null = null;
    try {
      backend = new CudnnBackend(lib, path, (call, code, detail) => this.check(call, code, detail));
    } catch {
      backend = null; // a shim without the backend entry points: the legacy API alone
    }
    this.backend = backend;
  }

  /** The status's name and cuDNN's sentence for it (plus cuDNN's last error message when it has one). */
  describe(code: number): StatusDescription {
    const name = CUDNN_STATUS_NAMES[code] ?? `cudnnStatus_t ${code}`;
    let message = (this.fn.cudnnGetErrorString(code) as string | null) ?? name;
    if (this.lastError) {
      const buf = Buffer.alloc(512);
      this.lastError(buf, buf.length);
      const last = buf.subarray(0, Math.max(0, buf.indexOf(0))).toString('utf8');
      if (last) message += `; last error: ${last}`;
    }
    return { name, message };
  }
  /** Throws the typed CudaError for a nonzero status of `call`. */
  check(call: string, code: unknown, detail?: string): void {
    check('cudnn', (c) => this.describe(c), call, code, detail);
  }

  /** Needs a current CUDA context on the calling thread. */
  create(): CudnnHandle {
    const out: [CudnnHandle | null] = [null];
    this.check('cudnnCreate', this.fn.cudnnCreate(out));
    return out[0] as CudnnHandle;
  }
  /** Frees a handle (cuDNN synchronizes the device first). */
  destroy(handle: CudnnHandle): void { this.check('cudnnDestroy', this.fn.cudnnDestroy(handle)); }
  /** Makes every later call of the handle run on `stream` (the context's one stream). */
  setStream(handle: CudnnHandle, stream: CUstream | null): void { this.check('cudnnSetStream', this.fn.cudnnSetStream(handle, stream)); }

  /** A contiguous NCHW (or channels-last NHWC) tensor descriptor of cudnnDataType_t `dataType`. */
  tensor4d(dataType: number, [n, c, h, w]: readonly [number, number, number, number], channelsLast = false): CudnnTensorDescriptor {
    const out: [CudnnTensorDescriptor | null] = [null];
    this.check('cudnnCreateTensorDescriptor', this.fn.cudnnCreateTensorDescriptor(out));
    const d = out[0] as CudnnTensorDescriptor;
    this.guard(() => this.check('cudnnSetTensor4dDescriptorEx',
      channelsLast ? this.fn.cudnnSetTensor4dDescriptorEx(d, dataType, n, c, h, w, c * h * w, 1, w * c, c)
        : this.fn.cudnnSetTensor4dDescriptorEx(d, dataType, n, c, h, w, c * h * w, h * w, w, 1), `${n}x${c}x${h}x${w}`),
    () => this.fn.cudnnDestroyTensorDescriptor(d));
    return d;
  }
  /** An NCHW (KCRS) filter descriptor, or channels-last (KRSC): k filters of c channels, h x w. */
  filter4d(dataType: number, [k, c, h, w]: readonly [number, number, number, number], channelsLast = false): CudnnFilterDescriptor {
    const out: [CudnnFilterDescriptor | null] = [null];
    this.check('cudnnCreateFilterDescriptor', this.fn.cudnnCreateFilterDescriptor(out));
    const d = out[0] as CudnnFilterDescriptor;
    this.guard(() => this.check('cudnnSetFilter4dDescriptor',
      this.fn.cudnnSetFilter4dDescriptor(d, dataType, channelsLast ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, k, c, h, w), `${k}x${c}x${h}x${w}`),
    () => this.fn.cudnnDestroyFilterDescriptor(d));
    return d;
  }
  /** A 2-d cross-correlation descriptor with groups and a math type. */
  convolution2d(spec: {
    readonly pad: readonly [number, number]; readonly stride: readonly [number, number]; readonly dilation: readonly [number, number];
    readonly groups: number; readonly computeType: number; readonly mathType: number;
  }): CudnnConvolutionDescriptor {
    const out: [CudnnConvolutionDescriptor | null] = [null];
    this.check('cudnnCreateConvolutionDescriptor', this.fn.cudnnCreateConvolutionDescriptor(out));
    const d = out[0] as CudnnConvolutionDescriptor;
    const { pad, stride, dilation } = spec;
    this.guard(() => {
      this.check('cudnnSetConvolution2dDescriptor', this.fn.cudnnSetConvolution2dDescriptor(d, pad[0], pad[1], stride[0], stride[1],
        dilation[0], dilation[1], CUDNN_CROSS_CORRELATION, spec.computeType), `pad ${pad} stride ${stride} dilation ${dilation}`);
      this.check('cudnnSetConvolutionGroupCount', this.fn.cudnnSetConvolutionGroupCount(d, spec.groups), `${spec.groups} groups`);
      this.setMathType(d, spec.mathType);
    }, () => this.fn.cudnnDestroyConvolutionDescriptor(d));
    return d;
  }
  /** Sets the cudnnMathType_t of a convolution descriptor (CUDNN_FMA_MATH, CUDNN_TENSOR_OP_MATH, ...). */
  setMathType(conv: CudnnConvolutionDescriptor, mathType: number): void {
    this.check('cudnnSetConvolutionMathType', this.fn.cudnnSetConvolutionMathType(conv, mathType), `math type ${mathType}`);
  }
  /** Destroys the descriptors of a problem (those present: a partly made set is freed too). */
  destroyDescriptors(d: Partial<CudnnConvDescriptors>): void {
    if (d.x) this.check('cudnnDestroyTensorDescriptor', this.fn.cudnnDestroyTensorDescriptor(d.x));
    if (d.w) this.check('cudnnDestroyFilterDescriptor', this.fn.cudnnDestroyFilterDescriptor(d.w));
    if (d.y) this.check('cudnnDestroyTensorDescriptor', this.fn.cudnnDestroyTensorDescriptor(d.y));
    if (d.conv) this.check('cudnnDestroyConvolutionDescriptor', this.fn.cudnnDestroyConvolutionDescriptor(d.conv));
  }

  /**
   * The algorithms of one direction, best first: cuDNN's heuristic ranking (no timing, no GPU work), or with
   * `timed` cuDNN's own timing of each on the GPU (cudnnFind*Algorithm: it allocates its own buffers and
   * workspaces and waits for the GPU; PyTorch's torch.backends.cudnn.benchmark).
   */
  algorithms(handle: CudnnHandle, direction: CudnnConvDirection, d: CudnnConvDescriptors, timed = false): CudnnAlgoPerf[] {
    const count = { forward: CUDNN_CONVOLUTION_FWD_ALGO_COUNT, backwardData: CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
      backwardFilter: CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT }[direction];
    const buf = Buffer.alloc(count * CUDNN_ALGO_PERF_BYTES);
    const returned: [number] = [0];
    if (timed && direction === 'forward') {
      this.check('cudnnFindConvolutionForwardAlgorithm',
        this.fn.cudnnFindConvolutionForwardAlgorithm(handle, d.x, d.w, d.conv, d.y, count, returned, buf));
    } else if (timed && direction === 'backwardData') {
      this.check('cudnnFindConvolutionBackwardDataAlgorithm',
        this.fn.cudnnFindConvolutionBackwardDataAlgorithm(handle, d.w, d.y, d.conv, d.x, count, returned, buf));
    } else if (timed) {
      this.check('cudnnFindConvolutionBackwardFilterAlgorithm',
        this.fn.cudnnFindConvolutionBackwardFilterAlgorithm(handle, d.x, d.y, d.conv, d.w, count, returned, buf));
    } else if (direction === 'forward') {
      this.check('cudnnGetConvolutionForwardAlgorithm_v7',
        this.fn.cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x, d.w, d.conv, d.y, count, returned, buf));
    } else if (direction === 'backwardData') {
      this.check('cudnnGetConvolutionBackwardDataAlgorithm_v7',
        this.fn.cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d.w, d.y, d.conv, d.x, count, returned, buf));
    } else {
      this.check('cudnnGetConvolutionBackwardFilterAlgorithm_v7',
        this.fn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, d.x, d.y, d.conv, d.w, count, returned, buf));
    }
    return decodeAlgoPerfs(buf, Math.min(Math.max(returned[0], 0), count));
  }

  /** The workspace bytes `algo` needs for the problem. */
  workspaceSize(handle: CudnnHandle, direction: CudnnConvDirection, d: CudnnConvDescriptors, algo: number): number {
    const out: [number | bigint] = [0];
    if (direction === 'forward') {
      this.check('cudnnGetConvolutionForwardWorkspaceSize',
        this.fn.cudnnGetConvolutionForwardWorkspaceSize(handle, d.x, d.w, d.conv, d.y, algo, out), `algo ${algo}`);
    } else if (direction === 'backwardData') {
      this.check('cudnnGetConvolutionBackwardDataWorkspaceSize',
        this.fn.cudnnGetConvolutionBackwardDataWorkspaceSize(handle, d.w, d.y, d.conv, d.x, algo, out), `algo ${algo}`);
    } else {
      this.check('cudnnGetConvolutionBackwardFilterWorkspaceSize',
        this.fn.cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, d.x, d.y, d.conv, d.w, algo, out), `algo ${algo}`);
    }
    return toNumber(out[0]);
  }

  /**
   * Enqueues one convolution on the handle's stream: forward writes y from (x, w), backwardData writes
   * x (dx) from (w, y = dy), backwardFilter writes w (dw) from (x, y = dy); `beta` 0 overwrites.
   */
  convolve(handle: CudnnHandle, direction: CudnnConvDirection, d: CudnnConvDescriptors, algo: number, b: CudnnConvBuffers,
    dataType: number, alpha = 1, beta = 0): void {
    const scalar = (v: number): ArrayBufferView => dataType === CUDNN_DATA_TYPE.float64 ? Float64Array.of(v) : Float32Array.of(v);
    const [a, z] = [scalar(alpha), scalar(beta)];
    const detail = `algo ${algo}, workspace ${b.workspaceBytes} bytes`;
    if (direction === 'forward') {
      this.check('cudnnConvolutionForward', this.fn.cudnnConvolutionForward(handle, a, d.x, b.x, d.w, b.w, d.conv, algo,
        b.workspace, b.workspaceBytes, z, d.y, b.y), detail);
    } else if (direction === 'backwardData') {
      this.check('cudnnConvolutionBackwardData', this.fn.cudnnConvolutionBackwardData(handle, a, d.w, b.w, d.y, b.y, d.conv, algo,
        b.workspace, b.workspaceBytes, z, d.x, b.x), detail);
    } else {
      this.check('cudnnConvolutionBackwardFilter', this.fn.cudnnConvolutionBackwardFilter(handle, a, d.x, b.x, d.y, b.y, d.conv, algo,
        b.workspace, b.workspaceBytes, z, d.w, b.w), detail);
    }
  }

  /** Runs `body`; when it throws, runs `cleanup` (best effort) and rethrows, so a failed setter leaks no descriptor. */
  private guard(body: () => void, cleanup: () => unknown): void {
    try {
      body();
    } catch (e) {
      try { cleanup(); } catch { /* the first error is the one worth reporting */ }
      throw e;
    }
  }
}

/** Reads `count` cudnnConvolution*AlgoPerf_t entries (layout in {@link CudnnAlgoPerf}). */
export function decodeAlgoPerfs(buf: Buffer, count: number): CudnnAlgoPerf[] {
  const out: CudnnAlgoPerf[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * CUDNN_ALGO_PERF_BYTES;
    out.push({
      algo: buf.readInt32LE(o), status: buf.readInt32LE(o + 4), time: buf.readFloatLE(o + 8),
      memory: Number(buf.readBigUInt64LE(o + 16)), determinism: buf.readInt32LE(o + 24), mathType: buf.readInt32LE(o + 28),
    });
  }
  return out;
}

/**
 * Loads libcudnn once per distinct options. Throws CudaLibraryNotFoundError when absent, and
 * CudaLibraryVersionError when the library found is older than cuDNN 9.
 */
export const loadCudnn: (options?: FindLibraryOptions) => Cudnn = cachedLoader(CUDNN_LIBRARY, ({ lib, path }) => new Cudnn(lib, path));
