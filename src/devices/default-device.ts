// The device T.fn and f.local() compile for when none is given: the fast CPU device (the system BLAS,
// else the WebAssembly fallback). The reference interpreter is the float64 oracle, used only when
// asked for by name; GPUs only when asked for (a CudaDevice, or fork({ devices: 'cuda' })).
import type { Device } from './device.js';
import { CpuDevice } from './cpu/cpu-device.js';
import { ReferenceDevice } from './reference/reference-device.js';

let current: Device | undefined;

/** The device functions compile for when no `device` is given (created on first use). */
export function defaultDevice(): Device {
  current ??= new CpuDevice();
  return current;
}

/**
 * Sets the device T.fn and f.local() use from now on: a Device, or 'cpu' / 'reference' by name.
 * Functions already compiled keep theirs.
 */
export function setDefaultDevice(device: Device | 'cpu' | 'reference'): void {
  if (device === 'cpu') current = new CpuDevice();
  else if (device === 'reference') current = new ReferenceDevice();
  else if (typeof device === 'object' && device !== null && typeof (device as Partial<Device>).compile === 'function') current = device;
  else throw new TypeError(`setDefaultDevice: expected a Device (CpuDevice, ReferenceDevice, CudaDevice) or 'cpu' | 'reference', got ${String(device)}`);
}
