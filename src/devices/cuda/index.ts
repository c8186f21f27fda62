// `import { CudaDevice } from 'synkhronos/cuda'`: the CUDA device and the check for usable GPUs.
// Importing this module loads no CUDA library; creating a device does.
/**
 * The CUDA device. {@link cudaAvailable} says whether a GPU can be used (and why not); creating a
 * {@link CudaDevice} loads the CUDA driver, NVRTC and cuBLAS at run time through koffi (nothing to compile at install).
 *
 * @example
 * ```ts
 * import { cudaAvailable } from 'synkhronos/cuda';
 * import * as synk from 'synkhronos';
 *
 * const check = cudaAvailable();
 * if (check.ok) await synk.fork({ devices: 'cuda' }); // one worker per GPU
 * else console.log(`no GPU: ${check.reason}`);
 * ```
 * @module synkhronos/cuda
 */
export { CudaDevice, type CudaDeviceOptions } from './cuda-device.js';
export { cudaAvailable } from './ffi/driver.js';
export { CudaError, CudaOutOfMemoryError, CudaLibraryNotFoundError } from './ffi/errors.js';
