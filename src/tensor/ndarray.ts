// A concrete, contiguous, row-major array: the value type of inputs, outputs and shared variables.
import { inspect } from 'node:util';
import {
  type DType,
  type TypedArray,
  FLOAT_X,
  castScalar,
  dtypeOfTypedArray,
  storageOf,
  assertDType,
} from './dtype.js';
import { arrayRepr } from './format-array.js';

/** A shape: one non-negative integer per axis (empty for a scalar). */
export type Shape = readonly number[];
/** A number, boolean or nested JS array of them, as `NDArray.toArray()` gives and the functions accept. */
export type NestedArray = number | boolean | readonly NestedArray[];

export { sizeOf, stridesOf } from './shape-math.js';
import { sizeOf, stridesOf } from './shape-math.js';

export function shapeToString(shape: Shape): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

export function assertShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(`${what}: expected a shape (an array of non-negative integers), got ${JSON.stringify(shape)}`);
  }
  return [...(shape as number[])];
}

/**
 * A concrete n-dimensional array: a dtype, a shape and row-major data in a typed array. Functions take and return these.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * const a = T.NDArray.from([[1, 2, 3], [4, 5, 6]]);   // float32, shape [2, 3]
 * console.log(a.shape, a.get(1, -1), a.reshape([3, 2]).toArray());
 * const z = new T.NDArray('int32', [4]);              // zeros
 * console.log(z.toString(), T.NDArray.scalar(2.5, 'float64').item());
 * ```
 */
export class NDArray {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;

  constructor(dtype: DType, shape: Shape, data?: TypedArray) {
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    const size = sizeOf(shape);
    if (data === undefined) {
      this.data = new (storageOf(dtype))(size);
    } else {
      if (data.length !== size) {
        throw new RangeError(`NDArray: data has ${data.length} elements, shape ${shapeToString(shape)} needs ${size}`);
      }
      if (!(data instanceof storageOf(dtype))) {
        throw new TypeError(`NDArray: ${dtype} needs a ${storageOf(dtype).name}, got a ${data.constructor.name}`);
      }
      this.data = data;
    }
  }

  get ndim(): number {
    return this.shape.length;
  }

  get size(): number {
    return this.data.length;
  }

  /** An array of zeros. */
  static zeros(shape: Shape, dtype: DType = FLOAT_X): NDArray {
    return new NDArray(dtype, shape);
  }

  /** An array with every element `value`. */
  static full(shape: Shape, value: number, dtype: DType = FLOAT_X): NDArray {
    const a = new NDArray(dtype, shape);
    a.data.fill(castScalar(value, dtype));
    return a;
  }

  /** A 0-d array holding `value`. */
  static scalar(value: number, dtype: DType = FLOAT_X): NDArray {
    return NDArray.full([], value, dtype);
  }

