// One test suite for every device: `forEachDevice(name, (device) => { ...tests... })`.
// A device that is absent on this machine is skipped with the reason printed.
import { describe } from 'node:test';
import type { Device } from '../../src/devices/device.js';
import * as T from '../../src/tensor.js';
import type { NDArray } from '../../src/tensor/ndarray.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';
import { CpuDevice } from '../../src/devices/cpu/cpu-device.js';
import { findBlas } from '../../src/devices/cpu/blas.js';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import { CudaDevice } from '../../src/devices/cuda/cuda-device.js';

export interface DeviceCase {
  readonly name: string;
  /** Float tolerance for float32 results against the float64 oracle. */
  readonly rtol: number;
  readonly atol: number;
  /** A fresh device, or a reason it is unavailable here. */
  create(): Device | { skip: string };
}

const cases: DeviceCase[] = [
  { name: 'reference', rtol: 1e-5, atol: 1e-6, create: () => new ReferenceDevice() },
  // The fast CPU device with the system BLAS (skipped when none is installed) and with the
  // WebAssembly GEMM forced. GEMMs accumulate in float32, hence the wider tolerances.
  {
    name: 'cpu', rtol: 1e-4, atol: 1e-5,
    create: () => {
      const search = findBlas();
      return search.blas === null ? { skip: `no BLAS: ${search.reason}` } : new CpuDevice({ notice: false });
    },
  },
  { name: 'cpu-fallback', rtol: 1e-4, atol: 1e-5, create: () => new CpuDevice({ forceFallback: true }) },
  // GPU 0 through the CUDA device (skipped where no driver or GPU is found). Its kernels use the
  // CUDA math library and reduce in a different order, hence the float32 tolerances of the CPU device.
  {
    name: 'cuda', rtol: 1e-4, atol: 1e-5,
    create: () => {
      const found = cudaAvailable();
      return found.ok ? new CudaDevice() : { skip: `no usable CUDA device: ${found.reason.split('\n')[0]}` };
    },
  },
];

/** Lets device modules add themselves (the fast CPU device in both modes, CUDA). */
export function registerDeviceCase(c: DeviceCase): void {
  if (!cases.some((x) => x.name === c.name)) cases.push(c);
}

export function deviceCases(): readonly DeviceCase[] {
  return cases;
}

export function forEachDevice(title: string, body: (device: Device, c: DeviceCase) => void): void {
  for (const c of cases) {
    const made = c.create();
    if ('skip' in made) {
      describe(`${title} [${c.name}]`, { skip: `${c.name}: ${made.skip}` }, () => {});
      continue;
    }
    describe(`${title} [${c.name}]`, () => body(made, c));
  }
}

/** Compiles `outputs` of `inputs` for `device` and runs it once on `args` (the op suites' one-liner). */
export function runOn(device: Device): (inputs: T.Variable[], outputs: T.Variable[], ...args: T.ArrayInput[]) => NDArray[] {
  return (inputs, outputs, ...args) => T.fn({ inputs, outputs, device })(...args) as NDArray[];
}
