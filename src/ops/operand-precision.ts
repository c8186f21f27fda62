// The `precision` attribute of the product ops (matmul, conv2d and its two gradients): absent, the
// operands are used as they are; 'bf16', each operand is rounded to bfloat16 first and the products
// are summed in at least float32 (the reference sums in float64). The compiler's precision pass
// (src/compile/rewrite/precision.ts) sets it on float32 products under a function's 'bf16' policy;
// devices read it as data (no code is made from it).
import { NDArray } from '../tensor/ndarray.js';
import type { TensorType } from '../tensor/type.js';
import { roundArrayToBf16 } from '../tensor/bfloat16.js';
import { OpTypeError } from './op.js';

/** The operand precisions a product op may carry: bfloat16 operands with float32 (or wider) sums. */
export const OPERAND_PRECISIONS = ['bf16'] as const;
/** One of {@link OPERAND_PRECISIONS}. */
export type OperandPrecision = (typeof OPERAND_PRECISIONS)[number];

/** The ops whose first two inputs are the operands of a product and which take the `precision` attribute. */
export const PRODUCT_OPS = ['matmul', 'conv2d', 'conv2dInputGrad', 'conv2dFilterGrad'] as const;

/** Checks a product op's optional `precision` attribute (build time and description validation). */
export function checkOperandPrecision(op: string, inputs: readonly TensorType[], precision: unknown): void {
  if (precision === undefined) return;
  if (!(OPERAND_PRECISIONS as readonly unknown[]).includes(precision)) {
    throw new OpTypeError(op, inputs, `attr precision must be absent or 'bf16', got ${JSON.stringify(precision) ?? String(precision)}`);
  }
}

/**
 * The first two inputs rounded to bfloat16 (as float32 arrays) when `precision` is 'bf16', the rest as
 * they came; the inputs themselves are never modified.
 */
export function roundOperands(inputs: readonly NDArray[], precision: OperandPrecision | undefined): readonly NDArray[] {
  if (precision === undefined) return inputs;
  return inputs.map((x, i) => (i < 2 ? new NDArray('float32', x.shape, roundArrayToBf16(x.data, new Float32Array(x.size))) : x));
}
