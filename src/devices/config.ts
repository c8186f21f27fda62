// Every environment switch of synkhronos, read in this one module, under one prefix: SYNK_. The
// names of earlier releases (SYNKHRONOS_*) still work; the main thread warns once about each one
// set. Workers stay quiet (they inherit the controller's environment, which warned already).
// README.md ("Environment switches") documents the table below.
import { isMainThread } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment switches, as one typed object. */
export interface SynkConfig {
  /** SYNK_BLAS: load exactly this CBLAS library file for the CPU device (undefined: search the usual names). */
  readonly blasPath: string | undefined;
  /** SYNK_KERNEL_CACHE: folder of the compiled-kernel and CPU-probe caches (default <tmpdir>/synkhronos-kernels). */
  readonly kernelCacheDir: string;
  /** SYNK_CUDA_LIB_DIRS: extra folders (colon-separated) searched for the CUDA libraries and NCCL. */
  readonly cudaLibDirs: readonly string[];
  /** SYNK_CUDNN_LIB_DIRS: extra folders (colon-separated) searched for libcudnn.so.9, before the standard places. */
  readonly cudnnLibDirs: readonly string[];
  /** SYNK_CUDNN=0: CUDA devices run convolutions through im2col + cuBLAS, not cuDNN, unless a device asks for cuDNN. */
  readonly cudnn: boolean;
  /** SYNK_CUDNN_API: 'graph' (default: cuDNN's backend API and engine heuristics) or 'legacy' (cudnnGet*Algorithm_v7 only). */
  readonly cudnnApi: 'graph' | 'legacy';
  /**
   * SYNK_CUDA_PROFILE: per-op time, printed per thread at exit. '1' ('wall'): every step waits for the stream and its
   * wall time counts; 'gpu': two events around every step, read at the end of each run (no wait per step). Default off.
   */
  readonly cudaProfile: 'off' | 'wall' | 'gpu';
  /** SYNK_CUDA_GRAPHS=0: no CUDA graphs (compiled functions launch every kernel on every call). */
  readonly cudaGraphs: boolean;
  /** SYNK_CUDA_GEMM: 'cublaslt' or 'cublas', the library CUDA devices run float32/bfloat16 matrix products through (undefined: the default). */
  readonly cudaGemm: 'cublas' | 'cublaslt' | undefined;
  /** SYNK_CUBLAS_WORKSPACE_BYTES: the workspace each CUDA context gives cuBLAS and cuBLASLt (undefined: 32 MiB on sm_90+, else 4 MiB). */
  readonly cublasWorkspaceBytes: number | undefined;
  /**
   * SYNK_CUDA_ALLOC_FIT: 'loose' (default: a request of 1 MiB or more may take the smallest cached block up to twice its
   * class), 'split' (such requests are cut from segments, best fit, freed neighbours merged: src/devices/cuda/arena.ts;
   * not yet the default: it has not run on a GPU) or 'exact' (each cached block serves its own size class only).
   */
  readonly cudaAllocFit: 'exact' | 'loose' | 'split';
  /** SYNK_CUDA_GRAPHS_LOG=1: one line on stderr per CUDA graph captured and per function left without one. */
  readonly cudaGraphsLog: boolean;
  /** SYNK_BFLOAT_ACTIVATIONS=0: under the 'bf16' policy, CUDA devices keep activations in float32 (only the products' operands are rounded). */
  readonly bf16Activations: boolean;
  /** SYNK_CHANNELS_LAST=0: CUDA devices keep bfloat16 activations NCHW (not channels-last NHWC) under the 'bf16' policy. */
  readonly channelsLast: boolean;
  /** SYNK_MPI_LIB: load exactly this MPI library file (undefined: search libmpi.so.40, libmpich.so.12, libmpi_abi.so). */
  readonly mpiLib: string | undefined;
  /** SYNK_VIRTUAL_NODES=1: several processes of one MPI job on one host are each a node of their own (testing); see fork's virtualNodes. */
  readonly virtualNodes: boolean;
  /** SYNK_NETWORK: the network interface of cross-node traffic (MPI's TCP transport and NCCL_SOCKET_IFNAME); see fork's network. */
  readonly network: string | undefined;
  /** SYNK_COMM_TIMEOUT_MS: deadline of every cross-node collective in ms (default 60000); see fork's commTimeoutMs. */
  readonly commTimeoutMs: number | undefined;
  /** SYNK_COLUMN_SPLIT: 'auto' (default), 'on'/'1' or 'off'/'0': makeTrainFunction's columnSplit when the option is not given. */
  readonly columnSplit: string | undefined;
  /** SYNK_COMM_CHUNK_BYTES: bytes per piece of a large reduction across nodes (default 4 MiB); see fork's commChunkBytes. */
  readonly commChunkBytes: number | undefined;
}

