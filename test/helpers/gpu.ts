// One CUDA device per test file, or a skip that says why there is none.
import type { TestContext } from 'node:test';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import { CudaDevice } from '../../src/devices/cuda/cuda-device.js';

export const cudaFound = cudaAvailable();
let shared: CudaDevice | undefined;

/** The file's GPU 0 device, or null after marking the test skipped with the reason. */
export function gpu(t: TestContext): CudaDevice | null {
  if (!cudaFound.ok) {
    t.skip(`no usable CUDA device: ${cudaFound.reason.split('\n')[0]}`);
    return null;
  }
  shared ??= new CudaDevice();
  return shared;
}
