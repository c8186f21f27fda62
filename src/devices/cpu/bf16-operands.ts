// The CPU device's emulation of the 'bf16' precision policy: a product step marked precision 'bf16'
// (matmul, conv2d and its gradients) runs its usual kernel on copies of its two operands rounded to
// bfloat16. The copies live in the step's scratch memory (returned to the pool when the step ends).
// Products of two bfloat16 values are exact in float32, so the float32 GEMM then sums exactly the
// products a bfloat16 tensor core forms: only the order of the float32 sums differs from a GPU.
import { NDArray } from '../../tensor/ndarray.js';
import { TensorType } from '../../tensor/type.js';
import { roundArrayToBf16 } from '../../tensor/bfloat16.js';
import type { OperandPrecision } from '../../ops/operand-precision.js';
import type { Attrs } from '../../tensor/variable.js';
import type { Kernel } from './kernel-types.js';

/** `kernel`, with its first two operands rounded to bfloat16 first on steps whose attrs ask for it. */
export function withBf16Operands<A extends Attrs & { readonly precision?: OperandPrecision }>(kernel: Kernel<A>): Kernel<A> {
  return (step, cx) => {
    if (step.attrs.precision === undefined) return kernel(step, cx);
    const inputTypes = step.inputTypes.map((t, i) => (i < 2 ? new TensorType('float32', t.broadcastable) : t));
    const inner = kernel({ ...step, inputTypes }, cx);
    return (inputs, rt) => {
      const rounded = inputs.map((x, i) => {
        if (i >= 2) return x;
        const copy = (rt.scratch('float32', x.size) as Float32Array).subarray(0, x.size);
        return new NDArray('float32', x.shape, roundArrayToBf16(x.data, copy));
      });
      return inner(rounded, rt);
    };
  };
}
