// Max and average 2-d pooling and their gradient ops on the GPU, with the kernels of
// codegen/pool.ts: one thread per output element for the forward ops and maxPool2dGradGrad (a
// gather of the gradient at each window's first maximum), one thread per input element for the
// gradients (a gather over the windows containing it; maxPool2dGrad first writes every window's
// argmax to a temporary int32 buffer). Results match the reference perform (first maximum, first
// NaN, double accumulation) and bad shapes throw its OpRuntimeErrors. Bool gradients (whose
// reference store wraps instead of testing != 0) fall back to the host.
import { shapeToString } from '../../../tensor/ndarray.js';
import { OpRuntimeError } from '../../../ops/op.js';
import { checkOut, outShape, windows, type AvgPoolAttrs, type PoolAttrs, type Windows } from '../../../ops/pool.js';
import {
  avgPoolGradKernel, avgPoolKernel, maxPoolArgKernel, maxPoolGradGradKernel, maxPoolGradKernel, maxPoolKernel,
} from '../codegen/pool.js';
import type { KernelArg } from '../ffi/kernel-params.js';
import { hostFallback } from './host.js';
import { i32, i64, ptr, type Lowering, type RunState } from './types.js';

/** (total, h, w, oh, ow, kh, kw, sh, sw, ph, pw): the arguments after each kernel's arrays. */
function windowArgs(total: number, g: Windows, a: PoolAttrs): KernelArg[] {
  return [i64(total), ...[g.h, g.w, g.oh, g.ow, a.kernel[0], a.kernel[1], a.stride[0], a.stride[1], a.padding[0], a.padding[1]].map(i32)];
}

function launch(s: RunState, kernel: string, total: number, arrays: readonly KernelArg[], g: Windows, a: PoolAttrs, extra: readonly KernelArg[] = []): void {
  if (total > 0) s.launch(kernel, s.ctx.gridFor(total), 256, [...arrays, ...windowArgs(total, g, a), ...extra]);
}

export const lowerMaxPool2d: Lowering = (lc, step) => {
  const attrs = step.attrs as PoolAttrs;
  const dt = lc.slotDtype(step.output);
  // The maximum is one of the inputs: the output is held as the input is (bfloat16 under the 'bf16' policy).
  const held = lc.slotStorage(step.inputs[0]!);
  const kernel = maxPoolKernel(lc.mb, held);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const g = windows('maxPool2d', x.shape, attrs);
    const out = s.alloc(dt, outShape(x.shape, g), held);
    launch(s, kernel, out.size, [ptr(out), ptr(x)], g, attrs);
    return { dev: out };
  };
};

/** Inputs (x, gy). */
export const lowerMaxPool2dGrad: Lowering = (lc, step) => {
  const attrs = step.attrs as PoolAttrs;
  const dt = lc.slotDtype(step.output);
  if (dt === 'bool') return hostFallback(lc, step);
  const held = lc.slotStorage(step.output);
  const argKernel = maxPoolArgKernel(lc.mb, lc.slotStorage(step.inputs[0]!));
  const gradKernel = maxPoolGradKernel(lc.mb, lc.slotStorage(step.inputs[1]!), held);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const gyShape = s.shape(st.inputs[1]!);
    const g = windows('maxPool2dGrad', x.shape, attrs);
    checkOut('maxPool2dGrad', x.shape, g, gyShape);
    const out = s.alloc(dt, x.shape, held);
    if (out.size === 0) return { dev: out };
    const pooled = g.lead * g.oh * g.ow;
    const arg = s.temp('int32', [pooled]);
    launch(s, argKernel, pooled, [ptr(arg), ptr(x)], g, attrs);
    launch(s, gradKernel, out.size, [ptr(out), ptr(arg), ptr(s.dev(st.inputs[1]!))], g, attrs);
    arg.release();
    return { dev: out };
  };
};

/** Inputs (x, gx) with gx shaped like x. */
export const lowerMaxPool2dGradGrad: Lowering = (lc, step) => {
  const attrs = step.attrs as PoolAttrs;
  const dt = lc.slotDtype(step.output);
  const kernel = maxPoolGradGradKernel(lc.mb, lc.slotDtype(step.inputs[0]!), dt);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const gxShape = s.shape(st.inputs[1]!);
    if (gxShape.length !== x.shape.length || gxShape.some((d, i) => d !== x.shape[i])) {
      throw new OpRuntimeError('maxPool2dGradGrad', `gradient ${shapeToString(gxShape)} and input ${shapeToString(x.shape)} differ in shape`);
    }
    const g = windows('maxPool2dGradGrad', x.shape, attrs);
    const out = s.alloc(dt, outShape(x.shape, g));
    launch(s, kernel, out.size, [ptr(out), ptr(x), ptr(s.dev(st.inputs[1]!))], g, attrs);
    return { dev: out };
  };
};

export const lowerAvgPool2d: Lowering = (lc, step) => {
  const attrs = step.attrs as AvgPoolAttrs;
  const dt = lc.slotDtype(step.output);
  const held = lc.slotStorage(step.output);
  const kernel = avgPoolKernel(lc.mb, lc.slotStorage(step.inputs[0]!), held);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const g = windows('avgPool2d', x.shape, attrs);
    const out = s.alloc(dt, outShape(x.shape, g), held);
    launch(s, kernel, out.size, [ptr(out), ptr(x)], g, attrs, [i32(attrs.countIncludePad ? 1 : 0)]);
    return { dev: out };
  };
};

/** Inputs (gy, xLike): xLike gives the shape only. */
export const lowerAvgPool2dGrad: Lowering = (lc, step) => {
  const attrs = step.attrs as AvgPoolAttrs;
  const dt = lc.slotDtype(step.output);
  const held = lc.slotStorage(step.output);
  const kernel = avgPoolGradKernel(lc.mb, lc.slotStorage(step.inputs[0]!), held);
  return (s, st) => {
    const xShape = s.shape(st.inputs[1]!);
    const gyShape = s.shape(st.inputs[0]!);
    const g = windows('avgPool2dGrad', xShape, attrs);
    checkOut('avgPool2dGrad', xShape, g, gyShape);
    const out = s.alloc(dt, xShape, held);
    if (out.size === 0) return { dev: out };
    launch(s, kernel, out.size, [ptr(out), ptr(s.dev(st.inputs[0]!))], g, attrs, [i32(attrs.countIncludePad ? 1 : 0)]);
    return { dev: out };
  };
};
