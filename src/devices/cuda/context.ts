import { existsSync } from 'node:fs';
// Per-thread state of one GPU: the primary context (current on this thread), one stream on which
// every copy, kernel and GEMM is ordered, the caching allocator, pinned staging buffers, the
// kernel cache and (on first use) a cuBLAS handle and, when a device asked for cuDNN, a cuDNN handle with
// the convolution plans made for it. Several CudaDevice objects for the same index
// in one thread share it (refcounted); worker threads each make their own.
import { CachingAllocator } from './allocator.js';
import { config } from '../config.js';
import { CudaArray } from './cuda-array.js';
import { storageBytes, type Layout, type Storage } from './storage.js';
import { loadCudaDriver, CU_STREAM_NON_BLOCKING, type CudaDriver, type Dim3 } from './ffi/driver.js';
import type { Cublas } from './ffi/cublas.js';
import type { CublasLt } from './ffi/cublaslt.js';
import { findCudnn, type CudnnSearch } from './libraries.js';
import { BlasLibraries } from './blas.js';
import type { LtOperands, LtProblem } from './lt-plans.js';
import type { Cudnn } from './ffi/cudnn.js';
import { destroyCudnnPlan, planCudnnConv, cudnnPlanKey, type CudnnConvPlan, type CudnnConvProblem } from './cudnn-conv.js';
import type { GraphConvTimer } from './cudnn-graph-conv.js';
import type { CublasHandle, CudnnHandle, CUcontext, CUfunction, CUstream } from './ffi/types.js';
import type { KernelArg } from './ffi/kernel-params.js';
import { KernelCache } from './kernel-cache.js';
import { Staging } from './staging.js';
import type { DType } from '../../tensor/dtype.js';
import { sizeOf, type NDArray } from '../../tensor/ndarray.js';

export interface ContextOptions {
  /** Kernel cache folder; null disables the disk cache. */
  readonly cacheDir: string | null;
}

export class CudaContext {
  readonly cu: CudaDriver;
  readonly index: number;
  readonly name: string;
  readonly arch: string;
  readonly multiprocessors: number;
  readonly stream: CUstream;
  readonly allocator: CachingAllocator;
  readonly staging: Staging;
  readonly kernels: KernelCache;
  private readonly ctx: CUcontext;
  private readonly blas: BlasLibraries;
  private dnnLib: Cudnn | null = null;
  private dnnHandle: CudnnHandle | null = null;
  /** cuDNN convolution plans by cudnnPlanKey; null: cuDNN has no algorithm for it within the limit (im2col runs). */
  private readonly plans = new Map<string, CudnnConvPlan | null>();
  private refs = 0;
  private closed = false;

