// Elementwise ops and fused groups: one generated kernel per group. When every input is either the
// full output shape or a single element, the contiguous kernel runs (16-byte accesses); otherwise
// the strided one, with each input's broadcast strides over the output's axes.
import type { FusedStep } from '../../../compile/program.js';
import type { FusedAttrs } from '../../../ops/fused.js';
import { isElementwiseOpName } from '../../../ops/elementwise.js';
import { broadcastShapes, broadcastStrides } from '../../../ops/broadcast.js';
import { sizeOf } from '../../../tensor/ndarray.js';
import { elementwiseKernels } from '../codegen/elementwise.js';
import { i32, i64, ptr, type Lowering } from './types.js';

export const lowerElementwise: Lowering = (lc, step) => {
  const inputs = step.inputs.map((i) => lc.slotDtype(i));
  const op = step.op;
  if (op !== 'fused' && !isElementwiseOpName(op)) throw new Error(`cuda lowering: ${op} is not elementwise`);
  const steps: readonly FusedStep[] = op === 'fused'
    ? (step.attrs as FusedAttrs).steps
    : [{ op, attrs: step.attrs, args: inputs.map((_, i) => i), dtype: lc.slotDtype(step.output) }];
  const ndim = lc.slotNdim(step.output);
  // Inputs and output as the storage plan holds them (bfloat16 activations under the 'bf16' policy).
  const outStorage = lc.slotStorage(step.output);
  const k = elementwiseKernels(lc.mb, inputs, steps, ndim, { inputs: step.inputs.map((i) => lc.slotStorage(i)), out: outStorage });
  return (s, st) => {
    const shapes = st.inputs.map((i) => s.shape(i));
    const outShape = broadcastShapes(st.op, shapes);
    const out = s.alloc(k.outDtype, outShape, outStorage);
    const n = sizeOf(outShape);
    if (n === 0) return { dev: out };
    const ins = st.inputs.map((i) => s.dev(i));
    let mask = 0;
    let contiguous = ins.length <= 30;
    ins.forEach((a, i) => {
      if (a.size === 1) mask |= 1 << i;
      else if (a.size !== n || a.ptr % 16n !== 0n) contiguous = false;
    });
    if (contiguous && out.ptr % 16n === 0n) {
      s.launch(k.contiguous, s.ctx.gridFor(n, 4), 256, [ptr(out), ...ins.map(ptr), i64(n), i32(mask)]);
    } else {
      const strides = ins.map((a) => broadcastStrides(a.shape, outShape));
      s.launch(k.strided, s.ctx.gridFor(n), 256, [
        ptr(out), ...ins.map(ptr), i64(n), ...outShape.map(i64), ...strides.flatMap((st) => st.map(i64)),
      ]);
    }
    return { dev: out };
  };
};
