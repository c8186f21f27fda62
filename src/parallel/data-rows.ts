// Row selection and value conditioning for Data: the argument checks shared by Data's methods and
// the worker-side readers (dataView, gatherRows).
import { type DType, type TypedArray, storageOf } from '../tensor/dtype.js';
import { conformValue } from '../tensor/conform.js';
import { NDArray, describe, sizeOf } from '../tensor/ndarray.js';

/** Rows along axis 0: an index (negative from the end), a range, or a list of indices. */
export type RowIndex = number | { start?: number; stop?: number } | Int32Array | readonly number[];

export type RowSelection =
  | { kind: 'row'; row: number }
  | { kind: 'range'; start: number; stop: number }
  | { kind: 'rows'; rows: Int32Array };

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

/** Checks a row selection against `dims` (throws naming `what`, what was expected and what came). */
export function resolveRows(index: unknown, dims: readonly number[], what: string): RowSelection {
  if (dims.length === 0) throw new RangeError(`${what}: a 0-d Data has no rows`);
  const length = dims[0]!;
  if (typeof index === 'number') return { kind: 'row', row: rowNumber(index, length, what) };
  if (index instanceof Int32Array || Array.isArray(index)) {
    const list = index as ArrayLike<unknown>;
    const rows = new Int32Array(list.length);
    for (let i = 0; i < list.length; i++) rows[i] = rowNumber(list[i], length, `${what}[${i}]`);
    return { kind: 'rows', rows };
  }
  // Only an object literal is a range: an ArrayBuffer, a Uint32Array or a Map is not { start, stop } with both left out.
  const proto: unknown = typeof index === 'object' && index !== null ? Object.getPrototypeOf(index) : undefined;
  if (proto === Object.prototype || proto === null) {
    const extra = Object.keys(index as object).find((k) => k !== 'start' && k !== 'stop');
    if (extra !== undefined) throw new TypeError(`${what}: unknown key '${extra}' (expected { start, stop })`);
    const o = index as { start?: unknown; stop?: unknown };
    const start = bound(o.start, 0, length, `${what}.start`);
    const stop = bound(o.stop, length, length, `${what}.stop`);
    if (stop < start) throw new RangeError(`${what}: stop ${String(o.stop)} is before start ${String(o.start)}`);
    return { kind: 'range', start, stop };
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
    case 'rows':
      throw new TypeError('rowView: an index list has no view; gather it');
    default:
      return sel satisfies never;
  }
}


/** Data's entry point to the one cast rule (see tensor/conform.ts). */
export function conditionValue(value: unknown, dtype: DType, forceCast: boolean, what: string, shape?: readonly number[]): NDArray {
  return conformValue(value, dtype, { forceCast, what, ...(shape !== undefined ? { shape } : {}) });
}
