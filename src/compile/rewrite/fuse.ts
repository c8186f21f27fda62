// Groups chains of elementwise steps into single 'fused' steps whose inner program is recorded,
// so a device can run each group as one pass over memory with no temporaries.
import { getOpDef } from '../../ops/apply.js';
import type { FusedStep } from '../program.js';
import { isElementwiseOpName } from '../../ops/elementwise.js';
import type { WorkProgram, WorkStep } from './work-program.js';

export function fuseElementwise(w: WorkProgram): void {
  const uses = w.useCounts();
  const producer = w.producerOf();
  const isElementwise = (s: WorkStep | undefined): s is WorkStep => s !== undefined && getOpDef(s.op).elementwise !== undefined;
  const protectedSlots = new Set<number>([...w.outputs, ...w.updates.map((u) => u.slot)]);
  // group id per step output; a producer joins its single consumer's group.
  const groupOf = new Map<number, number>();
  for (let k = w.steps.length - 1; k >= 0; k--) {
    const s = w.steps[k]!;
    if (!isElementwise(s)) continue;
    const g = groupOf.get(s.output) ?? s.output;
    groupOf.set(s.output, g);
    for (const i of s.inputs) {
      const p = producer.get(i);
      if (isElementwise(p) && uses.get(i) === 1 && !protectedSlots.has(i) && !groupOf.has(i)) groupOf.set(i, g);
    }
  }
  const members = new Map<number, WorkStep[]>();
  for (const s of w.steps) {
    const g = groupOf.get(s.output);
    if (g === undefined) continue;
    const list = members.get(g) ?? [];
    list.push(s);
    members.set(g, list);
  }
  let fusedGroups = 0;
  let fusedSteps = 0;
  const replaced = new Map<number, WorkStep>();
  for (const [root, list] of members) {
    if (list.length < 2) continue;
    const internal = new Set(list.map((s) => s.output));
    const externals: number[] = [];
    const indexOf = new Map<number, number>();
    for (const s of list) for (const i of s.inputs) if (!internal.has(i) && !indexOf.has(i)) { indexOf.set(i, externals.length); externals.push(i); }
    const steps: FusedStep[] = [];
    list.forEach((s, k) => {
      if (!isElementwiseOpName(s.op)) throw new Error(`internal: fusing '${s.op}', which is not elementwise`);
      steps.push({ op: s.op, attrs: s.attrs, args: s.inputs.map((i) => indexOf.get(i)!), dtype: w.slots[s.output]!.dtype });
      indexOf.set(s.output, externals.length + k);
    });
    replaced.set(root, { op: 'fused', attrs: { steps }, inputs: externals, output: root });
    fusedGroups++;
    fusedSteps += list.length;
  }
  if (fusedGroups === 0) return;
  const next: WorkStep[] = [];
  for (const s of w.steps) {
    const g = groupOf.get(s.output);
    if (g === undefined || !replaced.has(g)) { next.push(s); continue; }
    // The group is emitted where its root (last member) stood, after all its external inputs.
    if (s.output === g) next.push(replaced.get(g)!);
  }
  w.steps = next;
  w.log.push(`elementwise fusion: ${fusedSteps} steps into ${fusedGroups} fused kernel(s)`);
}
