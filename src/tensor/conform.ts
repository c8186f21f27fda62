// The one cast rule for every value that enters the library: function inputs, T.shared and
// setValue, Data, and the values given to collectives. Up-casts are implicit; down-casts and
// float-to-integer conversions are refused unless the caller passes forceCast; untyped values
// (numbers, booleans, nested arrays) are accepted when every element is exactly representable.
import { type DType, canUpcast } from './dtype.js';
import { NDArray, shapeToString, sizeOf } from './ndarray.js';

export interface ConformOptions {
  /** Convert even when the conversion loses information (down-casts, float to integer). */
  readonly forceCast?: boolean;
  /** Names the value in errors, e.g. "input 0 'x'". */
  readonly what?: string;
  /** The exact shape required (a plain typed array only needs the same size). */
  readonly shape?: readonly number[];
}

/** Whether a number survives conversion to `dtype` unchanged (float32 rounding allowed). */
export function representable(v: number, dtype: DType): boolean {
  switch (dtype) {
    case 'bool':
      return v === 0 || v === 1;
    case 'uint8':
      return Number.isInteger(v) && v >= 0 && v <= 255;
    case 'int32':
      return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
    case 'float32':
    case 'float64':
      return true;
    default:
      return dtype satisfies never;
  }
}

/** A typed array with its shape, accepted wherever an array is. */
export interface ShapedArray { readonly data: ArrayLike<number>; readonly shape: readonly number[] }

function isShapedArray(value: unknown): value is ShapedArray {
  return typeof value === 'object' && value !== null && !(value instanceof NDArray) && !Array.isArray(value) && !ArrayBuffer.isView(value)
    && 'data' in value && 'shape' in value;
}

/**
 * Converts a value to an NDArray of `dtype`. Typed values (NDArray, typed arrays) follow the cast
 * rule: up-casts are implicit, down-casts need forceCast. Untyped values (numbers, booleans, nested
 * JS arrays) are accepted when every element is exactly representable (float32 rounding allowed),
 * otherwise they need forceCast. With `shape`, the value must have that shape (a plain typed array
 * only needs the same size). Never writes into anything: the caller stores the result.
 */
export function conformValue(value: unknown, dtype: DType, options: ConformOptions = {}): NDArray {
  const what = options.what ?? 'value';
  const forceCast = options.forceCast === true;
  const shape = options.shape;
  let out: NDArray;
  if (isShapedArray(value)) {
    out = conformValue(NDArray.from(value.data, { shape: value.shape, what }), dtype, { forceCast, what });
  } else if (value instanceof NDArray || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    const src = NDArray.from(value, { what });
    if (!forceCast && !canUpcast(src.dtype, dtype)) {
      throw new TypeError(`${what}: expected dtype ${dtype} (or one that up-casts to it), got ${src.dtype}; down-casts need forceCast: true`);
    }
    out = src.dtype === dtype ? src : src.astype(dtype);
    if (shape !== undefined && !(value instanceof NDArray) && out.size === sizeOf(shape)) out = out.reshape(shape);
  } else {
    const raw = NDArray.from(value, { what, dtype: 'float64' });
    if (!forceCast) {
      const bad = raw.data.findIndex((v) => !representable(v, dtype));
      if (bad >= 0) {
        throw new TypeError(`${what}: element ${bad} (${raw.data[bad]}) is not exactly representable as ${dtype}; pass forceCast: true to convert it`);
      }
    }
    out = dtype === 'float64' ? raw : raw.astype(dtype);
  }
  if (shape !== undefined && shapeToString(out.shape) !== shapeToString(shape)) {
    throw new RangeError(`${what}: expected shape ${shapeToString(shape)}, got ${shapeToString(out.shape)}`);
  }
  return out;
}
