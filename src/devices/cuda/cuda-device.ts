// The CUDA device: the Device interface over one GPU. Arrays live in device memory (a caching
// allocator), programs compile to generated NVRTC kernels and cuBLAS calls (see lowering-table.ts),
// and all work is queued on one stream; only download() waits.
import type { NDArray } from '../../tensor/ndarray.js';
import type { Program } from '../../compile/program.js';
import type { Device, DeviceArray, Executable } from '../device.js';
import { CudaContext } from './context.js';
import { CudaArray } from './cuda-array.js';
import { CudaExecutable, downloadArray, uploadArray } from './executable.js';
import { defaultKernelCacheDir } from './kernel-cache.js';
import { lowerProgram } from './lower-program.js';
import { MATMUL_PRECISIONS, type MatmulPrecision } from '../registration.js';
import { programPrecision, type Precision } from '../../compile/precision.js';
import type { Rows } from '../rows.js';
import { takeDeviceRows } from './rows.js';
import { cudaGraphsEnabled } from './graph.js';
import { flushProfile, profiling } from './profile.js';
import type { CUfunction } from './ffi/types.js';
import type { AllocatorStats } from './allocator.js';
import type { KernelCacheStats } from './kernel-cache.js';
import { CudaLibraryNotFoundError } from './ffi/errors.js';
import { config } from '../config.js';
import { gemmLibraryChoice, type GemmLibrary } from './blas.js';

/** Options of {@link CudaDevice}. */
export interface CudaDeviceOptions {
  /** The GPU's index (default 0). */
  readonly index?: number;
  /** Let float32 matrix products use TF32 tensor cores (about 3e-4 relative error; default false): matmulPrecision 'high'. */
  readonly tf32?: boolean;
  /**
   * float32 matrix products (matmul, dot, conv2d), named as PyTorch's
   * torch.set_float32_matmul_precision: 'highest' float32 (default), 'high' TF32 tensor cores
   * (about 3e-4 relative error), 'medium' bfloat16 operands with float32 accumulation for matmul
   * and dot (about 3e-3; convolutions stay TF32, as PyTorch's setting leaves them alone).
   * Wins over `tf32`.
   */
  readonly matmulPrecision?: MatmulPrecision;
  /** Folder of the compiled-kernel cache (default $SYNK_KERNEL_CACHE or <tmpdir>/synkhronos-kernels); null: none. */
  readonly cacheDir?: string | null;
  /**
   * Replay each compiled function as a CUDA graph from its second call with the same shapes (default
   * true; SYNK_CUDA_GRAPHS=0 turns it off): one launch instead of one per kernel. Programs that
   * cannot be recorded (random draws, host reads of argument values, dynamic shapes) run as before.
   */
  readonly graphs?: boolean;
  /**
   * Run conv2d and its two gradients through cuDNN 9 (libcudnn.so.9) where it takes them: NCHW float32 and
   * float64 with stride, padding, dilation and groups, the algorithm chosen by cuDNN's heuristics per
   * shape within a workspace limit, TF32 tensor cores under matmulPrecision 'high' or 'medium'. Default:
   * on where cuDNN 9 is found (SYNK_CUDNN=0 turns the default off), else im2col + cuBLAS, silently. Asked for
   * explicitly (true) and not found, the device warns once and uses im2col; a cuDNN older than 9 is an error
   * (CudaLibraryVersionError), and so is a cudnnPath that does not load. false: always im2col + cuBLAS.
   * See {@link CudaDeviceOptions.cudnnPath} for where it is looked for.
   */
  readonly cudnn?: boolean;
  /**
   * The libcudnn file to load (only that one is tried). Without it: $SYNK_CUDNN_LIB_DIRS, $CUDA_PATH /
   * $CUDA_HOME, the CUDA toolkits and system folders, a Python environment's site-packages/nvidia/cudnn/lib,
   * then the system loader. The first device of a GPU in a thread decides which cuDNN that thread uses.
   */
  readonly cudnnPath?: string;
  /**
   * With cuDNN: choose each convolution's algorithm by running every candidate once per shape on the GPU
   * (cuDNN's cudnnFind*, as torch.backends.cudnn.benchmark), instead of cuDNN's heuristics. The first call
   * of each new shape is slower (milliseconds per convolution); later ones may be faster. Default false.
   */
  readonly cudnnBenchmark?: boolean;
  /**
   * Under a function's 'bf16' precision policy, hold activations and their gradients in bfloat16 on the GPU,
   * as torch.autocast does (statistics, filter gradients, parameters, their updates and every result stay
   * float32). Default true (SYNK_BFLOAT_ACTIVATIONS=0 turns the default off): convolutions then read and write
   * bfloat16 directly and the memory-bound work around them moves half the bytes.
   */
  readonly bf16Activations?: boolean;
  /**
   * The library float32 and bfloat16 matrix products (matmul, dot, the im2col convolutions) run through:
   * 'cublaslt' (the default; SYNK_CUDA_GEMM sets it) calls cublasLtMatmul with a plan made once per shape,
   * transposes, dtype and precision (the algorithm from cuBLASLt's heuristic), and cuBLAS where cuBLASLt has
   * none; 'cublas' always calls cuBLAS (cublasSgemm / cublasGemmEx). float64 products always go through cuBLAS.
   * Where libcublasLt is not found cuBLAS is used (with a warning when cuBLASLt was asked for by name). Both
   * share the context's workspace (SYNK_CUBLAS_WORKSPACE_BYTES; 32 MiB on sm_90 and later, 4 MiB before).
   */
  readonly gemm?: GemmLibrary;
}

