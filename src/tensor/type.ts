// Theano's tensor type: a dtype plus a broadcastable pattern (ndim fixed, sizes symbolic).
// Every graph node, slot and shared variable carries one, and code generators turn its dtype
// into source text, so the constructor admits only the five dtypes and a plain list of booleans.
import { assertDType, previewValue, type DType } from './dtype.js';

const NDIM_NAMES = ['scalar', 'vector', 'matrix', 'tensor3', 'tensor4'];

/** More axes than any device indexes (CUDA kernels take one parameter per axis). */
export const MAX_NDIM = 64;

/** A copy of a broadcastable pattern, or a TypeError naming `what` when it is not a list of at most MAX_NDIM booleans. */
export function checkBroadcastable(value: unknown, what: string): boolean[] {
  if (!Array.isArray(value)) throw new TypeError(`${what}: expected a list of booleans (one per axis), got ${previewValue(value)}`);
  if (value.length > MAX_NDIM) throw new RangeError(`${what}: at most ${MAX_NDIM} axes are supported, got ${value.length}`);
  const out: boolean[] = [];
  for (let i = 0; i < value.length; i++) {
    const b: unknown = value[i];
    if (typeof b !== 'boolean') throw new TypeError(`${what}[${i}]: expected true or false, got ${previewValue(b)}`);
    out.push(b);
  }
  return out;
}

/** The static type of a symbolic variable, as in Theano: a dtype and a broadcastable pattern (its length is the rank). */
export class TensorType {
  readonly dtype: DType;
  /** One flag per axis: true when that axis is known to have size 1 (and so broadcasts). */
  readonly broadcastable: readonly boolean[];

  constructor(dtype: DType, broadcastable: readonly boolean[]) {
    this.dtype = assertDType(dtype, 'TensorType: dtype');
    this.broadcastable = Object.freeze(checkBroadcastable(broadcastable, 'TensorType: broadcastable'));
    // Frozen: a type checked once cannot be changed into one that was never checked.
    Object.freeze(this);
  }

  /** The type of `ndim` axes, none of them broadcastable. */
  static ofNdim(dtype: DType, ndim: number): TensorType {
    if (!Number.isSafeInteger(ndim) || ndim < 0) throw new RangeError(`TensorType.ofNdim: ndim must be a non-negative integer, got ${ndim}`);
    return new TensorType(dtype, new Array<boolean>(ndim).fill(false));
  }

  get ndim(): number {
    return this.broadcastable.length;
  }

  /** The same pattern with another dtype. */
  withDtype(dtype: DType): TensorType {
    return new TensorType(dtype, this.broadcastable);
  }

  /** Whether both have the same dtype and broadcastable pattern. */
  equals(other: TensorType): boolean {
    return this.dtype === other.dtype && this.ndim === other.ndim && this.broadcastable.every((b, i) => b === other.broadcastable[i]);
  }

  /** e.g. "float32 matrix" or "int32 tensor5(True, False, ...)" */
  toString(): string {
    const kind = NDIM_NAMES[this.ndim] ?? `tensor${this.ndim}`;
    const pattern = this.broadcastable.some((b) => b) ? `(${this.broadcastable.map((b) => (b ? 'B' : '-')).join('')})` : '';
    return `${this.dtype} ${kind}${pattern}`;
  }
}
