// How rows are divided: across ranks (as evenly as possible, in rank order) and within a rank into slices.
import { rowCount, type Rows } from '../devices/rows.js';

// Rows is defined once, in devices/rows.ts; re-exported for modules that read it from here.
export { rowCount, type Rows } from '../devices/rows.js';

/** Split points 0 = p0 <= p1 <= ... <= pn = length, differing by at most one (NumPy linspace rounding). */
export function splitPoints(length: number, parts: number): number[] {
  const points: number[] = [];
  for (let i = 0; i <= parts; i++) points.push(splitPoint(length, parts, i));
  return points;
}

/** Split point i of `length` rows in `parts` pieces: the same value splitPoints(length, parts)[i] has. */
function splitPoint(length: number, parts: number, i: number): number {
  return Math.round((i * length) / parts);
}

/** The k-th of `parts` even pieces of a selection (O(1): a call may have as many slices as rows). */
export function pieceOf(rows: Rows, parts: number, k: number): Rows {
  const length = rowCount(rows);
  const a = splitPoint(length, parts, k);
  const b = splitPoint(length, parts, k + 1);
  return rows.kind === 'range' ? { kind: 'range', start: rows.start + a, stop: rows.start + b } : { kind: 'list', indices: rows.indices.subarray(a, b) };
}

/** Rows relative to the selection (0..length), for Data marked `minibatch`. */
export function relativeRows(rows: Rows, parts: number, k: number): Rows {
  const length = rowCount(rows);
  return { kind: 'range', start: splitPoint(length, parts, k), stop: splitPoint(length, parts, k + 1) };
}
