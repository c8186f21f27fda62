// Random draws and the state advance on the GPU (see codegen/random.ts): the state stays on the
// device, so a training step with dropout never waits for the host.
import { shapeToString, sizeOf } from '../../../tensor/ndarray.js';
import type { DType } from '../../../tensor/dtype.js';
import { OpRuntimeError, type IntArg } from '../../../ops/op.js';
import { broadcastShapes, broadcastStrides } from '../../../ops/broadcast.js';
import { DRAW_PARAMS, randomStreamSalt, type DrawKind, type ParamArg } from '../../../ops/random.js';
import { advanceKernel, drawKernel } from '../codegen/random.js';
import { f64, i64, ptr, type Lowering } from './types.js';
import type { KernelArg } from '../ffi/kernel-params.js';

const KIND: Readonly<Record<string, DrawKind>> = { randomUniform: 'uniform', randomNormal: 'normal', randomBernoulli: 'bernoulli' };

export const lowerDraw: Lowering = (lc, step) => {
  const kind = KIND[step.op]!;
  const attrs = step.attrs as { dims: readonly IntArg[]; dtype: DType } & Readonly<Record<string, unknown>>;
  const names: readonly string[] = DRAW_PARAMS[kind];
  const params = names.map((p) => attrs[p] as ParamArg);
  const ndim = attrs.dims.length;
  const kernel = drawKernel(lc.mb, kind, attrs.dtype, ndim, params.map((p) => (typeof p === 'number' ? null : lc.slotDtype(step.inputs[p.input]!))));
  return (s, st) => {
    const stateSlot = st.inputs[0]!;
    const stateShape = s.shape(stateSlot);
    if (sizeOf(stateShape) !== 4) throw new OpRuntimeError(st.op, `generator state must have shape (4,), got ${shapeToString(stateShape)}`);
    const shape = attrs.dims.map((d) => s.intArg(d, st));
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new OpRuntimeError(st.op, `negative or fractional dimension in shape ${shapeToString(shape)}`);
    const args: KernelArg[] = [];
    params.forEach((p, k) => {
      if (typeof p === 'number') {
        args.push(f64(p));
        return;
      }
      const slot = st.inputs[p.input]!;
      const pShape = s.shape(slot);
      const b = broadcastShapes(st.op, [pShape, shape]);
      if (b.length !== shape.length || b.some((d, i) => d !== shape[i])) {
        throw new OpRuntimeError(st.op,
          `parameter ${names[k]} of shape ${shapeToString(pShape)} does not broadcast to the draw's shape ${shapeToString(shape)}`);
      }
      args.push(ptr(s.dev(slot)), ...broadcastStrides(pShape, shape).map(i64));
    });
    const out = s.alloc(attrs.dtype, shape);
    const n = sizeOf(shape);
    if (n > 0) {
      s.launch(kernel, s.ctx.gridFor(n), 256, [ptr(out), ptr(s.dev(stateSlot)), i64(n), { u32: randomStreamSalt() >>> 0 }, ...args, ...shape.map(i64)]);
    }
    return { dev: out };
  };
};

export const lowerAdvance: Lowering = (lc, step) => {
  const kernel = advanceKernel(lc.mb);
  return (s, st) => {
    const shape = s.shape(st.inputs[0]!);
    if (sizeOf(shape) !== 4) throw new OpRuntimeError('randomAdvance', `generator state must have shape (4,), got ${shapeToString(shape)}`);
    const out = s.alloc('int32', shape);
    s.launch(kernel, 1, 32, [ptr(out), ptr(s.dev(st.inputs[0]!))]);
    return { dev: out };
  };
};
