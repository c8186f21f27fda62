// The precision policy of a compiled function (T.fn, synk.fn, makeTrainFunction: `precision`), as
// torch.autocast(dtype=torch.bfloat16) sets it: under 'bf16' every float32 product (matmul, conv2d and
// the convolution gradients) takes bfloat16 operands and sums in float32; everything else (elementwise
// work, reductions, softmax, losses, batch-norm statistics) stays float32, as do parameters, optimizer
// state and gradients. The policy is applied by a rewrite pass (rewrite/precision.ts) that marks the
// product steps, so the program stays plain data.
import { previewValue } from '../tensor/dtype.js';
import type { Program } from './program.js';

/** The precision policies: 'fp32' (the default: float32 throughout) and 'bf16' (bfloat16 operands for products). */
export const PRECISIONS = ['fp32', 'bf16'] as const;
/** One of {@link PRECISIONS}. */
export type Precision = (typeof PRECISIONS)[number];

/**
 * Why fp16 is not a policy: bfloat16 has float32's exponent range, so it needs no loss scaling, and on
 * the GPUs with bfloat16 tensor cores (compute capability 8.0 and later, such as the H200) both run at
 * the same rate. fp16's three extra fraction bits would cost dynamic loss scaling in every step.
 */
const NO_FP16 = "'fp16' is not offered: 'bf16' has float32's range (no loss scaling) at the same tensor-core speed";

/** Returns `value` as a precision (absent: 'fp32'), or throws a RangeError naming `what`, the accepted values and what came. */
export function checkPrecision(value: unknown, what: string): Precision {
  if (value === undefined) return 'fp32';
  if (typeof value === 'string' && (PRECISIONS as readonly string[]).includes(value)) return value as Precision;
  const hint = value === 'fp16' || value === 'float16' ? ` (${NO_FP16})` : '';
  throw new RangeError(`${what} must be 'fp32' or 'bf16', got ${previewValue(value)}${hint}`);
}

/** The policy a compiled program was made under, read from its steps: 'bf16' when a product step carries it. */
export function programPrecision(program: Program): Precision {
  return program.steps.some((s) => s.attrs['precision'] === 'bf16') ? 'bf16' : 'fp32';
}
