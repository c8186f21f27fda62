// The CUDA device as a registered device. Nothing of CUDA loads here: the bindings load only when a
// 'cuda' device is listed or opened, so machines without a GPU (or its libraries) never load them.
import type { DeviceRegistration, MatmulPrecision } from '../registration.js';
import { specChecks } from '../registration.js';

/** fork's description of a GPU worker. */
export interface CudaSpec {
  readonly kind: 'cuda';
  /** The GPU's index. */
  readonly index: number;
  /** Let float32 matrix products use TF32 tensor cores. */
  readonly tf32?: boolean;
  /** float32 matrix-product precision (wins over tf32). */
  readonly matmulPrecision?: MatmulPrecision;
  /** Convolutions through cuDNN (CudaDeviceOptions.cudnn; default: where cuDNN 9 is found). */
  readonly cudnn?: boolean;
  /** The libcudnn file to load (CudaDeviceOptions.cudnnPath). */
  readonly cudnnPath?: string;
  /** cuDNN algorithms chosen by timing (CudaDeviceOptions.cudnnBenchmark). */
  readonly cudnnBenchmark?: boolean;
  /** The library of matrix products (CudaDeviceOptions.gemm: 'cublaslt' or 'cublas'). */
  readonly gemm?: 'cublaslt' | 'cublas';
}

/** The CUDA device's registration. */
export const cudaRegistration: DeviceRegistration<CudaSpec> = {
  kind: 'cuda',
  specKeys: ['kind', 'index', 'tf32', 'matmulPrecision', 'cudnn', 'cudnnPath', 'cudnnBenchmark', 'gemm'],
  checkSpec(spec, what) {
    if (spec['index'] === undefined) throw new TypeError(`${what}.index: a cuda spec needs the GPU's index`);
    specChecks.count(spec, 'index', 0, what);
    specChecks.bool(spec, 'tf32', what);
    specChecks.bool(spec, 'cudnn', what);
    specChecks.bool(spec, 'cudnnBenchmark', what);
    if (spec['cudnnPath'] !== undefined && typeof spec['cudnnPath'] !== 'string') {
      throw new TypeError(`${what}.cudnnPath: a path to libcudnn (a string), got ${typeof spec['cudnnPath']}`);
    }
    specChecks.precision(spec['matmulPrecision'], `${what}.matmulPrecision`);
    if (spec['gemm'] !== undefined && spec['gemm'] !== 'cublaslt' && spec['gemm'] !== 'cublas') {
      throw new RangeError(`${what}.gemm: 'cublaslt' or 'cublas', got ${JSON.stringify(spec['gemm'])}`);
    }
  },
  async open(spec) {
    const { CudaDevice } = await import('./cuda-device.js');
    return new CudaDevice({
      index: spec.index,
      ...(spec.tf32 !== undefined ? { tf32: spec.tf32 } : {}),
      ...(spec.matmulPrecision !== undefined ? { matmulPrecision: spec.matmulPrecision } : {}),
      ...(spec.cudnn !== undefined ? { cudnn: spec.cudnn } : {}),
      ...(spec.cudnnPath !== undefined ? { cudnnPath: spec.cudnnPath } : {}),
      ...(spec.cudnnBenchmark !== undefined ? { cudnnBenchmark: spec.cudnnBenchmark } : {}),
      ...(spec.gemm !== undefined ? { gemm: spec.gemm } : {}),
    });
  },
  async list(n) {
    // One device per GPU.
    const { cudaAvailable } = await import('./ffi/driver.js');
    const found = cudaAvailable();
    if (!found.ok) return { unavailable: `no usable CUDA device here (${found.reason.split('\n')[0]})` };
    const count = n ?? found.deviceCount;
    if (count > found.deviceCount) throw new RangeError(`fork: ${count} CUDA workers asked for, this machine has ${found.deviceCount} GPU(s)`);
    return { specs: Array.from({ length: count }, (_, index): CudaSpec => ({ kind: 'cuda', index })) };
  },
  autoPriority: 1,
  sharesHostMemory: false,
  // NCCL, the CUDA device's own communicator (as c10d keeps ProcessGroupNCCL with CUDA).
  deviceGroup: async () => (await import('./nccl-group.js')).ncclGroup,
  withMatmulPrecision: (spec, precision) => ({ ...spec, matmulPrecision: spec.matmulPrecision ?? precision }),
  variants: [
    // GPU 0 (unavailable where no driver or GPU is found). Its kernels use the CUDA math library and
    // reduce in a different order, hence the float32 tolerances of the CPU device.
    {
      name: 'cuda', tolerance: { rtol: 1e-4, atol: 1e-5 },
      async load() {
        const { cudaAvailable } = await import('./ffi/driver.js');
        const { CudaDevice } = await import('./cuda-device.js');
        return () => {
          const found = cudaAvailable();
          return found.ok ? new CudaDevice() : { unavailable: `no usable CUDA device: ${found.reason.split('\n')[0]}` };
        };
      },
    },
  ],
};
