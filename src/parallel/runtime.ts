// The controller's side of the runtime: fork, close, distribute, and keeping rank 0's shared
// values in step with the controller's (the controller's copy of a shared variable is rank 0's).
import os from 'node:os';
import type { SharedVariable } from '../tensor/variable.js';
import { NDArray } from '../tensor/ndarray.js';
import { bytesPerElement } from '../tensor/dtype.js';
import { findShared } from '../tensor/variable.js';
import { MATMUL_PRECISIONS, type DeviceSpec, type MatmulPrecision } from '../devices/create.js';
import { WorkerPool } from './pool.js';
import { createArena, encodeFastCall, readResults, writeString, CMD_FAST_CALL, CMD_FETCH_SHARED, type FastCall, type ResultEntry } from './fast-call.js';
import type { Data } from './data.js';
import { fromArrayMsg, toArrayMsg, type FunctionSpec, type SharedValueMsg, type ControllerMsg } from './protocol.js';
import { CMD_RELEASE_GPU, createNcclBootstrap } from './gpu-comm.js';

/** Options of {@link fork}. */
export interface ForkOptions {
  /** Number of workers (default: one per device; for CPUs one per available core). */
  n?: number;
  /** 'cpu' (default: the fast CPU device when present, else reference), 'reference', 'cuda', 'auto', or one spec per worker. */
  devices?: 'cpu' | 'reference' | 'cuda' | 'auto' | readonly DeviceSpec[];
  /**
   * GPU workers' float32 matrix products, named as torch.set_float32_matmul_precision: 'highest'
   * (float32, default), 'high' (TF32 tensor cores), 'medium' (bfloat16 operands, float32 sums).
   */
  matmulPrecision?: MatmulPrecision;
  /** Bound on every call (default 10 minutes). */
  timeoutMs?: number;
  /** Per-worker resource limits (e.g. { maxOldGenerationSizeMb }). */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
}

interface RuntimeState {
  readonly pool: WorkerPool;
  readonly devices: readonly DeviceSpec[];
  readonly definedFunctions: Set<number>;
  readonly definedShareds: Set<string>;
  /** The controller-side version of each shared variable that rank 0 currently holds. */
  readonly rank0Versions: Map<string, number>;
  /** Shared buffers of the fast call path: index lists in, rank 0's results out. */
  readonly arenas: { readonly scratch: SharedArrayBuffer; readonly results: SharedArrayBuffer };
  /** Data (id -> version) whose handle every worker holds. */
  readonly knownData: Map<number, number>;
  /** Every worker is on a GPU and joined the fork's NCCL communicator. */
  readonly gpu: boolean;
}

let state: RuntimeState | null = null;
let lastClose: Promise<void> | null = null;

/** Functions built with synk.fn register here so they can be distributed to any later fork. */
export interface Distributable {
  readonly spec: FunctionSpec;
  readonly shareds: readonly SharedVariable[];
}
const registry = new Map<number, Distributable>();
export function registerFunction(f: Distributable): void {
  registry.set(f.spec.id, f);
}

let deviceResolver: (kind: 'cpu' | 'cuda' | 'auto', n: number | undefined) => Promise<DeviceSpec[]> = async (_kind, n) =>
  Array.from({ length: n ?? os.availableParallelism() }, () => ({ kind: 'reference' as const }));
/** Lets device modules decide what 'cpu', 'cuda' and 'auto' mean in this build. */
export function setDeviceResolver(r: typeof deviceResolver): void {
  deviceResolver = r;
}

/**
 * Starts the workers: one thread per device (by default one per CPU core), each with its own device and a copy of every
 * function built so far. Resolves to the number of workers. A second fork without {@link close} first is refused.
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * const n = await synk.fork({ n: 2, devices: 'cpu' }); // or {}: every core; { devices: 'cuda' }: every GPU
 * console.log(`${n} workers, forked: ${synk.isForked()}, numWorkers: ${synk.numWorkers()}`);
 * await synk.close();
 * ```
 */
