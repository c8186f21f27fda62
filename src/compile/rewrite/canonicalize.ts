// Simple algebraic canonicalisation: identities that remove work without changing results.
import type { WorkProgram, WorkStep } from './work-program.js';

function isConstantValue(w: WorkProgram, slot: number, value: number): boolean {
  const c = w.constants.get(slot);
  return c !== undefined && c.size >= 1 && Array.from(c.data).every((x) => x === value);
}

/** True when two slots have the same dtype and broadcastable pattern. */
function sameSlotType(w: WorkProgram, x: number, y: number): boolean {
  const a = w.slots[x]!;
  const b = w.slots[y]!;
  return a.dtype === b.dtype && a.broadcastable.length === b.broadcastable.length && a.broadcastable.every((f, i) => f === b.broadcastable[i]);
}

/** True when reading `x` instead of the step's result gives the same shape, dtype and pattern. */
function sameTypeAs(w: WorkProgram, x: number, step: WorkStep, other: number): boolean {
  const a = w.slots[x]!;
  const o = w.slots[other]!;
  // The other operand must only broadcast (all its axes size 1 and no more axes than x).
  const otherIsScalarLike = o.broadcastable.length <= a.broadcastable.length && o.broadcastable.every((b) => b);
  return sameSlotType(w, x, step.output) && otherIsScalarLike;
}

export function canonicalize(w: WorkProgram): void {
  let count = 0;
  const producer = w.producerOf();
  const kept: WorkStep[] = [];
  for (const step of w.steps) {
    const [a, b] = step.inputs as [number, number | undefined];
    let alias: number | undefined;
    switch (step.op) {
      case 'add':
        if (b !== undefined && isConstantValue(w, b, 0) && sameTypeAs(w, a, step, b)) alias = a;
        else if (b !== undefined && isConstantValue(w, a, 0) && sameTypeAs(w, b, step, a)) alias = b;
        break;
      case 'sub':
        if (b !== undefined && isConstantValue(w, b, 0) && sameTypeAs(w, a, step, b)) alias = a;
        break;
      case 'mul':
        if (b !== undefined && isConstantValue(w, b, 1) && sameTypeAs(w, a, step, b)) alias = a;
        else if (b !== undefined && isConstantValue(w, a, 1) && sameTypeAs(w, b, step, a)) alias = b;
        break;
      case 'div':
        if (b !== undefined && isConstantValue(w, b, 1) && sameTypeAs(w, a, step, b)) alias = a;
        break;
      case 'neg': {
        // neg(neg(b)) of a bool b is int32 (neg promotes bool), so only same-typed values collapse.
        const inner = producer.get(a);
        const source = inner?.op === 'neg' ? inner.inputs[0]! : undefined;
        if (source !== undefined && sameSlotType(w, source, step.output)) alias = source;
        break;
      }
      case 'cast':
        if (w.slots[a]!.dtype === step.attrs['dtype']) alias = a;
        break;
      case 'pow':
        // square(a) has a's dtype and shape: the exponent must not widen either (pow(x, [[2]]) is 2-d).
        if (b !== undefined && isConstantValue(w, b, 2) && w.constants.get(b)!.size === 1 && sameTypeAs(w, a, step, b)) {
          kept.push({ op: 'square', attrs: {}, inputs: [a], output: step.output });
          count++;
          continue;
        }
        break;
      default:
        break;
    }
    if (alias !== undefined) {
      w.replaceSlot(step.output, alias);
      count++;
      continue;
    }
    kept.push(step);
  }
  w.steps = kept;
  if (count > 0) w.log.push(`canonicalisation: simplified ${count} step(s)`);
}
