// Array layout helpers shared by reference implementations: transpose and axis reduction.
import { NDArray, sizeOf, stridesOf, type Shape } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';
import { castScalar, storageOf } from '../tensor/dtype.js';
import { forEachBroadcast } from './broadcast.js';

/** A copy of `a` with axes permuted: output axis i is input axis perm[i]. */
export function transposeArray(a: NDArray, perm: readonly number[]): NDArray {
  const outShape = perm.map((p) => a.shape[p]!);
  const inStrides = stridesOf(a.shape);
  const permStrides = perm.map((p) => inStrides[p]!);
  const out = new NDArray(a.dtype, outShape);
  const n = out.size;
  if (n === 0) return out;
  const ndim = outShape.length;
  const counter = new Array<number>(ndim).fill(0);
  let src = 0;
  const s = a.data;
  const d = out.data;
  for (let i = 0; i < n; i++) {
    d[i] = s[src]!;
    for (let ax = ndim - 1; ax >= 0; ax--) {
      counter[ax]!++;
      src += permStrides[ax]!;
      if (counter[ax]! < outShape[ax]!) break;
      src -= permStrides[ax]! * outShape[ax]!;
      counter[ax] = 0;
    }
  }
  return out;
}

/** Shape after reducing `axes` (kept as size 1 when keepdims). */
export function reducedShape(shape: Shape, axes: readonly number[], keepdims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/**
 * Folds `a` over `axes` with `combine`, starting from `init`, accumulating in float64, then maps each
 * accumulator through `finish(acc, count)` and stores as `dtype`.
 */
export function reduceArray(
  a: NDArray, axes: readonly number[], keepdims: boolean, dtype: DType,
  init: number, combine: (acc: number, x: number) => number, finish: (acc: number, count: number) => number = (x) => x,
): NDArray {
  const kept = reducedShape(a.shape, axes, true);
  const acc = new Float64Array(sizeOf(kept)).fill(init);
  const src = a.data;
  forEachBroadcast(a.shape, [kept], (i, off) => {
    const o = off[0]!;
    acc[o] = combine(acc[o]!, src[i]!);
  });
  const count = axes.reduce((n, ax) => n * a.shape[ax]!, 1);
  const outShape = reducedShape(a.shape, axes, keepdims);
  const data = new (storageOf(dtype))(acc.length);
  const exact = dtype === 'float32' || dtype === 'float64';
  for (let i = 0; i < acc.length; i++) {
    const v = finish(acc[i]!, count);
    data[i] = exact ? v : castScalar(v, dtype);
  }
  return new NDArray(dtype, outShape, data);
}

export function normalizeAxes(axes: readonly number[], ndim: number): number[] {
  return [...new Set(axes.map((a) => (a < 0 ? a + ndim : a)))].sort((x, y) => x - y);
}
