// The one row selection of the runtime: which rows along axis 0 a rank reads, of a Data, of a host
// array or of an array on a device (a device that selects rows itself implements Device.takeRows).
import { NDArray } from '../tensor/ndarray.js';

/** A selection of rows of a data set: a contiguous range [start, stop) or an explicit index list. */
export type Rows = { readonly kind: 'range'; readonly start: number; readonly stop: number } | { readonly kind: 'list'; readonly indices: Int32Array };

/** How many rows a selection holds. */
export function rowCount(rows: Rows): number {
  return rows.kind === 'range' ? rows.stop - rows.start : rows.indices.length;
}

/** Rows of a host array: a view for a range, a copy for an index list. Bounds are checked. */
export function takeHostRows(a: NDArray, rows: Rows, what: string): NDArray {
  if (a.ndim === 0) throw new TypeError(`${what}: a scalar has no rows to select`);
  const n = a.shape[0]!;
  const rowSize = a.size / Math.max(1, n) || a.shape.slice(1).reduce((x, y) => x * y, 1);
  const tail = a.shape.slice(1);
  if (rows.kind === 'range') {
    if (rows.start < 0 || rows.stop > n || rows.start > rows.stop) throw new RangeError(`${what}: rows ${rows.start}..${rows.stop} are outside 0..${n}`);
    return new NDArray(a.dtype, [rows.stop - rows.start, ...tail], a.data.subarray(rows.start * rowSize, rows.stop * rowSize));
  }
  const out = new NDArray(a.dtype, [rows.indices.length, ...tail]);
  rows.indices.forEach((r, i) => {
    if (r < 0 || r >= n) throw new RangeError(`${what}: row index ${r} is outside 0..${n - 1}`);
    out.data.set(a.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
  });
  return out;
}
