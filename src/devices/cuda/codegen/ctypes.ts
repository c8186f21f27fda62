// C types of the five dtypes (and of bfloat16 storage), and the store conversions that give
// castScalar's results. Generated CUDA source only ever contains text from these closed tables (and
// numbers checked to be numbers): a dtype that is not one of the five is refused, never pasted.
import { DTYPES, isDType, previewValue, type DType } from '../../../tensor/dtype.js';
import type { Storage } from '../storage.js';

const CTYPE: Readonly<Record<Storage, string>> = {
  bool: 'unsigned char',
  uint8: 'unsigned char',
  int32: 'int',
  float32: 'float',
  float64: 'double',
  // The prelude's struct: converts to float when read and rounds (nearest, ties to even) when assigned a float.
  bfloat16: 'sk_bf16',
};

const TAG: Readonly<Record<Storage, string>> = { bool: 'b', uint8: 'u8', int32: 'i32', float32: 'f32', float64: 'f64', bfloat16: 'bf16' };

const STORE: Readonly<Record<Storage, string>> = {
  bool: 'st_bool',
  uint8: 'st_uint8',
  int32: 'st_int32',
  float32: 'st_float32',
  float64: 'st_float64',
  bfloat16: 'st_bfloat16',
};

/** The dtype (or bfloat16 storage) itself, or a TypeError: every table lookup goes through this (plain objects also answer 'constructor'). */
function checked(dtype: unknown): Storage {
  if (dtype !== 'bfloat16' && !isDType(dtype)) throw new TypeError(`cuda codegen: dtype ${previewValue(dtype)} is not one of ${DTYPES.join(', ')}`);
  return dtype;
}

/** The C type that stores a dtype (bool is a byte holding 0 or 1), or bfloat16 storage. */
export function ctype(dtype: Storage): string {
  return CTYPE[checked(dtype)];
}

/** A short identifier-safe tag for a dtype or storage, used in kernel names. */
export function dtag(dtype: Storage): string {
  return TAG[checked(dtype)];
}

/**
 * The C function that converts any arithmetic value to `dtype` as castScalar does: floats round,
 * int32 and uint8 truncate and wrap (non-finite values give 0), bool is `x != 0` (NaN is true, as in NumPy).
 */
export function storeFn(dtype: Storage): string {
  return STORE[checked(dtype)];
}

/** A C literal of a number in a given dtype (NaN and infinities through the prelude's macros). */
export function literal(value: number, dtype: DType): string {
  const t = ctype(dtype);
  if (typeof value !== 'number') throw new TypeError(`cuda codegen: a literal must be a number, got ${previewValue(value)}`);
  if (Number.isNaN(value)) return `(${t})SK_NAN_D`;
  if (value === Infinity) return `(${t})SK_INF_D`;
  if (value === -Infinity) return `(${t})(-SK_INF_D)`;
  if (dtype === 'float32') return `${value.toPrecision(9)}f`.replace(/^(-?\d+)f$/, '$1.0f');
  if (dtype === 'float64') return value.toPrecision(17).replace(/^(-?\d+)$/, '$1.0');
  return `(${t})${Math.trunc(value)}`;
}
