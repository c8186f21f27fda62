// What a device tells the runtime about itself when it registers (devices/builtin.ts lists the
// registrations): its kind, how to check and open the spec a worker is given, how many instances
// this machine offers, and what its workers can do (a communicator of their own among them). Generic
// code asks these, never a kind by name.
import { describe } from '../tensor/ndarray.js';
import type { Device } from './device.js';
import type { DeviceGroupKind } from './device-groups.js';

/** The plain-data description of one device (structured-cloneable: a worker opens its own). */
export interface DeviceSpecBase {
  readonly kind: string;
}

/** float32 matrix-product precision of a GPU, named as torch.set_float32_matmul_precision. */
export const MATMUL_PRECISIONS = ['highest', 'high', 'medium'] as const;
/** One of {@link MATMUL_PRECISIONS}. */
export type MatmulPrecision = (typeof MATMUL_PRECISIONS)[number];

/** What fork() found for `devices: kind`: one spec per worker, or why this machine has none. */
export type DeviceListing<S> = { readonly specs: S[] } | { readonly unavailable: string };

/** One way of running a device in this process, for the one op suite over every device. */
export interface DeviceVariant {
  readonly name: string;
  /** Float tolerance of float32 results against the float64 oracle. */
  readonly tolerance: { readonly rtol: number; readonly atol: number };
  /** Loads the device's modules, then makes fresh devices synchronously (or says why it cannot run here). */
  load(): Promise<() => Device | { readonly unavailable: string }>;
}

/** A device kind as the runtime sees it before any instance exists (the controller opens none). */
export interface DeviceRegistration<S extends DeviceSpecBase = DeviceSpecBase> {
  readonly kind: S['kind'];
  /** The keys a spec of this kind may have (`kind` included), for fork's unknown-option errors. */
  readonly specKeys: readonly string[];
  /** Checks a spec's values (its keys are already known good); throws naming `what` and the key. */
  checkSpec(spec: Readonly<Record<string, unknown>>, what: string): void;
  /** Opens the device a spec describes (in the worker thread that runs on it). */
  open(spec: S): Promise<Device>;
  /** The specs of fork({ devices: kind, n }): n workers (default: every instance), or why none. */
  list(n: number | undefined): Promise<DeviceListing<S>>;
  /** fork({ devices: 'auto' }) takes the usable kind of highest priority; absent: never chosen by 'auto'. */
  readonly autoPriority?: number;
  /** Workers compute in this process's memory (host arrays), so ranks can share arrays in place. */
  readonly sharesHostMemory: boolean;
  /**
   * The communicator the workers of a fork on devices of this kind form between them, for arrays
   * that stay on the device (CUDA: NCCL); loads its module on first use. Absent: no such group.
   */
  readonly deviceGroup?: () => Promise<DeviceGroupKind>;
  /** The spec with fork's `matmulPrecision` applied, for devices it concerns. */
  withMatmulPrecision?(spec: S, precision: MatmulPrecision): S;
  /** Ways to run it in one process, for the op suite. */
  readonly variants: readonly DeviceVariant[];
}

/** The spec type of a registration. */
export type SpecOf<R> = R extends DeviceRegistration<infer S> ? S : never;

/** Spec-check helpers the registrations share: a clear error naming the key and what came. */
export const specChecks = {
  bool(spec: Readonly<Record<string, unknown>>, key: string, what: string): void {
    if (spec[key] !== undefined && typeof spec[key] !== 'boolean') throw new TypeError(`${what}.${key}: expected a boolean, got ${describe(spec[key])}`);
  },
  count(spec: Readonly<Record<string, unknown>>, key: string, least: number, what: string): void {
    const v = spec[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < least)) {
      throw new RangeError(`${what}.${key}: expected an integer >= ${least}, got ${describe(v)}`);
    }
  },
  precision(value: unknown, what: string): void {
    if (value !== undefined && !MATMUL_PRECISIONS.includes(value as MatmulPrecision)) {
      throw new RangeError(`${what} must be 'highest', 'high' or 'medium', got ${JSON.stringify(value) ?? String(value)}`);
    }
  },
};
