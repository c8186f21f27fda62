// Devices by description, so a worker thread can build its own from plain data.
import type { Device } from './device.js';
import { ReferenceDevice } from './reference/reference-device.js';

/** float32 matrix-product precision of a GPU, named as torch.set_float32_matmul_precision. */
export const MATMUL_PRECISIONS = ['highest', 'high', 'medium'] as const;
export type MatmulPrecision = (typeof MATMUL_PRECISIONS)[number];

export type DeviceSpec =
  | { readonly kind: 'reference'; readonly float64?: boolean }
  | { readonly kind: 'cpu'; readonly blasPath?: string; readonly forceFallback?: boolean; readonly threads?: number }
  | { readonly kind: 'cuda'; readonly index: number; readonly tf32?: boolean; readonly matmulPrecision?: MatmulPrecision };

type DeviceFactory = (spec: DeviceSpec) => Promise<Device>;
const factories = new Map<DeviceSpec['kind'], DeviceFactory>([
  ['reference', async (spec) => new ReferenceDevice(spec.kind === 'reference' && spec.float64 ? { float64: true } : {})],
]);

/** Lets the fast devices register themselves without this module importing them eagerly. */
export function registerDeviceFactory(kind: DeviceSpec['kind'], factory: DeviceFactory): void {
  factories.set(kind, factory);
}

export async function createDevice(spec: DeviceSpec): Promise<Device> {
  const factory = factories.get(spec.kind);
  if (!factory) throw new Error(`no device of kind '${spec.kind}' is available in this build`);
  return factory(spec);
}
