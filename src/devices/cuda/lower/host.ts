// The explicit host fallback for ops without a CUDA kernel yet: wait for the inputs, download them,
// run the op's reference perform, and leave the result on the host (it is uploaded when a later
// step or the caller needs it on the device). Correct for every op; slow for large arrays.
import { TensorType } from '../../../tensor/type.js';
import { getOpDef } from '../../../ops/apply.js';
import type { Lowering } from './types.js';

export const hostFallback: Lowering = (lc, step) => {
  const def = getOpDef(step.op);
  const slot = lc.program.slots[step.output]!;
  const type = new TensorType(slot.dtype, slot.broadcastable);
  return (s, st) => ({ host: def.perform(st.inputs.map((i) => s.host(i)), st.attrs, type) });
};
