// Reduce operations of the collectives: names, validation and in-place elementwise combines.
// Pure tables over typed arrays, below every communicator (device ones included); comm/reduce-ops.ts
// re-exports them.
import { type DType, type TypedArray, isFloat } from '../tensor/dtype.js';

export const REDUCE_OPS = ['sum', 'avg', 'prod', 'max', 'min'] as const;
/** The reduce op of a collective: `sum`, `avg` (float dtypes only), `prod`, `max` or `min`. */
export type ReduceOp = (typeof REDUCE_OPS)[number];

export function isReduceOp(value: unknown): value is ReduceOp {
  return typeof value === 'string' && (REDUCE_OPS as readonly string[]).includes(value);
}

/**
 * Checks a reduce op (and, when a dtype is given, that the op applies to it: `avg` needs a float
 * dtype). Throws a TypeError naming `what`, the expected values and what came.
 */
export function assertReduceOp(value: unknown, what: string, dtype?: DType): ReduceOp {
  if (!isReduceOp(value)) {
    throw new TypeError(`${what}: expected a reduce op (${REDUCE_OPS.join(', ')}), got ${JSON.stringify(value) ?? String(value)}`);
  }
  if (value === 'avg' && dtype !== undefined && !isFloat(dtype)) {
    throw new TypeError(`${what}: 'avg' needs a float dtype (float32 or float64), got ${dtype}; use 'sum' for integer or bool data`);
  }
  return value;
}

/** Numeric code of an op, for shared-memory headers (1-based, 0 = none). */
export function reduceOpCode(op: ReduceOp): number {
  return REDUCE_OPS.indexOf(op) + 1;
}

export function reduceOpFromCode(code: number): ReduceOp | undefined {
  return REDUCE_OPS[code - 1];
}

export interface CombineOptions {
  /** Element range [start, end) to combine (default: the whole of `acc`). */
  start?: number;
  end?: number;
  /** 'bool' makes sum/max a logical or and prod/min a logical and; other dtypes change nothing. */
  dtype?: DType;
}

/**
 * acc[i] = acc[i] (op) other[i] over a range, in place. `avg` combines as `sum` (divide once at the
 * end with `finishAvg`). Integer arithmetic wraps like NumPy (the typed array store truncates),
 * float32 results are rounded on store, and NaN propagates through max and min (NumPy's
 * maximum/minimum). `other` must be at least as long as the range.
 */
export function combineInto(op: ReduceOp, acc: TypedArray, other: TypedArray, options: CombineOptions = {}): void {
  const start = options.start ?? 0;
  const end = options.end ?? acc.length;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > acc.length || end > other.length) {
    throw new RangeError(
      `combineInto: range [${start}, ${end}) does not fit acc (length ${acc.length}) and other (length ${other.length})`,
    );
  }
  if (options.dtype === 'bool') {
    combineBool(op, acc, other, start, end);
    return;
  }
  switch (op) {
    case 'sum':
    case 'avg':
      for (let i = start; i < end; i++) acc[i] = acc[i]! + other[i]!;
      return;
    case 'prod':
      for (let i = start; i < end; i++) acc[i] = acc[i]! * other[i]!;
      return;
    case 'max':
      for (let i = start; i < end; i++) {
        const x = acc[i]!;
        const y = other[i]!;
        if (!(x >= y || x !== x)) acc[i] = y; // keeps x when x is NaN, takes y when y is NaN
      }
      return;
    case 'min':
      for (let i = start; i < end; i++) {
        const x = acc[i]!;
        const y = other[i]!;
        if (!(x <= y || x !== x)) acc[i] = y;
      }
      return;
    default:
      op satisfies never;
  }
}

function combineBool(op: ReduceOp, acc: TypedArray, other: TypedArray, start: number, end: number): void {
  const or = op === 'sum' || op === 'avg' || op === 'max';
  if (or) for (let i = start; i < end; i++) acc[i] = acc[i]! !== 0 || other[i]! !== 0 ? 1 : 0;
  else for (let i = start; i < end; i++) acc[i] = acc[i]! !== 0 && other[i]! !== 0 ? 1 : 0;
}

/** Divides a summed range by the number of contributions (the end of an `avg`). */
export function finishAvg(acc: TypedArray, count: number, start = 0, end = acc.length): void {
  if (!(count > 0)) throw new RangeError(`finishAvg: count must be positive, got ${count}`);
  if (count === 1) return;
  for (let i = start; i < end; i++) acc[i] = acc[i]! / count;
}
