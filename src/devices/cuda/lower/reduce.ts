// Reductions on the device. At run time the input's axes (size-1 axes dropped, neighbours of the
// same kind merged) reduce to [rows, n] (reduced axes last: a group of threads per row) or
// [outer, n, inner] (a thread per column, coalesced across columns); any other pattern is first
// transposed into [kept..., reduced...]. Few rows or columns over a long n split n into chunks
// reduced in a second pass, so every reduction fills the GPU.
import type { DType } from '../../../tensor/dtype.js';
import { sizeOf } from '../../../tensor/ndarray.js';
import { OpRuntimeError } from '../../../ops/op.js';
import { reducedShape } from '../../../ops/layout.js';
import type { ReduceAttrs } from '../../../ops/reduce.js';
import { reduceKernels, type ReduceKernels, type ReduceKind } from '../codegen/reduce.js';
import { copyKernel } from '../codegen/misc.js';
import type { CudaArray } from '../cuda-array.js';
import { contiguousStrides, i32, i64, ptr, type Lowering, type RunState } from './types.js';

export type ReducePlan =
  | { readonly kind: 'rows'; readonly rows: number; readonly n: number; readonly perm: readonly number[] | null }
  | { readonly kind: 'cols'; readonly outer: number; readonly n: number; readonly inner: number }
  | { readonly kind: 'twoStage'; readonly outer: number; readonly keep: number; readonly inner: number };

/**
 * How to reduce `shape` over `axes` (see the module comment). With `twoStage` (reductions whose partial
 * results combine: sum, mean, prod, max, min, all, any), [outer, keep, inner] reduced over outer and inner
 * (batch norm's axes 0, 2, 3 of NCHW) runs as two passes, rows of inner then columns of outer, instead of
 * a transposing copy of the whole input; only where there are rows enough to fill the GPU in the first pass.
 */
export function planReduce(shape: readonly number[], axes: readonly number[], twoStage = false, multiprocessors = 0): ReducePlan {
  const count = axes.reduce((p, a) => p * shape[a]!, 1);
  const outSize = sizeOf(shape) === 0 ? sizeOf(reducedShape(shape, axes, false)) : sizeOf(shape) / Math.max(1, count);
  if (sizeOf(shape) === 0) return { kind: 'rows', rows: outSize, n: 0, perm: null };
  const groups: { red: boolean; size: number }[] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const red = axes.includes(i);
    const last = groups[groups.length - 1];
    if (last && last.red === red) last.size *= d;
    else groups.push({ red, size: d });
  });
  const pattern = groups.map((g) => (g.red ? 'R' : 'K')).join('');
  const size = (i: number) => groups[i]?.size ?? 1;
  switch (pattern) {
    case '': case 'K': return { kind: 'rows', rows: outSize, n: 1, perm: null };
    case 'R': return { kind: 'rows', rows: 1, n: size(0), perm: null };
    case 'KR': return { kind: 'rows', rows: size(0), n: size(1), perm: null };
    case 'RK': return { kind: 'cols', outer: 1, n: size(0), inner: size(1) };
    case 'KRK': return { kind: 'cols', outer: size(0), n: size(1), inner: size(2) };
    case 'RKR':
      if (twoStage && size(0) * size(1) >= multiprocessors * 2) return { kind: 'twoStage', outer: size(0), keep: size(1), inner: size(2) };
      return { kind: 'rows', rows: outSize, n: count, perm: [...shape.keys()].filter((i) => !axes.includes(i)).concat(axes) };
    default: {
      const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
      return { kind: 'rows', rows: outSize, n: count, perm: [...kept, ...axes] };
    }
  }
}

/** Whether a static axis pattern may need the transposing copy at run time. */
export function mayTranspose(ndim: number, axes: readonly number[] | null): boolean {
  if (axes === null) return true;
  const pattern = Array.from({ length: ndim }, (_, i) => (axes.includes(i) ? 'R' : 'K')).join('').replace(/(.)\1+/g, '$1');
  return !['', 'K', 'R', 'KR', 'RK', 'KRK'].includes(pattern);
}

