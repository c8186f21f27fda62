// The matrix-product libraries of one context: the cuBLAS handle, the cuBLASLt handle with its plans, and
// the one workspace both use. All three are made on first use and freed with the context.
//
// The workspace: without cublasSetWorkspace, cuBLAS draws scratch memory from a pool it made itself, which it
// cannot grow while a CUDA graph is captured, so captured GEMMs were limited to kernels that fit what the pool
// had (PyTorch hands cuBLAS a workspace of its own for this reason, 32 MiB on Hopper and 4 MiB before it:
// CUDABlas.cpp / CublasHandlePool.cpp). Here the context allocates one buffer outside every graph's pool,
// sets it on the cuBLAS handle once, after cublasSetStream (which resets it), and passes it to every
// cuBLASLt matmul. Everything runs on the context's one stream, so the two libraries never use it at once.
// A graph bakes the workspace's address in, so a replaced workspace is kept until the context closes.
import { CUBLAS_STATUS_NOT_SUPPORTED, CudaError } from './ffi/errors.js';
import type { Cublas } from './ffi/cublas.js';
import type { CublasLt } from './ffi/cublaslt.js';
import type { CublasHandle, CublasLtHandle, CUstream } from './ffi/types.js';
import type { Block } from './allocator.js';
import { destroyLtDescriptors, ltPlanKey, planLtMatmul, runLtMatmul, type LtOperands, type LtPlan, type LtProblem } from './lt-plans.js';
import { findCublas, findCublasLt } from './libraries.js';
import { config } from '../config.js';

const MiB = 2 ** 20;

/** cuBLAS's recommended workspace (its cublasSetWorkspace documentation): 32 MiB on Hopper (sm_90) and later, 4 MiB before. */
export function defaultCublasWorkspaceBytes(arch: string): number {
  const cc = Number(arch.replace(/^sm_/, ''));
  return Number.isFinite(cc) && cc >= 90 ? 32 * MiB : 4 * MiB;
}

/** Checks a workspace size given by a caller: a non-negative whole number of bytes. */
export function checkWorkspaceBytes(bytes: unknown, what: string): number {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`${what}: the cuBLAS workspace must be a whole number of bytes >= 0, got ${String(bytes)}`);
  }
  return bytes;
}

/** The libraries a CUDA device can run matrix products through. */
export const GEMM_LIBRARIES = ['cublaslt', 'cublas'] as const;
export type GemmLibrary = (typeof GEMM_LIBRARIES)[number];

/**
 * The library a device asks for: its `gemm` option, else SYNK_CUDA_GEMM, else cuBLASLt; `explicit` when the
 * option or the variable named it (then a cuBLASLt that is not found is worth a warning).
 */
export function gemmLibraryChoice(option: unknown, fromEnv: GemmLibrary | undefined): { library: GemmLibrary; explicit: boolean } {
  if (option !== undefined && !GEMM_LIBRARIES.includes(option as GemmLibrary)) {
    throw new RangeError(`CudaDevice: gemm must be one of ${GEMM_LIBRARIES.map((l) => `'${l}'`).join(', ')}, got ${JSON.stringify(option)}`);
  }
  const named = (option as GemmLibrary | undefined) ?? fromEnv;
  return { library: named ?? 'cublaslt', explicit: named !== undefined };
}

/** What the libraries need from their context. */
export interface BlasHost {
  readonly stream: CUstream;
  /** Device memory outside every CUDA graph's pool, freed with the context (256-byte aligned: a driver allocation). */
  allocateOutsideGraphs(bytes: number): Block;
}

/** Where the libraries come from (the normal search; tests give stand-ins). */
export interface BlasLoaders {
  readonly cublas: () => Cublas;
  readonly cublasLt: () => CublasLt;
}

export class BlasLibraries {
  private blas: { lib: Cublas; handle: CublasHandle } | null = null;
  private lt: { lib: CublasLt; handle: CublasLtHandle | null } | null = null;
  /** cuBLASLt plans by ltPlanKey; null: cuBLASLt has none for that problem (cuBLAS runs it). */
  private readonly plans = new Map<string, LtPlan | null>();
  private workspace: Block | null = null;
  /** Workspaces replaced by setWorkspaceBytes: kept, since captured graphs may still use them. */
  private readonly retired: Block[] = [];
  private bytes: number;

