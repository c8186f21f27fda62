// Theano's tensor type: a dtype plus a broadcastable pattern (ndim fixed, sizes symbolic).
import type { DType } from './dtype.js';

const NDIM_NAMES = ['scalar', 'vector', 'matrix', 'tensor3', 'tensor4'];

/** The static type of a symbolic variable, as in Theano: a dtype and a broadcastable pattern (its length is the rank). */
export class TensorType {
  readonly dtype: DType;
  /** One flag per axis: true when that axis is known to have size 1 (and so broadcasts). */
  readonly broadcastable: readonly boolean[];

  constructor(dtype: DType, broadcastable: readonly boolean[]) {
    this.dtype = dtype;
    this.broadcastable = Object.freeze([...broadcastable]);
  }

  /** The type of `ndim` axes, none of them broadcastable. */
  static ofNdim(dtype: DType, ndim: number): TensorType {
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
