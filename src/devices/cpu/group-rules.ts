// Finds the group steps of group-kernels.ts and concat-group.ts in a program's steps (after the
// other CPU rewrites) and replaces their members by one step each. Only groups whose fast path
// can apply are formed (float chains the WebAssembly code covers); shapes are checked when run.
import type { Program } from '../../compile/program.js';
import { isFloat, type DType } from '../../tensor/dtype.js';
import { TensorType } from '../../tensor/type.js';
import { getOpDef, isOpName } from '../../ops/apply.js';
import type { ExecStep } from './kernel-types.js';
import {
  biasGradGroupBuilder, chainGroupBuilder, combineChain, externalInputs, isStaticReshape, scalarStepsOf, type MemberStep,
} from './group-kernels.js';
import { concatGroupBuilder } from './concat-group.js';
import { chainLane } from './wasm-chain.js';

const isElementwise = (s: ExecStep): boolean =>
  s.kernel === undefined && s.group === undefined && (s.op === 'fused' || (isOpName(s.op) && getOpDef(s.op).elementwise !== undefined));

function groupStep(name: string, members: readonly ExecStep[], outputs: readonly number[], group: ExecStep['group']): ExecStep {
  return {
    op: name, attrs: {}, inputs: externalInputs(members), output: outputs[0]!, extraOutputs: outputs.slice(1), index: members[0]!.index, group,
  };
}

export function groupForCpu(program: Program, steps: readonly ExecStep[], resultSlots: readonly number[]): ExecStep[] {
  const types = program.slots.map((s) => new TensorType(s.dtype, s.broadcastable));
  const dtypeOf = (slot: number): DType => types[slot]!.dtype;
  const uses = new Map<number, number>();
  for (const s of steps) for (const i of s.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  const results = new Set(resultSlots);
  const needed = (slot: number, inside: number): boolean => results.has(slot) || (uses.get(slot) ?? 0) > inside;
  const producedAt = new Map<number, number>();
  steps.forEach((s, k) => producedAt.set(s.output, k));
  /** Position k of steps: the group replacing it (first member), or null when it is a moved member. */
  const replaced = new Map<number, ExecStep | null>();
  const taken = (k: number): boolean => replaced.has(k);
  const laneOf = (m: MemberStep): boolean => {
    const own = scalarStepsOf(m, types);
    return own !== null && chainLane(own, m.inputs.map(dtypeOf), [own.length - 1]) !== null;
  };

  // Bias gradients: elementwise E, [sumToLike(E) with nothing to do], sumToLike over leading axes.
  steps.forEach((e, k) => {
    const a = steps[k + 1], b = steps[k + 2];
    if (taken(k) || !isElementwise(e) || a === undefined || a.op !== 'sumToLike' || a.inputs[0] !== e.output || !laneOf(e)) return;
    const twoStep = b !== undefined && b.op === 'sumToLike' && b.inputs[0] === a.output && uses.get(e.output) === 1;
    const alias = twoStep ? a : null;
    const reduce = twoStep ? b : a;
    if (dtypeOf(reduce.output) !== dtypeOf(e.output)) return;
    const storeE = alias === null ? needed(e.output, 1) : needed(e.output, 1) || needed(alias.output, 1);
    const members = alias === null ? [e, reduce] : [e, alias, reduce];
    const outputs = members.map((m) => m.output);
    replaced.set(k, groupStep(members.map((m) => m.op).join('+'), members, outputs, biasGradGroupBuilder(e, alias, reduce, storeE)));
    for (let j = 1; j < members.length; j++) replaced.set(k + j, null);
  });

  // Chains: consecutive elementwise steps (or reshapes to constant dims), each reading an earlier one's value.
  for (let k = 0; k < steps.length; k++) {
    if (taken(k) || !isElementwise(steps[k]!)) continue;
    const members: ExecStep[] = [steps[k]!];
    for (let j = k + 1; j < steps.length && !taken(j); j++) {
      const s = steps[j]!;
      if (!(isElementwise(s) || (s.kernel === undefined && isStaticReshape(s)))) break;
      if (!s.inputs.some((i) => members.some((m) => m.output === i))) break;
      members.push(s);
    }
    while (members.length > 1 && isStaticReshape(members[members.length - 1]!)) members.pop();
    if (members.length < 2) continue;
    const chain = combineChain(members, types);
    if (chain === null || chainLane(chain.steps, chain.ext.map(dtypeOf), chain.finals) === null) continue;
    const outputs = members.map((m) => m.output);
    const inside = (slot: number): number => members.reduce((n, m) => n + m.inputs.filter((i) => i === slot).length, 0);
    const neededNow = outputs.map((o) => needed(o, inside(o)));
    replaced.set(k, groupStep(members.map((m) => m.op).join('+'), members, outputs, chainGroupBuilder(members, neededNow)));
    for (let j = 1; j < members.length; j++) replaced.set(k + j, null);
    k += members.length - 1;
  }

  // Concatenations of parts made only for them: the parts move to the concatenate.
  steps.forEach((c, k) => {
    if (c.op !== 'concatenate' || taken(k) || c.kernel !== undefined) return;
    const dtype = dtypeOf(c.output);
    if (!isFloat(dtype) && !c.inputs.every((i) => dtypeOf(i) === dtype)) return;
    const parts: number[] = [];
    for (const slot of c.inputs) {
      const p = producedAt.get(slot);
      if (p === undefined || taken(p) || parts.includes(p) || !isElementwise(steps[p]!)) continue;
      if (uses.get(slot) !== 1 || results.has(slot) || dtypeOf(slot) !== dtype) continue;
      parts.push(p);
    }
    if (parts.length === 0) return;
    parts.sort((x, y) => x - y);
    const members = parts.map((p) => steps[p]!);
    const outputs = [c.output, ...members.map((m) => m.output)];
    for (const p of parts) replaced.set(p, null);
    replaced.set(k, { ...groupStep('concatenate', [...members, c], outputs, concatGroupBuilder(c, members)), index: c.index });
  });

  const out: ExecStep[] = [];
  steps.forEach((s, k) => {
    const r = replaced.get(k);
    if (r === undefined) out.push(s);
    else if (r !== null) out.push(r);
  });
  return out;
}
