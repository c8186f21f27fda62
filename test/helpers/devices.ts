// One test suite for every device: `forEachDevice(name, (device) => { ...tests... })`.
// A device that is absent on this machine is skipped with the reason printed.
import { describe } from 'node:test';
import type { Device } from '../../src/devices/device.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';

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
