// Setting up the NCCL communicators of GPU workers, and finding a worker's one again.
//
// fork() allocates one small SharedArrayBuffer (the bootstrap) and hands it to every worker. Rank 0
// writes a fresh ncclUniqueId into it and raises a flag; the others wait for the flag (bounded),
// then every rank counts itself in and waits for the rest (bounded), so that every rank enters the
// blocking ncclCommInitRank only once all of them are about to. A rank that fails before that
// (its device did not open, the library is missing) marks the bootstrap failed, and the others
// throw at once, naming it, instead of waiting inside NCCL for a rank that never comes.
//
// This module loads no CUDA code itself (runtime.ts imports it on machines without a GPU too).
import { isMainThread } from 'node:worker_threads';
import type { Device } from '../devices/device.js';
import type { NcclCommunicator } from '../comm/nccl.js';
import { type ShmGroupInit, shmGroupAbortState } from '../comm/shm.js';
import { describeAbort } from '../comm/shm-group.js';
import { CommAbortedError, CommTimeoutError } from '../comm/communicator.js';

const STATE = 0; // 0: waiting for the id, 1: id written, 2: a rank failed
const ARRIVED = 1;
const FAILED_RANK = 2;
const ID_OFFSET = 16;
const ID_BYTES = 128;
export const NCCL_BOOTSTRAP_BYTES = ID_OFFSET + ID_BYTES;
const DEFAULT_JOIN_TIMEOUT_MS = 120_000;
/** The pool command that makes GPU workers destroy their communicator and close their device. */
export const CMD_RELEASE_GPU = 3;

/** The buffer fork() passes to GPU workers (one per fork: a unique id serves one communicator). */
export function createNcclBootstrap(): SharedArrayBuffer {
  return new SharedArrayBuffer(NCCL_BOOTSTRAP_BYTES);
}

export function isNcclBootstrap(value: unknown): value is SharedArrayBuffer {
  return value instanceof SharedArrayBuffer && value.byteLength >= NCCL_BOOTSTRAP_BYTES;
}

/** Marks the bootstrap failed by `rank`, so that the ranks still waiting stop (idempotent). */
export function failNcclBootstrap(bootstrap: SharedArrayBuffer, rank: number): void {
  const i32 = new Int32Array(bootstrap, 0, 4);
  if (Atomics.compareExchange(i32, STATE, 0, 2) === 0 || Atomics.compareExchange(i32, STATE, 1, 2) === 1) Atomics.store(i32, FAILED_RANK, rank);
  Atomics.notify(i32, STATE);
  Atomics.notify(i32, ARRIVED);
}

/** Waits until `ready()` or the bootstrap failed; throws on failure or past the deadline. */
function waitFor(i32: Int32Array, index: number, ready: () => boolean, deadline: number, rank: number, what: string): void {
  for (;;) {
    if (Atomics.load(i32, STATE) === 2) {
      throw new CommAbortedError(`NCCL rank ${rank}: ${what}: rank ${Atomics.load(i32, FAILED_RANK)} failed before joining the communicator`);
    }
    if (ready()) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new CommTimeoutError(`NCCL rank ${rank}: ${what}: the other ranks did not arrive in time`);
    if (isMainThread) throw new Error(`NCCL rank ${rank}: ${what}: a multi-rank bootstrap must run in worker threads`);
    Atomics.wait(i32, index, Atomics.load(i32, index), Math.min(left, 50));
  }
}

export interface JoinOptions {
  /** Bound on the wait for the other ranks before NCCL is entered (default 2 minutes). */
  readonly joinTimeoutMs?: number;
  /** Default bound on every collective. */
  readonly timeoutMs?: number;
  /** Polled during collectives: a reason when the group was aborted elsewhere. */
  readonly abortProbe?: () => string | null;
}

/**
 * Joins the NCCL group of a fork as `rank` of `size` on a CUDA device. Blocks the calling (worker)
 * thread until every rank has joined; throws CommAbortedError (naming the rank) when NCCL refuses.
 */
export async function joinNcclGroup(
  device: Device,
  bootstrap: SharedArrayBuffer,
  rank: number,
  size: number,
  options: JoinOptions = {},
): Promise<NcclCommunicator> {
  const i32 = new Int32Array(bootstrap, 0, 4);
  const id = new Uint8Array(bootstrap, ID_OFFSET, ID_BYTES);
  const deadline = performance.now() + (options.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS);
  try {
    if (device.kind !== 'cuda') throw new TypeError(`NCCL rank ${rank}: the device is ${device.kind}, not cuda`);
    const { CudaDevice } = await import('../devices/cuda/cuda-device.js');
    if (!(device instanceof CudaDevice)) throw new TypeError(`NCCL rank ${rank}: the device is not a CudaDevice`);
    const { NcclCommunicator: Comm, findNccl } = await import('../comm/nccl.js');
    const nccl = findNccl();
    if (rank === 0) {
      device.context.makeCurrent();
      nccl.getUniqueId(id);
      if (Atomics.compareExchange(i32, STATE, 0, 1) !== 0) waitFor(i32, STATE, () => false, deadline, rank, 'publishing the unique id');
      Atomics.notify(i32, STATE);
    } else {
      waitFor(i32, STATE, () => Atomics.load(i32, STATE) === 1, deadline, rank, 'waiting for rank 0\'s unique id');
    }
    Atomics.add(i32, ARRIVED, 1);
    Atomics.notify(i32, ARRIVED);
    waitFor(i32, ARRIVED, () => Atomics.load(i32, ARRIVED) >= size, deadline, rank, `waiting for ${size} ranks`);
    return Comm.join(device.context, id, rank, size, {
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.abortProbe ? { abortProbe: options.abortProbe } : {}),
    });
  } catch (e) {
    failNcclBootstrap(bootstrap, rank);
    throw e;
  }
}

/** A probe that reports the pool's shared-memory group being aborted (a peer died or failed). */
export function shmAbortProbe(init: ShmGroupInit | null): (() => string | null) | undefined {
  if (!init) return undefined;
  return () => {
    const state = shmGroupAbortState(init);
    return state ? describeAbort(state.reason, state.rank) : null;
  };
}

const byDevice = new WeakMap<Device, NcclCommunicator>();

/** Records the NCCL communicator of a worker's device. */
export function setGpuComm(device: Device, comm: NcclCommunicator): void {
  byDevice.set(device, comm);
}

/** The open NCCL communicator of a worker's device, if it has one. */
export function gpuCommOf(device: Device): NcclCommunicator | undefined {
  return byDevice.get(device);
}

/** Destroys the device's communicator (at worker exit); never throws. */
export function closeGpuComm(device: Device): void {
  const comm = byDevice.get(device);
  byDevice.delete(device);
  try { comm?.close(); } catch { /* closing anyway */ }
}
