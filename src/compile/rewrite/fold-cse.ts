// Constant folding and common-subexpression elimination.
import { TensorType } from '../../tensor/type.js';
import { getOpDef } from '../../ops/apply.js';
import type { WorkProgram } from './work-program.js';

/** Largest result (in elements) worth folding into the program as a constant. */
const FOLD_LIMIT = 1 << 16;

export function foldConstants(w: WorkProgram): void {
  let folded = 0;
  const remaining = [];
  for (const step of w.steps) {
    const def = getOpDef(step.op);
    if (!def.impure && step.inputs.every((i) => w.isConstant(i))) {
      const info = w.slots[step.output]!;
      const value = def.perform(step.inputs.map((i) => w.constants.get(i)!), step.attrs, new TensorType(info.dtype, info.broadcastable));
      if (value.size <= FOLD_LIMIT) {
        w.constants.set(step.output, value);
        w.slots[step.output] = { ...info, kind: 'constant' };
        folded++;
        continue;
      }
    }
    remaining.push(step);
  }
  w.steps = remaining;
  if (folded > 0) w.log.push(`constant folding: folded ${folded} step(s)`);
}

export function eliminateCommonSubexpressions(w: WorkProgram): void {
  const seen = new Map<string, number>();
  const constSeen = new Map<string, number>();
  let merged = 0;
  // Identical small constants first, so steps reading them become identical too.
  for (const [slot, value] of w.constants) {
    if (value.size > 64) continue;
    const info = w.slots[slot]!;
    const key = `${value.dtype}|${value.shape.join(',')}|${info.broadcastable.join(',')}|${Array.from(value.data).join(',')}`;
    const first = constSeen.get(key);
    if (first === undefined) constSeen.set(key, slot);
    else { w.replaceSlot(slot, first); merged++; }
  }
  const kept = [];
  for (const step of w.steps) {
    const def = getOpDef(step.op);
    const key = `${step.op}|${JSON.stringify(step.attrs)}|${step.inputs.join(',')}`;
    const first = def.impure ? undefined : seen.get(key);
    if (first !== undefined) {
      w.replaceSlot(step.output, first);
      merged++;
      continue;
    }
    if (!def.impure) seen.set(key, step.output);
    kept.push(step);
  }
  w.steps = kept;
  if (merged > 0) w.log.push(`common subexpressions: merged ${merged}`);
}
