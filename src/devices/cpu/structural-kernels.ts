// Kernels for structural and indexing ops that the reference runs element by element into fresh
// arrays: here they write into pooled outputs with block copies (TypedArray.set), and a subtensor of
// a contiguous range is a view (subarray) of its input, no copy at all. Every error case runs the
// reference perform, which raises the reference's message.
import { NDArray, sizeOf, stridesOf, type Shape } from '../../tensor/ndarray.js';
import { castScalar, isFloat, type DType } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { copyRuns, planOf, type AxisPlan, type SubtensorAttrs } from '../../ops/indexing.js';
import { reference, type Kernel } from './kernel-types.js';

/** The flat [start, start + size) range a slice covers, or null when it is not one contiguous block. */
export function contiguousRange(shape: Shape, plan: readonly AxisPlan[]): { start: number; size: number } | null {
  const size = sizeOf(plan.map((p) => p.length));
  if (size === 0) return { start: 0, size: 0 };
  let i = shape.length - 1;
  while (i >= 0 && plan[i]!.start === 0 && plan[i]!.step === 1 && plan[i]!.length === shape[i]) i--;
  // Axis i is the one partial axis; every axis before it must pick a single index.
  if (i >= 0 && plan[i]!.length > 1 && plan[i]!.step !== 1) return null;
  for (let a = i - 1; a >= 0; a--) if (plan[a]!.length > 1) return null;
  const strides = stridesOf(shape);
  let start = 0;
  plan.forEach((p, ax) => (start += p.start * strides[ax]!));
  return { start, size };
}

/** x[entries]: a view for a contiguous block (a copy when the value goes to the caller), else block copies. */
export const subtensorKernel: Kernel<SubtensorAttrs> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  return (inputs, rt) => {
    const x = inputs[0]!;
    if (x.dtype !== dtype) return ref(inputs);
    const plan = planOf('subtensor', x.shape, step.attrs.entries, inputs);
    const shape = plan.filter((p) => p.keep).map((p) => p.length);
    const range = step.escapes === true ? null : contiguousRange(x.shape, plan);
    if (range !== null) return new NDArray(dtype, shape, x.data.subarray(range.start, range.start + range.size));
    return copyRuns(x, plan, rt.output(dtype, shape));
  };
};

/** Joins along an axis with one TypedArray.set per part (per outer index when the axis is not the first). */
export const concatenateKernel: Kernel<{ readonly axis: number }> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  const ax = step.attrs.axis;
  // TypedArray.set converts as the reference's store does only into float arrays or between equal dtypes.
  const convertible = isFloat(dtype) || step.inputTypes.every((t) => t.dtype === dtype);
  return (inputs, rt) => {
    const first = inputs[0];
    if (!convertible || first === undefined) return ref(inputs);
    let total = 0;
    for (const a of inputs) {
      if (a.ndim !== first.ndim || a.shape.some((d, i) => i !== ax && d !== first.shape[i])) return ref(inputs);
      total += a.shape[ax]!;
    }
    const shape = first.shape.map((d, i) => (i === ax ? total : d));
    const out = rt.output(dtype, shape);
    const outer = sizeOf(shape.slice(0, ax));
    const inner = sizeOf(shape.slice(ax + 1));
    const dst = out.data;
    let col = 0;
    for (const a of inputs) {
      const block = a.shape[ax]! * inner;
      if (outer === 1) dst.set(a.data, col);
      else for (let p = 0; p < outer; p++) dst.set(a.data.subarray(p * block, (p + 1) * block), p * total * inner + col);
      col += block;
    }
    return out;
  };
};

/** Rows and index range as the reference checks them (checkRowwise in src/ops/nn.ts, which the CUDA lowering shares). */
function rowwiseOk(rows: readonly number[], t: NDArray, c: number): boolean {
  if (rows.length !== t.ndim || rows.some((d, i) => d !== t.shape[i])) return false;
  const idx = t.data;
  for (let r = 0; r < idx.length; r++) {
    const k = idx[r]!;
    if (!(k >= 0 && k < c)) return false;
  }
  return true;
}

/** x[..., t[...]]: one value per row. */
export const takeRowwiseKernel: Kernel<Attrs> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  return (inputs, rt) => {
    const [x, t] = inputs as [NDArray, NDArray];
    const c = x.shape[x.ndim - 1]!;
    if (x.dtype !== dtype || !rowwiseOk(x.shape.slice(0, -1), t, c)) return ref(inputs);
    const out = rt.output(dtype, t.shape);
    const y = out.data, xd = x.data, idx = t.data;
    for (let r = 0; r < idx.length; r++) y[r] = xd[r * c + idx[r]!]!;
    return out;
  };
};

/** Zeros shaped like `like` with g[...] at [..., t[...]]. */
export const scatterRowwiseKernel: Kernel<Attrs> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  return (inputs, rt) => {
    const [g, t, like] = inputs as [NDArray, NDArray, NDArray];
    const c = like.shape[like.ndim - 1]!;
    if (g.dtype !== dtype || g.ndim !== t.ndim || g.shape.some((d, i) => d !== t.shape[i]) || !rowwiseOk(like.shape.slice(0, -1), t, c)) {
      return ref(inputs);
    }
    const out = rt.output(dtype, like.shape);
    const y = out.data, gd = g.data, idx = t.data;
    y.fill(0);
    for (let r = 0; r < idx.length; r++) y[r * c + idx[r]!] = gd[r]!;
    return out;
  };
};

/** An array shaped like the input, every element `value`. */
export const fillLikeKernel: Kernel<{ readonly value: number; readonly dtype: DType }> = (step) => {
  const { value, dtype } = step.attrs;
  const v = castScalar(value, dtype);
  return (inputs, rt) => {
    const out = rt.output(dtype, inputs[0]!.shape);
    out.data.fill(v);
    return out;
  };
};

/** The size of one axis as an int32 scalar. */
export const shapeIKernel: Kernel<{ readonly axis: number }> = (step) => {
  const ref = reference(step);
  const axis = step.attrs.axis;
  return (inputs, rt) => {
    const x = inputs[0]!;
    if (!(axis >= 0 && axis < x.ndim)) return ref(inputs);
    const out = rt.output('int32', []);
    out.data[0] = x.shape[axis]!;
    return out;
  };
};
