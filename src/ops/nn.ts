// Neural-network ops: softmax and logSoftmax (stable, max-shifted), the row-wise class pick used
// by cross-entropy with integer labels, and (spread in from conv.ts and pool.ts) conv2d and
// 2-d pooling. The cross-entropy functions themselves are compositions in src/build/build-nn.ts.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { floatResult, isFloat, isInteger } from '../tensor/dtype.js';
import { OpRuntimeError, OpTypeError, type OpDef } from './op.js';
import { convOps } from './conv.js';
import { poolOps } from './pool.js';
import { batchNormOps } from './batchnorm.js';

export type AxisAttrs = { readonly axis: number };
type NoAttrs = Record<string, never>;

function axisType(op: string, inputs: readonly TensorType[], attrs: AxisAttrs): TensorType {
  if (inputs.length !== 1) throw new OpTypeError(op, inputs, `expects 1 input, got ${inputs.length}`);
  const t = inputs[0]!;
  if (t.ndim === 0) throw new OpTypeError(op, inputs, 'needs an input with at least one axis');
  if (!Number.isInteger(attrs.axis) || attrs.axis < 0 || attrs.axis >= t.ndim)
    throw new OpTypeError(op, inputs, `axis ${attrs.axis} is out of range for ndim ${t.ndim}`);
  return new TensorType(floatResult(t.dtype), t.broadcastable);
}

/**
 * Calls `row(get, set, n)` once per 1-d slice of `a` along `axis`, where get(k) reads element k
 * of the slice and set(k, v) writes element k of the result's slice.
 */
function mapAlongAxis(
  a: NDArray, axis: number, out: TensorType,
  row: (get: (k: number) => number, set: (k: number, v: number) => void, n: number) => void,
): NDArray {
  const res = new NDArray(out.dtype, a.shape);
  const n = a.shape[axis]!;
  const inner = a.shape.slice(axis + 1).reduce((x, y) => x * y, 1);
  const outer = a.shape.slice(0, axis).reduce((x, y) => x * y, 1);
  const src = a.data;
  const dst = res.data;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      row((k) => src[base + k * inner]!, (k, v) => { dst[base + k * inner] = v; }, n);
    }
  }
  return res;
}

/**
 * The shift for a stable softmax: the slice's max, or 0 when that max is not finite (as SciPy's
 * log_softmax), so Inf and NaN propagate as in the naive formula: a +Inf entry gives NaN there and
 * 0 elsewhere, an all -Inf slice gives NaN, any NaN makes the slice NaN.
 */
function shiftOf(get: (k: number) => number, n: number): number {
  let m = -Infinity;
  for (let k = 0; k < n; k++) {
    const v = get(k);
    if (v > m) m = v;
  }
  return Number.isFinite(m) ? m : 0;
}

