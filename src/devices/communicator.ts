// The one Communicator interface (after PyTorch c10d's Backend): every transport (shared memory
// between worker threads, NCCL between GPUs, later MPI) implements exactly this. It sits in devices/
// because a device may bring its own communicator (the CUDA device's NCCL, as c10d keeps
// ProcessGroupNCCL with CUDA); comm/communicator.ts re-exports it for the layers above.
import { type DType, type TypedArray, dtypeOfTypedArray } from '../tensor/dtype.js';
import type { ReduceOp } from './reduce-ops.js';

export type { ReduceOp } from './reduce-ops.js';

/** Options every collective takes. */
export interface CollectiveOptions {
  /** Bound on every wait inside this call (default: the communicator's, 60 s unless configured). */
  timeoutMs?: number;
}

/** Options of the rooted collectives (broadcast, scatter, gather). */
export interface RootOptions extends CollectiveOptions {
  /** The rank that sends (broadcast, scatter) or receives (gather, reduce). Default 0. */
  root?: number;
}

/** Options of reduce and allReduce. */
export interface ReduceOptions extends RootOptions {
  /** Default 'sum'. 'avg' is sum / size and needs a float dtype. */
  op?: ReduceOp;
  /**
   * The element type when the array alone cannot say it: a Uint8Array is read as 'uint8' unless
   * this is 'bool' (then sum/max are a logical or, prod/min a logical and). Default: from the array.
   */
  dtype?: DType;
}

/**
 * A group of `size` ranks that exchange typed arrays.
 *
 * Buffers are plain TypedArrays (Float32Array, Float64Array, Int32Array, Uint8Array), flat: shapes
 * are the caller's business. In-place collectives (broadcast, reduce, allReduce) write into the
 * array they are given and resolve to it; the others allocate their results.
 *
 * THE RULE: every rank calls the same collectives in the same order, with matching arguments
 * (same root, same op, same dtype, and the same length where the collective needs it). A rank
 * that breaks it makes every rank throw CommMismatchError at that collective (where the transport
 * can tell, as the shared-memory one does) rather than exchange the wrong data. A rank that never
 * arrives makes the others throw CommTimeoutError after `timeoutMs`, and a rank that dies makes
 * them throw CommAbortedError as soon as the controller notices.
 */
export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** Copies the root's `buf` into every rank's `buf` (same length and dtype everywhere). */
  broadcast<T extends TypedArray>(buf: T, options?: RootOptions): Promise<T>;
  /**
   * The root passes `size` arrays (any lengths, one dtype); rank r receives a copy of `parts[r]`.
   * Other ranks pass null (anything they pass is ignored).
   */
  scatter(parts: readonly TypedArray[] | null, options?: RootOptions): Promise<TypedArray>;
  /**
   * Every rank contributes `buf` (lengths may differ, dtype may not); the root receives copies of
   * all of them in rank order, the others receive null. Nothing is truncated or padded.
   */
  gather(buf: TypedArray, options?: RootOptions): Promise<TypedArray[] | null>;
  /** As gather, but every rank receives every contribution in rank order. */
  allGather(buf: TypedArray, options?: CollectiveOptions): Promise<TypedArray[]>;
  /** Combines every rank's `buf` elementwise by `op` into the root's `buf` (others unchanged). */
  reduce<T extends TypedArray>(buf: T, options?: ReduceOptions): Promise<T>;
  /** Combines every rank's `buf` elementwise by `op` into every rank's `buf`. */
  allReduce<T extends TypedArray>(buf: T, options?: ReduceOptions): Promise<T>;
  /** Resolves once every rank has called it. */
  barrier(options?: CollectiveOptions): Promise<void>;
}

export const DEFAULT_COMM_TIMEOUT_MS = 60_000;

/** Base of the communicator errors. */
export class CommError extends Error {
  override name = 'CommError';
}

/** The group was aborted: a rank died or failed, the controller closed it, or a rank timed out. */
export class CommAbortedError extends CommError {
  override name = 'CommAbortedError';
}

/** This rank waited longer than `timeoutMs` for the others. */
export class CommTimeoutError extends CommError {
  override name = 'CommTimeoutError';
}

/** Ranks called different collectives, or the same one with arguments that do not agree. */
export class CommMismatchError extends CommError {
  override name = 'CommMismatchError';
}

export const COLLECTIVES = ['barrier', 'broadcast', 'scatter', 'gather', 'allGather', 'reduce', 'allReduce'] as const;
export type CollectiveName = (typeof COLLECTIVES)[number];

/** True for the four typed array kinds the library stores. */
export function isCommBuffer(value: unknown): value is TypedArray {
  return value instanceof Float32Array || value instanceof Float64Array || value instanceof Int32Array || value instanceof Uint8Array;
}

export function assertCommBuffer(value: unknown, what: string): TypedArray {
  if (!isCommBuffer(value)) {
    const got = value === null ? 'null' : typeof value === 'object' ? (value as object).constructor?.name ?? 'an object' : typeof value;
    throw new TypeError(`${what}: expected a Float32Array, Float64Array, Int32Array or Uint8Array, got ${got}`);
  }
  return value;
}

/** The dtype of a buffer, with `bool` when the caller says so for a Uint8Array. */
export function bufferDType(buf: TypedArray, declared: DType | undefined, what: string): DType {
  const own = dtypeOfTypedArray(buf);
  if (declared === undefined) return own;
  if (declared === own || (declared === 'bool' && own === 'uint8')) return declared;
  throw new TypeError(`${what}: options.dtype ${declared} does not match a ${buf.constructor.name}`);
}

export function assertTimeout(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value > 0)) {
    throw new TypeError(`${what}: expected a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}

export function assertRoot(value: unknown, size: number, what: string): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) >= size) {
    throw new RangeError(`${what}: expected an integer rank in [0, ${size}), got ${String(value)}`);
  }
  return value as number;
}