export { MATMUL_PRECISIONS, type MatmulPrecision };

/**
 * A CUDA GPU as a device: programs are lowered to kernels generated from the op table and compiled with NVRTC (cached on
 * disk), matrix products and convolutions go through cuBLAS, and shared variables stay resident on the GPU between calls.
 * Creating one loads the CUDA libraries and makes a context on GPU `index`; {@link cudaAvailable} says first whether
 * that can work.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * import { CudaDevice, cudaAvailable } from 'synkhronos/cuda';
 * if (cudaAvailable().ok) {
 *   const device = new CudaDevice({ index: 0, matmulPrecision: 'high' });
 *   const x = T.matrix('x');
 *   const f = T.fn({ inputs: [x], outputs: T.sum(x.dot(x.T)), device });
 *   console.log((f([[1, 2], [3, 4]]) as T.NDArray).item()); // 30
 *   device.close();
 * }
 * ```
 */
export class CudaDevice implements Device {
  readonly kind = 'cuda' as const;
  /** Shared variables stay resident on the GPU between calls (see {@link Device.keepsSharedResident}). */
  readonly keepsSharedResident = true;
  readonly name: string;
  readonly tf32: boolean;
  readonly matmulPrecision: MatmulPrecision;
  private readonly ctx: CudaContext;
  private closed = false;

