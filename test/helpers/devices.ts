// One test suite for every device: `forEachDevice(name, (device) => { ...tests... })`. The list is
// the registered devices' variants (src/devices/builtin.ts), so a new device joins the op suite by
// registering. A device that is absent on this machine is skipped with the reason printed.
import { describe } from 'node:test';
import type { Device } from '../../src/devices/device.js';
import * as T from '../../src/tensor.js';
import type { NDArray } from '../../src/tensor/ndarray.js';
import { DEVICE_REGISTRATIONS } from '../../src/devices/builtin.js';

export interface DeviceCase {
  readonly name: string;
  /** Float tolerance for float32 results against the float64 oracle. */
  readonly rtol: number;
  readonly atol: number;
  /** A fresh device, or a reason it is unavailable here. */
  create(): Device | { skip: string };
}

const variants = DEVICE_REGISTRATIONS.flatMap((r) => r.variants);
const factories = await Promise.all(variants.map((v) => v.load()));
const cases: readonly DeviceCase[] = variants.map((v, i): DeviceCase => ({
  name: v.name,
  rtol: v.tolerance.rtol,
  atol: v.tolerance.atol,
  create: () => {
    const made = factories[i]!();
    return 'unavailable' in made ? { skip: made.unavailable } : made;
  },
}));

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