  /**
   * Builds an NDArray from a nested JS array, a number, a typed array (1-d unless a shape is given)
   * or another NDArray (copied only when the dtype changes).
   */
  static from(value: unknown, options: { dtype?: DType; shape?: Shape; what?: string } = {}): NDArray {
    const what = options.what ?? 'value';
    if (value instanceof NDArray) {
      const dtype = options.dtype ?? value.dtype;
      const shape = options.shape ?? value.shape;
      if (sizeOf(shape) !== value.size) {
        throw new RangeError(`${what}: cannot view ${value.size} elements as shape ${shapeToString(shape)}`);
      }
      return dtype === value.dtype ? new NDArray(dtype, shape, value.data) : castData(value.data, dtype, shape);
    }
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const typed = value as unknown as TypedArray;
      if (!(typed instanceof Float32Array || typed instanceof Float64Array || typed instanceof Int32Array || typed instanceof Uint8Array)) {
        throw new TypeError(`${what}: typed arrays must be Float32Array, Float64Array, Int32Array or Uint8Array, got ${(value as object).constructor.name}`);
      }
      const shape = options.shape ?? [typed.length];
      if (sizeOf(shape) !== typed.length) {
        throw new RangeError(`${what}: ${typed.length} elements do not fill shape ${shapeToString(shape)}`);
      }
      const dtype = options.dtype ?? dtypeOfTypedArray(typed);
      return dtype === dtypeOfTypedArray(typed) && typed instanceof storageOf(dtype)
        ? new NDArray(dtype, shape, typed)
        : castData(typed, dtype, shape);
    }
    if (typeof value === 'number' || typeof value === 'boolean') {
      const dtype = options.dtype ?? (typeof value === 'boolean' ? 'bool' : FLOAT_X);
      return NDArray.full(options.shape ?? [], Number(value), dtype);
    }
    if (Array.isArray(value)) {
      const shape = nestedShape(value, what);
      const flat = new Array<number>(sizeOf(shape));
      let allBool = true;
      let k = 0;
      const walk = (v: NestedArray, depth: number): void => {
        if (depth === shape.length) {
          if (typeof v === 'boolean') flat[k++] = v ? 1 : 0;
          else if (typeof v === 'number') {
            allBool = false;
            flat[k++] = v;
          } else throw new TypeError(`${what}: expected a number at depth ${depth}, got ${typeof v}`);
          return;
        }
        const arr = v as readonly NestedArray[];
        if (!Array.isArray(arr) || arr.length !== shape[depth]) {
          throw new RangeError(`${what}: ragged nested array (expected length ${shape[depth]} at depth ${depth})`);
        }
        for (const item of arr) walk(item, depth + 1);
      };
      walk(value as NestedArray, 0);
      const dtype = options.dtype ?? (allBool && flat.length > 0 ? 'bool' : FLOAT_X);
      const out = new NDArray(dtype, shape);
      for (let i = 0; i < flat.length; i++) out.data[i] = castScalar(flat[i]!, dtype);
      if (options.shape && sizeOf(options.shape) === out.size) return new NDArray(dtype, options.shape, out.data);
      if (options.shape) throw new RangeError(`${what}: nested array of shape ${shapeToString(shape)} does not fit ${shapeToString(options.shape)}`);
      return out;
    }
    throw new TypeError(`${what}: expected a number, nested array, typed array or NDArray, got ${describe(value)}`);
  }

  /** Same data, another shape of the same size (no copy). */
  reshape(shape: Shape): NDArray {
    return NDArray.from(this, { shape });
  }

  /** A copy converted to `dtype` (always a new array, even for the same dtype). */
  astype(dtype: DType): NDArray {
    assertDType(dtype, 'astype');
    return dtype === this.dtype ? this.copy() : castData(this.data, dtype, this.shape);
  }

  /** A copy with its own data. */
  copy(): NDArray {
    return new NDArray(this.dtype, this.shape, this.data.slice());
  }

  /** Element at a multi-index (negative indices count from the end). */
  get(...index: number[]): number {
    if (index.length !== this.ndim) throw new RangeError(`NDArray.get: expected ${this.ndim} indices, got ${index.length}`);
    let flat = 0;
    const strides = stridesOf(this.shape);
    for (let i = 0; i < index.length; i++) {
      const d = this.shape[i]!;
      let j = index[i]!;
      if (j < 0) j += d;
      if (!Number.isInteger(j) || j < 0 || j >= d) throw new RangeError(`NDArray.get: index ${index[i]} out of range for axis ${i} of size ${d}`);
      flat += j * strides[i]!;
    }
    return this.data[flat]!;
  }

  /** The value as a nested JS array (a number for 0-d; booleans for bool). */
  toArray(): NestedArray {
    const asValue = (x: number): number | boolean => (this.dtype === 'bool' ? x !== 0 : x);
    if (this.ndim === 0) return asValue(this.data[0]!);
    const build = (offset: number, axis: number): NestedArray[] => {
      const n = this.shape[axis]!;
      const stride = sizeOf(this.shape.slice(axis + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) {
        out.push(axis === this.ndim - 1 ? asValue(this.data[offset + i]!) : build(offset + i * stride, axis + 1));
      }
      return out;
    };
    return build(0, 0);
  }

  /** A scalar's value (the single element of a size-1 array). */
  item(): number {
    if (this.size !== 1) throw new RangeError(`NDArray.item: array of shape ${shapeToString(this.shape)} is not a single element`);
    return this.data[0]!;
  }

  /**
   * NumPy's repr, e.g. `array([[0.1, 0.2],\n       [nan, inf]], dtype=float32)`: summarised with `...`
   * past 1000 elements, each dtype at its own precision (see format-array.ts for the rules).
   */
  toString(): string {
    return arrayRepr(this);
  }

  /** console.log and util.inspect print the repr rather than the fields. */
  [inspect.custom](): string {
    return arrayRepr(this);
  }
}

function castData(src: ArrayLike<number>, dtype: DType, shape: Shape): NDArray {
  const out = new NDArray(dtype, shape);
  const dst = out.data;
  if (dtype === 'float64' || dtype === 'float32') {
    for (let i = 0; i < src.length; i++) dst[i] = src[i]!;
  } else {
    for (let i = 0; i < src.length; i++) dst[i] = castScalar(src[i]!, dtype);
  }
  return out;
}

function nestedShape(value: unknown, what: string): number[] {
  const shape: number[] = [];
  let v: unknown = value;
  while (Array.isArray(v)) {
    shape.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  if (shape.length > 32) throw new RangeError(`${what}: nested array too deep`);
  return shape;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof NDArray) return `an NDArray(${value.dtype}, ${shapeToString(value.shape)})`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`;
  return `${typeof value} ${String(value)}`;
}
