// Structural ops on the device: reshapes and rebroadcasts are views of their input's block;
// dimshuffle, broadcastLike and alloc are strided copies; fills, arange and shapeI need no input
// data; sumToLike is a sum over the axes found at run time.
import { NDArray, shapeToString, sizeOf } from '../../../tensor/ndarray.js';
import type { DType } from '../../../tensor/dtype.js';
import { OpRuntimeError, type IntArg } from '../../../ops/op.js';
import { broadcastShapes, broadcastStrides } from '../../../ops/broadcast.js';
import type { DimshufflePattern } from '../../../ops/structural.js';
import { arangeKernel, copyKernel, fillKernel } from '../codegen/misc.js';
import { reduceKernels } from '../codegen/reduce.js';
import type { CudaArray } from '../cuda-array.js';
import { reduceArrayOnDevice } from './reduce.js';
import { contiguousStrides, f64, i32, i64, ptr, type Lowering, type RunState } from './types.js';

/** dst[dOff + idx . dStrides] (=|+=) src[sOff + idx . sStrides] for every index of `shape`. */
export function stridedCopy(
  s: RunState, kernel: string, dst: CudaArray, src: CudaArray, shape: readonly number[],
  sOff: number, sStrides: readonly number[], dOff: number, dStrides: readonly number[], add = false,
): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  s.launch(kernel, s.ctx.gridFor(n), 256, [
    ptr(dst), ptr(src), i64(n), i64(sOff), i64(dOff), i32(add ? 1 : 0),
    ...shape.map(i64), ...sStrides.map(i64), ...dStrides.map(i64),
  ]);
}

/** A contiguous copy of `src` read through strides, into a new array of `shape`. */
export function gatherStrided(
  s: RunState, kernel: string, src: CudaArray, dtype: DType, shape: readonly number[], sOff: number, sStrides: readonly number[],
): CudaArray {
  const out = s.alloc(dtype, shape);
  stridedCopy(s, kernel, out, src, shape, sOff, sStrides, 0, contiguousStrides(shape));
  return out;
}

export const lowerDimshuffle: Lowering = (lc, step) => {
  const { pattern } = step.attrs as { pattern: DimshufflePattern };
  const dt = lc.slotDtype(step.output);
  const kernel = copyKernel(lc.mb, dt, dt, pattern.length);
  const perm = pattern.filter((p): p is number => p !== 'x');
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    for (let i = 0; i < x.shape.length; i++) {
      if (!perm.includes(i) && x.shape[i] !== 1) throw new OpRuntimeError('dimshuffle', `dropped axis ${i} has size ${x.shape[i]}, not 1`);
    }
    const shape = pattern.map((p) => (p === 'x' ? 1 : x.shape[p]!));
    const moved = perm.filter((p) => x.shape[p] !== 1);
    if (moved.every((p, i) => i === 0 || p > moved[i - 1]!)) return { dev: x.view(shape) };
    const st0 = contiguousStrides(x.shape);
    return { dev: gatherStrided(s, kernel, x, dt, shape, 0, pattern.map((p) => (p === 'x' ? 0 : st0[p]!))) };
  };
};

export const lowerReshape: Lowering = (_lc, step) => {
  const { dims } = step.attrs as { dims: readonly IntArg[] };
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const d = dims.map((a) => s.intArg(a, st));
    const known = d.filter((v) => v !== -1).reduce((p, v) => p * v, 1);
    if (known === 0 && d.includes(-1)) {
      // As the reference device and NumPy: any size would fit -1 here.
      throw new OpRuntimeError('reshape',
        `cannot reshape array of size ${x.size} into ${shapeToString(d)}: -1 is ambiguous when the other dimensions multiply to 0`);
    }
    const shape = d.map((v) => (v === -1 ? x.size / known : v));
    if (!shape.every((v) => Number.isInteger(v) && v >= 0) || sizeOf(shape) !== x.size) {
      throw new OpRuntimeError('reshape', `cannot reshape array of shape ${shapeToString(x.shape)} (size ${x.size}) into ${shapeToString(d)}`);
    }
    return { dev: x.view(shape) };
  };
};

export const lowerRebroadcast: Lowering = (_lc, step) => {
  const { axes, broadcastable } = step.attrs as { axes: readonly number[]; broadcastable: boolean };
  return (s, st) => {
    const shape = s.shape(st.inputs[0]!);
    if (broadcastable) {
      for (const ax of axes) {
        if (shape[ax] !== 1) throw new OpRuntimeError('rebroadcast', `axis ${ax} was marked broadcastable but has size ${shape[ax]}`);
      }
    }
    return { dev: s.dev(st.inputs[0]!).view() };
  };
};