  constructor(options: CudaDeviceOptions = {}) {
    if (options.cudnn !== undefined && typeof options.cudnn !== 'boolean') {
      throw new TypeError(`CudaDevice: cudnn must be a boolean, got ${typeof options.cudnn}`);
    }
    if (options.cudnnBenchmark !== undefined && typeof options.cudnnBenchmark !== 'boolean') {
      throw new TypeError(`CudaDevice: cudnnBenchmark must be a boolean, got ${typeof options.cudnnBenchmark}`);
    }
    if (options.bf16Activations !== undefined && typeof options.bf16Activations !== 'boolean') {
      throw new TypeError(`CudaDevice: bf16Activations must be a boolean, got ${typeof options.bf16Activations}`);
    }
    if (options.cudnnPath !== undefined && typeof options.cudnnPath !== 'string') {
      throw new TypeError(`CudaDevice: cudnnPath must be a path (a string), got ${typeof options.cudnnPath}`);
    }
    this.ctx = CudaContext.acquire(options.index ?? 0, { cacheDir: options.cacheDir === undefined ? defaultKernelCacheDir() : options.cacheDir });
    const precision = options.matmulPrecision ?? (options.tf32 ? 'high' : 'highest');
    if (!MATMUL_PRECISIONS.includes(precision)) {
      throw new RangeError(`CudaDevice: matmulPrecision must be one of ${MATMUL_PRECISIONS.join(', ')}, got ${JSON.stringify(precision)}`);
    }
    this.matmulPrecision = precision;
    this.tf32 = precision === 'high';
    this.name = `cuda:${this.ctx.index} ${this.ctx.name}`;
    this.graphs = options.graphs ?? cudaGraphsEnabled();
    const wantCudnn = options.cudnn ?? (options.cudnnPath !== undefined || config().cudnn);
    this.cudnn = wantCudnn && this.openCudnn(options.cudnnPath, options.cudnn === true);
    this.cudnnBenchmark = options.cudnnBenchmark === true;
    this.bf16Activations = options.bf16Activations ?? config().bf16Activations;
    const choice = gemmLibraryChoice(options.gemm, config().cudaGemm);
    this.gemm = choice.library === 'cublaslt' && this.openCublasLt(choice.explicit) ? 'cublaslt' : 'cublas';
  }

  /** The library matrix products run through (see {@link CudaDeviceOptions.gemm}): 'cublas' where cuBLASLt was not found. */
  readonly gemm: GemmLibrary;

  /** Loads cuBLASLt: false when it is not found (one warning where it was asked for by name); other failures throw. */
  private openCublasLt(explicit: boolean): boolean {
    try {
      this.ctx.loadCublasLt();
      return true;
    } catch (e) {
      if (!(e instanceof CudaLibraryNotFoundError)) {
        this.ctx.release();
        throw e;
      }
      if (explicit) warnOnce('cublasLt', `CudaDevice: cuBLASLt was asked for but not found; matrix products use cuBLAS.\n${e.message}`, 'SYNK_NO_CUBLASLT');
      return false;
    }
  }

  /** Whether activations are held in bfloat16 under the 'bf16' policy ({@link CudaDeviceOptions.bf16Activations}). */
  readonly bf16Activations: boolean;

  /** Whether convolutions run through cuDNN (the default where it is found; see {@link CudaDeviceOptions.cudnn}). */
  readonly cudnn: boolean;
  /** Whether cuDNN's algorithms are chosen by timing ({@link CudaDeviceOptions.cudnnBenchmark}). */
  readonly cudnnBenchmark: boolean;

  /**
   * Loads cuDNN: true when loaded, false when not found by the search (one warning where it was asked for). A cudnnPath that does
   * not load, or a cuDNN older than 9, throws (releasing the context): an explicit choice is never replaced.
   */
  private openCudnn(path: string | undefined, explicit: boolean): boolean {
    try {
      this.ctx.loadCudnn(path !== undefined ? { path } : {});
      return true;
    } catch (e) {
      if (!(e instanceof CudaLibraryNotFoundError) || path !== undefined) {
        this.ctx.release();
        throw e;
      }
      if (explicit) warnOnce('cudnn', `CudaDevice: cudnn was asked for but not found; convolutions use im2col + cuBLAS.\n${e.message}`, 'SYNK_NO_CUDNN');
      return false;
    }
  }

  /** Whether compiled functions replay as CUDA graphs (see {@link CudaDeviceOptions.graphs}). */
  readonly graphs: boolean;

  /** The GPU architecture kernels are built for, e.g. 'sm_90'. */
  get arch(): string {
    return this.ctx.arch;
  }

  /** The per-thread GPU state (driver, stream, allocator, cuBLAS), for benchmarks and tools. */
  get context(): CudaContext {
    return this.live();
  }

  private live(): CudaContext {
    if (this.closed) throw new Error(`${this.name}: the device is closed`);
    this.ctx.makeCurrent();
    return this.ctx;
  }

  upload(value: NDArray): CudaArray {
    return uploadArray(this.live(), value);
  }

