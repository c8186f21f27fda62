// Reads of a value only for its shape (sumToLike's `like`, shapeI, ...: ops/shape-only.ts) move to a
// later value of the same type and shape: the output of a one-input elementwise step that reads it.
// The gradient graph names pre-activations there: sumToLike(g, z) for z = x·W + b, while the ReLU's
// gradient reads relu(z). Moved to relu(z), z has one reader left, so the fusion keeps z inside one
// kernel (bias add and ReLU, one output) instead of writing it out for the shape alone, and a
// device frees it at once. Only where every other reader of z reads its shape alone, after that
// step (the value they move to must exist; a z that stays alive anyway would gain nothing and keep
// the later value alive longer).
import { getOpDef, isOpName } from '../../ops/apply.js';
import { readsOnlyShape } from '../../ops/shape-only.js';
import type { WorkProgram } from './work-program.js';

export function moveShapeReads(w: WorkProgram): void {
  const pinned = new Set<number>([...w.outputs, ...w.updates.map((u) => u.slot)]);
  const sameType = (a: number, b: number): boolean => {
    const x = w.slots[a]!, y = w.slots[b]!;
    return x.dtype === y.dtype && x.broadcastable.length === y.broadcastable.length && x.broadcastable.every((v, i) => v === y.broadcastable[i]);
  };
  let moved = 0;
  w.steps.forEach((s, at) => {
    if (s.inputs.length !== 1 || !isOpName(s.op) || getOpDef(s.op).elementwise === undefined) return;
    const z = s.inputs[0]!;
    if (pinned.has(z) || w.isConstant(z) || !sameType(z, s.output)) return;
    const others = w.steps.flatMap((r, k) => r.inputs.flatMap((i, j) => (i === z && r !== s ? [{ r, j, k }] : [])));
    if (others.length === 0 || others.some(({ r, j, k }) => k <= at || !readsOnlyShape(r.op, j))) return;
    for (const { r, j } of others) r.inputs[j] = s.output;
    moved += others.length;
  });
  if (moved > 0) w.log.push(`shape reads: ${moved} moved to a later value of the same shape`);
}
