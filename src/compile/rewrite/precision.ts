// The precision pass: under the 'bf16' policy, every product step whose result is float32 (matmul,
// conv2d, conv2dInputGrad, conv2dFilterGrad) gets the attribute precision: 'bf16', so the device
// multiplies bfloat16 operands with float32 sums. Gradients were built before the program was, so the
// backward products are marked too (as autocast runs them). Nothing else changes: no slot changes
// dtype, so elementwise work, reductions, softmax, losses, batch-norm statistics, parameters, their
// updates and every output stay float32. float64 products are left exact (autocast leaves them too).
import { PRODUCT_OPS } from '../../ops/operand-precision.js';
import type { Precision } from '../precision.js';
import type { WorkProgram } from './work-program.js';

export function applyPrecision(w: WorkProgram, precision: Precision): void {
  if (precision === 'fp32') return;
  const counts = new Map<string, number>();
  for (const step of w.steps) {
    if (!(PRODUCT_OPS as readonly string[]).includes(step.op) || w.slots[step.output]!.dtype !== 'float32') continue;
    step.attrs = { ...step.attrs, precision };
    counts.set(step.op, (counts.get(step.op) ?? 0) + 1);
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const which = [...counts].map(([op, n]) => `${op} x${n}`).join(', ');
  w.log.push(`precision ${precision}: ${total} product step(s) take bfloat16 operands${total > 0 ? ` (${which})` : ''}`);
}