  constructor(
    private readonly host: BlasHost,
    arch: string,
    private readonly loaders: BlasLoaders = { cublas: findCublas, cublasLt: findCublasLt },
    workspaceBytes: number | undefined = config().cublasWorkspaceBytes,
  ) {
    this.bytes = workspaceBytes ?? defaultCublasWorkspaceBytes(arch);
  }

  /** The workspace size in bytes (0: cuBLAS's own pool, and no workspace for cuBLASLt). */
  get workspaceBytes(): number {
    return this.bytes;
  }

  /** The workspace (allocated on first use; a null pointer when its size is 0). */
  private workspaceNow(): { ptr: bigint; bytes: number } {
    if (this.bytes === 0) return { ptr: 0n, bytes: 0 };
    this.workspace ??= this.host.allocateOutsideGraphs(this.bytes);
    return { ptr: this.workspace.ptr, bytes: this.bytes };
  }

  /** cuBLAS, loaded, bound to the stream and given the workspace on first use. */
  cublas(): { lib: Cublas; handle: CublasHandle } {
    if (!this.blas) {
      const lib = this.loaders.cublas();
      const handle = lib.create();
      try {
        lib.setStream(handle, this.host.stream);
        const ws = this.workspaceNow();
        if (ws.bytes > 0) lib.setWorkspace(handle, ws.ptr, ws.bytes);
      } catch (e) {
        lib.destroy(handle);
        throw e;
      }
      this.blas = { lib, handle };
    }
    return this.blas;
  }

  /**
   * Changes the workspace size (tools and benchmarks: A/B of the workspace). Not while a graph is being captured.
   * The old buffer stays allocated until the context closes; cuBLASLt plans are keyed by the size, so new ones are made.
   */
  setWorkspaceBytes(bytes: number): void {
    checkWorkspaceBytes(bytes, 'setCublasWorkspace');
    if (bytes === this.bytes) return;
    if (this.workspace) this.retired.push(this.workspace);
    this.workspace = null;
    this.bytes = bytes;
    if (!this.blas) return;
    const { lib, handle } = this.blas;
    lib.setStream(handle, this.host.stream); // back to cuBLAS's own pool
    const ws = this.workspaceNow();
    if (ws.bytes > 0) lib.setWorkspace(handle, ws.ptr, ws.bytes);
  }

  /** Loads cuBLASLt (a host-only step; the handle comes on first use). Throws CudaLibraryNotFoundError when it is absent. */
  loadCublasLt(): CublasLt {
    this.lt ??= { lib: this.loaders.cublasLt(), handle: null };
    return this.lt.lib;
  }

  /** Whether cuBLASLt was loaded. */
  get hasCublasLt(): boolean {
    return this.lt !== null;
  }

  /** How many problems cuBLASLt has plans for (those it declined not counted): for tests and tools. */
  get ltPlanCount(): number {
    let n = 0;
    for (const p of this.plans.values()) if (p) n++;
    return n;
  }

  /**
   * Enqueues a product through cuBLASLt with its cached plan (made on first use). False, with nothing enqueued,
   * when cuBLASLt was not loaded or has no algorithm for the problem: the caller runs it through cuBLAS then.
   */
  ltMatmul(problem: LtProblem, operands: LtOperands): boolean {
    const lt = this.lt;
    if (!lt) return false;
    lt.handle ??= lt.lib.create();
    const key = ltPlanKey(problem, this.bytes);
    let plan = this.plans.get(key);
    if (plan === undefined) {
      plan = planLtMatmul(lt.lib, lt.handle, problem, this.bytes);
      this.plans.set(key, plan);
    }
    if (!plan) return false;
    try {
      runLtMatmul(lt.lib, lt.handle, plan, operands, this.workspaceNow(), this.host.stream);
      return true;
    } catch (e) {
      // An algorithm the heuristic offered that will not run (checked before any work is queued): cuBLAS from now on.
      if (!(e instanceof CudaError) || e.code !== CUBLAS_STATUS_NOT_SUPPORTED) throw e;
      this.plans.set(key, null);
      destroyLtDescriptors(lt.lib, plan);
      return false;
    }
  }

  /** Frees the handles and plans (the context frees the workspaces with the rest of its memory). */
  close(): void {
    const lt = this.lt;
    if (lt) {
      for (const plan of this.plans.values()) if (plan) destroyLtDescriptors(lt.lib, plan);
      this.plans.clear();
      if (lt.handle) lt.lib.destroy(lt.handle);
      lt.handle = null;
    }
    if (this.blas) this.blas.lib.destroy(this.blas.handle);
    this.blas = null;
  }
}