/** Each switch: its name, and the name it had before the prefix was made one. */
export const ENV_SWITCHES = {
  blasPath: { name: 'SYNK_BLAS' },
  kernelCacheDir: { name: 'SYNK_KERNEL_CACHE', deprecated: 'SYNKHRONOS_KERNEL_CACHE' },
  cudaLibDirs: { name: 'SYNK_CUDA_LIB_DIRS', deprecated: 'SYNKHRONOS_CUDA_LIB_DIRS' },
  cudnnLibDirs: { name: 'SYNK_CUDNN_LIB_DIRS' },
  cudnn: { name: 'SYNK_CUDNN' },
  cudnnApi: { name: 'SYNK_CUDNN_API' },
  cudaProfile: { name: 'SYNK_CUDA_PROFILE', deprecated: 'SYNKHRONOS_CUDA_PROFILE' },
  cudaGraphs: { name: 'SYNK_CUDA_GRAPHS' },
  cudaGraphsLog: { name: 'SYNK_CUDA_GRAPHS_LOG' },
  cudaAllocFit: { name: 'SYNK_CUDA_ALLOC_FIT' },
  bf16Activations: { name: 'SYNK_BFLOAT_ACTIVATIONS' },
  channelsLast: { name: 'SYNK_CHANNELS_LAST' },
  cudaGemm: { name: 'SYNK_CUDA_GEMM' },
  cublasWorkspaceBytes: { name: 'SYNK_CUBLAS_WORKSPACE_BYTES' },
  mpiLib: { name: 'SYNK_MPI_LIB' },
  virtualNodes: { name: 'SYNK_VIRTUAL_NODES' },
  network: { name: 'SYNK_NETWORK' },
  commTimeoutMs: { name: 'SYNK_COMM_TIMEOUT_MS' },
  columnSplit: { name: 'SYNK_COLUMN_SPLIT' },
  commChunkBytes: { name: 'SYNK_COMM_CHUNK_BYTES' },
} as const satisfies Record<keyof SynkConfig, { name: string; deprecated?: string }>;

type Env = Readonly<Record<string, string | undefined>>;
const warned = new Set<string>();

function read(env: Env, key: keyof SynkConfig, warn: boolean): string | undefined {
  const s: { name: string; deprecated?: string } = ENV_SWITCHES[key];
  const value = env[s.name];
  if (value !== undefined) return value;
  if (s.deprecated === undefined || env[s.deprecated] === undefined) return undefined;
  if (warn && !warned.has(s.deprecated)) {
    warned.add(s.deprecated);
    process.emitWarning(`${s.deprecated} is deprecated; set ${s.name} instead`, { type: 'DeprecationWarning', code: 'SYNK_DEPRECATED_ENV' });
  }
  return env[s.deprecated];
}

/** The switches as `env` sets them (tests pass their own environment; nothing is cached). */
export function readConfig(env: Env = process.env): SynkConfig {
  const warn = env === process.env && isMainThread;
  return {
    blasPath: read(env, 'blasPath', warn),
    kernelCacheDir: read(env, 'kernelCacheDir', warn) ?? join(tmpdir(), 'synkhronos-kernels'),
    cudaLibDirs: (read(env, 'cudaLibDirs', warn) ?? '').split(':').filter(Boolean),
    cudnnLibDirs: (read(env, 'cudnnLibDirs', warn) ?? '').split(':').filter(Boolean),
    cudnn: read(env, 'cudnn', warn) !== '0',
    cudnnApi: cudnnApiOf(read(env, 'cudnnApi', warn)),
    cudaProfile: profileModeOf(read(env, 'cudaProfile', warn)),
    cudaGraphs: read(env, 'cudaGraphs', warn) !== '0',
    cudaGraphsLog: read(env, 'cudaGraphsLog', warn) === '1',
    cudaAllocFit: allocFitOf(read(env, 'cudaAllocFit', warn)),
    bf16Activations: read(env, 'bf16Activations', warn) !== '0',
    channelsLast: read(env, 'channelsLast', warn) !== '0',
    cudaGemm: gemmLibrary(read(env, 'cudaGemm', warn)),
    cublasWorkspaceBytes: workspaceBytes(read(env, 'cublasWorkspaceBytes', warn)),
    mpiLib: read(env, 'mpiLib', warn) || undefined,
    virtualNodes: read(env, 'virtualNodes', warn) === '1',
    network: read(env, 'network', warn) || undefined,
    commTimeoutMs: positiveMs(read(env, 'commTimeoutMs', warn)),
    columnSplit: read(env, 'columnSplit', warn) || undefined,
    commChunkBytes: chunkBytes(read(env, 'commChunkBytes', warn)),
  };
}

