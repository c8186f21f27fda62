// Setting up the device communicators of a fork's workers (NCCL between GPUs).
//
// fork() allocates one small SharedArrayBuffer (the bootstrap) and hands it to every worker. Rank 0
// writes a fresh group id into it and raises a flag; the others wait for the flag (bounded),
// then every rank counts itself in and waits for the rest (bounded), so that every rank enters the
// blocking join (ncclCommInitRank) only once all of them are about to. A rank that fails before that
// (its device did not open, the library is missing) marks the bootstrap failed, and the others
// throw at once, naming it, instead of waiting inside the join for a rank that never comes.
//
// This module loads no device code itself (runtime.ts imports it on machines without a GPU too).
import { isMainThread } from 'node:worker_threads';
import type { Device } from '../devices/device.js';
import { DEVICE_GROUP_ID_BYTES, deviceGroupOf, type DeviceCommunicator, type DeviceGroupKind } from '../comm/device-groups.js';
import { type ShmGroupInit, abortShmGroup, shmGroupAbortState } from '../comm/shm.js';
import type { WorkerPool } from './pool.js';
import { describeAbort } from '../comm/shm-group.js';
import { CommAbortedError, CommTimeoutError } from '../comm/communicator.js';

const STATE = 0; // 0: waiting for the id, 1: id written, 2: a rank failed
const ARRIVED = 1;
const FAILED_RANK = 2;
const ID_OFFSET = 16;
/** Bytes of the bootstrap buffer: the flags, then the group id. */
export const NCCL_BOOTSTRAP_BYTES = ID_OFFSET + DEVICE_GROUP_ID_BYTES;
const DEFAULT_JOIN_TIMEOUT_MS = 120_000;

/** The buffer fork() passes to the workers of a device group (one per fork: an id serves one group). */
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
function waitFor(i32: Int32Array, index: number, ready: () => boolean, deadline: number, rank: number, what: string, name: string): void {
  for (;;) {
    if (Atomics.load(i32, STATE) === 2) {
      throw new CommAbortedError(`${name} rank ${rank}: ${what}: rank ${Atomics.load(i32, FAILED_RANK)} failed before joining the communicator`);
    }
    if (ready()) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new CommTimeoutError(`${name} rank ${rank}: ${what}: the other ranks did not arrive in time`);
    if (isMainThread) throw new Error(`${name} rank ${rank}: ${what}: a multi-rank bootstrap must run in worker threads`);
    Atomics.wait(i32, index, Atomics.load(i32, index), Math.min(left, 50));
  }
}

export interface JoinOptions {
  /** Bound on the wait for the other ranks before the group is entered (default 2 minutes). */
  readonly joinTimeoutMs?: number;
  /** Default bound on every collective. */
  readonly timeoutMs?: number;
  /** Polled during collectives: a reason when the group was aborted elsewhere. */
  readonly abortProbe?: () => string | null;
  /**
   * With many nodes: this worker's place in the job-wide group (global rank = node * GPUs per node +
   * local GPU), and whether it creates the id (node 0's rank 0); the other nodes' controllers write
   * node 0's id into their bootstrap (relayDeviceGroupId). Without it the group is this fork's alone.
   */
  readonly span?: { readonly globalRank: number; readonly globalSize: number; readonly createsId: boolean };
}

/**
 * Joins the device group of a fork as `rank` of `size`. Blocks the calling (worker) thread until
 * every rank has joined; throws CommAbortedError (naming the rank) when the group refuses.
 */
export async function joinDeviceGroup(
  group: DeviceGroupKind,
  device: Device,
  bootstrap: SharedArrayBuffer,
  rank: number,
  size: number,
  options: JoinOptions = {},
): Promise<DeviceCommunicator> {
  const i32 = new Int32Array(bootstrap, 0, 4);
  const id = new Uint8Array(bootstrap, ID_OFFSET, group.idBytes);
  const deadline = performance.now() + (options.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS);
  const name = group.name;
  try {
    group.check(device, rank);
    if (options.span ? options.span.createsId : rank === 0) {
      group.newGroupId(device, id, rank);
      if (Atomics.compareExchange(i32, STATE, 0, 1) !== 0) waitFor(i32, STATE, () => false, deadline, rank, 'publishing the unique id', name);
      Atomics.notify(i32, STATE);
    } else {
      waitFor(i32, STATE, () => Atomics.load(i32, STATE) === 1, deadline, rank, 'waiting for rank 0\'s unique id', name);
    }
    Atomics.add(i32, ARRIVED, 1);
    Atomics.notify(i32, ARRIVED);
    waitFor(i32, ARRIVED, () => Atomics.load(i32, ARRIVED) >= size, deadline, rank, `waiting for ${size} ranks`, name);
    const [joinRank, joinSize] = options.span ? [options.span.globalRank, options.span.globalSize] : [rank, size];
    return group.join(device, id, joinRank, joinSize, {
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.abortProbe ? { abortProbe: options.abortProbe } : {}),
    });
  } catch (e) {
    failNcclBootstrap(bootstrap, rank);
    throw e;
  }
}

