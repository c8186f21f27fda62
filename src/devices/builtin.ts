// The devices this build ships. A new device is a folder with its registration (see
// devices/registration.ts) and one line in this list; the spec types follow from it.
import { referenceRegistration } from './reference/register.js';
import { cpuRegistration } from './cpu/register.js';
import { cudaRegistration } from './cuda/register.js';
import type { SpecOf } from './registration.js';

/** Every registered device, in the order errors list them. */
export const DEVICE_REGISTRATIONS = [referenceRegistration, cpuRegistration, cudaRegistration] as const;

/** The description of one worker's device: `{ kind: 'cpu' }`, `{ kind: 'cuda', index: 0 }`, ... */
export type DeviceSpec = SpecOf<(typeof DEVICE_REGISTRATIONS)[number]>;

/**
 * Kept for callers written when the fast devices registered themselves at run time: they are
 * registered statically now, so this only resolves.
 * @deprecated Nothing to do: every device of {@link DEVICE_REGISTRATIONS} is always registered.
 */
export function registerBuiltinDevices(): Promise<void> {
  return Promise.resolve();
}
