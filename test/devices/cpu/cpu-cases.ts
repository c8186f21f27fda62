// The CPU device cases of test/helpers/devices.ts (BLAS and forced fallback), and an oracle:
// the reference device computing in float64.
import { describe } from 'node:test';
import * as T from '../../../src/tensor.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import type { Device } from '../../../src/devices/device.js';
import { ReferenceDevice } from '../../../src/devices/reference/reference-device.js';
import { deviceCases, type DeviceCase } from '../../helpers/devices.js';
import { assertAllClose } from '../../helpers/allclose.js';

export function forEachCpuDevice(title: string, body: (device: Device, c: DeviceCase) => void): void {
  for (const c of deviceCases().filter((x) => x.name.startsWith('cpu'))) {
    const made = c.create();
    if ('skip' in made) {
      describe(`${title} [${c.name}]`, { skip: made.skip }, () => {});
      continue;
    }
    describe(`${title} [${c.name}]`, () => body(made, c));
  }
}

const oracle = new ReferenceDevice({ float64: true });
const plain = new ReferenceDevice();

/** Runs outputs on `device` and on the float64 oracle; compares within `tol`. */
export function checkAgainstOracle(
  device: Device,
  inputs: T.Variable[],
  outputs: T.Variable[],
  values: T.ArrayInput[],
  tol: { rtol: number; atol: number },
  what: string,
): NDArray[] {
  const got = T.fn({ inputs, outputs, device })(...values) as NDArray[];
  const want = T.fn({ inputs, outputs, device: oracle })(...values) as NDArray[];
  got.forEach((g, i) => {
    if (g.dtype !== 'float32' && g.dtype !== 'float64') assertAllClose(g, want[i]!, { rtol: 0, atol: 0 }, `${what} output ${i}`);
    else assertAllClose(g, want[i]!, tol, `${what} output ${i}`);
  });
  return got;
}

/** Runs outputs on `device` and on the plain (same-precision) reference; requires identical values. */
export function checkExact(device: Device, inputs: T.Variable[], outputs: T.Variable[], values: T.ArrayInput[], what: string): NDArray[] {
  const got = T.fn({ inputs, outputs, device })(...values) as NDArray[];
  const want = T.fn({ inputs, outputs, device: plain })(...values) as NDArray[];
  got.forEach((g, i) => {
    const w = want[i]!;
    if (g.dtype !== w.dtype) throw new Error(`${what} output ${i}: dtype ${g.dtype}, reference ${w.dtype}`);
    assertAllClose(g, w, { rtol: 0, atol: 0 }, `${what} output ${i}`);
  });
  return got;
}

/** The exception a function throws, or null. */
export function errorOf(f: () => unknown): Error | null {
  try {
    f();
    return null;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