/**
 * {@link joinDeviceGroup} over the group that devices of `kind` form (as its registration says: for
 * 'cuda', NCCL), whatever `device` is: the group's own check refuses a device it cannot join.
 */
export async function joinDeviceGroupOf(
  kind: string,
  device: Device,
  bootstrap: SharedArrayBuffer,
  rank: number,
  size: number,
  options: JoinOptions = {},
): Promise<DeviceCommunicator> {
  let group: DeviceGroupKind | undefined;
  try {
    group = await deviceGroupOf(kind);
    if (!group) throw new TypeError(`rank ${rank}: devices of kind '${kind}' form no device group`);
  } catch (e) {
    failNcclBootstrap(bootstrap, rank);
    throw e;
  }
  return joinDeviceGroup(group, device, bootstrap, rank, size, options);
}

/**
 * The controller's part of a device group over many nodes: node 0 (`isSource`) waits for its rank
 * 0's id (or failure) in the bootstrap and broadcasts it through `broadcast` (MPI, from node 0);
 * every other node receives it and publishes it in its own bootstrap, where its workers wait for it.
 * Runs in the main thread while the workers start (it polls; it never blocks the event loop).
 */
export async function relayDeviceGroupId(
  bootstrap: SharedArrayBuffer, isSource: boolean, broadcast: (message: Uint8Array) => Promise<unknown>, timeoutMs = DEFAULT_JOIN_TIMEOUT_MS,
): Promise<void> {
  const i32 = new Int32Array(bootstrap, 0, 4);
  const id = new Uint8Array(bootstrap, ID_OFFSET, DEVICE_GROUP_ID_BYTES);
  // The message: state (1 id, 2 failed) and the failed rank as two int32 words, then the id.
  const message = new Uint8Array(new SharedArrayBuffer(8 + DEVICE_GROUP_ID_BYTES));
  const words = new Int32Array(message.buffer, 0, 2);
  if (isSource) {
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(i32, STATE) === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    const state = Atomics.load(i32, STATE);
    words[0] = state === 1 ? 1 : 2;
    words[1] = state === 2 ? Atomics.load(i32, FAILED_RANK) : -1;
    message.set(id, 8);
  }
  await broadcast(message);
  if (isSource) return;
  if (words[0] !== 1) {
    failNcclBootstrap(bootstrap, words[1]!);
    return;
  }
  id.set(message.subarray(8));
  Atomics.compareExchange(i32, STATE, 0, 1); // a local failure (state 2) stays
  Atomics.notify(i32, STATE);
}

/** A probe that reports the pool's shared-memory group being aborted (a peer died or failed). */
export function shmAbortProbe(init: ShmGroupInit | null): (() => string | null) | undefined {
  if (!init) return undefined;
  return () => {
    const state = shmGroupAbortState(init);
    return state ? describeAbort(state.reason, state.rank) : null;
  };
}

/**
 * How long the controller waits for its workers to abort their device groups before MPI_Abort goes
 * ahead anyway: an abort that hangs (a worker stuck in a device call) must not keep the job alive.
 */
export const DEVICE_ABORT_BOUND_MS = 500;

/**
 * When the job is being aborted: the pool's shared-memory group is aborted (a worker waiting in a
 * collective, NCCL's included through its abort probe, leaves it), then every worker is interrupted
 * and aborts its device group (DeviceCommunicator.abort: ncclCommAbort), each at its next wait for
 * a call; the controller waits for them up to `boundMs`, blocking (MPI_Abort follows, nothing else).
 */
export function abortWorkersDeviceGroups(
  pool: WorkerPool, deviceGroup: boolean, boundMs = DEVICE_ABORT_BOUND_MS,
): { answered: number; of: number; ms: number } {
  if (pool.commInit) abortShmGroup(pool.commInit, 'aborted');
  const r = pool.interrupt(boundMs);
  const what = deviceGroup ? 'aborted their device group' : 'stopped (no device group)';
  const late = r.answered < r.of ? `; ${r.of - r.answered} did not answer within ${boundMs} ms, MPI_Abort goes ahead` : '';
  process.stderr.write(`synkhronos: before MPI_Abort, ${r.answered} of ${r.of} workers ${what} in ${r.ms.toFixed(0)} ms${late}\n`);
  return r;
}
