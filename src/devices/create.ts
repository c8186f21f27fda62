// Devices by description: a worker thread builds its own device from a plain-data spec, and fork()
// resolves 'cpu', 'cuda', 'auto' (any registered kind) to one spec per worker. Both go through
// the registrations of devices/builtin.ts, so nothing here knows a device by name.
import { describe } from '../tensor/ndarray.js';
import type { Device } from './device.js';
import { DEVICE_REGISTRATIONS, type DeviceSpec } from './builtin.js';
import type { DeviceRegistration, MatmulPrecision } from './registration.js';
import type { DeviceGroupKind } from './device-groups.js';

export { MATMUL_PRECISIONS, type MatmulPrecision } from './registration.js';
export type { DeviceSpec } from './builtin.js';

/** A registered kind of device ('reference', 'cpu', 'cuda', ...). */
export type RegisteredKind = DeviceSpec['kind'];

const byKind = new Map<string, DeviceRegistration>(DEVICE_REGISTRATIONS.map((r) => [r.kind, r as unknown as DeviceRegistration]));

/** The registered kinds, in registration order. */
export function registeredKinds(): readonly RegisteredKind[] {
  return DEVICE_REGISTRATIONS.map((r) => r.kind);
}

/** The registration of a kind, or undefined when no such device is registered. */
export function registrationOf(kind: string): DeviceRegistration | undefined {
  return byKind.get(kind);
}

function requireRegistration(kind: string): DeviceRegistration {
  const r = byKind.get(kind);
  if (!r) throw new Error(`no device of kind '${kind}' is available in this build`);
  return r;
}

/** Opens the device a spec describes. */
export async function createDevice(spec: DeviceSpec): Promise<Device> {
  return requireRegistration(spec.kind).open(spec);
}

/** 'or'-joined quoted names: "'a', 'b' or 'c'". */
function orList(names: readonly string[]): string {
  const q = names.map((k) => `'${k}'`);
  return q.length <= 1 ? q.join('') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Checks a device spec given to fork (a clear error naming `what` and the key otherwise). */
export function checkDeviceSpec(spec: unknown, what: string): DeviceSpec {
  if (!isPlainObject(spec)) throw new TypeError(`${what}: expected a device spec such as { kind: 'cpu' }, got ${describe(spec)}`);
  const o = spec;
  const r = typeof o['kind'] === 'string' ? byKind.get(o['kind']) : undefined;
  if (!r) throw new TypeError(`${what}.kind: expected ${orList(registeredKinds())}, got ${describe(o['kind'])}`);
  for (const key of Object.keys(o)) {
    if (!r.specKeys.includes(key)) throw new TypeError(`${what}: unknown option '${key}' (known: ${r.specKeys.join(', ')})`);
  }
  r.checkSpec(o, what);
  return spec as unknown as DeviceSpec;
}

/** The names fork({ devices }) takes: every registered kind, and 'auto'. */
export function deviceNames(): readonly string[] {
  return [...registeredKinds(), 'auto'];
}

/**
 * One spec per worker for fork({ devices: name, n }): the kind's instances, or for 'auto' those of
 * the usable kind of highest auto priority (one worker per GPU where there is one, else per core).
 */
export async function resolveDevices(name: string, n: number | undefined): Promise<DeviceSpec[]> {
  if (name !== 'auto') {
    const found = await requireRegistration(name).list(n);
    if ('unavailable' in found) throw new Error(`fork: devices '${name}': ${found.unavailable}; use 'cpu' or 'auto'`);
    return found.specs as DeviceSpec[];
  }
  const ranked = [...byKind.values()].filter((r) => r.autoPriority !== undefined).sort((a, b) => b.autoPriority! - a.autoPriority!);
  const reasons: string[] = [];
  for (const r of ranked) {
    const found = await r.list(n);
    if ('specs' in found) return found.specs as DeviceSpec[];
    reasons.push(`${r.kind}: ${found.unavailable}`);
  }
  throw new Error(`fork: devices 'auto': no device is usable here (${reasons.join('; ')})`);
}

/** Whether workers on these specs all compute in this process's memory, so ranks can share arrays in place. */
export function specsShareHostMemory(specs: readonly DeviceSpec[]): boolean {
  return specs.every((s) => requireRegistration(s.kind).sharesHostMemory);
}

/** The specs with fork's matmulPrecision applied where a device takes one. */
export function withMatmulPrecision(specs: readonly DeviceSpec[], precision: MatmulPrecision): DeviceSpec[] {
  return specs.map((s) => {
    const r = requireRegistration(s.kind);
    return (r.withMatmulPrecision ? r.withMatmulPrecision(s, precision) : s) as DeviceSpec;
  });
}

/** Whether workers on devices of `kind` form a device communicator (decided before any device opens). */
export function hasDeviceGroup(kind: string): boolean {
  return byKind.get(kind)?.deviceGroup !== undefined;
}

/** The group kind of `kind`'s devices, loading its module; undefined when it has none. */
export async function deviceGroupOf(kind: string): Promise<DeviceGroupKind | undefined> {
  return byKind.get(kind)?.deviceGroup?.();
}
