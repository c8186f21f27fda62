// Fast reductions (sum, mean, prod, max, min, and sumToLike) over any set of axes. Size-1 axes are
// dropped and neighbouring axes of the same kind (reduced / kept) merged, so the input is read once,
// in order, with a contiguous inner loop: a running scalar when the innermost axes are reduced, a
// row of accumulators when they are kept (e.g. a mean over axis 0). Accumulation is in float64 in
// the input's row-major order, as the reference does, so float64 results agree exactly. A float sum
// over the leading axes (a bias gradient) of a large input runs in WebAssembly SIMD (wasm-chain.ts),
// in the same order, so it gives the same bits.
import type { NDArray, Shape } from '../../tensor/ndarray.js';
import { castScalar, type DType, type TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import type { ReduceAttrs } from '../../ops/reduce.js';
import { reducedShape } from '../../ops/layout.js';
import { reference, type Kernel, type RunContext } from './kernel-types.js';
import { ChainKernel, type ChainInput } from './wasm-chain-driver.js';
import { wasmPays } from './elementwise-kernel.js';

const columnSumKernels: Partial<Record<'float32' | 'float64', ChainKernel>> = {};

/** The chain kernel that only sums its input's columns (compiled on first use). */
function columnSums(dtype: 'float32' | 'float64'): ChainKernel {
  return (columnSumKernels[dtype] ??= new ChainKernel({
    steps: [{ op: 'cast', attrs: { dtype }, args: [0], dtype }], lane: dtype === 'float32' ? 'f32' : 'f64',
    inner: ['s'], advance: [true], stores: [], colsum: 0,
  }));
}

export type ReduceKind = 'sum' | 'mean' | 'prod' | 'max' | 'min';

const INIT: Record<ReduceKind, number> = { sum: 0, mean: 0, prod: 1, max: -Infinity, min: Infinity };

type RunFn = (x: TypedArray, p: number, n: number, s: number) => number;
type RowFn = (x: TypedArray, p: number, n: number, acc: Float64Array, o: number) => void;

const RUN: Record<ReduceKind, RunFn> = {
  sum: (x, p, n, s) => { for (let i = 0; i < n; i++) s += x[p + i]!; return s; },
  mean: (x, p, n, s) => { for (let i = 0; i < n; i++) s += x[p + i]!; return s; },
  prod: (x, p, n, s) => { for (let i = 0; i < n; i++) s *= x[p + i]!; return s; },
  max: (x, p, n, s) => { for (let i = 0; i < n; i++) { const v = x[p + i]!; if (v > s || v !== v) s = v; } return s; },
  min: (x, p, n, s) => { for (let i = 0; i < n; i++) { const v = x[p + i]!; if (v < s || v !== v) s = v; } return s; },
};

const ROW: Record<ReduceKind, RowFn> = {
  sum: (x, p, n, acc, o) => { for (let i = 0; i < n; i++) acc[o + i] = acc[o + i]! + x[p + i]!; },
  mean: (x, p, n, acc, o) => { for (let i = 0; i < n; i++) acc[o + i] = acc[o + i]! + x[p + i]!; },
  prod: (x, p, n, acc, o) => { for (let i = 0; i < n; i++) acc[o + i] = acc[o + i]! * x[p + i]!; },
  max: (x, p, n, acc, o) => { for (let i = 0; i < n; i++) { const v = x[p + i]!; const s = acc[o + i]!; if (v > s || v !== v) acc[o + i] = v; } },
  min: (x, p, n, acc, o) => { for (let i = 0; i < n; i++) { const v = x[p + i]!; const s = acc[o + i]!; if (v < s || v !== v) acc[o + i] = v; } },
};

const x32 = (x: TypedArray, kind: ReduceKind): boolean => (kind === 'sum' || kind === 'mean') && x instanceof Float32Array;
const sumF32: RunFn = (x, p, n, s) => {
  const v = x as Float32Array;
  for (let i = 0; i < n; i++) s += v[p + i]!;
  return s;
};
const rowSumF32: RowFn = (x, p, n, acc, o) => {
  const v = x as Float32Array;
  for (let i = 0; i < n; i++) acc[o + i] = acc[o + i]! + v[p + i]!;
};

/**
 * Folds `a` over `axes` into `acc` (one float64 per output element, initialised here). Returns the
 * number of elements folded into each output element.
 */
export function reduceToAccumulators(kind: ReduceKind, a: NDArray, axes: readonly number[], acc: Float64Array, simd = true): number {
  acc.fill(INIT[kind]);
  let count = 1;
  for (const ax of axes) count *= a.shape[ax]!;
  if (a.size === 0) return count;
  // Merged groups of (size, reduced?), size-1 axes dropped.
  const sizes: number[] = [];
  const reduced: boolean[] = [];
  a.shape.forEach((d, ax) => {
    if (d === 1) return;
    const r = axes.includes(ax);
    if (sizes.length > 0 && reduced[reduced.length - 1] === r) sizes[sizes.length - 1]! *= d;
    else { sizes.push(d); reduced.push(r); }
  });
  if (sizes.length === 0) { sizes.push(1); reduced.push(true); }
  const g = sizes.length;
  const float = a.dtype === 'float32' || a.dtype === 'float64';
  if (simd && float && (kind === 'sum' || kind === 'mean') && g === 2 && reduced[0] && wasmPays(sizes[0]!, sizes[1]!, a.dtype === 'float32' ? 4 : 2)) {
    const input: ChainInput = { data: a.data, kind: 's', advance: true };
    columnSums(a.dtype).run(sizes[0]!, sizes[1]!, [input], [], acc);
    return count;
  }
  const outStride = new Array<number>(g).fill(0);
  for (let i = g - 1, s = 1; i >= 0; i--) if (!reduced[i]) { outStride[i] = s; s *= sizes[i]!; }
  const innerN = sizes[g - 1]!;
  const innerReduced = reduced[g - 1]!;
  // float32 sums get loops of their own: the shared ones see every dtype and stay polymorphic (3x slower
  // on a bias gradient over N·H·W). Same order, same float64 accumulators, so the same values.
  const f32 = x32(a.data, kind);
  const run = f32 ? sumF32 : RUN[kind];
  const row = f32 ? rowSumF32 : ROW[kind];
  const x = a.data;
  const idx = new Array<number>(g).fill(0);
  let o = 0;
  for (let p = 0; p < a.size; p += innerN) {
    if (innerReduced) acc[o] = run(x, p, innerN, acc[o]!);
    else row(x, p, innerN, acc, o);
    for (let ax = g - 2; ax >= 0; ax--) {
      if (++idx[ax]! < sizes[ax]!) { o += outStride[ax]!; break; }
      idx[ax] = 0;
      o -= outStride[ax]! * (sizes[ax]! - 1);
    }
  }
  return count;
}

/** Reduces into a fresh (pooled) array of `shape`, finishing means and casting to `dtype`. */
function reduceArrayFast(kind: ReduceKind, a: NDArray, axes: readonly number[], dtype: DType, shape: Shape, rt: RunContext, simd: boolean): NDArray {
  const res = rt.output(dtype, shape);
  const acc = rt.scratch('float64', res.size) as Float64Array;
  const count = reduceToAccumulators(kind, a, axes, acc, simd);
  const y = res.data;
  if (kind === 'mean') for (let i = 0; i < y.length; i++) y[i] = acc[i]! / count;
  else if (dtype === 'bool') for (let i = 0; i < y.length; i++) y[i] = castScalar(acc[i]!, dtype);
  else y.set(acc);
  return res;
}

export function reduceKernel(kind: ReduceKind): Kernel<ReduceAttrs> {
  return (step, cx) => {
    const { axes, keepdims } = step.attrs;
    const dtype = step.outType.dtype;
    const ref = reference(step);
    return (inputs, rt) => {
      const a = inputs[0]!;
      // max/min of an empty axis has no identity: the reference raises the error.
      if ((kind === 'max' || kind === 'min') && axes.some((ax) => a.shape[ax] === 0)) return ref(inputs);
      return reduceArrayFast(kind, a, axes, dtype, reducedShape(a.shape, axes, keepdims), rt, cx.simd !== false);
    };
  };
}

/** sumToLike(g, like): g summed over the axes where like has (or broadcasts as) size 1. */
export const sumToLikeKernel: Kernel<Attrs> = (step, cx) => {
  const dtype = step.outType.dtype;
  const ref = reference(step);
  return (inputs, rt) => {
    const [g, like] = inputs as [NDArray, NDArray];
    const lead = g.ndim - like.ndim;
    if (lead < 0 || g.dtype !== dtype) return ref(inputs);
    const axes: number[] = [];
    for (let i = 0; i < g.ndim; i++) {
      if (i < lead) axes.push(i);
      else if (like.shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
      else if (like.shape[i - lead] !== g.shape[i]) return ref(inputs);
    }
    if (axes.length === 0) return ref(inputs);
    return reduceArrayFast('sum', g, axes, dtype, like.shape, rt, cx.simd !== false);
  };
};
