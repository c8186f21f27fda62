// Checking synk.fork's options at the boundary, before anything is built or started.
import { assertChunkBytes } from '../comm/hierarchical.js';
import { describe } from '../tensor/ndarray.js';
import { checkDeviceSpec, deviceNames, type DeviceSpec, type MatmulPrecision, type RegisteredKind } from '../devices/create.js';
import { specChecks } from '../devices/registration.js';

/** Options of {@link fork}: how many workers, on which devices, GPU precision, deadlines and limits. */
export interface ForkOptions {
  /** Number of workers (default: one per device; for CPUs one per available core); at most MAX_WORKERS. */
  n?: number;
  /** 'cpu' (default: the fast CPU device when present, else reference), 'reference', 'cuda' (any registered kind), 'auto', or one spec per worker. */
  devices?: RegisteredKind | 'auto' | readonly DeviceSpec[];
  /**
   * GPU workers' float32 matrix products, named as torch.set_float32_matmul_precision: 'highest'
   * (float32, default), 'high' (TF32 tensor cores), 'medium' (bfloat16 operands, float32 sums).
   */
  matmulPrecision?: MatmulPrecision;
  /** Bound on every call in milliseconds (default 10 minutes); Infinity for none. */
  timeoutMs?: number;
  /** Per-worker resource limits (e.g. { maxOldGenerationSizeMb }). */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
  /**
   * Under an MPI launcher: several processes of the job on one host are each a node of their own,
   * sharing the host's cores (default false, SYNK_VIRTUAL_NODES=1: for tests; in production one process per host).
   */
  virtualNodes?: boolean;
  /**
   * The network interface of cross-node traffic (e.g. 'eth0', 'ib0'; default SYNK_NETWORK, else MPI's and NCCL's own choice):
   * sets Open MPI's btl_tcp_if_include, libfabric's FI_TCP_IFACE, UCX_NET_DEVICES and NCCL_SOCKET_IFNAME. One that
   * does not exist on this host is an error. The launcher's own wiring is set at launch (README, "Many machines").
   */
  network?: string;
  /** Deadline of every cross-node collective in ms (default SYNK_COMM_TIMEOUT_MS, else 60 s); past it the job is aborted. */
  commTimeoutMs?: number;
  /**
   * Bytes per piece of a large reduction across nodes (default SYNK_COMM_CHUNK_BYTES, else 4 MiB; a multiple of 64):
   * a flat gradient goes out in pieces whose MPI all-reduce overlaps the node's work on the next and the previous piece.
   */
  commChunkBytes?: number;
}

/** The most workers one fork starts (the pool's control block is sized for at most this many). */
export const MAX_WORKERS = 4096;
const FORK_KEYS = ['n', 'devices', 'matmulPrecision', 'timeoutMs', 'resourceLimits', 'virtualNodes', 'network', 'commTimeoutMs', 'commChunkBytes'] as const;
const RESOURCE_KEYS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb'] as const;

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
  } else if (devices !== undefined && !deviceNames().includes(devices as string)) {
    throw new TypeError(`fork: devices must be ${deviceNames().map((k) => `'${k}'`).join(', ')} or a list of device specs, got ${describe(devices)}`);
  }
  specChecks.precision(options['matmulPrecision'], 'fork: matmulPrecision');
  const timeoutMs = options['timeoutMs'];
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs > 0))) {
    throw new RangeError(`fork: timeoutMs must be a positive number of milliseconds (Infinity for no bound), got ${describe(timeoutMs)}`);
  }
  const virtualNodes = options['virtualNodes'];
  if (virtualNodes !== undefined && typeof virtualNodes !== 'boolean') {
    throw new TypeError(`fork: virtualNodes must be a boolean, got ${describe(virtualNodes)}`);
  }
  const network = options['network'];
  if (network !== undefined && (typeof network !== 'string' || network === '')) {
    throw new TypeError(`fork: network must be the name of a network interface such as 'eth0', got ${describe(network)}`);
  }
  const commTimeoutMs = options['commTimeoutMs'];
  if (commTimeoutMs !== undefined && (typeof commTimeoutMs !== 'number' || !(commTimeoutMs > 0))) {
    throw new RangeError(`fork: commTimeoutMs must be a positive number of milliseconds, got ${describe(commTimeoutMs)}`);
  }
  if (options['commChunkBytes'] !== undefined) assertChunkBytes(options['commChunkBytes'], 'fork: commChunkBytes');
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
