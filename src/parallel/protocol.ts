// Messages between the controller and its workers. Arrays travel as SharedArrayBuffers (no copy).
import { NDArray } from '../tensor/ndarray.js';
import { storageOf, type DType, type TypedArray } from '../tensor/dtype.js';
import type { FunctionDescription } from '../run/function.js';
import type { DataHandle } from './data.js';
import type { Rows } from '../devices/rows.js';
import type { OutputOp, UpdateOp } from './accumulate.js';
import type { ReduceOp } from '../comm/reduce-ops.js';
import type { SharedStepPlan } from './shared-step.js';

export interface ArrayMsg {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly buffer: SharedArrayBuffer;
  /** Offset in bytes. */
  readonly byteOffset: number;
  /**
   * The buffer was made for this message and nothing else holds it: a receiver that is the only one
   * may keep it as its own value instead of copying it (set by toArrayMsg when it copied).
   */
  readonly fresh?: boolean;
}

/** Shares an array's memory when it already lives in a SharedArrayBuffer, otherwise copies it into one (a fresh buffer). */
export function toArrayMsg(a: NDArray): ArrayMsg {
  if (a.data.buffer instanceof SharedArrayBuffer) return { dtype: a.dtype, shape: [...a.shape], buffer: a.data.buffer, byteOffset: a.data.byteOffset };
  const buffer = new SharedArrayBuffer(Math.max(8, a.data.byteLength));
  const copy = new (storageOf(a.dtype))(buffer as unknown as ArrayBuffer, 0, a.size) as TypedArray;
  copy.set(a.data);
  return { dtype: a.dtype, shape: [...a.shape], buffer, byteOffset: 0, fresh: true };
}

/** A view of the shared memory (no copy). */
export function fromArrayMsg(m: ArrayMsg): NDArray {
  const size = m.shape.reduce((x, y) => x * y, 1);
  return new NDArray(m.dtype, m.shape, new (storageOf(m.dtype))(m.buffer as unknown as ArrayBuffer, m.byteOffset, size) as TypedArray);
}

/** What a worker needs to run one function. */
export interface FunctionSpec {
  readonly id: number;
  readonly description: FunctionDescription;
  /** Inputs [0, nScattered) are scattered, the next nBroadcast go whole; sliceable shareds come last as inputs. */
  readonly nScattered: number;
  readonly nBroadcast: number;
  readonly sliceableIds: readonly string[];
  readonly outputOps: readonly OutputOp[];
  /** One per program update, in program order. */
  readonly updateOps: readonly UpdateOp[];
}

export interface SharedValueMsg {
  readonly sharedId: string;
  readonly name?: string;
  readonly broadcastable: readonly boolean[];
  readonly value: ArrayMsg;
  /**
   * The value is state shared by every rank (a parameter of a shared-state training step): the
   * worker views this memory instead of copying it.
   */
  readonly shareMemory?: boolean;
}

export type InputMsg =
  | { readonly kind: 'rows'; readonly data: DataHandle; readonly rows: Rows }
  | { readonly kind: 'whole'; readonly data: DataHandle };

export interface CallMsg {
  readonly kind: 'call';
  readonly fnId: number;
  readonly inputs: readonly InputMsg[];
  /** Per sliceable shared: this rank's rows of its local value, or null for all of them. */
  readonly sliceRows: readonly (Rows | null)[];
  readonly numSlices: number;
  /** Indices into the function's outputs, or null for all. */
  readonly outputSubset: readonly number[] | null;
  /** Whether some rank has no rows (then ranks agree on output shapes before reducing). */
  readonly someRankEmpty: boolean;
  /** Controller-side changes of shared values, for rank 0 only. */
  readonly sync: readonly SharedValueMsg[];
  /** A shared-state training step (shared-step.ts) to finish the call with, by plan id. */
  readonly planId?: number;
}

export type CollectiveKind = 'broadcast' | 'scatter' | 'gather' | 'allGather' | 'reduce' | 'allReduce' | 'setValue' | 'getValue' | 'getShapes';

export interface CollectiveMsg {
  readonly kind: 'collective';
  readonly op: CollectiveKind;
  readonly sharedIds: readonly string[];
  /** For broadcast / setValue: the value every (addressed) rank copies; for scatter: this rank's part. */
  readonly values?: readonly (ArrayMsg | null)[];
  readonly reduceOp?: ReduceOp;
  readonly inPlace?: boolean;
  readonly sync: readonly SharedValueMsg[];
}

export interface DefineMsg {
  readonly kind: 'define';
  readonly functions: readonly FunctionSpec[];
  readonly shareds: readonly SharedValueMsg[];
}

/**
 * Data handles for the fast path (sent once per Data and again after each reallocation), and the ids
 * of Data whose handle the workers must drop (freed, reallocated, collected on the controller, or
 * evicted from the bounded set the workers keep). Workers drop first, then take the new handles.
 */
export interface DataMsg {
  readonly kind: 'data';
  readonly handles: readonly DataHandle[];
  readonly release?: readonly number[];
}

/** The plan of a shared-state training step, sent once per fork before its first step. */
export interface PlanMsg {
  readonly kind: 'plan';
  readonly plan: SharedStepPlan;
  /** The variables the plan holds in shared memory: every rank views them from now on. */
  readonly shareds: readonly SharedValueMsg[];
}

export type ControllerMsg = CallMsg | CollectiveMsg | DefineMsg | DataMsg | PlanMsg;

export interface CallReply {
  /** Rank 0 only: the reduced outputs. */
  readonly outputs: readonly ArrayMsg[] | null;
  /** Rank 0 only: ids of the shared values it changed; the controller reads them lazily. */
  readonly changed: readonly string[];
}

export interface CollectiveReply {
  readonly values: readonly (ArrayMsg | null)[];
  readonly changed: readonly string[];
}