/** Copies x with its axes permuted (output axis i = input axis perm[i]) into a new contiguous array. */
export function transposed(s: RunState, kernel: string, x: CudaArray, perm: readonly number[]): CudaArray {
  const shape = perm.map((p) => x.shape[p]!);
  const out = s.temp(x.dtype, shape);
  const n = out.size;
  if (n === 0) return out;
  const st = contiguousStrides(x.shape);
  s.launch(kernel, s.ctx.gridFor(n), 256, [
    ptr(out), ptr(x), i64(n), i64(0), i64(0), i32(0),
    ...shape.map(i64), ...perm.map((p) => i64(st[p]!)), ...contiguousStrides(shape).map(i64),
  ]);
  return out;
}

/** Runs one reduction pass set: x over `plan` into `out` (final values), reading `aux` per output. */
export function reduceInto(s: RunState, k: ReduceKernels, x: CudaArray, plan: ReducePlan, out: CudaArray, count: number, aux: CudaArray | null): void {
  const sms = s.ctx.multiprocessors;
  const auxArg = ptr(aux ?? 0n);
  if (plan.kind === 'twoStage') {
    // Rows of inner into Acc partials laid out [outer][keep] (the first pass of a split reduction, one split),
    // then those partials as [1, outer, keep] columns into the final values (its second pass).
    const { outer, keep, inner } = plan;
    const rows = outer * keep;
    const G = inner <= 128 ? 32 : 256;
    const partial = s.temp('uint8', [k.accBytes * rows]);
    s.launch(k.rows[0], Math.max(1, Math.min(Math.ceil(rows / (256 / G)), sms * 32)), 256,
      [ptr(x), auxArg, ptr(partial), i64(rows), i64(inner), i64(count), i64(1), i32(G), i32(0)]);
    s.launch(k.cols[1], Math.max(1, Math.min(Math.ceil(keep / 32), sms * 32)), 256,
      [ptr(partial), auxArg, ptr(out), i64(1), i64(outer), i64(keep), i64(count), i64(1), i32(1)]);
    partial.release();
    return;
  }
  if (plan.kind === 'rows') {
    const { rows, n } = plan;
    if (rows === 0) return;
    const G = n <= 128 ? 32 : 256;
    const splits = G === 256 && rows < sms * 2 && n > 4096 ? Math.min(Math.ceil((sms * 4) / rows), Math.ceil(n / 2048)) : 1;
    const grid = (units: number, g: number) => Math.max(1, Math.min(Math.ceil(units / (256 / g)), sms * 32));
    if (splits === 1) {
      s.launch(k.rows[0], grid(rows, G), 256, [ptr(x), auxArg, ptr(out), i64(rows), i64(n), i64(count), i64(1), i32(G), i32(1)]);
      return;
    }
    const partial = s.temp('uint8', [k.accBytes * rows * splits]);
    s.launch(k.rows[0], grid(rows * splits, G), 256, [ptr(x), auxArg, ptr(partial), i64(rows), i64(n), i64(count), i64(splits), i32(G), i32(0)]);
    const G2 = splits <= 128 ? 32 : 256;
    s.launch(k.rows[1], grid(rows, G2), 256, [ptr(partial), auxArg, ptr(out), i64(rows), i64(splits), i64(count), i64(1), i32(G2), i32(1)]);
    partial.release();
    return;
  }
  const { outer, n, inner } = plan;
  const units = outer * Math.ceil(inner / 32);
  const splits = units < sms * 4 && n > 64 ? Math.min(Math.ceil((sms * 8) / units), Math.ceil(n / 64)) : 1;
  const grid = (u: number) => Math.max(1, Math.min(u, sms * 32));
  if (splits === 1) {
    s.launch(k.cols[0], grid(units), 256, [ptr(x), auxArg, ptr(out), i64(outer), i64(n), i64(inner), i64(count), i64(1), i32(1)]);
    return;
  }
  const partial = s.temp('uint8', [k.accBytes * outer * splits * inner]);
  s.launch(k.cols[0], grid(units * splits), 256, [ptr(x), auxArg, ptr(partial), i64(outer), i64(n), i64(inner), i64(count), i64(splits), i32(0)]);
  s.launch(k.cols[1], grid(units), 256, [ptr(partial), auxArg, ptr(out), i64(outer), i64(splits), i64(inner), i64(count), i64(1), i32(1)]);
  partial.release();
}