  private constructor(index: number, options: ContextOptions) {
    const cu = loadCudaDriver();
    cu.init(0);
    const count = cu.deviceCount();
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(`cuda: no device ${index}: this machine has ${count} CUDA device(s) (valid indices 0..${count - 1})`);
    }
    const dev = cu.deviceGet(index);
    this.cu = cu;
    this.index = index;
    this.ctx = cu.primaryCtxRetain(dev);
    cu.ctxSetCurrent(this.ctx);
    const cc = cu.computeCapability(dev);
    this.arch = `sm_${cc.major}${cc.minor}`;
    this.name = cu.deviceName(dev);
    this.multiprocessors = cu.multiprocessorCount(dev);
    this.stream = cu.streamCreate(CU_STREAM_NON_BLOCKING);
    this.allocator = new CachingAllocator({
      memAlloc: (bytes) => cu.memAlloc(bytes),
      memFree: (ptr) => cu.memFree(ptr),
      memGetInfo: () => cu.memGetInfo(),
    }, false, undefined, null, config().cudaAllocFit);
    this.staging = new Staging(cu, this.stream);
    this.kernels = new KernelCache(cu, this.arch, options.cacheDir);
    const allocateOutsideGraphs = (bytes: number) => this.outsideGraphs(() => this.allocator.allocate(bytes));
    this.blas = new BlasLibraries({ stream: this.stream, allocateOutsideGraphs }, this.arch);
  }

  /** Runs `f` with allocations from the context's own allocator, never a graph's private pool (for memory that outlives every graph). */
  private outsideGraphs<T>(f: () => T): T {
    const pool = this.allocator.divert(null);
    try {
      return f();
    } finally {
      this.allocator.divert(pool);
    }
  }

  private static readonly live = new Map<string, CudaContext>();

  /** The shared context of a device index in this thread (created on first use). */
  static acquire(index: number, options: ContextOptions): CudaContext {
    const key = `${index}\0${options.cacheDir ?? ''}`;
    let c = CudaContext.live.get(key);
    if (!c || c.closed) {
      c = new CudaContext(index, options);
      CudaContext.live.set(key, c);
    }
    c.refs++;
    c.makeCurrent();
    return c;
  }

  makeCurrent(): void {
    this.cu.ctxSetCurrent(this.ctx);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** cuBLAS, loaded, bound to this context's stream and given the context's workspace on first use. */
  cublas(): { lib: Cublas; handle: CublasHandle } {
    return this.blas.cublas();
  }

  /** Loads cuBLASLt for this context (host only). Throws CudaLibraryNotFoundError when it is absent. */
  loadCublasLt(): CublasLt {
    return this.blas.loadCublasLt();
  }

  /** Whether cuBLASLt was loaded for this context. */
  get hasCublasLt(): boolean {
    return this.blas.hasCublasLt;
  }

  /** How many products cuBLASLt has plans for: for tests and tools. */
  get cublasLtPlanCount(): number {
    return this.blas.ltPlanCount;
  }

  /**
   * Enqueues a product through cuBLASLt (its plan made on first use); false, with nothing enqueued, when cuBLASLt
   * is not loaded or has no algorithm for it, and cuBLAS should run it.
   */
  ltMatmul(problem: LtProblem, operands: LtOperands): boolean {
    return this.blas.ltMatmul(problem, operands);
  }

  /** Bytes of the workspace cuBLAS and cuBLASLt use (SYNK_CUBLAS_WORKSPACE_BYTES, else 32 MiB on sm_90+ and 4 MiB before). */
  get cublasWorkspaceBytes(): number {
    return this.blas.workspaceBytes;
  }

  /** Changes the cuBLAS/cuBLASLt workspace (benchmarks; 0: cuBLAS's own pool). Never while a graph is captured. */
  setCublasWorkspace(bytes: number): void {
    this.blas.setWorkspaceBytes(bytes);
  }

  /**
   * Loads cuDNN for this context (a host-only step; the handle comes on first use). The first search of
   * a context wins: devices of one GPU in one thread share it. Throws CudaLibraryNotFoundError naming every
   * place looked, or CudaLibraryVersionError for a cuDNN older than 9.
   */
  loadCudnn(search: CudnnSearch = {}): Cudnn {
    const loaded = this.dnnLib;
    if (loaded && search.path !== undefined && search.path !== loaded.path) {
      // One cuDNN per process: another explicit file is never silently replaced by the one in use. A file that
      // is not there gets the usual not-found error (findCudnn throws it); one that is there is refused.
      if (!existsSync(search.path)) return findCudnn(search);
      throw new Error(`CudaDevice: cudnnPath ${search.path}: this process already uses cuDNN from ${loaded.path}, and one process holds one cuDNN`);
    }
    this.dnnLib ??= findCudnn(search);
    return this.dnnLib;
  }

  /** Whether cuDNN was loaded for this context. */
  get hasCudnn(): boolean {
    return this.dnnLib !== null;
  }

  /** cuDNN and its handle, bound to this context's stream on first use (after {@link CudaContext.loadCudnn}). */
  cudnn(): { lib: Cudnn; handle: CudnnHandle } {
    const lib = this.dnnLib;
    if (!lib) throw new Error('internal: cuDNN was not loaded for this context');
    if (!this.dnnHandle) {
      const handle = lib.create();
      try {
        lib.setStream(handle, this.stream);
      } catch (e) {
        lib.destroy(handle);
        throw e;
      }
      this.dnnHandle = handle;
    }
    return { lib, handle: this.dnnHandle };
  }

  /** How many convolution problems cuDNN has plans for (those it declined not counted): for tests and tools. */
  get cudnnPlanCount(): number {
    let n = 0;
    for (const p of this.plans.values()) if (p) n++;
    return n;
  }

  /**
   * The cached cuDNN plan of a convolution (made on first use), or null when cuDNN has none within `limit`.
   * A timed problem (benchmark) is timed on first use with `timer` (the caller's buffers and stream).
   */
  cudnnPlan(problem: CudnnConvProblem, limit: number, timer?: GraphConvTimer): CudnnConvPlan | null {
    const key = cudnnPlanKey(problem, limit);
    let plan = this.plans.get(key);
    if (plan === undefined) {
      const { lib, handle } = this.cudnn();
      plan = planCudnnConv(lib, handle, problem, limit, timer);
      this.plans.set(key, plan);
    }
    return plan;
  }

  /** Drops a plan cuDNN failed to run as not supported: that problem runs as im2col from now on. */
  declineCudnnPlan(plan: CudnnConvPlan): void {
    this.plans.set(plan.key, null);
    if (this.dnnLib) destroyCudnnPlan(this.dnnLib, plan);
  }

  /** A new uninitialised array (held as `storage`, by default its dtype's own type, in `layout`, by default NCHW). */
  alloc(dtype: DType, shape: readonly number[], hostCopy?: NDArray, storage: Storage = dtype, layout: Layout = 'nchw'): CudaArray {
    const block = this.allocator.allocate(sizeOf(shape) * storageBytes(storage));
    return new CudaArray(dtype, shape, block, this, hostCopy, storage, layout);
  }

  private flagArray: CudaArray | null = null;

  /** Four int32 words on the device where kernels report a failed check (see RunState.deviceCheck); kept for the context's life. */
  errorFlag(): CudaArray {
    // never from a graph's private pool: it outlives every graph
    this.flagArray ??= this.outsideGraphs(() => this.alloc('int32', [4]));
    return this.flagArray;
  }

  /** Enqueues a kernel on the stream. */
  launch(fn: CUfunction, grid: Dim3, block: Dim3, args: readonly KernelArg[], sharedMemBytes = 0): void {
    this.cu.launchKernel(fn, grid, block, args, { stream: this.stream, sharedMemBytes });
  }

  /** Blocks for a grid-stride loop over n items with 256 threads a block. */
  gridFor(n: number, perThread = 1): number {
    return Math.max(1, Math.min(Math.ceil(n / (256 * perThread)), this.multiprocessors * 32));
  }

  synchronize(): void {
    this.staging.synchronized();
  }

  /** Drops one user; the last one frees everything and releases the primary context. */
  release(): void {
    if (this.closed || --this.refs > 0) return;
    this.closed = true;
    try {
      this.makeCurrent();
      this.cu.streamSynchronize(this.stream);
    } finally {
      this.blas.close();
      this.releaseCudnn();
      this.kernels.close();
      this.staging.close();
      this.allocator.freeAll();
      this.cu.streamDestroy(this.stream);
      this.cu.primaryCtxRelease(this.cu.deviceGet(this.index));
    }
  }

  private releaseCudnn(): void {
    const lib = this.dnnLib;
    if (!lib) return;
    for (const plan of this.plans.values()) if (plan) destroyCudnnPlan(lib, plan);
    this.plans.clear();
    if (this.dnnHandle) lib.destroy(this.dnnHandle);
    this.dnnHandle = null;
  }
}
