// Registers the devices this build ships (the reference device is always there): the fast CPU
// device as 'cpu', the CUDA device as 'cuda' (loaded lazily), and what
// fork({ devices: 'cpu' | 'auto' | 'cuda' }) resolves to.
import os from 'node:os';
import { registerDeviceFactory, type DeviceSpec } from './create.js';
import { setDeviceResolver } from '../parallel/runtime.js';

let registering: Promise<void> | null = null;

/** Idempotent; concurrent callers share one registration. */
export function registerBuiltinDevices(): Promise<void> {
  registering ??= register();
  return registering;
}

async function register(): Promise<void> {
  const { CpuDevice, printNoticeOnce } = await import('./cpu/cpu-device.js');
  const { selectGemm } = await import('./cpu/gemm.js');
  registerDeviceFactory('cpu', async (spec) => {
    if (spec.kind !== 'cpu') throw new TypeError(`cpu device factory: got a '${spec.kind}' spec`);
    return new CpuDevice({
      ...(spec.blasPath !== undefined ? { blasPath: spec.blasPath } : {}),
      ...(spec.forceFallback !== undefined ? { forceFallback: spec.forceFallback } : {}),
      ...(spec.threads !== undefined ? { threads: spec.threads } : {}),
    });
  });
  // The CUDA device: loaded only when a 'cuda' device is asked for, so machines without a GPU
  // (or without the CUDA libraries) never load its bindings.
  registerDeviceFactory('cuda', async (spec) => {
    if (spec.kind !== 'cuda') throw new TypeError(`cuda device factory: got a '${spec.kind}' spec`);
    const { CudaDevice } = await import('./cuda/cuda-device.js');
    return new CudaDevice({
      index: spec.index,
      ...(spec.tf32 !== undefined ? { tf32: spec.tf32 } : {}),
      ...(spec.matmulPrecision !== undefined ? { matmulPrecision: spec.matmulPrecision } : {}),
    });
  });
  setDeviceResolver(async (kind, n) => {
    if (kind === 'cuda' || kind === 'auto') {
      // One device per GPU; 'auto' falls back to the CPU cores where no GPU is usable.
      const { cudaAvailable } = await import('./cuda/ffi/driver.js');
      const found = cudaAvailable();
      if (found.ok) {
        const count = n ?? found.deviceCount;
        if (count > found.deviceCount) throw new RangeError(`fork: ${count} CUDA workers asked for, this machine has ${found.deviceCount} GPU(s)`);
        return Array.from({ length: count }, (_, index): DeviceSpec => ({ kind: 'cuda', index }));
      }
      if (kind === 'cuda') throw new Error(`fork: devices 'cuda': no usable CUDA device here (${found.reason.split('\n')[0]}); use 'cpu' or 'auto'`);
    }
    // Workers stay quiet; the controller says once which GEMM they will use when it is the fallback
    // (and a BLAS named by $SYNK_BLAS that does not load fails the fork here, not in every worker).
    const { blas, notice } = selectGemm();
    if (blas.name === 'wasm-simd' || blas.tuning !== undefined) printNoticeOnce(notice);
    const cores = os.availableParallelism();
    const count = n ?? cores;
    // One single-threaded BLAS per worker; a lone worker owns the machine and gets every core.
    const threads = count === 1 ? cores : 1;
    return Array.from({ length: count }, (): DeviceSpec => ({ kind: 'cpu', threads }));
  });
}