export async function fork(options: ForkOptions = {}): Promise<number> {
  if (state) throw new Error('fork: workers are already running; call synk.close() first');
  if (lastClose) await lastClose;
  if (options.n !== undefined && (!Number.isInteger(options.n) || options.n < 1)) throw new RangeError(`fork: n must be a positive integer, got ${String(options.n)}`);
  // The devices this build ships decide what 'cpu', 'cuda' and 'auto' mean.
  await (await import('../devices/builtin.js')).registerBuiltinDevices();
  const given = options.devices ?? 'cpu';
  let devices: DeviceSpec[];
  if (Array.isArray(given)) devices = [...given];
  else if (given === 'reference') devices = Array.from({ length: options.n ?? os.availableParallelism() }, () => ({ kind: 'reference' as const }));
  else if (given === 'cpu' || given === 'cuda' || given === 'auto') devices = await deviceResolver(given, options.n);
  else throw new TypeError(`fork: devices must be 'cpu', 'cuda', 'auto', 'reference' or a list of device specs, got ${JSON.stringify(given)}`);
  if (options.n !== undefined && devices.length !== options.n) {
    if (Array.isArray(given)) throw new RangeError(`fork: n is ${options.n} but ${devices.length} devices were given`);
  }
  if (devices.length === 0) throw new RangeError('fork: no devices found');
  const precision = options.matmulPrecision;
  if (precision !== undefined) {
    if (!MATMUL_PRECISIONS.includes(precision)) throw new RangeError(`fork: matmulPrecision must be 'highest', 'high' or 'medium', got ${JSON.stringify(precision)}`);
    devices = devices.map((d) => (d.kind === 'cuda' ? { ...d, matmulPrecision: d.matmulPrecision ?? precision } : d));
  }
  const arenas = { scratch: createArena(1 << 16), results: createArena(1 << 20) };
  // GPU workers build one NCCL communicator; rank 0 publishes its unique id in this buffer.
  const gpu = devices.every((d) => d.kind === 'cuda');
  // NVLink multicast must stay off on the machines this runs on. Set here, in the main thread: a
  // worker thread's process.env is a private copy the native NCCL library never reads.
  if (gpu) process.env['NCCL_NVLS_ENABLE'] ??= '0';
  const ncclBootstrap = gpu ? createNcclBootstrap() : null;
  const pool = await WorkerPool.start({
    n: devices.length,
    script: new URL('./worker-main.js', import.meta.url),
    workerData: { devices, arenas, ncclBootstrap },
    timeoutMs: options.timeoutMs ?? 600_000,
    ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
  });
  state = { pool, devices, definedFunctions: new Set(), definedShareds: new Set(), rank0Versions: new Map(), arenas, knownData: new Map(), gpu };
  return devices.length;
}

/** The key under which the controller's shared variables record that rank 0 holds a newer value. */
const RANK0 = { name: 'rank 0' };
const staleOnController = new Set<SharedVariable>();

/**
 * After a call that updated `shareds` on the workers, the controller's copies are stale: they are
 * read from rank 0 only when someone asks (getValue), so training loops copy nothing back per step.
 */
export function markUpdatedOnRank0(shareds: readonly SharedVariable[]): void {
  for (const v of shareds) {
    staleOnController.add(v);
    v.markDeviceCurrent(RANK0, {
      value: null,
      sync: () => fetchFromRank0(v),
      release: () => { staleOnController.delete(v); },
    });
  }
}

function fetchFromRank0(v: SharedVariable): NDArray {
  const s = state;
  if (!s) throw new Error(`shared variable ${v.name ?? v.sharedId}: its current value was on rank 0, whose workers are closed`);
  if (!s.pool.idle) throw new Error(`shared variable ${v.name ?? v.sharedId}: the workers are busy (a call or collective is in progress); await it before reading the value`);
  const length = writeString(s.arenas.scratch, v.sharedId);
  // In pieces of at most FETCH_PIECE_BYTES, so a value of any size fits the results arena.
  const perPiece = Math.floor(FETCH_PIECE_BYTES / bytesPerElement(v.dtype));
  let out: NDArray | null = null;
  for (let offset = 0; out === null || offset < out.size; offset += perPiece) {
    s.pool.callSync(CMD_FETCH_SHARED, [length, offset, perPiece]);
    const [piece, shape] = readResults(s.arenas.results);
    out ??= new NDArray(piece!.value.dtype, Array.from(shape!.value.data));
    out.data.set(piece!.value.data as ArrayLike<number>, offset);
    if (out.size === 0) break;
  }
  staleOnController.delete(v);
  return out!;
}

/** The most bytes of a shared value one synchronous fetch from rank 0 carries. */
const FETCH_PIECE_BYTES = 1 << 26;

