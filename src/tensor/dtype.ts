// Element types, their storage, and the casting rules shared by the whole library.

/** The five element types, from narrowest to widest. */
export const DTYPES = ['bool', 'uint8', 'int32', 'float32', 'float64'] as const;
/** An element type: `'bool'`, `'uint8'`, `'int32'`, `'float32'` (the default) or `'float64'`. */
export type DType = (typeof DTYPES)[number];

/** The typed arrays that hold tensor data (bool and uint8 are both stored as Uint8Array). */
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;
/** The constructor of a {@link TypedArray}. */
export type TypedArrayConstructor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor;

/** The default float type, as Theano's floatX. */
export const FLOAT_X: DType = 'float32';

const STORAGE: Record<DType, TypedArrayConstructor> = {
  bool: Uint8Array,
  uint8: Uint8Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** Rank in the promotion lattice: a dtype can be safely cast to any of higher rank. */
const RANK: Record<DType, number> = { bool: 0, uint8: 1, int32: 2, float32: 3, float64: 4 };

/** Whether a value names one of the {@link DTYPES}. */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

/** Returns `value` as a dtype, or throws a TypeError naming `what`, the accepted dtypes and what came. */
export function assertDType(value: unknown, what: string): DType {
  if (!isDType(value)) {
    throw new TypeError(`${what}: expected a dtype (${DTYPES.join(', ')}), got ${previewValue(value)}`);
  }
  return value;
}

/**
 * A short, safe rendering of an arbitrary value for error messages: strings quoted and cut at 40
 * characters, objects named by kind (never serialised: they may be huge, cyclic or deeply nested).
 */
export function previewValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `a ${typeof value}`;
}

/** The typed-array constructor that stores `dtype`. */
export function storageOf(dtype: DType): TypedArrayConstructor {
  return STORAGE[dtype];
}

/** Bytes per element of `dtype` (1 for bool). */
export function bytesPerElement(dtype: DType): number {
  return STORAGE[dtype].BYTES_PER_ELEMENT;
}

/** Whether `dtype` is float32 or float64. */
export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** Whether `dtype` is int32 or uint8 (bool is not an integer type here). */
export function isInteger(dtype: DType): boolean {
  return dtype === 'int32' || dtype === 'uint8';
}

/** Whether `dtype` is bool. */
export function isBool(dtype: DType): boolean {
  return dtype === 'bool';
}

/** True when every value of `from` is represented exactly (or as closely as NumPy's safe casts) in `to`. */
export function canUpcast(from: DType, to: DType): boolean {
  if (from === to) return true;
  if (from === 'int32' && to === 'float32') return true; // NumPy would say float64; Theano's floatX rule allows it
  return RANK[from] < RANK[to];
}

/** The result dtype of combining several dtypes (NumPy-like promotion on our five types). */
export function upcast(...dtypes: DType[]): DType {
  let best: DType = 'bool';
  for (const d of dtypes) if (RANK[d] > RANK[best]) best = d;
  return best;
}

/** Float result type for ops such as exp or mean: integers become floatX, floats stay. */
export function floatResult(dtype: DType): DType {
  return isFloat(dtype) ? dtype : FLOAT_X;
}

/** Converts a number to what storing it in `dtype` yields (used for scalar constants and casts). */
export function castScalar(value: number, dtype: DType): number {
  switch (dtype) {
    case 'bool':
      return value !== 0 ? 1 : 0; // NaN is truthy, as in NumPy
    case 'uint8':
      return Number.isFinite(value) ? Math.trunc(value) & 0xff : 0;
    case 'int32':
      return Number.isFinite(value) ? Math.trunc(value) | 0 : 0;
    case 'float32':
      return Math.fround(value);
    case 'float64':
      return value;
    default:
      return dtype satisfies never;
  }
}

/** The dtype a JS typed array maps to (Uint8Array is read as uint8). */
export function dtypeOfTypedArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  return 'uint8';
}
