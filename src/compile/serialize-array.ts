// NDArray <-> JSON-safe form (NaN and infinities survive as strings).
import { NDArray, shapeToString, sizeOf } from '../tensor/ndarray.js';
import type { SerializedArray } from './program.js';

export function serializeArray(a: NDArray): SerializedArray {
  const values: (number | string)[] = new Array(a.size);
  for (let i = 0; i < a.size; i++) {
    const v = a.data[i]!;
    values[i] = Number.isFinite(v) ? v : String(v);
  }
  return { dtype: a.dtype, shape: [...a.shape], values };
}

/** The array of a serialised form; the values must fill the shape exactly (never padded nor cut). */
export function deserializeArray(s: SerializedArray): NDArray {
  if (s.values.length !== sizeOf(s.shape)) throw new RangeError(`deserializeArray: ${s.values.length} values do not fill shape ${shapeToString(s.shape)}`);
  const out = new NDArray(s.dtype, s.shape);
  s.values.forEach((v, i) => { out.data[i] = typeof v === 'number' ? v : Number(v); });
  return out;
}