export const lowerBroadcastLike: Lowering = (lc, step) => {
  const dt = lc.slotDtype(step.output);
  const kernel = copyKernel(lc.mb, lc.slotDtype(step.inputs[0]!), dt, lc.slotNdim(step.output));
  return (s, st) => {
    const gShape = s.shape(st.inputs[0]!);
    const likeShape = s.shape(st.inputs[1]!);
    const shape = broadcastShapes('broadcastLike', [gShape, likeShape]);
    if (shape.some((d, i) => d !== likeShape[i])) {
      throw new OpRuntimeError('broadcastLike', `cannot broadcast ${shapeToString(gShape)} to ${shapeToString(likeShape)}`);
    }
    const g = s.dev(st.inputs[0]!);
    if (g.shape.length === likeShape.length && g.shape.every((d, i) => d === likeShape[i])) return { dev: g.view() };
    return { dev: gatherStrided(s, kernel, g, dt, likeShape, 0, broadcastStrides(g.shape, likeShape)) };
  };
};

export const lowerAlloc: Lowering = (lc, step) => {
  const { dims } = step.attrs as { dims: readonly IntArg[] };
  const dt = lc.slotDtype(step.output);
  const kernel = copyKernel(lc.mb, lc.slotDtype(step.inputs[0]!), dt, dims.length);
  return (s, st) => {
    const d = dims.map((a) => s.intArg(a, st));
    const vShape = s.shape(st.inputs[0]!);
    const lead = d.length - vShape.length;
    if (d.some((v) => v < 0) || vShape.some((v, i) => v !== 1 && v !== d[lead + i])) {
      throw new OpRuntimeError('alloc', `cannot broadcast a value of shape ${shapeToString(vShape)} to ${shapeToString(d)}`);
    }
    if (sizeOf(d) === 0) return { dev: s.alloc(dt, d) };
    return { dev: gatherStrided(s, kernel, s.dev(st.inputs[0]!), dt, d, 0, broadcastStrides(vShape, d)) };
  };
};

export const lowerFillLike: Lowering = (lc, step) => {
  const { value, dtype } = step.attrs as { value: number; dtype: DType };
  const kernel = fillKernel(lc.mb, dtype);
  return (s, st) => {
    const out = s.alloc(dtype, s.shape(st.inputs[0]!));
    if (out.size > 0) s.launch(kernel, s.ctx.gridFor(out.size), 256, [ptr(out), i64(out.size), f64(value)]);
    return { dev: out };
  };
};

export const lowerShapeI: Lowering = (_lc, step) => {
  const { axis } = step.attrs as { axis: number };
  return (s, st) => ({ host: NDArray.scalar(s.shape(st.inputs[0]!)[axis]!, 'int32') });
};

export const lowerArange: Lowering = (lc, step) => {
  const attrs = step.attrs as { start: IntArg; stop: IntArg; step: IntArg; dtype: DType };
  const kernel = arangeKernel(lc.mb, attrs.dtype);
  return (s, st) => {
    const [start, stop, stp] = [attrs.start, attrs.stop, attrs.step].map((a) => s.intArg(a, st)) as [number, number, number];
    if (stp === 0) throw new OpRuntimeError('arange', 'step is zero');
    const n = Math.max(0, Math.ceil((stop - start) / stp));
    const out = s.alloc(attrs.dtype, [n]);
    if (n > 0) s.launch(kernel, s.ctx.gridFor(n), 256, [ptr(out), i64(n), f64(start), f64(stp)]);
    return { dev: out };
  };
};

export const lowerSumToLike: Lowering = (lc, step) => {
  const dt = lc.slotDtype(step.inputs[0]!);
  const ndim = lc.slotNdim(step.inputs[0]!);
  const kernels = [reduceKernels(lc.mb, { kind: 'sum', input: dt, output: dt })];
  const copy = copyKernel(lc.mb, dt, dt, ndim);
  return (s, st) => {
    const gShape = s.shape(st.inputs[0]!);
    const like = s.shape(st.inputs[1]!);
    const lead = gShape.length - like.length;
    const axes: number[] = [];
    for (let i = 0; i < gShape.length; i++) {
      if (i < lead) axes.push(i);
      else if (like[i - lead] === 1 && gShape[i] !== 1) axes.push(i);
      else if (like[i - lead] !== gShape[i]) throw new OpRuntimeError('sumToLike', `cannot reduce ${shapeToString(gShape)} to ${shapeToString(like)}`);
    }
    // The identity keeps the gradient's storage (bfloat16 under the 'bf16' policy); a reduction sums float32.
    if (axes.length === 0) return { dev: s.dev(st.inputs[0]!).view(like) };
    const g = s.float32(st.inputs[0]!);
    const r = reduceArrayOnDevice(s, g.arr, axes, false, dt, kernels, copy, true);
    if (g.temp) g.arr.release();
    const out = r.view(like);
    r.release();
    return { dev: out };
  };
};