/** Reductions whose partial results combine into the whole one (argmax's indices and var's two phases do not). */
const TWO_STAGE: ReadonlySet<string> = new Set(['sum', 'mean', 'prod', 'max', 'min', 'all', 'any']);

const SIMPLE: Readonly<Record<string, ReduceKind>> = {
  sum: 'sum', prod: 'prod', mean: 'mean', max: 'max', min: 'min', all: 'all', any: 'any', argmax: 'argmax', argmin: 'argmin',
};

/** Lowers the reductions of the op table (sum ... logsumexp). */
export const lowerReduce: Lowering = (lc, step) => {
  const attrs = step.attrs as ReduceAttrs & { ddof?: number };
  const input = lc.slotDtype(step.inputs[0]!);
  const output = lc.slotDtype(step.output);
  const ndim = lc.slotNdim(step.inputs[0]!);
  const phases: ReduceKind[] = step.op === 'var' ? ['varMean', 'varDev'] : step.op === 'logsumexp' ? ['lseMax', 'lseSum'] : [SIMPLE[step.op]!];
  const kernels = phases.map((kind, i) => reduceKernels(lc.mb, { kind, input, output: i < phases.length - 1 ? 'float64' : output, ddof: attrs.ddof ?? 0 }));
  const copy = mayTranspose(ndim, attrs.axes) ? copyKernel(lc.mb, input, input, ndim) : null;
  const twoStage = TWO_STAGE.has(step.op);
  const emptyError = step.op === 'max' || step.op === 'min' ? 'zero-size reduction has no identity'
    : step.op === 'argmax' || step.op === 'argmin' ? 'attempt to get the arg of an empty sequence' : null;
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    if (emptyError && attrs.axes.some((a) => x.shape[a] === 0)) throw new OpRuntimeError(st.op, emptyError);
    return { dev: reduceArrayOnDevice(s, x, attrs.axes, attrs.keepdims, output, kernels, copy, twoStage) };
  };
};

/** Reduces x over axes through the given phases (the last one writes `output`). */
export function reduceArrayOnDevice(
  s: RunState, x: CudaArray, axes: readonly number[], keepdims: boolean, output: DType, kernels: readonly ReduceKernels[], copy: string | null,
  twoStage = false,
): CudaArray {
  const out = s.alloc(output, reducedShape(x.shape, axes, keepdims));
  if (out.size === 0) return out;
  let plan = planReduce(x.shape, axes, twoStage && kernels.length === 1, s.ctx.multiprocessors);
  let src = x;
  let moved: CudaArray | null = null;
  if (plan.kind === 'rows' && plan.perm) {
    if (!copy) throw new Error('internal: reduction needs a transpose that was not compiled');
    moved = transposed(s, copy, x, plan.perm);
    src = moved;
    plan = { kind: 'rows', rows: plan.rows, n: plan.n, perm: null };
  }
  const count = axes.reduce((p, a) => p * x.shape[a]!, 1);
  let aux: CudaArray | null = null;
  for (let i = 0; i < kernels.length; i++) {
    const last = i === kernels.length - 1;
    const dst = last ? out : s.temp('float64', out.shape);
    reduceInto(s, kernels[i]!, src, plan, dst, count, aux);
    if (aux) aux.release();
    aux = last ? null : dst;
  }
  moved?.release();
  return out;
}