  download(value: DeviceArray): NDArray {
    if (!(value instanceof CudaArray) || value.owner !== this.ctx) throw new TypeError(`${this.name}: download of an array that is not on this device`);
    return downloadArray(this.live(), value);
  }

  free(value: DeviceArray): void {
    if (value instanceof CudaArray) value.release();
  }

  /**
   * Rows of a device array along axis 0, as a new device array: a `Rows` selection (devices/rows.ts), or (the
   * older forms, still taken) a `{ start, stop }` range or an Int32Array of indices.
   */
  takeRows(value: DeviceArray, rows: Rows | { start: number; stop: number } | Int32Array, what = 'takeRows'): CudaArray {
    if (!(value instanceof CudaArray) || value.owner !== this.ctx) throw new TypeError(`${this.name}: ${what}: the array is not on this device`);
    const selection: Rows = rows instanceof Int32Array ? { kind: 'list', indices: rows }
      : 'kind' in rows ? rows : { kind: 'range', start: rows.start, stop: rows.stop };
    return takeDeviceRows(this.live(), value, selection, what);
  }

  /**
   * 'fp32', and 'bf16' on GPUs with bfloat16 tensor cores (compute capability 8.0 and later: A100, H100,
   * H200, ...): the marked products run as bfloat16 cuBLAS GEMMs (CUDA_R_16BF operands, CUBLAS_COMPUTE_32F,
   * float32 results) and, with cudnn, as cuDNN convolutions of bfloat16 tensors with float accumulation.
   */
  supportsPrecision(precision: Precision): true | string {
    if (precision === 'fp32') return true;
    const cc = Number(this.ctx.arch.slice(3));
    return cc >= 80 ? true : `bfloat16 tensor cores need compute capability 8.0 or later, this GPU is ${this.ctx.arch}`;
  }

  compile(program: Program): Executable {
    const ctx = this.live();
    const precision = programPrecision(program);
    const support = this.supportsPrecision(precision);
    if (support !== true) throw new RangeError(`${this.name}: precision '${precision}' (the program's policy) is not supported: ${support}`);
    const lowered = lowerProgram(program, { cudnn: this.cudnn, cudnnBenchmark: this.cudnnBenchmark, bf16Activations: this.bf16Activations });
    const fns = new Map<string, CUfunction>();
    for (const unit of lowered.units) for (const [name, fn] of ctx.kernels.load(unit)) fns.set(name, fn);
    return new CudaExecutable(ctx, program, lowered.runners, fns, { precision: this.matmulPrecision, cublasLt: this.gemm === 'cublaslt' }, this.graphs,
      lowered.storage, lowered.conversions);
  }

  synchronize(): void {
    this.live().synchronize();
  }

  /**
   * Page-locks a host array's buffer (e.g. shared-memory Data) so uploads from it are direct DMA.
   * Uploads from registered memory are truly asynchronous: change it only after the next
   * synchronize() or download().
   */
  registerHost(view: ArrayBufferView): void {
    this.live().staging.registerHost(view);
  }

  /** Undoes {@link CudaDevice.registerHost}. */
  unregisterHost(view: ArrayBufferView): void {
    this.live().staging.unregisterHost(view);
  }

  /** Memory and kernel-cache counters. */
  stats(): { memory: AllocatorStats; kernels: KernelCacheStats } {
    return { memory: this.ctx.allocator.stats, kernels: { ...this.ctx.kernels.stats } };
  }

  /** Returns the allocator's cached blocks to the driver. */
  trim(): number {
    return this.live().allocator.trim();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A worker thread may never see 'exit': its profile is printed when its device closes.
    if (profiling) flushProfile();
    this.ctx.release();
  }
}

const warned = new Set<string>();
/** One warning per missing library and process. */
function warnOnce(library: 'cudnn' | 'cublasLt', message: string, code: string): void {
  if (warned.has(library)) return;
  warned.add(library);
  process.emitWarning(message, { type: library === 'cudnn' ? 'SynkCudnnWarning' : 'SynkCublasLtWarning', code });
}
