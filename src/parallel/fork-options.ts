// Checking synk.fork's options at the boundary, before anything is built or started.
import { describe } from '../tensor/ndarray.js';
import { MATMUL_PRECISIONS, type DeviceSpec, type MatmulPrecision } from '../devices/create.js';

/** Options of {@link fork}: how many workers, on which devices, GPU precision, deadlines and limits. */
export interface ForkOptions {
  /** Number of workers (default: one per device; for CPUs one per available core); at most MAX_WORKERS. */
  n?: number;
  /** 'cpu' (default: the fast CPU device when present, else reference), 'reference', 'cuda', 'auto', or one spec per worker. */
  devices?: 'cpu' | 'reference' | 'cuda' | 'auto' | readonly DeviceSpec[];
  /**
   * GPU workers' float32 matrix products, named as torch.set_float32_matmul_precision: 'highest'
   * (float32, default), 'high' (TF32 tensor cores), 'medium' (bfloat16 operands, float32 sums).
   */
  matmulPrecision?: MatmulPrecision;
  /** Bound on every call in milliseconds (default 10 minutes); Infinity for none. */
  timeoutMs?: number;
  /** Per-worker resource limits (e.g. { maxOldGenerationSizeMb }). */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
}

/** The most workers one fork starts (the pool's control block is sized for at most this many). */
export const MAX_WORKERS = 4096;
const FORK_KEYS = ['n', 'devices', 'matmulPrecision', 'timeoutMs', 'resourceLimits'] as const;
const DEVICE_NAMES = ['cpu', 'reference', 'cuda', 'auto'] as const;
const RESOURCE_KEYS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb'] as const;
const SPEC_KEYS: Record<DeviceSpec['kind'], readonly string[]> = {
  reference: ['kind', 'float64'],
  cpu: ['kind', 'blasPath', 'forceFallback', 'threads'],
  cuda: ['kind', 'index', 'tf32', 'matmulPrecision'],
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkKeys(o: Record<string, unknown>, known: readonly string[], what: string): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw new TypeError(`${what}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
}

function checkDeviceSpec(spec: unknown, what: string): DeviceSpec {
  if (!isPlainObject(spec)) throw new TypeError(`${what}: expected a device spec such as { kind: 'cpu' }, got ${describe(spec)}`);
  const kind = spec['kind'];
  if (kind !== 'reference' && kind !== 'cpu' && kind !== 'cuda') {
    throw new TypeError(`${what}.kind: expected 'reference', 'cpu' or 'cuda', got ${describe(kind)}`);
  }
  checkKeys(spec, SPEC_KEYS[kind], what);
  const bool = (key: string): void => {
    if (spec[key] !== undefined && typeof spec[key] !== 'boolean') throw new TypeError(`${what}.${key}: expected a boolean, got ${describe(spec[key])}`);
  };
  const count = (key: string, least: number): void => {
    const v = spec[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < least)) {
      throw new RangeError(`${what}.${key}: expected an integer >= ${least}, got ${describe(v)}`);
    }
  };
  if (kind === 'reference') bool('float64');
  if (kind === 'cpu') {
    bool('forceFallback');
    count('threads', 1);
    const blasPath = spec['blasPath'];
    if (blasPath !== undefined && typeof blasPath !== 'string') throw new TypeError(`${what}.blasPath: expected a string, got ${describe(blasPath)}`);
  }
  if (kind === 'cuda') {
    if (spec['index'] === undefined) throw new TypeError(`${what}.index: a cuda spec needs the GPU's index`);
    count('index', 0);
    bool('tf32');
    checkPrecision(spec['matmulPrecision'], `${what}.matmulPrecision`);
  }
  return spec as unknown as DeviceSpec;
}

function checkPrecision(value: unknown, what: string): void {
  if (value !== undefined && !MATMUL_PRECISIONS.includes(value as MatmulPrecision)) {
    throw new RangeError(`${what} must be 'highest', 'high' or 'medium', got ${JSON.stringify(value) ?? String(value)}`);
  }
}

/** The options checked (nothing is built): a clear error naming the option otherwise. */
export function checkForkOptions(options: unknown): ForkOptions {
  if (options === undefined) return {};
  if (!isPlainObject(options)) {
    const hint = typeof options === 'number' ? ` (for ${options} workers: fork({ n: ${options} }))` : '';
    throw new TypeError(`fork: expected an options object or nothing, got ${describe(options)}${hint}`);
  }
  checkKeys(options, FORK_KEYS, 'fork');
  const n = options['n'];
  if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_WORKERS)) {
    throw new RangeError(`fork: n must be a positive integer of at most ${MAX_WORKERS} (workers), got ${describe(n)}`);
  }
  const devices = options['devices'];
  if (Array.isArray(devices)) {
    if (devices.length === 0) throw new RangeError('fork: devices is an empty list; give one device spec per worker');
    if (devices.length > MAX_WORKERS) throw new RangeError(`fork: devices lists ${devices.length} specs; at most ${MAX_WORKERS} workers`);
    if (n !== undefined && devices.length !== n) throw new RangeError(`fork: n is ${String(n)} but ${devices.length} devices were given`);
    devices.forEach((d, i) => checkDeviceSpec(d, `fork: devices[${i}]`));
  } else if (devices !== undefined && !DEVICE_NAMES.includes(devices as (typeof DEVICE_NAMES)[number])) {
    throw new TypeError(`fork: devices must be 'cpu', 'cuda', 'auto', 'reference' or a list of device specs, got ${describe(devices)}`);
  }
  checkPrecision(options['matmulPrecision'], 'fork: matmulPrecision');
  const timeoutMs = options['timeoutMs'];
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs > 0))) {
    throw new RangeError(`fork: timeoutMs must be a positive number of milliseconds (Infinity for no bound), got ${describe(timeoutMs)}`);
  }
  const limits = options['resourceLimits'];
  if (limits !== undefined) {
    if (!isPlainObject(limits)) throw new TypeError(`fork: resourceLimits must be an object such as { maxOldGenerationSizeMb: 512 }, got ${describe(limits)}`);
    checkKeys(limits, RESOURCE_KEYS, 'fork: resourceLimits');
    for (const key of RESOURCE_KEYS) {
      const v = limits[key];
      if (v !== undefined && (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))) {
        throw new RangeError(`fork: resourceLimits.${key} must be a positive number of MB, got ${describe(v)}`);
      }
    }
  }
  return options as ForkOptions;
}
