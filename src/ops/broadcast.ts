// NumPy broadcasting: at build time over broadcastable patterns, at run time over shapes.
import { NDArray, shapeToString, sizeOf, stridesOf, type Shape } from '../tensor/ndarray.js';
import type { DType, TypedArray } from '../tensor/dtype.js';
import { castScalar } from '../tensor/dtype.js';
import { OpRuntimeError } from './op.js';

/** Output broadcastable pattern: ndims aligned on the right, an axis broadcasts only if every input's does. */
export function broadcastPattern(patterns: readonly (readonly boolean[])[]): boolean[] {
  const ndim = Math.max(0, ...patterns.map((p) => p.length));
  const out = new Array<boolean>(ndim).fill(true);
  for (const p of patterns) {
    const offset = ndim - p.length;
    for (let i = 0; i < p.length; i++) if (!p[i]) out[offset + i] = false;
  }
  return out;
}

/** Runtime broadcast of shapes (NumPy rules) or an error naming the op and the shapes. */
export function broadcastShapes(op: string, shapes: readonly Shape[]): number[] {
  const ndim = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(ndim).fill(1);
  for (const s of shapes) {
    const offset = ndim - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!;
      const cur = out[offset + i]!;
      if (d === cur || d === 1) continue;
      if (cur === 1) out[offset + i] = d;
      else throw new OpRuntimeError(op, `shapes ${shapes.map(shapeToString).join(', ')} do not broadcast (axis ${offset + i}: ${cur} vs ${d})`);
    }
  }
  return out;
}

/** Strides (in elements) for reading `shape` as if broadcast to `outShape` (0 on broadcast axes). */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const strides = stridesOf(shape);
  const offset = outShape.length - shape.length;
  const out = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) out[offset + i] = shape[i] === 1 && outShape[offset + i] !== 1 ? 0 : strides[i]!;
  return out;
}

/**
 * Visits every element of `outShape` in row-major order, giving the flat offsets into each input.
 * The visitor receives the output index and the input offsets array (reused; do not keep it).
 */
export function forEachBroadcast(outShape: Shape, inputShapes: readonly Shape[], visit: (outIndex: number, offsets: Int32Array | number[]) => void): void {
  const n = sizeOf(outShape);
  if (n === 0) return;
  const k = inputShapes.length;
  const ndim = outShape.length;
  const strides = inputShapes.map((s) => broadcastStrides(s, outShape));
  const offsets = new Array<number>(k).fill(0);
  const counter = new Array<number>(ndim).fill(0);
  for (let idx = 0; idx < n; idx++) {
    visit(idx, offsets);
    // Advance the multi-index like an odometer, updating offsets incrementally.
    for (let ax = ndim - 1; ax >= 0; ax--) {
      counter[ax]!++;
      for (let j = 0; j < k; j++) offsets[j]! += strides[j]![ax]!;
      if (counter[ax]! < outShape[ax]!) break;
      for (let j = 0; j < k; j++) offsets[j]! -= strides[j]![ax]! * outShape[ax]!;
      counter[ax] = 0;
    }
  }
}

/** Applies a scalar function elementwise with broadcasting, storing results as `dtype`. */
export function mapBroadcast(op: string, inputs: readonly NDArray[], dtype: DType, fn: (...args: number[]) => number): NDArray {
  const outShape = broadcastShapes(op, inputs.map((a) => a.shape));
  const out = new NDArray(dtype, outShape);
  const dst = out.data;
  const datas: TypedArray[] = inputs.map((a) => a.data);
  const exactFloat = dtype === 'float32' || dtype === 'float64';
  const store = exactFloat ? (i: number, v: number) => { dst[i] = v; } : (i: number, v: number) => { dst[i] = castScalar(v, dtype); };
  const sameShape = inputs.every((a) => a.size === out.size && a.ndim === out.ndim);
  if (sameShape) {
    const args = new Array<number>(datas.length);
    for (let i = 0; i < out.size; i++) {
      for (let j = 0; j < datas.length; j++) args[j] = datas[j]![i]!;
      store(i, fn(...args));
    }
    return out;
  }
  const args = new Array<number>(datas.length);
  forEachBroadcast(outShape, inputs.map((a) => a.shape), (i, offsets) => {
    for (let j = 0; j < datas.length; j++) args[j] = datas[j]![offsets[j]!]!;
    store(i, fn(...args));
  });
  return out;
}
