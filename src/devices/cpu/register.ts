// The fast CPU device as a registered device. Its modules load on first use, not at registration.
import os from 'node:os';
import { describe } from '../../tensor/ndarray.js';
import type { DeviceRegistration } from '../registration.js';
import { specChecks } from '../registration.js';

/** fork's description of a CPU worker. */
export interface CpuSpec {
  readonly kind: 'cpu';
  /** Load exactly this CBLAS. */
  readonly blasPath?: string;
  /** Use the WebAssembly GEMM even where a BLAS is found. */
  readonly forceFallback?: boolean;
  /** BLAS threads of this worker. */
  readonly threads?: number;
}

/** GEMMs accumulate in float32: the op suite's tolerance for the CPU device. */
const FLOAT32_GEMM = { rtol: 1e-4, atol: 1e-5 };

/** The CPU device's registration. */
export const cpuRegistration: DeviceRegistration<CpuSpec> = {
  kind: 'cpu',
  specKeys: ['kind', 'blasPath', 'forceFallback', 'threads'],
  checkSpec(spec, what) {
    specChecks.bool(spec, 'forceFallback', what);
    specChecks.count(spec, 'threads', 1, what);
    const blasPath = spec['blasPath'];
    if (blasPath !== undefined && typeof blasPath !== 'string') throw new TypeError(`${what}.blasPath: expected a string, got ${describe(blasPath)}`);
  },
  async open(spec) {
    const { CpuDevice } = await import('./cpu-device.js');
    return new CpuDevice({
      ...(spec.blasPath !== undefined ? { blasPath: spec.blasPath } : {}),
      ...(spec.forceFallback !== undefined ? { forceFallback: spec.forceFallback } : {}),
      ...(spec.threads !== undefined ? { threads: spec.threads } : {}),
    });
  },
  async list(n) {
    // Workers stay quiet; the controller says once which GEMM they will use when it is the fallback
    // (and a BLAS named by $SYNK_BLAS that does not load fails the fork here, not in every worker).
    const { selectGemm } = await import('./gemm.js');
    const { printNoticeOnce } = await import('./cpu-device.js');
    const { blas, notice } = selectGemm();
    if (blas.name === 'wasm-simd' || blas.tuning !== undefined) printNoticeOnce(notice);
    const cores = os.availableParallelism();
    const count = n ?? cores;
    // One single-threaded BLAS per worker; a lone worker owns the machine and gets every core.
    const threads = count === 1 ? cores : 1;
    return { specs: Array.from({ length: count }, (): CpuSpec => ({ kind: 'cpu', threads })) };
  },
  autoPriority: 0,
  sharesHostMemory: true,
  variants: [
    // The system BLAS (unavailable when none is installed) and the WebAssembly GEMM forced.
    {
      name: 'cpu', tolerance: FLOAT32_GEMM,
      async load() {
        const { findBlas } = await import('./blas.js');
        const { CpuDevice } = await import('./cpu-device.js');
        return () => {
          const search = findBlas();
          return search.blas === null ? { unavailable: `no BLAS: ${search.reason}` } : new CpuDevice({ notice: false });
        };
      },
    },
    {
      name: 'cpu-fallback', tolerance: FLOAT32_GEMM,
      async load() {
        const { CpuDevice } = await import('./cpu-device.js');
        return () => new CpuDevice({ forceFallback: true });
      },
    },
  ],
};