function cudnnApiOf(raw: string | undefined): 'graph' | 'legacy' {
  if (raw === undefined || raw === '') return 'graph';
  const v = raw.toLowerCase();
  if (v === 'graph' || v === 'legacy') return v;
  throw new RangeError(`SYNK_CUDNN_API=${JSON.stringify(raw)}: expected 'graph' or 'legacy'`);
}

function allocFitOf(raw: string | undefined): 'exact' | 'loose' | 'split' {
  if (raw === undefined || raw === '') return 'loose';
  const v = raw.toLowerCase();
  if (v === 'exact' || v === 'loose' || v === 'split') return v;
  throw new RangeError(`SYNK_CUDA_ALLOC_FIT=${JSON.stringify(raw)}: expected 'split', 'loose' or 'exact'`);
}

function gemmLibrary(raw: string | undefined): 'cublas' | 'cublaslt' | undefined {
  if (raw === undefined || raw === '') return undefined;
  const v = raw.toLowerCase();
  if (v === 'cublas' || v === 'cublaslt') return v;
  throw new RangeError(`SYNK_CUDA_GEMM=${JSON.stringify(raw)}: expected 'cublaslt' or 'cublas'`);
}

function workspaceBytes(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`SYNK_CUBLAS_WORKSPACE_BYTES=${JSON.stringify(raw)}: expected a whole number of bytes >= 0 (0: cuBLAS's own pool)`);
  }
  return n;
}

function chunkBytes(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 64 || n % 64 !== 0) {
    throw new RangeError(`SYNK_COMM_CHUNK_BYTES=${JSON.stringify(raw)}: expected a positive multiple of 64 bytes`);
  }
  return n;
}

function positiveMs(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!(ms > 0)) throw new RangeError(`SYNK_COMM_TIMEOUT_MS=${JSON.stringify(raw)}: expected a positive number of milliseconds`);
  return ms;
}

let current: SynkConfig | undefined;

/** This process's switches, read once. */
export function config(): SynkConfig {
  current ??= readConfig();
  return current;
}

/**
 * Keeps NVLink multicast (NVLS) off for NCCL, which it must be on the machines this runs on; an
 * explicit NCCL_NVLS_ENABLE wins. NCCL reads the variable from the C environment when a communicator
 * is made. Only the main thread's process.env writes reach that environment (a worker's process.env
 * is a private copy), and a worker starts with the main thread's values; so it is set from the main
 * thread, before GPU workers start (fork) and before NCCL is loaded there (findNccl). In a worker it is a no-op.
 */
export function keepNvlsOff(): void {
  if (isMainThread) process.env['NCCL_NVLS_ENABLE'] ??= '0';
}

/**
 * Keeps UCX's memory hooks off for MPI (UCX_MEM_EVENTS=no), unless UCX_MEM_EVENTS is set already.
 * UCX (the transport under MPICH's ch4 and Open MPI's pml ucx) patches mmap, munmap and brk to keep
 * its memory-registration cache current; in a Node process those hooks made V8 crash (a segmentation
 * fault in its compiler) in about one MPICH job in four on the test machine, and never without them.
 * UCX reads the variable at MPI_Init, so this runs in the main thread before MPI is loaded. Without
 * the cache, InfiniBand transfers register memory per message: an explicit UCX_MEM_EVENTS=yes wins.
 */
export function keepUcxMemoryHooksOff(): void {
  if (isMainThread) process.env['UCX_MEM_EVENTS'] ??= 'no';
}

/**
 * Picks Open MPI's non-blocking all-reduce algorithm (OMPI_MCA_coll_libnbc_iallreduce_algorithm=3,
 * Rabenseifner's reduce-scatter + all-gather), unless the variable is set already. The MPI communicator
 * runs MPI_Iallreduce, and with libnbc's default choice Open MPI 4.1 took 2.2-2.6x as long as its own
 * blocking MPI_Allreduce from 16 MB up on 2 processes (MPI_Iallreduce + MPI_Wait called directly just as
 * slow); with Rabenseifner's it matched or beat it (BENCHMARKS.md, session 6). Open MPI reads the variable
 * at MPI_Init; MPICH ignores it. Main thread only, before MPI is initialised, as keepUcxMemoryHooksOff.
 */
export function tuneOpenMpiNonBlocking(): void {
  if (isMainThread) process.env['OMPI_MCA_coll_libnbc_iallreduce_algorithm'] ??= '3';
}

function profileModeOf(value: string | undefined): 'off' | 'wall' | 'gpu' {
  if (value === '1' || value === 'wall') return 'wall';
  if (value === 'gpu') return 'gpu';
  return 'off';
}
