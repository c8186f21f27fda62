// Combining results of slices (within a rank) and ranks (across ranks) by each output's reduce op.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';

export const OUTPUT_OPS = ['avg', 'sum', 'prod', 'max', 'min', 'gather', 'none'] as const;
/**
 * How a data-parallel output is combined over the workers (and over `numSlices`): `avg` (weighted by rows), `sum`,
 * `prod`, `max`, `min`, `gather` (concatenated along axis 0 in rank order) or `none` (rank 0's result).
 */
export type OutputOp = (typeof OUTPUT_OPS)[number];
export const UPDATE_OPS = ['avg', 'sum', 'prod', 'max', 'min'] as const;
/** How an update accumulates over `numSlices` pieces of one worker's call: `avg`, `sum`, `prod`, `max` or `min`. */
export type UpdateOp = (typeof UPDATE_OPS)[number];

export function isOutputOp(v: unknown): v is OutputOp {
  return typeof v === 'string' && (OUTPUT_OPS as readonly string[]).includes(v);
}

/**
 * A running combination of pieces. `avg` is kept as a row-weighted sum and divided at the end, so the
 * result equals one device on the whole batch even when pieces are uneven.
 */
export class Accumulator {
  private acc: NDArray | undefined;
  private parts: NDArray[] = [];
  private rows = 0;
  /** The dtype of the pieces (avg accumulates in float64 and casts back to it). */
  dtype: NDArray['dtype'] | undefined;

  constructor(readonly op: OutputOp, readonly what: string) {}

  add(value: NDArray, rows: number): void {
    this.dtype ??= value.dtype;
    if (this.op === 'gather') { this.parts.push(value); this.rows += rows; return; }
    if (this.op === 'none') { this.acc ??= value; this.rows += rows; return; }
    if (this.acc === undefined) {
      this.dtype = value.dtype;
      const start = new NDArray(this.op === 'avg' ? 'float64' : value.dtype, value.shape);
      start.data.set(value.data);
      if (this.op === 'avg') for (let i = 0; i < start.size; i++) start.data[i]! *= rows;
      this.acc = start;
      this.rows = rows;
      return;
    }
    const a = this.acc;
    if (a.size !== value.size || a.ndim !== value.ndim) {
      throw new RangeError(
        `${this.what}: pieces have different shapes ${shapeToString(a.shape)} and ${shapeToString(value.shape)}; use 'gather' to concatenate`,
      );
    }
    const d = a.data;
    const v = value.data;
    switch (this.op) {
      case 'avg': for (let i = 0; i < d.length; i++) d[i]! += v[i]! * rows; break;
      case 'sum': for (let i = 0; i < d.length; i++) d[i]! += v[i]!; break;
      case 'prod': for (let i = 0; i < d.length; i++) d[i]! *= v[i]!; break;
      case 'max': for (let i = 0; i < d.length; i++) { const x = v[i]!; if (x > d[i]! || x !== x) d[i] = x; } break;
      case 'min': for (let i = 0; i < d.length; i++) { const x = v[i]!; if (x < d[i]! || x !== x) d[i] = x; } break;
      default: throw new Error(`internal: unexpected op ${this.op}`);
    }
    this.rows += rows;
  }

  get totalRows(): number {
    return this.rows;
  }

  /** The combined value (for avg: still the row-weighted sum; call `finishAvg` on the global result). */
  partial(): NDArray | undefined {
    if (this.op === 'gather') return this.parts.length === 0 ? undefined : concatRows(this.parts, this.what);
    return this.acc;
  }
}

/** Divides a row-weighted sum by the total rows, casting back to the output dtype. */
export function finishAvg(weighted: NDArray, rows: number, dtype: NDArray['dtype']): NDArray {
  const out = new NDArray(dtype, weighted.shape);
  for (let i = 0; i < out.size; i++) out.data[i] = weighted.data[i]! / rows;
  return out;
}

export function concatRows(parts: readonly NDArray[], what: string): NDArray {
  const first = parts[0]!;
  if (first.ndim === 0) throw new TypeError(`${what}: 'gather' needs outputs with at least one axis (got a scalar)`);
  const tail = first.shape.slice(1);
  let rows = 0;
  for (const p of parts) {
    if (p.ndim !== first.ndim || p.shape.slice(1).some((d, i) => d !== tail[i])) {
      throw new RangeError(`${what}: cannot concatenate ${shapeToString(p.shape)} with ${shapeToString(first.shape)} along axis 0`);
    }
    rows += p.shape[0]!;
  }
  const out = new NDArray(first.dtype, [rows, ...tail]);
  let offset = 0;
  for (const p of parts) { out.data.set(p.data, offset); offset += p.size; }
  return out;
}

/** The identity of an output's combining op: what a rank with no rows contributes. */
export function identityFor(op: OutputOp, dtype: DType): number {
  switch (op) {
    case 'prod': return 1;
    case 'max': return dtype === 'float32' || dtype === 'float64' ? -Infinity : dtype === 'int32' ? -2147483648 : 0;
    case 'min': return dtype === 'float32' || dtype === 'float64' ? Infinity : dtype === 'int32' ? 2147483647 : 255;
    default: return 0;
  }
}
