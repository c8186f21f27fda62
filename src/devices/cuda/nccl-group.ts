// NCCL as the device group of CUDA devices: the unique id comes from rank 0's GPU, and every rank
// joins on its own GPU's context. The CUDA registration (register.ts) names it as the device group of
// its devices; it loads only when a CUDA fork (or a test) joins a group.
import type { Device } from '../device.js';
import { CudaDevice } from './cuda-device.js';
import type { DeviceGroupKind } from '../device-groups.js';
import { NcclCommunicator } from './nccl-communicator.js';
import { findNccl } from './nccl-support.js';
import { NCCL_UNIQUE_ID_BYTES } from './ffi/nccl.js';

function cudaOf(device: Device, rank: number): CudaDevice {
  if (!(device instanceof CudaDevice)) throw new TypeError(`NCCL rank ${rank}: the device is ${device.kind}, not cuda`);
  return device;
}

/** NCCL between the CUDA devices of a fork. */
export const ncclGroup: DeviceGroupKind = {
  name: 'NCCL',
  idBytes: NCCL_UNIQUE_ID_BYTES,
  // Every rank loads the library before it waits for the others, so a missing one fails fast.
  check: (device, rank) => { cudaOf(device, rank); findNccl(); },
  newGroupId(device, into, rank) {
    cudaOf(device, rank).context.makeCurrent();
    findNccl().getUniqueId(into);
  },
  join(device, id, rank, size, options) {
    return NcclCommunicator.join(cudaOf(device, rank).context, id, rank, size, {
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.abortProbe ? { abortProbe: options.abortProbe } : {}),
    });
  },
};
