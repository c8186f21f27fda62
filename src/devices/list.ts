// synk.devices(): what this machine offers the data-parallel runtime, found the same way fork()
// finds it, without starting any worker or GPU context (a CUDA context costs memory on every GPU).
import os from 'node:os';

/** One CUDA GPU, as {@link devices} lists it. */
export interface GpuInfo {
  readonly index: number;
  readonly name: string;
  /** e.g. 'sm_90' */
  readonly arch: string;
  readonly memoryBytes: number;
  readonly multiprocessors: number;
}

/** What {@link devices} found. */
export interface DeviceList {
  /** The CPU cores and the GEMM the fast CPU device would use ('OpenBLAS', 'wasm-simd', ...). */
  readonly cpu: { readonly cores: number; readonly gemm: string };
  /** CUDA GPUs, in index order (empty when none is usable). */
  readonly cuda: readonly GpuInfo[];
  /** Why no GPU is listed, when none is. */
  readonly cudaUnavailable?: string;
  /** What fork({ devices: 'auto' }) would start: one worker per GPU, else one per core. */
  readonly auto: 'cuda' | 'cpu';
}

/**
 * Lists the CPU cores (with the GEMM the fast CPU device would use) and every usable CUDA GPU, or why none is usable,
 * and what `fork({ devices: 'auto' })` would start. Starts no worker and no GPU context.
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * const found = await synk.devices();
 * console.log(found.cpu, found.cuda.map((g) => `${g.name} (${g.arch})`), found.cudaUnavailable ?? '', found.auto);
 * ```
 */
export async function devices(): Promise<DeviceList> {
  const { selectGemm } = await import('./cpu/gemm.js');
  const cpu = { cores: os.availableParallelism(), gemm: selectGemm().blas.name };
  const { cudaAvailable, loadCudaDriver } = await import('./cuda/ffi/driver.js');
  const found = cudaAvailable();
  if (!found.ok) return { cpu, cuda: [], cudaUnavailable: found.reason.split('\n')[0]!, auto: 'cpu' };
  const cu = loadCudaDriver();
  const cuda = Array.from({ length: found.deviceCount }, (_, index): GpuInfo => {
    const dev = cu.deviceGet(index);
    const cc = cu.computeCapability(dev);
    return {
      index,
      name: cu.deviceName(dev),
      arch: `sm_${cc.major}${cc.minor}`,
      memoryBytes: cu.deviceTotalMem(dev),
      multiprocessors: cu.multiprocessorCount(dev),
    };
  });
  return { cpu, cuda, auto: 'cuda' };
}
