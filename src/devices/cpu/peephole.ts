// Device-level rewrites of a program's steps before kernels are chosen. The cross-entropy pattern
// takeRowwise(logSoftmax(z, last axis), t), where the log-probabilities are used nowhere else,
// becomes one step that computes z[t] - max - log(sum(exp(z - max))) per row without materialising
// the log-softmax; then group steps (several steps in one pass, group-rules.ts) are formed.
import type { Program } from '../../compile/program.js';
import type { TensorType } from '../../tensor/type.js';
import type { ExecStep } from './kernel-types.js';
import { crossEntropyKernel } from './softmax.js';
import { groupForCpu } from './group-rules.js';

// The step types live in kernel-types.ts (group-rules.ts uses them too, and imports nothing of this file).
export type { ExecStep, GroupBuilder } from './kernel-types.js';

export function rewriteForCpu(program: Program, resultSlots: readonly number[], groups = true): ExecStep[] {
  const uses = new Map<number, number>();
  for (const s of program.steps) for (const i of s.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  const producer = new Map<number, number>();
  program.steps.forEach((s, k) => producer.set(s.output, k));
  const results = new Set(resultSlots);
  const skip = new Set<number>();
  const steps: ExecStep[] = program.steps.map((s, k) => ({ op: s.op, attrs: s.attrs, inputs: s.inputs, output: s.output, index: k }));
  program.steps.forEach((s, k) => {
    if (s.op !== 'takeRowwise') return;
    const lsmSlot = s.inputs[0]!;
    const p = producer.get(lsmSlot);
    if (p === undefined || uses.get(lsmSlot) !== 1 || results.has(lsmSlot)) return;
    const lsm = program.steps[p]!;
    const ndim = program.slots[lsmSlot]!.broadcastable.length;
    if (lsm.op !== 'logSoftmax' || lsm.attrs['axis'] !== ndim - 1) return;
    if (program.slots[lsm.inputs[0]!]!.dtype !== program.slots[lsmSlot]!.dtype) return;
    skip.add(p);
    steps[k] = { op: 'takeRowwise', attrs: s.attrs, inputs: [lsm.inputs[0]!, s.inputs[1]!], output: s.output, index: k, kernel: crossEntropyKernel };
  });
  const kept = steps.filter((_, k) => !skip.has(k));
  return groups ? groupForCpu(program, kept, resultSlots) : kept;
}
