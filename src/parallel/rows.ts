// Reading a rank's rows out of Data (shared memory) or out of a local array.
import { NDArray } from '../tensor/ndarray.js';
import { gatherRows, type DataHandle } from './data.js';
import type { Rows } from './split.js';

export function dataRows(handle: DataHandle, rows: Rows): NDArray {
  return gatherRows(handle, rows.kind === 'range' ? { start: rows.start, stop: rows.stop } : rows.indices);
}

/** Rows of a local array: a view for a range, a copy for an index list. Bounds are checked. */
export function takeRows(a: NDArray, rows: Rows, what: string): NDArray {
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
