// Reading a rank's rows out of Data (shared memory).
import type { NDArray } from '../tensor/ndarray.js';
import { gatherRows, type DataHandle } from './data.js';
import type { Rows } from '../devices/rows.js';

/** A rank's rows of a Data: a view for a range, a copy for an index list. */
export function dataRows(handle: DataHandle, rows: Rows): NDArray {
  return gatherRows(handle, rows);
}