export const nnOps = {
  /** exp(x - max) / sum(exp(x - max)) along `axis` (normalised, non-negative). */
  softmax: {
    name: 'softmax',
    inferType: (inputs, attrs) => axisType('softmax', inputs, attrs),
    perform: (inputs, attrs, out) => mapAlongAxis(inputs[0]!, attrs.axis, out, (get, set, n) => {
      const m = shiftOf(get, n);
      let s = 0;
      for (let k = 0; k < n; k++) s += Math.exp(get(k) - m);
      for (let k = 0; k < n; k++) set(k, Math.exp(get(k) - m) / s);
    }),
  } satisfies OpDef<AxisAttrs>,

  /** x - max - log(sum(exp(x - max))) along `axis`. */
  logSoftmax: {
    name: 'logSoftmax',
    inferType: (inputs, attrs) => axisType('logSoftmax', inputs, attrs),
    perform: (inputs, attrs, out) => mapAlongAxis(inputs[0]!, attrs.axis, out, (get, set, n) => {
      const m = shiftOf(get, n);
      let s = 0;
      for (let k = 0; k < n; k++) s += Math.exp(get(k) - m);
      const l = Math.log(s);
      for (let k = 0; k < n; k++) set(k, get(k) - m - l);
    }),
  } satisfies OpDef<AxisAttrs>,

  /** out[...] = x[..., t[...]]: picks one entry of the last axis per row (x[arange(n), t] for a matrix). */
  takeRowwise: {
    name: 'takeRowwise',
    inferType(inputs) {
      const [x, t] = inputs as [TensorType, TensorType];
      if (inputs.length !== 2) throw new OpTypeError('takeRowwise', inputs, 'expects 2 inputs');
      if (!isInteger(t.dtype)) throw new OpTypeError('takeRowwise', inputs, 'indices must be int32 or uint8');
      if (x.ndim !== t.ndim + 1)
        throw new OpTypeError('takeRowwise', inputs, `values need exactly one more axis than the indices (got ndim ${x.ndim} and ${t.ndim})`);
      return new TensorType(x.dtype, x.broadcastable.slice(0, -1).map((b, i) => b && t.broadcastable[i]!));
    },
    perform(inputs, _attrs, out) {
      const [x, t] = inputs as [NDArray, NDArray];
      const c = x.shape[x.ndim - 1]!;
      checkRowwise('takeRowwise', x.shape.slice(0, -1), t, c, x.shape);
      const res = new NDArray(out.dtype, t.shape);
      for (let r = 0; r < t.size; r++) res.data[r] = x.data[r * c + t.data[r]!]!;
      return res;
    },
  } satisfies OpDef<NoAttrs>,

  /** The transpose of takeRowwise: zeros shaped like `like`, with g[...] at [..., t[...]]. */
  scatterRowwise: {
    name: 'scatterRowwise',
    inferType(inputs) {
      const [g, t, like] = inputs as [TensorType, TensorType, TensorType];
      if (inputs.length !== 3) throw new OpTypeError('scatterRowwise', inputs, 'expects 3 inputs');
      if (!isInteger(t.dtype)) throw new OpTypeError('scatterRowwise', inputs, 'indices must be int32 or uint8');
      if (g.ndim !== t.ndim || like.ndim !== t.ndim + 1)
        throw new OpTypeError('scatterRowwise', inputs, 'values and indices need equal ndim, the target one more');
      return new TensorType(g.dtype, like.broadcastable);
    },
    perform(inputs, _attrs, out) {
      const [g, t, like] = inputs as [NDArray, NDArray, NDArray];
      const c = like.shape[like.ndim - 1]!;
      checkRowwise('scatterRowwise', like.shape.slice(0, -1), t, c, like.shape);
      if (g.shape.some((d, i) => d !== t.shape[i]))
        throw new OpRuntimeError('scatterRowwise', `values ${shapeToString(g.shape)} and indices ${shapeToString(t.shape)} differ in shape`);
      const res = new NDArray(out.dtype, like.shape);
      for (let r = 0; r < t.size; r++) res.data[r * c + t.data[r]!] = g.data[r]!;
      return res;
    },
  } satisfies OpDef<NoAttrs>,

  ...convOps,
  ...poolOps,
  ...batchNormOps,
};

/** Refuses row-wise indices that do not match the rows of the values or fall outside the last axis (the reference's and every device's check). */
export function checkRowwise(op: string, rows: readonly number[], t: NDArray, c: number, xShape: readonly number[]): void {
  checkRowwiseShape(op, rows, t.shape, xShape);
  for (let r = 0; r < t.size; r++) {
    const k = t.data[r]!;
    if (k < 0 || k >= c) throw rowwiseIndexError(op, k, c, xShape);
  }
}

/** The shape half of {@link checkRowwise}: one index per row of the values. */
export function checkRowwiseShape(op: string, rows: readonly number[], tShape: readonly number[], xShape: readonly number[]): void {
  if (rows.length !== tShape.length || rows.some((d, i) => d !== tShape[i])) {
    throw new OpRuntimeError(op, `indices of shape ${shapeToString(tShape)} do not match the rows of ${shapeToString(xShape)}`);
  }
}

/** The error for a class index `k` outside [0, c) (devices that check on the device report it with this too). */
export function rowwiseIndexError(op: string, k: number, c: number, xShape: readonly number[]): OpRuntimeError {
  return new OpRuntimeError(op, `index ${k} is out of range for ${c} classes (values of shape ${shapeToString(xShape)})`);
}
