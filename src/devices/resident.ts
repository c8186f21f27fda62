// Shared variables' copies on a device. A GPU function uploads a shared value once and keeps it
// there (keyed by the device object); updates computed on the GPU replace it in place, and the
// host copy is refreshed only when someone reads the value.
import type { SharedVariable } from '../tensor/variable.js';
import type { NDArray } from '../tensor/ndarray.js';
import type { Device, DeviceArray } from './device.js';

export interface ResidentCopy {
  readonly value: DeviceArray;
  sync(): NDArray;
  release(): void;
}

/** The bookkeeping record for `value` living on `device`. */
export function residentCopy(device: Device, value: DeviceArray): ResidentCopy {
  return { value, sync: () => device.download(value), release: () => device.free(value) };
}

/** The shared variable's value on `device`, uploaded on first use and kept until the value changes. */
export function residentValue(device: Device, s: SharedVariable): DeviceArray {
  const cached = s.deviceCopies.get(device);
  if (cached) return cached.value as DeviceArray;
  const value = device.upload(s.getValue({ borrow: true }));
  s.deviceCopies.set(device, residentCopy(device, value));
  return value;
}