/** Ends the workers and frees their memory. Idempotent; a later fork starts afresh. */
export async function close(): Promise<void> {
  const s = state;
  // Shared values the controller has not read yet come back from rank 0 before it goes.
  // A value that cannot be read does not stop the close (the workers must always be freed).
  if (s && s.pool.idle) {
    for (const v of [...staleOnController]) {
      try {
        v.getValue({ borrow: true });
      } catch (e) {
        v.discardDeviceCopies();
        process.emitWarning(`close: the value of shared variable ${v.name ?? v.sharedId} could not be read back from rank 0 (${(e as Error).message}); the controller keeps its older value`);
      }
    }
  }
  staleOnController.clear();
  state = null;
  // GPU workers destroy their NCCL communicator and free their GPU memory before they end.
  const release = s?.gpu && s.pool.idle ? s.pool.callAll(CMD_RELEASE_GPU, [], { timeoutMs: 30_000 }).catch(() => undefined) : null;
  if (s) lastClose = release ? release.then(() => s.pool.close()) : s.pool.close();
  if (lastClose) await lastClose;
}

/** Whether workers are running (between {@link fork} and {@link close}). */
export function isForked(): boolean {
  return state !== null;
}

/** The number of running workers; throws when not forked. */
export function numWorkers(): number {
  return requireState('numWorkers').pool.size;
}

export function requireState(what: string): RuntimeState {
  if (!state) throw new Error(`${what}: no workers are running; call await synk.fork() first (or fork again after close)`);
  return state;
}

function sharedMsg(s: SharedVariable): SharedValueMsg {
  return { sharedId: s.sharedId, ...(s.name !== undefined ? { name: s.name } : {}), broadcastable: s.broadcastable, value: toArrayMsg(s.getValue({ borrow: true })) };
}

/** Sends every function (and shared variable) the workers do not have yet. Safe to call any time. */
export async function distribute(extraShareds: readonly SharedVariable[] = []): Promise<void> {
  const s = requireState('distribute');
  const functions = [...registry.values()].filter((f) => !s.definedFunctions.has(f.spec.id));
  const shareds = new Map<string, SharedVariable>();
  for (const f of functions) for (const v of f.shareds) shareds.set(v.sharedId, v);
  for (const v of extraShareds) shareds.set(v.sharedId, v);
  const newShareds = [...shareds.values()].filter((v) => !s.definedShareds.has(v.sharedId));
  if (functions.length === 0 && newShareds.length === 0) return;
  await s.pool.broadcastMessage({ kind: 'define', functions: functions.map((f) => f.spec), shareds: newShareds.map(sharedMsg) } satisfies ControllerMsg);
  for (const f of functions) s.definedFunctions.add(f.spec.id);
  for (const v of newShareds) { s.definedShareds.add(v.sharedId); s.rank0Versions.set(v.sharedId, v.version); }
}

/** Values rank 0 must adopt before it runs something reading `shareds` (the controller changed them). */
export function syncForRank0(shareds: readonly SharedVariable[]): SharedValueMsg[] {
  const s = requireState('sync');
  const out: SharedValueMsg[] = [];
  for (const v of shareds) {
    if (s.rank0Versions.get(v.sharedId) === v.version) continue;
    out.push(sharedMsg(v));
    s.rank0Versions.set(v.sharedId, v.version);
  }
  return out;
}

/** Marks the shared variables rank 0 reports as changed: their values are fetched when read. */
export function adoptFromRank0(changedIds: readonly string[]): void {
  markUpdatedOnRank0(changedIds.flatMap((id) => findShared(id) ?? []));
}

/** Sends one message per rank and returns the replies (rejects naming the rank on failure). */
export function sendToRanks(messages: readonly ControllerMsg[]): Promise<unknown[]> {
  return requireState('call').pool.sendMessages(messages);
}

/** Sends the handles of Data the workers do not hold yet (or that were reallocated since). */
export async function sendDataHandles(datas: readonly Data[]): Promise<void> {
  const s = requireState('call');
  const fresh = datas.filter((d) => s.knownData.get(d.id) !== d.version);
  if (fresh.length === 0) return;
  const handles = [...new Map(fresh.map((d) => [d.id, d.handle()])).values()];
  await s.pool.broadcastMessage({ kind: 'data', handles } satisfies ControllerMsg);
  for (const d of fresh) s.knownData.set(d.id, d.version);
}

/** Runs a call through the control block; null when it does not fit the fast path. */
export async function fastCall(call: FastCall): Promise<ResultEntry[] | null> {
  const s = requireState('call');
  const args = encodeFastCall(call, s.arenas.scratch);
  if (!args) return null;
  await s.pool.callAll(CMD_FAST_CALL, args);
  return readResults(s.arenas.results);
}

/** For fault-injection tests: ends one worker as if it had crashed. */
export async function terminateWorkerForTesting(rank: number): Promise<void> {
  await requireState('terminateWorkerForTesting').pool.terminateWorker(rank);
}
