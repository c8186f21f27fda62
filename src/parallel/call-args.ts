// Validation of a data-parallel call's arguments, before any worker is involved.
import { NDArray, describe } from '../tensor/ndarray.js';
import { canUpcast, type DType } from '../tensor/dtype.js';
import { Data, data as makeData } from './data.js';
import { splitPoints, type Rows } from './split.js';

/** Options of a call of a data-parallel function, given after its inputs: `await f(x, y, { batch, numSlices })`. */
export interface CallOptions {
  /**
   * Which rows of the scattered inputs to use: the first n, a `{ start, stop }` range, or a list of row indices
   * (e.g. a shuffled minibatch); default all.
   */
  batch?: number | { start?: number; stop?: number } | readonly number[] | Int32Array;
  /**
   * Rows of the sliceable shared variables to use, in the same forms as `batch`: one selection for every worker, or a
   * list of one per worker.
   */
  batchS?: unknown;
  /** Each worker runs its part in this many pieces, one after the other, and combines them (to bound memory); default 1. */
  numSlices?: number;
  /** Compute only these outputs (by position). */
  outputSubset?: readonly number[];
}

const OPTION_KEYS = new Set(['batch', 'batchS', 'numSlices', 'outputSubset']);

export function isCallOptions(v: unknown): v is CallOptions {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof Data) return false;
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => OPTION_KEYS.has(k));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype && !('data' in v && 'shape' in v);
}

/** A Data of the declared dtype and ndim: given Data is used as is (or up-cast once), arrays are copied in once. */
export function asInputData(value: unknown, what: string, dtype: DType, ndim: number): Data {
  let d: Data;
  if (value instanceof Data) {
    d = value;
  } else {
    let nd: NDArray;
    try {
      const typed = value instanceof NDArray || (ArrayBuffer.isView(value) && !(value instanceof DataView));
      nd = typed ? NDArray.from(value, { what }) : NDArray.from(value, { dtype, what });
    } catch (e) {
      throw new TypeError(`${what}: expected a synk.data(), an NDArray, a typed array or a nested array, got ${describe(value)} (${(e as Error).message})`);
    }
    d = makeData(nd, { name: what });
  }
  if (d.dtype !== dtype) {
    if (!canUpcast(d.dtype, dtype)) throw new TypeError(`${what}: expected dtype ${dtype} (or one that up-casts to it), got ${d.dtype}; down-casts are refused`);
    d = makeData(d.array.astype(dtype), { name: what });
  }
  if (d.ndim !== ndim) throw new TypeError(`${what}: expected ndim ${ndim}, got shape (${d.shape.join(', ')})`);
  return d;
}

/** The rows a `batch` option selects out of `length` (validated). */
export function resolveBatch(batch: CallOptions['batch'], length: number): Rows {
  if (batch === undefined) return { kind: 'range', start: 0, stop: length };
  if (typeof batch === 'number') {
    if (!Number.isInteger(batch) || batch < 0 || batch > length) throw new RangeError(`batch: an integer n selects the first n rows and must be in [0, ${length}], got ${batch}`);
    return { kind: 'range', start: 0, stop: batch };
  }
  if (batch instanceof Int32Array || Array.isArray(batch)) {
    const indices = batch instanceof Int32Array ? batch : Int32Array.from(batch as readonly number[]);
    for (let i = 0; i < indices.length; i++) {
      const v = batch instanceof Int32Array ? indices[i]! : (batch as readonly number[])[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= length) throw new RangeError(`batch: index ${String(v)} at position ${i} is out of range for ${length} rows`);
    }
    return { kind: 'list', indices };
  }
  if (typeof batch === 'object' && batch !== null) {
    const range = batch as { start?: number; stop?: number };
    const start = range.start ?? 0;
    const stop = range.stop ?? length;
    if (!Number.isInteger(start) || !Number.isInteger(stop) || start < 0 || stop > length || start > stop) throw new RangeError(`batch: { start, stop } must satisfy 0 <= start <= stop <= ${length}, got { start: ${start}, stop: ${stop} }`);
    return { kind: 'range', start, stop };
  }
  throw new TypeError(`batch: expected an integer, { start, stop } or a list of row indices, got ${describe(batch)}`);
}

function isSelection(v: unknown): boolean {
  return v instanceof Int32Array || (typeof v === 'object' && v !== null);
}

/** One selection for every rank, or one per rank; numbers are not allowed as a per-rank entry. */
export function resolveBatchS(batchS: unknown, ranks: number): (Rows | null)[] {
  const one = (sel: unknown, what: string): Rows => {
    if (typeof sel === 'number') {
      if (!Number.isInteger(sel) || sel < 0) throw new RangeError(`${what}: an integer n selects the first n rows and must be >= 0, got ${sel}`);
      return { kind: 'range', start: 0, stop: sel };
    }
    if (sel instanceof Int32Array || (Array.isArray(sel) && sel.every((x) => typeof x === 'number'))) {
      const indices = Int32Array.from(sel as ArrayLike<number>);
      indices.forEach((x, i) => { if (x < 0 || !Number.isInteger((sel as ArrayLike<number>)[i]!)) throw new RangeError(`${what}: index ${(sel as ArrayLike<number>)[i]} at position ${i} is not a valid row`); });
      return { kind: 'list', indices };
    }
    if (typeof sel === 'object' && sel !== null && !Array.isArray(sel)) {
      const { start = 0, stop } = sel as { start?: number; stop?: number };
      if (stop === undefined || !Number.isInteger(start) || !Number.isInteger(stop) || start < 0 || start > stop) throw new RangeError(`${what}: { start, stop } needs integers with 0 <= start <= stop, got ${JSON.stringify(sel)}`);
      return { kind: 'range', start, stop };
    }
    throw new TypeError(`${what}: expected an integer, { start, stop } or a list of row indices, got ${describe(sel)}`);
  };
  if (Array.isArray(batchS) && batchS.length > 0 && batchS.every(isSelection) && !batchS.every((x) => typeof x === 'number')) {
    if (batchS.length !== ranks) throw new RangeError(`batchS: one selection per rank needs ${ranks} entries, got ${batchS.length}`);
    return batchS.map((sel, r) => one(sel, `batchS[${r}]`));
  }
  const shared = one(batchS, 'batchS');
  return new Array<Rows | null>(ranks).fill(shared);
}

export function assertNumSlices(v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`numSlices: expected an integer >= 1, got ${describe(v)}`);
  return v;
}

/** Whether some rank gets no rows when `length` rows are split over `ranks`. */
export function someRankEmpty(length: number, ranks: number): boolean {
  const p = splitPoints(length, ranks);
  return p.some((x, i) => i > 0 && x === p[i - 1]);
}
