// repeat, tile and oneHot on the device (gathers and a scatter into zeros).
import { sizeOf } from '../../../tensor/ndarray.js';
import type { DType } from '../../../tensor/dtype.js';
import { OpRuntimeError, type IntArg } from '../../../ops/op.js';
import { fillKernel, oneHotKernel, repeatKernel, tileKernel } from '../codegen/misc.js';
import { contiguousStrides, f64, i64, ptr, type Lowering } from './types.js';

export const lowerRepeat: Lowering = (lc, step) => {
  const { repeats, axis } = step.attrs as { repeats: number; axis: number };
  const dt = lc.slotDtype(step.output);
  const kernel = repeatKernel(lc.mb, dt);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const out = s.alloc(dt, x.shape.map((d, i) => (i === axis ? d * repeats : d)));
    if (out.size === 0) return { dev: out };
    s.launch(kernel, s.ctx.gridFor(out.size), 256, [
      ptr(out), ptr(x), i64(sizeOf(x.shape.slice(0, axis))), i64(x.shape[axis]!), i64(repeats), i64(sizeOf(x.shape.slice(axis + 1))),
    ]);
    return { dev: out };
  };
};

export const lowerTile: Lowering = (lc, step) => {
  const { reps } = step.attrs as { reps: readonly number[] };
  const dt = lc.slotDtype(step.output);
  const kernel = tileKernel(lc.mb, dt, reps.length);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const shape = x.shape.map((d, i) => d * reps[i]!);
    const out = s.alloc(dt, shape);
    if (out.size === 0) return { dev: out };
    s.launch(kernel, s.ctx.gridFor(out.size), 256, [
      ptr(out), ptr(x), i64(out.size), ...shape.map(i64), ...x.shape.map(i64), ...contiguousStrides(x.shape).map(i64),
    ]);
    return { dev: out };
  };
};

export const lowerOneHot: Lowering = (lc, step) => {
  const { n: nArg, dtype } = step.attrs as { n: IntArg; dtype: DType };
  const kernel = oneHotKernel(lc.mb, dtype, lc.slotDtype(step.inputs[0]!));
  const fill = fillKernel(lc.mb, dtype);
  return (s, st) => {
    const n = s.intArg(nArg, st);
    if (n < 0) throw new OpRuntimeError('oneHot', `n must be non-negative, got ${n}`);
    const idx = s.host(st.inputs[0]!);
    for (let k = 0; k < idx.size; k++) {
      const i = idx.data[k]!;
      if (i < 0 || i >= n) throw new OpRuntimeError('oneHot', `index ${i} (at position ${k}) is out of range for n = ${n}`);
    }
    const out = s.alloc(dtype, [...idx.shape, n]);
    if (out.size === 0) return { dev: out };
    s.launch(fill, s.ctx.gridFor(out.size), 256, [ptr(out), i64(out.size), f64(0)]);
    if (idx.size > 0) s.launch(kernel, s.ctx.gridFor(idx.size), 256, [ptr(out), ptr(s.dev(st.inputs[0]!)), i64(idx.size), i64(n)]);
    return { dev: out };
  };
};

