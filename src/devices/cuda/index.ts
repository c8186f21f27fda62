// `import { CudaDevice } from 'synkhronos/cuda'`: the CUDA device and the check for usable GPUs.
// Importing this module loads no CUDA library; creating a device does.
export { CudaDevice, type CudaDeviceOptions } from './cuda-device.js';
export { cudaAvailable } from './ffi/driver.js';
export { CudaError, CudaOutOfMemoryError, CudaLibraryNotFoundError } from './ffi/errors.js';
