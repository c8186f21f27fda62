// Which function inputs feed a step (to name them in run-time errors).
import type { Program } from './program.js';

export function inputAncestors(program: Program, stepIndex: number): number[] {
  const producer = new Map<number, number>();
  program.steps.forEach((s, k) => producer.set(s.output, k));
  const inputIndex = new Map<number, number>();
  program.inputs.forEach((slot, i) => inputIndex.set(slot, i));
  const found = new Set<number>();
  const seen = new Set<number>();
  const stack = [...program.steps[stepIndex]!.inputs];
  while (stack.length) {
    const slot = stack.pop()!;
    if (seen.has(slot)) continue;
    seen.add(slot);
    const i = inputIndex.get(slot);
    if (i !== undefined) found.add(i);
    const k = producer.get(slot);
    if (k !== undefined) stack.push(...program.steps[k]!.inputs);
  }
  return [...found].sort((a, b) => a - b);
}
