// Row selection and value conditioning for Data: the argument checks shared by Data's methods and
// the worker-side readers (dataView, gatherRows).
import { type DType, type TypedArray, storageOf } from '../tensor/dtype.js';
import { conformValue } from '../tensor/conform.js';
import { NDArray, describe, sizeOf } from '../tensor/ndarray.js';
import type { Rows } from '../devices/rows.js';

/** Rows along axis 0: an index (negative from the end), a range, or a list of indices. */
export type RowIndex = number | { start?: number; stop?: number } | Int32Array | readonly number[];

/** A checked selection of a Data's rows: one row (its axis dropped), or the runtime's {@link Rows}. */
export type RowSelection = { readonly kind: 'row'; readonly row: number } | Rows;

type View = new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => TypedArray;

export function assertOversize(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 1 && value <= 2)) {
    throw new RangeError(`${what}: expected a number in [1, 2], got ${describe(value)}`);
  }
  return value;
}

function rowNumber(value: unknown, length: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${what}: expected an integer, got ${describe(value)}`);
  const r = value < 0 ? value + length : value;
  if (r < 0 || r >= length) throw new RangeError(`${what}: row ${value} is out of range for length ${length}`);
  return r;
}

function bound(value: unknown, fallback: number, length: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${what}: expected an integer, got ${describe(value)}`);
  const b = value < 0 ? value + length : value;
  if (b < 0 || b > length) throw new RangeError(`${what}: ${value} is out of range for length ${length}`);
  return b;
}

/** A selection the runtime made already ({ kind: 'range' | 'list', ... }); its bounds are still checked. */
function isRows(index: unknown): index is Rows {
  if (typeof index !== 'object' || index === null) return false;
  const kind = (index as { kind?: unknown }).kind;
  return (kind === 'range' && Object.keys(index).length === 3) || (kind === 'list' && (index as { indices?: unknown }).indices instanceof Int32Array);
}

function listOf(list: ArrayLike<unknown>, length: number, what: string): Int32Array {
  const rows = new Int32Array(list.length);
  for (let i = 0; i < list.length; i++) rows[i] = rowNumber(list[i], length, `${what}[${i}]`);
  return rows;
}

function rangeOf(o: { start?: unknown; stop?: unknown }, length: number, what: string): RowSelection {
  const start = bound(o.start, 0, length, `${what}.start`);
  const stop = bound(o.stop, length, length, `${what}.stop`);
  if (stop < start) throw new RangeError(`${what}: stop ${String(o.stop)} is before start ${String(o.start)}`);
  return { kind: 'range', start, stop };
}

/** Checks a row selection against `dims` (throws naming `what`, what was expected and what came). */
export function resolveRows(index: unknown, dims: readonly number[], what: string): RowSelection {
  if (dims.length === 0) throw new RangeError(`${what}: a 0-d Data has no rows`);
  const length = dims[0]!;
  if (typeof index === 'number') return { kind: 'row', row: rowNumber(index, length, what) };
  if (isRows(index)) return index.kind === 'range' ? rangeOf(index, length, what) : { kind: 'list', indices: listOf(index.indices, length, what) };
  if (index instanceof Int32Array || Array.isArray(index)) return { kind: 'list', indices: listOf(index as ArrayLike<unknown>, length, what) };
  // Only an object literal is a range: an ArrayBuffer, a Uint32Array or a Map is not { start, stop } with both left out.
  const proto: unknown = typeof index === 'object' && index !== null ? Object.getPrototypeOf(index) : undefined;
  if (proto === Object.prototype || proto === null) {
    const extra = Object.keys(index as object).find((k) => k !== 'start' && k !== 'stop');
    if (extra !== undefined) throw new TypeError(`${what}: unknown key '${extra}' (expected { start, stop })`);
    const o = index as { start?: unknown; stop?: unknown };
    return rangeOf(o, length, what);
  }
  throw new TypeError(`${what}: expected a row index, { start, stop }, a number[] or an Int32Array of row indices, got ${describe(index)}`);
}

/** A view (no copy) of one row or a range of rows of a buffer holding `dims`. */
export function rowView(dtype: DType, buffer: SharedArrayBuffer, dims: readonly number[], sel: RowSelection): NDArray {
  const rowShape = dims.slice(1);
  const rowSize = sizeOf(rowShape);
  const Ctor = storageOf(dtype) as unknown as View;
  const bpe = storageOf(dtype).BYTES_PER_ELEMENT;
  switch (sel.kind) {
    case 'row':
      return new NDArray(dtype, rowShape, new Ctor(buffer, sel.row * rowSize * bpe, rowSize));
    case 'range':
      return new NDArray(dtype, [sel.stop - sel.start, ...rowShape], new Ctor(buffer, sel.start * rowSize * bpe, (sel.stop - sel.start) * rowSize));
    case 'list':
      throw new TypeError('rowView: an index list has no view; gather it');
    default:
      return sel satisfies never;
  }
}


/** Data's entry point to the one cast rule (see tensor/conform.ts). */
export function conditionValue(value: unknown, dtype: DType, forceCast: boolean, what: string, shape?: readonly number[]): NDArray {
  return conformValue(value, dtype, { forceCast, what, ...(shape !== undefined ? { shape } : {}) });
}
