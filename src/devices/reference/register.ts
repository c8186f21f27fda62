// The reference interpreter as a registered device: always present, the float64 oracle.
import os from 'node:os';
import type { DeviceRegistration } from '../registration.js';
import { specChecks } from '../registration.js';
import { ReferenceDevice } from './reference-device.js';

/** fork's description of a reference worker. */
export interface ReferenceSpec {
  readonly kind: 'reference';
  /** Compute every float in float64. */
  readonly float64?: boolean;
}

/** The reference device's registration. */
export const referenceRegistration: DeviceRegistration<ReferenceSpec> = {
  kind: 'reference',
  specKeys: ['kind', 'float64'],
  checkSpec: (spec, what) => specChecks.bool(spec, 'float64', what),
  open: async (spec) => new ReferenceDevice(spec.float64 ? { float64: true } : {}),
  list: async (n) => ({ specs: Array.from({ length: n ?? os.availableParallelism() }, (): ReferenceSpec => ({ kind: 'reference' })) }),
  sharesHostMemory: true,
  variants: [{ name: 'reference', tolerance: { rtol: 1e-5, atol: 1e-6 }, load: async () => () => new ReferenceDevice() }],
};
